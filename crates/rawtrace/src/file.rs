//! Reading a whole raw file back: its header, and each thread's chunks in order.

use crate::layout::{self, off, CHUNK_ALIGN, CHUNK_HEADER_LEN, CHUNK_MAGIC, HEADER_LEN};
use crate::record::{Decoder, RawRecord, RecordError};

/// Why a raw file cannot be read at all.
#[derive(Debug, PartialEq, Eq)]
pub enum RawFileError {
    /// Shorter than its header page: the process died while the tracer started.
    Short {
        len: usize,
    },
    /// Not a raw file (or its header was never finished).
    Magic,
    Version {
        found: u32,
    },
}

impl core::fmt::Display for RawFileError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RawFileError::Short { len } => write!(
                f,
                "only {len} bytes, shorter than the {HEADER_LEN}-byte header (the process died while tracing started)"
            ),
            RawFileError::Magic => f.write_str(
                "not a raw recording (bad magic bytes; the tracer writes them last, so the header may be unfinished)",
            ),
            RawFileError::Version { found } => write!(
                f,
                "raw format version {found}, this build reads version {} (record again with the tracer of this build)",
                layout::FILE_VERSION
            ),
        }
    }
}

impl std::error::Error for RawFileError {}

/// Where one chunk is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkRef {
    /// Offset of the chunk header in the file.
    pub offset: usize,
    pub seq: u32,
    pub base_time: u64,
    /// End of the chunk in the file (the chunk's length, or the end of a cut file).
    pub end: usize,
}

/// One thread's records: its chunks in order.
#[derive(Clone, Debug)]
pub struct ThreadStream {
    /// The tracer's index of the thread (order of first allocator call).
    pub thread: u32,
    pub tid: u32,
    pub name: String,
    pub chunks: Vec<ChunkRef>,
}

/// A raw file, parsed: header fields, and the chunks grouped by thread.
#[derive(Clone, Debug)]
pub struct RawFile {
    pub pid: u32,
    pub ppid: u32,
    pub forked_from: u32,
    pub start_mono_ns: u64,
    pub start_real_ns: u64,
    pub flags: u32,
    pub end_mono_ns: u64,
    pub untraced_calls: u64,
    pub threads_started: u32,
    pub cmdline: Vec<String>,
    /// Threads with at least one chunk, by thread index.
    pub threads: Vec<ThreadStream>,
    /// What is damaged or missing (chunks lost to a kill, gaps), in words.
    pub problems: Vec<String>,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(w)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(w)
}

fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

impl RawFile {
    /// Parses the header and finds every chunk of `bytes` (the whole file).
    pub fn parse(bytes: &[u8]) -> Result<RawFile, RawFileError> {
        if bytes.len() < HEADER_LEN {
            return Err(RawFileError::Short { len: bytes.len() });
        }
        if bytes[..8] != layout::FILE_MAGIC {
            return Err(RawFileError::Magic);
        }
        let version = u32_at(bytes, off::F_VERSION);
        if version != layout::FILE_VERSION {
            return Err(RawFileError::Version { found: version });
        }
        let cmd_len = (u32_at(bytes, off::F_CMDLINE_LEN) as usize).min(layout::MAX_CMDLINE);
        let cmd = &bytes[off::F_LEN..off::F_LEN + cmd_len];
        let cmdline = cmd
            .split(|&c| c == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let mut file = RawFile {
            pid: u32_at(bytes, off::F_PID),
            ppid: u32_at(bytes, off::F_PPID),
            forked_from: u32_at(bytes, off::F_FORKED_FROM),
            start_mono_ns: u64_at(bytes, off::F_START_MONO),
            start_real_ns: u64_at(bytes, off::F_START_REAL),
            flags: u32_at(bytes, off::F_FLAGS),
            end_mono_ns: u64_at(bytes, off::F_END_MONO),
            untraced_calls: u64_at(bytes, off::F_UNTRACED),
            threads_started: u32_at(bytes, off::F_THREADS),
            cmdline,
            threads: Vec::new(),
            problems: Vec::new(),
        };
        let mut by_thread: Vec<Option<ThreadStream>> = Vec::new();
        let mut at = HEADER_LEN;
        while at + CHUNK_HEADER_LEN <= bytes.len() {
            if u32_at(bytes, at + off::C_MAGIC) != CHUNK_MAGIC {
                // Reserved but never written (the process died between reserving and writing
                // the chunk header), or past the last chunk: step to the next possible start.
                at += CHUNK_ALIGN as usize;
                continue;
            }
            let len = u32_at(bytes, at + off::C_LEN) as usize;
            if len < CHUNK_ALIGN as usize
                || len % CHUNK_ALIGN as usize != 0
                || len > layout::MAX_CHUNK as usize
            {
                file.problems.push(format!(
                    "chunk at offset {at} claims {len} bytes (not a chunk length): skipped"
                ));
                at += CHUNK_ALIGN as usize;
                continue;
            }
            let thread = u32_at(bytes, at + off::C_THREAD);
            let chunk = ChunkRef {
                offset: at,
                seq: u32_at(bytes, at + off::C_SEQ),
                base_time: u64_at(bytes, at + off::C_BASE_TIME),
                end: (at + len).min(bytes.len()),
            };
            if at + len > bytes.len() {
                file.problems.push(format!(
                    "the file ends inside the chunk at offset {at} (thread {thread}): its records up to the cut are kept"
                ));
            }
            let i = thread as usize;
            if i >= by_thread.len() {
                by_thread.resize(i + 1, None);
            }
            let s = by_thread[i].get_or_insert_with(|| ThreadStream {
                thread,
                tid: u32_at(bytes, at + off::C_TID),
                name: c_string(&bytes[at + off::C_NAME..at + off::C_NAME + 16]),
                chunks: Vec::new(),
            });
            s.chunks.push(chunk);
            at += len;
        }
        for s in by_thread.into_iter().flatten() {
            let mut s = s;
            s.chunks.sort_by_key(|c| c.seq);
            for (want, c) in s.chunks.iter().enumerate() {
                if c.seq as usize != want {
                    file.problems.push(format!(
                        "thread {} (tid {}): chunk {} is missing; its calls are lost",
                        s.thread, s.tid, want
                    ));
                    break;
                }
            }
            file.threads.push(s);
        }
        Ok(file)
    }

    /// The records of `stream`, in order, read from `bytes` (the same file).
    pub fn records<'a>(&self, bytes: &'a [u8], stream: &ThreadStream) -> Records<'a> {
        Records {
            bytes,
            chunks: stream.chunks.clone(),
            next_chunk: 0,
            cur: None,
        }
    }

    /// Whether the process reached its exit hook.
    pub fn exited(&self) -> bool {
        self.flags & layout::FLAG_EXITED != 0
    }
}

/// Iterates over one thread's records across its chunks. A damaged record ends its chunk (the
/// error is returned once, then reading goes on with the next chunk).
pub struct Records<'a> {
    bytes: &'a [u8],
    chunks: Vec<ChunkRef>,
    next_chunk: usize,
    cur: Option<(ChunkRef, Decoder, usize)>,
}

/// A damaged record: which chunk, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamagedChunk {
    pub offset: usize,
    pub error: RecordError,
}

impl core::fmt::Display for DamagedChunk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "chunk at file offset {}: {} (the rest of the chunk is skipped)",
            self.offset, self.error
        )
    }
}

impl Iterator for Records<'_> {
    type Item = Result<RawRecord, DamagedChunk>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.cur.is_none() {
                let c = *self.chunks.get(self.next_chunk)?;
                self.next_chunk += 1;
                self.cur = Some((c, Decoder::new(c.base_time), c.offset + CHUNK_HEADER_LEN));
            }
            let (c, d, pos) = self.cur.as_mut()?;
            let data = &self.bytes[..c.end];
            match d.decode(data, pos) {
                Ok(Some(r)) => return Some(Ok(r)),
                Ok(None) => self.cur = None,
                Err(error) => {
                    let offset = c.offset;
                    self.cur = None;
                    return Some(Err(DamagedChunk { offset, error }));
                }
            }
        }
    }
}

/// Writes raw files in memory, as the tracer lays them out (for tests and tools that need a
/// recording without running a program).
#[derive(Clone, Debug)]
pub struct RawFileBuilder {
    bytes: Vec<u8>,
    /// Per thread: (next chunk seq, offset of the open chunk, its encoder, write position).
    open: Vec<Option<(u32, usize, crate::record::Encoder, usize)>>,
}

impl RawFileBuilder {
    /// A file of process `pid` whose tracing started at `start_mono_ns`.
    pub fn new(pid: u32, start_mono_ns: u64, cmdline: &[&str]) -> RawFileBuilder {
        let mut f = vec![0u8; HEADER_LEN];
        f[..8].copy_from_slice(&layout::FILE_MAGIC);
        let put32 =
            |f: &mut Vec<u8>, at: usize, v: u32| f[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        put32(&mut f, off::F_VERSION, layout::FILE_VERSION);
        put32(&mut f, off::F_PID, pid);
        f[off::F_START_MONO..off::F_START_MONO + 8].copy_from_slice(&start_mono_ns.to_ne_bytes());
        let mut cmd = Vec::new();
        for a in cmdline {
            cmd.extend_from_slice(a.as_bytes());
            cmd.push(0);
        }
        cmd.truncate(layout::MAX_CMDLINE);
        put32(&mut f, off::F_CMDLINE_LEN, cmd.len() as u32);
        f[off::F_LEN..off::F_LEN + cmd.len()].copy_from_slice(&cmd);
        RawFileBuilder {
            bytes: f,
            open: Vec::new(),
        }
    }

    /// Appends `r` to `thread`'s stream, opening a chunk (of `chunk_len(seq)` bytes, named
    /// `name`) when the thread has none or its chunk is full.
    pub fn push(&mut self, thread: u32, name: &str, r: &RawRecord) -> &mut Self {
        let t = thread as usize;
        if self.open.len() <= t {
            self.open.resize(t + 1, None);
        }
        let full = match &self.open[t] {
            Some((_, at, _, pos)) => {
                let len = u32_at(&self.bytes, at + off::C_LEN) as usize;
                pos + crate::record::MAX_RECORD > at + len
            }
            None => true,
        };
        if full {
            let seq = self.open[t].as_ref().map_or(0, |o| o.0);
            let at = self.bytes.len();
            let len = layout::chunk_len(seq) as usize;
            self.bytes.resize(at + len, 0);
            let b = &mut self.bytes;
            b[at + off::C_MAGIC..at + off::C_MAGIC + 4].copy_from_slice(&CHUNK_MAGIC.to_ne_bytes());
            b[at + off::C_THREAD..at + off::C_THREAD + 4].copy_from_slice(&thread.to_ne_bytes());
            b[at + off::C_TID..at + off::C_TID + 4].copy_from_slice(&(1000 + thread).to_ne_bytes());
            b[at + off::C_SEQ..at + off::C_SEQ + 4].copy_from_slice(&seq.to_ne_bytes());
            b[at + off::C_LEN..at + off::C_LEN + 4].copy_from_slice(&(len as u32).to_ne_bytes());
            b[at + off::C_BASE_TIME..at + off::C_BASE_TIME + 8]
                .copy_from_slice(&r.time.to_ne_bytes());
            let n = name.len().min(15);
            b[at + off::C_NAME..at + off::C_NAME + n].copy_from_slice(&name.as_bytes()[..n]);
            self.open[t] = Some((
                seq + 1,
                at,
                crate::record::Encoder::new(r.time),
                at + CHUNK_HEADER_LEN,
            ));
            let threads = self.open.iter().flatten().count() as u32;
            let cur = u32_at(&self.bytes, off::F_THREADS).max(threads);
            self.bytes[off::F_THREADS..off::F_THREADS + 4].copy_from_slice(&cur.to_ne_bytes());
        }
        if let Some((_, _, enc, pos)) = self.open[t].as_mut() {
            let mut buf = [0u8; crate::record::MAX_RECORD];
            let n = enc.encode(r, &mut buf);
            self.bytes[*pos..*pos + n].copy_from_slice(&buf[..n]);
            *pos += n;
        }
        self
    }

    /// Marks the process as having exited normally at `end_mono_ns`.
    pub fn exited(&mut self, end_mono_ns: u64) -> &mut Self {
        let f = u32_at(&self.bytes, off::F_FLAGS) | layout::FLAG_EXITED;
        self.bytes[off::F_FLAGS..off::F_FLAGS + 4].copy_from_slice(&f.to_ne_bytes());
        self.bytes[off::F_END_MONO..off::F_END_MONO + 8]
            .copy_from_slice(&end_mono_ns.to_ne_bytes());
        self
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Encoder, Kind, MAX_RECORD};

    /// Builds a raw file by hand: header, then chunks as (thread, seq, records).
    fn build(chunks: &[(u32, u32, Vec<RawRecord>)], hole_after: Option<usize>) -> Vec<u8> {
        let mut f = vec![0u8; HEADER_LEN];
        f[..8].copy_from_slice(&layout::FILE_MAGIC);
        f[off::F_VERSION..off::F_VERSION + 4].copy_from_slice(&1u32.to_ne_bytes());
        f[off::F_PID..off::F_PID + 4].copy_from_slice(&42u32.to_ne_bytes());
        let cmd = b"ruby\0x.rb\0";
        f[off::F_CMDLINE_LEN..off::F_CMDLINE_LEN + 4]
            .copy_from_slice(&(cmd.len() as u32).to_ne_bytes());
        f[off::F_LEN..off::F_LEN + cmd.len()].copy_from_slice(cmd);
        for (i, (thread, seq, recs)) in chunks.iter().enumerate() {
            let at = f.len();
            let len = layout::chunk_len(*seq) as usize;
            f.resize(at + len, 0);
            f[at..at + 4].copy_from_slice(&CHUNK_MAGIC.to_ne_bytes());
            f[at + off::C_THREAD..at + off::C_THREAD + 4].copy_from_slice(&thread.to_ne_bytes());
            f[at + off::C_SEQ..at + off::C_SEQ + 4].copy_from_slice(&seq.to_ne_bytes());
            f[at + off::C_LEN..at + off::C_LEN + 4].copy_from_slice(&(len as u32).to_ne_bytes());
            f[at + off::C_BASE_TIME..at + off::C_BASE_TIME + 8]
                .copy_from_slice(&100u64.to_ne_bytes());
            f[at + off::C_NAME..at + off::C_NAME + 4].copy_from_slice(b"main");
            let mut e = Encoder::new(100);
            let mut p = at + CHUNK_HEADER_LEN;
            for r in recs {
                let mut buf = [0u8; MAX_RECORD];
                let n = e.encode(r, &mut buf);
                f[p..p + n].copy_from_slice(&buf[..n]);
                p += n;
            }
            if hole_after == Some(i) {
                f.resize(f.len() + CHUNK_ALIGN as usize, 0);
            }
        }
        f
    }

    fn malloc(t: u64, size: u64, addr: u64) -> RawRecord {
        let mut r = RawRecord::new(Kind::Malloc, t);
        r.size = size;
        r.addr = addr;
        r
    }

    #[test]
    fn chunks_are_grouped_by_thread_in_order_across_holes() {
        let f = build(
            &[
                (0, 0, vec![malloc(200, 8, 0x1000)]),
                (1, 0, vec![malloc(300, 16, 0x2000)]),
                (0, 1, vec![malloc(400, 24, 0x3000)]),
            ],
            Some(1),
        );
        let raw = RawFile::parse(&f).unwrap();
        assert_eq!(raw.pid, 42);
        assert_eq!(raw.cmdline, ["ruby", "x.rb"]);
        assert_eq!(raw.threads.len(), 2);
        assert_eq!(raw.threads[0].name, "main");
        let sizes: Vec<u64> = raw
            .records(&f, &raw.threads[0])
            .map(|r| r.unwrap().size)
            .collect();
        assert_eq!(sizes, [8, 24]);
        assert!(raw.problems.is_empty(), "{:?}", raw.problems);
    }

    #[test]
    fn damage_is_reported_and_reading_goes_on() {
        let mut f = build(
            &[
                (0, 0, vec![malloc(200, 8, 0x1000), malloc(210, 9, 0x1010)]),
                (0, 1, vec![malloc(400, 24, 0x3000)]),
                (0, 3, vec![malloc(500, 32, 0x4000)]),
            ],
            None,
        );
        // Corrupt the second record's kind byte of chunk 0.
        let first = HEADER_LEN + CHUNK_HEADER_LEN;
        let mut d = Decoder::new(100);
        let mut pos = first;
        d.decode(&f, &mut pos).unwrap();
        f[pos] = 99;
        let raw = RawFile::parse(&f).unwrap();
        assert!(
            raw.problems[0].contains("chunk 2 is missing"),
            "{:?}",
            raw.problems
        );
        let got: Vec<_> = raw.records(&f, &raw.threads[0]).collect();
        assert_eq!(got.len(), 4);
        assert!(got[1].is_err());
        assert!(got[1]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("unknown record kind 99"));
        assert_eq!(got[3].as_ref().unwrap().size, 32);

        assert_eq!(
            RawFile::parse(&f[..100]).unwrap_err(),
            RawFileError::Short { len: 100 }
        );
        let mut bad = f.clone();
        bad[0] = b'X';
        assert_eq!(RawFile::parse(&bad).unwrap_err(), RawFileError::Magic);
        // A file cut inside a chunk keeps the records before the cut.
        let cut = &f[..HEADER_LEN + CHUNK_HEADER_LEN + 3];
        let raw = RawFile::parse(cut).unwrap();
        assert!(raw
            .problems
            .iter()
            .any(|p| p.contains("ends inside the chunk")));
    }
}
