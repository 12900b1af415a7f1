//! Process-wide memory counters, kept up to date by the layers that change what they count
//! (slow paths only: per page, per slot, per large block; never per small object). `stats.rs`
//! reads them without taking any lock. Per-object counts live per thread in
//! `thread_stats.rs`.
//!
//! Equations (at quiescence; while threads run, a reader may see one side updated first):
//! - `MAPPED == segments * SEGMENT_SIZE + Σ live large mappings + Σ cached large mappings`
//! - `CARVED == Σ over pages in use of os_pages(capacity * block_size)` (solo pages: their
//!   high-water mark)
//! - `PAGE_PURGED == Σ over pages in use of their purged bytes` (free blocks' OS pages given
//!   back while the page still holds live blocks)
//! - `DIRTY == Σ over segments of |dirty slots| * SLOT_SIZE`
//! - `HEADERS == segments * HEADER_RESIDENT`
//! - `STALE == Σ over solo pages of stale_counted` (each at most `solo_stale - solo_touched`:
//!   the part of a solo page's stale tail its block has not grown into yet)
//! - `LARGE_LIVE == Σ live large blocks' touched bytes`, `LARGE_USABLE == Σ their usable
//!   bytes`, `LARGE_CACHED == Σ cached mappings' touched bytes`.

use core::sync::atomic::{AtomicUsize, Ordering};

/// Address space mapped (segments and large mappings, live or cached).
pub static MAPPED: AtomicUsize = AtomicUsize::new(0);
/// Carved bytes of pages in use (rounded to OS pages).
pub static CARVED: AtomicUsize = AtomicUsize::new(0);
/// Bytes purged inside pages that are still in use.
pub static PAGE_PURGED: AtomicUsize = AtomicUsize::new(0);
/// Free, not yet purged slot bytes.
pub static DIRTY: AtomicUsize = AtomicUsize::new(0);
/// Bytes of solo pages' stale tails (memory of the dirty slots they took, past the block's
/// touched bytes) until the tail is purged, the block grows into it or the page is freed.
pub static STALE: AtomicUsize = AtomicUsize::new(0);
/// Resident bytes of segment headers.
pub static HEADERS: AtomicUsize = AtomicUsize::new(0);
/// Touched bytes of live large mappings.
pub static LARGE_LIVE: AtomicUsize = AtomicUsize::new(0);
/// Usable bytes of live large blocks.
pub static LARGE_USABLE: AtomicUsize = AtomicUsize::new(0);
/// Touched bytes of cached (freed, kept) large mappings.
pub static LARGE_CACHED: AtomicUsize = AtomicUsize::new(0);
/// Cumulative bytes given back to the OS (purged or unmapped).
pub static PURGED: AtomicUsize = AtomicUsize::new(0);
/// Allocated bytes not attributed to any registered thread (wrapping: threads that exited,
/// solo blocks, frees by threads without a heap). Added to the per-thread sums.
pub static ORPHAN_ALLOCATED: AtomicUsize = AtomicUsize::new(0);

/// Adds `n` to counter `c`.
#[inline]
pub fn add(c: &AtomicUsize, n: usize) {
    if n != 0 {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// Subtracts `n` from counter `c`.
#[inline]
pub fn sub(c: &AtomicUsize, n: usize) {
    if n != 0 {
        c.fetch_sub(n, Ordering::Relaxed);
    }
}

/// Reads counter `c`.
#[inline]
pub fn get(c: &AtomicUsize) -> usize {
    c.load(Ordering::Relaxed)
}
