// SPDX-License-Identifier: GPL-2.0
//! The registry: every probe of every interface, and the trampoline pool,
//! under one mutex. Batches are all or nothing: attach registers then
//! optimizes, detach unoptimizes then unregisters, and neither drops a probe
//! on an allocation failure (everything is reserved first).
//!
//! Calls `probe` (transitions) and `pool`; called by `api`, `c_abi`,
//! `sysfs` and `modules` through the free functions at the bottom.

use crate::bindings;
use crate::global::Global;
use crate::kvec::{self, swap_remove};
use crate::pool::Pool;
use crate::{entry, patch};
use crate::probe::{Probe, Spec, State};
use crate::sys;
use core::ffi::{c_int, CStr};
use core::ptr;
use kernel::error::{code, Error};
use kernel::prelude::*;
use kernel::sync::Mutex;

/// Counts over the registry, taken under its lock.
#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) probes: usize,
    pub(crate) optimized: usize,
    pub(crate) disabled: usize,
    pub(crate) orphans: usize,
    pub(crate) trampoline_pages: usize,
    /// Carriers (src/foreign.rs).
    pub(crate) carriers: usize,
    /// Our own probes delivered through ftrace (src/entry.rs).
    pub(crate) ftrace: usize,
}

/// A probe just attached: its address (for owners that cannot outlive it)
/// and its id (for C ABI handles), both taken under the registry lock.
#[derive(Clone, Copy)]
pub(crate) struct Attached {
    pub(crate) probe: *mut Probe,
    pub(crate) id: u64,
}

/// How callers name a probe.
#[derive(Clone, Copy)]
pub(crate) enum Key {
    /// By address: owners that cannot outlive it (Rust API, sysfs).
    Probe(*const Probe),
    /// By id: C ABI handles, which a caller may keep past unregister.
    Id(u64),
}

impl Key {
    fn matches(self, p: &Probe) -> bool {
        match self {
            Key::Probe(ptr) => ptr::eq(p, ptr),
            Key::Id(id) => p.id == id,
        }
    }
}

impl core::fmt::Display for Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Key::Probe(ptr) => write!(f, "{:p}", *ptr),
            Key::Id(id) => write!(f, "#{}", id),
        }
    }
}
crate::compat::impl_kernel_display!(Key);

/// All probes and trampoline pages.
///
/// # Invariants
///
/// - `scratch`, `leaving` and `kps` have room for every probe in `probes`
///   and `orphans` (reserved by `attach_batch` before it registers any), so
///   no detach path allocates.
/// - `orphans` holds probes their owners removed whose branch could not be
///   removed: registered, handler cleared, never freed until a retry
///   removes the branch. `pinned` iff `orphans` is non-empty: the module
///   holds a reference on itself, because their trampolines call into it.
pub(crate) struct Registry {
    probes: KVec<KBox<Probe>>,
    orphans: KVec<KBox<Probe>>,
    pool: Pool,
    scratch: patch::Scratch,
    /// The probes of the detach batch in progress.
    leaving: KVec<KBox<Probe>>,
    /// `unregister_kprobes` argument.
    kps: KVec<*mut bindings::kprobe>,
    pinned: bool,
    /// The id the next probe gets.
    next_id: u64,
    /// What the foreign-kprobe poller is asked to do (src/foreign.rs).
    pub(crate) foreign: crate::foreign::Settings,
}

// SAFETY: the raw pointers in `kps` and the scratch buffers are kernel text
// and kprobe addresses used only under the registry mutex; the probes are
// Send (see Probe).
unsafe impl Send for Registry {}

impl Registry {
    /// The probes the listing shows, in order: live ones (carriers are
    /// listed as the foreign kprobes they carry instead), then orphans.
    fn listed_probes(&self) -> impl Iterator<Item = &Probe> {
        Iterator::chain(self.probes.as_slice().iter().filter(|p| !p.carrier), self.orphans.as_slice().iter()).map(|p| &**p)
    }

    /// How many probes the listing shows (see [`Registry::listed_probes`]).
    pub(crate) fn listed(&self) -> usize {
        self.listed_probes().count()
    }

    /// Listing entry `i` (see [`Registry::listed_probes`]).
    pub(crate) fn listed_at(&self, i: usize) -> Option<&Probe> {
        self.listed_probes().nth(i)
    }

    /// Every live probe, carriers included (src/foreign.rs reads them).
    pub(crate) fn probes(&self) -> &[KBox<Probe>] {
        self.probes.as_slice()
    }

    /// A probe its owner names; never a carrier, which has no owner handle.
    fn find(&self, key: Key) -> Option<usize> {
        self.probes.as_slice().iter().position(|p| !p.carrier && key.matches(p))
    }

    /// The figures `stats` and `optprobe_get_stats` report.
    pub(crate) fn counts(&self) -> Counts {
        let probes = self.probes.as_slice();
        let own = || probes.iter().filter(|p| !p.carrier);
        Counts {
            probes: own().count() + self.orphans.len(),
            orphans: self.orphans.len(),
            optimized: own().filter(|p| p.state == State::Optimized).count(),
            disabled: own().filter(|p| p.disabled).count(),
            trampoline_pages: self.pool.pages(),
            carriers: probes.iter().filter(|p| p.carrier).count(),
            ftrace: own().filter(|p| p.state == State::Ftrace).count(),
        }
    }

    /// Add carriers at `addrs` (src/foreign.rs), one batch: registered
    /// disabled, then each joins the armed kprobes at its address and, where
    /// eligible, replaces their BRK with its branch. Returns how many exist
    /// afterwards; a refused one is logged by the attach.
    pub(crate) fn attach_carriers(&mut self, addrs: &[usize]) -> Result<usize> {
        let mut specs = KVec::with_capacity(addrs.len(), GFP_KERNEL)?;
        for &addr in addrs {
            specs.push(
                Spec {
                    symbol: crate::fixed_str::FixedStr::new(),
                    offset: 0,
                    addr,
                    name: crate::fixed_str::FixedStr::from_bytes(b"@carrier"),
                    handler: None,
                    post_handler: None,
                    data: ptr::null_mut(),
                    carrier: true,
                },
                GFP_KERNEL,
            )?;
        }
        Ok(self.attach_batch(specs.as_slice())?.len())
    }

    /// Try again to optimize the probes `pred` selects that are not now
    /// (a branch the core replaced is taken out first, its trampoline freed
    /// after RCU-tasks). Returns how many are optimized afterwards.
    pub(crate) fn reoptimize_where(&mut self, mut pred: impl FnMut(&Probe) -> bool) -> usize {
        // Entry probes through ftrace whose landing pad the core replaced
        // with its BRK (kprobes/enabled 0 then 1) get it back.
        // Our own ones too: the poller is the only one that looks.
        for p in self.probes.as_mut_slice().iter_mut().filter(|p| p.state == State::Ftrace) {
            entry::repair(p);
        }
        let n = self.mark(|p| !p.gone && !p.disabled && p.state != State::Ftrace && pred(p) && !p.branch_is_live());
        if n == 0 {
            return 0;
        }
        self.unoptimize_marked(|p| p.doomed = true);
        let mut done = 0;
        // One at a time through the batch interface: reoptimizing is rare.
        for i in 0..self.probes.len() {
            if !self.probes.as_slice()[i].doomed {
                continue;
            }
            let optimized = self.with_taken(i, |reg, p| {
                p.doomed = false;
                p.attempts = p.attempts.saturating_add(1);
                // Still optimized after unoptimize: its site holds text we
                // do not know, left alone (and its slot kept).
                if p.state == State::Kprobe && entry::candidate(p) {
                    entry::enter(&mut [&mut *p], reg.probes.as_slice());
                } else if p.state == State::Kprobe {
                    patch::optimize(&mut reg.pool, &mut reg.scratch, reg.probes.as_slice(), &mut [&mut *p]);
                }
                if p.state != State::Kprobe {
                    p.attempts = 0;
                }
                p.state != State::Kprobe
            });
            done += usize::from(optimized == Some(true));
        }
        done
    }

    /// Put the BRK back for optimized probes whose handlers changed pc (the
    /// hit path counted it, see src/hit.rs), and refuse them from now on.
    fn fall_back_pc_changes(&mut self) -> usize {
        let n = self.mark(|p| !p.pc_refused && p.pc_changes.load(core::sync::atomic::Ordering::Relaxed) > 0);
        if n > 0 {
            self.unoptimize_marked(|p| {
                p.pc_refused = true;
                p.set_reason(patch::PC_REFUSED);
                pr_info!("probe at {:#x} back to BRK: a handler changed pc on the optimized path\n", p.addr);
            });
        }
        n
    }

    /// Enable or disable probe `index`. Disabling removes the branch (waiting
    /// out RCU-tasks and freeing the trampoline) and then the BRK, so the
    /// original instruction is back; enabling arms the BRK and optimizes
    /// again, re-checking eligibility. Idempotent.
    fn set_enabled(&mut self, index: usize, enable: bool) -> Result {
        let Some(probe) = self.probes.as_slice().get(index) else {
            return Err(code::EINVAL);
        };
        if probe.gone {
            pr_warn!("probe '{}' is gone ({}); only unregistering is left\n", probe.name.as_str(),
                probe.reason.to_str().unwrap_or("?"));
            return Err(code::ENOENT);
        }
        if probe.disabled != enable {
            return Ok(());
        }
        self.with_taken(index, |reg, probe| if enable { reg.enable_one(probe) } else { reg.disable_one(probe) })
            .unwrap_or(Err(code::EINVAL))
    }

    /// Run `f` on probe `index` taken out of the list, so no borrow of it
    /// overlaps the registry's while the pool is changed; then put it back
    /// at the same index. `None` for an index out of range.
    fn with_taken<R>(&mut self, index: usize, f: impl FnOnce(&mut Self, &mut Probe) -> R) -> Option<R> {
        let mut probe = swap_remove(&mut self.probes, index)?;
        let result = f(self, &mut probe);
        // Capacity is unchanged since swap_remove: cannot fail.
        let _ = self.probes.push(probe, GFP_KERNEL);
        let last = self.probes.len() - 1;
        self.probes.as_mut_slice().swap(index, last);
        Some(result)
    }

    fn disable_one(&mut self, probe: &mut Probe) -> Result {
        if entry::leave(&mut [&mut *probe], |_| true, false) > 0 {
            return Err(code::EIO);
        }
        if patch::unoptimize(&mut self.pool, &mut self.scratch, &mut [&mut *probe], |_| true, true) > 0 {
            pr_warn!("disable: branch at {:#x} could not be removed; still enabled\n", probe.addr);
            return Err(code::EIO);
        }
        // Alone at its address, unoptimize disarmed it too; otherwise the
        // core disables our kprobe in the aggregate (text unchanged).
        let ret = if probe.kp.flags & bindings::KPROBE_FLAG_DISABLED != 0 {
            0
        } else {
            // SAFETY: registered kprobe (type invariant).
            unsafe { bindings::disable_kprobe(&mut probe.kp) }
        };
        if ret < 0 {
            pr_warn!("disable: kprobe at {:#x} refused ({})\n", probe.addr, ret);
            // Still a working BRK probe; optimize it again if it can be.
            patch::optimize(&mut self.pool, &mut self.scratch, self.probes.as_slice(), &mut [&mut *probe]);
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: branch and trampoline gone, kprobe disabled.
        probe.disabled = true;
        probe.set_reason(c"disabled");
        Ok(())
    }

    fn enable_one(&mut self, probe: &mut Probe) -> Result {
        probe.set_reason(c"unoptimized");
        // Branch (or BRK) written directly; a failed write falls back to the
        // core's enable_kprobe, which writes BRK.
        let unarmed = patch::arm(&mut self.pool, &mut self.scratch, self.probes.as_slice(), &mut [&mut *probe]);
        entry::enter(&mut [&mut *probe], self.probes.as_slice());
        if unarmed > 0 && probe.kp.flags & bindings::KPROBE_FLAG_DISABLED != 0 {
            // SAFETY: registered kprobe (type invariant).
            let ret = unsafe { bindings::enable_kprobe(&mut probe.kp) };
            if ret < 0 {
                pr_warn!("enable: kprobe at {:#x} refused ({})\n", probe.addr, ret);
                return Err(Error::from_errno(ret));
            }
        }
        probe.disabled = false;
        Ok(())
    }

    /// Register and optimize `specs`. All or nothing.
    fn attach_batch(&mut self, specs: &[Spec]) -> Result<KVec<Attached>> {
        self.retry_orphans();
        // Every allocation happens before the first kprobe is registered: once
        // probes are live, no failure may drop them. That includes the room
        // every later detach of them needs (type invariant).
        let total = self.probes.len() + self.orphans.len() + specs.len();
        let mut fresh: KVec<KBox<Probe>> = KVec::with_capacity(specs.len(), GFP_KERNEL)?;
        let mut handles = KVec::with_capacity(specs.len(), GFP_KERNEL)?;
        let mut refs: KVec<&mut Probe> = KVec::with_capacity(specs.len(), GFP_KERNEL)?;
        self.probes.reserve(specs.len(), GFP_KERNEL)?;
        self.orphans.reserve(total - self.orphans.len(), GFP_KERNEL)?;
        self.leaving.reserve(total, GFP_KERNEL)?;
        self.kps.reserve(total, GFP_KERNEL)?;
        // INVARIANT: room for every probe, the new ones included.
        self.scratch.reserve(total)?;
        for spec in specs {
            fresh.push(Probe::new(spec)?, GFP_KERNEL)?;
        }
        for probe in fresh.as_mut_slice() {
            probe.id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
        }
        // Register one by one so the first failure can be reported precisely.
        for i in 0..fresh.len() {
            if let Err(e) = fresh.as_mut_slice()[i].register(&specs[i]) {
                unregister(&mut self.kps, &mut fresh.as_mut_slice()[..i]);
                return Err(e);
            }
        }
        for probe in fresh.as_mut_slice() {
            // Capacity reserved above: cannot fail.
            let _ = refs.push(&mut **probe, GFP_KERNEL);
        }
        // Arm them all in one text-patch batch (optimized where eligible,
        // BRK otherwise); optimization failures leave BRK kprobes with a
        // reason. A probe our batch could not arm is armed by the core.
        let mut failed = None;
        let unarmed = patch::arm(&mut self.pool, &mut self.scratch, self.probes.as_slice(), refs.as_mut_slice());
        // Function entries on a BTI kernel: through ftrace where they can be.
        entry::enter(refs.as_mut_slice(), self.probes.as_slice());
        if unarmed > 0 {
            for p in refs.as_mut_slice() {
                if p.kp.flags & bindings::KPROBE_FLAG_DISABLED == 0 {
                    continue;
                }
                // SAFETY: registered just above.
                let ret = unsafe { bindings::enable_kprobe(&mut p.kp) };
                if ret < 0 {
                    pr_warn!("cannot arm the kprobe at {:#x} ({})\n", p.addr, ret);
                    failed = Some(Error::from_errno(ret));
                    break;
                }
            }
        }
        drop(refs);
        if let Some(e) = failed {
            // All or nothing: the batch leaves as a detach would (room
            // reserved above, so this cannot fail half-way).
            while let Some(probe) = swap_remove(&mut fresh, 0) {
                keep(&mut self.leaving, probe);
            }
            self.finish_leaving();
            return Err(e);
        }
        while let Some(mut probe) = swap_remove(&mut fresh, 0) {
            // Capacity reserved above: neither push can fail.
            let _ = handles.push(Attached { probe: &mut *probe as *mut Probe, id: probe.id }, GFP_KERNEL);
            let _ = self.probes.push(probe, GFP_KERNEL);
        }
        Ok(handles)
    }

    /// Mark the probes `pred` selects (`doomed`); returns how many.
    fn mark(&mut self, mut pred: impl FnMut(&Probe) -> bool) -> usize {
        let mut n = 0;
        for p in self.probes.as_mut_slice() {
            p.doomed = pred(p);
            n += usize::from(p.doomed);
        }
        n
    }

    /// Unoptimize the marked probes where they are (they stay registered),
    /// then unmark each and hand it to `then`.
    fn unoptimize_marked(&mut self, mut then: impl FnMut(&mut Probe)) {
        patch::unoptimize(&mut self.pool, &mut self.scratch, self.probes.as_mut_slice(), |p| p.doomed, false);
        for p in self.probes.as_mut_slice().iter_mut().filter(|p| p.doomed) {
            p.doomed = false;
            then(p);
        }
    }

    /// Retire the probes `pred` selects whose text is about to be freed while
    /// they stay registered (init text, once its module is live): branch out,
    /// RCU-tasks, trampoline freed, then never touched again. Returns how many.
    pub(crate) fn retire_where(&mut self, why: &'static CStr, mut pred: impl FnMut(&Probe) -> bool) -> usize {
        let n = self.mark(|p| !p.gone && pred(p));
        if n > 0 {
            // Their text is about to be freed: nothing written back.
            entry::leave(self.probes.as_mut_slice(), |p| p.doomed, true);
            self.unoptimize_marked(|p| {
                if p.state == State::Optimized {
                    // The text goes away with the branch in it; no task runs
                    // init code any more. The trampoline is leaked, never reused.
                    pr_err!("probe '{}': branch not removed; its trampoline is leaked\n", p.name.as_str());
                    p.leak_slot();
                    p.state = State::Kprobe;
                }
                // INVARIANT: Kprobe, no slot; the text is never read again.
                p.gone = true;
                p.set_reason(why);
            });
        }
        n
    }

    /// Put the BRK back for optimized probes whose address gained a kprobe
    /// with a post-handler (the hit path asked, see src/hit.rs): only the
    /// BRK path runs post-handlers. Returns how many.
    fn fall_back_post_handlers(&mut self) -> usize {
        let needs_brk = |p: &Probe| {
            // SAFETY: a registered address, under kprobe_mutex (`core`).
            let at = unsafe { p.hashed() };
            // SAFETY: the live kprobe at the address, under kprobe_mutex.
            p.state == State::Optimized && !p.gone && unsafe { patch::has_enabled_post_handler(at) }
        };
        let core = sys::KprobeLock::new();
        let n = self.mark(needs_brk);
        // Orphans too: their branch stays until a retry; as BRK kprobes the
        // next retry frees them.
        for p in self.orphans.as_mut_slice() {
            p.doomed = needs_brk(p);
        }
        drop(core);
        patch::unoptimize(&mut self.pool, &mut self.scratch, self.orphans.as_mut_slice(), |p| p.doomed, false);
        for p in self.orphans.as_mut_slice() {
            p.doomed = false;
        }
        if n > 0 {
            self.unoptimize_marked(|p| {
                if p.state == State::Kprobe {
                    p.set_reason(c"another kprobe here has a post-handler");
                    pr_info!("probe '{}' back to BRK: a kprobe with a post-handler joined it\n", p.name.as_str());
                }
            });
        }
        n
    }

    /// Detach every probe `pred` selects; returns how many.
    pub(crate) fn detach_where(&mut self, pred: impl FnMut(&Probe) -> bool) -> usize {
        let n = self.mark(pred);
        self.reap();
        n
    }

    /// Detach the probes marked `doomed`, in one batch: one text patch, one
    /// RCU-tasks wait, one `unregister_kprobes`. Allocates nothing (type
    /// invariant). A probe whose branch stays becomes an orphan instead of
    /// being freed.
    fn reap(&mut self) {
        self.retry_orphans();
        let mut i = 0;
        while i < self.probes.len() {
            if !self.probes.as_slice()[i].doomed {
                i += 1;
                continue;
            }
            if let Some(mut p) = swap_remove(&mut self.probes, i) {
                p.doomed = false;
                // Room reserved (type invariant): cannot fail.
                keep(&mut self.leaving, p);
            }
        }
        self.finish_leaving();
    }

    /// Unoptimize, unregister and free `leaving`; the ones whose branch
    /// stays go to `orphans`.
    fn finish_leaving(&mut self) {
        if self.leaving.is_empty() {
            return;
        }
        entry::leave(self.leaving.as_mut_slice(), |_| true, false);
        patch::unoptimize(&mut self.pool, &mut self.scratch, self.leaving.as_mut_slice(), |_| true, true);
        let mut orphaned = 0;
        let mut i = 0;
        while i < self.leaving.len() {
            // Still optimized, or an ops ftrace would not detach: the
            // callback may still reach the probe.
            if self.leaving.as_slice()[i].state == State::Kprobe && self.leaving.as_slice()[i].ftrace.is_null() {
                i += 1;
                continue;
            }
            if let Some(mut p) = swap_remove(&mut self.leaving, i) {
                if !p.orphaned {
                    pr_err!("probe '{}' at {:#x}: branch could not be removed; kept as an orphan\n",
                        p.name.as_str(), p.addr);
                }
                p.orphan();
                orphaned += 1;
                // Room reserved (type invariant): cannot fail.
                keep(&mut self.orphans, p);
            }
        }
        if orphaned > 0 {
            // Handlers that read the old pointer have finished: they run with
            // preemption disabled.
            // SAFETY: process context.
            unsafe { bindings::synchronize_rcu() };
            if !self.pinned {
                // INVARIANT: orphans exist; their trampolines call into us.
                sys::pin_this_module();
                self.pinned = true;
            }
        }
        unregister(&mut self.kps, self.leaving.as_mut_slice());
        // Released orphans (gone) kept their slots through unregister: their
        // text (a going module's, init text at LIVE, or text that no longer
        // holds their branch) is not run through them any more. Free the
        // slots only now, after RCU-tasks.
        if self.leaving.as_slice().iter().any(|p| p.gone && p.holds_slot()) {
            // SAFETY: process context.
            unsafe { bindings::synchronize_rcu_tasks() };
            for p in self.leaving.as_mut_slice().iter_mut().filter(|p| p.gone) {
                // SAFETY: the kprobe is unregistered and the module text is
                // not run any more; RCU-tasks elapsed since.
                unsafe { p.free_slot_into(&mut self.pool) };
            }
        }
        // Boxes drop here: the kprobes are unregistered, handlers finished,
        // trampolines freed after RCU-tasks.
        kvec::clear(&mut self.leaving);
    }

    /// Orphans whose text is about to be freed (`pred`: inside a module
    /// going away, or in init text at LIVE): their branch goes with the text
    /// and no task runs that code any more, so they need no text write and
    /// must not read it. Mark them gone, then free them as a detach does:
    /// RCU-tasks, trampoline freed, kprobe unregistered. Returns how many.
    pub(crate) fn release_orphans_where(&mut self, mut pred: impl FnMut(&Probe) -> bool) -> usize {
        let mut n = 0;
        let mut i = 0;
        while i < self.orphans.len() {
            if !pred(&self.orphans.as_slice()[i]) {
                i += 1;
                continue;
            }
            if let Some(mut p) = swap_remove(&mut self.orphans, i) {
                // The core must not write the original instruction over
                // text that is not its BRK (or soon freed): flag it disabled
                // so unregister leaves the text alone.
                {
                    let _core = sys::KprobeLock::new();
                    let _text = sys::TextLock::new();
                    // SAFETY: both locks held; the text is neither our
                    // branch in use nor the core's BRK to disarm.
                    unsafe { p.mark_core_disabled() };
                }
                // INVARIANT: never read or written again; the slot is freed
                // after RCU-tasks by finish_leaving. An ops ftrace would not
                // detach keeps the probe (State::Ftrace) until it does.
                p.gone = true;
                if p.ftrace.is_null() {
                    p.state = State::Kprobe;
                }
                n += 1;
                keep(&mut self.leaving, p);
            }
        }
        if n > 0 {
            self.finish_leaving();
            self.unpin_if_no_orphans();
        }
        n
    }

    fn unpin_if_no_orphans(&mut self) {
        if self.orphans.is_empty() && self.pinned {
            pr_info!("orphaned probes removed\n");
            // INVARIANT: no orphans left.
            self.pinned = false;
            sys::unpin_this_module();
        }
    }

    /// Try again to remove the orphans' branches; free the ones that go.
    fn retry_orphans(&mut self) {
        if self.orphans.is_empty() {
            return;
        }
        while let Some(last) = self.orphans.len().checked_sub(1) {
            if let Some(p) = swap_remove(&mut self.orphans, last) {
                if let Err(p) = kvec::push_or_return(&mut self.leaving, p) {
                    // Room reserved (type invariant): cannot happen; keep it.
                    let _ = kvec::push_or_return(&mut self.orphans, p);
                    break;
                }
            }
        }
        self.finish_leaving();
        self.unpin_if_no_orphans();
    }
}

/// Move `probe` into `list`, whose room the registry reserved (type
/// invariant), so this cannot fail; if it ever did, the probe is leaked:
/// never freed while it may be registered or reachable.
fn keep(list: &mut KVec<KBox<Probe>>, probe: KBox<Probe>) {
    if let Err(probe) = kvec::push_or_return(list, probe) {
        pr_err!("no room for probe '{}': leaked\n", probe.name.as_str());
        core::mem::forget(probe);
    }
}

/// `unregister_kprobes` in one call (one RCU grace period), with the room
/// `kps` has (the registry reserves it for every probe; one by one beyond).
fn unregister(kps: &mut KVec<*mut bindings::kprobe>, probes: &mut [KBox<Probe>]) {
    kvec::clear_copy(kps);
    for probe in probes.iter_mut() {
        if kps.len() == kps.capacity() {
            // Beyond the reserved room (cannot happen): one at a time.
            // SAFETY: registered kprobe (invariant).
            unsafe { bindings::unregister_kprobe(&mut probe.kp) };
            continue;
        }
        // Within capacity: no allocation, cannot fail.
        let _ = kps.push(&mut probe.kp, GFP_KERNEL);
    }
    if !kps.is_empty() {
        // SAFETY: every entry is a registered kprobe.
        // CAST: batch sizes are far below i32::MAX.
        unsafe { bindings::unregister_kprobes(kps.as_mut_ptr(), kps.len() as c_int) };
    }
    kvec::clear_copy(kps);
}

// --- The global registry -----------------------------------------------------

/// The registry, created at init. Entry points (sysfs, C ABI, module notifier)
/// run only between init and exit, where it is published.
static REGISTRY: Global<Registry> = Global::new();

/// Create the registry (module init).
pub(crate) fn init() -> Result {
    REGISTRY.publish(KBox::pin_init(
        kernel::new_mutex!(Registry {
            probes: KVec::new(),
            orphans: KVec::new(),
            pool: Pool::new(),
            scratch: patch::Scratch::new(),
            leaving: KVec::new(),
            kps: KVec::new(),
            pinned: false,
            next_id: 1,
            foreign: crate::foreign::Settings::new(),
        }),
        GFP_KERNEL,
    )?);
    Ok(())
}

/// The fallback worker (src/glue.c): see [`Registry::fall_back_post_handlers`].
#[no_mangle]
extern "C" fn optprobe_fallback_work() {
    if let Ok(reg) = registry() {
        let mut reg = reg.lock();
        reg.fall_back_post_handlers();
        reg.fall_back_pc_changes();
        if !reg.foreign.is_stopped() {
            crate::foreign::kick_now();
        }
    }
}

/// Detach every remaining probe (module exit), then wait out the fallback
/// worker, which uses the registry.
pub(crate) fn detach_all() {
    if let Ok(reg) = REGISTRY.get() {
        let n = reg.lock().detach_where(|_| true);
        if n > 0 {
            pr_info!("detached {} API probe(s) at unload\n", n);
        }
        // The module's code goes next (a failed init frees it too, whatever
        // the pin): no branch to a trampoline that calls into it may stay.
        // Orphans whose site no longer holds their branch (unknown text,
        // never overwritten) are unreachable: release them. The others are
        // retried until their branch is gone.
        let mut tries = 0u32;
        loop {
            let mut reg = reg.lock();
            reg.retry_orphans();
            reg.release_orphans_where(|p| !p.branch_is_live());
            if reg.orphans.is_empty() {
                break;
            }
            if tries % 50 == 0 {
                pr_err!("{} orphaned probe(s) block unloading; retrying\n", reg.orphans.len());
            }
            drop(reg);
            tries = tries.wrapping_add(1);
            // SAFETY: process context.
            unsafe { bindings::msleep(100) };
        }
    }
    // SAFETY: process context; the irq_work and work item are static.
    unsafe { bindings::optprobe_fallback_sync() };
}

/// Free the (empty) registry: module exit, once the module notifier is gone.
/// Probes that could not be detached (out of memory) are leaked, never freed
/// while their kprobes may be registered.
pub(crate) fn free() {
    if let Ok(reg) = REGISTRY.get() {
        let mut reg = reg.lock();
        if !reg.probes.is_empty() || !reg.orphans.is_empty() {
            pr_err!("{} probe(s) could not be detached; leaking them\n", reg.probes.len() + reg.orphans.len());
            core::mem::forget(core::mem::replace(&mut reg.probes, KVec::new()));
            core::mem::forget(core::mem::replace(&mut reg.orphans, KVec::new()));
        }
    }
    REGISTRY.take();
}

pub(crate) fn registry() -> Result<&'static Mutex<Registry>> {
    REGISTRY.get()
}

/// Attach probes, returning handles owned by the caller.
pub(crate) fn attach(specs: &[Spec]) -> Result<KVec<Attached>> {
    registry()?.lock().attach_batch(specs)
}

/// Detach probes; unknown keys are ignored with a warning. Allocates
/// nothing: a caller's unregister cannot fail.
pub(crate) fn detach(handles: &[Key]) {
    let Ok(reg) = registry() else { return };
    let mut reg = reg.lock();
    for &h in handles {
        match reg.find(h) {
            Some(i) => reg.probes.as_mut_slice()[i].doomed = true,
            None => pr_warn!("unregister of an unknown probe {} ignored\n", h),
        }
    }
    reg.reap();
}

/// Look up a probe under the registry lock.
pub(crate) fn with_probe<R>(probe: Key, f: impl FnOnce(&Probe) -> R) -> Option<R> {
    let reg = registry().ok()?.lock();
    let i = reg.find(probe)?;
    Some(f(&reg.probes.as_slice()[i]))
}

/// Enable or disable a probe by handle (`-EINVAL` for an unknown one).
pub(crate) fn set_enabled(probe: Key, enable: bool) -> Result {
    let mut reg = registry()?.lock();
    let Some(i) = reg.find(probe) else {
        pr_warn!("{} of an unknown probe {} refused\n", if enable { "enable" } else { "disable" }, probe);
        return Err(code::EINVAL);
    };
    reg.set_enabled(i, enable)
}
