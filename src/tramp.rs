// SPDX-License-Identifier: GPL-2.0
//! Trampoline layout and image building. Kernel-free and `no_std`.
//!
//! The template (`asm/template.S`) gives the code; its labels give the offsets
//! (`Layout`). `build` turns one template copy into one probe's trampoline.

use crate::insn::{self, EINVAL};

/// Bytes reserved per trampoline in a trampoline page (five cache lines).
pub const SLOT_SIZE: usize = 320;

/// Offsets of the template's labels, in bytes from its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Template size (`optprobe_tmpl_end`).
    pub size: usize,
    /// The instruction that puts EL1 in the saved pstate's mode (`orr x1,
    /// x1, #4` in the template).
    pub el: usize,
    /// Two instructions that add PSTATE.PAN to the saved pstate (`nop`s in
    /// the template).
    pub pan: usize,
    /// The instruction that puts the saved priority mask (6.12's `pmr_save`,
    /// 6.13+'s `pmr`) in x2 (`mov x2, #GIC_PRIO_IRQON` in the template).
    pub pmr: usize,
    /// The frame link instruction.
    pub frame_link: usize,
    /// The area for the probed instruction (or its relocation) and the
    /// branch back: [`insn::MAX_RELOC`] instructions.
    pub orig_insn: usize,
    /// Literal: the relocation's value.
    pub reloc_lit: usize,
    /// Literal: the probe the callback receives.
    pub probe: usize,
    /// Literal: the probe address.
    pub pc: usize,
    /// Literal: the callback address.
    pub callback: usize,
}

impl Layout {
    /// Check what the code relies on: instructions 4-byte aligned, literals
    /// 8-byte aligned and inside the template, the relocation area clear of
    /// the literals, and the whole template inside one slot. The assembler
    /// checks the same at build time; this guards the Rust side.
    pub fn check(&self) -> Result<(), i32> {
        let insns = [self.el, self.pan, self.pan + 4, self.pmr, self.frame_link, self.orig_insn];
        let literals = [self.reloc_lit, self.probe, self.pc, self.callback];
        if self.size > SLOT_SIZE || self.size % 8 != 0 {
            return Err(EINVAL);
        }
        if insns.iter().any(|o| o % 4 != 0 || o + 4 > self.size) {
            return Err(EINVAL);
        }
        if literals.iter().any(|o| o % 8 != 0 || o + 8 > self.size) {
            return Err(EINVAL);
        }
        let area_end = self.orig_insn + 4 * insn::MAX_RELOC;
        if literals.iter().any(|o| *o < area_end) || self.frame_link >= self.orig_insn {
            return Err(EINVAL);
        }
        Ok(())
    }
}

/// How the trampoline links its frame record into the probed code's chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameLink {
    /// Before the probed function built its frame record: the caller is in
    /// x30, so link through record B `{x29, x30}` (the template's default).
    Entry,
    /// After the prologue: x29 already points at the function's own record.
    Body,
}

/// Decide the frame link for a probe at word index `probe_index` of a function
/// whose words (from its start, at least up to the probe) are `func`.
///
/// `Body` only where the code proves x29 holds this function's own frame
/// record at the probe: a frame record store and then a frame setup
/// (`add x29, sp, #imm`) before it, nothing between the setup and the probe
/// that may write x29 or end straight-line code (so no epilogue, no code
/// after a return), and no branch from before the setup into that stretch
/// (a shrink-wrapped early exit laid out after the setup) nor an indirect
/// jump there. Otherwise `Entry`, which never loses the caller: record B
/// `{x29, x30}` at worst repeats a frame.
pub fn frame_link_for(func: &[u32], probe_index: usize) -> FrameLink {
    let Some(before) = func.get(..probe_index) else {
        return FrameLink::Entry;
    };
    let Some(setup) = before.iter().rposition(|w| insn::is_frame_setup(*w)) else {
        return FrameLink::Entry;
    };
    if !before[..setup].iter().any(|w| insn::is_frame_record_store(*w)) {
        return FrameLink::Entry;
    }
    if before[setup + 1..].iter().any(|w| insn::may_write_x29(*w) || insn::ends_straight_line(*w)) {
        return FrameLink::Entry;
    }
    // Byte offsets from the function start: (setup, probe] must not be a
    // branch target from the setup or before.
    let (lo, hi) = (4 * setup as u64, 4 * probe_index as u64);
    for (i, w) in before[..=setup].iter().enumerate() {
        if insn::is_indirect_jump(*w) {
            return FrameLink::Entry;
        }
        let target = insn::direct_branch_target(*w, 4 * i as u64);
        if target.is_some_and(|t| t > lo && t <= hi) {
            return FrameLink::Entry;
        }
    }
    FrameLink::Body
}

/// What goes into one trampoline.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// Where the trampoline will live.
    pub tramp: u64,
    /// The probe address.
    pub site: u64,
    /// The instruction the branch replaces (out-of-line or PC-relative).
    pub orig_insn: u32,
    /// Pointer handed to the callback.
    pub probe: u64,
    /// The callback's address.
    pub callback: u64,
    /// Frame link choice.
    pub link: FrameLink,
    /// The kernel runs at EL2 (VHE): pstate's mode is EL2h, not EL1h.
    pub kernel_at_el2: bool,
    /// The kernel runs with PAN (`ARM64_HAS_PAN`): read it into pstate.
    pub read_pan: bool,
    /// Pseudo-NMI priority masking is in use: save the live ICC_PMR_EL1.
    pub read_pmr: bool,
    /// BTI is enforced (`system_supports_bti_kernel()`): landing pads are
    /// refused; otherwise they run out of line (see `insn::classify_site`).
    pub landing_pads_enforced: bool,
}

fn put_insn(image: &mut [u8], offset: usize, word: u32) {
    // A64 instructions are little-endian in memory whatever the data endianness.
    image[offset..offset + 4].copy_from_slice(&word.to_le_bytes());
}

fn put_literal(image: &mut [u8], offset: usize, value: u64) {
    // Literals are read by LDR as data: native endianness, one 64-bit unit.
    image[offset..offset + 8].copy_from_slice(&value.to_ne_bytes());
}

/// Build a trampoline image from `template` into `image` (at least
/// `layout.size` bytes). The probed instruction is copied, or relocated when
/// it is PC-relative. Fails with `ERANGE` when a branch (back, or to a
/// relocated target) cannot reach, and `EINVAL` on a bad layout or an
/// instruction that must not run out of line.
pub fn build(layout: &Layout, template: &[u8], image: &mut [u8], p: &Params) -> Result<(), i32> {
    layout.check()?;
    if template.len() < layout.size || image.len() < layout.size {
        return Err(EINVAL);
    }
    let at = p.tramp + layout.orig_insn as u64;
    let relocated = insn::relocate_site(p.orig_insn, p.site, at, p.tramp + layout.reloc_lit as u64, p.landing_pads_enforced)?;
    image[..layout.size].copy_from_slice(&template[..layout.size]);
    if p.link == FrameLink::Body {
        put_insn(image, layout.frame_link, insn::MOV_X9_X29);
    }
    if p.kernel_at_el2 {
        put_insn(image, layout.el, insn::ADD_X1_X1_EL2H);
    }
    if p.read_pan {
        put_insn(image, layout.pan, insn::MRS_X2_PAN);
        put_insn(image, layout.pan + 4, insn::ORR_X1_X1_X2);
    }
    if p.read_pmr {
        put_insn(image, layout.pmr, insn::MRS_X2_ICC_PMR_EL1);
    }
    for (i, word) in relocated.words[..relocated.len].iter().enumerate() {
        put_insn(image, layout.orig_insn + 4 * i, *word);
    }
    // Unused slots and the padding before the literals: the fault BRK, which
    // the kernel never takes for a kprobe hit.
    for off in (layout.orig_insn + 4 * relocated.len..layout.reloc_lit).step_by(4) {
        put_insn(image, off, insn::BRK_FAULT);
    }
    put_literal(image, layout.reloc_lit, relocated.literal.unwrap_or(0));
    put_literal(image, layout.probe, p.probe);
    put_literal(image, layout.pc, p.site);
    put_literal(image, layout.callback, p.callback);
    Ok(())
}

/// The branch that replaces the probed instruction, or `ERANGE`.
pub fn site_branch(site: u64, tramp: u64) -> Result<u32, i32> {
    insn::encode_b(site, tramp)
}

/// The window `[lo, hi)` of page-aligned addresses where a trampoline page for
/// `site` may go: every slot in a page inside it reaches the site and is
/// reached from it. Clamped to `[limit_lo, limit_hi)`; `None` if empty.
pub fn window(site: u64, page: u64, limit_lo: u64, limit_hi: u64) -> Option<(u64, u64)> {
    let reach = insn::B_RANGE as u64;
    // The page's last byte must be within reach of the site and vice versa.
    let lo = site.saturating_sub(reach - 2 * page).next_multiple_of(page);
    let hi = site.saturating_add(reach - 2 * page) & !(page - 1);
    let lo = lo.max(limit_lo);
    let hi = hi.min(limit_hi);
    if lo + page <= hi {
        Some((lo, hi))
    } else {
        None
    }
}

/// The window for a trampoline page that must reach both `site` and, when
/// given, the direct branch target of its relocated instruction: the
/// intersection of the two windows, or `None` when they do not overlap.
pub fn window_for(site: u64, target: Option<u64>, page: u64, limit_lo: u64, limit_hi: u64) -> Option<(u64, u64)> {
    let (lo, hi) = window(site, page, limit_lo, limit_hi)?;
    let Some(target) = target else { return Some((lo, hi)) };
    let (tlo, thi) = window(target, page, limit_lo, limit_hi)?;
    let (lo, hi) = (lo.max(tlo), hi.min(thi));
    if lo + page <= hi {
        Some((lo, hi))
    } else {
        None
    }
}
