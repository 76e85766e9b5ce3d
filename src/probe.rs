// SPDX-License-Identifier: GPL-2.0
//! One probe and its text transitions: `Probe`, `State`, `Spec`, and the
//! optimize / unoptimize steps that swap a kprobe's BRK for `b trampoline`
//! and back, in `stop_machine` batches. Decides eligibility and builds the
//! trampoline from the template.
//!
//! Calls `sys` (text lock, patching, symbols), `pool` (slots) and the pure
//! `insn`/`tramp`. The registry (`registry.rs`) owns the probes and calls in.
//!
//! Lifecycle, in order:
//! - attach: `register_kprobe` (BRK) -> trampoline written (unreachable, no
//!   sync needed) -> BRK swapped for `b` in a `stop_machine` batch.
//! - detach: `b` swapped back to BRK in a batch -> `synchronize_rcu_tasks()`
//!   (no task is left inside a trampoline, even a preempted one) -> slot
//!   freed -> `unregister_kprobes`.

use crate::bindings;
use crate::fixed_str::FixedStr;
use crate::pool::Pool;
use crate::tramp::FrameLink;
use crate::{control, hit, insn, kvec, sys, test_hooks, tramp};
use core::ffi::{c_int, c_void, CStr};
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

// --- Probes ------------------------------------------------------------------

/// A handler as the C ABI defines it: `void (*)(void *data, struct pt_regs *)`.
pub(crate) type RawHandler = unsafe extern "C" fn(*mut c_void, *mut bindings::pt_regs);

pub(crate) type Name = FixedStr<{ control::MAX_NAME + 1 }>;
pub(crate) type Symbol = FixedStr<{ control::MAX_SYMBOL + 1 }>;

/// What a probe is now.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// BRK kprobe; `reason` says why.
    Kprobe,
    /// `b trampoline` is live at the probe address.
    Optimized,
}

/// Where a new probe goes and what it runs.
pub(crate) struct Spec {
    pub(crate) symbol: Symbol,
    pub(crate) offset: usize,
    pub(crate) addr: usize,
    pub(crate) name: Name,
    pub(crate) handler: Option<RawHandler>,
    pub(crate) post_handler: Option<RawHandler>,
    pub(crate) data: *mut c_void,
}

/// One probe. Boxed, so its address (which the kprobe, the trampoline literal
/// and API callers hold) never changes.
///
/// # Invariants
///
/// - `kp` is registered from `attach_batch` until `detach_batch`.
/// - `state == Optimized` iff the text at `addr` is `b slot`, where `slot` is a
///   trampoline built for this probe; otherwise `slot == 0` or the slot is not
///   reachable from any live branch. One outside writer may break the first
///   half: the kprobes core, which on a global disarm/arm (debugfs
///   `kprobes/enabled`) writes the original instruction and then its BRK over
///   every kprobe. The slot then counts as reachable until the next
///   `unoptimize`, which frees it only after RCU-tasks (see [`Branch`]).
/// - `disabled` implies `state == Kprobe`, `slot == 0` and `kp` disabled (the
///   original instruction is back in place unless another kprobe shares it).
/// - `gone` implies `state == Kprobe` and `slot == 0`, and that the text at
///   `addr` may be freed: nothing reads or writes it again (a probe in a
///   module's init text once the module is live; the core marks its kprobe
///   `KPROBE_FLAG_GONE`). Only unregistering is left.
/// - `syms` is the resolved symbol table: a probe cannot exist before the
///   symbols are resolved, so the hit path never checks.
#[repr(C)]
pub(crate) struct Probe {
    pub(crate) kp: bindings::kprobe,
    pub(crate) addr: usize,
    pub(crate) syms: &'static sys::Symbols,
    symbol: Symbol,
    pub(crate) name: Name,
    pub(crate) handler: Option<RawHandler>,
    pub(crate) post_handler: Option<RawHandler>,
    pub(crate) data: *mut c_void,
    pub(crate) hits: sys::PerCpuCounter,
    pub(crate) state: State,
    /// Why the probe is not optimized. Static: the C ABI hands it out, and a
    /// caller may keep it past unregister.
    pub(crate) reason: &'static CStr,
    slot: usize,
    pub(crate) disabled: bool,
    pub(crate) gone: bool,
    /// Never reused: C ABI handles name probes by it (a freed probe's
    /// address can be a new probe's).
    pub(crate) id: u64,
    /// Selected for the registry's next detach batch.
    pub(crate) doomed: bool,
    /// Removed by its owner, but its branch could not be removed: kept by
    /// the registry, handler cleared (see [`Probe::orphan`]).
    pub(crate) orphaned: bool,
}

// SAFETY: a probe is shared between the registry (under its mutex) and the
// hit path, which only reads immutable fields and per-CPU counters.
unsafe impl Send for Probe {}
// SAFETY: as above.
unsafe impl Sync for Probe {}

impl Probe {
    /// A probe for `spec`, not yet registered: its kprobe is filled in but
    /// still needs [`Probe::register`].
    pub(crate) fn new(spec: &Spec) -> Result<KBox<Self>> {
        let mut probe = KBox::new(
            Probe {
                kp: bindings::kprobe::default(),
                addr: 0,
                syms: sys::syms(),
                symbol: spec.symbol,
                name: spec.name,
                handler: spec.handler,
                post_handler: spec.post_handler,
                data: spec.data,
                hits: sys::PerCpuCounter::new()?,
                state: State::Kprobe,
                reason: c"not optimized yet",
                slot: 0,
                disabled: false,
                gone: false,
                id: 0,
                doomed: false,
                orphaned: false,
            },
            GFP_KERNEL,
        )?;
        if !spec.symbol.is_empty() {
            probe.kp.symbol_name = probe.symbol.as_ptr();
            // CAST: offsets are checked against the symbol by the kernel.
            probe.kp.offset = spec.offset as u32;
        } else {
            probe.kp.addr = spec.addr as *mut u32;
        }
        probe.kp.pre_handler = Some(hit::optprobe_kp_pre_handler);
        if spec.post_handler.is_some() {
            probe.kp.post_handler = Some(hit::optprobe_kp_post_handler);
        }
        Ok(probe)
    }

    /// Register the kprobe disabled (nothing written yet) and check the
    /// address it resolved to: the address kprobes resolves may be data that
    /// must never get a BRK. [`arm`] writes the text afterwards, for the
    /// whole batch at once. On error nothing stays registered and the
    /// `pr_warn` names `spec`.
    pub(crate) fn register(&mut self, spec: &Spec) -> Result {
        self.kp.flags = bindings::KPROBE_FLAG_DISABLED;
        // SAFETY: `self.kp` is initialised, boxed (stable address) and its
        // symbol string lives in the same box.
        let mut ret = unsafe { bindings::register_kprobe(&mut self.kp) };
        let mut why = kprobe_error(ret);
        if ret == 0 {
            // CAST: kernel address.
            self.addr = self.kp.addr as usize;
            if in_ftrace_ops_literal(self.addr) {
                why = "ftrace ops literal before a function: data, not code (EINVAL)";
                ret = -22;
                // SAFETY: registered just above, never armed.
                unsafe { bindings::unregister_kprobe(&mut self.kp) };
            }
        }
        if ret < 0 {
            pr_warn!("cannot probe {}: {}\n", describe_target(spec), why);
            return Err(Error::from_errno(ret));
        }
        Ok(())
    }

    /// The kprobe hashed at our address: our own, or the aggregate we are in.
    ///
    /// # Safety
    ///
    /// The caller holds `kprobe_mutex` (or runs in an RCU read-side section)
    /// while it uses the pointer.
    unsafe fn hashed(&self) -> *mut bindings::kprobe {
        // SAFETY: a registered address, per the function's contract.
        unsafe { bindings::optprobe_call_get_kprobe(self.syms.get_kprobe, self.addr as *mut c_void) }
    }

    /// Set or clear the core's DISABLED flag on our kprobe and on the
    /// aggregate it is in, as the core does when it arms or disarms: the flag
    /// says enabled iff the text is BRK or our branch.
    ///
    /// # Safety
    ///
    /// The caller holds `kprobe_mutex` and `text_mutex`, and the text at the
    /// address agrees with the new flags.
    unsafe fn set_core_disabled(&mut self, disabled: bool) {
        let flag = bindings::KPROBE_FLAG_DISABLED;
        // SAFETY: per the function's contract.
        let at = unsafe { self.hashed() };
        for k in [ptr::addr_of_mut!(self.kp), at] {
            if k.is_null() {
                continue;
            }
            // SAFETY: live kprobes under kprobe_mutex.
            unsafe {
                if disabled {
                    (*k).flags |= flag;
                } else {
                    (*k).flags &= !flag;
                }
            }
        }
    }

    pub(crate) fn set_reason(&mut self, why: &'static CStr) {
        self.reason = why;
    }

    /// Keep a probe whose branch could not be removed: its owner is gone, so
    /// its handler must never run again, but its kprobe, its trampoline and
    /// the probe itself stay until a retry removes the branch. The caller
    /// waits for a grace period before telling the owner.
    pub(crate) fn orphan(&mut self) {
        // Volatile: the hit path reads these fields on other CPUs.
        // SAFETY: plain writes of pointer-sized fields of a live probe.
        unsafe {
            ptr::write_volatile(ptr::addr_of_mut!(self.handler), None);
            ptr::write_volatile(ptr::addr_of_mut!(self.post_handler), None);
        }
        self.orphaned = true;
        self.set_reason(c"orphan: branch could not be removed; retried on the next change");
    }

    /// Flag the kprobe disabled in the core (ours only, not an aggregate),
    /// so the core's unregister writes nothing.
    ///
    /// # Safety
    ///
    /// kprobe_mutex and text_mutex are held, and the text at the address is
    /// not a BRK the core would need to disarm.
    pub(crate) unsafe fn mark_core_disabled(&mut self) {
        self.kp.flags |= bindings::KPROBE_FLAG_DISABLED;
    }

    /// Does a slot wait to be freed?
    pub(crate) fn holds_slot(&self) -> bool {
        self.slot != 0
    }

    /// Free the slot.
    ///
    /// # Safety
    ///
    /// No branch leads to it and RCU-tasks has elapsed since the last did.
    pub(crate) unsafe fn free_slot_into(&mut self, pool: &mut Pool) {
        if self.slot != 0 {
            // SAFETY: per the function's contract.
            unsafe { pool.free_slot(self.slot) };
            self.slot = 0;
        }
    }

    /// Is our branch at the probe address now? (Reads the text: only for
    /// probes whose text is mapped.)
    pub(crate) fn branch_is_live(&self) -> bool {
        matches!(branch_state(self), Branch::Ours)
    }

    /// Forget the slot without freeing it: used when the branch to it may
    /// still be live, so the trampoline must leak rather than be reused.
    pub(crate) fn leak_slot(&mut self) {
        self.slot = 0;
    }
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
    // SAFETY: per the function's contract.
    unsafe {
        if at.is_null() || (*at).post_handler.is_none() {
            return false;
        }
        // CAST: `list` links the aggregate's kprobes (container_of).
        let offset = core::mem::offset_of!(bindings::kprobe, list);
        let off = bindings::KPROBE_FLAG_DISABLED | bindings::KPROBE_FLAG_GONE;
        let head = ptr::addr_of_mut!((*at).list);
        let mut pos = (*head).next;
        while !pos.is_null() && pos != head {
            let k = pos.cast::<u8>().wrapping_sub(offset).cast::<bindings::kprobe>();
            if (*k).post_handler.is_some() && (*k).flags & off == 0 {
                return true;
            }
            pos = (*pos).next;
        }
        false
    }
}

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
    // SAFETY: get_kprobe on a registered address; we hold no RCU-sensitive
    // pointer past the check (the registry mutex serialises our probes).
    let at_addr = unsafe { bindings::optprobe_call_get_kprobe(probe.syms.get_kprobe, site as *mut c_void) };
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
    if let insn::Class::Rejected(why) = insn::classify(orig_insn) {
        probe.set_reason(why.as_cstr());
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
        callback: hit::optprobe_callback as *const () as u64,
        link: frame_link(site),
        read_pan: sys::kernel_uses_pan(),
        read_pmr: sys::uses_irq_prio_masking(),
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
        let at = unsafe { probe.hashed() };
        let own = ptr::addr_of_mut!(probe.kp);
        // SAFETY: the live hashed kprobe, under kprobe_mutex.
        let joins_armed = !at.is_null() && at != own && unsafe { (*at).flags } & bindings::KPROBE_FLAG_DISABLED == 0;
        if scratch.addrs.as_slice().iter().any(|a| *a as usize == probe.addr) {
            probe.set_reason(c"address already optimized by another optprobe");
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
            if decode_is_our_branch(probe, live) {
                // INVARIANT: the branch to this probe's trampoline is live.
                probe.state = State::Optimized;
                probe.reason = c"-";
            } else {
                probe.set_reason(c"text patching failed");
                // SAFETY: the branch was not written: never reachable.
                unsafe { release_unreached_slot(pool, probe) };
            }
        }
        // SAFETY: kprobe_mutex held.
        let at = unsafe { probe.hashed() };
        // SAFETY: the live hashed kprobe, under kprobe_mutex.
        let joined = !at.is_null() && at != ptr::addr_of_mut!(probe.kp)
            && unsafe { (*at).flags } & bindings::KPROBE_FLAG_DISABLED == 0;
        let armed = live == insn::BRK_KPROBES || ours || (joined && live != probe.kp.opcode);
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
            if result.is_ok() || matches!(branch_state(probe), Branch::Ours) {
                // INVARIANT: the branch to this probe's trampoline is live.
                probe.state = State::Optimized;
                probe.reason = c"-";
            } else {
                probe.set_reason(c"text patching failed");
                // SAFETY: the branch was not written: never reachable.
                unsafe { release_unreached_slot(pool, probe) };
            }
        }
    });
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
    let core = disarm.then(sys::KprobeLock::new);
    let lock = sys::TextLock::new();
    scratch.clear();
    let mut stuck = 0;
    for (i, probe) in batch.iter_mut().enumerate() {
        if !select(probe) {
            continue;
        }
        // SAFETY: kprobe_mutex held when `core` is.
        let alone = core.is_some()
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
                    // INVARIANT: our branch is still there.
                    probe.state = State::Optimized;
                    probe.set_reason(c"-");
                    stuck += 1;
                }
            }
    });
    if let Some(core) = core.as_ref() {
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

fn describe_target(spec: &Spec) -> impl core::fmt::Display + '_ {
    struct D<'a>(&'a Spec);
    impl core::fmt::Display for D<'_> {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            if !self.0.symbol.is_empty() {
                write!(f, "{}+{:#x}", self.0.symbol.as_str(), self.0.offset)
            } else {
                write!(f, "{:#x}", self.0.addr)
            }
        }
    }
    D(spec)
}

/// Is `addr` in the 8 bytes just before a function, where ftrace with
/// `DYNAMIC_FTRACE_WITH_CALL_OPS` keeps a 64-bit `ftrace_ops` pointer (two NOPs
/// until ftrace initialises it)? kallsyms counts those bytes as the end of the
/// previous function, and kprobes accepts them; a BRK or a branch there would
/// corrupt the pointer ftrace loads when it traces the next function.
fn in_ftrace_ops_literal(addr: usize) -> bool {
    [addr + 4, addr + 8].into_iter().any(|next| {
        let Some((start, _)) = sys::symbol_bounds(next) else { return false };
        if start != next {
            return false;
        }
        // SAFETY: aligned words just before a kernel text symbol, inside the
        // probed function's kallsyms range.
        let (lo, hi) = unsafe { (sys::read_insn(next - 8), sys::read_insn(next - 4)) };
        insn::is_ftrace_ops_literal(lo, hi)
    })
}

/// One line of explanation for a `register_kprobe` error.
fn kprobe_error(ret: c_int) -> &'static str {
    match -ret {
        2 => "symbol not found (ENOENT)",
        22 => "address refused by kprobes: blacklisted, ftrace site, or bad offset (EINVAL)",
        84 => "not on an instruction boundary (EILSEQ)",
        16 => "address busy (EBUSY)",
        12 => "out of memory (ENOMEM)",
        _ => "register_kprobe failed",
    }
}
