//! Converting a **recording** (the tracer's raw per-thread records, `rawtrace`) into a trace:
//! addresses become block ids, the threads' streams are merged into one order, time gaps
//! become `Resume` events, and thread exits become `ThreadEnd`.
//!
//! Order: each thread's records are in program order with non-decreasing times. The merge
//! always takes the earliest pending *action* of any thread: an allocation at the time its call
//! returned, a free at the time its call began, a realloc in two actions (its old block is
//! released when the call began, its result claimed when it returned). Since the tracer reads
//! one system-wide clock, a free always comes before a later allocation that returns the same
//! address on another thread; ties put releases first. So the trace's order agrees with every
//! thread's own order and with address reuse.
//!
//! Block ids: a slot per live block, reused after its free (each thread reuses the slots it
//! freed itself, most recent first, so a replay thread rarely waits for another; surplus goes to
//! a shared pool, oldest first), generations advancing as `workload::event` documents. Memory is
//! bounded by the blocks alive at once, not by the recording's length: the raw file is mapped,
//! not loaded.
//!
//! What cannot be mapped is counted, not guessed: a free of an address never allocated while
//! tracing (memory from before the tracer started) is dropped; an allocation returning an
//! address that is still live (its free was not seen) first frees the old block.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use rawtrace::file::Records;
use rawtrace::{Kind, RawFile, RawRecord};
use serde::Serialize;
use workload::trace::{TraceMeta, TraceWriter};
use workload::{BlockRef, Event, ThreadId};

/// Default for [`ConvertOptions::min_gap_ns`]: a thread that makes no call for longer than this
/// gets a `Resume` (a timed wait in the replay). Shorter gaps are CPU work between calls, which a
/// replay does not reproduce anyway, and a sleep shorter than ~100 µs is mostly timer overhead.
pub const DEFAULT_MIN_GAP_NS: u64 = 100_000;
/// Bytes of header room for the report, besides 256 per thread.
const RECORDING_ROOM: usize = 8192;
/// Problems listed in the report at most (the rest are counted).
const MAX_PROBLEMS: usize = 20;
/// A thread keeps at most this many freed slots for itself; more go to the shared pool.
const OWN_FREE_SLOTS: usize = 256;

/// Why a recording could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("cannot read the raw recording {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("raw recording {path}: {error}")]
    Raw {
        path: PathBuf,
        error: rawtrace::RawFileError,
    },
    #[error("cannot write the trace {path}: {error}")]
    Write {
        path: PathBuf,
        error: workload::TraceError,
    },
}

/// How to convert.
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    pub min_gap_ns: u64,
    /// How the recorded program ended, in words (stored in the report).
    pub program_exit: Option<String>,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            min_gap_ns: DEFAULT_MIN_GAP_NS,
            program_exit: None,
        }
    }
}

/// One thread of the trace: its id, and who it was in the program.
#[derive(Clone, Debug, Serialize)]
pub struct ThreadInfo {
    pub id: ThreadId,
    pub tid: u32,
    pub name: String,
    pub events: u64,
    pub ended: bool,
}

/// What a conversion did; also stored in the trace header's `recording` field.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ConvertReport {
    pub pid: u32,
    /// How the program ended (`exit status 0`, `killed by SIGKILL`), when known.
    pub program_exit: Option<String>,
    /// The program ran its exit handlers (`exit`); false after `_exit`, a crash or a kill.
    pub exited: bool,
    pub duration_s: f64,
    /// malloc-family calls read from the raw file.
    pub calls: u64,
    /// Events written (calls, `Resume`s and `ThreadEnd`s).
    pub events: u64,
    pub resumes: u64,
    pub thread_ends: u64,
    pub threads: Vec<ThreadInfo>,
    /// Frees (and reallocs) of addresses never allocated while tracing: dropped.
    pub unknown_frees: u64,
    /// Allocations that returned an address still live in the recording: the old block was
    /// freed first (a free the tracer did not see).
    pub implicit_frees: u64,
    /// Allocations that returned NULL.
    pub failed_allocations: u64,
    /// Calls the tracer passed on without recording (during its start-up, in a signal handler
    /// interrupting it, after a thread's end).
    pub untraced_calls: u64,
    pub live_blocks_at_end: u64,
    pub live_bytes_at_end: u64,
    pub peak_live_bytes: u64,
    /// Slots the trace uses (the replay's block table extent).
    pub slots: u64,
    pub min_gap_ns: u64,
    /// Damage found in the raw file (chunks lost or cut), in words.
    pub problems: Vec<String>,
    pub raw_bytes: u64,
    pub trace_bytes: u64,
}

/// A live block of the recording.
#[derive(Clone, Copy)]
struct Live {
    block: BlockRef,
    size: u64,
}

/// A fast hasher for addresses (allocator addresses are 16-byte aligned, so the low bits are
/// mixed in by a multiply).
#[derive(Default)]
struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 ^= self.0 >> 32;
    }
}

type AddrMap = HashMap<u64, Live, BuildHasherDefault<AddrHasher>>;

/// Slot bookkeeping: see the module documentation.
#[derive(Default)]
struct Slots {
    /// Generation of each slot's next allocation.
    next_gen: Vec<u16>,
    own: Vec<Vec<u32>>,
    shared: VecDeque<u32>,
}

impl Slots {
    fn take(&mut self, thread: usize) -> BlockRef {
        if self.own.len() <= thread {
            self.own.resize_with(thread + 1, Vec::new);
        }
        let slot = match self.own[thread].pop().or_else(|| self.shared.pop_front()) {
            Some(s) => s,
            None => {
                self.next_gen.push(0);
                (self.next_gen.len() - 1) as u32
            }
        };
        BlockRef {
            slot,
            gen: self.next_gen[slot as usize],
        }
    }

    fn give_back(&mut self, thread: usize, b: BlockRef) {
        self.next_gen[b.slot as usize] = b.gen.wrapping_add(1);
        if self.own.len() <= thread {
            self.own.resize_with(thread + 1, Vec::new);
        }
        let own = &mut self.own[thread];
        own.push(b.slot);
        if own.len() > OWN_FREE_SLOTS {
            self.shared.extend(own.drain(..OWN_FREE_SLOTS / 2));
        }
    }
}

/// One thread's position in the merge.
struct Cursor<'a> {
    records: Records<'a>,
    head: Option<RawRecord>,
    /// The head is a realloc whose old block was already released (its second action is due).
    realloc_released: Option<Option<Live>>,
    /// The trace's id, once the thread has made an event.
    id: Option<ThreadId>,
    last_time: u64,
    info: usize,
    /// Index of the thread's stream in the raw file.
    stream: usize,
}

/// Converts the raw file at `raw_path` into a trace at `out`; `meta` carries what the caller
/// knows (command, start time, machine); threads, events and `recording` are filled in here.
pub fn convert(
    raw_path: &Path,
    out: &Path,
    mut meta: TraceMeta,
    opts: &ConvertOptions,
) -> Result<ConvertReport, ConvertError> {
    let read_err = |error| ConvertError::Read {
        path: raw_path.to_path_buf(),
        error,
    };
    let file = File::open(raw_path).map_err(read_err)?;
    // SAFETY: the mapping is read-only and the file is not written while we read it (the traced
    // program has ended); a file cut under us would end reads with SIGBUS, not corrupt memory.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(read_err)?;
    let bytes: &[u8] = &map;
    let raw = RawFile::parse(bytes).map_err(|error| ConvertError::Raw {
        path: raw_path.to_path_buf(),
        error,
    })?;
    let write_err = |error| ConvertError::Write {
        path: out.to_path_buf(),
        error,
    };
    let out_file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(out)
        .map_err(|e| write_err(e.into()))?;
    // Placeholders as long as any real value: the header is rewritten at the end.
    meta.threads = raw.threads.len().saturating_sub(1) as u32;
    meta.events = Some(u64::MAX);
    meta.origin = "recorded".into();
    // Room for the report written at the end (a line per thread, a few problems).
    meta.recording = Some(serde_json::Value::String(
        " ".repeat(RECORDING_ROOM + 256 * raw.threads.len()),
    ));
    let mut w =
        TraceWriter::new(BufWriter::with_capacity(1 << 20, out_file), &meta).map_err(write_err)?;
    let mut conv = Converter::new(&raw, opts);
    let mut cursors: Vec<Cursor> = raw
        .threads
        .iter()
        .map(|s| Cursor {
            records: raw.records(bytes, s),
            head: None,
            realloc_released: None,
            id: None,
            last_time: 0,
            info: usize::MAX,
            stream: 0,
        })
        .collect();
    let mut heap = BinaryHeap::with_capacity(cursors.len());
    for (i, c) in cursors.iter_mut().enumerate() {
        c.stream = i;
        if let Some(key) = conv.advance(c) {
            heap.push(Reverse((key, i)));
        }
    }
    while let Some(Reverse((_, i))) = heap.pop() {
        let c = &mut cursors[i];
        conv.act(c, &mut w).map_err(write_err)?;
        if let Some(key) = conv.next_key(c) {
            heap.push(Reverse((key, i)));
        }
    }
    let mut report = conv.finish(&raw);
    report.events = w.events();
    let out_file = w
        .finish()
        .map_err(write_err)?
        .into_inner()
        .map_err(|e| write_err(e.into_error().into()))?;
    meta.threads = report.threads.len().saturating_sub(1) as u32;
    meta.events = Some(report.events);
    report.raw_bytes = bytes.len() as u64;
    report.trace_bytes = out_file.metadata().map(|m| m.len()).unwrap_or(0);
    meta.recording = serde_json::to_value(&report).ok();
    let mut out_file = out_file;
    workload::trace::rewrite_meta(&mut out_file, &meta).map_err(write_err)?;
    Ok(report)
}

/// Merge state shared by all cursors.
struct Converter {
    start: u64,
    min_gap_ns: u64,
    addrs: AddrMap,
    slots: Slots,
    live_bytes: u64,
    report: ConvertReport,
    tids: Vec<(u32, String)>,
    /// The latest event time written, ns since the start of the recording.
    latest: u64,
}

/// Sort key of an action: time, then releases before claims, then thread index.
type Key = (u64, u8);

impl Converter {
    fn new(raw: &RawFile, opts: &ConvertOptions) -> Converter {
        Converter {
            start: raw.start_mono_ns,
            min_gap_ns: opts.min_gap_ns,
            addrs: AddrMap::default(),
            slots: Slots::default(),
            live_bytes: 0,
            report: ConvertReport {
                pid: raw.pid,
                program_exit: opts.program_exit.clone(),
                exited: raw.exited(),
                untraced_calls: raw.untraced_calls,
                min_gap_ns: opts.min_gap_ns,
                problems: raw.problems.iter().take(MAX_PROBLEMS).cloned().collect(),
                ..ConvertReport::default()
            },
            tids: raw
                .threads
                .iter()
                .map(|s| (s.tid, s.name.clone()))
                .collect(),
            latest: 0,
        }
    }

    fn problem(&mut self, p: String) {
        match self.report.problems.len() {
            n if n < MAX_PROBLEMS => self.report.problems.push(p),
            n if n == MAX_PROBLEMS => self
                .report
                .problems
                .push("more problems follow (not listed)".into()),
            _ => {}
        }
    }

    /// Reads the cursor's next record; returns its first action's key.
    fn advance(&mut self, c: &mut Cursor) -> Option<Key> {
        loop {
            match c.records.next()? {
                Ok(r) => {
                    c.head = Some(r);
                    self.report.calls += (r.kind != Kind::ThreadEnd) as u64;
                    return Some(Self::key_of(&r, false));
                }
                Err(e) => self.problem(e.to_string()),
            }
        }
    }

    fn key_of(r: &RawRecord, released: bool) -> Key {
        match r.kind {
            Kind::Free => (r.time, 0),
            Kind::Realloc if !released => (r.time, 0),
            Kind::Realloc => (r.end_time, 1),
            _ => (r.time, 1),
        }
    }

    /// The key of the cursor's next action after [`Converter::act`].
    fn next_key(&mut self, c: &mut Cursor) -> Option<Key> {
        match (&c.head, &c.realloc_released) {
            (Some(r), Some(_)) => Some(Self::key_of(r, true)),
            _ => self.advance(c),
        }
    }

    /// Performs the cursor's pending action.
    fn act<W: std::io::Write>(
        &mut self,
        c: &mut Cursor,
        w: &mut TraceWriter<W>,
    ) -> Result<(), workload::TraceError> {
        let Some(r) = c.head else {
            return Ok(());
        };
        match r.kind {
            Kind::Free => {
                c.head = None;
                match self.addrs.remove(&r.addr) {
                    Some(l) => self.free(c, l, r.time, w)?,
                    None => self.report.unknown_frees += 1,
                }
            }
            Kind::Realloc => match c.realloc_released.take() {
                None => {
                    // First action: the old block stops being reachable by its address.
                    let old = if r.old_addr == 0 {
                        None
                    } else {
                        let l = self.addrs.remove(&r.old_addr);
                        if l.is_none() {
                            self.report.unknown_frees += 1;
                        }
                        l
                    };
                    c.realloc_released = Some(old);
                }
                Some(old) => {
                    c.head = None;
                    let t = r.end_time;
                    match (old, r.addr) {
                        (Some(l), 0) if r.size == 0 => self.free(c, l, t, w)?,
                        (Some(l), 0) => {
                            // Failed: the old block is intact.
                            self.report.failed_allocations += 1;
                            self.addrs.insert(r.old_addr, l);
                        }
                        (None, 0) => self.report.failed_allocations += (r.size > 0) as u64,
                        (Some(l), new) => {
                            self.claim_addr(c, new, t, w)?;
                            let id = self.thread_id(c);
                            self.emit(
                                c,
                                t,
                                &Event::Realloc {
                                    thread: id,
                                    block: l.block,
                                    old_size: l.size,
                                    new_size: r.size,
                                },
                                w,
                            )?;
                            self.live_bytes = self.live_bytes - l.size + r.size;
                            self.peak();
                            let block = BlockRef {
                                slot: l.block.slot,
                                gen: l.block.gen.wrapping_add(1),
                            };
                            self.addrs.insert(
                                new,
                                Live {
                                    block,
                                    size: r.size,
                                },
                            );
                        }
                        (None, new) => self.allocate(c, Kind::Malloc, new, r.size, 0, t, w)?,
                    }
                }
            },
            Kind::ThreadEnd => {
                c.head = None;
                if let Some(id) = c.id {
                    self.emit(c, r.time, &Event::ThreadEnd { thread: id }, w)?;
                    self.report.thread_ends += 1;
                    self.report.threads[c.info].ended = true;
                }
            }
            kind => {
                c.head = None;
                if r.addr == 0 {
                    self.report.failed_allocations += 1;
                } else {
                    self.allocate(c, kind, r.addr, r.size, r.align, r.time, w)?;
                }
            }
        }
        Ok(())
    }

    /// The trace's id of the cursor's thread, given at its first event.
    fn thread_id(&mut self, c: &mut Cursor) -> ThreadId {
        if let Some(id) = c.id {
            return id;
        }
        let id = self.report.threads.len() as ThreadId;
        c.id = Some(id);
        c.info = self.report.threads.len();
        let (tid, name) = self.tids.get(c.stream).cloned().unwrap_or_default();
        self.report.threads.push(ThreadInfo {
            id,
            tid,
            name,
            events: 0,
            ended: false,
        });
        id
    }

    /// Writes `e` (at recording time `time`), preceded by a `Resume` if the thread was quiet
    /// for longer than the gap threshold.
    fn emit<W: std::io::Write>(
        &mut self,
        c: &mut Cursor,
        time: u64,
        e: &Event,
        w: &mut TraceWriter<W>,
    ) -> Result<(), workload::TraceError> {
        let t = time.saturating_sub(self.start);
        let id = e.thread();
        let first = self.report.threads[c.info].events == 0;
        let gap = t.saturating_sub(if first { 0 } else { c.last_time });
        if gap > self.min_gap_ns {
            w.write_at(
                t,
                &Event::Resume {
                    thread: id,
                    at_ns: t,
                },
            )?;
            self.report.resumes += 1;
        }
        w.write_at(t, e)?;
        c.last_time = c.last_time.max(t);
        self.latest = self.latest.max(t);
        self.report.threads[c.info].events += 1;
        Ok(())
    }

    /// An allocation returned `addr`: if that address is still live, its free was not seen;
    /// free it first.
    fn claim_addr<W: std::io::Write>(
        &mut self,
        c: &mut Cursor,
        addr: u64,
        time: u64,
        w: &mut TraceWriter<W>,
    ) -> Result<(), workload::TraceError> {
        if let Some(l) = self.addrs.remove(&addr) {
            self.report.implicit_frees += 1;
            self.free(c, l, time, w)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn allocate<W: std::io::Write>(
        &mut self,
        c: &mut Cursor,
        kind: Kind,
        addr: u64,
        size: u64,
        align: u64,
        time: u64,
        w: &mut TraceWriter<W>,
    ) -> Result<(), workload::TraceError> {
        self.claim_addr(c, addr, time, w)?;
        let thread = self.thread_id(c);
        let block = self.slots.take(thread as usize);
        let e = match kind {
            Kind::Calloc => Event::Calloc {
                thread,
                block,
                size,
            },
            k if k.is_aligned() && align > 16 => Event::Aligned {
                thread,
                block,
                size,
                align,
            },
            _ => Event::Malloc {
                thread,
                block,
                size,
            },
        };
        self.emit(c, time, &e, w)?;
        self.addrs.insert(addr, Live { block, size });
        self.live_bytes += size;
        self.peak();
        Ok(())
    }

    fn free<W: std::io::Write>(
        &mut self,
        c: &mut Cursor,
        l: Live,
        time: u64,
        w: &mut TraceWriter<W>,
    ) -> Result<(), workload::TraceError> {
        let thread = self.thread_id(c);
        self.emit(
            c,
            time,
            &Event::Free {
                thread,
                block: l.block,
                size: l.size,
            },
            w,
        )?;
        self.slots.give_back(thread as usize, l.block);
        self.live_bytes -= l.size;
        Ok(())
    }

    fn peak(&mut self) {
        self.report.peak_live_bytes = self.report.peak_live_bytes.max(self.live_bytes);
    }

    fn finish(mut self, raw: &RawFile) -> ConvertReport {
        let end = raw.end_mono_ns.saturating_sub(raw.start_mono_ns);
        self.report.duration_s = end.max(self.latest) as f64 / 1e9;
        self.report.live_blocks_at_end = self.addrs.len() as u64;
        self.report.live_bytes_at_end = self.live_bytes;
        self.report.slots = self.slots.next_gen.len() as u64;
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rawtrace::RawFileBuilder;
    use workload::trace::TraceReader;

    fn rec(kind: Kind, time: u64, size: u64, addr: u64) -> RawRecord {
        let mut r = RawRecord::new(kind, time);
        r.size = size;
        r.addr = addr;
        r
    }

    fn realloc(t0: u64, t1: u64, old: u64, size: u64, new: u64) -> RawRecord {
        let mut r = RawRecord::new(Kind::Realloc, t0);
        r.end_time = t1;
        r.old_addr = old;
        r.size = size;
        r.addr = new;
        r
    }

    /// Converts the built file; returns the events (without times) and the report.
    fn run(b: &RawFileBuilder, min_gap_ns: u64) -> (Vec<Event>, ConvertReport, TraceMeta) {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("1.lhraw");
        std::fs::write(&raw, b.bytes()).unwrap();
        let out = dir.path().join("t.lhtrace");
        let opts = ConvertOptions {
            min_gap_ns,
            program_exit: None,
        };
        let report = convert(&raw, &out, TraceMeta::default(), &opts).unwrap();
        let f = File::open(&out).unwrap();
        let mut r = TraceReader::new(std::io::BufReader::new(f)).unwrap();
        let meta = r.header().meta.clone();
        let events = r.by_ref().map(|x| x.unwrap().1).collect();
        (events, report, meta)
    }

    fn b(slot: u32, gen: u16) -> BlockRef {
        BlockRef { slot, gen }
    }

    #[test]
    fn a_free_comes_before_the_malloc_that_reuses_its_address_on_another_thread() {
        let mut f = RawFileBuilder::new(1, 1_000, &["prog"]);
        f.push(0, "main", &rec(Kind::Malloc, 1_010, 64, 0xa0));
        // Thread 1 gets 0xa0 back at 1_030, after thread 0 freed it at 1_020; thread 0's
        // stream is listed first but its free must come first in the trace either way.
        f.push(1, "w", &rec(Kind::Malloc, 1_030, 32, 0xa0));
        f.push(0, "main", &rec(Kind::Free, 1_020, 0, 0xa0));
        f.push(1, "w", &rec(Kind::Free, 1_040, 0, 0xa0));
        f.exited(2_000);
        let (ev, rep, meta) = run(&f, u64::MAX);
        assert_eq!(
            ev,
            vec![
                Event::Malloc {
                    thread: 0,
                    block: b(0, 0),
                    size: 64
                },
                Event::Free {
                    thread: 0,
                    block: b(0, 0),
                    size: 64
                },
                Event::Malloc {
                    thread: 1,
                    block: b(1, 0),
                    size: 32
                },
                Event::Free {
                    thread: 1,
                    block: b(1, 0),
                    size: 32
                },
            ]
        );
        assert_eq!((rep.implicit_frees, rep.unknown_frees), (0, 0));
        assert_eq!(meta.threads, 1);
        assert_eq!(meta.events, Some(4));
        assert_eq!(meta.origin, "recorded");
        assert!(rep.exited);
        assert_eq!(rep.live_bytes_at_end, 0);
    }

    #[test]
    fn a_moving_realloc_releases_its_old_address_when_it_starts() {
        let mut f = RawFileBuilder::new(1, 0, &["prog"]);
        f.push(0, "a", &rec(Kind::Malloc, 10, 100, 0x100));
        // Realloc runs 20..40 and moves 0x100 -> 0x200; thread 1 gets 0x100 at 30.
        f.push(0, "a", &realloc(20, 40, 0x100, 5000, 0x200));
        f.push(1, "b", &rec(Kind::Malloc, 30, 100, 0x100));
        // realloc(NULL, n) is a malloc, realloc(p, 0) returning NULL is a free.
        f.push(1, "b", &realloc(50, 51, 0, 7, 0x300));
        f.push(1, "b", &realloc(60, 61, 0x300, 0, 0));
        // A failed realloc leaves the block as it was.
        f.push(0, "a", &realloc(70, 71, 0x200, 1 << 50, 0));
        f.push(0, "a", &rec(Kind::Free, 80, 0, 0x200));
        let (ev, rep, _) = run(&f, u64::MAX);
        assert_eq!(
            ev,
            vec![
                Event::Malloc {
                    thread: 0,
                    block: b(0, 0),
                    size: 100
                },
                Event::Malloc {
                    thread: 1,
                    block: b(1, 0),
                    size: 100
                },
                Event::Realloc {
                    thread: 0,
                    block: b(0, 0),
                    old_size: 100,
                    new_size: 5000
                },
                Event::Malloc {
                    thread: 1,
                    block: b(2, 0),
                    size: 7
                },
                Event::Free {
                    thread: 1,
                    block: b(2, 0),
                    size: 7
                },
                Event::Free {
                    thread: 0,
                    block: b(0, 1),
                    size: 5000
                },
            ]
        );
        assert_eq!(rep.failed_allocations, 1);
        assert_eq!(rep.live_bytes_at_end, 100);
        assert_eq!(rep.live_blocks_at_end, 1);
        assert_eq!(rep.calls, 7);
    }

    #[test]
    fn unknown_frees_are_dropped_and_missed_frees_are_made_up() {
        let mut f = RawFileBuilder::new(1, 0, &["prog"]);
        f.push(0, "a", &rec(Kind::Free, 5, 0, 0xdead0));
        f.push(0, "a", &rec(Kind::Malloc, 10, 8, 0x10));
        // 0x10 comes back without a free in between (a free the tracer did not see).
        f.push(0, "a", &rec(Kind::Calloc, 20, 16, 0x10));
        let mut al = rec(Kind::PosixMemalign, 30, 100, 0x1000);
        al.align = 4096;
        f.push(0, "a", &al);
        let mut small = rec(Kind::Memalign, 40, 24, 0x2000);
        small.align = 8;
        f.push(0, "a", &small);
        f.push(0, "a", &rec(Kind::Malloc, 50, 1 << 40, 0)); // failed
        let (ev, rep, _) = run(&f, u64::MAX);
        assert_eq!(
            ev,
            vec![
                Event::Malloc {
                    thread: 0,
                    block: b(0, 0),
                    size: 8
                },
                Event::Free {
                    thread: 0,
                    block: b(0, 0),
                    size: 8
                },
                Event::Calloc {
                    thread: 0,
                    block: b(0, 1),
                    size: 16
                },
                Event::Aligned {
                    thread: 0,
                    block: b(1, 0),
                    size: 100,
                    align: 4096
                },
                Event::Malloc {
                    thread: 0,
                    block: b(2, 0),
                    size: 24
                },
            ]
        );
        assert_eq!(rep.unknown_frees, 1);
        assert_eq!(rep.implicit_frees, 1);
        assert_eq!(rep.failed_allocations, 1);
    }

    #[test]
    fn gaps_become_resumes_and_exits_become_thread_ends() {
        let start = 1_000_000;
        let mut f = RawFileBuilder::new(1, start, &["prog"]);
        f.push(0, "a", &rec(Kind::Malloc, start + 10, 8, 0x10));
        f.push(0, "a", &rec(Kind::Free, start + 50, 0, 0x10));
        // 2 ms later: a Resume at the recording's time.
        f.push(0, "a", &rec(Kind::Malloc, start + 2_000_050, 8, 0x10));
        // Thread 1 starts 5 ms in: its first event gets a Resume too.
        f.push(1, "b", &rec(Kind::Malloc, start + 5_000_000, 8, 0x20));
        f.push(1, "b", &RawRecord::new(Kind::ThreadEnd, start + 5_000_100));
        // A thread whose only record is its end makes no event.
        f.push(2, "c", &RawRecord::new(Kind::ThreadEnd, start + 6_000_000));
        let (ev, rep, meta) = run(&f, 100_000);
        assert_eq!(
            ev,
            vec![
                Event::Malloc {
                    thread: 0,
                    block: b(0, 0),
                    size: 8
                },
                Event::Free {
                    thread: 0,
                    block: b(0, 0),
                    size: 8
                },
                Event::Resume {
                    thread: 0,
                    at_ns: 2_000_050
                },
                Event::Malloc {
                    thread: 0,
                    block: b(0, 1),
                    size: 8
                },
                Event::Resume {
                    thread: 1,
                    at_ns: 5_000_000
                },
                Event::Malloc {
                    thread: 1,
                    block: b(1, 0),
                    size: 8
                },
                Event::ThreadEnd { thread: 1 },
            ]
        );
        assert_eq!((rep.resumes, rep.thread_ends), (2, 1));
        assert!(rep.threads[1].ended && !rep.threads[0].ended);
        assert_eq!(rep.threads[1].name, "b");
        assert_eq!(meta.threads, 1, "thread c made no event");
        assert!(!rep.exited);
        let recorded = meta.recording.unwrap();
        assert_eq!(recorded["threads"][1]["name"], "b");
    }

    #[test]
    fn slots_are_reused_by_the_thread_that_freed_them() {
        let mut s = Slots::default();
        let a = s.take(0);
        let c = s.take(1);
        assert_eq!((a, c), (b(0, 0), b(1, 0)));
        // Thread 1 frees thread 0's block: thread 1 reuses that slot next, at the next
        // generation; thread 0 gets a fresh one.
        s.give_back(1, a);
        assert_eq!(s.take(0), b(2, 0));
        assert_eq!(s.take(1), b(0, 1));
        // A thread holding too many freed slots passes the oldest to the shared pool.
        let many: Vec<BlockRef> = (0..OWN_FREE_SLOTS + 1).map(|_| s.take(3)).collect();
        for x in &many {
            s.give_back(3, *x);
        }
        assert_eq!(
            s.take(4),
            BlockRef {
                slot: many[0].slot,
                gen: 1
            }
        );
    }
}
