//! The **real** malloc family: the definitions that come after this library in the lookup order
//! (the C library's, or another preloaded allocator's), found with `dlsym(RTLD_NEXT)` on first
//! use. `dlsym` may itself call `malloc`/`calloc`; those calls, and any other made while the
//! lookup is under way, are served from a static bootstrap arena that is never freed.

use core::cell::UnsafeCell;
use core::ffi::{c_int, c_void, CStr};
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

pub type MallocFn = unsafe extern "C" fn(usize) -> *mut c_void;
pub type CallocFn = unsafe extern "C" fn(usize, usize) -> *mut c_void;
pub type ReallocFn = unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void;
pub type FreeFn = unsafe extern "C" fn(*mut c_void);
pub type PosixMemalignFn = unsafe extern "C" fn(*mut *mut c_void, usize, usize) -> c_int;
pub type AlignedFn = unsafe extern "C" fn(usize, usize) -> *mut c_void;

/// The next definitions. Optional ones are `None` when the C library lacks them.
pub struct Real {
    pub malloc: MallocFn,
    pub calloc: CallocFn,
    pub realloc: ReallocFn,
    pub free: FreeFn,
    pub posix_memalign: Option<PosixMemalignFn>,
    pub aligned_alloc: Option<AlignedFn>,
    pub memalign: Option<AlignedFn>,
    pub valloc: Option<MallocFn>,
    pub pvalloc: Option<MallocFn>,
}

const UNRESOLVED: u8 = 0;
const RESOLVING: u8 = 1;
const RESOLVED: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNRESOLVED);

struct Slot(UnsafeCell<Option<Real>>);
// SAFETY: written once by the one thread that moved STATE from UNRESOLVED to RESOLVING, before
// it stores RESOLVED with release ordering; read only after loading RESOLVED with acquire.
unsafe impl Sync for Slot {}
static REAL: Slot = Slot(UnsafeCell::new(None));

/// The real functions, or `None` while they are being looked up (use [`bootstrap`] then).
#[inline(always)]
pub fn get() -> Option<&'static Real> {
    if STATE.load(Ordering::Acquire) == RESOLVED {
        // SAFETY: RESOLVED is stored after REAL is written and REAL is never written again.
        return unsafe { (*REAL.0.get()).as_ref() };
    }
    resolve()
}

#[cold]
fn resolve() -> Option<&'static Real> {
    if STATE
        .compare_exchange(UNRESOLVED, RESOLVING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // Another thread, or this one further up the stack (dlsym calling malloc), is looking
        // them up; once it is done, use them.
        if STATE.load(Ordering::Acquire) == RESOLVED {
            // SAFETY: as in `get`.
            return unsafe { (*REAL.0.get()).as_ref() };
        }
        return None;
    }
    let required = |name: &CStr| -> usize {
        let p = next(name);
        if p == 0 {
            crate::sys::say(b"longhaul tracer: no next definition of the malloc family (dlsym RTLD_NEXT failed); aborting\n");
            // SAFETY: abort has no preconditions.
            unsafe { libc::abort() };
        }
        p
    };
    // SAFETY: (all transmutes below) each pointer is the address of the C function of that
    // name, whose C signature is the one of the target type; a non-zero usize from dlsym.
    let real = unsafe {
        Real {
            malloc: core::mem::transmute::<usize, MallocFn>(required(c"malloc")),
            calloc: core::mem::transmute::<usize, CallocFn>(required(c"calloc")),
            realloc: core::mem::transmute::<usize, ReallocFn>(required(c"realloc")),
            free: core::mem::transmute::<usize, FreeFn>(required(c"free")),
            posix_memalign: optional(c"posix_memalign")
                .map(|p| core::mem::transmute::<usize, PosixMemalignFn>(p)),
            aligned_alloc: optional(c"aligned_alloc")
                .map(|p| core::mem::transmute::<usize, AlignedFn>(p)),
            memalign: optional(c"memalign").map(|p| core::mem::transmute::<usize, AlignedFn>(p)),
            valloc: optional(c"valloc").map(|p| core::mem::transmute::<usize, MallocFn>(p)),
            pvalloc: optional(c"pvalloc").map(|p| core::mem::transmute::<usize, MallocFn>(p)),
        }
    };
    // SAFETY: only this thread writes REAL (it won the compare-exchange), and nobody reads it
    // before RESOLVED is stored below.
    unsafe { *REAL.0.get() = Some(real) };
    STATE.store(RESOLVED, Ordering::Release);
    // SAFETY: just written, never written again.
    unsafe { (*REAL.0.get()).as_ref() }
}

fn next(name: &CStr) -> usize {
    // SAFETY: RTLD_NEXT lookup of a NUL-terminated name.
    unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) as usize }
}

fn optional(name: &CStr) -> Option<usize> {
    Some(next(name)).filter(|&p| p != 0)
}

// ---- bootstrap arena -------------------------------------------------------------------------

const ARENA: usize = 256 * 1024;
/// Bytes before each bootstrap block, holding its size (for realloc).
const HEAD: usize = 16;

#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; ARENA]>);
// SAFETY: disjoint ranges are handed out by an atomic bump pointer; each block is used only by
// whoever received it.
unsafe impl Sync for Arena {}
static ARENA_MEM: Arena = Arena(UnsafeCell::new([0; ARENA]));
static ARENA_USED: AtomicUsize = AtomicUsize::new(0);

/// Whether `p` was handed out by [`bootstrap`] (such blocks are never freed).
#[inline(always)]
pub fn is_bootstrap(p: *mut c_void) -> bool {
    let base = ARENA_MEM.0.get() as usize;
    (p as usize).wrapping_sub(base) < ARENA
}

/// A zeroed block of `size` bytes aligned to `align` (a power of two) from the bootstrap arena;
/// null when the arena is exhausted.
pub fn bootstrap(size: usize, align: usize) -> *mut c_void {
    let align = align.max(16);
    let Some(need) = size
        .checked_add(HEAD + align)
        .map(|n| (n + 15) & !15)
        .filter(|&n| n <= ARENA)
    else {
        return core::ptr::null_mut();
    };
    let start = ARENA_USED.fetch_add(need, Ordering::Relaxed);
    if start + need > ARENA {
        return core::ptr::null_mut();
    }
    let base = ARENA_MEM.0.get() as usize;
    let user = (base + start + HEAD + align - 1) & !(align - 1);
    // SAFETY: `user - HEAD .. user + size` lies within this call's reserved range
    // `start .. start + need` of the arena (need covers the header, alignment and size).
    unsafe { *((user - HEAD) as *mut usize) = size };
    user as *mut c_void
}

/// The size recorded for bootstrap block `p`.
///
/// # Safety
/// `p` is a block from [`bootstrap`].
pub unsafe fn bootstrap_size(p: *mut c_void) -> usize {
    // SAFETY: `bootstrap` wrote the size HEAD bytes before every block.
    unsafe { *((p as usize - HEAD) as *const usize) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_blocks_are_aligned_disjoint_and_sized() {
        let a = bootstrap(100, 16);
        let b = bootstrap(10, 64);
        assert!(is_bootstrap(a) && is_bootstrap(b));
        assert_eq!(b as usize % 64, 0);
        assert!(b as usize >= a as usize + 100);
        // SAFETY: both come from bootstrap.
        unsafe {
            assert_eq!(bootstrap_size(a), 100);
            assert_eq!(bootstrap_size(b), 10);
        }
        assert!(bootstrap(ARENA, 16).is_null());
        assert!(!is_bootstrap(core::ptr::null_mut()));
    }

    #[test]
    fn the_real_functions_are_found() {
        let r = get().expect("resolved");
        // SAFETY: the C library's malloc and free.
        unsafe {
            let p = (r.malloc)(10);
            assert!(!p.is_null());
            (r.free)(p);
        }
    }
}
