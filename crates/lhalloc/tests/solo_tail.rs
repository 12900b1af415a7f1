//! Solo pages reuse dirty slots, and a purge round gives back their stale tail (memory of
//! earlier pages past the block) once the block is the purge delay old. The round purges the
//! tail outside the segment lock while the block's holder may grow the block in place: the
//! bytes the holder writes must never be lost. One process (the purge delay is process-wide).

use std::thread;
use std::time::{Duration, Instant};

use lhalloc::c;

fn pattern(seed: usize, i: usize) -> u8 {
    (seed.wrapping_mul(31).wrapping_add(i.wrapping_mul(7)) % 251) as u8
}

/// Grows a block by realloc from 1 KiB to `max` bytes in `step`s, writing every new byte and
/// checking all earlier ones after each step; frees it.
fn grow_and_check(seed: usize, max: usize, step: usize) {
    let mut size = 1024;
    // SAFETY: plain allocation; every access below stays within the block's current size.
    unsafe {
        let mut p = c::malloc(size);
        assert!(!p.is_null());
        for i in 0..size {
            *p.add(i) = pattern(seed, i);
        }
        while size < max {
            let new = (size + step).min(max);
            p = c::realloc(p, new);
            assert!(!p.is_null());
            for i in 0..size {
                assert_eq!(
                    *p.add(i),
                    pattern(seed, i),
                    "byte {i} of {new} lost (seed {seed})"
                );
            }
            for i in size..new {
                *p.add(i) = pattern(seed, i);
            }
            size = new;
        }
        c::free(p);
    }
}

#[test]
fn stale_solo_tails_are_purged_without_losing_growing_blocks() {
    // A delay far below a block's life, so that rounds purge tails of blocks still growing.
    lhalloc::set_purge_delay_ns(200_000);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let purger = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut rounds = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                lhalloc::collect(false);
                rounds += 1;
            }
            rounds
        })
    };
    let t0 = Instant::now();
    let workers: Vec<_> = (0..4)
        .map(|w| {
            thread::spawn(move || {
                let mut n = 0;
                while t0.elapsed() < Duration::from_secs(3) {
                    // Big blocks leave dirty slots resident far past the small ones that
                    // take them next: those get stale tails.
                    grow_and_check(w * 1000 + n, 200 << 10, 24 << 10);
                    grow_and_check(w * 1000 + n + 1, 40 << 10, 3000);
                    n += 2;
                }
                n
            })
        })
        .collect();
    let blocks: usize = workers.into_iter().map(|t| t.join().unwrap()).sum();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = purger.join().unwrap();
    assert!(blocks > 0 && rounds > 0);
    lhalloc::validate().unwrap();

    // Nothing free stays resident after a forced collect: dirty slots and stale tails alike.
    lhalloc::collect(true);
    let r = lhalloc::residency();
    assert_eq!(r.dirty_resident, 0, "{r}");
    // Every block is freed: each stale byte counted left the counter exactly once, whether
    // the round purged it, the block grew into it or its page was freed (concurrently).
    assert_eq!(r.stale_counted, 0, "{r}");
    lhalloc::validate().unwrap();
    lhalloc::set_purge_delay_ns(lhalloc::DEFAULT_PURGE_DELAY_NS);
}
