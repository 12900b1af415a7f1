//! A thread's **record stream**: the chunk it currently writes to, reached through a pthread
//! key (thread-specific data for keys below 32 lives inside the thread's descriptor, so reading
//! and writing it never allocates; the key is made at start-up, among the first). The chunk
//! header doubles as the thread's writing state (see `rawtrace::ChunkHeader`).
//!
//! Thread exit: the key's destructor runs when the thread ends. It re-arms itself for each of
//! glibc's destructor rounds (`PTHREAD_DESTRUCTOR_ITERATIONS` = 4), so that other keys'
//! destructors, which may still free memory, are recorded; in the last round it writes the
//! thread-end record and unmaps the chunk. The main thread has no such end: `exit` does not run
//! destructors of thread-specific data.

use core::ffi::c_void;
use core::sync::atomic::{compiler_fence, AtomicU32, AtomicUsize, Ordering};

use rawtrace::layout::{chunk_len, ChunkHeader, CHUNK_HEADER_LEN, CHUNK_MAGIC};
use rawtrace::{Encoder, Kind, RawRecord, MAX_RECORD};

use crate::{output, sys};

static KEY: AtomicU32 = AtomicU32::new(0);
/// Key values below this are markers, not chunks.
const MARKERS: usize = 16;
/// The thread's stream has ended (thread exit) or failed (no chunk could be had).
const ENDED: usize = 1;
const FAILED: usize = 2;
/// The thread is forking: its calls are not recorded until the fork returns.
const PARKED: usize = 3;
/// glibc's `PTHREAD_DESTRUCTOR_ITERATIONS`.
const DESTRUCTOR_ROUNDS: u32 = 4;

/// The parked chunk of the forking thread (one fork at a time: glibc holds its fork-handler
/// lock from the prepare handler to the parent or child handler).
static PARKED_CHUNK: AtomicUsize = AtomicUsize::new(0);

/// Creates the key; false if the C library has none left.
pub fn init() -> bool {
    let mut k: libc::pthread_key_t = 0;
    // SAFETY: a valid out-pointer and a destructor that never unwinds.
    let ok = unsafe { libc::pthread_key_create(&mut k, Some(thread_exit)) } == 0;
    KEY.store(k, Ordering::Relaxed);
    ok
}

#[inline(always)]
fn get() -> usize {
    // SAFETY: the key was created in `init` before tracing turned on; getspecific has no other
    // precondition and does not allocate.
    unsafe { libc::pthread_getspecific(KEY.load(Ordering::Relaxed)) as usize }
}

#[inline(always)]
fn set(v: usize) {
    // SAFETY: as in `get`; for a key below 32 setspecific stores into the thread descriptor.
    unsafe { libc::pthread_setspecific(KEY.load(Ordering::Relaxed), v as *const c_void) };
}

/// Records `r` on the calling thread's stream (starting the stream on its first call).
#[inline]
pub fn record(r: &RawRecord) {
    let v = get();
    let h = if v >= MARKERS {
        v as *mut ChunkHeader
    } else if v == 0 {
        match start() {
            Some(h) => h,
            None => return,
        }
    } else {
        output::untraced();
        return;
    };
    // SAFETY: `h` is this thread's current chunk (only this thread writes it).
    unsafe { write(h, r) };
}

/// Starts the calling thread's stream: a thread index, a first chunk.
#[cold]
fn start() -> Option<*mut ChunkHeader> {
    let Some(file) = output::header() else {
        output::untraced();
        return None;
    };
    let thread = file.threads.fetch_add(1, Ordering::Relaxed);
    // SAFETY: opening a chunk for this thread; it is ours alone.
    let h = unsafe { open_chunk(thread, sys::tid(), sys::thread_name(), 0, sys::now_ns(), 0) };
    if h.is_null() {
        set(FAILED);
        return None;
    }
    set(h as usize);
    Some(h)
}

/// Maps chunk number `seq` of `thread` and writes its header.
///
/// # Safety
/// Called by the thread whose stream it is.
unsafe fn open_chunk(
    thread: u32,
    tid: u32,
    name: [u8; 16],
    seq: u32,
    base_time: u64,
    rounds: u32,
) -> *mut ChunkHeader {
    let len = chunk_len(seq);
    let p = output::new_chunk(len);
    if p.is_null() {
        return core::ptr::null_mut();
    }
    let h = p as *mut ChunkHeader;
    // SAFETY: `p` is a fresh, zeroed, writable mapping of `len` >= CHUNK_HEADER_LEN bytes that
    // only this thread knows.
    unsafe {
        (*h).thread = thread;
        (*h).tid = tid;
        (*h).seq = seq;
        (*h).len = len;
        (*h).base_time = base_time;
        (*h).name = name;
        (*h).pos = CHUNK_HEADER_LEN as u32;
        (*h).rounds = rounds;
        (*h).prev_time = base_time;
        (*h).prev_addr = 0;
        (*h).magic.store(CHUNK_MAGIC, Ordering::Release);
    }
    h
}

/// Appends `r` to chunk `h`, switching to a new chunk when `h` is full; returns the chunk the
/// thread writes to next (null if none could be had).
///
/// # Safety
/// `h` is the calling thread's current chunk.
unsafe fn write(h: *mut ChunkHeader, r: &RawRecord) -> *mut ChunkHeader {
    // SAFETY: `h` is this thread's live chunk (contract); only this thread reads or writes its
    // writer fields, and a signal handler on this thread sees `busy` and backs off.
    unsafe {
        let busy = core::ptr::addr_of_mut!((*h).busy);
        if busy.read_volatile() != 0 {
            // A signal handler interrupted this very function on this thread.
            output::untraced();
            return h;
        }
        busy.write_volatile(1);
        compiler_fence(Ordering::SeqCst);
        let mut h = h;
        if (*h).pos as usize + MAX_RECORD > (*h).len as usize {
            h = switch(h);
            if h.is_null() {
                output::untraced();
                return h;
            }
        }
        let mut enc = Encoder {
            prev_time: (*h).prev_time,
            prev_addr: (*h).prev_addr,
        };
        let mut buf = [0u8; MAX_RECORD];
        let n = enc.encode(r, &mut buf);
        let at = (h as *mut u8).add((*h).pos as usize);
        // Body first, kind byte last: a reader never sees a kind without its fields, even if
        // the process is killed here.
        core::ptr::copy_nonoverlapping(buf.as_ptr().add(1), at.add(1), n - 1);
        (*(at as *const core::sync::atomic::AtomicU8)).store(buf[0], Ordering::Release);
        (*h).pos += n as u32;
        (*h).prev_time = enc.prev_time;
        (*h).prev_addr = enc.prev_addr;
        compiler_fence(Ordering::SeqCst);
        core::ptr::addr_of_mut!((*h).busy).write_volatile(0);
        h
    }
}

/// Moves the thread to its next chunk and unmaps the full one; null (and the stream marked
/// failed) if no chunk could be had.
///
/// # Safety
/// `old` is the calling thread's current chunk, with `busy` set.
#[cold]
unsafe fn switch(old: *mut ChunkHeader) -> *mut ChunkHeader {
    // SAFETY: `old` is this thread's chunk (contract); the new one is opened for this thread.
    unsafe {
        let o = &*old;
        let new = open_chunk(o.thread, o.tid, o.name, o.seq + 1, o.prev_time, o.rounds);
        if !new.is_null() {
            (*new).busy = 1;
            set(new as usize);
        } else {
            set(FAILED);
        }
        sys::unmap(old.cast(), o.len as usize);
        new
    }
}

/// The key's destructor (thread exit): see the module documentation.
extern "C" fn thread_exit(v: *mut c_void) {
    let v = v as usize;
    if v < MARKERS {
        return;
    }
    let h = v as *mut ChunkHeader;
    // SAFETY: `h` is the exiting thread's chunk (the key's value); this runs on that thread.
    unsafe {
        (*h).rounds += 1;
        if (*h).rounds < DESTRUCTOR_ROUNDS {
            set(v);
            return;
        }
        let end = RawRecord::new(Kind::ThreadEnd, sys::now_ns());
        let last = write(h, &end);
        if !last.is_null() {
            sys::unmap(last.cast(), (*last).len as usize);
        }
    }
    set(ENDED);
}

/// Fork prepare handler: the forking thread stops recording until the fork returns.
pub fn park() {
    let v = get();
    if v >= MARKERS {
        PARKED_CHUNK.store(v, Ordering::Relaxed);
        set(PARKED);
    }
}

/// Fork parent handler: the forking thread goes back to its chunk.
pub fn unpark() {
    let v = PARKED_CHUNK.swap(0, Ordering::Relaxed);
    if v != 0 {
        set(v);
    }
}

/// Fork child handler: the child's only thread forgets the parent's chunk (shared with the
/// parent, so never written again here) and starts a fresh stream on its next call.
pub fn forget_after_fork() {
    let v = PARKED_CHUNK.swap(0, Ordering::Relaxed);
    if v != 0 {
        let h = v as *mut ChunkHeader;
        // SAFETY: the child's view of the parent's chunk; this thread no longer refers to it.
        unsafe { sys::unmap(h.cast(), (*h).len as usize) };
    }
    set(0);
}
