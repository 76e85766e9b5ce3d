/* SPDX-License-Identifier: GPL-2.0 */
/* Functions the test-target module provides (tests/target_*.{c,S}). */
#ifndef OPTPROBE_TARGET_H
#define OPTPROBE_TARGET_H

#include <linux/types.h>

#define OPTPROBE_TARGET_MANY 1024

u64 optprobe_target_args(u64, u64, u64, u64, u64, u64, u64, u64);
u64 optprobe_target_call_args(u64, u64, u64, u64, u64, u64, u64, u64);
u64 optprobe_target_adrp(void);
u64 optprobe_target_flags(u64 a, u64 b);
u64 optprobe_target_blr(u64 x);
extern u32 optprobe_target_blr_insn[];
extern u32 optprobe_target_call_args_body[], optprobe_target_flags_insn[];
u64 optprobe_target_many(u64 x);
u64 optprobe_target_epilogue(u64 x, u64 y);
u64 optprobe_target_shrinkwrap(u64 x, u64 y);
/* Byte offsets of the probed instructions in those two functions. */
extern const u64 optprobe_target_epilogue_off, optprobe_target_shrinkwrap_off;
u64 optprobe_target_work(u64 x);
u64 optprobe_target_nested(u64 x);
u64 optprobe_target_token(u64 token);
int optprobe_target_failable(u64 x);
u64 optprobe_target_event(u64, u64, u64, u64, u64, u64, u64, u64);
u64 optprobe_target_event_fixed_x8(u64, u64, u64, u64, u64, u64, u64, u64);
extern u32 optprobe_target_args_insn[], optprobe_target_call_args_ret[];
extern u32 optprobe_target_adrp_insn[], optprobe_target_many_insns[];
extern u64 optprobe_target_caller_sp;

/* One PC-relative test function (tests/target_reloc.S). */
struct optprobe_reloc_case {
	const char *name;
	u64 (*fn)(u64 a, u64 b);
	u32 *insn;			/* the PC-relative instruction */
	unsigned int flags;
};
#define OPTPROBE_RELOC_FP	1	/* uses SIMD&FP: call inside kernel_neon_begin() */
#define OPTPROBE_RELOC_BL	2	/* callee records x30 in optprobe_reloc_seen_lr */

extern const struct optprobe_reloc_case optprobe_reloc_cases[];
extern const unsigned int optprobe_reloc_ncases;
extern u64 optprobe_reloc_seen_lr;

/* The module exit function, global so the unload test can probe it by name,
 * and the step it runs eight times while the module is going away. */
void optprobe_target_exit(void);
u64 optprobe_target_exit_step(u64 x);
extern u32 optprobe_target_exit_step_insn[];

#endif
