//! The definitions of the summary's figures that come from the samples: **steady RSS** (median
//! over the last quarter of the samples), **growth** (least-squares slope of RSS over the
//! second half, per simulated hour), live and harness figures, and costs per simulated hour.

use crate::samples::Sample;
use crate::spread::median;
use crate::summary::HourCost;

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

/// Memory figures of one repetition's samples (in order of time).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MemoryMetrics {
    pub rss_end: Option<u64>,
    pub rss_max: Option<u64>,
    pub rss_steady: Option<u64>,
    pub growth_per_hour: Option<f64>,
    pub live_end: Option<u64>,
    pub live_max: Option<u64>,
    pub live_steady: Option<u64>,
    pub harness_steady: Option<u64>,
    /// Live runs: median PSS over the last quarter.
    pub pss_steady: Option<u64>,
}

impl MemoryMetrics {
    /// (steady RSS - steady harness RSS) / steady live bytes.
    pub fn fragmentation(&self) -> Option<f64> {
        match (self.rss_steady, self.live_steady) {
            (Some(r), Some(l)) if l > 0 => {
                Some(r.saturating_sub(self.harness_steady.unwrap_or(0)) as f64 / l as f64)
            }
            _ => None,
        }
    }
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
    let harness: Vec<f64> = last_quarter
        .iter()
        .filter_map(|s| s.harness_rss_bytes.map(|h| h as f64))
        .collect();
    let pss: Vec<f64> = last_quarter
        .iter()
        .filter_map(|s| s.pss_bytes.map(|v| v as f64))
        .collect();
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
        harness_steady: median(&harness).map(|v| v as u64),
        pss_steady: median(&pss).map(|v| v as u64),
    }
}

/// Per simulated hour of serving: differences of the samples' cumulative counters at hour
/// boundaries (the last sample at or before each boundary). `boot_s`: simulated seconds of boot,
/// counted in hour 0.
pub fn hourly_costs(samples: &[Sample], boot_s: f64) -> Vec<HourCost> {
    let mut out: Vec<HourCost> = Vec::new();
    let mut prev: Option<&Sample> = None;
    let mut cur_hour: Option<u32> = None;
    let mut last_of_hour: Option<&Sample> = None;
    let mut close = |from: Option<&Sample>, to: &Sample, hour: u32| {
        let cpu = |s: &Sample| s.cpu_s().unwrap_or(0.0);
        let minor = |s: &Sample| s.minor_faults.unwrap_or(0);
        let major = |s: &Sample| s.major_faults.unwrap_or(0);
        let alloc = |s: &Sample| s.alloc_time_s.unwrap_or(0.0);
        let touch = |s: &Sample| s.touch_time_s.unwrap_or(0.0);
        let requests = |s: &Sample| s.requests.unwrap_or(0);
        let (cpu0, min0, maj0, a0, t0, r0) = from.map_or((0.0, 0, 0, 0.0, 0.0, 0), |f| {
            (cpu(f), minor(f), major(f), alloc(f), touch(f), requests(f))
        });
        out.push(HourCost {
            hour,
            cpu_s: cpu(to) - cpu0,
            minor_faults: minor(to).saturating_sub(min0),
            major_faults: major(to).saturating_sub(maj0),
            alloc_time_s: alloc(to) - a0,
            touch_time_s: touch(to) - t0,
            requests: requests(to).saturating_sub(r0),
        });
    };
    for s in samples {
        let h = (((s.sim_time_s - boot_s).max(0.0)) / 3600.0).floor() as u32;
        // A sample exactly on a boundary closes the hour before it.
        let h = if h > 0 && (s.sim_time_s - boot_s) % 3600.0 == 0.0 {
            h - 1
        } else {
            h
        };
        if let (Some(c), Some(last)) = (cur_hour, last_of_hour) {
            if h != c {
                close(prev, last, c);
                prev = Some(last);
            }
        }
        cur_hour = Some(h);
        last_of_hour = Some(s);
    }
    if let (Some(c), Some(last)) = (cur_hour, last_of_hour) {
        close(prev, last, c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: f64, rss: u64, live: u64) -> Sample {
        Sample {
            allocator: "x".into(),
            repetition: 1,
            sim_time_s: t,
            rss_bytes: rss,
            live_bytes: live,
            harness_rss_bytes: Some(0),
            ..Sample::default()
        }
    }

    #[test]
    fn hourly_costs_difference_cumulative_counters_at_hour_boundaries() {
        let mut v = Vec::new();
        // Boot 10 s, then 2.5 hours; one sample every 30 simulated minutes after boot.
        for k in 0..=5u32 {
            let mut x = s(10.0 + f64::from(k) * 1800.0, 0, 0);
            x.cpu_user_s = Some(f64::from(k));
            x.cpu_sys_s = Some(0.0);
            x.minor_faults = Some(100 * u64::from(k));
            x.requests = Some(10 * u64::from(k));
            v.push(x);
        }
        let h = hourly_costs(&v, 10.0);
        assert_eq!(h.len(), 3, "{h:?}");
        assert_eq!(
            (h[0].hour, h[0].cpu_s, h[0].minor_faults, h[0].requests),
            (0, 2.0, 200, 20)
        );
        assert_eq!((h[1].hour, h[1].cpu_s, h[1].minor_faults), (1, 2.0, 200));
        assert_eq!((h[2].hour, h[2].cpu_s), (2, 1.0));
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
        assert_eq!(m.fragmentation(), Some(3.3));
    }

    #[test]
    fn empty_samples_give_no_metrics() {
        assert_eq!(memory_metrics(&[]), MemoryMetrics::default());
    }
}
