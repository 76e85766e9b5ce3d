use optprobe_host::insn;
use optprobe_host::tramp::{self, FrameLink, Layout, Params};

fn layout() -> Layout {
    // Shape of asm/template.S: 55 instructions, the relocation area, padding,
    // then four literals.
    Layout {
        size: 280,
        el: 76,
        pan: 84,
        pmr: 104,
        frame_link: 116,
        orig_insn: 220,
        reloc_lit: 248,
        probe: 256,
        pc: 264,
        callback: 272,
    }
}

fn params(tramp: u64, site: u64) -> Params {
    Params {
        tramp,
        site,
        orig_insn: 0x9100_0400,
        probe: 0x1122_3344_5566_7788,
        callback: 0xffff_0000_dead_beef,
        link: FrameLink::Body,
        kernel_at_el2: false,
        read_pan: false,
        read_pmr: false,
        landing_pads_enforced: true,
    }
}

#[test]
fn builds_an_image_that_branches_back() {
    let template = [0xaau8; 280];
    let mut image = [0u8; 280];
    let site = 0xffff_8000_8010_0000;
    let tr = site - (100 << 20);
    tramp::build(&layout(), &template, &mut image, &params(tr, site)).unwrap();
    let word = |image: &[u8], o: usize| u32::from_le_bytes(image[o..o + 4].try_into().unwrap());
    let lit = |o: usize| u64::from_ne_bytes(image[o..o + 8].try_into().unwrap());
    assert_eq!(lit(248), 0, "no relocation literal for an out-of-line instruction");
    assert_eq!(word(&image, 220), 0x9100_0400);
    assert_eq!(insn::decode_b_target(tr + 224, word(&image, 224)), Some(site + 4));
    assert_eq!(word(&image, 116), insn::MOV_X9_X29);
    assert_eq!(lit(256), 0x1122_3344_5566_7788);
    assert_eq!(lit(264), site);
    assert_eq!(lit(272), 0xffff_0000_dead_beef);
    assert_eq!(image[0], 0xaa);
    // Entry probes keep the template's frame link.
    let mut p = params(tr, site);
    p.link = FrameLink::Entry;
    tramp::build(&layout(), &template, &mut image, &p).unwrap();
    assert_eq!(word(&image, 116), 0xaaaa_aaaa);
}

#[test]
fn refuses_out_of_range_and_rejected() {
    let template = [0u8; 280];
    let mut image = [0u8; 280];
    let site = 0xffff_8000_8010_0000;
    assert_eq!(
        tramp::build(&layout(), &template, &mut image, &params(site - (200 << 20), site)),
        Err(insn::ERANGE)
    );
    let mut p = params(site - 4096, site);
    p.orig_insn = 0xd400_0001; // svc #0
    assert_eq!(tramp::build(&layout(), &template, &mut image, &p), Err(insn::EINVAL));
    // ADRP is relocated: Rd = literal, then back.
    p.orig_insn = 0x9000_0000 | 5; // adrp x5, .
    tramp::build(&layout(), &template, &mut image, &p).unwrap();
    let lit = u64::from_ne_bytes(image[248..256].try_into().unwrap());
    assert_eq!(lit, site & !0xfff);
}

#[test]
fn layout_checks_catch_misalignment() {
    assert!(layout().check().is_ok());
    let mut l = layout();
    l.probe = 236;
    assert!(l.check().is_err());
    let mut l = layout();
    l.reloc_lit = 240; // overlaps the relocation area
    assert!(l.check().is_err());
    let mut l = layout();
    l.size = 328;
    assert!(l.check().is_err());
}

#[test]
fn window_keeps_every_slot_in_reach() {
    let page = 4096;
    let site = 0xffff_8000_8123_4564u64;
    let (lo, hi) = tramp::window(site, page, 0, u64::MAX).unwrap();
    assert_eq!(lo % page, 0);
    assert_eq!(hi % page, 0);
    for base in [lo, hi - page] {
        for slot in [base, base + page - tramp::SLOT_SIZE as u64] {
            assert!(tramp::site_branch(site, slot).is_ok());
            assert!(insn::encode_b(slot + 244, site + 4).is_ok());
        }
    }
    // Clamping to a disjoint range leaves nothing.
    assert_eq!(tramp::window(site, page, site + (200 << 20), u64::MAX), None);
}

#[test]
fn frame_link_follows_the_prologue() {
    let func = [0xd503_233f, 0xa9bf_7bfd, 0x9100_03fd, 0x9100_0400];
    assert_eq!(tramp::frame_link_for(&func, 0), FrameLink::Entry);
    assert_eq!(tramp::frame_link_for(&func, 2), FrameLink::Entry);
    assert_eq!(tramp::frame_link_for(&func, 3), FrameLink::Body);
    assert_eq!(tramp::frame_link_for(&[0x9100_0400; 4], 3), FrameLink::Entry);
}

// Words for the frame-link cases (llvm-objdump of the assembly named).
const STP_FP_LR_PRE: u32 = 0xa9bf_7bfd; // stp x29, x30, [sp, #-16]!
const STP_FP_LR_OFF: u32 = 0xa902_7bfd; // stp x29, x30, [sp, #32]
const MOV_FP_SP: u32 = 0x9100_03fd; // mov x29, sp
const ADD: u32 = 0x9100_0400; // add x0, x0, #1
const LDP_FP_LR_POST: u32 = 0xa8c1_7bfd; // ldp x29, x30, [sp], #16
const RET: u32 = 0xd65f_03c0;
const BR_X3: u32 = 0xd61f_0060;
const BLR_X4: u32 = 0xd63f_0080;
const PACIASP: u32 = 0xd503_233f;
/// `cbz x1, .+4*n`
fn cbz_x1(n: u32) -> u32 {
    0xb400_0001 | (n << 5)
}

/// Body (link through x29) only where the code before the probe proves x29
/// holds this function's own frame record; Entry, which never loses the
/// caller, everywhere else (issue 11, item 11).
#[test]
fn frame_link_body_only_where_the_frame_is_proven() {
    use FrameLink::{Body, Entry};
    let link = |f: &[u32], p: usize| tramp::frame_link_for(f, p);
    // A plain prologue: after it, Body.
    let f = [PACIASP, STP_FP_LR_PRE, MOV_FP_SP, ADD, ADD];
    assert_eq!(link(&f, 3), Body);
    assert_eq!(link(&f, 4), Body);
    // The frame record stored at an offset (stp x29, x30, [sp, #32]; add x29).
    assert_eq!(link(&[STP_FP_LR_OFF, 0x9100_83fd /* add x29, sp, #32 */, ADD], 2), Body);
    // The epilogue restored x29: Entry from there on.
    let f = [STP_FP_LR_PRE, MOV_FP_SP, ADD, LDP_FP_LR_POST, ADD, RET];
    assert_eq!(link(&f, 3), Body, "at the ldp, x29 is still ours");
    assert_eq!(link(&f, 4), Entry);
    assert_eq!(link(&f, 5), Entry);
    // Shrink-wrapped: an early exit laid out after the frame setup.
    let f = [cbz_x1(6), STP_FP_LR_PRE, MOV_FP_SP, ADD, LDP_FP_LR_POST, RET, ADD, RET];
    assert_eq!(link(&f, 6), Entry, "reached from before the setup");
    assert_eq!(link(&f, 3), Body);
    // An early branch past the probe does not matter.
    let f = [cbz_x1(7), STP_FP_LR_PRE, MOV_FP_SP, ADD, ADD, LDP_FP_LR_POST, RET, RET];
    assert_eq!(link(&f, 4), Body);
    // Code after a return is reached only by branches: not proven.
    let f = [STP_FP_LR_PRE, MOV_FP_SP, ADD, RET, ADD];
    assert_eq!(link(&f, 4), Entry);
    // A call in between is fine (it returns); an indirect jump before the
    // setup is not (its targets are unknown).
    assert_eq!(link(&[STP_FP_LR_PRE, MOV_FP_SP, BLR_X4, ADD], 3), Body);
    assert_eq!(link(&[BR_X3, STP_FP_LR_PRE, MOV_FP_SP, ADD], 3), Entry);
    // x29 set with no frame record stored first: not a frame.
    assert_eq!(link(&[MOV_FP_SP, ADD, ADD], 2), Entry);
    // Before any setup, and past the words given: Entry.
    assert_eq!(link(&[ADD; 4], 3), Entry);
    assert_eq!(link(&[STP_FP_LR_PRE, MOV_FP_SP], 5), Entry);
}

/// The words the frame-link rules recognise, as the oracle reads them.
#[test]
fn frame_words_match_the_oracle() {
    let show = disasm;
    assert!(show(STP_FP_LR_PRE).starts_with("stp x29, x30, [sp, #-0x10]!"), "{}", show(STP_FP_LR_PRE));
    assert!(show(LDP_FP_LR_POST).starts_with("ldp x29, x30, [sp]"), "{}", show(LDP_FP_LR_POST));
    assert!(insn::is_frame_record_store(STP_FP_LR_PRE) && insn::is_frame_record_store(STP_FP_LR_OFF));
    assert!(!insn::is_frame_record_store(LDP_FP_LR_POST));
    assert!(insn::may_write_x29(LDP_FP_LR_POST) && insn::may_write_x29(MOV_FP_SP));
    assert!(!insn::may_write_x29(ADD) && !insn::may_write_x29(STP_FP_LR_PRE));
    assert!(!insn::may_write_x29(0xd538_4262) /* mrs x2, pan */ && insn::may_write_x29(0xd538_427d) /* mrs x29, pan */);
    assert!(!insn::may_write_x29(0xf940_0ba0) /* ldr x0, [x29, #16] */);
    assert!(insn::may_write_x29(0xf940_0bbd) /* ldr x29, [x29, #16] */);
    assert!(insn::ends_straight_line(RET) && insn::ends_straight_line(BR_X3));
    assert!(!insn::ends_straight_line(BLR_X4) && !insn::ends_straight_line(ADD));
    // From the review (llvm-objdump of each): atomics, CAS and STXR write
    // registers too; BRAA jumps; BLRAA returns; BRK and UDF trap.
    for (w, what) in [
        (0xf821_001d, "ldadd x1, x29, [x0]"),
        (0xf821_801d, "swp x1, x29, [x0]"),
        (0xc8bd_7c01, "cas x29, x1, [x0]"),
        (0xc81d_7c01, "stxr w29, x1, [x0]"),
        (0xf840_841d, "ldr x29, [x0], #8"),
    ] {
        assert!(insn::may_write_x29(w), "{what}");
    }
    assert!(insn::is_indirect_jump(0xd71f_0864) && insn::ends_straight_line(0xd71f_0864), "braa x3, x4");
    assert!(!insn::ends_straight_line(0xd73f_0864) && !insn::is_indirect_jump(0xd73f_0864), "blraa x3, x4");
    assert!(insn::ends_straight_line(0xd421_0000) && insn::ends_straight_line(0), "brk #0x800, udf #0");
}

#[test]
fn window_for_a_branch_reaches_site_and_target() {
    let page = 4096u64;
    let site = 0xffff_8000_8800_0000u64;
    // A BL from the site to 100 MiB above it: the trampoline must be within
    // B range of both, so the window is the overlap of the two.
    let bl = 0x9400_0000 | ((100 << 20) / 4);
    let target = insn::direct_branch_target(bl, site).unwrap();
    assert_eq!(target, site + (100 << 20));
    let (lo, hi) = tramp::window_for(site, Some(target), page, 0, u64::MAX).unwrap();
    let reach = insn::B_RANGE as u64;
    assert!(lo >= target - reach && hi <= site + reach, "{lo:#x}..{hi:#x}");
    for slot in [lo, hi - page] {
        for end in [slot, slot + page - 4] {
            assert!(insn::encode_b(end, target).is_ok());
            assert!(insn::encode_b(end, site).is_ok() && insn::encode_b(site, end).is_ok());
        }
    }
    // Without a branch target, the site's window alone.
    assert_eq!(tramp::window_for(site, None, page, 0, u64::MAX), tramp::window(site, page, 0, u64::MAX));
    // Literal-based relocations (ADRP, LDR literal) have no direct target.
    assert_eq!(insn::direct_branch_target(0x9000_0000, site), None);
    assert_eq!(insn::direct_branch_target(0x5800_0040, site), None);
    // B.cond, CBZ, TBZ do.
    assert_eq!(insn::direct_branch_target(0x5400_0040, site), Some(site + 8));
    assert_eq!(insn::direct_branch_target(0xb400_0040, site), Some(site + 8));
    assert_eq!(insn::direct_branch_target(0x3600_0040, site), Some(site + 8));
    // 255 MiB apart, a sliver in the middle still reaches both; 257 MiB
    // apart, nothing does.
    let (lo, hi) = tramp::window_for(site, Some(site + (255 << 20)), page, 0, u64::MAX).unwrap();
    assert!(insn::encode_b(lo, site).is_ok() && insn::encode_b(hi - 4, site + (255 << 20)).is_ok());
    assert_eq!(tramp::window_for(site, Some(site + (257 << 20)), page, 0, u64::MAX), None);
}

/// Unused relocation slots (and the padding before the literals) trap with
/// the kernel's fault BRK (`AARCH64_BREAK_FAULT`), whatever the template
/// holds: the kprobes BRK there would be taken for a kprobe hit.
#[test]
fn unused_relocation_slots_hold_the_fault_brk() {
    let template = [0xaau8; 280];
    let mut image = [0u8; 280];
    let site = 0xffff_8000_8010_0000;
    let tr = site - 4096;
    let word = |image: &[u8], o: usize| u32::from_le_bytes(image[o..o + 4].try_into().unwrap());
    for orig in [0x9100_0400u32, 0x9000_0005 /* adrp x5 */, 0x5400_0040 /* b.eq */] {
        let mut p = params(tr, site);
        p.orig_insn = orig;
        tramp::build(&layout(), &template, &mut image, &p).unwrap();
        let used = insn::relocate(orig, site, tr + 220, tr + 248).unwrap().len;
        for off in (220 + 4 * used..248).step_by(4) {
            assert_eq!(word(&image, off), insn::BRK_FAULT, "insn {orig:#x}: word at {off}");
        }
    }
    assert_eq!(insn::BRK_FAULT, 0xd420_2000, "BRK #0x100 (FAULT_BRK_IMM)");
}

/// The instruction word at byte offset `o` of a trampoline image.
fn word_at(image: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(image[o..o + 4].try_into().unwrap())
}

/// An instruction as the oracle disassembles it, lower case.
fn disasm(w: u32) -> String {
    use yaxpeax_arch::{Decoder, U8Reader};
    let bytes = w.to_le_bytes();
    let mut r = U8Reader::new(&bytes);
    format!("{}", yaxpeax_arm::armv8::a64::InstDecoder::default().decode(&mut r).unwrap()).to_lowercase()
}

/// The saved pstate's mode is EL1h unless the kernel runs at EL2: only then
/// is the template's `add x1, x1, #5` (EL1h) replaced by `add x1, x1, #9`.
#[test]
fn pstate_mode_follows_the_kernels_exception_level() {
    let template = [0xaau8; 280];
    let mut image = [0u8; 280];
    let site = 0xffff_8000_8010_0000;
    let mut p = params(site - 4096, site);
    tramp::build(&layout(), &template, &mut image, &p).unwrap();
    assert_eq!(word_at(&image, 76), 0xaaaa_aaaa);
    p.kernel_at_el2 = true;
    tramp::build(&layout(), &template, &mut image, &p).unwrap();
    assert_eq!(word_at(&image, 76), insn::ADD_X1_X1_EL2H);
    let text = disasm(insn::ADD_X1_X1_EL2H);
    assert!(text == "add x1, x1, #0x9" || text == "add x1, x1, #9", "{text}");
}

/// PAN and the GIC priority mask are read only where the kernel uses them;
/// elsewhere the template's own instructions stay.
#[test]
fn pan_and_pmr_are_read_where_the_kernel_uses_them() {
    let template = [0xaau8; 280];
    let mut image = [0u8; 280];
    let site = 0xffff_8000_8010_0000;
    let word = word_at;
    let mut p = params(site - 4096, site);
    tramp::build(&layout(), &template, &mut image, &p).unwrap();
    assert_eq!([word(&image, 84), word(&image, 88), word(&image, 104)], [0xaaaa_aaaa; 3]);
    p.read_pan = true;
    p.read_pmr = true;
    tramp::build(&layout(), &template, &mut image, &p).unwrap();
    assert_eq!(word(&image, 84), insn::MRS_X2_PAN);
    assert_eq!(word(&image, 88), insn::ORR_X1_X1_X2);
    assert_eq!(word(&image, 104), insn::MRS_X2_ICC_PMR_EL1);
    // The encodings, as the oracle disassembles them.
    let show = disasm;
    assert_eq!(show(insn::ORR_X1_X1_X2), "orr x1, x1, x2");
    assert!(show(insn::MRS_X2_PAN).starts_with("mrs x2,"), "{}", show(insn::MRS_X2_PAN));
    assert!(show(insn::MRS_X2_ICC_PMR_EL1).starts_with("mrs x2,"), "{}", show(insn::MRS_X2_ICC_PMR_EL1));
}
