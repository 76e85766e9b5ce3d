// SPDX-License-Identifier: GPL-2.0
/*
 * optprobe_ktest: attach, detach, enable and disable racing busy CPUs -- races, torture.
 */
#include "ktest.h"

/* --- races: attach/detach while 4 CPUs call the target -------------------- */

int case_races(void)
{
	static atomic_t steady_hits, cycle_hits;
	static struct worker w[4];
	struct optprobe_desc steady = {
		.addr = optprobe_target_args_insn, .name = "steady",
		.handler = count_handler, .data = &steady_hits,
	};
	struct optprobe_desc cyc[2] = {
		{ .addr = optprobe_target_args_insn + 1, .name = "cycle_opt",
		  .handler = count_handler, .data = &cycle_hits },
		{ .addr = optprobe_target_args_insn + 2, .name = "cycle_brk",
		  .handler = count_handler, .post_handler = post_handler, .data = &cycle_hits },
	};
	unsigned long deadline;
	u64 total = 0;
	int ret, i, cycles = 0, started = 0;

	atomic_set(&steady_hits, 0);
	atomic_set(&cycle_hits, 0);
	ret = optprobe_register(&steady);
	if (ret)
		return ret;
	for (i = 0; i < 4; i++) {
		w[i].calls = 0;
		w[i].target = call_args_once;
		w[i].task = kthread_run(worker_loop, &w[i], "optprobe_race/%d", i);
		CHECK(!IS_ERR(w[i].task), "kthread_run %ld", PTR_ERR(w[i].task));
		started++;
	}
	deadline = jiffies + seconds * HZ;
	while (time_before(jiffies, deadline)) {
		ret = optprobe_register_batch(cyc, 2);
		CHECK(!ret, "register_batch %d in cycle %d", ret, cycles);
		CHECK(optprobe_state(cyc[0].probe) == OPTPROBE_STATE_OPTIMIZED, "cycle probe not optimized: %s",
		      reason_of(cyc[0].probe));
		usleep_range(100, 2000 + get_random_u32_below(3000));
		optprobe_unregister(cyc[0].probe);
		optprobe_unregister(cyc[1].probe);
		cycles++;
	}
out:
	for (i = 0; i < started; i++) {
		kthread_stop(w[i].task);
		total += w[i].calls;
	}
	optprobe_unregister(steady.probe);
	if (!ret && atomic_read(&steady_hits) != total) {
		pr_err("optprobe_ktest: races: FAIL: steady probe %d hits for %llu calls\n",
		       atomic_read(&steady_hits), total);
		ret = -EINVAL;
	}
	if (!ret && (atomic_read(&cycle_hits) > 2 * total || total == 0)) {
		pr_err("optprobe_ktest: races: FAIL: %d cycle hits for %llu calls\n",
		       atomic_read(&cycle_hits), total);
		ret = -EINVAL;
	}
	if (!ret)
		pr_info("optprobe_ktest: races: %u s, %d attach/detach cycles, %llu calls, steady hits %d, cycling hits %d\n",
			seconds, cycles, total, atomic_read(&steady_hits), atomic_read(&cycle_hits));
	return ret;
}


/* --- torture: two threads attach, detach, enable, disable at random ------ */

/*
 * A pool of probe points in optprobe_target_many, which 4 workers (one per
 * CPU) call nonstop. Two shuffler threads pick pool entries at random and
 * attach, detach (live, or after disabling), disable or enable them. Entries
 * 0 and 1 share an address (a second optprobe there stays a BRK kprobe in the
 * first's aggregate); one entry has a post handler and one sits on BTI.
 *
 * Checked: whenever an entry is quiesced (disabled and an RCU grace period
 * later) optprobe's hit count equals its handler's runs exactly, and no
 * handler runs after that until it is enabled again; the steady probe outside
 * the pool counts every workload call exactly; at the end every probe and
 * trampoline page is gone. The seed is printed; seed=N replays the choices.
 */
#define TORTURE_POOL 16

struct torture_entry {
	struct mutex lock;
	struct optprobe_desc desc;
	struct optprobe *probe;		/* NULL when detached */
	bool enabled;
	atomic64_t runs;		/* handler runs since attach */
	int quiet;			/* set: no handler may run */
};

static struct torture_entry pool[TORTURE_POOL];
static atomic_t torture_late, torture_mismatch;
static atomic64_t torture_runs;		/* handler runs, all entries, all attaches */
static atomic_long_t torture_ops[4];	/* attach, detach, disable, enable */

static void count64_handler(void *data, struct pt_regs *regs)
{
	atomic64_inc((atomic64_t *)data);
}

static void torture_handler(void *data, struct pt_regs *regs)
{
	struct torture_entry *e = data;

	atomic64_inc(&e->runs);
	atomic64_inc(&torture_runs);
	if (READ_ONCE(e->quiet))
		atomic_inc(&torture_late);
}

/* Disable, wait out running handlers, then hits must match runs. */
static int torture_quiesce(struct torture_entry *e)
{
	unsigned long hits;
	int ret = optprobe_disable(e->probe);

	if (ret)
		return ret;
	e->enabled = false;
	synchronize_rcu();
	WRITE_ONCE(e->quiet, 1);
	hits = optprobe_hits(e->probe);
	if (hits != atomic64_read(&e->runs)) {
		pr_err("optprobe_ktest: torture: FAIL: entry %td: %lu hits reported, handler ran %lld times\n",
		       e - pool, hits, atomic64_read(&e->runs));
		atomic_inc(&torture_mismatch);
	}
	return 0;
}

static int torture_step(struct rnd_state *rnd)
{
	struct torture_entry *e = &pool[prandom_u32_state(rnd) % TORTURE_POOL];
	unsigned int op = prandom_u32_state(rnd) % 4;
	int ret = 0;

	mutex_lock(&e->lock);
	if (!e->probe) {
		atomic64_set(&e->runs, 0);
		WRITE_ONCE(e->quiet, 0);
		ret = optprobe_register(&e->desc);
		if (!ret) {
			e->probe = e->desc.probe;
			e->enabled = true;
			atomic_long_inc(&torture_ops[0]);
		}
	} else if (op == 0 || op == 1) {
		/* Detach: live (op 0) or quiesced first (op 1). */
		if (op == 1 && e->enabled)
			ret = torture_quiesce(e);
		if (!ret) {
			optprobe_unregister(e->probe);
			e->probe = NULL;
			atomic_long_inc(&torture_ops[1]);
		}
	} else if (e->enabled) {
		ret = torture_quiesce(e);
		if (!ret)
			atomic_long_inc(&torture_ops[2]);
	} else {
		WRITE_ONCE(e->quiet, 0);
		ret = optprobe_enable(e->probe);
		if (!ret) {
			e->enabled = true;
			atomic_long_inc(&torture_ops[3]);
		} else {
			WRITE_ONCE(e->quiet, 1);
		}
	}
	mutex_unlock(&e->lock);
	if (ret)
		pr_err("optprobe_ktest: torture: FAIL: entry %td: operation failed (%d)\n", e - pool, ret);
	return ret;
}

struct shuffler {
	struct task_struct *task;
	struct rnd_state rnd;
	int ret;
};

static int torture_shuffler(void *data)
{
	struct shuffler *sh = data;

	while (!kthread_should_stop()) {
		if (!sh->ret)
			sh->ret = torture_step(&sh->rnd);
		usleep_range(100, 200 + prandom_u32_state(&sh->rnd) % 2000);
	}
	return 0;
}

int case_torture(void)
{
	static atomic64_t steady_runs;
	static struct worker w[4];
	static struct shuffler sh[2];
	struct optprobe_desc steady = {
		.addr = &optprobe_target_many_insns[1000], .name = "steady",
		.handler = count64_handler, .data = &steady_runs,
	};
	struct optprobe_stats before, after;
	int ret = 0, i, workers = 0, shufflers = 0, ncpus = num_online_cpus();
	u64 calls = 0;

	if (!seed)
		seed = get_random_u32() ?: 1;
	pr_info("optprobe_ktest: torture: seed %u, %u s (replay: insmod optprobe_ktest.ko case=torture seed=%u seconds=%u)\n",
		seed, seconds, seed, seconds);
	optprobe_get_stats(&before);
	atomic_set(&torture_late, 0);
	atomic_set(&torture_mismatch, 0);
	atomic64_set(&torture_runs, 0);
	for (i = 0; i < 4; i++)
		atomic_long_set(&torture_ops[i], 0);
	for (i = 0; i < TORTURE_POOL; i++) {
		struct torture_entry *e = &pool[i];

		mutex_init(&e->lock);
		e->probe = NULL;
		memset(&e->desc, 0, sizeof(e->desc));
		/* Entries 0 and 1 share an address; the rest are spread out. */
		e->desc.addr = &optprobe_target_many_insns[i < 2 ? 0 : 7 * i];
		e->desc.name = "torture";
		e->desc.handler = torture_handler;
		e->desc.data = e;
	}
	pool[2].desc.post_handler = post_handler;
	pool[3].desc.addr = NULL;
	pool[3].desc.symbol = "optprobe_target_many";	/* entry: BTI, stays a kprobe */

	atomic64_set(&steady_runs, 0);
	ret = optprobe_register(&steady);
	if (ret)
		return ret;
	CHECK(optprobe_state(steady.probe) == OPTPROBE_STATE_OPTIMIZED, "steady probe: %s", reason_of(steady.probe));
	for (i = 0; i < 4; i++) {
		w[i].calls = 0;
		w[i].target = optprobe_target_many;
		w[i].task = kthread_create(worker_loop, &w[i], "optprobe_work/%d", i);
		CHECK(!IS_ERR(w[i].task), "kthread_create %ld", PTR_ERR(w[i].task));
		kthread_bind(w[i].task, i % ncpus);
		wake_up_process(w[i].task);
		workers++;
	}
	for (i = 0; i < 2; i++) {
		prandom_seed_state(&sh[i].rnd, (u64)seed * 2 + i);
		sh[i].ret = 0;
		sh[i].task = kthread_run(torture_shuffler, &sh[i], "optprobe_shuffle/%d", i);
		CHECK(!IS_ERR(sh[i].task), "kthread_run %ld", PTR_ERR(sh[i].task));
		shufflers++;
	}
	msleep(seconds * 1000);
out:
	for (i = 0; i < shufflers; i++) {
		kthread_stop(sh[i].task);
		if (!ret)
			ret = sh[i].ret;
	}
	/* Quiesce and detach what is left, workload still running. */
	for (i = 0; i < TORTURE_POOL; i++) {
		struct torture_entry *e = &pool[i];

		if (!e->probe)
			continue;
		if (e->enabled && torture_quiesce(e) && !ret)
			ret = -EIO;
		optprobe_unregister(e->probe);
		e->probe = NULL;
	}
	for (i = 0; i < workers; i++) {
		kthread_stop(w[i].task);
		calls += w[i].calls;
	}
	optprobe_unregister(steady.probe);
	optprobe_get_stats(&after);
	if (!ret && atomic64_read(&steady_runs) != calls) {
		pr_err("optprobe_ktest: torture: FAIL: steady probe ran %lld times for %llu calls\n",
		       atomic64_read(&steady_runs), calls);
		ret = -EINVAL;
	}
	if (!ret && (atomic_read(&torture_late) || atomic_read(&torture_mismatch))) {
		pr_err("optprobe_ktest: torture: FAIL: %d handler runs while disabled, %d count mismatches\n",
		       atomic_read(&torture_late), atomic_read(&torture_mismatch));
		ret = -EINVAL;
	}
	if (!ret && (after.probes != before.probes || after.trampoline_pages != before.trampoline_pages)) {
		pr_err("optprobe_ktest: torture: FAIL: probes %lu -> %lu, trampoline pages %lu -> %lu\n",
		       before.probes, after.probes, before.trampoline_pages, after.trampoline_pages);
		ret = -EINVAL;
	}
	if (!ret && (!atomic_long_read(&torture_ops[0]) || !calls)) {
		pr_err("optprobe_ktest: torture: FAIL: nothing happened\n");
		ret = -EINVAL;
	}
	if (!ret)
		pr_info("optprobe_ktest: torture: seed %u, %u s, %ld attach, %ld detach, %ld disable, %ld enable; %llu calls, steady hits %lld, pool handler runs %lld; trampoline pages %lu -> %lu, stop_machine batches %lu\n",
			seed, seconds, atomic_long_read(&torture_ops[0]), atomic_long_read(&torture_ops[1]),
			atomic_long_read(&torture_ops[2]), atomic_long_read(&torture_ops[3]), calls,
			atomic64_read(&steady_runs), atomic64_read(&torture_runs), before.trampoline_pages, after.trampoline_pages,
			after.stop_machine_calls - before.stop_machine_calls);
	return ret;
}
