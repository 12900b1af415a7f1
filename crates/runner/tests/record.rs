//! Recording real programs under the tracer and replaying them: C programs with threads, fork,
//! `_exit` and SIGKILL, a Ruby script; damaged traces; replay faithfulness (the calls each
//! replay thread makes, recorded by the tracer itself, are the trace's, in order; exact live
//! bytes).
//!
//! These tests need a C compiler and Ruby (CI installs `build-essential ruby`): a missing one
//! fails the test with a message, it never passes silently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use workload::trace::{TraceMeta, TraceReader};
use workload::{Event, ThreadId};

fn runner() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_runner"));
    c.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    c
}

fn run(args: &[&str]) -> Output {
    runner().args(args).output().expect("runner starts")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The tracer built for this test run (a dev-dependency: cargo builds its cdylib into deps/).
fn tracer() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir");
    for dir in [deps, deps.parent().unwrap_or(deps)] {
        let p = dir.join("liblonghaul_tracer.so");
        if p.exists() {
            return p;
        }
    }
    panic!("liblonghaul_tracer.so not found next to {}", exe.display());
}

/// Compiles `src` with the system C compiler (`cc`), failing the test if there is none.
fn cc(dir: &Path, name: &str, src: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    let exe = dir.join(name);
    let o = Command::new("cc")
        .args(["-O0", "-pthread", "-o"])
        .arg(&exe)
        .arg(&c)
        .output()
        .unwrap_or_else(|e| {
            panic!("no C compiler (`cc`): {e}; install build-essential (CI's .ci/run does)")
        });
    assert!(o.status.success(), "cc failed: {}", text(&o.stderr));
    exe
}

/// `runner record --out <out> [extra] -- command`; panics unless it succeeds.
fn record(out: &Path, extra: &[&str], command: &[&str]) -> Output {
    let tracer = tracer();
    let mut args = vec![
        "record",
        "--out",
        out.to_str().unwrap(),
        "--tracer",
        tracer.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(command);
    let o = run(&args);
    assert!(o.status.success(), "record failed: {}", text(&o.stderr));
    o
}

fn read_trace(path: &Path) -> (TraceMeta, Vec<(u64, Event)>) {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r = TraceReader::new(std::io::BufReader::new(f)).unwrap();
    let meta = r.header().meta.clone();
    let events = r.by_ref().map(|x| x.unwrap()).collect();
    (meta, events)
}

/// (thread, size) of every allocating event, with its kind's name.
fn allocations(events: &[(u64, Event)]) -> Vec<(&'static str, ThreadId, u64)> {
    events
        .iter()
        .filter_map(|(_, e)| match *e {
            Event::Malloc { thread, size, .. } => Some(("malloc", thread, size)),
            Event::Calloc { thread, size, .. } => Some(("calloc", thread, size)),
            Event::Aligned { thread, size, .. } => Some(("aligned", thread, size)),
            Event::Realloc {
                thread, new_size, ..
            } => Some(("realloc", thread, new_size)),
            _ => None,
        })
        .collect()
}

const THREADS_C: &str = r#"
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#define KEEP 5
/* Worker k uses sizes k*100000 + base + i, so each of its calls can be found in the trace. */
static void *work(void *arg) {
  long k = (long)arg, base = k * 100000;
  void **keep = malloc(KEEP * sizeof(void *));
  void *p[200];
  for (int i = 0; i < 200; i++) p[i] = malloc(base + 10000 + i);
  for (int i = 0; i < 100; i++) p[i] = realloc(p[i], base + 20000 + i);
  for (int i = 0; i < 200; i++) if (i >= KEEP) free(p[i]);
  for (int i = 0; i < KEEP; i++) keep[i] = p[i];
  for (int i = 0; i < 50; i++) free(calloc(1, base + 30000 + i));
  for (int i = 0; i < 10; i++) { void *a; if (posix_memalign(&a, 64, base + 40000 + i) == 0) free(a); }
  for (int i = 0; i < 10; i++) free(aligned_alloc(128, base + 50048 + 128 * i));
  for (int i = 0; i < 10; i++) free(memalign(256, base + 60000 + i));
  free(valloc(base + 70000));
  free(pvalloc(base + 80000));
  return keep;
}
int main(void) {
  pthread_t t[4];
  void **kept[4];
  void *m = realloc(NULL, 90001);           /* realloc(NULL, n): a malloc */
  for (long k = 0; k < 4; k++) pthread_create(&t[k], 0, work, (void *)(k + 1));
  for (int k = 0; k < 4; k++) pthread_join(t[k], (void **)&kept[k]);
  for (int k = 0; k < 4; k++) { for (int i = 0; i < KEEP; i++) free(kept[k][i]); free(kept[k]); }
  m = realloc(m, 0);                         /* realloc(p, 0): a free */
  printf("ok %p\n", m);
  return 0;
}
"#;

#[test]
fn a_threaded_c_program_round_trips_with_exact_counts_sizes_and_threads() {
    let dir = tempfile::tempdir().unwrap();
    let exe = cc(dir.path(), "threads", THREADS_C);
    let out = dir.path().join("threads.lhtrace");
    let o = record(&out, &[], &[exe.to_str().unwrap()]);
    assert!(text(&o.stdout).contains("ok (nil)"), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("threads.lhtrace"));
    assert!(
        !dir.path().join("threads.raw").exists(),
        "raw files removed"
    );
    let (meta, events) = read_trace(&out);
    assert_eq!(meta.origin, "recorded");
    assert_eq!(meta.events, Some(events.len() as u64));
    assert!(meta.command[0].ends_with("threads"));
    assert!(meta.started_at.is_some() && meta.machine.is_some());
    let rec = meta.recording.as_ref().unwrap();
    assert_eq!(rec["exited"], true);
    assert_eq!(rec["program_exit"], "exit status 0");

    let allocs = allocations(&events);
    // Which trace thread is worker k: the one that made its first malloc.
    let mut worker = BTreeMap::new();
    for k in 1..=4u64 {
        let t = allocs
            .iter()
            .find(|a| a.0 == "malloc" && a.2 == k * 100_000 + 10_000)
            .unwrap_or_else(|| panic!("worker {k}'s first malloc is missing"))
            .1;
        worker.insert(k, t);
    }
    let ids: std::collections::BTreeSet<_> = worker.values().collect();
    assert_eq!(ids.len(), 4, "four distinct worker threads: {worker:?}");
    assert!(!ids.contains(&0), "thread 0 is main (it allocated first)");
    assert_eq!(meta.threads, 4, "main + 4 workers");
    for (k, &t) in &worker {
        let base = k * 100_000;
        let count = |kind: &str, lo: u64, hi: u64| {
            allocs
                .iter()
                .filter(|a| a.0 == kind && (base + lo..base + hi).contains(&a.2))
                .inspect(|a| assert_eq!(a.1, t, "worker {k}'s {kind} on its own thread"))
                .count()
        };
        assert_eq!(count("malloc", 10_000, 10_200), 200, "worker {k} mallocs");
        assert_eq!(count("realloc", 20_000, 20_100), 100, "worker {k} reallocs");
        assert_eq!(count("calloc", 30_000, 30_050), 50, "worker {k} callocs");
        assert_eq!(count("aligned", 40_000, 40_010), 10, "posix_memalign");
        assert_eq!(count("aligned", 50_000, 51_500), 10, "aligned_alloc");
        assert_eq!(count("aligned", 60_000, 60_010), 10, "memalign");
        assert_eq!(count("aligned", 70_000, 70_001), 1, "valloc");
        assert_eq!(
            count("aligned", 80_000, 84_096),
            1,
            "pvalloc (page-rounded)"
        );
        // Each worker ends after its last event.
        let mine: Vec<_> = events.iter().filter(|(_, e)| e.thread() == t).collect();
        assert!(matches!(mine.last().unwrap().1, Event::ThreadEnd { .. }));
        let frees = mine
            .iter()
            .filter(|(_, e)| matches!(e, Event::Free { .. }))
            .count();
        assert_eq!(frees, 195 + 50 + 10 + 10 + 10 + 2, "worker {k} frees");
    }
    // realloc(NULL, n) became a malloc on main; main frees what the workers kept.
    assert!(allocs.contains(&("malloc", 0, 90_001)));
    let ends = events
        .iter()
        .filter(|(_, e)| matches!(e, Event::ThreadEnd { .. }))
        .count();
    assert_eq!(ends, 4, "the main thread does not end before exit");

    // stats: text and chart.
    let charts = dir.path().join("stats");
    let o = run(&[
        "stats",
        out.to_str().unwrap(),
        "--out",
        charts.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s = text(&o.stdout);
    for want in [
        "calls by kind",
        "size histogram",
        "lifetime of blocks",
        "reallocs: ",
        "cross-thread frees: 24 of",
        "biggest allocations",
    ] {
        assert!(s.contains(want), "{want:?} missing from:\n{s}");
    }
    assert!(charts.join("live-bytes.png").is_file() && charts.join("live-bytes.svg").is_file());
    let j: Value =
        serde_json::from_str(&std::fs::read_to_string(charts.join("stats.json")).unwrap()).unwrap();
    assert!(j["by_kind"]["malloc"]["count"].as_u64().unwrap() >= 801);
}

const FORK_C: &str = r#"
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
  static void *p[100];
  for (int i = 0; i < 30; i++) p[i] = malloc(41000 + i);
  pid_t c = fork();
  if (c == 0) {
    for (int i = 0; i < 20; i++) p[i] = malloc(42000 + i);
    exit(0);
  }
  waitpid(c, 0, 0);
  for (int i = 0; i < 10; i++) p[i] = malloc(43000 + i);
  return 0;
}
"#;

fn sizes_in(events: &[(u64, Event)], lo: u64, hi: u64) -> usize {
    allocations(events)
        .iter()
        .filter(|a| (lo..hi).contains(&a.2))
        .count()
}

#[test]
fn a_forked_child_gets_a_trace_of_its_own_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let exe = cc(dir.path(), "fork", FORK_C);
    let exe = exe.to_str().unwrap();

    let out = dir.path().join("alone.lhtrace");
    let o = record(&out, &[], &[exe]);
    assert_eq!(text(&o.stdout).lines().count(), 1, "one trace");
    let (_, ev) = read_trace(&out);
    assert_eq!(sizes_in(&ev, 41_000, 41_030), 30);
    assert_eq!(sizes_in(&ev, 43_000, 43_010), 10);
    assert_eq!(
        sizes_in(&ev, 42_000, 42_020),
        0,
        "the child's calls stay out"
    );

    let out = dir.path().join("family.lhtrace");
    let o = record(&out, &["--children"], &[exe]);
    let paths: Vec<String> = text(&o.stdout).lines().map(String::from).collect();
    assert_eq!(paths.len(), 2, "{paths:?}");
    let (_, parent) = read_trace(Path::new(&paths[0]));
    assert_eq!(sizes_in(&parent, 41_000, 41_030), 30);
    assert_eq!(sizes_in(&parent, 42_000, 42_020), 0);
    assert_eq!(sizes_in(&parent, 43_000, 43_010), 10);
    let (meta, child) = read_trace(Path::new(&paths[1]));
    assert!(paths[1].starts_with(&out.with_extension("").display().to_string()));
    assert_eq!(sizes_in(&child, 42_000, 42_020), 20);
    assert_eq!(sizes_in(&child, 41_000, 41_030), 0);
    assert_eq!(sizes_in(&child, 43_000, 43_010), 0);
    assert_eq!(meta.recording.unwrap()["exited"], true);
}

#[test]
fn a_program_that_execs_is_traced_as_the_program_it_becomes() {
    let dir = tempfile::tempdir().unwrap();
    let exe = cc(dir.path(), "fork", FORK_C);
    // The shell execs the program in the same process (as `bundle exec` does).
    let out = dir.path().join("exec.lhtrace");
    let line = format!("exec {}", exe.display());
    record(&out, &[], &["sh", "-c", &line]);
    let (meta, ev) = read_trace(&out);
    assert_eq!(sizes_in(&ev, 41_000, 41_030), 30, "the program after exec");
    assert_eq!(sizes_in(&ev, 43_000, 43_010), 10);
    assert_eq!(meta.recording.unwrap()["exited"], true);
}

const DIES_C: &str = r#"
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
  static void *p[5000];
  for (int i = 0; i < 5000; i++) p[i] = malloc(44000 + i % 100);
  if (strcmp(argv[1], "kill") == 0) kill(getpid(), SIGKILL);
  _exit(3);
}
"#;

#[test]
fn a_killed_or_exit_program_keeps_what_it_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let exe = cc(dir.path(), "dies", DIES_C);
    for how in ["kill", "_exit"] {
        let out = dir.path().join(format!("{how}.lhtrace"));
        let o = record(&out, &[], &[exe.to_str().unwrap(), how]);
        let err = text(&o.stderr);
        let want = if how == "kill" {
            "SIGKILL"
        } else {
            "exit status 3"
        };
        assert!(err.contains(want), "{err}");
        assert!(err.contains("did not exit normally"), "{err}");
        let (meta, ev) = read_trace(&out);
        assert_eq!(sizes_in(&ev, 44_000, 44_100), 5000, "{how}");
        assert_eq!(meta.recording.unwrap()["exited"], false);
    }
}

#[test]
fn user_errors_of_the_trace_commands_name_the_fix() {
    let o = run(&["record", "--", "/no/such/program"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("cannot start"),
        "{}",
        text(&o.stderr)
    );
    let o = run(&["record"]);
    assert_eq!(o.status.code(), Some(2), "a command is required");
    let o = run(&["stats", "/no/such.lhtrace"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("/no/such.lhtrace"));
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.lhtrace");
    std::fs::write(&junk, b"this is not a trace at all").unwrap();
    let o = run(&["replay", junk.to_str().unwrap(), "--alloc", "glibc"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("not a longhaul trace"),
        "{}",
        text(&o.stderr)
    );
    let o = run(&["record", "--tracer", "/no/tracer.so", "--", "true"]);
    assert!(text(&o.stderr).contains("cargo build --release -p tracer"));
    // The synthetic run still works without a subcommand (clap parses, then validates).
    let o = run(&["--alloc", "glibc", "--hours=-1"]);
    assert!(text(&o.stderr).contains("--hours"), "{}", text(&o.stderr));
    let o = run(&["--help"]);
    let help = text(&o.stdout);
    assert!(
        help.contains("record") && help.contains("--hours"),
        "{help}"
    );
}

/// The last sample's live bytes of `allocator` in a run directory.
fn last_live(run_dir: &Path, allocator: &str) -> u64 {
    let csv = std::fs::read_to_string(run_dir.join("samples.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "live_bytes").unwrap();
    let last = lines
        .rfind(|l| l.starts_with(&format!("{allocator},")))
        .unwrap();
    last.split(',').nth(col).unwrap().parse().unwrap()
}

#[test]
fn a_replay_makes_each_threads_recorded_calls_in_order_and_ends_with_its_live_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let exe = cc(dir.path(), "threads", THREADS_C);
    let trace = dir.path().join("t.lhtrace");
    record(&trace, &[], &[exe.to_str().unwrap()]);
    let (meta, events) = read_trace(&trace);

    // Replay it under the tracer itself: the replay child's calls land in a raw file.
    let raw_dir = dir.path().join("raw");
    std::fs::create_dir(&raw_dir).unwrap();
    let run_dir = dir.path().join("run");
    let alloc = format!("preload:{}", tracer().display());
    let env = format!("LONGHAUL_TRACE_DIR={}", raw_dir.display());
    let o = run(&[
        "replay",
        trace.to_str().unwrap(),
        "--alloc",
        &alloc,
        "--alloc-env",
        &env,
        "--speed",
        "max",
        "--out",
        run_dir.to_str().unwrap(),
        "--no-report",
        "-q",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let want_live = meta.recording.as_ref().unwrap()["live_bytes_at_end"]
        .as_u64()
        .unwrap();
    assert_eq!(
        last_live(&run_dir, "preload-liblonghaul_tracer.so"),
        want_live
    );

    let raw_path = std::fs::read_dir(&raw_dir)
        .unwrap()
        .next()
        .expect("the replay child was traced")
        .unwrap()
        .path();
    let bytes = std::fs::read(&raw_path).unwrap();
    let raw = rawtrace::RawFile::parse(&bytes).unwrap();
    use rawtrace::Kind;
    for t in 0..=meta.threads {
        // What the trace says thread t did: (call, size, alignment).
        let want: Vec<(Kind, u64, u64)> = events
            .iter()
            .filter(|(_, e)| e.thread() == t)
            .filter_map(|(_, e)| match *e {
                Event::Malloc { size, .. } => Some((Kind::Malloc, size.max(1), 0)),
                Event::Calloc { size, .. } => Some((Kind::Calloc, size.max(1), 0)),
                Event::Aligned { size, align, .. } => {
                    Some((Kind::PosixMemalign, size.max(1), align))
                }
                Event::Realloc { new_size, .. } => Some((Kind::Realloc, new_size.max(1), 0)),
                Event::Free { .. } => Some((Kind::Free, 0, 0)),
                _ => None,
            })
            .collect();
        let name = format!("replay-{t}");
        let stream = raw
            .threads
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no traced thread named {name}"));
        let got: Vec<(Kind, u64, u64)> = raw
            .records(&bytes, stream)
            .map(|r| r.unwrap())
            .filter(|r| r.kind != Kind::ThreadEnd)
            .map(|r| (r.kind, r.size, r.align))
            .collect();
        // The replay thread's own start and exit (Rust's std asks glibc for the thread's stack
        // bounds, pthread_getattr_np, which allocates) add a few calls around the trace's.
        let extra = got.len().saturating_sub(want.len());
        assert!(
            extra <= 64,
            "thread {t}: {extra} calls beyond the trace's: {got:?}"
        );
        let at = got
            .windows(want.len().max(1))
            .position(|w| w == want.as_slice());
        assert!(
            at.is_some() || want.is_empty(),
            "thread {t}: the trace's calls are not made in order:\n got {got:?}\nwant {want:?}"
        );
    }
}

#[test]
fn a_threaded_ruby_script_round_trips_and_replays_to_its_live_bytes() {
    let version = Command::new("ruby").arg("--version").output();
    assert!(
        version.is_ok_and(|o| o.status.success()),
        "ruby is not installed: apt-get install ruby (CI's .ci/run does)"
    );
    let dir = tempfile::tempdir().unwrap();
    // Each thread keeps 40 strings of a size no one else uses (a 1 MB body + its terminator).
    let script = dir.path().join("threads.rb");
    std::fs::write(
        &script,
        "keep = 4.times.map { |t| Thread.new { 40.times.map { 'x' * (1_000_003 + t) } } }.map(&:value)\n\
         junk = 20_000.times.map { |i| 'y' * (100 + i % 300) }\n\
         puts keep.flatten.size + junk.size\n",
    )
    .unwrap();
    let trace = dir.path().join("ruby.lhtrace");
    let o = record(&trace, &[], &["ruby", script.to_str().unwrap()]);
    assert_eq!(text(&o.stdout).lines().next(), Some("20160"));
    let (meta, events) = read_trace(&trace);
    let allocs = allocations(&events);
    let mut threads = std::collections::BTreeSet::new();
    for t in 0..4u64 {
        let mine: Vec<_> = allocs.iter().filter(|a| a.2 == 1_000_004 + t).collect();
        assert_eq!(mine.len(), 40, "thread {t}'s strings: {mine:?}");
        assert!(mine.iter().all(|a| a.1 == mine[0].1), "all on one thread");
        threads.insert(mine[0].1);
    }
    assert_eq!(threads.len(), 4);
    assert!(
        !threads.contains(&0),
        "the Ruby threads are not the main thread"
    );
    assert!(events.len() > 20_000, "{}", events.len());

    let run_dir = dir.path().join("run");
    let o = run(&[
        "replay",
        trace.to_str().unwrap(),
        "--alloc",
        "glibc,ours",
        "--speed",
        "max",
        "--out",
        run_dir.to_str().unwrap(),
        "--no-report",
        "-q",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let want = meta.recording.unwrap()["live_bytes_at_end"]
        .as_u64()
        .unwrap();
    assert!(want > 160_000_000, "the kept strings are live: {want}");
    assert_eq!(last_live(&run_dir, "glibc"), want);
    assert_eq!(last_live(&run_dir, "ours"), want);
}

#[test]
fn damaged_traces_name_the_record_and_keep_the_part_before() {
    let dir = tempfile::tempdir().unwrap();
    let exe = cc(dir.path(), "threads", THREADS_C);
    let trace = dir.path().join("t.lhtrace");
    record(&trace, &[], &[exe.to_str().unwrap()]);
    let bytes = std::fs::read(&trace).unwrap();

    let cut = dir.path().join("cut.lhtrace");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let o = run(&["stats", cut.to_str().unwrap(), "--no-charts"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("record") && err.contains("damaged"), "{err}");
    assert!(
        text(&o.stdout).contains("calls by kind"),
        "figures of the intact part"
    );

    let run_dir = dir.path().join("run");
    let o = run(&[
        "replay",
        cut.to_str().unwrap(),
        "--alloc",
        "glibc",
        "--speed",
        "max",
        "--out",
        run_dir.to_str().unwrap(),
        "--no-report",
        "-q",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap())
            .unwrap();
    let e = s["allocators"][0]["error"].as_str().unwrap();
    assert!(e.contains("record") && e.contains("cut.lhtrace"), "{e}");

    // A flipped byte in the compressed body.
    let mut bad = bytes.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0xff;
    let corrupt = dir.path().join("corrupt.lhtrace");
    std::fs::write(&corrupt, &bad).unwrap();
    let o = run(&["stats", corrupt.to_str().unwrap(), "--no-charts"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("record"), "{}", text(&o.stderr));
}
