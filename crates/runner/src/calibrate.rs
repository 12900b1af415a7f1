//! `runner calibrate`: sets a recorded **trace** beside a workload **profile**, figure by
//! figure, to show where the profile's model departs from the program it stands for.
//!
//! Both sides go through the same pass, [`trace_stats::compute_events`] (the computation behind
//! `runner stats`): the trace is read from its file; the profile's **events** are generated in
//! memory by [`workload::Workload`] for `--hours` of simulated serving after its boot, and timed
//! as the trace writer times a synthetic stream (an event happens at its thread's latest
//! `Resume`). Nothing is written to disk, and memory is bounded by the blocks alive at once plus
//! fixed-size histograms, whatever the duration.
//!
//! # Distributions and the Kolmogorov–Smirnov distance
//!
//! Each distribution (sizes overall and per call kind, block lifetimes in ns and in events,
//! realloc growth factors) is kept as a histogram with the same bins on both sides ([`bin`]):
//! every integer value below 64 Ki has its own bin (so sizes below 64 KiB are exact), and above
//! it each octave is cut into 64 log-spaced bins (bin width at most 1/64 = 1.6% of the value).
//! Growth factors (new size / old size) are binned as `round(factor * 1024)`, so factors below
//! 64 are exact to 1/1024.
//!
//! The two-sample KS statistic is `D = max_x |F_trace(x) - F_profile(x)|` over the empirical
//! CDFs. We evaluate both CDFs at the upper edge of every bin: for values in exact bins this is
//! the exact D (an empirical CDF only steps at sample values); in log-spaced bins it can miss
//! a difference inside one bin, so the reported D is a lower bound of the exact one, short of it
//! by at most the probability mass of one bin. With millions of samples on each side any
//! difference is "significant" in the test's sense, so we give D (0 = same distribution, 1 =
//! disjoint), not a p-value.
//!
//! Lifetimes cover the blocks freed before the end; blocks still live at the end are counted
//! apart (a lifetime distribution of a short trace is censored at its length).
//!
//! A profile's lifetimes in time are coarse at the short end: the generator gives every event
//! of one compute segment its `Resume`'s time, so a block freed in the segment that allocated
//! it lives 0 ns. Compare short lives in events; lifetimes in time are meaningful from the
//! millisecond range up.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use workload::trace::TraceMeta;
use workload::{Event, Profile, Workload};

use crate::cli::CalibrateArgs;
use crate::trace_stats::{self, human, Observer, TraceStats};

/// Values below this have a bin each.
const EXACT: u64 = 1 << 16;
/// log2 of the bins per octave above [`EXACT`].
const OCTAVE_BITS: u32 = 6;
/// Bins in a histogram: the exact ones, then 64 per octave from 2^16 up to 2^64.
const BINS: usize = EXACT as usize + (64 - 16) * (1 << OCTAVE_BITS);
/// Growth factors are binned in steps of 1/GROWTH_SCALE.
const GROWTH_SCALE: f64 = 1024.0;
/// Shortest profile run when `--hours` is not given (the trace may be very short).
const MIN_DEFAULT_S: f64 = 60.0;
/// A thread is "busy" if it made at least this share of the allocating calls.
const BUSY_SHARE: f64 = 0.01;
/// Quantiles shown beside each distance.
const QUANTILES: [f64; 4] = [0.10, 0.50, 0.90, 0.99];

/// The histogram bin of `v` (see the module documentation).
pub fn bin(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let octave = 63 - v.leading_zeros(); // >= 16
    let frac = (v >> (octave - OCTAVE_BITS)) & ((1 << OCTAVE_BITS) - 1);
    EXACT as usize + ((octave - 16) as usize) * (1 << OCTAVE_BITS) + frac as usize
}

/// The smallest value that falls in bin `b`.
pub fn bin_low(b: usize) -> u64 {
    if b < EXACT as usize {
        return b as u64;
    }
    let i = b - EXACT as usize;
    let octave = 16 + (i >> OCTAVE_BITS) as u32;
    let frac = (i & ((1 << OCTAVE_BITS) - 1)) as u64;
    (1u64 << octave) + (frac << (octave - OCTAVE_BITS))
}

/// An empirical distribution of non-negative integers in [`BINS`] fixed bins.
#[derive(Clone, Debug)]
pub struct Hist {
    counts: Vec<u64>,
    n: u64,
}

impl Default for Hist {
    fn default() -> Self {
        Hist {
            counts: vec![0; BINS],
            n: 0,
        }
    }
}

impl Hist {
    pub fn add(&mut self, v: u64) {
        self.counts[bin(v)] += 1;
        self.n += 1;
    }

    /// Adds every sample of `other` (same bins).
    pub fn merge(&mut self, other: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.n += other.n;
    }

    /// Samples.
    pub fn len(&self) -> u64 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The smallest bin value with at least a share `q` of the samples at or below it.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.n == 0 {
            return None;
        }
        let want = (q * self.n as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return Some(bin_low(b));
            }
        }
        Some(bin_low(BINS - 1))
    }

    /// Two-sample Kolmogorov–Smirnov statistic D (see the module documentation); `None` if
    /// either side has no samples.
    pub fn ks(&self, other: &Hist) -> Option<f64> {
        if self.n == 0 || other.n == 0 {
            return None;
        }
        let (mut a, mut b) = (0u64, 0u64);
        let mut d: f64 = 0.0;
        for (x, y) in self.counts.iter().zip(&other.counts) {
            a += x;
            b += y;
            d = d.max((a as f64 / self.n as f64 - b as f64 / other.n as f64).abs());
        }
        Some(d)
    }
}

/// The distributions compared, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dist {
    /// Sizes of every allocating call (malloc, calloc, aligned) and new sizes of reallocs.
    SizeAll,
    SizeMalloc,
    SizeCalloc,
    SizeAligned,
    /// New sizes of reallocs.
    SizeRealloc,
    LifetimeNs,
    LifetimeEvents,
    /// Realloc new size / old size, in 1/1024 steps.
    Growth,
}

impl Dist {
    pub fn all() -> [Dist; 8] {
        [
            Dist::SizeAll,
            Dist::SizeMalloc,
            Dist::SizeCalloc,
            Dist::SizeAligned,
            Dist::SizeRealloc,
            Dist::LifetimeNs,
            Dist::LifetimeEvents,
            Dist::Growth,
        ]
    }

    pub fn name(self) -> &'static str {
        match self {
            Dist::SizeAll => "size, all calls",
            Dist::SizeMalloc => "size, malloc",
            Dist::SizeCalloc => "size, calloc",
            Dist::SizeAligned => "size, aligned",
            Dist::SizeRealloc => "size, realloc (new)",
            Dist::LifetimeNs => "lifetime, time",
            Dist::LifetimeEvents => "lifetime, events",
            Dist::Growth => "realloc growth factor",
        }
    }

    /// A bin value in this distribution's unit, for the quantile columns.
    fn show(self, v: u64) -> String {
        match self {
            Dist::LifetimeNs => seconds(v as f64 / 1e9),
            Dist::LifetimeEvents => v.to_string(),
            Dist::Growth => format!("{:.3}", v as f64 / GROWTH_SCALE),
            _ => human(v),
        }
    }
}

/// Fine distributions of one side, filled during the [`trace_stats`] pass.
#[derive(Debug, Default)]
pub struct Fine {
    pub dists: BTreeMap<Dist, Hist>,
}

impl Fine {
    fn add(&mut self, d: Dist, v: u64) {
        self.dists.entry(d).or_default().add(v);
    }

    pub fn get(&self, d: Dist) -> Option<&Hist> {
        self.dists.get(&d)
    }
}

impl Observer for Fine {
    fn allocation(&mut self, kind: &'static str, size: u64) {
        self.add(Dist::SizeAll, size);
        let d = match kind {
            "malloc" => Dist::SizeMalloc,
            "calloc" => Dist::SizeCalloc,
            "aligned" => Dist::SizeAligned,
            _ => Dist::SizeRealloc,
        };
        self.add(d, size);
    }

    fn realloc(&mut self, old_size: u64, new_size: u64) {
        let f = new_size as f64 / old_size.max(1) as f64;
        self.add(Dist::Growth, (f * GROWTH_SCALE).round() as u64);
    }

    fn freed(&mut self, ns: u64, events: u64) {
        self.add(Dist::LifetimeNs, ns);
        self.add(Dist::LifetimeEvents, events);
    }
}

/// One side of the comparison: `runner stats`' figures plus the fine distributions.
#[derive(Debug)]
pub struct Side {
    pub label: String,
    pub stats: TraceStats,
    pub fine: Fine,
}

impl Side {
    /// Allocating calls: malloc, calloc, aligned and realloc.
    pub fn calls(&self) -> u64 {
        self.stats.by_kind.values().map(|k| k.count).sum()
    }

    /// Bytes asked by malloc, calloc and aligned calls (reallocs' new sizes not included).
    pub fn bytes(&self) -> u64 {
        self.stats
            .by_kind
            .iter()
            .filter(|(k, _)| **k != "realloc")
            .map(|(_, v)| v.bytes)
            .sum()
    }

    /// Threads that made at least 1% of the allocating calls (malloc, calloc, aligned).
    pub fn busy_threads(&self) -> usize {
        let total: u64 = self.stats.threads.iter().map(|t| t.allocations).sum();
        self.stats
            .threads
            .iter()
            .filter(|t| t.allocations as f64 >= BUSY_SHARE * total as f64 && t.allocations > 0)
            .count()
    }

    /// Threads with at least one event.
    pub fn threads(&self) -> usize {
        self.stats.threads.iter().filter(|t| t.events > 0).count()
    }

    /// Steady live bytes: the median of the live-bytes samples (taken at even time steps) in
    /// the second half of the stream, after boot and warm-up.
    pub fn steady_live(&self) -> u64 {
        let half = self.stats.duration_s / 2.0;
        let mut v: Vec<f64> = self
            .stats
            .live_points
            .iter()
            .filter(|(t, _)| *t >= half)
            .map(|(_, b)| *b)
            .collect();
        if v.is_empty() {
            return self.stats.live_at_end_bytes;
        }
        v.sort_by(f64::total_cmp);
        v[v.len() / 2] as u64
    }

    fn per_s(&self, n: u64) -> f64 {
        n as f64 / self.stats.duration_s.max(1e-9)
    }
}

/// The comparison.
#[derive(Debug)]
pub struct Calibration {
    pub trace: Side,
    pub profile: Side,
    pub profile_path: PathBuf,
    pub seed: u64,
    pub hours: f64,
}

/// Reads the trace (an error if it cannot be opened, is not a trace, or is damaged and
/// `partial` is false).
pub fn trace_side(path: &Path, partial: bool) -> anyhow::Result<Side> {
    let mut fine = Fine::default();
    let stats = trace_stats::compute_observed(path, 0, &mut fine)?;
    if let Some(e) = &stats.error {
        anyhow::ensure!(
            partial,
            "the trace {} is damaged: {e} (give --partial to compare the {} events before the damage)",
            path.display(),
            stats.events
        );
    }
    anyhow::ensure!(
        stats.events > 0,
        "the trace {} holds no events: nothing to calibrate against",
        path.display()
    );
    Ok(Side {
        label: "trace".into(),
        stats,
        fine,
    })
}

/// Generates `profile`'s events for `hours` of serving after boot (seed `seed`) and runs them
/// through the same pass as a trace.
pub fn profile_side(profile: Profile, path: &Path, seed: u64, hours: f64) -> Side {
    let name = profile.name.clone();
    let w = Workload::new(profile, seed, hours);
    let meta: TraceMeta = w.meta();
    let mut fine = Fine::default();
    let stats = trace_stats::compute_events(
        Timed::new(w),
        PathBuf::from(format!(
            "{} (profile {name}, seed {seed}, {hours:.4} h)",
            path.display()
        )),
        workload::trace::VERSION,
        meta,
        0,
        &mut fine,
    );
    Side {
        label: "profile".into(),
        stats,
        fine,
    }
}

/// A generator's events with the times the trace writer would give them: each event happens
/// at its thread's latest `Resume` (`TraceWriter::write`).
struct Timed {
    w: Workload,
    thread_time: Vec<u64>,
}

impl Timed {
    fn new(w: Workload) -> Self {
        Timed {
            w,
            thread_time: Vec::new(),
        }
    }
}

impl Iterator for Timed {
    type Item = Result<(u64, Event), std::convert::Infallible>;

    fn next(&mut self) -> Option<Self::Item> {
        let e = self.w.next()?;
        let t = e.thread() as usize;
        if self.thread_time.len() <= t {
            self.thread_time.resize(t + 1, 0);
        }
        if let Event::Resume { at_ns, .. } = e {
            self.thread_time[t] = at_ns;
        }
        Some(Ok((self.thread_time[t], e)))
    }
}

/// Builds the comparison from the command's arguments.
pub fn calibrate(a: &CalibrateArgs, workloads_dir: &Path) -> anyhow::Result<Calibration> {
    if let Some(h) = a.hours {
        anyhow::ensure!(
            h > 0.0 && h <= 10_000.0,
            "--hours {h} is out of range: give simulated hours in (0, 10000]"
        );
    }
    let profile_path = Profile::resolve(&a.workload, workloads_dir)?;
    let profile = Profile::load(&profile_path)?;
    let trace = trace_side(&a.trace, a.partial)?;
    let hours = a.hours.unwrap_or_else(|| {
        (trace.stats.duration_s - profile.boot.duration_s).max(MIN_DEFAULT_S) / 3600.0
    });
    let profile = profile_side(profile, &profile_path, a.seed, hours);
    Ok(Calibration {
        trace,
        profile,
        profile_path,
        seed: a.seed,
        hours,
    })
}

fn seconds(s: f64) -> String {
    if s == 0.0 {
        "0".into()
    } else if s < 1e-6 {
        format!("{:.0} ns", s * 1e9)
    } else if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

fn share(n: u64, total: u64) -> String {
    format!("{:.1}%", 100.0 * n as f64 / total.max(1) as f64)
}

/// A table: a header and rows of cells, drawn as aligned text or as Markdown.
struct Table {
    title: String,
    head: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(title: &str, head: &[&str]) -> Self {
        Table {
            title: title.into(),
            head: head.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn write(&self, out: &mut impl Write, markdown: bool) -> std::io::Result<()> {
        if markdown {
            writeln!(out, "\n### {}\n", self.title)?;
            writeln!(out, "| {} |", self.head.join(" | "))?;
            let rule: Vec<&str> = self
                .head
                .iter()
                .enumerate()
                .map(|(i, _)| if i == 0 { "---" } else { "---:" })
                .collect();
            writeln!(out, "|{}|", rule.join("|"))?;
            for r in &self.rows {
                writeln!(out, "| {} |", r.join(" | "))?;
            }
            return Ok(());
        }
        let mut w: Vec<usize> = self.head.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                if i < w.len() {
                    w[i] = w[i].max(c.chars().count());
                }
            }
        }
        writeln!(out, "\n{}", self.title)?;
        let line = |cells: &[String]| -> String {
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let pad = w[i].saturating_sub(c.chars().count());
                    if i == 0 {
                        format!("{c}{}", " ".repeat(pad))
                    } else {
                        format!("{}{c}", " ".repeat(pad))
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
        };
        writeln!(out, "  {}", line(&self.head))?;
        for r in &self.rows {
            writeln!(out, "  {}", line(r))?;
        }
        Ok(())
    }
}

fn opt_ks(a: Option<&Hist>, b: Option<&Hist>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => a.ks(b),
        _ => None,
    }
}

/// KS D for one distribution, `None` if either side has no samples.
pub fn distance(c: &Calibration, d: Dist) -> Option<f64> {
    opt_ks(c.trace.fine.get(d), c.profile.fine.get(d))
}

/// Writes the comparison as aligned text or as Markdown.
pub fn print(c: &Calibration, out: &mut impl Write, markdown: bool) -> std::io::Result<()> {
    let (t, p) = (&c.trace, &c.profile);
    if markdown {
        writeln!(out, "## Calibration: trace vs profile\n")?;
    } else {
        writeln!(out, "calibration: trace vs profile")?;
    }
    let bullet = if markdown { "- " } else { "  " };
    writeln!(
        out,
        "{bullet}trace: {} ({}, {} events over {:.1} s)",
        t.stats.trace.display(),
        if t.stats.meta.origin.is_empty() {
            "origin unknown"
        } else {
            &t.stats.meta.origin
        },
        t.stats.events,
        t.stats.duration_s
    )?;
    if !t.stats.meta.command.is_empty() {
        writeln!(
            out,
            "{bullet}recorded command: {}",
            t.stats.meta.command.join(" ")
        )?;
    }
    writeln!(
        out,
        "{bullet}profile: {} (seed {}, {:.4} simulated hours after its boot, generated in memory)",
        c.profile_path.display(),
        c.seed,
        c.hours
    )?;
    if let Some(e) = &t.stats.error {
        writeln!(
            out,
            "{bullet}note: the trace is damaged ({e}); its figures cover the events before it"
        )?;
    }
    writeln!(
        out,
        "{bullet}KS D: two-sample Kolmogorov-Smirnov distance of the two empirical distributions \
         (0 same, 1 disjoint); exact below 64 Ki, 64 log bins per octave above"
    )?;

    let mut o = Table::new("overview", &["figure", "trace", "profile"]);
    let row = |o: &mut Table, name: &str, a: String, b: String| o.row(vec![name.into(), a, b]);
    row(
        &mut o,
        "events",
        t.stats.events.to_string(),
        p.stats.events.to_string(),
    );
    row(
        &mut o,
        "duration (recorded / simulated s)",
        format!("{:.1}", t.stats.duration_s),
        format!("{:.1}", p.stats.duration_s),
    );
    row(
        &mut o,
        "threads with events",
        t.threads().to_string(),
        p.threads().to_string(),
    );
    row(
        &mut o,
        "busy threads (>= 1% of allocations)",
        t.busy_threads().to_string(),
        p.busy_threads().to_string(),
    );
    row(
        &mut o,
        "allocating calls (malloc-family incl. realloc)",
        t.calls().to_string(),
        p.calls().to_string(),
    );
    row(
        &mut o,
        "frees",
        t.stats.frees.to_string(),
        p.stats.frees.to_string(),
    );
    row(
        &mut o,
        "realloc share of allocating calls",
        share(t.stats.reallocs, t.calls()),
        share(p.stats.reallocs, p.calls()),
    );
    row(
        &mut o,
        "cross-thread free share",
        format!("{:.1}%", 100.0 * t.stats.cross_thread_free_share),
        format!("{:.1}%", 100.0 * p.stats.cross_thread_free_share),
    );
    row(
        &mut o,
        "live bytes, steady (median of 2nd half)",
        human(t.steady_live()),
        human(p.steady_live()),
    );
    row(
        &mut o,
        "live bytes, peak",
        human(t.stats.peak_live_bytes),
        human(p.stats.peak_live_bytes),
    );
    row(
        &mut o,
        "live bytes, at end",
        human(t.stats.live_at_end_bytes),
        human(p.stats.live_at_end_bytes),
    );
    row(
        &mut o,
        "alloc rate per process, calls/s",
        format!("{:.0}", t.per_s(t.calls())),
        format!("{:.0}", p.per_s(p.calls())),
    );
    row(
        &mut o,
        "alloc rate per process, bytes/s (malloc/calloc/aligned)",
        format!("{}/s", human(t.per_s(t.bytes()) as u64)),
        format!("{}/s", human(p.per_s(p.bytes()) as u64)),
    );
    let per_busy = |s: &Side, n: u64| s.per_s(n) / s.busy_threads().max(1) as f64;
    row(
        &mut o,
        "alloc rate per busy thread, calls/s",
        format!("{:.0}", per_busy(t, t.calls())),
        format!("{:.0}", per_busy(p, p.calls())),
    );
    row(
        &mut o,
        "alloc rate per busy thread, bytes/s",
        format!("{}/s", human(per_busy(t, t.bytes()) as u64)),
        format!("{}/s", human(per_busy(p, p.bytes()) as u64)),
    );
    o.write(out, markdown)?;
    writeln!(
        out,
        "{}rates are over the whole duration (boot included), per process, and per busy thread = per process / busy threads",
        if markdown { "\n" } else { "  " }
    )?;

    let mut head = vec!["distribution", "n trace", "n profile"];
    let qnames: Vec<String> = QUANTILES
        .iter()
        .map(|q| format!("p{:.0} trace / profile", q * 100.0))
        .collect();
    head.extend(qnames.iter().map(String::as_str));
    head.push("KS D");
    let mut d = Table::new("distributions (KS D per distribution)", &head);
    for dist in Dist::all() {
        let (a, b) = (t.fine.get(dist), p.fine.get(dist));
        let n = |h: Option<&Hist>| h.map_or(0, Hist::len);
        if n(a) == 0 && n(b) == 0 {
            continue;
        }
        let mut r = vec![dist.name().to_string(), n(a).to_string(), n(b).to_string()];
        for q in QUANTILES {
            let show = |h: Option<&Hist>| {
                h.and_then(|h| h.quantile(q))
                    .map_or_else(|| "-".into(), |v| dist.show(v))
            };
            r.push(format!("{} / {}", show(a), show(b)));
        }
        r.push(distance(c, dist).map_or_else(|| "-".into(), |d| format!("{d:.3}")));
        d.row(r);
    }
    d.write(out, markdown)?;

    // Coarse classes, the same as `runner stats` prints, as shares of each side.
    let mut s = Table::new(
        "size classes (share of allocating calls, realloc new sizes included)",
        &["size", "trace", "profile"],
    );
    let sum_bucket = |st: &TraceStats, b: usize| -> u64 {
        st.by_kind
            .values()
            .map(|v| v.sizes.get(b).copied().unwrap_or(0))
            .sum()
    };
    for (b, label) in t.stats.size_labels.iter().enumerate() {
        let (x, y) = (sum_bucket(&t.stats, b), sum_bucket(&p.stats, b));
        if x + y > 0 {
            s.row(vec![
                label.clone(),
                share(x, t.calls()),
                share(y, p.calls()),
            ]);
        }
    }
    s.write(out, markdown)?;

    let pair = |title: &str,
                head: &str,
                a: &[(String, u64)],
                b: &[(String, u64)],
                out: &mut dyn FnMut(&Table) -> std::io::Result<()>| {
        let (ta, tb): (u64, u64) = (a.iter().map(|x| x.1).sum(), b.iter().map(|x| x.1).sum());
        let mut tab = Table::new(title, &[head, "trace", "profile"]);
        for (x, y) in a.iter().zip(b) {
            tab.row(vec![x.0.clone(), share(x.1, ta), share(y.1, tb)]);
        }
        out(&tab)
    };
    let mut w = |tab: &Table| tab.write(out, markdown);
    pair(
        "lifetime of blocks in time (share of blocks, live at end included)",
        "lifetime",
        &t.stats.lifetime_time,
        &p.stats.lifetime_time,
        &mut w,
    )?;
    pair(
        "lifetime of blocks in events (share of blocks, live at end included)",
        "lifetime",
        &t.stats.lifetime_events,
        &p.stats.lifetime_events,
        &mut w,
    )?;
    pair(
        "realloc growth factor (new / old size, share of reallocs)",
        "factor",
        &t.stats.realloc_growth,
        &p.stats.realloc_growth,
        &mut w,
    )?;
    Ok(())
}

/// Writes both sides' cumulative distributions: one row per distribution and bin that either
/// side has samples in, the bin's lowest value in the distribution's unit (bytes, ns, events,
/// growth factor x 1024) and the share of each side's samples at or below that bin.
pub fn write_cdf(c: &Calibration, path: &Path) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_path(path)
        .with_context(|| format!("cannot create the CDF file {} (--cdf)", path.display()))?;
    w.write_record(["distribution", "value", "trace_cdf", "profile_cdf"])?;
    for d in Dist::all() {
        let (Some(t), Some(p)) = (c.trace.fine.get(d), c.profile.fine.get(d)) else {
            continue;
        };
        if t.is_empty() || p.is_empty() {
            continue;
        }
        let (mut a, mut b) = (0u64, 0u64);
        for (i, (x, y)) in t.counts.iter().zip(&p.counts).enumerate() {
            if *x == 0 && *y == 0 {
                continue;
            }
            a += x;
            b += y;
            w.write_record([
                d.name().to_string(),
                bin_low(i).to_string(),
                format!("{:.6}", a as f64 / t.n as f64),
                format!("{:.6}", b as f64 / p.n as f64),
            ])?;
        }
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// A profile's measured size table (`[mix] table`, rows `[lo, hi, share]`) from a histogram of
/// sizes: the `points` most frequent sizes as exact rows, every other size in the power-of-two
/// range `[2^k + 1, 2^(k+1)]` (`[1, 1]` for 1 byte) that holds it, shares summing to 1. Sizes
/// above 64 KiB keep their 1/64-octave bins' lower edges (the histogram's resolution).
pub fn size_table(h: &Hist, points: usize) -> Vec<(u64, u64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let n = h.n as f64;
    let mut by_count: Vec<(u64, usize)> = h
        .counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(b, c)| (*c, b))
        .collect();
    by_count.sort_unstable_by(|a, b| b.cmp(a));
    let exact: std::collections::BTreeSet<usize> =
        by_count.iter().take(points).map(|&(_, b)| b).collect();
    // Power-of-two ranges: the range of size v > 1 is (2^(k-1), 2^k] with 2^k = v.next_power_of_two().
    let mut ranges: BTreeMap<u64, u64> = BTreeMap::new();
    let mut rows = Vec::new();
    for (b, &c) in h.counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let v = bin_low(b);
        if exact.contains(&b) {
            rows.push((v, v, c as f64 / n));
        } else {
            *ranges.entry(v.max(1).next_power_of_two()).or_default() += c;
        }
    }
    for (top, c) in ranges {
        let lo = if top <= 1 { 1 } else { top / 2 + 1 };
        rows.push((lo, top, c as f64 / n));
    }
    rows.sort_by_key(|r| (r.0, r.1));
    rows
}

/// A trace's size table as TOML lines for a profile's `[mix]` section.
pub fn size_table_toml(trace: &Side, points: usize) -> String {
    let mut h = Hist::default();
    for d in [Dist::SizeMalloc, Dist::SizeCalloc, Dist::SizeAligned] {
        if let Some(x) = trace.fine.get(d) {
            h.merge(x);
        }
    }
    let mut s = format!(
        "# measured size table: malloc, calloc and aligned sizes of {} ({} calls); the {points} most frequent sizes exactly, the rest in power-of-two ranges\ntable = [\n",
        trace.stats.trace.display(), h.n
    );
    for (lo, hi, share) in size_table(&h, points) {
        // Six decimals, or four significant digits for rare sizes (a share is never 0).
        let share = if share >= 1e-4 {
            format!("{share:.6}")
        } else {
            format!("{share:.3e}")
        };
        s.push_str(&format!("    [{lo}, {hi}, {share}],\n"));
    }
    s.push_str("]\n");
    s
}

/// The command: computes and prints the comparison.
pub fn main(a: &CalibrateArgs, workloads_dir: &Path) -> anyhow::Result<()> {
    if let (Some(points), None) = (a.size_table, &a.cdf) {
        // The table needs the trace only: the profile's events are not generated.
        Profile::resolve(&a.workload, workloads_dir)?;
        print!(
            "{}",
            size_table_toml(&trace_side(&a.trace, a.partial)?, points)
        );
        return Ok(());
    }
    let c = calibrate(a, workloads_dir)?;
    if let Some(path) = &a.cdf {
        write_cdf(&c, path)?;
    }
    if let Some(points) = a.size_table {
        print!("{}", size_table_toml(&c.trace, points));
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    match print(&c, &mut out, a.markdown) {
        // A reader that stopped early (`runner calibrate t | head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to stdout"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_exact_below_64k_and_ordered_above() {
        for v in [0, 1, 63, 65_535] {
            assert_eq!(bin_low(bin(v)), v);
        }
        let mut last = bin(65_535);
        for v in (16..63).flat_map(|o| [1u64 << o, (1u64 << o) + (1u64 << (o - 1))]) {
            let b = bin(v);
            assert!(b > last, "bin of {v}");
            assert!(bin_low(b) <= v && v - bin_low(b) <= v / 64);
            last = b;
        }
        assert!(bin(u64::MAX) < BINS);
    }

    #[test]
    fn ks_is_zero_for_same_and_one_for_disjoint() {
        let (mut a, mut b, mut c) = (Hist::default(), Hist::default(), Hist::default());
        for v in 0..1000 {
            a.add(v);
            b.add(v);
            c.add(v + 5000);
        }
        assert_eq!(a.ks(&b), Some(0.0));
        assert_eq!(a.ks(&c), Some(1.0));
        assert_eq!(a.ks(&Hist::default()), None);
        assert_eq!(a.quantile(0.5), Some(499));
    }
}
