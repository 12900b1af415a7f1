//! The command line: what a user can ask of the runner. Without a subcommand the runner makes a
//! synthetic run (`runner --alloc ours --hours 2`); `record`, `replay` and `stats` work on
//! traces of real programs; `live` runs a real server under load.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::matrix::ShardArg;
use crate::run::SpeedArg;

/// Replays a Rails-like workload (or a trace recorded from a real program) against allocators
/// under test, one child process each, and records RSS over time, CPU and page-fault costs and
/// request latency into a run directory.
#[derive(Debug, Parser)]
#[command(
    name = "runner",
    version,
    about,
    long_about = None,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Without a subcommand: a synthetic run with the options above \
        (e.g. `runner --alloc ours --hours 2`).\n\
        Real programs: `runner record -- ruby app.rb`, then `runner stats <trace>`, \
        `runner calibrate <trace> --workload rails-api` and \
        `runner replay <trace> --alloc glibc,jemalloc`. Real servers: \
        `runner live --duration 10m -- workloads/rails-app/serve`. \
        Gating: `runner compare <run-A> <run-B>` and `runner gate`."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// What the runner does besides a synthetic run (the default).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a program under the tracer (LD_PRELOAD) and convert its malloc calls into a trace.
    Record(RecordArgs),
    /// Replay a trace against allocators under test, as a synthetic run is replayed.
    Replay(ReplayArgs),
    /// Describe a trace: sizes, lifetimes, reallocs, threads, live bytes over time.
    Stats(StatsArgs),
    /// Compare a recorded trace with a workload profile's events, side by side, with
    /// Kolmogorov-Smirnov distances for the distributions.
    Calibrate(CalibrateArgs),
    /// Start a real server under each allocator, drive HTTP load from a mix, sample its memory.
    Live(LiveArgs),
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
    /// what this machine sustains at speed max first and use 0.3 of it, since a scaled replay
    /// costs more per simulated second (the default: a fixed speed that this machine cannot
    /// sustain makes a lagging run, whose figures are not results).
    #[arg(long, default_value = "auto")]
    pub speed: SpeedArg,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Turn the GVL off (one Ruby thread at a time is the default for MRI profiles).
    #[arg(long)]
    pub no_gvl: bool,
}

/// Allocator settings and output options shared by synthetic runs and replays.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// An allocator setting for the children, `NAME=VALUE` for all allocators or
    /// `ALLOC:NAME=VALUE` for one (e.g. `glibc:MALLOC_ARENA_MAX=4`); repeatable. Every other
    /// allocator variable of your environment (MALLOC_*, GLIBC_TUNABLES, MIMALLOC_*,
    /// LHALLOC_*, LD_PRELOAD...) is removed from the children.
    #[arg(long = "alloc-env", value_name = "[ALLOC:]NAME=VALUE")]
    pub alloc_env: Vec<String>,

    /// Run directory (default: results/runs/<timestamp>-<workload or trace name>/); with
    /// several workloads or seeds, the folder that holds one run directory per pair
    /// (<workload>-seed<seed>).
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// Do not draw charts and pages at the end of the run.
    #[arg(long)]
    pub no_report: bool,

    /// No progress bar or per-allocator lines.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `runner record`.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// The trace to write (default: results/traces/<timestamp>-<program>.lhtrace).
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// Also trace processes the program forks or starts, each into a trace of its own
    /// (<out>.<pid>.lhtrace); by default only the program itself is traced.
    #[arg(long)]
    pub children: bool,

    /// A thread quiet for longer than this many microseconds gets a `Resume` event (a timed
    /// wait in the replay); shorter gaps are replayed back to back.
    #[arg(long, default_value_t = 100)]
    pub min_gap_us: u64,

    /// Keep the tracer's raw files (<out>.raw/) after converting them.
    #[arg(long)]
    pub keep_raw: bool,

    /// The tracer library (default: liblonghaul_tracer.so next to this runner, as
    /// `cargo build --release` puts it).
    #[arg(long, value_name = "PATH")]
    pub tracer: Option<PathBuf>,

    /// No progress or summary lines (the trace's path is still printed on stdout).
    #[arg(long, short)]
    pub quiet: bool,

    /// The program and its arguments, after `--`.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

/// `runner replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The trace file (written by `runner record` or the trace writer).
    pub trace: PathBuf,

    /// Comma list of allocators under test: glibc, glibc-arena2, jemalloc, mimalloc, ours,
    /// preload:PATH, or all.
    #[arg(long, default_value = "glibc,jemalloc,mimalloc,ours")]
    pub alloc: String,

    /// Recorded seconds per real second: 1 keeps the recording's timing (idle gaps are real
    /// sleeps and purge timers see real time); `max` replays without sleeping, as fast as
    /// possible (memory only; purge timers then see compressed time).
    #[arg(long, default_value = "1")]
    pub speed: SpeedArg,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// `runner stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// The trace file.
    pub trace: PathBuf,

    /// Folder for the charts and stats.json (default: <trace without extension>.stats/).
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// How many of the biggest allocations to list.
    #[arg(long, default_value_t = 10)]
    pub top: usize,

    /// Text only: no chart files.
    #[arg(long)]
    pub no_charts: bool,
}

/// `runner calibrate`.
#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// The trace file (written by `runner record` or the trace writer).
    pub trace: PathBuf,

    /// Workload profile to compare with: a name from workloads/ (rails-api, rails-html,
    /// sidekiq) or a path.
    #[arg(long)]
    pub workload: String,

    /// Simulated hours of the profile's serving (after its boot) to generate; default: the
    /// trace's duration less the profile's boot, at least one minute.
    #[arg(long)]
    pub hours: Option<f64>,

    /// Seed of the profile's random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Print Markdown tables instead of aligned text.
    #[arg(long)]
    pub markdown: bool,

    /// Also write both sides' cumulative distributions to this CSV file (distribution, value,
    /// trace_cdf, profile_cdf; one row per value either side has), to see where they part.
    #[arg(long, value_name = "CSV")]
    pub cdf: Option<PathBuf>,

    /// Also print the trace's malloc, calloc and aligned sizes as a profile's measured size
    /// table (`[mix] table`): its N most frequent sizes exactly, the rest in power-of-two ranges.
    #[arg(long, value_name = "N")]
    pub size_table: Option<usize>,

    /// Compare a damaged trace's intact part instead of stopping with an error.
    #[arg(long)]
    pub partial: bool,
}

/// `runner live`: starts a real server under each allocator in turn, drives HTTP load from a
/// mix for a duration, samples its memory every second, stops it, and writes a run directory.
#[derive(Debug, clap::Args)]
pub struct LiveArgs {
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

    /// Also record the server's malloc calls with the tracer into this trace file, under the
    /// same load (one allocator only; the tracer is preloaded before it). Its memory figures
    /// then include the tracer's buffers.
    #[arg(long, value_name = "TRACE")]
    pub record: Option<PathBuf>,

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
