//! Writing files of a run directory so that a reader never sees half of one: a temporary file
//! next to the target, synced, then renamed over it. Reading JSON files back with errors that
//! name the file.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::RunDirError;

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RunDirError> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let write_error = |source| RunDirError::Write {
        path: tmp.clone(),
        hint: "",
        source,
    };
    let mut f = File::create(&tmp).map_err(write_error)?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(write_error)?;
    std::fs::rename(&tmp, path).map_err(|source| RunDirError::Write {
        path: path.to_path_buf(),
        hint: "",
        source,
    })
}

/// Serialises `value` as pretty JSON (with a final newline) into `path`, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), RunDirError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| RunDirError::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Reads a whole file; a missing one is [`RunDirError::MissingFile`] saying `what` it is.
pub fn read_bytes(path: &Path, what: &'static str) -> Result<Vec<u8>, RunDirError> {
    std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            RunDirError::MissingFile {
                path: path.to_path_buf(),
                what,
            }
        } else {
            RunDirError::Read {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// Reads and parses a JSON file of the run directory.
pub fn read_json<T: DeserializeOwned>(path: &Path, what: &'static str) -> Result<T, RunDirError> {
    let bytes = read_bytes(path, what)?;
    serde_json::from_slice(&bytes).map_err(|source| RunDirError::Json {
        path: path.to_path_buf(),
        what,
        source,
    })
}
