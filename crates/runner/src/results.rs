//! The runner's side of the run directory, whose format the `rundir` crate owns
//! (`docs/results-format.md`): where a run goes by default, the context only the runner knows
//! (commit, time, build), and turning a child's sample message into a `samples.csv` line.

use std::path::{Path, PathBuf};

use crate::protocol::Sample;

/// The default run directory: `results/runs/<YYYYmmdd-HHMMSS>-<workload>`.
pub fn default_run_dir(root: &Path, workload: &str) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    root.join("results")
        .join("runs")
        .join(format!("{stamp}-{workload}"))
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

/// How this runner was built: the harness's own CPU per request depends on it.
pub fn build_profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// A child's sample as a line of `samples.csv` for allocator `id`, repetition `repetition`.
pub fn sample_row(id: &str, repetition: u32, s: &Sample) -> rundir::Sample {
    let c = &s.counters;
    let u = &s.usage;
    rundir::Sample {
        allocator: id.to_string(),
        repetition,
        sim_time_s: s.sim_time_s,
        real_time_s: Some(s.real_time_s),
        rss_bytes: s.rss_bytes,
        rss_anon_bytes: s.rss_anon_bytes,
        private_dirty_bytes: s.private_dirty_bytes,
        lazyfree_bytes: s.lazyfree_bytes,
        live_bytes: s.live_bytes,
        requests: Some(s.requests),
        lag_s: Some(s.lag_s),
        alloc_allocated_bytes: c.allocated,
        alloc_active_bytes: c.active,
        alloc_resident_bytes: c.resident,
        alloc_mapped_bytes: c.mapped,
        harness_rss_bytes: Some(s.harness_rss_bytes),
        cpu_user_s: Some(u.user_s),
        cpu_sys_s: Some(u.sys_s),
        minor_faults: Some(u.minor_faults),
        major_faults: Some(u.major_faults),
        voluntary_switches: Some(u.voluntary_switches),
        involuntary_switches: Some(u.involuntary_switches),
        alloc_time_s: Some(s.alloc_time_s),
        touch_time_s: Some(s.touch_time_s),
        pss_bytes: s.pss_bytes,
    }
}
