//! `runner`: replays a workload or a recorded trace against allocators under test, one child
//! process each, and writes a run directory (see `docs/results-format.md`); records traces of
//! real programs and describes traces (see `docs/trace-format.md`). This file is the one exit
//! point: it prints the error chain to stderr and picks the exit code.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

use runner::alloc_spec::{AllocEnv, AllocSpec};
use runner::harness_heap::HarnessHeap;
use runner::{
    calibrate, child, cli, compare_cmd, gate, protocol, record, results, run, run_matrix,
    trace_stats,
};

/// The runner's own allocations (parent and children) never go through an allocator under
/// test: see `harness_heap`.
#[global_allocator]
static HARNESS_HEAP: HarnessHeap = HarnessHeap::new();

/// Exit codes: 0 all allocators ran; 1 error (for `stats`: the trace is damaged, the figures
/// cover its intact part); 2 bad usage (clap); 3 an allocator crashed or failed, or the trace is
/// damaged and was replayed up to the damage (the run directory is complete otherwise);
/// 130 interrupted. `gate`: 0 pass, 1 regression, 2 setup error (see `gate::GateOutcome`).
const EXIT_ERROR: u8 = 1;
const EXIT_ALLOCATOR_FAILED: u8 = 3;
const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = if args.get(1).map(String::as_str) == Some("__child") {
        child_main().map(|()| ExitCode::SUCCESS)
    } else {
        parent_main(args)
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn child_main() -> anyhow::Result<()> {
    let r = child::main();
    if let Err(e) = &r {
        protocol::ChildMsg::Error {
            message: format!("{e:#}"),
        }
        .send();
    }
    r
}

fn parent_main(args: Vec<String>) -> anyhow::Result<ExitCode> {
    let parsed = match cli::Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            // --help and --version are not errors; clap prints both kinds itself.
            let _ = e.print();
            return Ok(ExitCode::from(e.exit_code() as u8));
        }
    };
    match parsed.command {
        None => run_main(&parsed.run, args),
        Some(cli::Command::Record(a)) => record_main(&a),
        Some(cli::Command::Replay(a)) => replay_main(a, args),
        Some(cli::Command::Stats(a)) => stats_main(&a),
        Some(cli::Command::Calibrate(a)) => {
            calibrate::main(&a, &run::repo_dir().join("workloads"))?;
            Ok(ExitCode::SUCCESS)
        }
        Some(cli::Command::Live(a)) => live_main(a, args),
        Some(cli::Command::Compare(c)) => compare_cmd::compare(&c).map(|_| ExitCode::SUCCESS),
        Some(cli::Command::Gate(g)) => {
            let interrupted = on_ctrl_c("finishing the current allocator's samples")?;
            let outcome = gate::gate(&g, args, &interrupted);
            if let gate::GateOutcome::Setup(e) = &outcome {
                eprintln!("error: {e:#}");
            }
            Ok(ExitCode::from(outcome.code()))
        }
    }
}

fn on_ctrl_c(note: &'static str) -> anyhow::Result<Arc<AtomicBool>> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    let presses = AtomicUsize::new(0);
    ctrlc::set_handler(move || {
        if presses.fetch_add(1, Ordering::SeqCst) == 0 {
            flag.store(true, Ordering::SeqCst);
            eprintln!("\ninterrupted: {note} (Ctrl-C again to abandon)");
        } else {
            std::process::exit(EXIT_INTERRUPTED.into());
        }
    })
    .context("installing the Ctrl-C handler")?;
    Ok(interrupted)
}

/// The default command: a synthetic run, or a matrix of them (see `run_matrix`).
fn run_main(run: &cli::RunArgs, args: Vec<String>) -> anyhow::Result<ExitCode> {
    let interrupted = on_ctrl_c("finishing the current allocator's samples and writing results")?;
    let outcome = match run_matrix::run_matrix(run, args, &interrupted) {
        Ok(o) => o,
        // Ctrl-C before any allocator ran (e.g. while `--speed auto` measures): nothing to
        // keep, but the exit code still says "interrupted".
        Err(e) if interrupted.load(Ordering::SeqCst) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(EXIT_INTERRUPTED));
        }
        Err(e) => return Err(e),
    };
    for dir in &outcome.dirs {
        println!("{}", dir.display());
    }
    Ok(exit_code(
        outcome.interrupted,
        &outcome.failed,
        &outcome.timing_invalid,
        run.output.quiet,
    ))
}

/// The exit code of a run, saying which allocators failed and whose timings are not results.
fn exit_code(
    interrupted: bool,
    failed: &[String],
    timing_invalid: &[String],
    quiet: bool,
) -> ExitCode {
    if interrupted {
        return ExitCode::from(EXIT_INTERRUPTED);
    }
    if !failed.is_empty() {
        eprintln!("error: allocator(s) did not finish: {}", failed.join(", "));
        return ExitCode::from(EXIT_ALLOCATOR_FAILED);
    }
    if !timing_invalid.is_empty() && !quiet {
        eprintln!(
            "note: timings invalid (not results) for: {} (memory and CPU figures stand)",
            timing_invalid.join(", ")
        );
    }
    ExitCode::SUCCESS
}

fn speed_text(s: run::SpeedArg) -> String {
    match s {
        run::SpeedArg::Fixed(s) => s.to_string(),
        run::SpeedArg::Max => "max".into(),
        run::SpeedArg::Auto => "auto".into(),
    }
}

/// `runner replay`: a run whose source is a trace file.
fn replay_main(a: cli::ReplayArgs, args: Vec<String>) -> anyhow::Result<ExitCode> {
    let file = std::fs::File::open(&a.trace).with_context(|| {
        format!(
            "cannot open the trace {} (give a file written by `runner record`)",
            a.trace.display()
        )
    })?;
    let reader = workload::trace::TraceReader::new(std::io::BufReader::new(file))
        .with_context(|| format!("trace {}", a.trace.display()))?;
    let meta = reader.header().meta.clone();
    let describe = format!(
        "trace {} ({} events, {} threads) at speed {}",
        a.trace.display(),
        meta.events.map_or_else(|| "?".into(), |e| e.to_string()),
        meta.threads + 1,
        speed_text(a.speed)
    );
    let source = run::RunSource::Trace {
        path: a.trace.clone(),
        meta,
    };
    let repo = run::repo_dir();
    execute(&a.alloc, a.speed, &a.output, source, describe, args, repo)
}

/// Runs `source` under each allocator of `alloc`, draws the report, picks the exit code.
fn execute(
    alloc: &str,
    speed: run::SpeedArg,
    output: &cli::OutputArgs,
    source: run::RunSource,
    describe: String,
    args: Vec<String>,
    repo: std::path::PathBuf,
) -> anyhow::Result<ExitCode> {
    let allocators = AllocSpec::parse_list(alloc)?;
    let alloc_env = output
        .alloc_env
        .iter()
        .map(|s| AllocEnv::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let out_dir = output
        .out
        .clone()
        .unwrap_or_else(|| results::default_run_dir(&repo, &source.name()));
    let interrupted = on_ctrl_c("finishing the current allocator's samples and writing results")?;
    if !output.quiet {
        eprintln!(
            "run: {describe}, {} allocator(s) -> {}",
            allocators.len(),
            out_dir.display()
        );
    }
    let plan = run::RunPlan {
        allocators,
        source,
        speed,
        alloc_env,
        alloc_env_given: output.alloc_env.clone(),
        out_dir: out_dir.clone(),
        command: args,
        repo_dir: repo,
        quiet: output.quiet,
    };
    let summary = run::run(&plan, &interrupted)?;
    Ok(finish(&out_dir, &summary, output.no_report, output.quiet))
}

/// Draws the report (unless asked not to), prints the run directory, picks the exit code.
fn finish(
    out_dir: &std::path::Path,
    summary: &rundir::RunSummary,
    no_report: bool,
    quiet: bool,
) -> ExitCode {
    if !no_report {
        run_matrix::draw_report(out_dir, quiet);
    }
    println!("{}", out_dir.display());
    let failed = run_matrix::failed(summary, out_dir);
    let invalid = run_matrix::timing_invalid(summary);
    exit_code(summary.interrupted, &failed, &invalid, quiet)
}

/// `runner record`.
fn record_main(a: &cli::RecordArgs) -> anyhow::Result<ExitCode> {
    // The program gets the terminal's Ctrl-C too; we wait for it to end, then convert.
    let _ = on_ctrl_c("waiting for the program to end, then converting what it recorded")?;
    let r = record::record(a, &run::repo_dir())?;
    if !a.quiet {
        eprintln!("{}", record::summary(&r.trace, &r.report));
        for (path, c) in &r.children {
            eprintln!("child process: {}", record::summary(path, c));
        }
    }
    if let Some(how) = &r.program_failed {
        eprintln!("warning: the program ended with {how}; the trace holds what it did until then");
    }
    println!("{}", r.trace.display());
    for (path, _) in &r.children {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `runner live`.
fn live_main(mut parsed: cli::LiveArgs, args: Vec<String>) -> anyhow::Result<ExitCode> {
    parsed.closed_loop = parsed.rate.is_none() && parsed.connections.is_some();
    let allocators = AllocSpec::parse_list(&parsed.alloc)?;
    let alloc_env = parsed
        .alloc_env
        .iter()
        .map(|s| AllocEnv::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(r) = parsed.rate.filter(|r| !(*r > 0.0 && *r <= 100_000.0)) {
        anyhow::bail!("--rate {r} is out of range: give requests per second in (0, 100000]");
    }
    if parsed.duration.is_zero() {
        anyhow::bail!("--duration must be longer than 0 (e.g. 10m)");
    }
    let repo = run::repo_dir();
    let mix_path = if parsed.mix.is_relative() && !parsed.mix.exists() {
        repo.join(&parsed.mix)
    } else {
        parsed.mix.clone()
    };
    let mix = runner::load_mix::LoadMix::load(&mix_path)?;
    let pacing = if parsed.closed_loop {
        runner::http_load::Pacing::ClosedLoop
    } else {
        runner::http_load::Pacing::Rate(parsed.rate.unwrap_or(cli::DEFAULT_LIVE_RATE))
    };
    let connections = parsed
        .connections
        .unwrap_or(cli::DEFAULT_LIVE_CONNECTIONS)
        .max(1);
    let name = std::path::Path::new(&parsed.server[0])
        .parent()
        .and_then(|p| p.file_name())
        .map_or_else(
            || "server".to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
    let out_dir = parsed
        .out
        .clone()
        .unwrap_or_else(|| results::default_run_dir(&repo, &format!("live-{name}")));
    let record = match &parsed.record {
        None => None,
        Some(_) if allocators.len() != 1 => anyhow::bail!(
            "--record records one server: give one allocator with --alloc (e.g. --alloc glibc), not {}",
            parsed.alloc
        ),
        Some(trace) => Some(runner::live::LiveRecording {
            tracer: record::find_tracer(None)?,
            trace: trace.clone(),
        }),
    };
    let interrupted = on_ctrl_c("stopping the current server and writing results")?;
    let plan = runner::live::LivePlan {
        record,
        allocators,
        server: parsed.server.clone(),
        port: parsed.port,
        ready_path: parsed.ready_path.clone(),
        ready_timeout: parsed.ready_timeout,
        stop_timeout: parsed.stop_timeout,
        load: runner::http_load::LoadPlan {
            base: String::new(),
            mix,
            pacing,
            connections,
            duration: parsed.duration,
            seed: parsed.seed,
            timeout: parsed.request_timeout,
        },
        alloc_env,
        alloc_env_given: parsed.alloc_env.clone(),
        out_dir: out_dir.clone(),
        command: args,
        repo_dir: repo,
        quiet: parsed.quiet,
    };
    let summary = runner::live::run(&plan, &interrupted)?;
    Ok(finish(&out_dir, &summary, parsed.no_report, parsed.quiet))
}

/// `runner stats`.
fn stats_main(a: &cli::StatsArgs) -> anyhow::Result<ExitCode> {
    let damaged = trace_stats::main(a)?;
    Ok(if damaged {
        ExitCode::from(EXIT_ERROR)
    } else {
        ExitCode::SUCCESS
    })
}
