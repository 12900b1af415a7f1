//! `runner calibrate`: a trace generated from a profile calibrates against the same profile
//! (another seed) with KS distances near 0, against a different profile with larger ones; its
//! CDF file and size table describe the trace; a missing, non-trace, cut or empty trace and an
//! unknown profile give errors naming the file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use runner::calibrate::{self, Dist};
use runner::cli::CalibrateArgs;
use workload::trace::TraceWriter;
use workload::{Profile, Workload};

/// Simulated hours of the small traces: 36 s of serving after rails-api's 10 s boot.
const HOURS: f64 = 0.01;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn workloads() -> PathBuf {
    repo().join("workloads")
}

/// Writes `profile`'s events (seed 1, [`HOURS`]) as a trace file with the trace writer.
fn synthetic_trace(dir: &Path, profile: &str) -> PathBuf {
    let p = Profile::load(&workloads().join(format!("{profile}.toml"))).unwrap();
    let w = Workload::new(p, 1, HOURS);
    let path = dir.join(format!("{profile}.lhtrace"));
    let f = std::fs::File::create(&path).unwrap();
    let mut tw = TraceWriter::new(std::io::BufWriter::new(f), &w.meta()).unwrap();
    for e in w {
        tw.write(&e).unwrap();
    }
    tw.finish().unwrap();
    path
}

fn args(trace: &Path, workload: &str) -> CalibrateArgs {
    CalibrateArgs {
        trace: trace.to_path_buf(),
        workload: workload.into(),
        hours: Some(HOURS),
        seed: 2,
        markdown: false,
        cdf: None,
        size_table: None,
        partial: false,
    }
}

fn runner(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runner"))
        .current_dir(repo())
        .args(args)
        .output()
        .expect("runner starts")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn same_profile_is_near_and_another_profile_is_far() {
    let dir = tempfile::tempdir().unwrap();
    let trace = synthetic_trace(dir.path(), "rails-api");

    // Another profile: Ruby 3.2+'s sizes (only bodies beyond a 640 B slot reach malloc) and
    // sidekiq's longer jobs with more I/O.
    let other_path = dir.path().join("other.toml");
    std::fs::write(
        &other_path,
        format!(
            "extends = {:?}\nname = \"other\"\n[requests]\ncpu_ms_median = 120.0\nio_fraction = 0.5\n\
             [mix]\ntable_weight = 0.0\nstruct_weight = 0.35\nstring_weight = 0.35\nstring_min = 616\n",
            workloads().join("rails-api.toml").canonicalize().unwrap()
        ),
    )
    .unwrap();
    let same = calibrate::calibrate(&args(&trace, "rails-api"), &workloads()).unwrap();
    let other =
        calibrate::calibrate(&args(&trace, other_path.to_str().unwrap()), &workloads()).unwrap();
    for d in [
        Dist::SizeAll,
        Dist::SizeMalloc,
        Dist::LifetimeEvents,
        Dist::LifetimeNs,
    ] {
        let near = calibrate::distance(&same, d).unwrap();
        eprintln!(
            "{}: D = {near:.4} (rails-api, other seed), {:.4} (other profile)",
            d.name(),
            calibrate::distance(&other, d).unwrap()
        );
        assert!(
            near < 0.05,
            "{}: same profile, other seed: D = {near}",
            d.name()
        );
    }
    // The other profile: larger sizes, and longer lives in time.
    for d in [Dist::SizeAll, Dist::LifetimeNs] {
        let near = calibrate::distance(&same, d).unwrap();
        let far = calibrate::distance(&other, d).unwrap();
        assert!(
            far > near + 0.05,
            "{}: rails-api {near}, other profile {far}",
            d.name()
        );
    }

    // Side figures agree with the generator's own counters for the trace it wrote.
    let p = Profile::load(&workloads().join("rails-api.toml")).unwrap();
    let mut w = Workload::new(p, 1, HOURS);
    for _ in w.by_ref() {}
    assert_eq!(same.trace.stats.reallocs, w.stats().reallocs);
    assert_eq!(same.trace.stats.frees, w.stats().frees);
    assert_eq!(same.trace.stats.events, w.stats().events);
}

#[test]
fn the_command_prints_both_sides_as_text_and_markdown() {
    let dir = tempfile::tempdir().unwrap();
    let trace = synthetic_trace(dir.path(), "rails-api");
    let t = trace.to_str().unwrap();
    let o = runner(&[
        "calibrate",
        t,
        "--workload",
        "rails-api",
        "--hours",
        "0.01",
        "--seed",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    for want in [
        "overview",
        "size, all calls",
        "lifetime, events",
        "realloc growth factor",
        "cross-thread free share",
        "KS D",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let o = runner(&[
        "calibrate",
        t,
        "--workload",
        "rails-api",
        "--hours",
        "0.01",
        "--markdown",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let md = text(&o.stdout);
    assert!(md.contains("| size, all calls |"), "{md}");
    assert!(md.contains("|---|"), "{md}");
}

#[test]
fn the_cdf_file_and_the_size_table_describe_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let trace = synthetic_trace(dir.path(), "rails-api");
    let t = trace.to_str().unwrap();
    let cdf = dir.path().join("cdf.csv");
    let o = runner(&[
        "calibrate",
        t,
        "--workload",
        "rails-api",
        "--hours",
        "0.01",
        "--cdf",
        cdf.to_str().unwrap(),
        "--size-table",
        "5",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // The CDFs: every distribution's columns rise to 1 on both sides.
    let csv = std::fs::read_to_string(&cdf).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("distribution,value,trace_cdf,profile_cdf")
    );
    let mut last: std::collections::BTreeMap<String, (f64, f64)> = Default::default();
    for l in lines {
        // `"size, all calls",32,0.35,0.36`: the name is quoted (it has a comma).
        let (head, p_cdf) = l.rsplit_once(',').unwrap();
        let (head, t_cdf) = head.rsplit_once(',').unwrap();
        let name = head.rsplit_once(',').unwrap().0.to_string();
        let (t_cdf, p_cdf): (f64, f64) = (t_cdf.parse().unwrap(), p_cdf.parse().unwrap());
        let prev = last.entry(name).or_insert((0.0, 0.0));
        assert!(t_cdf >= prev.0 && p_cdf >= prev.1, "{l}");
        *prev = (t_cdf, p_cdf);
    }
    assert!(last.contains_key("\"size, all calls\""), "{last:?}");
    for (name, (a, b)) in &last {
        assert!(
            (a - 1.0).abs() < 1e-4 && (b - 1.0).abs() < 1e-4,
            "{name}: {a} {b}"
        );
    }
    // The size table: TOML rows [lo, hi, share], shares summing to 1, the five most frequent
    // sizes exact.
    let out = text(&o.stdout);
    let table: toml::Table = toml::from_str(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    let rows = table["table"].as_array().unwrap();
    let mut sum = 0.0;
    let mut exact = 0;
    for r in rows {
        let r = r.as_array().unwrap();
        let (lo, hi) = (r[0].as_integer().unwrap(), r[1].as_integer().unwrap());
        assert!(lo >= 1 && lo <= hi, "{r:?}");
        exact += usize::from(lo == hi);
        sum += r[2].as_float().unwrap();
    }
    assert!(exact >= 5, "{out}");
    assert!((sum - 1.0).abs() < 1e-3, "{sum}\n{out}");
}

#[test]
fn bad_inputs_give_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let fail = |args: &[&str], want: &[&str]| {
        let o = runner(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        for w in want {
            assert!(err.contains(w), "{args:?}: want {w:?} in: {err}");
        }
    };
    let missing = dir.path().join("nothing.lhtrace");
    let m = missing.to_str().unwrap();
    fail(
        &["calibrate", m, "--workload", "rails-api"],
        &["cannot open the trace", m],
    );

    let junk = dir.path().join("junk.lhtrace");
    std::fs::write(&junk, b"this is not a trace at all").unwrap();
    let j = junk.to_str().unwrap();
    fail(
        &["calibrate", j, "--workload", "rails-api"],
        &[j, "not a longhaul trace"],
    );

    // A cut trace: an error unless --partial.
    let whole = synthetic_trace(dir.path(), "rails-api");
    let bytes = std::fs::read(&whole).unwrap();
    let cut = dir.path().join("cut.lhtrace");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let c = cut.to_str().unwrap();
    fail(
        &["calibrate", c, "--workload", "rails-api", "--hours", "0.01"],
        &[c, "damaged", "--partial"],
    );
    let o = runner(&[
        "calibrate",
        c,
        "--workload",
        "rails-api",
        "--hours",
        "0.01",
        "--partial",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("damaged"));

    fail(
        &["calibrate", c, "--workload", "no-such-profile"],
        &["no-such-profile", "rails-api"],
    );
    fail(
        &["calibrate", c, "--workload", "rails-api", "--hours=0"],
        &["--hours"],
    );
}
