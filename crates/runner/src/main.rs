//! `runner`: replays a workload against allocators under test, one child process each, and
//! writes a run directory (see `docs/results-format.md`). This file is the one exit point:
//! it prints the error chain to stderr and picks the exit code.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

use runner::harness_heap::HarnessHeap;
use runner::{child, cli, compare_cmd, gate, protocol, run_matrix};

/// The runner's own allocations (parent and children) never go through an allocator under
/// test: see `harness_heap`.
#[global_allocator]
static HARNESS_HEAP: HarnessHeap = HarnessHeap::new();

/// Exit codes of a run: 0 all allocators ran; 1 error; 2 bad usage (clap); 3 an allocator
/// crashed or failed (the run directory is complete otherwise); 130 interrupted. `gate`: 0
/// pass, 1 regression, 2 setup error (see `gate::GateOutcome`).
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
    let interrupted = Arc::new(AtomicBool::new(false));
    {
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
    }
    match parsed.command {
        None => run_main(&parsed.run, args, &interrupted),
        Some(cli::Command::Compare(c)) => compare_cmd::compare(&c).map(|_| ExitCode::SUCCESS),
        Some(cli::Command::Gate(g)) => {
            let outcome = gate::gate(&g, args, &interrupted);
            if let gate::GateOutcome::Setup(e) = &outcome {
                eprintln!("error: {e:#}");
            }
            Ok(ExitCode::from(outcome.code()))
        }
    }
}

fn run_main(
    run: &cli::RunArgs,
    args: Vec<String>,
    interrupted: &Arc<AtomicBool>,
) -> anyhow::Result<ExitCode> {
    let outcome = run_matrix::run_matrix(run, args, interrupted)?;
    for dir in &outcome.dirs {
        println!("{}", dir.display());
    }
    if outcome.interrupted {
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    if !outcome.failed.is_empty() {
        eprintln!(
            "error: allocator(s) did not finish: {}",
            outcome.failed.join(", ")
        );
        return Ok(ExitCode::from(EXIT_ALLOCATOR_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}
