//! `runner live` for real: a Python HTTP server under two allocators, servers that fail to boot
//! or die during the load, and the bundled Rails app in single and cluster mode (short runs).
//! The servers are real processes started and stopped by the runner; nothing listens beyond
//! 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn live(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runner"))
        .current_dir(repo())
        .arg("live")
        .args(args)
        .output()
        .expect("runner starts")
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn mix(dir: &Path) -> PathBuf {
    let p = dir.join("mix.toml");
    std::fs::write(
        &p,
        "format = 1\n[[request]]\nname = \"index\"\nmethod = \"GET\"\npath = \"/\"\nweight = 3\n\
         [[request]]\nname = \"file\"\nmethod = \"GET\"\npath = \"/Cargo.toml\"\nweight = 1\n",
    )
    .unwrap();
    p
}

const PYTHON_SERVER: &str = "exec python3 -m http.server --bind 127.0.0.1 $PORT";

fn require(program: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{program} is not installed: this test needs it (.ci/run installs it)"
    );
}

#[test]
fn a_python_server_under_two_allocators_gives_a_live_run_directory() {
    require("python3");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let m = mix(tmp.path());
    let o = live(&[
        "--alloc",
        "glibc-arena2,jemalloc",
        "--duration",
        "4s",
        "--rate",
        "40",
        "--mix",
        m.to_str().unwrap(),
        "--ready-path",
        "/",
        "--out",
        out.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        PYTHON_SERVER,
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let s = json(&out.join("summary.json"));
    assert_eq!(s["mode"], "live");
    assert_eq!(json(&out.join("run.json"))["mode"], "live");
    for a in s["allocators"].as_array().unwrap() {
        assert_eq!(a["status"], "ok", "{a}");
        let load = &a["load"];
        // 4 s at 40 requests/s, every one answered.
        assert!(load["completed"].as_u64().unwrap() >= 150, "{load}");
        assert_eq!(load["errors"], 0, "{load}");
        assert!(a["rss_steady_bytes"].as_u64().unwrap() > 1 << 20);
        assert!(a["pss_steady_bytes"].as_u64().unwrap() > 1 << 20);
        assert!(a["cost"]["cpu_per_request_us"].as_f64().unwrap() > 0.0);
        assert!(load["server_stop"]
            .as_str()
            .unwrap()
            .contains("stopped by SIGTERM"));
    }
    // It really ran under each allocator.
    let allocs = s["allocators"].as_array().unwrap();
    assert!(allocs[1]["version"]
        .as_str()
        .unwrap()
        .contains("libjemalloc.so.2 mapped in"));
    let csv = std::fs::read_to_string(out.join("samples.csv")).unwrap();
    assert!(csv.lines().filter(|l| l.starts_with("jemalloc,")).count() >= 4);
    assert!(out.join("jemalloc.request-latency-us.hdr").is_file());
    assert!(out.join("jemalloc.server.log").is_file());
    assert!(out.join("report/index.html").is_file(), "{stderr}");
}

#[test]
fn a_server_that_fails_to_boot_or_dies_is_reported_and_the_others_still_run() {
    require("python3");
    let tmp = tempfile::tempdir().unwrap();
    let m = mix(tmp.path());
    // Boots only under glibc; under jemalloc it prints and exits at once.
    let out = tmp.path().join("boot");
    let script = format!(
        "if [ -n \"$LD_PRELOAD\" ]; then echo 'boom: no config' >&2; exit 3; fi; {PYTHON_SERVER}"
    );
    let o = live(&[
        "--alloc",
        "jemalloc,glibc",
        "--duration",
        "2s",
        "--rate",
        "20",
        "--mix",
        m.to_str().unwrap(),
        "--ready-path",
        "/",
        "--out",
        out.to_str().unwrap(),
        "--no-report",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = json(&out.join("summary.json"));
    let a = &s["allocators"];
    assert_eq!(a[0]["status"], "failed");
    let e = a[0]["error"].as_str().unwrap();
    assert!(
        e.contains("did not come up") && e.contains("boom: no config"),
        "{e}"
    );
    assert_eq!(a[1]["status"], "ok", "{}", a[1]);

    // Dies two seconds into a six-second load.
    let out = tmp.path().join("dies");
    let script = "timeout 3 python3 -m http.server --bind 127.0.0.1 $PORT; echo 'gone' >&2";
    let o = live(&[
        "--alloc",
        "glibc",
        "--duration",
        "6s",
        "--rate",
        "20",
        "--mix",
        m.to_str().unwrap(),
        "--ready-path",
        "/",
        "--out",
        out.to_str().unwrap(),
        "--no-report",
        "--",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let a = &json(&out.join("summary.json"))["allocators"][0];
    assert_eq!(a["status"], "crashed", "{a}");
    assert!(a["error"].as_str().unwrap().contains("gone"), "{a}");
}

#[test]
fn a_live_run_can_record_its_server_under_the_same_load() {
    require("python3");
    let tmp = tempfile::tempdir().unwrap();
    let m = mix(tmp.path());
    let out = tmp.path().join("run");
    let trace = tmp.path().join("traces/server.lhtrace");
    let o = live(&[
        "--alloc",
        "jemalloc",
        "--duration",
        "3s",
        "--rate",
        "20",
        "--mix",
        m.to_str().unwrap(),
        "--ready-path",
        "/",
        "--record",
        trace.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-report",
        "--",
        "sh",
        "-c",
        PYTHON_SERVER,
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("recorded pid"), "{stderr}");
    // The allocator under test is still the one checked, with the tracer in front of it.
    let a = &json(&out.join("summary.json"))["allocators"][0];
    assert_eq!(a["status"], "ok", "{a}");
    assert!(a["version"]
        .as_str()
        .unwrap()
        .contains("libjemalloc.so.2 mapped in"));
    let record = &json(&out.join("run.json"))["workload"]["live"];
    assert_eq!(record["recorded_trace"], trace.to_str().unwrap());
    assert!(record["recording"]
        .as_str()
        .unwrap()
        .contains("recorded pid"));
    // The trace is a real recording of the server: `runner stats` reads it, with its calls.
    assert!(!tmp.path().join("traces/server.raw").exists());
    let stats = Command::new(env!("CARGO_BIN_EXE_runner"))
        .args(["stats", trace.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&stats.stdout);
    assert!(
        stats.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&stats.stderr)
    );
    assert!(text.contains("recorded"), "{text}");

    // One server at a time.
    let o = live(&[
        "--alloc",
        "glibc,jemalloc",
        "--record",
        trace.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        PYTHON_SERVER,
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("give one allocator with --alloc"));
}

#[test]
fn the_bundled_rails_app_runs_live_in_single_and_cluster_mode() {
    for program in ["ruby", "bundle"] {
        require(program);
    }
    let setup = Command::new(repo().join("workloads/rails-app/setup"))
        .output()
        .expect("setup starts");
    assert!(
        setup.status.success(),
        "workloads/rails-app/setup failed: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let tmp = tempfile::tempdir().unwrap();
    for (mode, args) in [("single", vec![]), ("cluster", vec!["--cluster"])] {
        let out = tmp.path().join(mode);
        let mut a = vec![
            "--alloc",
            "glibc,jemalloc",
            "--duration",
            "12s",
            "--rate",
            "8",
            "--out",
            out.to_str().unwrap(),
            "--no-report",
            "--",
            "workloads/rails-app/serve",
        ];
        a.extend(args);
        let o = live(&a);
        assert!(
            o.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let s = json(&out.join("summary.json"));
        for al in s["allocators"].as_array().unwrap() {
            assert_eq!(al["status"], "ok", "{mode}: {al}");
            assert!(
                al["load"]["completed"].as_u64().unwrap() >= 60,
                "{mode}: {al}"
            );
            assert_eq!(al["load"]["errors"], 0, "{mode}: {al}");
        }
        let jemalloc = s["allocators"][1]["version"].as_str().unwrap();
        // Cluster mode: the master and its two workers all run under jemalloc.
        let processes = if mode == "cluster" {
            "3 process"
        } else {
            "1 process"
        };
        assert!(jemalloc.contains(processes), "{mode}: {jemalloc}");
    }
}
