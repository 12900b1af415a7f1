//! Solo blocks: a block that has grown by `realloc` past [`PROMOTE_MIN`], or a `malloc` of
//! more than `SMALL_MAX` up to [`MALLOC_MAX`], lives in a run of slots of its own (a *solo
//! page*), where later growth is in place: first into the rest of
//! its slots, then into the free slots right after it in its segment. Clean headroom costs
//! address space, not memory (only the bytes written become resident); no system call and no
//! new mapping is involved (unlike moving to a large mapping), and a block at least one OS
//! page big owns whole OS pages anyway. Solo pages take dirty slots first (the block's bytes
//! reuse resident memory); what those slots hold past the block — when placed, or taken as
//! headroom while growing — is its stale tail, counted in `counters::STALE` and purged once
//! it is the purge delay old (`Page::solo_stale`). Freed solo pages go back to their segment like
//! any empty page (dirty, purged after the delay).
//!
//! Invariants: a solo page has `owner == SOLO_OWNER`, `class == SOLO_CLASS`,
//! `block_size == slots * SLOT_SIZE`, `used == capacity == reserved == 1`, no free block,
//! `solo_size <= block_size`, and `solo_touched == os_pages(max solo_size so far)`.

use core::sync::atomic::Ordering;

use crate::counters;
use crate::geometry::{os_pages, round_up, MIN_ALIGN, OS_PAGE, SLOTS, SLOT_SIZE};
use crate::page::Page;
use crate::segment;

/// Blocks that grow by `realloc` past this size become solo blocks: from one OS page up, a
/// block owns whole OS pages, so a slot of its own wastes no physical memory.
pub const PROMOTE_MIN: usize = OS_PAGE;
/// Largest solo block: a segment's page slots.
pub const SOLO_MAX: usize = (SLOTS - 1) * SLOT_SIZE;
/// Largest `malloc` served as a solo block (above `SMALL_MAX`): a quarter of a segment, so
/// that a segment still holds several of them next to its other pages. Larger requests get a
/// mapping of their own. Below this, buffers freed and allocated again (request bodies,
/// socket reads, exports) reuse a freed block's dirty slots instead of a fresh mapping whose
/// every OS page faults when written.
pub const MALLOC_MAX: usize = 16 * SLOT_SIZE;

fn slots_for(size: usize) -> usize {
    size.div_ceil(SLOT_SIZE).max(1)
}

/// Usable bytes of a solo block of `size` bytes.
#[inline]
fn usable_of(size: usize) -> usize {
    round_up(size, MIN_ALIGN).unwrap_or(size)
}

/// Allocates a solo block of `size` bytes (`PROMOTE_MIN <= size <= SOLO_MAX`); null on OOM.
/// Its content is undefined.
pub fn alloc(size: usize) -> *mut u8 {
    debug_assert!(size <= SOLO_MAX);
    let page = segment::alloc_solo(slots_for(size), size);
    if page.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: a freshly taken solo page, ours.
    let page = unsafe { &*page };
    // `alloc_solo` set the touched bytes (under the segment lock, for the validator).
    counters::add(&counters::CARVED, page.solo_touched.load(Ordering::Relaxed));
    counters::ORPHAN_ALLOCATED.fetch_add(usable_of(size), Ordering::Relaxed);
    page.start.get()
}

/// Usable bytes of the solo block of `page`.
///
/// # Safety
/// `page` is a solo page whose block is live.
#[inline]
pub unsafe fn usable(page: &Page) -> usize {
    usable_of(page.solo_size.load(Ordering::Relaxed))
}

/// Resizes the solo block of `page` to `size` bytes in place if its slots, or the free
/// slots right after them, allow. Returns whether it worked.
///
/// # Safety
/// The caller owns the live solo block of `page`.
pub unsafe fn resize(page: &Page, size: usize) -> bool {
    let old = page.solo_size.load(Ordering::Relaxed);
    let slots = page.slots.get() as usize;
    let need = slots_for(size);
    if need > slots {
        // Ask for twice the slots first, so that a block that keeps growing moves rarely.
        let ok = (need.max(slots * 2) < SLOTS
            // SAFETY: we own the solo page.
            && unsafe { segment::grow_solo(page, need.max(slots * 2)) })
            // SAFETY: as above.
            || (need < SLOTS && unsafe { segment::grow_solo(page, need) });
        if !ok {
            return false;
        }
    } else if need * 4 <= slots {
        // Much smaller now: give the tail slots back (the new size first, so that it never
        // exceeds the slots).
        page.solo_size.store(size, Ordering::Relaxed);
        // SAFETY: we own the page and nothing lives past `need` slots.
        unsafe { segment::shrink_solo(page, need) };
    }
    // Order for readers under the segment lock (the validator): the slots grow before the
    // size, and the touched bytes before the size, so that `size <= span` and
    // `touched >= os_pages(size)` hold at every step.
    let span = page.slots.get() as usize * SLOT_SIZE;
    let touched = os_pages(size).min(span);
    let was = page.solo_touched.load(Ordering::Relaxed);
    if touched > was {
        counters::add(&counters::CARVED, touched - was);
        page.solo_touched.store(touched, Ordering::SeqCst);
        // The block grew into its stale tail (if any is still counted): that memory is
        // counted as touched now. One read-modify-write against the purge round's swap.
        let grown = (touched - was).min(u32::MAX as usize) as u32;
        if let Ok(c) = page
            .stale_counted
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                (c != 0).then(|| c.saturating_sub(grown))
            })
        {
            counters::sub(&counters::STALE, (c - c.saturating_sub(grown)) as usize);
        }
        // A purge round may be purging the stale tail past the old `touched`: the new bytes
        // are written only once it is done (see `segment::purge`).
        while page.tail_busy.load(Ordering::SeqCst) {
            crate::os::yield_now();
        }
    } else if span < was {
        counters::sub(&counters::CARVED, was - span);
        page.solo_touched.store(span, Ordering::Relaxed);
    }
    page.solo_size.store(size, Ordering::Relaxed);
    let (a, b) = (usable_of(size), usable_of(old));
    if a >= b {
        counters::ORPHAN_ALLOCATED.fetch_add(a - b, Ordering::Relaxed);
    } else {
        counters::ORPHAN_ALLOCATED.fetch_sub(b - a, Ordering::Relaxed);
    }
    true
}

/// Frees the solo block of `page`.
///
/// # Safety
/// The block is live and not used any more by anybody.
pub unsafe fn free(page: &Page) {
    counters::ORPHAN_ALLOCATED.fetch_sub(
        usable_of(page.solo_size.load(Ordering::Relaxed)),
        Ordering::Relaxed,
    );
    // SAFETY: the solo page holds one block, now dead; whoever frees it holds the page.
    unsafe { segment::free_page(page) };
}
