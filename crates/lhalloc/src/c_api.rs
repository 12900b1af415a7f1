//! The C-style API (what `lhalloc-preload` wraps and what the harness calls): `free` takes no
//! size or layout. These functions never set errno; the C shim does.

use core::ptr;

use crate::heap;
use crate::size_class::MIN_ALIGN;

/// Allocates `size` bytes aligned to 16; null on failure. `malloc(0)` returns a unique block.
///
/// # Safety
/// Always safe to call; marked unsafe for symmetry with the C API it mirrors.
#[inline]
pub unsafe fn malloc(size: usize) -> *mut u8 {
    heap::malloc(size)
}

/// Frees a block; `free(null)` does nothing.
///
/// # Safety
/// `p` is null or a live block from this allocator, not used afterwards.
#[inline]
pub unsafe fn free(p: *mut u8) {
    if !p.is_null() {
        // SAFETY: forwarded contract.
        unsafe { heap::free(p) }
    }
}

/// Allocates `n * size` zeroed bytes; null on overflow or failure.
///
/// # Safety
/// Always safe to call; marked unsafe for symmetry with the C API it mirrors.
pub unsafe fn calloc(n: usize, size: usize) -> *mut u8 {
    let Some(total) = n.checked_mul(size) else {
        return ptr::null_mut();
    };
    if total > crate::size_class::SMALL_MAX {
        // Fresh mappings are already zero; `large::alloc` zeroes reused ones.
        return heap::malloc_large(total, MIN_ALIGN, true);
    }
    let p = heap::malloc(total);
    if !p.is_null() {
        // SAFETY: `p` is a fresh block of at least `total` bytes.
        unsafe { ptr::write_bytes(p, 0, total) };
    }
    p
}

/// Resizes block `p` to `size` bytes, in place when it can (see `realloc.rs`);
/// `realloc(null, n) == malloc(n)`; `realloc(p, 0)` frees `p` and returns null (glibc's
/// behaviour). On failure returns null and leaves `p` untouched.
///
/// # Safety
/// `p` is null or a live block from this allocator; on success it must not be used afterwards.
#[inline]
pub unsafe fn realloc(p: *mut u8, size: usize) -> *mut u8 {
    // SAFETY: forwarded contract.
    unsafe { crate::realloc::realloc(p, size) }
}

/// Allocates `size` bytes aligned to `align`; null if `align` is not a power of two or on
/// failure. (C11's "size multiple of align" rule is not enforced, as in glibc.)
///
/// # Safety
/// Always safe to call; marked unsafe for symmetry with the C API it mirrors.
pub unsafe fn aligned_alloc(align: usize, size: usize) -> *mut u8 {
    if !align.is_power_of_two() {
        return ptr::null_mut();
    }
    if align <= MIN_ALIGN {
        return heap::malloc(size);
    }
    heap::malloc_aligned(align, size)
}

/// Bytes usable in block `p` (at least what was asked); 0 for null.
///
/// # Safety
/// `p` is null or a live block from this allocator.
pub unsafe fn usable_size(p: *mut u8) -> usize {
    if p.is_null() {
        0
    } else {
        // SAFETY: forwarded contract.
        unsafe { heap::usable_size(p) }
    }
}
