// SPDX-License-Identifier: GPL-2.0
//! Test-only delay points for deterministic race tests. They exist only in a
//! build made with `OPTPROBE_TEST_HOOKS=1` (Kbuild then passes
//! `--cfg optprobe_test_hooks` and `-DOPTPROBE_TEST_HOOKS`); `make test` builds
//! that way, the default `make` does not, and then [`delay`] is empty.
//!
//! In a hooked build, `/sys/module/optprobe/parameters/delay_at` names one
//! point and `delay_ms` how long to sleep there, and `patch_fail_after`
//! injects text-patching failures (src/glue.c). Calls only the glue.

/// A window a race test holds open.
#[derive(Clone, Copy)]
pub(crate) enum Point {
    /// Module exit, between its two teardown steps (probes and notifier).
    ExitWindow,
    /// `unoptimize`, after the site was read and before it is patched.
    UnoptimizeChecked,
    /// The foreign-kprobe poller, before it looks at the kprobe table.
    ForeignPoll,
    /// A module's GOING notification, after our probes in it are gone and
    /// before the kprobes core marks the others there gone.
    ModuleGoing,
}

#[cfg(optprobe_test_hooks)]
impl Point {
    fn name(self) -> &'static core::ffi::CStr {
        match self {
            Point::ExitWindow => c"exit_window",
            Point::UnoptimizeChecked => c"unoptimize_checked",
            Point::ForeignPoll => c"foreign_poll",
            Point::ModuleGoing => c"module_going",
        }
    }
}

/// Sleep at `point` if a test asked for it.
#[cfg(optprobe_test_hooks)]
pub(crate) fn delay(point: Point) {
    // SAFETY: a NUL-terminated static string; the glue only compares it and
    // may sleep (every caller is in process context).
    unsafe { crate::bindings::optprobe_test_delay(point.name().as_ptr()) };
}

/// Sleep at `point` if a test asked for it: not in this build.
#[cfg(not(optprobe_test_hooks))]
#[inline(always)]
pub(crate) fn delay(_point: Point) {}

/// Fault injection for text patching: `Some(n)` makes the next batch write
/// only its first `n` entries and fail (`patch_fail_after=n`).
#[cfg(optprobe_test_hooks)]
pub(crate) fn patch_limit() -> Option<usize> {
    // SAFETY: reads a module parameter.
    let n = unsafe { crate::bindings::optprobe_test_patch_limit() };
    // CAST: non-negative, small.
    (n >= 0).then_some(n as usize)
}

/// Fault injection for text patching: not in this build.
#[cfg(not(optprobe_test_hooks))]
#[inline(always)]
pub(crate) fn patch_limit() -> Option<usize> {
    None
}

/// Test builds also allow foreign pre-handlers named `optprobe_test_allowed_*`
/// (tests/ktest/foreign.c), so a test can put a handler that moves pc on
/// the optimized path.
#[cfg(optprobe_test_hooks)]
pub(crate) fn allowed_handler(pre: usize) -> bool {
    let mut name = [0u8; crate::bindings::OPTPROBE_SYMBOL_BUF as usize];
    let len = crate::sys::symbolize(pre, &mut name);
    let allowed = name[..len].starts_with(b"optprobe_test_allowed_");
    if allowed {
        // For the hit path, which cannot look names up.
        ALLOWED_TEST_HANDLER.store(pre, core::sync::atomic::Ordering::Relaxed);
    }
    allowed
}

/// The last test handler [`allowed_handler`] allowed.
#[cfg(optprobe_test_hooks)]
static ALLOWED_TEST_HANDLER: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// The hit path's form of [`allowed_handler`].
#[cfg(optprobe_test_hooks)]
#[inline(always)]
pub(crate) fn runnable_test_handler(pre: usize) -> bool {
    pre != 0 && pre == ALLOWED_TEST_HANDLER.load(core::sync::atomic::Ordering::Relaxed)
}

/// The hit path's form of [`allowed_handler`]: not in this build.
#[cfg(not(optprobe_test_hooks))]
#[inline(always)]
pub(crate) fn runnable_test_handler(_pre: usize) -> bool {
    false
}

/// Test-only handler allowlist: not in this build.
#[cfg(not(optprobe_test_hooks))]
#[inline(always)]
pub(crate) fn allowed_handler(_pre: usize) -> bool {
    false
}

/// Test builds: `o`/`-o` for an address from a test module (ktest
/// `entry_tokens` flips an address between BRK and ftrace delivery), done
/// at once as the control file does it. Returns 1 when the address is then
/// delivered through ftrace, 0 when not, or a negative errno.
#[cfg(optprobe_test_hooks)]
#[no_mangle]
pub(crate) extern "C" fn optprobe_test_request(addr: core::ffi::c_ulong, on: bool) -> core::ffi::c_int {
    // CAST: a kernel address.
    let addr = addr as usize;
    if let Err(e) = crate::foreign::request(addr, on) {
        return e.to_errno();
    }
    let Ok(reg) = crate::registry::registry() else { return -22 };
    let reg = reg.lock();
    let through_ftrace = reg.probes().iter().any(|p| p.addr == addr && p.state == crate::probe::State::Ftrace);
    core::ffi::c_int::from(through_ftrace)
}

/// Test builds: flip the text at an address delivered through ftrace
/// between the BRK (`brk`) and its landing pad (`entry::flip_text_for_test`).
/// 0 or a negative errno.
#[cfg(optprobe_test_hooks)]
#[no_mangle]
pub(crate) extern "C" fn optprobe_test_entry_text(addr: core::ffi::c_ulong, brk: bool) -> core::ffi::c_int {
    // CAST: a kernel address.
    let addr = addr as usize;
    let Ok(reg) = crate::registry::registry() else { return -22 };
    let reg = reg.lock();
    let Some(p) = reg.probes().iter().find(|p| p.addr == addr && p.state == crate::probe::State::Ftrace) else {
        return -2;
    };
    match crate::entry::flip_text_for_test(p, brk) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Test builds: the next BRK delivery a carrier's post-handler sees
/// unrecorded spins this long (ms) with interrupts masked, after the
/// handlers and before the call site: the one-instruction window between
/// `sym+0` and ftrace's call site, held open (ktest `entry_window`).
#[cfg(optprobe_test_hooks)]
static STALL_NEXT_BRK_MS: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

#[cfg(optprobe_test_hooks)]
#[inline(always)]
pub(crate) fn stall_unrecorded_brk() {
    let ms = STALL_NEXT_BRK_MS.swap(0, core::sync::atomic::Ordering::Relaxed);
    if ms != 0 {
        // SAFETY: busy-waits; callable with interrupts masked.
        unsafe { crate::bindings::optprobe_test_mdelay(ms) };
    }
}

#[cfg(not(optprobe_test_hooks))]
#[inline(always)]
pub(crate) fn stall_unrecorded_brk() {}

/// Test builds: arm [`stall_unrecorded_brk`] once; returns what was armed
/// before (0: the last one stalled a call).
#[cfg(optprobe_test_hooks)]
#[no_mangle]
pub(crate) extern "C" fn optprobe_test_stall_next_brk(ms: core::ffi::c_uint) -> core::ffi::c_uint {
    STALL_NEXT_BRK_MS.swap(ms, core::sync::atomic::Ordering::Relaxed)
}

/// Test builds: while set, a recorded BRK delivery that would resume at
/// `sym+4` skips the ftrace call site instead (`mov x9, x30` done, resume at
/// `sym+12`): the calls QEMU's multi-threaded TCG ran without reaching the
/// call site's callback (see hit.rs `resume_at_call_site`), made
/// deterministic. With the fix no recorded delivery resumes there, so ktest
/// `entry_tokens`, which sets it, loses nothing; without it, every one does.
#[cfg(optprobe_test_hooks)]
static SKIP_SITE_AFTER_BRK: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

#[cfg(optprobe_test_hooks)]
#[inline(always)]
pub(crate) fn skip_site_after_brk() -> bool {
    SKIP_SITE_AFTER_BRK.load(core::sync::atomic::Ordering::Relaxed)
}

#[cfg(not(optprobe_test_hooks))]
#[inline(always)]
pub(crate) fn skip_site_after_brk() -> bool {
    false
}

/// Test builds: set [`skip_site_after_brk`]; returns the previous setting.
#[cfg(optprobe_test_hooks)]
#[no_mangle]
pub(crate) extern "C" fn optprobe_test_skip_site_after_brk(on: bool) -> bool {
    SKIP_SITE_AFTER_BRK.swap(on, core::sync::atomic::Ordering::Relaxed)
}
