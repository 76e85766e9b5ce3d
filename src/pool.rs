// SPDX-License-Identifier: GPL-2.0
//! The trampoline pool: pages of fixed-size slots, each page allocated inside
//! the branch window of the probe site that needed it and shared by later
//! sites in range. Calls `sys` (page allocation) and the pure `tramp`/`insn`.
//!
//! The pool does not know about probes; callers own the rule that a slot is
//! freed only once no branch leads to it and RCU-tasks has elapsed.

use crate::kvec::swap_remove;
use crate::{insn, sys, tramp};
use kernel::prelude::*;

/// One page of trampoline slots.
struct TrampPage {
    base: usize,
    /// Bit i set: slot i is in use (or waiting for an RCU-tasks grace period).
    used: u64,
}

/// All trampoline pages.
pub(crate) struct Pool {
    pages: KVec<TrampPage>,
}

fn slots_per_page() -> usize {
    (sys::page_size() / tramp::SLOT_SIZE).min(64)
}

impl Pool {
    pub(crate) fn new() -> Self {
        Self { pages: KVec::new() }
    }

    /// Pages currently allocated.
    pub(crate) fn pages(&self) -> usize {
        self.pages.len()
    }

    /// A free slot reachable from `site` and reaching back, or a new page in
    /// the branch window around `site`.
    /// `target`: the direct branch target of the relocated instruction, which
    /// every branch in the relocation area must reach too.
    pub(crate) fn alloc_slot(&mut self, site: usize, target: Option<u64>, layout: &tramp::Layout) -> Option<usize> {
        let reloc_first = layout.orig_insn as u64;
        let reloc_last = reloc_first + 4 * (insn::MAX_RELOC as u64 - 1);
        let fits = |slot: usize| {
            let slot = slot as u64;
            tramp::site_branch(site as u64, slot).is_ok()
                && insn::encode_b(slot + reloc_first, site as u64 + 4).is_ok()
                && insn::encode_b(slot + reloc_last, site as u64 + 4).is_ok()
                && target.is_none_or(|t| {
                    insn::encode_b(slot + reloc_first, t).is_ok() && insn::encode_b(slot + reloc_last, t).is_ok()
                })
        };
        let per_page = slots_per_page();
        for page in self.pages.as_mut_slice() {
            for i in 0..per_page {
                let slot = page.base + i * tramp::SLOT_SIZE;
                if page.used & (1 << i) == 0 && fits(slot) {
                    page.used |= 1 << i;
                    return Some(slot);
                }
            }
        }
        let (limit_lo, limit_hi) = sys::tramp_limits();
        let page_size = sys::page_size();
        let (lo, hi) = tramp::window_for(site as u64, target, page_size as u64, limit_lo as u64, limit_hi as u64)?;
        // CAST: kernel addresses.
        let base = sys::alloc_tramp_page(lo as usize, hi as usize)?;
        if !fits(base) || !fits(base + page_size - tramp::SLOT_SIZE) {
            // SAFETY: fresh page, nothing points into it.
            unsafe { sys::free_tramp_page(base) };
            return None;
        }
        if self.pages.push(TrampPage { base, used: 1 }, GFP_KERNEL).is_err() {
            // SAFETY: as above.
            unsafe { sys::free_tramp_page(base) };
            return None;
        }
        Some(base)
    }

    /// Return a slot; frees its page when the page is empty.
    ///
    /// # Safety
    ///
    /// No live branch leads to `slot` and `synchronize_rcu_tasks()` has
    /// returned since the last one was removed.
    pub(crate) unsafe fn free_slot(&mut self, slot: usize) {
        let page_size = sys::page_size();
        let Some(i) = self.pages.as_slice().iter().position(|p| slot >= p.base && slot < p.base + page_size) else {
            return;
        };
        let page = &mut self.pages.as_mut_slice()[i];
        page.used &= !(1 << ((slot - page.base) / tramp::SLOT_SIZE));
        if page.used == 0 {
            if let Some(page) = swap_remove(&mut self.pages, i) {
                // SAFETY: empty page; per the function's contract nothing can
                // reach any of its slots.
                unsafe { sys::free_tramp_page(page.base) };
            }
        }
    }
}
