//! Latency recording: HDR histograms of request latency (from the scheduled arrival, so queueing
//! counts and there is no coordinated omission), service time, and sampled per-call latency.

use std::path::Path;

use hdrhistogram::serialization::{Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest trackable request latency: one hour in µs.
const MAX_REQUEST_US: u64 = 3_600_000_000;
/// Highest trackable call latency: ten seconds in ns.
const MAX_CALL_NS: u64 = 10_000_000_000;
const SIGFIG: u8 = 3;

/// Percentiles of one histogram, in its unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
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
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// One thread's histograms; allocated before the replay starts, so recording never allocates.
pub struct Latencies {
    pub request_us: Histogram<u64>,
    pub service_us: Histogram<u64>,
    pub call_ns: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    pub fn new() -> Latencies {
        let make = |max| {
            Histogram::new_with_bounds(1, max, SIGFIG).expect("constant histogram bounds are valid")
        };
        Latencies {
            request_us: make(MAX_REQUEST_US),
            service_us: make(MAX_REQUEST_US),
            call_ns: make(MAX_CALL_NS),
        }
    }

    /// Adds another thread's histograms into these.
    pub fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.request_us.add(&other.request_us);
        let _ = self.service_us.add(&other.service_us);
        let _ = self.call_ns.add(&other.call_ns);
    }

    /// Writes the three histograms as `<id>.request-latency-us.hdr` etc. into `dir`, atomically.
    pub fn write(&self, dir: &Path, id: &str) -> anyhow::Result<()> {
        for (h, suffix) in [
            (&self.request_us, "request-latency-us"),
            (&self.service_us, "service-time-us"),
            (&self.call_ns, "call-latency-ns"),
        ] {
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
