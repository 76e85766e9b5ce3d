//! `make coverage`: classify every instruction word of a kernel's `.text`
//! (raw bytes, as `llvm-objcopy -O binary --only-section=.text` writes them).
//!
//! Prints a histogram by outcome and reason, then
//! `RESULT optimizable: NN.N% of N instructions`, where N counts the words
//! the kernel's own kprobes would accept (a model of
//! arch/arm64/kernel/probes/decode-insn.c) and "optimizable" means optprobe
//! runs them out of line or relocates them.
use optprobe_host::insn::{self, Class};
use std::collections::BTreeMap;

/// Would arm64 kprobes (6.12) accept a probe on this word? Models
/// aarch64_insn_is_steppable() plus the simulated classes; ignores the
/// address-based checks (blacklist, ftrace sites, atomic sequences).
fn kprobes_accepts(w: u32) -> bool {
    let is = |mask: u32, value: u32| w & mask == value;
    let branch_sys = is(0x1c00_0000, 0x1400_0000);
    // Simulated: b.cond, cbz/cbnz, tbz/tbnz, adr/adrp, b/bl, br/blr/ret, ldr/ldrsw literal.
    let simulated = is(0xff00_0010, 0x5400_0000)
        || is(0x7e00_0000, 0x3400_0000)
        || is(0x7e00_0000, 0x3600_0000)
        || is(0x1f00_0000, 0x1000_0000)
        || is(0x7c00_0000, 0x1400_0000)
        || is(0xffff_fc1f, 0xd61f_0000)
        || is(0xffff_fc1f, 0xd63f_0000)
        || is(0xffff_fc1f, 0xd65f_0000)
        || is(0xbf00_0000, 0x1800_0000)
        || is(0xff00_0000, 0x9800_0000);
    if simulated {
        return true;
    }
    if branch_sys {
        let branch = is(0x7c00_0000, 0x1400_0000)
            || is(0xfe00_0000, 0x5400_0000)
            || is(0x7e00_0000, 0x3400_0000)
            || is(0x7e00_0000, 0x3600_0000)
            || is(0xfe00_0000, 0xd600_0000);
        let msr = is(0xfff8_f01f, 0xd500_401f) || is(0xfff0_0000, 0xd510_0000);
        let exception = is(0xff00_0000, 0xd400_0000);
        if branch || msr || exception {
            return false;
        }
        if is(0xfff0_0000, 0xd530_0000) {
            // MRS: only DAIF.
            return (w >> 5) & 0x7fff == 0x5a11;
        }
        if is(0xffff_f01f, 0xd503_201f) {
            // HINT: the kernel's steppable list.
            return matches!(
                w & 0xfe0,
                0x0e0 | 0x100 | 0x140 | 0x300 | 0x320 | 0x340 | 0x360 | 0x400 | 0x440 | 0x480 | 0x4c0 | 0x000
            );
        }
        return true;
    }
    let literal = is(0xbf00_0000, 0x1800_0000) || is(0xff00_0000, 0x9800_0000) || is(0xff00_0000, 0xd800_0000) || is(0x1f00_0000, 0x1000_0000);
    let exclusive = is(0x3f00_0000, 0x0800_0000);
    let mops = is(0x3b20_0c00, 0x1900_0400);
    !(literal || exclusive || mops)
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: coverage TEXT.bin");
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut hist: BTreeMap<String, u64> = BTreeMap::new();
    let (mut total, mut accepted, mut optimizable, mut optimizable_all) = (0u64, 0u64, 0u64, 0u64);
    for chunk in text.chunks_exact(4) {
        let word = u32::from_le_bytes(chunk.try_into().unwrap());
        total += 1;
        let class = insn::classify(word);
        let ours = !matches!(class, Class::Rejected(_));
        let key = match class {
            Class::OutOfLine => "optimized: runs out of line".to_string(),
            Class::PcRelative(k) => format!("optimized: relocated {}", k.as_str()),
            Class::Rejected(r) => format!("kprobe: {}", r.as_str()),
        };
        *hist.entry(key).or_default() += 1;
        optimizable_all += ours as u64;
        if kprobes_accepts(word) {
            accepted += 1;
            optimizable += ours as u64;
        }
    }
    println!("{:>10}  {:>6}  outcome", "words", "share");
    let mut rows: Vec<_> = hist.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1));
    for (key, n) in rows {
        println!("{n:>10}  {:>5.1}%  {key}", 100.0 * n as f64 / total as f64);
    }
    println!("{total} words in .text; kprobes would accept {accepted}; optprobe optimizes {optimizable_all} of all words");
    println!("RESULT optimizable: {:.1}% of {} instructions", 100.0 * optimizable as f64 / accepted as f64, accepted);
}
