// SPDX-License-Identifier: GPL-2.0
//! `/sys/kernel/optprobe`: the `control` file (and the `probes=` parameter,
//! which takes the same lines), the `probes` listing and the `stats` file.
//! The attribute table is in src/glue.c; this file holds what each does.
//!
//! Calls `control` (syntax), `api` (probes are owned as registrations),
//! `registry` (listing and counts) and `sys` (symbols, `kptr_restrict`).

use crate::api::{detach_registrations, Registration};
use crate::fixed_str::FixedStr;
use crate::global::Global;
use crate::kvec::{push_or_return, swap_remove};
use crate::patch::{self, Branch};
use crate::probe::{self, Spec, State};
use crate::{bindings, control, foreign, registry, sys};
use core::ffi::{c_char, c_long, c_ulong, c_void, CStr};
use core::fmt::Write;
use core::ptr;
use core::sync::atomic::Ordering;
use kernel::error::{code, Error};
use kernel::prelude::*;

/// Most probes the control file will hold.
const MAX_SYSFS_PROBES: usize = 4096;

/// Probes made through the control file (and `probes=`), by name.
struct SysfsProbes {
    list: KVec<Registration>,
    /// Unfinished last lines of page-sized pieces, each waiting for the next
    /// piece of the same write, one per open file (a few writers at once).
    carries: [Carry; CARRIES],
    /// Age stamp for the next carry (the oldest is evicted when all are busy).
    stamp: u64,
}

/// Open files that may have a cut line pending at once.
const CARRIES: usize = 4;

/// The start of a line cut at a piece boundary.
#[derive(Clone, Copy)]
struct Carry {
    /// The open file it came from (0: free), and the offset the next piece
    /// starts at.
    file: usize,
    next: i64,
    stamp: u64,
    text: FixedStr<{ control::MAX_LINE + 1 }>,
}

impl Carry {
    const fn none() -> Self {
        Self { file: 0, next: 0, stamp: 0, text: FixedStr::new() }
    }
}

static SYSFS_PROBES: Global<SysfsProbes> = Global::new();

/// Create the (empty) set of control-file probes, then apply `probes=`.
pub(crate) fn init() -> Result {
    SYSFS_PROBES.publish(KBox::pin_init(
        kernel::new_mutex!(SysfsProbes { list: KVec::new(), carries: [Carry::none(); CARRIES], stamp: 0 }),
        GFP_KERNEL,
    )?);
    // SAFETY: the parameter buffer is NUL-terminated by moduleparam.
    let param = unsafe { CStr::from_ptr(ptr::addr_of!(bindings::optprobe_probes_param).cast::<c_char>()) }.to_bytes();
    for cmd in control::split_param(param) {
        if let Err(e) = control_command(cmd) {
            pr_err!("probes= entry '{}' refused\n", core::str::from_utf8(cmd).unwrap_or("?"));
            return Err(e);
        }
    }
    Ok(())
}

/// Detach every control-file probe (module exit, after the sysfs files are
/// gone).
pub(crate) fn detach_all() {
    if let Ok(probes) = SYSFS_PROBES.get() {
        let list = core::mem::replace(&mut probes.lock().list, KVec::new());
        detach_registrations(list);
    }
}

/// Free the (empty) set: module exit, once the module notifier is gone.
pub(crate) fn free() {
    SYSFS_PROBES.take();
}

/// Detach the control-file probes `pred` selects (module notifier), logging
/// each with its final hit count. Returns how many.
pub(crate) fn detach_where(mut pred: impl FnMut(&probe::Probe) -> bool) -> usize {
    let Ok(probes) = SYSFS_PROBES.get() else { return 0 };
    let mut probes = probes.lock();
    let mut going = KVec::new();
    let mut i = 0;
    while i < probes.list.len() {
        if !pred(probes.list.as_slice()[i].probe()) {
            i += 1;
            continue;
        }
        let Some(r) = swap_remove(&mut probes.list, i) else { break };
        pr_info!("probe '{}' removed with its module ({} hits)\n", r.probe().name.as_str(), r.probe().hits.sum());
        if let Err(r) = push_or_return(&mut going, r) {
            // Out of memory for the batch: this one goes on its own.
            drop(r);
        }
    }
    let n = going.len();
    detach_registrations(going);
    n
}

fn probe_name(r: &Registration) -> &[u8] {
    // The name never changes after attach.
    r.probe().name.as_bytes()
}

/// The spec for one `Add` command; `line` is only for messages.
fn add_spec(name: Option<&str>, target: control::Target<'_>, line: usize) -> Result<Spec> {
    let mut spec = Spec {
        symbol: FixedStr::new(),
        offset: 0,
        addr: 0,
        name: FixedStr::new(),
        handler: None,
        post_handler: None,
        data: ptr::null_mut(),
        carrier: false,
    };
    match target {
        control::Target::Symbol { symbol, offset } => {
            // CAST: kprobes takes 32-bit offsets and checks them against the symbol.
            if offset > u32::MAX as u64 {
                pr_warn!("control: line {}: offset too large\n", line);
                return Err(code::EINVAL);
            }
            spec.symbol = FixedStr::from_bytes(symbol.as_bytes());
            spec.offset = offset as usize;
        }
        // CAST: kernel addresses are 64-bit.
        control::Target::Address(addr) => spec.addr = addr as usize,
    }
    match name {
        Some(n) => spec.name = FixedStr::from_bytes(n.as_bytes()),
        None => {
            let _ = match target {
                control::Target::Symbol { symbol, offset } => write!(spec.name, "p_{}_{}", symbol, offset),
                control::Target::Address(addr) => write!(spec.name, "p_{:x}", addr),
            };
        }
    }
    Ok(spec)
}

/// The address an `o`/`-o` line names: inside a kernel text symbol, on an
/// instruction boundary (the parser checked the alignment).
fn request_address(target: control::Target<'_>, line: usize) -> Result<usize> {
    let addr = match target {
        control::Target::Symbol { symbol, offset } => {
            let Some(start) = sys::lookup_symbol(symbol) else {
                pr_warn!("control: line {}: unknown symbol '{}'\n", line, symbol);
                return Err(code::ENOENT);
            };
            // CAST: a 4-byte aligned offset; checked against the symbol below.
            let addr = start.wrapping_add(offset as usize);
            match sys::symbol_bounds(start) {
                Some((base, size)) if base == start && (offset as usize) < size => addr,
                _ => {
                    pr_warn!("control: line {}: offset {:#x} is outside '{}'\n", line, offset, symbol);
                    return Err(code::EINVAL);
                }
            }
        }
        // CAST: a kernel address.
        control::Target::Address(a) => a as usize,
    };
    if sys::symbol_bounds(addr).is_none() {
        pr_warn!("control: line {}: {:#x} is not in kernel text\n", line, addr);
        return Err(code::ENOENT);
    }
    Ok(addr)
}

/// Run one control write (`probes=` entry): see [`run_lines`].
fn control_command(input: &[u8]) -> Result {
    run_lines(&mut SYSFS_PROBES.get()?.lock(), input)
}

/// Run lines: one or more, all adds or all removes, applied all or nothing.
/// Errors are logged with a one-line reason.
fn run_lines(probes: &mut SysfsProbes, input: &[u8]) -> Result {
    let (kind, count) = control::check_write(input).map_err(|(line, e)| {
        pr_warn!("control: line {}: {}\n", line, e.as_str());
        Error::from_errno(-e.errno())
    })?;
    match kind {
        control::WriteKind::Remove => {
            let mut indices: KVec<usize> = KVec::with_capacity(count, GFP_KERNEL)?;
            let mut going = KVec::with_capacity(count, GFP_KERNEL)?;
            for (n, line) in control::command_lines(input).enumerate() {
                let Ok(control::Command::Remove { name }) = control::parse(line) else {
                    return Err(code::EINVAL);
                };
                let Some(i) = probes.list.as_slice().iter().position(|r| probe_name(r) == name.as_bytes()) else {
                    pr_warn!("control: line {}: no probe named '{}'\n", n + 1, name);
                    return Err(code::ENOENT);
                };
                if indices.as_slice().contains(&i) {
                    pr_warn!("control: line {}: '{}' named twice\n", n + 1, name);
                    return Err(code::EINVAL);
                }
                indices.push(i, GFP_KERNEL)?;
            }
            // Highest first, so swap_remove keeps the remaining indices valid.
            indices.as_mut_slice().sort_unstable_by(|a, b| b.cmp(a));
            for &i in indices.as_slice() {
                if let Some(r) = swap_remove(&mut probes.list, i) {
                    // Capacity reserved above: cannot fail.
                    let _ = going.push(r, GFP_KERNEL);
                }
            }
            // One text-patch batch and one RCU-tasks wait for all of them.
            detach_registrations(going);
            Ok(())
        }
        control::WriteKind::Request => {
            // Checked all first, then applied in order.
            let mut addrs: KVec<(usize, bool)> = KVec::with_capacity(count, GFP_KERNEL)?;
            for (n, line) in control::command_lines(input).enumerate() {
                let Ok(control::Command::Request { target, on }) = control::parse(line) else {
                    return Err(code::EINVAL);
                };
                addrs.push((request_address(target, n + 1)?, on), GFP_KERNEL)?;
            }
            for &(addr, on) in addrs.as_slice() {
                foreign::request(addr, on)?;
            }
            Ok(())
        }
        control::WriteKind::Add => {
            let mut specs: KVec<Spec> = KVec::with_capacity(count, GFP_KERNEL)?;
            for (n, line) in control::command_lines(input).enumerate() {
                let Ok(control::Command::Add { name, target }) = control::parse(line) else {
                    return Err(code::EINVAL);
                };
                let spec = add_spec(name, target, n + 1)?;
                let taken = probes.list.as_slice().iter().any(|r| probe_name(r) == spec.name.as_bytes())
                    || specs.as_slice().iter().any(|s| s.name.as_bytes() == spec.name.as_bytes());
                if taken {
                    pr_warn!("control: line {}: a probe named '{}' exists\n", n + 1, spec.name.as_str());
                    return Err(code::EEXIST);
                }
                specs.push(spec, GFP_KERNEL)?;
            }
            if probes.list.len() + count > MAX_SYSFS_PROBES {
                pr_warn!("control: at most {} probes\n", MAX_SYSFS_PROBES);
                return Err(code::ENOSPC);
            }
            // Reserve first: once attached, no failure may drop a probe.
            probes.list.reserve(count, GFP_KERNEL)?;
            let handles = registry::attach(specs.as_slice())?;
            for &registry::Attached { probe, .. } in handles.as_slice() {
                // SAFETY: a live probe, owned by this registration from now
                // on; sysfs probes have no handler data.
                let reg = unsafe { Registration::adopt(probe) };
                // Capacity reserved above: cannot fail.
                let _ = probes.list.push(reg, GFP_KERNEL);
            }
            Ok(())
        }
    }
}

/// One piece of a `control` write: at most a page, at `off` in the write,
/// `full` when it filled a page (so the write may go on). Its complete lines
/// run all or nothing, with the carried start of the first; an unfinished
/// last line of a full piece is carried into the next piece of the same
/// file. A piece with no command in it is fine within a longer write.
fn control_piece(file: usize, piece: &[u8], off: i64, full: bool) -> Result {
    let mut probes = SYSFS_PROBES.get()?.lock();
    let mine = probes.carries.iter().position(|c| c.file == file);
    let prefix = match mine {
        Some(i) if probes.carries[i].next == off => probes.carries[i].text,
        Some(i) => {
            // The same open file, written elsewhere than where its cut line
            // continues: that line can never be finished.
            let dropped = core::mem::replace(&mut probes.carries[i], Carry::none());
            pr_warn!("control: an unfinished line was dropped (write at {}, it continued at {}): '{}'\n",
                off, dropped.next, dropped.text.as_str());
            FixedStr::new()
        }
        None => FixedStr::new(),
    };
    // Allocate before touching the carry: an ENOMEM keeps it.
    let mut text: KVec<u8> = KVec::with_capacity(prefix.len() + piece.len(), GFP_KERNEL)?;
    text.extend_from_slice(prefix.as_bytes(), GFP_KERNEL)?;
    text.extend_from_slice(piece, GFP_KERNEL)?;
    if let Some(i) = mine {
        probes.carries[i] = Carry::none();
    }
    let input = text.as_slice();
    let run = control::split_piece(input, full).map_err(|e| {
        pr_warn!("control: {}\n", e.as_str());
        Error::from_errno(-e.errno())
    })?;
    let (now, later) = input.split_at(run);
    let within_a_write = off > 0 || !later.is_empty();
    if !(within_a_write && control::command_lines(now).next().is_none()) {
        run_lines(&mut probes, now)?;
    }
    if !later.is_empty() {
        let slot = match probes.carries.iter().position(|c| c.file == 0) {
            Some(free) => free,
            None => {
                // All busy: the oldest writer's cut line is given up.
                let oldest = (0..CARRIES).min_by_key(|&i| probes.carries[i].stamp).unwrap_or(0);
                pr_warn!("control: too many unfinished writes; dropped: '{}'\n", probes.carries[oldest].text.as_str());
                oldest
            }
        };
        probes.stamp = probes.stamp.wrapping_add(1);
        // CAST: piece lengths are at most a page.
        probes.carries[slot] = Carry { file, next: off + piece.len() as i64, stamp: probes.stamp, text: FixedStr::from_bytes(later) };
    }
    Ok(())
}

#[no_mangle]
unsafe extern "C" fn optprobe_sysfs_control_write(
    file: *mut c_void,
    buf: *const c_char,
    off: i64,
    count: c_ulong,
    full: bool,
) -> c_long {
    // SAFETY: kernfs hands us `count` readable bytes.
    let piece = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count as usize) };
    // CAST: the file pointer only identifies the open file.
    match control_piece(file as usize, piece, off, full) {
        Ok(()) => count as c_long,
        Err(e) => e.to_errno() as c_long,
    }
}

/// `stats`: one "key value" line per figure, for users and leak checks.
#[no_mangle]
unsafe extern "C" fn optprobe_sysfs_stats_show(buf: *mut c_char, size: c_ulong) -> c_long {
    let mut text = FixedStr::<512>::new();
    let (counts, foreign_sites, foreign_optimized, foreign_ftrace) = match registry::registry() {
        Ok(reg) => {
            let reg = reg.lock();
            let sites = match foreign::scan(&reg) {
                Ok(sites) => sites,
                Err(e) => return e.to_errno() as c_long,
            };
            let optimized = sites.as_slice().iter().filter(|s| s.state == "optimized").count();
            let ftrace = sites.as_slice().iter().filter(|s| s.state == "ftrace").count();
            (reg.counts(), sites.len(), optimized, ftrace)
        }
        Err(e) => return e.to_errno() as c_long,
    };
    let _ = write!(
        text,
        "probes {}\noptimized {}\ndisabled {}\norphans {}\ntrampoline_pages {}\nstop_machine_calls {}\n\
         foreign {}\nforeign_optimized {}\ncarriers {}\npc_changes {}\n\
         ftrace {}\nforeign_ftrace {}\nentry_records_lost {}\n",
        counts.probes,
        counts.optimized,
        counts.disabled,
        counts.orphans,
        counts.trampoline_pages,
        sys::STOP_MACHINE_CALLS.load(Ordering::Relaxed),
        foreign_sites,
        foreign_optimized,
        counts.carriers,
        crate::hit::PC_CHANGES.load(Ordering::Relaxed),
        counts.ftrace,
        foreign_ftrace,
        crate::hit::RECORDS_LOST.load(Ordering::Relaxed),
    );
    // CAST: sysfs gives a page.
    let len = text.as_bytes().len().min(size as usize);
    // SAFETY: sysfs gives `size` writable bytes at `buf`.
    unsafe { ptr::copy_nonoverlapping(text.as_bytes().as_ptr(), buf.cast::<u8>(), len) };
    len as c_long
}

/// Bytes per listing record. Records are padded to this size so a line never
/// moves: hit counts change while a reader walks the file page by page, and
/// 8 records fill a page exactly, so page-sized reads never tear a line.
/// 512 holds the longest line: a 64-byte name, an 80-byte symbol, two 20-digit
/// counts and the longest reason.
const RECORD: usize = 512;

/// Write `text` as one record: truncated to RECORD - 1 bytes, space padded,
/// newline terminated.
fn put_record(out: &mut [u8], text: &[u8]) {
    let len = text.len().min(RECORD - 1);
    out[..len].copy_from_slice(&text[..len]);
    out[len..RECORD - 1].fill(b' ');
    out[RECORD - 1] = b'\n';
}

/// Render records `first..first + count` of the listing (record 0 is the
/// header) into `out`, which holds `count` records. Returns how many exist.
fn render_records(first: usize, out: &mut [u8]) -> Result<usize> {
    let reg = registry::registry()?.lock();
    // Others' kprobes follow ours, one line per address.
    let sites = foreign::scan(&reg)?;
    let own = reg.listed();
    let total = own + sites.len() + 1;
    let count = (out.len() / RECORD).min(total.saturating_sub(first));
    let show = sys::show_kernel_addresses();
    let mut sym = [0u8; bindings::OPTPROBE_SYMBOL_BUF as usize];
    for i in 0..count {
        let index = first + i;
        let mut line = FixedStr::<512>::new();
        if index == 0 {
            let _ = write!(line, "# name symbol+offset address state hits missed reason");
        } else if let Some(site) = sites.as_slice().get((index - 1).wrapping_sub(own)).filter(|_| index > own) {
            let sym_len = sys::symbolize(site.addr, &mut sym).min(80);
            let sym_str = core::str::from_utf8(&sym[..sym_len]).unwrap_or("?");
            let _ = match site.owner {
                foreign::Owner::Handler(pre) => {
                    let mut name = [0u8; bindings::OPTPROBE_SYMBOL_BUF as usize];
                    let len = sys::symbolize(pre, &mut name).min(64);
                    let name = &name[..len];
                    // "kprobe_dispatcher+0x0" -> "kprobe_dispatcher"
                    let end = name.iter().position(|c| *c == b'+').unwrap_or(name.len());
                    write!(line, "@{}", core::str::from_utf8(&name[..end]).unwrap_or("?"))
                }
                foreign::Owner::Aggregate(n) => write!(line, "@aggr({})", n),
            };
            let _ = write!(
                line,
                " {} 0x{:016x} {} {} {} {}",
                sym_str,
                if show { site.addr } else { 0 },
                site.state,
                site.hits,
                site.missed,
                site.reason.to_str().unwrap_or("?")
            );
        } else {
            let Some(p) = reg.listed_at(index - 1) else { break };
            let sym_len = sys::symbolize(p.addr, &mut sym).min(80);
            let sym_str = core::str::from_utf8(&sym[..sym_len]).unwrap_or("?");
            let (state, reason) = match (p.disabled, p.state) {
                _ if p.gone => ("gone", p.reason.to_str().unwrap_or("?")),
                _ if p.orphaned => ("orphan", p.reason.to_str().unwrap_or("?")),
                (true, _) => ("disabled", "-"),
                (false, State::Optimized) => match patch::branch_state(p) {
                    Branch::Ours => ("optimized", "-"),
                    // Hits still arrive, through the BRK (or none while
                    // kprobes are globally disarmed); say so.
                    _ => ("kprobe", "branch replaced by kprobes/enabled toggle"),
                },
                (false, State::Kprobe) => ("kprobe", p.reason.to_str().unwrap_or("?")),
                (false, State::Ftrace) => ("ftrace", "-"),
            };
            let _ = write!(
                line,
                "{} {} 0x{:016x} {} {} {} {}",
                p.name.as_str(),
                sym_str,
                if show { p.addr } else { 0 },
                state,
                p.hits.sum(),
                p.kp.nmissed,
                reason
            );
        }
        put_record(&mut out[i * RECORD..(i + 1) * RECORD], line.as_bytes());
    }
    Ok(count)
}

#[no_mangle]
unsafe extern "C" fn optprobe_sysfs_probes_read(buf: *mut c_char, offset: i64, count: c_ulong) -> c_long {
    // CAST: sysfs offsets are non-negative; counts are at most a page.
    let (offset, count) = (offset.max(0) as usize, count as usize);
    let first = offset / RECORD;
    let skip = offset % RECORD;
    // Whole records covering [offset, offset + count).
    let records = (skip + count).div_ceil(RECORD);
    let mut text = match KVec::from_elem(0u8, records * RECORD, GFP_KERNEL) {
        Ok(t) => t,
        Err(_) => return -12,
    };
    let made = match render_records(first, text.as_mut_slice()) {
        Ok(n) => n,
        Err(e) => return e.to_errno() as c_long,
    };
    let end = (made * RECORD).min(skip + count);
    let len = end.saturating_sub(skip);
    // SAFETY: sysfs gives `count` writable bytes at `buf`; `len <= count`.
    unsafe { ptr::copy_nonoverlapping(text.as_ptr().add(skip), buf.cast::<u8>(), len) };
    len as c_long
}
