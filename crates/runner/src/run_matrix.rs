//! The default command: the run directories a command line asks for. One (workload, seed) pair
//! is one run directory; several make a matrix, one run directory per pair under `--out`. Each
//! runs its cells (every allocator `--repeat` times, interleaved), or with `--shard i/n` only
//! its share of the whole matrix's cells; then its report is drawn.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use rundir::Status;

use crate::alloc_spec::{AllocEnv, AllocSpec};
use crate::cli::RunArgs;
use crate::matrix::matrix;
use crate::run::{RunPlan, RunSource, SpeedArg};

/// What the run directories of a command hold.
#[derive(Debug, Default)]
pub struct MatrixOutcome {
    /// Every run directory written, in order.
    pub dirs: Vec<PathBuf>,
    pub interrupted: bool,
    /// Allocators (and their run directory) that did not end ok.
    pub failed: Vec<String>,
    /// Allocators (and their run directory) whose wall-clock figures are not results.
    pub timing_invalid: Vec<String>,
}

/// The allocators of `summary` that did not end ok, as `name (dir)`.
pub fn failed(summary: &rundir::RunSummary, dir: &std::path::Path) -> Vec<String> {
    summary
        .allocators
        .iter()
        .filter(|a| a.status != Status::Ok)
        .map(|a| format!("{} ({})", a.name, dir.display()))
        .collect()
}

/// The allocators of `summary` whose timings were marked invalid (lag, run delay, speed max).
pub fn timing_invalid(summary: &rundir::RunSummary) -> Vec<String> {
    summary
        .allocators
        .iter()
        .filter(|a| !a.figures.timing_valid)
        .map(|a| a.name.clone())
        .collect()
}

/// Runs what `args` asks for; `command` is recorded in each `run.json`.
pub fn run_matrix(
    args: &RunArgs,
    command: Vec<String>,
    interrupted: &Arc<AtomicBool>,
) -> anyhow::Result<MatrixOutcome> {
    if !(args.hours > 0.0 && args.hours <= 10_000.0) {
        anyhow::bail!(
            "--hours {} is out of range: give simulated hours in (0, 10000]",
            args.hours
        );
    }
    let allocators = AllocSpec::parse_list(&args.alloc)?;
    let alloc_env = args
        .output
        .alloc_env
        .iter()
        .map(|s| AllocEnv::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let repo = crate::run::repo_dir();
    let mut profiles = Vec::new();
    for name in args.workload.split(',').map(str::trim) {
        if name.is_empty() {
            anyhow::bail!(
                "--workload {:?} has an empty name: give a comma list of profiles",
                args.workload
            );
        }
        let path = workload::Profile::resolve(name, &repo.join("workloads"))?;
        let mut profile = workload::Profile::load(&path)?;
        if let Some(t) = args.threads {
            profile.process.threads = t;
        }
        if args.no_gvl {
            profile.process.gvl = false;
        }
        profile.validate(&path)?;
        profiles.push((profile, path));
    }
    let mut groups = Vec::new();
    for (profile, path) in &profiles {
        for &seed in &args.seed {
            groups.push((profile.clone(), path.clone(), seed));
        }
    }
    let single = groups.len() == 1;
    let root = args.output.out.clone().unwrap_or_else(|| {
        let name = if single {
            profiles[0].0.name.clone()
        } else {
            "matrix".into()
        };
        crate::results::default_run_dir(&repo, &name)
    });
    let ids: Vec<String> = allocators.iter().map(AllocSpec::id).collect();
    let cell_plans = matrix(groups.len(), &ids, args.repeat, args.shard.map(|s| s.0));

    let mut outcome = MatrixOutcome::default();
    for ((profile, path, seed), cells) in groups.into_iter().zip(cell_plans) {
        if cells.cells.is_empty() {
            continue;
        }
        let out_dir = if single {
            root.clone()
        } else {
            root.join(format!("{}-seed{seed}", profile.name))
        };
        if !args.output.quiet {
            eprintln!(
                "run: {} for {} simulated hours at speed {} (seed {}), {} allocator(s), {} cell(s){} -> {}",
                profile.name,
                args.hours,
                match args.speed {
                    SpeedArg::Fixed(s) => s.to_string(),
                    SpeedArg::Max => "max".into(),
                    SpeedArg::Auto => "auto".into(),
                },
                seed,
                allocators.len(),
                cells.cells.len(),
                cells
                    .shard
                    .map_or_else(String::new, |s| format!(" of shard {s}")),
                out_dir.display()
            );
        }
        let plan = RunPlan {
            allocators: allocators.clone(),
            source: RunSource::Profile {
                profile: Box::new(profile),
                path,
                seed,
                hours: args.hours,
            },
            speed: args.speed,
            alloc_env: alloc_env.clone(),
            alloc_env_given: args.output.alloc_env.clone(),
            out_dir: out_dir.clone(),
            command: command.clone(),
            repo_dir: repo.clone(),
            quiet: args.output.quiet,
        };
        let summary = crate::run::run_cells(&plan, &cells, interrupted)?;
        if !args.output.no_report {
            draw_report(&out_dir, args.output.quiet);
        }
        outcome.failed.extend(failed(&summary, &out_dir));
        outcome.timing_invalid.extend(timing_invalid(&summary));
        outcome.dirs.push(out_dir);
        if summary.interrupted {
            outcome.interrupted = true;
            break;
        }
    }
    Ok(outcome)
}

/// Draws the report of a run directory; a failure is a warning (the measurements are safe on
/// disk and the report can be drawn again).
pub fn draw_report(out_dir: &std::path::Path, quiet: bool) {
    match report::generate(out_dir, &report::Options::default()) {
        Ok(paths) => {
            for w in &paths.warnings {
                eprintln!("report: {w}");
            }
            if !quiet {
                eprintln!("report: {}", paths.index_html.display());
            }
        }
        Err(e) => eprintln!(
            "warning: drawing the report failed: {e} (run `cargo run -p report -- {}` to retry)",
            out_dir.display()
        ),
    }
}
