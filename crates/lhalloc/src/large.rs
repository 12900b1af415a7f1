//! Large blocks (> 128 KiB, or alignment > 64 KiB): each gets its own mapping, whose base is
//! aligned to 4 MiB so that `segment::region_of` finds its header; the block starts at
//! `base + offset` with `offset = max(64, align)` (or 4 MiB when the alignment is larger).
//!
//! Freed mappings up to [`CACHE_MAX_BLOCK`] are kept in a small cache for up to the purge delay
//! and reused best-fit (a mapping is reused only if it wastes at most a quarter), so that a
//! program cycling 256 KiB buffers does not pay mmap + page faults each time; the purger
//! unmaps entries older than the delay, and the cache never holds more than the purge cap.
//! Growth tries `mremap` in place first.
//!
//! Invariant (cache lock): `cached_bytes == Σ entries' sizes <= purge cap`.

use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::lock::Lock;
use crate::os;
use crate::segment::SEGMENT_SIZE;

/// `kind` of a large mapping.
pub const KIND_LARGE: u32 = 0x4c48_4c47;
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

/// Bytes mapped for live large blocks.
pub static LIVE_MAPPED: AtomicUsize = AtomicUsize::new(0);
/// Usable bytes of live large blocks.
pub static LIVE_USABLE: AtomicUsize = AtomicUsize::new(0);
/// Bytes in cached mappings.
pub static CACHED: AtomicUsize = AtomicUsize::new(0);

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
    CACHED.fetch_sub(e.size, Ordering::Relaxed);
    Some((e.base, e.size))
}

/// Allocates a large block; `zero` asks for zeroed memory. Null on failure.
pub fn alloc(size: usize, align: usize, zero: bool) -> *mut u8 {
    crate::init::ensure();
    crate::purge::want_purger();
    crate::purge::maybe_start();
    let (offset, map_align, phase) = if align <= SEGMENT_SIZE {
        (align.max(HEADER), SEGMENT_SIZE, 0)
    } else {
        (SEGMENT_SIZE, align, SEGMENT_SIZE)
    };
    let Some(need) = offset
        .checked_add(size)
        .and_then(|n| os::round_up(n, os::OS_PAGE))
    else {
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
    LIVE_MAPPED.fetch_add(map_size, Ordering::Relaxed);
    LIVE_USABLE.fetch_add(map_size - offset, Ordering::Relaxed);
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
    LIVE_MAPPED.fetch_sub(map_size, Ordering::Relaxed);
    LIVE_USABLE.fetch_sub(map_size - offset, Ordering::Relaxed);
    let delay = crate::options::purge_delay_ms();
    let cap = crate::options::purge_cap_bytes();
    if delay > 0 && map_size <= CACHE_MAX_BLOCK && map_size <= cap {
        let now = os::now_ms();
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
                CACHED.fetch_sub(e.size, Ordering::Relaxed);
                if let Some(prev) = evicted.replace(e) {
                    unmap_entry(prev);
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
            CACHED.fetch_add(map_size, Ordering::Relaxed);
        }
        if let Some(e) = evicted {
            unmap_entry(e);
        }
        crate::purge::want_purger();
    } else {
        os::unmap(base, map_size);
        crate::stats::PURGED.fetch_add(map_size, Ordering::Relaxed);
    }
}

fn unmap_entry(e: Entry) {
    os::unmap(e.base, e.size);
    crate::stats::PURGED.fetch_add(e.size, Ordering::Relaxed);
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
        .and_then(|n| os::round_up(n, os::OS_PAGE))
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
        os::unmap(unsafe { base.add(need) }, h.map_size - need);
        crate::stats::PURGED.fetch_add(h.map_size - need, Ordering::Relaxed);
    } else if !os::remap_in_place(base, h.map_size, need) {
        return false;
    }
    LIVE_MAPPED.fetch_add(need, Ordering::Relaxed);
    LIVE_MAPPED.fetch_sub(h.map_size, Ordering::Relaxed);
    LIVE_USABLE.fetch_add(need, Ordering::Relaxed);
    LIVE_USABLE.fetch_sub(h.map_size, Ordering::Relaxed);
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
        .and_then(|n| os::round_up(n, os::OS_PAGE))
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
    if !os::remap_to(base, old_map, need, target) {
        os::unmap(target, need);
        return ptr::null_mut();
    }
    // SAFETY: the header moved with the first page; `target` is now our block's mapping.
    unsafe { (*target.cast::<LargeHeader>()).map_size = need };
    LIVE_MAPPED.fetch_add(need - old_map, Ordering::Relaxed);
    LIVE_USABLE.fetch_add(need - old_map, Ordering::Relaxed);
    // SAFETY: `offset < need`, inside the new mapping.
    unsafe { target.add(offset) }
}

/// Unmaps cached mappings older than `delay` ms.
pub fn purge(now: u64, delay: u64) {
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
                    CACHED.fetch_sub(e.size, Ordering::Relaxed);
                    e
                }
            }
        };
        unmap_entry(victim);
    }
}
