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

/// `runner live`: starts a real server under each allocator in turn, drives HTTP load from a
/// mix for a duration, samples its memory every second, stops it, and writes a run directory.
#[derive(Debug, Parser)]
#[command(name = "runner live", version, long_about = None)]
pub struct LiveCli {
    /// Comma list of allocators: glibc, glibc-arena2, jemalloc (Debian's libjemalloc2),
    /// mimalloc (Debian's libmimalloc2.0), ours (target/release/liblhalloc_preload.so),
    /// preload:PATH, or all.
    #[arg(long, default_value = "glibc,jemalloc,mimalloc,ours")]
    pub alloc: String,

    /// How long to load each server, e.g. 10m, 90s.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub duration: std::time::Duration,

    /// Requests per second, sent on schedule (open loop; latency from the intended send time).
    #[arg(long)]
    pub rate: Option<f64>,

    /// Connections carrying the load (with --rate or the default rate: the pool; alone:
    /// closed loop, each connection sending its next request when the previous answers).
    #[arg(long)]
    pub connections: Option<u32>,

    /// Closed loop even with the default rate (set by giving --connections without --rate).
    #[arg(skip)]
    pub closed_loop: bool,

    /// The load mix (format 1, see workloads/rails-app/load-mix.toml).
    #[arg(long, default_value = "workloads/rails-app/load-mix.toml")]
    pub mix: PathBuf,

    /// Port the server listens on (given to it as PORT); default: a free one per allocator.
    #[arg(long)]
    pub port: Option<u16>,

    /// Path asked until it answers 2xx before the load starts.
    #[arg(long, default_value = "/health")]
    pub ready_path: String,

    /// How long the server may take to answer the ready path.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub ready_timeout: std::time::Duration,

    /// How long the server may take to exit after SIGTERM before its process group is killed.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub stop_timeout: std::time::Duration,

    /// A request taking longer than this is an error.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub request_timeout: std::time::Duration,

    /// Seed of the mix's random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// An allocator setting for the server, `[ALLOC:]NAME=VALUE`; repeatable.
    #[arg(long = "alloc-env", value_name = "[ALLOC:]NAME=VALUE")]
    pub alloc_env: Vec<String>,

    /// Run directory (default: results/runs/<timestamp>-live-<server>/).
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// Do not draw charts and pages at the end of the run.
    #[arg(long)]
    pub no_report: bool,

    /// No per-allocator lines.
    #[arg(long, short)]
    pub quiet: bool,

    /// The server command and its arguments (after `--`), e.g. `workloads/rails-app/serve`.
    #[arg(last = true, required = true)]
    pub server: Vec<String>,
}

/// The rate used when neither --rate nor --connections is given (requests per second).
pub const DEFAULT_LIVE_RATE: f64 = 20.0;
/// The connection pool with a rate.
pub const DEFAULT_LIVE_CONNECTIONS: u32 = 10;
