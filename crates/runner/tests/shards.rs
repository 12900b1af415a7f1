//! A matrix run in four shards, merged, against the same matrix run unsharded: the same
//! allocators, samples columns and summary fields, and steady RSS within the run-to-run
//! spread. Shards of different seeds are refused. One test in its own binary (its runs must
//! not compete with other tests for the CPU).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const MATRIX: [&str; 10] = [
    "--alloc",
    "glibc,jemalloc",
    "--hours",
    "0.02",
    "--speed",
    "300",
    "--repeat",
    "2",
    "--no-report",
    "-q",
];

fn runner(args: &[&str]) {
    let o = Command::new(env!("CARGO_BIN_EXE_runner"))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .args(args)
        .output()
        .expect("runner starts");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every key path of a JSON value (arrays by their first element).
fn keys(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{prefix}.{k}");
                out.insert(p.clone());
                keys(x, &p, out);
            }
        }
        Value::Array(a) => {
            if let Some(x) = a.first() {
                keys(x, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn four_shards_merged_match_the_unsharded_run() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    runner(&[&MATRIX[..], &["--out", whole.to_str().unwrap()]].concat());
    let shards: Vec<PathBuf> = (1..=4)
        .map(|i| tmp.path().join(format!("shard{i}")))
        .collect();
    for (i, dir) in shards.iter().enumerate() {
        let shard = format!("{}/4", i + 1);
        runner(
            &[
                &MATRIX[..],
                &["--shard", &shard, "--out", dir.to_str().unwrap()],
            ]
            .concat(),
        );
        let s = json(&dir.join("summary.json"));
        assert_eq!(
            s["order"].as_array().unwrap().len(),
            1,
            "2 allocators x 2 repetitions / 4 shards"
        );
    }
    let merged = tmp.path().join("merged");
    let command = vec!["test".to_string()];
    let outcome = rundir::merge(&shards, &merged, &command).expect("merge");
    assert_eq!(outcome.cells, 4);
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);

    let (w, m) = (
        json(&whole.join("summary.json")),
        json(&merged.join("summary.json")),
    );
    let names = |s: &Value| -> Vec<String> {
        s["allocators"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&w), names(&m));
    let (mut kw, mut km) = (BTreeSet::new(), BTreeSet::new());
    keys(&w, "", &mut kw);
    keys(&m, "", &mut km);
    assert_eq!(kw, km, "the same summary fields");
    let header = |d: &Path| {
        std::fs::read_to_string(d.join("samples.csv"))
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(header(&whole), header(&merged));
    let rows = |d: &Path| {
        std::fs::read_to_string(d.join("samples.csv"))
            .unwrap()
            .lines()
            .count()
    };
    let (rw, rm) = (rows(&whole) as f64, rows(&merged) as f64);
    assert!(
        (rw - rm).abs() <= 0.05 * rw,
        "sample lines: whole {rw}, merged {rm}"
    );
    for (a, b) in w["allocators"]
        .as_array()
        .unwrap()
        .iter()
        .zip(m["allocators"].as_array().unwrap())
    {
        assert_eq!(a["repetitions"].as_array().unwrap().len(), 2);
        assert_eq!(b["repetitions"].as_array().unwrap().len(), 2);
        // Memory is nearly deterministic for a seed: the medians agree within 10%.
        let (x, y) = (
            a["rss_steady_bytes"].as_f64().unwrap(),
            b["rss_steady_bytes"].as_f64().unwrap(),
        );
        assert!(
            (x / y - 1.0).abs() < 0.10,
            "{}: steady RSS {x} unsharded vs {y} merged",
            a["name"]
        );
    }
    let r = json(&merged.join("run.json"));
    assert_eq!(r["shards"].as_array().unwrap().len(), 4);
    assert!(r["shard"].is_null());
    rundir::RunDir::read(&merged).expect("the merged run reads back");
    // The report of the merged run shows each figure's range over the repetitions.
    let paths = report::generate(&merged, &report::Options::default()).expect("report");
    let md = std::fs::read_to_string(paths.summary_md).unwrap();
    let row = md
        .lines()
        .find(|l| l.starts_with("| glibc ×2 |"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(
        row.contains(" [") && row.contains("–"),
        "steady RSS with its range: {row}"
    );

    // A shard of another seed does not belong: refused, naming the field.
    let other = tmp.path().join("other-seed");
    runner(
        &[
            &MATRIX[..],
            &[
                "--shard",
                "1/4",
                "--seed",
                "2",
                "--out",
                other.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    let err = rundir::merge(
        &[shards[1].clone(), other],
        &tmp.path().join("bad"),
        &command,
    )
    .expect_err("different seeds")
    .to_string();
    assert!(
        err.contains("differs from") && err.contains("seed (2 vs 1)"),
        "{err}"
    );
    // The same cell twice is refused.
    let err = rundir::merge(
        &[shards[0].clone(), shards[0].clone()],
        &tmp.path().join("dup"),
        &command,
    )
    .expect_err("duplicate cells")
    .to_string();
    assert!(err.contains("both ran"), "{err}");
}
