//! The run directory (see `docs/results-format.md`, the contract with report and gate):
//! creating it, writing files atomically, appending samples, and the run record.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::os::Machine;
use crate::protocol::Sample;

/// Version 2: per-sample harness RSS and resource use, per-request allocator and touch time,
/// CPU and fault costs, latency validity (docs/results-format.md).
pub const SCHEMA_VERSION: u32 = 2;

/// Writes `bytes` to `path` through a temporary file and a rename: readers never see half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().map_or("", |e| e.to_str().unwrap_or(""))
    ));
    let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// Serialises `value` as pretty JSON into `path`, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Creates the run directory (and its parents) and checks that it is writable and empty.
pub fn create_run_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create the run directory {} (choose a writable place with --out)",
            dir.display()
        )
    })?;
    let nonempty = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the run directory {}", dir.display()))?
        .next()
        .is_some();
    if nonempty {
        anyhow::bail!(
            "the run directory {} is not empty: give --out a new or empty directory",
            dir.display()
        );
    }
    let probe = dir.join(".write-test");
    File::create(&probe).with_context(|| {
        format!(
            "the run directory {} is not writable (choose another with --out)",
            dir.display()
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The default run directory: `results/runs/<YYYYmmdd-HHMMSS>-<workload>`.
pub fn default_run_dir(root: &Path, workload: &str) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    root.join("results")
        .join("runs")
        .join(format!("{stamp}-{workload}"))
}

/// `samples.csv`, appended to and flushed per line so an interrupted run keeps every sample.
pub struct SamplesCsv {
    out: BufWriter<File>,
    path: PathBuf,
}

const CSV_HEADER: &str = "allocator,sim_time_s,real_time_s,rss_bytes,rss_anon_bytes,private_dirty_bytes,lazyfree_bytes,live_bytes,requests,lag_s,alloc_allocated_bytes,alloc_active_bytes,alloc_resident_bytes,alloc_mapped_bytes,harness_rss_bytes,cpu_user_s,cpu_sys_s,minor_faults,major_faults,voluntary_switches,involuntary_switches,alloc_time_s,touch_time_s,pss_bytes";

fn opt(v: Option<u64>) -> String {
    v.map_or_else(String::new, |v| v.to_string())
}

impl SamplesCsv {
    pub fn create(path: &Path) -> anyhow::Result<SamplesCsv> {
        let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut s = SamplesCsv {
            out: BufWriter::new(f),
            path: path.to_path_buf(),
        };
        writeln!(s.out, "{CSV_HEADER}")?;
        s.out.flush()?;
        Ok(s)
    }

    pub fn append(&mut self, allocator: &str, s: &Sample) -> anyhow::Result<()> {
        let c = &s.counters;
        let u = &s.usage;
        writeln!(
            self.out,
            "{allocator},{:.3},{:.3},{},{},{},{},{},{},{:.3},{},{},{},{},{},{:.3},{:.3},{},{},{},{},{:.6},{:.6},{}",
            s.sim_time_s,
            s.real_time_s,
            s.rss_bytes,
            opt(s.rss_anon_bytes),
            opt(s.private_dirty_bytes),
            opt(s.lazyfree_bytes),
            s.live_bytes,
            s.requests,
            s.lag_s,
            opt(c.allocated),
            opt(c.active),
            opt(c.resident),
            opt(c.mapped),
            s.harness_rss_bytes,
            u.user_s,
            u.sys_s,
            u.minor_faults,
            u.major_faults,
            u.voluntary_switches,
            u.involuntary_switches,
            s.alloc_time_s,
            s.touch_time_s,
            opt(s.pss_bytes),
        )
        .and_then(|_| self.out.flush())
        .with_context(|| format!("appending to {}", self.path.display()))
    }
}

/// One allocator's entry in `run.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AllocatorRecord {
    pub name: String,
    pub id: String,
    pub version: Option<String>,
    /// Environment given to its child (decay settings, LD_PRELOAD, MALLOC_ARENA_MAX, and any
    /// `--alloc-env`); every other allocator variable was removed.
    pub settings: BTreeMap<String, String>,
    /// Our allocator's purge delay set through its API, ns.
    pub ours_purge_delay_ns: Option<u64>,
    /// What was scaled by the speed and how faithful that is, in words.
    pub note: Option<String>,
    /// The settings the allocator itself reports in force, in words.
    pub in_force: Option<String>,
}

/// How `--speed auto` chose the speed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SpeedCalibration {
    /// Simulated seconds per real second each allocator sustained at speed max.
    pub sustained: BTreeMap<String, f64>,
    /// The share of the slowest one taken as the run's speed.
    pub margin: f64,
    pub chosen: f64,
    /// Simulated seconds each calibration replayed.
    pub sim_s: f64,
}

/// The workload part of `run.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkloadRecord {
    pub name: String,
    pub path: String,
    /// `profile` (synthetic, generated in each child) or `trace` (a trace file replayed).
    pub kind: String,
    pub profile: Option<workload::Profile>,
    /// The trace header's metadata, for `trace`.
    pub trace: Option<workload::trace::TraceMeta>,
    /// The server and its load, for `live`.
    #[serde(default)]
    pub live: Option<LiveRecord>,
}

/// What a live run started and sent.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LiveRecord {
    pub server_command: Vec<String>,
    pub mix: String,
    pub pacing: crate::http_load::Pacing,
    pub connections: u32,
    pub duration_s: f64,
    pub ready_path: String,
    /// Seed of the mix's random choices.
    pub seed: u64,
}

/// `run.json`: everything needed to know what was run, where and how.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema_version: u32,
    /// `synthetic`, `replay` or `live` (see `RunSummary::mode`).
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
    /// Allocator variables of the runner's environment that no child got (each child's
    /// environment is scrubbed; pass one with `--alloc-env` to use it).
    pub scrubbed_env: BTreeMap<String, String>,
    /// The `--alloc-env` entries, as given.
    pub alloc_env: Vec<String>,
    /// Load averages (1, 5, 15 min) when the run started and ended.
    pub load_start: Option<[f64; 3]>,
    pub load_end: Option<[f64; 3]>,
    pub interrupted: bool,
    /// How latency is measured, in words, so a reader of the file alone knows.
    pub latency_note: String,
}

/// The current commit and whether the work tree has changes, if this is a git checkout.
pub fn git_commit(dir: &Path) -> (Option<String>, Option<bool>) {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = run(&["rev-parse", "HEAD"]);
    let dirty = commit
        .as_ref()
        .and_then(|_| run(&["status", "--porcelain", "--untracked-files=no"]))
        .map(|s| !s.is_empty());
    (commit, dirty)
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
