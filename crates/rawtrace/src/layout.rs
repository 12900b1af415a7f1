//! The byte layout of a raw file: the header page and the chunk header. The tracer writes these
//! structs in place in its shared file mapping; readers parse them by field offset.

use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU32, AtomicU64};

/// First bytes of a raw file.
pub const FILE_MAGIC: [u8; 8] = *b"LHRAW\0\0\0";
/// The raw format version this crate writes and reads.
pub const FILE_VERSION: u32 = 1;
/// Bytes of the header page; the first chunk starts here.
pub const HEADER_LEN: usize = 4096;
/// Chunks start at `HEADER_LEN` plus a multiple of this, and their lengths are multiples of it.
pub const CHUNK_ALIGN: u64 = 64 * 1024;
/// A thread's first chunk; each next one doubles, up to [`MAX_CHUNK`]. Small first chunks keep
/// short-lived threads cheap; large later ones make chunk switches (a few system calls) rare.
pub const FIRST_CHUNK: u32 = 64 * 1024;
pub const MAX_CHUNK: u32 = 1 << 20;
/// `LHCK`: the first word of a written chunk header (stored last, with release ordering).
pub const CHUNK_MAGIC: u32 = u32::from_le_bytes(*b"LHCK");
/// Bytes of a chunk header; records follow.
pub const CHUNK_HEADER_LEN: usize = 128;

/// `FileHeader::flags`: the process ran the tracer's exit hook (a normal `exit`); absent after
/// `_exit`, a crash or a kill.
pub const FLAG_EXITED: u32 = 1;
/// `FileHeader::flags`: a chunk could not be had (disk full, no memory): some thread stopped
/// recording early.
pub const FLAG_CHUNK_FAILED: u32 = 2;

/// The header page, at offset 0.
///
/// Invariant: `magic == FILE_MAGIC` iff the tracer finished writing the fixed fields (it stores
/// the magic last); the atomics change while the process runs.
#[repr(C)]
pub struct FileHeader {
    pub magic: [u8; 8],
    pub version: u32,
    pub pid: u32,
    pub ppid: u32,
    /// The pid this process was forked from, 0 if it was started by `exec`.
    pub forked_from: u32,
    /// `CLOCK_MONOTONIC` and `CLOCK_REALTIME` when tracing started, ns.
    pub start_mono_ns: u64,
    pub start_real_ns: u64,
    pub flags: AtomicU32,
    /// Bytes of the command line that follow this struct (NUL-separated arguments).
    pub cmdline_len: u32,
    /// `CLOCK_MONOTONIC` at exit (0 if the process never reached its exit hook), ns.
    pub end_mono_ns: AtomicU64,
    /// Calls the tracer passed on without recording: made while the tracer was busy on the same
    /// thread (a signal handler), after a thread's end, or before tracing started.
    pub untraced_calls: AtomicU64,
    /// Thread streams started so far (the next thread index).
    pub threads: AtomicU32,
    pub _pad: u32,
}

/// Room for the command line after the header struct.
pub const MAX_CMDLINE: usize = HEADER_LEN - size_of::<FileHeader>();

/// The start of a chunk: whose records follow, and (for the tracer) the thread's writing state.
///
/// Invariant: `magic == CHUNK_MAGIC` iff `thread`, `tid`, `seq`, `len`, `base_time` and `name`
/// are written. Records start at [`CHUNK_HEADER_LEN`]; they end at the first zero byte where a
/// record's kind would be, or at `len`.
#[repr(C)]
pub struct ChunkHeader {
    pub magic: AtomicU32,
    /// The thread's index in this process: 0, 1, 2... in the order threads first called the
    /// allocator.
    pub thread: u32,
    /// The kernel's thread id.
    pub tid: u32,
    /// 0 for the thread's first chunk, then 1, 2...
    pub seq: u32,
    /// Bytes of this chunk, header included.
    pub len: u32,
    pub _reserved: u32,
    /// The time the first record's delta counts from, `CLOCK_MONOTONIC` ns.
    pub base_time: u64,
    /// The thread's name when its stream started (`PR_GET_NAME`), NUL-padded.
    pub name: [u8; 16],
    // The tracer's per-thread state lives here too (readers ignore it): the write position, the
    // encoder's previous time and address, destructor rounds seen, and a busy flag.
    pub pos: u32,
    pub rounds: u32,
    pub busy: u32,
    pub _pad: u32,
    pub prev_time: u64,
    pub prev_addr: u64,
}

const _: () = assert!(size_of::<ChunkHeader>() <= CHUNK_HEADER_LEN);
const _: () = assert!(size_of::<FileHeader>() < 512);

/// Field offsets for readers.
pub(crate) mod off {
    use super::*;
    pub const F_VERSION: usize = offset_of!(FileHeader, version);
    pub const F_PID: usize = offset_of!(FileHeader, pid);
    pub const F_PPID: usize = offset_of!(FileHeader, ppid);
    pub const F_FORKED_FROM: usize = offset_of!(FileHeader, forked_from);
    pub const F_START_MONO: usize = offset_of!(FileHeader, start_mono_ns);
    pub const F_START_REAL: usize = offset_of!(FileHeader, start_real_ns);
    pub const F_FLAGS: usize = offset_of!(FileHeader, flags);
    pub const F_CMDLINE_LEN: usize = offset_of!(FileHeader, cmdline_len);
    pub const F_END_MONO: usize = offset_of!(FileHeader, end_mono_ns);
    pub const F_UNTRACED: usize = offset_of!(FileHeader, untraced_calls);
    pub const F_THREADS: usize = offset_of!(FileHeader, threads);
    pub const F_LEN: usize = size_of::<FileHeader>();
    pub const C_MAGIC: usize = offset_of!(ChunkHeader, magic);
    pub const C_THREAD: usize = offset_of!(ChunkHeader, thread);
    pub const C_TID: usize = offset_of!(ChunkHeader, tid);
    pub const C_SEQ: usize = offset_of!(ChunkHeader, seq);
    pub const C_LEN: usize = offset_of!(ChunkHeader, len);
    pub const C_BASE_TIME: usize = offset_of!(ChunkHeader, base_time);
    pub const C_NAME: usize = offset_of!(ChunkHeader, name);
}

/// The size of chunk number `seq` of a thread.
pub const fn chunk_len(seq: u32) -> u32 {
    let shift = if seq > 4 { 4 } else { seq };
    let len = FIRST_CHUNK << shift;
    if len > MAX_CHUNK {
        MAX_CHUNK
    } else {
        len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_lengths_double_to_the_cap_and_stay_aligned() {
        assert_eq!(chunk_len(0), 64 * 1024);
        assert_eq!(chunk_len(1), 128 * 1024);
        assert_eq!(chunk_len(4), 1 << 20);
        assert_eq!(chunk_len(1000), 1 << 20);
        for s in 0..10 {
            assert_eq!(chunk_len(s) as u64 % CHUNK_ALIGN, 0);
        }
        assert_eq!(HEADER_LEN as u64 % 4096, 0);
    }
}
