//! lhalloc vs glibc vs jemalloc vs mimalloc, side by side in one run: malloc+free pairs per
//! size class, a batch of mixed sizes, realloc growth, and cross-thread frees.
//!
//! Run: `cargo bench -p lhalloc --bench alloc -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// One allocator under test, through its C-style entry points.
#[derive(Clone, Copy)]
struct Api {
    name: &'static str,
    /// The allocator's `malloc`.
    ///
    /// # Safety
    /// C's `malloc` contract.
    malloc: unsafe fn(usize) -> *mut u8,
    /// The allocator's `free`.
    ///
    /// # Safety
    /// `p` is null or a live block of this same allocator.
    free: unsafe fn(*mut u8),
    /// The allocator's `realloc`.
    ///
    /// # Safety
    /// `p` is null or a live block of this same allocator.
    realloc: unsafe fn(*mut u8, usize) -> *mut u8,
}

/// Forwards to this allocator's `malloc`.
///
/// # Safety
/// Always safe; C's `malloc` contract.
unsafe fn lh_malloc(n: usize) -> *mut u8 {
    // SAFETY: same contract as the C function it forwards to.
    unsafe { lhalloc::c::malloc(n) }
}
/// Forwards to this allocator's `free`.
///
/// # Safety
/// `p` is null or a live block of the same allocator, not used afterwards.
unsafe fn lh_free(p: *mut u8) {
    // SAFETY: same contract as the C function it forwards to.
    unsafe { lhalloc::c::free(p) }
}
/// Forwards to this allocator's `realloc`.
///
/// # Safety
/// `p` is null or a live block of the same allocator; on success it is replaced.
unsafe fn lh_realloc(p: *mut u8, n: usize) -> *mut u8 {
    // SAFETY: same contract as the C function it forwards to.
    unsafe { lhalloc::c::realloc(p, n) }
}
/// Forwards to this allocator's `malloc`.
///
/// # Safety
/// Always safe; C's `malloc` contract.
unsafe fn glibc_malloc(n: usize) -> *mut u8 {
    // SAFETY: same contract as the C function it forwards to.
    unsafe { libc::malloc(n).cast() }
}
/// Forwards to this allocator's `free`.
///
/// # Safety
/// `p` is null or a live block of the same allocator, not used afterwards.
unsafe fn glibc_free(p: *mut u8) {
    // SAFETY: same contract as the C function it forwards to.
    unsafe { libc::free(p.cast()) }
}
/// Forwards to this allocator's `realloc`.
///
/// # Safety
/// `p` is null or a live block of the same allocator; on success it is replaced.
unsafe fn glibc_realloc(p: *mut u8, n: usize) -> *mut u8 {
    // SAFETY: same contract as the C function it forwards to.
    unsafe { libc::realloc(p.cast(), n).cast() }
}
/// Forwards to this allocator's `malloc`.
///
/// # Safety
/// Always safe; C's `malloc` contract.
unsafe fn je_malloc(n: usize) -> *mut u8 {
    // SAFETY: same contract as the C function it forwards to.
    unsafe { tikv_jemalloc_sys::malloc(n).cast() }
}
/// Forwards to this allocator's `free`.
///
/// # Safety
/// `p` is null or a live block of the same allocator, not used afterwards.
unsafe fn je_free(p: *mut u8) {
    // SAFETY: same contract as the C function it forwards to.
    unsafe { tikv_jemalloc_sys::free(p.cast()) }
}
/// Forwards to this allocator's `realloc`.
///
/// # Safety
/// `p` is null or a live block of the same allocator; on success it is replaced.
unsafe fn je_realloc(p: *mut u8, n: usize) -> *mut u8 {
    // SAFETY: same contract as the C function it forwards to.
    unsafe { tikv_jemalloc_sys::realloc(p.cast(), n).cast() }
}
/// Forwards to this allocator's `malloc`.
///
/// # Safety
/// Always safe; C's `malloc` contract.
unsafe fn mi_malloc(n: usize) -> *mut u8 {
    // SAFETY: same contract as the C function it forwards to.
    unsafe { libmimalloc_sys::mi_malloc(n).cast() }
}
/// Forwards to this allocator's `free`.
///
/// # Safety
/// `p` is null or a live block of the same allocator, not used afterwards.
unsafe fn mi_free(p: *mut u8) {
    // SAFETY: same contract as the C function it forwards to.
    unsafe { libmimalloc_sys::mi_free(p.cast()) }
}
/// Forwards to this allocator's `realloc`.
///
/// # Safety
/// `p` is null or a live block of the same allocator; on success it is replaced.
unsafe fn mi_realloc(p: *mut u8, n: usize) -> *mut u8 {
    // SAFETY: same contract as the C function it forwards to.
    unsafe { libmimalloc_sys::mi_realloc(p.cast(), n).cast() }
}

const APIS: [Api; 4] = [
    Api {
        name: "lhalloc",
        malloc: lh_malloc,
        free: lh_free,
        realloc: lh_realloc,
    },
    Api {
        name: "glibc",
        malloc: glibc_malloc,
        free: glibc_free,
        realloc: glibc_realloc,
    },
    Api {
        name: "jemalloc",
        malloc: je_malloc,
        free: je_free,
        realloc: je_realloc,
    },
    Api {
        name: "mimalloc",
        malloc: mi_malloc,
        free: mi_free,
        realloc: mi_realloc,
    },
];

fn malloc_free_pairs(c: &mut Criterion) {
    let mut g = c.benchmark_group("malloc_free_pair");
    for size in [16usize, 64, 256, 1024, 4096, 32 << 10] {
        for api in APIS {
            g.bench_with_input(BenchmarkId::new(api.name, size), &size, |b, &size| {
                b.iter(|| {
                    // SAFETY: a fresh block, freed at once.
                    unsafe {
                        let p = (api.malloc)(black_box(size));
                        *black_box(p) = 1;
                        (api.free)(p);
                    }
                })
            });
        }
    }
    g.finish();
}

/// 1000 blocks of mixed small sizes allocated, then freed in allocation order.
fn batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch_1000_mixed");
    g.throughput(Throughput::Elements(1000));
    for api in APIS {
        g.bench_function(api.name, |b| {
            let mut ptrs = vec![core::ptr::null_mut::<u8>(); 1000];
            b.iter(|| {
                for (i, p) in ptrs.iter_mut().enumerate() {
                    // SAFETY: plain allocation.
                    *p = unsafe { (api.malloc)(16 + (i * 37) % 1000) };
                }
                for p in ptrs.iter() {
                    // SAFETY: each block is live and freed once.
                    unsafe { (api.free)(*p) };
                }
            })
        });
    }
    g.finish();
}

/// A string grown by 1.5x from 16 bytes to ~1 MiB.
fn realloc_growth(c: &mut Criterion) {
    let mut g = c.benchmark_group("realloc_growth_16_to_1MiB");
    for api in APIS {
        g.bench_function(api.name, |b| {
            b.iter(|| {
                // SAFETY: the block is live throughout and freed at the end.
                unsafe {
                    let mut n = 16usize;
                    let mut p = (api.malloc)(n);
                    while n < 1 << 20 {
                        n = n * 3 / 2;
                        p = (api.realloc)(p, n);
                        *p.add(n - 1) = 1;
                    }
                    (api.free)(p);
                }
            })
        });
    }
    g.finish();
}

/// A producer allocates batches of 1000 blocks; a consumer thread frees them.
fn cross_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("cross_thread_free_1000");
    g.throughput(Throughput::Elements(1000));
    for api in APIS {
        g.bench_function(api.name, |b| {
            b.iter_custom(|iters| {
                let (tx, rx) = mpsc::sync_channel::<Vec<usize>>(4);
                let consumer = thread::spawn(move || {
                    for batch in rx {
                        for p in batch {
                            // SAFETY: each block is live and freed once.
                            unsafe { (api.free)(p as *mut u8) };
                        }
                    }
                });
                let t = Instant::now();
                for _ in 0..iters {
                    let batch: Vec<usize> = (0..1000)
                        // SAFETY: plain allocation.
                        .map(|i| unsafe { (api.malloc)(16 + (i * 24) % 512) } as usize)
                        .collect();
                    tx.send(batch).unwrap();
                }
                drop(tx);
                consumer.join().unwrap();
                t.elapsed()
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = malloc_free_pairs, batch, realloc_growth, cross_thread
}
criterion_main!(benches);
