//! `realloc`: in place whenever the block's room allows, and growth that does not copy
//! through every size class:
//! - a size-classed block is kept when the new size fits its class and is at least half of
//!   it; otherwise it moves, and a block growing past `solo::PROMOTE_MIN` moves into a solo
//!   page (`solo.rs`), where it then grows in place (its slots, then the free slots after it,
//!   doubling) — a block that has moved once is likely to keep growing;
//! - a large block grows in place with `mremap` when the address space after it is free, and
//!   big ones move their pages to a new mapping instead of being copied (`large.rs`).
//!
//! On failure the block is left untouched and null is returned.

use core::ptr;
use core::sync::atomic::Ordering;

use crate::geometry::SMALL_MAX;
use crate::heap::{self, Home};
use crate::large;
use crate::solo::{self, PROMOTE_MIN, SOLO_MAX};

/// Large blocks at least this big grow by moving their pages (`mremap`) rather than copying.
const RELOCATE_MIN: usize = 256 << 10;

/// Resizes block `p` to `size` bytes; `realloc(null, n) == malloc(n)`; `realloc(p, 0)` frees
/// `p` and returns null (glibc's behaviour). On failure returns null and leaves `p` untouched.
///
/// # Safety
/// `p` is null or a live block from this allocator; on success it must not be used afterwards.
pub unsafe fn realloc(p: *mut u8, size: usize) -> *mut u8 {
    if p.is_null() {
        return heap::malloc(size);
    }
    if size == 0 {
        // SAFETY: forwarded contract.
        unsafe { heap::free(p) };
        return ptr::null_mut();
    }
    // SAFETY: `p` is live.
    match unsafe { heap::home_of(p) } {
        Home::Small(page) => {
            let usable = page.bsize();
            if size <= usable && size >= usable / 2 {
                return p;
            }
            if size > usable && (PROMOTE_MIN..=SOLO_MAX).contains(&size) {
                let q = solo::alloc(size);
                if !q.is_null() {
                    // SAFETY: `p` is live with `usable < size` bytes; `q` is a fresh block.
                    return unsafe { move_to(p, q, usable) };
                }
            }
            // SAFETY: `p` is live with `usable` bytes.
            unsafe { move_to(p, heap::malloc(size), usable.min(size)) }
        }
        Home::Solo(page) => {
            let old = page.solo_size.load(Ordering::Relaxed);
            // SAFETY: we own the live solo block of `page`.
            if (PROMOTE_MIN / 2..=SOLO_MAX).contains(&size) && unsafe { solo::resize(page, size) } {
                return p;
            }
            let q = if (PROMOTE_MIN..=SOLO_MAX).contains(&size) {
                solo::alloc(size)
            } else {
                heap::malloc(size)
            };
            // SAFETY: `p` is live with `old` bytes.
            unsafe { move_to(p, q, old.min(size)) }
        }
        Home::Large(base) => {
            // SAFETY: `p` is a live large block with mapping at `base`.
            let usable = unsafe { large::usable(base) };
            if size <= usable && size >= usable / 2 {
                return p;
            }
            if size > SMALL_MAX {
                // SAFETY: as above.
                if unsafe { large::resize_in_place(base, size) } {
                    return p;
                }
                if usable >= RELOCATE_MIN {
                    // SAFETY: as above.
                    let q = unsafe { large::relocate(base, size) };
                    if !q.is_null() {
                        return q;
                    }
                }
            }
            // SAFETY: `p` is live with `usable` bytes.
            unsafe { move_to(p, heap::malloc(size), usable.min(size)) }
        }
    }
}

/// Copies `n` bytes from `p` to `q` and frees `p`; returns `q` (null: nothing happens).
///
/// # Safety
/// `p` is a live block of at least `n` bytes; `q` is null or a fresh block of at least `n`.
unsafe fn move_to(p: *mut u8, q: *mut u8, n: usize) -> *mut u8 {
    if q.is_null() {
        return q;
    }
    // SAFETY: both blocks are live, distinct, and at least `n` bytes long.
    unsafe {
        ptr::copy_nonoverlapping(p, q, n);
        heap::free(p);
    }
    q
}
