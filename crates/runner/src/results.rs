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

pub const SCHEMA_VERSION: u32 = 1;

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

const CSV_HEADER: &str = "allocator,sim_time_s,real_time_s,rss_bytes,rss_anon_bytes,private_dirty_bytes,lazyfree_bytes,live_bytes,requests,lag_s,alloc_allocated_bytes,alloc_active_bytes,alloc_resident_bytes,alloc_mapped_bytes";

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
        writeln!(
            self.out,
            "{allocator},{:.3},{:.3},{},{},{},{},{},{},{:.3},{},{},{},{}",
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
    /// Environment given to its child (decay settings, LD_PRELOAD, MALLOC_ARENA_MAX).
    pub settings: BTreeMap<String, String>,
    pub note: Option<String>,
}

/// The workload part of `run.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkloadRecord {
    pub name: String,
    pub path: String,
    pub profile: workload::Profile,
}

/// `run.json`: everything needed to know what was run, where and how.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema_version: u32,
    pub command: Vec<String>,
    pub commit: Option<String>,
    pub commit_dirty: Option<bool>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub machine: Machine,
    pub workload: WorkloadRecord,
    pub hours: f64,
    pub seed: u64,
    pub speed: f64,
    pub threads: u32,
    pub gvl: bool,
    pub allocators: Vec<AllocatorRecord>,
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
