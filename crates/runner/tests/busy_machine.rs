//! A run beside a CPU hog either keeps up or marks its wall-clock figures invalid, in
//! summary.json, on stderr and in the report's table. One test in its own binary: the hog must
//! not slow the rest of the suite.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;

fn run(out: &Path, speed: &str) -> (Value, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_runner"))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .args([
            "--alloc",
            "glibc",
            "--hours",
            "0.02",
            "--speed",
            speed,
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .expect("runner starts");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{stderr}");
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    (s["allocators"][0].clone(), stderr)
}

fn check_marking(a: &Value, stderr: &str, out: &Path) {
    let lag = a["max_lag_s"].as_f64().unwrap();
    let cost = &a["cost"];
    let ran = cost["replay_threads_cpu_s"].as_f64().unwrap();
    let waited = cost["replay_threads_run_delay_s"].as_f64().unwrap();
    let should_be_valid = lag <= 10.0 && waited <= 0.10 * ran;
    assert_eq!(
        a["timing_valid"].as_bool().unwrap(),
        should_be_valid,
        "lag {lag}, waited {waited} s of {ran} s: {a}"
    );
    let table = std::fs::read_to_string(out.join("report/summary.md")).unwrap();
    let row = table
        .lines()
        .find(|l| l.starts_with("| glibc"))
        .expect("glibc row");
    if should_be_valid {
        assert!(!row.contains("invalid"), "{row}");
    } else {
        assert!(a["timing_note"].as_str().unwrap().contains("not results"));
        assert!(stderr.contains("timings invalid"), "{stderr}");
        assert!(row.contains("| invalid |"), "{row}");
        assert!(table.contains("glibc: timings invalid"), "{table}");
    }
}

#[test]
fn a_run_beside_a_cpu_hog_keeps_up_or_marks_its_timings_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    // A speed no 2-core machine sustains: the replay must lag, and say so.
    let out = tmp.path().join("too-fast");
    let (a, stderr) = run(&out, "100000");
    assert_eq!(a["timing_valid"], false, "{a}");
    check_marking(&a, &stderr, &out);

    // Speed 60 beside two busy threads: whichever way it goes, the marking follows
    // the measured lag and CPU wait.
    let stop = Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            })
        })
        .collect();
    let out = tmp.path().join("beside-hog");
    let (a, stderr) = run(&out, "60");
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        h.join().unwrap();
    }
    assert!(
        a["cost"]["replay_threads_run_delay_s"].as_f64().unwrap() > 0.0,
        "the hog must show as CPU wait: {a}"
    );
    check_marking(&a, &stderr, &out);
}
