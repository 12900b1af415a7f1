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
/// reference ratios are taken to) on the default profile. 0.1 simulated hours at speed 20 is
/// 18 real seconds of serving per cell: purge timers (jemalloc's 10 s decay, ours 1 s) reach
/// their steady state dozens of times over, and the steady RSS is the median of the last
/// quarter's 9 samples. Three repetitions: the median is robust to one stray repetition, and
/// the six cells take about two minutes on a quiet 2-core machine with the debug build
/// `cargo test` already made. Speed 20, not faster: the calibrated profile's replay keeps up
/// there (largest lag 6-8 simulated s on the 2-core VM, debug or release build), while at
/// speed 60 it fell 78-223 s behind in a 360 s run (either build) and ours' steady RSS read
/// 6% lower than at 20 (`results/baseline/README.md`): a lagging replay is not a measurement.
pub const CONFIG: GateConfig = GateConfig {
    allocators: "ours,jemalloc",
    workload: "rails-api",
    hours: 0.1,
    speed: 20.0,
    seed: 1,
    repeat: 3,
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
    /// Simulated hours per cell. Change it only for a shorter gate (the tests do): the
    /// baseline must have been made with the same value.
    #[arg(long, default_value_t = CONFIG.hours)]
    pub hours: f64,
    /// Simulated seconds per real second (the same caveat).
    #[arg(long, default_value_t = CONFIG.speed)]
    pub speed: f64,
    /// Repetitions of each allocator (the same caveat).
    #[arg(long, default_value_t = CONFIG.repeat, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
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
    let config = GateConfig {
        hours: args.hours,
        speed: args.speed,
        repeat: args.repeat,
        ..CONFIG
    };
    if !(config.hours > 0.0 && config.hours <= 100.0 && config.speed > 0.0) {
        anyhow::bail!("--hours must be in (0, 100] and --speed positive");
    }
    let started = std::time::Instant::now();
    // A relative --baseline is looked for here, then in the source tree.
    let baseline_dir = if args.baseline.is_relative() && !args.baseline.exists() {
        crate::run::repo_dir().join(&args.baseline)
    } else {
        args.baseline.clone()
    };
    let baseline = if args.update_baseline {
        None
    } else {
        if !baseline_dir.join(rundir::run_dir::SUMMARY_JSON).exists() {
            anyhow::bail!(
                "no baseline in {}: make one on this kind of machine with `cargo run -p runner -- gate --update-baseline` and commit it",
                baseline_dir.display()
            );
        }
        let b = RunDir::read(&baseline_dir)
            .with_context(|| format!("reading the baseline {}", baseline_dir.display()))?;
        check_config(&b, "the baseline", &config)?;
        if let Some(hook) = b.record.as_ref().and_then(|r| r.test_hook.as_ref()) {
            anyhow::bail!(
                "the baseline {} was made with a test hook ({hook}): make a real one with `runner gate --update-baseline`",
                baseline_dir.display()
            );
        }
        Some(b)
    };
    let current_dir = match &args.current {
        Some(dir) => dir.clone(),
        None => run_config(args, &config, command, interrupted)?,
    };
    let current = RunDir::read(&current_dir)
        .with_context(|| format!("reading the gate's run {}", current_dir.display()))?;
    check_config(&current, "the run", &config)?;
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
        install_baseline(&current_dir, &baseline_dir)?;
        eprintln!(
            "gate: {} is the new baseline (machine: {}); commit it",
            baseline_dir.display(),
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
            "gate: baseline made on {}, this run on {}: only machine-independent figures (memory, ratios to jemalloc) were compared ({})",
            baseline.record.as_ref().map_or_else(|| "an unknown machine".into(), |r| r.machine.describe()),
            current.record.as_ref().map_or_else(|| "an unknown machine".into(), |r| r.machine.describe()),
            c.notes.join("; ")
        ));
    }
    for f in &failed {
        lines.push(format!("gate: REGRESSION: {f}"));
    }
    for r in &regressions {
        lines.push(format!(
            "gate: REGRESSION: {} {}: {} -> {} ({} beyond a noise band of {})",
            r.label(),
            r.metric_label(),
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
            baseline_dir.display(),
            if better > 0 {
                format!("; {better} better than the baseline beyond noise: consider `runner gate --update-baseline`")
            } else {
                String::new()
            }
        ),
        _ => format!(
            "gate: FAIL ({} regression(s) of {gated} figures compared with {})",
            regressions.len() + failed.len(),
            baseline_dir.display()
        ),
    });
    for l in &lines {
        eprintln!("{l}");
        text.push_str(&format!("\n{l}\n"));
    }
    rundir::atomic::write_atomic(&md, text.as_bytes())?;
    eprintln!(
        "gate: {} ({:.0} s)",
        md.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(verdict)
}

/// Makes the gate's run of `config`; returns its run directory.
fn run_config(
    args: &GateArgs,
    config: &GateConfig,
    command: Vec<String>,
    interrupted: &Arc<AtomicBool>,
) -> anyhow::Result<PathBuf> {
    let repo = crate::run::repo_dir();
    let allocators = AllocSpec::parse_list(config.allocators)?;
    let path = workload::Profile::resolve(config.workload, &repo.join("workloads"))?;
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
            config.allocators,
            config.workload,
            config.hours,
            config.speed,
            config.repeat,
            out_dir.display()
        );
    }
    let ids: Vec<String> = allocators.iter().map(AllocSpec::id).collect();
    let cells = CellPlan {
        repeat: config.repeat,
        cells: interleaved(&ids, config.repeat),
        shard: None,
    };
    let plan = RunPlan {
        allocators,
        source: RunSource::Profile {
            profile: Box::new(profile),
            path,
            seed: config.seed,
            hours: config.hours,
        },
        speed: SpeedArg::Fixed(config.speed),
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

/// Fails unless `run` was made with the gate's configuration `config`.
fn check_config(run: &RunDir, what: &str, config: &GateConfig) -> anyhow::Result<()> {
    let Some(r) = &run.record else {
        anyhow::bail!(
            "{what} {} has no run.json, so its configuration is unknown",
            run.dir.display()
        );
    };
    let ids: Vec<String> = r.allocators.iter().map(|a| a.id.clone()).collect();
    let want: Vec<String> = config.allocators.split(',').map(String::from).collect();
    let checks = [
        ("allocators", ids.join(","), want.join(",")),
        (
            "workload",
            r.workload.name.clone(),
            config.workload.to_string(),
        ),
        ("hours", r.hours.to_string(), config.hours.to_string()),
        (
            "speed",
            format!("{:?}", r.speed),
            format!("{:?}", Some(config.speed)),
        ),
        ("seed", r.seed.to_string(), config.seed.to_string()),
        ("repeat", r.repeat.to_string(), config.repeat.to_string()),
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
