//! The replay's block table: one atomic word per trace slot, naming the live block in it.
//!
//! Kept in an anonymous mapping reserved once (untouched pages cost nothing), so the harness's
//! bookkeeping never goes through the allocator under test and never grows by reallocation.

use std::sync::atomic::AtomicU64;

use crate::os::Mapping;

/// Most slots a trace may use (1 GiB of address space reserved, touched only as used).
pub const MAX_SLOTS: usize = 1 << 27;
const ADDR_BITS: u32 = 48;
const ADDR_MASK: u64 = (1 << ADDR_BITS) - 1;

/// Slot table.
///
/// Invariant, per entry: `entry == (tag << 48) | addr` with `tag = gen + 1` (mod 2^16), where
/// `addr != 0` iff block `(slot, gen)` is live at `addr`; after its free the entry is
/// `(tag << 48) | 0`, and only then may `(slot, gen + 1)` be stored. An allocation waits for
/// exactly its predecessor's free, not just for an empty slot, since a later generation's thread
/// may run ahead of an earlier one's. The `+ 1` makes a fresh slot (0) read as "generation
/// 65535 freed", the predecessor of generation 0, so it cannot be mistaken for "generation 0
/// freed". Generations wrap at 2^16: a slot would need 65,536 lives queued at once, beyond the
/// rings' capacity, to be confused. User-space addresses fit in 48 bits on x86-64 and aarch64.
pub struct BlockTable {
    map: Mapping,
}

impl BlockTable {
    pub fn new() -> std::io::Result<BlockTable> {
        Ok(BlockTable {
            map: Mapping::new(MAX_SLOTS * std::mem::size_of::<AtomicU64>())?,
        })
    }

    /// Resident bytes of the entries of slots `0..slots` (the part a replay has used).
    pub fn resident_bytes(&self, slots: u64, scratch: &mut [u8]) -> u64 {
        let len = (slots as usize * std::mem::size_of::<AtomicU64>()).min(self.map.len());
        // SAFETY: the table's mapping is page-aligned and `len` is within it.
        unsafe { crate::os::resident_bytes(self.map.as_ptr(), len, scratch) }
    }

    /// The entry of `slot`; callers check `slot < MAX_SLOTS` when the trace is read.
    #[inline]
    pub fn entry(&self, slot: u32) -> &AtomicU64 {
        let slot = slot as usize;
        debug_assert!(slot < MAX_SLOTS && slot * 8 < self.map.len());
        // SAFETY: the mapping holds MAX_SLOTS zero-initialised, 8-byte-aligned u64 words (mmap
        // returns page-aligned memory), `slot < MAX_SLOTS` is checked by the dispatcher before any
        // event reaches a worker, and the words are only accessed atomically.
        unsafe { &*self.map.as_ptr().cast::<AtomicU64>().add(slot) }
    }

    /// The entry of block `(_, gen)` live at `addr`, or freed if `addr` is null.
    #[inline]
    pub fn pack(gen: u16, addr: *mut u8) -> u64 {
        ((gen.wrapping_add(1) as u64) << ADDR_BITS) | (addr as u64 & ADDR_MASK)
    }

    #[inline]
    pub fn addr(entry: u64) -> *mut u8 {
        (entry & ADDR_MASK) as *mut u8
    }

    /// Whether an allocation of generation `gen` may use a slot whose entry is `entry`: its
    /// predecessor has been freed (or the slot is fresh, for generation 0).
    #[inline]
    pub fn ready_for(entry: u64, gen: u16) -> bool {
        entry == Self::pack(gen.wrapping_sub(1), std::ptr::null_mut())
    }

    /// Whether block `(_, gen)` is live in `entry`.
    #[inline]
    pub fn is_live(entry: u64, gen: u16) -> bool {
        entry >> ADDR_BITS == gen.wrapping_add(1) as u64 && entry & ADDR_MASK != 0
    }
}
