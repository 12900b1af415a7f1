//! The tracer's **raw records**: the file a traced process writes while it runs, before
//! `runner record` turns it into a trace (see `docs/trace-format.md`, "Raw recordings").
//!
//! A raw file is one 4 KiB header page ([`layout::FileHeader`]) followed by chunks. Each chunk
//! ([`layout::ChunkHeader`] plus records) belongs to one thread of the traced process and holds
//! that thread's malloc-family calls in program order, delta-encoded ([`record`]). Chunks start
//! on 64 KiB boundaries, so a reader can step over a chunk that was reserved but never written.
//! [`file`] reads a whole file back, grouping chunks by thread.
//!
//! Byte order is the host's (little-endian on every target the tracer supports: x86-64 and
//! aarch64 Linux): the tracer writes the header structs in place.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod file;
pub mod layout;
pub mod record;

pub use file::{RawFile, RawFileBuilder, RawFileError, ThreadStream};
pub use layout::{ChunkHeader, FileHeader};
pub use record::{Decoder, Encoder, Kind, RawRecord, RecordError, MAX_RECORD};
