//! The reporter: turns a run directory (docs/results-format.md) into charts (PNG and SVG),
//! `summary.md` and an offline `index.html`, or overlays several runs in one comparison.
//!
//! Layout: the `rundir` crate reads the run; [`series`] decides labels, colours and line styles;
//! [`figures`] draws one chart per file; [`tables`] formats the numbers; [`summary_md`] and
//! [`html`] write the two pages; [`style`] holds every look-and-feel constant.
//!
//! ```no_run
//! let paths = report::generate(std::path::Path::new("results/runs/x"), &report::Options::default())?;
//! println!("{}", paths.index_html.display());
//! # Ok::<(), report::ReportError>(())
//! ```

pub mod error;
pub mod figures;
pub mod html;
pub mod page;
pub mod series;
pub mod style;
pub mod summary_md;
pub mod tables;

use std::fs;
use std::path::{Path, PathBuf};

pub use error::ReportError;
pub use figures::FigureFiles;
pub use rundir::RunDir as Run;

use figures::fragmentation::Fragmentation;
use figures::latency::{Latency, LatencyKind};
use figures::rss::Rss;
use series::Series;

/// How to build a report.
#[derive(Debug, Clone)]
pub struct Options {
    /// The allocator every ratio is relative to: an allocator name or id (of the first run in
    /// comparisons), or a series key `<run label>/<name>`. Default `jemalloc`.
    pub reference: String,
    /// Fail with [`ReportError::UnknownReference`] when the reference is not in the run;
    /// otherwise the tables just have no ratios. Default `false` (the runner's automatic call
    /// must not fail for a run without jemalloc).
    pub require_reference: bool,
    /// Where to write; default `<run-dir>/report`, or `<first run-dir>/report/compare` for a
    /// comparison.
    pub out_dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            reference: "jemalloc".to_string(),
            require_reference: false,
            out_dir: None,
        }
    }
}

/// What a report wrote.
#[derive(Debug, Clone)]
pub struct ReportPaths {
    /// The output directory.
    pub dir: PathBuf,
    /// The charts, in page order: rss, fragmentation, latency-request, latency-call,
    /// alloc-per-request.
    pub figures: Vec<FigureFiles>,
    pub summary_md: PathBuf,
    pub index_html: PathBuf,
    /// Problems with the run directory that did not stop the report (also on the page).
    pub warnings: Vec<String>,
}

/// Reports on one run directory, into `opts.out_dir` or `<run_dir>/report/`.
pub fn generate(run_dir: &Path, opts: &Options) -> Result<ReportPaths, ReportError> {
    let run = Run::read(run_dir)?;
    let out_dir = opts
        .out_dir
        .clone()
        .unwrap_or_else(|| run_dir.join("report"));
    write_report(&[run], &out_dir, opts)
}

/// Overlays several runs (series named `<run label>/<allocator>`, later runs dashed), into
/// `opts.out_dir` or `<first run_dir>/report/compare/`.
pub fn compare(run_dirs: &[PathBuf], opts: &Options) -> Result<ReportPaths, ReportError> {
    if run_dirs.len() < 2 {
        return Err(ReportError::TooFewRuns {
            count: run_dirs.len(),
        });
    }
    let runs = run_dirs
        .iter()
        .map(|dir| Run::read(dir))
        .collect::<Result<Vec<_>, _>>()?;
    let out_dir = opts
        .out_dir
        .clone()
        .unwrap_or_else(|| run_dirs[0].join("report").join("compare"));
    write_report(&runs, &out_dir, opts)
}

/// Finds the reference series: an exact key first, then a name or id in the first run.
fn find_reference<'s, 'a>(series: &'s [Series<'a>], wanted: &str) -> Option<&'s Series<'a>> {
    series.iter().find(|s| s.key == wanted).or_else(|| {
        series
            .iter()
            .find(|s| s.run_index == 0 && (s.alloc.name == wanted || s.alloc.id == wanted))
    })
}

fn write_report(runs: &[Run], out_dir: &Path, opts: &Options) -> Result<ReportPaths, ReportError> {
    style::register_fonts()?;
    let series = series::build(runs);
    let reference = find_reference(&series, &opts.reference);
    if reference.is_none() && opts.require_reference {
        let available: Vec<&str> = series.iter().map(|s| s.key.as_str()).collect();
        return Err(ReportError::UnknownReference {
            path: runs.first().map(|r| r.dir.clone()).unwrap_or_default(),
            name: opts.reference.clone(),
            available: available.join(", "),
        });
    }

    fs::create_dir_all(out_dir).map_err(|source| ReportError::Write {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let time = figures::TimeAxis::for_runs(runs);
    // A live run of a real server knows no live bytes and times only requests.
    let all_live = runs.iter().all(|r| r.summary.mode == "live");
    let mut rendered = vec![figures::render(
        &Rss {
            series: &series,
            time,
        },
        out_dir,
    )?];
    if !all_live {
        rendered.push(figures::render(
            &Fragmentation {
                series: &series,
                time,
            },
            out_dir,
        )?);
    }
    rendered.push(figures::render(
        &Latency {
            series: &series,
            kind: LatencyKind::Request,
        },
        out_dir,
    )?);
    if !all_live {
        for kind in [LatencyKind::Call, LatencyKind::AllocPerRequest] {
            rendered.push(figures::render(
                &Latency {
                    series: &series,
                    kind,
                },
                out_dir,
            )?);
        }
    }

    let warnings: Vec<String> = runs.iter().flat_map(|r| r.warnings.clone()).collect();
    let labels = series::run_labels(runs);
    let workloads: Vec<String> = runs
        .iter()
        .map(|r| r.summary.workload.clone())
        .filter(|w| !w.is_empty())
        .fold(Vec::new(), |mut acc, w| {
            if !acc.contains(&w) {
                acc.push(w);
            }
            acc
        });
    let title = match (runs.len(), workloads.is_empty()) {
        (1, false) => format!("longhaul report: {}", workloads.join(", ")),
        (1, true) => "longhaul report".to_string(),
        (n, _) => format!("longhaul comparison of {n} runs: {}", workloads.join(", ")),
    };
    let contexts = runs
        .iter()
        .zip(&labels)
        .map(|(run, label)| {
            let heading = match label {
                Some(label) => format!("Run {label}"),
                None => "Run context".to_string(),
            };
            (heading, tables::context(run))
        })
        .collect();
    let page = page::Page {
        title,
        table: tables::summary(&series, reference),
        reference: reference.map(|r| r.key.clone()),
        reference_asked: opts.reference.clone(),
        status_notes: tables::status_notes(&series),
        warnings: warnings.clone(),
        contexts,
        figures: &rendered,
    };

    let summary_md = out_dir.join("summary.md");
    figures::write_file(&summary_md, summary_md::render(&page).as_bytes())?;
    let swatches: Vec<String> = series.iter().map(|s| style::hex(s.color)).collect();
    let index_html = out_dir.join("index.html");
    figures::write_file(&index_html, html::render(&page, &swatches).as_bytes())?;

    Ok(ReportPaths {
        dir: out_dir.to_path_buf(),
        figures: rendered.into_iter().map(|r| r.files).collect(),
        summary_md,
        index_html,
        warnings,
    })
}
