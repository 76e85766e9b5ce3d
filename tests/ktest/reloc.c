// SPDX-License-Identifier: GPL-2.0
/*
 * optprobe_ktest: every PC-relative class, unprobed vs BRK kprobe vs optprobe.
 */
#include "ktest.h"

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
			kernel_fpu_begin();
			out[i] = c->fn(reloc_inputs[i][0], reloc_inputs[i][1]);
			kernel_fpu_end();
		} else {
			out[i] = c->fn(reloc_inputs[i][0], reloc_inputs[i][1]);
		}
		lr[i] = optprobe_reloc_seen_lr;
	}
}

int case_reloc(void)
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
