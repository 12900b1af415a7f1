//! `summary.json`: per allocator, what its run gave (memory, costs, latency percentiles), and,
//! with repetitions, each repetition and the spread of every metric. Rewritten atomically
//! after each allocator finishes.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::record::Cell;
use crate::spread::Spread;

/// The whole `summary.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunSummary {
    pub schema_version: u32,
    /// `synthetic` (a profile generated in each child), `replay` (a trace file) or `live` (a
    /// real server under load; times are real seconds). Runs that did not say were synthetic.
    #[serde(default = "synthetic")]
    pub mode: String,
    #[serde(default)]
    pub workload: String,
    #[serde(default)]
    pub hours: f64,
    #[serde(default)]
    pub seed: u64,
    pub speed: Option<f64>,
    #[serde(default)]
    pub threads: u32,
    #[serde(default)]
    pub interrupted: bool,
    /// Schema 3: repetitions of each allocator (1 before schema 3).
    #[serde(default = "one")]
    pub repeat: u32,
    /// Schema 3: the cells that ran, in order (empty before schema 3).
    #[serde(default)]
    pub order: Vec<Cell>,
    pub allocators: Vec<AllocatorSummary>,
}

fn one() -> u32 {
    1
}

fn synthetic() -> String {
    "synthetic".into()
}

fn yes() -> bool {
    true
}

/// How an allocator's part of the run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Interrupted,
    Failed,
    Crashed,
    /// A status word this build does not know (written by a newer one).
    #[serde(other)]
    Unknown,
}

impl Status {
    /// The word used in files and tables.
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Interrupted => "interrupted",
            Status::Failed => "failed",
            Status::Crashed => "crashed",
            Status::Unknown => "unknown",
        }
    }
}

/// One allocator's entry of `summary.json`. Its figures (flattened into the entry) are those of
/// its only repetition, or with `--repeat N` (N > 1) the median of each figure over its
/// repetitions that ended ok (see [`crate::aggregate`]); `repetitions` then holds each one and
/// `spread` the median, range and confidence interval of every [`crate::Metric`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AllocatorSummary {
    pub name: String,
    pub id: String,
    /// The worst status over its repetitions.
    pub status: Status,
    pub error: Option<String>,
    #[serde(flatten)]
    pub figures: Figures,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repetitions: Vec<Repetition>,
    /// Keyed by [`crate::Metric::key`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub spread: BTreeMap<String, Spread>,
}

impl AllocatorSummary {
    /// The repetitions of this allocator: those listed, or the entry itself as repetition 1.
    pub fn repetition_list(&self) -> Vec<Repetition> {
        if self.repetitions.is_empty() {
            vec![Repetition {
                repetition: 1,
                position: None,
                status: self.status,
                error: self.error.clone(),
                figures: self.figures.clone(),
            }]
        } else {
            self.repetitions.clone()
        }
    }
}

/// One repetition of one allocator.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Repetition {
    /// 1-based.
    pub repetition: u32,
    /// Its place in the run's order (0-based), if known.
    #[serde(default)]
    pub position: Option<u32>,
    pub status: Status,
    pub error: Option<String>,
    #[serde(flatten)]
    pub figures: Figures,
}

/// What one replay (or the median of several) gave. Metrics an allocator could not produce
/// (it crashed first) are `None`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Figures {
    #[serde(default)]
    pub version: Option<String>,
    /// Simulated hours of serving replayed (boot excluded).
    #[serde(default)]
    pub sim_hours_reached: f64,
    /// Events replayed and replay threads started.
    #[serde(default)]
    pub events: Option<u64>,
    #[serde(default)]
    pub threads_started: Option<u64>,
    /// The harness's own resident memory: before the replay, and the median over the last
    /// quarter. Part of every RSS figure; left out of `fragmentation`.
    #[serde(default)]
    pub harness_rss_bytes: Option<u64>,
    #[serde(default)]
    pub harness_rss_steady_bytes: Option<u64>,
    #[serde(default)]
    pub rss_end_bytes: Option<u64>,
    #[serde(default)]
    pub rss_max_bytes: Option<u64>,
    /// Median RSS over the last quarter of the samples.
    #[serde(default)]
    pub rss_steady_bytes: Option<u64>,
    /// Least-squares slope of RSS over the second half, per simulated hour.
    #[serde(default)]
    pub rss_growth_bytes_per_hour: Option<f64>,
    #[serde(default)]
    pub live_end_bytes: Option<u64>,
    #[serde(default)]
    pub live_max_bytes: Option<u64>,
    #[serde(default)]
    pub live_steady_bytes: Option<u64>,
    /// (steady RSS - steady harness RSS) / steady live bytes.
    #[serde(default)]
    pub fragmentation: Option<f64>,
    #[serde(default)]
    pub requests: u64,
    /// Requests completed per simulated second (the arrival rate unless the replay lagged).
    #[serde(default)]
    pub throughput_rps: Option<f64>,
    #[serde(default)]
    pub max_lag_s: Option<f64>,
    #[serde(default)]
    pub real_seconds: Option<f64>,
    /// Costs that survive the clock's compression (schema 2).
    #[serde(default)]
    pub cost: Option<Cost>,
    /// Whether the wall-clock figures below mean anything; if not, why (schema 2; schema 1
    /// runs did not say and read as valid).
    #[serde(default = "yes")]
    pub timing_valid: bool,
    #[serde(default)]
    pub timing_note: Option<String>,
    /// Per request: ns inside allocator calls, and touching the memory it allocated (schema 2).
    #[serde(default)]
    pub alloc_per_request_ns: Option<Percentiles>,
    #[serde(default)]
    pub touch_per_request_ns: Option<Percentiles>,
    /// Every allocator call, ns.
    #[serde(default)]
    pub call_latency_ns: Option<Percentiles>,
    /// Request latency and service time, real µs at the run's speed.
    #[serde(default)]
    pub latency_us: Option<Percentiles>,
    #[serde(default)]
    pub service_us: Option<Percentiles>,
    /// Live runs: the server's PSS summed over its processes (cluster mode shares pages between
    /// workers, which their RSS counts once per process), median over the last quarter.
    #[serde(default)]
    pub pss_steady_bytes: Option<u64>,
    /// Live runs: what the load generator sent and got, per kind of request.
    #[serde(default)]
    pub load: Option<LoadSummary>,
}

/// The load of a live run, for one allocator (one repetition).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
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
    pub kinds: Vec<KindCount>,
    /// How the server was stopped: exit status, or killed after the stop timeout.
    pub server_stop: Option<String>,
    /// Seconds from start to the first 2xx answer of the ready URL.
    pub boot_s: Option<f64>,
}

/// Requests of one kind of a live run's mix.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KindCount {
    pub name: String,
    pub sent: u64,
    pub ok: u64,
    pub errors: u64,
    /// The first error of this kind, in words.
    pub first_error: Option<String>,
}

/// Resource costs of one allocator's child over its replay.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Cost {
    /// The child process (every thread, the allocator's own included).
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    /// The replay threads' CPU per request, µs (boot included).
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
    /// Dispatcher, sampler, parent, and the replay threads' CPU less the time inside allocator
    /// calls and touching memory; and that per real second.
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
#[serde(default)]
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

/// Percentiles of one histogram, in its unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    #[serde(default)]
    pub count: u64,
    /// Schema 2 (schema 1 has no mean: read as 0).
    #[serde(default)]
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Percentiles {
    /// The percentiles of a histogram.
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
