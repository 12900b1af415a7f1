//! Latency and cost recording: HDR histograms of request latency (from the scheduled arrival, so
//! queueing counts and there is no coordinated omission), service time, allocator calls'
//! durations (one call in eight), and per request the time spent inside allocator calls and
//! touching memory (every call).

use std::path::Path;

use hdrhistogram::serialization::{Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest trackable request latency: one hour in µs.
const MAX_REQUEST_US: u64 = 3_600_000_000;
/// Highest trackable single call: ten seconds in ns.
const MAX_CALL_NS: u64 = 10_000_000_000;
/// Highest trackable per-request sum: one hour in ns.
const MAX_NS: u64 = 3_600_000_000_000;
const SIGFIG: u8 = 3;

/// Percentiles of one histogram, in its unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        Percentiles {
            count: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// The histograms a run keeps per allocator; `FILES` names their files.
pub struct Latencies {
    pub request_us: Histogram<u64>,
    pub service_us: Histogram<u64>,
    pub call_ns: Histogram<u64>,
    pub alloc_per_request_ns: Histogram<u64>,
    pub touch_per_request_ns: Histogram<u64>,
}

/// File-name suffixes after `<id>.`, one per histogram of [`Latencies`].
pub const FILES: [&str; 5] = [
    "request-latency-us",
    "service-time-us",
    "call-latency-ns",
    "alloc-per-request-ns",
    "touch-per-request-ns",
];

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    /// Allocated before a replay thread starts, so that recording never allocates.
    pub fn new() -> Latencies {
        let make = |max| {
            Histogram::new_with_bounds(1, max, SIGFIG).expect("constant histogram bounds are valid")
        };
        Latencies {
            request_us: make(MAX_REQUEST_US),
            service_us: make(MAX_REQUEST_US),
            call_ns: make(MAX_CALL_NS),
            alloc_per_request_ns: make(MAX_NS),
            touch_per_request_ns: make(MAX_NS),
        }
    }

    fn all(&self) -> [&Histogram<u64>; 5] {
        [
            &self.request_us,
            &self.service_us,
            &self.call_ns,
            &self.alloc_per_request_ns,
            &self.touch_per_request_ns,
        ]
    }

    /// Adds another thread's histograms into these.
    pub fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.request_us.add(&other.request_us);
        let _ = self.service_us.add(&other.service_us);
        let _ = self.call_ns.add(&other.call_ns);
        let _ = self.alloc_per_request_ns.add(&other.alloc_per_request_ns);
        let _ = self.touch_per_request_ns.add(&other.touch_per_request_ns);
    }

    /// Writes the histograms as `<id>.<suffix>.hdr` (see [`FILES`]) into `dir`, atomically.
    pub fn write(&self, dir: &Path, id: &str) -> anyhow::Result<()> {
        self.write_first(dir, id, FILES.len())
    }

    /// Writes only request latency and service time (a live run times nothing else).
    pub fn write_requests(&self, dir: &Path, id: &str) -> anyhow::Result<()> {
        self.write_first(dir, id, 2)
    }

    fn write_first(&self, dir: &Path, id: &str, n: usize) -> anyhow::Result<()> {
        for (h, suffix) in self.all().into_iter().zip(FILES).take(n) {
            let mut bytes = Vec::new();
            V2Serializer::new()
                .serialize(h, &mut bytes)
                .map_err(|e| anyhow::anyhow!("serialising the {suffix} histogram: {e:?}"))?;
            crate::results::write_atomic(&dir.join(format!("{id}.{suffix}.hdr")), &bytes)?;
        }
        Ok(())
    }
}

/// Records a value, saturating at the histogram's highest trackable value.
#[inline]
pub fn record(h: &mut Histogram<u64>, v: u64) {
    h.saturating_record(v.max(1));
}
