//! The `report` binary: success prints the files written; failure prints the error chain to
//! stderr and exits non-zero.

mod fixture;

use std::process::Command;

fn report() -> Command {
    Command::new(env!("CARGO_BIN_EXE_report"))
}

#[test]
fn reports_a_run_and_lists_the_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture::write_run(dir.path(), &fixture::four_allocators(), "0123abcd");
    let output = report()
        .arg(dir.path())
        .args(["--reference", "ours"])
        .output()
        .expect("run report");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.lines().any(|l| l.ends_with("report/index.html")),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().count(),
        12,
        "10 charts (5 figures, PNG and SVG), summary.md, index.html"
    );
    let summary = std::fs::read_to_string(dir.path().join("report/summary.md")).expect("summary");
    assert!(summary.contains("| ours (reference) |"));
}

#[test]
fn missing_directory_fails_with_the_path_on_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("gone");
    let output = report().arg(&missing).output().expect("run report");
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "errors go to stderr only");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: cannot report on"), "{stderr}");
    assert!(stderr.contains("caused by: run directory"), "{stderr}");
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
}

#[test]
fn compare_needs_two_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = report()
        .arg("--compare")
        .arg(dir.path())
        .output()
        .expect("run report");
    assert!(!output.status.success());
}
