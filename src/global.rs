// SPDX-License-Identifier: GPL-2.0
//! Module-lifetime globals: a mutex-protected value that init publishes and
//! exit takes back, reachable from C entry points (sysfs, C ABI, notifier)
//! that run only in between. Calls only the `kernel` crate.

use core::pin::Pin;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::error::code;
use kernel::prelude::*;
use kernel::sync::Mutex;

/// A `Mutex<T>` published by module init and freed by module exit.
///
/// # Invariants
///
/// `ptr` is null or came from `KBox::into_raw` of a pinned box, which is
/// freed only by [`Global::take`] after every entry point that could reach it
/// is gone.
pub(crate) struct Global<T> {
    ptr: AtomicPtr<Mutex<T>>,
}

impl<T> Global<T> {
    pub(crate) const fn new() -> Self {
        // INVARIANT: null.
        Self { ptr: AtomicPtr::new(ptr::null_mut()) }
    }

    /// Make `value` reachable.
    pub(crate) fn publish(&self, value: Pin<KBox<Mutex<T>>>) {
        // SAFETY: the box stays pinned: it is only ever freed through `take`.
        let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(value) });
        // INVARIANT: from `into_raw` of a pinned box.
        self.ptr.store(raw, Ordering::Release);
    }

    /// The value, or `ENODEV` outside init..exit.
    pub(crate) fn get(&self) -> Result<&'static Mutex<T>> {
        let p = self.ptr.load(Ordering::Acquire);
        if p.is_null() {
            return Err(code::ENODEV);
        }
        // SAFETY: non-null means init published a pinned, live box, which
        // exit frees only after every entry point is gone (invariant).
        Ok(unsafe { &*p })
    }

    /// Unpublish and free the value. Called by exit once nothing can reach it.
    pub(crate) fn take(&self) {
        let p = self.ptr.swap(ptr::null_mut(), Ordering::AcqRel);
        if !p.is_null() {
            // SAFETY: `p` came from a pinned box via `into_raw` (invariant) and
            // no entry point can reach it any more.
            drop(unsafe { Pin::new_unchecked(KBox::from_raw(p)) });
        }
    }
}

// SAFETY: the value is only reached through its mutex.
unsafe impl<T: Send> Sync for Global<T> {}
