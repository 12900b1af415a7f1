//! A diagnostic: where the physical memory of the segments is, measured with `mincore` and
//! compared with what the counters (`stats()`) believe. It takes every allocator lock while
//! it walks the segments (like the validator): for tests and investigations, not for sampling.
//! Large mappings are not listed anywhere, so they are not measured (the counters' values are
//! reported instead).

use core::fmt;
use core::sync::atomic::Ordering;

use crate::counters;
use crate::geometry::{os_pages, SLOTS, SLOT_SIZE};
use crate::init;
use crate::os;
use crate::page::SOLO_CLASS;
use crate::segment::{Segment, SEGMENTS};

/// Measured residency of the segments, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Residency {
    /// Segments walked.
    pub segments: usize,
    /// Resident bytes of segment headers (slot 0).
    pub headers: usize,
    /// Carved bytes of pages in use (solo pages: touched), as the counters count them.
    pub pages_carved: usize,
    /// Of those, bytes purged inside pages (counted in `PAGE_PURGED`).
    pub pages_purged_counted: usize,
    /// Resident bytes inside the carved part of pages in use.
    pub pages_resident_carved: usize,
    /// Resident bytes of pages in use beyond their carved part (left over from an earlier use
    /// of the slots: counted nowhere).
    pub pages_resident_beyond: usize,
    /// Of those, in solo pages.
    pub solo_resident_beyond: usize,
    /// The counters' stale tails (`counters::STALE`), which should cover the solo part.
    pub stale_counted: usize,
    /// Free, not purged block bytes (carved blocks neither in use nor purged) in pages held
    /// by a thread, in pooled pages, and in pages held by nobody (FULL: remote frees pending).
    /// Read without the owners' cooperation: an estimate.
    pub free_in_held: usize,
    pub free_in_pooled: usize,
    pub free_in_full: usize,
    /// Bytes of dirty free slots (counted whole in `DIRTY`).
    pub dirty_counted: usize,
    /// Resident bytes of dirty free slots.
    pub dirty_resident: usize,
    /// Resident bytes of clean (purged) free slots (should be 0).
    pub clean_resident: usize,
    /// The counters' estimate for the same things: `CARVED - PAGE_PURGED + STALE + DIRTY +
    /// HEADERS`.
    pub counted: usize,
    /// The measured total: headers + pages + dirty + clean.
    pub measured: usize,
}

impl fmt::Display for Residency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const M: f64 = (1 << 20) as f64;
        write!(
            f,
            "segments={} headers={:.1}MiB pages: carved={:.1} purged_counted={:.1} \
             resident_in_carved={:.1} resident_beyond_carved={:.1} (solo {:.1}, stale counted {:.1}) free blocks: \
             held={:.1} pooled={:.1} full={:.1} dirty: counted={:.1} \
             resident={:.1} clean_resident={:.1} | counted={:.1}MiB measured={:.1}MiB",
            self.segments,
            self.headers as f64 / M,
            self.pages_carved as f64 / M,
            self.pages_purged_counted as f64 / M,
            self.pages_resident_carved as f64 / M,
            self.pages_resident_beyond as f64 / M,
            self.solo_resident_beyond as f64 / M,
            self.stale_counted as f64 / M,
            self.free_in_held as f64 / M,
            self.free_in_pooled as f64 / M,
            self.free_in_full as f64 / M,
            self.dirty_counted as f64 / M,
            self.dirty_resident as f64 / M,
            self.clean_resident as f64 / M,
            self.counted as f64 / M,
            self.measured as f64 / M,
        )
    }
}

/// Measures where the segments' memory is (see the module docs).
pub fn residency() -> Residency {
    init::ensure();
    let held = init::lock_all();
    let mut r = Residency::default();
    if held == 0 {
        // SAFETY: the segment lock is held by `lock_all`.
        let st = unsafe { SEGMENTS.peek() };
        let mut seg = st.head;
        while !seg.is_null() {
            // SAFETY: listed segments are mapped; their headers are guarded by the lock.
            let s: &Segment = unsafe { &*seg };
            let base = seg as usize;
            r.segments += 1;
            r.headers += os::resident_bytes(base, SLOT_SIZE);
            let free = s.free_slots.get();
            let dirty = s.dirty_slots.get();
            let mut i = 1;
            while i < SLOTS {
                let bit = 1u64 << i;
                let at = base + i * SLOT_SIZE;
                if free & bit != 0 {
                    let res = os::resident_bytes(at, SLOT_SIZE);
                    if dirty & bit != 0 {
                        r.dirty_counted += SLOT_SIZE;
                        r.dirty_resident += res;
                    } else {
                        r.clean_resident += res;
                    }
                    i += 1;
                    continue;
                }
                if s.purging_slots.get() & bit != 0 {
                    i += 1;
                    continue;
                }
                let page = &s.pages[i];
                let span = page.slots.get().max(1) as usize * SLOT_SIZE;
                let carved = if page.class.get() == SOLO_CLASS {
                    page.solo_touched.load(Ordering::Relaxed)
                } else {
                    os_pages(page.capacity.load(Ordering::Relaxed) as usize * page.bsize())
                }
                .min(span);
                r.pages_carved += carved;
                if page.class.get() != SOLO_CLASS {
                    let cap = page.capacity.load(Ordering::Relaxed) as usize;
                    let used = page.used.load(Ordering::Relaxed) as usize;
                    let free_bytes = cap
                        .saturating_sub(used)
                        .saturating_sub(page.purged_blocks.get() as usize)
                        * page.bsize();
                    if page.in_pool.load(Ordering::Relaxed) {
                        r.free_in_pooled += free_bytes;
                    } else if page.owner.load(Ordering::Relaxed) != 0 {
                        r.free_in_held += free_bytes;
                    } else {
                        r.free_in_full += free_bytes;
                    }
                }
                r.pages_purged_counted += page.purged_bytes.get();
                r.pages_resident_carved += os::resident_bytes(at, carved);
                let beyond = os::resident_bytes(at + carved, span - carved);
                r.pages_resident_beyond += beyond;
                if page.class.get() == SOLO_CLASS {
                    r.solo_resident_beyond += beyond;
                }
                i += page.slots.get().max(1) as usize;
            }
            seg = s.next.get();
        }
    }
    // SAFETY: taken by `lock_all` above (those not held already).
    unsafe { init::unlock_all(held) };
    r.stale_counted = counters::get(&counters::STALE);
    r.counted = counters::get(&counters::CARVED)
        .saturating_sub(counters::get(&counters::PAGE_PURGED))
        + counters::get(&counters::STALE)
        + counters::get(&counters::DIRTY)
        + counters::get(&counters::HEADERS);
    r.measured = r.headers
        + r.pages_resident_carved
        + r.pages_resident_beyond
        + r.dirty_resident
        + r.clean_resident;
    r
}
