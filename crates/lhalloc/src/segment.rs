//! Segments: 4 MiB regions, 4 MiB-aligned, cut into 64 slots of 64 KiB. Slot 0 holds the
//! segment header and the 64 page descriptors; slots 1..=63 hold pages. Every segment is on
//! one global list under one lock (taken once per page, not per object).
//!
//! Any pointer `p` we hand out satisfies `1 <= p - base <= 4 MiB` where
//! `base = (p - 1) & !(4 MiB - 1)` starts either a segment or a large mapping (`large.rs`);
//! the first word at `base` tells which.
//!
//! Invariants (checked by `validate.rs`):
//! - bit 0 of `free_slots` is clear; `dirty_slots ⊆ free_slots`
//! - slot `i` is in use iff bit `i` of `free_slots` is clear; then `head[i] = h` with
//!   `h <= i < h + pages[h].slots` and `pages[h].block_size != 0`
//! - `dirty_bytes == popcount(dirty_slots) * SLOT_SIZE`, summed over segments.

use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crate::lock::Lock;
use crate::os;
use crate::page::Page;
use crate::size_class;
use crate::stats;

/// Size and alignment of a segment.
pub const SEGMENT_SIZE: usize = 4 << 20;
/// Size of a slot, the unit pages are made of.
pub const SLOT_SIZE: usize = 64 << 10;
/// Slots per segment.
pub const SLOTS: usize = SEGMENT_SIZE / SLOT_SIZE;
/// `kind` of a segment.
pub const KIND_SEGMENT: u32 = 0x4c48_5345;
/// Every page slot free (slot 0 is the header).
const ALL_FREE: u64 = !1u64;

/// Segment header, at the segment's base (slot 0).
#[repr(C)]
pub struct Segment {
    /// [`KIND_SEGMENT`].
    pub kind: u32,
    /// Next segment on the global list (segment lock).
    pub next: Cell<*mut Segment>,
    /// Bit i iff slot i is free (segment lock).
    pub free_slots: Cell<u64>,
    /// Bit i iff slot i is free and its memory not yet purged (segment lock).
    pub dirty_slots: Cell<u64>,
    /// When each free slot was freed, in ms of the monotonic clock (segment lock).
    pub freed_at: [Cell<u64>; SLOTS],
    /// For a slot in use: the slot index of its page's descriptor.
    pub head: [AtomicU8; SLOTS],
    /// Page descriptors, indexed by their first slot.
    pub pages: [Page; SLOTS],
}

const _: () = assert!(core::mem::size_of::<Segment>() <= SLOT_SIZE);

/// Bytes of the header that are ever touched (counted as resident).
pub const HEADER_RESIDENT: usize =
    (core::mem::size_of::<Segment>() + os::OS_PAGE - 1) & !(os::OS_PAGE - 1);

/// Global segment state (segment lock).
pub struct SegState {
    pub head: *mut Segment,
    pub count: usize,
    pub dirty_bytes: usize,
}

/// The segment lock. Lock order: pool locks, then this one, then the large-cache lock.
pub static SEGMENTS: Lock<SegState> = Lock::new(SegState {
    head: ptr::null_mut(),
    count: 0,
    dirty_bytes: 0,
});

/// Number of mapped segments (for statistics without the lock).
pub static SEGMENT_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Start of the region (segment or large mapping) that `p` was handed out from.
#[inline]
pub fn region_of(p: *mut u8) -> *mut u8 {
    ((p as usize - 1) & !(SEGMENT_SIZE - 1)) as *mut u8
}

/// The descriptor of the page that block `p` belongs to.
///
/// # Safety
/// `p` is a live block handed out from segment `seg`.
#[inline]
pub unsafe fn page_of(seg: *mut u8, p: *mut u8) -> &'static Page {
    let slot = (p as usize - seg as usize) / SLOT_SIZE;
    let s = seg.cast::<Segment>();
    // SAFETY: per the contract `seg` is a live segment and `slot` one of its slots in use, so
    // `head[slot]` names the page descriptor; segments live as long as they hold live blocks.
    unsafe {
        let h = (*s).head[slot].load(Ordering::Relaxed) as usize;
        &(*s).pages[h]
    }
}

/// Finds `n` contiguous free slots in `free`; returns the first.
fn find_run(free: u64, n: usize) -> Option<usize> {
    if n == 1 {
        return if free == 0 {
            None
        } else {
            Some(free.trailing_zeros() as usize)
        };
    }
    let mask = (1u64 << n) - 1;
    let mut i = 1;
    while i + n <= SLOTS {
        if (free >> i) & mask == mask {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Takes a fresh page for class `cls` (first fit over the segments, mapping a new segment if
/// none has room). The page is returned with no holder set and no block carved; null on OOM.
pub fn alloc_page(cls: usize) -> *const Page {
    let n = size_class::slots_of(cls);
    let mut st = SEGMENTS.lock();
    let mut seg = st.head;
    let mut found: Option<(*mut Segment, usize)> = None;
    while !seg.is_null() {
        // SAFETY: segments on the list are mapped; their headers are guarded by the lock we hold.
        let s = unsafe { &*seg };
        if let Some(i) = find_run(s.free_slots.get(), n) {
            found = Some((seg, i));
            break;
        }
        seg = s.next.get();
    }
    let (seg, first) = match found {
        Some(f) => f,
        None => {
            let base = os::map_aligned(SEGMENT_SIZE, SEGMENT_SIZE, 0);
            if base.is_null() {
                return ptr::null();
            }
            os::no_huge_pages(base, SEGMENT_SIZE);
            let seg = base.cast::<Segment>();
            // SAFETY: fresh zeroed mapping of SEGMENT_SIZE bytes; all-zero bytes are a valid
            // `Segment` apart from `kind` and `free_slots`, which we set before publishing it.
            unsafe {
                ptr::addr_of_mut!((*seg).kind).write(KIND_SEGMENT);
                (*seg).free_slots.set(ALL_FREE);
                (*seg).next.set(st.head);
            }
            st.head = seg;
            st.count += 1;
            if st.count >= 2 {
                // The heap outgrew one segment: worth a purger thread.
                crate::purge::want_purger();
            }
            SEGMENT_COUNT.fetch_add(1, Ordering::Relaxed);
            (seg, 1)
        }
    };
    // SAFETY: `seg` is a mapped segment on the list and we hold the lock.
    let s = unsafe { &*seg };
    let mask = ((1u64 << n) - 1) << first;
    s.free_slots.set(s.free_slots.get() & !mask);
    let was_dirty = (s.dirty_slots.get() & mask).count_ones() as usize;
    s.dirty_slots.set(s.dirty_slots.get() & !mask);
    st.dirty_bytes -= was_dirty * SLOT_SIZE;
    for i in first..first + n {
        s.head[i].store(first as u8, Ordering::Relaxed);
    }
    let page = &s.pages[first];
    let bs = size_class::block_size(cls);
    page.free.set(ptr::null_mut());
    page.used.store(0, Ordering::Relaxed);
    page.capacity.store(0, Ordering::Relaxed);
    page.reserved.set((n * SLOT_SIZE / bs) as u32);
    page.block_size.store(bs as u32, Ordering::Relaxed);
    page.class.set(cls as u8);
    page.slots.set(n as u8);
    page.in_pool.set(false);
    page.owner.store(0, Ordering::Relaxed);
    page.thread_free.store(0, Ordering::Relaxed);
    page.trimmed_bytes.store(0, Ordering::Relaxed);
    // SAFETY: `first < SLOTS`, so the offset stays inside the segment.
    page.start
        .set(unsafe { seg.cast::<u8>().add(first * SLOT_SIZE) });
    page
}

/// Gives the slots of an empty page back to its segment (dirty; purged later by `purge.rs`,
/// at once if the purge delay is 0 or the dirty bytes pass the cap).
///
/// # Safety
/// The caller holds `page` (owner, or pool lock with the page already unlinked), the page has
/// no block in use (`used == 0` after collecting remote frees), and nobody else refers to it.
pub unsafe fn free_page(page: &Page) {
    let now = os::now_ms();
    let seg = region_of(page.start.get()).cast::<Segment>();
    let mut st = SEGMENTS.lock();
    // SAFETY: the page's segment is mapped while the page is in use, and we hold the lock.
    let s = unsafe { &*seg };
    let first = (page.start.get() as usize - seg as usize) / SLOT_SIZE;
    let n = page.slots.get() as usize;
    page.block_size.store(0, Ordering::Relaxed);
    page.capacity.store(0, Ordering::Relaxed);
    page.used.store(0, Ordering::Relaxed);
    page.free.set(ptr::null_mut());
    page.owner.store(0, Ordering::Relaxed);
    let mask = ((1u64 << n) - 1) << first;
    s.free_slots.set(s.free_slots.get() | mask);
    s.dirty_slots.set(s.dirty_slots.get() | mask);
    for i in first..first + n {
        s.freed_at[i].set(now);
    }
    st.dirty_bytes += n * SLOT_SIZE;
    let delay = crate::options::purge_delay_ms();
    if delay == 0 || st.dirty_bytes > crate::options::purge_cap_bytes() {
        purge_locked(&mut st, now, 0);
    }
    crate::purge::want_purger();
}

/// Purges the free slots that have been dirty for at least `delay` ms, and unmaps segments
/// that are entirely free (and old enough). Caller holds the segment lock.
pub fn purge_locked(st: &mut SegState, now: u64, delay: u64) {
    let mut prev: *mut Segment = ptr::null_mut();
    let mut seg = st.head;
    let mut spare_kept = false;
    while !seg.is_null() {
        // SAFETY: segments on the list are mapped; the lock is held by our caller.
        let s = unsafe { &*seg };
        let next = s.next.get();
        let dirty = s.dirty_slots.get();
        let mut old = 0u64;
        let mut bits = dirty;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if now.saturating_sub(s.freed_at[i].get()) >= delay {
                old |= 1 << i;
            }
        }
        let free_and_cold = s.free_slots.get() == ALL_FREE && dirty & !old == 0;
        if free_and_cold && !spare_kept {
            // Keep one empty segment mapped (purged below) as a spare, so that a heap
            // hovering around a segment boundary does not map and unmap 4 MiB over and over.
            spare_kept = true;
        } else if free_and_cold {
            // The whole segment is free and cold: unmap it.
            let bytes = dirty.count_ones() as usize * SLOT_SIZE;
            st.dirty_bytes -= bytes;
            stats::PURGED.fetch_add(bytes, Ordering::Relaxed);
            if prev.is_null() {
                st.head = next;
            } else {
                // SAFETY: `prev` is a mapped segment on the list.
                unsafe { (*prev).next.set(next) };
            }
            st.count -= 1;
            SEGMENT_COUNT.fetch_sub(1, Ordering::Relaxed);
            os::unmap(seg.cast(), SEGMENT_SIZE);
            seg = next;
            continue;
        }
        // Purge runs of old dirty slots.
        let mut bits = old;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            let run = (bits >> i).trailing_ones() as usize;
            // SAFETY: slots i..i+run lie inside the mapped segment.
            let p = unsafe { seg.cast::<u8>().add(i * SLOT_SIZE) };
            os::purge(p, run * SLOT_SIZE);
            stats::PURGED.fetch_add(run * SLOT_SIZE, Ordering::Relaxed);
            st.dirty_bytes -= run * SLOT_SIZE;
            if i + run >= 64 {
                bits = 0;
            } else {
                bits &= !(((1u64 << run) - 1) << i);
            }
        }
        s.dirty_slots.set(dirty & !old);
        prev = seg;
        seg = next;
    }
}
