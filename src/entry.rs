// SPDX-License-Identifier: GPL-2.0
//! Function-entry probes through ftrace, on kernels that enforce BTI.
//!
//! There `sym+0` is `bti c`, a landing pad that can never become a `b`. But
//! a traceable function continues `mov x9, x30; bl ftrace_caller` (at
//! `sym+8`, a NOP until traced), so an `ftrace_ops` filtered to that call
//! site delivers the hit instead: src/glue.c builds a `pt_regs` from
//! `ftrace_regs`, src/hit.rs (`optprobe_entry_hit`) runs the handlers as the
//! BRK path would at `sym+0`. One ops per probe, never a direct call.
//!
//! The core's view: the kprobe is enabled, as if armed, and `sym+0` holds
//! the landing pad. The core's own writes there are the original
//! instruction (disarm: what is there already) and its BRK (arm all after
//! debugfs `kprobes/enabled` 0 then 1), which the records below make exact.
//!
//! # Exactness: the window between `sym+0` and the call site
//!
//! A task can be preempted after `sym+0` and before `sym+8`. A call that
//! took the BRK there and then reaches a delivering call site would be
//! counted twice; a call that passed the landing pad and then reaches a call
//! site that no longer delivers would be missed. The protocol:
//!
//! - While a probe's ops is attached, its kprobe's post-handler records
//!   every call the BRK delivered (task, sp, address; src/hit.rs), and the
//!   call site takes the record instead of delivering. Post-handlers run
//!   exactly for calls the BRK path resumes after `sym+0`, which resume at
//!   the call site itself (`mov x9, x30` done: hit.rs `resume_at_call_site`)
//!   or at `sym+4`, so every record is taken.
//! - BRK to ftrace ([`enter`]): attach the ops, not delivering (the call
//!   site only takes records, so none can go stale); recording on; if
//!   `sym+0` is a BRK, wait for RCU-tasks (a task preempted in the window
//!   after an unrecorded BRK delivery has left it: the window holds no
//!   voluntary switch); deliver on; then, under kprobe_mutex and
//!   text_mutex, BRK back to the landing pad. Every call is now delivered
//!   once: by the BRK (recorded, skipped at the call site) or at the call
//!   site.
//! - Once the ops is attached, recording and delivering, `sym+0` may hold
//!   either the landing pad or the BRK: each call is delivered once either
//!   way, so the core's own BRK writes there (arm all) need no grace
//!   period, and neither does [`repair`].
//! - ftrace to BRK ([`leave`]): under both locks, the landing pad to BRK
//!   (when other kprobes stay there); wait for RCU-tasks (every call that
//!   passed the landing pad has reached the call site and was delivered);
//!   deliver off; recording off; detach the ops (ftrace waits for its
//!   callbacks); drop the probe's records (those of calls that reached the
//!   call site after the ops was gone).
//!
//! A probe alone at its address never gets a BRK: attach delivers through
//! ftrace only, and leaving sets the core's DISABLED flag, which the call
//! site checks, so nothing straddles.

use crate::bindings;
use crate::probe::{Probe, State};
use crate::{hit, insn, sys};
use core::ffi::{c_void, CStr};
use core::ptr;
use core::sync::atomic::Ordering;
use kernel::prelude::*;

/// The ftrace call site's offset from the probed `bti c`.
pub(crate) const CALL_SITE: usize = 8;
/// `mov x9, x30`: what ftrace puts just before its call site.
pub(crate) const MOV_X9_X30: u32 = 0xaa1e_03e9;

/// Why an entry probe stays a BRK kprobe.
pub(crate) const NO_FTRACE_SITE: &CStr = c"BTI landing pad (notrace: no ftrace call site)";
const FTRACE_BUSY: &CStr = c"ftrace refused the ops (ftrace_enabled=0?): BRK";
const FTRACE_FAILED: &CStr = c"ftrace ops registration failed: BRK";
pub(crate) const SHARED: &CStr = c"address already delivered through ftrace by another optprobe";
const NOT_OURS: &CStr = c"text at the probe is not its instruction";
const ARMED_MEANWHILE: &CStr = c"another kprobe armed the entry while it moved to ftrace: BRK";

/// Does `probe` deliver its address through ftrace now (not one whose
/// detach ftrace refused, left not delivering)?
pub(crate) fn delivers(probe: &Probe) -> bool {
    probe.state == State::Ftrace && probe.entry_deliver.load(Ordering::Relaxed)
}

/// Could `probe` (registered) be delivered through ftrace? Its original
/// instruction is a function's entry landing pad, enforced (otherwise it is
/// a hint the branch path runs out of line), and its kprobe has the
/// post-handler the protocol needs (`Probe::new` gives it one at entry).
pub(crate) fn candidate(probe: &Probe) -> bool {
    !probe.gone && probe.kp.post_handler.is_some() && is_entry_site(probe.addr, probe.kp.opcode)
}

/// Is `addr`, whose original instruction is `opcode`, a function's entry
/// landing pad on a kernel that enforces BTI?
pub(crate) fn is_entry_site(addr: usize, opcode: u32) -> bool {
    sys::syms().bti_enforced
        && insn::is_entry_landing_pad(opcode)
        && sys::symbol_bounds(addr).is_some_and(|(start, size)| start == addr && size > CALL_SITE)
        // ftrace_init_nop() writes `mov x9, x30` before every call site at
        // boot (and module load): notrace functions have none. The ops
        // registration refuses a non-site anyway.
        // SAFETY: inside the function's kallsyms range (checked above).
        && unsafe { sys::read_insn(addr + 4) } == MOV_X9_X30
}

/// Deliver the candidates in `batch` (registered, `State::Kprobe`, no ops)
/// through ftrace; `others`: the registry's other probes. Each one that
/// cannot be keeps its reason and stays as it was: flagged disabled when it
/// was never armed (the caller arms it with BRK), or a BRK kprobe. Returns
/// how many are delivered through ftrace afterwards.
pub(crate) fn enter(batch: &mut [&mut Probe], others: &[KBox<Probe>]) -> usize {
    let wanted = |p: &Probe| p.state == State::Kprobe && p.ftrace.is_null() && candidate(p);
    let Ok(mut picked) = KVec::<usize>::with_capacity(batch.len(), GFP_KERNEL) else {
        return 0;
    };
    // 0. Which: one delivering probe per address.
    for i in 0..batch.len() {
        if !wanted(batch[i]) {
            continue;
        }
        let addr = batch[i].addr;
        let taken = others.iter().any(|q| q.addr == addr && !q.ftrace.is_null())
            || picked.as_slice().iter().any(|&j| batch[j].addr == addr);
        if taken {
            batch[i].set_reason(SHARED);
            continue;
        }
        // Capacity reserved above: cannot fail.
        let _ = picked.push(i, GFP_KERNEL);
    }
    // 1. Attach the ops, not delivering yet: from here on the call site
    //    takes every record the BRK path makes, so none goes stale.
    for &i in picked.as_slice() {
        let p = &mut *batch[i];
        let mut handle: *mut c_void = ptr::null_mut();
        let probe_ptr: *mut Probe = &mut *p;
        // SAFETY: the probe is boxed (stable address) and outlives the ops:
        // `leave` detaches it, which waits for every callback, before the
        // registry can free the probe.
        let ret = unsafe { bindings::optprobe_ftrace_attach(probe_ptr.cast(), (p.addr + CALL_SITE) as _, &mut handle) };
        if ret < 0 {
            p.set_reason(match -ret {
                22 => NO_FTRACE_SITE,
                16 => FTRACE_BUSY,
                _ => FTRACE_FAILED,
            });
            if -ret != 22 {
                pr_info!("probe at {:#x}: ftrace ops refused ({}); BRK\n", p.addr, ret);
            }
            continue;
        }
        p.ftrace = handle;
    }
    // 2. Record BRK deliveries.
    let mut need_gp = false;
    for &i in picked.as_slice() {
        let p = &mut *batch[i];
        if p.ftrace.is_null() {
            continue;
        }
        p.entry_recording.store(true, Ordering::Release);
        // Another kprobe at the address may have had a BRK there, now or a
        // moment ago (kprobes/enabled toggles): wait for the grace period
        // whenever there is one. Alone, ours was never armed.
        let _core = sys::KprobeLock::new();
        // SAFETY: kprobe_mutex held.
        need_gp |= unsafe { p.hashed() } != ptr::addr_of_mut!(p.kp)
            // Flagged enabled already (registered while all kprobes were
            // disarmed): arm-all may have put a BRK here.
            || p.kp.flags & bindings::KPROBE_FLAG_DISABLED == 0;
    }
    // 3. A call the BRK delivered before recording began may still be in
    //    the window (preempted before the call site): RCU-tasks returns
    //    once every task has switched voluntarily, i.e. has left it.
    if need_gp {
        // SAFETY: process context.
        unsafe { bindings::synchronize_rcu_tasks() };
    }
    // 4. Deliver: every call the BRK delivers is recorded now.
    for &i in picked.as_slice() {
        if !batch[i].ftrace.is_null() {
            batch[i].entry_deliver.store(true, Ordering::Release);
        }
    }
    let mut delivered = 0;
    let mut undo = false;
    {
        let core = sys::KprobeLock::new();
        let lock = sys::TextLock::new();
        for p in batch.iter_mut().filter(|p| !p.ftrace.is_null() && p.state == State::Kprobe) {
            // SAFETY: kprobe_mutex held.
            let joined = unsafe { p.joins_armed_aggregate() };
            // SAFETY: a registered kprobe address.
            let live = unsafe { sys::read_insn(p.addr) };
            if live != p.kp.opcode && live != insn::BRK_KPROBES {
                p.set_reason(NOT_OURS);
                p.entry_deliver.store(false, Ordering::Release);
                undo = true;
                continue;
            }
            // Still flagged disabled over a BRK: another kprobe here was
            // armed since the grace period, and its BRK deliveries were not
            // recorded (the core skips a disabled kprobe's post-handler).
            // Enabling now could deliver a call twice: the BRK path keeps it.
            if p.kp.flags & bindings::KPROBE_FLAG_DISABLED != 0 && live == insn::BRK_KPROBES {
                p.set_reason(ARMED_MEANWHILE);
                p.entry_deliver.store(false, Ordering::Release);
                undo = true;
                continue;
            }
            // Enabled first: from here the BRK path records (our
            // post-handler runs only for an enabled kprobe) and the call
            // site delivers, so the write below drops nothing.
            // SAFETY: both locks held; the core's view is "armed" and the
            // text is its BRK or the landing pad, each delivering once.
            unsafe {
                p.set_core_disabled(false);
                p.set_core_optimized(true);
            }
            if live == insn::BRK_KPROBES && joined && !core.all_disarmed() {
                // A failed write leaves the BRK, which delivers (recorded,
                // skipped at the call site): still exact, only slower.
                if write_word(&lock, p.addr, p.kp.opcode).is_err() {
                    pr_info!("probe at {:#x}: BRK not replaced; delivered through ftrace anyway\n", p.addr);
                }
            }
            // INVARIANT: the ops is attached and delivers.
            p.state = State::Ftrace;
            p.set_reason(c"-");
            delivered += 1;
        }
        drop(lock);
        drop(core);
    }
    if undo {
        for p in batch.iter_mut().filter(|p| !p.ftrace.is_null() && p.state == State::Kprobe) {
            detach_ops(p);
        }
    }
    delivered
}

/// Stop delivering the probes `select` picks in `batch` through ftrace and
/// detach their ops. `keep_text`: write nothing (their text is about to be
/// freed). A probe that shares its address with other enabled kprobes gets
/// the BRK back first; one alone is flagged disabled in the core. A probe
/// whose ops ftrace refused to detach keeps `State::Ftrace` (the caller
/// must keep the probe). Returns how many that are.
pub(crate) fn leave<P: core::ops::DerefMut<Target = Probe>>(
    batch: &mut [P],
    select: impl Fn(&Probe) -> bool,
    keep_text: bool,
) -> usize {
    let picked = |p: &Probe| select(p) && !p.ftrace.is_null();
    if !batch.iter().any(|p| picked(p)) {
        return 0;
    }
    let mut wrote = false;
    {
        let core = sys::KprobeLock::new();
        let lock = sys::TextLock::new();
        for p in batch.iter_mut().filter(|p| picked(p)) {
            // SAFETY: kprobe_mutex held.
            let at = unsafe { p.hashed() };
            let own = ptr::addr_of_mut!(p.kp);
            let mut others_on = false;
            if !at.is_null() && at != own {
                // SAFETY: the live aggregate, under kprobe_mutex.
                unsafe {
                    hit::for_each_in_aggregate(at, |k| {
                        others_on |= k != own
                            && (*k).flags & (bindings::KPROBE_FLAG_DISABLED | bindings::KPROBE_FLAG_GONE) == 0
                    })
                };
            }
            if !keep_text && !p.gone && others_on && !core.all_disarmed() {
                // SAFETY: a registered kprobe address.
                if unsafe { sys::read_insn(p.addr) } == p.kp.opcode {
                    // A failed write leaves the landing pad: the others'
                    // hits stop until they are re-armed; say so.
                    if write_word(&lock, p.addr, insn::BRK_KPROBES).is_err() {
                        pr_err!("probe at {:#x}: BRK not written back for the kprobes sharing it\n", p.addr);
                    }
                }
                // Even when the BRK was there already (the core's arm-all,
                // a test flip): the landing pad may have been there while
                // a task entered the window.
                wrote = true;
            } else if !others_on && !p.gone {
                // Alone. The core's arm-all may have put its BRK here: the
                // landing pad goes back first (exact: recording is on), or
                // a disabled kprobe would leave a BRK nobody handles.
                // SAFETY: a registered kprobe address.
                let mut pad = unsafe { sys::read_insn(p.addr) } != insn::BRK_KPROBES;
                if !pad && !keep_text {
                    pad = write_word(&lock, p.addr, p.kp.opcode).is_ok();
                }
                if pad || keep_text {
                    // The call site stops delivering now; nothing is armed,
                    // so the core's unregister writes nothing.
                    // SAFETY: both locks held; the text is the landing pad
                    // (or about to be freed).
                    unsafe { p.set_core_disabled(true) };
                } else {
                    // The BRK stays, with our kprobe enabled behind it: a
                    // BRK kprobe from now on, disarmed by the core later.
                    pr_err!("probe at {:#x}: landing pad not written back; left a BRK kprobe\n", p.addr);
                }
            }
            if !p.gone {
                // SAFETY: kprobe_mutex held.
                unsafe { p.set_core_optimized(false) };
            }
        }
        drop(lock);
        drop(core);
    }
    if wrote {
        // Every call that passed the landing pad before the BRK went back
        // reaches the call site (delivered there) before this returns.
        // SAFETY: process context.
        unsafe { bindings::synchronize_rcu_tasks() };
    }
    let mut stuck = 0;
    for p in batch.iter_mut().filter(|p| picked(p)) {
        p.entry_deliver.store(false, Ordering::Release);
        p.entry_recording.store(false, Ordering::Release);
        if !detach_ops(&mut *p) {
            stuck += 1;
        } else if !p.gone {
            p.set_reason(c"unoptimized");
        }
    }
    stuck
}

/// Detach `p`'s ops (ftrace waits for its callbacks) and drop its records.
/// Returns false, leaving the ops registered and the state as it was, when
/// ftrace refuses.
fn detach_ops(p: &mut Probe) -> bool {
    p.entry_deliver.store(false, Ordering::Release);
    p.entry_recording.store(false, Ordering::Release);
    // SAFETY: a handle from optprobe_ftrace_attach, detached once.
    let ret = unsafe { bindings::optprobe_ftrace_detach(p.ftrace) };
    if ret < 0 {
        pr_err!("probe at {:#x}: ftrace refused to detach its ops ({}); probe kept\n", p.addr, ret);
        return false;
    }
    p.ftrace = ptr::null_mut();
    // The ops' callbacks are over; BRK handlers that read the recording
    // flag before it went off have finished too (interrupts masked).
    // SAFETY: process context.
    unsafe { bindings::synchronize_rcu() };
    hit::forget_records(p.addr);
    // INVARIANT: no ops: a BRK kprobe (or disabled, or leaving).
    p.state = State::Kprobe;
    true
}

/// Put the landing pad back at an entry probe whose `sym+0` the core armed
/// with its BRK (debugfs `kprobes/enabled` 0 then 1). Exact without a grace
/// period: recording is on, so a call the BRK delivered is skipped at the
/// call site. Returns whether the landing pad is there afterwards.
pub(crate) fn repair(p: &mut Probe) -> bool {
    if p.state != State::Ftrace || p.gone {
        return true;
    }
    let core = sys::KprobeLock::new();
    let lock = sys::TextLock::new();
    // SAFETY: a registered kprobe address.
    let live = unsafe { sys::read_insn(p.addr) };
    if live != insn::BRK_KPROBES || core.all_disarmed() {
        return live == p.kp.opcode;
    }
    write_word(&lock, p.addr, p.kp.opcode).is_ok()
}

/// Write one instruction word at a probe's address, in one `stop_machine`.
fn write_word(lock: &sys::TextLock, addr: usize, word: u32) -> Result {
    lock.patch_batch(&mut [addr as *mut c_void], &mut [word])
}

/// Test builds: write the BRK (`brk`) or the landing pad at `p`'s `sym+0`
/// while it is delivered through ftrace, as the core's arm-all does and
/// [`repair`] undoes: the cheap flip between BRK and ftrace delivery that
/// ktest `entry_tokens` makes a thousand times.
#[cfg(optprobe_test_hooks)]
pub(crate) fn flip_text_for_test(p: &Probe, brk: bool) -> Result {
    if p.state != State::Ftrace || p.gone {
        return Err(kernel::error::code::EINVAL);
    }
    let core = sys::KprobeLock::new();
    let lock = sys::TextLock::new();
    // SAFETY: a registered kprobe address.
    let live = unsafe { sys::read_insn(p.addr) };
    if core.all_disarmed() || (live != insn::BRK_KPROBES && live != p.kp.opcode) {
        return Err(kernel::error::code::EBUSY);
    }
    write_word(&lock, p.addr, if brk { insn::BRK_KPROBES } else { p.kp.opcode })
}
