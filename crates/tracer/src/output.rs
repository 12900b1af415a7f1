//! The process's **raw file** (`<dir>/<pid>.lhraw`): started by the library's constructor, its
//! header page mapped for the life of the process, chunks reserved by an atomic bump of the file
//! offset (no lock) and mapped shared, so that everything written survives the process.
//!
//! A forked child gets a file of its own (or none, by `LONGHAUL_TRACE_CHILDREN`): see [`fork`].

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU64, AtomicU8, Ordering};

use rawtrace::layout::{self, FileHeader, FILE_MAGIC, FILE_VERSION, HEADER_LEN, MAX_CMDLINE};

use crate::config::{Config, MAX_DIR};
use crate::sys;

const OFF: u8 = 0;
const ON: u8 = 1;

/// Whether calls are recorded; set once everything below is ready.
static STATE: AtomicU8 = AtomicU8::new(OFF);
static FD: AtomicI32 = AtomicI32::new(-1);
static HEADER: AtomicPtr<FileHeader> = AtomicPtr::new(core::ptr::null_mut());
/// Where the next chunk starts in the file.
static NEXT: AtomicU64 = AtomicU64::new(HEADER_LEN as u64);

struct ConfigSlot(UnsafeCell<Option<Config>>);
// SAFETY: written only by `start` (the constructor, before any thread of the program exists and
// before STATE turns ON) and by the fork child handler (single-threaded child); read only by the
// fork child handler.
unsafe impl Sync for ConfigSlot {}
static CONFIG: ConfigSlot = ConfigSlot(UnsafeCell::new(None));

/// Whether calls are being recorded.
#[inline(always)]
pub fn tracing() -> bool {
    STATE.load(Ordering::Acquire) == ON
}

/// The header page, while tracing.
#[inline]
pub fn header() -> Option<&'static FileHeader> {
    let h = HEADER.load(Ordering::Acquire);
    // SAFETY: a non-null HEADER is a live mapping of a FileHeader that is unmapped only in a
    // forked child, by its only thread, after HEADER is reset.
    unsafe { h.as_ref() }
}

/// Counts a call passed on without recording.
#[cold]
pub fn untraced() {
    if let Some(h) = header() {
        h.untraced_calls.fetch_add(1, Ordering::Relaxed);
    }
}

/// Starts tracing if the environment asks for it (the library's constructor).
pub fn start() {
    let Some(cfg) = Config::from_env() else {
        return;
    };
    let parent = crate::config::PARENT.load(Ordering::Relaxed);
    if parent != 0 && sys::ppid() != parent && !cfg.children {
        // A program started by the traced one: not asked for.
        return;
    }
    if crate::real::get().is_none() || !crate::stream::init() {
        sys::say(b"longhaul tracer: cannot set up (no pthread key); not tracing\n");
        return;
    }
    if !open(&cfg, sys::pid(), 0) {
        return;
    }
    // SAFETY: see ConfigSlot: the constructor runs before the program's threads exist.
    unsafe { *CONFIG.0.get() = Some(cfg) };
    // SAFETY: registering three functions with the C library; they never unwind.
    unsafe { libc::pthread_atfork(Some(fork::prepare), Some(fork::parent), Some(fork::child)) };
    STATE.store(ON, Ordering::Release);
}

/// Creates and maps this process's raw file and fills its header. Returns false (and says why
/// on stderr) if it cannot.
fn open(cfg: &Config, pid: u32, forked_from: u32) -> bool {
    let mut path = [0u8; MAX_DIR];
    let n = cfg.raw_path(pid, None, &mut path);
    let mut fd = sys::create(&path[..n]);
    if fd.is_none() && sys::exists(&path[..n]) {
        // This process `exec`ed (`bundle exec`, `sh -c 'exec ...'`): the earlier program
        // image's file moves to `<pid>.<k>.lhraw`, and `<pid>.lhraw` is the program running now.
        let mut older = [0u8; MAX_DIR];
        for k in 1..1000 {
            let m = cfg.raw_path(pid, Some(k), &mut older);
            if !sys::exists(&older[..m]) {
                sys::rename(&path[..n], &older[..m]);
                break;
            }
        }
        fd = sys::create(&path[..n]);
    }
    let Some(fd) = fd else {
        sys::say(b"longhaul tracer: cannot create the raw file in LONGHAUL_TRACE_DIR (missing folder, no permission, or the file exists); not tracing this process\n");
        return false;
    };
    if !sys::reserve(fd, 0, HEADER_LEN as u64) {
        sys::say(b"longhaul tracer: cannot size the raw file (disk full?); not tracing\n");
        sys::close(fd);
        return false;
    }
    let Some(p) = sys::map_shared(fd, 0, HEADER_LEN) else {
        sys::say(b"longhaul tracer: cannot map the raw file; not tracing\n");
        sys::close(fd);
        return false;
    };
    let h = p as *mut FileHeader;
    // SAFETY: `p` is a fresh, zeroed, writable mapping of HEADER_LEN bytes, enough for the
    // header struct and MAX_CMDLINE bytes after it; nobody else sees it yet.
    unsafe {
        (*h).version = FILE_VERSION;
        (*h).pid = pid;
        (*h).ppid = sys::ppid();
        (*h).forked_from = forked_from;
        (*h).start_mono_ns = sys::now_ns();
        (*h).start_real_ns = sys::wall_ns();
        let cmd =
            core::slice::from_raw_parts_mut(p.add(core::mem::size_of::<FileHeader>()), MAX_CMDLINE);
        (*h).cmdline_len = sys::read_cmdline(cmd) as u32;
        core::sync::atomic::fence(Ordering::Release);
        (*h).magic = FILE_MAGIC;
    }
    FD.store(fd, Ordering::Relaxed);
    NEXT.store(HEADER_LEN as u64, Ordering::Relaxed);
    HEADER.store(h, Ordering::Release);
    true
}

/// Reserves and maps a chunk of `len` bytes; null (and the header flagged) if it cannot.
pub fn new_chunk(len: u32) -> *mut u8 {
    let fd = FD.load(Ordering::Relaxed);
    let offset = NEXT.fetch_add(len as u64, Ordering::Relaxed);
    if fd >= 0 && sys::reserve(fd, offset, len as u64) {
        if let Some(p) = sys::map_shared(fd, offset, len as usize) {
            return p;
        }
    }
    if let Some(h) = header() {
        h.flags
            .fetch_or(layout::FLAG_CHUNK_FAILED, Ordering::Relaxed);
    }
    core::ptr::null_mut()
}

/// The library's destructor (a normal `exit`): marks the file as complete. Nothing is unmapped:
/// other threads, and exit handlers that run later, may still allocate and are still recorded.
pub fn at_exit() {
    if let Some(h) = header() {
        h.end_mono_ns.store(sys::now_ns(), Ordering::Relaxed);
        h.flags.fetch_or(layout::FLAG_EXITED, Ordering::Release);
    }
}

/// `fork`: the forking thread parks its stream around the fork, so that nothing it allocates
/// in between lands in a chunk the child shares; the child drops every mapping of the parent's
/// file and starts its own file, or stops tracing.
mod fork {
    use super::*;

    pub extern "C" fn prepare() {
        crate::stream::park();
    }

    pub extern "C" fn parent() {
        crate::stream::unpark();
    }

    pub extern "C" fn child() {
        let old_pid = header().map_or(0, |h| h.pid);
        crate::stream::forget_after_fork();
        let h = HEADER.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if !h.is_null() {
            // SAFETY: the child's own view of the parent's header page; the only thread of the
            // child no longer refers to it (HEADER is reset).
            unsafe { sys::unmap(h.cast(), HEADER_LEN) };
        }
        let fd = FD.swap(-1, Ordering::Relaxed);
        if fd >= 0 {
            sys::close(fd);
        }
        // SAFETY: see ConfigSlot: the child has one thread.
        let cfg = unsafe { (*CONFIG.0.get()).as_ref() };
        let traced = matches!(cfg, Some(c) if c.children) && open_for_child(cfg, old_pid);
        if !traced {
            STATE.store(OFF, Ordering::Release);
        }
    }

    fn open_for_child(cfg: Option<&Config>, old_pid: u32) -> bool {
        match cfg {
            Some(c) => open(c, sys::pid(), old_pid),
            None => false,
        }
    }
}
