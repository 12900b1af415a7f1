//! The report's tables as plain data (headers and cells), rendered to Markdown by
//! `summary_md` and to HTML by `html`: the per-allocator summary with ratios to the reference
//! allocator, the notes on allocators that did not finish, and each run's context.

use crate::figures::rss::MIB;
use crate::run_dir::{AllocatorSummary, Run};
use crate::series::Series;

/// A table: header cells and rows of cells, all already formatted.
#[derive(Debug, Clone)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// One metric column of the summary table.
struct Metric {
    header: &'static str,
    value: fn(&AllocatorSummary) -> Option<f64>,
    format: fn(f64) -> String,
    /// A wall-clock figure: shown as "invalid" where the run says its timings are not results.
    timing: bool,
}

/// Memory first (the question longhaul answers), then the costs that survive the clock's
/// compression (CPU, page faults, time inside allocator calls per request), then request
/// latency, which at speed S is mostly compressed simulated time.
const METRICS: [Metric; 12] = [
    Metric {
        header: "steady RSS (MiB)",
        value: |s| s.rss_steady_bytes.map(|b| b / MIB),
        format: |v| format!("{v:.1}"),
        timing: false,
    },
    Metric {
        header: "steady PSS (MiB)",
        value: |s| s.pss_steady_bytes.map(|b| b / MIB),
        format: |v| format!("{v:.1}"),
        timing: false,
    },
    Metric {
        header: "max RSS (MiB)",
        value: |s| s.rss_max_bytes.map(|b| b / MIB),
        format: |v| format!("{v:.1}"),
        timing: false,
    },
    Metric {
        header: "growth (MiB/h)",
        value: |s| s.rss_growth_bytes_per_hour.map(|b| b / MIB),
        format: |v| format!("{v:+.2}"),
        timing: false,
    },
    Metric {
        header: "RSS/live",
        value: |s| s.fragmentation,
        format: |v| format!("{v:.2}"),
        timing: false,
    },
    Metric {
        header: "CPU/request (µs)",
        value: |s| s.cost.as_ref()?.cpu_per_request_us,
        format: |v| format!("{v:.0}"),
        timing: false,
    },
    Metric {
        header: "faults/request",
        value: |s| s.cost.as_ref()?.minor_faults_per_request,
        format: |v| format!("{v:.1}"),
        timing: false,
    },
    Metric {
        header: "alloc time/request p50 (µs)",
        value: |s| s.alloc_per_request_ns.as_ref()?.p50.map(|v| v / 1e3),
        format: |v| format!("{v:.0}"),
        timing: true,
    },
    Metric {
        header: "alloc time/request p99 (µs)",
        value: |s| s.alloc_per_request_ns.as_ref()?.p99.map(|v| v / 1e3),
        format: |v| format!("{v:.0}"),
        timing: true,
    },
    Metric {
        header: "touch time/request p99 (µs)",
        value: |s| s.touch_per_request_ns.as_ref()?.p99.map(|v| v / 1e3),
        format: |v| format!("{v:.0}"),
        timing: true,
    },
    Metric {
        header: "request p50 (µs)",
        value: |s| s.latency_us.as_ref()?.p50,
        format: |v| format!("{v:.0}"),
        timing: true,
    },
    Metric {
        header: "request p99 (µs)",
        value: |s| s.latency_us.as_ref()?.p99,
        format: |v| format!("{v:.0}"),
        timing: true,
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

/// The summary table: one row per series, each metric followed by its ratio to `reference`.
/// A metric no series has (PSS outside live runs, RSS/live in live runs) gets no column.
pub fn summary(series: &[Series<'_>], reference: Option<&Series<'_>>) -> Table {
    let metrics: Vec<&Metric> = METRICS
        .iter()
        .filter(|m| {
            series
                .iter()
                .any(|s| s.alloc.summary.as_ref().and_then(m.value).is_some())
        })
        .collect();
    let mut headers = vec!["allocator".to_string(), "status".to_string()];
    headers.extend(metrics.iter().map(|m| m.header.to_string()));
    let reference_summary = reference.and_then(|r| r.alloc.summary.as_ref());
    let rows = series
        .iter()
        .map(|s| {
            let is_reference = reference.is_some_and(|r| std::ptr::eq(r, s));
            let name = if is_reference {
                format!("{} (reference)", s.label)
            } else {
                s.label.clone()
            };
            let status = s
                .alloc
                .summary
                .as_ref()
                .map_or_else(|| "no summary".to_string(), |x| x.status.clone());
            let mut row = vec![name, status];
            let timing_valid = s.alloc.summary.as_ref().map_or(true, |x| x.timing_valid);
            for metric in &metrics {
                if metric.timing && !timing_valid {
                    row.push(INVALID.to_string());
                    continue;
                }
                let value = s.alloc.summary.as_ref().and_then(metric.value);
                let reference_value = reference_summary
                    .filter(|r| !metric.timing || r.timing_valid)
                    .and_then(metric.value);
                row.push(match value {
                    None => NONE.to_string(),
                    Some(v) => match reference_value.and_then(|r| ratio(v, r)) {
                        Some(ratio) => format!("{} ({ratio:.2}×)", (metric.format)(v)),
                        None => (metric.format)(v),
                    },
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
        if summary.timing_valid {
            return None;
        }
        Some(format!(
            "{}: timings invalid: {}",
            s.key,
            summary.timing_note.as_deref().unwrap_or("the run says so")
        ))
    });
    let status = series
        .iter()
        .filter_map(|s| {
            let marker = s.alloc.status.marker()?;
            let mut note = format!("{}: {marker}", s.key);
            if let Some(summary) = &s.alloc.summary {
                if let Some(error) = &summary.error {
                    note.push_str(&format!(": {error}"));
                }
                if let Some(hours) = summary.sim_hours_reached {
                    note.push_str(&format!(" (reached {hours:.2} simulated hours)"));
                }
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
    match &run.info {
        Some(info) => {
            let workload = info.workload.as_ref();
            let commit = match &info.commit {
                Some(commit) if info.commit_dirty => format!("{commit} (dirty)"),
                Some(commit) => commit.clone(),
                None => "not in a git checkout".to_string(),
            };
            pairs.extend([
                ("command".to_string(), shell_join(&info.command)),
                ("commit".to_string(), commit),
                (
                    "workload".to_string(),
                    format!(
                        "{} ({})",
                        opt(workload
                            .and_then(|w| w.name.clone())
                            .or(summary.workload.clone())),
                        opt(workload.and_then(|w| w.path.clone()))
                    ),
                ),
                ("started".to_string(), opt(info.started_at.clone())),
                ("finished".to_string(), opt(info.finished_at.clone())),
                (
                    "simulated hours".to_string(),
                    opt(info.hours.or(summary.hours)),
                ),
                ("seed".to_string(), opt(info.seed.or(summary.seed))),
                ("speed".to_string(), opt(info.speed.or(summary.speed))),
                ("threads".to_string(), opt(info.threads.or(summary.threads))),
                ("GVL".to_string(), opt(info.gvl)),
                ("interrupted".to_string(), info.interrupted.to_string()),
            ]);
            if let Some(m) = &info.machine {
                pairs.extend([
                    (
                        "machine".to_string(),
                        format!(
                            "{}: {}, {} cores, {} GiB",
                            opt(m.hostname.clone()),
                            opt(m.cpu_model.clone()),
                            opt(m.cores),
                            opt(m.memory_bytes.map(|b| format!("{:.1}", b / (1024.0 * MIB))))
                        ),
                    ),
                    ("kernel".to_string(), opt(m.kernel.clone())),
                    ("glibc".to_string(), opt(m.glibc.clone())),
                    ("transparent huge pages".to_string(), opt(m.thp.clone())),
                ]);
            }
            for a in &info.allocators {
                let mut text = opt(a.version.clone());
                if !a.settings.is_empty() {
                    let settings: Vec<String> = a
                        .settings
                        .iter()
                        .map(|(k, v)| match v {
                            serde_json::Value::String(s) => format!("{k}={s}"),
                            other => format!("{k}={other}"),
                        })
                        .collect();
                    text.push_str(&format!("; {}", settings.join(" ")));
                }
                if let Some(note) = &a.note {
                    text.push_str(&format!("; {note}"));
                }
                pairs.push((format!("allocator {}", a.name), text));
            }
        }
        None => {
            pairs.extend([
                (
                    "run.json".to_string(),
                    "missing: no command, commit or machine".to_string(),
                ),
                ("workload".to_string(), opt(summary.workload.clone())),
                ("simulated hours".to_string(), opt(summary.hours)),
                ("seed".to_string(), opt(summary.seed)),
                ("speed".to_string(), opt(summary.speed)),
                ("threads".to_string(), opt(summary.threads)),
                ("interrupted".to_string(), summary.interrupted.to_string()),
            ]);
        }
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
