//! The parent side of a **run**: for each allocator under test, one child process after
//! another; a feeder thread generates the workload and streams its trace into the child while
//! the parent records what the child reports, shows progress, and writes the run directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use workload::trace::TraceWriter;
use workload::{Profile, Workload};

use crate::alloc_spec::AllocSpec;
use crate::protocol::{ChildMsg, Done, Sample};
use crate::results::{
    now_rfc3339, write_json, AllocatorRecord, RunRecord, SamplesCsv, SCHEMA_VERSION,
};
use crate::summary::{AllocatorSummary, RunSummary, Status};

/// Everything a run needs, resolved from the command line.
pub struct RunPlan {
    pub allocators: Vec<AllocSpec>,
    pub profile: Profile,
    pub profile_path: PathBuf,
    pub hours: f64,
    pub seed: u64,
    pub speed: f64,
    pub out_dir: PathBuf,
    pub command: Vec<String>,
    pub repo_dir: PathBuf,
    pub quiet: bool,
}

impl RunPlan {
    /// Simulated seconds a child replays: boot plus the hours of serving.
    fn total_sim_s(&self) -> f64 {
        self.hours * 3600.0 + self.profile.boot.duration_s
    }
}

/// A replay further behind its schedule than this (simulated seconds) is reported: purge
/// timers then see less simulated time than intended and latencies include the delay.
const LAG_WARN_SIM_S: f64 = 60.0;
/// Simulated seconds between plain progress lines when stderr is not a terminal.
const PLAIN_PROGRESS_EVERY_SIM_S: f64 = 900.0;

/// What one child left behind.
struct ChildOutcome {
    status: Status,
    error: Option<String>,
    version: Option<String>,
    harness_rss: Option<u64>,
    samples: Vec<Sample>,
    done: Option<Done>,
}

/// Runs every allocator of the plan; returns the summary written to the run directory.
pub fn run(plan: &RunPlan, interrupted: &Arc<AtomicBool>) -> anyhow::Result<RunSummary> {
    crate::results::create_run_dir(&plan.out_dir)?;
    let (commit, dirty) = crate::results::git_commit(&plan.repo_dir);
    let mut record = RunRecord {
        schema_version: SCHEMA_VERSION,
        command: plan.command.clone(),
        commit,
        commit_dirty: dirty,
        started_at: now_rfc3339(),
        finished_at: None,
        machine: crate::os::machine(),
        workload: crate::results::WorkloadRecord {
            name: plan.profile.name.clone(),
            path: plan.profile_path.display().to_string(),
            profile: plan.profile.clone(),
        },
        hours: plan.hours,
        seed: plan.seed,
        speed: plan.speed,
        threads: plan.profile.process.threads,
        gvl: plan.profile.process.gvl,
        allocators: plan
            .allocators
            .iter()
            .map(|a| {
                let (settings, note) = a.child_env(plan.speed);
                AllocatorRecord {
                    name: a.name(),
                    id: a.id(),
                    version: None,
                    settings,
                    note,
                }
            })
            .collect(),
        interrupted: false,
        latency_note: "request latency: real time from the request's scheduled arrival \
            (simulated arrival / speed) to its completion, so queueing counts; service time: \
            from when a thread started it; I/O waits are real sleeps scaled by 1/speed, \
            compute runs at full speed"
            .into(),
    };
    let run_json = plan.out_dir.join("run.json");
    write_json(&run_json, &record)?;
    let mut csv = SamplesCsv::create(&plan.out_dir.join("samples.csv"))?;
    let mut summary = RunSummary {
        schema_version: SCHEMA_VERSION,
        workload: plan.profile.name.clone(),
        hours: plan.hours,
        seed: plan.seed,
        speed: plan.speed,
        threads: plan.profile.process.threads,
        interrupted: false,
        allocators: Vec::new(),
    };
    let boot_s = plan.profile.boot.duration_s;

    for (i, spec) in plan.allocators.iter().enumerate() {
        if interrupted.load(Ordering::SeqCst) {
            break;
        }
        let outcome = run_one(plan, spec, &mut csv, interrupted)
            .with_context(|| format!("running allocator {}", spec.name()))?;
        record.allocators[i].version = outcome.version.clone();
        let status = if outcome.status == Status::Ok && interrupted.load(Ordering::SeqCst) {
            Status::Interrupted
        } else {
            outcome.status
        };
        let s = AllocatorSummary::build(
            spec.name(),
            spec.id(),
            status,
            outcome.error,
            outcome.version,
            outcome.harness_rss,
            &outcome.samples,
            outcome.done.as_ref(),
            boot_s,
        );
        if !plan.quiet {
            eprintln!("{}", one_line(&s));
        }
        if let Some(lag) = s.max_lag_s.filter(|&l| l > LAG_WARN_SIM_S) {
            eprintln!(
                "warning: the replay of {} fell {lag:.0} simulated s behind its schedule \
                 (recorded as max_lag_s); its latencies include that delay and its purge timers \
                 saw compressed time: lower --speed or stop other work on this machine",
                spec.name()
            );
        }
        summary.allocators.push(s);
        summary.interrupted = interrupted.load(Ordering::SeqCst);
        write_json(&plan.out_dir.join("summary.json"), &summary)?;
        record.interrupted = summary.interrupted;
        write_json(&run_json, &record)?;
    }
    record.finished_at = Some(now_rfc3339());
    record.interrupted = interrupted.load(Ordering::SeqCst);
    summary.interrupted = record.interrupted;
    write_json(&run_json, &record)?;
    write_json(&plan.out_dir.join("summary.json"), &summary)?;
    Ok(summary)
}

fn mib(b: Option<u64>) -> String {
    b.map_or_else(
        || "-".into(),
        |b| format!("{:.1} MiB", b as f64 / 1048576.0),
    )
}

/// A one-line result for the terminal.
fn one_line(s: &AllocatorSummary) -> String {
    format!(
        "{:<14} {:?}: steady RSS {}, max {}, live {}, growth {}/h, {} requests, p99 {}",
        s.name,
        s.status,
        mib(s.rss_steady_bytes),
        mib(s.rss_max_bytes),
        mib(s.live_steady_bytes),
        s.rss_growth_bytes_per_hour
            .map_or_else(|| "-".into(), |g| format!("{:+.1} MiB", g / 1048576.0)),
        s.requests,
        s.latency_us.map_or_else(
            || "-".into(),
            |l| format!("{:.1} ms", l.p99 as f64 / 1000.0)
        ),
    ) + &s
        .error
        .as_ref()
        .map_or_else(String::new, |e| format!(" [{e}]"))
}

fn progress_bar(plan: &RunPlan, spec: &AllocSpec) -> ProgressBar {
    let total = (plan.total_sim_s() as u64).max(1);
    let bar = if plan.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
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

/// Runs one allocator's child to its end.
fn run_one(
    plan: &RunPlan,
    spec: &AllocSpec,
    csv: &mut SamplesCsv,
    interrupted: &Arc<AtomicBool>,
) -> anyhow::Result<ChildOutcome> {
    let exe = std::env::current_exe().context("finding the runner's own executable")?;
    let (env, _) = spec.child_env(plan.speed);
    let mut cmd = Command::new(&exe);
    cmd.arg("__child")
        .arg(spec.child_arg())
        .arg(plan.speed.to_string())
        .arg(if plan.profile.process.gvl {
            "gvl"
        } else {
            "no-gvl"
        })
        .arg(&plan.out_dir)
        .arg(spec.id())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // The child must not inherit settings meant for other allocators.
    for k in [
        "MALLOC_ARENA_MAX",
        "LD_PRELOAD",
        "_RJEM_MALLOC_CONF",
        "MIMALLOC_PURGE_DELAY",
    ] {
        cmd.env_remove(k);
    }
    cmd.envs(&env);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let stdin = child.stdin.take().context("child stdin")?;
    let stdout = child.stdout.take().context("child stdout")?;

    let workload = Workload::new(plan.profile.clone(), plan.seed, plan.hours);
    let stop = interrupted.clone();
    let feeder = std::thread::Builder::new()
        .name("feeder".into())
        .spawn(move || -> Result<(), workload::TraceError> {
            let header = workload.header();
            let mut w = TraceWriter::new(std::io::BufWriter::new(stdin), header)?;
            for (n, e) in workload.enumerate() {
                if n % 4096 == 0 && stop.load(Ordering::Relaxed) {
                    break;
                }
                w.write(&e)?;
            }
            w.finish()?;
            Ok(())
        })
        .context("starting the feeder thread")?;

    let bar = progress_bar(plan, spec);
    // Without a terminal (CI logs, nohup) the bar is hidden: print a plain line now and then.
    let plain_progress = !plan.quiet && bar.is_hidden();
    let mut next_plain_s = PLAIN_PROGRESS_EVERY_SIM_S;
    let mut out = ChildOutcome {
        status: Status::Ok,
        error: None,
        version: None,
        harness_rss: None,
        samples: Vec::new(),
        done: None,
    };
    let id = spec.id();
    for line in BufReader::new(stdout).lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                out.error = Some(format!("reading the child's output: {e}"));
                break;
            }
        };
        match serde_json::from_str::<ChildMsg>(&line) {
            Ok(ChildMsg::Ready {
                harness_rss_bytes,
                version,
            }) => {
                out.harness_rss = Some(harness_rss_bytes);
                out.version = Some(version);
            }
            Ok(ChildMsg::Sample(s)) => {
                csv.append(&id, &s)?;
                bar.set_position(s.sim_time_s as u64);
                let status = format!(
                    "RSS {:.0} MiB  live {:.0} MiB  {} req",
                    s.rss_bytes as f64 / 1048576.0,
                    s.live_bytes as f64 / 1048576.0,
                    s.requests
                );
                if plain_progress && s.sim_time_s >= next_plain_s {
                    eprintln!(
                        "{:<14} {:>6.0}/{:.0} sim s  {status}",
                        spec.name(),
                        s.sim_time_s,
                        plan.total_sim_s()
                    );
                    next_plain_s += PLAIN_PROGRESS_EVERY_SIM_S;
                }
                bar.set_message(status);
                out.samples.push(s);
            }
            Ok(ChildMsg::Done(d)) => out.done = Some(d),
            Ok(ChildMsg::Error { message }) => out.error = Some(message),
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
    // The feeder ends when the trace ends or the child's stdin closes.
    let feed = feeder.join();
    use std::os::unix::process::ExitStatusExt;
    if let Some(sig) = status.signal() {
        out.status = Status::Crashed;
        let what = format!(
            "child for {} killed by {}",
            spec.name(),
            crate::os::signal_name(sig)
        );
        out.error = Some(match out.error.take() {
            Some(e) => format!("{what}: {e}"),
            None => what,
        });
    } else if !status.success() {
        out.status = Status::Failed;
        out.error.get_or_insert_with(|| {
            format!(
                "child for {} exited with status {}",
                spec.name(),
                status.code().unwrap_or(-1)
            )
        });
    } else if out.done.is_none() {
        out.status = Status::Failed;
        out.error
            .get_or_insert_with(|| "child ended without reporting its results".into());
    } else if let Ok(Err(e)) = feed {
        out.status = Status::Failed;
        out.error = Some(format!("feeding the trace: {e}"));
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
