//! Large blocks (`malloc` > 1 MiB, `calloc` or aligned requests > 128 KiB, or alignment > 64
//! KiB; a `malloc` of 128 KiB - 1 MiB is a solo block, `solo::MALLOC_MAX`): each gets its own
//! mapping, whose base is aligned to 4 MiB so that `segment::region_of` finds its header; the
//! block starts at `base + offset` with `offset = max(64, align)` (or 4 MiB when the alignment
//! is larger).
//!
//! Freed mappings up to [`CACHE_MAX_BLOCK`] are kept in a small cache for up to the purge delay
//! and reused best-fit (a mapping is reused only if it wastes at most a quarter), so that a
//! program cycling 256 KiB buffers does not pay mmap + page faults each time; the purger
//! unmaps entries older than the delay, and the cache never holds more than the purge cap.
//! Growth tries `mremap` in place first.
//!
//! Invariant (cache lock): `cached_bytes == Σ entries' sizes <= purge cap`.

use core::ptr;

use crate::counters::{self, LARGE_CACHED, LARGE_LIVE, LARGE_USABLE, MAPPED, PURGED};
use crate::geometry::{round_up, KIND_LARGE, OS_PAGE, SEGMENT_SIZE};
use crate::lock::Lock;
use crate::os;
/// Largest mapping kept in the cache.
pub const CACHE_MAX_BLOCK: usize = 16 << 20;
const CACHE_ENTRIES: usize = 16;
const HEADER: usize = 64;

/// Header at the base of a large mapping.
#[repr(C)]
pub struct LargeHeader {
    pub kind: u32,
    /// Bytes mapped from `base`.
    pub map_size: usize,
    /// Distance from `base` to the block.
    pub offset: usize,
}

#[derive(Clone, Copy)]
struct Entry {
    base: *mut u8,
    size: usize,
    freed_at: u64,
}

/// The cache of freed mappings.
pub struct Cache {
    entries: [Entry; CACHE_ENTRIES],
    len: usize,
    bytes: usize,
}

// SAFETY: the entries' pointers name mappings owned by the cache, touched only under its lock.
unsafe impl Send for Cache {}

/// Cache lock (innermost in the lock order).
pub static CACHE: Lock<Cache> = Lock::new(Cache {
    entries: [Entry {
        base: ptr::null_mut(),
        size: 0,
        freed_at: 0,
    }; CACHE_ENTRIES],
    len: 0,
    bytes: 0,
});

fn take_cached(need: usize) -> Option<(*mut u8, usize)> {
    let mut c = CACHE.lock();
    let mut best: Option<usize> = None;
    for i in 0..c.len {
        let e = c.entries[i];
        if e.size >= need
            && e.size - need <= need / 4
            && best.map_or(true, |b| e.size < c.entries[b].size)
        {
            best = Some(i);
        }
    }
    let i = best?;
    let e = c.entries[i];
    c.len -= 1;
    c.entries[i] = c.entries[c.len];
    c.bytes -= e.size;
    counters::sub(&LARGE_CACHED, e.size);
    Some((e.base, e.size))
}

/// Allocates a large block; `zero` asks for zeroed memory. Null on failure.
pub fn alloc(size: usize, align: usize, zero: bool) -> *mut u8 {
    let (offset, map_align, phase) = if align <= SEGMENT_SIZE {
        (align.max(HEADER), SEGMENT_SIZE, 0)
    } else {
        (SEGMENT_SIZE, align, SEGMENT_SIZE)
    };
    let Some(need) = offset.checked_add(size).and_then(|n| round_up(n, OS_PAGE)) else {
        return ptr::null_mut();
    };
    if need > isize::MAX as usize / 2 {
        return ptr::null_mut();
    }
    let mut reused = false;
    let (base, map_size) = match if align <= SEGMENT_SIZE {
        take_cached(need)
    } else {
        None
    } {
        Some(e) => {
            reused = true;
            e
        }
        None => {
            let b = os::map_aligned(need, map_align, phase);
            if b.is_null() {
                return b;
            }
            counters::add(&MAPPED, need);
            (b, need)
        }
    };
    let hdr = base.cast::<LargeHeader>();
    // SAFETY: `base` starts a mapping of `map_size >= offset + size` bytes that we own; the
    // header fits in the first 64 bytes, before the block.
    unsafe {
        hdr.write(LargeHeader {
            kind: KIND_LARGE,
            map_size,
            offset,
        });
    }
    counters::add(&LARGE_LIVE, map_size);
    counters::add(&LARGE_USABLE, map_size - offset);
    // SAFETY: `offset < map_size`, inside the mapping.
    let p = unsafe { base.add(offset) };
    if zero && reused {
        // SAFETY: `[p, p + size)` lies inside the mapping and is ours.
        unsafe { ptr::write_bytes(p, 0, size) };
    }
    p
}

/// Usable bytes of the large block whose mapping starts at `base`.
///
/// # Safety
/// `base` starts the mapping of a live large block.
pub unsafe fn usable(base: *mut u8) -> usize {
    // SAFETY: per the contract the header is valid.
    let h = unsafe { &*base.cast::<LargeHeader>() };
    h.map_size - h.offset
}

/// Frees the large block whose mapping starts at `base`.
///
/// # Safety
/// `base` starts the mapping of a live large block that is not used any more.
pub unsafe fn free(base: *mut u8) {
    // SAFETY: per the contract the header is valid.
    let (map_size, offset) = unsafe {
        let h = &*base.cast::<LargeHeader>();
        (h.map_size, h.offset)
    };
    counters::sub(&LARGE_LIVE, map_size);
    counters::sub(&LARGE_USABLE, map_size - offset);
    let delay = crate::options::purge_delay_ns();
    let cap = crate::options::purge_cap_bytes();
    if delay > 0 && map_size <= CACHE_MAX_BLOCK && map_size <= cap {
        let now = os::now_ns();
        let mut evicted: Option<Entry> = None;
        {
            let mut c = CACHE.lock();
            // Make room: evict the oldest entries while full or over the cap.
            while c.len == CACHE_ENTRIES || c.bytes + map_size > cap {
                let mut oldest = 0;
                for i in 1..c.len {
                    if c.entries[i].freed_at < c.entries[oldest].freed_at {
                        oldest = i;
                    }
                }
                let e = c.entries[oldest];
                c.len -= 1;
                c.entries[oldest] = c.entries[c.len];
                c.bytes -= e.size;
                counters::sub(&LARGE_CACHED, e.size);
                if let Some(prev) = evicted.replace(e) {
                    // SAFETY: evicted entries are cached mappings nobody uses any more.
                    unsafe { unmap_entry(prev) };
                }
            }
            let len = c.len;
            c.entries[len] = Entry {
                base,
                size: map_size,
                freed_at: now,
            };
            c.len += 1;
            c.bytes += map_size;
            counters::add(&LARGE_CACHED, map_size);
        }
        if let Some(e) = evicted {
            // SAFETY: evicted entries are cached mappings nobody uses any more.
            unsafe { unmap_entry(e) };
        }
    } else {
        // SAFETY: per the contract the block is dead and the mapping ours.
        unsafe { os::unmap(base, map_size) };
        counters::sub(&MAPPED, map_size);
        counters::add(&PURGED, map_size);
    }
}

/// Unmaps a cached mapping taken out of the cache.
///
/// # Safety
/// `e` was a cache entry (a whole mapping of ours that holds nothing live).
unsafe fn unmap_entry(e: Entry) {
    // SAFETY: forwarded contract.
    unsafe { os::unmap(e.base, e.size) };
    counters::sub(&MAPPED, e.size);
    counters::add(&PURGED, e.size);
}

/// Resizes the large block `p` (mapping at `base`) to `new_size` bytes without moving it, if
/// possible. Returns whether it worked.
///
/// # Safety
/// `p` is a live large block whose mapping starts at `base`.
pub unsafe fn resize_in_place(base: *mut u8, new_size: usize) -> bool {
    // SAFETY: per the contract the header is valid and ours to update.
    let h = unsafe { &mut *base.cast::<LargeHeader>() };
    let Some(need) = h
        .offset
        .checked_add(new_size)
        .and_then(|n| round_up(n, OS_PAGE))
    else {
        return false;
    };
    if need == h.map_size {
        return true;
    }
    if need < h.map_size {
        // Shrink: give the tail back only when it is worth a syscall.
        if h.map_size - need < h.map_size / 4 {
            return true;
        }
        // SAFETY: `[base + need, base + map_size)` is the tail of our mapping, past the block.
        unsafe { os::unmap(base.add(need), h.map_size - need) };
        counters::add(&PURGED, h.map_size - need);
    // SAFETY: `[base, base + map_size)` is the whole mapping of a live block; growing moves
    // nothing.
    } else if !unsafe { os::remap_in_place(base, h.map_size, need) } {
        return false;
    }
    for c in [&LARGE_LIVE, &LARGE_USABLE, &MAPPED] {
        counters::add(c, need);
        counters::sub(c, h.map_size);
    }
    h.map_size = need;
    true
}

/// Moves the large block `p` (mapping at `base`) to a new 4 MiB-aligned mapping of room for
/// `new_size` bytes, moving the pages with `mremap` instead of copying them (no copy, no page
/// faults). Returns the new block, or null (and `p` untouched) if it did not work. Only worth it
/// for big blocks; the caller falls back to allocate + copy.
///
/// # Safety
/// `p` is a live large block whose mapping starts at `base`; on success it is gone.
pub unsafe fn relocate(base: *mut u8, new_size: usize) -> *mut u8 {
    // SAFETY: per the contract the header is valid.
    let (old_map, offset) = unsafe {
        let h = &*base.cast::<LargeHeader>();
        (h.map_size, h.offset)
    };
    let Some(need) = offset
        .checked_add(new_size)
        .and_then(|n| round_up(n, OS_PAGE))
    else {
        return ptr::null_mut();
    };
    if need <= old_map || need > isize::MAX as usize / 2 {
        return ptr::null_mut();
    }
    // Alignment of the block is kept: offsets <= 4 MiB sit on a 4 MiB-aligned base; larger
    // alignments (offset == 4 MiB) are not relocated.
    if offset == SEGMENT_SIZE {
        return ptr::null_mut();
    }
    let target = os::map_aligned(need, SEGMENT_SIZE, 0);
    if target.is_null() {
        return target;
    }
    // SAFETY: the old mapping is the block's, which the caller gives up on success; `target`
    // is a fresh mapping of ours that holds nothing.
    if !unsafe { os::remap_to(base, old_map, need, target) } {
        // SAFETY: `target` is the fresh, unused mapping made above.
        unsafe { os::unmap(target, need) };
        return ptr::null_mut();
    }
    // SAFETY: the header moved with the first page; `target` is now our block's mapping.
    unsafe { (*target.cast::<LargeHeader>()).map_size = need };
    counters::add(&LARGE_LIVE, need - old_map);
    counters::add(&LARGE_USABLE, need - old_map);
    counters::add(&MAPPED, need - old_map);
    // SAFETY: `offset < need`, inside the new mapping.
    unsafe { target.add(offset) }
}

/// Unmaps cached mappings older than `delay` ns (system calls outside the lock).
pub fn purge(now: u64, delay: u64) {
    if counters::get(&LARGE_CACHED) == 0 {
        return;
    }
    loop {
        let victim = {
            let mut c = CACHE.lock();
            let mut found = None;
            for i in 0..c.len {
                if now.saturating_sub(c.entries[i].freed_at) >= delay {
                    found = Some(i);
                    break;
                }
            }
            match found {
                None => return,
                Some(i) => {
                    let e = c.entries[i];
                    c.len -= 1;
                    c.entries[i] = c.entries[c.len];
                    c.bytes -= e.size;
                    counters::sub(&LARGE_CACHED, e.size);
                    e
                }
            }
        };
        // SAFETY: the entry was taken out of the cache: nobody else can reach it.
        unsafe { unmap_entry(victim) };
    }
}

/// In a forked child whose forking thread interrupted a cache operation (fork from a signal
/// handler): forgets the cache (its mappings leak in the child) so that it is consistent.
///
/// # Safety
/// Only the fork child handler calls it, with the cache lock's state abandoned.
pub unsafe fn reset_in_child() {
    // SAFETY: the child has one thread, which is running the handler.
    let c = unsafe { CACHE.peek_mut() };
    c.len = 0;
    c.bytes = 0;
    counters::LARGE_CACHED.store(0, core::sync::atomic::Ordering::Relaxed);
}
