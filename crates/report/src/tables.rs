//! The report's tables as plain data (headers and cells), rendered to Markdown by
//! `summary_md` and to HTML by `html`: the per-allocator summary with ratios to the reference
//! allocator (and, with repetitions, each figure's range over them), the notes on allocators
//! that did not finish, and each run's context.

use rundir::{Figures, Metric, RunDir as Run, Spread};

use crate::figures::rss::MIB;
use crate::series::Series;

/// A table: header cells and rows of cells, all already formatted.
#[derive(Debug, Clone)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// One metric column of the summary table.
struct Column {
    header: &'static str,
    value: fn(&Figures) -> Option<f64>,
    format: fn(f64) -> String,
    /// A wall-clock figure: shown as "invalid" where the run says its timings are not results.
    timing: bool,
    /// The metric whose spread over repetitions `summary.json` gives, if any.
    spread: Option<Metric>,
}

/// Memory first (the question longhaul answers), then the costs that survive the clock's
/// compression (CPU, page faults, time inside allocator calls per request), then request
/// latency, which at speed S is mostly compressed simulated time.
const METRICS: [Column; 12] = [
    Column {
        header: "steady RSS (MiB)",
        value: |s| s.rss_steady_bytes.map(|b| b as f64 / MIB),
        format: |v| format!("{v:.1}"),
        timing: false,
        spread: Some(Metric::RssSteady),
    },
    Column {
        header: "steady PSS (MiB)",
        value: |s| s.pss_steady_bytes.map(|b| b as f64 / MIB),
        format: |v| format!("{v:.1}"),
        timing: false,
        spread: None,
    },
    Column {
        header: "max RSS (MiB)",
        value: |s| s.rss_max_bytes.map(|b| b as f64 / MIB),
        format: |v| format!("{v:.1}"),
        timing: false,
        spread: Some(Metric::RssMax),
    },
    Column {
        header: "growth (MiB/h)",
        value: |s| s.rss_growth_bytes_per_hour.map(|b| b / MIB),
        format: |v| format!("{v:+.2}"),
        timing: false,
        spread: Some(Metric::Growth),
    },
    Column {
        header: "RSS/live",
        value: |s| s.fragmentation,
        format: |v| format!("{v:.2}"),
        timing: false,
        spread: Some(Metric::RssPerLive),
    },
    Column {
        header: "CPU/request (µs)",
        value: |s| s.cost.as_ref()?.cpu_per_request_us,
        format: |v| format!("{v:.0}"),
        timing: false,
        spread: Some(Metric::CpuPerRequest),
    },
    Column {
        header: "faults/request",
        value: |s| s.cost.as_ref()?.minor_faults_per_request,
        format: |v| format!("{v:.1}"),
        timing: false,
        spread: Some(Metric::FaultsPerRequest),
    },
    Column {
        header: "alloc time/request p50 (µs)",
        value: |s| s.alloc_per_request_ns.map(|p| p.p50 as f64 / 1e3),
        format: |v| format!("{v:.0}"),
        timing: true,
        spread: None,
    },
    Column {
        header: "alloc time/request p99 (µs)",
        value: |s| s.alloc_per_request_ns.map(|p| p.p99 as f64 / 1e3),
        format: |v| format!("{v:.0}"),
        timing: true,
        spread: Some(Metric::AllocP99),
    },
    Column {
        header: "touch time/request p99 (µs)",
        value: |s| s.touch_per_request_ns.map(|p| p.p99 as f64 / 1e3),
        format: |v| format!("{v:.0}"),
        timing: true,
        spread: None,
    },
    Column {
        header: "request p50 (µs)",
        value: |s| s.latency_us.map(|p| p.p50 as f64),
        format: |v| format!("{v:.0}"),
        timing: true,
        spread: None,
    },
    Column {
        header: "request p99 (µs)",
        value: |s| s.latency_us.map(|p| p.p99 as f64),
        format: |v| format!("{v:.0}"),
        timing: true,
        spread: Some(Metric::RequestP99),
    },
];

/// Shown for a wall-clock figure of a run whose timings are not results.
pub const INVALID: &str = "invalid";

/// Shown for a value that is not available.
pub const NONE: &str = "—";

/// `value / reference` when it means something: both finite, reference > 0, value >= 0.
pub fn ratio(value: f64, reference: f64) -> Option<f64> {
    (value.is_finite() && reference.is_finite() && reference > 0.0 && value >= 0.0)
        .then(|| value / reference)
}

/// A figure's range over repetitions, in the column's display unit: ` [min–max]`.
fn range(spread: Option<&Spread>, metric: Option<Metric>, format: fn(f64) -> String) -> String {
    match (spread, metric) {
        (Some(s), Some(m)) if s.n > 1 => format!(
            " [{}–{}]",
            format(m.display_value(s.min)),
            format(m.display_value(s.max))
        ),
        _ => String::new(),
    }
}

/// The summary table: one row per series, each metric followed by its ratio to `reference`;
/// with repetitions, a figure is the median over them followed by their range.
pub fn summary(series: &[Series<'_>], reference: Option<&Series<'_>>) -> Table {
    // A metric no series has (PSS outside live runs, RSS/live in live runs) gets no column.
    let metrics: Vec<&Column> = METRICS
        .iter()
        .filter(|m| {
            series.iter().any(|s| {
                s.alloc
                    .summary
                    .as_ref()
                    .and_then(|x| (m.value)(&x.figures))
                    .is_some()
            })
        })
        .collect();
    let mut headers = vec!["allocator".to_string(), "status".to_string()];
    headers.extend(metrics.iter().map(|m| m.header.to_string()));
    let reference_summary = reference.and_then(|r| r.alloc.summary.as_ref());
    let rows = series
        .iter()
        .map(|s| {
            let is_reference = reference.is_some_and(|r| std::ptr::eq(r, s));
            let summary = s.alloc.summary.as_ref();
            let mut name = s.label.clone();
            if let Some(n) = summary.map(|x| x.repetitions.len()).filter(|n| *n > 1) {
                name.push_str(&format!(" ×{n}"));
            }
            if is_reference {
                name.push_str(" (reference)");
            }
            let status =
                summary.map_or_else(|| "no summary".to_string(), |x| x.status.word().to_string());
            let mut row = vec![name, status];
            let timing_valid = summary.map_or(true, |x| x.figures.timing_valid);
            for metric in &metrics {
                if metric.timing && !timing_valid {
                    row.push(INVALID.to_string());
                    continue;
                }
                let value = summary.and_then(|x| (metric.value)(&x.figures));
                let reference_value = reference_summary
                    .filter(|r| !metric.timing || r.figures.timing_valid)
                    .and_then(|r| (metric.value)(&r.figures));
                let spread =
                    summary.and_then(|x| x.spread.get(metric.spread.map_or("", Metric::key)));
                row.push(match value {
                    None => NONE.to_string(),
                    Some(v) => {
                        let range = range(spread, metric.spread, metric.format);
                        match reference_value.and_then(|r| ratio(v, r)) {
                            Some(ratio) => format!("{}{range} ({ratio:.2}×)", (metric.format)(v)),
                            None => format!("{}{range}", (metric.format)(v)),
                        }
                    }
                });
            }
            row
        })
        .collect();
    Table { headers, rows }
}

/// One line per series that did not finish ok (its status, error and how far it got), and one
/// per series whose timings are invalid (why).
pub fn status_notes(series: &[Series<'_>]) -> Vec<String> {
    let timing = series.iter().filter_map(|s| {
        let summary = s.alloc.summary.as_ref()?;
        if summary.figures.timing_valid {
            return None;
        }
        Some(format!(
            "{}: timings invalid: {}",
            s.key,
            summary
                .figures
                .timing_note
                .as_deref()
                .unwrap_or("the run says so")
        ))
    });
    let status = series
        .iter()
        .filter_map(|s| {
            let marker = crate::series::marker(s.alloc)?;
            let mut note = format!("{}: {marker}", s.key);
            if let Some(summary) = &s.alloc.summary {
                if let Some(error) = &summary.error {
                    note.push_str(&format!(": {error}"));
                }
                note.push_str(&format!(
                    " (reached {:.2} simulated hours)",
                    summary.figures.sim_hours_reached
                ));
            }
            Some(note)
        })
        .collect::<Vec<_>>();
    status.into_iter().chain(timing).collect()
}

/// A command line as one string, arguments with special characters in single quotes.
pub fn shell_join(command: &[String]) -> String {
    command
        .iter()
        .map(|arg| {
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c));
            if plain {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn opt<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| NONE.to_string(), |v| v.to_string())
}

/// The context of a run as (field, value) pairs, from `run.json` and `summary.json`.
pub fn context(run: &Run) -> Vec<(String, String)> {
    let mut pairs = vec![("directory".to_string(), run.dir.display().to_string())];
    let summary = &run.summary;
    let Some(info) = &run.record else {
        pairs.extend([
            (
                "run.json".to_string(),
                "missing: no command, commit or machine".to_string(),
            ),
            ("workload".to_string(), summary.workload.clone()),
            ("simulated hours".to_string(), summary.hours.to_string()),
            ("seed".to_string(), summary.seed.to_string()),
            ("speed".to_string(), opt(summary.speed)),
            ("threads".to_string(), summary.threads.to_string()),
            ("interrupted".to_string(), summary.interrupted.to_string()),
        ]);
        return pairs;
    };
    let commit = match &info.commit {
        Some(commit) if info.commit_dirty == Some(true) => format!("{commit} (dirty)"),
        Some(commit) => commit.clone(),
        None => "not in a git checkout".to_string(),
    };
    pairs.extend([
        ("command".to_string(), shell_join(&info.command)),
        ("commit".to_string(), commit),
        (
            "workload".to_string(),
            format!("{} ({})", info.workload.name, info.workload.path),
        ),
        ("started".to_string(), info.started_at.clone()),
        ("finished".to_string(), opt(info.finished_at.clone())),
        ("simulated hours".to_string(), info.hours.to_string()),
        ("seed".to_string(), info.seed.to_string()),
        ("speed".to_string(), opt(info.speed)),
        ("threads".to_string(), info.threads.to_string()),
        ("GVL".to_string(), info.gvl.to_string()),
        ("repetitions".to_string(), info.repeat.to_string()),
        ("interrupted".to_string(), info.interrupted.to_string()),
    ]);
    if let Some(build) = &info.build {
        pairs.push(("runner build".to_string(), build.clone()));
    }
    if let Some(shard) = &info.shard {
        pairs.push(("shard".to_string(), shard.to_string()));
    }
    if let Some(hook) = &info.test_hook {
        pairs.push((
            "test hook".to_string(),
            format!("{hook}: this run measures the hook, not the code"),
        ));
    }
    let m = &info.machine;
    pairs.extend([
        (
            "machine".to_string(),
            format!(
                "{}: {}, {} cores, {} GiB",
                opt(m.hostname.clone()),
                opt(m.cpu_model.clone()),
                m.cores,
                opt(m
                    .memory_bytes
                    .map(|b| format!("{:.1}", b as f64 / (1024.0 * MIB))))
            ),
        ),
        ("kernel".to_string(), opt(m.kernel.clone())),
        ("glibc".to_string(), m.glibc.clone()),
        ("transparent huge pages".to_string(), opt(m.thp.clone())),
    ]);
    for s in &info.shards {
        pairs.push((
            format!(
                "shard {}",
                s.shard.map_or_else(|| s.dir.clone(), |x| x.to_string())
            ),
            format!(
                "{} cell(s) on {} ({}), {} to {}",
                s.cells.len(),
                opt(s.machine.hostname.clone()),
                s.machine.describe(),
                s.started_at,
                opt(s.finished_at.clone())
            ),
        ));
    }
    for a in &info.allocators {
        let mut text = opt(a.version.clone());
        if !a.settings.is_empty() {
            let settings: Vec<String> =
                a.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
            text.push_str(&format!("; {}", settings.join(" ")));
        }
        if let Some(note) = &a.note {
            text.push_str(&format!("; {note}"));
        }
        pairs.push((format!("allocator {}", a.name), text));
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_only_where_meaningful() {
        assert_eq!(ratio(50.0, 100.0), Some(0.5));
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(-1.0, 2.0), None);
        assert_eq!(ratio(f64::NAN, 2.0), None);
    }

    #[test]
    fn shell_join_quotes_what_needs_it() {
        let command = [
            "runner",
            "--alloc",
            "glibc,ours",
            "--note",
            "it's two words",
        ]
        .map(String::from);
        assert_eq!(
            shell_join(&command),
            r"runner --alloc glibc,ours --note 'it'\''s two words'"
        );
    }
}
