//! The runner's one process boundary. Parent -> child: one line of JSON on the child's stdin,
//! the [`ChildPlan`], then nothing until the parent closes stdin, which asks the child to stop
//! early (Ctrl-C). Child -> parent: line-delimited JSON on the child's stdout, one [`ChildMsg`]
//! per line. This module owns both directions' message types.

use std::path::PathBuf;

use rundir::Percentiles;
use serde::{Deserialize, Serialize};

use crate::os::Usage;
use crate::replay::Speed;
use crate::under_test::Counters;

/// Where a child's events come from.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourcePlan {
    /// Generate the workload inside the child (no events cross the process boundary).
    Synthetic {
        profile: Box<workload::Profile>,
        seed: u64,
        hours: f64,
    },
    /// Read a trace file (any version the workload crate reads).
    Trace { path: PathBuf },
}

/// Which in-process allocator a child calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildAlloc {
    /// The C library's malloc (glibc, or what LD_PRELOAD put in front of it).
    Libc,
    Jemalloc,
    Mimalloc,
    Ours,
}

/// Everything a child needs, sent by the parent as the first line on its stdin.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChildPlan {
    pub alloc: ChildAlloc,
    pub speed: Speed,
    pub gvl: bool,
    pub source: SourcePlan,
    /// Where the histograms go, and the file-name id and repetition (1-based) they use.
    pub out_dir: PathBuf,
    pub id: String,
    #[serde(default = "first_repetition")]
    pub repetition: u32,
    /// Our allocator's purge delay for this child, ns (already scaled by the speed), when the
    /// allocator under test is ours and the user did not set it.
    pub ours_purge_delay_ns: Option<u64>,
    /// Stop after this many simulated seconds (speed calibration), or run the whole source.
    pub stop_at_sim_s: Option<f64>,
}

fn first_repetition() -> u32 {
    1
}

/// One **sample** of the memory time series, taken inside the child (the parent writes it to
/// `samples.csv` as a `rundir::Sample`, see `results::sample_row`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sample {
    pub sim_time_s: f64,
    pub real_time_s: f64,
    pub rss_bytes: u64,
    pub rss_anon_bytes: Option<u64>,
    pub private_dirty_bytes: Option<u64>,
    pub lazyfree_bytes: Option<u64>,
    /// The harness's own resident memory (its heap and block table), part of `rss_bytes`.
    pub harness_rss_bytes: u64,
    pub live_bytes: u64,
    pub requests: u64,
    /// The worst lag (simulated seconds behind schedule) any replay thread woke up with since
    /// the previous sample.
    pub lag_s: f64,
    /// The child's resource use since the replay started (cumulative).
    pub usage: Usage,
    /// Time spent inside allocator calls and touching memory since the replay started, s.
    pub alloc_time_s: f64,
    pub touch_time_s: f64,
    /// Live runs: PSS summed over the server's processes.
    #[serde(default)]
    pub pss_bytes: Option<u64>,
    pub counters: Counters,
}

/// CPU use of the parts of a child, seconds, over the replay.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct CpuSplit {
    /// The dispatcher thread (workload generation or trace decoding, routing).
    pub dispatcher_s: f64,
    /// The sampler thread.
    pub sampler_s: f64,
    /// The replay threads together (allocator calls, touching memory and replay bookkeeping).
    pub replay_threads_s: f64,
    /// Time the replay threads were runnable but waited for a CPU (scheduler run delay), s:
    /// what other work on the machine (or the harness's own threads) took from them.
    pub replay_threads_run_delay_s: Option<f64>,
}

/// What the child reports when the trace has ended and every thread has finished.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Done {
    pub events: u64,
    pub requests: u64,
    pub collections: u64,
    pub sim_time_s: f64,
    pub real_time_s: f64,
    pub max_lag_s: f64,
    /// The child process's resource use over the replay.
    pub usage: Usage,
    pub cpu: CpuSplit,
    /// Total time inside allocator calls, and touching allocated memory, s.
    pub alloc_time_s: f64,
    pub touch_time_s: f64,
    /// Replay threads started (one per trace thread that made an event).
    pub threads_started: u64,
    pub latency_us: Percentiles,
    pub service_us: Percentiles,
    pub call_latency_ns: Percentiles,
    pub alloc_per_request_ns: Percentiles,
    pub touch_per_request_ns: Percentiles,
    /// Why the event stream ended early (a corrupt or truncated trace), if it did.
    pub stream_error: Option<String>,
}

/// A line from child to parent.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChildMsg {
    /// Set up, about to replay: the harness's own RSS and the allocator's version.
    Ready {
        harness_rss_bytes: u64,
        version: String,
        /// What the child set for the allocator, in words (purge delays actually in force).
        settings_note: Option<String>,
    },
    Sample(Box<Sample>),
    Done(Box<Done>),
    /// The child failed; it exits non-zero after this line.
    Error {
        message: String,
    },
}

impl ChildMsg {
    /// Writes the message as one line on stdout and flushes it.
    pub fn send(&self) {
        use std::io::Write;
        if let Ok(line) = serde_json::to_string(self) {
            let mut out = std::io::stdout().lock();
            // A parent that went away cannot be told anything: ignore write errors.
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}
