// SPDX-License-Identifier: GPL-2.0
//! Module state changes, ahead of the kprobes core's own notifier: at LIVE the
//! probes in the module's init text (about to be freed) are retired and
//! listed as gone; at GOING the probes inside the module are removed; at
//! COMING and GOING the foreign poller's refusals inside it are forgotten.
//! Calls `sysfs` and `registry`.

use crate::probe::Probe;
use crate::{bindings, registry, sysfs};
use core::ffi::{c_int, c_ulong, c_void};
use kernel::error::Error;
use kernel::prelude::*;

/// Removes probes in a module that is going away, before the kernel's kprobes
/// notifier marks them gone (higher priority runs first).
#[no_mangle]
unsafe extern "C" fn optprobe_module_notify(
    _nb: *mut bindings::notifier_block,
    action: c_ulong,
    data: *mut c_void,
) -> c_int {
    let module = data.cast::<bindings::module>();
    if action == bindings::module_state_MODULE_STATE_LIVE as c_ulong {
        // The module's init text is freed next. kprobes kills the kprobes
        // in it (after us: lower priority); retire ours first.
        if let Ok(reg) = registry::registry() {
            // SAFETY: `module` is live for the notifier's duration.
            let in_init = |addr: usize| unsafe { bindings::optprobe_within_module_init(addr as c_ulong, module) };
            let mut reg = reg.lock();
            report("retired", reg.retire_where(c"gone: module init text freed", |p| in_init(p.addr)), "probe(s) in init text of a module going live");
            report("released", reg.release_orphans_where(|p| in_init(p.addr)), "orphaned probe(s) in init text");
            // A caller's handler or data in its own init text dangles from
            // now on: remove those probes.
            report("removed", reg.detach_where(|p| owned_by(p, &in_init)), "probe(s) whose handler or data live in freed init text");
        }
        return bindings::NOTIFY_DONE as c_int;
    }
    // SAFETY: `module` is live for the notifier's duration.
    let inside = |addr: usize| unsafe { bindings::optprobe_within_module(addr as c_ulong, module) };
    if action == bindings::module_state_MODULE_STATE_COMING as c_ulong {
        // New text: no refusal made for an earlier module there holds.
        if let Ok(reg) = registry::registry() {
            reg.lock().foreign.forget_refusals_where(&inside);
        }
        return bindings::NOTIFY_DONE as c_int;
    }
    if action != bindings::module_state_MODULE_STATE_GOING as c_ulong {
        return bindings::NOTIFY_DONE as c_int;
    }
    // Sysfs probes first (they own Registrations), then API probes.
    report("removing", sysfs::detach_where(|p| inside(p.addr)), "probe(s) in an unloading module");
    if let Ok(reg) = registry::registry() {
        let mut reg = reg.lock();
        report("removed", reg.detach_where(|p| inside(p.addr)), "API probe(s) in an unloading module");
        report("released", reg.release_orphans_where(|p| inside(p.addr)), "orphaned probe(s) in an unloading module");
        // A caller that unloads without unregistering: its handler, post
        // handler or data would dangle. Remove its probes with it.
        report("removed", reg.detach_where(|p| owned_by(p, &inside)), "probe(s) whose handler or data live in an unloading module");
        reg.foreign.forget_refusals_where(&inside);
    }
    crate::test_hooks::delay(crate::test_hooks::Point::ModuleGoing);
    bindings::NOTIFY_DONE as c_int
}

/// Log "VERB N WHAT" when `n` probes were affected.
fn report(verb: &str, n: usize, what: &str) {
    if n > 0 {
        pr_info!("{} {} {}\n", verb, n, what);
    }
}

/// Do `p`'s handler, post handler or data lie where `inside` says?
fn owned_by(p: &Probe, inside: &impl Fn(usize) -> bool) -> bool {
    p.handler.is_some_and(|h| inside(h as usize))
        || p.post_handler.is_some_and(|h| inside(h as usize))
        || inside(p.data as usize)
}

/// The registered module notifier.
///
/// # Invariants
///
/// `nb` is registered with the module notifier chain until drop.
pub(crate) struct ModuleNotifier {
    nb: KBox<bindings::notifier_block>,
}

impl ModuleNotifier {
    pub(crate) fn new() -> Result<Self> {
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
