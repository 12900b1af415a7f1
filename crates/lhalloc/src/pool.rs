//! The shared per-class pools of partly used pages that no thread holds. Pages are kept in
//! [`BUCKETS`] lists by fullness (`used / reserved`, as of when the page entered the pool or
//! was last collected), and refills take from the fullest bucket first (tcmalloc's central
//! free lists do the same): new objects go where objects already live, so the emptier pages
//! drain, become empty, and are given back to their segments and then to the OS.
//!
//! Invariant (pool lock): a page is on the list of bucket `b` of pool `c` iff
//! `in_pool && bucket == b && class == c`; lists are doubly linked and null-terminated.

use core::ptr;
use core::sync::atomic::Ordering;

use crate::lock::Lock;
use crate::page::Page;
use crate::size_class::NUM_CLASSES;

/// Fullness buckets per class; bucket `BUCKETS - 1` holds the fullest pages.
pub const BUCKETS: usize = 4;

/// One class's pool: list heads per bucket.
pub struct Pool {
    pub heads: [*const Page; BUCKETS],
    pub len: usize,
}

/// Per-class pools. Lock order: class order, before the segment lock.
pub static POOLS: [Lock<Pool>; NUM_CLASSES] = [const {
    Lock::new(Pool {
        heads: [ptr::null(); BUCKETS],
        len: 0,
    })
}; NUM_CLASSES];

/// The bucket a page belongs in by its current fullness.
pub fn bucket_of(page: &Page) -> usize {
    let used = page.used.load(Ordering::Relaxed) as usize;
    let res = page.reserved.get().max(1) as usize;
    (used * BUCKETS / res).min(BUCKETS - 1)
}

impl Pool {
    /// Links `page` into bucket `b`.
    pub fn link(&mut self, page: &Page, b: usize) {
        page.in_pool.set(true);
        page.bucket.set(b as u8);
        page.prev.set(ptr::null());
        page.next.set(self.heads[b]);
        if !self.heads[b].is_null() {
            // SAFETY: list members are live page descriptors guarded by this pool's lock.
            unsafe { (*self.heads[b]).prev.set(page) };
        }
        self.heads[b] = page;
        self.len += 1;
    }

    /// Unlinks `page` (which is on one of this pool's lists).
    pub fn unlink(&mut self, page: &Page) {
        let b = page.bucket.get() as usize;
        let prev = page.prev.get();
        let next = page.next.get();
        if prev.is_null() {
            self.heads[b] = next;
        } else {
            // SAFETY: list members are live page descriptors guarded by this pool's lock.
            unsafe { (*prev).next.set(next) };
        }
        if !next.is_null() {
            // SAFETY: as above.
            unsafe { (*next).prev.set(prev) };
        }
        page.in_pool.set(false);
        page.next.set(ptr::null());
        page.prev.set(ptr::null());
        self.len -= 1;
    }
}

/// Puts a page that nobody holds any more into its class pool. The caller gave up the page
/// (owner 0) or won it by clearing its FULL flag.
pub fn push(page: &Page) {
    let cls = page.class.get() as usize;
    let now = crate::os::now_ms();
    let mut pool = POOLS[cls].lock();
    page.pooled_at.set(now);
    page.trimmed.set(false);
    let b = bucket_of(page);
    pool.link(page, b);
    crate::purge::want_purger();
}

/// Takes the fullest pooled page of class `cls`; null if the pool is empty. The page is
/// returned unlinked and is now held by the caller.
pub fn take(cls: usize) -> *const Page {
    let mut pool = POOLS[cls].lock();
    if pool.len == 0 {
        return ptr::null();
    }
    for b in (0..BUCKETS).rev() {
        let p = pool.heads[b];
        if !p.is_null() {
            // SAFETY: list members are live page descriptors guarded by this pool's lock.
            let page = unsafe { &*p };
            pool.unlink(page);
            page.trimmed_bytes.store(0, Ordering::Relaxed);
            return p;
        }
    }
    ptr::null()
}
