//! The binary **trace** format (documented in `docs/trace-format.md`): how events are stored in
//! a file or a stream, written and read back with clear errors.
//!
//! Version 2 (written): a header (magic, version, a JSON [`TraceMeta`]), then one zstd stream of
//! variable-length records, each carrying its event's time as a delta from the previous record.
//! Version 1 (read only): a 16-byte header, then fixed 24-byte records without times and with
//! one-byte thread ids.
//!
//! A reader names the record index and byte offset of anything it cannot read; every event read
//! before that point is returned first, so a replay of a damaged trace covers its intact part.

use std::io::{BufRead, BufReader, Read, Write};

use serde::{Deserialize, Serialize};

use crate::error::TraceError;
use crate::event::{BlockRef, Event, ThreadId};

pub const MAGIC: [u8; 8] = *b"LHTRACE\0";
/// The version this build writes.
pub const VERSION: u32 = 2;
/// Versions this build reads.
pub const READS: [u32; 2] = [1, 2];
/// Length of a version 1 header and record.
pub const V1_HEADER_LEN: usize = 16;
pub const V1_RECORD_LEN: usize = 24;
/// Longest JSON metadata a reader accepts (a header is not a data store).
const MAX_META_LEN: u32 = 1 << 20;
/// zstd level for writing: level 3 (zstd's default) compresses synthetic traces to a few bytes
/// per event at hundreds of MB/s.
const ZSTD_LEVEL: i32 = 3;

const K_MALLOC: u8 = 1;
const K_CALLOC: u8 = 2;
const K_ALIGNED: u8 = 3;
const K_REALLOC: u8 = 4;
const K_FREE: u8 = 5;
const K_RESUME: u8 = 6;
const K_REQ_START: u8 = 7;
const K_REQ_END: u8 = 8;
const K_GC: u8 = 9;
const K_THREAD_END: u8 = 10;

/// What a trace's header says about it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TraceMeta {
    /// Request threads: thread ids run `0..=threads` (0 is the main thread).
    pub threads: u32,
    /// Events in the trace, when the writer knew it before writing.
    #[serde(default)]
    pub events: Option<u64>,
    /// Where the events came from: `synthetic` (a profile and seed) or `recorded` (a program).
    #[serde(default)]
    pub origin: String,
    /// The command that produced the trace (the recorded program's argv, or the runner's).
    #[serde(default)]
    pub command: Vec<String>,
    /// When recording or generation started (RFC 3339).
    #[serde(default)]
    pub started_at: Option<String>,
    /// Facts about the machine it was recorded on (free-form: CPU, cores, kernel, glibc).
    #[serde(default)]
    pub machine: Option<serde_json::Value>,
    /// Workload profile name, seed and hours, for synthetic traces.
    #[serde(default)]
    pub workload: Option<serde_json::Value>,
    /// For recorded traces: how the recording went (the program's exit, its threads, calls the
    /// converter could not use); see docs/trace-format.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<serde_json::Value>,
}

/// A trace header: the format version and its metadata (version 1 has only `threads`).
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub version: u32,
    pub meta: TraceMeta,
}

impl Header {
    /// Request threads (thread ids `1..=threads`; 0 is the main thread).
    pub fn threads(&self) -> u32 {
        self.meta.threads
    }
}

// ---- writing ---------------------------------------------------------------------------------

/// Writes a version 2 trace: header, then events into one zstd stream.
///
/// Each record's time is given by the caller ([`TraceWriter::write_at`]) or, for synthetic
/// streams, derived ([`TraceWriter::write`]): a `Resume` is at its `at_ns`, any other event at
/// its thread's latest `Resume`.
pub struct TraceWriter<W: Write> {
    enc: zstd::stream::write::Encoder<'static, W>,
    buf: Vec<u8>,
    prev_time: u64,
    thread_time: Vec<u64>,
    events: u64,
}

impl<W: Write> TraceWriter<W> {
    const FLUSH_AT: usize = 64 * 1024;

    pub fn new(mut out: W, meta: &TraceMeta) -> Result<Self, TraceError> {
        let json = serde_json::to_vec(meta).map_err(|e| TraceError::Meta {
            offset: 16,
            message: e.to_string(),
        })?;
        out.write_all(&MAGIC)?;
        out.write_all(&VERSION.to_le_bytes())?;
        out.write_all(&(json.len() as u32).to_le_bytes())?;
        out.write_all(&json)?;
        Ok(TraceWriter {
            enc: zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?,
            buf: Vec::with_capacity(Self::FLUSH_AT + 64),
            prev_time: 0,
            thread_time: Vec::new(),
            events: 0,
        })
    }

    /// Writes `e`, timed as a synthetic stream is (see the type's documentation).
    pub fn write(&mut self, e: &Event) -> Result<(), TraceError> {
        let t = e.thread() as usize;
        if self.thread_time.len() <= t {
            self.thread_time.resize(t + 1, 0);
        }
        if let Event::Resume { at_ns, .. } = *e {
            self.thread_time[t] = at_ns;
        }
        let time = self.thread_time[t];
        self.write_at(time, e)
    }

    /// Writes `e` as happening at `time_ns`. For a `Resume`, `time_ns` is taken as its `at_ns`.
    pub fn write_at(&mut self, time_ns: u64, e: &Event) -> Result<(), TraceError> {
        let time_ns = match *e {
            Event::Resume { at_ns, .. } => at_ns,
            _ => time_ns,
        };
        encode_v2(&mut self.buf, self.prev_time, time_ns, e);
        self.prev_time = time_ns;
        self.events += 1;
        if self.buf.len() >= Self::FLUSH_AT {
            self.enc.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Events written so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Writes what is buffered, ends the zstd stream and returns the inner writer.
    pub fn finish(mut self) -> Result<W, TraceError> {
        self.enc.write_all(&self.buf)?;
        self.buf.clear();
        let mut out = self.enc.finish()?;
        out.flush()?;
        Ok(out)
    }
}

/// Replaces the metadata of the version 2 trace in `file` (a writer that did not know its event
/// count up front writes a placeholder, then this). The new JSON must not be longer than the
/// old; it is padded with spaces to the same length, so the body does not move.
pub fn rewrite_meta<F: Read + Write + std::io::Seek>(
    file: &mut F,
    meta: &TraceMeta,
) -> Result<(), TraceError> {
    use std::io::SeekFrom;
    file.seek(SeekFrom::Start(0))?;
    let mut head = [0u8; 16];
    read_exact_or(file, &mut head, 0)?;
    if head[..8] != MAGIC {
        return Err(TraceError::BadMagic);
    }
    let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    if version != 2 {
        return Err(TraceError::Version {
            found: version,
            supported: vec![2],
        });
    }
    let old_len = u32::from_le_bytes([head[12], head[13], head[14], head[15]]) as usize;
    let mut json = serde_json::to_vec(meta).map_err(|e| TraceError::Meta {
        offset: 16,
        message: e.to_string(),
    })?;
    if json.len() > old_len {
        return Err(TraceError::Meta {
            offset: 16,
            message: format!(
                "the new metadata ({} bytes) is longer than the space written for it ({old_len} bytes)",
                json.len()
            ),
        });
    }
    json.resize(old_len, b' ');
    file.seek(SeekFrom::Start(16))?;
    file.write_all(&json)?;
    file.flush()?;
    Ok(())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

fn put_block(out: &mut Vec<u8>, b: BlockRef) {
    put_varint(out, b.slot as u64);
    put_varint(out, b.gen as u64);
}

/// Appends one version 2 record: kind, thread, time delta (zigzag), then the kind's fields.
fn encode_v2(out: &mut Vec<u8>, prev_time: u64, time: u64, e: &Event) {
    let head = |out: &mut Vec<u8>, kind: u8, thread: ThreadId| {
        out.push(kind);
        put_varint(out, thread as u64);
        put_varint(out, zigzag(time.wrapping_sub(prev_time) as i64));
    };
    match *e {
        Event::Malloc {
            thread,
            block,
            size,
        } => {
            head(out, K_MALLOC, thread);
            put_block(out, block);
            put_varint(out, size);
        }
        Event::Calloc {
            thread,
            block,
            size,
        } => {
            head(out, K_CALLOC, thread);
            put_block(out, block);
            put_varint(out, size);
        }
        Event::Aligned {
            thread,
            block,
            size,
            align,
        } => {
            head(out, K_ALIGNED, thread);
            put_block(out, block);
            put_varint(out, size);
            put_varint(out, align);
        }
        Event::Realloc {
            thread,
            block,
            old_size,
            new_size,
        } => {
            head(out, K_REALLOC, thread);
            put_block(out, block);
            put_varint(out, old_size);
            put_varint(out, new_size);
        }
        Event::Free {
            thread,
            block,
            size,
        } => {
            head(out, K_FREE, thread);
            put_block(out, block);
            put_varint(out, size);
        }
        Event::Resume { thread, .. } => head(out, K_RESUME, thread),
        Event::RequestStart {
            thread,
            request,
            arrival_ns,
        } => {
            head(out, K_REQ_START, thread);
            put_varint(out, request);
            put_varint(out, zigzag(time.wrapping_sub(arrival_ns) as i64));
        }
        Event::RequestEnd { thread, request } => {
            head(out, K_REQ_END, thread);
            put_varint(out, request);
        }
        Event::Gc { thread, major } => {
            head(out, K_GC, thread);
            out.push(major as u8);
        }
        Event::ThreadEnd { thread } => head(out, K_THREAD_END, thread),
    }
}

// ---- reading ---------------------------------------------------------------------------------

/// Counts the bytes read through it (the compressed offset for error messages).
struct Counting<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

type Body<R> = BufReader<zstd::stream::read::Decoder<'static, BufReader<Counting<R>>>>;

enum Format<R: Read> {
    V1 { input: BufReader<R>, offset: u64 },
    V2 { body: Body<R>, offset: u64 },
}

/// Reads a trace of any supported version, event by event, with each event's time.
pub struct TraceReader<R: Read> {
    format: Format<R>,
    header: Header,
    header_len: u64,
    index: u64,
    time: u64,
    thread_time: Vec<u64>,
    failed: bool,
}

fn read_exact_or(input: &mut impl Read, buf: &mut [u8], offset: u64) -> Result<(), TraceError> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => TraceError::Truncated {
            index: 0,
            offset,
            detail: "the file ends inside the header".into(),
        },
        _ => TraceError::Io(e),
    })
}

impl<R: Read> TraceReader<R> {
    /// Reads and checks the header; events follow with [`TraceReader::next_event`].
    pub fn new(mut input: R) -> Result<Self, TraceError> {
        let mut head = [0u8; 12];
        read_exact_or(&mut input, &mut head, 0)?;
        if head[..8] != MAGIC {
            return Err(TraceError::BadMagic);
        }
        let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        let mut four = [0u8; 4];
        read_exact_or(&mut input, &mut four, 12)?;
        let word = u32::from_le_bytes(four);
        match version {
            1 => Ok(TraceReader {
                format: Format::V1 {
                    input: BufReader::with_capacity(1 << 16, input),
                    offset: V1_HEADER_LEN as u64,
                },
                header: Header {
                    version,
                    meta: TraceMeta {
                        threads: word,
                        origin: "synthetic".into(),
                        ..TraceMeta::default()
                    },
                },
                header_len: V1_HEADER_LEN as u64,
                index: 0,
                time: 0,
                thread_time: Vec::new(),
                failed: false,
            }),
            2 => {
                if word > MAX_META_LEN {
                    return Err(TraceError::Meta {
                        offset: 12,
                        message: format!(
                            "header metadata of {word} bytes is beyond the {MAX_META_LEN} allowed"
                        ),
                    });
                }
                let mut json = vec![0u8; word as usize];
                read_exact_or(&mut input, &mut json, 16)?;
                let meta: TraceMeta =
                    serde_json::from_slice(&json).map_err(|e| TraceError::Meta {
                        offset: 16,
                        message: e.to_string(),
                    })?;
                let header_len = 16 + word as u64;
                let counting = BufReader::new(Counting {
                    inner: input,
                    read: header_len,
                });
                let dec = zstd::stream::read::Decoder::with_buffer(counting)?;
                Ok(TraceReader {
                    format: Format::V2 {
                        body: BufReader::with_capacity(1 << 16, dec),
                        offset: 0,
                    },
                    header: Header { version, meta },
                    header_len,
                    index: 0,
                    time: 0,
                    thread_time: Vec::new(),
                    failed: false,
                })
            }
            found => Err(TraceError::Version {
                found,
                supported: READS.to_vec(),
            }),
        }
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Events read so far.
    pub fn events_read(&self) -> u64 {
        self.index
    }

    /// Where the reader is: for version 1 the file offset, for version 2 the offset in the
    /// decompressed body and (approximately, zstd reads ahead) in the file.
    pub fn position(&self) -> String {
        match &self.format {
            Format::V1 { offset, .. } => format!("byte {offset} of the file"),
            Format::V2 { body, offset } => format!(
                "byte {offset} of the decompressed body (about byte {} of the file)",
                body.get_ref().get_ref().get_ref().read
            ),
        }
    }

    /// The next event and its time (ns; simulated for synthetic traces), `None` at the clean
    /// end of the trace. After an error, every later call returns `None`.
    pub fn next_event(&mut self) -> Result<Option<(u64, Event)>, TraceError> {
        if self.failed {
            return Ok(None);
        }
        let r = match &mut self.format {
            Format::V1 { input, offset } => next_v1(input, offset, self.index),
            Format::V2 { body, offset } => next_v2(body, offset, self.index, &mut self.time),
        };
        match r {
            Ok(Some((time, e))) => {
                self.index += 1;
                let time = match self.header.version {
                    1 => {
                        // Version 1 carries no times: an event happens at its thread's latest
                        // Resume, as the generator emitted it.
                        let t = e.thread() as usize;
                        if self.thread_time.len() <= t {
                            self.thread_time.resize(t + 1, 0);
                        }
                        if let Event::Resume { at_ns, .. } = e {
                            self.thread_time[t] = at_ns;
                        }
                        self.thread_time[t]
                    }
                    _ => time,
                };
                Ok(Some((time, e)))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    /// Bytes of the header (where the body starts in the file).
    pub fn header_len(&self) -> u64 {
        self.header_len
    }
}

impl<R: Read> Iterator for TraceReader<R> {
    type Item = Result<(u64, Event), TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_event().transpose()
    }
}

fn next_v1<R: Read>(
    input: &mut BufReader<R>,
    offset: &mut u64,
    index: u64,
) -> Result<Option<(u64, Event)>, TraceError> {
    let mut r = [0u8; V1_RECORD_LEN];
    let mut filled = 0;
    while filled < V1_RECORD_LEN {
        match input.read(&mut r[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => {
                return Err(TraceError::Truncated {
                    index,
                    offset: *offset,
                    detail: format!(
                        "the file ends {filled} bytes into a {V1_RECORD_LEN}-byte record"
                    ),
                })
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(TraceError::Io(e)),
        }
    }
    let e = decode_v1(&r, index, *offset)?;
    *offset += V1_RECORD_LEN as u64;
    Ok(Some((0, e)))
}

/// Decodes one version 1 record; `index` and `offset` only name it in errors.
pub fn decode_v1(r: &[u8; V1_RECORD_LEN], index: u64, offset: u64) -> Result<Event, TraceError> {
    let thread = r[1] as ThreadId;
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
        kind => {
            return Err(TraceError::Corrupt {
                index,
                offset,
                detail: format!("unknown event kind {kind}"),
            })
        }
    })
}

/// Reads bytes of one version 2 record from a buffered body.
struct Cursor<'a, B: BufRead> {
    body: &'a mut B,
    offset: &'a mut u64,
    index: u64,
    start: u64,
}

impl<B: BufRead> Cursor<'_, B> {
    /// The next byte; `Ok(None)` only at the end of the body before the record's first byte.
    #[inline]
    fn byte(&mut self, first: bool) -> Result<Option<u8>, TraceError> {
        let buf = match self.body.fill_buf() {
            Ok(b) => b,
            Err(e) => {
                return Err(TraceError::Corrupt {
                    index: self.index,
                    offset: self.start,
                    detail: format!("the compressed body cannot be read further: {e}"),
                })
            }
        };
        match buf.first() {
            Some(&b) => {
                self.body.consume(1);
                *self.offset += 1;
                Ok(Some(b))
            }
            None if first => Ok(None),
            None => Err(TraceError::Truncated {
                index: self.index,
                offset: self.start,
                detail: "the body ends inside a record".into(),
            }),
        }
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, TraceError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte(false)?.unwrap_or(0);
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.corrupt("a number longer than 10 bytes".into()))
    }

    fn corrupt(&self, detail: String) -> TraceError {
        TraceError::Corrupt {
            index: self.index,
            offset: self.start,
            detail,
        }
    }

    fn thread(&mut self) -> Result<ThreadId, TraceError> {
        let v = self.varint()?;
        ThreadId::try_from(v).map_err(|_| self.corrupt(format!("thread id {v} is out of range")))
    }

    fn block(&mut self) -> Result<BlockRef, TraceError> {
        let slot = self.varint()?;
        let gen = self.varint()?;
        match (u32::try_from(slot), u16::try_from(gen)) {
            (Ok(slot), Ok(gen)) => Ok(BlockRef { slot, gen }),
            _ => Err(self.corrupt(format!("block ({slot}, {gen}) is out of range"))),
        }
    }
}

fn next_v2<B: BufRead>(
    body: &mut B,
    offset: &mut u64,
    index: u64,
    time: &mut u64,
) -> Result<Option<(u64, Event)>, TraceError> {
    let start = *offset;
    let mut c = Cursor {
        body,
        offset,
        index,
        start,
    };
    let Some(kind) = c.byte(true)? else {
        return Ok(None);
    };
    if !(K_MALLOC..=K_THREAD_END).contains(&kind) {
        return Err(c.corrupt(format!("unknown event kind {kind}")));
    }
    let thread = c.thread()?;
    let t = time.wrapping_add(unzigzag(c.varint()?) as u64);
    let e = match kind {
        K_MALLOC => Event::Malloc {
            thread,
            block: c.block()?,
            size: c.varint()?,
        },
        K_CALLOC => Event::Calloc {
            thread,
            block: c.block()?,
            size: c.varint()?,
        },
        K_ALIGNED => Event::Aligned {
            thread,
            block: c.block()?,
            size: c.varint()?,
            align: c.varint()?,
        },
        K_REALLOC => Event::Realloc {
            thread,
            block: c.block()?,
            old_size: c.varint()?,
            new_size: c.varint()?,
        },
        K_FREE => Event::Free {
            thread,
            block: c.block()?,
            size: c.varint()?,
        },
        K_RESUME => Event::Resume { thread, at_ns: t },
        K_REQ_START => {
            let request = c.varint()?;
            let back = unzigzag(c.varint()?);
            Event::RequestStart {
                thread,
                request,
                arrival_ns: t.wrapping_sub(back as u64),
            }
        }
        K_REQ_END => Event::RequestEnd {
            thread,
            request: c.varint()?,
        },
        K_GC => Event::Gc {
            thread,
            major: c.byte(false)?.unwrap_or(0) != 0,
        },
        _ => Event::ThreadEnd { thread },
    };
    *time = t;
    Ok(Some((t, e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> Vec<Event> {
        let b = BlockRef { slot: 7, gen: 3 };
        vec![
            Event::Resume {
                thread: 0,
                at_ns: 1_000,
            },
            Event::Malloc {
                thread: 0,
                block: b,
                size: 100,
            },
            Event::RequestStart {
                thread: 300,
                request: 9,
                arrival_ns: 500,
            },
            Event::Realloc {
                thread: 300,
                block: b,
                old_size: 100,
                new_size: 1 << 40,
            },
            Event::Aligned {
                thread: 2,
                block: BlockRef {
                    slot: u32::MAX,
                    gen: u16::MAX,
                },
                size: 64,
                align: 4096,
            },
            Event::Free {
                thread: 70_000,
                block: BlockRef { slot: 7, gen: 4 },
                size: 1 << 40,
            },
            Event::Gc {
                thread: 1,
                major: true,
            },
            Event::RequestEnd {
                thread: 300,
                request: 9,
            },
            Event::ThreadEnd { thread: 300 },
        ]
    }

    fn written(meta: &TraceMeta) -> Vec<u8> {
        let mut w = TraceWriter::new(Vec::new(), meta).unwrap();
        for (i, e) in events().iter().enumerate() {
            w.write_at(2_000 + i as u64 * 10, e).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn v2_round_trips_events_times_and_meta() {
        let meta = TraceMeta {
            threads: 70_000,
            events: Some(9),
            origin: "recorded".into(),
            command: vec!["ruby".into(), "x.rb".into()],
            ..TraceMeta::default()
        };
        let bytes = written(&meta);
        let mut r = TraceReader::new(bytes.as_slice()).unwrap();
        assert_eq!(r.header().meta, meta);
        let got: Vec<(u64, Event)> = r.by_ref().map(|x| x.unwrap()).collect();
        let want = events();
        assert_eq!(got.len(), want.len());
        for (i, ((t, e), w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(e, w, "event {i}");
            if !matches!(w, Event::Resume { .. }) {
                assert_eq!(*t, 2_000 + i as u64 * 10);
            }
        }
        assert_eq!(r.events_read(), 9);
    }

    #[test]
    fn meta_is_rewritten_in_place_when_it_fits() {
        let mut meta = TraceMeta {
            threads: 1_000_000,
            events: Some(u64::MAX),
            origin: "recorded".into(),
            ..TraceMeta::default()
        };
        let mut file = std::io::Cursor::new(written(&meta));
        meta.threads = 3;
        meta.events = Some(9);
        meta.recording = Some(serde_json::json!({"exit": 0}));
        rewrite_meta(&mut file, &meta).unwrap();
        let bytes = file.into_inner();
        let mut r = TraceReader::new(bytes.as_slice()).unwrap();
        assert_eq!(r.header().meta, meta);
        assert_eq!(r.by_ref().count(), 9, "the body is untouched");
        meta.command = vec!["x".repeat(500)];
        let mut file = std::io::Cursor::new(bytes);
        let e = rewrite_meta(&mut file, &meta).unwrap_err().to_string();
        assert!(e.contains("longer than the space"), "{e}");
    }

    #[test]
    fn truncated_v2_reports_the_record_and_keeps_what_came_before() {
        let bytes = written(&TraceMeta::default());
        let cut = &bytes[..bytes.len() - 6];
        let mut r = TraceReader::new(cut).unwrap();
        let mut ok = 0;
        let err = loop {
            match r.next_event() {
                Ok(Some(_)) => ok += 1,
                Ok(None) => panic!("a cut trace must not end cleanly"),
                Err(e) => break e,
            }
        };
        assert!(ok < 9);
        let msg = err.to_string();
        assert!(msg.contains(&format!("record {ok}")), "{msg}");
        assert!(
            r.next_event().unwrap().is_none(),
            "no events after an error"
        );
    }

    #[test]
    fn v1_is_still_read() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&5u32.to_le_bytes());
        let mut rec = [0u8; V1_RECORD_LEN];
        rec[0] = K_RESUME;
        rec[1] = 4;
        rec[8..16].copy_from_slice(&77u64.to_le_bytes());
        bytes.extend_from_slice(&rec);
        let mut rec = [0u8; V1_RECORD_LEN];
        rec[0] = K_MALLOC;
        rec[1] = 4;
        rec[4..8].copy_from_slice(&9u32.to_le_bytes());
        rec[8..16].copy_from_slice(&48u64.to_le_bytes());
        bytes.extend_from_slice(&rec);
        bytes.extend_from_slice(&[K_FREE, 4, 0]);
        let mut r = TraceReader::new(bytes.as_slice()).unwrap();
        assert_eq!(r.header().threads(), 5);
        assert_eq!(
            r.next_event().unwrap(),
            Some((
                77,
                Event::Resume {
                    thread: 4,
                    at_ns: 77
                }
            ))
        );
        assert_eq!(
            r.next_event().unwrap(),
            Some((
                77,
                Event::Malloc {
                    thread: 4,
                    block: BlockRef { slot: 9, gen: 0 },
                    size: 48
                }
            ))
        );
        let e = r.next_event().unwrap_err().to_string();
        assert!(e.contains("record 2") && e.contains("offset 64"), "{e}");
    }

    #[test]
    fn bad_magic_and_version_are_named() {
        assert!(matches!(
            TraceReader::new(&b"NOTATRACE...xxxx"[..]),
            Err(TraceError::BadMagic)
        ));
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&9u32.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        let e = TraceReader::new(bytes.as_slice())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("version 9"), "{e}");
    }

    #[test]
    fn corrupt_kind_is_named_with_its_record() {
        let meta = TraceMeta::default();
        let mut w = TraceWriter::new(Vec::new(), &meta).unwrap();
        w.write_at(0, &events()[1]).unwrap();
        let good = w.finish().unwrap();
        // Re-compress a body with a bad kind byte after the good record.
        let mut r = TraceReader::new(good.as_slice()).unwrap();
        assert!(r.next_event().unwrap().is_some());
        let json = serde_json::to_vec(&meta).unwrap();
        let mut body = Vec::new();
        encode_v2(&mut body, 0, 0, &events()[1]);
        body.push(200);
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&2u32.to_le_bytes());
        bytes.extend_from_slice(&(json.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&json);
        bytes.extend_from_slice(&zstd::encode_all(body.as_slice(), 1).unwrap());
        let mut r = TraceReader::new(bytes.as_slice()).unwrap();
        assert!(r.next_event().unwrap().is_some());
        let e = r.next_event().unwrap_err().to_string();
        assert!(
            e.contains("record 1") && e.contains("unknown event kind 200"),
            "{e}"
        );
    }
}
