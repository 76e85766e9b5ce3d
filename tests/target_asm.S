/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Probe targets written in assembly, so tests know exactly which instruction
 * sits at each probe point and what the registers hold there.
 */
#include <linux/linkage.h>
#include <asm/assembler.h>

	.text

/*
 * u64 optprobe_target_args(u64 a0, ..., u64 a7): returns the sum.
 * optprobe_target_args_insn (entry + 4, after "bti c") is a plain ADD:
 * optimizable, and x0-x7 still hold the arguments there.
 */
SYM_FUNC_START(optprobe_target_args)
SYM_INNER_LABEL(optprobe_target_args_insn, SYM_L_GLOBAL)
	add	x0, x0, x1
	add	x0, x0, x2
	add	x0, x0, x3
	add	x0, x0, x4
	add	x0, x0, x5
	add	x0, x0, x6
	add	x0, x0, x7
	ret
SYM_FUNC_END(optprobe_target_args)

/*
 * u64 optprobe_target_event_fixed_x8(a0..a7): a tail call of the C function
 * optprobe_target_event with x8 = a0 ^ 0x5a5a. x8 is no argument, so a C
 * caller leaves whatever its compiler had there (GCC: a leftover from
 * ktime_get_ns(), different each run); the fire parameter calls through
 * here so that %x8 at the probe is the same in a BRK run and an optimized
 * run, which the parity tests compare.
 */
SYM_FUNC_START(optprobe_target_event_fixed_x8)
	mov	x8, #0x5a5a
	eor	x8, x8, x0
	b	optprobe_target_event
SYM_FUNC_END(optprobe_target_event_fixed_x8)

/*
 * u64 optprobe_target_call_args(a0..a7): builds a frame, records its sp in
 * optprobe_target_caller_sp, calls optprobe_target_args. A handler at
 * optprobe_target_args_insn must see sp == optprobe_target_caller_sp and
 * x30 == optprobe_target_call_args_ret.
 */
SYM_FUNC_START(optprobe_target_call_args)
	stp	x29, x30, [sp, #-16]!
	mov	x29, sp
SYM_INNER_LABEL(optprobe_target_call_args_body, SYM_L_GLOBAL)
	mov	x9, sp				/* after the frame record exists */
	adr_l	x10, optprobe_target_caller_sp
	str	x9, [x10]
	bl	optprobe_target_args
SYM_INNER_LABEL(optprobe_target_call_args_ret, SYM_L_GLOBAL)
	ldp	x29, x30, [sp], #16
	ret
SYM_FUNC_END(optprobe_target_call_args)

/*
 * u64 optprobe_target_flags(u64 a, u64 b): "cmp a, b", then the probed
 * instruction, then returns NZCV as read after it. The probe must neither
 * lose nor leak flags.
 */
SYM_FUNC_START(optprobe_target_flags)
	cmp	x0, x1
SYM_INNER_LABEL(optprobe_target_flags_insn, SYM_L_GLOBAL)
	mov	x2, x0
	mrs	x0, nzcv
	ret
SYM_FUNC_END(optprobe_target_flags)

/* u64 optprobe_target_adrp(void): ADRP at entry + 4 (PC-relative). */
SYM_FUNC_START(optprobe_target_adrp)
SYM_INNER_LABEL(optprobe_target_adrp_insn, SYM_L_GLOBAL)
	adrp	x0, optprobe_target_caller_sp
	add	x0, x0, :lo12:optprobe_target_caller_sp
	ret
SYM_FUNC_END(optprobe_target_adrp)

/*
 * u64 optprobe_target_blr(u64 x): calls optprobe_target_blr_callee through
 * BLR at optprobe_target_blr_insn; returns x + 1. kprobes simulates BLR,
 * optprobe refuses it (x30 would point into the trampoline).
 */
SYM_FUNC_START(optprobe_target_blr)
	stp	x29, x30, [sp, #-16]!
	mov	x29, sp
	adr	x9, optprobe_target_blr_callee
SYM_INNER_LABEL(optprobe_target_blr_insn, SYM_L_GLOBAL)
	blr	x9
	ldp	x29, x30, [sp], #16
	ret
SYM_FUNC_END(optprobe_target_blr)

SYM_FUNC_START(optprobe_target_blr_callee)
	add	x0, x0, #1
	ret
SYM_FUNC_END(optprobe_target_blr_callee)

/*
 * u64 optprobe_target_many(u64 x): returns x + OPTPROBE_TARGET_MANY.
 * optprobe_target_many_insns is the first of that many "add x0, x0, #1".
 */
#define OPTPROBE_TARGET_MANY 1024
SYM_FUNC_START(optprobe_target_many)
SYM_INNER_LABEL(optprobe_target_many_insns, SYM_L_GLOBAL)
	.rept	OPTPROBE_TARGET_MANY
	add	x0, x0, #1
	.endr
	ret
SYM_FUNC_END(optprobe_target_many)

	.data
	.balign	8
SYM_DATA(optprobe_target_caller_sp, .quad 0)

/*
 * u64 optprobe_target_exit_step(u64 x): x + 1. Called eight times by the
 * module's exit function, so a probe at optprobe_target_exit_step_insn is hit
 * while the module is being unloaded (in assembly: the same instruction at
 * the same place whatever the kernel's instrumentation).
 */
	.text
SYM_FUNC_START(optprobe_target_exit_step)
SYM_INNER_LABEL(optprobe_target_exit_step_insn, SYM_L_GLOBAL)
	add	x0, x0, #1
	ret
SYM_FUNC_END(optprobe_target_exit_step)

/*
 * Frame records torn down or not yet built at the probe, though a frame
 * setup comes earlier in address order (tests/ktest/api.c, backtrace). The
 * probed instructions have local labels, not symbols: optprobe reads the
 * function from its kallsyms start, and a symbol at the probe would hide the
 * prologue. Their offsets are exported as data instead.
 *
 * u64 optprobe_target_epilogue(u64 x, u64 y): x + 3. The probe sits after
 * the epilogue restored x29 and x30: the caller is in x30 again.
 */
SYM_FUNC_START(optprobe_target_epilogue)
	stp	x29, x30, [sp, #-16]!
	mov	x29, sp
	add	x0, x0, #1
	ldp	x29, x30, [sp], #16
.Lepilogue_insn:
	add	x0, x0, #2
	ret
SYM_FUNC_END(optprobe_target_epilogue)

/*
 * u64 optprobe_target_shrinkwrap(u64 x, u64 y): x + 1 when y != 0, x + 3
 * when y == 0. Shrink-wrapped: the early exit for y == 0 is laid out after
 * the frame setup but runs without it.
 */
SYM_FUNC_START(optprobe_target_shrinkwrap)
	cbz	x1, 1f
	stp	x29, x30, [sp, #-16]!
	mov	x29, sp
	add	x0, x0, #1
	ldp	x29, x30, [sp], #16
	ret
1:
.Lshrinkwrap_early:
	add	x0, x0, #3
	ret
SYM_FUNC_END(optprobe_target_shrinkwrap)

	.pushsection .rodata
	.balign	8
SYM_DATA(optprobe_target_epilogue_off, .quad .Lepilogue_insn - optprobe_target_epilogue)
SYM_DATA(optprobe_target_shrinkwrap_off, .quad .Lshrinkwrap_early - optprobe_target_shrinkwrap)
	.popsection
