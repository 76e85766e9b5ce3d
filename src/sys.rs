// SPDX-License-Identifier: GPL-2.0
//! Small safe wrappers around the kernel interfaces optprobe uses: unexported
//! symbols, text patching, trampoline pages and per-CPU counters.

use crate::bindings;
use core::cell::UnsafeCell;
use core::ffi::{c_char, c_void, CStr};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::error::{code, Error};
use kernel::prelude::*;

/// Unexported kernel symbols, resolved once at load through `kallsyms_lookup_name`.
/// (The hit path's asm reads the per-CPU ones from each probe's own copies:
/// `Probe::pcpu_current_kprobe`.)
pub(crate) struct Symbols {
    pub(crate) patch_text: *mut c_void,
    pub(crate) insn_copy: *mut c_void,
    pub(crate) vmalloc_range: *mut c_void,
    pub(crate) text_mutex: *mut bindings::mutex,
    pub(crate) get_kprobe: *mut c_void,
    /// `DEFINE_PER_CPU(struct kprobe *, current_kprobe)`.
    pub(crate) current_kprobe: *mut c_void,
    /// `DEFINE_PER_CPU(struct kprobe_ctlblk, kprobe_ctlblk)`.
    pub(crate) kprobe_ctlblk: *mut c_void,
    pub(crate) lookup_size_offset: *mut c_void,
    /// `int kptr_restrict` (lib/vsprintf.c).
    pub(crate) kptr_restrict: *const core::ffi::c_int,
    /// `static DEFINE_MUTEX(kprobe_mutex)` (kernel/kprobes.c).
    kprobe_mutex: *mut bindings::mutex,
    /// `static bool kprobes_all_disarmed`, written under `kprobe_mutex`.
    kprobes_all_disarmed: *const bool,
    /// The kernel runs at EL2 (VHE): the per-CPU offset is in tpidr_el2,
    /// not tpidr_el1, and pstate's mode is EL2h.
    pub(crate) percpu_el2: bool,
    /// `set_memory_ro`, `set_memory_x` (arch/arm64/mm/pageattr.c).
    set_memory_ro: *mut c_void,
    set_memory_x: *mut c_void,
    /// `kallsyms_lookup_name`, for control-file targets.
    lookup_name: *mut c_void,
    /// `static struct hlist_head kprobe_table[]` and its size in bytes.
    kprobe_table: *mut c_void,
    kprobe_table_len: usize,
    /// The core's pre-handlers: `aggr_pre_handler` (an aggregate's) and the
    /// foreign ones optprobe may run on the optimized path (0 when this
    /// kernel has none: no kprobe_events, no kretprobes).
    pub(crate) aggr_pre_handler: usize,
    pub(crate) kprobe_dispatcher: usize,
    pub(crate) pre_handler_kretprobe: usize,
    /// BTI landing pads are enforced in kernel text.
    pub(crate) bti_enforced: bool,
}

impl Symbols {
    /// Are all kprobes disarmed right now? A lockless read for the hit
    /// path, which then acts as the BRK path would have a moment earlier or
    /// later; decisions that write take [`KprobeLock::all_disarmed`].
    #[inline(always)]
    pub(crate) fn all_disarmed_now(&self) -> bool {
        // SAFETY: a kernel `bool` that lives as long as the kernel.
        unsafe { core::ptr::read_volatile(self.kprobes_all_disarmed) }
    }
}

/// Write-once holder for [`Symbols`].
///
/// # Invariants
///
/// `value` is initialised whenever `ready` is true, and never written after.
struct SymbolsCell {
    ready: AtomicBool,
    value: UnsafeCell<core::mem::MaybeUninit<Symbols>>,
}

// SAFETY: `value` is written once, before `ready` is published with Release,
// and only read after `ready` is observed with Acquire.
unsafe impl Sync for SymbolsCell {}

static SYMBOLS: SymbolsCell = SymbolsCell {
    ready: AtomicBool::new(false),
    value: UnsafeCell::new(core::mem::MaybeUninit::uninit()),
};

/// The resolved symbols. Only called after [`resolve_symbols`] succeeded,
/// which module init does before anything else can run.
#[inline(always)]
pub(crate) fn syms() -> &'static Symbols {
    assert!(SYMBOLS.ready.load(Ordering::Acquire));
    // SAFETY: `ready` is true, so `value` is initialised (type invariant).
    unsafe { (*SYMBOLS.value.get()).assume_init_ref() }
}

/// Find `kallsyms_lookup_name` with a kprobe: registering one resolves the
/// symbol's address, which the kprobe then reports.
fn find_kallsyms_lookup_name() -> Result<*mut c_void> {
    let mut kp = bindings::kprobe::default();
    kp.symbol_name = c"kallsyms_lookup_name".as_ptr();
    // SAFETY: `kp` is a valid, zeroed kprobe that outlives its registration.
    let ret = unsafe { bindings::register_kprobe(&mut kp) };
    if ret < 0 {
        pr_err!("cannot find kallsyms_lookup_name via a kprobe ({})\n", ret);
        return Err(Error::from_errno(ret));
    }
    let addr = kp.addr.cast::<c_void>();
    // SAFETY: `kp` was registered above.
    unsafe { bindings::unregister_kprobe(&mut kp) };
    Ok(addr)
}

/// `KPROBE_TABLE_SIZE` of kernel/kprobes.c (`1 << KPROBE_HASH_BITS`, 6 bits
/// since 2.6).
const KPROBE_TABLE_SIZE: usize = 64;

/// A symbol this kernel may not have (a config option turned it off).
fn lookup_optional(lookup_name: *mut c_void, name: &CStr) -> usize {
    // SAFETY: `lookup_name` is kallsyms_lookup_name; `name` is NUL-terminated.
    let addr = unsafe { bindings::optprobe_call_kallsyms_lookup_name(lookup_name, name.as_ptr()) };
    // CAST: a kernel address (or 0).
    addr as usize
}

fn lookup(lookup_name: *mut c_void, name: &CStr) -> Result<*mut c_void> {
    // SAFETY: `lookup_name` is kallsyms_lookup_name; `name` is NUL-terminated.
    let addr = unsafe { bindings::optprobe_call_kallsyms_lookup_name(lookup_name, name.as_ptr()) };
    if addr == 0 {
        pr_err!("kernel symbol {} not found; cannot load\n", name.to_str().unwrap_or("?"));
        return Err(code::ENOENT);
    }
    // CAST: a kernel address.
    Ok(addr as *mut c_void)
}

/// Resolve every unexported symbol; fails naming the first one missing.
pub(crate) fn resolve_symbols() -> Result {
    if SYMBOLS.ready.load(Ordering::Acquire) {
        return Ok(());
    }
    let k = find_kallsyms_lookup_name()?;
    let symbols = Symbols {
        patch_text: lookup(k, c"aarch64_insn_patch_text")?,
        insn_copy: lookup(k, c"aarch64_insn_copy")?,
        vmalloc_range: lookup(k, c"__vmalloc_node_range_noprof")?,
        text_mutex: lookup(k, c"text_mutex")?.cast(),
        get_kprobe: lookup(k, c"get_kprobe")?,
        current_kprobe: lookup(k, c"current_kprobe")?,
        kprobe_ctlblk: lookup(k, c"kprobe_ctlblk")?,
        lookup_size_offset: lookup(k, c"kallsyms_lookup_size_offset")?,
        kptr_restrict: lookup(k, c"kptr_restrict")?.cast(),
        kprobe_mutex: lookup(k, c"kprobe_mutex")?.cast(),
        kprobes_all_disarmed: lookup(k, c"kprobes_all_disarmed")?.cast(),
        // SAFETY: a final capability, valid after boot.
        percpu_el2: unsafe { bindings::optprobe_percpu_in_tpidr_el2() },
        set_memory_ro: lookup(k, c"set_memory_ro")?,
        set_memory_x: lookup(k, c"set_memory_x")?,
        lookup_name: k,
        kprobe_table: lookup(k, c"kprobe_table")?,
        kprobe_table_len: 0,
        // CAST: function addresses, compared with kprobes' pre_handler.
        aggr_pre_handler: lookup(k, c"aggr_pre_handler")? as usize,
        kprobe_dispatcher: lookup_optional(k, c"kprobe_dispatcher"),
        pre_handler_kretprobe: lookup_optional(k, c"pre_handler_kretprobe"),
        // SAFETY: a final boot capability.
        bti_enforced: unsafe { bindings::optprobe_bti_enforced() },
    };
    let mut symbols = symbols;
    let (mut size, mut offset) = (0, 0);
    // SAFETY: kallsyms_lookup_size_offset with valid out-params.
    let sized = unsafe {
        bindings::optprobe_call_lookup_size_offset(symbols.lookup_size_offset, symbols.kprobe_table as _, &mut size, &mut offset)
    };
    // The table is `1 << KPROBE_HASH_BITS` list heads (a pointer each); the
    // constant is private to kernel/kprobes.c. kallsyms cannot size it
    // exactly (its size is the gap to the next symbol: alignment, KASAN
    // redzones), but it proves the table is at least that big.
    let len = KPROBE_TABLE_SIZE * core::mem::size_of::<usize>();
    // CAST: a small size.
    if sized == 0 || offset != 0 || (size as usize) < len {
        pr_err!("kprobe_table is not the {} list heads this module walks; cannot load\n", KPROBE_TABLE_SIZE);
        return Err(code::ENOENT);
    }
    symbols.kprobe_table_len = len;
    // SAFETY: `ready` is false and module init is single-threaded, so nobody
    // reads `value` yet.
    unsafe { (*SYMBOLS.value.get()).write(symbols) };
    // INVARIANT: `value` was initialised just above.
    SYMBOLS.ready.store(true, Ordering::Release);
    Ok(())
}

/// Number of `stop_machine` text-patch batches issued.
pub(crate) static STOP_MACHINE_CALLS: AtomicU64 = AtomicU64::new(0);

/// Proof that `cpus_read_lock()` and `text_mutex` are held, in kprobes' order.
///
/// # Invariants
///
/// While a `TextLock` exists, the current task holds both locks.
pub(crate) struct TextLock(());

impl TextLock {
    pub(crate) fn new() -> Self {
        // SAFETY: process context (all callers may sleep); `text_mutex` is
        // the kernel's, resolved at load.
        unsafe {
            bindings::optprobe_cpus_read_lock();
            bindings::optprobe_mutex_lock(syms().text_mutex);
        }
        // INVARIANT: both locks were just taken.
        TextLock(())
    }

    /// Patch live text, one `stop_machine` for the whole batch.
    pub(crate) fn patch_batch(&self, addrs: &mut [*mut c_void], insns: &mut [u32]) -> Result {
        assert_eq!(addrs.len(), insns.len());
        if addrs.is_empty() {
            return Ok(());
        }
        // Test builds: write only the first `limit` entries, then fail.
        let limit = crate::test_hooks::patch_limit().filter(|n| *n < addrs.len());
        if limit == Some(0) {
            return Err(code::EFAULT);
        }
        STOP_MACHINE_CALLS.fetch_add(1, Ordering::Relaxed);
        // CAST: batches are bounded by the caller far below i32::MAX.
        let count = limit.unwrap_or(addrs.len()) as i32;
        // SAFETY: `self` proves cpus_read_lock + text_mutex (type invariant);
        // the arrays are valid for `count` entries; each address is probed
        // kernel text owned by a registered kprobe of ours.
        let ret = unsafe {
            bindings::optprobe_call_patch_text(
                syms().patch_text,
                addrs.as_mut_ptr(),
                insns.as_mut_ptr(),
                count,
            )
        };
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        if limit.is_some() {
            pr_info!("test hook: text patching failed after {} of {} entries\n", count, addrs.len());
            return Err(code::EFAULT);
        }
        Ok(())
    }

    /// Write `bytes` into trampoline memory no CPU can reach yet (`_nosync`).
    ///
    /// # Safety
    ///
    /// `dst..dst + bytes.len()` must lie in a trampoline page of ours, and no
    /// live branch may lead into it.
    pub(crate) unsafe fn write_unreachable(&self, dst: usize, bytes: &[u8]) {
        // SAFETY: per the function's contract the range is our own,
        // unreachable trampoline memory; `self` proves text_mutex is held.
        unsafe {
            bindings::optprobe_call_insn_copy(
                syms().insn_copy,
                dst as *mut c_void,
                bytes.as_ptr() as *mut c_void,
                bytes.len(),
            )
        };
    }
}

impl Drop for TextLock {
    fn drop(&mut self) {
        // SAFETY: both locks are held (type invariant); released in reverse.
        unsafe {
            bindings::optprobe_mutex_unlock(syms().text_mutex);
            bindings::optprobe_cpus_read_unlock();
        }
    }
}

/// Proof that the kprobes core's `kprobe_mutex` is held: the core's flags and
/// `kprobes_all_disarmed` cannot change meanwhile. Taken before [`TextLock`]
/// when both are needed, the core's order.
///
/// # Invariants
///
/// While a `KprobeLock` exists, the current task holds `kprobe_mutex`.
pub(crate) struct KprobeLock(());

impl KprobeLock {
    pub(crate) fn new() -> Self {
        // SAFETY: process context; the kernel's mutex, resolved at load.
        unsafe { bindings::optprobe_mutex_lock(syms().kprobe_mutex) };
        // INVARIANT: just taken.
        KprobeLock(())
    }

    /// Are all kprobes disarmed (debugfs `kprobes/enabled` = 0)?
    pub(crate) fn all_disarmed(&self) -> bool {
        // SAFETY: written only under kprobe_mutex, which `self` proves held.
        unsafe { core::ptr::read_volatile(syms().kprobes_all_disarmed) }
    }
}

impl Drop for KprobeLock {
    fn drop(&mut self) {
        // SAFETY: held (type invariant).
        unsafe { bindings::optprobe_mutex_unlock(syms().kprobe_mutex) };
    }
}

/// Call `f` on every kprobe hashed in the core's table (aggregates, not their
/// children), under `kprobe_mutex` (`_core` proves it held); `f` returns
/// false to stop early.
pub(crate) fn for_each_hashed_kprobe<F: FnMut(*mut bindings::kprobe) -> bool>(_core: &KprobeLock, mut f: F) {
    unsafe extern "C" fn visit<G: FnMut(*mut bindings::kprobe) -> bool>(ctx: *mut c_void, kp: *mut bindings::kprobe) -> core::ffi::c_int {
        // SAFETY: `ctx` is the `&mut F` passed below, live for the walk.
        let f = unsafe { &mut *ctx.cast::<G>() };
        core::ffi::c_int::from(!f(kp))
    }
    let s = syms();
    // SAFETY: the core's table and size, walked under kprobe_mutex (the
    // lock that writes it); `visit` gets back the `&mut F` we pass.
    unsafe {
        bindings::optprobe_walk_kprobe_table(s.kprobe_table, s.kprobe_table_len as _, Some(visit::<F>), (&mut f as *mut F).cast())
    };
}

/// The address of kernel symbol `name` (any symbol kallsyms knows), if any.
pub(crate) fn lookup_symbol(name: &str) -> Option<usize> {
    let mut buf = [0u8; 130];
    if name.len() >= buf.len() {
        return None;
    }
    buf[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: `buf` is NUL-terminated (zeroed past `name`).
    let name = unsafe { CStr::from_bytes_with_nul_unchecked(&buf[..=name.len()]) };
    match lookup_optional(syms().lookup_name, name) {
        0 => None,
        addr => Some(addr),
    }
}

/// Read one instruction word of kernel text.
///
/// # Safety
///
/// `addr` must be 4-byte aligned, mapped kernel text (e.g. a registered
/// kprobe's address, or inside a symbol that contains one).
pub(crate) unsafe fn read_insn(addr: usize) -> u32 {
    // SAFETY: per the function's contract.
    u32::from_le(unsafe { core::ptr::read_volatile(addr as *const u32) })
}

/// Start and size of the symbol containing `addr`, if any.
pub(crate) fn symbol_bounds(addr: usize) -> Option<(usize, usize)> {
    let mut size = 0;
    let mut offset = 0;
    // SAFETY: the function is kallsyms_lookup_size_offset; out-params are valid.
    let found = unsafe {
        bindings::optprobe_call_lookup_size_offset(
            syms().lookup_size_offset,
            addr as _,
            &mut size,
            &mut offset,
        )
    };
    // CAST: kernel addresses and sizes fit usize.
    (found != 0).then(|| (addr - offset as usize, size as usize))
}

/// Format `addr` as `symbol+0xoff` into `out`; returns the bytes written.
pub(crate) fn symbolize(addr: usize, out: &mut [u8; bindings::OPTPROBE_SYMBOL_BUF as usize]) -> usize {
    // SAFETY: `out` has at least KSYM_SYMBOL_LEN bytes (checked in the glue),
    // as sprint_symbol requires.
    let len = unsafe { bindings::sprint_symbol(out.as_mut_ptr().cast::<c_char>(), addr as _) };
    // CAST: sprint_symbol returns a length within the buffer.
    let len = len.max(0) as usize;
    // Drop the "/size" and " [module]" parts: keep "symbol+0xoff".
    out[..len].iter().position(|c| *c == b'/').unwrap_or(len)
}

/// May the reading task see kernel addresses? The same rule as `%pK`:
/// `kptr_restrict` 0 shows them (the listing is root only anyway), 1 only to
/// readers with CAP_SYSLOG, 2 to nobody.
pub(crate) fn show_kernel_addresses() -> bool {
    // SAFETY: `kptr_restrict` is the kernel's int, resolved at load; a racy
    // read of a sysctl is what %pK does as well.
    match unsafe { core::ptr::read_volatile(syms().kptr_restrict) } {
        0 => true,
        // SAFETY: plain capability check on `current`.
        1 => unsafe { bindings::optprobe_has_syslog() },
        _ => false,
    }
}

/// Allocate one trampoline page, read-only and executable, inside `[lo, hi)`,
/// mapped as kprobes maps its own instruction pages (`alloc_insn_page`):
/// `set_memory_rox` after the allocation, which makes the linear-map alias
/// read-only too (`rodata=full`) and sets the BTI guard bit. On free,
/// `VM_FLUSH_RESET_PERMS` restores the alias.
pub(crate) fn alloc_tramp_page(lo: usize, hi: usize) -> Option<usize> {
    let s = syms();
    // SAFETY: the function is __vmalloc_node_range_noprof; the glue passes
    // PAGE_SIZE, PAGE_KERNEL_ROX and VM_FLUSH_RESET_PERMS.
    let page = unsafe { bindings::optprobe_call_vmalloc_range(s.vmalloc_range, lo as _, hi as _) };
    if page.is_null() {
        return None;
    }
    // SAFETY: `page` is our fresh single-page VM_ALLOC area, as
    // set_memory_ro/x require; nothing points into it yet.
    let ret = unsafe { bindings::optprobe_call_set_memory_rox(s.set_memory_ro, s.set_memory_x, page as _) };
    if ret < 0 {
        pr_warn!("trampoline page: set_memory_rox failed ({})\n", ret);
        // SAFETY: fresh page, never reachable.
        unsafe { bindings::vfree(page) };
        return None;
    }
    // CAST: pointer to address.
    Some(page as usize)
}

/// Free a trampoline page.
///
/// # Safety
///
/// `page` came from [`alloc_tramp_page`], and no branch into it is live and no
/// task can be inside it (after `synchronize_rcu_tasks()`).
pub(crate) unsafe fn free_tramp_page(page: usize) {
    // SAFETY: per the function's contract.
    unsafe { bindings::vfree(page as *const c_void) };
}

/// The range trampoline pages may be taken from: modules and vmalloc space.
pub(crate) fn tramp_limits() -> (usize, usize) {
    // SAFETY: plain constant getters.
    unsafe {
        (
            bindings::optprobe_modules_vaddr() as usize,
            bindings::optprobe_vmalloc_end() as usize,
        )
    }
}

/// Does the kernel run with PSTATE.PAN set (the CPU has PAN and the kernel
/// enabled it)?
pub(crate) fn kernel_uses_pan() -> bool {
    // SAFETY: a final-capability check, valid after boot.
    unsafe { bindings::optprobe_has_pan() }
}

/// Is pseudo-NMI priority masking (ICC_PMR_EL1) in use?
pub(crate) fn uses_irq_prio_masking() -> bool {
    // SAFETY: a final-capability check, valid after boot.
    unsafe { bindings::optprobe_uses_prio_masking() }
}

/// Take a reference on this module: orphaned trampolines call into it.
pub(crate) fn pin_this_module() {
    // SAFETY: a module always holds a reference on itself while running.
    unsafe { bindings::optprobe_pin_module() };
}

/// Drop the reference [`pin_this_module`] took.
pub(crate) fn unpin_this_module() {
    // SAFETY: paired with pin_this_module (the registry tracks it).
    unsafe { bindings::optprobe_unpin_module() };
}

pub(crate) fn page_size() -> usize {
    // SAFETY: constant getter.
    unsafe { bindings::optprobe_page_size() as usize }
}

/// A per-CPU 64-bit counter; increments touch only the local CPU's line.
///
/// # Invariants
///
/// `ptr` is a live `alloc_percpu(u64)` allocation until drop.
#[repr(transparent)]
pub(crate) struct PerCpuCounter {
    ptr: *mut c_void,
}

// SAFETY: the per-CPU area is shared by design; each CPU writes its own slot
// with preemption or interrupts disabled, readers only sum.
unsafe impl Send for PerCpuCounter {}
// SAFETY: as above.
unsafe impl Sync for PerCpuCounter {}

impl PerCpuCounter {
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: plain allocation; zeroed by the allocator.
        let ptr = unsafe { bindings::optprobe_alloc_percpu_u64() };
        if ptr.is_null() {
            return Err(code::ENOMEM);
        }
        // INVARIANT: just allocated.
        Ok(Self { ptr })
    }

    /// Add one on the CPU whose per-CPU offset is `cpu_offset` (the hit
    /// path reads it from tpidr). Callers run with preemption (or IRQs)
    /// disabled on that CPU.
    #[inline(always)]
    pub(crate) fn inc_at(&self, cpu_offset: usize) {
        // SAFETY: `ptr` is live (invariant); this CPU's slot (the per-CPU
        // pointer plus this CPU's offset, as this_cpu_ptr computes it) is
        // only written by this CPU, and the caller keeps us on it.
        unsafe {
            let slot = (self.ptr as usize).wrapping_add(cpu_offset) as *mut u64;
            slot.write_volatile(slot.read_volatile().wrapping_add(1));
        }
    }

    pub(crate) fn sum(&self) -> u64 {
        // SAFETY: constant getter.
        let cpus = unsafe { bindings::optprobe_nr_cpu_ids() };
        let mut total = 0u64;
        for cpu in 0..cpus {
            // SAFETY: `cpu` < nr_cpu_ids; possible CPUs have a slot.
            unsafe {
                if bindings::optprobe_cpu_possible(cpu) != 0 {
                    let slot = bindings::optprobe_per_cpu_ptr(self.ptr, cpu).cast::<u64>();
                    total = total.wrapping_add(slot.read_volatile());
                }
            }
        }
        total
    }
}

impl Drop for PerCpuCounter {
    fn drop(&mut self) {
        // SAFETY: `ptr` is live (invariant) and freed once.
        unsafe { bindings::free_percpu(self.ptr) };
    }
}

/// The sysfs directory `/sys/kernel/optprobe` with its attributes.
///
/// # Invariants
///
/// `kobj` is a live kobject with the optprobe attribute group until drop.
pub(crate) struct SysfsDir {
    kobj: *mut bindings::kobject,
}

// SAFETY: the kobject is only touched at creation and in drop.
unsafe impl Send for SysfsDir {}
// SAFETY: as above.
unsafe impl Sync for SysfsDir {}

impl SysfsDir {
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: kernel_kobj is the kernel's /sys/kernel kobject.
        let kobj = unsafe { bindings::kobject_create_and_add(c"optprobe".as_ptr(), bindings::kernel_kobj) };
        if kobj.is_null() {
            return Err(code::ENOMEM);
        }
        // SAFETY: `kobj` is live; the group is static in the glue.
        let ret = unsafe { bindings::sysfs_create_group(kobj, bindings::optprobe_attr_group()) };
        if ret < 0 {
            // SAFETY: drop the reference we own.
            unsafe { bindings::kobject_put(kobj) };
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: created with its group.
        Ok(Self { kobj })
    }
}

impl Drop for SysfsDir {
    fn drop(&mut self) {
        // SAFETY: live kobject with the group (invariant). Removal waits for
        // in-flight show/store calls to finish.
        unsafe {
            bindings::sysfs_remove_group(self.kobj, bindings::optprobe_attr_group());
            bindings::kobject_put(self.kobj);
        }
    }
}
