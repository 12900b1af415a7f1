//! Reading run directories of every schema, and refusing what cannot be read or merged.

use std::path::{Path, PathBuf};

use rundir::{merge, MergeError, Metric, RunDir, RunDirError, Status};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../results/examples/rails-api-2h-all")
}

#[test]
fn the_recorded_schema_1_example_reads() {
    let run = RunDir::read(&example()).expect("schema 1 reads");
    assert_eq!(run.summary.schema_version, 1);
    assert_eq!(run.summary.repeat, 1);
    let names: Vec<&str> = run.allocators.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        ["glibc", "glibc-arena2", "jemalloc", "mimalloc", "ours"]
    );
    let ours = run.allocator("ours").unwrap();
    let s = ours.summary.as_ref().unwrap();
    assert_eq!(s.status, Status::Ok);
    // The README's table: 166.4 MiB steady.
    let steady = Metric::RssSteady.value(&s.figures).unwrap();
    assert_eq!(Metric::RssSteady.format(steady), "166.4");
    assert!(s.figures.timing_valid, "schema 1 did not say: valid");
    assert!(ours.samples.len() > 700 && ours.samples.iter().all(|x| x.repetition == 1));
    assert_eq!(
        ours.samples[0].cpu_user_s, None,
        "schema 1 has no resource columns"
    );
    assert_eq!(
        ours.histograms.len(),
        3,
        "schema 1 has three histograms per allocator"
    );
    let record = run.record.as_ref().unwrap();
    assert_eq!(record.workload.name, "rails-api");
    assert_eq!(record.repeat, 1);
}

/// Copies the example's files into `dir`.
fn copy_example(dir: &Path) {
    for e in std::fs::read_dir(example()).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn an_unknown_schema_is_refused_naming_the_file_and_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    copy_example(tmp.path());
    let path = tmp.path().join("run.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("\"schema_version\": 1", "\"schema_version\": 7", 1),
    )
    .unwrap();
    let e = RunDir::read(tmp.path()).unwrap_err();
    assert!(
        matches!(&e, RunDirError::SchemaVersion { found: 7, .. }),
        "{e}"
    );
    let message = e.to_string();
    assert!(
        message.contains("run.json") && message.contains("regenerate the run"),
        "{message}"
    );
}

#[test]
fn shards_of_an_older_schema_are_not_merged() {
    let tmp = tempfile::tempdir().unwrap();
    let e = merge(&[example()], &tmp.path().join("out"), &[]).unwrap_err();
    assert!(matches!(e, MergeError::OldSchema { found: 1, .. }), "{e}");
    assert!(e.to_string().contains("rerun the shards"), "{e}");
    let e = merge(&[], &tmp.path().join("out"), &[]).unwrap_err();
    assert!(matches!(e, MergeError::NoInputs), "{e}");
}
