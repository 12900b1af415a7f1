//! **Bump**: the cheapest possible allocator under test, for measuring the harness alone. It
//! hands out memory from one pre-touched region in a circle and never tracks frees, so a replay
//! into it measures dispatch, replay bookkeeping, timing and writing every byte. Blocks may
//! overlap older live ones: the replay never reads what it wrote. Used by the harness bench
//! (`benches/harness.rs`) and the `replay_cost` example; never offered as `--alloc`.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::os::Mapping;
use crate::under_test::{AllocatorUnderTest, Counters};

/// A circular bump allocator over one mapping of `len` bytes (invariant: every block handed out
/// lies inside the mapping; at most half of it per block).
pub struct Bump {
    map: Mapping,
    next: AtomicUsize,
}

impl Bump {
    /// Maps `len` bytes and touches every page, so that the replay's writes never fault.
    pub fn new(len: usize) -> std::io::Result<Bump> {
        let map = Mapping::new(len)?;
        // SAFETY: the mapping is `len` writable bytes that nothing else uses yet.
        unsafe { std::ptr::write_bytes(map.as_ptr(), 1, len) };
        Ok(Bump {
            map,
            next: AtomicUsize::new(0),
        })
    }
}

impl AllocatorUnderTest for Bump {
    unsafe fn malloc(&self, size: usize) -> *mut u8 {
        let size = (size + 63) & !63;
        if size > self.map.len() / 2 {
            return std::ptr::null_mut();
        }
        let mut at = self.next.fetch_add(size, Ordering::Relaxed) % self.map.len();
        if at + size > self.map.len() {
            at = 0;
        }
        // SAFETY: at + size <= len, so the result lies inside the mapping.
        unsafe { self.map.as_ptr().add(at) }
    }
    unsafe fn calloc(&self, size: usize) -> *mut u8 {
        // SAFETY: forwarded contract; the replay overwrites every byte anyway.
        unsafe { self.malloc(size) }
    }
    unsafe fn aligned(&self, size: usize, align: usize) -> *mut u8 {
        // SAFETY: forwarded contract; over-allocating by `align` leaves room to align.
        let p = unsafe { self.malloc(size + align) };
        if p.is_null() {
            return p;
        }
        // SAFETY: the offset is < align, inside the block just taken.
        unsafe { p.add(p.align_offset(align)) }
    }
    unsafe fn realloc(&self, p: *mut u8, old: usize, new: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        let q = unsafe { self.malloc(new) };
        if !q.is_null() {
            // SAFETY: both blocks hold at least min(old, new) bytes; they may overlap (the
            // region is reused in a circle), which `copy` allows.
            unsafe { std::ptr::copy(p, q, old.min(new)) };
        }
        q
    }
    unsafe fn free(&self, _p: *mut u8, _size: usize) {}
    fn version(&self) -> String {
        "bump".into()
    }
    fn counters(&self) -> Counters {
        Counters::default()
    }
}
