// SPDX-License-Identifier: GPL-2.0
//! Where the kernel's Rust API differs between 6.12 and 7.x, and no common
//! API covers both. Kbuild sets the cfgs (see its comment).
//!
//! `KVec`'s length is in `kvec.rs`, written with the API both share.

/// Make a type that implements `core::fmt::Display` printable by `pr_*!`.
///
/// Since about 6.17 `pr_*!` format through `kernel::fmt::Display` (a copy of
/// the core trait that foreign types can implement); 6.12 uses the core
/// trait itself. Under `optprobe_kernel_fmt` this forwards the kernel trait
/// to the core one; otherwise it expands to nothing.
macro_rules! impl_kernel_display {
    ($($ty:ty),+ $(,)?) => {
        $(
            #[cfg(optprobe_kernel_fmt)]
            impl kernel::fmt::Display for $ty {
                fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                    core::fmt::Display::fmt(self, f)
                }
            }
        )+
    };
}
pub(crate) use impl_kernel_display;
