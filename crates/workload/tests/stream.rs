//! The event stream: deterministic in its seed, well formed, and shaped like the model says.

use std::collections::HashMap;
use std::path::Path;

use workload::{BlockRef, Event, Profile, Workload};

fn profile(name: &str) -> Profile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../workloads")
        .join(format!("{name}.toml"));
    Profile::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Checks that every free/realloc names a live block and every allocation a free name, and
/// returns (frees, cross-thread frees).
fn check_well_formed(w: Workload) -> (u64, u64, Workload) {
    let mut w = w;
    let mut live: HashMap<u32, (u16, u64, u32)> = HashMap::new();
    let mut last_gen: HashMap<u32, u16> = HashMap::new();
    let (mut frees, mut cross) = (0u64, 0u64);
    let threads = w.profile().process.threads;
    let mut last_resume = 0u64;
    for (i, e) in w.by_ref().enumerate() {
        assert!(
            e.thread() <= threads,
            "event {i}: thread {} out of range",
            e.thread()
        );
        match e {
            Event::Malloc {
                block,
                size,
                thread,
            }
            | Event::Calloc {
                block,
                size,
                thread,
            }
            | Event::Aligned {
                block,
                size,
                thread,
                ..
            } => {
                assert!(size > 0, "event {i}: zero-size allocation");
                assert!(
                    !live.contains_key(&block.slot),
                    "event {i}: slot {} reused while live",
                    block.slot
                );
                if let Some(g) = last_gen.get(&block.slot) {
                    assert_eq!(
                        block.gen,
                        g.wrapping_add(1),
                        "event {i}: generation must advance"
                    );
                }
                live.insert(block.slot, (block.gen, size, thread));
            }
            Event::Realloc {
                block,
                old_size,
                new_size,
                ..
            } => {
                let entry = live
                    .get_mut(&block.slot)
                    .unwrap_or_else(|| panic!("event {i}: realloc of a dead block {block:?}"));
                assert_eq!(
                    entry.0, block.gen,
                    "event {i}: realloc of a stale generation"
                );
                assert_eq!(entry.1, old_size, "event {i}: realloc old size mismatch");
                entry.1 = new_size;
                entry.0 = entry.0.wrapping_add(1);
            }
            Event::Free {
                block: BlockRef { slot, gen },
                size,
                thread,
            } => {
                let (g, s, owner) = live
                    .remove(&slot)
                    .unwrap_or_else(|| panic!("event {i}: free of a dead block {slot}/{gen}"));
                assert_eq!(g, gen, "event {i}: free of a stale generation");
                assert_eq!(s, size, "event {i}: free size mismatch");
                last_gen.insert(slot, gen);
                frees += 1;
                if owner != thread {
                    cross += 1;
                }
            }
            Event::Resume { at_ns, thread } => {
                // Segments are emitted in the order they start (per thread, strictly).
                let _ = thread;
                last_resume = last_resume.max(at_ns);
            }
            _ => {}
        }
    }
    let live_bytes: u64 = live.values().map(|v| v.1).sum();
    assert_eq!(
        live_bytes,
        w.live_bytes(),
        "live bytes disagree with the generator"
    );
    (frees, cross, w)
}

#[test]
fn same_seed_same_stream_other_seed_other_stream() {
    let p = profile("rails-api");
    let a: Vec<Event> = Workload::new(p.clone(), 7, 0.01).take(200_000).collect();
    let b: Vec<Event> = Workload::new(p.clone(), 7, 0.01).take(200_000).collect();
    let c: Vec<Event> = Workload::new(p, 8, 0.01).take(200_000).collect();
    assert_eq!(a.len(), 200_000);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn stream_is_well_formed_and_cross_thread_share_is_realistic() {
    for name in ["rails-api", "rails-html", "sidekiq"] {
        let p = profile(name);
        let threads = p.process.threads as f64;
        let most_per_gc = p.gc.requests_per_gc_max;
        let w = Workload::new(p, 3, 0.05);
        let (frees, cross, w) = check_well_formed(w);
        let s = w.stats().clone();
        assert!(s.requests_completed > 100, "{name}: {s:?}");
        assert!(s.collections > 5, "{name}: {s:?}");
        // The sweep runs on whichever thread allocates next: about (N-1)/N of its frees are
        // another thread's blocks (measured 64% with 3 threads, 77% with 5).
        let gc_cross = s.gc_cross_thread_frees as f64 / s.gc_frees as f64;
        let expect = (threads - 1.0) / threads;
        assert!(
            (gc_cross - expect).abs() < 0.15,
            "{name}: GC cross-thread share {gc_cross:.2}, expected about {expect:.2}"
        );
        // Immediate frees (same thread) keep the overall share well below the sweep's.
        let all_cross = cross as f64 / frees as f64;
        assert!(
            all_cross > 0.2 && all_cross < gc_cross,
            "{name}: overall cross-thread share {all_cross:.2}"
        );
        // A GC at least every requests_per_gc_max requests (when object slots run out; sooner
        // when malloc_limit triggers it: Sidekiq jobs malloc several MB each); majors are a
        // minority.
        let per_gc = s.requests_completed as f64 / s.collections as f64;
        assert!(
            (1.0..=most_per_gc * 1.1).contains(&per_gc),
            "{name}: {per_gc:.1} requests per GC (at most {most_per_gc} expected)"
        );
        assert!(s.major_collections * 3 < s.collections, "{name}: {s:?}");
    }
}

#[test]
fn a_measured_size_table_gives_its_exact_sizes_and_ranges_in_their_shares() {
    let mut p = profile("rails-api");
    let m = &mut p.mix;
    (
        m.struct_weight,
        m.string_weight,
        m.array_weight,
        m.hash_weight,
        m.grow_weight,
    ) = (0.0, 0.0, 0.0, 0.0, 0.0);
    m.table_weight = 1.0;
    // 32 B exactly three times as often as the range 100-200 B.
    m.table = vec![(32, 32, 3.0), (100, 200, 1.0)];
    p.validate(Path::new("table.toml")).unwrap();
    let (mut exact, mut ranged, mut other) = (0u64, 0u64, 0u64);
    for e in Workload::new(p, 5, 0.01) {
        if let Event::Malloc { size, .. } | Event::Calloc { size, .. } = e {
            match size {
                32 => exact += 1,
                100..=200 => ranged += 1,
                _ => other += 1,
            }
        }
    }
    // Socket buffers, cache entries and memos are the profile's other allocations.
    assert!(other * 50 < exact + ranged, "{exact} {ranged} {other}");
    let ratio = exact as f64 / ranged as f64;
    assert!((ratio - 3.0).abs() < 0.1, "32 B : 100-200 B = {ratio:.3}");
}

#[test]
fn a_size_table_row_out_of_range_or_missing_is_named() {
    let mut p = profile("rails-api");
    p.mix.table = vec![(32, 32, 1.0), (200, 100, 1.0)];
    let msg = p.validate(Path::new("t.toml")).unwrap_err().to_string();
    assert!(
        msg.contains("mix.table[1]") && msg.contains("lo <= hi"),
        "{msg}"
    );
    p.mix.table = vec![(32, 32, 0.0)];
    let msg = p.validate(Path::new("t.toml")).unwrap_err().to_string();
    assert!(
        msg.contains("mix.table[0]") && msg.contains("share > 0"),
        "{msg}"
    );
    p.mix.table.clear();
    let msg = p.validate(Path::new("t.toml")).unwrap_err().to_string();
    assert!(
        msg.contains("mix.table") && msg.contains("table_weight"),
        "{msg}"
    );
}
