//! A **live run**: a real server started under each allocator in turn (fresh each time), driven
//! with HTTP load from a mix for a fixed duration, its processes' memory sampled every second,
//! then stopped, all written as a run directory like a synthetic run's (`mode: "live"`, times
//! in real seconds).
//!
//! Bounded: the load goes to 127.0.0.1 only and stops by itself; the server runs in its own
//! process group, which is killed if it does not stop within the stop timeout.
//!
//! With a recording ([`LiveRecording`], one allocator), the server also runs under the tracer
//! and its raw records are converted into a trace after it stops ([`crate::record`]), so the
//! trace is the program under the live run's own load.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::alloc_spec::{AllocEnv, AllocSpec};
use crate::http_load::{LoadOutcome, LoadPlan, LoadProgress, Pacing};
use crate::os::ProcessFigures;
use crate::protocol::Sample;
use crate::results::{now_rfc3339, sample_row};
use crate::under_test::Counters;
use rundir::atomic::write_json;
use rundir::memory::memory_metrics;
use rundir::run_dir::{RUN_JSON, SAMPLES_CSV, SUMMARY_JSON};
use rundir::{
    AllocatorRecord, AllocatorSummary, Cell, Cost, Figures, LoadSummary, Percentiles, RunRecord,
    RunSummary, SamplesWriter, Status, WorkloadRecord, SCHEMA_VERSION,
};

/// How often the server's memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// PSS (smaps_rollup, which walks every page table entry) is read at every this many samples.
const PSS_EVERY: u64 = 5;
/// Lines of the server's log shown when it fails.
const LOG_TAIL_LINES: usize = 20;
/// A load generator whose sends fell further behind schedule than this was itself too slow
/// (or the server saturated every connection): its latencies are marked invalid.
const SEND_DELAY_LIMIT_MS: f64 = 1000.0;

/// Everything a live run needs.
pub struct LivePlan {
    pub allocators: Vec<AllocSpec>,
    /// The server command and its arguments; it must listen on 127.0.0.1:$PORT.
    pub server: Vec<String>,
    pub port: Option<u16>,
    pub ready_path: String,
    pub ready_timeout: Duration,
    pub stop_timeout: Duration,
    /// The load, without its base URL (set per allocator from the port).
    pub load: LoadPlan,
    pub alloc_env: Vec<AllocEnv>,
    pub alloc_env_given: Vec<String>,
    pub out_dir: PathBuf,
    pub command: Vec<String>,
    pub repo_dir: PathBuf,
    pub quiet: bool,
    /// Record the server's malloc calls too (one allocator only).
    pub record: Option<LiveRecording>,
}

/// A recording taken during a live run: the server runs under the tracer as well.
pub struct LiveRecording {
    /// The tracer library.
    pub tracer: PathBuf,
    /// The trace to write.
    pub trace: PathBuf,
}

/// Our allocator's preload library, relative to the checkout.
const OURS_PRELOAD: &str = "target/release/liblhalloc_preload.so";

/// The shared library an allocator is preloaded from in a live run, and other environment.
fn live_env(spec: &AllocSpec, repo: &Path) -> anyhow::Result<(BTreeMap<String, String>, String)> {
    let mut env = BTreeMap::new();
    let debian = |lib: &str, package: &str| -> anyhow::Result<PathBuf> {
        ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"]
            .iter()
            .map(|d| Path::new(d).join(lib))
            .find(|p| p.is_file())
            .with_context(|| {
                format!(
                    "{lib} is not installed: install Debian's {package} (apt-get install {package}), or give the library with --alloc preload:PATH"
                )
            })
    };
    let note = match spec {
        AllocSpec::Glibc => "glibc malloc, defaults".to_string(),
        AllocSpec::GlibcArena2 => {
            env.insert("MALLOC_ARENA_MAX".into(), "2".into());
            "glibc malloc, MALLOC_ARENA_MAX=2".into()
        }
        AllocSpec::Jemalloc => {
            let lib = debian("libjemalloc.so.2", "libjemalloc2")?;
            env.insert("LD_PRELOAD".into(), lib.display().to_string());
            // Its statistics at exit go to the server's log.
            env.insert("MALLOC_CONF".into(), "stats_print:true".into());
            format!(
                "{} preloaded, defaults (statistics at exit in the server log)",
                lib.display()
            )
        }
        AllocSpec::Mimalloc => {
            let lib = debian("libmimalloc.so.2", "libmimalloc2.0")?;
            env.insert("LD_PRELOAD".into(), lib.display().to_string());
            env.insert("MIMALLOC_SHOW_STATS".into(), "1".into());
            format!(
                "{} preloaded, defaults (statistics at exit in the server log)",
                lib.display()
            )
        }
        AllocSpec::Ours => {
            let lib = repo.join(OURS_PRELOAD);
            if !lib.is_file() {
                anyhow::bail!(
                    "{} is missing: build it with `cargo build --release -p lhalloc-preload`",
                    lib.display()
                );
            }
            let lib = lib.canonicalize().unwrap_or(lib);
            env.insert("LD_PRELOAD".into(), lib.display().to_string());
            // Named relative to the checkout: run.json travels, this machine's path does not.
            format!("{OURS_PRELOAD} of this checkout preloaded, defaults")
        }
        AllocSpec::Preload(p) => {
            env.insert("LD_PRELOAD".into(), p.display().to_string());
            format!("{} preloaded", p.display())
        }
    };
    Ok((env, note))
}

/// What a live run started and sent (`run.json` -> `workload.live`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LiveRecord {
    pub server_command: Vec<String>,
    pub mix: String,
    pub pacing: Pacing,
    pub connections: u32,
    pub duration_s: f64,
    pub ready_path: String,
    /// Seed of the mix's random choices.
    pub seed: u64,
    /// The trace recorded under this load (`--record`), and what its conversion reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_trace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<String>,
}

/// Runs every allocator of the plan against the server; returns the summary written.
pub fn run(plan: &LivePlan, interrupted: &Arc<AtomicBool>) -> anyhow::Result<RunSummary> {
    rundir::run_dir::create(&plan.out_dir, "--out")?;
    let (commit, dirty) = crate::results::git_commit(&plan.repo_dir);
    let envs: Vec<(BTreeMap<String, String>, String)> = plan
        .allocators
        .iter()
        .map(|a| {
            let (mut env, note) = live_env(a, &plan.repo_dir)?;
            for e in plan.alloc_env.iter().filter(|e| {
                e.alloc
                    .as_deref()
                    .map_or(true, |x| x == a.name() || x == a.id())
            }) {
                env.insert(e.name.clone(), e.value.clone());
            }
            Ok((env, note))
        })
        .collect::<anyhow::Result<_>>()?;
    let duration_s = plan.load.duration.as_secs_f64();
    let mut live = LiveRecord {
        server_command: plan.server.clone(),
        mix: plan.load.mix.file.display().to_string(),
        pacing: plan.load.pacing,
        connections: plan.load.connections,
        duration_s,
        ready_path: plan.ready_path.clone(),
        seed: plan.load.seed,
        recorded_trace: plan.record.as_ref().map(|r| r.trace.display().to_string()),
        recording: None,
    };
    let mut record = RunRecord {
        schema_version: SCHEMA_VERSION,
        mode: "live".into(),
        command: plan.command.clone(),
        commit,
        commit_dirty: dirty,
        started_at: now_rfc3339(),
        finished_at: None,
        machine: crate::os::machine(),
        workload: WorkloadRecord {
            name: server_name(&plan.server),
            path: plan.server.join(" "),
            kind: "live".into(),
            profile: None,
            trace: None,
            live: serde_json::to_value(&live).ok(),
        },
        hours: duration_s / 3600.0,
        seed: plan.load.seed,
        speed: Some(1.0),
        speed_mode: "live".into(),
        speed_calibration: None,
        threads: 0,
        gvl: false,
        allocators: plan
            .allocators
            .iter()
            .zip(&envs)
            .map(|(a, (env, note))| AllocatorRecord {
                name: a.name(),
                id: a.id(),
                version: None,
                settings: env.clone(),
                ours_purge_delay_ns: None,
                note: Some(format!("{note}; purge timers see real time (no scaling)")),
                in_force: None,
            })
            .collect(),
        scrubbed_env: crate::alloc_spec::scrubbed(std::env::vars()),
        alloc_env: plan.alloc_env_given.clone(),
        load_start: crate::os::load_average(),
        load_end: None,
        interrupted: false,
        repeat: 1,
        order: plan
            .allocators
            .iter()
            .map(|a| Cell {
                allocator: a.id(),
                repetition: 1,
            })
            .collect(),
        shard: None,
        shards: Vec::new(),
        build: Some(crate::results::build_profile().into()),
        test_hook: None,
        latency_note: "Live run: request latency from each request's intended send time (open \
            loop at a fixed rate: a stalled server makes every request due during the stall \
            wait) to the end of its answer, µs; service time from the actual send. The load \
            generator runs on the same machine as the server."
            .into(),
    };
    let run_json = plan.out_dir.join(RUN_JSON);
    let summary_json = plan.out_dir.join(SUMMARY_JSON);
    write_json(&run_json, &record)?;
    let mut csv = SamplesWriter::create(&plan.out_dir.join(SAMPLES_CSV))?;
    let mut summary = RunSummary {
        schema_version: SCHEMA_VERSION,
        mode: "live".into(),
        workload: record.workload.name.clone(),
        hours: record.hours,
        seed: plan.load.seed,
        speed: Some(1.0),
        threads: 0,
        interrupted: false,
        repeat: 1,
        order: record.order.clone(),
        allocators: Vec::new(),
    };
    for (i, spec) in plan.allocators.iter().enumerate() {
        if interrupted.load(Ordering::SeqCst) {
            break;
        }
        if !plan.quiet {
            eprintln!(
                "live: {} under {} for {:.0} s -> {}",
                record.workload.name,
                spec.name(),
                duration_s,
                plan.out_dir.display()
            );
        }
        let (s, recording) = run_one(plan, spec, &envs[i].0, &mut csv, interrupted)
            .with_context(|| format!("live run of {}", spec.name()))?;
        if let Some(text) = recording {
            if !plan.quiet {
                eprintln!("{text}");
            }
            live.recording = Some(text);
            record.workload.live = serde_json::to_value(&live).ok();
        }
        record.allocators[i].version = Some(envs[i].1.clone());
        if !plan.quiet {
            eprintln!("{}", one_line(&s));
        }
        summary.allocators.push(s);
        summary.interrupted = interrupted.load(Ordering::SeqCst);
        write_json(&summary_json, &summary)?;
        record.interrupted = summary.interrupted;
        write_json(&run_json, &record)?;
    }
    record.finished_at = Some(now_rfc3339());
    record.load_end = crate::os::load_average();
    record.interrupted = interrupted.load(Ordering::SeqCst);
    summary.interrupted = record.interrupted;
    write_json(&run_json, &record)?;
    write_json(&summary_json, &summary)?;
    Ok(summary)
}

fn server_name(server: &[String]) -> String {
    // `workloads/rails-app/serve` -> `rails-app`; `python3 -m http.server` -> `python3`.
    let first = server.first().map(String::as_str).unwrap_or("server");
    let p = Path::new(first);
    let name = match p.file_name().and_then(|n| n.to_str()) {
        Some("serve") | Some("start") | Some("run") => p
            .parent()
            .and_then(|d| d.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or("server"),
        Some(n) => n,
        None => "server",
    };
    format!("live-{name}")
}

fn mib(b: Option<u64>) -> String {
    b.map_or_else(
        || "-".into(),
        |b| format!("{:.1} MiB", b as f64 / 1048576.0),
    )
}

fn one_line(a: &AllocatorSummary) -> String {
    let s = &a.figures;
    let load = s.load.as_ref();
    format!(
        "{:<14} {:?}: steady RSS {}, PSS {}, max {}, growth {}/h, {} requests ({} errors), server CPU/request {}, request p99 {}",
        a.name,
        a.status,
        mib(s.rss_steady_bytes),
        mib(s.pss_steady_bytes),
        mib(s.rss_max_bytes),
        s.rss_growth_bytes_per_hour
            .map_or_else(|| "-".into(), |g| format!("{:+.1} MiB", g / 1048576.0)),
        load.map_or(0, |l| l.completed),
        load.map_or(0, |l| l.errors),
        s.cost
            .as_ref()
            .and_then(|c| c.cpu_per_request_us)
            .map_or_else(|| "-".into(), |c| format!("{:.1} ms", c / 1e3)),
        if s.timing_valid {
            s.latency_us
                .map_or_else(|| "-".into(), |l| format!("{:.0} ms", l.p99 as f64 / 1e3))
        } else {
            "invalid".into()
        },
    ) + &a
        .error
        .as_ref()
        .map_or_else(String::new, |e| format!(" [{e}]"))
}

/// The last lines of the server's log.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
    format!("last lines of {}:\n{tail}", path.display())
}

/// Sums figures over the server's processes.
fn tree_figures(pid: u32, rollup: bool, buf: &mut String) -> Option<(ProcessFigures, u32)> {
    let tree = crate::os::process_tree(pid);
    let mut total = ProcessFigures::default();
    let mut n = 0;
    for p in tree {
        let Some(f) = crate::os::process_figures(p, rollup, buf) else {
            continue;
        };
        n += 1;
        total.rss += f.rss;
        total.rss_anon = Some(total.rss_anon.unwrap_or(0) + f.rss_anon.unwrap_or(0));
        if rollup {
            total.pss = Some(total.pss.unwrap_or(0) + f.pss.unwrap_or(0));
            total.private_dirty =
                Some(total.private_dirty.unwrap_or(0) + f.private_dirty.unwrap_or(0));
        }
        total.usage.add(&f.usage);
    }
    (n > 0).then_some((total, n))
}

/// Checks that every process of the server runs under the allocator it was given.
fn check_allocator(pid: u32, env: &BTreeMap<String, String>) -> Result<String, String> {
    let tree = crate::os::process_tree(pid);
    if let Some(lib) = env.get("LD_PRELOAD") {
        let lib = Path::new(lib);
        for p in &tree {
            match crate::os::maps_file(*p, lib) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(format!(
                        "process {p} of the server does not map {} (is the library for this architecture, and does the server keep LD_PRELOAD?)",
                        lib.display()
                    ))
                }
                Err(e) => return Err(format!("reading /proc/{p}/maps: {e}")),
            }
        }
        return Ok(format!(
            "{} mapped in {} process(es)",
            lib.display(),
            tree.len()
        ));
    }
    if let Some(v) = env.get("MALLOC_ARENA_MAX") {
        for p in &tree {
            if crate::os::process_env(*p, "MALLOC_ARENA_MAX").as_deref() != Some(v) {
                return Err(format!(
                    "process {p} of the server lacks MALLOC_ARENA_MAX={v}"
                ));
            }
        }
    }
    Ok(format!("glibc malloc in {} process(es)", tree.len()))
}

/// Stops the server: SIGTERM, then SIGKILL to its process group after the timeout.
fn stop_server(child: &mut Child, timeout: Duration) -> String {
    if let Ok(Some(status)) = child.try_wait() {
        return format!("had already exited: {status}");
    }
    let pid = child.id();
    let _ = crate::os::signal(pid, libc::SIGTERM);
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Ok(Some(status)) = child.try_wait() {
            // Workers left behind by a master that died are killed with the group.
            let _ = crate::os::signal_group(pid, libc::SIGKILL);
            return format!(
                "stopped by SIGTERM in {:.1} s: {status}",
                start.elapsed().as_secs_f64()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = crate::os::signal_group(pid, libc::SIGKILL);
    let status = child.wait();
    format!(
        "did not stop within {:.0} s of SIGTERM: killed ({})",
        timeout.as_secs_f64(),
        status.map_or_else(|e| e.to_string(), |s| s.to_string())
    )
}

/// One allocator: start, wait, load and sample, stop, summarise; with a recording, convert it
/// and say what it holds.
fn run_one(
    plan: &LivePlan,
    spec: &AllocSpec,
    env: &BTreeMap<String, String>,
    csv: &mut SamplesWriter,
    interrupted: &Arc<AtomicBool>,
) -> anyhow::Result<(AllocatorSummary, Option<String>)> {
    let port = match plan.port {
        Some(p) => p,
        None => crate::os::free_port().context("finding a free port on 127.0.0.1")?,
    };
    let log_path = plan.out_dir.join(format!("{}.server.log", spec.id()));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let log2 = log
        .try_clone()
        .with_context(|| format!("opening {}", log_path.display()))?;
    let (program, args) = plan
        .server
        .split_first()
        .context("no server command after `--`")?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0);
    for (k, _) in std::env::vars() {
        if crate::alloc_spec::is_allocator_var(&k) {
            cmd.env_remove(k);
        }
    }
    cmd.env("PORT", port.to_string()).envs(env);
    let raw_dir = match &plan.record {
        Some(r) => {
            if let Some(dir) = r.trace.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating the folder of {}", r.trace.display()))?;
            }
            let raw_dir = crate::record::raw_dir_for(&r.trace)?;
            cmd.envs(crate::record::tracer_env(
                &r.tracer,
                &raw_dir,
                false,
                env.get("LD_PRELOAD").map(String::as_str),
            ));
            Some(raw_dir)
        }
        None => None,
    };
    let started_at = now_rfc3339();
    let mut summary = AllocatorSummary {
        name: spec.name(),
        id: spec.id(),
        status: Status::Ok,
        error: None,
        figures: Figures::default(),
        repetitions: Vec::new(),
        spread: BTreeMap::new(),
    };
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            summary.status = Status::Failed;
            summary.error = Some(format!("cannot start {program}: {e}"));
            return Ok((summary, None));
        }
    };
    let pid = child.id();
    let ready_url = format!("http://127.0.0.1:{port}{}", plan.ready_path);
    let boot = crate::http_load::wait_ready(&ready_url, plan.ready_timeout, || {
        matches!(child.try_wait(), Ok(None))
    });
    let boot_s = match boot {
        Ok(d) => d.as_secs_f64(),
        Err(e) => {
            let stop = stop_server(&mut child, plan.stop_timeout);
            summary.status = Status::Failed;
            summary.error = Some(format!(
                "the server did not come up: {e}; it {stop}; {}",
                log_tail(&log_path)
            ));
            return Ok((summary, None));
        }
    };
    let checked = check_allocator(pid, env);
    if let Err(e) = &checked {
        let stop = stop_server(&mut child, plan.stop_timeout);
        summary.status = Status::Failed;
        summary.error = Some(format!("{e}; the server {stop}"));
        return Ok((summary, None));
    }

    // Load on the main thread, samples on another.
    let progress = LoadProgress::default();
    let stop_load = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let mut load = plan.load.clone();
    load.base = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    let mut buf = String::new();
    let base_usage = tree_figures(pid, false, &mut buf).map(|(f, _)| f.usage);
    let (outcome, samples, died) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut samples: Vec<Sample> = Vec::new();
            let mut buf = String::new();
            let mut k = 0u64;
            let mut died = None;
            loop {
                let finished = done.load(Ordering::Acquire);
                let rollup = finished || k % PSS_EVERY == 0;
                match tree_figures(pid, rollup, &mut buf) {
                    Some((f, _n)) => {
                        let t = start.elapsed().as_secs_f64();
                        let usage = base_usage.map_or(f.usage, |b| f.usage.since(&b));
                        samples.push(Sample {
                            sim_time_s: t,
                            real_time_s: t,
                            rss_bytes: f.rss,
                            rss_anon_bytes: f.rss_anon,
                            private_dirty_bytes: f.private_dirty,
                            lazyfree_bytes: None,
                            harness_rss_bytes: 0,
                            live_bytes: 0,
                            requests: progress.completed.load(Ordering::Relaxed),
                            lag_s: progress.window_send_delay_us.swap(0, Ordering::Relaxed) as f64
                                / 1e6,
                            usage,
                            alloc_time_s: 0.0,
                            touch_time_s: 0.0,
                            pss_bytes: f.pss,
                            counters: Counters::default(),
                        });
                    }
                    None => {
                        died = Some(start.elapsed().as_secs_f64());
                        stop_load.store(true, Ordering::Relaxed);
                        break;
                    }
                }
                if finished {
                    break;
                }
                if interrupted.load(Ordering::Relaxed) {
                    stop_load.store(true, Ordering::Relaxed);
                }
                k += 1;
                let next = start + SAMPLE_EVERY * k as u32;
                while Instant::now() < next && !done.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            (samples, died)
        });
        let outcome = crate::http_load::run(&load, &progress, &stop_load);
        done.store(true, Ordering::Release);
        let (samples, died) = sampler.join().unwrap_or_default();
        (outcome, samples, died)
    });
    let stop = stop_server(&mut child, plan.stop_timeout);
    let outcome = outcome.context("running the load generator")?;
    let rows: Vec<rundir::Sample> = samples
        .iter()
        .map(|s| sample_row(&spec.id(), 1, s))
        .collect();
    for row in &rows {
        csv.append(row)?;
    }
    outcome
        .latencies
        .write_requests(&plan.out_dir, &spec.id(), 1)?;
    fill(&mut summary, plan, &rows, &outcome, boot_s, stop.clone());
    if let Some(t) = died {
        summary.status = Status::Crashed;
        summary.error = Some(format!(
            "the server died {t:.0} s into the load; it {stop}; {}",
            log_tail(&log_path)
        ));
    } else if interrupted.load(Ordering::SeqCst) {
        summary.status = Status::Interrupted;
    }
    if let Ok(note) = checked {
        summary.figures.version = Some(note);
    }
    let recording = match (&plan.record, raw_dir) {
        (Some(r), Some(raw_dir)) => {
            let opts = crate::convert::ConvertOptions {
                program_exit: Some(stop),
                ..Default::default()
            };
            let report = crate::record::convert_process(
                &raw_dir,
                pid,
                &r.trace,
                &plan.server,
                &started_at,
                &opts,
            )?;
            crate::record::remove_raw_dir(&raw_dir);
            Some(crate::record::summary(&r.trace, &report))
        }
        _ => None,
    };
    Ok((summary, recording))
}

/// Fills a live allocator's summary from its samples and load.
fn fill(
    a: &mut AllocatorSummary,
    plan: &LivePlan,
    samples: &[rundir::Sample],
    o: &LoadOutcome,
    boot_s: f64,
    stop: String,
) {
    let m = memory_metrics(samples);
    let s = &mut a.figures;
    s.sim_hours_reached = samples.last().map_or(0.0, |x| x.sim_time_s / 3600.0);
    s.rss_end_bytes = m.rss_end;
    s.rss_max_bytes = m.rss_max;
    s.rss_steady_bytes = m.rss_steady;
    s.rss_growth_bytes_per_hour = m.growth_per_hour;
    s.pss_steady_bytes = m.pss_steady;
    s.requests = o.completed;
    s.throughput_rps = (o.real_seconds > 0.0).then(|| o.completed as f64 / o.real_seconds);
    s.real_seconds = Some(o.real_seconds);
    let last = samples.last();
    let cpu_user_s = last.and_then(|x| x.cpu_user_s).unwrap_or(0.0);
    let cpu_sys_s = last.and_then(|x| x.cpu_sys_s).unwrap_or(0.0);
    let minor_faults = last.and_then(|x| x.minor_faults).unwrap_or(0);
    s.cost = Some(Cost {
        cpu_user_s,
        cpu_sys_s,
        cpu_per_request_us: (o.completed > 0)
            .then(|| (cpu_user_s + cpu_sys_s) * 1e6 / o.completed as f64),
        minor_faults,
        major_faults: last.and_then(|x| x.major_faults).unwrap_or(0),
        minor_faults_per_request: (o.completed > 0)
            .then(|| minor_faults as f64 / o.completed as f64),
        ..Cost::default()
    });
    let delay_ms = o.max_send_delay_us as f64 / 1e3;
    s.max_lag_s = Some(delay_ms / 1e3);
    s.latency_us = Some(Percentiles::of(&o.latencies.request_us));
    s.service_us = Some(Percentiles::of(&o.latencies.service_us));
    let (valid, note) = match plan.load.pacing {
        Pacing::ClosedLoop => (
            true,
            Some("closed loop: latency from the actual send, so server stalls are hidden (coordinated omission)".to_string()),
        ),
        Pacing::Rate(_) if delay_ms > SEND_DELAY_LIMIT_MS || o.unsent_at_end > 0 => (
            false,
            Some(format!(
                "sends fell up to {delay_ms:.0} ms behind schedule and {} requests were still queued at the end: the server (or the load generator sharing its machine) could not keep up with the rate; lower --rate",
                o.unsent_at_end
            )),
        ),
        Pacing::Rate(_) => (true, None),
    };
    s.timing_valid = valid;
    s.timing_note = note;
    if o.errors > 0 && a.status == Status::Ok {
        let first = o
            .kinds
            .iter()
            .find_map(|k| k.first_error.clone())
            .unwrap_or_default();
        a.error = Some(format!(
            "{} of {} requests failed (first: {first})",
            o.errors, o.sent
        ));
    }
    let (pacing, rate) = match plan.load.pacing {
        Pacing::Rate(r) => ("rate".to_string(), Some(r)),
        Pacing::ClosedLoop => ("closed_loop".to_string(), None),
    };
    let s = &mut a.figures;
    s.load = Some(LoadSummary {
        pacing,
        rate_per_s: rate,
        connections: plan.load.connections,
        sent: o.sent,
        completed: o.completed,
        errors: o.errors,
        unsent_at_end: o.unsent_at_end,
        completed_per_s: s.throughput_rps.unwrap_or(0.0),
        max_send_delay_ms: delay_ms,
        response_bytes: o.response_bytes,
        kinds: o.kinds.clone(),
        server_stop: Some(stop),
        boot_s: Some(boot_s),
    });
}
