//! The replay engine in-process: block-table ordering rules, multi-threaded replays whose final
//! live bytes must equal the generator's exactly, trace files (whole, cut, malformed) and
//! threads that end.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use runner::block_table::BlockTable;
use runner::replay::{replay, Shared, Speed};
use runner::source::EventSource;
use runner::under_test::Libc;
use workload::trace::TraceWriter;
use workload::{Event, Profile, Workload};

#[test]
fn an_allocation_waits_for_exactly_its_predecessor() {
    let p = 0x7f00_0000_1000usize as *mut u8;
    let null = std::ptr::null_mut();
    // A fresh slot takes generation 0 only.
    assert!(BlockTable::ready_for(0, 0));
    assert!(!BlockTable::ready_for(0, 1));
    // Generation 0 live: nobody may allocate, generation 0 is live, 1 is not.
    let live0 = BlockTable::pack(0, p);
    assert!(!BlockTable::ready_for(live0, 1));
    assert!(BlockTable::is_live(live0, 0) && !BlockTable::is_live(live0, 1));
    // Generation 0 freed: generation 1 may come, generation 0 (or 2) may not.
    let freed0 = BlockTable::pack(0, null);
    assert!(BlockTable::ready_for(freed0, 1));
    assert!(!BlockTable::ready_for(freed0, 0) && !BlockTable::ready_for(freed0, 2));
    assert!(!BlockTable::is_live(freed0, 0));
    // Generations wrap: after 65535 is freed, 0 comes next.
    let freed_last = BlockTable::pack(u16::MAX, null);
    assert!(BlockTable::ready_for(freed_last, 0));
    assert_eq!(BlockTable::addr(BlockTable::pack(7, p)), p);
}

fn profile() -> Profile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workloads/rails-api.toml");
    Profile::load(&path).unwrap()
}

/// A trace of `hours` of rails-api written to a file (version 2), and the generator that made it.
fn trace_file(dir: &Path, seed: u64, hours: f64) -> (std::path::PathBuf, Workload) {
    let mut w = Workload::new(profile(), seed, hours);
    let path = dir.join("t.lhtrace");
    let f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut tw = TraceWriter::new(f, &w.meta()).unwrap();
    for e in w.by_ref() {
        tw.write(&e).unwrap();
    }
    tw.finish().unwrap();
    (path, w)
}

#[test]
fn replay_on_six_threads_ends_with_the_generators_live_bytes() {
    let w = Workload::new(profile(), 9, 0.01);
    let threads = w.threads();
    let mut gen = Workload::new(profile(), 9, 0.01);
    for _ in gen.by_ref() {}
    assert!(gen.stats().cross_thread_frees > 10_000, "{:?}", gen.stats());

    // Speed max: no idle sleeps; the GVL is on, as in the default profile.
    let shared = Shared::new(threads, Speed::Max, true).unwrap();
    let stop = AtomicBool::new(false);
    let out = replay(&Libc, &shared, EventSource::synthetic(w), || {}, &stop);
    assert!(out.stream_error.is_none() && out.spawn_error.is_none());
    assert_eq!(shared.live_bytes(), gen.live_bytes() as i64);
    assert_eq!(shared.requests(), gen.stats().requests_completed);
    assert_eq!(shared.collections(), gen.stats().collections);
    assert_eq!(out.events, gen.stats().events);
    assert_eq!(out.threads_started, threads as u64 + 1);
    let lat = &out.latencies;
    assert_eq!(lat.request_us.len(), gen.stats().requests_completed);
    assert_eq!(
        lat.alloc_per_request_ns.len(),
        gen.stats().requests_completed
    );
    // Every allocator call is timed into the per-request sums; one in eight is kept whole.
    let calls = gen.stats().allocs + gen.stats().reallocs + gen.stats().frees;
    let kept = lat.call_ns.len();
    assert!(
        kept > 0 && kept <= calls / 8 + 6 && kept + 6 >= calls / 8,
        "{kept} of {calls}"
    );
}

#[test]
fn a_trace_file_replays_like_the_generator_and_a_cut_one_replays_its_intact_part() {
    let dir = tempfile::tempdir().unwrap();
    let (path, gen) = trace_file(dir.path(), 4, 0.005);
    let source = EventSource::trace(&path).unwrap();
    let shared = Shared::new(source.threads(), Speed::Max, true).unwrap();
    let out = replay(&Libc, &shared, source, || {}, &AtomicBool::new(false));
    assert!(out.stream_error.is_none());
    assert_eq!(shared.live_bytes(), gen.live_bytes() as i64);
    assert_eq!(out.events, gen.stats().events);

    // Cut the file: the replay covers what comes before the cut and names where it stopped.
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.lhtrace");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let source = EventSource::trace(&cut).unwrap();
    let shared = Shared::new(source.threads(), Speed::Max, true).unwrap();
    let out = replay(&Libc, &shared, source, || {}, &AtomicBool::new(false));
    let err = out
        .stream_error
        .expect("a cut trace is an error")
        .to_string();
    assert!(
        err.contains("record") && err.contains("cut.lhtrace"),
        "{err}"
    );
    assert!(
        out.events > 0 && out.events < gen.stats().events,
        "{}",
        out.events
    );
}

#[test]
fn a_free_of_a_block_never_allocated_is_refused_not_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.lhtrace");
    let meta = workload::trace::TraceMeta {
        threads: 2,
        ..Default::default()
    };
    let mut tw = TraceWriter::new(std::fs::File::create(&path).unwrap(), &meta).unwrap();
    let b = workload::BlockRef { slot: 0, gen: 0 };
    tw.write_at(
        0,
        &Event::Malloc {
            thread: 1,
            block: b,
            size: 64,
        },
    )
    .unwrap();
    tw.write_at(
        1,
        &Event::Free {
            thread: 2,
            block: b,
            size: 64,
        },
    )
    .unwrap();
    // Slot 5 was never allocated: a replay thread would wait for it forever.
    let never = workload::BlockRef { slot: 5, gen: 0 };
    tw.write_at(
        2,
        &Event::Free {
            thread: 1,
            block: never,
            size: 8,
        },
    )
    .unwrap();
    tw.finish().unwrap();
    let source = EventSource::trace(&path).unwrap();
    let shared = Shared::new(source.threads(), Speed::Max, false).unwrap();
    let out = replay(&Libc, &shared, source, || {}, &AtomicBool::new(false));
    let err = out.stream_error.expect("refused").to_string();
    assert!(
        err.contains("record 2") && err.contains("not live"),
        "{err}"
    );
    assert_eq!(shared.live_bytes(), 0);
}

#[test]
fn threads_end_where_the_trace_says() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ends.lhtrace");
    let meta = workload::trace::TraceMeta {
        threads: 3,
        ..Default::default()
    };
    let mut tw = TraceWriter::new(std::fs::File::create(&path).unwrap(), &meta).unwrap();
    for t in 1..=3u32 {
        let b = workload::BlockRef { slot: t, gen: 0 };
        tw.write_at(
            0,
            &Event::Malloc {
                thread: t,
                block: b,
                size: 100,
            },
        )
        .unwrap();
        tw.write_at(0, &Event::ThreadEnd { thread: t }).unwrap();
    }
    // Thread 0 frees what the ended threads left.
    for t in 1..=3u32 {
        let b = workload::BlockRef { slot: t, gen: 0 };
        tw.write_at(
            0,
            &Event::Free {
                thread: 0,
                block: b,
                size: 100,
            },
        )
        .unwrap();
    }
    tw.finish().unwrap();
    let source = EventSource::trace(&path).unwrap();
    let shared = Shared::new(source.threads(), Speed::Max, false).unwrap();
    let out = replay(&Libc, &shared, source, || {}, &AtomicBool::new(false));
    assert!(out.stream_error.is_none());
    assert_eq!(out.threads_started, 4);
    assert_eq!(shared.live_bytes(), 0);
    // Six calls on four threads: none is the eighth of its thread.
    assert_eq!(out.latencies.call_ns.len(), 0);
}
