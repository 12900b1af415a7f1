//! Why two runs could not be compared.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(transparent)]
    RunDir(#[from] rundir::RunDirError),

    #[error("{a} and {b} have no allocator in common (A: {a_has}; B: {b_has}): compare runs of the same allocators")]
    NoCommonAllocators {
        a: PathBuf,
        b: PathBuf,
        a_has: String,
        b_has: String,
    },
}
