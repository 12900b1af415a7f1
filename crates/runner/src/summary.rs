//! Turning one allocator's samples into its summary: steady RSS, growth, fragmentation,
//! throughput and latency, as `docs/results-format.md` defines them.

use serde::{Deserialize, Serialize};

use crate::latency::Percentiles;
use crate::protocol::{Done, Sample};

/// How an allocator's part of the run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Crashed,
    Interrupted,
    Failed,
}

/// One allocator's line of `summary.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AllocatorSummary {
    pub name: String,
    pub id: String,
    pub status: Status,
    pub error: Option<String>,
    pub version: Option<String>,
    pub sim_hours_reached: f64,
    pub harness_rss_bytes: Option<u64>,
    pub rss_end_bytes: Option<u64>,
    pub rss_max_bytes: Option<u64>,
    pub rss_steady_bytes: Option<u64>,
    pub rss_growth_bytes_per_hour: Option<f64>,
    pub live_end_bytes: Option<u64>,
    pub live_max_bytes: Option<u64>,
    pub live_steady_bytes: Option<u64>,
    pub fragmentation: Option<f64>,
    pub requests: u64,
    pub throughput_rps: Option<f64>,
    pub max_lag_s: Option<f64>,
    pub real_seconds: Option<f64>,
    pub latency_us: Option<Percentiles>,
    pub service_us: Option<Percentiles>,
    pub call_latency_ns: Option<Percentiles>,
}

/// The whole `summary.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSummary {
    pub schema_version: u32,
    pub workload: String,
    pub hours: f64,
    pub seed: u64,
    pub speed: f64,
    pub threads: u32,
    pub interrupted: bool,
    pub allocators: Vec<AllocatorSummary>,
}

/// Median of a non-empty slice (sorted copy).
fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Least-squares slope of `ys` over `xs`.
pub fn slope(xs: &[f64], ys: &[f64]) -> Option<f64> {
    let n = xs.len();
    if n < 2 || ys.len() != n {
        return None;
    }
    let mx = xs.iter().sum::<f64>() / n as f64;
    let my = ys.iter().sum::<f64>() / n as f64;
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    Some(sxy / sxx)
}

/// Memory metrics from samples (in order of time).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MemoryMetrics {
    pub rss_end: Option<u64>,
    pub rss_max: Option<u64>,
    pub rss_steady: Option<u64>,
    pub growth_per_hour: Option<f64>,
    pub live_end: Option<u64>,
    pub live_max: Option<u64>,
    pub live_steady: Option<u64>,
}

/// Steady = median over the last quarter of the samples; growth = least-squares slope of RSS
/// over the second half, per simulated hour.
pub fn memory_metrics(samples: &[Sample]) -> MemoryMetrics {
    if samples.is_empty() {
        return MemoryMetrics::default();
    }
    let n = samples.len();
    let last_quarter = &samples[n - (n / 4).max(1)..];
    let second_half = &samples[n / 2..];
    let rss: Vec<f64> = last_quarter.iter().map(|s| s.rss_bytes as f64).collect();
    let live: Vec<f64> = last_quarter.iter().map(|s| s.live_bytes as f64).collect();
    let xs: Vec<f64> = second_half.iter().map(|s| s.sim_time_s / 3600.0).collect();
    let ys: Vec<f64> = second_half.iter().map(|s| s.rss_bytes as f64).collect();
    MemoryMetrics {
        rss_end: samples.last().map(|s| s.rss_bytes),
        rss_max: samples.iter().map(|s| s.rss_bytes).max(),
        rss_steady: median(&rss).map(|v| v as u64),
        growth_per_hour: slope(&xs, &ys),
        live_end: samples.last().map(|s| s.live_bytes),
        live_max: samples.iter().map(|s| s.live_bytes).max(),
        live_steady: median(&live).map(|v| v as u64),
    }
}

impl AllocatorSummary {
    /// Builds the summary of one allocator from what its child sent.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        name: String,
        id: String,
        status: Status,
        error: Option<String>,
        version: Option<String>,
        harness_rss: Option<u64>,
        samples: &[Sample],
        done: Option<&Done>,
        boot_s: f64,
    ) -> AllocatorSummary {
        let m = memory_metrics(samples);
        let sim_s = done
            .map(|d| d.sim_time_s)
            .or_else(|| samples.last().map(|s| s.sim_time_s))
            .unwrap_or(0.0);
        let requests = done
            .map(|d| d.requests)
            .or_else(|| samples.last().map(|s| s.requests))
            .unwrap_or(0);
        let serving_s = (sim_s - boot_s).max(0.0);
        AllocatorSummary {
            name,
            id,
            status,
            error,
            version,
            sim_hours_reached: serving_s / 3600.0,
            harness_rss_bytes: harness_rss,
            rss_end_bytes: m.rss_end,
            rss_max_bytes: m.rss_max,
            rss_steady_bytes: m.rss_steady,
            rss_growth_bytes_per_hour: m.growth_per_hour,
            live_end_bytes: m.live_end,
            live_max_bytes: m.live_max,
            live_steady_bytes: m.live_steady,
            fragmentation: match (m.rss_steady, m.live_steady) {
                (Some(r), Some(l)) if l > 0 => Some(r as f64 / l as f64),
                _ => None,
            },
            requests,
            throughput_rps: (serving_s > 0.0).then(|| requests as f64 / serving_s),
            max_lag_s: done
                .map(|d| d.max_lag_s)
                .or_else(|| samples.iter().map(|s| s.lag_s).reduce(f64::max)),
            real_seconds: done.map(|d| d.real_time_s),
            latency_us: done.map(|d| d.latency_us),
            service_us: done.map(|d| d.service_us),
            call_latency_ns: done.map(|d| d.call_latency_ns),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::under_test::Counters;

    fn s(t: f64, rss: u64, live: u64) -> Sample {
        Sample {
            sim_time_s: t,
            real_time_s: t / 60.0,
            rss_bytes: rss,
            rss_anon_bytes: None,
            private_dirty_bytes: None,
            lazyfree_bytes: None,
            live_bytes: live,
            requests: 0,
            lag_s: 0.0,
            counters: Counters::default(),
        }
    }

    #[test]
    fn slope_of_a_line_is_exact() {
        let xs = [0.0, 1.0, 2.0, 3.0];
        let ys = [10.0, 12.0, 14.0, 16.0];
        assert_eq!(slope(&xs, &ys), Some(2.0));
        assert_eq!(slope(&[1.0], &[1.0]), None);
    }

    #[test]
    fn steady_is_median_of_last_quarter_and_growth_per_hour() {
        // RSS grows 100 bytes per simulated hour; 8 samples one hour apart.
        let samples: Vec<Sample> = (0..8)
            .map(|h| s(h as f64 * 3600.0, 1000 + 100 * h, 500))
            .collect();
        let m = memory_metrics(&samples);
        assert_eq!(m.rss_steady, Some(1650)); // median of 1600, 1700
        assert_eq!(m.rss_max, Some(1700));
        let g = m.growth_per_hour.unwrap();
        assert!((g - 100.0).abs() < 1e-9, "{g}");
        assert_eq!(m.live_steady, Some(500));
    }

    #[test]
    fn empty_samples_give_no_metrics() {
        assert_eq!(memory_metrics(&[]), MemoryMetrics::default());
    }
}
