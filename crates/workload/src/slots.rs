//! Block naming: hands out [`BlockRef`]s, reusing freed slots so that names stay dense.

use crate::event::{BlockRef, ThreadId};

/// A block the workload holds: its name, current size and the thread that allocated it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub r: BlockRef,
    pub size: u64,
    pub owner: ThreadId,
}

/// Slot allocator.
///
/// Invariants: `gens.len()` is the number of slots ever used (the replayer's table size);
/// a slot is in `free` iff no block currently holds it; `live_bytes` is the sum of the sizes of
/// the blocks currently held, as told by [`Slots::resize`].
#[derive(Debug, Default)]
pub struct Slots {
    gens: Vec<u16>,
    free: Vec<u32>,
    live_bytes: u64,
    live_blocks: u64,
}

impl Slots {
    /// Names a new block of `size` bytes allocated by `owner`.
    pub fn alloc(&mut self, size: u64, owner: ThreadId) -> Block {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.gens.push(0);
                (self.gens.len() - 1) as u32
            }
        };
        self.live_bytes += size;
        self.live_blocks += 1;
        Block {
            r: BlockRef {
                slot,
                gen: self.gens[slot as usize],
            },
            size,
            owner,
        }
    }

    /// Records that `b` was reallocated to `new_size`: it becomes its slot's next generation.
    pub fn resize(&mut self, b: &mut Block, new_size: u64) {
        self.live_bytes = self.live_bytes - b.size + new_size;
        b.size = new_size;
        let g = &mut self.gens[b.r.slot as usize];
        debug_assert_eq!(*g, b.r.gen, "resizing a stale block name");
        *g = g.wrapping_add(1);
        b.r.gen = *g;
    }

    /// Releases `b`'s name; the next block in its slot gets the next generation.
    pub fn free(&mut self, b: &Block) {
        let g = &mut self.gens[b.r.slot as usize];
        debug_assert_eq!(*g, b.r.gen, "freeing a stale block name");
        *g = g.wrapping_add(1);
        self.free.push(b.r.slot);
        self.live_bytes -= b.size;
        self.live_blocks -= 1;
    }

    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    pub fn live_blocks(&self) -> u64 {
        self.live_blocks
    }

    /// Slots ever used: the size a replayer's block table needs.
    pub fn slots_used(&self) -> u64 {
        self.gens.len() as u64
    }
}
