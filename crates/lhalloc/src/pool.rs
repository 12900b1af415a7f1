//! The shared per-class pools of partly used pages that no thread holds. Pages are kept in
//! [`BUCKETS`] lists by fullness (`used / reserved`, as of when the page entered the pool or
//! was last collected), and refills take from the fullest bucket first (tcmalloc's central
//! free lists do the same): new objects go where objects already live, so the emptier pages
//! drain, become empty, and are given back to their segments and then to the OS.
//!
//! Invariant (pool lock): a page is on the list of bucket `b` of pool `c` iff
//! `in_pool && bucket == b && class == c`; lists are doubly linked and null-terminated;
//! `len == Σ list lengths`.

use core::ptr;
use core::sync::atomic::Ordering;

use crate::demand::Demand;
use crate::lock::Lock;
use crate::page::Page;
use crate::purge_flags;
use crate::size_class::NUM_CLASSES;

/// Fullness buckets per class; bucket `BUCKETS - 1` holds the fullest pages.
pub const BUCKETS: usize = 4;

/// One class's pool: list heads per bucket, and the recent demand on it.
pub struct Pool {
    pub heads: [*const Page; BUCKETS],
    pub len: usize,
    /// Free bytes threads took from this pool (its reserve, kept unpurged by the purge round).
    pub demand: Demand,
}

/// Unpurged free bytes of a page (its free blocks and uncollected remote frees count as
/// used until collected; purged blocks are not resident).
pub fn free_bytes(page: &Page) -> usize {
    let cap = page.capacity.load(Ordering::Relaxed) as usize;
    let used = page.used.load(Ordering::Relaxed) as usize;
    let purged = page.purged_blocks.get() as usize;
    cap.saturating_sub(used + purged) * page.bsize()
}

// SAFETY: the raw pointers lead to page descriptors whose pool fields are only touched under
// this pool's lock; moving the state between threads is how the lock is used.
unsafe impl Send for Pool {}

/// Per-class pools. Lock order: class order, before the segment lock.
pub static POOLS: [Lock<Pool>; NUM_CLASSES] = [const {
    Lock::new(Pool {
        heads: [ptr::null(); BUCKETS],
        len: 0,
        demand: Demand::new(),
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
    ///
    /// # Safety
    /// The caller holds this pool's lock (through `self`) and the page, which is of this
    /// pool's class, unowned and on no list; the pool becomes its holder.
    pub unsafe fn link(&mut self, page: &Page, b: usize) {
        page.in_pool.store(true, Ordering::Relaxed);
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

    /// Unlinks `page`; the caller becomes its holder.
    ///
    /// # Safety
    /// `page` is on one of this pool's lists (and the caller holds the lock through `self`).
    pub unsafe fn unlink(&mut self, page: &Page) {
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
        page.in_pool.store(false, Ordering::Relaxed);
        page.next.set(ptr::null());
        page.prev.set(ptr::null());
        self.len -= 1;
    }
}

/// Links a page that the caller holds and gives up into `pool` (whose lock the caller holds),
/// noting when its free memory becomes old enough to trim.
///
/// # Safety
/// The caller holds `pool`'s lock (through `pool`) and the page, which belongs to that
/// pool's class, has `owner == 0` and is on no list.
pub unsafe fn link_given_up(pool: &mut Pool, page: &Page, now: u64) {
    let cls = page.class.get() as usize;
    page.changed_at.set(now);
    page.trimmed.set(false);
    let b = bucket_of(page);
    // SAFETY: forwarded contract.
    unsafe { pool.link(page, b) };
    purge_flags::note_trim_due(cls, now.saturating_add(crate::options::purge_delay_ns()));
    if page.thread_free.load(Ordering::Relaxed) != 0 {
        purge_flags::note_pool_remote(cls);
    }
}

/// Puts a page that nobody holds any more into its class pool.
///
/// # Safety
/// The caller holds the page and gives it up: `owner == 0`, on no list, not FULL.
pub unsafe fn push(page: &Page) {
    let cls = page.class.get() as usize;
    let now = crate::os::now_ns();
    let mut pool = POOLS[cls].lock();
    // SAFETY: forwarded contract; we hold the pool lock.
    unsafe { link_given_up(&mut pool, page, now) };
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
            // SAFETY: `page` is on this pool's list `b`.
            unsafe { pool.unlink(page) };
            // Demand: every free block the taker may allocate, purged ones too (re-carved).
            let cap = page.capacity.load(Ordering::Relaxed) as usize;
            let used = page.used.load(Ordering::Relaxed) as usize;
            pool.demand.take(cap.saturating_sub(used) * page.bsize());
            return p;
        }
    }
    ptr::null()
}
