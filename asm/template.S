/* SPDX-License-Identifier: GPL-2.0 */
/*
 * optprobe trampoline template.
 *
 * Each optimized probe gets a copy of the bytes between optprobe_tmpl_start
 * and optprobe_tmpl_end in trampoline memory within branch range of the probe
 * site; the probe site's instruction is replaced by "b <copy>". The template
 * itself lives in .rodata and is never executed in place.
 *
 * Per copy, the module rewrites:
 *   optprobe_tmpl_el          the exception level into pstate's mode, for
 *                             a kernel at EL2 (VHE)
 *   optprobe_tmpl_pan         PAN into pstate, where the kernel uses PAN
 *   optprobe_tmpl_pmr         the live ICC_PMR_EL1 under pseudo-NMI
 *   optprobe_tmpl_frame_link  the frame link (see below)
 *   optprobe_tmpl_orig_insn   up to OPTPROBE_MAX_RELOC instructions: the
 *                             probed instruction and "b <probe + 4>", or its
 *                             relocation (src/insn.rs, relocate())
 *   optprobe_tmpl_reloc_lit   literal: the relocation's 64-bit value
 *   optprobe_tmpl_probe       literal: the struct the callback receives
 *   optprobe_tmpl_pc          literal: the probe address (regs->pc)
 *   optprobe_tmpl_callback    literal: the callback's address (optprobe_dispatch,
 *                             or optprobe_dispatch_el2 on a VHE kernel)
 *
 * The local optprobe_tmpl_part_* labels only divide the code into its parts
 * for scripts/hitpath-insns; nothing is patched there.
 *
 * Stack while the callback runs, from the probed code's sp downwards:
 *   [sp0 - 16, sp0)               record B: {x29, x30} as at the probe
 *   [sp0 - FRAME, sp0 - 16)       struct pt_regs; its stackframe[] is record A:
 *                                 {frame link, probe address}
 * x29 points at record A while the callback (src/hit.rs optprobe_dispatch or
 * its EL2 twin, which build no frame record of their own) runs, so an unwind from a handler
 * shows: handler, optprobe_dispatch (or optprobe_callback, then
 * optprobe_dispatch, on the general path), <probed function>, then either the
 * caller via record B (probes before the function's own frame record exists:
 * frame link = &record B) or the function's own frame record (frame link =
 * x29, patched in per probe).
 */

#include <linux/linkage.h>
#include <asm/asm-offsets.h>
#include <asm/brk-imm.h>
#include <asm/ptrace.h>

#define TRAMP_FRAME	(PT_REGS_SIZE + 16)
/* Must equal insn::MAX_RELOC; the module checks the layout at load. */
#define OPTPROBE_MAX_RELOC	6
/* Must equal tramp::SLOT_SIZE. */
#define OPTPROBE_SLOT_SIZE	320
#define S_ORIG_X0	(S_SYSCALLNO - 8)	/* checked below */
/*
 * Two pt_regs layouts, told apart by asm-offsets (checked below):
 *   6.12:  orig_x0, s32 syscallno, u32 unused, sdei_ttbr1, u64 pmr_save,
 *          stackframe[2], lockdep_hardirqs, exit_rcu        (336 bytes)
 *   6.13+: orig_x0, s32 syscallno, u32 pmr, sdei_ttbr1,
 *          stackframe = { record, type }                    (320 bytes)
 */
#ifdef S_PMR_SAVE
#define OPTPROBE_PT_REGS_PMR_SAVE 1
/* The two u64 after stackframe[2]. */
#define S_LOCKDEP_HARDIRQS	(S_STACKFRAME + 16)
#else
#define OPTPROBE_PT_REGS_PMR_SAVE 0
#endif


	.section .rodata, "a"
	.balign	8
SYM_DATA_START(optprobe_tmpl_start)
	sub	sp, sp, #TRAMP_FRAME
	stp	x0, x1, [sp, #S_X0]
	stp	x2, x3, [sp, #S_X2]
	stp	x4, x5, [sp, #S_X4]
	stp	x6, x7, [sp, #S_X6]
	stp	x8, x9, [sp, #S_X8]
	stp	x10, x11, [sp, #S_X10]
	stp	x12, x13, [sp, #S_X12]
	stp	x14, x15, [sp, #S_X14]
	stp	x16, x17, [sp, #S_X16]
	stp	x18, x19, [sp, #S_X18]
	stp	x20, x21, [sp, #S_X20]
	stp	x22, x23, [sp, #S_X22]
	stp	x24, x25, [sp, #S_X24]
	stp	x26, x27, [sp, #S_X26]
	stp	x28, x29, [sp, #S_X28]
	add	x0, sp, #TRAMP_FRAME		/* sp as it was at the probe */
	stp	x30, x0, [sp, #S_LR]
SYM_INNER_LABEL(optprobe_tmpl_part_pstate, SYM_L_LOCAL)
	/*
	 * pstate: NZCV, DAIF, M[3:0] = the kernel's exception level with SPSel
	 * = SP_ELx (EL1h, or EL2h where the kernel runs at EL2: constant for
	 * the kernel's life, so patched in rather than read), and PAN where
	 * the kernel uses it. Every other field reads as zero.
	 */
	mrs	x1, nzcv
	mrs	x2, daif
	orr	x1, x1, x2
	/* NZCV and DAIF leave M[3:0] clear, so one add sets the whole mode. */
SYM_INNER_LABEL(optprobe_tmpl_el, SYM_L_GLOBAL)
	add	x1, x1, #PSR_MODE_EL1h		/* or #PSR_MODE_EL2h */
SYM_INNER_LABEL(optprobe_tmpl_pan, SYM_L_GLOBAL)
	nop					/* or "mrs x2, pan" */
	nop					/* and "orr x1, x1, x2" */
	ldr	x0, optprobe_tmpl_pc
	stp	x0, x1, [sp, #S_PC]
	/*
	 * orig_x0 = 0, syscallno = NO_SYSCALL: this is not a syscall frame.
	 * The rest as kernel_entry and enter_from_kernel_mode() would leave
	 * it: sdei_ttbr1 = 0 (not an SDEI event); the saved priority mask =
	 * the live one under pseudo-NMI, else the unmasked value
	 * interrupts_enabled() expects; 6.12's lockdep_hardirqs = exit_rcu = 0
	 * (no exception to exit); 6.13+'s frame type = 0 (record A is an
	 * ordinary frame record, never a meta one: its link is not 0).
	 */
SYM_INNER_LABEL(optprobe_tmpl_part_fields, SYM_L_LOCAL)
SYM_INNER_LABEL(optprobe_tmpl_pmr, SYM_L_GLOBAL)
	mov	x2, #GIC_PRIO_IRQON		/* or "mrs x2, icc_pmr_el1" */
#if OPTPROBE_PT_REGS_PMR_SAVE
	mov	w3, #-1
	stp	xzr, x3, [sp, #S_ORIG_X0]
	stp	xzr, x2, [sp, #S_SDEI_TTBR1]
	stp	xzr, xzr, [sp, #S_LOCKDEP_HARDIRQS]
#else
	/* syscallno and the u32 pmr share one doubleword (little-endian). */
	mov	w3, #-1
	orr	x3, x3, x2, lsl #32
	stp	xzr, x3, [sp, #S_ORIG_X0]
	str	xzr, [sp, #S_SDEI_TTBR1]
	str	xzr, [sp, #S_STACKFRAME_TYPE]
#endif
SYM_INNER_LABEL(optprobe_tmpl_part_frames, SYM_L_LOCAL)
	/* Record B: the state at the probe, for probes before the prologue. */
	stp	x29, x30, [sp, #PT_REGS_SIZE]
SYM_INNER_LABEL(optprobe_tmpl_frame_link, SYM_L_GLOBAL)
	add	x9, sp, #PT_REGS_SIZE		/* or "mov x9, x29" */
	/* Record A: {frame link, probe address}, in pt_regs->stackframe. */
	stp	x9, x0, [sp, #S_STACKFRAME]
	add	x29, sp, #S_STACKFRAME
SYM_INNER_LABEL(optprobe_tmpl_part_call, SYM_L_LOCAL)
	ldr	x0, optprobe_tmpl_probe
	mov	x1, sp
	ldr	x16, optprobe_tmpl_callback
	blr	x16
SYM_INNER_LABEL(optprobe_tmpl_part_restore, SYM_L_LOCAL)
	/* Restore NZCV exactly, then every general register. */
	ldr	x0, [sp, #S_PSTATE]
	msr	nzcv, x0
	ldp	x0, x1, [sp, #S_X0]
	ldp	x2, x3, [sp, #S_X2]
	ldp	x4, x5, [sp, #S_X4]
	ldp	x6, x7, [sp, #S_X6]
	ldp	x8, x9, [sp, #S_X8]
	ldp	x10, x11, [sp, #S_X10]
	ldp	x12, x13, [sp, #S_X12]
	ldp	x14, x15, [sp, #S_X14]
	ldp	x16, x17, [sp, #S_X16]
	ldp	x18, x19, [sp, #S_X18]
	ldp	x20, x21, [sp, #S_X20]
	ldp	x22, x23, [sp, #S_X22]
	ldp	x24, x25, [sp, #S_X24]
	ldp	x26, x27, [sp, #S_X26]
	ldp	x28, x29, [sp, #S_X28]
	ldr	x30, [sp, #S_LR]
	add	sp, sp, #TRAMP_FRAME
SYM_INNER_LABEL(optprobe_tmpl_orig_insn, SYM_L_GLOBAL)
	.rept	OPTPROBE_MAX_RELOC
	brk	#FAULT_BRK_IMM			/* unused slots trap */
	.endr
	/* Pad to 8 bytes without .balign, so label offsets stay absolute. */
	.if ((. - optprobe_tmpl_start) % 8) != 0
	brk	#FAULT_BRK_IMM
	.endif
SYM_INNER_LABEL(optprobe_tmpl_reloc_lit, SYM_L_GLOBAL)
	.quad	0
SYM_INNER_LABEL(optprobe_tmpl_probe, SYM_L_GLOBAL)
	.quad	0
SYM_INNER_LABEL(optprobe_tmpl_pc, SYM_L_GLOBAL)
	.quad	0
SYM_INNER_LABEL(optprobe_tmpl_callback, SYM_L_GLOBAL)
	.quad	0
SYM_INNER_LABEL(optprobe_tmpl_end, SYM_L_GLOBAL)
SYM_DATA_END(optprobe_tmpl_start)

/* Build-time checks of the layout the Rust side relies on. */
	.if (S_SYSCALLNO != S_PSTATE + 16)
	.error "orig_x0 does not follow pstate as S_ORIG_X0 assumes"
	.endif
#if OPTPROBE_PT_REGS_PMR_SAVE
	.if (S_ORIG_X0 + 16 != S_SDEI_TTBR1) || (S_PMR_SAVE != S_SDEI_TTBR1 + 8) || (S_STACKFRAME != S_PMR_SAVE + 8) || (PT_REGS_SIZE != S_STACKFRAME + 32)
	.error "struct pt_regs is not laid out as this template expects (6.12)"
	.endif
#else
#ifdef __AARCH64EB__
#error "the template packs syscallno and pmr little-endian"
#endif
	.if (S_PMR != S_SYSCALLNO + 4) || (S_SDEI_TTBR1 != S_SYSCALLNO + 8) || (S_STACKFRAME != S_SDEI_TTBR1 + 8) || (S_STACKFRAME_TYPE != S_STACKFRAME + 16) || (PT_REGS_SIZE != S_STACKFRAME + 24)
	.error "struct pt_regs is not laid out as this template expects (6.13+)"
	.endif
#endif
#define TMPL_OFF(label)	(label - optprobe_tmpl_start)
	.if (TRAMP_FRAME % 16) != 0
	.error "trampoline frame must keep sp 16-byte aligned"
	.endif
	.if (PSR_MODE_EL1h != 5) || (PSR_MODE_EL2h != 9)
	.error "the pstate modes are not as insn::ADD_X1_X1_EL2H assumes"
	.endif
	.if (TMPL_OFF(optprobe_tmpl_frame_link) % 4) || (TMPL_OFF(optprobe_tmpl_orig_insn) % 4)
	.error "template instructions must be 4-byte aligned"
	.endif
	.if (TMPL_OFF(optprobe_tmpl_reloc_lit) % 8) || (TMPL_OFF(optprobe_tmpl_probe) % 8) || (TMPL_OFF(optprobe_tmpl_pc) % 8) || (TMPL_OFF(optprobe_tmpl_callback) % 8)
	.error "template literals must be 8-byte aligned"
	.endif
	.if TMPL_OFF(optprobe_tmpl_reloc_lit) < TMPL_OFF(optprobe_tmpl_orig_insn) + 4 * OPTPROBE_MAX_RELOC
	.error "the relocation area overlaps the literals"
	.endif
	.if TMPL_OFF(optprobe_tmpl_end) > OPTPROBE_SLOT_SIZE
	.error "template exceeds the trampoline slot"
	.endif
