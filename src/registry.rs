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
use crate::kvec::swap_remove;
use crate::pool::Pool;
use crate::probe::{self, Probe, Spec, State};
use core::ffi::c_int;
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
    pub(crate) trampoline_pages: usize,
}

/// All probes and trampoline pages.
pub(crate) struct Registry {
    probes: KVec<KBox<Probe>>,
    pool: Pool,
}

impl Registry {
    /// The probes, in registration order up to removals.
    pub(crate) fn probes(&self) -> &[KBox<Probe>] {
        self.probes.as_slice()
    }

    fn find(&self, probe: *const Probe) -> Option<usize> {
        self.probes.as_slice().iter().position(|p| ptr::eq(&**p, probe))
    }

    /// The figures `stats` and `optprobe_get_stats` report.
    pub(crate) fn counts(&self) -> Counts {
        let probes = self.probes.as_slice();
        Counts {
            probes: probes.len(),
            optimized: probes.iter().filter(|p| p.state == State::Optimized).count(),
            disabled: probes.iter().filter(|p| p.disabled).count(),
            trampoline_pages: self.pool.pages(),
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
        let Some(mut probe) = swap_remove(&mut self.probes, index) else {
            return Err(code::EINVAL);
        };
        let result = if enable { self.enable_one(&mut probe) } else { self.disable_one(&mut probe) };
        // Capacity is unchanged since swap_remove: cannot fail.
        let _ = self.probes.push(probe, GFP_KERNEL);
        let last = self.probes.len() - 1;
        self.probes.as_mut_slice().swap(index, last);
        result
    }

    fn disable_one(&mut self, probe: &mut Probe) -> Result {
        probe::unoptimize(&mut self.pool, &mut [&mut *probe])?;
        // SAFETY: registered kprobe (type invariant).
        let ret = unsafe { bindings::disable_kprobe(&mut probe.kp) };
        if ret < 0 {
            pr_warn!("disable: kprobe at {:#x} refused ({})\n", probe.addr, ret);
            // Still a working BRK probe; optimize it again if it can be.
            let _ = probe::optimize(&mut self.pool, self.probes.as_slice(), &mut [&mut *probe]);
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
        let _ = probe::optimize(&mut self.pool, self.probes.as_slice(), &mut [&mut *probe]);
        Ok(())
    }

    /// Register and optimize `specs`. All or nothing.
    fn attach_batch(&mut self, specs: &[Spec]) -> Result<KVec<*mut Probe>> {
        // Every allocation happens before the first kprobe is registered: once
        // probes are live, no failure may drop them.
        let mut fresh: KVec<KBox<Probe>> = KVec::with_capacity(specs.len(), GFP_KERNEL)?;
        let mut handles = KVec::with_capacity(specs.len(), GFP_KERNEL)?;
        let mut refs: KVec<&mut Probe> = KVec::with_capacity(specs.len(), GFP_KERNEL)?;
        self.probes.reserve(specs.len(), GFP_KERNEL)?;
        for spec in specs {
            fresh.push(Probe::new(spec)?, GFP_KERNEL)?;
        }
        // Register one by one so the first failure can be reported precisely.
        for i in 0..fresh.len() {
            if let Err(e) = fresh.as_mut_slice()[i].register(&specs[i]) {
                unregister(&mut fresh.as_mut_slice()[..i]);
                return Err(e);
            }
        }
        for probe in fresh.as_mut_slice() {
            // Capacity reserved above: cannot fail.
            let _ = refs.push(&mut **probe, GFP_KERNEL);
        }
        // Optimization failures leave BRK kprobes with a reason; never an error.
        let _ = probe::optimize(&mut self.pool, self.probes.as_slice(), refs.as_mut_slice());
        drop(refs);
        while let Some(mut probe) = swap_remove(&mut fresh, 0) {
            // Capacity reserved above: neither push can fail.
            let _ = handles.push(&mut *probe as *mut Probe, GFP_KERNEL);
            let _ = self.probes.push(probe, GFP_KERNEL);
        }
        Ok(handles)
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
            if let Some(probe) = swap_remove(&mut self.probes, i) {
                // Capacity reserved above: cannot fail.
                let _ = gone.push(probe, GFP_KERNEL);
            }
        }
        for probe in gone.as_mut_slice() {
            let _ = refs.push(&mut **probe, GFP_KERNEL);
        }
        let result = probe::unoptimize(&mut self.pool, refs.as_mut_slice());
        drop(refs);
        if let Err(e) = result {
            pr_err!("unoptimize failed ({:?}); keeping trampolines\n", e);
            // The branches may still be live: never free their trampolines.
            for probe in gone.as_mut_slice() {
                probe.leak_slot();
            }
        }
        unregister(gone.as_mut_slice());
        // Boxes drop here: the kprobes are unregistered, handlers finished.
    }

    /// Detach every probe `pred` selects; returns how many.
    pub(crate) fn detach_where(&mut self, mut pred: impl FnMut(&Probe) -> bool) -> usize {
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
    // CAST: batch sizes are far below i32::MAX.
    unsafe { bindings::unregister_kprobes(kps.as_mut_ptr(), kps.len() as c_int) };
}

// --- The global registry -----------------------------------------------------

/// The registry, created at init. Entry points (sysfs, C ABI, module notifier)
/// run only between init and exit, where it is published.
static REGISTRY: Global<Registry> = Global::new();

/// Create the registry (module init).
pub(crate) fn init() -> Result {
    REGISTRY.publish(KBox::pin_init(
        kernel::new_mutex!(Registry { probes: KVec::new(), pool: Pool::new() }),
        GFP_KERNEL,
    )?);
    Ok(())
}

/// Detach every remaining probe and free the registry (module exit).
pub(crate) fn exit() {
    if let Ok(reg) = REGISTRY.get() {
        let n = reg.lock().detach_where(|_| true);
        if n > 0 {
            pr_info!("detached {} API probe(s) at unload\n", n);
        }
    }
    REGISTRY.take();
}

pub(crate) fn registry() -> Result<&'static Mutex<Registry>> {
    REGISTRY.get()
}

/// Attach probes, returning handles owned by the caller.
pub(crate) fn attach(specs: &[Spec]) -> Result<KVec<*mut Probe>> {
    registry()?.lock().attach_batch(specs)
}

/// Detach probes by handle; unknown handles are ignored with a warning.
pub(crate) fn detach(handles: &[*mut Probe]) {
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

/// Look up a handle under the registry lock.
pub(crate) fn with_probe<R>(probe: *mut Probe, f: impl FnOnce(&Probe) -> R) -> Option<R> {
    let reg = registry().ok()?.lock();
    let i = reg.find(probe)?;
    Some(f(&reg.probes.as_slice()[i]))
}

/// Enable or disable a probe by handle (`-EINVAL` for an unknown one).
pub(crate) fn set_enabled(probe: *mut Probe, enable: bool) -> Result {
    let mut reg = registry()?.lock();
    let Some(i) = reg.find(probe) else {
        pr_warn!("{} of an unknown probe {:p} refused\n", if enable { "enable" } else { "disable" }, probe);
        return Err(code::EINVAL);
    };
    reg.set_enabled(i, enable)
}
