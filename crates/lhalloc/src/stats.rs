//! Statistics, computed on demand by walking the segment headers (a few microseconds per GiB
//! of heap; cheap enough to call every second) plus counters kept by `large.rs`.

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::large;
use crate::os;
use crate::segment::{Segment, HEADER_RESIDENT, SEGMENTS, SEGMENT_SIZE, SLOTS, SLOT_SIZE};

/// Cumulative bytes given back to the OS (purged with MADV_DONTNEED or unmapped).
pub static PURGED: AtomicUsize = AtomicUsize::new(0);

/// A snapshot of the allocator's memory, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes in blocks handed out (block sizes, not requested sizes; blocks freed by other
    /// threads and not yet collected still count).
    pub allocated: usize,
    /// Bytes of the pages that hold blocks (their carved part, rounded to OS pages) and of live
    /// large mappings.
    pub active: usize,
    /// Estimate of the physical memory held: `active` (less the trimmed free blocks of pooled
    /// pages) + free-but-unpurged slots + segment headers + cached large mappings. An upper
    /// bound of what RSS attributes to us (carved blocks are counted as touched).
    pub resident: usize,
    /// Bytes of address space mapped.
    pub mapped: usize,
    /// Cumulative bytes given back to the OS.
    pub purged: usize,
}

/// Takes a statistics snapshot.
pub fn stats() -> Stats {
    let mut s = Stats::default();
    {
        let st = SEGMENTS.lock();
        let mut seg = st.head;
        while !seg.is_null() {
            // SAFETY: segments on the list are mapped and we hold the segment lock; page
            // fields read here are atomics or written only under this lock.
            let sg: &Segment = unsafe { &*seg };
            s.mapped += SEGMENT_SIZE;
            s.resident += HEADER_RESIDENT;
            let free = sg.free_slots.get();
            s.resident += sg.dirty_slots.get().count_ones() as usize * SLOT_SIZE;
            for i in 1..SLOTS {
                if free & (1 << i) != 0 || sg.head[i].load(Ordering::Relaxed) as usize != i {
                    continue;
                }
                let page = &sg.pages[i];
                let bs = page.bsize();
                let used = page.used.load(Ordering::Relaxed) as usize;
                let cap = page.capacity.load(Ordering::Relaxed) as usize;
                let carved = (cap * bs + os::OS_PAGE - 1) & !(os::OS_PAGE - 1);
                let trimmed = page.trimmed_bytes.load(Ordering::Relaxed);
                s.allocated += used * bs;
                s.active += carved;
                s.resident += carved.saturating_sub(trimmed);
            }
            seg = sg.next.get();
        }
    }
    let live = large::LIVE_MAPPED.load(Ordering::Relaxed);
    let cached = large::CACHED.load(Ordering::Relaxed);
    s.allocated += large::LIVE_USABLE.load(Ordering::Relaxed);
    s.active += live;
    s.resident += live + cached;
    s.mapped += live + cached;
    s.purged = PURGED.load(Ordering::Relaxed);
    s
}
