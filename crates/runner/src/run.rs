//! The parent side of a **run**: for each allocator under test, one child process after
//! another. The parent sends each child its plan (the child generates the workload or reads the
//! trace itself, so the parent takes no CPU from the replay), records what the child reports,
//! shows progress, and writes the run directory. `--speed auto` first measures the speed the
//! machine sustains.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use workload::Profile;

use rundir::atomic::write_json;
use rundir::record::SpeedCalibration;
use rundir::run_dir::{RUN_JSON, SUMMARY_JSON};
use rundir::{
    AllocatorRecord, Repetition, RunRecord, RunSummary, SamplesWriter, Status, WorkloadRecord,
    SCHEMA_VERSION,
};

use crate::alloc_spec::{AllocEnv, AllocSpec};
use crate::matrix::CellPlan;
use crate::protocol::{ChildMsg, ChildPlan, SourcePlan};
use crate::replay::Speed;
use crate::results::{now_rfc3339, sample_row};
use crate::summary::{build_repetition, ChildOutcome};

/// `--speed` as given: a factor, as fast as possible, or measured first.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SpeedArg {
    Fixed(f64),
    Max,
    Auto,
}

impl std::str::FromStr for SpeedArg {
    type Err = String;
    fn from_str(s: &str) -> Result<SpeedArg, String> {
        match s {
            "max" => Ok(SpeedArg::Max),
            "auto" => Ok(SpeedArg::Auto),
            _ => match s.parse::<f64>() {
                Ok(v) if v > 0.0 && v <= 1e6 => Ok(SpeedArg::Fixed(v)),
                _ => Err(format!(
                    "{s:?} is not a speed: give simulated seconds per real second in (0, 1000000], `max` or `auto`"
                )),
            },
        }
    }
}

/// What a run replays.
#[derive(Clone, Debug)]
pub enum RunSource {
    /// A workload profile, generated in each child.
    Profile {
        profile: Box<Profile>,
        path: PathBuf,
        seed: u64,
        hours: f64,
    },
    /// A trace file.
    Trace {
        path: PathBuf,
        meta: workload::trace::TraceMeta,
    },
}

impl RunSource {
    fn plan(&self) -> SourcePlan {
        match self {
            RunSource::Profile {
                profile,
                seed,
                hours,
                ..
            } => SourcePlan::Synthetic {
                profile: profile.clone(),
                seed: *seed,
                hours: *hours,
            },
            RunSource::Trace { path, .. } => SourcePlan::Trace { path: path.clone() },
        }
    }

    /// A short name for directories and tables.
    pub fn name(&self) -> String {
        match self {
            RunSource::Profile { profile, .. } => profile.name.clone(),
            RunSource::Trace { path, .. } => path
                .file_stem()
                .map_or_else(|| "trace".into(), |s| s.to_string_lossy().into_owned()),
        }
    }

    /// Simulated seconds of boot (boot is left out of "hours of serving").
    fn boot_s(&self) -> f64 {
        match self {
            RunSource::Profile { profile, .. } => profile.boot.duration_s,
            RunSource::Trace { .. } => 0.0,
        }
    }

    /// Simulated seconds the whole source lasts, if known.
    fn total_sim_s(&self) -> Option<f64> {
        match self {
            RunSource::Profile { profile, hours, .. } => {
                Some(hours * 3600.0 + profile.boot.duration_s)
            }
            RunSource::Trace { .. } => None,
        }
    }

    fn gvl(&self) -> bool {
        match self {
            RunSource::Profile { profile, .. } => profile.process.gvl,
            // A recorded program's threads already ran under whatever lock it had.
            RunSource::Trace { .. } => false,
        }
    }

    fn threads(&self) -> u32 {
        match self {
            RunSource::Profile { profile, .. } => profile.process.threads,
            RunSource::Trace { meta, .. } => meta.threads,
        }
    }
}

/// Everything a run needs, resolved from the command line.
pub struct RunPlan {
    pub allocators: Vec<AllocSpec>,
    pub source: RunSource,
    pub speed: SpeedArg,
    pub alloc_env: Vec<AllocEnv>,
    pub alloc_env_given: Vec<String>,
    pub out_dir: PathBuf,
    pub command: Vec<String>,
    pub repo_dir: PathBuf,
    pub quiet: bool,
}

/// Simulated seconds between plain progress lines when stderr is not a terminal.
const PLAIN_PROGRESS_EVERY_SIM_S: f64 = 900.0;
/// `--speed auto`: simulated seconds of serving each allocator replays at speed max...
const CALIBRATE_SERVING_S: f64 = 600.0;
/// ...and the share of the slowest sustained speed the run then uses. Speed max is a poor
/// guide on its own: without sleeps one replay thread keeps the GVL and its caches, while a
/// scaled replay hands the GVL over and wakes threads thousands of times a second. On the
/// project's 2-core AMD EPYC VM (rails-api, two hours) a scaled replay spent 1.6x the
/// allocator time per simulated second that speed max did, the replay threads' CPU plus
/// their wait for a CPU grew from 0.44 of a real second at speed 14 to 1.05 at 22
/// (glibc-arena2, which sustained 48 at speed max), and the run lagged 29 simulated s at 22
/// against 5 at 14. At 0.3 (speed 12 there) the four allocators' replays were 0.27-0.37
/// busy and lagged at most 1.5 s.
const CALIBRATE_MARGIN: f64 = 0.3;

/// Runs every allocator of the plan once; returns the summary written to the run directory.
pub fn run(plan: &RunPlan, interrupted: &Arc<AtomicBool>) -> anyhow::Result<RunSummary> {
    let ids: Vec<String> = plan.allocators.iter().map(AllocSpec::id).collect();
    run_cells(plan, &CellPlan::once(&ids), interrupted)
}

/// Runs the cells of `cells` (allocators of the plan, each repetition in its own child) in
/// their order; returns the summary written to the run directory.
pub fn run_cells(
    plan: &RunPlan,
    cells: &CellPlan,
    interrupted: &Arc<AtomicBool>,
) -> anyhow::Result<RunSummary> {
    rundir::run_dir::create(&plan.out_dir, "--out")?;
    let (commit, dirty) = crate::results::git_commit(&plan.repo_dir);
    let scrubbed_env = crate::alloc_spec::scrubbed(std::env::vars());
    if !scrubbed_env.is_empty() && !plan.quiet {
        eprintln!(
            "note: allocator settings in your environment are not passed to the allocators under test ({}); give one with --alloc-env NAME=VALUE to use it",
            scrubbed_env.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let load_start = crate::os::load_average();
    let (speed, calibration) = match plan.speed {
        SpeedArg::Fixed(s) => (Speed::Fixed(s), None),
        SpeedArg::Max => (Speed::Max, None),
        SpeedArg::Auto => {
            let c = calibrate(plan, interrupted)?;
            (Speed::Fixed(c.chosen), Some(c))
        }
    };
    let factor = speed.factor();
    let settings: Vec<_> = plan
        .allocators
        .iter()
        .map(|a| a.child_settings(factor, &plan.alloc_env))
        .collect();
    let (workload_record, hours, seed) = match &plan.source {
        RunSource::Profile {
            profile,
            path,
            seed,
            hours,
        } => (
            WorkloadRecord {
                name: profile.name.clone(),
                path: path.display().to_string(),
                kind: "profile".into(),
                profile: serde_json::to_value(&**profile).ok(),
                trace: None,
                live: None,
            },
            *hours,
            *seed,
        ),
        RunSource::Trace { path, meta } => (
            WorkloadRecord {
                name: plan.source.name(),
                path: path.display().to_string(),
                kind: "trace".into(),
                profile: None,
                trace: serde_json::to_value(meta).ok(),
                live: None,
            },
            0.0,
            0,
        ),
    };
    let mode = match plan.source {
        RunSource::Profile { .. } => "synthetic",
        RunSource::Trace { .. } => "replay",
    };
    let mut record = RunRecord {
        schema_version: SCHEMA_VERSION,
        mode: mode.into(),
        command: plan.command.clone(),
        commit,
        commit_dirty: dirty,
        started_at: now_rfc3339(),
        finished_at: None,
        machine: crate::os::machine(),
        workload: workload_record,
        hours,
        seed,
        speed: factor,
        speed_mode: match plan.speed {
            SpeedArg::Fixed(_) => "fixed",
            SpeedArg::Max => "max",
            SpeedArg::Auto => "auto",
        }
        .into(),
        speed_calibration: calibration,
        threads: plan.source.threads(),
        gvl: plan.source.gvl(),
        allocators: plan
            .allocators
            .iter()
            .zip(&settings)
            .map(|(a, s)| AllocatorRecord {
                name: a.name(),
                id: a.id(),
                version: None,
                settings: s.env.clone(),
                ours_purge_delay_ns: s.ours_purge_delay_ns,
                note: Some(s.note.clone()),
                in_force: None,
            })
            .collect(),
        scrubbed_env,
        alloc_env: plan.alloc_env_given.clone(),
        load_start,
        load_end: None,
        interrupted: false,
        latency_note: "Costs that survive the clock's compression lead: CPU and page faults \
            (getrusage), time inside allocator calls and touching memory per request (every call \
            timed). Request latency is real time from the request's scheduled arrival \
            (simulated arrival / speed) to its completion, so queueing counts; simulated CPU and \
            I/O time are sleeps scaled by 1/speed while allocator time is real, so the \
            allocator's share of it is inflated by about the speed. Wall-clock figures of a \
            replay that lagged or waited for the CPU are marked invalid."
            .into(),
        repeat: cells.repeat,
        order: cells.cells.clone(),
        shard: cells.shard,
        shards: Vec::new(),
        build: Some(crate::results::build_profile().into()),
        test_hook: crate::ballast::Ballast::described(&plan.alloc_env_given),
    };
    let run_json = plan.out_dir.join(RUN_JSON);
    let summary_json = plan.out_dir.join(SUMMARY_JSON);
    write_json(&run_json, &record)?;
    let mut csv = SamplesWriter::create(&plan.out_dir.join(rundir::run_dir::SAMPLES_CSV))?;
    let mut summary = RunSummary {
        schema_version: SCHEMA_VERSION,
        mode: mode.into(),
        workload: plan.source.name(),
        hours,
        seed,
        speed: factor,
        threads: plan.source.threads(),
        interrupted: false,
        repeat: cells.repeat,
        order: Vec::new(),
        allocators: Vec::new(),
    };
    if let (Some(c), false) = (&record.speed_calibration, plan.quiet) {
        eprintln!(
            "speed auto: sustained {} -> running at speed {}",
            c.sustained
                .iter()
                .map(|(k, v)| format!("{k} {v:.0}"))
                .collect::<Vec<_>>()
                .join(", "),
            c.chosen
        );
    }

    let mut reps: Vec<Vec<Repetition>> = vec![Vec::new(); plan.allocators.len()];
    for (position, cell) in cells.cells.iter().enumerate() {
        if interrupted.load(Ordering::SeqCst) {
            break;
        }
        let i = plan
            .allocators
            .iter()
            .position(|a| a.id() == cell.allocator)
            .with_context(|| format!("cell {cell:?} names no allocator of the run"))?;
        let spec = &plan.allocators[i];
        let child_plan = ChildPlan {
            alloc: spec.child_alloc(),
            speed,
            gvl: plan.source.gvl(),
            source: plan.source.plan(),
            out_dir: plan.out_dir.clone(),
            id: spec.id(),
            repetition: cell.repetition,
            ours_purge_delay_ns: settings[i].ours_purge_delay_ns,
            stop_at_sim_s: None,
        };
        let mut outcome = run_child(
            plan,
            spec,
            &settings[i].env,
            &child_plan,
            Some(&mut csv),
            interrupted,
        )
        .with_context(|| format!("running allocator {}", spec.name()))?;
        record.allocators[i].version = outcome.version.clone();
        record.allocators[i].in_force = outcome.in_force.take();
        let mut o = outcome.outcome;
        if o.status == Status::Ok && interrupted.load(Ordering::SeqCst) {
            o.status = Status::Interrupted;
        }
        let r = build_repetition(
            cell.repetition,
            u32::try_from(position).unwrap_or(u32::MAX),
            &o,
            plan.source.boot_s(),
            factor,
        );
        if !plan.quiet {
            let name = if cells.repeat > 1 {
                format!("{} #{}", spec.name(), cell.repetition)
            } else {
                spec.name()
            };
            eprintln!("{}", one_line(&name, &r));
        }
        if let Some(note) = r.figures.timing_note.as_ref().filter(|_| factor.is_some()) {
            eprintln!(
                "warning: {}: {note}; lower --speed, use --speed auto, or stop other work on this machine",
                spec.name()
            );
        }
        reps[i].push(r);
        summary.order.push(cell.clone());
        summary.allocators = plan
            .allocators
            .iter()
            .zip(&reps)
            .filter(|(_, r)| !r.is_empty())
            .map(|(a, r)| rundir::aggregate(&a.name(), &a.id(), r.clone(), cells.repeat))
            .collect();
        summary.interrupted = interrupted.load(Ordering::SeqCst);
        write_json(&summary_json, &summary)?;
        record.interrupted = summary.interrupted;
        write_json(&run_json, &record)?;
    }
    if cells.repeat > 1 && !plan.quiet {
        for a in &summary.allocators {
            eprintln!("{}", spread_line(a));
        }
    }
    record.finished_at = Some(now_rfc3339());
    record.load_end = crate::os::load_average();
    record.interrupted = interrupted.load(Ordering::SeqCst);
    summary.interrupted = record.interrupted;
    write_json(&run_json, &record)?;
    write_json(&summary_json, &summary)?;
    Ok(summary)
}

/// Measures, for every allocator, the simulated seconds per real second its replay sustains at
/// speed max over [`CALIBRATE_SERVING_S`] of serving (after boot), and takes
/// [`CALIBRATE_MARGIN`] of the slowest, rounded down to two significant digits.
fn calibrate(plan: &RunPlan, interrupted: &Arc<AtomicBool>) -> anyhow::Result<SpeedCalibration> {
    let sim_s = plan.source.boot_s() + CALIBRATE_SERVING_S;
    let mut sustained = BTreeMap::new();
    for spec in &plan.allocators {
        if interrupted.load(Ordering::SeqCst) {
            anyhow::bail!("interrupted while measuring the speed for --speed auto");
        }
        let s = spec.child_settings(None, &plan.alloc_env);
        let dir = plan.out_dir.join(".calibration");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let child_plan = ChildPlan {
            alloc: spec.child_alloc(),
            speed: Speed::Max,
            gvl: plan.source.gvl(),
            source: plan.source.plan(),
            out_dir: dir.clone(),
            id: spec.id(),
            repetition: 1,
            ours_purge_delay_ns: s.ours_purge_delay_ns,
            stop_at_sim_s: Some(sim_s),
        };
        if !plan.quiet {
            eprintln!(
                "speed auto: replaying {sim_s:.0} simulated s of {} with {} at speed max",
                plan.source.name(),
                spec.name()
            );
        }
        let r = run_child(plan, spec, &s.env, &child_plan, None, interrupted)?;
        let _ = std::fs::remove_dir_all(&dir);
        let done = r.outcome.done.as_ref().with_context(|| {
            format!(
                "the speed calibration of {} did not finish: {}",
                spec.name(),
                r.outcome.error.clone().unwrap_or_default()
            )
        })?;
        // Serving only: boot is one thread allocating its permanent data, not the steady mix.
        let boot = plan.source.boot_s();
        let from = r
            .outcome
            .samples
            .iter()
            .find(|s| s.sim_time_s >= boot)
            .map_or((0.0, 0.0), |s| (s.sim_time_s, s.real_time_s.unwrap_or(0.0)));
        let sim = done.sim_time_s - from.0;
        let real = (done.real_time_s - from.1).max(1e-9);
        sustained.insert(spec.name(), sim / real);
    }
    let slowest = sustained.values().cloned().fold(f64::INFINITY, f64::min);
    let raw = (slowest * CALIBRATE_MARGIN).max(1.0);
    // Two significant digits, rounded down: 137.4 -> 130.
    let mag = 10f64.powf(raw.log10().floor() - 1.0).max(1.0);
    let chosen = (raw / mag).floor() * mag;
    Ok(SpeedCalibration {
        sustained,
        margin: CALIBRATE_MARGIN,
        chosen,
        sim_s,
    })
}

fn mib(b: Option<u64>) -> String {
    b.map_or_else(
        || "-".into(),
        |b| format!("{:.1} MiB", b as f64 / 1048576.0),
    )
}

/// A one-line result of one repetition for the terminal.
fn one_line(name: &str, r: &Repetition) -> String {
    let s = &r.figures;
    let cost = s.cost.as_ref();
    let timing = if s.timing_valid {
        format!(
            "alloc/request p50 {} p99 {}, request p99 {}",
            s.alloc_per_request_ns
                .map_or_else(|| "-".into(), |l| format!("{:.0} µs", l.p50 as f64 / 1e3)),
            s.alloc_per_request_ns
                .map_or_else(|| "-".into(), |l| format!("{:.0} µs", l.p99 as f64 / 1e3)),
            s.latency_us
                .map_or_else(|| "-".into(), |l| format!("{:.1} ms", l.p99 as f64 / 1e3)),
        )
    } else {
        "timings invalid".into()
    };
    format!(
        "{:<14} {:?}: steady RSS {}, max {}, live {}, growth {}/h, {} requests, CPU/request {}, faults/request {}, {timing}, max lag {}",
        name,
        r.status,
        mib(s.rss_steady_bytes),
        mib(s.rss_max_bytes),
        mib(s.live_steady_bytes),
        s.rss_growth_bytes_per_hour
            .map_or_else(|| "-".into(), |g| format!("{:+.1} MiB", g / 1048576.0)),
        s.requests,
        cost.and_then(|c| c.cpu_per_request_us)
            .map_or_else(|| "-".into(), |c| format!("{c:.0} µs")),
        cost.and_then(|c| c.minor_faults_per_request)
            .map_or_else(|| "-".into(), |c| format!("{c:.1}")),
        s.max_lag_s
            .map_or_else(|| "-".into(), |l| format!("{l:.1} s")),
    ) + &r
        .error
        .as_ref()
        .map_or_else(String::new, |e| format!(" [{e}]"))
}

/// One allocator's medians and ranges over its repetitions, for the terminal.
fn spread_line(a: &rundir::AllocatorSummary) -> String {
    let parts: Vec<String> = rundir::Metric::all()
        .into_iter()
        .filter_map(|m| {
            let s = a.spread.get(m.key())?;
            Some(format!(
                "{} {} [{} .. {}]",
                m.label(),
                m.format(s.median),
                m.format(s.min),
                m.format(s.max)
            ))
        })
        .collect();
    format!(
        "{:<14} median of {} repetitions: {}",
        a.name,
        a.repetitions.len(),
        parts.join(", ")
    )
}

fn progress_bar(plan: &RunPlan, spec: &AllocSpec, quiet: bool) -> ProgressBar {
    let total = plan.source.total_sim_s().unwrap_or(0.0) as u64;
    let bar = if quiet {
        ProgressBar::hidden()
    } else if total > 0 {
        ProgressBar::new(total)
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>14} [{bar:30}] {pos}/{len} sim s  {msg}  ({elapsed} real, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(spec.name());
    bar
}

/// What [`run_child`] returns.
struct ChildRun {
    outcome: ChildOutcome,
    version: Option<String>,
    in_force: Option<String>,
}

/// Runs one child to its end: sends its plan, records its samples (into `csv`, if given),
/// closes its stdin when the run is interrupted.
fn run_child(
    plan: &RunPlan,
    spec: &AllocSpec,
    env: &BTreeMap<String, String>,
    child_plan: &ChildPlan,
    mut csv: Option<&mut SamplesWriter>,
    interrupted: &Arc<AtomicBool>,
) -> anyhow::Result<ChildRun> {
    let exe = std::env::current_exe().context("finding the runner's own executable")?;
    let mut cmd = Command::new(&exe);
    cmd.arg("__child")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // The child gets no allocator setting but its own (see `alloc_spec::scrubbed`).
    for (k, _) in std::env::vars() {
        if crate::alloc_spec::is_allocator_var(&k) {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env);
    let parent_before = crate::os::usage(crate::os::UsageOf::Process);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let mut stdin = child.stdin.take().context("child stdin")?;
    let stdout = child.stdout.take().context("child stdout")?;
    let line = serde_json::to_string(child_plan).context("encoding the child plan")?;
    // A child that died at once closes its stdin: that shows below as its exit status.
    let _ = writeln!(stdin, "{line}").and_then(|()| stdin.flush());

    // Closes the child's stdin (asking it to stop) when the run is interrupted.
    let finished = Arc::new(AtomicBool::new(false));
    let closer = {
        let finished = finished.clone();
        let interrupted = interrupted.clone();
        std::thread::Builder::new()
            .name("interrupt-watch".into())
            .spawn(move || {
                while !finished.load(Ordering::Acquire) && !interrupted.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                drop(stdin);
            })
            .context("starting the interrupt watcher")?
    };

    let quiet = plan.quiet || csv.is_none();
    let bar = progress_bar(plan, spec, quiet);
    // Without a terminal (CI logs, nohup) the bar is hidden: print a plain line now and then.
    let plain_progress = !quiet && bar.is_hidden();
    let mut next_plain_s = PLAIN_PROGRESS_EVERY_SIM_S;
    let mut out = ChildRun {
        outcome: ChildOutcome {
            status: Status::Ok,
            error: None,
            version: None,
            harness_rss: None,
            samples: Vec::new(),
            done: None,
            parent_cpu_s: 0.0,
        },
        version: None,
        in_force: None,
    };
    let id = spec.id();
    let total = plan
        .source
        .total_sim_s()
        .map_or_else(String::new, |t| format!("/{t:.0}"));
    for line in BufReader::new(stdout).lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                out.outcome.error = Some(format!("reading the child's output: {e}"));
                break;
            }
        };
        match serde_json::from_str::<ChildMsg>(&line) {
            Ok(ChildMsg::Ready {
                harness_rss_bytes,
                version,
                settings_note,
            }) => {
                out.outcome.harness_rss = Some(harness_rss_bytes);
                out.outcome.version = Some(version.clone());
                out.version = Some(version);
                out.in_force = settings_note;
            }
            Ok(ChildMsg::Sample(s)) => {
                let row = sample_row(&id, child_plan.repetition, &s);
                if let Some(csv) = csv.as_deref_mut() {
                    csv.append(&row)?;
                }
                bar.set_position(s.sim_time_s as u64);
                let status = format!(
                    "RSS {:.0} MiB  live {:.0} MiB  {} req  lag {:.1} s",
                    s.rss_bytes as f64 / 1048576.0,
                    s.live_bytes as f64 / 1048576.0,
                    s.requests,
                    s.lag_s
                );
                if plain_progress && s.sim_time_s >= next_plain_s {
                    eprintln!(
                        "{:<14} {:>6.0}{total} sim s  {status}",
                        spec.name(),
                        s.sim_time_s,
                    );
                    next_plain_s += PLAIN_PROGRESS_EVERY_SIM_S;
                }
                bar.set_message(status);
                out.outcome.samples.push(row);
            }
            Ok(ChildMsg::Done(d)) => {
                if let Some(e) = &d.stream_error {
                    out.outcome.status = Status::Failed;
                    out.outcome.error = Some(format!(
                        "the replay covers only the events before this: {e}"
                    ));
                }
                out.outcome.done = Some(*d);
            }
            Ok(ChildMsg::Error { message }) => out.outcome.error = Some(message),
            Err(_) => {
                // Not a protocol line (a preloaded library printing to stdout): pass it on.
                bar.suspend(|| eprintln!("[{}] {line}", spec.name()));
            }
        }
    }
    bar.finish_and_clear();
    let status = child
        .wait()
        .with_context(|| format!("waiting for the {} child", spec.name()))?;
    finished.store(true, Ordering::Release);
    let _ = closer.join();
    out.outcome.parent_cpu_s = crate::os::usage(crate::os::UsageOf::Process)
        .since(&parent_before)
        .cpu_s();
    use std::os::unix::process::ExitStatusExt;
    let o = &mut out.outcome;
    if let Some(sig) = status.signal() {
        o.status = Status::Crashed;
        let what = format!(
            "child for {} killed by {}",
            spec.name(),
            crate::os::signal_name(sig)
        );
        o.error = Some(match o.error.take() {
            Some(e) => format!("{what}: {e}"),
            None => what,
        });
    } else if !status.success() {
        o.status = Status::Failed;
        o.error.get_or_insert_with(|| {
            format!(
                "child for {} exited with status {}",
                spec.name(),
                status.code().unwrap_or(-1)
            )
        });
    } else if o.done.is_none() {
        o.status = Status::Failed;
        o.error
            .get_or_insert_with(|| "child ended without reporting its results".into());
    }
    Ok(out)
}

/// Where the repository root is, for `git` and the default profile/results folders: the
/// current directory (as `.`, so that recorded paths stay relative) if it has `workloads/`,
/// else the source tree this binary was built from.
pub fn repo_dir() -> PathBuf {
    if Path::new("workloads").is_dir() {
        return PathBuf::from(".");
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if built.join("workloads").is_dir() {
        return built.canonicalize().unwrap_or(built);
    }
    PathBuf::from(".")
}
