//! The child's sampler thread: at a fixed simulated interval it reads the process's memory from
//! `/proc`, the workload's live bytes and progress from the replay, and the allocator's own
//! counters, and sends a [`Sample`] to the parent.
//!
//! It runs inside the child (not in the parent) because the allocator's counters can only be
//! read in-process; `/proc/self` gives the same figures the parent would read.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::os::read_self_memory;
use crate::protocol::{ChildMsg, Sample};
use crate::replay::Shared;
use crate::under_test::AllocatorUnderTest;

/// Simulated seconds between samples (six per simulated minute).
pub const SAMPLE_EVERY_SIM_S: f64 = 10.0;

/// Takes one sample now.
pub fn sample<A: AllocatorUnderTest>(a: &A, sh: &Shared, buf: &mut String) -> Sample {
    let mem = read_self_memory(buf).unwrap_or_default();
    let real = sh.start.elapsed().as_secs_f64();
    let sim = sh.sim_ns() as f64 / 1e9;
    Sample {
        sim_time_s: sim,
        real_time_s: real,
        rss_bytes: mem.rss,
        rss_anon_bytes: mem.rss_anon,
        private_dirty_bytes: mem.private_dirty,
        lazyfree_bytes: mem.lazyfree,
        live_bytes: sh.live_bytes().max(0) as u64,
        requests: sh.requests(),
        lag_s: (real * sh.speed - sim).max(0.0),
        counters: a.counters(),
    }
}

/// Samples every [`SAMPLE_EVERY_SIM_S`] simulated seconds (scaled by the speed) until `stop`,
/// and once more when stopped, before the replay threads exit (thread exit flushes thread
/// caches, which would make the last sample unlike the run).
pub fn run<A: AllocatorUnderTest>(a: &A, sh: &Shared, stop: &AtomicBool) {
    let every = Duration::from_secs_f64(SAMPLE_EVERY_SIM_S / sh.speed);
    let mut buf = String::with_capacity(8192);
    let mut next = Instant::now();
    while !stop.load(Ordering::Acquire) {
        ChildMsg::Sample(sample(a, sh, &mut buf)).send();
        next += every;
        let now = Instant::now();
        if next > now {
            // Wake early if the replay ends: sleep in short steps.
            let mut left = next - now;
            while left > Duration::ZERO && !stop.load(Ordering::Acquire) {
                let step = left.min(Duration::from_millis(20));
                std::thread::sleep(step);
                left = left.saturating_sub(step);
            }
        } else {
            next = now;
        }
    }
    ChildMsg::Sample(sample(a, sh, &mut buf)).send();
}
