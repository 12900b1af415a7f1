//! Schema versions of the run directory (field `schema_version` of `run.json` and
//! `summary.json`): which one is written, which ones are read, and the check every reader makes.
//!
//! - 1: the first format (no harness RSS or resource columns, no per-request histograms).
//! - 2: per-sample harness RSS and resource use, per-request allocator and touch time, `cost`,
//!   `timing_valid`.
//! - 3: repetitions (`--repeat`): a `repetition` column in `samples.csv`, histograms of
//!   repetition k >= 2 named `<id>.rep<k>.<kind>.hdr`, `repetitions` and `spread` per allocator
//!   and the run order in `summary.json`; `repeat`, `order`, `shard`, `build` and `test_hook`
//!   in `run.json`.

use std::path::Path;

use crate::error::RunDirError;

/// The version this build writes.
pub const SCHEMA_VERSION: u32 = 3;

/// The versions this build reads.
pub const READABLE: [u32; 3] = [1, 2, 3];

/// Fails with [`RunDirError::SchemaVersion`] naming `path` unless `found` is readable.
pub fn check(path: &Path, found: u32) -> Result<(), RunDirError> {
    if READABLE.contains(&found) {
        Ok(())
    } else {
        Err(RunDirError::SchemaVersion {
            path: path.to_path_buf(),
            found,
            expected: READABLE.to_vec(),
        })
    }
}
