// SPDX-License-Identifier: GPL-2.0
//! The C ABI of include/optprobe.h, in the header's order. Each function
//! validates its arguments, logs a refusal in one `pr_warn`, and calls
//! `registry`; exports are in src/glue.c.

use crate::fixed_str::FixedStr;
use crate::probe::{Probe, RawHandler, Spec, State};
use crate::patch;
use crate::registry::{self, Key};
use crate::{control, sys, tramp};
use core::ffi::{c_char, c_int, c_ulong, c_void, CStr};
use core::ptr;
use core::sync::atomic::Ordering;
use kernel::error::code;
use kernel::prelude::*;

/// Mirror of `struct optprobe_desc` in include/optprobe.h.
#[repr(C)]
pub(crate) struct OptprobeDesc {
    symbol: *const c_char,
    offset: c_ulong,
    addr: *mut c_void,
    name: *const c_char,
    handler: Option<RawHandler>,
    post_handler: Option<RawHandler>,
    data: *mut c_void,
    probe: Handle,
}

/// `struct optprobe *` as callers hold it: the probe's id, never reused, so a
/// stale handle can never name a newer probe at a recycled address. Odd, so
/// it is never a valid pointer either.
type Handle = *mut c_void;

fn handle_of(id: u64) -> Handle {
    // CAST: an opaque token, never dereferenced.
    ((id << 1) | 1) as usize as Handle
}

fn key(handle: Handle) -> Key {
    // CAST: the token handle_of made (any other value matches no probe).
    Key::Id((handle as usize as u64) >> 1)
}

/// Read a C string argument, refusing over-long ones.
///
/// # Safety
///
/// `s` is null or a NUL-terminated string.
unsafe fn c_arg<'a>(s: *const c_char, max: usize) -> Result<Option<&'a [u8]>> {
    if s.is_null() {
        return Ok(None);
    }
    // SAFETY: per the function's contract.
    let bytes = unsafe { CStr::from_ptr(s) }.to_bytes();
    if bytes.is_empty() || bytes.len() > max {
        return Err(code::EINVAL);
    }
    Ok(Some(bytes))
}

/// Validate one descriptor into a [`Spec`].
///
/// # Safety
///
/// `desc` points to a valid `struct optprobe_desc`.
unsafe fn spec_from_desc(desc: &OptprobeDesc) -> Result<Spec> {
    // SAFETY: per the function's contract the strings are C strings or null.
    let symbol = unsafe { c_arg(desc.symbol, control::MAX_SYMBOL) }.map_err(|e| {
        pr_warn!("register: symbol empty or longer than {} bytes\n", control::MAX_SYMBOL);
        e
    })?;
    // SAFETY: as above.
    let name = unsafe { c_arg(desc.name, control::MAX_NAME) }.map_err(|e| {
        pr_warn!("register: name empty or longer than {} bytes\n", control::MAX_NAME);
        e
    })?;
    if symbol.is_none() && desc.addr.is_null() {
        pr_warn!("register: neither symbol nor addr given\n");
        return Err(code::EINVAL);
    }
    if desc.handler.is_none() {
        pr_warn!("register: no handler\n");
        return Err(code::EINVAL);
    }
    // CAST: offsets beyond u32 cannot be inside a kernel function.
    if desc.offset % 4 != 0 || desc.offset > u32::MAX as c_ulong {
        pr_warn!("register: offset {:#x} is not a 4-byte aligned offset\n", desc.offset);
        return Err(code::EINVAL);
    }
    Ok(Spec {
        symbol: FixedStr::from_bytes(symbol.unwrap_or(b"")),
        offset: desc.offset as usize,
        addr: desc.addr as usize,
        name: FixedStr::from_bytes(name.unwrap_or(b"api")),
        handler: desc.handler,
        post_handler: desc.post_handler,
        data: desc.data,
        carrier: false,
    })
}

/// C ABI: register one probe.
///
/// # Safety
///
/// `desc` points to a valid descriptor (C ABI contract).
#[no_mangle]
pub(crate) unsafe extern "C" fn optprobe_register(desc: *mut OptprobeDesc) -> c_int {
    // SAFETY: one descriptor is a batch of one.
    unsafe { optprobe_register_batch(desc, 1) }
}

/// C ABI: register `n` probes, all or nothing.
///
/// # Safety
///
/// `descs` points to `n` valid descriptors (C ABI contract).
#[no_mangle]
pub(crate) unsafe extern "C" fn optprobe_register_batch(descs: *mut OptprobeDesc, n: u32) -> c_int {
    if descs.is_null() || n == 0 {
        pr_warn!("register: empty batch\n");
        return -22;
    }
    // SAFETY: per the C ABI contract.
    let descs = unsafe { core::slice::from_raw_parts_mut(descs, n as usize) };
    let mut specs = match KVec::with_capacity(descs.len(), GFP_KERNEL) {
        Ok(v) => v,
        Err(_) => return -12,
    };
    for desc in descs.iter() {
        // SAFETY: valid descriptor per the C ABI contract.
        match unsafe { spec_from_desc(desc) } {
            Ok(spec) => {
                if specs.push(spec, GFP_KERNEL).is_err() {
                    return -12;
                }
            }
            Err(e) => return e.to_errno(),
        }
    }
    match registry::attach(specs.as_slice()) {
        Ok(handles) => {
            for (desc, h) in descs.iter_mut().zip(handles.as_slice()) {
                // The id was read under the registry lock: the probe may be
                // gone by now (its module unloading), the id stays unique.
                desc.probe = handle_of(h.id);
            }
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// C ABI: unregister one probe.
///
/// # Safety
///
/// `probe` is a handle from optprobe_register*.
#[no_mangle]
pub(crate) unsafe extern "C" fn optprobe_unregister(probe: Handle) {
    registry::detach(&[key(probe)]);
}

/// C ABI: unregister `n` probes in one batch.
///
/// # Safety
///
/// `probes` points to `n` handles from optprobe_register*.
#[no_mangle]
pub(crate) unsafe extern "C" fn optprobe_unregister_batch(probes: *mut Handle, n: u32) {
    if probes.is_null() {
        return;
    }
    // SAFETY: per the C ABI contract.
    let handles = unsafe { core::slice::from_raw_parts(probes, n as usize) };
    let mut keys = KVec::new();
    if keys.reserve(handles.len(), GFP_KERNEL).is_err() {
        // Out of memory: one at a time.
        for &h in handles {
            registry::detach(&[key(h)]);
        }
        return;
    }
    for &h in handles {
        // Capacity reserved above: cannot fail.
        let _ = keys.push(key(h), GFP_KERNEL);
    }
    registry::detach(keys.as_slice());
}

/// C ABI: disable a probe; the probed text is restored. 0 or -errno.
#[no_mangle]
pub(crate) extern "C" fn optprobe_disable(probe: Handle) -> c_int {
    registry::set_enabled(key(probe), false).err().map_or(0, |e| e.to_errno())
}

/// C ABI: enable a disabled probe (optimized again if it can be). 0 or -errno.
#[no_mangle]
pub(crate) extern "C" fn optprobe_enable(probe: Handle) -> c_int {
    registry::set_enabled(key(probe), true).err().map_or(0, |e| e.to_errno())
}

/// C ABI: handler runs so far; 0 for an unknown probe.
#[no_mangle]
pub(crate) extern "C" fn optprobe_hits(probe: Handle) -> c_ulong {
    // CAST: counts fit in an unsigned long on arm64.
    registry::with_probe(key(probe), |p| p.hits.sum() as c_ulong).unwrap_or(0)
}

/// C ABI: hits skipped because another probe was active on the CPU.
#[no_mangle]
pub(crate) extern "C" fn optprobe_missed(probe: Handle) -> c_ulong {
    registry::with_probe(key(probe), |p| p.kp.nmissed as c_ulong).unwrap_or(0)
}

/// C ABI: `enum optprobe_state` of a probe, or `-EINVAL` for an unknown one.
#[no_mangle]
pub(crate) extern "C" fn optprobe_state(probe: Handle) -> c_int {
    registry::with_probe(key(probe), |p| match (p.disabled, p.state) {
        _ if p.gone => 3,
        (true, _) => 2,
        (false, State::Optimized) => 1,
        (false, State::Kprobe) => 0,
        (false, State::Ftrace) => 4,
    })
    .unwrap_or(-22)
}

/// C ABI: why a probe is not optimized, or NULL when it is.
#[no_mangle]
pub(crate) extern "C" fn optprobe_reason(probe: Handle) -> *const c_char {
    // Reasons are static strings: valid after unregister too.
    registry::with_probe(key(probe), |p| match p.state {
        State::Optimized | State::Ftrace => ptr::null(),
        State::Kprobe => p.reason.as_ptr(),
    })
    .unwrap_or(ptr::null())
}

/// C ABI: `stop_machine` text-patch batches issued so far.
#[no_mangle]
pub(crate) extern "C" fn optprobe_stop_machine_count() -> c_ulong {
    sys::STOP_MACHINE_CALLS.load(Ordering::Relaxed) as c_ulong
}

/// Mirror of `struct optprobe_stats` in include/optprobe.h.
#[repr(C)]
pub(crate) struct OptprobeStats {
    probes: c_ulong,
    optimized: c_ulong,
    trampoline_pages: c_ulong,
    stop_machine_calls: c_ulong,
    slot_bytes: u32,
    template_bytes: u32,
    probe_bytes: u32,
}

/// C ABI: fill `stats`.
///
/// # Safety
///
/// `stats` points to a writable `struct optprobe_stats`.
#[no_mangle]
pub(crate) unsafe extern "C" fn optprobe_get_stats(stats: *mut OptprobeStats) {
    let (layout, _) = patch::template();
    let counts = registry::registry().map(|reg| reg.lock().counts()).unwrap_or_default();
    let value = OptprobeStats {
        probes: counts.probes as c_ulong,
        optimized: counts.optimized as c_ulong,
        trampoline_pages: counts.trampoline_pages as c_ulong,
        stop_machine_calls: sys::STOP_MACHINE_CALLS.load(Ordering::Relaxed) as c_ulong,
        // CAST: small compile-time sizes.
        slot_bytes: tramp::SLOT_SIZE as u32,
        template_bytes: layout.size as u32,
        probe_bytes: core::mem::size_of::<Probe>() as u32,
    };
    // SAFETY: per the C ABI contract.
    unsafe { stats.write(value) };
}
