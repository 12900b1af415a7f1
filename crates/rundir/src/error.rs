//! The one error type of the crate: every variant names the file or directory involved and,
//! where there is one, what to do about it.

use std::path::PathBuf;

/// Why a run directory could not be written, read or merged.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
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

    /// A file or directory could not be written or created.
    #[error("cannot write {path}{hint}")]
    Write {
        path: PathBuf,
        /// What to do about it, with a leading separator, or empty.
        hint: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// A new run directory already holds files.
    #[error("the run directory {path} is not empty: give a new or empty directory ({flag})")]
    NotEmpty { path: PathBuf, flag: &'static str },

    /// A JSON file does not follow docs/results-format.md.
    #[error("{path} is not a valid {what} (see docs/results-format.md)")]
    Json {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },

    /// A value could not be turned into JSON (a bug: every type here serialises).
    #[error("cannot encode {path} as JSON")]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// The run was written with a schema this reader does not know.
    #[error("{path} has schema_version {found}, this build reads versions {expected:?} only (regenerate the run, or read it with the longhaul commit that wrote it)")]
    SchemaVersion {
        path: PathBuf,
        found: u32,
        expected: Vec<u32>,
    },

    /// `samples.csv` lacks a column every reader needs.
    #[error("{path} has no `{column}` column in its header (see docs/results-format.md)")]
    MissingColumn { path: PathBuf, column: &'static str },

    /// `samples.csv` has a line that cannot be read.
    #[error("{path}, line {line}: {problem}")]
    Csv {
        path: PathBuf,
        line: u64,
        problem: String,
        #[source]
        source: Option<csv::Error>,
    },

    /// `samples.csv` (or another file) ends in the middle of a line or is empty.
    #[error("{path} is truncated: {problem}")]
    Truncated { path: PathBuf, problem: String },

    /// An allocator id would not make a safe file name.
    #[error("{path} names an allocator with id {id:?}, which is not a safe file name")]
    BadAllocatorId { path: PathBuf, id: String },

    /// An HdrHistogram file could not be decoded or encoded.
    #[error("{path} is not a valid HdrHistogram V2 file ({problem}; it may be truncated)")]
    Histogram { path: PathBuf, problem: String },
}
