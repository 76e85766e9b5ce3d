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

/* Global and noinline: the floor stubs below call it too. */
void optprobe_bench_op_handler(void *data, struct pt_regs *regs);
noinline void optprobe_bench_op_handler(void *data, struct pt_regs *regs) { count_hit(); }
static int kp_handler(struct kprobe *p, struct pt_regs *regs) { count_hit(); return 0; }
static void ftrace_handler(unsigned long ip, unsigned long parent_ip,
			   struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	count_hit();
}

/* Nanoseconds for n calls of fn(i), results summed into sink. */
#define TIME_CALLS(n, fn) ({						\
	u64 _t0 = ktime_get_ns(), _acc = 0;				\
	unsigned int _i;						\
									\
	for (_i = 0; _i < (n); _i++)					\
		_acc += fn(_i);						\
	WRITE_ONCE(sink, _acc);						\
	ktime_get_ns() - _t0;						\
})

/* The probed function: C, noinline, with an ftrace patch site. */
static noinline u64 run_calls(unsigned int n)
{
	return TIME_CALLS(n, optprobe_target_work);
}

/*
 * The floor of any design that hands handlers a full pt_regs, in three
 * stubs timed against a bare call (all four called the same way, through a
 * function pointer, so the call and return cancel out):
 *   optprobe_bench_floor       save and restore all 31 general registers,
 *                              nothing else: what the pt_regs contract
 *                              alone costs here;
 *   optprobe_bench_floor_call  the same around a call of the bench
 *                              handler with (NULL, regs): the cheapest an
 *                              optprobe hit can be, with no kprobes
 *                              semantics at all (no current_kprobe, status,
 *                              preemption, checks or counting);
 *   optprobe_bench_handler_call  the handler called with a frame record
 *                              and nothing saved: the handler's own cost,
 *                              which every mechanism pays alike.
 */
u64 optprobe_bench_floor(u64 x);
u64 optprobe_bench_floor_call(u64 x);
u64 optprobe_bench_handler_call(u64 x);
u64 optprobe_bench_bare(u64 x);

#define BENCH_SAVE31							\
	"	stp	x0, x1, [sp, #0]\n	stp	x2, x3, [sp, #16]\n"		\
	"	stp	x4, x5, [sp, #32]\n	stp	x6, x7, [sp, #48]\n"		\
	"	stp	x8, x9, [sp, #64]\n	stp	x10, x11, [sp, #80]\n"	\
	"	stp	x12, x13, [sp, #96]\n	stp	x14, x15, [sp, #112]\n"	\
	"	stp	x16, x17, [sp, #128]\n	stp	x18, x19, [sp, #144]\n"	\
	"	stp	x20, x21, [sp, #160]\n	stp	x22, x23, [sp, #176]\n"	\
	"	stp	x24, x25, [sp, #192]\n	stp	x26, x27, [sp, #208]\n"	\
	"	stp	x28, x29, [sp, #224]\n	str	x30, [sp, #240]\n"
#define BENCH_RESTORE31							\
	"	ldp	x0, x1, [sp, #0]\n	ldp	x2, x3, [sp, #16]\n"		\
	"	ldp	x4, x5, [sp, #32]\n	ldp	x6, x7, [sp, #48]\n"		\
	"	ldp	x8, x9, [sp, #64]\n	ldp	x10, x11, [sp, #80]\n"	\
	"	ldp	x12, x13, [sp, #96]\n	ldp	x14, x15, [sp, #112]\n"	\
	"	ldp	x16, x17, [sp, #128]\n	ldp	x18, x19, [sp, #144]\n"	\
	"	ldp	x20, x21, [sp, #160]\n	ldp	x22, x23, [sp, #176]\n"	\
	"	ldp	x24, x25, [sp, #192]\n	ldp	x26, x27, [sp, #208]\n"	\
	"	ldp	x28, x29, [sp, #224]\n	ldr	x30, [sp, #240]\n"
asm(".pushsection .text, \"ax\"\n"
    ".balign 8\n"
    ".globl optprobe_bench_floor\n"
    "optprobe_bench_floor:\n"
    "	bti	c\n"
    "	sub	sp, sp, #256\n"
    BENCH_SAVE31
    BENCH_RESTORE31
    "	add	sp, sp, #256\n"
    "	ret\n"
    ".globl optprobe_bench_floor_call\n"
    "optprobe_bench_floor_call:\n"
    "	bti	c\n"
    "	sub	sp, sp, #256\n"
    BENCH_SAVE31
    "	mov	x0, xzr\n"
    "	mov	x1, sp\n"
    "	bl	optprobe_bench_op_handler\n"
    BENCH_RESTORE31
    "	add	sp, sp, #256\n"
    "	ret\n"
    ".globl optprobe_bench_handler_call\n"
    "optprobe_bench_handler_call:\n"
    "	bti	c\n"
    "	stp	x29, x30, [sp, #-16]!\n"
    "	mov	x29, sp\n"
    "	mov	x0, xzr\n"
    "	mov	x1, xzr\n"
    "	bl	optprobe_bench_op_handler\n"
    "	ldp	x29, x30, [sp], #16\n"
    "	ret\n"
    ".globl optprobe_bench_bare\n"
    "optprobe_bench_bare:\n"
    "	bti	c\n"
    "	ret\n"
    ".popsection\n");

static noinline u64 run_stub(u64 (*stub)(u64), unsigned int n)
{
	return TIME_CALLS(n, stub);
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

/* Median, min and max of n samples (sorted in place). */
static struct timing summarize(u64 *t, unsigned int n)
{
	struct timing out;

	sort(t, n, sizeof(t[0]), cmp_u64, NULL);
	out.median = t[n / 2];
	out.min = t[0];
	out.max = t[n - 1];
	return out;
}

static void report(const char *name, unsigned int cpus, unsigned int n, struct timing t, u64 base)
{
	s64 over = (s64)t.median - (s64)base;

	pr_info("optprobe_bench: RESULT hit case=%s cpus=%u calls=%u repeats=%u median_ns=%llu.%llu min_ns=%llu.%llu max_ns=%llu.%llu overhead_ns=%s%lld.%lld\n",
		name, cpus, n, n == calls && cpus == 1 ? repeats : 3,
		t.median / 10, t.median % 10, t.min / 10, t.min % 10, t.max / 10, t.max % 10,
		over < 0 ? "-" : "", abs(over) / 10, abs(over) % 10);
}

/* --- attach/detach helpers for each mechanism --------------------------- */

/*
 * KPROBE_SYM0, OPT_SYM0: at the function's first instruction, sym+0 ("bti c"
 * on a BTI kernel): a BRK kprobe there, and an optprobe, which a BTI kernel
 * delivers through ftrace (the entry-probe row, against FTRACE: a bare
 * ftrace callback on the same function).
 */
enum mech { NONE, KPROBE, OPT_ENTRY, OPT_MID, FTRACE, KPROBE_SYM0, OPT_SYM0 };
static const char *const mech_name[] = { "unprobed", "kprobe", "optprobe", "optprobe_mid", "ftrace",
					 "kprobe_sym0", "optprobe_sym0" };

static struct kprobe bench_kp;

/*
 * Every stop_machine() in the system while registration runs: a counting
 * kprobe on stop_machine_cpuslocked(), which stop_machine() and text
 * patching both go through.
 */
static atomic_long_t stop_machine_calls;
static int count_stop_machine(struct kprobe *p, struct pt_regs *regs)
{
	atomic_long_inc(&stop_machine_calls);
	return 0;
}
static struct kprobe stop_machine_kp = {
	.symbol_name = "stop_machine_cpuslocked",
	.pre_handler = count_stop_machine,
};
static struct optprobe_desc bench_desc;
static struct ftrace_ops bench_ops = { .func = ftrace_handler };

static int attach(enum mech m, u32 *entry)
{
	int ret = 0;

	switch (m) {
	case NONE:
		break;
	case KPROBE:
	case KPROBE_SYM0:
		memset(&bench_kp, 0, sizeof(bench_kp));
		bench_kp.addr = m == KPROBE ? (kprobe_opcode_t *)entry : (kprobe_opcode_t *)optprobe_target_work;
		bench_kp.pre_handler = kp_handler;
		ret = register_kprobe(&bench_kp);
		break;
	case OPT_ENTRY:
	case OPT_MID:
	case OPT_SYM0:
		memset(&bench_desc, 0, sizeof(bench_desc));
		bench_desc.addr = m == OPT_ENTRY ? entry : m == OPT_MID ? entry + 2 : (void *)optprobe_target_work;
		bench_desc.name = "bench";
		bench_desc.handler = optprobe_bench_op_handler;
		ret = optprobe_register(&bench_desc);
		if (!ret && optprobe_state(bench_desc.probe) != OPTPROBE_STATE_OPTIMIZED &&
		    optprobe_state(bench_desc.probe) != OPTPROBE_STATE_FTRACE)
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
	case KPROBE_SYM0:
		unregister_kprobe(&bench_kp);
		break;
	case OPT_ENTRY:
	case OPT_MID:
	case OPT_SYM0:
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
	long sm0, sm1, sm2;
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
		d[i].handler = optprobe_bench_op_handler;
	}
	optprobe_get_stats(&before);
	sm0 = atomic_long_read(&stop_machine_calls);
	t0 = ktime_get_ns();
	ret = optprobe_register_batch(d, n);
	t_reg = ktime_get_ns() - t0;
	if (ret)
		goto out;
	sm1 = atomic_long_read(&stop_machine_calls);
	optprobe_get_stats(&mid);
	for (i = 0; i < n; i++)
		handles[i] = d[i].probe;
	t0 = ktime_get_ns();
	optprobe_unregister_batch(handles, n);
	t_unreg = ktime_get_ns() - t0;
	sm2 = atomic_long_read(&stop_machine_calls);
	optprobe_get_stats(&after);
	pr_info("optprobe_bench: RESULT reg probes=%u optimized=%lu register_ms=%llu stop_machine_register=%lu unregister_ms=%llu stop_machine_unregister=%lu pages=%lu system_stop_machine_register=%ld system_stop_machine_unregister=%ld\n",
		n, mid.optimized - before.optimized, div_u64(t_reg, 1000000),
		mid.stop_machine_calls - before.stop_machine_calls, div_u64(t_unreg, 1000000),
		after.stop_machine_calls - mid.stop_machine_calls,
		mid.trampoline_pages - before.trampoline_pages, sm1 - sm0, sm2 - sm1);
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
	static u64 samples[ARRAY_SIZE(mech_name)][MAX_REPEATS], stub_samples[4][MAX_REPEATS];
	u64 (*volatile stub[4])(u64) = { optprobe_bench_bare, optprobe_bench_floor,
					 optprobe_bench_floor_call, optprobe_bench_handler_call };
	u32 *entry = body_start(optprobe_target_work);
	unsigned int cpus, i, r, nrep;
	u64 base;
	int m, ret;

	if (!entry || !calls) {
		pr_err("optprobe_bench: no body start in optprobe_target_work\n");
		return -EINVAL;
	}
	pr_info("optprobe_bench: target optprobe_target_work, entry probe at %pS, mid at %pS\n",
		entry, entry + 2);

	/*
	 * Interleaved: run r of every case, then run r + 1 of every case, so a
	 * drift of the host (QEMU shares 2 cores) spreads over all cases alike
	 * instead of landing on one.
	 */
	nrep = clamp(repeats, 1u, (unsigned int)MAX_REPEATS);
	for (r = 0; r < nrep; r++) {
		for (m = NONE; m <= OPT_SYM0; m++) {
			ret = attach(m, entry);
			if (ret)
				return ret;
			samples[m][r] = div_u64(run_calls(calls) * 10, calls);
			detach(m);
		}
		/* The floor stubs (see optprobe_bench_floor), in the same round. */
		for (i = 0; i < ARRAY_SIZE(stub); i++)
			stub_samples[i][r] = div_u64(run_stub(stub[i], calls) * 10, calls);
	}
	for (m = NONE; m <= OPT_SYM0; m++)
		t[m] = summarize(samples[m], nrep);
	base = t[NONE].median;
	for (m = NONE; m <= OPT_SYM0; m++)
		report(mech_name[m], 1, calls, t[m], base);
	/* The floor stubs' overheads over the bare call. */
	{
		struct timing st[ARRAY_SIZE(stub)];
		s64 over[ARRAY_SIZE(stub)];

		for (i = 0; i < ARRAY_SIZE(stub); i++) {
			st[i] = summarize(stub_samples[i], nrep);
			over[i] = (s64)st[i].median - (s64)st[0].median;
		}
#define TENTHS(v) (v) < 0 ? "-" : "", abs(v) / 10, abs(v) % 10
		pr_info("optprobe_bench: RESULT floor ptregs_ns=%s%lld.%lld ptregs_call_ns=%s%lld.%lld handler_call_ns=%s%lld.%lld bare_call_ns=%llu.%llu\n",
			TENTHS(over[1]), TENTHS(over[2]), TENTHS(over[3]), st[0].median / 10, st[0].median % 10);
#undef TENTHS
	}

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

	if (register_kprobe(&stop_machine_kp))
		pr_warn("optprobe_bench: cannot count stop_machine calls system-wide\n");
	ret = 0;
	for (i = 0; i < ARRAY_SIZE(sizes) && sizes[i] <= reg_max; i++) {
		ret = bench_registration(sizes[i]);
		if (ret)
			break;
	}
	if (stop_machine_kp.addr)
		unregister_kprobe(&stop_machine_kp);
	if (ret)
		return ret;
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
