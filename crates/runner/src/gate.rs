//! `runner gate`: the regression gate. It runs one short, fixed configuration ([`CONFIG`]: ours
//! and jemalloc on rails-api, a few interleaved repetitions, a fraction of a simulated hour),
//! compares it with the committed **baseline** (`results/baseline/`, a run directory of the
//! same configuration with its context: machine, commit, command) through the `compare` crate,
//! prints the table and decides: pass, regression, or a setup error (no baseline, or one made
//! with another configuration). Against a baseline from another kind of machine only
//! machine-independent figures count (memory, and ratios to jemalloc within each run).
//! `--update-baseline` makes this run the new baseline.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use compare::{render, Comparison, Options, Scope};
use rundir::{RunDir, Status};

use crate::alloc_spec::{AllocEnv, AllocSpec};
use crate::matrix::{interleaved, CellPlan};
use crate::run::{RunPlan, RunSource, SpeedArg};

/// The gate's fixed configuration. Changing it invalidates every baseline (the gate then
/// exits 2 until `--update-baseline` is run and committed).
#[derive(Clone, Copy, Debug)]
pub struct GateConfig {
    pub allocators: &'static str,
    pub workload: &'static str,
    pub hours: f64,
    pub speed: f64,
    pub seed: u64,
    pub repeat: u32,
}

/// Ours against jemalloc (the allocator a Rails team would otherwise choose, and the
/// reference ratios are taken to) on the default profile. 0.25 simulated hours at speed 60 is
/// 15 real seconds of serving per cell, long enough for purge timers to reach their steady
/// state (jemalloc's 10 s decay, ours 1 s) many times over; the steady RSS is the median of
/// the last quarter's 23 samples. Five repetitions: the smallest count whose order-statistic
/// interval ([min, max]) reaches 90% coverage of the median. Ten cells, about three minutes
/// on a 2-core machine with the debug build `cargo test` already made.
pub const CONFIG: GateConfig = GateConfig {
    allocators: "ours,jemalloc",
    workload: "rails-api",
    hours: 0.25,
    speed: 60.0,
    seed: 1,
    repeat: 5,
};

/// Arguments of `runner gate`.
#[derive(Debug, Clone, clap::Args)]
pub struct GateArgs {
    /// The baseline run directory.
    #[arg(long, default_value = "results/baseline")]
    pub baseline: PathBuf,
    /// Make this run the new baseline (replaces the run files in --baseline; commit them).
    #[arg(long)]
    pub update_baseline: bool,
    /// Where this run goes [default: results/runs/<timestamp>-gate].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Judge this existing run directory (made by `runner gate`) instead of running.
    #[arg(long, value_name = "RUN_DIR")]
    pub current: Option<PathBuf>,
    /// Test hook: ours keeps a memory ballast of P% of its other RSS
    /// (LONGHAUL_BALLAST_PERCENT), a regression of known size to show the gate.
    #[arg(long, value_name = "P")]
    pub inject_ballast: Option<f64>,
    /// No progress lines.
    #[arg(long, short)]
    pub quiet: bool,
}

/// How a gate ended.
#[derive(Debug)]
pub enum GateOutcome {
    Pass,
    /// Worse than the baseline beyond the noise band, or an allocator did not finish.
    Regression,
    /// No baseline, a baseline of another configuration, or the run could not be made.
    Setup(anyhow::Error),
}

impl GateOutcome {
    /// The exit code: 0 pass, 1 regression, 2 setup error.
    pub fn code(&self) -> u8 {
        match self {
            GateOutcome::Pass => 0,
            GateOutcome::Regression => 1,
            GateOutcome::Setup(_) => 2,
        }
    }
}

/// Runs the gate; `command` is recorded in the run's `run.json`.
pub fn gate(args: &GateArgs, command: Vec<String>, interrupted: &Arc<AtomicBool>) -> GateOutcome {
    gate_inner(args, command, interrupted).unwrap_or_else(GateOutcome::Setup)
}

fn gate_inner(
    args: &GateArgs,
    command: Vec<String>,
    interrupted: &Arc<AtomicBool>,
) -> anyhow::Result<GateOutcome> {
    let baseline = if args.update_baseline {
        None
    } else {
        if !args.baseline.join(rundir::run_dir::SUMMARY_JSON).exists() {
            anyhow::bail!(
                "no baseline in {}: make one on this kind of machine with `cargo run -p runner -- gate --update-baseline` and commit it",
                args.baseline.display()
            );
        }
        let b = RunDir::read(&args.baseline)
            .with_context(|| format!("reading the baseline {}", args.baseline.display()))?;
        check_config(&b, "the baseline")?;
        if let Some(hook) = b.record.as_ref().and_then(|r| r.test_hook.as_ref()) {
            anyhow::bail!(
                "the baseline {} was made with a test hook ({hook}): make a real one with `runner gate --update-baseline`",
                args.baseline.display()
            );
        }
        Some(b)
    };
    let current_dir = match &args.current {
        Some(dir) => dir.clone(),
        None => run_config(args, command, interrupted)?,
    };
    let current = RunDir::read(&current_dir)
        .with_context(|| format!("reading the gate's run {}", current_dir.display()))?;
    check_config(&current, "the run")?;
    let failed: Vec<String> = current
        .allocators
        .iter()
        .filter(|a| a.status() != Some(Status::Ok))
        .map(|a| {
            let s = a.summary.as_ref();
            format!(
                "{} {}{}",
                a.name,
                s.map_or("did not finish", |s| s.status.word()),
                s.and_then(|s| s.error.as_ref())
                    .map_or_else(String::new, |e| format!(": {e}"))
            )
        })
        .collect();
    if current.summary.interrupted {
        anyhow::bail!("the gate's run was interrupted: no verdict");
    }

    let Some(baseline) = baseline else {
        if !failed.is_empty() {
            anyhow::bail!("not a baseline: {} (fix that first)", failed.join("; "));
        }
        install_baseline(&current_dir, &args.baseline)?;
        eprintln!(
            "gate: {} is the new baseline (machine: {}); commit it",
            args.baseline.display(),
            current
                .record
                .as_ref()
                .map_or_else(|| "unknown".into(), |r| r.machine.describe())
        );
        return Ok(GateOutcome::Pass);
    };

    let c = Comparison::new(&baseline, &current, &Options::default())?;
    print!("{}", render::text(&c));
    let md = current_dir.join("gate.md");
    let mut text = format!("# Regression gate\n\n{}", render::markdown(&c));
    let regressions = c.regressions();
    let verdict = if !failed.is_empty() || !regressions.is_empty() {
        GateOutcome::Regression
    } else {
        GateOutcome::Pass
    };
    let gated = c.rows.iter().filter(|r| r.gated).count();
    let mut lines = Vec::new();
    if c.scope == Scope::MachineIndependent {
        lines.push(format!(
            "gate: the baseline was made on {}, this run on {}: only machine-independent figures were compared",
            baseline.record.as_ref().map_or_else(|| "an unknown machine".into(), |r| r.machine.describe()),
            current.record.as_ref().map_or_else(|| "an unknown machine".into(), |r| r.machine.describe()),
        ));
    }
    for f in &failed {
        lines.push(format!("gate: REGRESSION: {f}"));
    }
    for r in &regressions {
        lines.push(format!(
            "gate: REGRESSION: {} {}: {} -> {} ({} beyond a noise band of {})",
            r.label(),
            r.metric.label(),
            r.show(r.a),
            r.show(r.b),
            r.show_change(r.change, true),
            r.show_change(r.band, false)
        ));
    }
    let better = c.improvements().len();
    lines.push(match verdict {
        GateOutcome::Pass => format!(
            "gate: pass ({gated} figures compared with {}{})",
            args.baseline.display(),
            if better > 0 {
                format!("; {better} better than the baseline beyond noise: consider `runner gate --update-baseline`")
            } else {
                String::new()
            }
        ),
        _ => format!(
            "gate: FAIL ({} regression(s) of {gated} figures compared with {})",
            regressions.len() + failed.len(),
            args.baseline.display()
        ),
    });
    for l in &lines {
        eprintln!("{l}");
        text.push_str(&format!("\n{l}\n"));
    }
    rundir::atomic::write_atomic(&md, text.as_bytes())?;
    eprintln!("gate: {}", md.display());
    Ok(verdict)
}

/// Makes the gate's run; returns its run directory.
fn run_config(
    args: &GateArgs,
    command: Vec<String>,
    interrupted: &Arc<AtomicBool>,
) -> anyhow::Result<PathBuf> {
    let repo = crate::run::repo_dir();
    let allocators = AllocSpec::parse_list(CONFIG.allocators)?;
    let path = workload::Profile::resolve(CONFIG.workload, &repo.join("workloads"))?;
    let profile = workload::Profile::load(&path)?;
    profile.validate(&path)?;
    let mut alloc_env_given = Vec::new();
    if let Some(p) = args.inject_ballast {
        alloc_env_given.push(format!("ours:{}={p}", crate::ballast::VAR));
    }
    let alloc_env = alloc_env_given
        .iter()
        .map(|s| AllocEnv::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| crate::results::default_run_dir(&repo, "gate"));
    if !args.quiet {
        eprintln!(
            "gate: {} on {} for {} simulated hours at speed {}, {} repetitions each -> {}",
            CONFIG.allocators,
            CONFIG.workload,
            CONFIG.hours,
            CONFIG.speed,
            CONFIG.repeat,
            out_dir.display()
        );
    }
    let ids: Vec<String> = allocators.iter().map(AllocSpec::id).collect();
    let cells = CellPlan {
        repeat: CONFIG.repeat,
        cells: interleaved(&ids, CONFIG.repeat),
        shard: None,
    };
    let plan = RunPlan {
        allocators,
        source: RunSource::Profile {
            profile: Box::new(profile),
            path,
            seed: CONFIG.seed,
            hours: CONFIG.hours,
        },
        speed: SpeedArg::Fixed(CONFIG.speed),
        alloc_env,
        alloc_env_given,
        out_dir: out_dir.clone(),
        command,
        repo_dir: repo,
        quiet: args.quiet,
    };
    crate::run::run_cells(&plan, &cells, interrupted)?;
    Ok(out_dir)
}

/// Fails unless `run` was made with the gate's configuration.
fn check_config(run: &RunDir, what: &str) -> anyhow::Result<()> {
    let Some(r) = &run.record else {
        anyhow::bail!(
            "{what} {} has no run.json, so its configuration is unknown",
            run.dir.display()
        );
    };
    let ids: Vec<String> = r.allocators.iter().map(|a| a.id.clone()).collect();
    let want: Vec<String> = CONFIG.allocators.split(',').map(String::from).collect();
    let checks = [
        ("allocators", ids.join(","), want.join(",")),
        (
            "workload",
            r.workload.name.clone(),
            CONFIG.workload.to_string(),
        ),
        ("hours", r.hours.to_string(), CONFIG.hours.to_string()),
        (
            "speed",
            format!("{:?}", r.speed),
            format!("{:?}", Some(CONFIG.speed)),
        ),
        ("seed", r.seed.to_string(), CONFIG.seed.to_string()),
        ("repeat", r.repeat.to_string(), CONFIG.repeat.to_string()),
    ];
    let wrong: Vec<String> = checks
        .iter()
        .filter(|(_, found, want)| found != want)
        .map(|(field, found, want)| format!("{field} {found} (the gate runs {want})"))
        .collect();
    if !wrong.is_empty() {
        anyhow::bail!(
            "{what} {} was not made with the gate's configuration: {}; make a new baseline with `runner gate --update-baseline` and commit it",
            run.dir.display(),
            wrong.join(", ")
        );
    }
    Ok(())
}

/// Replaces the run files of `baseline` (keeping anything else there, such as its README)
/// with those of the run directory `run`.
fn install_baseline(run: &Path, baseline: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(baseline)
        .with_context(|| format!("creating {}", baseline.display()))?;
    let is_run_file = |name: &str| {
        name == rundir::run_dir::RUN_JSON
            || name == rundir::run_dir::SUMMARY_JSON
            || name == rundir::run_dir::SAMPLES_CSV
            || name == "gate.md"
            || name.ends_with(".hdr")
    };
    for entry in
        std::fs::read_dir(baseline).with_context(|| format!("reading {}", baseline.display()))?
    {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_run_file(&name) {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("removing {}", entry.path().display()))?;
        }
    }
    for entry in std::fs::read_dir(run).with_context(|| format!("reading {}", run.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_run_file(&name) {
            let to = baseline.join(&name);
            std::fs::copy(entry.path(), &to).with_context(|| {
                format!("copying {} to {}", entry.path().display(), to.display())
            })?;
        }
    }
    Ok(())
}
