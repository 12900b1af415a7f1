//! The one error type of the library: every variant names the file or directory involved and,
//! where there is one, what to do about it.

use std::path::PathBuf;

/// Why a report could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The run directory could not be read (missing, truncated, other schema...).
    #[error(transparent)]
    RunDir(#[from] rundir::RunDirError),

    /// A file could not be written.
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

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
