//! `liblhalloc_preload.so`: the C malloc family over lhalloc, for `LD_PRELOAD`.
//!
//! Every function is `extern "C"` and cannot unwind: the lhalloc core never panics on these
//! paths, and a panic reaching an `extern "C"` boundary aborts (Rust >= 1.81). errno is set to
//! ENOMEM on allocation failure and EINVAL on bad alignments, as glibc does. Nothing here
//! allocates through the Rust global allocator (which, inside this library, is still the
//! system one, i.e. these very functions).
#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

use core::ffi::c_void;
use core::ptr;

use lhalloc::c;

/// The library's constructor (run by the dynamic loader before `main`): initialises the
/// allocator and, only if `LHALLOC_BACKGROUND=1`, starts the background purger thread. This is
/// the one place the preload library creates a thread: not inside a malloc-family call, and
/// only on request. A failure to create it is reported by `lhalloc::settings()` and leaves
/// purging deferred to allocation slow paths.
extern "C" fn preload_init() {
    lhalloc::init();
    if lhalloc::background_requested() {
        let _ = lhalloc::start_background_purger();
    }
}

#[used]
#[link_section = ".init_array"]
static PRELOAD_INIT: extern "C" fn() = preload_init;

/// The library's destructor (run at normal process exit): with `LHALLOC_REPORT_AT_EXIT=1`,
/// writes the report of [`lhalloc_print_report`] to stderr.
extern "C" fn preload_fini() {
    // SAFETY: the name is NUL-terminated; getenv returns null or a NUL-terminated string.
    let v = unsafe { libc::getenv(c"LHALLOC_REPORT_AT_EXIT".as_ptr()) };
    // SAFETY: `v` is null or points to a NUL-terminated string.
    if !v.is_null() && unsafe { *v } == b'1' as libc::c_char {
        // SAFETY: always safe.
        unsafe { lhalloc_print_report() };
    }
}

#[used]
#[link_section = ".fini_array"]
static PRELOAD_FINI: extern "C" fn() = preload_fini;

/// Sets errno.
fn set_errno(e: libc::c_int) {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

/// Returns `p`, setting errno to ENOMEM if it is null.
#[inline]
fn check(p: *mut u8) -> *mut c_void {
    if p.is_null() {
        set_errno(libc::ENOMEM);
    }
    p.cast()
}

/// C `malloc`.
///
/// # Safety
/// Always safe; `extern "C"` entry point.
#[no_mangle]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    // SAFETY: malloc has no preconditions.
    check(unsafe { c::malloc(size) })
}

/// C `free`.
///
/// # Safety
/// `p` is null or a live block from this allocator.
#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    // SAFETY: forwarded contract.
    unsafe { c::free(p.cast()) }
}

/// Old SunOS name of `free`.
///
/// # Safety
/// As [`free`].
#[no_mangle]
pub unsafe extern "C" fn cfree(p: *mut c_void) {
    // SAFETY: forwarded contract.
    unsafe { c::free(p.cast()) }
}

/// C `calloc`: null and ENOMEM on overflow.
///
/// # Safety
/// Always safe; `extern "C"` entry point.
#[no_mangle]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    // SAFETY: calloc has no preconditions.
    check(unsafe { c::calloc(n, size) })
}

/// C `realloc`: `realloc(NULL, n) == malloc(n)`; `realloc(p, 0)` frees `p` and returns NULL
/// (glibc); on failure returns NULL with ENOMEM and `p` intact.
///
/// # Safety
/// `p` is null or a live block from this allocator.
#[no_mangle]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    if !p.is_null() && size == 0 {
        // SAFETY: forwarded contract.
        unsafe { c::free(p.cast()) };
        return ptr::null_mut();
    }
    // SAFETY: forwarded contract; `size > 0` or `p` is null.
    check(unsafe { c::realloc(p.cast(), size) })
}

/// C `reallocarray`: `realloc(p, n * size)` with overflow checking (ENOMEM).
///
/// # Safety
/// `p` is null or a live block from this allocator.
#[no_mangle]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    match n.checked_mul(size) {
        // SAFETY: forwarded contract.
        Some(total) => unsafe { realloc(p, total) },
        None => {
            set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// Whether `align` is a power of two multiple of `sizeof(void *)` (POSIX's rule).
fn valid_posix_align(align: usize) -> bool {
    align.is_power_of_two() && align % core::mem::size_of::<*mut c_void>() == 0
}

/// C `posix_memalign`: EINVAL for a bad alignment, ENOMEM on failure (errno untouched).
///
/// # Safety
/// `out` is valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(
    out: *mut *mut c_void,
    align: usize,
    size: usize,
) -> libc::c_int {
    if !valid_posix_align(align) {
        return libc::EINVAL;
    }
    // SAFETY: `align` is a power of two.
    let p = unsafe { c::aligned_alloc(align, size) };
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: per the contract `out` is writable.
    unsafe { *out = p.cast() };
    0
}

/// C11 `aligned_alloc`: NULL + EINVAL unless `align` is a power of two.
///
/// # Safety
/// Always safe; `extern "C"` entry point.
#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        set_errno(libc::EINVAL);
        return ptr::null_mut();
    }
    // SAFETY: `align` is a power of two.
    check(unsafe { c::aligned_alloc(align, size) })
}

/// Obsolete `memalign`: like glibc, rounds a non-power-of-two alignment up.
///
/// # Safety
/// Always safe; `extern "C"` entry point.
#[no_mangle]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    let Some(a) = align.max(1).checked_next_power_of_two() else {
        set_errno(libc::EINVAL);
        return ptr::null_mut();
    };
    // SAFETY: `a` is a power of two.
    check(unsafe { c::aligned_alloc(a, size) })
}

fn os_page() -> usize {
    4096
}

/// Obsolete `valloc`: page-aligned.
///
/// # Safety
/// Always safe; `extern "C"` entry point.
#[no_mangle]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    // SAFETY: the page size is a power of two.
    check(unsafe { c::aligned_alloc(os_page(), size) })
}

/// Obsolete `pvalloc`: page-aligned, size rounded up to whole pages.
///
/// # Safety
/// Always safe; `extern "C"` entry point.
#[no_mangle]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let pg = os_page();
    let Some(rounded) = size.max(1).checked_add(pg - 1).map(|s| s & !(pg - 1)) else {
        set_errno(libc::ENOMEM);
        return ptr::null_mut();
    };
    // SAFETY: the page size is a power of two.
    check(unsafe { c::aligned_alloc(pg, rounded) })
}

/// glibc's `malloc_trim` (Ruby calls it after a major GC): collects pooled pages, frees the
/// empty ones and purges what is older than the purge delay (the delay is kept, so that a
/// program trimming often does not re-fault its working set). Returns 1 if memory was given
/// back, else 0. `pad` is ignored.
///
/// # Safety
/// Always safe; `extern "C"` entry point.
#[no_mangle]
pub unsafe extern "C" fn malloc_trim(_pad: usize) -> libc::c_int {
    libc::c_int::from(lhalloc::collect(false) > 0)
}

/// Diagnostic (not a libc function): writes lhalloc's settings, statistics and measured segment
/// residency (`lhalloc::residency`, which takes every allocator lock while it walks) to stderr.
/// Programs may look it up with `dlsym` to report where the memory is.
///
/// # Safety
/// Always safe; `extern "C"` entry point. Allocates (the message) through the allocator.
#[no_mangle]
pub unsafe extern "C" fn lhalloc_print_report() {
    let msg = format!(
        "{}\n{:?}\n{}\n",
        lhalloc::settings(),
        lhalloc::stats(),
        lhalloc::residency()
    );
    // SAFETY: writing a valid buffer to fd 2.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}

/// glibc's `malloc_usable_size`; 0 for NULL.
///
/// # Safety
/// `p` is null or a live block from this allocator.
#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    // SAFETY: forwarded contract.
    unsafe { c::usable_size(p.cast()) }
}
