// SPDX-License-Identifier: GPL-2.0
//! The Rust API: [`Registration`] (unregisters on drop) and the
//! [`ProbeHandler`] trait for in-kernel Rust callers. The sysfs control file
//! keeps its probes as handler-less registrations too.
//!
//! Calls `registry` only.

use crate::bindings;
use crate::fixed_str::FixedStr;
use crate::hit::optprobe_rust_dispatch;
use crate::probe::{Probe, RawHandler, Spec, State};
use crate::registry::{self, Key};
use core::ffi::c_void;
use core::ptr;
use kernel::prelude::*;

/// A handler for a probe registered through the Rust API.
pub trait ProbeHandler: Send + Sync {
    /// Called on every hit with preemption disabled. See include/optprobe.h
    /// for what a handler may read and change.
    fn pre(&self, regs: &mut bindings::pt_regs);
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
            carrier: false,
        };
        let handles = registry::attach(core::slice::from_ref(&spec))?;
        // INVARIANT: one live probe, owned from now on; the handler box is
        // kept until after detach.
        Ok(Self { probe: handles.as_slice()[0].probe, handler })
    }

    /// Take ownership of a probe attached without a handler box (sysfs).
    ///
    /// # Safety
    ///
    /// `probe` is a live handle from [`registry::attach`] that nobody else
    /// owns, and its handler data (if any) outlives it.
    pub(crate) unsafe fn adopt(probe: *mut Probe) -> Self {
        // INVARIANT: per the function's contract.
        Self { probe, handler: None }
    }

    /// The probe.
    pub(crate) fn probe(&self) -> &Probe {
        // SAFETY: live probe (invariant); callers that detach set it to null
        // only through `detach_registrations`, which consumes the list.
        unsafe { &*self.probe }
    }

    /// Is the probe on a fast path: optimized (a branch to its trampoline)
    /// or, at a function entry on a BTI kernel, delivered through ftrace?
    pub fn optimized(&self) -> bool {
        // `state` changes only under the registry mutex and is a plain byte.
        matches!(self.probe().state, State::Optimized | State::Ftrace)
    }

    /// Disable the probe: its handler stops running and the text is restored.
    pub fn disable(&self) -> Result {
        registry::set_enabled(Key::Probe(self.probe), false)
    }

    /// Enable it again (optimized again when eligible).
    pub fn enable(&self) -> Result {
        registry::set_enabled(Key::Probe(self.probe), true)
    }

    /// Handler runs so far.
    pub fn hits(&self) -> u64 {
        registry::with_probe(Key::Probe(self.probe), |p| p.hits.sum()).unwrap_or(0)
    }
}

/// Detach many registrations with one text-patch batch and one RCU-tasks wait.
pub(crate) fn detach_registrations(mut list: KVec<Registration>) {
    let mut handles = KVec::new();
    if handles.reserve(list.len(), GFP_KERNEL).is_err() {
        // Out of memory: fall back to one at a time.
        drop(list);
        return;
    }
    for r in list.as_slice() {
        let _ = handles.push(Key::Probe(r.probe), GFP_KERNEL);
    }
    registry::detach(handles.as_slice());
    for r in list.as_mut_slice() {
        // INVARIANT: detached above; Drop now only frees the handler.
        r.probe = ptr::null_mut();
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if !self.probe.is_null() {
            registry::detach(&[Key::Probe(self.probe)]);
        }
        // The probe is gone and its handler can no longer run.
        drop(self.handler.take());
    }
}
