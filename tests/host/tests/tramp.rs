use optprobe_host::insn;
use optprobe_host::tramp::{self, FrameLink, Layout, Params};

fn layout() -> Layout {
    // Shape of asm/template.S: 55 instructions, the relocation area, padding,
    // then four literals.
    Layout { size: 280, frame_link: 116, orig_insn: 220, reloc_lit: 248, probe: 256, pc: 264, callback: 272 }
}

fn params(tramp: u64, site: u64) -> Params {
    Params {
        tramp,
        site,
        orig_insn: 0x9100_0400,
        probe: 0x1122_3344_5566_7788,
        callback: 0xffff_0000_dead_beef,
        link: FrameLink::Body,
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
