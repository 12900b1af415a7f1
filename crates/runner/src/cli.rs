//! The command line: what a user can ask of the runner.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::matrix::ShardArg;
use crate::run::SpeedArg;

/// Replays a Rails-like workload against allocators under test, one child process each, and
/// records RSS over simulated time, CPU and page-fault costs and request latency into a run
/// directory.
#[derive(Debug, Parser)]
#[command(name = "runner", version, about, long_about = None)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub run: RunArgs,
}

/// What the runner does besides a run (the default).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compare two run directories: per allocator and metric, A, B, change, noise band and
    /// verdict (text on stdout; Markdown and an overlay chart written to --out).
    Compare(crate::compare_cmd::CompareArgs),
    /// Run the regression gate: a short fixed run compared with the committed baseline.
    /// Exit 0 pass, 1 regression, 2 missing or mismatched baseline or other setup error.
    Gate(crate::gate::GateArgs),
}

/// Options of a synthetic run.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Comma list of allocators under test: glibc, glibc-arena2, jemalloc, mimalloc, ours,
    /// preload:PATH (any malloc .so via LD_PRELOAD), or all.
    #[arg(long, default_value = "glibc,jemalloc,mimalloc,ours")]
    pub alloc: String,

    /// Simulated hours of serving (after boot).
    #[arg(long, default_value_t = 2.0)]
    pub hours: f64,

    /// Workload profile: a name from workloads/ (rails-api, rails-html, sidekiq) or a path; a
    /// comma list makes a matrix (one run directory per workload and seed under --out).
    #[arg(long, default_value = "rails-api")]
    pub workload: String,

    /// Request threads (overrides the profile's process.threads).
    #[arg(long)]
    pub threads: Option<u32>,

    /// Seed of the workload's random choices: same seed, same event stream. A comma list makes
    /// a matrix (one run directory per workload and seed under --out).
    #[arg(long, default_value = "1", value_delimiter = ',')]
    pub seed: Vec<u64>,

    /// Run each allocator N times, interleaving the order (a b c, b c a, c a b, ...);
    /// summary.json keeps every repetition and gives each metric's median and spread.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeat: u32,

    /// Run only the i-th of n parts of the matrix (workloads x seeds x allocators x
    /// repetitions), e.g. 2/4; merge the parts with `report merge`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<ShardArg>,

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

    /// Run directory (default: results/runs/<timestamp>-<workload>/); with several workloads
    /// or seeds, the folder that holds one run directory per pair (<workload>-seed<seed>).
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
