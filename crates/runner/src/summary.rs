//! Turning what one child reported into one repetition's figures for `summary.json` (the
//! types and the definitions of steady RSS, growth and costs per hour are the `rundir` crate's):
//! costs from the child's CPU split, fragmentation, throughput, and whether its wall-clock
//! figures mean anything.

use rundir::memory::{hourly_costs, memory_metrics};
use rundir::{Cost, Figures, Repetition, Sample, Status};

use crate::protocol::Done;

/// A replay that fell further behind its schedule than this (simulated seconds) did not run
/// the workload as scheduled: its purge timers saw compressed time and its timings include
/// waiting for the machine. Its wall-clock figures are marked invalid.
pub const LAG_LIMIT_SIM_S: f64 = 10.0;
/// Replay threads that waited for a CPU longer than this share of the time they ran were
/// slowed by other work on the machine (or by the harness's own threads): their wall-clock
/// figures are marked invalid. A quiet 2-core VM measured 1-3% (see the runner's README).
pub const RUN_DELAY_LIMIT: f64 = 0.10;

/// What a child left behind, as the parent saw it.
pub struct ChildOutcome {
    pub status: Status,
    pub error: Option<String>,
    pub version: Option<String>,
    pub harness_rss: Option<u64>,
    /// Its samples, as written to `samples.csv`.
    pub samples: Vec<Sample>,
    pub done: Option<Done>,
    /// The parent's CPU while the child ran, s.
    pub parent_cpu_s: f64,
}

/// Builds one repetition (`repetition`, run at `position` in the run's order) of an allocator
/// from what its child sent; `speed` is `None` at speed max.
pub fn build_repetition(
    repetition: u32,
    position: u32,
    o: &ChildOutcome,
    boot_s: f64,
    speed: Option<f64>,
) -> Repetition {
    let samples = &o.samples;
    let done = o.done.as_ref();
    let m = memory_metrics(samples);
    let sim_s = done
        .map(|d| d.sim_time_s)
        .or_else(|| samples.last().map(|s| s.sim_time_s))
        .unwrap_or(0.0);
    let requests = done
        .map(|d| d.requests)
        .or_else(|| samples.last().and_then(|s| s.requests))
        .unwrap_or(0);
    let serving_s = (sim_s - boot_s).max(0.0);
    let max_lag_s = done
        .map(|d| d.max_lag_s)
        .or_else(|| samples.iter().filter_map(|s| s.lag_s).reduce(f64::max));
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
    Repetition {
        repetition,
        position: Some(position),
        status: o.status,
        error: o.error.clone(),
        figures: Figures {
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
            fragmentation: m.fragmentation(),
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
        },
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
                    "replay threads waited for a CPU {:.0}% as long as they ran (limit {:.0}%): other work, or the harness's own threads, kept the cores busy",
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

    #[test]
    fn lagging_or_unscheduled_replays_have_invalid_timings() {
        assert!(timing_validity(Some(60.0), Some(3.0), None).0);
        let (ok, why) = timing_validity(Some(60.0), Some(479.0), None);
        assert!(!ok && why.unwrap().contains("479"));
        assert!(!timing_validity(None, Some(0.0), None).0);
    }
}
