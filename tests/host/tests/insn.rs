use optprobe_host::insn::{self, Class, PcRel, Reject};

#[test]
fn bti_and_pac_landing_pads_are_rejected() {
    for word in [0xd503_241f, 0xd503_245f, 0xd503_249f, 0xd503_24df, 0xd503_233f, 0xd503_237f] {
        assert_eq!(insn::classify(word), Class::Rejected(Reject::BtiLandingPad), "{word:#x}");
    }
}

#[test]
fn landing_pads_are_ordinary_where_bti_is_not_enforced() {
    for word in [0xd503_241f, 0xd503_245f, 0xd503_249f, 0xd503_24df, 0xd503_233f, 0xd503_237f] {
        assert_eq!(insn::classify_site(word, true), Class::Rejected(Reject::BtiLandingPad), "{word:#x}");
        assert_eq!(insn::classify_site(word, false), Class::OutOfLine, "{word:#x}");
        // Relocated as itself, then the branch back.
        let pc = 0xffff_8000_8000_0000u64;
        let at = pc + 0x1000;
        assert!(insn::relocate_site(word, pc, at, at + 64, true).is_err(), "{word:#x}");
        let r = insn::relocate_site(word, pc, at, at + 64, false).expect("relocates");
        assert_eq!((r.len, r.words[0]), (2, word));
        assert_eq!(insn::decode_b_target(at + 4, r.words[1]), Some(pc + 4));
    }
}

#[test]
fn classify_site_changes_nothing_but_landing_pads() {
    // A sweep of the hint space and a stride over all words.
    let words = (0xd503_2000u32..0xd503_3000).chain((0..u32::MAX).step_by(65_521));
    for word in words {
        let plain = insn::classify(word);
        assert_eq!(insn::classify_site(word, true), plain, "{word:#x}");
        if plain != Class::Rejected(Reject::BtiLandingPad) {
            assert_eq!(insn::classify_site(word, false), plain, "{word:#x}");
        }
    }
}

#[test]
fn position_independent_hints_run_out_of_line() {
    // nop, paciaz, pacibz, pacia1716, pacib1716, xpaclri
    for word in [0xd503_201f, 0xd503_231f, 0xd503_235f, 0xd503_211f, 0xd503_215f, 0xd503_20ff] {
        assert_eq!(insn::classify(word), Class::OutOfLine, "{word:#x}");
    }
    // autiasp, wfi, yield
    for word in [0xd503_23bf, 0xd503_207f, 0xd503_203f] {
        assert_eq!(insn::classify(word), Class::Rejected(Reject::Hint), "{word:#x}");
    }
}

#[test]
fn pc_relative_classes_are_named() {
    let cases: &[(u32, PcRel)] = &[
        (0x1000_0000, PcRel::Adr),        // adr x0, .
        (0x9000_0000, PcRel::Adrp),       // adrp x0, .
        (0x5800_0040, PcRel::LdrLiteral), // ldr x0, .+8
        (0x1800_0040, PcRel::LdrLiteral), // ldr w0, .+8
        (0x9800_0040, PcRel::LdrLiteral), // ldrsw x0, .+8
        (0xd800_0040, PcRel::LdrLiteral), // prfm pldl1keep, .+8
        (0x1c00_0040, PcRel::LdrLiteralFp), // ldr s0
        (0x5c00_0040, PcRel::LdrLiteralFp), // ldr d0
        (0x9c00_0040, PcRel::LdrLiteralFp), // ldr q0
        (0x1400_0001, PcRel::B),
        (0x97ff_ffff, PcRel::Bl),
        (0x5400_0020, PcRel::BCond),      // b.eq .+4
        (0x5400_0030, PcRel::BCond),      // bc.eq .+4
        (0xb400_0020, PcRel::Cbz),        // cbz x0
        (0x3500_0020, PcRel::Cbz),        // cbnz w0
        (0x3600_0020, PcRel::Tbz),        // tbz w0, #0
        (0xb7f8_0020, PcRel::Tbz),        // tbnz x0, #63
    ];
    for (word, kind) in cases {
        assert_eq!(insn::classify(*word), Class::PcRelative(*kind), "{word:#x}");
    }
}

#[test]
fn dangerous_classes_are_rejected() {
    let cases: &[(u32, Reject)] = &[
        (0xd400_0001, Reject::Exception),         // svc #0
        (0xd420_0080, Reject::Exception),         // brk #4
        (0xd69f_03e0, Reject::ExceptionReturn),   // eret
        (0xd63f_0020, Reject::IndirectCall),      // blr x1
        (0xd63f_083f, Reject::IndirectCall),      // blraaz x1
        (0xd51b_4200, Reject::SystemRegisterWrite), // msr nzcv, x0
        (0xd503_41ff, Reject::SystemRegisterWrite), // msr daifclr, #1
        (0xc85f_7c20, Reject::Exclusive),         // ldxr x0, [x1]
        (0xc800_7c20, Reject::Exclusive),         // stxr w0, x0, [x1]
        (0xc8df_fc20, Reject::Exclusive),         // ldar x0, [x1]
        (0x0000_0000, Reject::Unallocated),       // udf #0
        (0x5500_0000, Reject::Unallocated),       // b.cond with o1 = 1
        (0xdc00_0000, Reject::Unallocated),       // ldr literal opc=11 V=1
    ];
    for (word, why) in cases {
        assert_eq!(insn::classify(*word), Class::Rejected(*why), "{word:#x}");
    }
}

#[test]
fn ordinary_instructions_run_out_of_line() {
    for word in [
        0x9100_0400u32, // add x0, x0, #1
        0xa9bf_7bfd,    // stp x29, x30, [sp, #-16]!
        0x9100_03fd,    // mov x29, sp
        0xf940_0020,    // ldr x0, [x1]
        0xd65f_03c0,    // ret
        0xd61f_0020,    // br x1
        0xd65f_0bff,    // retaa
        0xd538_4100,    // mrs x0, sp_el0
        0xd53b_4220,    // mrs x0, daif
        0xd503_3fdf,    // isb
        0x8b01_0000,    // add x0, x0, x1
        0x1e60_2000,    // fcmp d0, d0
        0xf820_0020,    // ldadd x0, x0, [x1]
    ] {
        assert_eq!(insn::classify(word), Class::OutOfLine, "{word:#x}");
    }
}

#[test]
fn branch_encoder_edges() {
    let pc = 0xffff_8000_1000_0000u64;
    // Exactly at both ends of the range.
    assert_eq!(insn::encode_b(pc, pc - (128 << 20)), Ok(0x1600_0000));
    assert_eq!(insn::encode_b(pc, pc + (128 << 20) - 4), Ok(0x15ff_ffff));
    // One step past either end.
    assert_eq!(insn::encode_b(pc, pc - (128 << 20) - 4), Err(insn::ERANGE));
    assert_eq!(insn::encode_b(pc, pc + (128 << 20)), Err(insn::ERANGE));
    // Misaligned.
    assert_eq!(insn::encode_b(pc, pc + 2), Err(insn::EINVAL));
    assert_eq!(insn::encode_b(pc, pc), Ok(0x1400_0000));
    // Round trip across the whole range in coarse steps.
    let mut off: i64 = -(128 << 20);
    while off < (128 << 20) {
        let target = pc.wrapping_add(off as u64);
        let word = insn::encode_b(pc, target).unwrap();
        assert_eq!(insn::decode_b_target(pc, word), Some(target));
        assert_eq!(insn::classify(word), Class::PcRelative(PcRel::B));
        off += 4 * 9973;
    }
}

#[test]
fn frame_setup_detection() {
    assert!(insn::is_frame_setup(0x9100_03fd)); // mov x29, sp
    assert!(insn::is_frame_setup(0x9100_43fd)); // add x29, sp, #16
    assert!(!insn::is_frame_setup(0x9100_03e9)); // mov x9, sp
    assert!(!insn::is_frame_setup(0xaa1d_03e9)); // mov x9, x29
}

/// Every word gets exactly one class, and rows that name an instruction agree
/// with an independent decoder (yaxpeax-arm) on a fixed-seed sample.
#[test]
fn classifier_agrees_with_oracle_on_sample() {
    use yaxpeax_arch::{Decoder, U8Reader};
    use yaxpeax_arm::armv8::a64::{InstDecoder, Opcode};
    let decoder = InstDecoder::default();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut checked = 0;
    for _ in 0..2_000_000 {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let word = (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32;
        let class = insn::classify(word);
        let bytes = word.to_le_bytes();
        let mut reader = U8Reader::new(&bytes);
        let Ok(inst) = decoder.decode(&mut reader) else { continue };
        let expect = match inst.opcode {
            Opcode::ADR => Some(Class::PcRelative(PcRel::Adr)),
            Opcode::ADRP => Some(Class::PcRelative(PcRel::Adrp)),
            Opcode::B => Some(Class::PcRelative(PcRel::B)),
            Opcode::BL => Some(Class::PcRelative(PcRel::Bl)),
            Opcode::CBZ | Opcode::CBNZ => Some(Class::PcRelative(PcRel::Cbz)),
            Opcode::TBZ | Opcode::TBNZ => Some(Class::PcRelative(PcRel::Tbz)),
            Opcode::SVC | Opcode::HVC | Opcode::SMC | Opcode::BRK | Opcode::HLT => {
                Some(Class::Rejected(Reject::Exception))
            }
            Opcode::BLR => Some(Class::Rejected(Reject::IndirectCall)),
            _ => None,
        };
        if let Some(expect) = expect {
            assert_eq!(class, expect, "{word:#010x} decodes as {inst}");
            checked += 1;
        }
    }
    assert!(checked > 1000, "oracle matched only {checked} words");
}

#[test]
fn ftrace_ops_literal_words() {
    // Before ftrace initialises it: the compiler's two NOPs.
    assert!(insn::is_ftrace_ops_literal(insn::NOP, insn::NOP));
    // After: a kernel pointer (&ftrace_nop_ops under some KASLR slide), whose
    // low half may decode as anything, here an unallocated word.
    assert!(insn::is_ftrace_ops_literal(0x7599_d120, 0xffff_a7ff));
    assert!(insn::is_ftrace_ops_literal(0xd65f_03c0, 0xffff_8000));
    // The end of a function followed directly by the next: real code.
    assert!(!insn::is_ftrace_ops_literal(0xd503_23bf, 0xd65f_03c0)); // autiasp; ret
    assert!(!insn::is_ftrace_ops_literal(insn::NOP, 0xd65f_03c0));
}

#[test]
fn entry_landing_pads_are_bti_c_and_bti_jc_only() {
    // The whole hint space, and a stride over all words: exactly the two
    // encodings (oracle: the Arm ARM's BTI targets c = 0b01, jc = 0b11).
    let words = (0xd503_2000u32..0xd503_3000).chain((0..u32::MAX).step_by(65_521));
    for word in words {
        let want = word == 0xd503_245f || word == 0xd503_24df;
        assert_eq!(insn::is_entry_landing_pad(word), want, "{word:#x}");
        if want {
            assert_eq!(insn::classify(word), Class::Rejected(Reject::BtiLandingPad), "{word:#x}");
        }
    }
}
