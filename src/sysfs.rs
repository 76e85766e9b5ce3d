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
use crate::probe::{self, Branch, Spec, State};
use crate::{bindings, control, registry, sys};
use core::ffi::{c_char, c_long, c_ulong, CStr};
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
}

static SYSFS_PROBES: Global<SysfsProbes> = Global::new();

/// Create the (empty) set of control-file probes, then apply `probes=`.
pub(crate) fn init() -> Result {
    SYSFS_PROBES.publish(KBox::pin_init(kernel::new_mutex!(SysfsProbes { list: KVec::new() }), GFP_KERNEL)?);
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

/// Detach every control-file probe and free the set (module exit, after the
/// sysfs files are gone).
pub(crate) fn exit() {
    if let Ok(probes) = SYSFS_PROBES.get() {
        let list = core::mem::replace(&mut probes.lock().list, KVec::new());
        detach_registrations(list);
    }
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

/// Run one control write: one or more lines, all adds or all removes, applied
/// all or nothing. Errors are logged with a one-line reason.
fn control_command(input: &[u8]) -> Result {
    let (kind, count) = control::check_write(input).map_err(|(line, e)| {
        pr_warn!("control: line {}: {}\n", line, e.as_str());
        Error::from_errno(-e.errno())
    })?;
    let mut probes = SYSFS_PROBES.get()?.lock();
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
            for &probe in handles.as_slice() {
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

#[no_mangle]
unsafe extern "C" fn optprobe_sysfs_control_store(buf: *const c_char, count: c_ulong) -> c_long {
    // SAFETY: sysfs hands us `count` readable bytes.
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count as usize) };
    match control_command(input) {
        Ok(()) => count as c_long,
        Err(e) => e.to_errno() as c_long,
    }
}

/// `stats`: one "key value" line per figure, for users and leak checks.
#[no_mangle]
unsafe extern "C" fn optprobe_sysfs_stats_show(buf: *mut c_char, size: c_ulong) -> c_long {
    let mut text = FixedStr::<256>::new();
    let counts = match registry::registry() {
        Ok(reg) => reg.lock().counts(),
        Err(e) => return e.to_errno() as c_long,
    };
    let _ = write!(
        text,
        "probes {}\noptimized {}\ndisabled {}\ntrampoline_pages {}\nstop_machine_calls {}\n",
        counts.probes,
        counts.optimized,
        counts.disabled,
        counts.trampoline_pages,
        sys::STOP_MACHINE_CALLS.load(Ordering::Relaxed)
    );
    // CAST: sysfs gives a page.
    let len = text.as_bytes().len().min(size as usize);
    // SAFETY: sysfs gives `size` writable bytes at `buf`.
    unsafe { ptr::copy_nonoverlapping(text.as_bytes().as_ptr(), buf.cast::<u8>(), len) };
    len as c_long
}

/// Bytes per listing record. Records are padded to this size so a line never
/// moves: hit counts change while a reader walks the file page by page, and
/// 16 records fill a page exactly, so page-sized reads never tear a line.
const RECORD: usize = 256;

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
    let probes = reg.probes();
    let total = probes.len() + 1;
    let count = (out.len() / RECORD).min(total.saturating_sub(first));
    let show = sys::show_kernel_addresses();
    let mut sym = [0u8; bindings::OPTPROBE_SYMBOL_BUF as usize];
    for i in 0..count {
        let index = first + i;
        let mut line = FixedStr::<512>::new();
        if index == 0 {
            let _ = write!(line, "# name symbol+offset address state hits missed reason");
        } else {
            let p = &probes[index - 1];
            let sym_len = sys::symbolize(p.addr, &mut sym).min(80);
            let sym_str = core::str::from_utf8(&sym[..sym_len]).unwrap_or("?");
            let (state, reason) = match (p.disabled, p.state) {
                (true, _) => ("disabled", "-"),
                (false, State::Optimized) => match probe::branch_state(p) {
                    Branch::Ours => ("optimized", "-"),
                    // Hits still arrive, through the BRK (or none while
                    // kprobes are globally disarmed); say so.
                    _ => ("kprobe", "branch replaced by kprobes/enabled toggle"),
                },
                (false, State::Kprobe) => ("kprobe", p.reason.as_str()),
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
