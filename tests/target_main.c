// SPDX-License-Identifier: GPL-2.0
/*
 * optprobe_target: functions for the tests to probe. Loaded and unloaded by
 * the kselftests, including while probes are attached to it.
 */
#include <linux/error-injection.h>
#include <linux/module.h>
#include <linux/compiler.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/moduleparam.h>
#include <linux/sysfs.h>
#include <linux/ktime.h>
#include "target.h"

/* spin=N: N kthreads call optprobe_target_work() nonstop until unload. */
static unsigned int spin;
module_param(spin, uint, 0);
MODULE_PARM_DESC(spin, "kthreads calling optprobe_target_work until unload (0-8)");
static struct task_struct *spinners[8];

/* A C function for workloads: small, not inlined, with a real prologue. */
noinline u64 optprobe_target_work(u64 x)
{
	x = x * 2654435761u + 1;
	barrier();
	return x ^ (x >> 7);
}

EXPORT_SYMBOL_GPL(optprobe_target_work);

/* The same work under another name, which nothing but ktest context calls. */
noinline u64 optprobe_target_nested(u64 x)
{
	x = x * 2654435761u + 3;
	barrier();
	return x ^ (x >> 9);
}
EXPORT_SYMBOL_GPL(optprobe_target_nested);

/*
 * entry_landing_pad: 1 when a C function's sym+0 here is "bti c" or "bti jc",
 * i.e. this kernel (and so this module) was built for BTI. A kernel built
 * without it (GCC-built Debian) has an ordinary first instruction even on a
 * CPU with BTI. The tests combine it with cpuinfo's "bti" (the CPU enforces
 * landing pads; arm64.nobti hides it) to know whether function entry is a
 * landing pad, without asking optprobe.
 */
static int entry_pad_get(char *buf, const struct kernel_param *kp)
{
	u32 insn = le32_to_cpu(*(const __le32 *)(const void *)optprobe_target_work);

	return sysfs_emit(buf, "%d\n", insn == 0xd503245f || insn == 0xd50324df);
}
static const struct kernel_param_ops entry_pad_ops = { .get = entry_pad_get };
module_param_cb(entry_landing_pad, &entry_pad_ops, NULL, 0444);
MODULE_PARM_DESC(entry_landing_pad, "1: sym+0 of a C function is a BTI landing pad (kernel built for BTI)");
EXPORT_SYMBOL_GPL(optprobe_target_args);
EXPORT_SYMBOL_GPL(optprobe_target_args_insn);
EXPORT_SYMBOL_GPL(optprobe_target_call_args);
EXPORT_SYMBOL_GPL(optprobe_target_call_args_ret);
EXPORT_SYMBOL_GPL(optprobe_target_call_args_body);
EXPORT_SYMBOL_GPL(optprobe_target_flags);
EXPORT_SYMBOL_GPL(optprobe_target_flags_insn);
EXPORT_SYMBOL_GPL(optprobe_target_adrp);
EXPORT_SYMBOL_GPL(optprobe_target_blr);
EXPORT_SYMBOL_GPL(optprobe_target_blr_insn);
EXPORT_SYMBOL_GPL(optprobe_target_adrp_insn);
EXPORT_SYMBOL_GPL(optprobe_target_many);
EXPORT_SYMBOL_GPL(optprobe_target_many_insns);
EXPORT_SYMBOL_GPL(optprobe_target_caller_sp);
EXPORT_SYMBOL_GPL(optprobe_target_epilogue);
EXPORT_SYMBOL_GPL(optprobe_target_epilogue_off);
EXPORT_SYMBOL_GPL(optprobe_target_shrinkwrap);
EXPORT_SYMBOL_GPL(optprobe_target_shrinkwrap_off);

/* The PC-relative functions of target_reloc.S, as a table. */
#define RELOC_FUNCS(X)							\
	X(adr, 0) X(adrp, 0) X(ldr_x, 0) X(ldr_w, 0) X(ldrsw, 0)	\
	X(ldr_s, OPTPROBE_RELOC_FP) X(ldr_d, OPTPROBE_RELOC_FP)		\
	X(ldr_q, OPTPROBE_RELOC_FP) X(b, 0) X(bl, OPTPROBE_RELOC_BL)	\
	X(beq, 0) X(bne, 0) X(bhs, 0) X(blo, 0) X(bmi, 0) X(bpl, 0)	\
	X(bvs, 0) X(bvc, 0) X(bhi, 0) X(bls, 0) X(bge, 0) X(blt, 0)	\
	X(bgt, 0) X(ble, 0) X(bal, 0)					\
	X(cbz_x, 0) X(cbnz_w, 0) X(tbz_x63, 0) X(tbnz_w3, 0)

#define RELOC_DECLARE(name, flags)					\
	u64 optprobe_reloc_##name(u64, u64);				\
	extern u32 optprobe_reloc_##name##_insn[];
RELOC_FUNCS(RELOC_DECLARE)

#define RELOC_ENTRY(name, flags)					\
	{ #name, optprobe_reloc_##name, optprobe_reloc_##name##_insn, flags },
const struct optprobe_reloc_case optprobe_reloc_cases[] = { RELOC_FUNCS(RELOC_ENTRY) };
const unsigned int optprobe_reloc_ncases = ARRAY_SIZE(optprobe_reloc_cases);
EXPORT_SYMBOL_GPL(optprobe_reloc_cases);
EXPORT_SYMBOL_GPL(optprobe_reloc_ncases);
EXPORT_SYMBOL_GPL(optprobe_reloc_seen_lr);

/*
 * A C function for kprobe_events (which refuses functions without an
 * ftrace site, such as the assembly targets): a leaf, so on the test
 * kernel it is "bti c", the two ftrace NOPs, then the body from +12.
 */
noinline u64 optprobe_target_event(u64 a0, u64 a1, u64 a2, u64 a3, u64 a4, u64 a5, u64 a6, u64 a7)
{
	u64 x = a0 * 3 + a1;

	x ^= a2 + a3;
	x += a4 * a5;
	return x ^ (a6 - a7);
}
EXPORT_SYMBOL_GPL(optprobe_target_event);

/*
 * fire: writing "START COUNT" calls optprobe_target_event(START + i, 1, 2,
 * 3, 4, 5, 6, 7) for i in 0..COUNT (through optprobe_target_event_fixed_x8,
 * so x8 is fixed too), from this module (a fixed caller, so a
 * probe sees the same lr and stack on every run). The tests use the first
 * argument as a token per call. Reading gives the last sum.
 */
static u64 fire_sum;
/* fire_ns: how long the last fire took (make bench's kprobe_events row). */
static ulong fire_ns;
module_param(fire_ns, ulong, 0400);
MODULE_PARM_DESC(fire_ns, "duration of the last fire, ns");
/*
 * The calls, in a function of their own: nothing time-dependent (the
 * timing around it) is left in a register a probe's fetch args read (x8).
 */
static noinline u64 fire_calls(u64 start, u64 count)
{
	u64 i, sum = 0;

	for (i = 0; i < count; i++) {
		sum += optprobe_target_event_fixed_x8(start + i, 1, 2, 3, 4, 5, 6, 7);
		if (!(i & 1023))
			cond_resched();
	}
	return sum;
}

static int fire_set(const char *val, const struct kernel_param *kp)
{
	u64 start, count, sum, t0;

	if (sscanf(val, "%llu %llu", &start, &count) != 2 || count > 10000000)
		return -EINVAL;
	t0 = ktime_get_ns();
	sum = fire_calls(start, count);
	WRITE_ONCE(fire_ns, ktime_get_ns() - t0);
	WRITE_ONCE(fire_sum, sum);
	return 0;
}
static int fire_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%llu\n", READ_ONCE(fire_sum));
}
static const struct kernel_param_ops fire_ops = { .set = fire_set, .get = fire_get };
module_param_cb(fire, &fire_ops, NULL, 0600);
MODULE_PARM_DESC(fire, "\"START COUNT\": call optprobe_target_event COUNT times, tokens from START");

/*
 * Entry probes through ftrace (61_ftrace_entry, ktest entry_tokens):
 * optprobe_target_token() is a traceable C function that takes a token per
 * call; optprobe_target_failable() may be made to fail by fail_function
 * (error injection overrides its return at entry: a pc change at sym+0).
 * "fail_calls=N" calls it N times; fail_seen reads how many failed.
 */
static u64 token_sink;
noinline u64 optprobe_target_token(u64 token)
{
	WRITE_ONCE(token_sink, token);
	return token + 1;
}
EXPORT_SYMBOL_GPL(optprobe_target_token);

/* Its normal return; a variable, so no caller can fold the call away. */
static int failable_ret;
module_param(failable_ret, int, 0600);
MODULE_PARM_DESC(failable_ret, "what optprobe_target_failable returns uninjected (0)");
noinline int optprobe_target_failable(u64 x)
{
	WRITE_ONCE(token_sink, x);
	return READ_ONCE(failable_ret);
}
ALLOW_ERROR_INJECTION(optprobe_target_failable, ERRNO);

static uint fail_seen;
module_param(fail_seen, uint, 0400);
MODULE_PARM_DESC(fail_seen, "calls of the last fail_calls that returned an error");
static int fail_calls_set(const char *val, const struct kernel_param *kp)
{
	uint n, i, seen = 0;

	if (kstrtouint(val, 0, &n) || n > 1000000)
		return -EINVAL;
	for (i = 0; i < n; i++)
		seen += optprobe_target_failable(i) != 0;
	WRITE_ONCE(fail_seen, seen);
	return 0;
}
static const struct kernel_param_ops fail_calls_ops = { .set = fail_calls_set };
module_param_cb(fail_calls, &fail_calls_ops, NULL, 0200);
MODULE_PARM_DESC(fail_calls, "N: call optprobe_target_failable N times");

static int spinner(void *data)
{
	u64 x = (unsigned long)data, n = 0;

	while (!kthread_should_stop()) {
		x = optprobe_target_work(x);
		/* Sleep now and then so RCU-tasks (probe removal) can finish. */
		if (!(++n & 63))
			usleep_range(20, 50);
	}
	return x == 42;
}

static int __init target_init(void)
{
	unsigned int i;

	for (i = 0; i < min_t(unsigned int, spin, ARRAY_SIZE(spinners)); i++) {
		spinners[i] = kthread_run(spinner, (void *)(unsigned long)i, "optprobe_spin/%u", i);
		if (IS_ERR(spinners[i])) {
			int ret = PTR_ERR(spinners[i]);

			while (i--)
				kthread_stop(spinners[i]);
			return ret;
		}
	}
	return 0;
}

/*
 * Probed by the unload test: it runs while the module is going away, and
 * stops the spinners while they are hitting probes.
 */
noinline void __exit optprobe_target_exit(void)
{
	unsigned int i;
	u64 x = 0;

	for (i = 0; i < ARRAY_SIZE(spinners); i++) {
		if (spinners[i])
			kthread_stop(spinners[i]);
		x = optprobe_target_exit_step(x + i);
	}
	pr_info("optprobe_target: unloading (%llx)\n", x);
}

module_init(target_init);
module_exit(optprobe_target_exit);
MODULE_DESCRIPTION("optprobe test target functions");
MODULE_LICENSE("GPL");
