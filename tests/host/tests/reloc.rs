//! Relocation checked by execution: a small A64 interpreter runs the original
//! instruction at its own address and the relocated code at the trampoline,
//! and the architectural results must match. Plus edge cases and an oracle
//! decode of every emitted instruction.
use optprobe_host::insn::{self, Class, PcRel};
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq)]
struct Cpu {
    x: [u64; 31],
    sp: u64,
    pc: u64,
    nzcv: u32,
    v: [u128; 32],
    mem: HashMap<u64, u8>,
}

/// Unwritten memory reads as a fixed function of the address.
fn background(addr: u64) -> u8 {
    (addr.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8
}

fn sext(v: u64, bits: u32) -> i64 {
    ((v << (64 - bits)) as i64) >> (64 - bits)
}

impl Cpu {
    fn new(seed: u64, pc: u64) -> Self {
        let mut s = seed;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut x = [0u64; 31];
        for r in x.iter_mut() {
            *r = next();
        }
        let mut v = [0u128; 32];
        for r in v.iter_mut() {
            *r = ((next() as u128) << 64) | next() as u128;
        }
        Cpu { x, sp: 0xffff_8000_1234_0000, pc, nzcv: ((next() >> 60) as u32) << 28, v, mem: HashMap::new() }
    }
    fn reg(&self, r: u32) -> u64 {
        if r == 31 { 0 } else { self.x[r as usize] }
    }
    fn base(&self, r: u32) -> u64 {
        if r == 31 { self.sp } else { self.x[r as usize] }
    }
    fn set(&mut self, r: u32, v: u64) {
        if r != 31 {
            self.x[r as usize] = v;
        }
    }
    fn load(&self, addr: u64, n: usize) -> u128 {
        (0..n).fold(0u128, |acc, i| {
            let a = addr.wrapping_add(i as u64);
            acc | ((*self.mem.get(&a).unwrap_or(&background(a)) as u128) << (8 * i))
        })
    }
    fn store(&mut self, addr: u64, n: usize, v: u128) {
        for i in 0..n {
            self.mem.insert(addr.wrapping_add(i as u64), (v >> (8 * i)) as u8);
        }
    }
    fn cond(&self, c: u32) -> bool {
        let (n, z, cf, v) = ((self.nzcv >> 31) & 1, (self.nzcv >> 30) & 1, (self.nzcv >> 29) & 1, (self.nzcv >> 28) & 1);
        let r = match c >> 1 {
            0 => z == 1,
            1 => cf == 1,
            2 => n == 1,
            3 => v == 1,
            4 => cf == 1 && z == 0,
            5 => n == v,
            6 => n == v && z == 0,
            _ => true,
        };
        if c & 1 == 1 && c != 15 { !r } else { r }
    }
    /// Execute one instruction; panics on anything outside the subset.
    fn step(&mut self, w: u32) {
        let pc = self.pc;
        let rt = w & 31;
        let rn = (w >> 5) & 31;
        let imm19 = sext(((w >> 5) & 0x7ffff) as u64, 19) * 4;
        let mut next = pc + 4;
        match w {
            _ if w == insn::NOP => {}
            _ if w & 0x9f00_0000 == 0x1000_0000 || w & 0x9f00_0000 == 0x9000_0000 => {
                let imm = sext((((w >> 5) & 0x7ffff) << 2 | (w >> 29) & 3) as u64, 21);
                let v = if w >> 31 == 1 { (pc & !0xfff).wrapping_add((imm << 12) as u64) } else { pc.wrapping_add(imm as u64) };
                self.set(rt, v);
            }
            _ if w & 0x3f00_0000 == 0x1800_0000 => {
                let a = pc.wrapping_add(imm19 as u64);
                match w >> 30 {
                    0 => self.set(rt, self.load(a, 4) as u64),
                    1 => self.set(rt, self.load(a, 8) as u64),
                    2 => self.set(rt, sext(self.load(a, 4) as u64, 32) as u64),
                    _ => {} // PRFM
                }
            }
            _ if w & 0x3f00_0000 == 0x1c00_0000 => {
                let a = pc.wrapping_add(imm19 as u64);
                self.v[rt as usize] = self.load(a, [4, 8, 16][(w >> 30) as usize]);
            }
            _ if w & 0x7c00_0000 == 0x1400_0000 => {
                if w >> 31 == 1 {
                    self.x[30] = pc + 4;
                }
                next = pc.wrapping_add((sext((w & 0x3ff_ffff) as u64, 26) * 4) as u64);
            }
            _ if w & 0xff00_0000 == 0x5400_0000 => {
                if self.cond(w & 15) {
                    next = pc.wrapping_add(imm19 as u64);
                }
            }
            _ if w & 0x7e00_0000 == 0x3400_0000 => {
                let v = if w >> 31 == 1 { self.reg(rt) } else { self.reg(rt) & 0xffff_ffff };
                if (v == 0) != ((w >> 24) & 1 == 1) {
                    next = pc.wrapping_add(imm19 as u64);
                }
            }
            _ if w & 0x7e00_0000 == 0x3600_0000 => {
                let bit = ((w >> 31) << 5) | ((w >> 19) & 31);
                let set = (self.reg(rt) >> bit) & 1 == 1;
                if set == ((w >> 24) & 1 == 1) {
                    next = pc.wrapping_add((sext(((w >> 5) & 0x3fff) as u64, 14) * 4) as u64);
                }
            }
            _ if w & 0xfffffc00 == 0xb940_0000 => self.set(rt, self.load(self.base(rn), 4) as u64),
            _ if w & 0xfffffc00 == 0xf940_0000 => self.set(rt, self.load(self.base(rn), 8) as u64),
            _ if w & 0xfffffc00 == 0xb980_0000 => self.set(rt, sext(self.load(self.base(rn), 4) as u64, 32) as u64),
            _ if w & 0xfffffc00 == 0xbd40_0000 => self.v[rt as usize] = self.load(self.base(rn), 4),
            _ if w & 0xfffffc00 == 0xfd40_0000 => self.v[rt as usize] = self.load(self.base(rn), 8),
            _ if w & 0xfffffc00 == 0x3dc0_0000 => self.v[rt as usize] = self.load(self.base(rn), 16),
            0xf81f_0ff0 => {
                self.sp -= 16;
                let v = self.x[16];
                self.store(self.sp, 8, v as u128);
            }
            0xf841_07f0 => {
                self.x[16] = self.load(self.sp, 8) as u64;
                self.sp += 16;
            }
            _ if w & 0xffc0_0000 == 0x9100_0000 => {
                let v = self.base(rn).wrapping_add(((w >> 10) & 0xfff) as u64);
                if rt == 31 { self.sp = v } else { self.set(rt, v) }
            }
            _ => panic!("interpreter: unsupported {w:#010x}"),
        }
        self.pc = next;
    }
}

/// Run `word` at `pc` directly and relocated at `at`; compare.
fn check(word: u32, pc: u64, at: u64, seed: u64) -> Result<(), i32> {
    let lit = (at + 64) & !7;
    let reloc = insn::relocate(word, pc, at, lit)?;
    let mut direct = Cpu::new(seed, pc);
    let mut moved = direct.clone();
    direct.step(word);
    moved.pc = at;
    if let Some(l) = reloc.literal {
        moved.store(lit, 8, l as u128);
    }
    let mut steps = 0;
    while moved.pc >= at && moved.pc < at + 4 * reloc.len as u64 {
        let w = reloc.words[((moved.pc - at) / 4) as usize];
        moved.step(w);
        steps += 1;
        assert!(steps <= insn::MAX_RELOC, "{word:#010x}: loops inside the relocation");
    }
    // The literal and anything spilled below sp are the trampoline's own.
    moved.mem.retain(|a, _| *a < lit || *a >= lit + 8);
    moved.mem.retain(|a, _| *a >= moved.sp || *a < moved.sp - 64);
    assert_eq!(moved.pc, direct.pc, "{word:#010x} at {pc:#x}: continues at the wrong place");
    assert_eq!(moved.x, direct.x, "{word:#010x} at {pc:#x}: registers differ");
    assert_eq!(moved.v, direct.v, "{word:#010x}: SIMD&FP registers differ");
    assert_eq!(moved.sp, direct.sp, "{word:#010x}: sp differs");
    assert_eq!(moved.nzcv, direct.nzcv, "{word:#010x}: flags differ");
    assert_eq!(moved.mem, direct.mem, "{word:#010x}: memory differs");
    Ok(())
}

fn rng(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Every PC-relative class, random fields, random placement within reach.
#[test]
fn relocations_behave_like_the_original() {
    let classes: &[(u32, u32, PcRel)] = &[
        // (fixed bits, random-field mask, kind)
        (0x1000_0000, 0x60ff_ffff, PcRel::Adr),
        (0x9000_0000, 0x60ff_ffff, PcRel::Adrp),
        (0x1800_0000, 0xc0ff_ffff, PcRel::LdrLiteral),
        (0x1c00_0000, 0x40ff_ffff, PcRel::LdrLiteralFp),
        (0x9c00_0000, 0x00ff_ffff, PcRel::LdrLiteralFp),
        (0x1400_0000, 0x00ff_ffff, PcRel::B),
        (0x9400_0000, 0x00ff_ffff, PcRel::Bl),
        (0x5400_0000, 0x00ff_fffff & 0x00ff_ffff, PcRel::BCond),
        (0x3400_0000, 0x81ff_ffff, PcRel::Cbz),
        (0x3600_0000, 0x81ff_ffff, PcRel::Tbz),
    ];
    let mut state = 0x1234_5678_9abc_def1u64;
    let mut ran = 0;
    for &(fixed, random, kind) in classes {
        for _ in 0..20_000 {
            let word = fixed | (rng(&mut state) as u32 & random);
            assert_eq!(insn::classify(word), Class::PcRelative(kind), "{word:#010x}");
            let pc = 0xffff_8000_8000_0000 + (rng(&mut state) % (1 << 30)) * 4;
            let delta = (rng(&mut state) % (200 << 20)) as i64 - (100 << 20);
            let at = pc.wrapping_add((delta & !3) as u64);
            match check(word, pc, at, rng(&mut state)) {
                Ok(()) => ran += 1,
                Err(e) => assert_eq!(e, insn::ERANGE, "{word:#010x}: unexpected error"),
            }
        }
    }
    assert!(ran > 150_000, "only {ran} relocations ran");
}

#[test]
fn out_of_line_instructions_are_copied_and_branch_back() {
    let pc = 0xffff_8000_8123_4560;
    let at = pc - 0x10_0000;
    let r = insn::relocate(0x9100_0400, pc, at, at + 64).unwrap();
    assert_eq!(r.len, 2);
    assert_eq!(r.words[0], 0x9100_0400);
    assert_eq!(insn::decode_b_target(at + 4, r.words[1]), Some(pc + 4));
    assert_eq!(r.literal, None);
    check(0x9100_0400, pc, at, 7).unwrap();
    assert_eq!(insn::relocate(0xd400_0001, pc, at, at + 64), Err(insn::EINVAL));
}

#[test]
fn edges_of_each_range() {
    let pc = 0xffff_8000_9000_0000u64;
    let at = pc - (64 << 20);
    // ADRP across +/-4 GiB: maximum immediates both ways.
    for word in [0x9000_0000 | 0x007f_ffe0 | (3 << 29) | 1, 0x9000_0000 | (1 << 23) | 1] {
        check(word, pc, at, 1).unwrap();
        let t = insn::pcrel_target(PcRel::Adrp, word, pc) as i64 - (pc & !0xfff) as i64;
        assert!(t == (1i64 << 32) - 4096 || t == -(1i64 << 32), "adrp reach {t:#x}");
    }
    // ADR at +/-1 MiB.
    check(0x1000_0000 | 0x007f_ffe0 | (3 << 29), pc, at, 2).unwrap();
    check(0x1000_0000 | (1 << 23), pc, at, 2).unwrap();
    // B whose target is exactly at the end of the trampoline's reach.
    let b_max = 0x1400_0000 | 0x01ff_ffff; // pc + 128 MiB - 4
    assert_eq!(insn::relocate(b_max, pc, pc, pc + 64).map(|r| r.len), Ok(1));
    assert_eq!(insn::relocate(b_max, pc, pc + 4, pc + 64), Ok(insn::relocate(b_max, pc, pc + 4, pc + 64).unwrap()));
    assert_eq!(insn::relocate(b_max, pc, pc - 4, pc + 64), Err(insn::ERANGE));
    let b_min = 0x1600_0000; // pc - 128 MiB
    assert!(insn::relocate(b_min, pc, pc, pc + 64).is_ok());
    assert_eq!(insn::relocate(b_min, pc, pc + 4, pc + 64), Err(insn::ERANGE));
    // Conditional forms: taken and not taken both reach.
    for (word, seed) in [(0x5400_0000 | (0x3ffff << 5), 3), (0x5400_0001 | (0x40000 << 5), 4), (0xb400_0000, 5), (0x37f8_0000 | (0x1fff << 5), 6)] {
        check(word, pc, at, seed).unwrap();
    }
    // BL: x30 is pc + 4 and the callee is reached directly.
    let r = insn::relocate(0x9400_0010, pc, at, at + 64).unwrap();
    assert_eq!(r.literal, Some(pc + 4));
    assert_eq!(insn::decode_b_target(at + 4, r.words[1]), Some(pc + 0x40));
    // BC.cond keeps its o0 bit.
    let r = insn::relocate(0x5400_0030, pc, at, at + 64).unwrap();
    assert_eq!(r.words[0], 0x5400_0050);
}

/// Every emitted instruction decodes, through an independent decoder, to the
/// instruction the relocator meant.
#[test]
fn emitted_sequences_decode_as_intended() {
    use yaxpeax_arch::{Decoder, U8Reader};
    use yaxpeax_arm::armv8::a64::{InstDecoder, Opcode};
    let decoder = InstDecoder::default();
    let decode = |w: u32| {
        let bytes = w.to_le_bytes();
        decoder.decode(&mut U8Reader::new(&bytes)).unwrap_or_else(|e| panic!("{w:#010x}: {e:?}"))
    };
    let pc = 0xffff_8000_9000_0000u64;
    let at = pc - (1 << 20);
    let cases: &[(u32, &[&str])] = &[
        (0x9000_0005, &["LDR", "B"]),             // adrp x5
        (0x1000_0005, &["LDR", "B"]),             // adr x5
        (0x5800_0045, &["LDR", "LDR", "B"]),      // ldr x5, lit
        (0x1800_0045, &["LDR", "LDR", "B"]),      // ldr w5, lit
        (0x9800_0045, &["LDR", "LDRSW", "B"]),    // ldrsw x5, lit
        (0xd800_0040, &["HINT", "B"]),            // prfm -> nop (a HINT)
        (0x5c00_0045, &["STR", "LDR", "LDR", "LDR", "B"]), // ldr d5, lit
        (0x1400_0010, &["B"]),
        (0x9400_0010, &["LDR", "BL"]),            // ldr x30, lit; b (checked below)
        (0x5400_004b, &["B.cond", "B", "B"]),     // b.lt
        (0xb400_0045, &["CBZ", "B", "B"]),
        (0x3500_0045, &["CBNZ", "B", "B"]),
        (0x3608_0045, &["TBZ", "B", "B"]),
        (0xb7f8_0045, &["TBNZ", "B", "B"]),
    ];
    for (word, want) in cases {
        let r = insn::relocate(*word, pc, at, at + 64).unwrap();
        let got: Vec<String> = r.words[..r.len]
            .iter()
            .map(|w| {
                let inst = decode(*w);
                match inst.opcode {
                    Opcode::Bcc(_) => "B.cond".to_string(),
                    op => format!("{op:?}"),
                }
            })
            .collect();
        let want: Vec<String> = want.iter().map(|s| if *s == "BL" { "B".to_string() } else { s.to_string() }).collect();
        assert_eq!(got, want, "{word:#010x}");
        assert!(matches!(decode(r.words[r.len - 1]).opcode, Opcode::B), "{word:#010x}: must end in a branch");
    }
}
