/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One small function per PC-relative class: each result depends on the
 * instruction at its <name>_insn label, which the tests probe. Signature:
 * u64 fn(u64 a, u64 b). Indexed by optprobe_reloc_cases[] in target_main.c.
 */
#include <linux/linkage.h>
#include <asm/assembler.h>

	.text

/* ADR: returns the function's own address. */
SYM_FUNC_START(optprobe_reloc_adr)
SYM_INNER_LABEL(optprobe_reloc_adr_insn, SYM_L_GLOBAL)
	adr	x0, optprobe_reloc_adr
	ret
SYM_FUNC_END(optprobe_reloc_adr)

/* ADRP + ADD: returns &optprobe_target_caller_sp (another section). */
SYM_FUNC_START(optprobe_reloc_adrp)
SYM_INNER_LABEL(optprobe_reloc_adrp_insn, SYM_L_GLOBAL)
	adrp	x0, optprobe_target_caller_sp
	add	x0, x0, :lo12:optprobe_target_caller_sp
	ret
SYM_FUNC_END(optprobe_reloc_adrp)

/* LDR (literal) of every width. The FP ones need kernel_neon_begin(). */
.macro ldr_lit name, load, width, value, tail=""
SYM_FUNC_START(optprobe_reloc_\name)
SYM_INNER_LABEL(optprobe_reloc_\name\()_insn, SYM_L_GLOBAL)
	\load, 1f
	\tail
	ret
	.balign 16
1:	\width \value
SYM_FUNC_END(optprobe_reloc_\name)
.endm
	ldr_lit	ldr_x, "ldr x0", .quad, 0x1122334455667788
	ldr_lit	ldr_w, "ldr w0", .long, 0x89abcdef
	ldr_lit	ldrsw, "ldrsw x0", .long, 0x89abcdef
	ldr_lit	ldr_s, "ldr s0", .long, 0x3f8ccccd, "fmov w0, s0"
	ldr_lit	ldr_d, "ldr d0", .quad, 0x400921fb54442d18, "fmov x0, d0"

SYM_FUNC_START(optprobe_reloc_ldr_q)
SYM_INNER_LABEL(optprobe_reloc_ldr_q_insn, SYM_L_GLOBAL)
	ldr	q0, 1f
	fmov	x0, d0
	mov	x1, v0.d[1]
	eor	x0, x0, x1, ror #13
	ret
	.balign	16
1:	.quad	0x0123456789abcdef
	.quad	0xfedcba9876543210
SYM_FUNC_END(optprobe_reloc_ldr_q)

/* PRFM (literal) is refused by kprobes itself, so it is tested on the host only. */

/* B: skips "mov x0, #0". */
SYM_FUNC_START(optprobe_reloc_b)
SYM_INNER_LABEL(optprobe_reloc_b_insn, SYM_L_GLOBAL)
	b	1f
	mov	x0, #0
	ret
1:	add	x0, x0, #1
	ret
SYM_FUNC_END(optprobe_reloc_b)

/* BL: the callee sees x30 = insn + 4 and returns a + 42. */
SYM_FUNC_START(optprobe_reloc_bl)
	stp	x29, x30, [sp, #-16]!
	mov	x29, sp
SYM_INNER_LABEL(optprobe_reloc_bl_insn, SYM_L_GLOBAL)
	bl	optprobe_reloc_bl_callee
	ldp	x29, x30, [sp], #16
	ret
SYM_FUNC_END(optprobe_reloc_bl)

SYM_FUNC_START_LOCAL(optprobe_reloc_bl_callee)
	adr_l	x9, optprobe_reloc_seen_lr
	str	x30, [x9]
	add	x0, x0, #42
	ret
SYM_FUNC_END(optprobe_reloc_bl_callee)

/* B.cond, every condition: returns 1 if taken after "cmp a, b", else 0. */
.macro bcond cond
SYM_FUNC_START(optprobe_reloc_b\cond)
	cmp	x0, x1
SYM_INNER_LABEL(optprobe_reloc_b\cond\()_insn, SYM_L_GLOBAL)
	b.\cond	1f
	mov	x0, #0
	ret
1:	mov	x0, #1
	ret
SYM_FUNC_END(optprobe_reloc_b\cond)
.endm
	.irp c, eq, ne, hs, lo, mi, pl, vs, vc, hi, ls, ge, lt, gt, le, al
	bcond	\c
	.endr

/* CBZ/CBNZ/TBZ/TBNZ, 64- and 32-bit forms: 1 if taken, else 0. */
.macro cbranch name, insn
SYM_FUNC_START(optprobe_reloc_\name)
SYM_INNER_LABEL(optprobe_reloc_\name\()_insn, SYM_L_GLOBAL)
	\insn, 1f
	mov	x0, #0
	ret
1:	mov	x0, #1
	ret
SYM_FUNC_END(optprobe_reloc_\name)
.endm
	cbranch	cbz_x, "cbz x0"
	cbranch	cbnz_w, "cbnz w0"
	cbranch	tbz_x63, "tbz x0, #63"
	cbranch	tbnz_w3, "tbnz w0, #3"

	.data
	.balign	8
SYM_DATA(optprobe_reloc_seen_lr, .quad 0)
