//! A missing, truncated or malformed run directory is an error naming the path and what is
//! missing, never a panic.

mod fixture;

use std::fs;
use std::path::Path;

use report::{Options, ReportError};
use rundir::RunDirError;

fn synthetic_run(dir: &Path) {
    fixture::write_run(dir, &fixture::four_allocators(), "0123abcd");
}

/// The run-directory error the report failed with.
fn generate(dir: &Path) -> RunDirError {
    match report::generate(dir, &Options::default()).expect_err("the report must fail") {
        ReportError::RunDir(e) => e,
        other => panic!("not a run directory error: {other}"),
    }
}

#[test]
fn missing_run_directory_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-run");
    let error = generate(&missing);
    assert!(
        matches!(error, RunDirError::MissingRunDir { .. }),
        "{error}"
    );
    assert!(error.to_string().contains(&missing.display().to_string()));
}

#[test]
fn missing_summary_json_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    synthetic_run(dir.path());
    fs::remove_file(dir.path().join("summary.json")).expect("remove");
    let error = generate(dir.path());
    match &error {
        RunDirError::MissingFile { path, .. } => assert!(path.ends_with("summary.json")),
        other => panic!("unexpected error {other}"),
    }
    assert!(
        error.to_string().contains("summary.json is missing"),
        "{error}"
    );
}

#[test]
fn missing_samples_csv_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    synthetic_run(dir.path());
    fs::remove_file(dir.path().join("samples.csv")).expect("remove");
    let error = generate(dir.path());
    assert!(
        matches!(&error, RunDirError::MissingFile { path, .. } if path.ends_with("samples.csv")),
        "{error}"
    );
}

#[test]
fn csv_cut_in_the_middle_of_a_line_is_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    synthetic_run(dir.path());
    let path = dir.path().join("samples.csv");
    let text = fs::read_to_string(&path).expect("read");
    fs::write(&path, &text[..text.len() - 20]).expect("cut");
    let error = generate(dir.path());
    assert!(matches!(error, RunDirError::Truncated { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("samples.csv is truncated"), "{message}");
    assert!(message.contains("does not end with a newline"), "{message}");
}

#[test]
fn csv_line_with_missing_cells_names_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    synthetic_run(dir.path());
    let path = dir.path().join("samples.csv");
    let mut text = fs::read_to_string(&path).expect("read");
    text.push_str("ours,7300.0,120.0\n");
    let lines = text.lines().count();
    fs::write(&path, text).expect("write");
    let error = generate(dir.path());
    match &error {
        RunDirError::Csv { line, .. } => assert_eq!(*line, lines as u64),
        other => panic!("unexpected error {other}"),
    }
    assert!(
        error
            .to_string()
            .contains("3 cells where the header has 14"),
        "{error}"
    );
}

#[test]
fn empty_csv_and_missing_column_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    synthetic_run(dir.path());
    let path = dir.path().join("samples.csv");
    fs::write(&path, "").expect("write");
    assert!(matches!(
        generate(dir.path()),
        RunDirError::Truncated { .. }
    ));

    fs::write(&path, "allocator,sim_time_s,rss_bytes\nours,60,1000\n").expect("write");
    let error = generate(dir.path());
    assert!(
        matches!(
            error,
            RunDirError::MissingColumn {
                column: "live_bytes",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn other_schema_version_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    synthetic_run(dir.path());
    let path = dir.path().join("summary.json");
    let text = fs::read_to_string(&path).expect("read");
    fs::write(
        &path,
        text.replacen("\"schema_version\": 2", "\"schema_version\": 9", 1),
    )
    .expect("write");
    let error = generate(dir.path());
    assert!(
        matches!(
            error,
            RunDirError::SchemaVersion {
                found: 9,
                ref expected,
                ..
            } if *expected == [1, 2, 3]
        ),
        "{error}"
    );
}

#[test]
fn malformed_summary_json_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    synthetic_run(dir.path());
    fs::write(
        dir.path().join("summary.json"),
        "{\"schema_version\": 1, \"allocators\": [",
    )
    .expect("write");
    let error = generate(dir.path());
    assert!(
        matches!(
            error,
            RunDirError::Json {
                what: "summary.json",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn missing_or_corrupt_histogram_of_an_ok_allocator_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    synthetic_run(dir.path());
    let path = dir.path().join("jemalloc.call-latency-ns.hdr");
    fs::write(&path, b"not a histogram").expect("write");
    let error = generate(dir.path());
    assert!(
        matches!(&error, RunDirError::Histogram { path: p, .. } if *p == path),
        "{error}"
    );

    fs::remove_file(&path).expect("remove");
    let error = generate(dir.path());
    assert!(
        matches!(&error, RunDirError::MissingFile { path: p, .. } if *p == path),
        "{error}"
    );
}

#[test]
fn missing_run_json_is_a_warning_not_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    synthetic_run(dir.path());
    fs::remove_file(dir.path().join("run.json")).expect("remove");
    let paths = report::generate(dir.path(), &Options::default()).expect("report");
    assert!(paths
        .warnings
        .iter()
        .any(|w| w.contains("run.json is missing")));
    assert!(fs::read_to_string(paths.summary_md)
        .expect("read")
        .contains("run.json is missing"));
}

#[test]
fn allocator_with_samples_but_no_summary_is_drawn() {
    let dir = tempfile::tempdir().expect("tempdir");
    synthetic_run(dir.path());
    let path = dir.path().join("samples.csv");
    let mut text = fs::read_to_string(&path).expect("read");
    text.push_str("mimalloc,60.0,1.0,10000000,,,,5000000,10,0.0,,,,\n");
    fs::write(&path, text).expect("write");
    let paths = report::generate(dir.path(), &Options::default()).expect("report");
    let rss = fs::read_to_string(&paths.figures[0].svg).expect("read");
    assert!(rss.contains("mimalloc (no summary)"));
}

#[test]
fn unsafe_allocator_id_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    synthetic_run(dir.path());
    let path = dir.path().join("samples.csv");
    let mut text = fs::read_to_string(&path).expect("read");
    text.push_str("../evil,60.0,1.0,10000000,,,,5000000,10,0.0,,,,\n");
    fs::write(&path, text).expect("write");
    assert!(matches!(
        generate(dir.path()),
        RunDirError::BadAllocatorId { .. }
    ));
}
