//! `runner stats`: describes a trace in one streaming pass, with memory bounded by its live
//! blocks: sizes by call kind, block lifetimes (in time and in events), realloc share and
//! growth factors, cross-thread frees, threads and their shares, live bytes over time (a chart
//! drawn by the report crate) and the biggest allocations.
//!
//! A block's **lifetime** runs from the call that allocates it to the free that ends it; a
//! realloc continues it. A **cross-thread free** frees (or reallocs) a block on a thread other
//! than the one that allocated it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use workload::trace::{TraceMeta, TraceReader};
use workload::{BlockRef, Event};

use crate::cli::StatsArgs;

/// Size classes of the histograms: up to 16 B, then powers of two, then above 16 MiB.
const SIZE_BUCKETS: usize = 22;
/// Lifetime decades in ns: < 1 µs ... >= 100 s.
const TIME_BUCKETS: [(u64, &str); 9] = [
    (1_000, "< 1 µs"),
    (10_000, "< 10 µs"),
    (100_000, "< 100 µs"),
    (1_000_000, "< 1 ms"),
    (10_000_000, "< 10 ms"),
    (100_000_000, "< 100 ms"),
    (1_000_000_000, "< 1 s"),
    (10_000_000_000, "< 10 s"),
    (u64::MAX, ">= 10 s"),
];
/// Growth factor classes of reallocs (new size / old size).
const GROWTH: [(f64, &str); 7] = [
    (0.5, "< 0.5 (shrink)"),
    (1.0, "0.5-1 (shrink)"),
    (1.0000001, "1 (same)"),
    (1.5, "1-1.5"),
    (2.0000001, "1.5-2"),
    (4.0, "2-4"),
    (f64::INFINITY, ">= 4"),
];
/// Most points kept for the live-bytes chart (halved, and the spacing doubled, when full).
const MAX_POINTS: usize = 100_000;

fn size_bucket(size: u64) -> usize {
    if size <= 16 {
        return 0;
    }
    let log = 64 - (size - 1).leading_zeros() as usize; // ceil(log2(size))
    (log - 4).min(SIZE_BUCKETS - 1)
}

pub(crate) fn size_label(b: usize) -> String {
    match b {
        0 => "<= 16 B".into(),
        b if b == SIZE_BUCKETS - 1 => format!("> {}", human(1u64 << (b + 3))),
        b => format!("<= {}", human(1u64 << (b + 4))),
    }
}

pub(crate) fn human(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
    } else if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
    } else if b >= 1 << 10 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{b} B")
    }
}

/// Calls of one kind: how many, how many bytes, and the size histogram.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KindStats {
    pub count: u64,
    pub bytes: u64,
    pub sizes: Vec<u64>,
}

impl KindStats {
    fn add(&mut self, size: u64) {
        if self.sizes.is_empty() {
            self.sizes = vec![0; SIZE_BUCKETS];
        }
        self.count += 1;
        self.bytes += size;
        self.sizes[size_bucket(size)] += 1;
    }
}

/// One thread's share.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ThreadStats {
    pub id: u32,
    pub name: Option<String>,
    pub events: u64,
    pub allocations: u64,
    pub bytes_allocated: u64,
    pub frees: u64,
    pub cross_thread_frees: u64,
    pub ended: bool,
}

/// One of the biggest allocations.
#[derive(Clone, Debug, Serialize)]
pub struct Big {
    pub size: u64,
    pub kind: &'static str,
    pub thread: u32,
    pub at_s: f64,
    /// Seconds until it was freed (or resized away), `None` if still live at the end.
    pub lifetime_s: Option<f64>,
    #[serde(skip)]
    block: BlockRef,
}

/// Everything `runner stats` reports.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TraceStats {
    pub trace: PathBuf,
    pub format_version: u32,
    pub meta: TraceMeta,
    pub events: u64,
    pub duration_s: f64,
    pub by_kind: BTreeMap<&'static str, KindStats>,
    pub size_labels: Vec<String>,
    pub markers: BTreeMap<&'static str, u64>,
    pub lifetime_time: Vec<(String, u64)>,
    pub lifetime_events: Vec<(String, u64)>,
    pub live_at_end_blocks: u64,
    pub live_at_end_bytes: u64,
    pub peak_live_bytes: u64,
    pub peak_live_at_s: f64,
    pub reallocs: u64,
    pub realloc_share: f64,
    pub realloc_growth: Vec<(String, u64)>,
    pub frees: u64,
    pub cross_thread_frees: u64,
    pub cross_thread_free_share: f64,
    pub threads: Vec<ThreadStats>,
    pub biggest: Vec<Big>,
    /// Events that name blocks inconsistently (a damaged or hand-made trace): skipped.
    pub inconsistent_events: u64,
    /// Why reading stopped early, if it did.
    pub error: Option<String>,
    #[serde(skip)]
    pub live_points: Vec<(f64, f64)>,
}

#[derive(Clone, Copy, Default)]
struct SlotLife {
    gen: u16,
    live: bool,
    thread: u32,
    size: u64,
    born_ns: u64,
    born_index: u64,
}

/// Sees each block event as [`compute_events`] classifies it, so that another command
/// (`runner calibrate`) can keep finer distributions from the same pass without repeating its
/// bookkeeping. Every method defaults to doing nothing.
pub trait Observer {
    /// A block was allocated (`kind`: malloc, calloc or aligned) or resized (`realloc`, with
    /// its new size).
    fn allocation(&mut self, _kind: &'static str, _size: u64) {}
    /// A realloc from `old_size` to `new_size` bytes.
    fn realloc(&mut self, _old_size: u64, _new_size: u64) {}
    /// A block was freed after living `ns` nanoseconds and `events` events (its allocation to
    /// its free; reallocs continue a block).
    fn freed(&mut self, _ns: u64, _events: u64) {}
}

/// The observer that keeps nothing.
impl Observer for () {}

/// Reads the whole trace at `path`; a damaged trace gives the figures of its intact part and
/// the error in [`TraceStats::error`].
pub fn compute(path: &Path, top: usize) -> anyhow::Result<TraceStats> {
    compute_observed(path, top, &mut ())
}

/// [`compute`], showing every block event to `obs` as well.
pub fn compute_observed(
    path: &Path,
    top: usize,
    obs: &mut impl Observer,
) -> anyhow::Result<TraceStats> {
    let f =
        File::open(path).with_context(|| format!("cannot open the trace {}", path.display()))?;
    let reader = TraceReader::new(BufReader::with_capacity(1 << 16, f))
        .with_context(|| format!("trace {}", path.display()))?;
    let version = reader.header().version;
    let meta = reader.header().meta.clone();
    Ok(compute_events(
        reader,
        path.to_path_buf(),
        version,
        meta,
        top,
        obs,
    ))
}

/// The one pass behind [`compute`] over any stream of timed events (`(time ns, event)`, as
/// [`TraceReader`] yields them): a trace file, or a profile's events generated in memory. The
/// first error ends the pass and lands in [`TraceStats::error`]. `trace` names the source in
/// the report.
pub fn compute_events<E: std::fmt::Display>(
    events: impl IntoIterator<Item = Result<(u64, Event), E>>,
    trace: PathBuf,
    format_version: u32,
    meta: TraceMeta,
    top: usize,
    obs: &mut impl Observer,
) -> TraceStats {
    let mut events = events.into_iter();
    let mut s = TraceStats {
        trace,
        format_version,
        meta,
        size_labels: (0..SIZE_BUCKETS).map(size_label).collect(),
        ..TraceStats::default()
    };
    let names: Vec<Option<String>> = s
        .meta
        .recording
        .as_ref()
        .and_then(|r| r.get("threads"))
        .and_then(|t| t.as_array())
        .map(|a| {
            a.iter()
                .map(|t| t.get("name").and_then(|n| n.as_str()).map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let mut slots: Vec<SlotLife> = Vec::new();
    let mut life_time = [0u64; TIME_BUCKETS.len()];
    let mut life_events = [0u64; 9];
    let mut growth = [0u64; GROWTH.len()];
    let mut live: i128 = 0;
    let mut live_blocks: i64 = 0;
    let mut point_every_ns: u64 = 1_000_000;
    let mut next_point_ns = 0;
    let mut last_ns = 0;
    let mut biggest: Vec<Big> = Vec::new();
    let mut index: u64 = 0;
    loop {
        let (t, e) = match events.next() {
            Some(Ok(x)) => x,
            None => break,
            Some(Err(err)) => {
                s.error = Some(err.to_string());
                break;
            }
        };
        index += 1;
        last_ns = last_ns.max(t);
        let th = e.thread() as usize;
        if s.threads.len() <= th {
            let from = s.threads.len();
            s.threads.extend((from..=th).map(|id| ThreadStats {
                id: id as u32,
                name: names.get(id).cloned().flatten(),
                ..ThreadStats::default()
            }));
        }
        s.threads[th].events += 1;
        let slot_of = |slots: &mut Vec<SlotLife>, b: BlockRef| -> usize {
            let i = b.slot as usize;
            if slots.len() <= i {
                slots.resize(i + 1, SlotLife::default());
            }
            i
        };
        let mut allocate = |s: &mut TraceStats,
                            slots: &mut Vec<SlotLife>,
                            kind: &'static str,
                            b: BlockRef,
                            size: u64|
         -> bool {
            let i = slot_of(slots, b);
            if slots[i].live {
                return false;
            }
            slots[i] = SlotLife {
                gen: b.gen,
                live: true,
                thread: th as u32,
                size,
                born_ns: t,
                born_index: index,
            };
            s.by_kind.entry(kind).or_default().add(size);
            obs.allocation(kind, size);
            s.threads[th].allocations += 1;
            s.threads[th].bytes_allocated += size;
            consider_big(&mut biggest, top, kind, size, th as u32, t, b);
            true
        };
        match e {
            Event::Malloc { block, size, .. } => {
                if allocate(&mut s, &mut slots, "malloc", block, size) {
                    live += size as i128;
                    live_blocks += 1;
                } else {
                    s.inconsistent_events += 1;
                }
            }
            Event::Calloc { block, size, .. } => {
                if allocate(&mut s, &mut slots, "calloc", block, size) {
                    live += size as i128;
                    live_blocks += 1;
                } else {
                    s.inconsistent_events += 1;
                }
            }
            Event::Aligned { block, size, .. } => {
                if allocate(&mut s, &mut slots, "aligned", block, size) {
                    live += size as i128;
                    live_blocks += 1;
                } else {
                    s.inconsistent_events += 1;
                }
            }
            Event::Realloc {
                block,
                old_size,
                new_size,
                ..
            } => {
                let i = slot_of(&mut slots, block);
                let l = slots[i];
                if !l.live || l.gen != block.gen {
                    s.inconsistent_events += 1;
                    continue;
                }
                s.reallocs += 1;
                s.by_kind.entry("realloc").or_default().add(new_size);
                obs.allocation("realloc", new_size);
                obs.realloc(old_size, new_size);
                let f = new_size as f64 / (old_size.max(1)) as f64;
                let g = GROWTH.iter().position(|(lim, _)| f < *lim).unwrap_or(0);
                growth[g] += 1;
                live += new_size as i128 - old_size as i128;
                slots[i].gen = block.gen.wrapping_add(1);
                slots[i].size = new_size;
                end_big(&mut biggest, block, t);
                let nb = BlockRef {
                    slot: block.slot,
                    gen: block.gen.wrapping_add(1),
                };
                consider_big(&mut biggest, top, "realloc", new_size, th as u32, t, nb);
            }
            Event::Free { block, size, .. } => {
                let i = slot_of(&mut slots, block);
                let l = slots[i];
                if !l.live || l.gen != block.gen {
                    s.inconsistent_events += 1;
                    continue;
                }
                slots[i].live = false;
                s.frees += 1;
                s.threads[th].frees += 1;
                if l.thread != th as u32 {
                    s.cross_thread_frees += 1;
                    s.threads[th].cross_thread_frees += 1;
                }
                let dt = t.saturating_sub(l.born_ns);
                let b = TIME_BUCKETS
                    .iter()
                    .position(|(lim, _)| dt < *lim)
                    .unwrap_or(0);
                life_time[b] += 1;
                let de = index - l.born_index;
                obs.freed(dt, de);
                let eb = (de.max(1).ilog10() as usize).min(life_events.len() - 1);
                life_events[eb] += 1;
                live -= size as i128;
                live_blocks -= 1;
                end_big(&mut biggest, block, t);
            }
            Event::ThreadEnd { .. } => {
                s.threads[th].ended = true;
                *s.markers.entry("thread end").or_default() += 1;
            }
            Event::Resume { .. } => *s.markers.entry("resume").or_default() += 1,
            Event::RequestStart { .. } => *s.markers.entry("request start").or_default() += 1,
            Event::RequestEnd { .. } => *s.markers.entry("request end").or_default() += 1,
            Event::Gc { .. } => *s.markers.entry("gc").or_default() += 1,
        }
        let live_now = live.max(0) as u64;
        if live_now > s.peak_live_bytes {
            s.peak_live_bytes = live_now;
            s.peak_live_at_s = t as f64 / 1e9;
        }
        if t >= next_point_ns {
            s.live_points.push((t as f64 / 1e9, live_now as f64));
            next_point_ns = t + point_every_ns;
            if s.live_points.len() >= MAX_POINTS {
                let kept: Vec<_> = s.live_points.iter().copied().step_by(2).collect();
                s.live_points = kept;
                point_every_ns *= 2;
            }
        }
    }
    s.events = index;
    s.duration_s = last_ns as f64 / 1e9;
    s.live_points.push((s.duration_s, live.max(0) as f64));
    s.live_at_end_bytes = live.max(0) as u64;
    s.live_at_end_blocks = live_blocks.max(0) as u64;
    let allocations: u64 = s
        .by_kind
        .iter()
        .filter(|(k, _)| **k != "realloc")
        .map(|(_, v)| v.count)
        .sum();
    s.realloc_share = s.reallocs as f64 / (allocations + s.reallocs).max(1) as f64;
    s.cross_thread_free_share = s.cross_thread_frees as f64 / s.frees.max(1) as f64;
    s.lifetime_time = TIME_BUCKETS
        .iter()
        .zip(life_time)
        .map(|((_, l), n)| (l.to_string(), n))
        .chain([("live at end".to_string(), s.live_at_end_blocks)])
        .collect();
    s.lifetime_events = (0..life_events.len())
        .map(|i| {
            let label = if i + 1 == life_events.len() {
                format!(">= 1e{i} events")
            } else {
                format!("< 1e{} events", i + 1)
            };
            (label, life_events[i])
        })
        .chain([("live at end".to_string(), s.live_at_end_blocks)])
        .collect();
    s.realloc_growth = GROWTH
        .iter()
        .zip(growth)
        .map(|((_, l), n)| (l.to_string(), n))
        .collect();
    biggest.sort_by_key(|b| std::cmp::Reverse(b.size));
    s.biggest = biggest;
    s
}

fn consider_big(
    biggest: &mut Vec<Big>,
    top: usize,
    kind: &'static str,
    size: u64,
    thread: u32,
    t: u64,
    block: BlockRef,
) {
    if top == 0 {
        return;
    }
    if biggest.len() == top {
        let (i, min) = biggest
            .iter()
            .enumerate()
            .min_by_key(|(_, b)| b.size)
            .map(|(i, b)| (i, b.size))
            .unwrap_or((0, 0));
        if size <= min {
            return;
        }
        biggest.swap_remove(i);
    }
    biggest.push(Big {
        size,
        kind,
        thread,
        at_s: t as f64 / 1e9,
        lifetime_s: None,
        block,
    });
}

fn end_big(biggest: &mut [Big], block: BlockRef, t: u64) {
    for b in biggest.iter_mut() {
        if b.block == block && b.lifetime_s.is_none() {
            b.lifetime_s = Some((t as f64 / 1e9 - b.at_s).max(0.0));
        }
    }
}

fn pct(n: u64, total: u64) -> String {
    format!("{:5.1}%", 100.0 * n as f64 / total.max(1) as f64)
}

/// Writes the text report.
pub fn print(s: &TraceStats, out: &mut impl Write) -> std::io::Result<()> {
    let m = &s.meta;
    writeln!(
        out,
        "trace {} (format version {})",
        s.trace.display(),
        s.format_version
    )?;
    if !m.command.is_empty() {
        writeln!(out, "  command: {}", m.command.join(" "))?;
    }
    if let Some(at) = &m.started_at {
        writeln!(out, "  started: {at}")?;
    }
    writeln!(
        out,
        "  {} events over {:.3} s on {} threads ({})",
        s.events,
        s.duration_s,
        s.threads.len(),
        if m.origin.is_empty() {
            "origin unknown"
        } else {
            &m.origin
        }
    )?;
    writeln!(
        out,
        "  live at end: {} in {} blocks; peak live {} at {:.3} s",
        human(s.live_at_end_bytes),
        s.live_at_end_blocks,
        human(s.peak_live_bytes),
        s.peak_live_at_s
    )?;

    writeln!(out, "\ncalls by kind")?;
    writeln!(
        out,
        "  {:<10} {:>12} {:>12} {:>12}",
        "kind", "calls", "bytes", "mean size"
    )?;
    for (k, v) in &s.by_kind {
        writeln!(
            out,
            "  {:<10} {:>12} {:>12} {:>12}",
            k,
            v.count,
            human(v.bytes),
            human(v.bytes / v.count.max(1))
        )?;
    }
    writeln!(out, "  {:<10} {:>12}", "free", s.frees)?;
    for (k, n) in &s.markers {
        writeln!(out, "  {k:<10} {n:>12}")?;
    }

    writeln!(out, "\nsize histogram (calls; realloc: new sizes)")?;
    write!(out, "  {:<12}", "size")?;
    for k in s.by_kind.keys() {
        write!(out, " {k:>10}")?;
    }
    writeln!(out)?;
    let last = (0..SIZE_BUCKETS)
        .rev()
        .find(|&b| {
            s.by_kind
                .values()
                .any(|v| v.sizes.get(b).copied().unwrap_or(0) > 0)
        })
        .unwrap_or(0);
    let first = (0..SIZE_BUCKETS)
        .find(|&b| {
            s.by_kind
                .values()
                .any(|v| v.sizes.get(b).copied().unwrap_or(0) > 0)
        })
        .unwrap_or(0);
    for b in first..=last {
        write!(out, "  {:<12}", s.size_labels[b])?;
        for v in s.by_kind.values() {
            write!(out, " {:>10}", v.sizes.get(b).copied().unwrap_or(0))?;
        }
        writeln!(out)?;
    }

    let lived: u64 = s.lifetime_time.iter().map(|x| x.1).sum();
    writeln!(
        out,
        "\nlifetime of blocks (allocation to free; reallocs continue a block)"
    )?;
    writeln!(
        out,
        "  {:<16} {:>12}        {:<18} {:>12}",
        "in time", "blocks", "in events", "blocks"
    )?;
    for (a, b) in s.lifetime_time.iter().zip(&s.lifetime_events) {
        writeln!(
            out,
            "  {:<16} {:>12} {}  {:<18} {:>12} {}",
            a.0,
            a.1,
            pct(a.1, lived),
            b.0,
            b.1,
            pct(b.1, lived)
        )?;
    }

    writeln!(
        out,
        "\nreallocs: {} = {:.1}% of allocating calls; growth factor (new / old size):",
        s.reallocs,
        100.0 * s.realloc_share
    )?;
    for (l, n) in &s.realloc_growth {
        writeln!(out, "  {l:<16} {n:>12} {}", pct(*n, s.reallocs))?;
    }
    writeln!(
        out,
        "\ncross-thread frees: {} of {} frees = {:.1}%",
        s.cross_thread_frees,
        s.frees,
        100.0 * s.cross_thread_free_share
    )?;

    let events: u64 = s.threads.iter().map(|t| t.events).sum();
    writeln!(out, "\nthreads")?;
    writeln!(
        out,
        "  {:>6} {:<16} {:>12} {:>7} {:>12} {:>12} {:>12} {:>6}",
        "id", "name", "events", "share", "allocated", "frees", "cross-frees", "ended"
    )?;
    for t in &s.threads {
        writeln!(
            out,
            "  {:>6} {:<16} {:>12} {} {:>12} {:>12} {:>12} {:>6}",
            t.id,
            t.name.as_deref().unwrap_or("-"),
            t.events,
            pct(t.events, events),
            human(t.bytes_allocated),
            t.frees,
            t.cross_thread_frees,
            if t.ended { "yes" } else { "no" }
        )?;
    }

    writeln!(out, "\nbiggest allocations")?;
    for b in &s.biggest {
        writeln!(
            out,
            "  {:>12} {:<8} thread {:<4} at {:>10.3} s, {}",
            human(b.size),
            b.kind,
            b.thread,
            b.at_s,
            b.lifetime_s
                .map_or_else(|| "live at end".into(), |l| format!("lived {l:.3} s"))
        )?;
    }
    if s.inconsistent_events > 0 {
        writeln!(
            out,
            "\nnote: {} events named blocks inconsistently and were skipped",
            s.inconsistent_events
        )?;
    }
    Ok(())
}

/// The command: prints the stats, writes stats.json and the chart; returns whether the trace
/// was damaged (the figures then cover its intact part).
pub fn main(a: &StatsArgs) -> anyhow::Result<bool> {
    let s = compute(&a.trace, a.top)?;
    let mut out = std::io::stdout().lock();
    match print(&s, &mut out) {
        // A reader that stopped early (`runner stats t | head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(s.error.is_some()),
        r => r.context("writing to stdout")?,
    }
    if !a.no_charts {
        let dir = a
            .out
            .clone()
            .unwrap_or_else(|| a.trace.with_extension("stats"));
        std::fs::create_dir_all(&dir).with_context(|| {
            format!(
                "cannot create the folder for the charts {} (choose one with --out)",
                dir.display()
            )
        })?;
        let json = dir.join("stats.json");
        let text = serde_json::to_string_pretty(&s).context("encoding stats.json")?;
        std::fs::write(&json, text).with_context(|| format!("cannot write {}", json.display()))?;
        report::style::register_fonts()?;
        let name = a
            .trace
            .file_name()
            .map_or_else(|| "trace".into(), |n| n.to_string_lossy().into_owned());
        let fig = report::figures::trace_live::TraceLive {
            name,
            points: s.live_points.clone(),
        };
        let r = report::figures::render(&fig, &dir)?;
        writeln!(
            out,
            "\ncharts: {} {}; numbers: {}",
            r.files.png.display(),
            r.files.svg.display(),
            json.display()
        )?;
    }
    if let Some(e) = &s.error {
        eprintln!(
            "error: the trace is damaged: {e}; the figures above cover the {} events before it",
            s.events
        );
        return Ok(true);
    }
    Ok(false)
}
