//! The exported malloc family (the C ABI): each function calls the real one ([`crate::real`])
//! and records the call ([`crate::stream`]). Times: a free's before the call, an allocation's
//! after it returns, a realloc's before and after (see `rawtrace::record`).
//!
//! Not exported, on purpose: `malloc_usable_size` (it resolves to the real allocator's: it
//! changes nothing a replay must reproduce, and Ruby calls it on every malloc and free for its
//! GC accounting, so tracing it would only cost time); `reallocarray`, `strdup` and friends
//! (the C library implements them with `realloc`/`malloc`, which are recorded).

use core::ffi::{c_int, c_void};

use rawtrace::{Kind, RawRecord};

use crate::real::{self, bootstrap, is_bootstrap};
use crate::{output, stream, sys};

/// The library's constructor and destructor.
#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;
#[used]
#[link_section = ".fini_array"]
static FINI: extern "C" fn() = fini;

extern "C" fn init() {
    output::start();
}

extern "C" fn fini() {
    output::at_exit();
}

#[inline(always)]
fn alloc_record(kind: Kind, size: usize, align: usize, p: *mut c_void) {
    if output::tracing() {
        let mut r = RawRecord::new(kind, sys::now_ns());
        r.size = size as u64;
        r.align = align as u64;
        r.addr = p as u64;
        stream::record(&r);
    }
}

/// C `malloc`.
///
/// # Safety
/// Always safe to call; `extern "C"` entry point.
#[no_mangle]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    let Some(r) = real::get() else {
        return bootstrap(size, 16);
    };
    // SAFETY: the real malloc accepts any size.
    let p = unsafe { (r.malloc)(size) };
    alloc_record(Kind::Malloc, size, 0, p);
    p
}

/// C `calloc`.
///
/// # Safety
/// Always safe to call; `extern "C"` entry point.
#[no_mangle]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    let Some(r) = real::get() else {
        return match n.checked_mul(size) {
            Some(total) => bootstrap(total, 16),
            None => core::ptr::null_mut(),
        };
    };
    // SAFETY: the real calloc checks `n * size` itself.
    let p = unsafe { (r.calloc)(n, size) };
    alloc_record(Kind::Calloc, n.saturating_mul(size), 0, p);
    p
}

/// C `free`.
///
/// # Safety
/// `p` is null or a live block from this malloc family.
#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    if p.is_null() || is_bootstrap(p) {
        return;
    }
    let Some(r) = real::get() else {
        // Only reachable while the lookup runs: the block is leaked rather than misrouted.
        return;
    };
    if output::tracing() {
        let mut rec = RawRecord::new(Kind::Free, sys::now_ns());
        rec.addr = p as u64;
        stream::record(&rec);
    }
    // SAFETY: forwarded contract.
    unsafe { (r.free)(p) }
}

/// C `realloc`, including `realloc(NULL, n)` and `realloc(p, 0)` (recorded as they are; the
/// converter reads them as malloc and free).
///
/// # Safety
/// `p` is null or a live block from this malloc family.
#[no_mangle]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    if is_bootstrap(p) {
        // A block from the bootstrap arena moves to a real one (recorded as a malloc).
        // SAFETY: `p` is a bootstrap block; our own malloc has no preconditions.
        unsafe {
            let old = real::bootstrap_size(p);
            let q = malloc(size);
            if !q.is_null() {
                core::ptr::copy_nonoverlapping(p as *const u8, q as *mut u8, old.min(size));
            }
            return q;
        }
    }
    let Some(r) = real::get() else {
        // Only reachable while the lookup runs, when no real block exists yet.
        return bootstrap(size, 16);
    };
    let tracing = output::tracing();
    let t0 = if tracing { sys::now_ns() } else { 0 };
    // SAFETY: forwarded contract.
    let q = unsafe { (r.realloc)(p, size) };
    if tracing {
        let mut rec = RawRecord::new(Kind::Realloc, t0);
        rec.end_time = sys::now_ns();
        rec.old_addr = p as u64;
        rec.size = size as u64;
        rec.addr = q as u64;
        stream::record(&rec);
    }
    q
}

/// C `posix_memalign`.
///
/// # Safety
/// `out` is valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    let Some(r) = real::get() else {
        let p = bootstrap(size, align);
        if p.is_null() {
            return libc::ENOMEM;
        }
        // SAFETY: per the contract `out` is writable.
        unsafe { *out = p };
        return 0;
    };
    let Some(f) = r.posix_memalign else {
        return libc::ENOMEM;
    };
    // SAFETY: forwarded contract.
    let rc = unsafe { f(out, align, size) };
    let p = if rc == 0 {
        // SAFETY: on success the real function wrote `*out`.
        unsafe { *out }
    } else {
        core::ptr::null_mut()
    };
    alloc_record(Kind::PosixMemalign, size, align, p);
    rc
}

/// Shared body of the aligned allocators that return the block.
#[inline(always)]
fn aligned(
    kind: Kind,
    f: impl FnOnce(&real::Real) -> Option<*mut c_void>,
    size: usize,
    align: usize,
) -> *mut c_void {
    let Some(r) = real::get() else {
        return bootstrap(size, align.max(16).next_power_of_two());
    };
    let p = f(r).unwrap_or(core::ptr::null_mut());
    alloc_record(kind, size, align, p);
    p
}

/// C11 `aligned_alloc`.
///
/// # Safety
/// Always safe to call; `extern "C"` entry point.
#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    // SAFETY: forwarded call of the real function with the caller's arguments.
    aligned(
        Kind::AlignedAlloc,
        |r| r.aligned_alloc.map(|f| unsafe { f(align, size) }),
        size,
        align,
    )
}

/// Obsolete `memalign`.
///
/// # Safety
/// Always safe to call; `extern "C"` entry point.
#[no_mangle]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    // SAFETY: forwarded call of the real function with the caller's arguments.
    aligned(
        Kind::Memalign,
        |r| r.memalign.map(|f| unsafe { f(align, size) }),
        size,
        align,
    )
}

/// Obsolete `valloc`: page-aligned.
///
/// # Safety
/// Always safe to call; `extern "C"` entry point.
#[no_mangle]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    // SAFETY: forwarded call of the real function with the caller's argument.
    aligned(
        Kind::Valloc,
        |r| r.valloc.map(|f| unsafe { f(size) }),
        size,
        sys::page_size(),
    )
}

/// Obsolete `pvalloc`: page-aligned, the size rounded up to whole pages (recorded rounded).
///
/// # Safety
/// Always safe to call; `extern "C"` entry point.
#[no_mangle]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let page = sys::page_size();
    let rounded = size.max(1).saturating_add(page - 1) & !(page - 1);
    // SAFETY: forwarded call of the real function with the caller's argument.
    aligned(
        Kind::Pvalloc,
        |r| r.pvalloc.map(|f| unsafe { f(size) }),
        rounded,
        page,
    )
}
