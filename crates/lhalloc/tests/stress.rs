//! Multi-thread stress: cross-thread frees (producer/consumer), Ruby-GC-like sweeps of other
//! threads' blocks, thread churn, fork with allocation on both sides. Sized for 2 cores.

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;

use lhalloc::c;

/// A block address that can cross threads.
#[derive(Clone, Copy)]
struct Blk(usize, usize, u8);

fn alloc_tagged(size: usize, tag: u8) -> Blk {
    // SAFETY: plain allocation, then a write within its size.
    unsafe {
        let p = c::malloc(size);
        assert!(!p.is_null());
        core::ptr::write_bytes(p, tag, size);
        Blk(p as usize, size, tag)
    }
}

fn check_free(b: Blk) {
    let p = b.0 as *mut u8;
    // SAFETY: `p` is a live block of `b.1` bytes handed over to us.
    unsafe {
        if b.1 > 0 {
            assert_eq!(*p, b.2, "first byte of {:p}", p);
            assert_eq!(*p.add(b.1 - 1), b.2, "last byte of {:p}", p);
        }
        c::free(p);
    }
}

fn size_for(i: usize) -> usize {
    // Mostly small with an occasional medium/large block.
    match i % 64 {
        0 => 40_000 + i % 1000,
        1 => 200_000,
        _ => 16 + (i * 7919) % 700,
    }
}

#[test]
fn producer_consumer_cross_thread_frees() {
    let (tx, rx) = mpsc::sync_channel::<Vec<Blk>>(16);
    let consumer = thread::spawn(move || {
        let mut n = 0usize;
        for batch in rx {
            for b in batch {
                check_free(b);
                n += 1;
            }
        }
        n
    });
    let producers: Vec<_> = (0..2)
        .map(|t| {
            let tx = tx.clone();
            thread::spawn(move || {
                for round in 0..200 {
                    let batch: Vec<Blk> = (0..250)
                        .map(|i| alloc_tagged(size_for(i + round), (t * 50 + i) as u8))
                        .collect();
                    tx.send(batch).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(consumer.join().unwrap(), 2 * 200 * 250);
    lhalloc::validate().unwrap();
}

#[test]
fn gc_sweep_frees_other_threads_blocks() {
    // 4 mutator threads allocate; one "GC" thread frees thousands of their blocks at once,
    // while the mutators keep allocating (as Ruby's sweep does).
    for _cycle in 0..6 {
        let barrier = Arc::new(Barrier::new(5));
        let (tx, rx) = mpsc::channel::<Vec<Blk>>();
        let mutators: Vec<_> = (0..4)
            .map(|t| {
                let tx = tx.clone();
                let barrier = barrier.clone();
                thread::spawn(move || {
                    let objs: Vec<Blk> = (0..5000)
                        .map(|i| alloc_tagged(16 + (i % 24) * 8, t as u8))
                        .collect();
                    tx.send(objs).unwrap();
                    barrier.wait();
                    // Keep allocating while the sweep runs.
                    let mut keep = Vec::new();
                    for i in 0..3000 {
                        keep.push(alloc_tagged(40 + i % 200, 9));
                    }
                    for b in keep {
                        check_free(b);
                    }
                })
            })
            .collect();
        drop(tx);
        let all: Vec<Blk> = rx.iter().take(4).flatten().collect();
        barrier.wait();
        let gc = thread::spawn(move || {
            for b in all {
                check_free(b);
            }
        });
        gc.join().unwrap();
        for m in mutators {
            m.join().unwrap();
        }
    }
    lhalloc::validate().unwrap();
}

#[test]
fn threads_created_and_exiting_in_a_loop() {
    // Blocks outlive their threads and are freed by later threads.
    let mut carry: Vec<Blk> = Vec::new();
    for round in 0..60 {
        let inherited = std::mem::take(&mut carry);
        let h = thread::spawn(move || {
            for b in inherited {
                check_free(b);
            }
            let mut out = Vec::new();
            for i in 0..400 {
                let b = alloc_tagged(size_for(i * 3 + round), round as u8);
                if i % 3 == 0 {
                    check_free(b);
                } else {
                    out.push(b);
                }
            }
            out
        });
        carry = h.join().unwrap();
    }
    for b in carry {
        check_free(b);
    }
    lhalloc::validate().unwrap();
}

#[test]
fn fork_in_a_loop_with_allocation_on_both_sides() {
    // A background thread allocates and frees all along, so fork lands in the middle of it.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let bg = thread::spawn(move || {
        let mut i = 0usize;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            let b = alloc_tagged(size_for(i), 3);
            check_free(b);
            i += 1;
        }
    });
    let mut held: Vec<Blk> = (0..200).map(|i| alloc_tagged(size_for(i), 7)).collect();
    for round in 0..40 {
        // SAFETY: the child only calls the allocator (async-signal-unsafe, but we registered
        // fork handlers for it) and `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let mut ok = true;
            let mut mine = Vec::new();
            for i in 0..500 {
                mine.push(alloc_tagged(size_for(i + round), 5));
            }
            for b in held.drain(..).chain(mine) {
                // SAFETY: blocks copied into the child are live here too.
                unsafe {
                    let p = b.0 as *const u8;
                    ok &= *p == b.2;
                }
                let p = b.0 as *mut u8;
                // SAFETY: as above.
                unsafe { c::free(p) };
            }
            ok &= lhalloc::validate().is_ok();
            // SAFETY: leave the child at once, without running the parent's destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        for i in 0..100 {
            let b = alloc_tagged(size_for(i * 5 + round), 8);
            check_free(b);
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child failed: {status}"
        );
        let b = held.pop().unwrap();
        check_free(b);
        held.push(alloc_tagged(size_for(round), 7));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    bg.join().unwrap();
    for b in held {
        check_free(b);
    }
    lhalloc::validate().unwrap();
}

#[test]
fn many_threads_share_one_class_pool() {
    // Every thread allocates, hands half to its neighbour, frees the rest: pages move between
    // owners, pools and the FULL state all the time.
    let n = 6;
    let barrier = Arc::new(Barrier::new(n));
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| mpsc::channel::<Vec<Blk>>()).unzip();
    let mut rxs: Vec<Option<mpsc::Receiver<Vec<Blk>>>> = rxs.into_iter().map(Some).collect();
    let handles: Vec<_> = (0..n)
        .map(|t| {
            let tx = txs[(t + 1) % n].clone();
            let rx = rxs[t].take().unwrap();
            let barrier = barrier.clone();
            thread::spawn(move || {
                for round in 0..30 {
                    let mut give = Vec::new();
                    for i in 0..500 {
                        let b = alloc_tagged(48, (t + round + i) as u8);
                        if i % 2 == 0 {
                            give.push(b);
                        } else {
                            check_free(b);
                        }
                    }
                    tx.send(give).unwrap();
                    for b in rx.recv().unwrap() {
                        check_free(b);
                    }
                }
                barrier.wait();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    lhalloc::validate().unwrap();
}

#[test]
fn validate_while_threads_run() {
    // The validator must hold while others allocate, free remotely, retire and pool pages.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, rx) = mpsc::sync_channel::<Vec<Blk>>(8);
    let rx = Arc::new(std::sync::Mutex::new(rx));
    let workers: Vec<_> = (0..3)
        .map(|t| {
            let stop = stop.clone();
            let tx = tx.clone();
            let rx = rx.clone();
            thread::spawn(move || {
                let mut i = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let batch: Vec<Blk> = (0..300)
                        .map(|k| alloc_tagged(size_for(i + k), t as u8))
                        .collect();
                    if tx.try_send(batch.clone()).is_err() {
                        batch.into_iter().for_each(check_free);
                    }
                    let got = rx.lock().unwrap().try_recv();
                    if let Ok(b) = got {
                        b.into_iter().for_each(check_free);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    drop(tx);
    for _ in 0..150 {
        if let Err(e) = lhalloc::validate() {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            panic!("{e}");
        }
        let _ = lhalloc::stats();
        thread::sleep(std::time::Duration::from_millis(2));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    while let Ok(b) = rx.lock().unwrap().try_recv() {
        b.into_iter().for_each(check_free);
    }
    lhalloc::validate().unwrap();
}

/// Long stress under the validator, not run by default: threads that start and exit all the
/// time, cross-thread frees through a shared ring, realloc storms (through solo pages and large
/// mappings), a short purge delay so that purge rounds, trims and idle releases run
/// throughout, and `validate()` every 200 ms. Duration: `LHALLOC_STRESS_SECS` (default 60).
/// Run: `LHALLOC_STRESS_SECS=600 cargo test -p lhalloc --release --test stress -- --ignored`
/// (also run by `crates/lhalloc-preload/tests/stress_long.sh`).
#[test]
#[ignore]
fn long_stress_under_the_validator() {
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    use std::time::{Duration, Instant};
    let secs: u64 = std::env::var("LHALLOC_STRESS_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    lhalloc::set_purge_delay_ns(5_000_000);
    const RING: usize = 2048;
    let ring: Arc<Vec<AtomicUsize>> = Arc::new((0..RING).map(|_| AtomicUsize::new(0)).collect());
    // Ring entries: block address; its size and tag live in the block's first 16 bytes.
    fn make(size: usize, tag: u8) -> usize {
        let size = size.max(17);
        // SAFETY: plain allocation; header and tail written inside it.
        unsafe {
            let p = c::malloc(size);
            assert!(!p.is_null());
            (p as *mut usize).write(size);
            *p.add(8) = tag;
            *p.add(size - 1) = tag;
            p as usize
        }
    }
    fn check(p: usize) {
        if p == 0 {
            return;
        }
        // SAFETY: `p` is a live block made by `make` (or regrown keeping the layout).
        unsafe {
            let q = p as *mut u8;
            let size = (q as *const usize).read();
            assert_eq!(
                *q.add(size - 1),
                *q.add(8),
                "tail tag of {q:p} (size {size})"
            );
            c::free(q);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let spawners: Vec<_> = (0..3u64)
        .map(|t| {
            let (stop, ring, ops) = (stop.clone(), ring.clone(), ops.clone());
            thread::spawn(move || {
                let mut gen = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    gen += 1;
                    let (stop, ring, ops) = (stop.clone(), ring.clone(), ops.clone());
                    thread::spawn(move || {
                        let mut x = (t << 32 | gen).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                        let mut next = || {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            x
                        };
                        for _ in 0..(2000 + next() % 8000) {
                            if stop.load(Ordering::Relaxed) {
                                break;
                            }
                            let r = next();
                            if r % 101 == 0 {
                                // A realloc storm: 24 B to up to 600 KiB and back down.
                                let tag = r as u8;
                                let mut n = 24usize;
                                let mut p = make(n, tag) as *mut u8;
                                let lim = 1000 + (next() % 600_000) as usize;
                                while n < lim {
                                    let m = n + n / 2;
                                    // SAFETY: `p` is live; it is replaced by the result.
                                    p = unsafe { c::realloc(p, m) };
                                    assert!(!p.is_null());
                                    // SAFETY: `p` has at least `m` bytes; the old tail is kept.
                                    unsafe {
                                        assert_eq!(*p.add(n - 1), tag);
                                        p.add(n).write_bytes(tag, m - n);
                                        (p as *mut usize).write(m);
                                    }
                                    n = m;
                                }
                                // SAFETY: as above, shrinking.
                                unsafe {
                                    p = c::realloc(p, 40);
                                    (p as *mut usize).write(40);
                                    *p.add(39) = tag;
                                }
                                check(p as usize);
                            } else {
                                let size = match r % 50 {
                                    0 => 150_000 + (next() % 400_000) as usize,
                                    1..=4 => 2000 + (next() % 60_000) as usize,
                                    _ => 17 + (next() % 1500) as usize,
                                };
                                let p = make(size, (r >> 8) as u8);
                                let old = ring[(r >> 20) as usize % RING].swap(p, Ordering::AcqRel);
                                check(old);
                            }
                            ops.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                    .join()
                    .unwrap();
                }
            })
        })
        .collect();
    let start = Instant::now();
    let mut validations = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        thread::sleep(Duration::from_millis(200));
        if let Err(e) = lhalloc::validate() {
            stop.store(true, Ordering::Relaxed);
            panic!("{e}");
        }
        let s = lhalloc::stats();
        assert!(s.mapped >= s.resident.min(s.mapped));
        validations += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for s in spawners {
        s.join().unwrap();
    }
    for e in ring.iter() {
        check(e.swap(0, Ordering::AcqRel));
    }
    lhalloc::collect(true);
    lhalloc::validate().unwrap();
    eprintln!(
        "long stress: {} s, {} operations, {validations} validations, {:?}",
        secs,
        ops.load(Ordering::Relaxed),
        lhalloc::stats()
    );
    lhalloc::set_purge_delay_ns(lhalloc::DEFAULT_PURGE_DELAY_NS);
}
