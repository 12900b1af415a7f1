//! The child's sampler thread: every [`SAMPLE_EVERY_SIM_S`] simulated seconds of progress it
//! reads the process's memory from `/proc`, the harness's own resident memory, the workload's
//! live bytes and progress from the replay, the process's resource use and the allocator's own
//! counters, and sends a [`Sample`] to the parent.
//!
//! It runs inside the child (not in the parent) because the allocator's counters can only be
//! read in-process; `/proc/self` gives the same figures the parent would read. Samples follow
//! simulated progress, not the real clock, so a replay that lags or runs at `--speed max` still
//! gets one sample per simulated interval.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::ballast::Ballast;
use crate::harness_heap::HarnessHeap;
use crate::os::{read_self_memory, Usage};
use crate::protocol::{ChildMsg, Sample};
use crate::replay::Shared;
use crate::under_test::AllocatorUnderTest;

/// Simulated seconds between samples (six per simulated minute).
pub const SAMPLE_EVERY_SIM_S: f64 = 10.0;
/// `/proc/self/smaps_rollup` (Private_Dirty, LazyFree) is read at every this many samples
/// (once per simulated minute) and at the last: it walks every page of the process, which
/// costs milliseconds of the harness's CPU per read.
const ROLLUP_EVERY: u64 = 6;

/// What the sampler keeps between samples (buffers, so that sampling does not allocate).
pub struct Sampler {
    taken: u64,
    buf: String,
    scratch: Vec<u8>,
    usage_at_start: Usage,
    /// The test hook's memory ballast, if the child's environment asks for one.
    pub ballast: Option<Ballast>,
}

impl Sampler {
    pub fn new(usage_at_start: Usage) -> Sampler {
        Sampler {
            taken: 0,
            buf: String::with_capacity(8192),
            scratch: vec![0u8; 16 * 1024],
            usage_at_start,
            ballast: None,
        }
    }

    /// The harness's own resident bytes: its heap and the used part of the block table.
    pub fn harness_rss(&mut self, sh: &Shared) -> u64 {
        HarnessHeap::resident_bytes(&mut self.scratch)
            + sh.table.resident_bytes(sh.slots_used(), &mut self.scratch)
    }

    /// Takes one sample now (`last`: the final one, which reads everything).
    pub fn sample<A: AllocatorUnderTest>(&mut self, a: &A, sh: &Shared, last: bool) -> Sample {
        let rollup = last || self.taken % ROLLUP_EVERY == 0;
        self.taken += 1;
        let mem = read_self_memory(&mut self.buf, rollup).unwrap_or_default();
        if let Some(b) = self.ballast.as_mut() {
            b.adjust(a, mem.rss);
        }
        let harness = self.harness_rss(sh);
        let usage = crate::os::usage(crate::os::UsageOf::Process).since(&self.usage_at_start);
        let (alloc_ns, touch_ns) = sh.alloc_touch_ns();
        Sample {
            sim_time_s: sh.sim_ns() as f64 / 1e9,
            real_time_s: sh.elapsed_s(),
            rss_bytes: mem.rss,
            rss_anon_bytes: mem.rss_anon,
            private_dirty_bytes: mem.private_dirty,
            lazyfree_bytes: mem.lazyfree,
            harness_rss_bytes: harness,
            live_bytes: sh.live_bytes().max(0) as u64,
            requests: sh.requests(),
            lag_s: sh.take_window_lag_ns() as f64 / 1e9,
            usage,
            alloc_time_s: alloc_ns as f64 / 1e9,
            touch_time_s: touch_ns as f64 / 1e9,
            pss_bytes: None,
            counters: a.counters(),
        }
    }

    /// Samples at every [`SAMPLE_EVERY_SIM_S`] of simulated progress until `stop`, and once
    /// more when stopped, before the replay threads exit (thread exit flushes thread caches,
    /// which would make the last sample unlike the run).
    pub fn run<A: AllocatorUnderTest>(&mut self, a: &A, sh: &Shared, stop: &AtomicBool) {
        // Look often enough to catch each interval: a twentieth of one at the run's speed.
        let poll = match sh.speed.factor() {
            Some(s) => Duration::from_secs_f64(SAMPLE_EVERY_SIM_S / s / 20.0)
                .clamp(Duration::from_millis(1), Duration::from_millis(20)),
            None => Duration::from_millis(1),
        };
        let every_ns = (SAMPLE_EVERY_SIM_S * 1e9) as u64;
        let mut next_ns = 0u64;
        while !stop.load(Ordering::Acquire) {
            if sh.sim_ns() >= next_ns {
                ChildMsg::Sample(Box::new(self.sample(a, sh, false))).send();
                next_ns = (sh.sim_ns() / every_ns + 1) * every_ns;
            }
            std::thread::sleep(poll);
        }
        ChildMsg::Sample(Box::new(self.sample(a, sh, true))).send();
    }
}
