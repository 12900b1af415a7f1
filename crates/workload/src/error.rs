//! Typed errors of the workload crate; each variant says which file and how to fix it.

use std::path::PathBuf;

/// Why a profile could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read profile {file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("profile {file} is not valid TOML for a workload profile: {message}")]
    Parse { file: PathBuf, message: String },
    #[error("profile {file}: field `{field}` is {value}; allowed: {allowed}")]
    OutOfRange {
        file: PathBuf,
        field: String,
        value: String,
        allowed: String,
    },
    #[error("no workload profile named {name:?}; known profiles: {known:?} (or give a path to a .toml file)")]
    NotFound { name: String, known: Vec<String> },
}

/// Why a trace stream could not be read. Record indexes count from 0; offsets are those of the
/// record's first byte (in the file for version 1, in the decompressed body for version 2).
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("not a longhaul trace (bad magic bytes): give a file written by `runner record` or the runner's trace writer")]
    BadMagic,
    #[error("trace format version {found} is not supported (this build reads versions {supported:?}): use a runner built from a matching commit")]
    Version { found: u32, supported: Vec<u32> },
    #[error("trace header metadata at byte {offset} is unreadable: {message}")]
    Meta { offset: u64, message: String },
    #[error("trace is cut at record {index} (offset {offset}): {detail}; the events before it are intact")]
    Truncated {
        index: u64,
        offset: u64,
        detail: String,
    },
    #[error("trace is corrupt at record {index} (offset {offset}): {detail}; the events before it are intact")]
    Corrupt {
        index: u64,
        offset: u64,
        detail: String,
    },
    #[error("trace I/O: {0}")]
    Io(#[from] std::io::Error),
}
