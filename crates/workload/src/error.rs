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

/// Why a trace stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("not a longhaul trace (bad magic bytes)")]
    BadMagic,
    #[error(
        "trace format version {found} is not supported (this build reads version {supported})"
    )]
    Version { found: u32, supported: u32 },
    #[error("unknown event kind {kind} at record {index}")]
    UnknownKind { kind: u8, index: u64 },
    #[error("trace ends in the middle of a record")]
    Truncated,
    #[error("trace I/O: {0}")]
    Io(#[from] std::io::Error),
}
