// SPDX-License-Identifier: GPL-2.0
//! The text transitions of probes, in `stop_machine` batches: `arm` (a
//! freshly registered probe's original instruction to `b trampoline` or BRK),
//! `optimize` (an armed BRK to `b`), `unoptimize` (`b` back to BRK, or to the
//! original instruction when disarming), and what they rely on: eligibility
//! (`prepare`), the trampoline template, the frame link, the batch buffers.
//! Every read of a site that decides a write is made under the lock of that
//! write.
//!
//! Calls `sys` (text lock, patching, symbols), `pool` (slots) and the pure
//! `insn`/`tramp`; works on `probe::Probe`. The registry calls in.
//!
//! Lifecycle, in order:
//! - attach: `register_kprobe` disabled (nothing written) -> trampoline
//!   written (unreachable, no sync needed) -> original instruction to `b` in
//!   a `stop_machine` batch, the core's flag set enabled under its mutex.
//! - detach: `b` back to the original instruction (alone at the address) or
//!   BRK (shared) in a batch -> `synchronize_rcu_tasks()` (no task is left
//!   inside a trampoline, even a preempted one) -> slot freed ->
//!   `unregister_kprobes`.

use crate::bindings;
use crate::pool::Pool;
use crate::probe::{Probe, State};
use crate::tramp::FrameLink;
use crate::{hit, insn, kvec, sys, test_hooks, tramp};
use core::ffi::{c_void, CStr};
use core::ops::DerefMut;
use core::ptr;
use kernel::prelude::*;

/// Probes per `stop_machine` batch: bounds how long all CPUs stand still.
/// Larger requests are split, batch after batch; none is dropped.
const PATCH_BATCH: usize = 256;
/// Longest function prefix (in words) scanned to prove the frame record.
const MAX_FRAME_SCAN: usize = 4096;

// --- The template, as the assembler laid it out ----------------------------

extern "C" {
    static optprobe_tmpl_start: [u32; 0];
    static optprobe_tmpl_el: [u32; 0];
    static optprobe_tmpl_pan: [u32; 0];
    static optprobe_tmpl_pmr: [u32; 0];
    static optprobe_tmpl_frame_link: [u32; 0];
    static optprobe_tmpl_orig_insn: [u32; 0];
    static optprobe_tmpl_reloc_lit: [u32; 0];
    static optprobe_tmpl_probe: [u32; 0];
    static optprobe_tmpl_pc: [u32; 0];
    static optprobe_tmpl_callback: [u32; 0];
    static optprobe_tmpl_end: [u32; 0];
}

/// The template's label offsets and bytes.
pub(crate) fn template() -> (tramp::Layout, &'static [u8]) {
    let start = ptr::addr_of!(optprobe_tmpl_start) as usize;
    let at = |label: *const [u32; 0]| label as usize - start;
    let layout = tramp::Layout {
        size: at(ptr::addr_of!(optprobe_tmpl_end)),
        el: at(ptr::addr_of!(optprobe_tmpl_el)),
        pan: at(ptr::addr_of!(optprobe_tmpl_pan)),
        pmr: at(ptr::addr_of!(optprobe_tmpl_pmr)),
        frame_link: at(ptr::addr_of!(optprobe_tmpl_frame_link)),
        orig_insn: at(ptr::addr_of!(optprobe_tmpl_orig_insn)),
        reloc_lit: at(ptr::addr_of!(optprobe_tmpl_reloc_lit)),
        probe: at(ptr::addr_of!(optprobe_tmpl_probe)),
        pc: at(ptr::addr_of!(optprobe_tmpl_pc)),
        callback: at(ptr::addr_of!(optprobe_tmpl_callback)),
    };
    // SAFETY: `start..start + size` is the template's bytes in this module's
    // .rodata (asm/template.S), immutable and live as long as the module.
    let bytes = unsafe { core::slice::from_raw_parts(start as *const u8, layout.size) };
    (layout, bytes)
}

/// Does a kprobe at aggregate `at` (null: none) have a post-handler that
/// runs, i.e. on a kprobe neither disabled nor gone? Only the BRK path can
/// run post-handlers.
///
/// # Safety
///
/// `at` is null or the live kprobe hashed at an address, and the caller
/// holds kprobe_mutex or the registry mutex (our probes cannot leave).
pub(crate) unsafe fn has_enabled_post_handler(at: *mut bindings::kprobe) -> bool {
    let mut found = false;
    // SAFETY: per the function's contract.
    unsafe {
        if !at.is_null() && (*at).post_handler.is_some() {
            hit::for_each_in_aggregate(at, |k| found |= hit::runs_post_handler(k));
        }
    }
    found
}

/// Why a probe whose handlers redirected `pc` stays a BRK kprobe.
pub(crate) const PC_REFUSED: &CStr = c"a handler changed pc: refused (the optimized path cannot resume elsewhere)";

/// Which frame link a probe at `addr` needs (see asm/template.S and
/// `tramp::frame_link_for`): decided from the function's words from its
/// start up to the probe. Probes further in than [`MAX_FRAME_SCAN`] words,
/// or when memory is short, get the safe choice, `Entry`.
fn frame_link(addr: usize) -> FrameLink {
    let Some((start, _size)) = sys::symbol_bounds(addr) else {
        return FrameLink::Entry;
    };
    let index = (addr - start) / 4;
    if index > MAX_FRAME_SCAN {
        return FrameLink::Entry;
    }
    let Ok(mut words) = KVec::with_capacity(index, GFP_KERNEL) else {
        return FrameLink::Entry;
    };
    for i in 0..index {
        // SAFETY: aligned words of the same function, before the probe.
        let word = unsafe { sys::read_insn(start + i * 4) };
        // Capacity reserved above: cannot fail.
        let _ = words.push(word, GFP_KERNEL);
    }
    tramp::frame_link_for(words.as_slice(), index)
}

/// Decide whether `probe` (registered) can be optimized; write its trampoline
/// if so. `others`: the registry's other probes. Returns the branch to
/// install, or records the reason and `None`.
fn prepare(pool: &mut Pool, others: &[KBox<Probe>], lock: &sys::TextLock, probe: &mut Probe) -> Option<u32> {
    let site = probe.addr;
    let orig_insn = probe.kp.opcode;
    if probe.post_handler.is_some() {
        probe.set_reason(c"post-handler");
        return None;
    }
    if probe.pc_refused {
        probe.set_reason(PC_REFUSED);
        return None;
    }
    // SAFETY: get_kprobe on a registered address; we hold no RCU-sensitive
    // pointer past the check (the registry mutex serialises our probes).
    let at_addr = unsafe { probe.hashed() };
    if !ptr::eq(at_addr, &probe.kp) {
        // SAFETY: `at_addr` is the live aggregate for this address.
        if unsafe { has_enabled_post_handler(at_addr) } {
            probe.set_reason(c"another kprobe here has a post-handler");
            return None;
        }
        if others.iter().any(|p| p.addr == site && p.state == State::Optimized) {
            probe.set_reason(c"address already optimized by another optprobe");
            return None;
        }
    }
    if let insn::Class::Rejected(why) = insn::classify_site(orig_insn, probe.syms.bti_enforced) {
        probe.set_reason(why.as_cstr());
        // A function entry that src/entry.rs cannot deliver through ftrace.
        if why == insn::Reject::BtiLandingPad
            && insn::is_entry_landing_pad(orig_insn)
            && sys::symbol_bounds(site).is_some_and(|(start, _)| start == site)
        {
            probe.set_reason(crate::entry::NO_FTRACE_SITE);
        }
        // Compilers put landing pads and BLRs in every function; anything
        // else refused is unusual enough to name the instruction word.
        if !matches!(why, insn::Reject::BtiLandingPad | insn::Reject::IndirectCall) {
            pr_info!("probe at {:#x} stays a kprobe: {} (insn {:#010x})\n", site, why.as_str(), orig_insn);
        }
        return None;
    }
    let (layout, template) = template();
    let Some(slot) = pool.alloc_slot(site, insn::direct_branch_target(orig_insn, site as u64), &layout) else {
        probe.set_reason(c"no trampoline memory in branch range");
        return None;
    };
    let params = tramp::Params {
        tramp: slot as u64,
        site: site as u64,
        orig_insn,
        probe: probe as *mut Probe as u64,
        callback: hit::dispatch_for(probe.syms),
        link: frame_link(site),
        kernel_at_el2: probe.syms.percpu_el2,
        read_pan: sys::kernel_uses_pan(),
        read_pmr: sys::uses_irq_prio_masking(),
        landing_pads_enforced: probe.syms.bti_enforced,
    };
    let mut image = [0u8; tramp::SLOT_SIZE];
    let branch = tramp::build(&layout, template, &mut image, &params)
        .and_then(|()| tramp::site_branch(site as u64, slot as u64));
    match branch {
        Ok(branch) => {
            // SAFETY: `slot` was just allocated to this probe; no branch leads
            // to it until the batch below installs one.
            unsafe { lock.write_unreachable(slot, &image[..layout.size]) };
            probe.slot = slot;
            Some(branch)
        }
        Err(e) => {
            // SAFETY: the slot was never reachable.
            unsafe { pool.free_slot(slot) };
            if e == insn::ERANGE {
                probe.set_reason(c"target out of range");
            } else {
                pr_info!("probe at {:#x}: cannot relocate {:#010x} ({})\n", site, orig_insn, -e);
                probe.set_reason(c"cannot relocate instruction");
            }
            None
        }
    }
}

/// Buffers for text-patch batches, reserved ahead by the registry for every
/// probe it holds, so that unoptimize (and so detach) never allocates.
pub(crate) struct Scratch {
    addrs: KVec<*mut c_void>,
    insns: KVec<u32>,
    which: KVec<usize>,
}

impl Scratch {
    pub(crate) fn new() -> Self {
        Self { addrs: KVec::new(), insns: KVec::new(), which: KVec::new() }
    }

    /// Make room for batches of `n` probes.
    pub(crate) fn reserve(&mut self, n: usize) -> Result {
        self.clear();
        self.addrs.reserve(n, GFP_KERNEL)?;
        self.insns.reserve(n, GFP_KERNEL)?;
        self.which.reserve(n, GFP_KERNEL)?;
        Ok(())
    }

    fn clear(&mut self) {
        kvec::clear_copy(&mut self.addrs);
        kvec::clear_copy(&mut self.insns);
        kvec::clear_copy(&mut self.which);
    }

    /// Write everything queued, in `stop_machine` batches of at most
    /// [`PATCH_BATCH`]; after each, `judge` gets the queue indices it covered
    /// and its result (a failed batch may have written some entries).
    fn patch_all(&mut self, lock: &sys::TextLock, mut judge: impl FnMut(&Self, core::ops::Range<usize>, Result)) {
        let mut done = 0;
        while done < self.addrs.len() {
            let end = (done + PATCH_BATCH).min(self.addrs.len());
            let result = lock.patch_batch(&mut self.addrs.as_mut_slice()[done..end], &mut self.insns.as_mut_slice()[done..end]);
            judge(self, done..end, result);
            done = end;
        }
    }

    /// Queue `insn` for `addr`, remembering batch index `i`. Within the
    /// reserved capacity this cannot fail.
    fn push(&mut self, addr: usize, insn: u32, i: usize) -> Result {
        self.addrs.push(addr as *mut c_void, GFP_KERNEL)?;
        self.insns.push(insn, GFP_KERNEL)?;
        self.which.push(i, GFP_KERNEL)?;
        Ok(())
    }
}

/// Arm freshly registered (disabled) probes, all in one text-patch batch
/// per [`PATCH_BATCH`] instead of one `stop_machine` each: an eligible
/// probe's original instruction becomes `b trampoline` directly, any other
/// one's becomes BRK, and the core's DISABLED flags are cleared once the text
/// says armed, under `kprobe_mutex` and `text_mutex`, so flag and text always
/// agree (enabled iff the text is BRK or our branch). A probe joining a
/// kprobe already armed with a BRK (a foreign one) has that BRK replaced by
/// its branch when eligible. While kprobes are globally disarmed nothing is
/// written and the flags are cleared, as `register_kprobe` would leave them,
/// so re-arming all arms them.
///
/// Returns how many probes are still unarmed (a failed write): the caller
/// arms those through the core or gives up.
pub(crate) fn arm(pool: &mut Pool, scratch: &mut Scratch, others: &[KBox<Probe>], batch: &mut [&mut Probe]) -> usize {
    let core = sys::KprobeLock::new();
    if core.all_disarmed() {
        for probe in batch.iter_mut() {
            // SAFETY: kprobe_mutex held; nothing is armed while all are
            // disarmed, so the flags agree with the text either way.
            unsafe { probe.set_core_disabled(false) };
            probe.set_reason(c"kprobes disarmed (debugfs kprobes/enabled=0)");
        }
        return 0;
    }
    let lock = sys::TextLock::new();
    scratch.clear();
    for i in 0..batch.len() {
        // Batch members at the same address are still flagged disabled:
        // count their post-handlers as the core will once they are armed.
        let addr = batch[i].addr;
        let sibling_post = batch.iter().any(|q| q.addr == addr && q.post_handler.is_some());
        let probe = &mut *batch[i];
        // SAFETY: kprobe_mutex held.
        let joins_armed = unsafe { probe.joins_armed_aggregate() };
        if scratch.addrs.as_slice().iter().any(|a| *a as usize == probe.addr) {
            probe.set_reason(c"address already optimized by another optprobe");
            continue;
        }
        // A function entry on a BTI kernel: never a BRK; src/entry.rs
        // delivers it through ftrace (or the caller arms it with BRK when
        // that fails). Left unarmed here.
        if !joins_armed && crate::entry::candidate(probe) {
            probe.set_reason(crate::entry::NO_FTRACE_SITE);
            continue;
        }
        // Another probe of ours delivers this address through ftrace: the
        // core's view is "armed" with the landing pad in place; this one
        // joins that aggregate, whose handlers the call site runs.
        if others.iter().any(|q| q.addr == probe.addr && crate::entry::delivers(q)) {
            // SAFETY: both locks held; the aggregate is enabled and sym+0
            // holds the landing pad, which delivers.
            unsafe { probe.set_core_disabled(false) };
            probe.set_reason(crate::entry::SHARED);
            continue;
        }
        // SAFETY: registered kprobe address.
        let live = unsafe { sys::read_insn(probe.addr) };
        let expected = if joins_armed { insn::BRK_KPROBES } else { probe.kp.opcode };
        if live != expected {
            if joins_armed && insn::decode_b_target(probe.addr as u64, live).is_some() {
                probe.set_reason(c"address already optimized by another optprobe");
            } else {
                probe.set_reason(c"text at the probe is not its instruction");
            }
            continue;
        }
        let eligible = if sibling_post && probe.post_handler.is_none() {
            probe.set_reason(c"another kprobe here has a post-handler");
            None
        } else {
            prepare(pool, others, &lock, probe)
        };
        let word = match eligible {
            Some(branch) => branch,
            // Not eligible: arm it with BRK (joiners are armed already).
            None if joins_armed => continue,
            None => insn::BRK_KPROBES,
        };
        if scratch.push(probe.addr, word, i).is_err() {
            if probe.slot != 0 {
                // SAFETY: never made reachable.
                unsafe { release_unreached_slot(pool, probe) };
            }
            continue;
        }
        // Enabled before the write, so no hit after it is dropped as
        // "disabled"; set back below if the write fails. Both locks are
        // held, so nobody acts on the flag in between.
        // SAFETY: both locks held.
        unsafe { probe.set_core_disabled(false) };
    }
    // A failed batch is judged below from the text, probe by probe.
    scratch.patch_all(&lock, |_, _, _| {});
    let mut unarmed = 0;
    for i in 0..batch.len() {
        // SAFETY: registered kprobe address.
        let live = unsafe { sys::read_insn(batch[i].addr) };
        // Armed: our BRK, a branch written for a probe at this address in
        // this batch, or a kprobe already armed that we joined. Never "any
        // branch": a probed B or BL reads back as a branch when unpatched.
        let addr = batch[i].addr;
        let ours = batch.iter().any(|q| q.addr == addr && decode_is_our_branch(q, live));
        let probe = &mut *batch[i];
        if probe.slot != 0 {
            // SAFETY: kprobe_mutex held; a branch not read back was not written.
            unsafe { settle_branch(pool, probe, decode_is_our_branch(probe, live)) };
        }
        // SAFETY: kprobe_mutex held.
        let joined = unsafe { probe.joins_armed_aggregate() };
        let via_ftrace = others.iter().any(|q| q.addr == addr && crate::entry::delivers(q));
        let armed = via_ftrace || live == insn::BRK_KPROBES || ours || (joined && live != probe.kp.opcode);
        // SAFETY: both locks held; the flag follows the text.
        unsafe { probe.set_core_disabled(!armed) };
        if !armed {
            unarmed += 1;
        }
    }
    unarmed
}

/// Optimize every probe in `batch` that is eligible: trampolines first, then
/// the BRK -> `b` swap in `stop_machine` batches of at most [`PATCH_BATCH`].
/// `others`: the registry's probes not in `batch`.
///
/// A batch that fails part-way (`aarch64_insn_patch_text` stops at the first
/// failing write; earlier writes are live) is judged probe by probe from the
/// text: a probe whose branch is there is optimized, the others keep their
/// BRK and get their never-reached trampolines back.
pub(crate) fn optimize(pool: &mut Pool, scratch: &mut Scratch, others: &[KBox<Probe>], batch: &mut [&mut Probe]) {
    // The core arms and disarms under kprobe_mutex, then text_mutex: holding
    // both, the BRK we check below is the BRK we replace.
    let core = sys::KprobeLock::new();
    if core.all_disarmed() {
        for probe in batch.iter_mut() {
            probe.set_reason(c"kprobes disarmed (debugfs kprobes/enabled=0)");
        }
        return;
    }
    let lock = sys::TextLock::new();
    scratch.clear();
    for (i, probe) in batch.iter_mut().enumerate() {
        if scratch.addrs.as_slice().iter().any(|a| *a as usize == probe.addr) {
            probe.set_reason(c"address already optimized by another optprobe");
            continue;
        }
        let Some(branch) = prepare(pool, others, &lock, probe) else { continue };
        // SAFETY: the probe's address is registered kernel text.
        let queued = unsafe { sys::read_insn(probe.addr) } == insn::BRK_KPROBES
            && scratch.push(probe.addr, branch, i).is_ok();
        if !queued {
            probe.set_reason(c"text at the probe is not our BRK");
            // SAFETY: the slot was never made reachable.
            unsafe { release_unreached_slot(pool, probe) };
        }
    }
    scratch.patch_all(&lock, |scratch, range, result| {
        for &i in &scratch.which.as_slice()[range] {
            let probe = &mut batch[i];
            // Only a failed batch needs the text read back.
            let written = result.is_ok() || matches!(branch_state(probe), Branch::Ours);
            // SAFETY: kprobe_mutex held (`core`); a branch not read back was
            // not written.
            unsafe { settle_branch(pool, probe, written) };
        }
    });
}

/// Record that `probe`'s branch is live: optimized, in our state and in the
/// core's OPTIMIZED flag.
///
/// # Safety
///
/// The caller holds kprobe_mutex, and the text at the address is the branch
/// to `probe.slot`.
unsafe fn mark_optimized(probe: &mut Probe) {
    // INVARIANT: the branch to this probe's trampoline is live.
    probe.state = State::Optimized;
    probe.set_reason(c"-");
    // SAFETY: per the function's contract.
    unsafe { probe.set_core_optimized(true) };
}

/// After a batch wrote (or failed to write) `probe`'s branch: optimized when
/// `written`, else its slot goes back to the pool.
///
/// # Safety
///
/// The caller holds kprobe_mutex; `written` is true iff the branch to
/// `probe.slot` is live (when false it was never written).
unsafe fn settle_branch(pool: &mut Pool, probe: &mut Probe, written: bool) {
    if written {
        // SAFETY: per the function's contract.
        unsafe { mark_optimized(probe) };
    } else {
        probe.set_reason(c"text patching failed");
        // SAFETY: the branch was not written: never reachable.
        unsafe { release_unreached_slot(pool, probe) };
    }
}

/// Give back a slot no branch ever led to (no RCU-tasks wait needed).
///
/// # Safety
///
/// No branch to `probe.slot` was ever written.
unsafe fn release_unreached_slot(pool: &mut Pool, probe: &mut Probe) {
    // SAFETY: per the function's contract.
    unsafe { pool.free_slot(probe.slot) };
    probe.slot = 0;
}

/// Is `live` the branch to `probe`'s trampoline?
fn decode_is_our_branch(probe: &Probe, live: u32) -> bool {
    probe.slot != 0 && insn::decode_b_target(probe.addr as u64, live) == Some(probe.slot as u64)
}

/// What is at an optimized probe's address now.
pub(crate) enum Branch {
    /// `b` to its trampoline.
    Ours,
    /// The kprobes core wrote its BRK or the original instruction there
    /// (debugfs `kprobes/enabled`: disarm all, arm all); the branch is gone.
    ReplacedByKprobes,
    /// Anything else.
    Unknown(u32),
}

pub(crate) fn branch_state(probe: &Probe) -> Branch {
    // SAFETY: registered kprobe address.
    let live = unsafe { sys::read_insn(probe.addr) };
    if insn::decode_b_target(probe.addr as u64, live) == Some(probe.slot as u64) {
        Branch::Ours
    } else if live == insn::BRK_KPROBES || live == probe.kp.opcode {
        Branch::ReplacedByKprobes
    } else {
        Branch::Unknown(live)
    }
}

/// Undo `optimize` for the optimized probes in `batch` that `select` picks:
/// `b` -> BRK in batches, wait for every task to leave the trampolines, free
/// the slots. Never allocates (the registry reserved `scratch`).
///
/// The site is read and the decision made under the same text lock that the
/// write takes: the kprobes core writes kprobe sites under `text_mutex` too
/// (debugfs `kprobes/enabled` disarms every kprobe), so no core write can
/// fall between our check and our patch.
///
/// Judged probe by probe: a probe whose site holds unknown text (fail
/// closed: never overwritten) or whose write failed keeps `state ==
/// Optimized` and its slot; every other selected probe is left a BRK kprobe
/// with its slot freed after RCU-tasks. Returns how many stay optimized.
pub(crate) fn unoptimize<P: DerefMut<Target = Probe>>(
    pool: &mut Pool,
    scratch: &mut Scratch,
    batch: &mut [P],
    select: impl Fn(&Probe) -> bool,
    disarm: bool,
) -> usize {
    // Our own state (under the registry mutex): nothing of ours to undo.
    if !disarm && batch.iter().all(|p| !select(p) || (p.state != State::Optimized && p.slot == 0)) {
        return 0;
    }
    // `disarm`: the probes are leaving or being disabled. One that is alone
    // at its address gets its original instruction back in this batch and
    // the core's DISABLED flag with it (under kprobe_mutex, so flag and
    // text agree), and the core then has nothing to write; one sharing the
    // address with other kprobes keeps the BRK they need.
    // kprobe_mutex always: the core's flags (DISABLED, OPTIMIZED) follow
    // the text we write.
    let core = sys::KprobeLock::new();
    let lock = sys::TextLock::new();
    scratch.clear();
    let mut stuck = 0;
    for (i, probe) in batch.iter_mut().enumerate() {
        if !select(probe) {
            continue;
        }
        // SAFETY: kprobe_mutex held when `core` is.
        let alone = disarm
            && !probe.gone
            && unsafe { probe.hashed() } == ptr::addr_of_mut!(probe.kp)
            && probe.kp.flags & bindings::KPROBE_FLAG_DISABLED == 0;
        let restore = if alone { probe.kp.opcode } else { insn::BRK_KPROBES };
        if probe.state != State::Optimized {
            // A BRK kprobe of ours: disarm it here rather than in the core.
            // SAFETY: registered kprobe address.
            if alone && unsafe { sys::read_insn(probe.addr) } == insn::BRK_KPROBES {
                let _ = scratch.push(probe.addr, restore, i);
            }
            continue;
        }
        match branch_state(probe) {
            Branch::Ours => {
                if scratch.push(probe.addr, restore, i).is_err() {
                    pr_err!("probe at {:#x}: no room to queue the patch\n", probe.addr);
                    stuck += 1;
                    continue;
                }
            }
            // The kprobes core rewrote the site itself: nothing to patch
            // but its BRK when we disarm; the trampoline still waits for
            // RCU-tasks below.
            Branch::ReplacedByKprobes => {
                // SAFETY: registered kprobe address.
                if alone && unsafe { sys::read_insn(probe.addr) } == insn::BRK_KPROBES {
                    let _ = scratch.push(probe.addr, restore, i);
                }
            }
            // Fail closed: unknown text, never overwritten, never freed.
            Branch::Unknown(live) => {
                pr_err!("text at {:#x} is {:#010x}, not our branch: left alone\n", probe.addr, live);
                stuck += 1;
                continue;
            }
        }
        // INVARIANT: the branch is gone once the batch below is written
        // (checked again there if it fails).
        probe.state = State::Kprobe;
        probe.set_reason(c"unoptimized");
        if !probe.gone {
            // SAFETY: kprobe_mutex held (`core`).
            unsafe { probe.set_core_optimized(false) };
        }
    }
    test_hooks::delay(test_hooks::Point::UnoptimizeChecked);
    scratch.patch_all(&lock, |scratch, range, result| {
            for k in range {
                let probe = &mut *batch[scratch.which.as_slice()[k]];
                let wanted = scratch.insns.as_slice()[k];
                // SAFETY: registered kprobe address.
                let live = if result.is_ok() { wanted } else { unsafe { sys::read_insn(probe.addr) } };
                if live == wanted && wanted != insn::BRK_KPROBES {
                    // INVARIANT: the original instruction is back: the core's
                    // flag says disabled, as its own disarm would leave it.
                    // SAFETY: both locks held (`core`, `lock`).
                    unsafe { probe.set_core_disabled(true) };
                } else if live != wanted && decode_is_our_branch(probe, live) {
                    // SAFETY: kprobe_mutex held (`core`); our branch is
                    // still there.
                    unsafe { mark_optimized(probe) };
                    stuck += 1;
                }
            }
    });
    if disarm {
        // All kprobes disarmed: the core wrote the original instruction; a
        // probe alone there that leaves is disabled too.
        if core.all_disarmed() {
            for probe in batch.iter_mut().filter(|p| select(p) && !p.gone) {
                // SAFETY: kprobe_mutex held.
                if unsafe { probe.hashed() } == ptr::addr_of_mut!(probe.kp) {
                    // SAFETY: both locks held; nothing is armed.
                    unsafe { probe.set_core_disabled(true) };
                }
            }
        }
    }
    drop(lock);
    drop(core);
    // Gone probes keep their slot here: their text may still branch to it
    // until the core's unregister writes over it (see Registry::finish_leaving).
    let freeable = |p: &Probe| select(p) && p.state == State::Kprobe && p.slot != 0 && !p.gone;
    if batch.iter().any(|p| freeable(p)) {
        // A task may have been preempted inside a trampoline; RCU-tasks
        // returns only once every task has voluntarily switched, i.e. left it.
        // SAFETY: process context.
        unsafe { bindings::synchronize_rcu_tasks() };
        for probe in batch.iter_mut() {
            if freeable(probe) {
                // SAFETY: branch removed and RCU-tasks grace period elapsed.
                unsafe { pool.free_slot(probe.slot) };
                probe.slot = 0;
            }
        }
    }
    stuck
}
