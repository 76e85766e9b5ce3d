// SPDX-License-Identifier: GPL-2.0
//! One probe: `Probe`, `State`, `Spec`; registering its kprobe (disabled,
//! address checked) and the small state changes on it. Its text transitions
//! are in `patch.rs`; the registry (`registry.rs`) owns the probes.
//!
//! Calls `sys` (symbols, text reads) and the pure `insn`/`control`.

use crate::bindings;
use crate::fixed_str::FixedStr;
use crate::{control, hit, insn, patch, sys};
use core::ffi::{c_int, c_void, CStr};
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicU64};
use kernel::prelude::*;

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
    /// A function-entry probe delivered by its ftrace ops at the call site
    /// (src/entry.rs); `sym+0` holds its landing pad, not a BRK.
    Ftrace,
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
    /// A carrier (src/foreign.rs): optprobe's own kprobe joined to others'
    /// kprobes at their address, so that their hits take our branch.
    pub(crate) carrier: bool,
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
    /// The per-CPU `current_kprobe` and `kprobe_ctlblk` (copies of the
    /// `syms` entries, which never change), beside each other so that the
    /// hit path's asm loads both with one `ldp` straight from the probe.
    pub(crate) pcpu_current_kprobe: *mut c_void,
    pub(crate) pcpu_kprobe_ctlblk: *mut c_void,
    /// `hits` then `data`: the hit path's asm loads both with one `ldp`.
    pub(crate) hits: sys::PerCpuCounter,
    pub(crate) data: *mut c_void,
    pub(crate) state: State,
    /// Why the probe is not optimized. Static: the C ABI hands it out, and a
    /// caller may keep it past unregister.
    pub(crate) reason: &'static CStr,
    pub(crate) slot: usize,
    pub(crate) disabled: bool,
    pub(crate) gone: bool,
    /// Never reused: C ABI handles name probes by it (a freed probe's
    /// address can be a new probe's).
    pub(crate) id: u64,
    /// Selected for the registry's next detach batch.
    pub(crate) doomed: bool,
    /// See [`Spec::carrier`]. Carriers are not listed or counted as probes
    /// and have no handle; the foreign-kprobe poller owns them.
    pub(crate) carrier: bool,
    /// Hits on the optimized path where a handler at the address changed
    /// `pc` (or asked to skip the instruction): the trampoline cannot honour
    /// that, so the probe is then refused (`pc_refused`), back to BRK.
    pub(crate) pc_changes: AtomicU64,
    pub(crate) pc_refused: bool,
    /// Re-optimization attempts since the last success (carriers).
    pub(crate) attempts: u8,
    /// Removed by its owner, but its branch could not be removed: kept by
    /// the registry, handler cleared (see [`Probe::orphan`]).
    pub(crate) orphaned: bool,
    /// The registered ftrace ops of an entry probe (src/glue.c handle), or
    /// null. Set from `entry::enter` until `entry::leave`.
    pub(crate) ftrace: *mut c_void,
    /// The ftrace call site delivers hits (src/entry.rs has the protocol).
    pub(crate) entry_deliver: AtomicBool,
    /// BRK deliveries at `sym+0` are recorded for the call site to skip.
    pub(crate) entry_recording: AtomicBool,
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
                pcpu_current_kprobe: sys::syms().current_kprobe,
                pcpu_kprobe_ctlblk: sys::syms().kprobe_ctlblk,
                hits: sys::PerCpuCounter::new()?,
                data: spec.data,
                state: State::Kprobe,
                reason: c"not optimized yet",
                slot: 0,
                disabled: false,
                gone: false,
                id: 0,
                doomed: false,
                carrier: spec.carrier,
                pc_changes: AtomicU64::new(0),
                pc_refused: false,
                attempts: 0,
                orphaned: false,
                ftrace: ptr::null_mut(),
                entry_deliver: AtomicBool::new(false),
                entry_recording: AtomicBool::new(false),
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
        // A function-entry probe on a BTI kernel may be delivered through
        // ftrace (src/entry.rs), whose protocol needs our post-handler on
        // the BRK path; the core copies that into an aggregate only when a
        // kprobe joins, so it is set now. hit::runs_post_handler() does not
        // count it as a post-handler unless the owner gave one.
        if spec.post_handler.is_some() || (probe.syms.bti_enforced && targets_function_entry(spec)) {
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
    pub(crate) unsafe fn hashed(&self) -> *mut bindings::kprobe {
        // SAFETY: a registered address, per the function's contract.
        unsafe { bindings::optprobe_call_get_kprobe(self.syms.get_kprobe, self.addr as *mut c_void) }
    }

    /// Is our kprobe in an aggregate that is armed (flagged enabled), i.e.
    /// another kprobe at the address already armed it?
    ///
    /// # Safety
    ///
    /// The caller holds kprobe_mutex.
    pub(crate) unsafe fn joins_armed_aggregate(&self) -> bool {
        // SAFETY: per the function's contract.
        let at = unsafe { self.hashed() };
        // SAFETY: the live hashed kprobe, under kprobe_mutex.
        !at.is_null() && !ptr::eq(at, &self.kp) && unsafe { (*at).flags } & bindings::KPROBE_FLAG_DISABLED == 0
    }

    /// Set or clear the core's DISABLED flag on our kprobe and on the
    /// aggregate it is in, as the core does when it arms or disarms: the flag
    /// says enabled iff the text is BRK or our branch.
    ///
    /// # Safety
    ///
    /// The caller holds `kprobe_mutex` and `text_mutex`, and the text at the
    /// address agrees with the new flags.
    pub(crate) unsafe fn set_core_disabled(&mut self, disabled: bool) {
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

    /// Set or clear the core's OPTIMIZED flag on the kprobe hashed at our
    /// address (our own, or the aggregate), which debugfs `kprobes/list`
    /// shows as `[OPTIMIZED]`. Without CONFIG_OPTPROBES (arm64) nothing in
    /// the core reads it but that listing.
    ///
    /// # Safety
    ///
    /// The caller holds `kprobe_mutex`.
    pub(crate) unsafe fn set_core_optimized(&mut self, on: bool) {
        // SAFETY: per the function's contract.
        let at = unsafe { self.hashed() };
        if at.is_null() {
            return;
        }
        let flag = bindings::KPROBE_FLAG_OPTIMIZED;
        // SAFETY: the live hashed kprobe, under kprobe_mutex.
        unsafe {
            if on {
                (*at).flags |= flag;
            } else {
                (*at).flags &= !flag;
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
    pub(crate) unsafe fn free_slot_into(&mut self, pool: &mut crate::pool::Pool) {
        if self.slot != 0 {
            // SAFETY: per the function's contract.
            unsafe { pool.free_slot(self.slot) };
            self.slot = 0;
        }
    }

    /// Is our branch at the probe address now? (Reads the text: only for
    /// probes whose text is mapped.)
    pub(crate) fn branch_is_live(&self) -> bool {
        matches!(patch::branch_state(self), patch::Branch::Ours)
    }

    /// Forget the slot without freeing it: used when the branch to it may
    /// still be live, so the trampoline must leak rather than be reused.
    pub(crate) fn leak_slot(&mut self) {
        self.slot = 0;
    }
}

/// Does `spec` name a function's first instruction?
fn targets_function_entry(spec: &Spec) -> bool {
    if !spec.symbol.is_empty() {
        spec.offset == 0
    } else {
        sys::symbol_bounds(spec.addr).is_some_and(|(start, _)| start == spec.addr)
    }
}

/// A probe target as the user named it: `symbol+offset`, or the address.
struct TargetName<'a>(&'a Spec);

impl core::fmt::Display for TargetName<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if !self.0.symbol.is_empty() {
            write!(f, "{}+{:#x}", self.0.symbol.as_str(), self.0.offset)
        } else {
            write!(f, "{:#x}", self.0.addr)
        }
    }
}
crate::compat::impl_kernel_display!(TargetName<'_>);

fn describe_target(spec: &Spec) -> TargetName<'_> {
    TargetName(spec)
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
