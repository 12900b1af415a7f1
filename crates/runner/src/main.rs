//! `runner`: replays a workload against allocators under test, one child process each, and
//! writes a run directory (see `docs/results-format.md`). This file is the one exit point:
//! it prints the error chain to stderr and picks the exit code.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

use runner::alloc_spec::{AllocEnv, AllocSpec};
use runner::harness_heap::HarnessHeap;
use runner::summary::Status;
use runner::{child, cli, protocol, results, run};

/// The runner's own allocations (parent and children) never go through an allocator under
/// test: see `harness_heap`.
#[global_allocator]
static HARNESS_HEAP: HarnessHeap = HarnessHeap::new();

/// Exit codes: 0 all allocators ran; 1 error; 2 bad usage (clap); 3 an allocator crashed or
/// failed (the run directory is complete otherwise); 130 interrupted.
const EXIT_ERROR: u8 = 1;
const EXIT_ALLOCATOR_FAILED: u8 = 3;
const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("__child") => child_main().map(|()| ExitCode::SUCCESS),
        Some("live") => live_main(args),
        _ => parent_main(args),
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

/// Installs the Ctrl-C handler: the first press asks the run to finish what it has, the second
/// abandons it.
fn interrupt_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    let presses = AtomicUsize::new(0);
    ctrlc::set_handler(move || {
        if presses.fetch_add(1, Ordering::SeqCst) == 0 {
            flag.store(true, Ordering::SeqCst);
            eprintln!("\ninterrupted: finishing the current allocator's samples and writing results (Ctrl-C again to abandon)");
        } else {
            std::process::exit(EXIT_INTERRUPTED.into());
        }
    })
    .context("installing the Ctrl-C handler")?;
    Ok(interrupted)
}

/// Draws the report (unless asked not to), prints the run directory, picks the exit code.
fn finish(
    out_dir: &std::path::Path,
    summary: &runner::summary::RunSummary,
    no_report: bool,
    quiet: bool,
) -> ExitCode {
    if !no_report {
        match report::generate(out_dir, &report::Options::default()) {
            Ok(paths) => {
                for w in &paths.warnings {
                    eprintln!("report: {w}");
                }
                if !quiet {
                    eprintln!("report: {}", paths.index_html.display());
                }
            }
            // The measurements are safe on disk; a report can be drawn again later.
            Err(e) => eprintln!("warning: drawing the report failed: {e} (run `cargo run -p report -- {}` to retry)", out_dir.display()),
        }
    }
    println!("{}", out_dir.display());
    if summary.interrupted {
        return ExitCode::from(EXIT_INTERRUPTED);
    }
    let failed: Vec<&str> = summary
        .allocators
        .iter()
        .filter(|a| a.status != Status::Ok)
        .map(|a| a.name.as_str())
        .collect();
    if !failed.is_empty() {
        eprintln!("error: allocator(s) did not finish: {}", failed.join(", "));
        return ExitCode::from(EXIT_ALLOCATOR_FAILED);
    }
    let invalid: Vec<&str> = summary
        .allocators
        .iter()
        .filter(|a| !a.timing_valid)
        .map(|a| a.name.as_str())
        .collect();
    if !invalid.is_empty() && !quiet {
        eprintln!(
            "note: timings invalid (not results) for: {} (memory and CPU figures stand)",
            invalid.join(", ")
        );
    }
    ExitCode::SUCCESS
}

fn live_main(args: Vec<String>) -> anyhow::Result<ExitCode> {
    let mut parsed = match cli::LiveCli::try_parse_from(args.iter().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return Ok(ExitCode::from(e.exit_code() as u8));
        }
    };
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
    let interrupted = interrupt_flag()?;
    let plan = runner::live::LivePlan {
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

fn parent_main(args: Vec<String>) -> anyhow::Result<ExitCode> {
    let parsed = match cli::Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            // --help and --version are not errors; clap prints both kinds itself.
            let _ = e.print();
            return Ok(ExitCode::from(e.exit_code() as u8));
        }
    };
    let cli = parsed.run;
    if !(cli.hours > 0.0 && cli.hours <= 10_000.0) {
        anyhow::bail!(
            "--hours {} is out of range: give simulated hours in (0, 10000]",
            cli.hours
        );
    }
    let allocators = AllocSpec::parse_list(&cli.alloc)?;
    let alloc_env = cli
        .alloc_env
        .iter()
        .map(|s| AllocEnv::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let repo = run::repo_dir();
    let profile_path = workload::Profile::resolve(&cli.workload, &repo.join("workloads"))?;
    let mut profile = workload::Profile::load(&profile_path)?;
    if let Some(t) = cli.threads {
        profile.process.threads = t;
    }
    if cli.no_gvl {
        profile.process.gvl = false;
    }
    profile.validate(&profile_path)?;
    let out_dir = cli
        .out
        .clone()
        .unwrap_or_else(|| results::default_run_dir(&repo, &profile.name));

    let interrupted = interrupt_flag()?;
    if !cli.quiet {
        eprintln!(
            "run: {} for {} simulated hours at speed {} (seed {}), {} allocator(s) -> {}",
            profile.name,
            cli.hours,
            match cli.speed {
                run::SpeedArg::Fixed(s) => s.to_string(),
                run::SpeedArg::Max => "max".into(),
                run::SpeedArg::Auto => "auto".into(),
            },
            cli.seed,
            allocators.len(),
            out_dir.display()
        );
    }
    let plan = run::RunPlan {
        allocators,
        source: run::RunSource::Profile {
            profile: Box::new(profile),
            path: profile_path,
            seed: cli.seed,
            hours: cli.hours,
        },
        speed: cli.speed,
        alloc_env,
        alloc_env_given: cli.alloc_env.clone(),
        out_dir: out_dir.clone(),
        command: args,
        repo_dir: repo,
        quiet: cli.quiet,
    };
    let summary = run::run(&plan, &interrupted)?;
    Ok(finish(&out_dir, &summary, cli.no_report, cli.quiet))
}
