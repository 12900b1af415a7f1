//! The harness's own cost: events generated per second, and replay of a recorded stretch of
//! trace into a trivial bump allocator (harness cost alone) versus into mimalloc (what a real
//! measurement costs). Replays run with no idle sleeps (speed 1e9).
//!
//! `cargo bench -p runner --bench harness`

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use runner::block_table::BlockTable;
use runner::os::Mapping;
use runner::replay::{replay_stream, Shared};
use runner::under_test::{AllocatorUnderTest, Counters, Mimalloc};
use workload::trace::{TraceWriter, HEADER_LEN};
use workload::{Profile, Workload};

const HOURS: f64 = 0.004;
const SEED: u64 = 11;

fn profile() -> Profile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workloads/rails-api.toml");
    Profile::load(&path).expect("rails-api profile")
}

/// Hands out memory from one big mapping and never reuses it: the cheapest possible
/// allocator, so a replay into it measures the harness (decode, dispatch, touch) alone.
struct Bump {
    map: Mapping,
    next: AtomicUsize,
}

impl Bump {
    fn new(len: usize) -> Bump {
        Bump {
            map: Mapping::new(len).expect("mapping for the bump allocator"),
            next: AtomicUsize::new(0),
        }
    }
    fn reset(&self) {
        self.next.store(0, Ordering::Relaxed);
    }
}

impl AllocatorUnderTest for Bump {
    unsafe fn malloc(&self, size: usize) -> *mut u8 {
        let size = (size + 63) & !63;
        let at = self.next.fetch_add(size, Ordering::Relaxed);
        if at + size > self.map.len() {
            return std::ptr::null_mut();
        }
        // SAFETY: at + size <= len, so the result lies inside the mapping.
        unsafe { self.map.as_ptr().add(at) }
    }
    unsafe fn calloc(&self, size: usize) -> *mut u8 {
        // SAFETY: forwarded contract; the mapping is zero-filled only once, but the replay
        // overwrites every byte anyway.
        unsafe { self.malloc(size) }
    }
    unsafe fn aligned(&self, size: usize, align: usize) -> *mut u8 {
        // SAFETY: forwarded contract; over-allocating by `align` leaves room to align.
        let p = unsafe { self.malloc(size + align) };
        if p.is_null() {
            return p;
        }
        // SAFETY: the offset is < align, inside the block just taken.
        unsafe { p.add(p.align_offset(align)) }
    }
    unsafe fn realloc(&self, p: *mut u8, old: usize, new: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        let q = unsafe { self.malloc(new) };
        if !q.is_null() {
            // SAFETY: both blocks hold at least min(old, new) bytes and do not overlap.
            unsafe { std::ptr::copy_nonoverlapping(p, q, old.min(new)) };
        }
        q
    }
    unsafe fn free(&self, _p: *mut u8, _size: usize) {}
    fn version(&self) -> String {
        "bump".into()
    }
    fn counters(&self) -> Counters {
        Counters::default()
    }
}

struct Recorded {
    bytes: Vec<u8>,
    threads: u32,
    events: u64,
    slots: u32,
}

fn recorded_trace() -> Recorded {
    let mut w = Workload::new(profile(), SEED, HOURS);
    let header = w.header();
    let mut tw = TraceWriter::new(Vec::new(), header).expect("in-memory trace");
    let mut events = 0u64;
    for e in w.by_ref() {
        tw.write(&e).expect("in-memory trace");
        events += 1;
    }
    Recorded {
        bytes: tw.finish().expect("in-memory trace"),
        threads: header.threads,
        events,
        slots: w.slots_used() as u32,
    }
}

/// Replays the trace, then frees what it left live so that iterations do not pile up.
fn replay<A: AllocatorUnderTest>(a: &A, t: &Recorded) {
    let shared = Shared::new(t.threads as usize + 1, 1e9, true).expect("block table");
    let stop = AtomicBool::new(false);
    let (_, r) = replay_stream(a, &shared, &t.bytes[HEADER_LEN..], || {}, &stop);
    r.expect("replay");
    for slot in 0..t.slots {
        let p = BlockTable::addr(shared.table.entry(slot).load(Ordering::Acquire));
        if !p.is_null() {
            // SAFETY: a non-null entry after the replay is a live block of `a`, freed once.
            unsafe { a.free(p, 0) };
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("generate");
    let n = 1_000_000u64;
    g.throughput(Throughput::Elements(n));
    g.bench_function("rails-api events", |b| {
        b.iter_batched(
            || Workload::new(profile(), SEED, 1.0),
            |w| w.take(n as usize).count(),
            BatchSize::LargeInput,
        )
    });
    g.finish();

    let t = recorded_trace();
    let mut g = c.benchmark_group("replay");
    g.throughput(Throughput::Elements(t.events));
    g.sample_size(10);
    let bump = Bump::new(8 << 30);
    g.bench_function("bump (harness alone)", |b| {
        b.iter(|| {
            bump.reset();
            replay(&bump, &t)
        })
    });
    g.bench_function("mimalloc", |b| b.iter(|| replay(&Mimalloc, &t)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
