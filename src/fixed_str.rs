// SPDX-License-Identifier: GPL-2.0
//! Fixed-size, NUL-terminated text for names, reasons and listing lines:
//! no allocation, so it can live inside a probe and be built under a lock.
//! Pure: calls nothing.

use core::ffi::c_char;
use core::fmt::Write;

/// Text of at most `N - 1` bytes, always NUL-terminated.
///
/// # Invariants
///
/// `len < N` and `buf[len] == 0` (for `N > 0`).
#[derive(Clone, Copy)]
pub struct FixedStr<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> FixedStr<N> {
    /// The empty string.
    pub const fn new() -> Self {
        // INVARIANT: len 0, all zero.
        Self { buf: [0; N], len: 0 }
    }

    /// `s`, cut at `N - 1` bytes.
    pub fn from_bytes(s: &[u8]) -> Self {
        let mut out = Self::new();
        let len = s.len().min(N - 1);
        out.buf[..len].copy_from_slice(&s[..len]);
        // INVARIANT: `len < N`; the rest of `buf` is still zero.
        out.len = len;
        out
    }

    /// Length in bytes, without the NUL.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Is it empty?
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes, without the NUL.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The text, or `?` if a cut split a UTF-8 sequence.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("?")
    }

    /// A C string pointer, valid as long as `self` is not moved or changed.
    pub fn as_ptr(&self) -> *const c_char {
        self.buf.as_ptr().cast()
    }
}

impl<const N: usize> Default for FixedStr<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Write for FixedStr<N> {
    /// Appends what fits; never fails, so formatting into it cannot panic.
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = N - 1 - self.len;
        let take = s.len().min(room);
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        // INVARIANT: `len <= N - 1`, terminated.
        self.buf[self.len] = 0;
        Ok(())
    }
}
