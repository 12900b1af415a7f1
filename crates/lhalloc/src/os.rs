//! The OS seam: the only file that maps, unmaps or purges memory (mmap, munmap, mremap,
//! madvise) and reads the monotonic clock. Everything above it sees "give me N bytes aligned
//! so", "give these bytes back", "drop the physical pages behind these bytes".

use core::ptr;

/// Granularity of the kernel's page tables that we round mappings to.
pub const OS_PAGE: usize = 4096;

/// Rounds `n` up to a multiple of `align` (a power of two); `None` on overflow.
#[inline]
pub const fn round_up(n: usize, align: usize) -> Option<usize> {
    match n.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// Maps `size` bytes (a multiple of [`OS_PAGE`]) of zeroed, private, read-write memory whose
/// address `base` satisfies `(base + phase) % align == 0`. `align` is a power of two that is at
/// least [`OS_PAGE`] and `phase < align` is a multiple of [`OS_PAGE`]. Returns null on failure.
pub fn map_aligned(size: usize, align: usize, phase: usize) -> *mut u8 {
    let Some(total) = size.checked_add(align) else {
        return ptr::null_mut();
    };
    let raw = map(total);
    if raw.is_null() {
        return raw;
    }
    let raw_addr = raw as usize;
    // The first address >= raw_addr with (base + phase) % align == 0.
    let base = ((raw_addr + phase + align - 1) & !(align - 1)) - phase;
    let base = if base < raw_addr { base + align } else { base };
    let front = base - raw_addr;
    let back = total - front - size;
    if front > 0 {
        unmap(raw, front);
    }
    if back > 0 {
        unmap((base + size) as *mut u8, back);
    }
    base as *mut u8
}

/// Maps `size` bytes of zeroed private memory anywhere; null on failure.
pub fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with a null hint touches no existing memory.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        p.cast()
    }
}

/// Unmaps `[p, p + size)`. The caller guarantees (see the callers' `# Safety`) that no live
/// object lies in the range; a failure is ignored (the range merely stays mapped).
pub fn unmap(p: *mut u8, size: usize) {
    // SAFETY: callers only pass ranges that they mapped themselves and that hold no live object.
    unsafe {
        libc::munmap(p.cast(), size);
    }
}

/// Drops the physical pages behind `[p, p + size)` (MADV_DONTNEED): they read back as zeros
/// and stop counting in RSS at once (unlike MADV_FREE). The range stays mapped.
pub fn purge(p: *mut u8, size: usize) {
    // SAFETY: callers only pass free ranges of their own mappings; the content is dead.
    unsafe {
        libc::madvise(p.cast(), size, libc::MADV_DONTNEED);
    }
}

/// Asks the kernel never to back `[p, p + size)` with transparent huge pages. Segments are
/// carved sparsely (64 KiB slots, 8 KiB at a time): with THP "always", one touched byte would
/// make 2 MiB resident (the many-thread Ruby blow-up of jemalloc#1674). Failure is harmless.
pub fn no_huge_pages(p: *mut u8, size: usize) {
    // SAFETY: madvise with MADV_NOHUGEPAGE only changes a paging hint of our own mapping.
    unsafe {
        libc::madvise(p.cast(), size, libc::MADV_NOHUGEPAGE);
    }
}

/// Tries to grow or shrink the mapping `[p, p + old)` to `new` bytes without moving it.
/// Returns whether it worked.
pub fn remap_in_place(p: *mut u8, old: usize, new: usize) -> bool {
    // SAFETY: flags 0 forbid moving, so no pointer into the mapping is invalidated; on failure
    // the mapping is unchanged.
    let r = unsafe { libc::mremap(p.cast(), old, new, 0) };
    r != libc::MAP_FAILED
}

/// Moves the mapping `[p, p + old)` onto `[target, target + new)` (which must be a mapping of
/// ours, replaced atomically), growing it to `new` bytes: the pages move, nothing is copied.
/// Returns whether it worked; on failure both mappings are unchanged.
pub fn remap_to(p: *mut u8, old: usize, new: usize, target: *mut u8) -> bool {
    // SAFETY: MREMAP_FIXED replaces only `[target, target + new)`, a mapping the caller owns
    // and holds nothing live; the old range is the caller's block mapping, which it gives up.
    let r = unsafe {
        libc::mremap(
            p.cast(),
            old,
            new,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            target.cast::<libc::c_void>(),
        )
    };
    r != libc::MAP_FAILED
}

/// Milliseconds of CLOCK_MONOTONIC (vDSO, no syscall on Linux).
pub fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
}

/// Sleeps for `ms` milliseconds.
pub fn sleep_ms(ms: u64) {
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
    };
    // SAFETY: `ts` is a valid timespec; the remainder pointer may be null.
    unsafe {
        libc::nanosleep(&ts, ptr::null_mut());
    }
}
