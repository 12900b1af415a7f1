//! Latency and cost recording: HDR histograms of request latency (from the scheduled arrival, so
//! queueing counts and there is no coordinated omission), service time, every allocator call's
//! duration, and per request the time spent inside allocator calls and touching memory.

use std::path::Path;

use hdrhistogram::Histogram;
use rundir::HistogramKind;

/// Highest trackable request latency: one hour in µs.
const MAX_REQUEST_US: u64 = 3_600_000_000;
/// Highest trackable single call: ten seconds in ns.
const MAX_CALL_NS: u64 = 10_000_000_000;
/// Highest trackable per-request sum: one hour in ns.
const MAX_NS: u64 = 3_600_000_000_000;
const SIGFIG: u8 = 3;

/// The histograms a run keeps per allocator and repetition (`rundir::HistogramKind`).
pub struct Latencies {
    pub request_us: Histogram<u64>,
    pub service_us: Histogram<u64>,
    pub call_ns: Histogram<u64>,
    pub alloc_per_request_ns: Histogram<u64>,
    pub touch_per_request_ns: Histogram<u64>,
}

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

    /// In the order of [`HistogramKind::all`].
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

    /// Writes the histograms of repetition `repetition` of allocator `id` into the run
    /// directory `dir` (file names: `rundir::histogram`), atomically.
    pub fn write(&self, dir: &Path, id: &str, repetition: u32) -> Result<(), rundir::RunDirError> {
        self.write_first(dir, id, repetition, HistogramKind::all().len())
    }

    /// Writes only request latency and service time (a live run times nothing else).
    pub fn write_requests(
        &self,
        dir: &Path,
        id: &str,
        repetition: u32,
    ) -> Result<(), rundir::RunDirError> {
        self.write_first(dir, id, repetition, 2)
    }

    fn write_first(
        &self,
        dir: &Path,
        id: &str,
        repetition: u32,
        n: usize,
    ) -> Result<(), rundir::RunDirError> {
        for (h, kind) in self.all().into_iter().zip(HistogramKind::all()).take(n) {
            rundir::histogram::write(&rundir::histogram::path(dir, id, repetition, kind), h)?;
        }
        Ok(())
    }
}

/// Records a value, saturating at the histogram's highest trackable value.
#[inline]
pub fn record(h: &mut Histogram<u64>, v: u64) {
    h.saturating_record(v.max(1));
}
