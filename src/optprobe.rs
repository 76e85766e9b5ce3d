// SPDX-License-Identifier: GPL-2.0
//! optprobe: optimized kprobes for arm64. The crate root: the module, its
//! init and exit, and the list of files, each one responsibility.
//!
//! Every probe is an ordinary kernel kprobe first: that gives the kernel's
//! address checks and the BRK fallback. An eligible probe is then optimized:
//! its BRK becomes `b trampoline`, where the trampoline (built from
//! `asm/template.S`) saves a full `pt_regs`, calls the hit path (`hit.rs`),
//! runs the original instruction and branches back.

// Pure, kernel-free logic: public so the host crate (tests/host) compiles the
// same files; within the module they are internal.
pub mod control;
pub mod fixed_str;
pub mod insn;
pub mod tramp;

// Kernel-facing parts.
pub mod api;
mod c_abi;
mod compat;
mod entry;
mod foreign;
mod global;
mod hit;
mod kvec;
mod modules;
mod patch;
mod pool;
mod probe;
mod registry;
mod selftest;
mod sys;
mod sysfs;
mod test_hooks;

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

use kernel::error::code;
use kernel::prelude::*;

// `module!` took `author:` up to 6.12 and takes `authors: [..]` since;
// Kbuild's cfg says which this kernel's macro wants.
#[cfg(not(optprobe_module_authors))]
module! {
    type: OptprobeModule,
    name: "optprobe",
    author: "optprobe developers",
    description: "Optimized kprobes for arm64: direct branches to trampolines",
    license: "GPL",
}
#[cfg(optprobe_module_authors)]
module! {
    type: OptprobeModule,
    name: "optprobe",
    authors: ["optprobe developers"],
    description: "Optimized kprobes for arm64: direct branches to trampolines",
    license: "GPL",
}

struct OptprobeModule {
    sysfs: Option<sys::SysfsDir>,
    notifier: Option<modules::ModuleNotifier>,
}

impl kernel::Module for OptprobeModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        sys::resolve_symbols()?;
        let (layout, _) = patch::template();
        if layout.check().is_err() {
            pr_err!("trampoline template layout is inconsistent: {:?}\n", layout);
            return Err(code::EINVAL);
        }
        // From here on, dropping `this` (on error too) tears everything down.
        let mut this = OptprobeModule { sysfs: None, notifier: None };
        registry::init()?;
        this.notifier = Some(modules::ModuleNotifier::new()?);
        sysfs::init()?;
        foreign::init()?;
        // SAFETY: a bool module parameter, written only at load.
        if unsafe { bindings::optprobe_selftest_param } {
            selftest::run()?;
        }
        this.sysfs = Some(sys::SysfsDir::new()?);
        pr_info!("loaded (trampoline {} bytes, slot {})\n", layout.size, tramp::SLOT_SIZE);
        Ok(this)
    }
}

impl Drop for OptprobeModule {
    fn drop(&mut self) {
        // No new control writes; no new carriers, the poller stopped; then
        // every probe (carriers too) detached while the module
        // notifier still runs, so a probed module unloading meanwhile is
        // handled (its probes leave first); then no more module events; and
        // only then the state the notifier reads is freed.
        drop(self.sysfs.take());
        foreign::stop();
        sysfs::detach_all();
        registry::detach_all();
        test_hooks::delay(test_hooks::Point::ExitWindow);
        drop(self.notifier.take());
        sysfs::free();
        registry::free();
        pr_info!("unloaded\n");
    }
}
