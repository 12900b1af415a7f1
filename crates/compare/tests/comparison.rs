//! Comparisons of the recorded example run with copies of itself: the same run is within
//! noise everywhere; a copy from another kind of machine compares only memory and ratios; a
//! copy whose ours keeps 10% more memory is worse on steady RSS and on its ratio to jemalloc.

use std::path::{Path, PathBuf};

use compare::{render, Comparison, Options, Scope, Verdict};
use rundir::{Metric, RunDir};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../results/examples/rails-api-2h-all")
}

/// A copy of the example with `edit` applied to its summary.json and run.json texts.
fn copy(dir: &Path, edit: impl Fn(&str, String) -> String) -> RunDir {
    std::fs::create_dir_all(dir).unwrap();
    for e in std::fs::read_dir(example()).unwrap() {
        let e = e.unwrap();
        if !e.file_type().unwrap().is_file() {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") {
            let text = std::fs::read_to_string(e.path()).unwrap();
            std::fs::write(dir.join(&name), edit(&name, text)).unwrap();
        } else {
            std::fs::copy(e.path(), dir.join(&name)).unwrap();
        }
    }
    RunDir::read(dir).unwrap()
}

fn row<'a>(c: &'a Comparison, allocator: &str, metric: Metric, ratio: bool) -> &'a compare::Row {
    c.rows
        .iter()
        .find(|r| r.allocator == allocator && r.metric == metric && r.ratio_to.is_some() == ratio)
        .unwrap()
}

#[test]
fn a_run_compared_with_itself_is_within_noise() {
    let a = RunDir::read(&example()).unwrap();
    let c = Comparison::new(&a, &a, &Options::default()).unwrap();
    assert_eq!(c.scope, Scope::All);
    assert!(c.regressions().is_empty() && c.improvements().is_empty());
    assert_eq!(
        row(&c, "ours", Metric::RssSteady, false).verdict,
        Verdict::WithinNoise
    );
    assert!(
        row(&c, "ours", Metric::RssSteady, true).gated,
        "ratio rows decide a gate"
    );
    let md = render::markdown(&c);
    assert!(
        md.contains("| ours / jemalloc | steady RSS ratio |"),
        "{md}"
    );
}

#[test]
fn another_kind_of_machine_compares_memory_and_ratios_only() {
    let tmp = tempfile::tempdir().unwrap();
    let a = RunDir::read(&example()).unwrap();
    let b = copy(tmp.path(), |name, text| {
        if name == "run.json" {
            text.replace("\"cores\": 2", "\"cores\": 4")
        } else {
            text
        }
    });
    let c = Comparison::new(&a, &b, &Options::default()).unwrap();
    assert_eq!(c.scope, Scope::MachineIndependent);
    assert!(
        c.notes.iter().any(|n| n.contains("2 vs 4 cores")),
        "{:?}",
        c.notes
    );
    let p99 = row(&c, "ours", Metric::RequestP99, false);
    assert!(matches!(p99.verdict, Verdict::NotCompared(_)) && !p99.gated);
    assert!(row(&c, "ours", Metric::RssSteady, false).gated);
    assert!(
        row(&c, "ours", Metric::RequestP99, true).gated,
        "the ratio still counts"
    );
}

#[test]
fn ours_keeping_ten_percent_more_is_worse() {
    let tmp = tempfile::tempdir().unwrap();
    let a = RunDir::read(&example()).unwrap();
    // ours' steady RSS is 174481408 bytes (166.4 MiB) in the example.
    let steady = a
        .allocator("ours")
        .unwrap()
        .summary
        .as_ref()
        .unwrap()
        .figures
        .rss_steady_bytes
        .unwrap();
    let b = copy(tmp.path(), |name, text| {
        if name == "summary.json" {
            text.replace(
                &format!("\"rss_steady_bytes\": {steady}"),
                &format!("\"rss_steady_bytes\": {}", steady + steady / 10),
            )
        } else {
            text
        }
    });
    let c = Comparison::new(&a, &b, &Options::default()).unwrap();
    let r = row(&c, "ours", Metric::RssSteady, false);
    assert_eq!(r.verdict, Verdict::Worse, "{r:?}");
    assert!((r.change.unwrap() - 0.10).abs() < 0.001);
    assert_eq!(
        row(&c, "ours", Metric::RssSteady, true).verdict,
        Verdict::Worse
    );
    assert_eq!(
        row(&c, "jemalloc", Metric::RssSteady, false).verdict,
        Verdict::WithinNoise
    );
    assert_eq!(c.regressions().len(), 2);
    assert!(render::text(&c).contains("WORSE"));
}

#[test]
fn an_allocators_own_cpu_and_timings_are_shown_but_do_not_gate() {
    let a = RunDir::read(&example()).unwrap();
    let c = Comparison::new(&a, &a, &Options::default()).unwrap();
    let p99 = row(&c, "ours", Metric::RequestP99, false);
    assert_eq!(p99.verdict, Verdict::WithinNoise);
    assert!(!p99.gated);
    assert!(render::text(&c).contains("within noise (not gated)"));
}
