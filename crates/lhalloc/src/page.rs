//! A page: a run of 1..=16 contiguous 64 KiB slots of a segment, cut into blocks of one size
//! class. Its descriptor lives in the segment's metadata slot, not among the objects (so
//! forked children do not copy object pages when the allocator touches metadata).
//!
//! Free-list sharding (after mimalloc): `free` is touched only by whoever holds the page (the
//! owning thread, or the pool lock); frees from other threads go to `thread_free` with one CAS
//! (see `remote.rs`) and are collected by the holder in one swap.
//!
//! Who holds a page (exactly one at a time):
//! - a thread, iff `owner == that thread's heap id` (the page is that heap's active page of its class);
//! - the class pool, iff `in_pool` (then `owner == 0`, guarded by the pool lock);
//! - nobody ("full"), iff `thread_free & FULL != 0` (then `owner == 0`, `!in_pool`, no free
//!   block): the first remote free clears the flag and moves the page to its pool;
//! - the segment, iff `block_size == 0` (free slots).
//!
//! Invariants (checked by `validate.rs` for pages it may read):
//! - `used + |free| == capacity <= reserved == slots * 64 KiB / block_size`
//! - `|thread_free| <= used` (remote frees still count as used until collected)
//! - every block on `free`/`thread_free` is `start + i * block_size` with `i < capacity`.

use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// Bit 0 of `thread_free`: the page is full and held by nobody.
pub const FULL: usize = 1;

/// A free block: its first word links to the next free block.
#[repr(C)]
pub struct Block {
    pub next: *mut Block,
}

/// Page descriptor (see the module docs for the invariants).
#[repr(C)]
pub struct Page {
    /// Blocks ready for allocation (holder only).
    pub free: Cell<*mut Block>,
    /// Blocks handed out and not yet back on `free` (written by the holder only; atomic so
    /// that statistics may read it).
    pub used: AtomicU32,
    /// Blocks carved so far (lazily, so untouched memory stays unmapped physically).
    pub capacity: AtomicU32,
    /// Blocks that fit in the page.
    pub reserved: Cell<u32>,
    /// Block size in bytes; 0 iff the slots are free in the segment.
    pub block_size: AtomicU32,
    /// Size class.
    pub class: Cell<u8>,
    /// Number of 64 KiB slots.
    pub slots: Cell<u8>,
    /// In a pool list (pool lock).
    pub in_pool: Cell<bool>,
    /// Pool bucket (pool lock).
    pub bucket: Cell<u8>,
    /// When the page last entered its pool, ms of the monotonic clock (pool lock).
    pub pooled_at: Cell<u64>,
    /// The interiors of all blocks on `free` have been purged (pool lock; see `trim_free`).
    pub trimmed: Cell<bool>,
    /// Bytes purged by the last `trim_free` while the page sat in its pool; reset to 0 when a
    /// thread takes the page (its blocks will be written again). Read by `stats`.
    pub trimmed_bytes: AtomicUsize,
    /// Heap id of the owning thread, 0 if none.
    pub owner: AtomicUsize,
    /// Remote frees: a block list, plus the [`FULL`] flag in bit 0.
    pub thread_free: AtomicUsize,
    /// First byte of the first block.
    pub start: Cell<*mut u8>,
    /// Pool links (pool lock).
    pub next: Cell<*const Page>,
    pub prev: Cell<*const Page>,
}

impl Page {
    /// Block size in bytes.
    #[inline]
    pub fn bsize(&self) -> usize {
        self.block_size.load(Ordering::Relaxed) as usize
    }

    /// Pops a block from `free` (holder only).
    #[inline]
    pub fn pop(&self) -> *mut u8 {
        let b = self.free.get();
        if b.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: blocks on `free` are free blocks of this page, whose first word is the link.
        let next = unsafe { (*b).next };
        self.free.set(next);
        let used = self.used.load(Ordering::Relaxed);
        self.used.store(used + 1, Ordering::Relaxed);
        b.cast()
    }

    /// Pushes a block of this page back on `free` (holder only).
    ///
    /// # Safety
    /// `p` is a block of this page that is in use and is not used any more by the caller.
    #[inline]
    pub unsafe fn push_local(&self, p: *mut u8) {
        let b = p.cast::<Block>();
        // SAFETY: per the contract `b` is a dead block of this page, at least 16 bytes.
        unsafe { (*b).next = self.free.get() };
        self.free.set(b);
        let used = self.used.load(Ordering::Relaxed);
        self.used.store(used - 1, Ordering::Relaxed);
    }

    /// Whether a block can be had without collecting remote frees.
    #[inline]
    pub fn has_free(&self) -> bool {
        !self.free.get().is_null() || self.capacity.load(Ordering::Relaxed) < self.reserved.get()
    }

    /// Moves the remote frees onto `free` (holder only). Returns how many were moved.
    pub fn collect_remote(&self) -> u32 {
        if self.thread_free.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let list = self.thread_free.swap(0, Ordering::Acquire);
        debug_assert_eq!(list & FULL, 0);
        let head = (list & !FULL) as *mut Block;
        if head.is_null() {
            return 0;
        }
        let mut n = 1u32;
        let mut tail = head;
        // SAFETY: the remote list holds dead blocks of this page, linked through their first
        // word, null-terminated; the Acquire swap made the links written by the freeing threads
        // visible.
        unsafe {
            while !(*tail).next.is_null() {
                tail = (*tail).next;
                n += 1;
            }
            (*tail).next = self.free.get();
        }
        self.free.set(head);
        let used = self.used.load(Ordering::Relaxed);
        self.used.store(used - n, Ordering::Relaxed);
        n
    }

    /// Carves more blocks from the untouched tail onto `free` (holder only): about 8 KiB
    /// worth at a time, so pages become resident only as far as they are used.
    pub fn extend(&self) {
        let cap = self.capacity.load(Ordering::Relaxed);
        let res = self.reserved.get();
        if cap >= res {
            return;
        }
        let bs = self.bsize();
        let n = ((8192 / bs) as u32).clamp(1, res - cap);
        // SAFETY: blocks `cap..cap + n` lie inside the page (cap + n <= reserved) and were
        // never handed out; we link them in address order and put them before `free`.
        unsafe {
            let first = self.start.get().add(cap as usize * bs);
            let mut b = first;
            for _ in 1..n {
                let next = b.add(bs);
                (*b.cast::<Block>()).next = next.cast();
                b = next;
            }
            (*b.cast::<Block>()).next = self.free.get();
            self.free.set(first.cast());
        }
        self.capacity.store(cap + n, Ordering::Relaxed);
    }

    /// Purges the interior of every free block (all but the OS page holding its link word):
    /// for pages of big blocks that sit in a pool, partly used, so that the memory of their
    /// free blocks goes back to the OS without waiting for the whole page to empty. Returns
    /// the bytes purged. Holder only (the pool lock); blocks read back as zeros afterwards,
    /// which no caller relies on.
    pub fn trim_free(&self) -> usize {
        let bs = self.bsize();
        let mut bytes = 0;
        let mut b = self.free.get();
        while !b.is_null() {
            let start = (b as usize + core::mem::size_of::<Block>() + crate::os::OS_PAGE - 1)
                & !(crate::os::OS_PAGE - 1);
            let end = (b as usize + bs) & !(crate::os::OS_PAGE - 1);
            if end > start {
                crate::os::purge(start as *mut u8, end - start);
                bytes += end - start;
            }
            // SAFETY: `b` is a free block of this page; its link word was kept.
            b = unsafe { (*b).next };
        }
        self.trimmed.set(true);
        self.trimmed_bytes.store(bytes, Ordering::Relaxed);
        bytes
    }

    /// Length of a block list starting at `b`, at most `limit + 1` (to detect cycles).
    ///
    /// # Safety
    /// The caller holds the list (no concurrent pop), and all its blocks are blocks of this page.
    pub unsafe fn list_len(&self, mut b: *mut Block, limit: u32) -> Result<u32, &'static str> {
        let mut n = 0u32;
        let start = self.start.get() as usize;
        let bs = self.bsize();
        let cap = self.capacity.load(Ordering::Relaxed) as usize;
        while !b.is_null() {
            let a = b as usize;
            if a < start || (a - start) % bs != 0 || (a - start) / bs >= cap {
                return Err("free block outside the carved part of its page");
            }
            n += 1;
            if n > limit {
                return Err("free list longer than capacity (cycle or double free)");
            }
            // SAFETY: `b` was just checked to be a carved block of this page, and the caller
            // holds the list.
            b = unsafe { (*b).next };
        }
        Ok(n)
    }
}
