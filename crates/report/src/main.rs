//! `report`: the command line over the library. One exit point prints the error chain to
//! stderr and sets a non-zero exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// Charts, summary tables and an offline HTML page from a longhaul run directory.
#[derive(Debug, Parser)]
#[command(name = "report", version)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// The run directory (written by the runner, e.g. results/runs/<timestamp>-<workload>).
    #[arg(required_unless_present = "compare", conflicts_with = "compare")]
    run_dir: Option<PathBuf>,

    /// Overlay two or more runs (series named "<run label>/<allocator>").
    #[arg(long, num_args = 2.., value_name = "RUN_DIR")]
    compare: Vec<PathBuf>,

    /// The allocator ratios are relative to (a name or id; "<run label>/<name>" in comparisons).
    #[arg(long, value_name = "ALLOCATOR")]
    reference: Option<String>,

    /// Where to write [default: <run-dir>/report, or <first run-dir>/report/compare].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Merge the run directories of the shards of one matrix (`runner --shard i/n`) into one
    /// run directory, and report on it. Refuses shards of different workloads, seeds, settings,
    /// commits or schema versions.
    Merge {
        /// The shards' run directories.
        #[arg(required = true, num_args = 1..)]
        shards: Vec<PathBuf>,
        /// The merged run directory (new or empty).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(Command::Merge { shards, out }) = cli.command {
        let command: Vec<String> = std::env::args().collect();
        let merged = rundir::merge(&shards, &out, &command)
            .with_context(|| format!("cannot merge the shards into {}", out.display()))?;
        for warning in &merged.warnings {
            eprintln!("warning: {warning}");
        }
        eprintln!(
            "merged {} cells from {} shard(s) into {}",
            merged.cells,
            shards.len(),
            out.display()
        );
        let paths = report::generate(&out, &report::Options::default())
            .with_context(|| format!("cannot report on {}", out.display()))?;
        println!("{}", out.display());
        println!("{}", paths.index_html.display());
        return Ok(());
    }
    let mut options = report::Options::default();
    if let Some(reference) = cli.reference {
        options.reference = reference;
        options.require_reference = true;
    }
    options.out_dir = cli.out;
    let paths = match cli.run_dir {
        Some(dir) => report::generate(&dir, &options)
            .with_context(|| format!("cannot report on {}", dir.display()))?,
        None => report::compare(&cli.compare, &options).context("cannot compare the runs")?,
    };
    for warning in &paths.warnings {
        eprintln!("warning: {warning}");
    }
    for figure in &paths.figures {
        println!("{}", figure.png.display());
        println!("{}", figure.svg.display());
    }
    println!("{}", paths.summary_md.display());
    println!("{}", paths.index_html.display());
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
