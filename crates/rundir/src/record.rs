//! `run.json`: what was run, where and how (command, commit, machine, workload, allocators and
//! their settings, seed, speed, repetitions, shard). Written by the runner at the start of a run
//! and again as it goes; read leniently (a field an older schema lacks reads as its default).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The whole of `run.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunRecord {
    pub schema_version: u32,
    /// `synthetic`, `replay` or `live` (see `RunSummary::mode`); empty in runs that did not say
    /// (they were synthetic).
    pub mode: String,
    pub command: Vec<String>,
    pub commit: Option<String>,
    pub commit_dirty: Option<bool>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub machine: Machine,
    pub workload: WorkloadRecord,
    pub hours: f64,
    pub seed: u64,
    /// Simulated seconds per real second; `null` at `--speed max`.
    pub speed: Option<f64>,
    /// `fixed`, `max` or `auto` (then see `speed_calibration`).
    pub speed_mode: String,
    pub speed_calibration: Option<SpeedCalibration>,
    pub threads: u32,
    pub gvl: bool,
    pub allocators: Vec<AllocatorRecord>,
    /// Allocator variables of the runner's environment that no child got.
    pub scrubbed_env: BTreeMap<String, String>,
    /// The `--alloc-env` entries, as given.
    pub alloc_env: Vec<String>,
    /// Load averages (1, 5, 15 min) when the run started and ended.
    pub load_start: Option<[f64; 3]>,
    pub load_end: Option<[f64; 3]>,
    pub interrupted: bool,
    /// How latency is measured, in words, so a reader of the file alone knows.
    pub latency_note: String,
    /// Schema 3: repetitions of each allocator (`--repeat`, 1 before schema 3).
    #[serde(default = "one")]
    pub repeat: u32,
    /// Schema 3: the cells of the run (allocator id, repetition) in the order they ran (or, in a
    /// run still going, will run). Empty before schema 3 (then: `allocators` in order, once).
    pub order: Vec<Cell>,
    /// Schema 3: the part of a matrix this run is (`--shard i/n`), if it is one.
    pub shard: Option<Shard>,
    /// Schema 3: for a run merged from shards, each shard's own context.
    pub shards: Vec<ShardRecord>,
    /// Schema 3: how the runner was built (`debug` or `release`): the harness's own CPU per
    /// request depends on it, so a gate compares only runs of the same build.
    pub build: Option<String>,
    /// Schema 3: a test hook that changed what was measured (e.g. a memory ballast injected
    /// into one allocator's child to test the gate), in words. `null` for real measurements.
    pub test_hook: Option<String>,
}

fn one() -> u32 {
    1
}

/// Facts about the machine a run happened on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Machine {
    pub hostname: Option<String>,
    pub cpu_model: Option<String>,
    pub cores: usize,
    pub memory_bytes: Option<u64>,
    pub kernel: Option<String>,
    pub glibc: String,
    pub thp: Option<String>,
}

impl Machine {
    /// How `other` differs from this machine in what moves the figures of a run: CPU model,
    /// cores, transparent huge pages, glibc. Empty when they are the same kind of machine
    /// (hostnames, memory size and kernel builds may differ).
    pub fn kind_differences(&self, other: &Machine) -> Vec<String> {
        let mut out = Vec::new();
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
        if self.cpu_model != other.cpu_model {
            out.push(format!(
                "CPU {} vs {}",
                show(&self.cpu_model),
                show(&other.cpu_model)
            ));
        }
        if self.cores != other.cores {
            out.push(format!("{} vs {} cores", self.cores, other.cores));
        }
        if self.thp != other.thp {
            out.push(format!(
                "transparent huge pages {} vs {}",
                show(&self.thp),
                show(&other.thp)
            ));
        }
        if self.glibc != other.glibc {
            out.push(format!("glibc {} vs {}", self.glibc, other.glibc));
        }
        out
    }

    /// One line: `<cpu>, <n> cores`.
    pub fn describe(&self) -> String {
        format!(
            "{}, {} cores",
            self.cpu_model.as_deref().unwrap_or("unknown CPU"),
            self.cores
        )
    }
}

/// The workload part of `run.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkloadRecord {
    pub name: String,
    pub path: String,
    /// `profile` (synthetic, generated in each child) or `trace` (a trace file replayed).
    pub kind: String,
    /// The parsed profile (the workload crate's `Profile`), for `profile`.
    pub profile: Option<serde_json::Value>,
    /// The trace header's metadata, for `trace`.
    pub trace: Option<serde_json::Value>,
    /// The server and its load, for `live` (the runner's `LiveRecord`).
    pub live: Option<serde_json::Value>,
}

/// One allocator's entry in `run.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AllocatorRecord {
    pub name: String,
    pub id: String,
    pub version: Option<String>,
    /// Environment given to its child; every other allocator variable was removed.
    pub settings: BTreeMap<String, String>,
    /// Our allocator's purge delay set through its API, ns.
    pub ours_purge_delay_ns: Option<u64>,
    /// What was scaled by the speed and how faithful that is, in words.
    pub note: Option<String>,
    /// The settings the allocator itself reports in force, in words.
    pub in_force: Option<String>,
}

/// How `--speed auto` chose the speed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SpeedCalibration {
    /// Simulated seconds per real second each allocator sustained at speed max.
    pub sustained: BTreeMap<String, f64>,
    /// The share of the slowest one taken as the run's speed.
    pub margin: f64,
    pub chosen: f64,
    /// Simulated seconds each calibration replayed.
    pub sim_s: f64,
}

/// One cell of a run: an allocator (its id) and a repetition (1-based).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cell {
    pub allocator: String,
    pub repetition: u32,
}

/// `--shard i/n`: this run is part `index` (1-based) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The context of one shard inside a merged run's `run.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ShardRecord {
    /// The shard's run directory as given to the merge.
    pub dir: String,
    pub shard: Option<Shard>,
    pub command: Vec<String>,
    pub commit: Option<String>,
    pub machine: Machine,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub load_start: Option<[f64; 3]>,
    pub load_end: Option<[f64; 3]>,
    /// The cells this shard ran.
    pub cells: Vec<Cell>,
}
