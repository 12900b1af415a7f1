//! The **allocator under test** inside a child process: a C-style interface the replay calls,
//! one implementation per allocator, each with its version and its own counters.
//!
//! The child's own Rust allocations go to glibc (Rust's default `System`); the workload's go
//! through this trait. jemalloc is the prefixed build of `tikv-jemalloc-sys` (`_rjem_malloc`)
//! and mimalloc the `mi_` API of `libmimalloc-sys` (v2), so each has heaps of its own. For
//! `glibc`, `glibc-arena2` and `preload:` the child calls the C library's `malloc`, which
//! `LD_PRELOAD` redirects.

use std::ffi::c_void;

/// The allocator's own view of its memory, bytes. `None`: it does not say.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    pub allocated: Option<u64>,
    pub active: Option<u64>,
    pub resident: Option<u64>,
    pub mapped: Option<u64>,
}

/// C-style allocation calls. Sizes are never zero; alignments are powers of two >= 16.
pub trait AllocatorUnderTest: Sync {
    /// # Safety
    /// `size > 0`. The result is null or a block of at least `size` bytes.
    unsafe fn malloc(&self, size: usize) -> *mut u8;
    /// # Safety
    /// As [`AllocatorUnderTest::malloc`]; the block is zeroed.
    unsafe fn calloc(&self, size: usize) -> *mut u8;
    /// # Safety
    /// `size > 0`, `align` a power of two that is a multiple of `size_of::<*const ()>()`.
    unsafe fn aligned(&self, size: usize, align: usize) -> *mut u8;
    /// # Safety
    /// `p` was returned by this allocator, is live, and its size is `old`; `new > 0`.
    unsafe fn realloc(&self, p: *mut u8, old: usize, new: usize) -> *mut u8;
    /// # Safety
    /// `p` was returned by this allocator and is live; its size is `size`.
    unsafe fn free(&self, p: *mut u8, size: usize);
    /// The allocator's version string.
    fn version(&self) -> String;
    /// The allocator's own counters, where it has them.
    fn counters(&self) -> Counters;
    /// The settings in force, as the allocator itself reports them (purge delays), in words.
    fn settings_note(&self) -> Option<String> {
        None
    }
}

/// The C library's malloc (glibc, or whatever `LD_PRELOAD` put in front of it).
pub struct Libc;

impl AllocatorUnderTest for Libc {
    unsafe fn malloc(&self, size: usize) -> *mut u8 {
        // SAFETY: forwarded contract; malloc accepts any size.
        unsafe { libc::malloc(size).cast() }
    }
    unsafe fn calloc(&self, size: usize) -> *mut u8 {
        // SAFETY: forwarded contract; calloc checks the product for overflow.
        unsafe { libc::calloc(1, size).cast() }
    }
    unsafe fn aligned(&self, size: usize, align: usize) -> *mut u8 {
        let mut p: *mut c_void = std::ptr::null_mut();
        // SAFETY: `p` is a valid out-pointer; align meets posix_memalign's rules per contract.
        let rc = unsafe { libc::posix_memalign(&mut p, align, size) };
        if rc == 0 {
            p.cast()
        } else {
            std::ptr::null_mut()
        }
    }
    unsafe fn realloc(&self, p: *mut u8, _old: usize, new: usize) -> *mut u8 {
        // SAFETY: p is a live block of this allocator (contract).
        unsafe { libc::realloc(p.cast(), new).cast() }
    }
    unsafe fn free(&self, p: *mut u8, _size: usize) {
        // SAFETY: p is a live block of this allocator (contract).
        unsafe { libc::free(p.cast()) }
    }
    fn version(&self) -> String {
        match std::env::var("LD_PRELOAD") {
            Ok(lib) if !lib.is_empty() => format!(
                "{lib} (preloaded over glibc {})",
                crate::os::glibc_version()
            ),
            _ => format!("glibc {}", crate::os::glibc_version()),
        }
    }
    fn counters(&self) -> Counters {
        if std::env::var_os("LD_PRELOAD").is_some() {
            // A preloaded malloc need not implement mallinfo2 meaningfully.
            return Counters::default();
        }
        // SAFETY: mallinfo2 has no preconditions; it reads the allocator's statistics.
        let mi = unsafe { libc::mallinfo2() };
        Counters {
            allocated: Some((mi.uordblks + mi.hblkhd) as u64),
            active: None,
            resident: None,
            mapped: Some((mi.arena + mi.hblkhd) as u64),
        }
    }
}

/// jemalloc 5.3 (tikv-jemalloc-sys, `_rjem_` prefix).
pub struct Jemalloc;

impl AllocatorUnderTest for Jemalloc {
    unsafe fn malloc(&self, size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { tikv_jemalloc_sys::malloc(size).cast() }
    }
    unsafe fn calloc(&self, size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { tikv_jemalloc_sys::calloc(1, size).cast() }
    }
    unsafe fn aligned(&self, size: usize, align: usize) -> *mut u8 {
        let mut p: *mut c_void = std::ptr::null_mut();
        // SAFETY: `p` is a valid out-pointer; align meets posix_memalign's rules per contract.
        let rc = unsafe { tikv_jemalloc_sys::posix_memalign(&mut p, align, size) };
        if rc == 0 {
            p.cast()
        } else {
            std::ptr::null_mut()
        }
    }
    unsafe fn realloc(&self, p: *mut u8, _old: usize, new: usize) -> *mut u8 {
        // SAFETY: p is a live jemalloc block (contract).
        unsafe { tikv_jemalloc_sys::realloc(p.cast(), new).cast() }
    }
    unsafe fn free(&self, p: *mut u8, _size: usize) {
        // Plain free, as C programs (Ruby) call it: sized free would also need the alignment
        // flags of aligned blocks.
        // SAFETY: p is a live jemalloc block (contract).
        unsafe { tikv_jemalloc_sys::free(p.cast()) }
    }
    fn version(&self) -> String {
        let v = tikv_jemalloc_ctl::version::read().unwrap_or("unknown");
        // The C string's terminating NUL comes back as part of the `&str`.
        let v = v.trim_end_matches('\0');
        format!("jemalloc {v} (tikv-jemalloc-sys)")
    }
    fn counters(&self) -> Counters {
        use tikv_jemalloc_ctl::{epoch, stats};
        if epoch::advance().is_err() {
            return Counters::default();
        }
        Counters {
            allocated: stats::allocated::read().ok().map(|v| v as u64),
            active: stats::active::read().ok().map(|v| v as u64),
            resident: stats::resident::read().ok().map(|v| v as u64),
            mapped: stats::mapped::read().ok().map(|v| v as u64),
        }
    }
    fn settings_note(&self) -> Option<String> {
        // SAFETY: both names are NUL-terminated jemalloc option names of type ssize_t.
        let dirty = unsafe { tikv_jemalloc_ctl::raw::read::<isize>(b"opt.dirty_decay_ms\0") };
        // SAFETY: as above.
        let muzzy = unsafe { tikv_jemalloc_ctl::raw::read::<isize>(b"opt.muzzy_decay_ms\0") };
        match (dirty, muzzy) {
            (Ok(d), Ok(m)) => Some(format!("in force: dirty_decay_ms {d}, muzzy_decay_ms {m}")),
            _ => None,
        }
    }
}

/// `mi_option_purge_delay` in mimalloc 2.x's `mimalloc.h` (the 16th option; libmimalloc-sys does
/// not export the constant).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc 2.x (libmimalloc-sys, feature v2).
pub struct Mimalloc;

impl AllocatorUnderTest for Mimalloc {
    unsafe fn malloc(&self, size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { libmimalloc_sys::mi_malloc(size).cast() }
    }
    unsafe fn calloc(&self, size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { libmimalloc_sys::mi_calloc(1, size).cast() }
    }
    unsafe fn aligned(&self, size: usize, align: usize) -> *mut u8 {
        // SAFETY: forwarded contract; align is a power of two.
        unsafe { libmimalloc_sys::mi_malloc_aligned(size, align).cast() }
    }
    unsafe fn realloc(&self, p: *mut u8, _old: usize, new: usize) -> *mut u8 {
        // SAFETY: p is a live mimalloc block (contract).
        unsafe { libmimalloc_sys::mi_realloc(p.cast(), new).cast() }
    }
    unsafe fn free(&self, p: *mut u8, _size: usize) {
        // SAFETY: p is a live mimalloc block (contract).
        unsafe { libmimalloc_sys::mi_free(p.cast()) }
    }
    fn version(&self) -> String {
        // SAFETY: mi_version has no preconditions.
        let v = unsafe { libmimalloc_sys::mi_version() };
        format!("mimalloc {}.{}.{}", v / 10000, (v / 100) % 100, v % 100)
    }
    fn counters(&self) -> Counters {
        let (mut elapsed, mut user, mut sys) = (0usize, 0usize, 0usize);
        let (mut rss, mut peak_rss, mut commit, mut peak_commit, mut faults) =
            (0usize, 0usize, 0usize, 0usize, 0usize);
        // SAFETY: every argument is a valid pointer to a usize out-parameter.
        unsafe {
            libmimalloc_sys::mi_process_info(
                &mut elapsed,
                &mut user,
                &mut sys,
                &mut rss,
                &mut peak_rss,
                &mut commit,
                &mut peak_commit,
                &mut faults,
            );
        }
        Counters {
            allocated: None,
            active: None,
            resident: None,
            mapped: Some(commit as u64),
        }
    }
    fn settings_note(&self) -> Option<String> {
        // SAFETY: mi_option_get reads an option's current value; no preconditions.
        let delay = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        Some(format!("in force: purge_delay {delay} ms"))
    }
}

/// The project's allocator, linked in.
pub struct Ours;

impl Ours {
    /// Sets our purge delay (before the replay starts).
    pub fn set_purge_delay_ns(ns: u64) {
        // Never 0: lhalloc would purge at once, a different code path from a scaled delay.
        lhalloc::set_purge_delay_ns(ns.max(1));
    }
}

impl AllocatorUnderTest for Ours {
    unsafe fn malloc(&self, size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { lhalloc::c::malloc(size) }
    }
    unsafe fn calloc(&self, size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { lhalloc::c::calloc(1, size) }
    }
    unsafe fn aligned(&self, size: usize, align: usize) -> *mut u8 {
        // SAFETY: forwarded contract; align is a power of two.
        unsafe { lhalloc::c::aligned_alloc(align, size) }
    }
    unsafe fn realloc(&self, p: *mut u8, _old: usize, new: usize) -> *mut u8 {
        // SAFETY: p is a live block of ours (contract).
        unsafe { lhalloc::c::realloc(p, new) }
    }
    unsafe fn free(&self, p: *mut u8, _size: usize) {
        // SAFETY: p is a live block of ours (contract).
        unsafe { lhalloc::c::free(p) }
    }
    fn version(&self) -> String {
        format!("lhalloc {}", lhalloc::VERSION)
    }
    fn settings_note(&self) -> Option<String> {
        Some(format!("in force: {}", lhalloc::settings()))
    }
    fn counters(&self) -> Counters {
        let s = lhalloc::stats();
        Counters {
            allocated: Some(s.allocated as u64),
            active: Some(s.active as u64),
            resident: Some(s.resident as u64),
            mapped: Some(s.mapped as u64),
        }
    }
}
