//! The compact binary **trace** format: a 16-byte header, then one 24-byte record per event.
//!
//! Header: magic `LHTRACE\0`, format version (u32 LE), number of request threads (u32 LE).
//! Record (all little endian): `kind: u8, thread: u8, gen: u16, slot: u32, a: u64, b: u64`,
//! where `a`/`b` carry the sizes, times or ids of the event kind (see [`encode`]).
//! Fixed-size records keep encoding and decoding branch-light: the runner's child decodes
//! millions of them per second from a pipe.

use std::io::{Read, Write};

use crate::error::TraceError;
use crate::event::{BlockRef, Event};

pub const MAGIC: [u8; 8] = *b"LHTRACE\0";
pub const VERSION: u32 = 1;
pub const HEADER_LEN: usize = 16;
pub const RECORD_LEN: usize = 24;

const K_MALLOC: u8 = 1;
const K_CALLOC: u8 = 2;
const K_ALIGNED: u8 = 3;
const K_REALLOC: u8 = 4;
const K_FREE: u8 = 5;
const K_RESUME: u8 = 6;
const K_REQ_START: u8 = 7;
const K_REQ_END: u8 = 8;
const K_GC: u8 = 9;

/// What a trace header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Request threads (thread ids `1..=threads`; 0 is the main thread).
    pub threads: u32,
}

/// Encodes the header.
pub fn encode_header(h: Header) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&h.threads.to_le_bytes());
    out
}

/// Decodes and checks the header.
pub fn decode_header(bytes: &[u8; HEADER_LEN]) -> Result<Header, TraceError> {
    if bytes[..8] != MAGIC {
        return Err(TraceError::BadMagic);
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != VERSION {
        return Err(TraceError::Version {
            found: version,
            supported: VERSION,
        });
    }
    let threads = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    Ok(Header { threads })
}

fn record(kind: u8, thread: u8, block: BlockRef, a: u64, b: u64) -> [u8; RECORD_LEN] {
    let mut r = [0u8; RECORD_LEN];
    r[0] = kind;
    r[1] = thread;
    r[2..4].copy_from_slice(&block.gen.to_le_bytes());
    r[4..8].copy_from_slice(&block.slot.to_le_bytes());
    r[8..16].copy_from_slice(&a.to_le_bytes());
    r[16..24].copy_from_slice(&b.to_le_bytes());
    r
}

const NO_BLOCK: BlockRef = BlockRef { slot: 0, gen: 0 };

/// Encodes one event as a record.
pub fn encode(e: &Event) -> [u8; RECORD_LEN] {
    match *e {
        Event::Malloc {
            thread,
            block,
            size,
        } => record(K_MALLOC, thread, block, size, 0),
        Event::Calloc {
            thread,
            block,
            size,
        } => record(K_CALLOC, thread, block, size, 0),
        Event::Aligned {
            thread,
            block,
            size,
            align,
        } => record(K_ALIGNED, thread, block, size, align),
        Event::Realloc {
            thread,
            block,
            old_size,
            new_size,
        } => record(K_REALLOC, thread, block, new_size, old_size),
        Event::Free {
            thread,
            block,
            size,
        } => record(K_FREE, thread, block, size, 0),
        Event::Resume { thread, at_ns } => record(K_RESUME, thread, NO_BLOCK, at_ns, 0),
        Event::RequestStart {
            thread,
            request,
            arrival_ns,
        } => record(K_REQ_START, thread, NO_BLOCK, request, arrival_ns),
        Event::RequestEnd { thread, request } => record(K_REQ_END, thread, NO_BLOCK, request, 0),
        Event::Gc { thread, major } => record(K_GC, thread, NO_BLOCK, major as u64, 0),
    }
}

/// Decodes one record; `index` only names it in errors.
#[inline]
pub fn decode(r: &[u8; RECORD_LEN], index: u64) -> Result<Event, TraceError> {
    let thread = r[1];
    let block = BlockRef {
        gen: u16::from_le_bytes([r[2], r[3]]),
        slot: u32::from_le_bytes([r[4], r[5], r[6], r[7]]),
    };
    let mut a8 = [0u8; 8];
    a8.copy_from_slice(&r[8..16]);
    let a = u64::from_le_bytes(a8);
    a8.copy_from_slice(&r[16..24]);
    let b = u64::from_le_bytes(a8);
    Ok(match r[0] {
        K_MALLOC => Event::Malloc {
            thread,
            block,
            size: a,
        },
        K_CALLOC => Event::Calloc {
            thread,
            block,
            size: a,
        },
        K_ALIGNED => Event::Aligned {
            thread,
            block,
            size: a,
            align: b,
        },
        K_REALLOC => Event::Realloc {
            thread,
            block,
            new_size: a,
            old_size: b,
        },
        K_FREE => Event::Free {
            thread,
            block,
            size: a,
        },
        K_RESUME => Event::Resume { thread, at_ns: a },
        K_REQ_START => Event::RequestStart {
            thread,
            request: a,
            arrival_ns: b,
        },
        K_REQ_END => Event::RequestEnd { thread, request: a },
        K_GC => Event::Gc {
            thread,
            major: a != 0,
        },
        kind => return Err(TraceError::UnknownKind { kind, index }),
    })
}

/// Writes a header and then events, buffered.
pub struct TraceWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> TraceWriter<W> {
    const FLUSH_AT: usize = 64 * 1024;

    pub fn new(mut out: W, header: Header) -> Result<Self, TraceError> {
        out.write_all(&encode_header(header))?;
        Ok(TraceWriter {
            out,
            buf: Vec::with_capacity(Self::FLUSH_AT + RECORD_LEN),
        })
    }

    pub fn write(&mut self, e: &Event) -> Result<(), TraceError> {
        self.buf.extend_from_slice(&encode(e));
        if self.buf.len() >= Self::FLUSH_AT {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes what is buffered and returns the inner writer.
    pub fn finish(mut self) -> Result<W, TraceError> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads a header and then events.
pub struct TraceReader<R: Read> {
    input: R,
    header: Header,
    index: u64,
}

impl<R: Read> TraceReader<R> {
    pub fn new(mut input: R) -> Result<Self, TraceError> {
        let mut h = [0u8; HEADER_LEN];
        input.read_exact(&mut h).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => TraceError::Truncated,
            _ => TraceError::Io(e),
        })?;
        Ok(TraceReader {
            input,
            header: decode_header(&h)?,
            index: 0,
        })
    }

    pub fn header(&self) -> Header {
        self.header
    }

    /// The next event, `None` at a clean end of the stream.
    pub fn next_event(&mut self) -> Result<Option<Event>, TraceError> {
        let mut r = [0u8; RECORD_LEN];
        let mut filled = 0;
        while filled < RECORD_LEN {
            match self.input.read(&mut r[filled..]) {
                Ok(0) if filled == 0 => return Ok(None),
                Ok(0) => return Err(TraceError::Truncated),
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TraceError::Io(e)),
            }
        }
        let e = decode(&r, self.index)?;
        self.index += 1;
        Ok(Some(e))
    }
}
