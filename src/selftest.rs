// SPDX-License-Identifier: GPL-2.0
//! `insmod optprobe.ko selftest=1`: exercise the Rust API at load on a
//! function of this module. Calls `api` and `sys` (symbol bounds, text reads).

use crate::api::{ProbeHandler, Registration};
use crate::{bindings, insn, sys};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::error::code;
use kernel::prelude::*;

/// The function the self-test probes: small, out of line, with a body.
#[inline(never)]
#[no_mangle]
pub(crate) extern "C" fn optprobe_selftest_target(x: u64) -> u64 {
    // SAFETY: an empty asm statement only stops the compiler from folding calls.
    unsafe { core::arch::asm!("", options(nomem, nostack, preserves_flags)) };
    x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(7) ^ x
}

/// A Rust handler: counts hits and remembers the last `x0`.
struct SelftestHandler {
    hits: AtomicU64,
    last_x0: AtomicU64,
}

impl ProbeHandler for SelftestHandler {
    fn pre(&self, regs: &mut bindings::pt_regs) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `regs` is the hit's pt_regs; reading x0 from the union.
        let x0 = unsafe { regs.__bindgen_anon_1.__bindgen_anon_1.regs[0] };
        self.last_x0.store(x0, Ordering::Relaxed);
    }
}

/// Register a probe through [`Registration`] on the first optimizable
/// instruction of [`optprobe_selftest_target`], call it, drop it, call again.
pub(crate) fn run() -> Result {
    let func = optprobe_selftest_target as *const () as usize;
    let (start, size) = sys::symbol_bounds(func).ok_or(code::ENOENT)?;
    // The first instruction that runs out of line and does not touch x0 yet
    // (the first four are before any use of x0 in this tiny function).
    let mut offset = None;
    for off in (0..size.min(16)).step_by(4) {
        // SAFETY: inside our own function's text.
        let word = unsafe { sys::read_insn(start + off) };
        if insn::classify(word) == insn::Class::OutOfLine {
            offset = Some(off);
            break;
        }
    }
    let offset = offset.ok_or(code::ENOENT)?;
    let handler = KBox::new(SelftestHandler { hits: AtomicU64::new(0), last_x0: AtomicU64::new(0) }, GFP_KERNEL)?;
    let counts: *const SelftestHandler = &*handler;
    let reg = Registration::new(b"optprobe_selftest_target", offset, b"selftest", Some(handler))?;
    let optimized = reg.optimized();
    let mut sum = 0u64;
    for i in 0..100u64 {
        sum = sum.wrapping_add(optprobe_selftest_target(core::hint::black_box(i + 1000)));
    }
    // SAFETY: the handler is owned by `reg`, alive until it is dropped.
    let (hits, last) = unsafe { ((*counts).hits.load(Ordering::Relaxed), (*counts).last_x0.load(Ordering::Relaxed)) };
    drop(reg);
    let after = optprobe_selftest_target(core::hint::black_box(7));
    pr_info!(
        "selftest: Rust API probe at optprobe_selftest_target+{:#x}: {}, {} hits, last x0 {} (checksum {:#x})\n",
        offset,
        if optimized { "optimized" } else { "kprobe" },
        hits,
        last,
        sum ^ after
    );
    if hits != 100 || last != 1099 || !optimized {
        pr_err!("selftest: Rust API probe failed: want 100 hits, last x0 1099, optimized\n");
        return Err(code::EINVAL);
    }
    Ok(())
}
