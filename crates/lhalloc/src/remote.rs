//! Frees from a thread that does not hold the block's page: one CAS push on the page's
//! `thread_free` list (the holder collects the whole list with one swap later). If the page
//! was "full" (held by nobody, FULL flag set), the CAS that clears the flag also makes the
//! freeing thread responsible for moving the page to its class pool; exactly one thread wins
//! that, so a page is never pooled twice. Pages emptied this way are found by the purger
//! (`purge.rs`) or by the next refill, without waiting for any owner.

use core::sync::atomic::Ordering;

use crate::page::{Block, Page, FULL};
use crate::pool;

/// Pushes block `p` on `page`'s remote free list.
///
/// # Safety
/// `p` is a live block of `page`, not used any more by the caller.
#[inline]
pub unsafe fn free_remote(page: &Page, p: *mut u8) {
    let b = p.cast::<Block>();
    let mut cur = page.thread_free.load(Ordering::Relaxed);
    loop {
        // SAFETY: `b` is a dead block of this page, at least 16 bytes long, that we own now.
        unsafe { (*b).next = (cur & !FULL) as *mut Block };
        match page.thread_free.compare_exchange_weak(
            cur,
            b as usize,
            Ordering::AcqRel,
            Ordering::Relaxed,
        ) {
            Ok(_) => break,
            Err(c) => cur = c,
        }
    }
    if cur & FULL != 0 {
        // We cleared the flag: the page is ours to hand to the pool. The Acquire above made
        // the former holder's writes to the page visible; the pool lock publishes them on.
        pool::push(page);
        crate::purge::maybe_start();
    }
}

/// Gives up a page whose blocks are all handed out: clears the owner and sets the FULL flag.
/// Returns false (and keeps the page, owner restored) when remote frees arrived meanwhile;
/// the caller should then collect them.
pub fn retire_full(page: &Page, me: usize) -> bool {
    debug_assert!(!page.has_free());
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
