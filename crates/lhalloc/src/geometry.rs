//! Geometry: the sizes memory is cut into and how a pointer finds the region it came from.
//! A leaf: it uses no other module, and every other module may use it.
//!
//! - an OS page is [`OS_PAGE`] bytes (the unit of `madvise` and of RSS);
//! - a segment is [`SEGMENT_SIZE`] bytes, aligned to its size, cut into [`SLOTS`] slots of
//!   [`SLOT_SIZE`]; slot 0 holds the segment header, slots `1..SLOTS` hold pages;
//! - a page is `1..=MAX_PAGE_SLOTS` slots of one size class (or one solo block);
//! - a large block has its own mapping, whose base is aligned to [`SEGMENT_SIZE`] too.
//!
//! Every pointer `p` handed out satisfies `1 <= p - region_of(p) <= SEGMENT_SIZE`, and the
//! first word at `region_of(p)` is [`KIND_SEGMENT`] or [`KIND_LARGE`].

/// Granularity of the kernel's page tables (what `madvise` and RSS count in).
pub const OS_PAGE: usize = 4096;
/// A cache line: fields written by different threads are kept this far apart.
pub const CACHE_LINE: usize = 64;
/// Size and alignment of a segment.
pub const SEGMENT_SIZE: usize = 4 << 20;
/// Size of a slot, the unit pages are made of.
pub const SLOT_SIZE: usize = 64 << 10;
/// Slots per segment (slot 0 is the header).
pub const SLOTS: usize = SEGMENT_SIZE / SLOT_SIZE;
/// Most slots a page of a size class spans.
pub const MAX_PAGE_SLOTS: usize = 16;
/// Largest request served from size-classed pages; larger ones get their own mapping.
pub const SMALL_MAX: usize = 128 << 10;
/// Minimum block size and the alignment every block has.
pub const MIN_ALIGN: usize = 16;
/// Most blocks a page can hold: a one-slot page of [`MIN_ALIGN`]-byte blocks.
pub const MAX_BLOCKS_PER_PAGE: usize = SLOT_SIZE / MIN_ALIGN;
/// First word of a segment header.
pub const KIND_SEGMENT: u32 = 0x4c48_5345;
/// First word of a large mapping's header.
pub const KIND_LARGE: u32 = 0x4c48_4c47;

/// Start of the region (segment or large mapping) that `p` was handed out from.
#[inline]
pub fn region_of(p: *mut u8) -> *mut u8 {
    ((p as usize).wrapping_sub(1) & !(SEGMENT_SIZE - 1)) as *mut u8
}

/// Rounds `n` up to a multiple of `align` (a power of two); `None` on overflow.
#[inline]
pub const fn round_up(n: usize, align: usize) -> Option<usize> {
    match n.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// Rounds `n` up to whole OS pages (callers pass sizes far below `usize::MAX`).
#[inline]
pub const fn os_pages(n: usize) -> usize {
    (n + OS_PAGE - 1) & !(OS_PAGE - 1)
}
