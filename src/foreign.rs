// SPDX-License-Identifier: GPL-2.0
//! Others' kprobes, optimized in place: kprobe_events, `perf probe`,
//! bpftrace and BPF kprobe programs (all `kprobe_dispatcher`) and kretprobes
//! (`pre_handler_kretprobe`), with nothing to change on their side.
//!
//! How: at an eligible address optprobe registers a *carrier*, a kprobe of
//! its own with no handler, which joins the core's aggregate there; the
//! carrier replaces the aggregate's BRK with its branch (`patch::arm`), and
//! its trampoline runs the aggregate's pre-handler, so every kprobe at the
//! address runs as on the BRK path. Why a carrier rather than patching the
//! foreign BRK directly (see README, "Others' kprobes"): while the carrier
//! is enabled the core never writes the address on its own (disabling or
//! unregistering a foreign kprobe leaves an aggregate with an enabled
//! member), and the foreign kprobes are reached only through the
//! aggregate's RCU list, inside the hit path's preemption-disabled region,
//! which their owners' `synchronize_rcu()` on unregister waits for. A
//! patched foreign BRK would have neither: the core's disarm would write
//! over our branch, and a task preempted in a trampoline could reach a
//! kprobe its owner had freed.
//!
//! The poller (a delayed work item, every [`POLL_MS`] while there is work)
//! and every request (`auto`, `o`, `-o`) run [`reconcile`]: scan the core's
//! kprobe table under `kprobe_mutex`, judge every address that has foreign
//! kprobes, then remove the carriers no longer wanted, retry the ones that
//! lost their branch, and add the missing ones.
//!
//! Lock order: registry mutex, then `kprobe_mutex`, then `text_mutex`.

use crate::bindings;
use crate::entry;
use crate::hit;
use crate::insn;
use crate::patch;
use crate::probe::{Probe, State};
use crate::registry::{self, Registry};
use crate::sys;
use crate::test_hooks;
use core::ffi::{c_int, CStr};
use kernel::error::code;
use kernel::prelude::*;

/// Most `o`/`-o` requests held at once.
pub(crate) const MAX_REQUESTS: usize = 1024;
/// How often the poller looks at the kprobe table while it has work (ms).
const POLL_MS: u32 = 100;
/// Re-optimization attempts for a carrier that lost its branch.
const MAX_ATTEMPTS: u8 = 3;

const GONE: &CStr = c"gone: its text was freed";
const DISABLED: &CStr = c"disabled";
const NOT_REQUESTED: &CStr = c"not requested (auto=0; write 1 to auto, or 'o ADDR' to control)";
const EXCLUDED: &CStr = c"excluded by '-o'";
const DISARMED: &CStr = c"kprobes disarmed (debugfs kprobes/enabled=0)";
const POST_HANDLER: &CStr = c"post-handler";
const NOT_ALLOWED: &CStr = c"handler not allowed (only kprobe_dispatcher, pre_handler_kretprobe)";
const REFUSED_BY_KPROBES: &CStr = c"carrier refused by kprobes (see the kernel log)";
const PENDING: &CStr = c"optimizing";

/// An explicit request for one address.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Request {
    /// `o`: optimize whatever `auto` says.
    On,
    /// `-o` while `auto` is 1: leave it alone.
    Off,
}

/// Most foreign kprobes remembered per address (a refusal ends when one
/// of them leaves).
const MEMBERS: usize = 8;

/// An address refused, and the foreign kprobes there at the time: any of
/// them may be the one that moved pc, so the refusal lasts until one leaves.
struct Refusal {
    addr: usize,
    why: &'static CStr,
    members: [usize; MEMBERS],
    /// Polls until it expires (a refusal by kprobes may be transient: a
    /// module going away, memory); `u32::MAX` for a pc refusal.
    polls_left: u32,
}

/// Polls a refusal by kprobes lasts (5 s).
const REFUSAL_POLLS: u32 = 50;

/// What the poller is asked to do; kept in the registry, under its mutex.
pub(crate) struct Settings {
    auto: bool,
    requests: KVec<(usize, Request)>,
    /// Addresses refused while the foreign kprobes that were there stay: a
    /// handler changed pc there, or kprobes refused a carrier.
    refused: KVec<Refusal>,
    /// Module exit: no more carriers.
    stopped: bool,
}

impl Settings {
    pub(crate) fn new() -> Self {
        Self { auto: false, requests: KVec::new(), refused: KVec::new(), stopped: false }
    }

    /// Is `addr` to be optimized; if not, why.
    fn wanted(&self, addr: usize) -> Result<(), &'static CStr> {
        match self.requests.as_slice().iter().find(|r| r.0 == addr) {
            Some((_, Request::On)) => Ok(()),
            Some((_, Request::Off)) => Err(EXCLUDED),
            None if self.auto => Ok(()),
            None => Err(NOT_REQUESTED),
        }
    }

    fn refusal(&self, addr: usize) -> Option<&'static CStr> {
        self.refused.as_slice().iter().find(|r| r.addr == addr).map(|r| r.why)
    }

    fn refuse(&mut self, site: &Site, why: &'static CStr) {
        if self.refusal(site.addr).is_none() {
            // Out of memory: forgotten, so retried (and refused) again.
            let polls_left = if core::ptr::eq(why, patch::PC_REFUSED) { u32::MAX } else { REFUSAL_POLLS };
            let _ = self.refused.push(Refusal { addr: site.addr, why, members: site.members, polls_left }, GFP_KERNEL);
        }
    }

    /// Forget the refusals at addresses `inside` a module that is coming or
    /// going: its text is new, or about to be freed. A carrier refused while
    /// the module was going (kprobes refuses a GOING module) must not stay
    /// refused when the module comes back at the same address: kprobe_events
    /// re-registers the same kprobe there, so the refusal's members still
    /// match.
    pub(crate) fn forget_refusals_where(&mut self, inside: impl Fn(usize) -> bool) {
        let mut i = 0;
        while i < self.refused.len() {
            if inside(self.refused.as_slice()[i].addr) {
                crate::kvec::swap_remove(&mut self.refused, i);
            } else {
                i += 1;
            }
        }
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Does the poller have anything to watch?
    fn active(&self) -> bool {
        !self.stopped && (self.auto || self.requests.as_slice().iter().any(|r| r.1 == Request::On))
    }
}

/// Who owns the foreign kprobes at an address (the listing's name column).
#[derive(Clone, Copy)]
pub(crate) enum Owner {
    /// One foreign kprobe: its pre-handler's address (`@kprobe_dispatcher`).
    Handler(usize),
    /// This many foreign kprobes (`@aggr(N)`).
    Aggregate(u32),
}

/// One address with foreign kprobes, judged.
pub(crate) struct Site {
    pub(crate) addr: usize,
    pub(crate) owner: Owner,
    /// `optimized`, `kprobe`, `disabled` or `gone`.
    pub(crate) state: &'static str,
    pub(crate) reason: &'static CStr,
    /// Hits counted by optprobe's kprobe at the address (carrier or own).
    pub(crate) hits: u64,
    /// The kprobe core's missed counts of the foreign kprobes.
    pub(crate) missed: u64,
    /// Wanted and eligible: a carrier should hold the address.
    carry: bool,
    /// The foreign kprobes here (the first [`MEMBERS`]; 0 pads), and
    /// whether that is all of them.
    members: [usize; MEMBERS],
    all_members: bool,
}

impl Site {
    /// Is every kprobe of `refusal` still here (as far as we can tell)?
    fn keeps(&self, refusal: &Refusal) -> bool {
        !self.all_members || refusal.members.iter().all(|m| *m == 0 || self.members.contains(m))
    }
}

/// Is `pre` a pre-handler the optimized path runs exactly as the BRK path?
/// `kprobe_dispatcher` (trace events, perf, BPF through perf) and
/// `pre_handler_kretprobe` read `pt_regs` and change at most x30; a pc
/// change is caught anyway (src/hit.rs). Others are unknown code.
fn allowed(s: &sys::Symbols, pre: usize) -> bool {
    // The hit path's list, plus (test builds) a test handler by name, which
    // the hit path then knows by address.
    hit::runnable(s, pre) || test_hooks::allowed_handler(pre)
}

fn pre_handler_addr(k: *mut bindings::kprobe) -> usize {
    // SAFETY: the caller passes a live kprobe (under kprobe_mutex).
    // CAST: a function address, compared only.
    unsafe { (*k).pre_handler }.map_or(0, |f| f as usize)
}

/// Judge the address of hashed kprobe `ap`; `None` when no foreign kprobe
/// is there.
///
/// # Safety
///
/// `ap` is hashed in the core's table and `core` holds kprobe_mutex.
unsafe fn judge(reg: &Registry, core: &sys::KprobeLock, ap: *mut bindings::kprobe) -> Option<Site> {
    let s = sys::syms();
    // CAST: a function address, compared only.
    let ours = hit::optprobe_kp_pre_handler as *const () as usize;
    // SAFETY: per the function's contract.
    let (addr, opcode, ap_flags) = unsafe { ((*ap).addr as usize, (*ap).opcode, (*ap).flags) };
    let off = bindings::KPROBE_FLAG_DISABLED | bindings::KPROBE_FLAG_GONE;
    let (mut foreign, mut enabled, mut first, mut missed) = (0u32, 0u32, 0usize, 0u64);
    let (mut post, mut all_allowed) = (false, true);
    let mut members = [0usize; MEMBERS];
    let mut visit = |k: *mut bindings::kprobe| {
        let pre = pre_handler_addr(k);
        // SAFETY: a live kprobe of the address, under kprobe_mutex.
        let (flags, has_post, nmissed) = unsafe { ((*k).flags, (*k).post_handler.is_some(), (*k).nmissed) };
        let on = flags & off == 0;
        if pre == ours {
            // SAFETY: as above.
            post |= unsafe { hit::runs_post_handler(k) };
            return;
        }
        if let Some(m) = members.get_mut(foreign as usize) {
            *m = k as usize;
        }
        foreign += 1;
        if foreign == 1 {
            first = pre;
        }
        missed = missed.wrapping_add(nmissed);
        if on {
            enabled += 1;
            post |= has_post;
            all_allowed &= allowed(s, pre);
        }
    };
    if pre_handler_addr(ap) == s.aggr_pre_handler {
        // SAFETY: an aggregate, under kprobe_mutex.
        unsafe { hit::for_each_in_aggregate(ap, &mut visit) };
    } else {
        visit(ap);
    }
    if foreign == 0 {
        return None;
    }
    let probes = reg.probes();
    let at = |p: &&KBox<Probe>| p.addr == addr;
    let live = probes
        .iter()
        .filter(at)
        .find(|p| !p.gone && (p.state == State::Ftrace || (p.state == State::Optimized && p.branch_is_live())));
    // A function entry on a BTI kernel goes through ftrace, which runs every
    // handler as the BRK path does (post-handlers and pc changes included).
    let entry_site = entry::is_entry_site(addr, opcode);
    let carrier = probes.iter().filter(at).find(|p| p.carrier);
    let own = probes.iter().filter(at).find(|p| !p.carrier);
    let counted = live.or(carrier).or(own);
    let why = if ap_flags & bindings::KPROBE_FLAG_GONE != 0 || probes.iter().filter(at).any(|p| p.gone) {
        Some(GONE)
    } else if enabled == 0 {
        Some(DISABLED)
    } else if let Err(why) = reg.foreign.wanted(addr) {
        Some(why)
    } else if core.all_disarmed() {
        Some(DISARMED)
    } else if let Some(why) = reg.foreign.refusal(addr) {
        Some(why)
    } else if entry_site {
        None
    } else if post {
        Some(POST_HANDLER)
    } else if !all_allowed {
        Some(NOT_ALLOWED)
    } else if carrier.is_some_and(|c| c.pc_refused) {
        Some(patch::PC_REFUSED)
    } else if let insn::Class::Rejected(r) = insn::classify_site(opcode, s.bti_enforced) {
        Some(r.as_cstr())
    } else {
        None
    };
    let state = match why {
        _ if live.is_some_and(|p| p.state == State::Ftrace) => "ftrace",
        _ if live.is_some() => "optimized",
        Some(w) if core::ptr::eq(w, GONE) => "gone",
        Some(w) if core::ptr::eq(w, DISABLED) => "disabled",
        _ => "kprobe",
    };
    let reason = match (live, why) {
        (Some(_), _) => c"-",
        (None, Some(why)) => why,
        // Ours is there but its branch is not (the core replaced it, or
        // its optimization failed): say why, or that it is being retried.
        (None, None) => own.or(carrier).map_or(PENDING, |p| if p.state == State::Optimized { PENDING } else { p.reason }),
    };
    Some(Site {
        addr,
        owner: if foreign == 1 { Owner::Handler(first) } else { Owner::Aggregate(foreign) },
        state,
        reason,
        hits: counted.map_or(0, |p| p.hits.sum()),
        missed,
        carry: why.is_none(),
        members,
        all_members: foreign as usize <= MEMBERS,
    })
}

/// Every address with foreign kprobes, judged, in the core's table order.
pub(crate) fn scan(reg: &Registry) -> Result<KVec<Site>> {
    let core = sys::KprobeLock::new();
    let mut hashed: KVec<*mut bindings::kprobe> = KVec::new();
    let mut short = false;
    sys::for_each_hashed_kprobe(&core, |kp| {
        short = hashed.push(kp, GFP_KERNEL).is_err();
        !short
    });
    if short {
        return Err(code::ENOMEM);
    }
    let mut sites = KVec::new();
    for &ap in hashed.as_slice() {
        // SAFETY: hashed just now; kprobe_mutex still held.
        if let Some(site) = unsafe { judge(reg, &core, ap) } {
            sites.push(site, GFP_KERNEL)?;
        }
    }
    Ok(sites)
}

/// Bring the carriers in line with the kprobe table and the settings.
fn reconcile(reg: &mut Registry) -> Result {
    let sites = if reg.foreign.stopped { KVec::new() } else { scan(reg)? };
    // A carrier refused because a handler moved pc: the refusal outlives
    // the carrier, until one of the kprobes that were there leaves.
    for i in 0..reg.probes().len() {
        let (carrier, refused, addr) = {
            let p = &reg.probes()[i];
            (p.carrier, p.pc_refused, p.addr)
        };
        if carrier && refused {
            if let Some(site) = sites.as_slice().iter().find(|s| s.addr == addr) {
                reg.foreign.refuse(site, patch::PC_REFUSED);
            }
        }
    }
    let mut i = 0;
    while i < reg.foreign.refused.len() {
        let r = &mut reg.foreign.refused.as_mut_slice()[i];
        if r.polls_left != u32::MAX {
            r.polls_left = r.polls_left.saturating_sub(1);
        }
        let r = &reg.foreign.refused.as_slice()[i];
        if r.polls_left > 0 && sites.as_slice().iter().any(|s| s.addr == r.addr && s.keeps(r)) {
            i += 1;
        } else {
            crate::kvec::swap_remove(&mut reg.foreign.refused, i);
        }
    }
    let carried = |addr: usize| sites.as_slice().iter().any(|s| s.addr == addr && s.carry);
    // Carriers no longer wanted, or whose kprobes left, leave (one batch).
    // (Only when there is one: a detach also retries orphans, which must not
    // happen on every poll.)
    if reg.probes().iter().any(|p| p.carrier && !carried(p.addr)) {
        reg.detach_where(|p| p.carrier && !carried(p.addr));
    }
    // Carriers whose branch the core replaced (kprobes/enabled 0 then 1
    // between two polls) or that a post-handler pushed back to BRK.
    reg.reoptimize_where(|p| p.carrier && p.attempts < MAX_ATTEMPTS && carried(p.addr));
    // Missing carriers: where no probe of ours is (an own probe carries the
    // address itself; a gone one's text is being freed).
    let mut addrs = KVec::new();
    for s in sites.as_slice().iter().filter(|s| s.carry) {
        if !reg.probes().iter().any(|p| p.addr == s.addr) {
            addrs.push(s.addr, GFP_KERNEL)?;
        }
    }
    if addrs.is_empty() {
        return Ok(());
    }
    if reg.attach_carriers(addrs.as_slice()).is_err() {
        // Find which: one at a time, refusing those kprobes refuses (a
        // module going away), so no poll retries them.
        for &addr in addrs.as_slice() {
            if reg.attach_carriers(&[addr]).is_err() {
                if let Some(site) = sites.as_slice().iter().find(|s| s.addr == addr) {
                    reg.foreign.refuse(site, REFUSED_BY_KPROBES);
                }
            }
        }
    }
    Ok(())
}

/// Reconcile, then make sure the poller runs if there is work.
fn apply(reg: &mut Registry) -> Result {
    let result = reconcile(reg);
    if reg.foreign.active() {
        // SAFETY: a static delayed work item (src/glue.c).
        unsafe { bindings::optprobe_foreign_kick(POLL_MS) };
    }
    result
}

/// The poller (src/glue.c): returns the delay before the next run, 0 for
/// none. It keeps running while there is work or a carrier is left.
#[no_mangle]
extern "C" fn optprobe_foreign_work() -> u32 {
    test_hooks::delay(test_hooks::Point::ForeignPoll);
    let Ok(reg) = registry::registry() else { return 0 };
    let mut reg = reg.lock();
    let busy = reg.foreign.active() || reg.probes().iter().any(|p| p.carrier);
    if !busy {
        return 0;
    }
    if let Err(e) = reconcile(&mut reg) {
        pr_warn!("foreign kprobes: reconcile failed ({}); retrying\n", e.to_errno());
    }
    POLL_MS
}

#[no_mangle]
extern "C" fn optprobe_foreign_auto() -> bool {
    registry::registry().is_ok_and(|reg| reg.lock().foreign.auto)
}

/// `auto` written: applied before the write returns.
#[no_mangle]
extern "C" fn optprobe_foreign_set_auto(on: bool) -> c_int {
    let result = registry::registry().and_then(|reg| {
        let mut reg = reg.lock();
        reg.foreign.auto = on;
        apply(&mut reg)
    });
    match result {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `o ADDR` (`on`) or `-o ADDR`: applied before the write returns. `-o` of
/// an address with no request while `auto` is 0 has nothing to stop.
pub(crate) fn request(addr: usize, on: bool) -> Result {
    let mut reg = registry::registry()?.lock();
    let settings = &mut reg.foreign;
    let existing = settings.requests.as_slice().iter().position(|r| r.0 == addr);
    let wanted = match (on, settings.auto) {
        (true, _) => Some(Request::On),
        (false, true) => Some(Request::Off),
        (false, false) => None,
    };
    match (existing, wanted) {
        (Some(i), Some(r)) => settings.requests.as_mut_slice()[i].1 = r,
        (Some(i), None) => {
            crate::kvec::swap_remove(&mut settings.requests, i);
        }
        (None, Some(r)) => {
            if settings.requests.len() >= MAX_REQUESTS {
                pr_warn!("control: at most {} 'o'/'-o' requests\n", MAX_REQUESTS);
                return Err(code::ENOSPC);
            }
            settings.requests.push((addr, r), GFP_KERNEL)?;
        }
        (None, None) => {
            pr_warn!("control: '-o {:#x}': no 'o' request for that address (auto=0)\n", addr);
            return Err(code::ENOENT);
        }
    }
    apply(&mut reg)
}

/// The fallback worker's request: look again now (a kprobe the optimized
/// path must not run joined a carrier's address).
pub(crate) fn kick_now() {
    // SAFETY: a static delayed work item (src/glue.c).
    unsafe { bindings::optprobe_foreign_kick(0) };
}

/// Module load: `auto=1` on the command line.
pub(crate) fn init() -> Result {
    // SAFETY: a bool module parameter, written only at load.
    if unsafe { bindings::optprobe_auto_param } {
        let mut reg = registry::registry()?.lock();
        reg.foreign.auto = true;
        apply(&mut reg)?;
    }
    Ok(())
}

/// Module exit: no new carriers, the poller stopped; the registry's
/// detach then removes the carriers with every other probe.
pub(crate) fn stop() {
    if let Ok(reg) = registry::registry() {
        reg.lock().foreign.stopped = true;
    }
    // SAFETY: the static delayed work item; the registry lock is not held.
    unsafe { bindings::optprobe_foreign_sync() };
}
