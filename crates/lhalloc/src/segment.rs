//! Segments: 4 MiB regions, 4 MiB-aligned, cut into 64 slots of 64 KiB. Slot 0 holds the
//! segment header, the 64 page descriptors and their purge maps; slots 1..=63 hold pages.
//! Every segment is on one global list under one lock, taken once per page (never per
//! object) and never across a system call: new segments are mapped, and slots are purged or
//! unmapped, with the lock released (slots being purged are marked `purging` meanwhile so that
//! nobody takes them).
//!
//! Invariants (checked by `validate.rs`):
//! - bit 0 of `free_slots` and of `purging_slots` is clear; `dirty_slots ⊆ free_slots`;
//!   `free_slots ∩ purging_slots = ∅`
//! - slot `i` is in use iff bit `i` is clear in both `free_slots` and `purging_slots`; then
//!   `head[i] = h` with `h <= i < h + pages[h].slots` and `pages[h].block_size != 0`
//! - `DIRTY == Σ over listed segments of popcount(dirty_slots) * SLOT_SIZE`
//! - `count == |list|`, `MAPPED ⊇ count * SEGMENT_SIZE`, `HEADERS == count * HEADER_RESIDENT`.

use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crate::counters;
use crate::demand::Demand;
use crate::geometry::{os_pages, KIND_SEGMENT, SEGMENT_SIZE, SLOTS, SLOT_SIZE};
use crate::lock::Lock;
use crate::os;
use crate::page::{Page, PurgeMap, SOLO_CLASS, SOLO_OWNER};
use crate::size_class;

/// Every page slot free (slot 0 is the header).
pub const ALL_FREE: u64 = !1u64;

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
    /// Bit i iff slot i is being purged outside the lock (neither free nor in use).
    pub purging_slots: Cell<u64>,
    /// When each free slot was freed, ns of the monotonic clock (segment lock).
    pub freed_at: [Cell<u64>; SLOTS],
    /// Per slot, an upper bound of how far from the slot's start its memory may be resident
    /// (segment lock): raised to a page's carved (or a solo block's touched) extent when the
    /// page gives the slot back, never lowered then (a page that took dirty slots inherited
    /// their memory), 0 once the slot is purged. Read when a solo page takes dirty slots: what
    /// lies past its block is its stale tail (see [`purge`]).
    pub resident: [Cell<u32>; SLOTS],
    /// Bit i iff slot i is the first of a solo page with a stale tail (`solo_stale != 0`).
    pub stale_solo: Cell<u64>,
    /// For a slot in use: the slot index of its page's descriptor.
    pub head: [AtomicU8; SLOTS],
    /// Page descriptors, indexed by their first slot.
    pub pages: [Page; SLOTS],
    /// Purge maps of the pages, apart so that they are touched only for trimmed pages.
    pub maps: [PurgeMap; SLOTS],
}

const _: () = assert!(core::mem::size_of::<Segment>() <= SLOT_SIZE);

/// Bytes of the header that are touched in normal use (counted as resident): everything but
/// the purge maps.
pub const HEADER_RESIDENT: usize = os_pages(core::mem::offset_of!(Segment, maps));

/// Global segment state (segment lock).
pub struct SegState {
    pub head: *mut Segment,
    pub count: usize,
    /// Dirty slot bytes that pages and solo pages took (reused while still resident): the cap
    /// on free-but-unpurged slot bytes is raised to this recent demand (`free_page`).
    pub dirty_demand: Demand,
}

// SAFETY: the raw pointers lead to segment headers, which are only touched under the segment
// lock (or through atomics); moving the state between threads is how the lock is used.
unsafe impl Send for SegState {}

/// The segment lock. Lock order: pool locks, then this one, then the large-cache lock.
pub static SEGMENTS: Lock<SegState> = Lock::new(SegState {
    head: ptr::null_mut(),
    count: 0,
    dirty_demand: Demand::new(),
});

/// Number of mapped segments (for statistics without the lock).
pub static SEGMENT_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Number of solo pages with a stale tail (for the purge round's cheap check).
pub static STALE_SOLOS: AtomicUsize = AtomicUsize::new(0);

/// Waits until no purge round is purging solo page `page`'s stale tail, then forgets the
/// stale tail, recording it in the slots' resident bounds (segment lock held, through `s`).
fn settle_stale_tail(s: &Segment, page: &Page, first: usize) {
    while page.tail_busy.load(Ordering::SeqCst) {
        // The round clears the flag without taking the segment lock: this ends.
        os::yield_now();
    }
    let stale = page.solo_stale.get() as usize;
    counters::sub(
        &counters::STALE,
        page.stale_counted.swap(0, Ordering::Relaxed) as usize,
    );
    if stale != 0 {
        note_resident(s, first, page.slots.get() as usize, stale);
        page.solo_stale.set(0);
        s.stale_solo.set(s.stale_solo.get() & !(1u64 << first));
        STALE_SOLOS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Adds `bytes` of earlier pages' memory, reaching `extent` bytes from the start of solo page
/// `page` (first slot `first`), to the page's stale tail: counted in `counters::STALE` and
/// purged by a round once the tail is the purge delay old, counted from when it began.
/// Segment lock held (through `s`), and no round purging this page's tail.
fn join_stale_tail(s: &Segment, page: &Page, first: usize, extent: usize, bytes: usize) {
    if page.solo_stale.get() == 0 {
        page.changed_at.set(os::now_ns());
        s.stale_solo.set(s.stale_solo.get() | (1u64 << first));
        STALE_SOLOS.fetch_add(1, Ordering::Relaxed);
    }
    page.solo_stale
        .set(extent.max(page.solo_stale.get() as usize) as u32);
    page.stale_counted
        .fetch_add(bytes as u32, Ordering::Relaxed);
    counters::add(&counters::STALE, bytes);
}

/// Number of listed segments with every slot free or being purged (the purge round unmaps
/// all but one of them).
pub static EMPTY_SEGMENTS: AtomicUsize = AtomicUsize::new(0);

/// Whether a segment has no slot in use.
#[inline]
fn is_empty(s: &Segment) -> bool {
    s.free_slots.get() | s.purging_slots.get() == ALL_FREE
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

/// The segment of a page descriptor.
#[inline]
pub fn segment_of(page: &Page) -> *mut Segment {
    ((page as *const Page as usize) & !(SEGMENT_SIZE - 1)) as *mut Segment
}

/// The first slots of every run of `n` (`1..SLOTS`) contiguous free slots in `free` (slot 0,
/// the header, is never one).
///
/// Bit `i` of `starts` stays set while slots `i..i + len` are all free: and-ing `starts` with
/// itself shifted right by `step <= len` extends every run by `step`, so a run of 16 takes 4
/// steps instead of a scan of 63 positions (this runs under the segment lock, once per listed
/// segment, for every page taken). Bits shifted in from the top are zero, so no run reaches
/// past slot 63.
fn run_starts(free: u64, n: usize) -> u64 {
    debug_assert!((1..SLOTS).contains(&n));
    let mut starts = free & !1;
    let mut len = 1;
    while len < n {
        let step = len.min(n - len);
        starts &= starts >> step;
        len += step;
    }
    starts
}

/// Finds `n` contiguous free slots in `free`; returns the first.
fn find_run(free: u64, n: usize) -> Option<usize> {
    let starts = run_starts(free, n);
    (starts != 0).then(|| starts.trailing_zeros() as usize)
}

/// Among the runs of `n` free slots, the one holding the most dirty (resident) slots, with
/// that count: the fewer clean slots a page or medium block takes, the fewer OS pages fault
/// when it is written. Candidates are the first free run and the runs that begin where a run
/// of dirty slots begins or end where one ends (a wholly dirty run, if any, is among them:
/// moved to end where its dirty run ends, it stays wholly dirty and starts no earlier).
/// `dirty` is within `free`.
fn dirtiest_run(free: u64, dirty: u64, n: usize) -> Option<(usize, usize)> {
    let starts = run_starts(free, n);
    if starts == 0 {
        return None;
    }
    let window = (1u64 << n) - 1;
    let score = |i: usize| ((dirty >> i) & window).count_ones() as usize;
    let first = starts.trailing_zeros() as usize;
    let mut best = (first, score(first));
    let begins = dirty & !(dirty << 1);
    let ends = dirty & !(dirty >> 1);
    let mut cands = starts & (begins | (ends >> (n - 1)));
    while cands != 0 && best.1 < n {
        let i = cands.trailing_zeros() as usize;
        cands &= cands - 1;
        let sc = score(i);
        if sc > best.1 {
            best = (i, sc);
        }
    }
    Some(best)
}

/// Maps and initialises a new segment (not yet listed); null on failure.
fn map_segment() -> *mut Segment {
    let base = os::map_aligned(SEGMENT_SIZE, SEGMENT_SIZE, 0);
    if base.is_null() {
        return ptr::null_mut();
    }
    os::no_huge_pages(base, SEGMENT_SIZE);
    let seg = base.cast::<Segment>();
    // SAFETY: fresh zeroed mapping of SEGMENT_SIZE bytes; all-zero bytes are a valid
    // `Segment` apart from `kind`, `free_slots` and the descriptors' map pointers, which we set
    // before publishing it.
    unsafe {
        ptr::addr_of_mut!((*seg).kind).write(KIND_SEGMENT);
        (*seg).free_slots.set(ALL_FREE);
        for i in 0..SLOTS {
            (*seg).pages[i].map.set(&(*seg).maps[i]);
        }
    }
    counters::add(&counters::MAPPED, SEGMENT_SIZE);
    counters::add(&counters::HEADERS, HEADER_RESIDENT);
    SEGMENT_COUNT.fetch_add(1, Ordering::Relaxed);
    seg
}

/// Raises the resident bounds of slots `first..first + n` to cover `bytes` from the run's
/// start (segment lock held by the caller, through `s`).
fn note_resident(s: &Segment, first: usize, n: usize, bytes: usize) {
    for k in 0..n {
        let part = bytes.saturating_sub(k * SLOT_SIZE).min(SLOT_SIZE) as u32;
        let r = &s.resident[first + k];
        if part > r.get() {
            r.set(part);
        }
    }
}

/// Takes `n` free slots of some segment: the first run of dirty slots if there are enough
/// dirty bytes for one, else the first fit, else a new segment (reusing resident memory saves
/// the page faults of the bytes that will be written, and dirty slots left waiting for their
/// purge are resident memory too). Returns the segment and the first slot, with the slots
/// marked in use (heads set to the first slot) and no longer dirty; `None` on OOM. With
/// `solo = Some(touched)` (a solo block's bytes), what the slots' [`Segment::resident`] bounds
/// say may be resident past `touched` becomes the page's stale tail, purged by a round once
/// the block is the purge delay old.
fn take_slots(
    n: usize,
    solo: Option<usize>,
    init: impl FnOnce(&Page, *mut u8),
) -> Option<(*mut Segment, usize)> {
    let mut fresh: *mut Segment = ptr::null_mut();
    let mut fresh_listed: *mut Segment = ptr::null_mut();
    loop {
        let mut st = SEGMENTS.lock();
        let mut seg = st.head;
        let mut found: Option<(*mut Segment, usize)> = None;
        // The run with the most dirty slots, of the segments walked so far.
        let mut fallback: Option<(*mut Segment, usize, usize)> = None;
        let dirty_first = counters::get(&counters::DIRTY) >= n * SLOT_SIZE;
        while !seg.is_null() {
            // SAFETY: segments on the list are mapped; their headers are guarded by the lock.
            let s = unsafe { &*seg };
            if dirty_first {
                if let Some((i, dirty)) = dirtiest_run(s.free_slots.get(), s.dirty_slots.get(), n) {
                    if dirty == n {
                        found = Some((seg, i));
                        break;
                    }
                    if fallback.map_or(true, |(_, _, best)| dirty > best) {
                        fallback = Some((seg, i, dirty));
                    }
                }
            } else if let Some(i) = find_run(s.free_slots.get(), n) {
                found = Some((seg, i));
                break;
            }
            seg = s.next.get();
        }
        if found.is_none() {
            found = fallback.map(|(seg, i, _)| (seg, i));
        }
        if found.is_none() && !fresh.is_null() {
            // SAFETY: `fresh` is our private, initialised segment; we list it under the lock.
            unsafe { (*fresh).next.set(st.head) };
            st.head = fresh;
            st.count += 1;
            found = Some((fresh, 1));
            fresh_listed = fresh;
            fresh = ptr::null_mut();
        }
        if let Some((seg, first)) = found {
            // SAFETY: `seg` is a listed segment and we hold the lock.
            let s = unsafe { &*seg };
            if is_empty(s) && seg != fresh_listed {
                EMPTY_SEGMENTS.fetch_sub(1, Ordering::Relaxed);
            }
            let mask = ((1u64 << n) - 1) << first;
            s.free_slots.set(s.free_slots.get() & !mask);
            let was_dirty = (s.dirty_slots.get() & mask).count_ones() as usize;
            s.dirty_slots.set(s.dirty_slots.get() & !mask);
            counters::sub(&counters::DIRTY, was_dirty * SLOT_SIZE);
            st.dirty_demand.take(was_dirty * SLOT_SIZE);
            let mut extent = 0;
            for i in first..first + n {
                s.head[i].store(first as u8, Ordering::Relaxed);
                let r = s.resident[i].get() as usize;
                if r > 0 {
                    extent = (i - first) * SLOT_SIZE + r;
                }
            }
            // Describe the page before the lock is released: whoever walks the segments
            // under the lock (validator, residency, fork) never sees a slot in use without
            // its page.
            // SAFETY: `first < SLOTS`, so the offset stays inside the segment.
            init(&s.pages[first], unsafe {
                seg.cast::<u8>().add(first * SLOT_SIZE)
            });
            if let Some(touched) = solo {
                let page = &s.pages[first];
                page.tail_busy.store(false, Ordering::Relaxed);
                page.solo_stale.set(0);
                page.stale_counted.store(0, Ordering::Relaxed);
                if extent > touched {
                    // Stale memory past the block, counted before the block is handed out
                    // (short-lived blocks, most of them, reuse it as they grow).
                    join_stale_tail(s, page, first, extent, extent - touched);
                }
            }
            drop(st);
            if !fresh.is_null() {
                // Another thread made room meanwhile: our fresh segment is not needed.
                // SAFETY: `fresh` was never listed nor handed out.
                unsafe { unmap_segment(fresh) };
            }
            return Some((seg, first));
        }
        drop(st);
        // Map outside the lock, then look again (someone may have freed slots meanwhile).
        fresh = map_segment();
        if fresh.is_null() {
            return None;
        }
    }
}

/// Unmaps a segment that is not listed and holds nothing.
///
/// # Safety
/// `seg` is a segment of ours, unlisted, with no page in use and no reference into it.
unsafe fn unmap_segment(seg: *mut Segment) {
    counters::sub(&counters::MAPPED, SEGMENT_SIZE);
    counters::sub(&counters::HEADERS, HEADER_RESIDENT);
    SEGMENT_COUNT.fetch_sub(1, Ordering::Relaxed);
    // SAFETY: per the contract nothing in the segment is in use.
    unsafe { os::unmap(seg.cast(), SEGMENT_SIZE) };
}

/// Takes a fresh page for class `cls`. The page is returned with no holder set and no block
/// carved; null on OOM. The caller becomes its holder.
pub fn alloc_page(cls: usize) -> *const Page {
    let n = size_class::slots_of(cls);
    let bs = size_class::block_size(cls);
    let init = |page: &Page, start: *mut u8| {
        page.free.set(ptr::null_mut());
        page.used.store(0, Ordering::Relaxed);
        page.capacity.store(0, Ordering::Relaxed);
        page.reserved.set((n * SLOT_SIZE / bs) as u32);
        page.block_size.store(bs as u32, Ordering::Relaxed);
        page.class.set(cls as u8);
        page.slots.set(n as u8);
        page.in_pool.store(false, Ordering::Relaxed);
        page.trimmed.set(false);
        page.owner.store(0, Ordering::Relaxed);
        page.thread_free.store(0, Ordering::Relaxed);
        page.purged_blocks.set(0);
        page.purged_bytes.set(0);
        page.start.set(start);
    };
    let Some((seg, first)) = take_slots(n, None, init) else {
        return ptr::null();
    };
    // SAFETY: the slots were just taken for us and described.
    unsafe { &(*seg).pages[first] }
}

/// Takes `n` slots (`1..SLOTS`) for a solo block of `size` bytes. Null on OOM.
pub fn alloc_solo(n: usize, size: usize) -> *const Page {
    let init = |page: &Page, start: *mut u8| {
        page.free.set(ptr::null_mut());
        page.used.store(1, Ordering::Relaxed);
        page.capacity.store(1, Ordering::Relaxed);
        page.reserved.set(1);
        page.block_size
            .store((n * SLOT_SIZE) as u32, Ordering::Relaxed);
        page.class.set(SOLO_CLASS);
        page.slots.set(n as u8);
        page.in_pool.store(false, Ordering::Relaxed);
        page.thread_free.store(0, Ordering::Relaxed);
        page.purged_blocks.set(0);
        page.purged_bytes.set(0);
        page.solo_size.store(size, Ordering::Relaxed);
        page.solo_touched
            .store(os_pages(size).min(n * SLOT_SIZE), Ordering::Relaxed);
        page.start.set(start);
        page.owner.store(SOLO_OWNER, Ordering::Relaxed);
    };
    let touched = os_pages(size).min(n * SLOT_SIZE);
    let Some((seg, first)) = take_slots(n, Some(touched), init) else {
        return ptr::null();
    };
    // SAFETY: the slots were just taken for us and described.
    unsafe { &(*seg).pages[first] }
}

/// Grows solo page `page` in place to `n` slots if the slots after it are free. Returns
/// whether it worked. What dirty slots among them hold joins the page's stale tail.
///
/// # Safety
/// The caller holds the solo page (it owns the solo block).
pub unsafe fn grow_solo(page: &Page, n: usize) -> bool {
    let seg = segment_of(page);
    let first = (page.start.get() as usize - seg as usize) / SLOT_SIZE;
    let old = page.slots.get() as usize;
    if first + n > SLOTS {
        return false;
    }
    let _st = SEGMENTS.lock();
    // SAFETY: the page's segment is mapped while the page is in use, and we hold the lock.
    let s = unsafe { &*seg };
    let mask = ((1u64 << (n - old)) - 1) << (first + old);
    if s.free_slots.get() & mask != mask {
        return false;
    }
    // The solo page itself is in use, so the segment was not empty.
    s.free_slots.set(s.free_slots.get() & !mask);
    let was_dirty = (s.dirty_slots.get() & mask).count_ones() as usize;
    s.dirty_slots.set(s.dirty_slots.get() & !mask);
    counters::sub(&counters::DIRTY, was_dirty * SLOT_SIZE);
    // Dirty slots taken as headroom hold earlier pages' memory past the block: it joins the
    // stale tail (counted, and purged once the tail is the purge delay old), as at placement.
    let mut extent = 0;
    let mut inherited = 0;
    for i in first + old..first + n {
        s.head[i].store(first as u8, Ordering::Relaxed);
        let r = s.resident[i].get() as usize;
        if r > 0 {
            extent = (i - first) * SLOT_SIZE + r;
            inherited += r;
        }
    }
    if inherited > 0 {
        // A round purging the tail outside the lock finishes first (it clears the flag
        // without the lock), so that no round is in flight on the tail joined here.
        while page.tail_busy.load(Ordering::SeqCst) {
            os::yield_now();
        }
        join_stale_tail(s, page, first, extent, inherited);
    }
    page.slots.set(n as u8);
    page.block_size
        .store((n * SLOT_SIZE) as u32, Ordering::Relaxed);
    true
}

/// Gives the slots of an empty page (or a freed solo page) back to its segment, dirty; they
/// are purged later by the purge round, at once (outside the lock) if the purge delay is 0 or
/// the dirty bytes pass the cap.
///
/// # Safety
/// The caller holds `page` (owner, pool lock with the page already unlinked, or the solo
/// block), the page has no block in use (after collecting remote frees), and nobody else
/// refers to it.
pub unsafe fn free_page(page: &Page) {
    let now = os::now_ns();
    // SAFETY: forwarded contract: no block is in use.
    unsafe { page.reset_purge_state() };
    let carved = if page.class.get() == SOLO_CLASS {
        page.solo_touched.load(Ordering::Relaxed)
    } else {
        os_pages(page.capacity.load(Ordering::Relaxed) as usize * page.bsize())
    };
    counters::sub(&counters::CARVED, carved);
    let seg = segment_of(page);
    let first = (page.start.get() as usize - seg as usize) / SLOT_SIZE;
    let n = page.slots.get() as usize;
    let delay = crate::options::purge_delay_ns();
    let demand;
    {
        let mut st = SEGMENTS.lock();
        demand = st.dirty_demand.recent(now, delay);
        // SAFETY: the page's segment is mapped while the page is in use, and we hold the lock.
        let s = unsafe { &*seg };
        if page.class.get() == SOLO_CLASS {
            settle_stale_tail(s, page, first);
        }
        page.block_size.store(0, Ordering::Relaxed);
        page.capacity.store(0, Ordering::Relaxed);
        page.used.store(0, Ordering::Relaxed);
        page.free.set(ptr::null_mut());
        page.owner.store(0, Ordering::Relaxed);
        page.class.set(0);
        let mask = ((1u64 << n) - 1) << first;
        s.free_slots.set(s.free_slots.get() | mask);
        s.dirty_slots.set(s.dirty_slots.get() | mask);
        for i in first..first + n {
            s.freed_at[i].set(now);
        }
        note_resident(s, first, n, carved);
        counters::add(&counters::DIRTY, n * SLOT_SIZE);
        if is_empty(s) {
            EMPTY_SEGMENTS.fetch_add(1, Ordering::Relaxed);
        }
    }
    if delay == 0 {
        purge(now, 0);
    } else {
        // The cap bounds dirty slots nobody is reusing; dirty slots that pages and medium
        // blocks took again within the last delay are working memory, not a surplus.
        let cap = crate::options::purge_cap_bytes().max(demand);
        if counters::get(&counters::DIRTY) > cap {
            purge_over_cap(now, delay, cap);
        }
    }
}

/// Brings the free-but-unpurged slot bytes from above `cap` down to `cap / 2`, oldest first:
/// slots dirty for at least half the delay, then a quarter, ... then any. The slots freed last
/// are the ones the next `take_slots` reuses (dirty first), so purging them would only make
/// their next user fault them in again. Stopping at half the cap leaves room for the next
/// frees before the cap is passed again.
fn purge_over_cap(now: u64, delay: u64, cap: usize) {
    let target = cap / 2;
    let mut age = delay / 2;
    loop {
        purge_down_to(now, age, target);
        if age == 0 || counters::get(&counters::DIRTY) <= target {
            return;
        }
        age = if age <= delay / 16 { 0 } else { age / 2 };
    }
}

/// Gives the tail slots `n..` of a solo page back to its segment (dirty).
///
/// # Safety
/// The caller holds the solo page, `1 <= n < page.slots`, and nothing lives past `n` slots.
pub unsafe fn shrink_solo(page: &Page, n: usize) {
    let now = os::now_ns();
    let seg = segment_of(page);
    let first = (page.start.get() as usize - seg as usize) / SLOT_SIZE;
    let old = page.slots.get() as usize;
    let _st = SEGMENTS.lock();
    // SAFETY: the page's segment is mapped while the page is in use, and we hold the lock.
    let s = unsafe { &*seg };
    settle_stale_tail(s, page, first);
    let mask = ((1u64 << (old - n)) - 1) << (first + n);
    s.free_slots.set(s.free_slots.get() | mask);
    s.dirty_slots.set(s.dirty_slots.get() | mask);
    for i in first + n..first + old {
        s.freed_at[i].set(now);
    }
    note_resident(s, first, old, page.solo_touched.load(Ordering::Relaxed));
    counters::add(&counters::DIRTY, (old - n) * SLOT_SIZE);
    page.slots.set(n as u8);
    page.block_size
        .store((n * SLOT_SIZE) as u32, Ordering::Relaxed);
}

/// Most slot runs handled per locked pass of [`purge`].
const PURGE_BATCH: usize = 32;

/// Purges the free slots that have been dirty for at least `delay` ns, and unmaps segments
/// that are entirely free and purged (one is kept as a spare). System calls happen with the
/// lock released. Returns the bytes given back.
pub fn purge(now: u64, delay: u64) -> usize {
    purge_down_to(now, delay, 0)
}

/// [`purge`], except that it stops purging slots once the free-but-unpurged slot bytes are at
/// most `keep` (stale solo tails and empty segments are handled all the same).
fn purge_down_to(now: u64, delay: u64, keep: usize) -> usize {
    let mut total = 0;
    loop {
        let mut runs: [(*mut u8, usize); PURGE_BATCH] = [(ptr::null_mut(), 0); PURGE_BATCH];
        let mut nruns = 0;
        let mut unmaps: [*mut Segment; PURGE_BATCH] = [ptr::null_mut(); PURGE_BATCH];
        let mut nunmaps = 0;
        let mut tails: [(*const Page, *mut u8, usize); PURGE_BATCH] =
            [(ptr::null(), ptr::null_mut(), 0); PURGE_BATCH];
        let mut ntails = 0;
        let mut more = false;
        {
            let mut st = SEGMENTS.lock();
            let mut prev: *mut Segment = ptr::null_mut();
            let mut seg = st.head;
            let mut spare_kept = false;
            while !seg.is_null() {
                // SAFETY: listed segments are mapped; we hold the lock.
                let s = unsafe { &*seg };
                let next = s.next.get();
                let entirely_free = s.free_slots.get() == ALL_FREE;
                if entirely_free && s.dirty_slots.get() == 0 {
                    if !spare_kept {
                        // Keep one empty, purged segment mapped as a spare, so that a heap
                        // hovering around a segment boundary does not map and unmap 4 MiB
                        // over and over.
                        spare_kept = true;
                    } else if nunmaps < PURGE_BATCH {
                        if prev.is_null() {
                            st.head = next;
                        } else {
                            // SAFETY: `prev` is a listed segment.
                            unsafe { (*prev).next.set(next) };
                        }
                        st.count -= 1;
                        EMPTY_SEGMENTS.fetch_sub(1, Ordering::Relaxed);
                        unmaps[nunmaps] = seg;
                        nunmaps += 1;
                        seg = next;
                        continue;
                    } else {
                        more = true;
                    }
                }
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
                let mut bits = old;
                while bits != 0 && counters::get(&counters::DIRTY) > keep {
                    if nruns == PURGE_BATCH {
                        more = true;
                        break;
                    }
                    let i = bits.trailing_zeros() as usize;
                    let run = (bits >> i).trailing_ones() as usize;
                    let mask = if run == 64 {
                        !0
                    } else {
                        ((1u64 << run) - 1) << i
                    };
                    bits &= !mask;
                    s.dirty_slots.set(s.dirty_slots.get() & !mask);
                    s.free_slots.set(s.free_slots.get() & !mask);
                    s.purging_slots.set(s.purging_slots.get() | mask);
                    for k in i..i + run {
                        s.resident[k].set(0);
                    }
                    counters::sub(&counters::DIRTY, run * SLOT_SIZE);
                    // SAFETY: slots i..i+run lie inside the mapped segment.
                    runs[nruns] = (unsafe { seg.cast::<u8>().add(i * SLOT_SIZE) }, run);
                    nruns += 1;
                }
                // Stale tails of solo pages at least `delay` old.
                let mut bits = s.stale_solo.get();
                while bits != 0 {
                    let i = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    let page = &s.pages[i];
                    if now.saturating_sub(page.changed_at.get()) < delay {
                        continue;
                    }
                    if ntails == PURGE_BATCH {
                        more = true;
                        break;
                    }
                    // Dekker-style with `solo::resize`: the flag is stored before `touched`
                    // is read, and resize stores `touched` before it reads the flag, so
                    // either we purge from the raised `touched` or resize waits for us.
                    page.tail_busy.store(true, Ordering::SeqCst);
                    let touched = page.solo_touched.load(Ordering::SeqCst);
                    let stale = page.solo_stale.get() as usize;
                    page.solo_stale.set(0);
                    counters::sub(
                        &counters::STALE,
                        page.stale_counted.swap(0, Ordering::Relaxed) as usize,
                    );
                    s.stale_solo.set(s.stale_solo.get() & !(1u64 << i));
                    STALE_SOLOS.fetch_sub(1, Ordering::Relaxed);
                    let n = page.slots.get() as usize;
                    for k in 0..n {
                        let part = touched.saturating_sub(k * SLOT_SIZE).min(SLOT_SIZE);
                        s.resident[i + k].set(part as u32);
                    }
                    let len = stale.saturating_sub(touched);
                    // SAFETY: `min(touched, stale) <= stale <= n` slots: inside the solo
                    // page's run.
                    let p = unsafe { page.start.get().add(touched.min(stale)) };
                    tails[ntails] = (page, p, len);
                    ntails += 1;
                }
                prev = seg;
                seg = next;
            }
        }
        for &(page, p, len) in &tails[..ntails] {
            if len > 0 {
                // SAFETY: past the solo block's touched bytes, inside its slots: dead memory
                // (the holder waits on `tail_busy` before writing there or giving slots back).
                unsafe { os::purge(p, len) };
                counters::add(&counters::PURGED, len);
            }
            // SAFETY: a solo page in use: its descriptor stays valid (its holder waits for
            // this flag before giving its slots back).
            unsafe { (*page).tail_busy.store(false, Ordering::Release) };
            total += len;
        }
        for &(p, run) in &runs[..nruns] {
            // SAFETY: the slots are free and marked purging: nobody uses or takes them.
            unsafe { os::purge(p, run * SLOT_SIZE) };
            counters::add(&counters::PURGED, run * SLOT_SIZE);
            total += run * SLOT_SIZE;
        }
        for &seg in &unmaps[..nunmaps] {
            // SAFETY: the segment was unlisted above, entirely free and purged.
            unsafe { unmap_segment(seg) };
        }
        if nruns > 0 {
            let _st = SEGMENTS.lock();
            for &(p, run) in &runs[..nruns] {
                let seg = crate::geometry::region_of(p).cast::<Segment>();
                let i = (p as usize - seg as usize) / SLOT_SIZE;
                let mask = if run == 64 {
                    !0
                } else {
                    ((1u64 << run) - 1) << i
                };
                // SAFETY: segments with slots marked purging are never unmapped.
                let s = unsafe { &*seg };
                s.purging_slots.set(s.purging_slots.get() & !mask);
                s.free_slots.set(s.free_slots.get() | mask);
            }
        }
        if !more {
            return total;
        }
    }
}

/// Whether any segment holds dirty slots or could be unmapped (a cheap check for the purge
/// round, without the lock).
pub fn has_work() -> bool {
    counters::get(&counters::DIRTY) != 0
        || EMPTY_SEGMENTS.load(Ordering::Relaxed) > 1
        || STALE_SOLOS.load(Ordering::Relaxed) != 0
}

/// In a forked child: slots that another thread was purging (outside the lock) when the
/// parent forked go back to free and dirty; and if the forking thread itself was inside a
/// segment operation (fork from a signal handler), the list is forgotten (its segments leak in
/// the child) so that it is consistent.
///
/// # Safety
/// Only the fork child handler calls it (one thread; the lock abandoned or held by the
/// prepare handler). `self_held`: the forking thread held the segment lock.
pub unsafe fn after_fork_child(self_held: bool) {
    // SAFETY: the child has one thread.
    let st = unsafe { SEGMENTS.peek_mut() };
    if self_held {
        st.head = ptr::null_mut();
        st.count = 0;
        EMPTY_SEGMENTS.store(0, Ordering::Relaxed);
        return;
    }
    let mut seg = st.head;
    while !seg.is_null() {
        // SAFETY: listed segments are mapped and the list is consistent (the lock was taken
        // by the prepare handler).
        let s = unsafe { &*seg };
        // A round that was purging a stale tail is gone (the tail stays stale, unpurged).
        for page in s.pages.iter() {
            page.tail_busy.store(false, Ordering::Relaxed);
        }
        let p = s.purging_slots.get();
        if p != 0 {
            s.purging_slots.set(0);
            s.free_slots.set(s.free_slots.get() | p);
            s.dirty_slots.set(s.dirty_slots.get() | p);
            // Half purged, perhaps: count them as wholly resident.
            let mut bits = p;
            while bits != 0 {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                s.resident[i].set(SLOT_SIZE as u32);
            }
            counters::add(&counters::DIRTY, p.count_ones() as usize * SLOT_SIZE);
        }
        seg = s.next.get();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The scan `find_run` replaced: every start from slot 1 on, in order.
    fn scan(free: u64, n: usize) -> Option<usize> {
        (1..=SLOTS - n).find(|&i| (i..i + n).all(|k| free & (1u64 << k) != 0))
    }

    proptest! {
        #[test]
        fn find_run_finds_the_first_run_a_scan_finds(free in any::<u64>(), n in 1usize..SLOTS) {
            prop_assert_eq!(find_run(free, n), scan(free, n));
        }

        /// Sparse maps (each slot free with probability 1/8) rarely hold long runs; dense
        /// ones (7/8) hold them often: both ends of the search are exercised.
        #[test]
        fn find_run_agrees_on_sparse_and_dense_maps(
            a in any::<u64>(), b in any::<u64>(), c in any::<u64>(), n in 1usize..SLOTS,
        ) {
            prop_assert_eq!(find_run(a & b & c, n), scan(a & b & c, n));
            prop_assert_eq!(find_run(a | b | c, n), scan(a | b | c, n));
        }
    }

    proptest! {
        /// `dirtiest_run` finds a run whenever a scan does, returns a run of free slots with
        /// its true dirty count, and a wholly dirty one whenever there is one.
        #[test]
        fn dirtiest_run_is_free_counted_and_wholly_dirty_when_possible(
            a in any::<u64>(), b in any::<u64>(), c in any::<u64>(), n in 1usize..SLOTS,
        ) {
            for free in [a | b, a, a | b | c] {
                let dirty = free & (b ^ c);
                let got = dirtiest_run(free, dirty, n);
                prop_assert_eq!(got.is_some(), scan(free, n).is_some());
                if let Some((i, d)) = got {
                    prop_assert!(i >= 1 && i + n <= SLOTS);
                    let window = ((1u64 << n) - 1) << i;
                    prop_assert_eq!(free & window, window);
                    prop_assert_eq!((dirty & window).count_ones() as usize, d);
                    if scan(dirty, n).is_some() {
                        prop_assert_eq!(d, n);
                    }
                }
            }
        }
    }

    #[test]
    fn dirtiest_run_prefers_resident_slots() {
        // Slots 1-8 free and clean, 9-11 free and dirty: a run of 4 takes 8-11, not 1-4.
        let free = 0xffe;
        let dirty = 0xe00;
        assert_eq!(dirtiest_run(free, dirty, 4), Some((8, 3)));
        assert_eq!(dirtiest_run(free, dirty, 3), Some((9, 3)));
        assert_eq!(dirtiest_run(free, 0, 4), Some((1, 0)));
    }

    #[test]
    fn find_run_edges() {
        assert_eq!(find_run(!0, SLOTS - 1), Some(1));
        assert_eq!(find_run(!0, 1), Some(1));
        assert_eq!(find_run(1, 1), None);
        assert_eq!(find_run(1u64 << 63, 1), Some(63));
        assert_eq!(find_run(0b1110, 3), Some(1));
        assert_eq!(find_run(0b1110, 4), None);
    }
}
