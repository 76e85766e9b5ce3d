// SPDX-License-Identifier: GPL-2.0
//! optprobe: optimized kprobes for arm64.
//!
//! Every probe is an ordinary kernel kprobe first: that gives the kernel's
//! address checks and the BRK fallback. An eligible probe is then optimized:
//! its BRK becomes `b trampoline`, where the trampoline (built from
//! `asm/template.S`) saves a full `pt_regs`, calls [`optprobe_callback`], runs
//! the original instruction and branches back. Trampolines live in pages
//! allocated within branch range of each probe site.
//!
//! Lifecycle, in order:
//! - attach: `register_kprobe` (BRK) -> trampoline written (unreachable, no
//!   sync needed) -> BRK swapped for `b` in a `stop_machine` batch.
//! - detach: `b` swapped back to BRK in a batch -> `synchronize_rcu_tasks()`
//!   (no task is left inside a trampoline, even a preempted one) -> slot
//!   freed -> `unregister_kprobes`.

use core::ffi::{c_char, c_int, c_long, c_ulong, c_void, CStr};
use core::fmt::Write;
use core::pin::Pin;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::error::{code, Error};
use kernel::prelude::*;
use kernel::sync::Mutex;

// The pure, kernel-free parts are public so the host crate (tests/host) can
// compile the same files; within the module they are internal.
pub mod control;
pub mod insn;
mod sys;
pub mod tramp;

#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    improper_ctypes,
    missing_docs,
    unsafe_op_in_unsafe_fn,
    unreachable_pub,
    unnecessary_transmutes,
    clippy::all
)]
mod bindings {
    include!("bindings_generated.rs");
}

use tramp::FrameLink;

module! {
    type: OptprobeModule,
    name: "optprobe",
    author: "optprobe developers",
    description: "Optimized kprobes for arm64: direct branches to trampolines",
    license: "GPL",
}

/// Probes per `stop_machine` batch: bounds how long all CPUs stand still.
/// Larger requests are split, batch after batch; none is dropped.
const PATCH_BATCH: usize = 256;
/// Most probes the control file will hold.
const MAX_SYSFS_PROBES: usize = 4096;
/// Longest function prefix scanned for the frame-record setup.
const MAX_PROLOGUE_SCAN: usize = 64;

// --- The template, as the assembler laid it out ----------------------------

extern "C" {
    static optprobe_tmpl_start: [u32; 0];
    static optprobe_tmpl_frame_link: [u32; 0];
    static optprobe_tmpl_orig_insn: [u32; 0];
    static optprobe_tmpl_reloc_lit: [u32; 0];
    static optprobe_tmpl_probe: [u32; 0];
    static optprobe_tmpl_pc: [u32; 0];
    static optprobe_tmpl_callback: [u32; 0];
    static optprobe_tmpl_end: [u32; 0];
}

/// The template's label offsets and bytes.
fn template() -> (tramp::Layout, &'static [u8]) {
    let start = ptr::addr_of!(optprobe_tmpl_start) as usize;
    let at = |label: *const [u32; 0]| label as usize - start;
    let layout = tramp::Layout {
        size: at(ptr::addr_of!(optprobe_tmpl_end)),
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
type RawHandler = unsafe extern "C" fn(*mut c_void, *mut bindings::pt_regs);

/// Fixed-size, NUL-terminated text (names, reasons, symbols).
#[derive(Clone, Copy)]
struct FixedStr<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> FixedStr<N> {
    const fn new() -> Self {
        Self { buf: [0; N], len: 0 }
    }

    fn from_bytes(s: &[u8]) -> Self {
        let mut out = Self::new();
        let len = s.len().min(N - 1);
        out.buf[..len].copy_from_slice(&s[..len]);
        out.len = len;
        out
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("?")
    }

    fn as_ptr(&self) -> *const c_char {
        self.buf.as_ptr().cast()
    }
}

impl<const N: usize> Write for FixedStr<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = N - 1 - self.len;
        let take = s.len().min(room);
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        self.buf[self.len] = 0;
        Ok(())
    }
}

/// What a probe is now.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// BRK kprobe; `reason` says why.
    Kprobe,
    /// `b trampoline` is live at the probe address.
    Optimized,
}

/// Where a new probe goes and what it runs.
pub(crate) struct Spec {
    symbol: FixedStr<{ control::MAX_SYMBOL + 1 }>,
    offset: usize,
    addr: usize,
    name: FixedStr<{ control::MAX_NAME + 1 }>,
    handler: Option<RawHandler>,
    post_handler: Option<RawHandler>,
    data: *mut c_void,
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
#[repr(C)]
pub struct Probe {
    kp: bindings::kprobe,
    addr: usize,
    symbol: FixedStr<{ control::MAX_SYMBOL + 1 }>,
    name: FixedStr<{ control::MAX_NAME + 1 }>,
    handler: Option<RawHandler>,
    post_handler: Option<RawHandler>,
    data: *mut c_void,
    hits: sys::PerCpuCounter,
    state: State,
    reason: FixedStr<64>,
    slot: usize,
    disabled: bool,
}

// SAFETY: a probe is shared between the registry (under its mutex) and the
// hit path, which only reads immutable fields and per-CPU counters.
unsafe impl Send for Probe {}
// SAFETY: as above.
unsafe impl Sync for Probe {}

impl Probe {
    fn set_reason(&mut self, args: core::fmt::Arguments<'_>) {
        self.reason = FixedStr::new();
        let _ = self.reason.write_fmt(args);
    }
}

/// The kprobe's pre-handler: runs on BRK hits and, via [`optprobe_callback`],
/// on trampoline hits. Always returns 0: handlers may not redirect `pc`.
#[no_mangle]
unsafe extern "C" fn optprobe_kp_pre_handler(kp: *mut bindings::kprobe, regs: *mut bindings::pt_regs) -> c_int {
    // CAST: `kp` is the first field of a `#[repr(C)]` Probe (container_of).
    let probe = kp.cast::<Probe>();
    // SAFETY: the kernel only calls this for registered kprobes, which are
    // embedded in live Probes (type invariant).
    unsafe {
        (*probe).hits.inc();
        if let Some(handler) = (*probe).handler {
            handler((*probe).data, regs);
        }
    }
    0
}

#[no_mangle]
unsafe extern "C" fn optprobe_kp_post_handler(
    kp: *mut bindings::kprobe,
    regs: *mut bindings::pt_regs,
    _flags: c_ulong,
) {
    // CAST: as in optprobe_kp_pre_handler.
    let probe = kp.cast::<Probe>();
    // SAFETY: as in optprobe_kp_pre_handler.
    unsafe {
        if let Some(post) = (*probe).post_handler {
            post((*probe).data, regs);
        }
    }
}

/// `KPROBE_HIT_ACTIVE` from arch/arm64/include/asm/kprobes.h.
const KPROBE_HIT_ACTIVE: u32 = 0x0000_0001;

/// Called by every trampoline with the full `pt_regs` of the probe hit.
///
/// Mirrors the kernel's BRK path: preemption off, `current_kprobe` set for the
/// duration, and a hit while another kprobe is active on this CPU counted as
/// missed. The probe found at the address may be an aggregate when another
/// kprobe shares it; its pre-handler then runs every handler.
///
/// # Safety
///
/// Only trampolines call this, with `probe` from their literal (a live Probe,
/// kept alive until after `synchronize_rcu_tasks()`) and `regs` on the stack.
#[no_mangle]
pub unsafe extern "C" fn optprobe_callback(probe: *mut c_void, regs: *mut bindings::pt_regs) {
    let probe = probe.cast::<Probe>();
    let s = sys::syms();
    // SAFETY: see the function's contract; the per-CPU pointers are the
    // kernel's, and preemption is disabled while they are used.
    unsafe {
        bindings::optprobe_preempt_disable();
        let current = bindings::optprobe_this_cpu_ptr(s.current_kprobe).cast::<*mut bindings::kprobe>();
        if !(*current).is_null() {
            // Wrapping: no overflow-check panic may sit on the hit path.
            (*probe).kp.nmissed = (*probe).kp.nmissed.wrapping_add(1);
        } else {
            // register_kprobe() points kp.list at itself; only when another
            // kprobe shares the address does the kernel move ours into an
            // aggregate, whose pre-handler runs them all. Skip the hash
            // lookup in the common, unshared case.
            let own = ptr::addr_of_mut!((*probe).kp);
            let list = ptr::addr_of_mut!((*own).list);
            let kp = if ptr::read_volatile(ptr::addr_of!((*list).next)) == list {
                own
            } else {
                bindings::optprobe_call_get_kprobe(s.get_kprobe, (*probe).addr as *mut c_void)
            };
            let disabled = bindings::KPROBE_FLAG_DISABLED | bindings::KPROBE_FLAG_GONE;
            if !kp.is_null() && (*kp).flags & disabled == 0 {
                *current = kp;
                // Both are per-CPU variables: same per-CPU offset. Their
                // order is the linker's, so the difference may be negative.
                let delta = (s.kprobe_ctlblk as usize).wrapping_sub(s.current_kprobe as usize);
                let kcb = current.cast::<u8>().wrapping_add(delta).cast::<bindings::kprobe_ctlblk>();
                (*kcb).kprobe_status = KPROBE_HIT_ACTIVE;
                if let Some(pre) = (*kp).pre_handler {
                    pre(kp, regs);
                }
                *current = ptr::null_mut();
            }
        }
        bindings::optprobe_preempt_enable();
    }
}

// --- Trampoline pool -----------------------------------------------------------

/// One page of trampoline slots.
struct TrampPage {
    base: usize,
    /// Bit i set: slot i is in use (or waiting for an RCU-tasks grace period).
    used: u64,
}

/// Counts over the registry, taken under its lock.
#[derive(Default)]
struct Counts {
    probes: usize,
    optimized: usize,
    disabled: usize,
    trampoline_pages: usize,
}

/// All probes and trampoline pages.
pub(crate) struct Registry {
    probes: KVec<KBox<Probe>>,
    pages: KVec<TrampPage>,
}

fn slots_per_page() -> usize {
    (sys::page_size() / tramp::SLOT_SIZE).min(64)
}

/// Remove and return element `i` of `v`, moving the last element into its place.
fn swap_remove<T>(v: &mut KVec<T>, i: usize) -> T {
    let len = v.len();
    assert!(i < len);
    v.as_mut_slice().swap(i, len - 1);
    // SAFETY: `len - 1` is in bounds; the element is read out once and the
    // length shrunk so it is not dropped again.
    unsafe {
        let last = ptr::read(v.as_ptr().add(len - 1));
        v.set_len(len - 1);
        last
    }
}

impl Registry {
    /// A free slot reachable from `site` and reaching back, or a new page in
    /// the branch window around `site`.
    /// `target`: the direct branch target of the relocated instruction, which
    /// every branch in the relocation area must reach too.
    fn alloc_slot(&mut self, site: usize, target: Option<u64>, layout: &tramp::Layout) -> Option<usize> {
        let reloc_first = layout.orig_insn as u64;
        let reloc_last = reloc_first + 4 * (insn::MAX_RELOC as u64 - 1);
        let fits = |slot: usize| {
            let slot = slot as u64;
            tramp::site_branch(site as u64, slot).is_ok()
                && insn::encode_b(slot + reloc_first, site as u64 + 4).is_ok()
                && insn::encode_b(slot + reloc_last, site as u64 + 4).is_ok()
                && target.is_none_or(|t| {
                    insn::encode_b(slot + reloc_first, t).is_ok() && insn::encode_b(slot + reloc_last, t).is_ok()
                })
        };
        let per_page = slots_per_page();
        for page in self.pages.as_mut_slice() {
            for i in 0..per_page {
                let slot = page.base + i * tramp::SLOT_SIZE;
                if page.used & (1 << i) == 0 && fits(slot) {
                    page.used |= 1 << i;
                    return Some(slot);
                }
            }
        }
        let (limit_lo, limit_hi) = sys::tramp_limits();
        let page_size = sys::page_size();
        let (lo, hi) = tramp::window_for(site as u64, target, page_size as u64, limit_lo as u64, limit_hi as u64)?;
        // CAST: kernel addresses.
        let base = sys::alloc_tramp_page(lo as usize, hi as usize)?;
        if !fits(base) || !fits(base + page_size - tramp::SLOT_SIZE) {
            // SAFETY: fresh page, nothing points into it.
            unsafe { sys::free_tramp_page(base) };
            return None;
        }
        if self.pages.push(TrampPage { base, used: 1 }, GFP_KERNEL).is_err() {
            // SAFETY: as above.
            unsafe { sys::free_tramp_page(base) };
            return None;
        }
        Some(base)
    }

    /// Return a slot; frees its page when the page is empty.
    ///
    /// # Safety
    ///
    /// No live branch leads to `slot` and `synchronize_rcu_tasks()` has
    /// returned since the last one was removed.
    unsafe fn free_slot(&mut self, slot: usize) {
        let page_size = sys::page_size();
        let Some(i) = self.pages.as_slice().iter().position(|p| slot >= p.base && slot < p.base + page_size) else {
            return;
        };
        let page = &mut self.pages.as_mut_slice()[i];
        page.used &= !(1 << ((slot - page.base) / tramp::SLOT_SIZE));
        if page.used == 0 {
            let page = swap_remove(&mut self.pages, i);
            // SAFETY: empty page; per the function's contract nothing can
            // reach any of its slots.
            unsafe { sys::free_tramp_page(page.base) };
        }
    }

    fn find(&self, probe: *const Probe) -> Option<usize> {
        self.probes.as_slice().iter().position(|p| ptr::eq(&**p, probe))
    }

    /// The figures `stats` and `optprobe_get_stats` report.
    fn counts(&self) -> Counts {
        let probes = self.probes.as_slice();
        Counts {
            probes: probes.len(),
            optimized: probes.iter().filter(|p| p.state == State::Optimized).count(),
            disabled: probes.iter().filter(|p| p.disabled).count(),
            trampoline_pages: self.pages.len(),
        }
    }

    /// Enable or disable probe `index`. Disabling removes the branch (waiting
    /// out RCU-tasks and freeing the trampoline) and then the BRK, so the
    /// original instruction is back; enabling arms the BRK and optimizes
    /// again, re-checking eligibility. Idempotent.
    fn set_enabled(&mut self, index: usize, enable: bool) -> Result {
        if self.probes.as_slice()[index].disabled != enable {
            return Ok(());
        }
        // Take the probe out while the pool is changed, so no borrow of it
        // overlaps the registry's; then put it back at the same index.
        let mut probe = swap_remove(&mut self.probes, index);
        let result = if enable { self.enable_one(&mut probe) } else { self.disable_one(&mut probe) };
        // Capacity is unchanged since swap_remove: cannot fail.
        let _ = self.probes.push(probe, GFP_KERNEL);
        let last = self.probes.len() - 1;
        self.probes.as_mut_slice().swap(index, last);
        result
    }

    fn disable_one(&mut self, probe: &mut Probe) -> Result {
        unoptimize(self, &mut [&mut *probe])?;
        // SAFETY: registered kprobe (type invariant).
        let ret = unsafe { bindings::disable_kprobe(&mut probe.kp) };
        if ret < 0 {
            pr_warn!("disable: kprobe at {:#x} refused ({})\n", probe.addr, ret);
            // Still a working BRK probe; optimize it again if it can be.
            let _ = optimize(self, &mut [&mut *probe]);
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: branch and trampoline gone, kprobe disabled.
        probe.disabled = true;
        probe.set_reason(format_args!("disabled"));
        Ok(())
    }

    fn enable_one(&mut self, probe: &mut Probe) -> Result {
        // SAFETY: registered kprobe (type invariant).
        let ret = unsafe { bindings::enable_kprobe(&mut probe.kp) };
        if ret < 0 {
            pr_warn!("enable: kprobe at {:#x} refused ({})\n", probe.addr, ret);
            return Err(Error::from_errno(ret));
        }
        probe.disabled = false;
        probe.set_reason(format_args!("unoptimized"));
        // Optimization failures leave a BRK kprobe with a reason.
        let _ = optimize(self, &mut [&mut *probe]);
        Ok(())
    }
}

/// Which frame link a probe at `addr` needs (see asm/template.S).
fn frame_link(addr: usize) -> FrameLink {
    let Some((start, _size)) = sys::symbol_bounds(addr) else {
        return FrameLink::Entry;
    };
    let index = ((addr - start) / 4).min(MAX_PROLOGUE_SCAN);
    let mut words = [0u32; MAX_PROLOGUE_SCAN];
    let first = addr - index * 4;
    for (i, word) in words.iter_mut().take(index).enumerate() {
        // SAFETY: aligned words of the same function, before the probe.
        *word = unsafe { sys::read_insn(first + i * 4) };
    }
    tramp::frame_link_for(&words[..index], index)
}

/// Decide whether `probe` (registered) can be optimized; write its trampoline
/// if so. Returns the branch to install, or records the reason and `None`.
fn prepare(reg: &mut Registry, lock: &sys::TextLock, probe: &mut Probe) -> Option<u32> {
    let site = probe.addr;
    let orig_insn = probe.kp.opcode;
    if probe.post_handler.is_some() {
        probe.set_reason(format_args!("post-handler"));
        return None;
    }
    // SAFETY: get_kprobe on a registered address; we hold no RCU-sensitive
    // pointer past the check (the registry mutex serialises our probes).
    let at_addr = unsafe { bindings::optprobe_call_get_kprobe(sys::syms().get_kprobe, site as *mut c_void) };
    if !ptr::eq(at_addr, &probe.kp) {
        // SAFETY: `at_addr` is the live aggregate for this address.
        if !at_addr.is_null() && unsafe { (*at_addr).post_handler.is_some() } {
            probe.set_reason(format_args!("another kprobe here has a post-handler"));
            return None;
        }
        if reg.probes.as_slice().iter().any(|p| p.addr == site && p.state == State::Optimized) {
            probe.set_reason(format_args!("address already optimized by another optprobe"));
            return None;
        }
    }
    if let insn::Class::Rejected(why) = insn::classify(orig_insn) {
        probe.set_reason(format_args!("{}", why.as_str()));
        // Compilers put landing pads and BLRs in every function; anything
        // else refused is unusual enough to name the instruction word.
        if !matches!(why, insn::Reject::BtiLandingPad | insn::Reject::IndirectCall) {
            pr_info!("probe at {:#x} stays a kprobe: {} (insn {:#010x})\n", site, why.as_str(), orig_insn);
        }
        return None;
    }
    let (layout, template) = template();
    let Some(slot) = reg.alloc_slot(site, insn::direct_branch_target(orig_insn, site as u64), &layout) else {
        probe.set_reason(format_args!("no trampoline memory in branch range"));
        return None;
    };
    let params = tramp::Params {
        tramp: slot as u64,
        site: site as u64,
        orig_insn,
        probe: probe as *mut Probe as u64,
        callback: optprobe_callback as *const () as u64,
        link: frame_link(site),
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
            unsafe { reg.free_slot(slot) };
            if e == insn::ERANGE {
                probe.set_reason(format_args!("target out of range"));
            } else {
                probe.set_reason(format_args!("cannot relocate instruction ({})", -e));
            }
            None
        }
    }
}

/// Optimize every probe in `batch` that is eligible: trampolines first, then
/// the BRK -> `b` swap in `stop_machine` batches of at most [`PATCH_BATCH`].
fn optimize(reg: &mut Registry, batch: &mut [&mut Probe]) -> Result {
    let lock = sys::TextLock::new();
    let mut addrs = KVec::with_capacity(batch.len(), GFP_KERNEL)?;
    let mut insns = KVec::with_capacity(batch.len(), GFP_KERNEL)?;
    let mut which = KVec::with_capacity(batch.len(), GFP_KERNEL)?;
    for (i, probe) in batch.iter_mut().enumerate() {
        if addrs.as_slice().iter().any(|a| *a as usize == probe.addr) {
            probe.set_reason(format_args!("address already optimized by another optprobe"));
            continue;
        }
        let Some(branch) = prepare(reg, &lock, probe) else { continue };
        // SAFETY: the probe's address is registered kernel text.
        if unsafe { sys::read_insn(probe.addr) } != insn::BRK_KPROBES {
            probe.set_reason(format_args!("text at the probe is not our BRK"));
            // SAFETY: the slot was never made reachable.
            unsafe { reg.free_slot(probe.slot) };
            probe.slot = 0;
            continue;
        }
        addrs.push(probe.addr as *mut c_void, GFP_KERNEL)?;
        insns.push(branch, GFP_KERNEL)?;
        which.push(i, GFP_KERNEL)?;
    }
    let mut done = 0;
    while done < addrs.len() {
        let end = (done + PATCH_BATCH).min(addrs.len());
        let result = lock.patch_batch(&mut addrs.as_mut_slice()[done..end], &mut insns.as_mut_slice()[done..end]);
        for &i in &which.as_slice()[done..end] {
            let probe = &mut batch[i];
            if result.is_ok() {
                // INVARIANT: the branch to this probe's trampoline is live.
                probe.state = State::Optimized;
                probe.reason = FixedStr::new();
            } else {
                probe.set_reason(format_args!("text patching failed"));
                // SAFETY: the patch failed, so the slot stayed unreachable.
                unsafe { reg.free_slot(probe.slot) };
                probe.slot = 0;
            }
        }
        done = end;
    }
    Ok(())
}

/// What is at an optimized probe's address now.
enum Branch {
    /// `b` to its trampoline.
    Ours,
    /// The kprobes core wrote its BRK or the original instruction there
    /// (debugfs `kprobes/enabled`: disarm all, arm all); the branch is gone.
    ReplacedByKprobes,
    /// Anything else.
    Unknown(u32),
}

fn branch_state(probe: &Probe) -> Branch {
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

/// Undo `optimize` for the optimized probes in `batch`: `b` -> BRK in
/// batches, wait for every task to leave the trampolines, free the slots.
fn unoptimize(reg: &mut Registry, batch: &mut [&mut Probe]) -> Result {
    let mut addrs = KVec::with_capacity(batch.len(), GFP_KERNEL)?;
    let mut insns = KVec::with_capacity(batch.len(), GFP_KERNEL)?;
    for probe in batch.iter().filter(|p| p.state == State::Optimized) {
        match branch_state(probe) {
            Branch::Ours => {
                addrs.push(probe.addr as *mut c_void, GFP_KERNEL)?;
                insns.push(insn::BRK_KPROBES, GFP_KERNEL)?;
            }
            // The kprobes core rewrote the site itself: nothing to patch,
            // but the trampoline still waits for RCU-tasks below.
            Branch::ReplacedByKprobes => {}
            // Fail closed: unknown text, never free the trampoline.
            Branch::Unknown(live) => {
                pr_err!("text at {:#x} is {:#010x}, not our branch\n", probe.addr, live);
                return Err(code::EIO);
            }
        }
    }
    if addrs.is_empty() && batch.iter().all(|p| p.slot == 0) {
        return Ok(());
    }
    if !addrs.is_empty() {
        let lock = sys::TextLock::new();
        let mut done = 0;
        while done < addrs.len() {
            let end = (done + PATCH_BATCH).min(addrs.len());
            lock.patch_batch(&mut addrs.as_mut_slice()[done..end], &mut insns.as_mut_slice()[done..end])?;
            done = end;
        }
    }
    for probe in batch.iter_mut().filter(|p| p.state == State::Optimized) {
        // INVARIANT: the branch is gone; the slot is no longer reachable.
        probe.state = State::Kprobe;
        probe.set_reason(format_args!("unoptimized"));
    }
    // A task may have been preempted inside a trampoline; RCU-tasks returns
    // only once every task has voluntarily switched, i.e. left it.
    // SAFETY: process context.
    unsafe { bindings::synchronize_rcu_tasks() };
    for probe in batch.iter_mut() {
        if probe.slot != 0 {
            // SAFETY: branch removed and RCU-tasks grace period elapsed.
            unsafe { reg.free_slot(probe.slot) };
            probe.slot = 0;
        }
    }
    Ok(())
}

impl Registry {
    /// Register and optimize `specs`. All or nothing.
    fn attach_batch(&mut self, specs: &[Spec]) -> Result<KVec<*mut Probe>> {
        // Every allocation happens before the first kprobe is registered: once
        // probes are live, no failure may drop them.
        let mut fresh: KVec<KBox<Probe>> = KVec::with_capacity(specs.len(), GFP_KERNEL)?;
        let mut handles = KVec::with_capacity(specs.len(), GFP_KERNEL)?;
        let mut refs: KVec<&mut Probe> = KVec::with_capacity(specs.len(), GFP_KERNEL)?;
        self.probes.reserve(specs.len(), GFP_KERNEL)?;
        for spec in specs {
            let mut probe = KBox::new(
                Probe {
                    kp: bindings::kprobe::default(),
                    addr: 0,
                    symbol: spec.symbol,
                    name: spec.name,
                    handler: spec.handler,
                    post_handler: spec.post_handler,
                    data: spec.data,
                    hits: sys::PerCpuCounter::new()?,
                    state: State::Kprobe,
                    reason: FixedStr::new(),
                    slot: 0,
                    disabled: false,
                },
                GFP_KERNEL,
            )?;
            if spec.symbol.len > 0 {
                probe.kp.symbol_name = probe.symbol.as_ptr();
                // CAST: offsets are checked against the symbol by the kernel.
                probe.kp.offset = spec.offset as u32;
            } else {
                probe.kp.addr = spec.addr as *mut u32;
            }
            probe.kp.pre_handler = Some(optprobe_kp_pre_handler);
            if spec.post_handler.is_some() {
                probe.kp.post_handler = Some(optprobe_kp_post_handler);
            }
            fresh.push(probe, GFP_KERNEL)?;
        }
        // Register one by one so the first failure can be reported precisely.
        // Registered disabled (nothing written yet), checked, then armed: the
        // address kprobes resolves may be data that must never get a BRK.
        for i in 0..fresh.len() {
            let probe = &mut fresh.as_mut_slice()[i];
            probe.kp.flags = bindings::KPROBE_FLAG_DISABLED;
            // SAFETY: `probe.kp` is initialised, boxed (stable address) and
            // its symbol string lives in the same box.
            let mut ret = unsafe { bindings::register_kprobe(&mut probe.kp) };
            let mut why = kprobe_error(ret);
            if ret == 0 {
                // CAST: kernel address.
                probe.addr = probe.kp.addr as usize;
                if in_ftrace_ops_literal(probe.addr) {
                    why = "ftrace ops literal before a function: data, not code (EINVAL)";
                    ret = -22;
                } else {
                    // SAFETY: registered just above.
                    ret = unsafe { bindings::enable_kprobe(&mut probe.kp) };
                    why = "cannot arm the kprobe";
                }
                if ret < 0 {
                    // SAFETY: registered just above, not armed by us.
                    unsafe { bindings::unregister_kprobe(&mut probe.kp) };
                }
            }
            if ret < 0 {
                pr_warn!("cannot probe {}: {}\n", describe_target(&specs[i]), why);
                Self::unregister(&mut fresh.as_mut_slice()[..i]);
                return Err(Error::from_errno(ret));
            }
        }
        for probe in fresh.as_mut_slice() {
            // Capacity reserved above: cannot fail.
            let _ = refs.push(&mut **probe, GFP_KERNEL);
        }
        // Optimization failures leave BRK kprobes with a reason; never an error.
        let _ = optimize(self, refs.as_mut_slice());
        drop(refs);
        let count = fresh.len();
        for _ in 0..count {
            let mut probe = swap_remove(&mut fresh, 0);
            // Capacity reserved above: neither push can fail.
            let _ = handles.push(&mut *probe as *mut Probe, GFP_KERNEL);
            let _ = self.probes.push(probe, GFP_KERNEL);
        }
        Ok(handles)
    }

    /// `unregister_kprobes` in one call (one RCU grace period).
    fn unregister(probes: &mut [KBox<Probe>]) {
        if probes.is_empty() {
            return;
        }
        let mut kps: KVec<*mut bindings::kprobe> = match KVec::with_capacity(probes.len(), GFP_KERNEL) {
            Ok(v) => v,
            Err(_) => {
                for probe in probes {
                    // SAFETY: registered kprobe (invariant).
                    unsafe { bindings::unregister_kprobe(&mut probe.kp) };
                }
                return;
            }
        };
        for probe in probes.iter_mut() {
            let _ = kps.push(&mut probe.kp, GFP_KERNEL);
        }
        // SAFETY: every entry is a registered kprobe; capacity was reserved.
        unsafe { bindings::unregister_kprobes(kps.as_mut_ptr(), kps.len() as c_int) };
    }

    /// Detach the probes at `indices` (into `self.probes`) and free them.
    fn detach_indices(&mut self, mut indices: KVec<usize>) {
        // Allocate first: a probe must never be dropped while registered, nor
        // skipped while its owner believes it is gone.
        let mut gone: KVec<KBox<Probe>> = KVec::new();
        let mut refs: KVec<&mut Probe> = KVec::new();
        if gone.reserve(indices.len(), GFP_KERNEL).is_err() || refs.reserve(indices.len(), GFP_KERNEL).is_err() {
            pr_err!("out of memory: {} probe(s) stay attached\n", indices.len());
            return;
        }
        // Highest first, so swap_remove keeps the remaining indices valid.
        indices.as_mut_slice().sort_unstable_by(|a, b| b.cmp(a));
        for &i in indices.as_slice() {
            // Capacity reserved above: cannot fail.
            let _ = gone.push(swap_remove(&mut self.probes, i), GFP_KERNEL);
        }
        for probe in gone.as_mut_slice() {
            let _ = refs.push(&mut **probe, GFP_KERNEL);
        }
        let result = unoptimize(self, refs.as_mut_slice());
        drop(refs);
        if let Err(e) = result {
            pr_err!("unoptimize failed ({:?}); keeping trampolines\n", e);
            // The branches may still be live: never free their trampolines.
            for probe in gone.as_mut_slice() {
                probe.slot = 0;
            }
        }
        Self::unregister(gone.as_mut_slice());
        // Boxes drop here: the kprobes are unregistered, handlers finished.
    }

    fn detach_where(&mut self, mut pred: impl FnMut(&Probe) -> bool) -> usize {
        let mut indices = KVec::new();
        if indices.reserve(self.probes.len(), GFP_KERNEL).is_err() {
            pr_err!("out of memory: probes stay attached\n");
            return 0;
        }
        for (i, p) in self.probes.as_slice().iter().enumerate() {
            if pred(p) {
                // Capacity reserved above: cannot fail.
                let _ = indices.push(i, GFP_KERNEL);
            }
        }
        let n = indices.len();
        self.detach_indices(indices);
        n
    }
}

fn describe_target(spec: &Spec) -> impl core::fmt::Display + '_ {
    struct D<'a>(&'a Spec);
    impl core::fmt::Display for D<'_> {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            if self.0.symbol.len > 0 {
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

// --- The global registry -----------------------------------------------------

/// The registry, created at init. Entry points (sysfs, C ABI, module notifier)
/// run only between init and exit, where this is non-null.
static REGISTRY: AtomicPtr<Mutex<Registry>> = AtomicPtr::new(ptr::null_mut());

fn registry() -> Result<&'static Mutex<Registry>> {
    let reg = REGISTRY.load(Ordering::Acquire);
    if reg.is_null() {
        return Err(code::ENODEV);
    }
    // SAFETY: non-null means init published a pinned, live box, which exit
    // frees only after every entry point is gone.
    Ok(unsafe { &*reg })
}

/// Attach probes, returning handles owned by the caller.
fn attach(specs: &[Spec]) -> Result<KVec<*mut Probe>> {
    registry()?.lock().attach_batch(specs)
}

/// Detach probes by handle; unknown handles are ignored with a warning.
fn detach(handles: &[*mut Probe]) {
    let Ok(reg) = registry() else { return };
    let mut reg = reg.lock();
    let mut indices = KVec::new();
    if indices.reserve(handles.len(), GFP_KERNEL).is_err() {
        pr_err!("out of memory: {} probe(s) stay attached\n", handles.len());
        return;
    }
    for &h in handles {
        match reg.find(h) {
            Some(i) => {
                // Capacity reserved above: cannot fail.
                let _ = indices.push(i, GFP_KERNEL);
            }
            None => pr_warn!("unregister of an unknown probe {:p} ignored\n", h),
        }
    }
    reg.detach_indices(indices);
}

// --- Rust API ------------------------------------------------------------------

/// A handler for a probe registered through the Rust API.
pub trait ProbeHandler: Send + Sync {
    /// Called on every hit with preemption disabled. See include/optprobe.h
    /// for what a handler may read and change.
    fn pre(&self, regs: &mut bindings::pt_regs);
}

/// Dispatch a hit to a boxed [`ProbeHandler`].
#[no_mangle]
unsafe extern "C" fn optprobe_rust_dispatch(data: *mut c_void, regs: *mut bindings::pt_regs) {
    // SAFETY: `data` is the `KBox<dyn ProbeHandler>` a live Registration owns;
    // `regs` is the hit's pt_regs.
    unsafe { (*data.cast::<KBox<dyn ProbeHandler>>()).pre(&mut *regs) };
}

/// A probe registered through the Rust API; dropping it unregisters it.
///
/// # Invariants
///
/// `probe` is a live probe in the registry owned by this registration, or null
/// once [`detach_registrations`] detached it; `handler` outlives the probe (it
/// is dropped after the probe is detached).
pub struct Registration {
    probe: *mut Probe,
    handler: Option<KBox<KBox<dyn ProbeHandler>>>,
}

// SAFETY: the probe is only touched under the registry mutex or read-only.
unsafe impl Send for Registration {}
// SAFETY: as above.
unsafe impl Sync for Registration {}

impl Registration {
    /// Probe `symbol + offset`. With no handler the probe only counts hits.
    pub fn new<H: ProbeHandler + 'static>(
        symbol: &[u8],
        offset: usize,
        name: &[u8],
        handler: Option<KBox<H>>,
    ) -> Result<Self> {
        let handler = handler.map(|h| {
            // 6.12's KBox does not coerce to `dyn`; unsize the raw pointer.
            let raw: *mut dyn ProbeHandler = KBox::<H>::into_raw(h);
            // SAFETY: `raw` comes from `KBox::into_raw` just above, same allocator.
            unsafe { KBox::<dyn ProbeHandler>::from_raw(raw) }
        });
        Self::with_handler(symbol, offset, name, handler)
    }

    fn with_handler(
        symbol: &[u8],
        offset: usize,
        name: &[u8],
        handler: Option<KBox<dyn ProbeHandler>>,
    ) -> Result<Self> {
        let mut handler = match handler {
            Some(h) => Some(KBox::new(h, GFP_KERNEL)?),
            None => None,
        };
        let data = handler
            .as_mut()
            .map_or(ptr::null_mut(), |h| &mut **h as *mut KBox<dyn ProbeHandler> as *mut c_void);
        let spec = Spec {
            symbol: FixedStr::from_bytes(symbol),
            offset,
            addr: 0,
            name: FixedStr::from_bytes(name),
            handler: handler.as_ref().map(|_| optprobe_rust_dispatch as RawHandler),
            post_handler: None,
            data,
        };
        let handles = attach(core::slice::from_ref(&spec))?;
        // INVARIANT: one live probe, owned from now on; the handler box is
        // kept until after detach.
        Ok(Self { probe: handles.as_slice()[0], handler })
    }

    /// Is the probe optimized?
    pub fn optimized(&self) -> bool {
        // SAFETY: live probe (invariant); `state` changes only under the
        // registry mutex and is a plain byte.
        unsafe { (*self.probe).state == State::Optimized }
    }

    /// Disable the probe: its handler stops running and the text is restored.
    pub fn disable(&self) -> Result {
        set_enabled(self.probe, false)
    }

    /// Enable it again (optimized again when eligible).
    pub fn enable(&self) -> Result {
        set_enabled(self.probe, true)
    }

    /// Handler runs so far.
    pub fn hits(&self) -> u64 {
        // CAST: c_ulong is 64-bit on arm64.
        optprobe_hits(self.probe) as u64
    }
}

/// Detach many registrations with one text-patch batch and one RCU-tasks wait.
fn detach_registrations(mut list: KVec<Registration>) {
    let mut handles = KVec::new();
    if handles.reserve(list.len(), GFP_KERNEL).is_err() {
        // Out of memory: fall back to one at a time.
        drop(list);
        return;
    }
    for r in list.as_slice() {
        let _ = handles.push(r.probe, GFP_KERNEL);
    }
    detach(handles.as_slice());
    for r in list.as_mut_slice() {
        // INVARIANT: detached above; Drop now only frees the handler.
        r.probe = ptr::null_mut();
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if !self.probe.is_null() {
            detach(&[self.probe]);
        }
        // The probe is gone and its handler can no longer run.
        drop(self.handler.take());
    }
}

// --- Rust API self-test (insmod optprobe.ko selftest=1) -------------------

/// The function the self-test probes: small, out of line, with a body.
#[inline(never)]
#[no_mangle]
pub extern "C" fn optprobe_selftest_target(x: u64) -> u64 {
    // SAFETY: an empty asm statement only stops the compiler from folding calls.
    unsafe { core::arch::asm!("", options(nomem, nostack, preserves_flags)) };
    x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(7) ^ x
}

/// A Rust handler: counts hits and remembers the last `x0`.
struct SelftestHandler {
    hits: core::sync::atomic::AtomicU64,
    last_x0: core::sync::atomic::AtomicU64,
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
fn rust_api_selftest() -> Result {
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
    let handler = KBox::new(
        SelftestHandler {
            hits: core::sync::atomic::AtomicU64::new(0),
            last_x0: core::sync::atomic::AtomicU64::new(0),
        },
        GFP_KERNEL,
    )?;
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

// --- C ABI (declared in include/optprobe.h, exported from the glue) ----------

/// Mirror of `struct optprobe_desc` in include/optprobe.h.
#[repr(C)]
pub struct OptprobeDesc {
    symbol: *const c_char,
    offset: c_ulong,
    addr: *mut c_void,
    name: *const c_char,
    handler: Option<RawHandler>,
    post_handler: Option<RawHandler>,
    data: *mut c_void,
    probe: *mut Probe,
}

/// Read a C string argument, refusing over-long ones.
///
/// # Safety
///
/// `s` is null or a NUL-terminated string.
unsafe fn c_arg<'a>(s: *const c_char, max: usize) -> Result<Option<&'a [u8]>> {
    if s.is_null() {
        return Ok(None);
    }
    // SAFETY: per the function's contract.
    let bytes = unsafe { CStr::from_ptr(s) }.to_bytes();
    if bytes.is_empty() || bytes.len() > max {
        return Err(code::EINVAL);
    }
    Ok(Some(bytes))
}

/// Validate one descriptor into a [`Spec`].
///
/// # Safety
///
/// `desc` points to a valid `struct optprobe_desc`.
unsafe fn spec_from_desc(desc: &OptprobeDesc) -> Result<Spec> {
    // SAFETY: per the function's contract the strings are C strings or null.
    let symbol = unsafe { c_arg(desc.symbol, control::MAX_SYMBOL) }.map_err(|e| {
        pr_warn!("register: symbol empty or longer than {} bytes\n", control::MAX_SYMBOL);
        e
    })?;
    // SAFETY: as above.
    let name = unsafe { c_arg(desc.name, control::MAX_NAME) }.map_err(|e| {
        pr_warn!("register: name empty or longer than {} bytes\n", control::MAX_NAME);
        e
    })?;
    if symbol.is_none() && desc.addr.is_null() {
        pr_warn!("register: neither symbol nor addr given\n");
        return Err(code::EINVAL);
    }
    if desc.handler.is_none() {
        pr_warn!("register: no handler\n");
        return Err(code::EINVAL);
    }
    // CAST: offsets beyond u32 cannot be inside a kernel function.
    if desc.offset % 4 != 0 || desc.offset > u32::MAX as c_ulong {
        pr_warn!("register: offset {:#x} is not a 4-byte aligned offset\n", desc.offset);
        return Err(code::EINVAL);
    }
    Ok(Spec {
        symbol: FixedStr::from_bytes(symbol.unwrap_or(b"")),
        offset: desc.offset as usize,
        addr: desc.addr as usize,
        name: FixedStr::from_bytes(name.unwrap_or(b"api")),
        handler: desc.handler,
        post_handler: desc.post_handler,
        data: desc.data,
    })
}

/// # Safety
///
/// `descs` points to `n` valid descriptors (C ABI contract).
#[no_mangle]
pub unsafe extern "C" fn optprobe_register_batch(descs: *mut OptprobeDesc, n: u32) -> c_int {
    if descs.is_null() || n == 0 {
        pr_warn!("register: empty batch\n");
        return -22;
    }
    // SAFETY: per the C ABI contract.
    let descs = unsafe { core::slice::from_raw_parts_mut(descs, n as usize) };
    let mut specs = match KVec::with_capacity(descs.len(), GFP_KERNEL) {
        Ok(v) => v,
        Err(_) => return -12,
    };
    for desc in descs.iter() {
        // SAFETY: valid descriptor per the C ABI contract.
        match unsafe { spec_from_desc(desc) } {
            Ok(spec) => {
                if specs.push(spec, GFP_KERNEL).is_err() {
                    return -12;
                }
            }
            Err(e) => return e.to_errno(),
        }
    }
    match attach(specs.as_slice()) {
        Ok(handles) => {
            for (desc, h) in descs.iter_mut().zip(handles.as_slice()) {
                desc.probe = *h;
            }
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// `desc` points to a valid descriptor (C ABI contract).
#[no_mangle]
pub unsafe extern "C" fn optprobe_register(desc: *mut OptprobeDesc) -> c_int {
    // SAFETY: one descriptor is a batch of one.
    unsafe { optprobe_register_batch(desc, 1) }
}

/// # Safety
///
/// `probes` points to `n` handles from optprobe_register*.
#[no_mangle]
pub unsafe extern "C" fn optprobe_unregister_batch(probes: *mut *mut Probe, n: u32) {
    if probes.is_null() {
        return;
    }
    // SAFETY: per the C ABI contract.
    detach(unsafe { core::slice::from_raw_parts(probes, n as usize) });
}

/// # Safety
///
/// `probe` is a handle from optprobe_register*.
#[no_mangle]
pub unsafe extern "C" fn optprobe_unregister(probe: *mut Probe) {
    detach(&[probe]);
}

/// Look up a handle under the registry lock.
fn with_probe<R>(probe: *mut Probe, f: impl FnOnce(&Probe) -> R) -> Option<R> {
    let reg = registry().ok()?.lock();
    let i = reg.find(probe)?;
    Some(f(&reg.probes.as_slice()[i]))
}

/// C ABI: `enum optprobe_state` of a probe, or `-EINVAL` for an unknown one.
#[no_mangle]
pub extern "C" fn optprobe_state(probe: *mut Probe) -> c_int {
    with_probe(probe, |p| match (p.disabled, p.state) {
        (true, _) => 2,
        (false, State::Optimized) => 1,
        (false, State::Kprobe) => 0,
    })
    .unwrap_or(-22)
}

/// C ABI: why a probe is not optimized, or NULL when it is.
#[no_mangle]
pub extern "C" fn optprobe_reason(probe: *mut Probe) -> *const c_char {
    // The reason buffer lives in the probe, which the caller owns until it
    // unregisters; the pointer stays valid that long.
    with_probe(probe, |p| match p.state {
        State::Optimized => ptr::null(),
        State::Kprobe => p.reason.as_ptr(),
    })
    .unwrap_or(ptr::null())
}

/// Enable or disable a probe by handle (`-EINVAL` for an unknown one).
fn set_enabled(probe: *mut Probe, enable: bool) -> Result {
    let mut reg = registry()?.lock();
    let Some(i) = reg.find(probe) else {
        pr_warn!("{} of an unknown probe {:p} refused\n", if enable { "enable" } else { "disable" }, probe);
        return Err(code::EINVAL);
    };
    reg.set_enabled(i, enable)
}

/// C ABI: disable a probe; the probed text is restored. 0 or -errno.
#[no_mangle]
pub extern "C" fn optprobe_disable(probe: *mut Probe) -> c_int {
    set_enabled(probe, false).err().map_or(0, |e| e.to_errno())
}

/// C ABI: enable a disabled probe (optimized again if it can be). 0 or -errno.
#[no_mangle]
pub extern "C" fn optprobe_enable(probe: *mut Probe) -> c_int {
    set_enabled(probe, true).err().map_or(0, |e| e.to_errno())
}

/// C ABI: handler runs so far; 0 for an unknown probe.
#[no_mangle]
pub extern "C" fn optprobe_hits(probe: *mut Probe) -> c_ulong {
    // CAST: counts fit in an unsigned long on arm64.
    with_probe(probe, |p| p.hits.sum() as c_ulong).unwrap_or(0)
}

/// C ABI: hits skipped because another probe was active on the CPU.
#[no_mangle]
pub extern "C" fn optprobe_missed(probe: *mut Probe) -> c_ulong {
    with_probe(probe, |p| p.kp.nmissed as c_ulong).unwrap_or(0)
}

/// C ABI: `stop_machine` text-patch batches issued so far.
#[no_mangle]
pub extern "C" fn optprobe_stop_machine_count() -> c_ulong {
    sys::STOP_MACHINE_CALLS.load(Ordering::Relaxed) as c_ulong
}

/// Mirror of `struct optprobe_stats` in include/optprobe.h.
#[repr(C)]
pub struct OptprobeStats {
    probes: c_ulong,
    optimized: c_ulong,
    trampoline_pages: c_ulong,
    stop_machine_calls: c_ulong,
    slot_bytes: u32,
    template_bytes: u32,
    probe_bytes: u32,
}

/// C ABI: fill `stats`.
///
/// # Safety
///
/// `stats` points to a writable `struct optprobe_stats`.
#[no_mangle]
pub unsafe extern "C" fn optprobe_get_stats(stats: *mut OptprobeStats) {
    let (layout, _) = template();
    let counts = registry().map(|reg| reg.lock().counts()).unwrap_or_default();
    let value = OptprobeStats {
        probes: counts.probes as c_ulong,
        optimized: counts.optimized as c_ulong,
        trampoline_pages: counts.trampoline_pages as c_ulong,
        stop_machine_calls: sys::STOP_MACHINE_CALLS.load(Ordering::Relaxed) as c_ulong,
        // CAST: small compile-time sizes.
        slot_bytes: tramp::SLOT_SIZE as u32,
        template_bytes: layout.size as u32,
        probe_bytes: core::mem::size_of::<Probe>() as u32,
    };
    // SAFETY: per the C ABI contract.
    unsafe { stats.write(value) };
}

// --- sysfs ---------------------------------------------------------------------

/// Probes made through the control file (and `probes=`), by name.
struct SysfsProbes {
    list: KVec<Registration>,
}

static SYSFS_PROBES: AtomicPtr<Mutex<SysfsProbes>> = AtomicPtr::new(ptr::null_mut());

fn sysfs_probes() -> Result<&'static Mutex<SysfsProbes>> {
    let p = SYSFS_PROBES.load(Ordering::Acquire);
    if p.is_null() {
        return Err(code::ENODEV);
    }
    // SAFETY: published by init, freed by exit after sysfs is gone.
    Ok(unsafe { &*p })
}

fn probe_name(r: &Registration) -> &[u8] {
    // SAFETY: live probe (Registration invariant); the name never changes.
    unsafe { (*r.probe).name.as_bytes() }
}

/// The spec for one `Add` command; `line` is only for messages.
fn add_spec(name: Option<&str>, target: control::Target<'_>, line: usize) -> Result<Spec> {
    let mut spec = Spec {
        symbol: FixedStr::new(),
        offset: 0,
        addr: 0,
        name: FixedStr::new(),
        handler: None,
        post_handler: None,
        data: ptr::null_mut(),
    };
    match target {
        control::Target::Symbol { symbol, offset } => {
            // CAST: kprobes takes 32-bit offsets and checks them against the symbol.
            if offset > u32::MAX as u64 {
                pr_warn!("control: line {}: offset too large\n", line);
                return Err(code::EINVAL);
            }
            spec.symbol = FixedStr::from_bytes(symbol.as_bytes());
            spec.offset = offset as usize;
        }
        // CAST: kernel addresses are 64-bit.
        control::Target::Address(addr) => spec.addr = addr as usize,
    }
    match name {
        Some(n) => spec.name = FixedStr::from_bytes(n.as_bytes()),
        None => {
            let _ = match target {
                control::Target::Symbol { symbol, offset } => write!(spec.name, "p_{}_{}", symbol, offset),
                control::Target::Address(addr) => write!(spec.name, "p_{:x}", addr),
            };
        }
    }
    Ok(spec)
}

/// Run one control write: one or more lines, all adds or all removes, applied
/// all or nothing. Errors are logged with a one-line reason.
fn control_command(input: &[u8]) -> Result {
    let (kind, count) = control::check_write(input).map_err(|(line, e)| {
        pr_warn!("control: line {}: {}\n", line, e.as_str());
        Error::from_errno(-e.errno())
    })?;
    let mut probes = sysfs_probes()?.lock();
    match kind {
        control::WriteKind::Remove => {
            let mut indices: KVec<usize> = KVec::with_capacity(count, GFP_KERNEL)?;
            let mut going = KVec::with_capacity(count, GFP_KERNEL)?;
            for (n, line) in control::command_lines(input).enumerate() {
                let Ok(control::Command::Remove { name }) = control::parse(line) else {
                    return Err(code::EINVAL);
                };
                let Some(i) = probes.list.as_slice().iter().position(|r| probe_name(r) == name.as_bytes()) else {
                    pr_warn!("control: line {}: no probe named '{}'\n", n + 1, name);
                    return Err(code::ENOENT);
                };
                if indices.as_slice().contains(&i) {
                    pr_warn!("control: line {}: '{}' named twice\n", n + 1, name);
                    return Err(code::EINVAL);
                }
                indices.push(i, GFP_KERNEL)?;
            }
            // Highest first, so swap_remove keeps the remaining indices valid.
            indices.as_mut_slice().sort_unstable_by(|a, b| b.cmp(a));
            for &i in indices.as_slice() {
                // Capacity reserved above: cannot fail.
                let _ = going.push(swap_remove(&mut probes.list, i), GFP_KERNEL);
            }
            // One text-patch batch and one RCU-tasks wait for all of them.
            detach_registrations(going);
            Ok(())
        }
        control::WriteKind::Add => {
            let mut specs: KVec<Spec> = KVec::with_capacity(count, GFP_KERNEL)?;
            for (n, line) in control::command_lines(input).enumerate() {
                let Ok(control::Command::Add { name, target }) = control::parse(line) else {
                    return Err(code::EINVAL);
                };
                let spec = add_spec(name, target, n + 1)?;
                let taken = probes.list.as_slice().iter().any(|r| probe_name(r) == spec.name.as_bytes())
                    || specs.as_slice().iter().any(|s| s.name.as_bytes() == spec.name.as_bytes());
                if taken {
                    pr_warn!("control: line {}: a probe named '{}' exists\n", n + 1, spec.name.as_str());
                    return Err(code::EEXIST);
                }
                specs.push(spec, GFP_KERNEL)?;
            }
            if probes.list.len() + count > MAX_SYSFS_PROBES {
                pr_warn!("control: at most {} probes\n", MAX_SYSFS_PROBES);
                return Err(code::ENOSPC);
            }
            // Reserve first: once attached, no failure may drop a probe.
            probes.list.reserve(count, GFP_KERNEL)?;
            let handles = attach(specs.as_slice())?;
            for &probe in handles.as_slice() {
                // INVARIANT: a live probe, owned by this registration from
                // now on; sysfs probes have no handler box.
                let reg = Registration { probe, handler: None };
                // Capacity reserved above: cannot fail.
                let _ = probes.list.push(reg, GFP_KERNEL);
            }
            Ok(())
        }
    }
}

#[no_mangle]
unsafe extern "C" fn optprobe_sysfs_control_store(buf: *const c_char, count: c_ulong) -> c_long {
    // SAFETY: sysfs hands us `count` readable bytes.
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count as usize) };
    match control_command(input) {
        Ok(()) => count as c_long,
        Err(e) => e.to_errno() as c_long,
    }
}

/// `stats`: one "key value" line per figure, for users and leak checks.
#[no_mangle]
unsafe extern "C" fn optprobe_sysfs_stats_show(buf: *mut c_char, size: c_ulong) -> c_long {
    let mut text = FixedStr::<256>::new();
    let counts = match registry() {
        Ok(reg) => reg.lock().counts(),
        Err(e) => return e.to_errno() as c_long,
    };
    let _ = write!(
        text,
        "probes {}\noptimized {}\ndisabled {}\ntrampoline_pages {}\nstop_machine_calls {}\n",
        counts.probes,
        counts.optimized,
        counts.disabled,
        counts.trampoline_pages,
        sys::STOP_MACHINE_CALLS.load(Ordering::Relaxed)
    );
    // CAST: sysfs gives a page.
    let len = text.as_bytes().len().min(size as usize);
    // SAFETY: sysfs gives `size` writable bytes at `buf`.
    unsafe { ptr::copy_nonoverlapping(text.as_bytes().as_ptr(), buf.cast::<u8>(), len) };
    len as c_long
}

/// Bytes per listing record. Records are padded to this size so a line never
/// moves: hit counts change while a reader walks the file page by page, and
/// 16 records fill a page exactly, so page-sized reads never tear a line.
const RECORD: usize = 256;

/// Write `text` as one record: truncated to RECORD - 1 bytes, space padded,
/// newline terminated.
fn put_record(out: &mut [u8], text: &[u8]) {
    let len = text.len().min(RECORD - 1);
    out[..len].copy_from_slice(&text[..len]);
    out[len..RECORD - 1].fill(b' ');
    out[RECORD - 1] = b'\n';
}

/// Render records `first..first + count` of the listing (record 0 is the
/// header) into `out`, which holds `count` records. Returns how many exist.
fn render_records(first: usize, out: &mut [u8]) -> Result<usize> {
    let reg = registry()?.lock();
    let total = reg.probes.len() + 1;
    let count = (out.len() / RECORD).min(total.saturating_sub(first));
    let show = sys::show_kernel_addresses();
    let mut sym = [0u8; bindings::OPTPROBE_SYMBOL_BUF as usize];
    for i in 0..count {
        let index = first + i;
        let mut line = FixedStr::<512>::new();
        if index == 0 {
            let _ = write!(line, "# name symbol+offset address state hits missed reason");
        } else {
            let p = &reg.probes.as_slice()[index - 1];
            let sym_len = sys::symbolize(p.addr, &mut sym).min(80);
            let sym_str = core::str::from_utf8(&sym[..sym_len]).unwrap_or("?");
            let (state, reason) = match (p.disabled, p.state) {
                (true, _) => ("disabled", "-"),
                (false, State::Optimized) => match branch_state(p) {
                    Branch::Ours => ("optimized", "-"),
                    // Hits still arrive, through the BRK (or none while
                    // kprobes are globally disarmed); say so.
                    _ => ("kprobe", "branch replaced by kprobes/enabled toggle"),
                },
                (false, State::Kprobe) => ("kprobe", p.reason.as_str()),
            };
            let _ = write!(
                line,
                "{} {} 0x{:016x} {} {} {} {}",
                p.name.as_str(),
                sym_str,
                if show { p.addr } else { 0 },
                state,
                p.hits.sum(),
                p.kp.nmissed,
                reason
            );
        }
        put_record(&mut out[i * RECORD..(i + 1) * RECORD], line.as_bytes());
    }
    Ok(count)
}

#[no_mangle]
unsafe extern "C" fn optprobe_sysfs_probes_read(buf: *mut c_char, offset: i64, count: c_ulong) -> c_long {
    // CAST: sysfs offsets are non-negative; counts are at most a page.
    let (offset, count) = (offset.max(0) as usize, count as usize);
    let first = offset / RECORD;
    let skip = offset % RECORD;
    // Whole records covering [offset, offset + count).
    let records = (skip + count).div_ceil(RECORD);
    let mut text = match KVec::from_elem(0u8, records * RECORD, GFP_KERNEL) {
        Ok(t) => t,
        Err(_) => return -12,
    };
    let made = match render_records(first, text.as_mut_slice()) {
        Ok(n) => n,
        Err(e) => return e.to_errno() as c_long,
    };
    let end = (made * RECORD).min(skip + count);
    let len = end.saturating_sub(skip);
    // SAFETY: sysfs gives `count` writable bytes at `buf`; `len <= count`.
    unsafe { ptr::copy_nonoverlapping(text.as_ptr().add(skip), buf.cast::<u8>(), len) };
    len as c_long
}

// --- Module unload safety ---------------------------------------------------

/// Removes probes in a module that is going away, before the kernel's kprobes
/// notifier marks them gone (higher priority runs first).
#[no_mangle]
unsafe extern "C" fn optprobe_module_notify(
    _nb: *mut bindings::notifier_block,
    action: c_ulong,
    data: *mut c_void,
) -> c_int {
    if action != bindings::module_state_MODULE_STATE_GOING as c_ulong {
        return bindings::NOTIFY_DONE as c_int;
    }
    let module = data.cast::<bindings::module>();
    // Sysfs probes first (they own Registrations), then API probes.
    if let Ok(probes) = sysfs_probes() {
        let mut probes = probes.lock();
        let mut going = KVec::new();
        let mut i = 0;
        while i < probes.list.len() {
            // SAFETY: live probe; `module` is the going module.
            let addr = unsafe { (*probes.list.as_slice()[i].probe).addr };
            // SAFETY: `module` is live for the notifier's duration.
            if unsafe { bindings::optprobe_within_module(addr as c_ulong, module) } {
                let r = swap_remove(&mut probes.list, i);
                // SAFETY: live probe (Registration invariant).
                let (name, hits) = unsafe { ((*r.probe).name.as_str(), (*r.probe).hits.sum()) };
                pr_info!("probe '{}' removed with its module ({} hits)\n", name, hits);
                if let Err(r) = push_or_return(&mut going, r) {
                    drop(r);
                }
            } else {
                i += 1;
            }
        }
        if !going.is_empty() {
            pr_info!("removing {} probe(s) in an unloading module\n", going.len());
        }
        detach_registrations(going);
    }
    if let Ok(reg) = registry() {
        // SAFETY: `module` is live for the notifier's duration.
        let n = reg.lock().detach_where(|p| unsafe { bindings::optprobe_within_module(p.addr as c_ulong, module) });
        if n > 0 {
            pr_info!("removed {} API probe(s) in an unloading module\n", n);
        }
    }
    bindings::NOTIFY_DONE as c_int
}

/// Push, or hand the value back when out of memory.
fn push_or_return<T>(v: &mut KVec<T>, value: T) -> core::result::Result<(), T> {
    if v.reserve(1, GFP_KERNEL).is_err() {
        return Err(value);
    }
    // Capacity reserved: cannot fail.
    let _ = v.push(value, GFP_KERNEL);
    Ok(())
}

/// The registered module notifier.
///
/// # Invariants
///
/// `nb` is registered with the module notifier chain until drop.
struct ModuleNotifier {
    nb: KBox<bindings::notifier_block>,
}

impl ModuleNotifier {
    fn new() -> Result<Self> {
        let mut nb = KBox::new(bindings::notifier_block::default(), GFP_KERNEL)?;
        nb.notifier_call = Some(optprobe_module_notify);
        // Above the kprobes core's notifier (priority 0).
        nb.priority = 1;
        // SAFETY: boxed notifier block, unregistered in drop.
        let ret = unsafe { bindings::register_module_notifier(&mut *nb) };
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: registered above.
        Ok(Self { nb })
    }
}

// SAFETY: the notifier block is only touched at registration and in drop.
unsafe impl Send for ModuleNotifier {}
// SAFETY: as above.
unsafe impl Sync for ModuleNotifier {}

impl Drop for ModuleNotifier {
    fn drop(&mut self) {
        // SAFETY: registered (invariant); the chain's lock waits for callers.
        unsafe { bindings::unregister_module_notifier(&mut *self.nb) };
    }
}

// --- The module ----------------------------------------------------------------

struct OptprobeModule {
    sysfs: Option<sys::SysfsDir>,
    notifier: Option<ModuleNotifier>,
}

/// Free a global published with `into_raw`, after clearing it.
fn take_global<T>(slot: &AtomicPtr<Mutex<T>>) {
    let p = slot.swap(ptr::null_mut(), Ordering::AcqRel);
    if !p.is_null() {
        // SAFETY: `p` came from `Pin<KBox<_>>` via `into_raw` in init and no
        // entry point can reach it any more.
        drop(unsafe { Pin::new_unchecked(KBox::from_raw(p)) });
    }
}

fn publish<T>(slot: &AtomicPtr<Mutex<T>>, value: Pin<KBox<Mutex<T>>>) {
    // SAFETY: the box stays pinned: it is only ever freed through `take_global`.
    let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(value) });
    slot.store(raw, Ordering::Release);
}

impl kernel::Module for OptprobeModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        sys::resolve_symbols()?;
        let (layout, _) = template();
        if layout.check().is_err() {
            pr_err!("trampoline template layout is inconsistent: {:?}\n", layout);
            return Err(code::EINVAL);
        }
        // From here on, dropping `this` (on error too) tears everything down.
        let mut this = OptprobeModule { sysfs: None, notifier: None };
        publish(
            &REGISTRY,
            KBox::pin_init(
                kernel::new_mutex!(Registry { probes: KVec::new(), pages: KVec::new() }),
                GFP_KERNEL,
            )?,
        );
        publish(&SYSFS_PROBES, KBox::pin_init(kernel::new_mutex!(SysfsProbes { list: KVec::new() }), GFP_KERNEL)?);
        this.notifier = Some(ModuleNotifier::new()?);
        // SAFETY: the parameter buffer is NUL-terminated by moduleparam.
        let param = unsafe { CStr::from_ptr(ptr::addr_of!(bindings::optprobe_probes_param).cast::<c_char>()) }.to_bytes();
        for cmd in control::split_param(param) {
            if let Err(e) = control_command(cmd) {
                pr_err!("probes= entry '{}' refused\n", core::str::from_utf8(cmd).unwrap_or("?"));
                return Err(e);
            }
        }
        // SAFETY: a bool module parameter, written only at load.
        if unsafe { bindings::optprobe_selftest_param } {
            rust_api_selftest()?;
        }
        this.sysfs = Some(sys::SysfsDir::new()?);
        pr_info!("loaded (trampoline {} bytes, slot {})\n", layout.size, tramp::SLOT_SIZE);
        Ok(this)
    }
}

impl Drop for OptprobeModule {
    fn drop(&mut self) {
        // No new control writes, then no new module events.
        drop(self.sysfs.take());
        drop(self.notifier.take());
        if let Ok(probes) = sysfs_probes() {
            let list = core::mem::replace(&mut probes.lock().list, KVec::new());
            detach_registrations(list);
        }
        take_global(&SYSFS_PROBES);
        if let Ok(reg) = registry() {
            let n = reg.lock().detach_where(|_| true);
            if n > 0 {
                pr_info!("detached {} API probe(s) at unload\n", n);
            }
        }
        take_global(&REGISTRY);
        pr_info!("unloaded\n");
    }
}
