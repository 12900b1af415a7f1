//! `runner record`: runs a program under the tracer (`LD_PRELOAD=liblonghaul_tracer.so`),
//! waits for it, and converts its raw records into a trace ([`crate::convert`]).
//!
//! The tracer writes `<out>.raw/<pid>.lhraw` for the program (and, with `--children`, one per
//! process it forks or starts); those are removed after conversion unless `--keep-raw`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use workload::trace::TraceMeta;

use crate::cli::RecordArgs;
use crate::convert::{convert, ConvertOptions, ConvertReport};

/// The tracer library's file name.
pub const TRACER_LIB: &str = "liblonghaul_tracer.so";

/// What a recording produced.
pub struct Recorded {
    pub trace: PathBuf,
    pub report: ConvertReport,
    /// Traces of child processes (with `--children`).
    pub children: Vec<(PathBuf, ConvertReport)>,
    /// How the program ended, in words, if not with status 0.
    pub program_failed: Option<String>,
}

/// Finds the tracer: `--tracer`, else next to this executable (where `cargo build` puts it, or
/// one folder up for test binaries in `deps/`).
pub fn find_tracer(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        anyhow::ensure!(
            p.is_file(),
            "--tracer {} does not exist (build it with `cargo build --release -p tracer`; it is target/release/{TRACER_LIB})",
            p.display()
        );
        return Ok(p.to_path_buf());
    }
    let exe = std::env::current_exe().context("finding the runner's own executable")?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    for d in [dir, &dir.join("deps"), dir.parent().unwrap_or(dir)] {
        let p = d.join(TRACER_LIB);
        if p.is_file() {
            return Ok(p);
        }
    }
    anyhow::bail!(
        "the tracer library {TRACER_LIB} is not next to {}: build it with `cargo build --release -p tracer` (or `cargo build --release` for everything), or give --tracer PATH",
        exe.display()
    )
}

/// Default trace path: `results/traces/<timestamp>-<program>.lhtrace`.
fn default_out(repo: &Path, command: &[String]) -> PathBuf {
    let program = command
        .first()
        .and_then(|c| Path::new(c).file_name())
        .map_or_else(|| "program".into(), |s| s.to_string_lossy().into_owned());
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    repo.join("results")
        .join("traces")
        .join(format!("{stamp}-{program}.lhtrace"))
}

/// `<dir>/<stem>.<suffix>` next to `out`.
fn beside(out: &Path, suffix: &str) -> PathBuf {
    let stem = out
        .file_stem()
        .map_or_else(|| "trace".into(), |s| s.to_string_lossy().into_owned());
    out.with_file_name(format!("{stem}.{suffix}"))
}

/// The folder of raw records for the trace `out` (`<out stem>.raw`), created or emptied of an
/// earlier recording's files, as an absolute path.
pub fn raw_dir_for(out: &Path) -> anyhow::Result<PathBuf> {
    let raw_dir = beside(out, "raw");
    prepare_raw_dir(&raw_dir)?;
    Ok(raw_dir.canonicalize().unwrap_or(raw_dir))
}

/// The environment that runs a program under the tracer, writing into `raw_dir`:
/// `LD_PRELOAD` with the tracer first (so that calls into an allocator already preloaded, given
/// in `preload`, are recorded too) and the tracer's settings. Only a process started by this
/// one is the traced program (`LONGHAUL_TRACE_PARENT`); its descendants are traced only with
/// `children`.
pub fn tracer_env(
    tracer: &Path,
    raw_dir: &Path,
    children: bool,
    preload: Option<&str>,
) -> Vec<(String, String)> {
    let preload = match preload {
        Some(p) if !p.is_empty() => format!("{}:{p}", tracer.display()),
        _ => tracer.display().to_string(),
    };
    vec![
        ("LD_PRELOAD".into(), preload),
        ("LONGHAUL_TRACE_DIR".into(), raw_dir.display().to_string()),
        (
            "LONGHAUL_TRACE_PARENT".into(),
            std::process::id().to_string(),
        ),
        (
            "LONGHAUL_TRACE_CHILDREN".into(),
            if children { "1" } else { "0" }.into(),
        ),
    ]
}

/// A recorded trace's header fields.
fn recorded_meta(command: &[String], started_at: Option<String>) -> TraceMeta {
    TraceMeta {
        origin: "recorded".into(),
        command: command.to_vec(),
        started_at,
        machine: serde_json::to_value(crate::os::machine()).ok(),
        ..TraceMeta::default()
    }
}

/// Converts the raw records of the traced process `pid` (in `raw_dir`) into the trace `out`.
pub fn convert_process(
    raw_dir: &Path,
    pid: u32,
    out: &Path,
    command: &[String],
    started_at: &str,
    opts: &ConvertOptions,
) -> anyhow::Result<ConvertReport> {
    let raw = raw_dir.join(format!("{pid}.lhraw"));
    if !raw.is_file() {
        anyhow::bail!(
            "{} ran ({}) but the tracer recorded nothing in {}: LD_PRELOAD does not reach statically linked or setuid programs, and a shell script that starts the program in a child process needs --children",
            command.first().map_or("the program", String::as_str),
            opts.program_exit.as_deref().unwrap_or("ended"),
            raw_dir.display()
        );
    }
    Ok(convert(
        &raw,
        out,
        recorded_meta(command, Some(started_at.to_string())),
        opts,
    )?)
}

/// Removes the raw records after conversion (failing to is only a warning).
pub fn remove_raw_dir(raw_dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(raw_dir) {
        eprintln!(
            "warning: cannot remove the raw files in {}: {e}",
            raw_dir.display()
        );
    }
}

/// Runs `args.command` under the tracer and converts what it recorded.
pub fn record(args: &RecordArgs, repo: &Path) -> anyhow::Result<Recorded> {
    let tracer = find_tracer(args.tracer.as_deref())?;
    let tracer = tracer.canonicalize().unwrap_or(tracer);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(repo, &args.command));
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create the folder of the trace {} (choose a writable place with --out)",
                out.display()
            )
        })?;
    }
    let raw_dir = raw_dir_for(&out)?;
    let preload = std::env::var("LD_PRELOAD").ok();
    let program = &args.command[0];
    let mut cmd = Command::new(program);
    cmd.args(&args.command[1..]).envs(tracer_env(
        &tracer,
        &raw_dir,
        args.children,
        preload.as_deref(),
    ));
    let started_at = crate::results::now_rfc3339();
    let mut child = cmd.spawn().with_context(|| {
        format!(
            "cannot start {program:?} (is it installed and on PATH? give the program after `--`)"
        )
    })?;
    let pid = child.id();
    let status = child
        .wait()
        .with_context(|| format!("waiting for {program}"))?;
    use std::os::unix::process::ExitStatusExt;
    let exit = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by {}", crate::os::signal_name(s)),
        _ => "unknown".into(),
    };
    let program_failed = (!status.success()).then(|| exit.clone());

    let opts = ConvertOptions {
        min_gap_ns: args.min_gap_us.saturating_mul(1000),
        program_exit: Some(exit),
    };
    let report = convert_process(&raw_dir, pid, &out, &args.command, &started_at, &opts)?;
    let mut children = Vec::new();
    if args.children {
        // Other processes: `<pid>.lhraw`, and `<pid>.<k>.lhraw` for program images a process
        // replaced by `exec`.
        let root_name = format!("{pid}.lhraw");
        let mut others: Vec<(String, PathBuf)> = std::fs::read_dir(&raw_dir)
            .with_context(|| format!("reading {}", raw_dir.display()))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let p = e.path();
                let name = p.file_name()?.to_str()?;
                let stem = name.strip_suffix(".lhraw")?.to_string();
                (name != root_name).then_some((stem, p))
            })
            .collect();
        others.sort();
        for (child, raw) in others {
            let child_pid = child.clone();
            let path = beside(&out, &format!("{child}.lhtrace"));
            let opts = ConvertOptions {
                program_exit: None,
                ..opts.clone()
            };
            match convert(
                &raw,
                &path,
                recorded_meta(&args.command, Some(started_at.clone())),
                &opts,
            ) {
                Ok(r) => children.push((path, r)),
                Err(e) => eprintln!("warning: child process {child_pid}: {e}"),
            }
        }
    }
    if !args.keep_raw {
        remove_raw_dir(&raw_dir);
    }
    Ok(Recorded {
        trace: out,
        report,
        children,
        program_failed,
    })
}

/// Creates the folder for raw files, or empties an earlier one of ours (only `.lhraw` files).
fn prepare_raw_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "lhraw") {
                std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
            } else {
                anyhow::bail!(
                    "{} holds files that are not raw recordings ({}): move them, or choose another --out",
                    dir.display(),
                    p.display()
                );
            }
        }
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create {} for the raw records (choose a writable place with --out)",
            dir.display()
        )
    })
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / 1048576.0)
}

/// A few lines about a converted recording, for stderr.
pub fn summary(path: &Path, r: &ConvertReport) -> String {
    let per_event = if r.events > 0 {
        r.trace_bytes as f64 / r.events as f64
    } else {
        0.0
    };
    let mut s = format!(
        "recorded pid {}: {} calls on {} threads in {:.2} s{}\n\
         trace {}: {} events ({} Resume, {} ThreadEnd), {} bytes = {:.2} bytes/event (raw records: {:.2} bytes/call)\n\
         live at end {} in {} blocks, peak live {}",
        r.pid,
        r.calls,
        r.threads.len(),
        r.duration_s,
        if r.exited { "" } else { " (the program did not exit normally: records up to its end are kept)" },
        path.display(),
        r.events,
        r.resumes,
        r.thread_ends,
        r.trace_bytes,
        per_event,
        r.raw_bytes as f64 / r.calls.max(1) as f64,
        mib(r.live_bytes_at_end),
        r.live_blocks_at_end,
        mib(r.peak_live_bytes),
    );
    let mut notes = Vec::new();
    if r.unknown_frees > 0 {
        notes.push(format!(
            "{} frees of memory allocated before tracing started (dropped)",
            r.unknown_frees
        ));
    }
    if r.implicit_frees > 0 {
        notes.push(format!(
            "{} allocations returned a still-live address (its free was not seen; freed first)",
            r.implicit_frees
        ));
    }
    if r.untraced_calls > 0 {
        notes.push(format!(
            "{} calls passed on unrecorded (tracer start-up, signal handlers, after a thread's end)",
            r.untraced_calls
        ));
    }
    if r.failed_allocations > 0 {
        notes.push(format!(
            "{} allocations returned NULL",
            r.failed_allocations
        ));
    }
    for n in notes.iter().chain(&r.problems) {
        s.push_str("\nnote: ");
        s.push_str(n);
    }
    s
}
