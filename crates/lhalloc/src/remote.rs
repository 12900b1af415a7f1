//! Frees from a thread that does not hold the block's page. The freeing thread batches them
//! (as snmalloc and jemalloc's thread caches do): blocks go onto a per-thread chain per page,
//! and a whole chain is pushed onto the page's `thread_free` list with one CAS when it is long
//! enough, when its slot is needed for another page, when the thread has too many blocks
//! pending, on the thread's allocation slow paths and at thread exit. The holder collects the
//! whole list with one swap later.
//!
//! If the page was "full" (held by nobody, FULL flag set), the CAS that clears the flag makes
//! the freeing thread responsible for moving the page to its class pool; exactly one thread
//! wins that, so a page is never pooled twice. That CAS and the linking happen under the pool
//! lock, so a `fork` (whose prepare handler takes every pool lock) never sees the page half
//! handed over. Pages emptied this way are found by the purge round or the next refill,
//! without waiting for any owner.
//!
//! Batch invariants (per thread): every chain holds blocks of its `page` only, linked from
//! `head` to `tail`, `n` of them; `pending == Σ n`; batched blocks still count in their page's
//! `used`, so a page with batched blocks is never freed.

use core::cell::Cell;
use core::ptr;
use core::sync::atomic::Ordering;

use crate::page::{tf_count, tf_head, Block, Page, FULL, TF_COUNT_SHIFT};
use crate::pool::{self, POOLS};
use crate::purge_flags;

/// Chains per thread (direct-mapped by page address).
pub const BATCH_SLOTS: usize = 64;
/// Blocks bigger than this are pushed at once, not batched (bounds what a thread that stops
/// freeing can keep pending: at most `PENDING_MAX * BATCH_MAX_BLOCK` bytes).
pub const BATCH_MAX_BLOCK: usize = 1024;
/// A chain is pushed when it reaches this many blocks.
pub const CHAIN_MAX: u32 = 64;
/// Everything is pushed when the thread has this many blocks pending.
pub const PENDING_MAX: u32 = 256;

struct Chain {
    page: Cell<*const Page>,
    head: Cell<*mut Block>,
    tail: Cell<*mut Block>,
    n: Cell<u32>,
}

/// A thread's pending remote frees.
pub struct RemoteBatch {
    chains: [Chain; BATCH_SLOTS],
    pending: Cell<u32>,
}

#[inline]
fn slot_of(page: &Page) -> usize {
    let a = page as *const Page as usize;
    ((a >> 6) ^ (a >> 22)) % BATCH_SLOTS
}

impl RemoteBatch {
    /// An empty batch.
    pub const fn new() -> RemoteBatch {
        RemoteBatch {
            chains: [const {
                Chain {
                    page: Cell::new(ptr::null()),
                    head: Cell::new(ptr::null_mut()),
                    tail: Cell::new(ptr::null_mut()),
                    n: Cell::new(0),
                }
            }; BATCH_SLOTS],
            pending: Cell::new(0),
        }
    }

    /// Frees block `p` of `page` remotely, batched.
    ///
    /// # Safety
    /// `p` is a live block of `page` (a size-classed page), not used any more by anybody; the
    /// batch belongs to the calling thread.
    #[inline]
    pub unsafe fn free(&self, page: &Page, p: *mut u8) {
        let b = p.cast::<Block>();
        if page.bsize() > BATCH_MAX_BLOCK {
            // SAFETY: forwarded contract: `b` is a dead block of `page`.
            unsafe { push_chain(page, b, b, 1) };
            return;
        }
        let c = &self.chains[slot_of(page)];
        if !core::ptr::eq(c.page.get(), page) {
            if !c.page.get().is_null() {
                // SAFETY: the chain holds dead blocks of its page.
                unsafe { self.flush_chain(c) };
            }
            c.page.set(page);
            c.tail.set(b);
        }
        // SAFETY: `b` is a dead block that we own now; its first word becomes the link.
        unsafe { (*b).next = c.head.get() };
        c.head.set(b);
        c.n.set(c.n.get() + 1);
        self.pending.set(self.pending.get() + 1);
        if self.pending.get() >= PENDING_MAX {
            self.flush();
        } else if c.n.get() >= CHAIN_MAX {
            // SAFETY: the chain holds dead blocks of its page.
            unsafe { self.flush_chain(c) };
        }
    }

    /// Pushes every chain to its page.
    pub fn flush(&self) {
        if self.pending.get() == 0 {
            return;
        }
        for c in self.chains.iter() {
            if !c.page.get().is_null() {
                // SAFETY: the chain holds dead blocks of its page.
                unsafe { self.flush_chain(c) };
            }
        }
    }

    /// # Safety
    /// `c` is one of this batch's chains and is not empty.
    unsafe fn flush_chain(&self, c: &Chain) {
        // SAFETY: chains hold blocks of their page, which stays alive while they count as used.
        let page = unsafe { &*c.page.get() };
        // SAFETY: the chain links dead blocks of `page` from head to tail.
        unsafe { push_chain(page, c.head.get(), c.tail.get(), c.n.get()) };
        self.pending.set(self.pending.get() - c.n.get());
        c.page.set(ptr::null());
        c.head.set(ptr::null_mut());
        c.tail.set(ptr::null_mut());
        c.n.set(0);
    }
}

/// The `thread_free` word after pushing a chain of `n` blocks starting at `head` onto `cur`.
#[inline]
fn pushed(cur: usize, head: *mut Block, n: u32) -> usize {
    head as usize | (((tf_count(cur) + n) as usize) << TF_COUNT_SHIFT)
}

/// Pushes the chain `head ..= tail` of `n` dead blocks of `page` onto its `thread_free` list
/// with one CAS; hands a FULL page to its pool.
///
/// # Safety
/// The blocks are dead blocks of `page` (a size-classed page), linked from `head` to `tail`,
/// owned by the caller; the caller does not hold the page.
#[inline]
pub unsafe fn push_chain(page: &Page, head: *mut Block, tail: *mut Block, n: u32) {
    let mut cur = page.thread_free.load(Ordering::Relaxed);
    loop {
        if cur & FULL != 0 {
            // SAFETY: forwarded contract.
            unsafe { push_chain_full(page, head, tail, n) };
            return;
        }
        // SAFETY: `tail` is a dead block we own; its first word is its link.
        unsafe { (*tail).next = tf_head(cur) };
        match page.thread_free.compare_exchange_weak(
            cur,
            pushed(cur, head, n),
            Ordering::Release,
            Ordering::Relaxed,
        ) {
            Ok(_) => break,
            Err(c) => cur = c,
        }
    }
    if page.in_pool.load(Ordering::Relaxed) {
        purge_flags::note_pool_remote(page.class.get() as usize);
    }
}

/// [`push_chain`] for a page that looked FULL: under the pool lock, so that clearing the flag
/// and pooling the page are one step for `fork`.
///
/// # Safety
/// As [`push_chain`].
#[cold]
unsafe fn push_chain_full(page: &Page, head: *mut Block, tail: *mut Block, n: u32) {
    let cls = page.class.get() as usize;
    let now = crate::os::now_ns();
    let mut pool = POOLS[cls].lock();
    let mut cur = page.thread_free.load(Ordering::Acquire);
    loop {
        // SAFETY: `tail` is a dead block we own; its first word is its link.
        unsafe { (*tail).next = tf_head(cur) };
        match page.thread_free.compare_exchange_weak(
            cur,
            pushed(cur, head, n),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => break,
            Err(c) => cur = c,
        }
    }
    if cur & FULL != 0 {
        // We cleared the flag: the page is ours to hand to the pool. The Acquire above made
        // the former holder's writes to the page visible; the pool lock publishes them on.
        // SAFETY: we hold the pool lock, and the page (unowned, on no list, no longer FULL).
        unsafe { pool::link_given_up(&mut pool, page, now) };
    } else if page.in_pool.load(Ordering::Relaxed) {
        purge_flags::note_pool_remote(cls);
    }
}

/// Gives up a page whose blocks are all handed out: clears the owner and sets the FULL flag.
/// Returns false (and keeps the page, owner restored) when remote frees arrived meanwhile;
/// the caller should then collect them.
///
/// # Safety
/// The caller (heap `me`) holds the page, which has no free block.
pub unsafe fn retire_full(page: &Page, me: usize) -> bool {
    page.owner.store(0, Ordering::Relaxed);
    match page
        .thread_free
        .compare_exchange(0, FULL, Ordering::Release, Ordering::Relaxed)
    {
        Ok(_) => true,
        Err(_) => {
            page.owner.store(me, Ordering::Relaxed);
            false
        }
    }
}
