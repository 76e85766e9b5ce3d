// SPDX-License-Identifier: GPL-2.0
/*
 * optprobe_bench: per-hit cost of an optprobe against a BRK kprobe and an
 * ftrace callback, multi-CPU scaling, registration cost and memory. Runs at
 * insmod and prints "optprobe_bench: RESULT ..." lines that scripts/bench
 * turns into a table, a CSV and a chart.
 *
 *   insmod optprobe_bench.ko [calls=1000000] [repeats=7] [scale_calls=200000]
 *                            [reg_max=1024]
 *
 * Every handler does the same trivial work: one per-CPU counter increment.
 */
#include <linux/completion.h>
#include <linux/cpumask.h>
#include <linux/delay.h>
#include <linux/ftrace.h>
#include <linux/kprobes.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include "../include/optprobe.h"
#include "target.h"

static unsigned int calls = 1000000;
module_param(calls, uint, 0);
static unsigned int repeats = 7;
module_param(repeats, uint, 0);
static unsigned int scale_calls = 200000;
module_param(scale_calls, uint, 0);
static unsigned int reg_max = 1024;
module_param(reg_max, uint, 0);

#define MAX_REPEATS 15

static DEFINE_PER_CPU(u64, bench_hits);
static u64 sink;

static void count_hit(void)
{
	this_cpu_inc(bench_hits);
}

static void op_handler(void *data, struct pt_regs *regs) { count_hit(); }
static int kp_handler(struct kprobe *p, struct pt_regs *regs) { count_hit(); return 0; }
static void ftrace_handler(unsigned long ip, unsigned long parent_ip,
			   struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	count_hit();
}

/* The probed function: C, noinline, with an ftrace patch site. */
static noinline u64 run_calls(unsigned int n)
{
	u64 t0, acc = 0;
	unsigned int i;

	t0 = ktime_get_ns();
	for (i = 0; i < n; i++)
		acc += optprobe_target_work(i);
	WRITE_ONCE(sink, acc);
	return ktime_get_ns() - t0;
}

/* First instruction of a function's body: after BTI/PAC pads and ftrace nops. */
static u32 *body_start(void *func)
{
	u32 *p = func;
	int i;

	for (i = 0; i < 8; i++, p++) {
		u32 w = le32_to_cpu(*p);

		if (w != 0xd503245f && w != 0xd503201f && w != 0xd503233f &&
		    w != 0xd503237f && w != 0xaa1e03e9)
			return p;
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

struct timing {
	u64 median, min, max;	/* tenths of a nanosecond per call */
};

static struct timing time_case(void)
{
	u64 t[MAX_REPEATS];
	unsigned int r, n = clamp(repeats, 1u, (unsigned int)MAX_REPEATS);
	struct timing out;

	for (r = 0; r < n; r++)
		t[r] = div_u64(run_calls(calls) * 10, calls);
	sort(t, n, sizeof(t[0]), cmp_u64, NULL);
	out.median = t[n / 2];
	out.min = t[0];
	out.max = t[n - 1];
	return out;
}

static void report(const char *name, unsigned int cpus, unsigned int n, struct timing t, u64 base)
{
	s64 over = (s64)t.median - (s64)base;

	pr_info("optprobe_bench: RESULT hit case=%s cpus=%u calls=%u repeats=%u median_ns=%llu.%llu min_ns=%llu.%llu max_ns=%llu.%llu overhead_ns=%lld.%lld\n",
		name, cpus, n, n == calls && cpus == 1 ? repeats : 3,
		t.median / 10, t.median % 10, t.min / 10, t.min % 10, t.max / 10, t.max % 10,
		over / 10, abs(over % 10));
}

/* --- attach/detach helpers for each mechanism --------------------------- */

enum mech { NONE, KPROBE, OPT_ENTRY, OPT_MID, FTRACE };
static const char *const mech_name[] = { "unprobed", "kprobe", "optprobe", "optprobe_mid", "ftrace" };

static struct kprobe bench_kp;
static struct optprobe_desc bench_desc;
static struct ftrace_ops bench_ops = { .func = ftrace_handler };

static int attach(enum mech m, u32 *entry)
{
	int ret = 0;

	switch (m) {
	case NONE:
		break;
	case KPROBE:
		memset(&bench_kp, 0, sizeof(bench_kp));
		bench_kp.addr = (kprobe_opcode_t *)entry;
		bench_kp.pre_handler = kp_handler;
		ret = register_kprobe(&bench_kp);
		break;
	case OPT_ENTRY:
	case OPT_MID:
		memset(&bench_desc, 0, sizeof(bench_desc));
		bench_desc.addr = m == OPT_ENTRY ? entry : entry + 2;
		bench_desc.name = "bench";
		bench_desc.handler = op_handler;
		ret = optprobe_register(&bench_desc);
		if (!ret && optprobe_state(bench_desc.probe) != OPTPROBE_STATE_OPTIMIZED)
			pr_warn("optprobe_bench: %s not optimized: %s\n", mech_name[m],
				optprobe_reason(bench_desc.probe));
		break;
	case FTRACE:
		ret = ftrace_set_filter_ip(&bench_ops, (unsigned long)optprobe_target_work, 0, 0);
		if (!ret)
			ret = register_ftrace_function(&bench_ops);
		break;
	}
	if (ret)
		pr_err("optprobe_bench: attach %s failed: %d\n", mech_name[m], ret);
	return ret;
}

static void detach(enum mech m)
{
	switch (m) {
	case NONE:
		break;
	case KPROBE:
		unregister_kprobe(&bench_kp);
		break;
	case OPT_ENTRY:
	case OPT_MID:
		optprobe_unregister(bench_desc.probe);
		break;
	case FTRACE:
		unregister_ftrace_function(&bench_ops);
		ftrace_set_filter_ip(&bench_ops, (unsigned long)optprobe_target_work, 1, 0);
		break;
	}
}

/* --- multi-CPU: N kthreads, one per CPU, start together ------------------ */

struct scale_run {
	atomic_t ready, done;
	struct completion all_done;
	bool go;
};

static int scale_worker(void *data)
{
	struct scale_run *run = data;

	atomic_inc(&run->ready);
	while (!READ_ONCE(run->go))
		cpu_relax();
	run_calls(scale_calls);
	if (atomic_dec_and_test(&run->done))
		complete(&run->all_done);
	while (!kthread_should_stop())
		schedule_timeout_interruptible(1);
	return 0;
}

/* Wall time per call (tenths of ns) with `cpus` CPUs calling at once. */
static u64 time_scaled(unsigned int cpus)
{
	struct task_struct *tasks[8];
	struct scale_run run;
	unsigned int i;
	u64 t0, wall;

	atomic_set(&run.ready, 0);
	atomic_set(&run.done, cpus);
	init_completion(&run.all_done);
	run.go = false;
	for (i = 0; i < cpus; i++) {
		tasks[i] = kthread_create(scale_worker, &run, "optprobe_bench/%u", i);
		if (IS_ERR(tasks[i]))
			return 0;
		kthread_bind(tasks[i], i);
		wake_up_process(tasks[i]);
	}
	while (atomic_read(&run.ready) < cpus)
		msleep(1);
	t0 = ktime_get_ns();
	WRITE_ONCE(run.go, true);
	wait_for_completion(&run.all_done);
	wall = ktime_get_ns() - t0;
	for (i = 0; i < cpus; i++)
		kthread_stop(tasks[i]);
	return div_u64(wall * 10, scale_calls);
}

static struct timing time_scaled_repeats(unsigned int cpus)
{
	u64 t[3];
	struct timing out;
	int r;

	for (r = 0; r < 3; r++)
		t[r] = time_scaled(cpus);
	sort(t, 3, sizeof(t[0]), cmp_u64, NULL);
	out.median = t[1];
	out.min = t[0];
	out.max = t[2];
	return out;
}

/* --- registration cost ---------------------------------------------------- */

static int bench_registration(unsigned int n)
{
	struct optprobe_desc *d;
	struct optprobe **handles;
	struct optprobe_stats before, after, mid;
	u64 t0, t_reg, t_unreg;
	unsigned int i;
	int ret;

	d = kvcalloc(n, sizeof(*d), GFP_KERNEL);
	handles = kvcalloc(n, sizeof(*handles), GFP_KERNEL);
	if (!d || !handles) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		d[i].addr = &optprobe_target_many_insns[i];
		d[i].name = "bench_reg";
		d[i].handler = op_handler;
	}
	optprobe_get_stats(&before);
	t0 = ktime_get_ns();
	ret = optprobe_register_batch(d, n);
	t_reg = ktime_get_ns() - t0;
	if (ret)
		goto out;
	optprobe_get_stats(&mid);
	for (i = 0; i < n; i++)
		handles[i] = d[i].probe;
	t0 = ktime_get_ns();
	optprobe_unregister_batch(handles, n);
	t_unreg = ktime_get_ns() - t0;
	optprobe_get_stats(&after);
	pr_info("optprobe_bench: RESULT reg probes=%u optimized=%lu register_ms=%llu stop_machine_register=%lu unregister_ms=%llu stop_machine_unregister=%lu pages=%lu\n",
		n, mid.optimized - before.optimized, div_u64(t_reg, 1000000),
		mid.stop_machine_calls - before.stop_machine_calls, div_u64(t_unreg, 1000000),
		after.stop_machine_calls - mid.stop_machine_calls,
		mid.trampoline_pages - before.trampoline_pages);
	if (n == reg_max)
		pr_info("optprobe_bench: RESULT mem slot_bytes=%u template_bytes=%u probe_struct_bytes=%u pages_for_%u=%lu\n",
			mid.slot_bytes, mid.template_bytes, mid.probe_bytes, n,
			mid.trampoline_pages - before.trampoline_pages);
out:
	kvfree(d);
	kvfree(handles);
	return ret;
}

static int __init bench_init(void)
{
	static const unsigned int sizes[] = { 1, 64, 1024 };
	struct timing t[ARRAY_SIZE(mech_name)];
	u32 *entry = body_start(optprobe_target_work);
	unsigned int cpus, i;
	u64 base;
	int m, ret;

	if (!entry || !calls) {
		pr_err("optprobe_bench: no body start in optprobe_target_work\n");
		return -EINVAL;
	}
	pr_info("optprobe_bench: target optprobe_target_work, entry probe at %pS, mid at %pS\n",
		entry, entry + 2);

	for (m = NONE; m <= FTRACE; m++) {
		ret = attach(m, entry);
		if (ret)
			return ret;
		t[m] = time_case();
		detach(m);
	}
	base = t[NONE].median;
	for (m = NONE; m <= FTRACE; m++)
		report(mech_name[m], 1, calls, t[m], base);

	for (cpus = 1; cpus <= min(4u, num_online_cpus()); cpus *= 2) {
		struct timing plain, kp, op;

		plain = time_scaled_repeats(cpus);
		if (attach(KPROBE, entry))
			return -EINVAL;
		kp = time_scaled_repeats(cpus);
		detach(KPROBE);
		if (attach(OPT_ENTRY, entry))
			return -EINVAL;
		op = time_scaled_repeats(cpus);
		detach(OPT_ENTRY);
		report("unprobed", cpus, scale_calls, plain, plain.median);
		report("kprobe", cpus, scale_calls, kp, plain.median);
		report("optprobe", cpus, scale_calls, op, plain.median);
	}

	for (i = 0; i < ARRAY_SIZE(sizes) && sizes[i] <= reg_max; i++) {
		ret = bench_registration(sizes[i]);
		if (ret)
			return ret;
	}
	pr_info("optprobe_bench: done\n");
	return 0;
}

static void __exit bench_exit(void)
{
}

module_init(bench_init);
module_exit(bench_exit);
MODULE_DESCRIPTION("optprobe benchmark");
MODULE_LICENSE("GPL");
