// SPDX-License-Identifier: GPL-2.0
//! `KVec` helpers that 6.12's `kernel::alloc` lacks. Calls only `kernel`.

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
        v.set_len(len - 1);
        Some(last)
    }
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
    unsafe { v.set_len(0) };
}

/// Drop every element of `v`, keeping its capacity.
pub(crate) fn clear<T>(v: &mut KVec<T>) {
    while let Some(last) = v.len().checked_sub(1) {
        drop(swap_remove(v, last));
    }
}
