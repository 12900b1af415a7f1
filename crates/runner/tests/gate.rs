//! The regression gate end to end, on a shortened configuration (`--hours 0.02 --speed 300
//! --repeat 3`: six cells of a few seconds each): a baseline is made; the gate passes when the
//! run it judges is the baseline's own; it fails (exit 1) when ours holds a 20% memory ballast
//! (the test hook); it exits 2 when the baseline is missing or was made with another
//! configuration. One test in its own binary: the runs must not compete with other tests.

use std::path::Path;
use std::process::{Command, Output};

const SHORT: [&str; 6] = ["--hours", "0.02", "--speed", "300", "--repeat", "3"];

fn gate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runner"))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .arg("gate")
        .args(args)
        .arg("-q")
        .output()
        .expect("runner starts")
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The verdict of a table row of `stdout`: `allocator`, metric name (first word(s)).
fn row<'a>(stdout: &'a str, allocator: &str, metric: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("{allocator} ")) && l.contains(metric))
        .unwrap_or_else(|| panic!("no row {allocator} {metric} in\n{stdout}"))
}

#[test]
fn gate_passes_on_its_baseline_fails_on_a_ballast_and_refuses_a_bad_baseline() {
    let tmp = tempfile::tempdir().unwrap();
    let baseline = tmp.path().join("baseline");
    let (b, first, second) = (
        baseline.to_str().unwrap(),
        tmp.path().join("first"),
        tmp.path().join("ballast"),
    );

    // Missing baseline: exit 2, before running anything.
    let o = gate(&[&["--baseline", b], &SHORT[..]].concat());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no baseline in"), "{}", text(&o));

    // Make one.
    let o = gate(
        &[
            &[
                "--baseline",
                b,
                "--update-baseline",
                "--out",
                first.to_str().unwrap(),
            ],
            &SHORT[..],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for f in [
        "run.json",
        "summary.json",
        "samples.csv",
        "ours.rep3.alloc-per-request-ns.hdr",
    ] {
        assert!(baseline.join(f).is_file(), "{f} in the baseline");
    }

    // The same run judged against its own baseline: every figure within noise, exit 0.
    let o = gate(
        &[
            &["--baseline", b, "--current", first.to_str().unwrap()],
            &SHORT[..],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        row(&stdout, "ours", "steady RSS (MiB)").ends_with("within noise"),
        "{stdout}"
    );
    assert!(!stdout.contains("WORSE"), "{stdout}");

    // Ours keeps 20% more memory: steady RSS and its ratio to jemalloc are worse, exit 1.
    let o = gate(
        &[
            &[
                "--baseline",
                b,
                "--inject-ballast",
                "20",
                "--out",
                second.to_str().unwrap(),
            ],
            &SHORT[..],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        row(&stdout, "ours", "steady RSS (MiB)").ends_with("WORSE"),
        "{stdout}"
    );
    assert!(
        row(&stdout, "ours / jemalloc", "steady RSS ratio").ends_with("WORSE"),
        "{stdout}"
    );
    assert!(
        text(&o).contains("gate: REGRESSION: ours steady RSS"),
        "{}",
        text(&o)
    );
    let run_json = std::fs::read_to_string(second.join("run.json")).unwrap();
    assert!(
        run_json.contains("memory ballast of 20%"),
        "the hook is recorded"
    );

    // A baseline of another configuration: exit 2, naming the field and the fix.
    let o = gate(&[
        "--baseline",
        b,
        "--current",
        first.to_str().unwrap(),
        "--hours",
        "0.03",
        "--speed",
        "300",
        "--repeat",
        "3",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("hours 0.02 (the gate runs 0.03)")
            && text(&o).contains("--update-baseline"),
        "{}",
        text(&o)
    );

    // A run with the test hook cannot become the baseline's judge... nor the baseline.
    let o = gate(
        &[
            &[
                "--baseline",
                second.to_str().unwrap(),
                "--current",
                first.to_str().unwrap(),
            ],
            &SHORT[..],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("test hook"), "{}", text(&o));
}
