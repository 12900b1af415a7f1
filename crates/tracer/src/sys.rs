//! The tracer's one seam to the operating system: clocks, file and mapping calls, process and
//! thread identity. Nothing here allocates.

use core::ffi::{c_char, c_void};

/// `CLOCK_MONOTONIC`, ns. The clock is system-wide, so readings on different CPUs order
/// events across threads (the vDSO makes it a few ns, no system call).
#[inline(always)]
pub fn now_ns() -> u64 {
    clock(libc::CLOCK_MONOTONIC)
}

/// `CLOCK_REALTIME`, ns since the epoch.
pub fn wall_ns() -> u64 {
    clock(libc::CLOCK_REALTIME)
}

#[inline(always)]
fn clock(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; clock_gettime does not allocate.
    unsafe { libc::clock_gettime(id, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000) + ts.tv_nsec as u64
}

pub fn pid() -> u32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() as u32 }
}

pub fn ppid() -> u32 {
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() as u32 }
}

pub fn tid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// The calling thread's name (`PR_GET_NAME`), NUL-padded.
pub fn thread_name() -> [u8; 16] {
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes into the buffer given.
    unsafe {
        libc::prctl(
            libc::PR_GET_NAME,
            name.as_mut_ptr() as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    name
}

/// Reads this process's command line (NUL-separated) into `out`; returns the bytes read.
pub fn read_cmdline(out: &mut [u8]) -> usize {
    // SAFETY: a NUL-terminated path; open does not allocate.
    let fd = unsafe {
        libc::open(
            c"/proc/self/cmdline".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return 0;
    }
    let mut got = 0;
    while got < out.len() {
        // SAFETY: the destination is the unfilled rest of `out`.
        let n = unsafe { libc::read(fd, out[got..].as_mut_ptr().cast(), out.len() - got) };
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    got
}

/// Creates `path` (NUL-terminated) for reading and writing, failing if it exists; the file
/// descriptor is not inherited by programs this one `exec`s.
pub fn create(path: &[u8]) -> Option<i32> {
    if path.last() != Some(&0) {
        return None;
    }
    // SAFETY: `path` is NUL-terminated (checked above).
    let fd = unsafe {
        libc::open(
            path.as_ptr() as *const c_char,
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
            0o644,
        )
    };
    (fd >= 0).then_some(fd)
}

/// Whether `path` (NUL-terminated) exists.
pub fn exists(path: &[u8]) -> bool {
    path.last() == Some(&0)
        // SAFETY: `path` is NUL-terminated (checked first).
        && unsafe { libc::access(path.as_ptr() as *const c_char, libc::F_OK) } == 0
}

/// Renames `from` to `to` (both NUL-terminated); false if either is not terminated or the
/// rename fails.
pub fn rename(from: &[u8], to: &[u8]) -> bool {
    from.last() == Some(&0)
        && to.last() == Some(&0)
        // SAFETY: both paths are NUL-terminated (checked first).
        && unsafe { libc::rename(from.as_ptr() as *const c_char, to.as_ptr() as *const c_char) } == 0
}

pub fn close(fd: i32) {
    // SAFETY: closing a descriptor we opened; at worst EBADF.
    unsafe { libc::close(fd) };
}

/// Makes bytes `[offset, offset + len)` of `fd` exist on disk (never shrinking the file), so
/// that writing them through a mapping cannot fail later with SIGBUS.
pub fn reserve(fd: i32, offset: u64, len: u64) -> bool {
    // SAFETY: plain system call on our descriptor.
    let r = unsafe { libc::fallocate(fd, 0, offset as libc::off_t, len as libc::off_t) };
    if r == 0 {
        return true;
    }
    // A file system without fallocate: extend the file with a byte written at its end
    // (pwrite never shrinks a file, so concurrent reservations cannot undo each other).
    let zero = 0u8;
    // SAFETY: writes one byte from a valid buffer.
    let w = unsafe {
        libc::pwrite(
            fd,
            (&zero as *const u8).cast(),
            1,
            (offset + len - 1) as libc::off_t,
        )
    };
    w == 1
}

/// Maps `len` bytes of `fd` at `offset`, shared (so what is written survives the process,
/// even a SIGKILL), pre-faulted.
pub fn map_shared(fd: i32, offset: u64, len: usize) -> Option<*mut u8> {
    // SAFETY: a fresh mapping chosen by the kernel; no existing memory is affected.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd,
            offset as libc::off_t,
        )
    };
    (p != libc::MAP_FAILED).then_some(p.cast())
}

/// Unmaps what [`map_shared`] mapped.
///
/// # Safety
/// `p..p + len` is a whole mapping from [`map_shared`] that nothing uses any more.
pub unsafe fn unmap(p: *mut u8, len: usize) {
    // SAFETY: per the contract.
    unsafe { libc::munmap(p as *mut c_void, len) };
}

/// Writes `msg` to stderr (no allocation, no formatting).
pub fn say(msg: &[u8]) {
    // SAFETY: writes from a valid buffer to fd 2.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}

/// The value of environment variable `name` (NUL-terminated), without its terminator.
pub fn getenv(name: &core::ffi::CStr) -> Option<&'static [u8]> {
    // SAFETY: getenv reads the environment and does not allocate; the returned string lives
    // as long as the environment is not changed (we read it once, at start-up).
    let p = unsafe { libc::getenv(name.as_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: getenv returned a NUL-terminated string.
    Some(unsafe { core::ffi::CStr::from_ptr(p) }.to_bytes())
}

/// The system page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}
