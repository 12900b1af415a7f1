//! Size classes: 16-byte steps up to 128 bytes, then 4 classes per doubling up to
//! [`SMALL_MAX`] (internal waste < 25%, < 20% on average, as jemalloc's spacing), and how many
//! 64 KiB slots a page of each class spans.

use crate::geometry::{MAX_PAGE_SLOTS, SLOT_SIZE};
pub use crate::geometry::{MIN_ALIGN, SMALL_MAX};

/// Number of size classes.
pub const NUM_CLASSES: usize = 48;
const _: () = assert!(NUM_CLASSES == crate::purge_flags::CLASSES && NUM_CLASSES <= 64);

const fn block_size_of(idx: usize) -> usize {
    if idx < 8 {
        16 * (idx + 1)
    } else {
        let g = (idx - 8) / 4;
        let j = (idx - 8) % 4;
        let base = 128usize << g;
        base + (j + 1) * (base / 4)
    }
}

const fn build_sizes() -> [u32; NUM_CLASSES] {
    let mut t = [0u32; NUM_CLASSES];
    let mut i = 0;
    while i < NUM_CLASSES {
        t[i] = block_size_of(i) as u32;
        i += 1;
    }
    t
}

/// Block size of each class.
pub static BLOCK_SIZES: [u32; NUM_CLASSES] = build_sizes();

/// The smallest class whose blocks hold `size` bytes; `size <= SMALL_MAX`.
#[inline]
pub const fn class_of(size: usize) -> usize {
    if size <= 128 {
        let s = if size == 0 { 1 } else { size };
        s.div_ceil(16) - 1
    } else {
        let k = (usize::BITS - 1 - (size - 1).leading_zeros()) as usize;
        8 + (k - 7) * 4 + ((size - 1) >> (k - 2)) - 4
    }
}

/// Block size of class `cls`.
#[inline]
pub fn block_size(cls: usize) -> usize {
    BLOCK_SIZES[cls] as usize
}

/// Fewest blocks a page holds. Each thread holds one active page per class, so for the big
/// classes (16-128 KiB: socket buffers, cache entries) big pages strand memory in every thread:
/// on the rails-api profile (2 simulated hours, 5 threads) steady RSS was 181.2 MiB with 8,
/// 172.0 with 4 and 166.4 with 2 blocks per page (jemalloc: 170.1). The tail a page cannot use
/// is never carved, so it costs address space, not memory.
pub const MIN_BLOCKS_PER_PAGE: usize = 2;

/// Slots (64 KiB each) that a page of class `cls` spans: the smallest power of two that holds
/// at least [`MIN_BLOCKS_PER_PAGE`] blocks.
pub const fn slots_of(cls: usize) -> usize {
    let bs = block_size_of(cls);
    let need = (MIN_BLOCKS_PER_PAGE * bs).div_ceil(SLOT_SIZE);
    need.next_power_of_two()
}

const _: () = assert!(slots_of(NUM_CLASSES - 1) <= MAX_PAGE_SLOTS);
const _: () = assert!(block_size_of(NUM_CLASSES - 1) == SMALL_MAX);

/// The smallest class >= `class_of(size)` whose block size is a multiple of `align`
/// (a power of two <= 64 KiB): its blocks, laid from a 64 KiB-aligned page start, are all
/// aligned to `align`. `None` when no small class fits.
pub fn class_for_aligned(size: usize, align: usize) -> Option<usize> {
    let size = if size < align { align } else { size };
    if size > SMALL_MAX {
        return None;
    }
    let mut cls = class_of(size);
    while cls < NUM_CLASSES {
        if block_size(cls) % align == 0 {
            return Some(cls);
        }
        cls += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::MAX_BLOCKS_PER_PAGE;

    #[test]
    fn classes_are_minimal_and_sufficient() {
        assert_eq!(block_size(NUM_CLASSES - 1), SMALL_MAX);
        for size in 0..=SMALL_MAX {
            let c = class_of(size);
            assert!(block_size(c) >= size, "size {size} class {c}");
            if c > 0 {
                assert!(block_size(c - 1) < size.max(1), "size {size} not minimal");
            }
        }
    }

    #[test]
    fn classes_waste_little() {
        // Above 128 bytes (below, 16-byte steps keep the waste under 16 bytes).
        for c in 8..NUM_CLASSES {
            let prev = block_size(c - 1);
            let waste = (block_size(c) - prev - 1) as f64 / block_size(c) as f64;
            assert!(waste < 0.25, "class {c}");
        }
    }

    #[test]
    fn pages_hold_enough_blocks() {
        for c in 0..NUM_CLASSES {
            let s = slots_of(c);
            assert!(s <= MAX_PAGE_SLOTS);
            assert!(s * SLOT_SIZE / block_size(c) >= MIN_BLOCKS_PER_PAGE);
            assert!(s * SLOT_SIZE / block_size(c) <= MAX_BLOCKS_PER_PAGE);
        }
    }

    #[test]
    fn aligned_classes() {
        for shift in 4..=16 {
            let a = 1usize << shift;
            for size in [1, 17, 100, 4000, 70000] {
                if let Some(c) = class_for_aligned(size, a) {
                    assert_eq!(block_size(c) % a, 0);
                    assert!(block_size(c) >= size);
                }
            }
        }
    }
}
