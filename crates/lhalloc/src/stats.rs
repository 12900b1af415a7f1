//! Statistics: a snapshot assembled from the process-wide counters (`counters.rs`) and the
//! per-thread counters (`thread_stats.rs`). Nothing is walked and no allocator lock is taken
//! (only the thread registry's, which malloc and free never take): reading stats every few
//! hundred milliseconds from another thread does not stop or slow the threads it observes.
//! Values are read one after another while others run, so a snapshot may be off by the
//! operations in flight.

use crate::counters::{self, *};

/// A snapshot of the allocator's memory, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes in blocks handed out and not freed (block sizes, not requested sizes; a block
    /// freed by another thread stops counting at the `free` call).
    pub allocated: usize,
    /// Bytes of the pages that hold blocks (their carved part, rounded to OS pages) and of
    /// live large mappings.
    pub active: usize,
    /// Estimate of the physical memory held: `active` less what was purged inside pages
    /// still in use + solo pages' stale tails + free-but-unpurged slots + segment headers +
    /// cached large mappings (carved blocks are counted as touched). Not an upper bound: the
    /// memory a class page inherits from dirty slots past its carved part is counted nowhere
    /// until carved. `residency()` (mincore) measured 3.2-5.3 MiB more than the counters in a
    /// sidekiq profile run, 12-15 MiB before stale tails were counted
    /// (`bench-results/2026-11-29-grown-stale`).
    pub resident: usize,
    /// Bytes of address space mapped.
    pub mapped: usize,
    /// Cumulative bytes given back to the OS.
    pub purged: usize,
}

/// Takes a statistics snapshot.
pub fn stats() -> Stats {
    crate::init::ensure();
    let small = crate::thread_stats::allocated() as isize;
    let carved = get(&CARVED);
    let large_live = get(&LARGE_LIVE);
    Stats {
        allocated: small.max(0) as usize + get(&LARGE_USABLE),
        active: carved + large_live,
        resident: carved.saturating_sub(get(&PAGE_PURGED))
            + get(&STALE)
            + get(&DIRTY)
            + get(&HEADERS)
            + large_live
            + get(&LARGE_CACHED),
        mapped: get(&MAPPED),
        purged: counters::get(&PURGED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `stats()` takes no allocator lock: it answers while this thread holds all of them
    /// (the segment, pool and large-cache locks; only the thread registry stays free).
    #[test]
    fn stats_answer_while_every_allocator_lock_is_held() {
        crate::init::ensure();
        let seg = crate::segment::SEGMENTS.lock();
        let pools: Vec<_> = crate::pool::POOLS.iter().map(|p| p.lock()).collect();
        let cache = crate::large::CACHE.lock();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let _ = tx.send(stats());
        });
        let got = rx.recv_timeout(std::time::Duration::from_secs(10));
        drop(cache);
        drop(pools);
        drop(seg);
        t.join().unwrap();
        assert!(got.is_ok(), "stats() blocked on an allocator lock");
    }
}
