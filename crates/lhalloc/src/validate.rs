//! The debug validator: checks the invariants written next to the structures (`page.rs`,
//! `segment.rs`, `pool.rs`, `heap.rs`) with every allocator lock held. Pages held by other
//! threads are only checked for what they cannot be changing; call it while other threads are
//! quiet for the strongest check. It does not allocate while holding the locks.

use core::sync::atomic::Ordering;

use crate::heap;
use crate::init;
use crate::page::{Page, FULL};
use crate::pool::{BUCKETS, POOLS};
use crate::segment::{Segment, SEGMENTS, SLOTS, SLOT_SIZE};
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
    init::lock_all();
    let r = check();
    // SAFETY: we took all the locks just above.
    unsafe { init::unlock_all() };
    r.map_err(|e| {
        format!(
            "lhalloc invariant broken: {} (at {:#x}; {} vs {})",
            e.what, e.at, e.a, e.b
        )
    })
}

fn check_page_lists(page: &Page, mine: bool) -> Result<(), Broken> {
    let at = page as *const Page as usize;
    let bs = page.bsize();
    let cls = page.class.get() as usize;
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
        if page.in_pool.get() || page.owner.load(Ordering::Relaxed) != 0 {
            return fail("FULL page is held", at, 0, 0);
        }
        if page.has_free() {
            return fail("FULL page has free blocks", at, 0, 0);
        }
    }
    if !(mine || page.in_pool.get() || tf & FULL != 0) {
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
    if used + nfree != cap {
        return fail(
            "used + |free| != capacity",
            at,
            (used + nfree) as usize,
            cap as usize,
        );
    }
    // SAFETY: remote pushes only prepend, so the snapshot list stays intact while we walk it.
    let nremote = unsafe { page.list_len((tf & !FULL) as *mut _, cap) }.map_err(|w| Broken {
        what: w,
        at,
        a: 1,
        b: 0,
    })?;
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
    {
        // SAFETY: the segment lock is held by `lock_all`; this reads the state without a guard.
        let st = unsafe { SEGMENTS.peek() };
        let mut seg = st.head;
        while !seg.is_null() {
            // SAFETY: segments on the list are mapped; their headers are guarded by the lock.
            let s: &Segment = unsafe { &*seg };
            let free = s.free_slots.get();
            let dirty = s.dirty_slots.get();
            if free & 1 != 0 {
                return fail("slot 0 marked free", seg as usize, 0, 0);
            }
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
                if free & (1 << i) != 0 {
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
                    if free & (1 << j) != 0 || s.head[j].load(Ordering::Relaxed) as usize != i {
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
                if page.in_pool.get() {
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
        if dirty_total != st.dirty_bytes {
            return fail("dirty_bytes out of sync", 0, dirty_total, st.dirty_bytes);
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
                if !page.in_pool.get()
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
