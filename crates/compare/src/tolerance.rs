//! How large a change must be before it counts: per metric, the noise band is
//! `max(tolerance, k x observed spread)`, where the observed spread is the larger of the two
//! runs' relative half-ranges over their repetitions (how far one repetition strayed from the
//! median). The tolerance is a floor for runs with few repetitions, whose observed spread
//! understates the noise; `k` scales the spread up because the medians being compared each
//! carry their own noise.
//!
//! Why these numbers (2-core VMs, same seed; `results/baseline/README.md` has the measurements):
//! - **Memory is nearly deterministic.** The same seed gives the same allocation sequence;
//!   only purge timers and thread interleaving move steady RSS, by 0.1% to 3% run to run.
//!   Tight: 2% for steady RSS and RSS/live, 3% for peak RSS (one sample's maximum, moved by
//!   where a purge lands).
//! - **Growth** can be zero or negative, so it is compared in its unit: a change of more than
//!   10% of the steady RSS per simulated hour (a short run's slope is noisy).
//! - **CPU and page faults** are counted by the kernel: they do not include waiting, but move
//!   with frequency scaling, caches, neighbours and purge timing: 10%.
//! - **Timings** (p99 of allocator time per request, of request latency) move by more than 10x
//!   when anything else runs on the machine: loose, 50% and k = 3, and only where both runs
//!   say their timings are valid.
//!
//! What decides a gate: memory rows, and every metric's ratio to the reference allocator
//! measured in the same run (the two ran back to back, so the machine's load and speed cancel
//! out of it). An allocator's own CPU, fault and timing rows are shown with their verdicts but
//! do not decide: on a shared machine they move with whatever else runs (CPU per request moved
//! by 30% between two runs at load 8 to 20 on the 2-core VM), and a regression of ours in them
//! shows in its ratio to jemalloc.

use rundir::{Metric, MetricKind};

/// The noise band of one metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Floor of the band: a relative change (0.02 = 2%), or for signed metrics (growth) a
    /// share of the first run's steady RSS per hour.
    pub floor: f64,
    /// Multiplier of the observed spread.
    pub k: f64,
}

/// The tolerances of every metric.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub steady: Tolerance,
    pub peak: Tolerance,
    pub growth: Tolerance,
    pub rss_per_live: Tolerance,
    pub cost: Tolerance,
    pub timing: Tolerance,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            steady: Tolerance {
                floor: 0.02,
                k: 2.0,
            },
            peak: Tolerance {
                floor: 0.03,
                k: 2.0,
            },
            growth: Tolerance {
                floor: 0.10,
                k: 2.0,
            },
            rss_per_live: Tolerance {
                floor: 0.02,
                k: 2.0,
            },
            cost: Tolerance {
                floor: 0.10,
                k: 2.0,
            },
            timing: Tolerance {
                floor: 0.50,
                k: 3.0,
            },
        }
    }
}

impl Policy {
    /// The tolerance of `metric`.
    pub fn of(&self, metric: Metric) -> Tolerance {
        match metric {
            Metric::RssSteady => self.steady,
            Metric::RssMax => self.peak,
            Metric::Growth => self.growth,
            Metric::RssPerLive => self.rss_per_live,
            _ => match metric.kind() {
                MetricKind::Timing => self.timing,
                _ => self.cost,
            },
        }
    }
}
