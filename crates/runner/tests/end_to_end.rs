//! End-to-end runs of the runner binary: a short two-allocator run, a crashing allocator, an
//! interrupted run, and the errors a user can provoke.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn runner() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_runner"));
    c.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    c
}

fn run(args: &[&str]) -> Output {
    runner().args(args).output().expect("runner starts")
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn short_run_of_two_allocators_writes_a_valid_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = run(&[
        "--alloc",
        "glibc,jemalloc",
        "--hours",
        "0.03",
        "--speed",
        "300",
        "--seed",
        "5",
        "--out",
        out.to_str().unwrap(),
        "--no-report",
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = json(&out.join("summary.json"));
    assert_eq!(s["schema_version"], 3);
    assert_eq!(s["workload"], "rails-api");
    assert_eq!(s["seed"], 5);
    assert_eq!(s["interrupted"], false);
    let allocs = s["allocators"].as_array().unwrap();
    assert_eq!(allocs.len(), 2);
    for (a, name) in allocs.iter().zip(["glibc", "jemalloc"]) {
        assert_eq!(a["name"], name);
        assert_eq!(a["status"], "ok", "{a}");
        let rss = a["rss_steady_bytes"].as_u64().unwrap();
        let live = a["live_steady_bytes"].as_u64().unwrap();
        // The process holds at least what the workload holds (boot data alone is 60 MiB).
        assert!(live > 50 << 20, "{name}: live {live}");
        assert!(rss > live, "{name}: rss {rss} <= live {live}");
        assert!(a["rss_max_bytes"].as_u64().unwrap() >= rss);
        assert!(a["requests"].as_u64().unwrap() > 100, "{a}");
        assert!(a["throughput_rps"].as_f64().unwrap() > 5.0, "{a}");
        for k in ["p50", "p90", "p99", "p999", "max"] {
            assert!(a["latency_us"][k].as_u64().unwrap() > 0, "{name} {k}");
        }
        assert!(a["rss_growth_bytes_per_hour"].is_number());
        for suffix in ["request-latency-us", "service-time-us", "call-latency-ns"] {
            assert!(
                out.join(format!("{name}.{suffix}.hdr")).is_file(),
                "{name}.{suffix}.hdr"
            );
        }
    }
    // Same workload, same seed: both allocators saw the same requests and the same live bytes.
    assert_eq!(allocs[0]["requests"], allocs[1]["requests"]);
    let r = json(&out.join("run.json"));
    assert!(r["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(r["machine"]["glibc"].as_str().unwrap().starts_with('2'));
    assert!(r["allocators"][1]["settings"]["_RJEM_MALLOC_CONF"]
        .as_str()
        .unwrap()
        .contains("dirty_decay_ms:33"));
    assert!(r["allocators"][1]["version"]
        .as_str()
        .unwrap()
        .contains("jemalloc 5."));
    assert_eq!(r["workload"]["profile"]["process"]["threads"], 5);
    let csv = std::fs::read_to_string(out.join("samples.csv")).unwrap();
    let mut lines = csv.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("allocator,repetition,sim_time_s,"));
    let rows: Vec<&str> = lines.collect();
    // At least one sample per simulated minute per allocator (0.03 h = 1.8 min + boot).
    for name in ["glibc", "jemalloc"] {
        assert!(
            rows.iter()
                .filter(|l| l.starts_with(&format!("{name},")))
                .count()
                >= 3
        );
    }
}

/// Builds a malloc shim that crashes after a number of calls, with the system C compiler
/// (panics without one: apt-get install -y build-essential).
fn crashing_preload(dir: &Path) -> PathBuf {
    let src = dir.join("crash.c");
    std::fs::write(
        &src,
        r#"
#include <stddef.h>
extern void *__libc_malloc(size_t);
static unsigned long calls;
void *malloc(size_t n) {
    /* A real invalid write, as a broken allocator would make. */
    if (++calls == 1000000) *(volatile int *)0 = 1;
    return __libc_malloc(n);
}
"#,
    )
    .expect("write crash.c");
    let so = dir.join("libcrash.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&so)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("no C compiler (cc: {e}): apt-get install -y build-essential"));
    assert!(
        status.success(),
        "cc failed to build the crashing preload library"
    );
    so
}

#[test]
fn a_crashing_allocator_is_reported_and_the_others_still_run() {
    let tmp = tempfile::tempdir().unwrap();
    let so = crashing_preload(tmp.path());
    let out = tmp.path().join("run");
    let alloc = format!("preload:{},glibc", so.display());
    let o = run(&[
        "--alloc",
        &alloc,
        "--hours",
        "0.05",
        "--speed",
        "300",
        "--out",
        out.to_str().unwrap(),
        "--no-report",
        "-q",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("preload:"), "{}", stderr(&o));
    let s = json(&out.join("summary.json"));
    let a = &s["allocators"][0];
    assert_eq!(a["status"], "crashed", "{a}");
    assert!(a["error"].as_str().unwrap().contains("SIGSEGV"), "{a}");
    assert_eq!(s["allocators"][1]["status"], "ok");
    // Its samples up to the crash are kept.
    let csv = std::fs::read_to_string(out.join("samples.csv")).unwrap();
    assert!(csv.lines().any(|l| l.starts_with("preload-libcrash.so,")));
}

#[test]
fn ctrl_c_stops_cleanly_and_keeps_the_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = interrupted_after(
        3,
        &[
            "--alloc",
            "glibc,jemalloc",
            "--hours",
            "2",
            // A fixed speed: the default (auto) would still be measuring when Ctrl-C comes.
            "--speed",
            "60",
            "--out",
            out.to_str().unwrap(),
            "--no-report",
            "-q",
        ],
    );
    assert_eq!(o.status.code(), Some(130));
    let s = json(&out.join("summary.json"));
    assert_eq!(s["interrupted"], true);
    let allocs = s["allocators"].as_array().unwrap();
    assert_eq!(allocs.len(), 1, "the second allocator must not start: {s}");
    assert_eq!(allocs[0]["status"], "interrupted");
    assert!(allocs[0]["rss_max_bytes"].as_u64().unwrap() > 0);
    assert!(out.join("glibc.request-latency-us.hdr").is_file());
    assert_eq!(json(&out.join("run.json"))["interrupted"], true);
}

#[test]
fn user_errors_are_clear_and_name_the_fix() {
    let o = run(&["--alloc", "tcmalloc", "--hours", "0.01"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("unknown allocator \"tcmalloc\"")
            && stderr(&o).contains("glibc-arena2"),
        "{}",
        stderr(&o)
    );

    let o = run(&["--alloc", "preload:/nonexistent/libx.so", "--hours", "0.01"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("/nonexistent/libx.so does not exist"),
        "{}",
        stderr(&o)
    );

    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "name = \"bad\"\n[process]\nthreads = \"five\"\n").unwrap();
    let o = run(&[
        "--alloc",
        "glibc",
        "--workload",
        bad.to_str().unwrap(),
        "--hours",
        "0.01",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("bad.toml"), "{}", stderr(&o));

    let o = run(&[
        "--alloc",
        "glibc",
        "--workload",
        "no-such-profile",
        "--hours",
        "0.01",
    ]);
    assert!(
        stderr(&o).contains("rails-api"),
        "known profiles are listed: {}",
        stderr(&o)
    );

    let o = run(&[
        "--alloc",
        "glibc",
        "--hours",
        "0.01",
        "--out",
        "/proc/version/run",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("/proc/version/run") && stderr(&o).contains("--out"),
        "{}",
        stderr(&o)
    );

    let o = run(&["--alloc", "glibc", "--hours", "-1"]);
    assert_ne!(o.status.code(), Some(0));
    let o = run(&["--alloc", "glibc", "--speed", "0", "--hours", "1"]);
    assert!(stderr(&o).contains("--speed"), "{}", stderr(&o));
}

#[test]
fn ctrl_c_while_auto_speed_measures_exits_130() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    // The default speed is auto: the first seconds are spent measuring each allocator.
    let o = interrupted_after(
        1,
        &[
            "--alloc",
            "glibc,jemalloc",
            "--hours",
            "1",
            "--out",
            out.to_str().unwrap(),
            "--no-report",
            "-q",
        ],
    );
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
}

/// Runs the runner with `args`, sends it SIGINT (Ctrl-C) after `secs` seconds, and returns
/// how it ended (stderr captured).
fn interrupted_after(secs: u64, args: &[&str]) -> Output {
    let child = runner()
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(secs));
    // SAFETY: kill with a valid pid of our own child and a valid signal number.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    child.wait_with_output().unwrap()
}
