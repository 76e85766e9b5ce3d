//! The classifier against an independent decoder (yaxpeax-arm), over a
//! fixed-seed sample of 10^7 words (every `cargo test`) and all 2^32 words
//! (ignored by plain `cargo test`; `make test` and `make test-exhaustive`
//! include it: 76 s in release mode on the 2-core test bed).
//!
//! Properties:
//! - every word the oracle decodes as PC-relative (an operand that is an
//!   offset from the PC) is classified PC-relative, of the same kind;
//! - nothing classified as running out of line is, to the oracle, a branch
//!   with link, an exception, an exception return or PC-relative;
//! - every word classified PC-relative decodes to that kind (or is unknown to
//!   the oracle: yaxpeax-arm 0.3 predates BC.cond).
use optprobe_host::insn::{self, Class, PcRel, Reject};
use yaxpeax_arch::{Decoder, U8Reader};
use yaxpeax_arm::armv8::a64::{InstDecoder, Opcode, Operand};

#[derive(Default, Debug)]
struct Tally {
    words: u64,
    undecodable_out_of_line: u64,
}

fn oracle_kind(op: Opcode, pc_relative: bool) -> Option<Class> {
    Some(match op {
        Opcode::ADR => Class::PcRelative(PcRel::Adr),
        Opcode::ADRP => Class::PcRelative(PcRel::Adrp),
        Opcode::B => Class::PcRelative(PcRel::B),
        Opcode::BL => Class::PcRelative(PcRel::Bl),
        Opcode::Bcc(_) => Class::PcRelative(PcRel::BCond),
        Opcode::CBZ | Opcode::CBNZ => Class::PcRelative(PcRel::Cbz),
        Opcode::TBZ | Opcode::TBNZ => Class::PcRelative(PcRel::Tbz),
        Opcode::SVC | Opcode::HVC | Opcode::SMC | Opcode::BRK | Opcode::HLT | Opcode::DCPS1 | Opcode::DCPS2 | Opcode::DCPS3 => {
            Class::Rejected(Reject::Exception)
        }
        Opcode::BLR | Opcode::BLRAA | Opcode::BLRAAZ | Opcode::BLRAB | Opcode::BLRABZ => Class::Rejected(Reject::IndirectCall),
        Opcode::ERET | Opcode::ERETAA | Opcode::ERETAB | Opcode::DRPS => Class::Rejected(Reject::ExceptionReturn),
        _ if pc_relative => return Some(Class::PcRelative(PcRel::LdrLiteral)), // kind refined below
        _ => return None,
    })
}

fn check_word(decoder: &InstDecoder, word: u32, tally: &mut Tally) {
    tally.words += 1;
    let class = insn::classify(word);
    let bytes = word.to_le_bytes();
    let Ok(inst) = decoder.decode(&mut U8Reader::new(&bytes)) else {
        if class == Class::OutOfLine {
            tally.undecodable_out_of_line += 1;
        }
        if let Class::PcRelative(kind) = class {
            assert_eq!(kind, PcRel::BCond, "{word:#010x}: PC-relative to us, undecodable to the oracle");
        }
        return;
    };
    let pc_relative = inst.operands.iter().any(|o| matches!(o, Operand::PCOffset(_)));
    let expect = oracle_kind(inst.opcode, pc_relative);
    match (class, expect) {
        (Class::PcRelative(PcRel::LdrLiteral | PcRel::LdrLiteralFp), Some(Class::PcRelative(PcRel::LdrLiteral))) => {}
        (got, Some(want)) => assert_eq!(got, want, "{word:#010x} decodes as {inst}"),
        (Class::PcRelative(kind), None) => panic!("{word:#010x}: {kind:?} to us, but {inst} to the oracle"),
        (_, None) => {}
    }
}

fn sweep(words: impl Iterator<Item = u32>) -> Tally {
    let decoder = InstDecoder::default();
    let mut tally = Tally::default();
    for word in words {
        check_word(&decoder, word, &mut tally);
    }
    tally
}

#[test]
fn sample_of_ten_million_words() {
    let mut state = 0x0dd_b1a5_e5ba_d5eedu64;
    let tally = sweep((0..10_000_000u32).map(|_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 16) as u32
    }));
    assert_eq!(tally.words, 10_000_000);
    println!("sample: {tally:?}");
}

#[test]
#[ignore = "all 2^32 words: run by make test and make test-exhaustive"]
fn exhaustive_all_words() {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let chunk = (1u64 << 32) / threads;
    let start = std::time::Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                let end = if t + 1 == threads { 1 << 32 } else { (t + 1) * chunk };
                sweep((t * chunk..end).map(|w| w as u32))
            })
        })
        .collect();
    let mut words = 0;
    let mut undecodable = 0;
    for h in handles {
        let t = h.join().expect("sweep thread panicked");
        words += t.words;
        undecodable += t.undecodable_out_of_line;
    }
    assert_eq!(words, 1 << 32);
    println!(
        "exhaustive: {words} words in {:.0} s; {undecodable} classified out-of-line are unknown to the oracle",
        start.elapsed().as_secs_f64()
    );
}
