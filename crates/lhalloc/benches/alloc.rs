//! lhalloc vs glibc vs jemalloc vs mimalloc, side by side in one run, every allocator called
//! the same way: through a table of `extern "C"` function pointers that is passed through
//! `black_box`, so no call can be inlined or devirtualised (jemalloc and mimalloc are static
//! C libraries, glibc is reached through the PLT, ours through a non-inlined `extern "C"`
//! shim over `lhalloc::c`).
//!
//! Groups: malloc+free pairs per size; a batch of 1000 mixed sizes; realloc growth 16 B ->
//! 1 MiB; cross-thread frees (a producer allocates, a consumer frees); `larson`, a
//! server-like run where every thread replaces random blocks of its own array and the arrays
//! are passed round between the threads every 1000 operations, so that most frees are of
//! another thread's blocks; `mt_loop`, every thread allocating and freeing its own blocks.
//!
//! Run: `cargo bench -p lhalloc --bench alloc -- --warm-up-time 1 --measurement-time 2`

use std::ffi::c_void;
use std::hint::black_box;
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

type MallocFn = unsafe extern "C" fn(usize) -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type ReallocFn = unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void;

/// One allocator under test, through its C entry points.
#[derive(Clone, Copy)]
struct Api {
    name: &'static str,
    malloc: MallocFn,
    free: FreeFn,
    realloc: ReallocFn,
}

/// `lhalloc::c::malloc` as a C function, never inlined into the caller.
///
/// # Safety
/// C's `malloc` contract (always safe).
#[inline(never)]
unsafe extern "C" fn lh_malloc(n: usize) -> *mut c_void {
    // SAFETY: same contract.
    unsafe { lhalloc::c::malloc(n).cast() }
}
/// `lhalloc::c::free` as a C function.
///
/// # Safety
/// `p` is null or a live block of lhalloc, not used afterwards.
#[inline(never)]
unsafe extern "C" fn lh_free(p: *mut c_void) {
    // SAFETY: same contract.
    unsafe { lhalloc::c::free(p.cast()) }
}
/// `lhalloc::c::realloc` as a C function.
///
/// # Safety
/// `p` is null or a live block of lhalloc; on success it is replaced.
#[inline(never)]
unsafe extern "C" fn lh_realloc(p: *mut c_void, n: usize) -> *mut c_void {
    // SAFETY: same contract.
    unsafe { lhalloc::c::realloc(p.cast(), n).cast() }
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
        malloc: libc::malloc,
        free: libc::free,
        realloc: libc::realloc,
    },
    Api {
        name: "jemalloc",
        malloc: tikv_jemalloc_sys::malloc,
        free: tikv_jemalloc_sys::free,
        realloc: tikv_jemalloc_sys::realloc,
    },
    Api {
        name: "mimalloc",
        malloc: libmimalloc_sys::mi_malloc,
        free: libmimalloc_sys::mi_free,
        realloc: libmimalloc_sys::mi_realloc,
    },
];

fn malloc_free_pairs(c: &mut Criterion) {
    let mut g = c.benchmark_group("malloc_free_pair");
    for size in [16usize, 64, 256, 1024, 4096, 32 << 10] {
        for api in APIS {
            g.bench_with_input(BenchmarkId::new(api.name, size), &size, |b, &size| {
                b.iter(|| {
                    let api = black_box(api);
                    // SAFETY: a fresh block, written once, freed at once.
                    unsafe {
                        let p = (api.malloc)(black_box(size)).cast::<u8>();
                        *black_box(p) = 1;
                        (api.free)(p.cast());
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
            let mut ptrs = vec![core::ptr::null_mut::<c_void>(); 1000];
            b.iter(|| {
                let api = black_box(api);
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

/// A string grown by 1.5x from 16 bytes to ~1 MiB, its last byte written at every step.
fn realloc_growth(c: &mut Criterion) {
    let mut g = c.benchmark_group("realloc_growth_16_to_1MiB");
    for api in APIS {
        g.bench_function(api.name, |b| {
            b.iter(|| {
                let api = black_box(api);
                // SAFETY: the block is live throughout and freed at the end.
                unsafe {
                    let mut n = 16usize;
                    let mut p = (api.malloc)(n).cast::<u8>();
                    while n < 1 << 20 {
                        n = n * 3 / 2;
                        p = (api.realloc)(p.cast(), n).cast();
                        *p.add(n - 1) = 1;
                    }
                    (api.free)(p.cast());
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
                let api = black_box(api);
                let (tx, rx) = mpsc::sync_channel::<Vec<usize>>(4);
                let consumer = thread::spawn(move || {
                    for batch in rx {
                        for p in batch {
                            // SAFETY: each block is live and freed once.
                            unsafe { (api.free)(p as *mut c_void) };
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

/// Threads of the multi-threaded benchmarks (this machine has 2 cores).
const THREADS: usize = 2;
/// Blocks in each larson array.
const LARSON_SLOTS: usize = 1000;
/// Operations per larson round (between two hand-overs) and per benchmark iteration.
const LARSON_OPS: usize = 1000;

struct Xorshift(u64);
impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Larson-style server: `THREADS` threads, each with an array of `LARSON_SLOTS` blocks of
/// 16..1024 bytes; an operation frees a random slot's block and allocates a new one. After
/// every `LARSON_OPS` operations the threads pass their arrays round (thread `i` takes thread
/// `i - 1`'s), so the blocks each thread frees were mostly allocated by another thread.
/// Throughput: operations per second, all threads together.
fn larson(c: &mut Criterion) {
    let mut g = c.benchmark_group("larson_2threads");
    g.throughput(Throughput::Elements((THREADS * LARSON_OPS) as u64));
    for api in APIS {
        g.bench_function(api.name, |b| {
            b.iter_custom(|iters| {
                let api = black_box(api);
                let arrays: Arc<Vec<Mutex<Vec<usize>>>> = Arc::new(
                    (0..THREADS)
                        .map(|t| {
                            let mut r = Xorshift(0x9e37_79b9 + t as u64);
                            Mutex::new(
                                (0..LARSON_SLOTS)
                                    // SAFETY: plain allocation.
                                    .map(|_| unsafe {
                                        (api.malloc)(16 + (r.next() % 1009) as usize) as usize
                                    })
                                    .collect(),
                            )
                        })
                        .collect(),
                );
                let barrier = Arc::new(Barrier::new(THREADS + 1));
                let handles: Vec<_> = (0..THREADS)
                    .map(|t| {
                        let arrays = arrays.clone();
                        let barrier = barrier.clone();
                        thread::spawn(move || {
                            let mut r = Xorshift(0x1234_5678 + t as u64);
                            barrier.wait();
                            for round in 0..iters as usize {
                                let mut a = arrays[(t + round) % THREADS].lock().unwrap();
                                for _ in 0..LARSON_OPS {
                                    let x = r.next();
                                    let i = (x % LARSON_SLOTS as u64) as usize;
                                    // SAFETY: the slot's block is live; it is replaced.
                                    unsafe {
                                        (api.free)(a[i] as *mut c_void);
                                        let p = (api.malloc)(16 + ((x >> 20) % 1009) as usize);
                                        *p.cast::<u8>() = x as u8;
                                        a[i] = p as usize;
                                    }
                                }
                                drop(a);
                                barrier.wait();
                            }
                        })
                    })
                    .collect();
                barrier.wait();
                let t0 = Instant::now();
                for _ in 0..iters {
                    barrier.wait();
                }
                let el = t0.elapsed();
                for h in handles {
                    h.join().unwrap();
                }
                for a in arrays.iter() {
                    for &p in a.lock().unwrap().iter() {
                        // SAFETY: each remaining block is live and freed once.
                        unsafe { (api.free)(p as *mut c_void) };
                    }
                }
                el
            })
        });
    }
    g.finish();
}

/// `THREADS` threads, each allocating 64 blocks of 16..1024 bytes then freeing them, over
/// and over (no sharing). Throughput: malloc+free pairs per second, all threads together.
fn mt_loop(c: &mut Criterion) {
    let mut g = c.benchmark_group("mt_malloc_free_loop_2threads");
    g.throughput(Throughput::Elements((THREADS * 64 * 16) as u64));
    for api in APIS {
        g.bench_function(api.name, |b| {
            b.iter_custom(|iters| {
                let api = black_box(api);
                let barrier = Arc::new(Barrier::new(THREADS + 1));
                let handles: Vec<_> = (0..THREADS)
                    .map(|t| {
                        let barrier = barrier.clone();
                        thread::spawn(move || {
                            let mut r = Xorshift(0xabcd + t as u64);
                            let mut v = [core::ptr::null_mut::<c_void>(); 64];
                            barrier.wait();
                            for _ in 0..iters * 16 {
                                for p in v.iter_mut() {
                                    // SAFETY: plain allocation, written once.
                                    unsafe {
                                        *p = (api.malloc)(16 + (r.next() % 1009) as usize);
                                        *p.cast::<u8>() = 1;
                                    }
                                }
                                for p in v.iter() {
                                    // SAFETY: each block is live and freed once.
                                    unsafe { (api.free)(*p) };
                                }
                            }
                            barrier.wait();
                        })
                    })
                    .collect();
                barrier.wait();
                let t0 = Instant::now();
                barrier.wait();
                let el = t0.elapsed();
                for h in handles {
                    h.join().unwrap();
                }
                el
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
    targets = malloc_free_pairs, batch, realloc_growth, cross_thread, larson, mt_loop
}
criterion_main!(benches);
