//! The OS seam: the only file that maps, unmaps or purges memory (mmap, munmap, mremap,
//! madvise), reads the clock or the environment, or creates a thread. Everything above it
//! sees "give me N bytes aligned so", "give these bytes back", "drop the physical pages
//! behind these bytes", "what time is it".
//!
//! Functions that can invalidate memory somebody may still use (unmap, purge, remap) are
//! `unsafe`; the others cannot break memory safety whatever their arguments.

use core::ptr;

use crate::geometry::OS_PAGE;

/// Maps `size` bytes (a multiple of [`OS_PAGE`]) of zeroed, private, read-write memory whose
/// address `base` satisfies `(base + phase) % align == 0`. `align` is a power of two that is at
/// least [`OS_PAGE`] and `phase < align` is a multiple of [`OS_PAGE`]. Returns null on failure.
pub fn map_aligned(size: usize, align: usize, phase: usize) -> *mut u8 {
    let Some(total) = size.checked_add(align) else {
        return ptr::null_mut();
    };
    let raw = map(total);
    if raw.is_null() {
        return raw;
    }
    let raw_addr = raw as usize;
    // The first address >= raw_addr with (base + phase) % align == 0.
    let base = ((raw_addr + phase + align - 1) & !(align - 1)) - phase;
    let base = if base < raw_addr { base + align } else { base };
    let front = base - raw_addr;
    let back = total - front - size;
    // SAFETY: both trimmed ranges are parts of the mapping made just above that we never
    // handed out.
    unsafe {
        if front > 0 {
            unmap(raw, front);
        }
        if back > 0 {
            unmap((base + size) as *mut u8, back);
        }
    }
    base as *mut u8
}

/// Maps `size` bytes of zeroed private memory anywhere; null on failure.
pub fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping with a null hint touches no existing memory.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        p.cast()
    }
}

/// Unmaps `[p, p + size)`; a failure is ignored (the range merely stays mapped).
///
/// # Safety
/// The range is (part of) a mapping the caller made with [`map`] or [`map_aligned`], and no
/// live object or reference lies in it.
pub unsafe fn unmap(p: *mut u8, size: usize) {
    // SAFETY: per the contract nothing in the range is in use.
    unsafe {
        libc::munmap(p.cast(), size);
    }
}

/// Drops the physical pages behind `[p, p + size)` (MADV_DONTNEED): they read back as zeros
/// and stop counting in RSS at once (unlike MADV_FREE). The range stays mapped.
///
/// # Safety
/// The range lies in a private mapping of ours and its content is dead: nobody reads it
/// expecting what was written before.
pub unsafe fn purge(p: *mut u8, size: usize) {
    // SAFETY: per the contract the content is dead; the mapping stays valid.
    unsafe {
        libc::madvise(p.cast(), size, libc::MADV_DONTNEED);
    }
}

/// Asks the kernel never to back `[p, p + size)` with transparent huge pages. Segments are
/// carved sparsely (64 KiB slots, 8 KiB at a time): with THP "always", one touched byte would
/// make 2 MiB resident (the many-thread Ruby blow-up of jemalloc#1674). Failure is harmless;
/// the call only changes a paging hint, so it cannot break memory safety.
pub fn no_huge_pages(p: *mut u8, size: usize) {
    // SAFETY: MADV_NOHUGEPAGE changes a hint only; contents and validity are unchanged.
    unsafe {
        libc::madvise(p.cast(), size, libc::MADV_NOHUGEPAGE);
    }
}

/// Tries to grow or shrink the mapping `[p, p + old)` to `new` bytes without moving it.
/// Returns whether it worked.
///
/// # Safety
/// `[p, p + old)` is a whole mapping of ours; when shrinking, `[p + new, p + old)` holds no
/// live object.
pub unsafe fn remap_in_place(p: *mut u8, old: usize, new: usize) -> bool {
    // SAFETY: flags 0 forbid moving, so no pointer below `new` is invalidated; on failure the
    // mapping is unchanged.
    let r = unsafe { libc::mremap(p.cast(), old, new, 0) };
    r != libc::MAP_FAILED
}

/// Moves the mapping `[p, p + old)` onto `[target, target + new)`, growing it to `new` bytes:
/// the pages move, nothing is copied. Returns whether it worked; on failure both mappings are
/// unchanged.
///
/// # Safety
/// `[p, p + old)` is a whole mapping of ours that the caller gives up (no reference into it
/// survives a success); `[target, target + new)` is a mapping of ours holding nothing live,
/// which the move replaces.
pub unsafe fn remap_to(p: *mut u8, old: usize, new: usize, target: *mut u8) -> bool {
    // SAFETY: per the contract both ranges are ours and nothing live is lost.
    let r = unsafe {
        libc::mremap(
            p.cast(),
            old,
            new,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            target.cast::<libc::c_void>(),
        )
    };
    r != libc::MAP_FAILED
}

/// Nanoseconds of CLOCK_MONOTONIC (vDSO, no syscall on Linux).
#[inline]
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps for `ns` nanoseconds (less if a signal interrupts it).
pub fn sleep_ns(ns: u64) {
    let ts = libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: `ts` is a valid timespec; the remainder pointer may be null.
    unsafe {
        libc::nanosleep(&ts, ptr::null_mut());
    }
}

/// Reads `name` (NUL-terminated) from the environment as a decimal number, without
/// allocating. `None` if unset, empty, not a number or out of range.
pub fn env_u64(name: &core::ffi::CStr) -> Option<u64> {
    // SAFETY: `name` is NUL-terminated; getenv returns null or a NUL-terminated string.
    let p = unsafe { libc::getenv(name.as_ptr()) };
    if p.is_null() {
        return None;
    }
    let mut v: u64 = 0;
    let mut i = 0;
    loop {
        // SAFETY: `p` is a NUL-terminated string and we stop at the NUL.
        let c = unsafe { *p.add(i) } as u8;
        if c == 0 {
            break;
        }
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
        i += 1;
    }
    if i == 0 {
        None
    } else {
        Some(v)
    }
}

/// The calling process's id (a system call: callers keep it off hot paths).
pub fn pid() -> u32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() as u32 }
}

/// Sleeps while `*word == expected` (FUTEX_WAIT, process-private); returns at once if it is
/// not, or on a wake-up, a signal or a spurious wake-up (callers re-check).
pub fn futex_wait(word: &core::sync::atomic::AtomicU32, expected: u32) {
    // SAFETY: the futex word is a valid, aligned u32 that lives as long as the call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            ptr::null::<libc::timespec>(),
        );
    }
}

/// Wakes one thread sleeping in [`futex_wait`] on `word`.
pub fn futex_wake_one(word: &core::sync::atomic::AtomicU32) {
    // SAFETY: as above; FUTEX_WAKE only reads the word's address.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
    }
}

/// Yields the processor.
pub fn yield_now() {
    // SAFETY: sched_yield has no preconditions.
    unsafe {
        libc::sched_yield();
    }
}

/// Writes `msg` to stderr and aborts the process (no allocation, no unwinding).
pub fn fatal(msg: &str) -> ! {
    // SAFETY: writing a valid buffer to fd 2; abort never returns.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::abort()
    }
}

/// Starts a detached thread running `f` with every signal blocked (so it never takes the
/// program's signals) and a 256 KiB stack. `pthread_create` allocates (its stack's TLS block
/// through malloc): callers must hold no allocator lock and must not be inside a malloc-family
/// call. Returns the `pthread_create` error number on failure.
pub fn spawn_detached(f: extern "C" fn(*mut libc::c_void) -> *mut libc::c_void) -> Result<(), i32> {
    // SAFETY: plain pthread calls on local, initialised values. All signals are blocked while
    // the thread is created so that it inherits a full mask; the caller's mask is restored.
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        libc::pthread_attr_init(&mut attr);
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        libc::pthread_attr_setstacksize(&mut attr, 256 << 10);
        let mut all: libc::sigset_t = core::mem::zeroed();
        let mut old: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let mut tid: libc::pthread_t = 0;
        let rc = libc::pthread_create(&mut tid, &attr, f, ptr::null_mut());
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut());
        libc::pthread_attr_destroy(&mut attr);
        if rc == 0 {
            Ok(())
        } else {
            Err(rc)
        }
    }
}

/// Resident bytes of `[p, p + len)` (a range of our own mappings, page-aligned), measured
/// with `mincore`; 0 where the kernel refuses. Reads no memory of the range.
pub fn resident_bytes(p: usize, len: usize) -> usize {
    let mut vec = [0u8; 256];
    let mut done = 0;
    let mut total = 0;
    while done < len {
        let n = ((len - done) / OS_PAGE).clamp(1, vec.len());
        // SAFETY: mincore writes one byte per page of the range into `vec` (n <= its length);
        // it reads nothing of the range itself.
        let rc = unsafe {
            libc::mincore(
                (p + done) as *mut libc::c_void,
                n * OS_PAGE,
                vec.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return total;
        }
        total += vec[..n].iter().filter(|&&b| b & 1 != 0).count() * OS_PAGE;
        done += n * OS_PAGE;
    }
    total
}

/// The OS page size the kernel reports; lhalloc assumes [`OS_PAGE`] and checks it at init.
pub fn kernel_page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v <= 0 {
        OS_PAGE
    } else {
        v as usize
    }
}

#[cfg(all(
    feature = "initial-exec-tls",
    not(all(target_arch = "x86_64", target_os = "linux"))
))]
compile_error!("the initial-exec-tls feature is written for x86-64 Linux only");

// One word of initial-exec TLS (feature `initial-exec-tls`, x86-64 Linux only): its offset
// from the thread pointer is fixed at load time, so reading it is two loads, where Rust's
// `thread_local!` in a shared object (the preload library) calls `__tls_get_addr` on every
// access (22 of the 110 instructions of a 16-byte malloc/free pair under LD_PRELOAD, measured
// with callgrind). Initial-exec TLS is what glibc, jemalloc and mimalloc use; a library using
// it can be `dlopen`ed only while glibc's static TLS surplus has room (`dlopen` is not
// supported anyway, see the README). The word is zero in every new thread; a forked child
// keeps the forking thread's.
#[cfg(feature = "initial-exec-tls")]
core::arch::global_asm!(
    ".pushsection .tbss.lhalloc_thread_word,\"awT\",@nobits",
    ".p2align 3",
    ".globl lhalloc_thread_word",
    ".hidden lhalloc_thread_word",
    "lhalloc_thread_word:",
    ".zero 8",
    ".size lhalloc_thread_word, 8",
    ".popsection",
);

/// The calling thread's word of initial-exec TLS (zero until [`set_thread_word`]).
#[cfg(feature = "initial-exec-tls")]
#[inline(always)]
pub fn thread_word() -> usize {
    let w: usize;
    // SAFETY: reads the calling thread's own TLS word (offset from the GOT, relaxed to a
    // constant by the linker in an executable); no other memory is touched.
    unsafe {
        core::arch::asm!(
            "mov {w}, qword ptr [rip + lhalloc_thread_word@GOTTPOFF]",
            "mov {w}, qword ptr fs:[{w}]",
            w = out(reg) w,
            options(nostack, pure, readonly, preserves_flags),
        );
    }
    w
}

/// Sets the calling thread's word of initial-exec TLS.
///
/// # Safety
/// Readers of the word trust what it holds (`heap::with_heap` dereferences it as the calling
/// thread's heap): `v` must be what they expect, 0 or the address of this thread's heap.
#[cfg(feature = "initial-exec-tls")]
#[inline(always)]
pub unsafe fn set_thread_word(v: usize) {
    // SAFETY: writes the calling thread's own TLS word, which nothing else aliases; what it
    // holds is the caller's contract.
    unsafe {
        core::arch::asm!(
            "mov {off}, qword ptr [rip + lhalloc_thread_word@GOTTPOFF]",
            "mov qword ptr fs:[{off}], {v}",
            off = out(reg) _,
            v = in(reg) v,
            options(nostack, preserves_flags),
        );
    }
}
