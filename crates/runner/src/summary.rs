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

/// A replay that fell further behind its schedule than this (simulated seconds) did not run
/// the workload as scheduled: its purge timers saw compressed time and its timings include
/// waiting for the machine. Its wall-clock figures are marked invalid.
pub const LAG_LIMIT_SIM_S: f64 = 10.0;
/// Replay threads that waited for a CPU longer than this share of the time they ran were
/// slowed by other work on the machine (or by the harness's own threads): their wall-clock
/// figures are marked invalid. A quiet 2-core VM measured 1-3% (see the runner's README).
pub const RUN_DELAY_LIMIT: f64 = 0.10;

/// One allocator's line of `summary.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AllocatorSummary {
    pub name: String,
    pub id: String,
    pub status: Status,
    pub error: Option<String>,
    pub version: Option<String>,
    pub sim_hours_reached: f64,
    /// Events replayed and replay threads started.
    pub events: Option<u64>,
    pub threads_started: Option<u64>,
    /// The harness's own resident memory (its heap and block table): before the replay, and
    /// the median over the last quarter. Part of every RSS figure; left out of `fragmentation`.
    pub harness_rss_bytes: Option<u64>,
    pub harness_rss_steady_bytes: Option<u64>,
    pub rss_end_bytes: Option<u64>,
    pub rss_max_bytes: Option<u64>,
    pub rss_steady_bytes: Option<u64>,
    pub rss_growth_bytes_per_hour: Option<f64>,
    pub live_end_bytes: Option<u64>,
    pub live_max_bytes: Option<u64>,
    pub live_steady_bytes: Option<u64>,
    /// (steady RSS - steady harness RSS) / steady live bytes.
    pub fragmentation: Option<f64>,
    pub requests: u64,
    /// Requests completed per simulated second: the workload's arrival rate unless the replay
    /// lagged (it is not a throughput the allocator achieved).
    pub throughput_rps: Option<f64>,
    pub max_lag_s: Option<f64>,
    pub real_seconds: Option<f64>,
    /// Costs that do not depend on the clock's compression: CPU, page faults, time in
    /// allocator calls and touching memory.
    pub cost: Option<Cost>,
    /// Whether the wall-clock figures below mean anything; if not, why.
    pub timing_valid: bool,
    pub timing_note: Option<String>,
    /// Per request: nanoseconds inside allocator calls (the sum of the request's calls), and
    /// touching the memory it allocated (first-touch page faults after a purge land here).
    pub alloc_per_request_ns: Option<Percentiles>,
    pub touch_per_request_ns: Option<Percentiles>,
    /// Every allocator call, ns.
    pub call_latency_ns: Option<Percentiles>,
    /// Request latency and service time in real µs at the run's speed: simulated CPU and I/O
    /// time compressed by the speed, plus real allocator time. Compare allocators with
    /// `alloc_per_request_ns` and `cost`; this is what a request took in the replay. In a live
    /// run: from each request's intended send time (open loop) to its answer.
    pub latency_us: Option<Percentiles>,
    pub service_us: Option<Percentiles>,
    /// Live runs: the server's PSS summed over its processes (cluster mode shares pages between
    /// workers, which their RSS counts once per process), median over the last quarter.
    #[serde(default)]
    pub pss_steady_bytes: Option<u64>,
    /// Live runs: what the load generator sent and got, per kind of request.
    #[serde(default)]
    pub load: Option<LoadSummary>,
}

/// The load of a live run, for one allocator.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LoadSummary {
    /// `rate` (open loop, latency from the intended send time) or `closed_loop`.
    pub pacing: String,
    pub rate_per_s: Option<f64>,
    pub connections: u32,
    pub sent: u64,
    pub completed: u64,
    pub errors: u64,
    /// Requests still queued when the duration ended (the server could not keep up).
    pub unsent_at_end: u64,
    pub completed_per_s: f64,
    /// Worst delay of a send behind its schedule, ms (the server or the connection pool was
    /// saturated, or the load generator itself lagged).
    pub max_send_delay_ms: f64,
    pub response_bytes: u64,
    pub kinds: Vec<crate::http_load::KindCount>,
    /// How the server was stopped: exit status, or killed after the stop timeout.
    pub server_stop: Option<String>,
    /// Seconds from start to the first 2xx answer of the ready URL.
    pub boot_s: Option<f64>,
}

/// Resource costs of one allocator's child over its replay.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Cost {
    /// The child process (every thread, the allocator's own included).
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    /// The replay threads' CPU per request, µs (allocator calls, touching memory and replay
    /// bookkeeping; boot included).
    pub cpu_per_request_us: Option<f64>,
    pub replay_threads_cpu_s: f64,
    pub replay_threads_run_delay_s: Option<f64>,
    pub dispatcher_cpu_s: f64,
    pub sampler_cpu_s: f64,
    /// The runner's parent process while this child ran.
    pub parent_cpu_s: f64,
    /// Inside allocator calls, and writing allocated memory, s (wall time on replay threads).
    pub alloc_time_s: f64,
    pub touch_time_s: f64,
    /// What the harness itself used: dispatcher, sampler, parent, and the replay threads'
    /// CPU less the time inside allocator calls and touching memory; and that per real second.
    pub harness_cpu_s: f64,
    pub harness_cores: Option<f64>,
    pub minor_faults: u64,
    pub major_faults: u64,
    pub minor_faults_per_request: Option<f64>,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
    /// The same, per simulated hour of serving (from the samples).
    pub per_sim_hour: Vec<HourCost>,
}

/// Costs in one simulated hour of serving.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HourCost {
    /// Hour index: 0 is the first hour after boot (boot is counted in it).
    pub hour: u32,
    pub cpu_s: f64,
    pub minor_faults: u64,
    pub major_faults: u64,
    pub alloc_time_s: f64,
    pub touch_time_s: f64,
    pub requests: u64,
}

/// The whole `summary.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSummary {
    pub schema_version: u32,
    /// `synthetic` (a profile generated in each child), `replay` (a trace file) or `live` (a
    /// real server under load; times are real seconds).
    pub mode: String,
    pub workload: String,
    pub hours: f64,
    pub seed: u64,
    pub speed: Option<f64>,
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
    pub harness_steady: Option<u64>,
    pub pss_steady: Option<u64>,
}

/// Per simulated hour of serving: differences of the samples' cumulative counters at hour
/// boundaries (the last sample at or before each boundary).
pub fn hourly_costs(samples: &[Sample], boot_s: f64) -> Vec<HourCost> {
    let mut out: Vec<HourCost> = Vec::new();
    let mut prev: Option<&Sample> = None;
    let mut cur_hour: Option<u32> = None;
    let mut last_of_hour: Option<&Sample> = None;
    let mut close = |from: Option<&Sample>, to: &Sample, hour: u32| {
        let (cpu0, min0, maj0, a0, t0, r0) = from.map_or((0.0, 0, 0, 0.0, 0.0, 0), |f| {
            (
                f.usage.cpu_s(),
                f.usage.minor_faults,
                f.usage.major_faults,
                f.alloc_time_s,
                f.touch_time_s,
                f.requests,
            )
        });
        out.push(HourCost {
            hour,
            cpu_s: to.usage.cpu_s() - cpu0,
            minor_faults: to.usage.minor_faults.saturating_sub(min0),
            major_faults: to.usage.major_faults.saturating_sub(maj0),
            alloc_time_s: to.alloc_time_s - a0,
            touch_time_s: to.touch_time_s - t0,
            requests: to.requests.saturating_sub(r0),
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
        .map(|s| s.harness_rss_bytes as f64)
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

/// What a child left behind, as the parent saw it.
pub struct ChildOutcome {
    pub status: Status,
    pub error: Option<String>,
    pub version: Option<String>,
    pub harness_rss: Option<u64>,
    pub samples: Vec<Sample>,
    pub done: Option<Done>,
    /// The parent's CPU while the child ran, s.
    pub parent_cpu_s: f64,
}

impl AllocatorSummary {
    /// A summary with nothing measured yet (status ok until said otherwise).
    pub fn empty(name: String, id: String) -> AllocatorSummary {
        AllocatorSummary {
            name,
            id,
            status: Status::Ok,
            error: None,
            version: None,
            sim_hours_reached: 0.0,
            events: None,
            threads_started: None,
            harness_rss_bytes: None,
            harness_rss_steady_bytes: None,
            rss_end_bytes: None,
            rss_max_bytes: None,
            rss_steady_bytes: None,
            rss_growth_bytes_per_hour: None,
            live_end_bytes: None,
            live_max_bytes: None,
            live_steady_bytes: None,
            fragmentation: None,
            requests: 0,
            throughput_rps: None,
            max_lag_s: None,
            real_seconds: None,
            cost: None,
            timing_valid: false,
            timing_note: None,
            alloc_per_request_ns: None,
            touch_per_request_ns: None,
            call_latency_ns: None,
            latency_us: None,
            service_us: None,
            pss_steady_bytes: None,
            load: None,
        }
    }

    /// Builds the summary of one allocator from what its child sent; `speed` is `None` at
    /// speed max.
    pub fn build(
        name: String,
        id: String,
        o: &ChildOutcome,
        boot_s: f64,
        speed: Option<f64>,
    ) -> AllocatorSummary {
        let samples = &o.samples;
        let done = o.done.as_ref();
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
        let max_lag_s = done
            .map(|d| d.max_lag_s)
            .or_else(|| samples.iter().map(|s| s.lag_s).reduce(f64::max));
        let cost = done.map(|d| {
            let harness_cpu_s = d.cpu.dispatcher_s
                + d.cpu.sampler_s
                + o.parent_cpu_s
                + (d.cpu.replay_threads_s - d.alloc_time_s - d.touch_time_s).max(0.0);
            Cost {
                cpu_user_s: d.usage.user_s,
                cpu_sys_s: d.usage.sys_s,
                cpu_per_request_us: (requests > 0)
                    .then(|| d.cpu.replay_threads_s * 1e6 / requests as f64),
                replay_threads_cpu_s: d.cpu.replay_threads_s,
                replay_threads_run_delay_s: d.cpu.replay_threads_run_delay_s,
                dispatcher_cpu_s: d.cpu.dispatcher_s,
                sampler_cpu_s: d.cpu.sampler_s,
                parent_cpu_s: o.parent_cpu_s,
                alloc_time_s: d.alloc_time_s,
                touch_time_s: d.touch_time_s,
                harness_cpu_s,
                harness_cores: (d.real_time_s > 0.0).then(|| harness_cpu_s / d.real_time_s),
                minor_faults: d.usage.minor_faults,
                major_faults: d.usage.major_faults,
                minor_faults_per_request: (requests > 0)
                    .then(|| d.usage.minor_faults as f64 / requests as f64),
                voluntary_switches: d.usage.voluntary_switches,
                involuntary_switches: d.usage.involuntary_switches,
                per_sim_hour: hourly_costs(samples, boot_s),
            }
        });
        let (timing_valid, timing_note) = timing_validity(speed, max_lag_s, done);
        AllocatorSummary {
            name,
            id,
            status: o.status,
            error: o.error.clone(),
            version: o.version.clone(),
            sim_hours_reached: serving_s / 3600.0,
            events: done.map(|d| d.events),
            threads_started: done.map(|d| d.threads_started),
            harness_rss_bytes: o.harness_rss,
            harness_rss_steady_bytes: m.harness_steady,
            rss_end_bytes: m.rss_end,
            rss_max_bytes: m.rss_max,
            rss_steady_bytes: m.rss_steady,
            rss_growth_bytes_per_hour: m.growth_per_hour,
            live_end_bytes: m.live_end,
            live_max_bytes: m.live_max,
            live_steady_bytes: m.live_steady,
            fragmentation: match (m.rss_steady, m.live_steady) {
                (Some(r), Some(l)) if l > 0 => {
                    Some(r.saturating_sub(m.harness_steady.unwrap_or(0)) as f64 / l as f64)
                }
                _ => None,
            },
            requests,
            throughput_rps: (serving_s > 0.0).then(|| requests as f64 / serving_s),
            max_lag_s,
            real_seconds: done.map(|d| d.real_time_s),
            cost,
            timing_valid,
            timing_note,
            alloc_per_request_ns: done.map(|d| d.alloc_per_request_ns),
            touch_per_request_ns: done.map(|d| d.touch_per_request_ns),
            call_latency_ns: done.map(|d| d.call_latency_ns),
            latency_us: done.map(|d| d.latency_us),
            service_us: done.map(|d| d.service_us),
            pss_steady_bytes: None,
            load: None,
        }
    }
}

/// Whether wall-clock figures (latency, per-call and per-request times) mean something: the
/// replay kept to its schedule and its threads were not kept waiting for a CPU.
pub fn timing_validity(
    speed: Option<f64>,
    max_lag_s: Option<f64>,
    done: Option<&Done>,
) -> (bool, Option<String>) {
    if speed.is_none() {
        return (
            false,
            Some("speed max: no schedule, so request latency is meaningless".into()),
        );
    }
    let mut why = Vec::new();
    if let Some(lag) = max_lag_s.filter(|&l| l > LAG_LIMIT_SIM_S) {
        why.push(format!(
            "the replay fell {lag:.0} simulated s behind its schedule (limit {LAG_LIMIT_SIM_S})"
        ));
    }
    if let Some(d) = done {
        if let Some(delay) = d.cpu.replay_threads_run_delay_s {
            let ran = d.cpu.replay_threads_s;
            if ran > 0.0 && delay / ran > RUN_DELAY_LIMIT {
                why.push(format!(
                    "replay threads waited for a CPU {:.0}% as long as they ran (limit {:.0}%): the machine was busy",
                    delay / ran * 100.0,
                    RUN_DELAY_LIMIT * 100.0
                ));
            }
        }
    }
    if why.is_empty() {
        (true, None)
    } else {
        (
            false,
            Some(why.join("; ") + ": wall-clock timings are not results"),
        )
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
            harness_rss_bytes: 0,
            live_bytes: live,
            requests: 0,
            lag_s: 0.0,
            usage: crate::os::Usage::default(),
            alloc_time_s: 0.0,
            touch_time_s: 0.0,
            pss_bytes: None,
            counters: Counters::default(),
        }
    }

    #[test]
    fn hourly_costs_difference_cumulative_counters_at_hour_boundaries() {
        let mut v = Vec::new();
        // Boot 10 s, then 2.5 hours; one sample every 30 simulated minutes after boot.
        for k in 0..=5u32 {
            let mut x = s(10.0 + k as f64 * 1800.0, 0, 0);
            x.usage.user_s = k as f64;
            x.usage.minor_faults = 100 * k as u64;
            x.requests = 10 * k as u64;
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
    fn lagging_or_unscheduled_replays_have_invalid_timings() {
        assert!(timing_validity(Some(60.0), Some(3.0), None).0);
        let (ok, why) = timing_validity(Some(60.0), Some(479.0), None);
        assert!(!ok && why.unwrap().contains("479"));
        assert!(!timing_validity(None, Some(0.0), None).0);
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
