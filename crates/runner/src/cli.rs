//! The command line: what a user can ask of the runner.

use std::path::PathBuf;

use clap::Parser;

use crate::run::SpeedArg;

/// Replays a Rails-like workload against allocators under test, one child process each, and
/// records RSS over simulated time, CPU and page-fault costs and request latency into a run
/// directory.
#[derive(Debug, Parser)]
#[command(name = "runner", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub run: RunArgs,
}

/// Options of a synthetic run.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Comma list of allocators under test: glibc, glibc-arena2, jemalloc, mimalloc, ours,
    /// preload:PATH (any malloc .so via LD_PRELOAD), or all.
    #[arg(long, default_value = "glibc,jemalloc,mimalloc,ours")]
    pub alloc: String,

    /// Simulated hours of serving (after boot).
    #[arg(long, default_value_t = 2.0)]
    pub hours: f64,

    /// Workload profile: a name from workloads/ (rails-api, rails-html, sidekiq) or a path.
    #[arg(long, default_value = "rails-api")]
    pub workload: String,

    /// Request threads (overrides the profile's process.threads).
    #[arg(long)]
    pub threads: Option<u32>,

    /// Seed of the workload's random choices: same seed, same event stream.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Simulated seconds per real second (idle gaps and allocator purge timers are scaled);
    /// `max`: no sleeps, as fast as possible (memory only, timings invalid); `auto`: measure
    /// what this machine sustains first and use half of it.
    #[arg(long, default_value = "60")]
    pub speed: SpeedArg,

    /// An allocator setting for the children, `NAME=VALUE` for all allocators or
    /// `ALLOC:NAME=VALUE` for one (e.g. `glibc:MALLOC_ARENA_MAX=4`); repeatable. Every other
    /// allocator variable of your environment (MALLOC_*, GLIBC_TUNABLES, MIMALLOC_*,
    /// LHALLOC_*, LD_PRELOAD...) is removed from the children.
    #[arg(long = "alloc-env", value_name = "[ALLOC:]NAME=VALUE")]
    pub alloc_env: Vec<String>,

    /// Run directory (default: results/runs/<timestamp>-<workload>/).
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// Turn the GVL off (one Ruby thread at a time is the default for MRI profiles).
    #[arg(long)]
    pub no_gvl: bool,

    /// Do not draw charts and pages at the end of the run.
    #[arg(long)]
    pub no_report: bool,

    /// No progress bar or per-allocator lines.
    #[arg(long, short)]
    pub quiet: bool,
}
