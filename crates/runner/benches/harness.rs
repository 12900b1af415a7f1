//! The harness's own cost: events generated per second, and replay of a stretch of rails-api
//! into a trivial allocator (the harness alone) versus into mimalloc (what a real measurement
//! costs). Replays run at speed max (no idle sleeps).
//!
//! `cargo bench -p runner --bench harness`; pin it to one core to measure "per core":
//! `taskset -c 0 cargo bench -p runner --bench harness`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use runner::block_table::BlockTable;
use runner::bump::Bump;
use runner::replay::{replay, Shared, Speed};
use runner::source::EventSource;
use runner::under_test::{AllocatorUnderTest, Mimalloc};
use workload::trace::TraceWriter;
use workload::{Event, Profile, Workload};

/// Simulated hours of serving replayed (36 s, after the 10 s boot).
const HOURS: f64 = 0.01;
const SEED: u64 = 11;
/// The bump allocator's region: written once before the benchmark, then reused in a circle, so
/// that a replay into it pays no page faults (those are the allocator's cost, not the harness's).
const BUMP_BYTES: usize = 256 << 20;

fn profile() -> Profile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workloads/rails-api.toml");
    Profile::load(&path).expect("rails-api profile")
}

/// The events of boot and [`HOURS`] of serving of rails-api, decoded in memory.
fn events() -> (Vec<Event>, u32) {
    let w = Workload::new(profile(), SEED, HOURS);
    let threads = w.threads();
    (w.collect(), threads)
}

/// Replays `events`, then frees what they left live so that iterations do not pile up.
fn replay_events<A: AllocatorUnderTest>(a: &A, events: Vec<Event>, threads: u32) {
    let shared = Shared::new(threads, Speed::Max, true).expect("block table");
    let out = replay(
        a,
        &shared,
        EventSource::memory(events, threads),
        || {},
        &AtomicBool::new(false),
    );
    assert!(out.stream_error.is_none() && out.spawn_error.is_none());
    for slot in 0..shared.slots_used() {
        let p = BlockTable::addr(shared.table.entry(slot as u32).load(Ordering::Acquire));
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
    g.bench_function("rails-api events, encoded as a v2 trace", |b| {
        b.iter_batched(
            || Workload::new(profile(), SEED, 1.0),
            |mut w| {
                let mut tw = TraceWriter::new(std::io::sink(), &w.meta()).expect("sink");
                for e in w.by_ref().take(n as usize) {
                    tw.write(&e).expect("sink");
                }
                tw.finish().expect("sink");
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();

    let (evs, threads) = events();
    let mut g = c.benchmark_group("replay");
    g.throughput(Throughput::Elements(evs.len() as u64));
    g.sample_size(10);
    let bump = Bump::new(BUMP_BYTES).expect("mapping for the bump allocator");
    g.bench_function("bump (harness alone)", |b| {
        b.iter_batched(
            || evs.clone(),
            |e| replay_events(&bump, e, threads),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("mimalloc", |b| {
        b.iter_batched(
            || evs.clone(),
            |e| replay_events(&Mimalloc, e, threads),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("bump, generating in the dispatcher", |b| {
        b.iter(|| {
            let w = Workload::new(profile(), SEED, HOURS);
            let shared = Shared::new(threads, Speed::Max, true).expect("block table");
            let out = replay(
                &bump,
                &shared,
                EventSource::synthetic(w),
                || {},
                &AtomicBool::new(false),
            );
            assert!(out.stream_error.is_none());
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    // No plots: criterion's chart drawing needs system fonts a bare machine lacks.
    config = Criterion::default().without_plots();
    targets = bench
}
criterion_main!(benches);
