/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A function in .init.text for the init-text test (tests/inittext.c): freed
 * with the rest of the module's init memory once the module is live.
 */
#include <linux/linkage.h>
#include <asm/assembler.h>

	.section .init.text, "ax"

/* u64 optprobe_inittext_helper(u64 x): x + 1. The probe sits on the ADD. */
SYM_FUNC_START(optprobe_inittext_helper)
SYM_INNER_LABEL(optprobe_inittext_insn, SYM_L_GLOBAL)
	add	x0, x0, #1
	ret
SYM_FUNC_END(optprobe_inittext_helper)
