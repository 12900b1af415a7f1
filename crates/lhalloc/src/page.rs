//! A page: a run of 1..=16 contiguous 64 KiB slots of a segment, cut into blocks of one size
//! class (or holding one *solo* block, see `solo.rs`). Its descriptor lives in the segment's
//! header slot, not among the objects (so forked children do not copy object pages when the
//! allocator touches metadata).
//!
//! Free-list sharding (after mimalloc): `free` is touched only by whoever holds the page (the
//! owning thread, or the pool lock); frees from other threads go to `thread_free` with one CAS
//! per batch (see `remote.rs`) and are collected by the holder in one swap. The descriptor
//! keeps the holder's fields, the fields every thread reads, and `thread_free` on three
//! different cache lines, so remote frees do not bounce the holder's line.
//!
//! Who holds a page (exactly one at a time):
//! - a thread, iff `owner == that thread's heap id` (the page is that heap's active page of its class);
//! - the class pool, iff `in_pool` (then `owner == 0`, guarded by the pool lock);
//! - a purge round, while it trims the page (unlinked from its pool, `owner == 0`, pool-held);
//! - nobody ("full"), iff `thread_free & FULL != 0` (then `owner == 0`, `!in_pool`, no free
//!   block): the first remote free clears the flag and moves the page to its pool;
//! - nobody, for a solo page (`owner == SOLO_OWNER`): its one block is the page;
//! - the segment, iff `block_size == 0` (free slots).
//!
//! Invariants (checked by `validate.rs` for pages it may read):
//! - `used + |free| + purged_blocks == capacity <= reserved == slots * 64 KiB / block_size`
//! - `|thread_free| <= used` (remote frees still count as used until collected), and
//!   `|thread_free| == tf_count(thread_free)`
//! - every block on `free`/`thread_free` is `start + i * block_size` with `i < capacity` and
//!   bit `i` of the purged-block map clear; `purged_blocks == |purged-block map|`
//! - OS page `j` of the page is marked in the purged-OS-page map iff it was purged since it
//!   was last carved; then every block that intersects it is purged or in use;
//!   `purged_bytes == |purged-OS-page map| * OS_PAGE`.

use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use crate::counters;
use crate::geometry::{
    os_pages, CACHE_LINE, MAX_BLOCKS_PER_PAGE, MAX_PAGE_SLOTS, OS_PAGE, SLOT_SIZE,
};
use crate::os;

/// Bit 0 of `thread_free`: the page is full and held by nobody.
pub const FULL: usize = 1;
/// Bits of `thread_free` that hold the list head (blocks are 16-aligned user addresses
/// below 2^47).
pub const TF_PTR: usize = ((1 << 48) - 1) & !15;
/// `thread_free` holds the number of blocks on its list from this bit up, so that the holder
/// collects a list without walking it.
pub const TF_COUNT_SHIFT: u32 = 48;
const _: () = assert!(crate::geometry::MAX_BLOCKS_PER_PAGE < 1 << (64 - TF_COUNT_SHIFT));

/// The list head of a `thread_free` word.
#[inline]
pub fn tf_head(tf: usize) -> *mut Block {
    (tf & TF_PTR) as *mut Block
}

/// The block count of a `thread_free` word.
#[inline]
pub fn tf_count(tf: usize) -> u32 {
    (tf >> TF_COUNT_SHIFT) as u32
}
/// `owner` of a solo page.
pub const SOLO_OWNER: usize = usize::MAX - 1;
/// `class` of a solo page.
pub const SOLO_CLASS: u8 = u8::MAX;

/// Words of a page's purged-block map (one bit per block).
pub const BLOCK_MAP_WORDS: usize = MAX_BLOCKS_PER_PAGE / 64;
/// Words of a page's purged-OS-page map (one bit per OS page).
pub const OS_MAP_WORDS: usize = MAX_PAGE_SLOTS * SLOT_SIZE / OS_PAGE / 64;

/// A page's purge maps, kept apart from the descriptors (in the segment header, touched only
/// for pages that were trimmed). Holder only.
#[repr(C)]
pub struct PurgeMap {
    /// Bit `i`: block `i` is neither free nor in use: its memory was purged.
    pub blocks: [Cell<u64>; BLOCK_MAP_WORDS],
    /// Bit `j`: OS page `j` of the page was purged and not touched since.
    pub os_pages: [Cell<u64>; OS_MAP_WORDS],
}

/// A free block: its first word links to the next free block.
#[repr(C)]
pub struct Block {
    pub next: *mut Block,
}

/// Page descriptor (see the module docs for the invariants).
#[repr(C, align(64))]
pub struct Page {
    // --- Line 0: the holder's fields.
    /// Blocks ready for allocation (holder only).
    pub free: Cell<*mut Block>,
    /// Blocks handed out and not yet back on `free` (holder only; atomic so that the
    /// validator may read it).
    pub used: AtomicU32,
    /// Blocks carved so far (lazily, so untouched memory stays unmapped physically).
    pub capacity: AtomicU32,
    /// Blocks that fit in the page.
    pub reserved: Cell<u32>,
    /// Carved blocks whose memory was purged (not on `free`; see [`PurgeMap`]).
    pub purged_blocks: Cell<u32>,
    /// Bytes of this page counted in `counters::PAGE_PURGED`.
    pub purged_bytes: Cell<usize>,
    /// When the page entered its pool or was last trimmed, ns (pool lock): a pooled page is
    /// trimmed when its free set grew since and this is at least the purge delay old.
    pub changed_at: Cell<u64>,
    /// Pool links (pool lock).
    pub next: Cell<*const Page>,
    pub prev: Cell<*const Page>,
    /// Pool bucket (pool lock).
    pub bucket: Cell<u8>,
    /// The free blocks have been trimmed and the free set has not grown since (pool lock).
    pub trimmed: Cell<bool>,
    /// In a pool list (written under the pool lock; read without it as a hint).
    pub in_pool: AtomicBool,
    _pad0: [u8; 5],

    // --- Line 1: read by every thread, written when the page changes hands or kind.
    /// Heap id of the owning thread, 0 if none, [`SOLO_OWNER`] for a solo page.
    pub owner: AtomicUsize,
    /// Block size in bytes; 0 iff the slots are free in the segment.
    pub block_size: AtomicU32,
    /// Size class ([`SOLO_CLASS`] for a solo page).
    pub class: Cell<u8>,
    /// Number of 64 KiB slots.
    pub slots: Cell<u8>,
    /// First byte of the first block.
    pub start: Cell<*mut u8>,
    /// Solo page: bytes asked for (the block's size).
    pub solo_size: AtomicUsize,
    /// Solo page: bytes counted in `counters::CARVED` (high-water mark, OS pages).
    pub solo_touched: AtomicUsize,
    /// This page's purge maps (set once when the segment is made).
    pub map: Cell<*const PurgeMap>,
    /// Solo page: how far from its start the slots may still hold the memory of earlier
    /// pages (dirty slots it took), past its touched bytes; 0 if nothing is stale (segment
    /// lock). The purge round gives the stale part back once the block is the purge delay old.
    pub solo_stale: Cell<u32>,
    /// Solo page: bytes of its stale tail counted in `counters::STALE`, at most `solo_stale -
    /// solo_touched`; 0 without a stale tail. Set with the tail (segment lock); lowered by the
    /// block's holder as the block grows into the tail (`solo::resize`, no lock) and zeroed by
    /// whoever purges or settles the tail. Each change is one atomic read-modify-write, so
    /// every counted byte leaves `STALE` exactly once.
    pub stale_counted: AtomicU32,
    /// Solo page: a purge round is purging its stale tail, outside the segment lock. The
    /// block's holder waits for it to clear before giving slots back, and after raising
    /// `solo_touched` (see `solo::resize`).
    pub tail_busy: AtomicBool,
    _pad1: [u8; 7],

    // --- Line 2: written by other threads.
    /// Remote frees: a block list ([`TF_PTR`] bits), its length (from [`TF_COUNT_SHIFT`]),
    /// and the [`FULL`] flag in bit 0.
    pub thread_free: AtomicUsize,
}

const _: () = assert!(core::mem::offset_of!(Page, owner) == CACHE_LINE);
const _: () = assert!(core::mem::offset_of!(Page, thread_free) == 2 * CACHE_LINE);
const _: () = assert!(core::mem::size_of::<Page>() == 3 * CACHE_LINE);

impl Page {
    /// Block size in bytes.
    #[inline]
    pub fn bsize(&self) -> usize {
        self.block_size.load(Ordering::Relaxed) as usize
    }

    /// Whether this is a solo page.
    #[inline]
    pub fn is_solo(&self) -> bool {
        self.owner.load(Ordering::Relaxed) == SOLO_OWNER
    }

    /// The purge maps.
    #[inline]
    fn purge_map(&self) -> &PurgeMap {
        // SAFETY: `map` is set when the segment is created and points into its header, which
        // lives as long as this descriptor.
        unsafe { &*self.map.get() }
    }

    /// Pops a block from `free`; null if empty.
    ///
    /// # Safety
    /// The caller holds the page.
    #[inline]
    pub unsafe fn pop(&self) -> *mut u8 {
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

    /// Pushes a block of this page back on `free`.
    ///
    /// # Safety
    /// The caller holds the page; `p` is a block of this page that is in use and is not used
    /// any more by anybody.
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
    ///
    /// # Safety
    /// The caller holds the page.
    #[inline]
    pub unsafe fn has_free(&self) -> bool {
        !self.free.get().is_null()
            || self.capacity.load(Ordering::Relaxed) < self.reserved.get()
            || self.purged_blocks.get() > 0
    }

    /// Moves the remote frees onto `free`. Returns how many were moved.
    ///
    /// # Safety
    /// The caller holds the page (so `FULL` is not set).
    pub unsafe fn collect_remote(&self) -> u32 {
        if self.thread_free.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let list = self.thread_free.swap(0, Ordering::Acquire);
        debug_assert_eq!(list & FULL, 0);
        let head = tf_head(list);
        let n = tf_count(list);
        if head.is_null() {
            return 0;
        }
        if !self.free.get().is_null() {
            // Append the local list after the remote one (the usual case, an empty `free`,
            // needs no walk).
            let mut tail = head;
            // SAFETY: the remote list holds dead blocks of this page, linked through their
            // first word, null-terminated; the Acquire swap made the links written by the
            // freeing threads visible.
            unsafe {
                while !(*tail).next.is_null() {
                    tail = (*tail).next;
                }
                (*tail).next = self.free.get();
            }
        }
        self.free.set(head);
        let used = self.used.load(Ordering::Relaxed);
        self.used.store(used - n, Ordering::Relaxed);
        n
    }

    /// Puts more blocks on `free`: first blocks whose memory was purged (re-carved), else
    /// blocks carved from the untouched tail; about 8 KiB worth at a time, so pages become
    /// resident only as far as they are used.
    ///
    /// # Safety
    /// The caller holds the page.
    pub unsafe fn extend(&self) {
        let bs = self.bsize();
        let want = (8192 / bs).max(1) as u32;
        if self.purged_blocks.get() > 0 {
            // SAFETY: forwarded contract.
            unsafe { self.recarve(want) };
            return;
        }
        let cap = self.capacity.load(Ordering::Relaxed);
        let res = self.reserved.get();
        if cap >= res {
            return;
        }
        let n = want.min(res - cap);
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
        let before = os_pages(cap as usize * bs);
        let after = os_pages((cap + n) as usize * bs);
        counters::add(&counters::CARVED, after - before);
        self.capacity.store(cap + n, Ordering::Relaxed);
    }

    /// Re-carves up to `want` purged blocks, lowest first. Their OS pages count as resident
    /// again (the links written now touch them).
    ///
    /// # Safety
    /// The caller holds the page and `purged_blocks > 0`.
    unsafe fn recarve(&self, want: u32) {
        let bs = self.bsize();
        let start = self.start.get() as usize;
        let map = self.purge_map();
        let mut taken = 0u32;
        let mut unpurged = 0usize;
        'words: for (w, word) in map.blocks.iter().enumerate() {
            let mut bits = word.get();
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                word.set(word.get() & !(1u64 << (i % 64)));
                let b = (start + i * bs) as *mut Block;
                // The OS pages of this block will be touched again.
                let first = i * bs / OS_PAGE;
                let last = ((i + 1) * bs - 1) / OS_PAGE;
                for j in first..=last {
                    let (ow, ob) = (j / 64, 1u64 << (j % 64));
                    let cell = &map.os_pages[ow];
                    if cell.get() & ob != 0 {
                        cell.set(cell.get() & !ob);
                        unpurged += OS_PAGE;
                    }
                }
                // SAFETY: block `i` is a carved block of this page whose memory was purged and
                // that nobody uses: we may write its link word.
                unsafe { (*b).next = self.free.get() };
                self.free.set(b);
                taken += 1;
                if taken == want || taken == self.purged_blocks.get() {
                    break 'words;
                }
            }
        }
        self.purged_blocks.set(self.purged_blocks.get() - taken);
        self.purged_bytes.set(self.purged_bytes.get() - unpurged);
        counters::sub(&counters::PAGE_PURGED, unpurged);
    }

    /// Gives back to the OS every OS page of this page that holds only free (or already
    /// purged, or never carved) blocks and is not purged yet, whatever the block size, and
    /// takes the free blocks that touch those OS pages off `free` (their links would be lost):
    /// they are re-carved by [`Page::extend`] when needed. Returns the bytes purged.
    ///
    /// # Safety
    /// The caller holds the page (pool-held, unlinked from its pool) and has collected its
    /// remote frees; nobody else touches its free blocks meanwhile.
    pub unsafe fn trim(&self) -> usize {
        let bs = self.bsize();
        let start = self.start.get() as usize;
        let cap = self.capacity.load(Ordering::Relaxed) as usize;
        if self.free.get().is_null() || cap == 0 {
            return 0;
        }
        let map = self.purge_map();
        // Blocks on `free`.
        let mut free_bits = [0u64; BLOCK_MAP_WORDS];
        let mut b = self.free.get();
        while !b.is_null() {
            let i = (b as usize - start) / bs;
            free_bits[i / 64] |= 1u64 << (i % 64);
            // SAFETY: `b` is a free block of this page; its first word is the link.
            b = unsafe { (*b).next };
        }
        let is_gone = |i: usize| -> bool {
            // Free or purged (every block touching an OS page counted below is carved).
            (free_bits[i / 64] | map.blocks[i / 64].get()) & (1u64 << (i % 64)) != 0
        };
        // Only OS pages wholly inside the carved part: the untouched tail is not resident, and
        // blocks carved there later must not land in an OS page marked purged.
        let n_os = cap * bs / OS_PAGE;
        let mut purge_bits = [0u64; OS_MAP_WORDS];
        let mut bytes = 0usize;
        let mut run_start: Option<usize> = None;
        for j in 0..=n_os {
            let mut ok = false;
            if j < n_os && map.os_pages[j / 64].get() & (1u64 << (j % 64)) == 0 {
                let first = j * OS_PAGE / bs;
                let last = ((j + 1) * OS_PAGE - 1) / bs;
                ok = (first..=last).all(is_gone);
            }
            match (ok, run_start) {
                (true, None) => run_start = Some(j),
                (false, Some(s)) => {
                    run_start = None;
                    // SAFETY: OS pages s..j of this page hold only free, purged or uncarved
                    // blocks: their content is dead, and the range lies inside the page.
                    unsafe { os::purge((start + s * OS_PAGE) as *mut u8, (j - s) * OS_PAGE) };
                    for k in s..j {
                        purge_bits[k / 64] |= 1u64 << (k % 64);
                    }
                    bytes += (j - s) * OS_PAGE;
                }
                _ => {}
            }
        }
        if bytes == 0 {
            return 0;
        }
        for (w, bits) in purge_bits.iter().enumerate() {
            map.os_pages[w].set(map.os_pages[w].get() | bits);
        }
        // Take the free blocks that touch a purged OS page off `free`.
        let touches_purged = |i: usize| -> bool {
            let first = i * bs / OS_PAGE;
            let last = ((i + 1) * bs - 1) / OS_PAGE;
            (first..=last).any(|j| purge_bits[j / 64] & (1u64 << (j % 64)) != 0)
        };
        let mut kept: *mut Block = ptr::null_mut();
        let mut removed = 0u32;
        // Rebuild `free` in address order from `free_bits` (the old links may have been
        // zeroed by the purge): kept blocks get their links written, purged ones are marked.
        for w in (0..BLOCK_MAP_WORDS).rev() {
            let mut bits = free_bits[w];
            while bits != 0 {
                let top = 63 - bits.leading_zeros() as usize;
                bits &= !(1u64 << top);
                let i = w * 64 + top;
                if touches_purged(i) {
                    let m = &map.blocks[w];
                    m.set(m.get() | (1u64 << top));
                    removed += 1;
                } else {
                    let blk = (start + i * bs) as *mut Block;
                    // SAFETY: block `i` is a free block of this page whose OS pages were not
                    // purged; we own its link word.
                    unsafe { (*blk).next = kept };
                    kept = blk;
                }
            }
        }
        self.free.set(kept);
        self.purged_blocks.set(self.purged_blocks.get() + removed);
        self.purged_bytes.set(self.purged_bytes.get() + bytes);
        counters::add(&counters::PAGE_PURGED, bytes);
        counters::add(&counters::PURGED, bytes);
        bytes
    }

    /// Forgets the purge maps and the page's counters, as it goes back to its segment.
    ///
    /// # Safety
    /// The caller holds the page and no block of it is in use.
    pub unsafe fn reset_purge_state(&self) {
        if self.purged_blocks.get() != 0 || self.purged_bytes.get() != 0 {
            let map = self.purge_map();
            for w in map.blocks.iter() {
                w.set(0);
            }
            for w in map.os_pages.iter() {
                w.set(0);
            }
            counters::sub(&counters::PAGE_PURGED, self.purged_bytes.get());
            self.purged_blocks.set(0);
            self.purged_bytes.set(0);
        }
    }

    /// Counts the purged-block map.
    ///
    /// # Safety
    /// The caller holds the page.
    pub unsafe fn purged_map_count(&self) -> (u32, usize) {
        let map = self.purge_map();
        let blocks = map.blocks.iter().map(|w| w.get().count_ones()).sum();
        let os: usize = map
            .os_pages
            .iter()
            .map(|w| w.get().count_ones() as usize)
            .sum();
        (blocks, os * OS_PAGE)
    }

    /// Whether block index `i` is marked purged.
    ///
    /// # Safety
    /// The caller holds the page.
    pub unsafe fn is_purged_block(&self, i: usize) -> bool {
        self.purge_map().blocks[i / 64].get() & (1u64 << (i % 64)) != 0
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
            // SAFETY: forwarded contract.
            if unsafe { self.is_purged_block((a - start) / bs) } {
                return Err("purged block on a free list");
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
