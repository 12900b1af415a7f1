//! `LhAlloc`, the Rust `GlobalAlloc` face of the allocator.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr;

use crate::heap;
use crate::size_class::MIN_ALIGN;

/// The allocator as a Rust global allocator: `#[global_allocator] static A: LhAlloc = LhAlloc;`
#[derive(Clone, Copy, Debug, Default)]
pub struct LhAlloc;

// SAFETY: every block returned is at least `layout.size()` bytes, aligned to `layout.align()`
// (small classes are chosen so, large mappings place the block at an aligned offset), and
// stays valid until freed; the allocator never unwinds.
unsafe impl GlobalAlloc for LhAlloc {
    /// # Safety
    /// The `GlobalAlloc::alloc` contract.
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            heap::malloc(layout.size())
        } else {
            heap::malloc_aligned(layout.align(), layout.size())
        }
    }

    /// # Safety
    /// The `GlobalAlloc::dealloc` contract.
    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, _layout: Layout) {
        // SAFETY: `p` was returned by `alloc` (GlobalAlloc contract).
        unsafe { heap::free(p) }
    }

    /// # Safety
    /// The `GlobalAlloc::alloc_zeroed` contract.
    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            // SAFETY: calloc has no preconditions.
            unsafe { crate::c_api::calloc(1, layout.size()) }
        } else {
            let p = heap::malloc_aligned(layout.align(), layout.size());
            if !p.is_null() {
                // SAFETY: `p` is a fresh block of at least `layout.size()` bytes.
                unsafe { ptr::write_bytes(p, 0, layout.size()) };
            }
            p
        }
    }

    /// # Safety
    /// The `GlobalAlloc::realloc` contract.
    #[inline]
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            // SAFETY: `p` is live (GlobalAlloc contract) and `new_size > 0`.
            return unsafe { crate::c_api::realloc(p, new_size) };
        }
        // SAFETY: `p` is live.
        let usable = unsafe { heap::usable_size(p) };
        if new_size <= usable && new_size >= usable / 2 {
            return p;
        }
        let q = heap::malloc_aligned(layout.align(), new_size);
        if !q.is_null() {
            // SAFETY: both blocks are live and distinct; we copy what both hold.
            unsafe {
                ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                heap::free(p);
            }
        }
        q
    }
}
