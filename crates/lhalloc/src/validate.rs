//! The debug validator: checks the invariants written next to the structures (`page.rs`,
//! `segment.rs`, `pool.rs`, `heap.rs`) with every allocator lock held. Pages held by other
//! threads are only checked for what they cannot be changing; call it while other threads are
//! quiet for the strongest check. It does not allocate while holding the locks.

use core::sync::atomic::Ordering;

use crate::counters;
use crate::geometry::{os_pages, OS_PAGE, SLOTS, SLOT_SIZE};
use crate::heap;
use crate::init;
use crate::page::{Page, FULL, SOLO_CLASS};
use crate::pool::{BUCKETS, POOLS};
use crate::segment::{Segment, ALL_FREE, SEGMENTS};
use crate::size_class::{self, NUM_CLASSES};

/// A broken invariant: what, and the address of the page or segment concerned.
#[derive(Debug, Clone, Copy)]
struct Broken {
    what: &'static str,
    at: usize,
    a: usize,
    b: usize,
}

fn fail(what: &'static str, at: usize, a: usize, b: usize) -> Result<(), Broken> {
    Err(Broken { what, at, a, b })
}

/// Checks every invariant it can; `Err` describes the first one broken.
pub fn validate() -> Result<(), String> {
    init::ensure();
    let held = init::lock_all();
    if held != 0 {
        // SAFETY: we took the others just above.
        unsafe { init::unlock_all(held) };
        return Err("lhalloc validate: called with an allocator lock held".into());
    }
    let r = check();
    // SAFETY: we took all the locks just above.
    unsafe { init::unlock_all(0) };
    r.map_err(|e| {
        format!(
            "lhalloc invariant broken: {} (at {:#x}; {} vs {})",
            e.what, e.at, e.a, e.b
        )
    })
}

fn check_solo(page: &Page) -> Result<(), Broken> {
    let at = page as *const Page as usize;
    let span = page.slots.get() as usize * SLOT_SIZE;
    if page.bsize() != span
        || page.used.load(Ordering::Relaxed) != 1
        || page.capacity.load(Ordering::Relaxed) != 1
        || page.reserved.get() != 1
        || !page.free.get().is_null()
    {
        return fail(
            "solo page not shaped as one block over its slots",
            at,
            page.bsize(),
            span,
        );
    }
    if page.solo_size.load(Ordering::Relaxed) > span {
        return fail(
            "solo block larger than its slots",
            at,
            page.solo_size.load(Ordering::Relaxed),
            span,
        );
    }
    if page.solo_touched.load(Ordering::Relaxed)
        < os_pages(page.solo_size.load(Ordering::Relaxed)).min(span)
    {
        return fail(
            "solo touched bytes below its size",
            at,
            page.solo_touched.load(Ordering::Relaxed),
            0,
        );
    }
    Ok(())
}

fn check_page_lists(page: &Page, mine: bool) -> Result<(), Broken> {
    let at = page as *const Page as usize;
    let bs = page.bsize();
    let cls = page.class.get() as usize;
    if page.class.get() == SOLO_CLASS {
        return check_solo(page);
    }
    if cls >= NUM_CLASSES || size_class::block_size(cls) != bs {
        return fail("block size does not match the class", at, bs, cls);
    }
    let reserved = page.reserved.get() as usize;
    if reserved != page.slots.get() as usize * SLOT_SIZE / bs {
        return fail("reserved != slots * 64 KiB / block_size", at, reserved, bs);
    }
    let cap = page.capacity.load(Ordering::Relaxed);
    if cap as usize > reserved {
        return fail("capacity > reserved", at, cap as usize, reserved);
    }
    let tf = page.thread_free.load(Ordering::Acquire);
    if tf & FULL != 0 {
        if page.in_pool.load(Ordering::Relaxed) || page.owner.load(Ordering::Relaxed) != 0 {
            return fail("FULL page is held", at, 0, 0);
        }
        // SAFETY: nobody holds a FULL page, so its free state cannot change under us (the
        // pool lock its hand-off needs is held).
        if unsafe { page.has_free() } {
            return fail("FULL page has free blocks", at, 0, 0);
        }
    }
    if !(mine || page.in_pool.load(Ordering::Relaxed) || tf & FULL != 0) {
        return Ok(());
    }
    // SAFETY: we hold the page's free list (our own page, or its pool lock, or FULL pages that
    // nobody may pop from) and its blocks belong to it.
    let nfree = unsafe { page.list_len(page.free.get(), cap) }.map_err(|w| Broken {
        what: w,
        at,
        a: 0,
        b: 0,
    })?;
    let used = page.used.load(Ordering::Relaxed);
    let purged = page.purged_blocks.get();
    if used + nfree + purged != cap {
        return fail(
            "used + |free| + purged_blocks != capacity",
            at,
            (used + nfree + purged) as usize,
            cap as usize,
        );
    }
    // SAFETY: we hold the page's maps as we hold its free list.
    let (map_blocks, map_bytes) = unsafe { page.purged_map_count() };
    if map_blocks != purged || map_bytes != page.purged_bytes.get() {
        return fail(
            "purge maps out of sync",
            at,
            map_blocks as usize,
            purged as usize,
        );
    }
    if map_bytes > os_pages(cap as usize * bs) || map_bytes % OS_PAGE != 0 {
        return fail("purged bytes beyond the carved part", at, map_bytes, 0);
    }
    // SAFETY: remote pushes only prepend, so the snapshot list stays intact while we walk it.
    let nremote = unsafe { page.list_len(crate::page::tf_head(tf), cap) }.map_err(|w| Broken {
        what: w,
        at,
        a: 1,
        b: 0,
    })?;
    if nremote != crate::page::tf_count(tf) {
        return fail(
            "thread_free count != list length",
            at,
            crate::page::tf_count(tf) as usize,
            nremote as usize,
        );
    }
    if nremote > used {
        return fail("|thread_free| > used", at, nremote as usize, used as usize);
    }
    Ok(())
}

fn check() -> Result<(), Broken> {
    let me = heap::current_id();
    let mut pooled = 0usize;
    // Segments.
    let mut dirty_total = 0usize;
    let mut nseg = 0usize;
    let mut empty = 0usize;
    {
        // SAFETY: the segment lock is held by `lock_all`; this reads the state without a guard.
        let st = unsafe { SEGMENTS.peek() };
        let mut seg = st.head;
        while !seg.is_null() {
            // SAFETY: segments on the list are mapped; their headers are guarded by the lock.
            let s: &Segment = unsafe { &*seg };
            let free = s.free_slots.get();
            let dirty = s.dirty_slots.get();
            let purging = s.purging_slots.get();
            if (free | purging) & 1 != 0 {
                return fail("slot 0 marked free", seg as usize, 0, 0);
            }
            if free & purging != 0 {
                return fail("slot both free and purging", seg as usize, 0, 0);
            }
            if free | purging == ALL_FREE {
                empty += 1;
            }
            nseg += 1;
            if dirty & !free != 0 {
                return fail(
                    "dirty slot not free",
                    seg as usize,
                    dirty as usize,
                    free as usize,
                );
            }
            dirty_total += dirty.count_ones() as usize * SLOT_SIZE;
            let mut i = 1;
            while i < SLOTS {
                if (free | purging) & (1 << i) != 0 {
                    i += 1;
                    continue;
                }
                let h = s.head[i].load(Ordering::Relaxed) as usize;
                if h != i {
                    return fail("in-use slot does not start a page", seg as usize, i, h);
                }
                let page = &s.pages[i];
                let n = page.slots.get() as usize;
                if n == 0 || i + n > SLOTS || page.bsize() == 0 {
                    return fail("bad page span", seg as usize, i, n);
                }
                for j in i..i + n {
                    if (free | purging) & (1 << j) != 0
                        || s.head[j].load(Ordering::Relaxed) as usize != i
                    {
                        return fail(
                            "page slot marked free or headed elsewhere",
                            seg as usize,
                            j,
                            i,
                        );
                    }
                }
                // `thread_free` first: once FULL is seen (Acquire), `owner` is 0 until the page
                // is pooled, which needs a pool lock that we hold.
                let tf = page.thread_free.load(Ordering::Acquire);
                let owner = page.owner.load(Ordering::Relaxed);
                if page.in_pool.load(Ordering::Relaxed) {
                    pooled += 1;
                    if owner != 0 {
                        return fail(
                            "pooled page has an owner",
                            page as *const _ as usize,
                            owner,
                            0,
                        );
                    }
                }
                if page.class.get() == SOLO_CLASS && owner != crate::page::SOLO_OWNER {
                    return fail(
                        "solo page with a thread owner",
                        page as *const _ as usize,
                        owner,
                        0,
                    );
                }
                if owner != 0 && tf & FULL != 0 {
                    return fail(
                        "owned page flagged FULL",
                        page as *const _ as usize,
                        owner,
                        0,
                    );
                }
                check_page_lists(page, owner == me)?;
                i += n;
            }
            seg = s.next.get();
        }
        // Stale tails shrink without the lock (a holder growing its block), so only their
        // range is checked here: a byte subtracted twice would wrap the counter.
        let stale_counter = counters::get(&counters::STALE);
        if stale_counter > nseg * crate::geometry::SEGMENT_SIZE {
            return fail("STALE counter out of range", 0, stale_counter, nseg);
        }
        let dirty_counter = counters::get(&counters::DIRTY);
        if dirty_total != dirty_counter {
            return fail("DIRTY counter out of sync", 0, dirty_total, dirty_counter);
        }
        if nseg != st.count {
            return fail("segment count out of sync", 0, nseg, st.count);
        }
        let empty_counter = crate::segment::EMPTY_SEGMENTS.load(Ordering::Relaxed);
        if empty != empty_counter {
            return fail("EMPTY_SEGMENTS out of sync", 0, empty, empty_counter);
        }
    }
    // Pool lists.
    let mut listed = 0usize;
    for (cls, lock) in POOLS.iter().enumerate() {
        // SAFETY: the pool lock is held by `lock_all`.
        let pool = unsafe { lock.peek() };
        let mut n = 0;
        for b in 0..BUCKETS {
            let mut prev: *const Page = core::ptr::null();
            let mut p = pool.heads[b];
            while !p.is_null() {
                // SAFETY: pool members are live descriptors guarded by the held pool lock.
                let page = unsafe { &*p };
                if !page.in_pool.load(Ordering::Relaxed)
                    || page.bucket.get() as usize != b
                    || page.class.get() as usize != cls
                {
                    return fail("pool list member out of place", p as usize, cls, b);
                }
                if page.prev.get() != prev {
                    return fail("pool back link broken", p as usize, 0, 0);
                }
                n += 1;
                if n > pool.len {
                    return fail("pool list longer than its length", p as usize, n, pool.len);
                }
                prev = p;
                p = page.next.get();
            }
        }
        if n != pool.len {
            return fail("pool length out of sync", cls, n, pool.len);
        }
        listed += n;
    }
    if listed != pooled {
        return fail(
            "pages marked in_pool != pages on pool lists",
            0,
            pooled,
            listed,
        );
    }
    // The calling thread's heap.
    let mut r = Ok(());
    heap::for_each_active_page(|page| {
        if r.is_ok() && page.owner.load(Ordering::Relaxed) != me {
            r = fail(
                "active page not owned by its heap",
                page as *const _ as usize,
                0,
                0,
            );
        }
    });
    r
}
