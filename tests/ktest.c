// SPDX-License-Identifier: GPL-2.0
/*
 * optprobe_ktest: in-kernel test cases, driven by the kselftests.
 *
 *   insmod optprobe_ktest.ko case=NAME [seconds=N] [calls=N]
 *
 * Loading runs one case; init returns 0 when it passes (the module then stays
 * loaded until rmmod) and -EINVAL when it fails, after a one-line reason.
 * Uses optprobe only through its C ABI (include/optprobe.h).
 */
#include <linux/atomic.h>
#include <linux/delay.h>
#include <linux/kallsyms.h>
#include <linux/kprobes.h>
#include <linux/fs.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/stacktrace.h>
#include <linux/string.h>
#include <linux/jiffies.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <asm/ptrace.h>
#include <asm/neon.h>
#include "../include/optprobe.h"
#include "target.h"

static char *test_case = "";
module_param_named(case, test_case, charp, 0);
MODULE_PARM_DESC(case, "hits|flags|fallback|backtrace|coexist|scale|races|torture|reloc|call|cost");
static unsigned int seconds = 10;
module_param(seconds, uint, 0);
static unsigned int calls = 100;
module_param(calls, uint, 0);
static unsigned int seed;
module_param(seed, uint, 0);
MODULE_PARM_DESC(seed, "torture: random seed (0: pick one and print it)");
static unsigned int scale_probes = 1000;
module_param(scale_probes, uint, 0);
MODULE_PARM_DESC(scale_probes, "scale: number of probes (default 1000)");

#define FAIL(fmt, ...) do {						\
	pr_err("optprobe_ktest: %s: FAIL: " fmt "\n", test_case, ##__VA_ARGS__); \
	ret = -EINVAL;							\
	goto out;							\
} while (0)
#define CHECK(cond, fmt, ...) do { if (!(cond)) FAIL(fmt, ##__VA_ARGS__); } while (0)

static const char *reason_of(struct optprobe *p)
{
	const char *r = optprobe_reason(p);

	return r ? r : "-";
}

/* --- hits: handler runs once per call and sees the right registers ------- */

struct seen {
	atomic_t count;
	u64 x[8], sp, pc, lr, pstate;
};

static void record_handler(void *data, struct pt_regs *regs)
{
	struct seen *s = data;
	int i;

	for (i = 0; i < 8; i++)
		s->x[i] = regs->regs[i];
	s->sp = regs->sp;
	s->pc = regs->pc;
	s->lr = regs->regs[30];
	s->pstate = regs->pstate;
	atomic_inc(&s->count);
}

static int case_hits(void)
{
	static struct seen s;
	struct optprobe_desc d = {
		.addr = optprobe_target_args_insn,
		.name = "hits",
		.handler = record_handler,
		.data = &s,
	};
	u64 a[8], got;
	int ret, i, n;

	memset(&s, 0, sizeof(s));
	ret = optprobe_register(&d);
	if (ret) {
		pr_err("optprobe_ktest: hits: FAIL: register %d\n", ret);
		return ret;
	}
	CHECK(optprobe_state(d.probe) == OPTPROBE_STATE_OPTIMIZED,
	      "not optimized: %s", reason_of(d.probe));
	for (n = 1; n <= 10; n++) {
		for (i = 0; i < 8; i++)
			a[i] = 0x1111111100000000ull * n + (i + 1) * 0x101;
		got = optprobe_target_call_args(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
		CHECK(got == a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7],
		      "result changed: %llx", got);
		CHECK(atomic_read(&s.count) == n, "count %d after %d calls", atomic_read(&s.count), n);
		for (i = 0; i < 8; i++)
			CHECK(s.x[i] == a[i], "x%d = %llx, want %llx", i, s.x[i], a[i]);
		CHECK(s.sp == optprobe_target_caller_sp, "sp %llx, want %llx", s.sp, optprobe_target_caller_sp);
		CHECK(s.pc == (u64)optprobe_target_args_insn, "pc %llx, want %px", s.pc, optprobe_target_args_insn);
		CHECK(s.lr == (u64)optprobe_target_call_args_ret, "lr %llx, want %px", s.lr, optprobe_target_call_args_ret);
		CHECK((s.pstate & PSR_MODE_MASK) == PSR_MODE_EL1h, "pstate mode %llx", s.pstate & PSR_MODE_MASK);
		CHECK(!(s.pstate & PSR_I_BIT), "pstate says IRQs masked: %llx", s.pstate);
	}
	pr_info("optprobe_ktest: hits: 10 calls, 10 hits, registers as expected\n");
out:
	optprobe_unregister(d.probe);
	if (!ret) {
		optprobe_target_call_args(1, 2, 3, 4, 5, 6, 7, 8);
		if (atomic_read(&s.count) != 10) {
			pr_err("optprobe_ktest: hits: FAIL: handler ran after unregister\n");
			ret = -EINVAL;
		}
	}
	return ret;
}

/* --- flags: NZCV reaches the handler and survives the trampoline --------- */

static void clobber_flags_handler(void *data, struct pt_regs *regs)
{
	u64 *nzcv = data;

	*nzcv = regs->pstate & 0xf0000000;
	/* Leave different flags behind; the trampoline must restore them. */
	asm volatile("cmn xzr, xzr" ::: "cc");
}

static int case_flags(void)
{
	static const u64 pairs[][2] = {
		{ 1, 1 }, { 1, 2 }, { 2, 1 }, { 0, 1ull << 63 }, { 1ull << 63, 1 }, { 0, 0 },
	};
	u64 handler_nzcv = ~0ull, want, got;
	struct optprobe_desc d = {
		.addr = optprobe_target_flags_insn,
		.name = "flags",
		.handler = clobber_flags_handler,
		.data = &handler_nzcv,
	};
	int ret, i;

	ret = optprobe_register(&d);
	if (ret)
		return ret;
	CHECK(optprobe_state(d.probe) == OPTPROBE_STATE_OPTIMIZED, "not optimized: %s", reason_of(d.probe));
	for (i = 0; i < ARRAY_SIZE(pairs); i++) {
		optprobe_unregister(d.probe);
		d.probe = NULL;
		want = optprobe_target_flags(pairs[i][0], pairs[i][1]);
		ret = optprobe_register(&d);
		if (ret)
			return ret;
		got = optprobe_target_flags(pairs[i][0], pairs[i][1]);
		CHECK(got == want, "cmp %llx, %llx: NZCV %llx after probe, %llx without", pairs[i][0], pairs[i][1], got, want);
		CHECK(handler_nzcv == want, "handler saw NZCV %llx, want %llx", handler_nzcv, want);
	}
	pr_info("optprobe_ktest: flags: %zu comparisons, NZCV exact in handler and after\n", ARRAY_SIZE(pairs));
out:
	if (d.probe)
		optprobe_unregister(d.probe);
	return ret;
}

/* --- fallback: each ineligible probe says why and still hits ------------- */

static void count_handler(void *data, struct pt_regs *regs)
{
	atomic_inc((atomic_t *)data);
}

static void post_handler(void *data, struct pt_regs *regs)
{
}

static int case_fallback(void)
{
	static atomic_t hits[3];
	struct optprobe_desc d[3] = {
		{ .addr = optprobe_target_args, .name = "bti", .handler = count_handler, .data = &hits[0] },
		{ .addr = optprobe_target_args_insn, .name = "post", .handler = count_handler,
		  .post_handler = post_handler, .data = &hits[1] },
		{ .addr = optprobe_target_blr_insn, .name = "blr", .handler = count_handler, .data = &hits[2] },
	};
	static const char *const want[3] = { "BTI landing pad", "post-handler", "indirect call (BLR)" };
	int ret = 0, i, registered = 0;

	for (i = 0; i < 3; i++) {
		atomic_set(&hits[i], 0);
		ret = optprobe_register(&d[i]);
		CHECK(!ret, "register %s: %d", d[i].name, ret);
		registered++;
		CHECK(optprobe_state(d[i].probe) == OPTPROBE_STATE_KPROBE, "%s optimized", d[i].name);
		CHECK(!strcmp(reason_of(d[i].probe), want[i]), "%s: reason '%s', want '%s'",
		      d[i].name, reason_of(d[i].probe), want[i]);
	}
	optprobe_target_call_args(1, 2, 3, 4, 5, 6, 7, 8);
	CHECK(optprobe_target_blr(41) == 42, "blr result changed");
	for (i = 0; i < 3; i++)
		CHECK(atomic_read(&hits[i]) == 1, "%s: %d hits", d[i].name, atomic_read(&hits[i]));
	/*
	 * The 8 bytes before a traceable function hold ftrace's ops pointer
	 * (DYNAMIC_FTRACE_WITH_CALL_OPS): data, refused outright, neither
	 * branch nor BRK. kallsyms counts them to the previous function, so
	 * kprobes accepts them (kernel_read: exported, traceable).
	 */
	for (i = 1; i <= 2; i++) {
		struct optprobe_desc lit = {
			.addr = (u32 *)kernel_read - i, .name = "literal",
			.handler = count_handler, .data = &hits[0],
		};
		int r = optprobe_register(&lit);

		if (!r)
			optprobe_unregister(lit.probe);
		CHECK(r == -EINVAL, "probe %d bytes before kernel_read: %d, want -EINVAL", 4 * i, r);
	}
	pr_info("optprobe_ktest: fallback: BTI, post-handler, BLR stay kprobes with reasons, all hit; the ftrace ops literal is refused\n");
out:
	for (i = 0; i < registered; i++)
		optprobe_unregister(d[i].probe);
	return ret;
}

/* --- backtrace: a handler's stack trace shows the function and caller ---- */

struct trace {
	unsigned long entries[24];
	unsigned int nr;
};

static void trace_handler(void *data, struct pt_regs *regs)
{
	struct trace *t = data;

	t->nr = stack_trace_save(t->entries, ARRAY_SIZE(t->entries), 0);
}

/*
 * Index of the first entry inside `func`, or -1. The target's global inner
 * labels (func_insn, func_ret, ...) symbolize in place of func itself.
 */
static int find_frame(struct trace *t, const char *func)
{
	char sym[KSYM_SYMBOL_LEN];
	size_t len = strlen(func);
	int i;

	for (i = 0; i < t->nr; i++) {
		sprint_symbol(sym, t->entries[i]);
		if (!strncmp(sym, func, len) && (sym[len] == '+' ||
		    (sym[len] == '_' && strncmp(func, "optprobe_target_", 16) == 0)))
			return i;
	}
	return -1;
}

static void dump_trace(struct trace *t)
{
	int i;

	for (i = 0; i < t->nr; i++)
		pr_info("optprobe_ktest:   #%d %pS\n", i, (void *)t->entries[i]);
}

static noinline int backtrace_one(void *addr, const char *inner, const char *outer)
{
	static struct trace t;
	struct optprobe_desc d = { .addr = addr, .name = "bt", .handler = trace_handler, .data = &t };
	int ret, a, b;

	memset(&t, 0, sizeof(t));
	ret = optprobe_register(&d);
	if (ret)
		return ret;
	CHECK(optprobe_state(d.probe) == OPTPROBE_STATE_OPTIMIZED, "not optimized: %s", reason_of(d.probe));
	optprobe_target_call_args(1, 2, 3, 4, 5, 6, 7, 8);
	a = find_frame(&t, inner);
	b = find_frame(&t, outer);
	if (a < 0 || b < 0 || b <= a) {
		dump_trace(&t);
		FAIL("trace lacks %s (%d) then %s (%d)", inner, a, outer, b);
	}
	pr_info("optprobe_ktest: backtrace: %s at #%d, %s at #%d\n", inner, a, outer, b);
out:
	optprobe_unregister(d.probe);
	return ret;
}

static int case_backtrace(void)
{
	int ret;

	/* Before the probed function's frame record exists (leaf, entry). */
	ret = backtrace_one(optprobe_target_args_insn, "optprobe_target_args", "optprobe_target_call_args");
	if (ret)
		return ret;
	/* After the prologue: the function's own record leads to its caller. */
	return backtrace_one(optprobe_target_call_args_body, "optprobe_target_call_args", "backtrace_one");
}

/* --- scale: scale_probes (default 1000) probes in one batch -------------- */

static int case_scale(void)
{
	const unsigned int nprobes = clamp_t(unsigned int, scale_probes, 1, OPTPROBE_TARGET_MANY);
	static atomic_t hits;
	struct optprobe_desc *d;
	struct optprobe **handles;
	unsigned long sm_before, sm_after;
	int ret, i, optimized = 0;
	u64 result;

	d = kvcalloc(nprobes, sizeof(*d), GFP_KERNEL);
	handles = kvcalloc(nprobes, sizeof(*handles), GFP_KERNEL);
	if (!d || !handles) {
		kvfree(d);
		kvfree(handles);
		return -ENOMEM;
	}
	atomic_set(&hits, 0);
	for (i = 0; i < nprobes; i++) {
		d[i].addr = &optprobe_target_many_insns[i];
		d[i].name = "scale";
		d[i].handler = count_handler;
		d[i].data = &hits;
	}
	sm_before = optprobe_stop_machine_count();
	ret = optprobe_register_batch(d, nprobes);
	sm_after = optprobe_stop_machine_count();
	if (ret) {
		pr_err("optprobe_ktest: scale: FAIL: register_batch %d\n", ret);
		goto free;
	}
	for (i = 0; i < nprobes; i++) {
		handles[i] = d[i].probe;
		if (optprobe_state(d[i].probe) == OPTPROBE_STATE_OPTIMIZED)
			optimized++;
		else
			CHECK(optprobe_reason(d[i].probe), "probe %d: kprobe without a reason", i);
	}
	result = optprobe_target_many(5);
	CHECK(result == 5 + OPTPROBE_TARGET_MANY, "result %llu", result);
	CHECK(atomic_read(&hits) == nprobes, "%d hits, want %d", atomic_read(&hits), nprobes);
	CHECK(optimized == nprobes, "only %d of %d optimized (first reason: %s)",
	      optimized, nprobes, reason_of(d[0].probe));
	CHECK(sm_after - sm_before <= DIV_ROUND_UP(nprobes, 256), "%lu stop_machine batches", sm_after - sm_before);
	pr_info("optprobe_ktest: scale: %d probes, %d optimized, %lu stop_machine batches, %d hits\n",
		nprobes, optimized, sm_after - sm_before, atomic_read(&hits));
out:
	sm_before = optprobe_stop_machine_count();
	optprobe_unregister_batch(handles, nprobes);
	pr_info("optprobe_ktest: scale: unregistered with %lu stop_machine batches\n",
		optprobe_stop_machine_count() - sm_before);
free:
	kvfree(d);
	kvfree(handles);
	return ret;
}

/* --- races: attach/detach while 4 CPUs call the target -------------------- */

/* A kthread calling one probed target function until stopped. */
struct worker {
	struct task_struct *task;
	u64 (*target)(u64 x);
	u64 calls;
};

static int worker_loop(void *data)
{
	struct worker *w = data;

	while (!kthread_should_stop()) {
		w->target(w->calls);
		w->calls++;
		/*
		 * Sleep now and then: with CONFIG_PREEMPT, cond_resched() is a
		 * no-op, and a task that never switches voluntarily holds off
		 * RCU-tasks (and so every unregister) for as long as it runs.
		 */
		if (!(w->calls & 63))
			usleep_range(20, 50);
	}
	return 0;
}

static u64 call_args_once(u64 x)
{
	return optprobe_target_call_args(x, 2, 3, 4, 5, 6, 7, 8);
}

static int case_races(void)
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

static int case_torture(void)
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

/* --- coexist: a kernel kprobe and an optprobe on the same address --------- */

static atomic_t kp_hits;

static int kp_pre(struct kprobe *p, struct pt_regs *regs)
{
	atomic_inc(&kp_hits);
	return 0;
}

static int coexist_order(bool kprobe_first)
{
	static atomic_t op_hits;
	struct kprobe kp = { .addr = (kprobe_opcode_t *)optprobe_target_args_insn, .pre_handler = kp_pre };
	struct optprobe_desc d = {
		.addr = optprobe_target_args_insn, .name = "coexist",
		.handler = count_handler, .data = &op_hits,
	};
	int ret = 0, i, have_kp = 0, have_op = 0;

	atomic_set(&kp_hits, 0);
	atomic_set(&op_hits, 0);
	for (i = 0; i < 2; i++) {
		if (kprobe_first == (i == 0)) {
			ret = register_kprobe(&kp);
			CHECK(!ret, "register_kprobe %d", ret);
			have_kp = 1;
		} else {
			ret = optprobe_register(&d);
			CHECK(!ret, "optprobe_register %d", ret);
			have_op = 1;
		}
	}
	CHECK(optprobe_state(d.probe) == OPTPROBE_STATE_OPTIMIZED, "not optimized: %s", reason_of(d.probe));
	for (i = 0; i < 5; i++)
		optprobe_target_call_args(1, 2, 3, 4, 5, 6, 7, 8);
	CHECK(atomic_read(&kp_hits) == 5 && atomic_read(&op_hits) == 5,
	      "kprobe %d hits, optprobe %d hits, want 5 and 5", atomic_read(&kp_hits), atomic_read(&op_hits));
	/* Remove in the other order; the remaining one keeps working. */
	if (kprobe_first) {
		unregister_kprobe(&kp);
		have_kp = 0;
		optprobe_target_call_args(1, 2, 3, 4, 5, 6, 7, 8);
		CHECK(atomic_read(&op_hits) == 6, "optprobe alone: %d hits", atomic_read(&op_hits));
	} else {
		optprobe_unregister(d.probe);
		have_op = 0;
		optprobe_target_call_args(1, 2, 3, 4, 5, 6, 7, 8);
		CHECK(atomic_read(&kp_hits) == 6, "kprobe alone: %d hits", atomic_read(&kp_hits));
	}
	pr_info("optprobe_ktest: coexist (%s first): both handlers ran\n", kprobe_first ? "kprobe" : "optprobe");
out:
	if (have_kp)
		unregister_kprobe(&kp);
	if (have_op)
		optprobe_unregister(d.probe);
	return ret;
}

static int case_coexist(void)
{
	int ret = coexist_order(true);

	return ret ? ret : coexist_order(false);
}

/* --- reloc: every PC-relative class, unprobed vs BRK kprobe vs optprobe --- */

static const u64 reloc_inputs[][2] = {
	{ 0, 0 }, { 1, 2 }, { 2, 1 }, { 5, 5 }, { 1ull << 63, 1 }, { 1, 1ull << 63 },
	{ 0x7fffffffffffffffull, ~0ull }, { ~0ull, 0x7fffffffffffffffull }, { 8, 0 }, { 0x80000000ull, 3 },
};
#define RELOC_INPUTS ARRAY_SIZE(reloc_inputs)

static atomic_t reloc_kp_hits;

static int reloc_kp_pre(struct kprobe *p, struct pt_regs *regs)
{
	atomic_inc(&reloc_kp_hits);
	return 0;
}

/* Run every input once; record results and, for BL, the callee's x30. */
static void reloc_run(const struct optprobe_reloc_case *c, u64 *out, u64 *lr)
{
	int i;

	for (i = 0; i < RELOC_INPUTS; i++) {
		optprobe_reloc_seen_lr = 0;
		if (c->flags & OPTPROBE_RELOC_FP) {
			kernel_neon_begin();
			out[i] = c->fn(reloc_inputs[i][0], reloc_inputs[i][1]);
			kernel_neon_end();
		} else {
			out[i] = c->fn(reloc_inputs[i][0], reloc_inputs[i][1]);
		}
		lr[i] = optprobe_reloc_seen_lr;
	}
}

static int case_reloc(void)
{
	static atomic_t op_hits;
	u64 plain[RELOC_INPUTS], brk[RELOC_INPUTS], opt[RELOC_INPUTS];
	u64 lr_plain[RELOC_INPUTS], lr_brk[RELOC_INPUTS], lr_opt[RELOC_INPUTS];
	int ret = 0, n, i, optimized = 0, brk_differs = 0;

	for (n = 0; n < optprobe_reloc_ncases; n++) {
		const struct optprobe_reloc_case *c = &optprobe_reloc_cases[n];
		struct kprobe kp = { .addr = (kprobe_opcode_t *)c->insn, .pre_handler = reloc_kp_pre };
		struct optprobe_desc d = {
			.addr = c->insn, .name = "reloc", .handler = count_handler, .data = &op_hits,
		};
		bool have_brk;

		reloc_run(c, plain, lr_plain);

		atomic_set(&reloc_kp_hits, 0);
		have_brk = register_kprobe(&kp) == 0;
		if (have_brk) {
			reloc_run(c, brk, lr_brk);
			unregister_kprobe(&kp);
		}

		atomic_set(&op_hits, 0);
		ret = optprobe_register(&d);
		CHECK(!ret, "%s: optprobe_register %d", c->name, ret);
		if (optprobe_state(d.probe) == OPTPROBE_STATE_OPTIMIZED)
			optimized++;
		else
			pr_err("optprobe_ktest: reloc: %s not optimized: %s\n", c->name, reason_of(d.probe));
		reloc_run(c, opt, lr_opt);
		optprobe_unregister(d.probe);

		CHECK(atomic_read(&op_hits) == RELOC_INPUTS, "%s: optprobe %d hits", c->name, atomic_read(&op_hits));
		for (i = 0; i < RELOC_INPUTS; i++) {
			CHECK(opt[i] == plain[i], "%s(%llx, %llx): optprobe %llx, unprobed %llx", c->name,
			      reloc_inputs[i][0], reloc_inputs[i][1], opt[i], plain[i]);
			CHECK(lr_opt[i] == lr_plain[i], "%s: callee saw x30 %llx, unprobed %llx",
			      c->name, lr_opt[i], lr_plain[i]);
			if (have_brk && brk[i] != plain[i])
				brk_differs++;
		}
		if (c->flags & OPTPROBE_RELOC_BL)
			CHECK(lr_plain[0] == (u64)(c->insn + 1), "%s: x30 %llx, want insn + 4", c->name, lr_plain[0]);
		if (have_brk && brk_differs)
			pr_info("optprobe_ktest: reloc: note: %s under a BRK kprobe differs from unprobed (mainline steps it out of line)\n",
				c->name);
		brk_differs = 0;
		if (!have_brk)
			pr_info("optprobe_ktest: reloc: %s: kprobes refused a plain kprobe here\n", c->name);
	}
	CHECK(optimized == optprobe_reloc_ncases, "%d of %u optimized", optimized, optprobe_reloc_ncases);
	pr_info("optprobe_ktest: reloc: %u PC-relative functions x %zu inputs: all optimized, results identical to unprobed\n",
		optprobe_reloc_ncases, RELOC_INPUTS);
out:
	return ret;
}

/* --- cost: per-hit overhead, unprobed vs BRK kprobe vs optprobe ---------- */

static atomic_t cost_hits;

static int cost_kp_pre(struct kprobe *p, struct pt_regs *regs)
{
	atomic_inc(&cost_hits);
	return 0;
}

/* Best of three timed runs of `calls` calls, in ns. */
static u64 time_calls(void)
{
	u64 best = U64_MAX, t;
	unsigned int i, run;

	for (run = 0; run < 3; run++) {
		t = ktime_get_ns();
		for (i = 0; i < calls; i++)
			optprobe_target_call_args(i, 2, 3, 4, 5, 6, 7, 8);
		t = ktime_get_ns() - t;
		best = min(best, t);
	}
	return best;
}

static int case_cost(void)
{
	struct kprobe kp = { .addr = (kprobe_opcode_t *)optprobe_target_args_insn, .pre_handler = cost_kp_pre };
	struct optprobe_desc d = {
		.addr = optprobe_target_args_insn, .name = "cost",
		.handler = count_handler, .data = &cost_hits,
	};
	u64 base, t_kp, t_op;
	s64 d_kp, d_op;
	int ret;

	if (!calls)
		return -EINVAL;
	base = time_calls();
	ret = register_kprobe(&kp);
	if (ret)
		return ret;
	t_kp = time_calls();
	unregister_kprobe(&kp);
	ret = optprobe_register(&d);
	if (ret)
		return ret;
	if (optprobe_state(d.probe) != OPTPROBE_STATE_OPTIMIZED)
		pr_warn("optprobe_ktest: cost: probe not optimized: %s\n", reason_of(d.probe));
	t_op = time_calls();
	optprobe_unregister(d.probe);
	/* Per call, in tenths of a nanosecond for one decimal. */
	base = div_u64(base * 10, calls);
	t_kp = div_u64(t_kp * 10, calls);
	t_op = div_u64(t_op * 10, calls);
	d_kp = (s64)t_kp - (s64)base;
	d_op = (s64)t_op - (s64)base;
	pr_info("optprobe_ktest: cost: %u calls x3, best run: unprobed %llu.%llu ns/call, kprobe %+lld.%lld ns, optprobe %+lld.%lld ns\n",
		calls, base / 10, base % 10, d_kp / 10, abs(d_kp % 10), d_op / 10, abs(d_op % 10));
	if (d_op > 0 && d_kp > 0)
		pr_info("optprobe_ktest: cost: optprobe overhead is 1/%lld.%lld of kprobe overhead\n",
			div64_s64(d_kp * 10, d_op) / 10, div64_s64(d_kp * 10, d_op) % 10);
	return 0;
}

/* --- call: drive the target from shell tests ------------------------------ */

static int case_call(void)
{
	unsigned int i;

	for (i = 0; i < calls; i++)
		optprobe_target_call_args(i, 2, 3, 4, 5, 6, 7, 8);
	return 0;
}

static const struct {
	const char *name;
	int (*run)(void);
} cases[] = {
	{ "hits", case_hits },
	{ "flags", case_flags },
	{ "fallback", case_fallback },
	{ "backtrace", case_backtrace },
	{ "scale", case_scale },
	{ "races", case_races },
	{ "torture", case_torture },
	{ "coexist", case_coexist },
	{ "call", case_call },
	{ "cost", case_cost },
	{ "reloc", case_reloc },
};

static int __init ktest_init(void)
{
	int i, ret;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		if (strcmp(test_case, cases[i].name))
			continue;
		ret = cases[i].run();
		if (ret) {
			pr_err("optprobe_ktest: %s: failed (%d)\n", test_case, ret);
			return -EINVAL;
		}
		pr_info("optprobe_ktest: %s: passed\n", test_case);
		return 0;
	}
	pr_err("optprobe_ktest: unknown case '%s'\n", test_case);
	return -EINVAL;
}

static void __exit ktest_exit(void)
{
}

module_init(ktest_init);
module_exit(ktest_exit);
MODULE_DESCRIPTION("optprobe in-kernel tests");
MODULE_LICENSE("GPL");
