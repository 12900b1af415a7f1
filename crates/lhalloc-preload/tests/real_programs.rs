//! Real programs under `LD_PRELOAD=liblhalloc_preload.so`: ruby (threads + GC.start), python3,
//! git. A program that is not installed fails its test with the package to install (CI
//! installs them with `apt-get install -y ruby python3 git`).

mod common;

use std::path::Path;
use std::process::Command;

use common::{preload_lib, scratch};

/// Fails the test, naming the package, when `program` is not installed (a missing program is
/// a failure, not a pass).
fn require(program: &str) {
    let ok = Command::new(program)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{program} is not installed: apt-get install -y {program} (CI's .ci/run does)"
    );
}

/// Runs `program args` under the preload in `dir`; returns stdout. Panics with the stderr on a
/// non-zero exit.
fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("LD_PRELOAD", preload_lib())
        // Short delay so that the purger thread is exercised within the run.
        .env("LHALLOC_PURGE_DELAY_MS", "50")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn ruby_threads_and_gc() {
    require("ruby");
    let tmp = scratch("ruby");
    let d = tmp.path();
    let script = r#"
threads = 4.times.map do |t|
  Thread.new do
    keep = []
    40_000.times do |i|
      s = "x" * (i % 500) + t.to_s
      keep << s if i % 7 == 0
      keep << [i, s, { k: i }] if i % 11 == 0
      keep.shift(100) if keep.size > 2000
    end
    keep.size
  end
end
sizes = threads.map(&:value)
GC.start
big = Array.new(200) { |i| "y" * (1000 * i) }
h = {}
50_000.times { |i| h["k#{i}"] = i.to_s * 3 }
GC.start
raise "preload not loaded" unless File.read("/proc/self/maps").include?("liblhalloc_preload")
puts "ok #{sizes.sum} #{big.last.size} #{h.size}"
"#;
    std::fs::write(d.join("t.rb"), script).expect("write script");
    let out = run(d, "ruby", &["t.rb"]);
    assert!(out.starts_with("ok "), "{out}");
    assert!(out.trim_end().ends_with("199000 50000"), "{out}");
}

#[test]
fn python_allocates_and_threads() {
    require("python3");
    let tmp = scratch("python");
    let d = tmp.path();
    let script = r#"
import json, threading, gc
def work(n, out):
    d = {str(i): [i] * (i % 50) for i in range(n)}
    out.append(len(json.dumps(d)))
out = []
ts = [threading.Thread(target=work, args=(20000, out)) for _ in range(3)]
for t in ts: t.start()
for t in ts: t.join()
gc.collect()
b = bytearray(10 << 20)
b[-1] = 1
assert "liblhalloc_preload" in open("/proc/self/maps").read(), "preload not loaded"
print("ok", len(out), len(set(out)), sum(b))
"#;
    std::fs::write(d.join("t.py"), script).expect("write script");
    let out = run(d, "python3", &["t.py"]);
    assert_eq!(out.trim(), "ok 3 1 1");
}

#[test]
fn git_init_commit_log() {
    require("git");
    let tmp = scratch("git");
    let d = tmp.path();
    run(d, "git", &["init", "-q", "."]);
    for i in 0..5 {
        std::fs::write(
            d.join(format!("f{i}.txt")),
            format!("line {i}\n").repeat(1000),
        )
        .expect("write");
        run(d, "git", &["add", "."]);
        run(
            d,
            "git",
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.invalid",
                "commit",
                "-qm",
                &format!("c{i}"),
            ],
        );
    }
    let log = run(d, "git", &["log", "--oneline"]);
    assert_eq!(log.lines().count(), 5, "{log}");
    assert!(log.contains("c4"));
    let st = run(d, "git", &["status", "--porcelain"]);
    assert!(st.is_empty(), "{st}");
}
