//! The HdrHistogram files of a run (V2 serialisation, readable by every HdrHistogram
//! implementation): their kinds, their file names, writing and reading them.

use std::path::{Path, PathBuf};

use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;

use crate::atomic::{read_bytes, write_atomic};
use crate::error::RunDirError;

/// The kinds of histogram file a run holds per allocator and repetition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HistogramKind {
    /// Per request, from its scheduled arrival to completion, µs.
    RequestLatencyUs,
    /// Per request, from when a thread started it to completion, µs.
    ServiceTimeUs,
    /// Every malloc-family and free call, ns.
    CallLatencyNs,
    /// Per request, the sum of its allocator calls, ns (schema 2).
    AllocPerRequestNs,
    /// Per request, the time spent writing the memory it allocated, ns (schema 2).
    TouchPerRequestNs,
}

impl HistogramKind {
    /// Every kind, in file order.
    pub fn all() -> [HistogramKind; 5] {
        [
            HistogramKind::RequestLatencyUs,
            HistogramKind::ServiceTimeUs,
            HistogramKind::CallLatencyNs,
            HistogramKind::AllocPerRequestNs,
            HistogramKind::TouchPerRequestNs,
        ]
    }

    /// The part of the file name after the allocator id (and repetition).
    pub fn suffix(self) -> &'static str {
        match self {
            HistogramKind::RequestLatencyUs => "request-latency-us",
            HistogramKind::ServiceTimeUs => "service-time-us",
            HistogramKind::CallLatencyNs => "call-latency-ns",
            HistogramKind::AllocPerRequestNs => "alloc-per-request-ns",
            HistogramKind::TouchPerRequestNs => "touch-per-request-ns",
        }
    }

    /// The first schema version whose runs always have this kind.
    pub fn since_schema(self) -> u32 {
        match self {
            HistogramKind::AllocPerRequestNs | HistogramKind::TouchPerRequestNs => 2,
            _ => 1,
        }
    }
}

/// `<id>.<kind>.hdr` for repetition 1, `<id>.rep<k>.<kind>.hdr` for repetition k >= 2 (so
/// that a run without repetitions has the file names of schema 2).
pub fn file_name(id: &str, repetition: u32, kind: HistogramKind) -> String {
    if repetition <= 1 {
        format!("{id}.{}.hdr", kind.suffix())
    } else {
        format!("{id}.rep{repetition}.{}.hdr", kind.suffix())
    }
}

/// The path of a histogram file in run directory `dir`.
pub fn path(dir: &Path, id: &str, repetition: u32, kind: HistogramKind) -> PathBuf {
    dir.join(file_name(id, repetition, kind))
}

/// Writes `h` to `path` atomically.
pub fn write(path: &Path, h: &Histogram<u64>) -> Result<(), RunDirError> {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| RunDirError::Histogram {
            path: path.to_path_buf(),
            problem: format!("cannot serialise: {e:?}"),
        })?;
    write_atomic(path, &bytes)
}

/// Reads a histogram file.
pub fn read(path: &Path) -> Result<Histogram<u64>, RunDirError> {
    let bytes = read_bytes(path, "a latency histogram")?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| RunDirError::Histogram {
            path: path.to_path_buf(),
            problem: format!("{e:?}"),
        })
}
