//! The one error type of the library: every variant names the file or directory involved and,
//! where there is one, what to do about it.

use std::path::PathBuf;

/// Why a report could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The run directory itself is not there.
    #[error("run directory {path} does not exist or is not a directory (give the folder the runner wrote, e.g. results/runs/<timestamp>-<workload>)")]
    MissingRunDir { path: PathBuf },

    /// A file that every run writes is missing.
    #[error("{path} is missing: {what} (is this a run directory, and did the run get that far?)")]
    MissingFile { path: PathBuf, what: &'static str },

    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file could not be written.
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A JSON file does not follow docs/results-format.md.
    #[error("{path} is not a valid {what} (see docs/results-format.md)")]
    Json {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },

    /// The run was written with a schema this reader does not know.
    #[error("{path} has schema_version {found}, this report reads versions {expected:?} only (regenerate the run, or use the report from the same commit as the runner)")]
    SchemaVersion {
        path: PathBuf,
        found: u64,
        expected: Vec<u64>,
    },

    /// `samples.csv` lacks a column the charts need.
    #[error("{path} has no `{column}` column in its header (see docs/results-format.md)")]
    MissingColumn { path: PathBuf, column: &'static str },

    /// `samples.csv` has a line that cannot be read.
    #[error("{path}, line {line}: {problem}")]
    Csv {
        path: PathBuf,
        line: u64,
        problem: String,
        #[source]
        source: csv::Error,
    },

    /// `samples.csv` (or another file) ends in the middle of a line or is empty.
    #[error("{path} is truncated: {problem}")]
    Truncated { path: PathBuf, problem: String },

    /// An allocator id would not make a safe file name.
    #[error("{path} names an allocator with id {id:?}, which is not a safe file name")]
    BadAllocatorId { path: PathBuf, id: String },

    /// An HdrHistogram file could not be decoded.
    #[error("{path} is not a valid HdrHistogram V2 file ({problem}; it may be truncated)")]
    Histogram { path: PathBuf, problem: String },

    /// `--reference` names an allocator that is not in the run.
    #[error("reference allocator {name:?} is not in {path} (allocators there: {available})")]
    UnknownReference {
        path: PathBuf,
        name: String,
        available: String,
    },

    /// `compare` was given fewer than two runs.
    #[error("a comparison needs at least two run directories, got {count}")]
    TooFewRuns { count: usize },

    /// The embedded font could not be loaded by the chart library.
    #[error("the embedded DejaVu Sans font could not be registered with plotters")]
    Font,

    /// Drawing a chart failed.
    #[error("cannot draw the {figure} chart: {message}")]
    Draw {
        figure: &'static str,
        message: String,
    },

    /// Encoding a chart as PNG failed.
    #[error("cannot encode {path} as PNG")]
    Png {
        path: PathBuf,
        #[source]
        source: png::EncodingError,
    },
}
