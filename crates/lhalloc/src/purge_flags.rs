//! Purge flags: what the layers below `purge.rs` raise to say "there is work for the next
//! purge round" without calling up into it. A leaf: setting a flag is one relaxed atomic
//! operation, safe under any lock and on any path.
//!
//! - [`POOL_REMOTE`]: bit `c` iff a page of class `c` received remote frees while pooled (the
//!   round collects that pool);
//! - [`POOL_TRIM_AT`]: per class, the earliest time (ns of the monotonic clock) at which a
//!   pooled page of that class becomes old enough to have its free memory purged
//!   (`u64::MAX` = none).

use core::sync::atomic::{AtomicU64, Ordering};

/// Bit `c`: pool `c` has pages with uncollected remote frees.
pub static POOL_REMOTE: AtomicU64 = AtomicU64::new(0);

/// Number of per-class entries in [`POOL_TRIM_AT`] (the size-class count, checked in
/// `size_class.rs`).
pub const CLASSES: usize = 48;

/// Per class: earliest time a pooled page is due for trimming; `u64::MAX` if none.
pub static POOL_TRIM_AT: [AtomicU64; CLASSES] = [const { AtomicU64::new(u64::MAX) }; CLASSES];

/// Notes that pool `cls` holds pages with remote frees to collect.
#[inline]
pub fn note_pool_remote(cls: usize) {
    let bit = 1u64 << cls;
    if POOL_REMOTE.load(Ordering::Relaxed) & bit == 0 {
        POOL_REMOTE.fetch_or(bit, Ordering::Relaxed);
    }
}

/// Takes (clears and returns) the set of pools with remote frees.
#[inline]
pub fn take_pool_remote() -> u64 {
    if POOL_REMOTE.load(Ordering::Relaxed) == 0 {
        return 0;
    }
    POOL_REMOTE.swap(0, Ordering::Relaxed)
}

/// Notes that a page of pool `cls` is due for trimming at `at` (ns).
#[inline]
pub fn note_trim_due(cls: usize, at: u64) {
    POOL_TRIM_AT[cls].fetch_min(at, Ordering::Relaxed);
}
