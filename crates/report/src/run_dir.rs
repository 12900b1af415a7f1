//! Reading a run directory (docs/results-format.md): `run.json`, `summary.json`,
//! `samples.csv` and the HdrHistogram files, into one [`Run`]. Nothing else in the crate opens
//! a file of the run.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use serde::Deserialize;

use crate::error::ReportError;

/// The schema versions this reader understands (2 adds costs and timing validity; a version 1
/// run reads with those missing).
pub const SCHEMA_VERSIONS: [u64; 2] = [1, 2];

/// Columns of `samples.csv` the charts cannot do without.
const REQUIRED_COLUMNS: [&str; 4] = ["allocator", "sim_time_s", "rss_bytes", "live_bytes"];

/// One run directory, fully read.
#[derive(Debug)]
pub struct Run {
    /// The directory as given.
    pub dir: PathBuf,
    /// `run.json`: the context. `None` when the file is missing (a run killed before its end).
    pub info: Option<RunInfo>,
    /// `summary.json`.
    pub summary: Summary,
    /// Allocators in run order: those of `summary.json`, then any that only have samples.
    pub allocators: Vec<AllocatorRun>,
    /// Things a reader should know that did not stop the report (shown on the page).
    pub warnings: Vec<String>,
}

/// One allocator under test within a run.
#[derive(Debug)]
pub struct AllocatorRun {
    pub name: String,
    pub id: String,
    pub status: Status,
    /// Its entry of `summary.json`, `None` if it only appears in `samples.csv`.
    pub summary: Option<AllocatorSummary>,
    /// Its samples, in file order.
    pub samples: Vec<Sample>,
    /// `<id>.request-latency-us.hdr`.
    pub request_latency_us: Option<Histogram<u64>>,
    /// `<id>.call-latency-ns.hdr`.
    pub call_latency_ns: Option<Histogram<u64>>,
    /// `<id>.alloc-per-request-ns.hdr` (schema 2).
    pub alloc_per_request_ns: Option<Histogram<u64>>,
}

/// How an allocator's part of the run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Ok,
    Crashed,
    Interrupted,
    Failed,
    /// A status word this reader does not know.
    Other(String),
    /// Samples exist but `summary.json` has no entry (the run stopped while it ran).
    NoSummary,
}

impl Status {
    fn parse(word: &str) -> Self {
        match word {
            "ok" => Self::Ok,
            "crashed" => Self::Crashed,
            "interrupted" => Self::Interrupted,
            "failed" => Self::Failed,
            other => Self::Other(other.to_string()),
        }
    }

    /// The marker shown after the allocator's name in legends and tables; `None` when ok.
    pub fn marker(&self) -> Option<String> {
        match self {
            Self::Ok => None,
            Self::Crashed => Some("crashed".into()),
            Self::Interrupted => Some("interrupted".into()),
            Self::Failed => Some("failed".into()),
            Self::Other(word) => Some(word.clone()),
            Self::NoSummary => Some("no summary".into()),
        }
    }
}

/// `run.json`. Unknown fields are ignored; fields other writers may leave out are optional.
#[derive(Debug, Deserialize)]
pub struct RunInfo {
    pub schema_version: u64,
    #[serde(default)]
    pub command: Vec<String>,
    pub commit: Option<String>,
    #[serde(default)]
    pub commit_dirty: bool,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub machine: Option<Machine>,
    pub workload: Option<WorkloadInfo>,
    pub hours: Option<f64>,
    pub seed: Option<u64>,
    pub speed: Option<f64>,
    pub threads: Option<u64>,
    pub gvl: Option<bool>,
    #[serde(default)]
    pub allocators: Vec<AllocatorInfo>,
    #[serde(default)]
    pub interrupted: bool,
}

/// `run.json` → `machine`.
#[derive(Debug, Deserialize)]
pub struct Machine {
    pub hostname: Option<String>,
    pub cpu_model: Option<String>,
    pub cores: Option<u64>,
    pub memory_bytes: Option<f64>,
    pub kernel: Option<String>,
    pub glibc: Option<String>,
    pub thp: Option<String>,
}

/// `run.json` → `workload`.
#[derive(Debug, Deserialize)]
pub struct WorkloadInfo {
    pub name: Option<String>,
    pub path: Option<String>,
}

/// `run.json` → `allocators[]`.
#[derive(Debug, Deserialize)]
pub struct AllocatorInfo {
    pub name: String,
    pub id: String,
    pub version: Option<String>,
    #[serde(default)]
    pub settings: BTreeMap<String, serde_json::Value>,
    pub note: Option<String>,
}

/// `summary.json`.
#[derive(Debug, Deserialize)]
pub struct Summary {
    pub schema_version: u64,
    /// `synthetic`, `replay` or `live` (schema 2; version 1 runs are synthetic).
    #[serde(default = "synthetic")]
    pub mode: String,
    pub workload: Option<String>,
    pub hours: Option<f64>,
    pub seed: Option<u64>,
    pub speed: Option<f64>,
    pub threads: Option<u64>,
    #[serde(default)]
    pub interrupted: bool,
    #[serde(default)]
    pub allocators: Vec<AllocatorSummary>,
}

/// `summary.json` → `allocators[]`. Metrics a crashed allocator could not produce are `null`.
#[derive(Debug, Clone, Deserialize)]
pub struct AllocatorSummary {
    pub name: String,
    pub id: String,
    pub status: String,
    pub error: Option<String>,
    pub sim_hours_reached: Option<f64>,
    pub harness_rss_bytes: Option<f64>,
    pub rss_end_bytes: Option<f64>,
    pub rss_max_bytes: Option<f64>,
    pub rss_steady_bytes: Option<f64>,
    pub rss_growth_bytes_per_hour: Option<f64>,
    pub live_end_bytes: Option<f64>,
    pub live_max_bytes: Option<f64>,
    pub live_steady_bytes: Option<f64>,
    pub fragmentation: Option<f64>,
    pub requests: Option<f64>,
    pub throughput_rps: Option<f64>,
    pub max_lag_s: Option<f64>,
    pub latency_us: Option<Percentiles>,
    pub service_us: Option<Percentiles>,
    pub call_latency_ns: Option<Percentiles>,
    /// Schema 2: whether wall-clock figures mean anything (version 1 runs did not say).
    #[serde(default = "yes")]
    pub timing_valid: bool,
    #[serde(default)]
    pub timing_note: Option<String>,
    #[serde(default)]
    pub alloc_per_request_ns: Option<Percentiles>,
    #[serde(default)]
    pub touch_per_request_ns: Option<Percentiles>,
    #[serde(default)]
    pub cost: Option<Cost>,
    #[serde(default)]
    pub harness_rss_steady_bytes: Option<f64>,
    /// Live runs: PSS summed over the server's processes.
    #[serde(default)]
    pub pss_steady_bytes: Option<f64>,
}

fn yes() -> bool {
    true
}

fn synthetic() -> String {
    "synthetic".into()
}

/// `summary.json` → `allocators[].cost` (schema 2).
#[derive(Debug, Clone, Deserialize)]
pub struct Cost {
    pub cpu_per_request_us: Option<f64>,
    pub minor_faults_per_request: Option<f64>,
    pub harness_cores: Option<f64>,
    pub alloc_time_s: Option<f64>,
    pub touch_time_s: Option<f64>,
}

/// A percentile block of `summary.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub max: Option<f64>,
}

/// One line of `samples.csv` (empty cell = `None`).
#[derive(Debug, Clone, Deserialize)]
pub struct Sample {
    pub allocator: String,
    pub sim_time_s: f64,
    #[serde(default)]
    pub real_time_s: Option<f64>,
    #[serde(default)]
    pub rss_bytes: Option<f64>,
    #[serde(default)]
    pub rss_anon_bytes: Option<f64>,
    #[serde(default)]
    pub private_dirty_bytes: Option<f64>,
    #[serde(default)]
    pub lazyfree_bytes: Option<f64>,
    #[serde(default)]
    pub live_bytes: Option<f64>,
    #[serde(default)]
    pub requests: Option<f64>,
    #[serde(default)]
    pub lag_s: Option<f64>,
}

/// The kinds of histogram file a run holds per allocator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistogramKind {
    RequestLatencyUs,
    CallLatencyNs,
    /// Schema 2 only.
    AllocPerRequestNs,
}

impl HistogramKind {
    /// The file name suffix after `<id>.`.
    pub fn suffix(self) -> &'static str {
        match self {
            Self::RequestLatencyUs => "request-latency-us.hdr",
            Self::CallLatencyNs => "call-latency-ns.hdr",
            Self::AllocPerRequestNs => "alloc-per-request-ns.hdr",
        }
    }
}

impl Run {
    /// Reads the run directory `dir`.
    pub fn read(dir: &Path) -> Result<Self, ReportError> {
        if !dir.is_dir() {
            return Err(ReportError::MissingRunDir {
                path: dir.to_path_buf(),
            });
        }
        let mut warnings = Vec::new();

        let summary_path = dir.join("summary.json");
        let summary: Summary = read_json(&summary_path, "summary.json")?;
        check_schema(&summary_path, summary.schema_version)?;

        let run_path = dir.join("run.json");
        let info: Option<RunInfo> = if run_path.exists() {
            let info: RunInfo = read_json(&run_path, "run.json")?;
            check_schema(&run_path, info.schema_version)?;
            Some(info)
        } else {
            warnings.push(format!(
                "{} is missing: the run's context (command, commit, machine) is unknown",
                run_path.display()
            ));
            None
        };

        let samples_path = dir.join("samples.csv");
        let samples = read_samples(&samples_path)?;

        let mut allocators = Vec::new();
        for entry in &summary.allocators {
            check_id(&summary_path, &entry.id)?;
            allocators.push(AllocatorRun {
                name: entry.name.clone(),
                id: entry.id.clone(),
                status: Status::parse(&entry.status),
                summary: Some(entry.clone()),
                samples: Vec::new(),
                request_latency_us: None,
                call_latency_ns: None,
                alloc_per_request_ns: None,
            });
        }
        for sample in samples {
            let index = match allocators.iter().position(|a| a.id == sample.allocator) {
                Some(index) => index,
                None => {
                    check_id(&samples_path, &sample.allocator)?;
                    let name = info
                        .as_ref()
                        .and_then(|i| i.allocators.iter().find(|a| a.id == sample.allocator))
                        .map_or_else(|| sample.allocator.clone(), |a| a.name.clone());
                    warnings.push(format!(
                        "allocator {name} has samples but no entry in summary.json (the run stopped while it ran)"
                    ));
                    allocators.push(AllocatorRun {
                        name,
                        id: sample.allocator.clone(),
                        status: Status::NoSummary,
                        summary: None,
                        samples: Vec::new(),
                        request_latency_us: None,
                        call_latency_ns: None,
                        alloc_per_request_ns: None,
                    });
                    allocators.len() - 1
                }
            };
            allocators[index].samples.push(sample);
        }

        for alloc in &mut allocators {
            for kind in [
                HistogramKind::RequestLatencyUs,
                HistogramKind::CallLatencyNs,
                HistogramKind::AllocPerRequestNs,
            ] {
                let path = dir.join(format!("{}.{}", alloc.id, kind.suffix()));
                // Version 1 had no per-request allocator time; a live run times only requests.
                let optional = (kind == HistogramKind::AllocPerRequestNs
                    && summary.schema_version < 2)
                    || (kind != HistogramKind::RequestLatencyUs && summary.mode == "live");
                let histogram = if path.exists() {
                    Some(read_histogram(&path)?)
                } else if optional {
                    None
                } else if alloc.status == Status::Ok {
                    return Err(ReportError::MissingFile {
                        path,
                        what: "the latency histogram of an allocator whose status is ok",
                    });
                } else {
                    warnings.push(format!(
                        "{} is missing ({} did not finish)",
                        path.display(),
                        alloc.name
                    ));
                    None
                };
                match kind {
                    HistogramKind::RequestLatencyUs => alloc.request_latency_us = histogram,
                    HistogramKind::CallLatencyNs => alloc.call_latency_ns = histogram,
                    HistogramKind::AllocPerRequestNs => alloc.alloc_per_request_ns = histogram,
                }
            }
            if alloc.samples.is_empty() {
                warnings.push(format!(
                    "{} has no samples in {}",
                    alloc.name,
                    samples_path.display()
                ));
            }
        }

        Ok(Self {
            dir: dir.to_path_buf(),
            info,
            summary,
            allocators,
            warnings,
        })
    }

    /// A short name for this run in comparisons: the directory's own name.
    pub fn dir_label(&self) -> String {
        self.dir
            .canonicalize()
            .unwrap_or_else(|_| self.dir.clone())
            .file_name()
            .map_or_else(
                || self.dir.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
    }
}

fn read_bytes(path: &Path, what: &'static str) -> Result<Vec<u8>, ReportError> {
    fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ReportError::MissingFile {
                path: path.to_path_buf(),
                what,
            }
        } else {
            ReportError::Read {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<T, ReportError> {
    let bytes = read_bytes(path, what)?;
    serde_json::from_slice(&bytes).map_err(|source| ReportError::Json {
        path: path.to_path_buf(),
        what,
        source,
    })
}

fn check_schema(path: &Path, found: u64) -> Result<(), ReportError> {
    if SCHEMA_VERSIONS.contains(&found) {
        Ok(())
    } else {
        Err(ReportError::SchemaVersion {
            path: path.to_path_buf(),
            found,
            expected: SCHEMA_VERSIONS.to_vec(),
        })
    }
}

/// Ids become file names: refuse anything that could leave the directory.
fn check_id(path: &Path, id: &str) -> Result<(), ReportError> {
    let safe = !id.is_empty()
        && id != "."
        && id != ".."
        && !id.contains(['/', '\\', '\0'])
        && !id.starts_with('.');
    if safe {
        Ok(())
    } else {
        Err(ReportError::BadAllocatorId {
            path: path.to_path_buf(),
            id: id.to_string(),
        })
    }
}

/// Reads `samples.csv`. The runner flushes after every line, so a file that does not end with
/// a newline, or a line with too few cells, means the file was cut: that is an error, not a
/// silently shorter chart.
fn read_samples(path: &Path) -> Result<Vec<Sample>, ReportError> {
    let bytes = read_bytes(path, "samples.csv, the memory time series")?;
    if bytes.is_empty() {
        return Err(ReportError::Truncated {
            path: path.to_path_buf(),
            problem: "the file is empty (not even a header line)".into(),
        });
    }
    if bytes.last() != Some(&b'\n') {
        let line = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(ReportError::Truncated {
            path: path.to_path_buf(),
            problem: format!(
                "line {line} does not end with a newline: the file was cut while being written (delete that line to draw the rest)"
            ),
        });
    }

    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(bytes.as_slice());
    let headers = reader
        .headers()
        .map_err(|source| csv_error(path, source))?
        .clone();
    for column in REQUIRED_COLUMNS {
        if !headers.iter().any(|h| h == column) {
            return Err(ReportError::MissingColumn {
                path: path.to_path_buf(),
                column,
            });
        }
    }
    let mut samples = Vec::new();
    for row in reader.deserialize::<Sample>() {
        samples.push(row.map_err(|source| csv_error(path, source))?);
    }
    Ok(samples)
}

fn csv_error(path: &Path, source: csv::Error) -> ReportError {
    let line = source.position().map_or(0, |p| p.line());
    let problem = match source.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "{len} cells where the header has {expected_len} (the line is cut or malformed)"
        ),
        csv::ErrorKind::Deserialize { err, .. } => format!("bad cell: {err}"),
        _ => "unreadable CSV".to_string(),
    };
    ReportError::Csv {
        path: path.to_path_buf(),
        line,
        problem,
        source,
    }
}

fn read_histogram(path: &Path) -> Result<Histogram<u64>, ReportError> {
    let bytes = read_bytes(path, "a latency histogram")?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| ReportError::Histogram {
            path: path.to_path_buf(),
            problem: e.to_string(),
        })
}
