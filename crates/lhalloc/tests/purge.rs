//! Memory goes back to the OS after the purge delay: first with deferred purging only (rounds
//! run on allocation slow paths), then with the background purger, even when the blocks were
//! freed by another thread and the process then sits idle. One test function (the statistics
//! are process-wide).

use std::thread;
use std::time::{Duration, Instant};

use lhalloc::c;

const MIB: usize = 1 << 20;

/// Resident set size of this process, from /proc/self/statm.
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("statm");
    pages * 4096
}

fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(
            t.elapsed() < limit,
            "timed out waiting for {what}: {:?}",
            lhalloc::stats()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// One allocation slow path (a large block): runs a deferred purge round if one is due.
fn poke() {
    // SAFETY: plain allocation, freed at once.
    unsafe { c::free(c::malloc(300 << 10)) };
}

#[test]
fn freed_memory_is_returned_after_the_delay() {
    assert_eq!(lhalloc::purge_delay_ms(), lhalloc::DEFAULT_PURGE_DELAY_MS);
    lhalloc::set_purge_delay_ns(100_000_000);
    assert_eq!(lhalloc::purge_delay_ms(), 100);
    assert_eq!(lhalloc::purge_delay_ns(), 100_000_000);
    assert_eq!(lhalloc::purger_state(), lhalloc::PurgerState::NotStarted);
    assert!(lhalloc::settings().contains("background not started"));
    let before = lhalloc::stats();

    // Deferred purging: 32 MiB freed by another thread come back once the delay has passed
    // and some thread allocates again (no background thread).
    let blocks: Vec<usize> = thread::spawn(|| {
        (0..32 * 1024)
            .map(|i| {
                // SAFETY: plain allocation, then a write within its size.
                unsafe {
                    let p = c::malloc(1000 + i % 24);
                    assert!(!p.is_null());
                    p.write_bytes(1, 1000);
                    p as usize
                }
            })
            .collect()
    })
    .join()
    .unwrap();
    let full = lhalloc::stats();
    assert!(full.resident >= before.resident + 32 * MIB, "{full:?}");
    thread::spawn(move || {
        for p in blocks {
            // SAFETY: each block is live and freed once.
            unsafe { c::free(p as *mut u8) };
        }
    })
    .join()
    .unwrap();
    let rounds = lhalloc::purge_rounds();
    // Without slow paths nothing happens...
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        lhalloc::purge_rounds(),
        rounds,
        "a round ran without any slow path"
    );
    assert!(lhalloc::stats().resident >= before.resident + 32 * MIB);
    // ...with them, the memory comes back.
    wait_for("deferred purge", Duration::from_secs(5), || {
        poke();
        lhalloc::stats().resident < before.resident + 4 * MIB
    });
    assert!(lhalloc::purge_rounds() > rounds);
    assert_eq!(lhalloc::purger_state(), lhalloc::PurgerState::NotStarted);
    lhalloc::validate().unwrap();

    // From here on, the background purger runs rounds while the process is idle.
    lhalloc::start_background_purger().expect("start the background purger");
    assert_eq!(
        lhalloc::start_background_purger(),
        Err(lhalloc::PurgerError::AlreadyRunning)
    );
    assert_eq!(lhalloc::purger_state(), lhalloc::PurgerState::Running);
    assert!(lhalloc::settings().contains("background(running)"));
    let before = lhalloc::stats();

    // One thread allocates 64 MiB of small blocks and exits; another frees them all.
    let blocks: Vec<usize> = thread::spawn(|| {
        (0..64 * 1024)
            .map(|i| {
                // SAFETY: plain allocation, then a write within its size.
                unsafe {
                    let p = c::malloc(1000 + i % 24);
                    assert!(!p.is_null());
                    p.write_bytes(1, 1000);
                    p as usize
                }
            })
            .collect()
    })
    .join()
    .unwrap();
    let big: Vec<usize> = (0..8)
        // SAFETY: plain allocation, then a write within its size.
        .map(|_| unsafe {
            let p = c::malloc(3 * MIB);
            p.write_bytes(2, 3 * MIB);
            p as usize
        })
        .collect();
    let full = lhalloc::stats();
    assert!(
        full.allocated >= before.allocated + 64 * 1000 * 1024 + 24 * MIB,
        "{full:?}"
    );
    assert!(
        full.resident >= full.active && full.mapped >= full.resident,
        "{full:?}"
    );

    thread::spawn(move || {
        for p in blocks.into_iter().chain(big) {
            // SAFETY: each block is live and freed once.
            unsafe { c::free(p as *mut u8) };
        }
    })
    .join()
    .unwrap();
    lhalloc::validate().unwrap();

    // Idle: the background purger alone must give the memory back.
    wait_for("resident to drop", Duration::from_secs(5), || {
        let s = lhalloc::stats();
        s.resident < before.resident + 8 * MIB
    });
    let after = lhalloc::stats();
    assert!(after.purged >= before.purged + 64 * MIB, "{after:?}");
    assert!(after.allocated <= before.allocated + MIB, "{after:?}");
    lhalloc::validate().unwrap();

    // Delay 0: purged on the freeing path (or by an explicit collect).
    lhalloc::set_purge_delay_ns(0);
    let ps: Vec<usize> = (0..4096)
        // SAFETY: plain allocation.
        .map(|_| unsafe { c::malloc(4000) as usize })
        .collect();
    for p in ps {
        // SAFETY: each block is live and freed once.
        unsafe { c::free(p as *mut u8) };
    }
    lhalloc::collect(true);
    let s = lhalloc::stats();
    assert!(s.resident < before.resident + 4 * MIB, "{s:?}");
    assert!(lhalloc::settings().contains("purge_delay_ns=0 "));
    lhalloc::validate().unwrap();

    // The owner stays alive but idle (a pool thread waiting for work); another thread frees
    // everything it allocated: the pages come back without the owner ever running again,
    // except at most its one active page per class.
    let base = lhalloc::stats();
    let (to_owner, owner_rx) = std::sync::mpsc::channel::<()>();
    let (blocks_tx, blocks_rx) = std::sync::mpsc::channel::<Vec<usize>>();
    let owner = thread::spawn(move || {
        let blocks: Vec<usize> = (0..32 * 1024)
            // SAFETY: plain allocation, then a write within its size.
            .map(|i| unsafe {
                let p = c::malloc(512 + (i % 8) * 64);
                p.write_bytes(3, 512);
                p as usize
            })
            .collect();
        blocks_tx.send(blocks).unwrap();
        owner_rx.recv().unwrap(); // idle until the end of the test
    });
    let blocks = blocks_rx.recv().unwrap();
    assert!(lhalloc::stats().resident >= base.resident + 16 * MIB);
    thread::spawn(move || {
        for p in blocks {
            // SAFETY: each block is live and freed once.
            unsafe { c::free(p as *mut u8) };
        }
    })
    .join()
    .unwrap();
    lhalloc::collect(true);
    let s = lhalloc::stats();
    assert!(s.resident < base.resident + 2 * MIB, "{s:?} vs {base:?}");
    lhalloc::validate().unwrap();
    to_owner.send(()).unwrap();
    owner.join().unwrap();

    // Ruby-heap-page shape: 64 KiB blocks aligned to 64 KiB; 7 of every 8 are freed, so no
    // page empties, yet the free blocks' memory must go back (trimmed while pooled).
    lhalloc::set_purge_delay_ns(50_000_000);
    let pages: Vec<usize> = (0..1024)
        // SAFETY: plain allocation, then a write within its size.
        .map(|_| unsafe {
            let p = c::aligned_alloc(64 << 10, 64 << 10);
            assert_eq!(p as usize % (64 << 10), 0);
            p.write_bytes(4, 64 << 10);
            p as usize
        })
        .collect();
    let rss_full = rss_bytes();
    let resident_full = lhalloc::stats().resident;
    let purged_full = lhalloc::stats().purged;
    let kept: Vec<usize> = pages.iter().copied().step_by(8).collect();
    let freed: Vec<usize> = pages
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 8 != 0)
        .map(|(_, &p)| p)
        .collect();
    thread::spawn(move || {
        for p in freed {
            // SAFETY: each block is live and freed once.
            unsafe { c::free(p as *mut u8) };
        }
    })
    .join()
    .unwrap();
    wait_for(
        "free 64 KiB blocks to be trimmed",
        Duration::from_secs(5),
        || lhalloc::stats().purged >= purged_full + 40 * MIB,
    );
    let rss_trimmed = rss_bytes();
    assert!(
        rss_trimmed + 32 * MIB < rss_full,
        "RSS {rss_full} -> {rss_trimmed}"
    );
    let resident_trimmed = lhalloc::stats().resident;
    assert!(
        resident_trimmed + 32 * MIB < resident_full,
        "stats {resident_full} -> {resident_trimmed}"
    );
    for p in kept {
        // SAFETY: the kept blocks are live and hold their pattern.
        unsafe {
            assert_eq!(*(p as *const u8).add(65535), 4);
            c::free(p as *mut u8);
        }
    }
    lhalloc::validate().unwrap();

    // Measured with mincore: after a forced collect nothing free is resident any more (every
    // dirty slot was purged, clean slots hold nothing), and what pages hold is what they carved.
    lhalloc::collect(true);
    let r = lhalloc::residency();
    assert!(r.segments > 0, "{r}");
    assert_eq!(r.dirty_counted, 0, "{r}");
    assert_eq!(r.dirty_resident, 0, "{r}");
    assert_eq!(r.clean_resident, 0, "{r}");
    assert!(r.pages_resident_carved <= r.pages_carved, "{r}");
    // Headers: what the counters count (descriptors) plus the purge maps trimming touched.
    assert!(r.headers <= r.segments * (64 << 10), "{r}");

    lhalloc::set_purge_delay_ms(lhalloc::DEFAULT_PURGE_DELAY_MS);
    lhalloc::validate().unwrap();
}
