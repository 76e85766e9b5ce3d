// SPDX-License-Identifier: GPL-2.0
//! The hit path: everything that runs when a probed instruction is reached.
//!
//! - [`optprobe_dispatch`]: called by every trampoline with the hit's full
//!   `pt_regs`; runs a lone probe's handler itself (naked asm, the common
//!   case) and hands everything else to [`optprobe_callback`].
//! - [`optprobe_kp_pre_handler`], [`optprobe_kp_post_handler`]: the kprobe's
//!   handlers, run from the BRK path and (the pre-handler) from the callback.
//! - [`optprobe_rust_dispatch`]: the C-handler shim for Rust API handlers.
//! - [`optprobe_entry_hit`]: entry probes through ftrace (src/entry.rs),
//!   called by the ftrace callback in src/glue.c with a `pt_regs` built
//!   from `ftrace_regs`; and the delivery records that keep a call from
//!   being counted by both the BRK at `sym+0` and the ftrace call site.
//!
//! Rules for this file, all of which a reviewer can check here alone:
//! - every function is `NOKPROBE_SYMBOL` (src/glue.c), so a probe can never
//!   recurse into it;
//! - no allocation, no lock, no panic path: no `assert!`, `unwrap`, indexing
//!   or arithmetic that can overflow-check (`wrapping_*` only); the field
//!   offsets the asm uses are `offset_of!` constants, so they follow the
//!   structs;
//! - preemption is disabled around `current_kprobe`, as the BRK path does
//!   (the exception entry runs the handlers with preemption disabled).
//!
//! It may call only the probe's own fields, the resolved symbols the probe
//! carries (`Probe::syms`: a probe cannot exist before they are resolved),
//! and, on rare paths, the C glue (a due reschedule, the post-handler
//! fallback). Preemption and per-CPU accesses are inline: the preempt count
//! in `current` (sp_el0, `thread_info` first in `task_struct`), the per-CPU
//! offset in tpidr_el1/tpidr_el2.

use crate::api::ProbeHandler;
use crate::bindings;
use crate::probe::Probe;
use crate::sys;
use core::ffi::{c_int, c_ulong, c_void};
use core::mem::offset_of;
use core::ptr;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Hits since load where a handler changed pc on the optimized path (the
/// `stats` figure: probes that counted some may be gone).
pub(crate) static PC_CHANGES: AtomicU64 = AtomicU64::new(0);

/// The kprobe status a handler runs under (include/linux/kprobes.h),
/// from the kernel's own header: a fault in a handler, or a kprobe hit
/// inside it, is judged by it (0x4 would be `KPROBE_REENTER`, after which a
/// nested BRK hit is a `BUG()`).
const KPROBE_HIT_ACTIVE: u32 = bindings::KPROBE_HIT_ACTIVE;
const KPROBE_HIT_SSDONE: u32 = bindings::KPROBE_HIT_SSDONE;

/// This CPU's per-CPU offset, as `__my_cpu_offset` reads it: tpidr_el1, or
/// tpidr_el2 when the kernel runs at EL2 (VHE).
#[inline(always)]
fn this_cpu_offset(s: &sys::Symbols) -> usize {
    let off: usize;
    if s.percpu_el2 {
        // SAFETY: reads a system register the kernel keeps the offset in.
        unsafe { core::arch::asm!("mrs {}, tpidr_el2", out(reg) off, options(nomem, nostack, preserves_flags)) };
    } else {
        // SAFETY: as above.
        unsafe { core::arch::asm!("mrs {}, tpidr_el1", out(reg) off, options(nomem, nostack, preserves_flags)) };
    }
    off
}

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
    // embedded in live Probes (type invariant); preemption is disabled.
    unsafe { run_own(probe, regs, this_cpu_offset((*probe).syms)) };
    0
}

/// Our own pre-handler's work: count the hit on this CPU, run the handler.
///
/// # Safety
///
/// `probe` is live, preemption is disabled, `cpu_offset` is this CPU's.
#[inline(always)]
unsafe fn run_own(probe: *mut Probe, regs: *mut bindings::pt_regs, cpu_offset: usize) {
    // SAFETY: per the function's contract.
    unsafe {
        (*probe).hits.inc_at(cpu_offset);
        // Volatile: an orphaned probe's handler is cleared on another CPU.
        if let Some(handler) = ptr::read_volatile(ptr::addr_of!((*probe).handler)) {
            handler((*probe).data, regs);
        }
    }
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
        // An entry probe delivered through ftrace whose `sym+0` holds a BRK
        // (a transition, or the core re-arming it): this call was just
        // delivered by that BRK and goes on to the ftrace call site, which
        // must not deliver it again. Post-handlers run only for calls the
        // BRK path resumes after `sym+0` (none that a pre-handler
        // redirected); a call an earlier post-handler sent elsewhere gets
        // no record, so every record is consumed at the call site. The
        // call site's own run of the post-handlers (optprobe_entry_hit, on
        // a `pt_regs` it built) is no BRK delivery and records nothing.
        let addr = (*probe).addr;
        let r = &mut (*regs).__bindgen_anon_1.__bindgen_anon_1;
        // Read once: the stall below is for exactly the unrecorded ones.
        let recording = (*probe).entry_recording.load(Ordering::Acquire);
        if recording && bindings::optprobe_is_exception_frame(regs) && r.pc == addr.wrapping_add(4) as u64 {
            record_brk_delivery(addr, r.sp as usize);
            resume_at_call_site(probe, regs);
            // Test builds: a resume at sym+4 that never reaches the call
            // site (what multi-threaded TCG did), on demand.
            if crate::test_hooks::skip_site_after_brk() && r.pc == addr.wrapping_add(4) as u64 {
                r.regs[9] = r.regs[30];
                r.pc = addr.wrapping_add(crate::entry::CALL_SITE + 4) as u64;
            }
        } else if (*probe).carrier && !recording {
            // Test builds: a call the BRK delivered unrecorded stalls here,
            // as if preempted before the call site (ktest entry_window).
            crate::test_hooks::stall_unrecorded_brk();
        }
    }
}

/// Defines one dispatch: `$name` reads the per-CPU offset with `$tpidr`.
/// The two (EL1 and EL2) differ in that one instruction, which the kernel
/// patches with an alternative and a module cannot; the trampoline's
/// `callback` literal names the one for the level the kernel runs at.
macro_rules! define_dispatch {
    ($(#[$doc:meta])* $name:ident, $tpidr:literal) => {
$(#[$doc])*
#[unsafe(naked)]
#[no_mangle]
pub(crate) unsafe extern "C" fn $name(probe: *mut c_void, regs: *mut bindings::pt_regs) {
    core::arch::naked_asm!(
        // Reached by `blr x16`. x0 and x1 stay as they came until the
        // general path or the handler call.
        "bti c",
        "mov x19, x30",
        // preempt_disable(): current is in sp_el0.
        "mrs x22, sp_el0",
        ".if {preempt_count}",
        "ldr w8, [x22, #{ti_preempt}]",
        "add w8, w8, #1",
        "str w8, [x22, #{ti_preempt}]",
        ".endif",
        ".if {cfi}",
        "b 5f",
        ".endif",
        // This CPU's per-CPU offset, and its current_kprobe slot (the
        // per-CPU addresses are the probe's own copies).
        concat!("mrs x25, ", $tpidr),
        "ldp x23, x24, [x0, #{pcpu_current_kprobe}]",
        "add x23, x23, x25",
        // One branch to the general path for all that it handles: not alone
        // at the address (an aggregate: kp.list is not empty), another
        // kprobe active on this CPU (a missed hit), disabled or gone (it
        // runs nothing), or no handler.
        "ldr x8, [x0, #{kp_list_next}]",
        "add x9, x0, #{kp_list}",
        "eor x8, x8, x9",
        "ldr x9, [x23]",
        "orr x8, x8, x9",
        "ldr w9, [x0, #{kp_flags}]",
        "and w9, w9, #{kp_off}",
        "orr x8, x8, x9",
        "ldr x10, [x0, #{handler}]",
        "cmp x8, #0",
        "ccmp x10, #0, #4, eq",
        "b.eq 5f",
        // current_kprobe = our kprobe (the Probe's first field), and this
        // CPU's kprobe_ctlblk.kprobe_status = KPROBE_HIT_ACTIVE.
        "str x0, [x23]",
        "mov w8, #{hit_active}",
        "str w8, [x24, x25]",
        // The hit, on this CPU's counter, and the handler's data (one
        // `ldp`: `data` follows `hits`).
        "ldp x8, x0, [x0, #{hits}]",
        "ldr x9, [x8, x25]",
        "add x9, x9, #1",
        "str x9, [x8, x25]",
        // The handler (read once: an orphan's is cleared on another CPU).
        "blr x10",
        "str xzr, [x23]",
        // preempt_enable().
        "4:",
        ".if {preempt_count}",
        "ldr x8, [x22, #{ti_preempt}]",
        "sub x8, x8, #1",
        "str w8, [x22, #{ti_preempt}]",
        "ldr x9, [x22, #{ti_preempt}]",
        "cmp x8, #0",
        "ccmp x9, #0, #4, ne",
        "b.eq 6f",
        ".endif",
        "ret x19",
        // The general path (x0, x1 as they came), preemption disabled.
        "5:",
        "bl {callback}",
        "b 4b",
        // The count reached zero with a reschedule due: need_resched is the
        // high word, kept inverted (0 = needed), so the whole u64 is 0.
        "6:",
        "bl {resched}",
        "ret x19",
        preempt_count = const cfg!(CONFIG_PREEMPT_COUNT) as u32,
        cfi = const cfg!(any(CONFIG_CFI, CONFIG_CFI_CLANG)) as u32,
        // current_thread_info() is current: thread_info is task_struct's
        // first member (THREAD_INFO_IN_TASK).
        ti_preempt = const offset_of!(bindings::thread_info, __bindgen_anon_1),
        kp_list = const offset_of!(bindings::kprobe, list),
        kp_list_next = const offset_of!(bindings::kprobe, list) + offset_of!(bindings::list_head, next),
        kp_flags = const offset_of!(bindings::kprobe, flags),
        kp_off = const bindings::KPROBE_FLAG_DISABLED | bindings::KPROBE_FLAG_GONE,
        pcpu_current_kprobe = const offset_of!(Probe, pcpu_current_kprobe),
        hit_active = const KPROBE_HIT_ACTIVE,
        hits = const offset_of!(Probe, hits),
        handler = const offset_of!(Probe, handler),
        callback = sym optprobe_callback,
        resched = sym bindings::optprobe_preempt_resched,
    )
}
    };
}

define_dispatch!(
    /// Called by every trampoline (its `callback` literal) with `x0` = the
    /// probe, `x1` = `sp` = the hit's full `pt_regs`, `x29` = record A and
    /// `x30` = the return into the trampoline, which restores every general
    /// register from `pt_regs` afterwards: this code may use any of them but
    /// `sp`, `x29`, which the handler's frame record links through, and
    /// `x18`, the shadow call stack pointer under `SHADOW_CALL_STACK`.
    ///
    /// The common case, a lone kprobe of our own (the kernel left `kp.list`
    /// pointing at itself: no aggregate) with no other kprobe active on this
    /// CPU, runs here in straight-line code: no frame, no pointer
    /// authentication, no call but the handler's. It is `run_own` exactly:
    /// preemption disabled as arm64's `preempt_disable()` does it (the
    /// task's own count, plain load and store), `current_kprobe` and
    /// `kprobe_status` set for the handler's duration, the hit counted on
    /// this CPU, the handler called, and `preempt_enable()` as arm64's
    /// `__preempt_count_dec_and_test()`, with the config's own path when a
    /// reschedule is due. A disabled or gone kprobe runs nothing.
    /// Everything else (an aggregate, another kprobe active: a missed hit)
    /// goes to [`optprobe_callback`] with preemption disabled.
    ///
    /// Preemption is the task's count and not masked interrupts, although
    /// the BRK path runs handlers with DAIF masked: under QEMU's TCG a
    /// write of DAIF ends the translation block, and `make bench-ablation`'s
    /// irq-mask variant measured it at +26 ns a hit (+56 ns raw) where the
    /// count was lost in the noise (README "Where the time goes"). x86's
    /// optprobes and kprobes on ftrace also disable only preemption.
    ///
    /// Under kCFI (`CONFIG_CFI_CLANG`, since 7.0 `CONFIG_CFI`) every hit
    /// takes that path: an indirect call from asm carries no kCFI type
    /// check, a compiled one does.
    ///
    /// The return address into the trampoline stays in x19 unsigned, as
    /// `ftrace_caller` keeps lr: asm that calls C does not sign it.
    ///
    /// This one reads the per-CPU offset from tpidr_el1 (the kernel at EL1);
    /// [`optprobe_dispatch_el2`] is the same for a kernel at EL2 (VHE).
    ///
    /// # Safety
    ///
    /// Only trampolines call this, with `probe` from their literal (a live
    /// Probe, kept alive until after `synchronize_rcu_tasks()`) and `regs` =
    /// `sp`.
    optprobe_dispatch, "tpidr_el1"
);

define_dispatch!(
    /// [`optprobe_dispatch`] for a kernel at EL2 (VHE), where the per-CPU
    /// offset is in tpidr_el2.
    ///
    /// # Safety
    ///
    /// As for [`optprobe_dispatch`].
    optprobe_dispatch_el2, "tpidr_el2"
);

/// The dispatch for trampolines on this kernel: the per-CPU offset's
/// register depends on the exception level the kernel runs at.
pub(crate) fn dispatch_for(s: &sys::Symbols) -> u64 {
    let dispatch: unsafe extern "C" fn(*mut c_void, *mut bindings::pt_regs) =
        if s.percpu_el2 { optprobe_dispatch_el2 } else { optprobe_dispatch };
    // CAST: a function address, for the trampoline's literal.
    dispatch as usize as u64
}

// What the dispatches' loads assume (`Probe` is `repr(C)`): `ldp` of the
// two per-CPU bases and of `hits` with `data`, `str w8, [x24, x25]` at
// kprobe_status, and the kprobe at the start of its Probe.
const _: () = assert!(offset_of!(Probe, pcpu_kprobe_ctlblk) == offset_of!(Probe, pcpu_current_kprobe) + 8);
const _: () = assert!(offset_of!(Probe, data) == offset_of!(Probe, hits) + 8);
const _: () = assert!(core::mem::size_of::<sys::PerCpuCounter>() == 8);
const _: () = assert!(offset_of!(bindings::kprobe_ctlblk, kprobe_status) == 0);
const _: () = assert!(offset_of!(Probe, kp) == 0);

/// The general path of a trampoline hit, from [`optprobe_dispatch`] with
/// preemption disabled (the RCU read side for the aggregate's list).
///
/// Mirrors the kernel's BRK path: `current_kprobe` set for the duration,
/// and a hit while another kprobe is active on this CPU counted as
/// missed. The probe found at the address may be an aggregate when another
/// kprobe shares it; its pre-handler then runs every handler.
///
/// # Safety
///
/// Only [`optprobe_dispatch`] calls this, with its arguments and
/// preemption disabled.
#[no_mangle]
pub(crate) unsafe extern "C" fn optprobe_callback(probe: *mut c_void, regs: *mut bindings::pt_regs) {
    let probe = probe.cast::<Probe>();
    // SAFETY: see the function's contract; the per-CPU pointers are the
    // kernel's, and preemption is disabled while they are used.
    unsafe {
        let s = (*probe).syms;
        let own = ptr::addr_of_mut!((*probe).kp);
        let kp = hashed_at(probe, s);
        let cpu_offset = this_cpu_offset(s);
        let current = (s.current_kprobe as usize).wrapping_add(cpu_offset) as *mut *mut bindings::kprobe;
        if !(*current).is_null() {
            // As kprobes_inc_nmissed_count(): on every kprobe at the address.
            inc_nmissed(if kp.is_null() { own } else { kp }, own);
        } else {
            let disabled = bindings::KPROBE_FLAG_DISABLED | bindings::KPROBE_FLAG_GONE;
            if !kp.is_null() && (*kp).flags & disabled == 0 {
                *current = kp;
                let kcb = ctlblk_beside(current, s);
                (*kcb).kprobe_status = KPROBE_HIT_ACTIVE;
                if kp == own {
                    // Alone at the address: our own pre-handler's work, without
                    // the indirect call through kp.pre_handler.
                    run_own(probe, regs, cpu_offset);
                } else if let Some(pre) = (*kp).pre_handler {
                    // A carrier's aggregate runs only the handlers this path
                    // may run (src/foreign.rs); one that joined since the
                    // last poll is counted missed until the poller puts the
                    // BRK back. Our own probes' aggregates run every handler
                    // (the documented coexistence).
                    let ret = if (*probe).carrier && pre as usize == s.aggr_pre_handler {
                        run_carried(kp, regs, s)
                    } else {
                        pre(kp, regs)
                    };
                    // A pre-handler that returns 1 or moves pc asks to skip
                    // the instruction and resume elsewhere, which this path
                    // cannot do: count it and have a worker refuse the
                    // address (back to BRK, where the core honours it).
                    let redirect = ret == 1
                        || (*regs).__bindgen_anon_1.__bindgen_anon_1.pc != (*probe).addr as u64;
                    if redirect {
                        (*probe).pc_changes.fetch_add(1, Ordering::Relaxed);
                        PC_CHANGES.fetch_add(1, Ordering::Relaxed);
                        bindings::optprobe_request_fallback();
                    }
                }
                // A kprobe with a post-handler joined the address after we
                // optimized it (the core's aggregate then has one): this
                // path cannot run it. Count the hit missed on each kprobe
                // that has one, and have a worker put the BRK back.
                if kp != own
                    && ptr::read_volatile(ptr::addr_of!((*kp).post_handler)).is_some()
                    && inc_nmissed_post(kp)
                {
                    bindings::optprobe_request_fallback();
                }
                *current = ptr::null_mut();
            }
        }
    }
}

/// The kprobe hashed at `probe`'s address: its own, or the aggregate it is
/// in (null if none). register_kprobe() points kp.list at itself; only when
/// another kprobe shares the address does the kernel move ours into an
/// aggregate, whose pre-handler runs them all. The hash lookup is skipped
/// in the common, unshared case.
///
/// # Safety
///
/// `probe` is live and the caller is in an RCU read-side section
/// (preemption disabled).
#[inline(always)]
unsafe fn hashed_at(probe: *mut Probe, s: &sys::Symbols) -> *mut bindings::kprobe {
    // SAFETY: per the function's contract.
    unsafe {
        let own = ptr::addr_of_mut!((*probe).kp);
        let list = ptr::addr_of_mut!((*own).list);
        if ptr::read_volatile(ptr::addr_of!((*list).next)) == list {
            own
        } else {
            bindings::optprobe_call_get_kprobe(s.get_kprobe, (*probe).addr as *mut c_void)
        }
    }
}

/// This CPU's `kprobe_ctlblk`, from its `current_kprobe` slot: both are
/// per-CPU variables, so they share the per-CPU offset. Their order is the
/// linker's, so the difference may be negative.
#[inline(always)]
fn ctlblk_beside(current: *mut *mut bindings::kprobe, s: &sys::Symbols) -> *mut bindings::kprobe_ctlblk {
    let delta = (s.kprobe_ctlblk as usize).wrapping_sub(s.current_kprobe as usize);
    current.cast::<u8>().wrapping_add(delta).cast::<bindings::kprobe_ctlblk>()
}

/// May the optimized path run pre-handler `pre` of a kprobe it carries?
/// (src/foreign.rs judges addresses by the same list.)
#[inline(always)]
pub(crate) fn runnable(s: &sys::Symbols, pre: usize) -> bool {
    // CAST: function addresses, compared only.
    pre == optprobe_kp_pre_handler as *const () as usize
        || (pre != 0 && (pre == s.kprobe_dispatcher || pre == s.pre_handler_kretprobe))
        || crate::test_hooks::runnable_test_handler(pre)
}

/// A carrier's aggregate `kp`, as `aggr_pre_handler` runs it (each kprobe
/// that is neither disabled nor gone, with `current_kprobe` left at the
/// aggregate throughout, stopping at the first that returns non-zero;
/// the core's private `kprobe_instance` is not ours to set), but only the handlers
/// [`runnable`] allows; any other enabled kprobe gets the hit counted
/// missed and a worker is asked to put the BRK back. Returns 1 when a
/// handler asked to skip the instruction, 2 when a handler was not run, 0
/// otherwise.
///
/// # Safety
///
/// `kp` is the live aggregate hashed at the probe's address, preemption is
/// disabled (RCU read side for its list) and `current_kprobe` is `kp`.
#[inline(always)]
unsafe fn run_carried(kp: *mut bindings::kprobe, regs: *mut bindings::pt_regs, s: &sys::Symbols) -> c_int {
    let off = bindings::KPROBE_FLAG_DISABLED | bindings::KPROBE_FLAG_GONE;
    let mut ret = 0;
    // SAFETY: per the function's contract.
    unsafe {
        try_for_each_in_aggregate(kp, |k| {
            let pre = ptr::read_volatile(ptr::addr_of!((*k).pre_handler));
            if let Some(pre) = pre.filter(|_| ptr::read_volatile(ptr::addr_of!((*k).flags)) & off == 0) {
                if !runnable(s, pre as usize) {
                    bump_nmissed(k);
                    ret = 2;
                } else if pre(k, regs) != 0 {
                    ret = 1;
                    return false;
                }
            }
            true
        })
    };
    if ret == 2 {
        // SAFETY: safe in any context (irq_work).
        unsafe { bindings::optprobe_request_fallback() };
    }
    ret
}

/// Call `f` on every kprobe of aggregate `kp` (the `list` it links), reading
/// the RCU-protected list with volatile loads.
///
/// # Safety
///
/// `kp` is a live aggregate and the caller is in an RCU read-side section
/// (preemption disabled) or holds kprobe_mutex.
#[inline(always)]
pub(crate) unsafe fn for_each_in_aggregate(kp: *mut bindings::kprobe, mut f: impl FnMut(*mut bindings::kprobe)) {
    // SAFETY: per the function's contract.
    unsafe {
        try_for_each_in_aggregate(kp, |k| {
            f(k);
            true
        })
    }
}

/// [`for_each_in_aggregate`], stopping after the first call of `f` that
/// returns false.
///
/// # Safety
///
/// As for [`for_each_in_aggregate`].
#[inline(always)]
unsafe fn try_for_each_in_aggregate(kp: *mut bindings::kprobe, mut f: impl FnMut(*mut bindings::kprobe) -> bool) {
    // CAST: `list` links the aggregate's kprobes (container_of).
    let offset = core::mem::offset_of!(bindings::kprobe, list);
    // SAFETY: per the function's contract.
    unsafe {
        let head = ptr::addr_of_mut!((*kp).list);
        let mut pos = ptr::read_volatile(ptr::addr_of!((*head).next));
        while !pos.is_null() && pos != head {
            if !f(pos.cast::<u8>().wrapping_sub(offset).cast::<bindings::kprobe>()) {
                return;
            }
            pos = ptr::read_volatile(ptr::addr_of!((*pos).next));
        }
    }
}

/// Does kprobe `k` run its post-handler: has one, neither disabled nor gone
/// (the core's `aggr_post_handler` skips those)?
///
/// # Safety
///
/// `k` is a live kprobe.
#[inline(always)]
pub(crate) unsafe fn runs_post_handler(k: *mut bindings::kprobe) -> bool {
    let off = bindings::KPROBE_FLAG_DISABLED | bindings::KPROBE_FLAG_GONE;
    // SAFETY: per the function's contract; volatile, as other CPUs change them.
    unsafe {
        let Some(post) = ptr::read_volatile(ptr::addr_of!((*k).post_handler)) else { return false };
        // Our own kprobes carry a post-handler at function entry only to
        // record BRK deliveries (see optprobe_kp_post_handler): it runs a
        // handler only when the probe's owner gave one.
        // CAST: function addresses, compared only.
        if post as usize == optprobe_kp_post_handler as *const () as usize
            && ptr::read_volatile(ptr::addr_of!((*k.cast::<Probe>()).post_handler)).is_none()
        {
            return false;
        }
        ptr::read_volatile(ptr::addr_of!((*k).flags)) & off == 0
    }
}

/// One more missed hit on `k`. Atomic: several CPUs can miss at once; no
/// overflow check: wraps.
///
/// # Safety
///
/// `k` is a live kprobe; `nmissed` is an aligned `unsigned long` (u64 on
/// arm64) that is only updated atomically or, in the core, the same way.
#[inline(always)]
unsafe fn bump_nmissed(k: *mut bindings::kprobe) {
    // SAFETY: per the function's contract.
    unsafe { AtomicU64::from_ptr(ptr::addr_of_mut!((*k).nmissed).cast::<u64>()).fetch_add(1, Ordering::Relaxed) };
}

/// Count a missed hit on `kp` or, when `kp` is an aggregate (not our own
/// kprobe), on every kprobe in its list, as `kprobes_inc_nmissed_count()`
/// does.
///
/// # Safety
///
/// `kp` is the live kprobe hashed at the probe's address and `own` our own
/// kprobe; called with preemption disabled (RCU read side for the list).
#[inline(always)]
unsafe fn inc_nmissed(kp: *mut bindings::kprobe, own: *mut bindings::kprobe) {
    // SAFETY: per the function's contract.
    unsafe {
        if kp == own {
            bump_nmissed(own);
        } else {
            for_each_in_aggregate(kp, |k| bump_nmissed(k));
        }
    }
}

/// Count a missed hit on every kprobe of aggregate `kp` that runs a
/// post-handler: the optimized path ran its pre-handler but cannot run that.
/// Returns whether there was one.
///
/// # Safety
///
/// As for [`inc_nmissed`]; `kp` is an aggregate.
#[inline(always)]
unsafe fn inc_nmissed_post(kp: *mut bindings::kprobe) -> bool {
    let mut found = false;
    // SAFETY: per the function's contract.
    unsafe {
        for_each_in_aggregate(kp, |k| {
            if runs_post_handler(k) {
                bump_nmissed(k);
                found = true;
            }
        });
    }
    found
}

/// After a BRK delivery that [`record_brk_delivery`] recorded: resume at
/// the ftrace call site (`sym+8`) with the one instruction before it,
/// `mov x9, x30` (src/entry.rs `is_entry_site` checked it is there), done
/// here, instead of at `sym+4`.
///
/// Why: under QEMU's multi-threaded TCG, calls resuming at `sym+4` after
/// the BRK's exception return ran, for whole rounds of ktest
/// `entry_tokens`, code that never reached the call site's callback (one
/// round in three to seven runs; never with `-accel tcg,thread=single`,
/// never when resuming at the call site). Their records went stale and
/// later calls of the same task and stack pointer that passed the landing
/// pad took them: lost hits. On hardware the exception return is a context
/// synchronization event, after which both resume points run the same call
/// site; resuming at the call site is exact on both (README, "Entry probes
/// through ftrace").
///
/// Only when `sym+4` still holds `mov x9, x30` (not the BRK of a kprobe
/// there, nor an optprobe's branch: those must see the call; a hardware
/// breakpoint there does not see calls the BRK delivered), and no other
/// kprobe at the address has a post-handler that could look at the
/// registers (those run after this one and must see `pc` and `x9` as the
/// BRK path leaves them).
///
/// # Safety
///
/// As for [`optprobe_kp_post_handler`], which calls it with its own
/// arguments, for a call the BRK path resumes at `sym+4`.
#[inline(always)]
unsafe fn resume_at_call_site(probe: *mut Probe, regs: *mut bindings::pt_regs) {
    // SAFETY: per the function's contract: a live probe, the BRK path's
    // regs, preemption and interrupts disabled (RCU read side for the
    // aggregate's list).
    unsafe {
        let addr = (*probe).addr;
        let r = &mut (*regs).__bindgen_anon_1.__bindgen_anon_1;
        if u32::from_le(ptr::read_volatile(addr.wrapping_add(4) as *const u32)) != crate::entry::MOV_X9_X30 {
            return;
        }
        let own = ptr::addr_of_mut!((*probe).kp);
        let at = hashed_at(probe, (*probe).syms);
        if at.is_null() {
            return;
        }
        let mut other_post = false;
        if at != own {
            // Disabled ones count too: enable_kprobe() does not wait for us.
            for_each_in_aggregate(at, |k| other_post |= k != own && has_register_post_handler(k));
        }
        if other_post {
            return;
        }
        r.regs[9] = r.regs[30];
        r.pc = addr.wrapping_add(crate::entry::CALL_SITE) as u64;
    }
}

/// Does kprobe `k` have a post-handler that may look at the registers? Our
/// own kprobes at a function entry carry one only to record BRK deliveries
/// unless their owner gave one ([`runs_post_handler`] without the flags).
///
/// # Safety
///
/// `k` is a live kprobe.
#[inline(always)]
unsafe fn has_register_post_handler(k: *mut bindings::kprobe) -> bool {
    // SAFETY: per the function's contract; volatile, as other CPUs change them.
    unsafe {
        let Some(post) = ptr::read_volatile(ptr::addr_of!((*k).post_handler)) else { return false };
        // CAST: function addresses, compared only.
        post as usize != optprobe_kp_post_handler as *const () as usize
            || ptr::read_volatile(ptr::addr_of!((*k.cast::<Probe>()).post_handler)).is_some()
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

// --- Entry probes through ftrace ---------------------------------------------

/// Delivery records: a call delivered by the BRK at an entry probe's
/// `sym+0` while that probe's ftrace ops is attached, which the ftrace call
/// site at `sym+8` must then skip. Keyed by task, stack pointer and probe
/// address: between `sym+0` and the call site only `mov x9, x30` runs, so
/// the same call has the same sp at both, and one task is in at most one
/// such window at one sp (anything nested runs on another stack or deeper).
/// Only the owning task creates or consumes its records; src/entry.rs
/// clears a probe's records when its ops is gone.
struct Record {
    task: AtomicUsize,
    sp: AtomicUsize,
    addr: AtomicUsize,
}

/// Room for this many tasks inside a window at once (each was preempted
/// between `sym+0` and `sym+8` during a transition); beyond it a call can be
/// delivered twice, and [`RECORDS_LOST`] says so.
const RECORDS: usize = 256;
static RECORD_TABLE: [Record; RECORDS] =
    [const { Record { task: AtomicUsize::new(0), sp: AtomicUsize::new(0), addr: AtomicUsize::new(0) } }; RECORDS];
/// Records in the table: the call site skips the search while it is 0.
static RECORDS_LIVE: AtomicUsize = AtomicUsize::new(0);
/// Records that did not fit (stats `entry_records_lost`).
pub(crate) static RECORDS_LOST: AtomicU64 = AtomicU64::new(0);

/// `current`, which arm64 keeps in sp_el0.
#[inline(always)]
fn current_task() -> usize {
    let task: usize;
    // SAFETY: reads sp_el0, which holds `current` in kernel mode.
    unsafe { core::arch::asm!("mrs {}, sp_el0", out(reg) task, options(nomem, nostack, preserves_flags)) };
    task
}

#[inline(always)]
fn record_start(task: usize, sp: usize) -> usize {
    ((task >> 6) ^ (sp >> 4)) % RECORDS
}

/// Record `i` after `start`, wrapping around the table (never out of range).
#[inline(always)]
fn record_at(start: usize, i: usize) -> &'static Record {
    &RECORD_TABLE[start.wrapping_add(i) % RECORDS]
}

/// Remember that the current task's call at `addr`, with stack pointer
/// `sp`, was delivered by the BRK. Lock-free; a stale record of the same key
/// (a call that never reached the call site) is reused.
#[inline(always)]
fn record_brk_delivery(addr: usize, sp: usize) {
    let task = current_task();
    let start = record_start(task, sp);
    let mut free = None;
    for i in 0..RECORDS {
        let r = record_at(start, i);
        let owner = r.task.load(Ordering::Relaxed);
        if owner == task && r.sp.load(Ordering::Relaxed) == sp && r.addr.load(Ordering::Relaxed) == addr {
            return;
        }
        if owner == 0 && free.is_none() {
            free = Some(start.wrapping_add(i) % RECORDS);
        }
    }
    let Some(first) = free else {
        RECORDS_LOST.fetch_add(1, Ordering::Relaxed);
        return;
    };
    for i in 0..RECORDS {
        let r = record_at(first, i);
        if r.task.compare_exchange(0, task, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            // Only this task reads a record it owns.
            r.sp.store(sp, Ordering::Relaxed);
            r.addr.store(addr, Ordering::Relaxed);
            RECORDS_LIVE.fetch_add(1, Ordering::Release);
            return;
        }
    }
    RECORDS_LOST.fetch_add(1, Ordering::Relaxed);
}

/// Take the current task's record for (`addr`, `sp`): was this call
/// delivered by the BRK?
#[inline(always)]
fn take_brk_delivery(addr: usize, sp: usize) -> bool {
    // Relaxed: only this task's own records matter here, and it made them
    // earlier in its own program order (a migration is a full barrier).
    if RECORDS_LIVE.load(Ordering::Relaxed) == 0 {
        return false;
    }
    let task = current_task();
    let start = record_start(task, sp);
    for i in 0..RECORDS {
        let r = record_at(start, i);
        if r.task.load(Ordering::Relaxed) == task && r.sp.load(Ordering::Relaxed) == sp && r.addr.load(Ordering::Relaxed) == addr {
            r.task.store(0, Ordering::Release);
            RECORDS_LIVE.fetch_sub(1, Ordering::Release);
            return true;
        }
    }
    false
}

/// Drop every record for `addr`. Called once neither the BRK path nor the
/// call site can create or take one for it (recording off, ops gone);
/// returns how many there were (calls that never reached the call site).
pub(crate) fn forget_records(addr: usize) -> usize {
    let mut n: usize = 0;
    for r in RECORD_TABLE.iter() {
        let owner = r.task.load(Ordering::Acquire);
        if owner != 0
            && r.addr.load(Ordering::Relaxed) == addr
            && r.task.compare_exchange(owner, 0, Ordering::Release, Ordering::Relaxed).is_ok()
        {
            RECORDS_LIVE.fetch_sub(1, Ordering::Release);
            n = n.wrapping_add(1);
        }
    }
    n
}

/// The ftrace callback's hit (src/glue.c `optprobe_ftrace_func`), for a
/// probe at a function's `sym+0` whose ftrace call site just ran: as the BRK
/// path would run it at `sym+0`, with `regs->pc = sym+0` for pre-handlers
/// and `sym+4` for post-handlers (the landing pad is a hint, so stepping it
/// is nothing). `current_kprobe` is set for the duration, and a hit while
/// another kprobe is active on this CPU is counted missed, as the BRK path
/// does. Returns [`ENTRY_RESUME`], [`ENTRY_RETURN`] or [`ENTRY_REDIRECT`].
///
/// # Safety
///
/// Called only by that callback, with `probe` from the ops' `private` (a
/// live Probe: the ops is unregistered, which waits for every callback,
/// before the probe can be freed), preemption disabled (ftrace's recursion
/// guard), and `regs` on the stack.
#[no_mangle]
pub(crate) unsafe extern "C" fn optprobe_entry_hit(probe: *mut c_void, regs: *mut bindings::pt_regs) -> c_int {
    let probe = probe.cast::<Probe>();
    // SAFETY: see the function's contract.
    unsafe {
        let s = (*probe).syms;
        let addr = (*probe).addr;
        let sp = (*regs).__bindgen_anon_1.__bindgen_anon_1.sp as usize;
        (*regs).__bindgen_anon_1.__bindgen_anon_1.pc = addr as u64;
        // Delivered by the BRK at sym+0 already: once only.
        // Relaxed: entry::enter/leave order the flag against the text and
        // the records with grace periods, which imply full barriers.
        if take_brk_delivery(addr, sp) || !(*probe).entry_deliver.load(Ordering::Relaxed) || s.all_disarmed_now() {
            return 0;
        }
        let own = ptr::addr_of_mut!((*probe).kp);
        let kp = hashed_at(probe, s);
        if kp.is_null() {
            return 0;
        }
        let disabled = bindings::KPROBE_FLAG_DISABLED | bindings::KPROBE_FLAG_GONE;
        // Our own kprobe disabled (not yet enabled by entry::enter, or
        // leaving): its BRK path records nothing, so neither path delivers.
        if ptr::read_volatile(ptr::addr_of!((*own).flags)) & disabled != 0
            || ptr::read_volatile(ptr::addr_of!((*kp).flags)) & disabled != 0
        {
            return 0;
        }
        let cpu_offset = this_cpu_offset(s);
        let current = (s.current_kprobe as usize).wrapping_add(cpu_offset) as *mut *mut bindings::kprobe;
        if !(*current).is_null() {
            // A hit inside another kprobe's handler. Where sym+0 holds a
            // BRK, the core has counted it missed already.
            if u32::from_le(ptr::read_volatile(addr as *const u32)) != crate::insn::BRK_KPROBES {
                inc_nmissed(kp, own);
            }
            return 0;
        }
        *current = kp;
        let kcb = ctlblk_beside(current, s);
        (*kcb).kprobe_status = KPROBE_HIT_ACTIVE;
        let ret = if kp == own {
            run_own(probe, regs, cpu_offset);
            0
        } else if let Some(pre) = ptr::read_volatile(ptr::addr_of!((*kp).pre_handler)) {
            pre(kp, regs)
        } else {
            0
        };
        // Resuming anywhere up to the call site is resuming the function:
        // no redirect (and no loop through the call site again).
        let pc = (*regs).__bindgen_anon_1.__bindgen_anon_1.pc;
        let into_function = pc >= addr as u64 && pc <= addr.wrapping_add(crate::entry::CALL_SITE) as u64;
        let redirect = if ret == 0 || into_function {
            ENTRY_RESUME
        } else if pc == (*regs).__bindgen_anon_1.__bindgen_anon_1.regs[30] {
            ENTRY_RETURN
        } else {
            ENTRY_REDIRECT
        };
        if ret == 0 {
            // The post-handlers, as after stepping the landing pad.
            (*regs).__bindgen_anon_1.__bindgen_anon_1.pc = addr.wrapping_add(4) as u64;
            (*kcb).kprobe_status = KPROBE_HIT_SSDONE;
            if kp == own {
                if let Some(post) = ptr::read_volatile(ptr::addr_of!((*probe).post_handler)) {
                    post((*probe).data, regs);
                }
            } else if let Some(post) = ptr::read_volatile(ptr::addr_of!((*kp).post_handler)) {
                // Our own post-handler in the aggregate records nothing
                // here: `regs` is no exception frame.
                post(kp, regs, 0);
            }
        }
        *current = ptr::null_mut();
        redirect
    }
}

/// What the ftrace callback does after [`optprobe_entry_hit`]: resume the
/// function; return from it at once to `x30` (`bpf_override_return`,
/// `fail_function`: through a `ret` of ours, so that what other ftrace
/// users hooked in lr still runs); or resume at `regs->pc`.
const ENTRY_RESUME: c_int = 0;
const ENTRY_RETURN: c_int = 1;
const ENTRY_REDIRECT: c_int = 2;

/// The ftrace callback could not take its recursion guard (a probed
/// function called from ftrace's own context): the call is not delivered
/// there, and a record the BRK made for it must not outlive it.
///
/// # Safety
///
/// `probe` is the ops' live Probe, as for [`optprobe_entry_hit`].
#[no_mangle]
pub(crate) unsafe extern "C" fn optprobe_entry_drop_record(probe: *mut c_void, sp: c_ulong) {
    // SAFETY: per the function's contract.
    // CAST: sp is a kernel stack address.
    unsafe { take_brk_delivery((*probe.cast::<Probe>()).addr, sp as usize) };
}
