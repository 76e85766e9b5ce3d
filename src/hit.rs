// SPDX-License-Identifier: GPL-2.0
//! The hit path: everything that runs when a probed instruction is reached.
//!
//! - [`optprobe_callback`]: called by every trampoline with the hit's full
//!   `pt_regs`.
//! - [`optprobe_kp_pre_handler`], [`optprobe_kp_post_handler`]: the kprobe's
//!   handlers, run from the BRK path and (the pre-handler) from the callback.
//! - [`optprobe_rust_dispatch`]: the C-handler shim for Rust API handlers.
//!
//! Rules for this file, all of which a reviewer can check here alone:
//! - every function is `NOKPROBE_SYMBOL` (src/glue.c), so a probe can never
//!   recurse into it;
//! - no allocation, no lock, no panic path: no `assert!`, `unwrap`, indexing
//!   or arithmetic that can overflow-check (`wrapping_*` only);
//! - preemption is disabled around `current_kprobe`, as the BRK path does
//!   (the exception entry runs the handlers with preemption disabled).
//!
//! It may call only the probe's own fields, the resolved symbols the probe
//! carries (`Probe::syms`: a probe cannot exist before they are resolved),
//! and the C glue for preemption and per-CPU pointers.

use crate::api::ProbeHandler;
use crate::bindings;
use crate::probe::Probe;
use core::ffi::{c_int, c_ulong, c_void};
use core::ptr;
use core::sync::atomic::{AtomicU64, Ordering};

/// `KPROBE_HIT_ACTIVE` from arch/arm64/include/asm/kprobes.h.
const KPROBE_HIT_ACTIVE: u32 = 0x0000_0001;

/// The kprobe's pre-handler: runs on BRK hits and, via [`optprobe_callback`],
/// on trampoline hits. Always returns 0: handlers may not redirect `pc`.
///
/// # Safety
///
/// Called by the kprobes core (or the callback) for a registered kprobe,
/// which is the first field of a live [`Probe`].
#[no_mangle]
pub(crate) unsafe extern "C" fn optprobe_kp_pre_handler(kp: *mut bindings::kprobe, regs: *mut bindings::pt_regs) -> c_int {
    // CAST: `kp` is the first field of a `#[repr(C)]` Probe (container_of).
    let probe = kp.cast::<Probe>();
    // SAFETY: the kernel only calls this for registered kprobes, which are
    // embedded in live Probes (type invariant).
    unsafe {
        (*probe).hits.inc();
        // Volatile: an orphaned probe's handler is cleared on another CPU.
        if let Some(handler) = ptr::read_volatile(ptr::addr_of!((*probe).handler)) {
            handler((*probe).data, regs);
        }
    }
    0
}

/// The kprobe's post-handler (BRK path only: a probe with one is never
/// optimized).
///
/// # Safety
///
/// As for [`optprobe_kp_pre_handler`].
#[no_mangle]
pub(crate) unsafe extern "C" fn optprobe_kp_post_handler(
    kp: *mut bindings::kprobe,
    regs: *mut bindings::pt_regs,
    _flags: c_ulong,
) {
    // CAST: as in optprobe_kp_pre_handler.
    let probe = kp.cast::<Probe>();
    // SAFETY: as in optprobe_kp_pre_handler.
    unsafe {
        if let Some(post) = ptr::read_volatile(ptr::addr_of!((*probe).post_handler)) {
            post((*probe).data, regs);
        }
    }
}

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
pub(crate) unsafe extern "C" fn optprobe_callback(probe: *mut c_void, regs: *mut bindings::pt_regs) {
    let probe = probe.cast::<Probe>();
    // SAFETY: see the function's contract; the per-CPU pointers are the
    // kernel's, and preemption is disabled while they are used.
    unsafe {
        let s = (*probe).syms;
        bindings::optprobe_preempt_disable();
        // register_kprobe() points kp.list at itself; only when another
        // kprobe shares the address does the kernel move ours into an
        // aggregate, whose pre-handler runs them all. Skip the hash lookup
        // in the common, unshared case.
        let own = ptr::addr_of_mut!((*probe).kp);
        let list = ptr::addr_of_mut!((*own).list);
        let kp = if ptr::read_volatile(ptr::addr_of!((*list).next)) == list {
            own
        } else {
            bindings::optprobe_call_get_kprobe(s.get_kprobe, (*probe).addr as *mut c_void)
        };
        let current = bindings::optprobe_this_cpu_ptr(s.current_kprobe).cast::<*mut bindings::kprobe>();
        if !(*current).is_null() {
            // As kprobes_inc_nmissed_count(): on every kprobe at the address.
            inc_nmissed(if kp.is_null() { own } else { kp }, own);
        } else {
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
                // A kprobe with a post-handler joined the address after we
                // optimized it (the core's aggregate then has one): this
                // path cannot run it. Count the hit missed on each kprobe
                // that has one, and have a worker put the BRK back.
                if kp != own && ptr::read_volatile(ptr::addr_of!((*kp).post_handler)).is_some() {
                    inc_nmissed_post(kp);
                    bindings::optprobe_request_fallback();
                }
                *current = ptr::null_mut();
            }
        }
        bindings::optprobe_preempt_enable();
    }
}

/// Count a missed hit on `kp` or, when `kp` is an aggregate (not our own
/// kprobe), on every kprobe in its list, as `kprobes_inc_nmissed_count()`
/// does. Atomic: several CPUs can miss at once. No overflow check: wraps.
///
/// # Safety
///
/// `kp` is the live kprobe hashed at the probe's address and `own` our own
/// kprobe; called with preemption disabled (RCU read side for the list).
#[inline(always)]
unsafe fn inc_nmissed(kp: *mut bindings::kprobe, own: *mut bindings::kprobe) {
    // SAFETY: `nmissed` is an aligned `unsigned long` (u64 on arm64) that
    // other CPUs only update atomically or, in the core, under the same rule.
    let bump = |k: *mut bindings::kprobe| unsafe {
        AtomicU64::from_ptr(ptr::addr_of_mut!((*k).nmissed).cast::<u64>()).fetch_add(1, Ordering::Relaxed);
    };
    if kp == own {
        bump(own);
        return;
    }
    // CAST: `list` links the aggregate's kprobes (container_of).
    let offset = core::mem::offset_of!(bindings::kprobe, list);
    // SAFETY: per the function's contract; the list is RCU-protected and we
    // run with preemption disabled.
    unsafe {
        let head = ptr::addr_of_mut!((*kp).list);
        let mut pos = ptr::read_volatile(ptr::addr_of!((*head).next));
        while !pos.is_null() && pos != head {
            bump(pos.cast::<u8>().wrapping_sub(offset).cast::<bindings::kprobe>());
            pos = ptr::read_volatile(ptr::addr_of!((*pos).next));
        }
    }
}

/// Count a missed hit on every kprobe of aggregate `kp` that has a
/// post-handler: the optimized path ran its pre-handler but cannot run that.
///
/// # Safety
///
/// As for [`inc_nmissed`]; `kp` is an aggregate.
#[inline(always)]
unsafe fn inc_nmissed_post(kp: *mut bindings::kprobe) {
    // CAST: `list` links the aggregate's kprobes (container_of).
    let offset = core::mem::offset_of!(bindings::kprobe, list);
    // SAFETY: per the function's contract.
    unsafe {
        let head = ptr::addr_of_mut!((*kp).list);
        let mut pos = ptr::read_volatile(ptr::addr_of!((*head).next));
        while !pos.is_null() && pos != head {
            let k = pos.cast::<u8>().wrapping_sub(offset).cast::<bindings::kprobe>();
            if ptr::read_volatile(ptr::addr_of!((*k).post_handler)).is_some() {
                AtomicU64::from_ptr(ptr::addr_of_mut!((*k).nmissed).cast::<u64>()).fetch_add(1, Ordering::Relaxed);
            }
            pos = ptr::read_volatile(ptr::addr_of!((*pos).next));
        }
    }
}

/// Dispatch a hit to a boxed [`ProbeHandler`].
///
/// # Safety
///
/// `data` is the `KBox<dyn ProbeHandler>` a live `Registration` owns; `regs`
/// is the hit's `pt_regs`.
#[no_mangle]
pub(crate) unsafe extern "C" fn optprobe_rust_dispatch(data: *mut c_void, regs: *mut bindings::pt_regs) {
    // SAFETY: per the function's contract.
    unsafe { (*data.cast::<kernel::alloc::KBox<dyn ProbeHandler>>()).pre(&mut *regs) };
}
