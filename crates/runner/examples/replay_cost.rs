//! The harness's own cost in CPU time, robust to other work on the machine (getrusage, not the
//! wall clock): replays a stretch of rails-api, already in memory, into a trivial allocator that
//! reuses one pre-touched region, and reports events per CPU second, for the replay machinery
//! alone and with the dispatcher generating the events. Pin it to one core to measure "per
//! core"; run it under `perf record` for the per-symbol breakdown in the runner's README:
//!
//! `cargo build --release --example replay_cost -p runner`
//! `taskset -c 0 target/release/examples/replay_cost [hours] [repeats]`

use std::path::Path;
use std::sync::atomic::AtomicBool;

use runner::bump::Bump;
use runner::os::{usage, UsageOf};
use runner::replay::{replay, Shared, Speed};
use runner::source::EventSource;
use workload::{Event, Profile, Workload};

fn main() {
    let mut args = std::env::args().skip(1);
    let hours: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0.02);
    let repeats: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workloads/rails-api.toml");
    let profile = match Profile::load(&path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let len = 256usize << 20;
    let Ok(bump) = Bump::new(len) else {
        eprintln!("error: cannot map the bump allocator's region");
        std::process::exit(1);
    };
    let w = Workload::new(profile.clone(), 11, hours);
    let threads = w.threads();
    let events: Vec<Event> = w.collect();
    let n = events.len() as u64;
    let run = |source: EventSource| {
        let shared = match Shared::new(threads, Speed::Max, true) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        };
        let out = replay(&bump, &shared, source, || {}, &AtomicBool::new(false));
        let (alloc_ns, touch_ns) = shared.alloc_touch_ns();
        (out.events, alloc_ns, touch_ns)
    };
    for (label, generate) in [
        ("replay from memory", false),
        ("generating in the dispatcher", true),
    ] {
        // Sources made before the clock starts (copying events is not replaying them).
        let sources: Vec<EventSource> = (0..repeats)
            .map(|_| {
                if generate {
                    EventSource::synthetic(Workload::new(profile.clone(), 11, hours))
                } else {
                    EventSource::memory(events.clone(), threads)
                }
            })
            .collect();
        let before = usage(UsageOf::Process);
        let wall = std::time::Instant::now();
        let (mut total, mut alloc, mut touch) = (0u64, 0u64, 0u64);
        for source in sources {
            let (e, a, t) = run(source);
            total += e;
            alloc += a;
            touch += t;
        }
        let cpu = usage(UsageOf::Process).since(&before).cpu_s();
        let wall = wall.elapsed().as_secs_f64();
        println!(
            "{label}: {total} events ({n} per replay x {repeats}) in {cpu:.2} CPU s ({wall:.2} wall s): {:.2} M events per CPU second, {:.0} ns of CPU per event, of which {:.0} ns inside the bump allocator's calls and {:.0} ns writing memory",
            total as f64 / cpu / 1e6,
            cpu * 1e9 / total as f64,
            alloc as f64 / total as f64,
            touch as f64 / total as f64,
        );
    }
}
