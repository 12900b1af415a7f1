//! The runner's one process boundary: parent -> child is a binary **trace** on the child's stdin
//! (`workload::trace`); child -> parent is line-delimited JSON on the child's stdout, one
//! [`ChildMsg`] per line. This module owns both directions' message types.

use serde::{Deserialize, Serialize};

use crate::latency::Percentiles;
use crate::under_test::Counters;

/// One **sample** of the memory time series, taken inside the child.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sample {
    pub sim_time_s: f64,
    pub real_time_s: f64,
    pub rss_bytes: u64,
    pub rss_anon_bytes: Option<u64>,
    pub private_dirty_bytes: Option<u64>,
    pub lazyfree_bytes: Option<u64>,
    pub live_bytes: u64,
    pub requests: u64,
    pub lag_s: f64,
    pub counters: Counters,
}

/// What the child reports when the trace has ended and every thread has finished.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Done {
    pub requests: u64,
    pub collections: u64,
    pub sim_time_s: f64,
    pub real_time_s: f64,
    pub max_lag_s: f64,
    pub latency_us: Percentiles,
    pub service_us: Percentiles,
    pub call_latency_ns: Percentiles,
}

/// A line from child to parent.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChildMsg {
    /// Set up, about to replay: the harness's own RSS and the allocator's version.
    Ready {
        harness_rss_bytes: u64,
        version: String,
    },
    Sample(Sample),
    Done(Done),
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
