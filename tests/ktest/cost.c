// SPDX-License-Identifier: GPL-2.0
/*
 * optprobe_ktest: per-hit overhead, unprobed vs BRK kprobe vs optprobe.
 */
#include "ktest.h"

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

int case_cost(void)
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
