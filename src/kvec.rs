// SPDX-License-Identifier: GPL-2.0
//! `KVec` helpers that 6.12's `kernel::alloc` lacks, written only with the
//! `KVec` API that 6.12 and 7.x share. Calls only `kernel`.

use core::ptr;
use kernel::prelude::*;

/// Remove and return element `i` of `v`, moving the last element into its
/// place. `None` when `i` is out of bounds.
pub(crate) fn swap_remove<T>(v: &mut KVec<T>, i: usize) -> Option<T> {
    let len = v.len();
    if i >= len {
        return None;
    }
    v.as_mut_slice().swap(i, len - 1);
    // SAFETY: `len - 1` is in bounds; the element is read out once and the
    // length shrunk so it is not dropped again.
    unsafe {
        let last = ptr::read(v.as_ptr().add(len - 1));
        shrink_len(v, len - 1);
        Some(last)
    }
}

/// Set `v`'s length to `new_len` without dropping the elements beyond it.
/// `KVec::set_len` is gone after 6.12; `into_raw_parts`/`from_raw_parts`
/// exist in both, so the length goes through them.
///
/// # Safety
///
/// `new_len <= v.len()`, and the caller owns (or needs no drop of) the
/// elements at `new_len..`.
unsafe fn shrink_len<T>(v: &mut KVec<T>, new_len: usize) {
    let (ptr, _len, capacity) = core::mem::replace(v, KVec::new()).into_raw_parts();
    // SAFETY: `ptr` and `capacity` come from a `KVec<T>` just taken apart;
    // `new_len` elements are initialised (caller: `new_len <= len`).
    *v = unsafe { KVec::from_raw_parts(ptr, new_len, capacity) };
}

/// Push, or hand the value back when out of memory.
pub(crate) fn push_or_return<T>(v: &mut KVec<T>, value: T) -> core::result::Result<(), T> {
    if v.reserve(1, GFP_KERNEL).is_err() {
        return Err(value);
    }
    // Capacity reserved: cannot fail.
    let _ = v.push(value, GFP_KERNEL);
    Ok(())
}

/// Empty `v`, keeping its capacity. For `Copy` elements: nothing to drop.
pub(crate) fn clear_copy<T: Copy>(v: &mut KVec<T>) {
    // SAFETY: 0 <= len, and `Copy` elements need no drop.
    unsafe { shrink_len(v, 0) };
}

/// Drop every element of `v`, keeping its capacity.
pub(crate) fn clear<T>(v: &mut KVec<T>) {
    while let Some(last) = v.len().checked_sub(1) {
        drop(swap_remove(v, last));
    }
}
