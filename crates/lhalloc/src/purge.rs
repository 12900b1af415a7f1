//! Giving memory back to the OS, and the background purger thread.
//!
//! Policy: an empty page goes back to its segment as "dirty"; dirty slots are purged with
//! MADV_DONTNEED (RSS drops at once, unlike MADV_FREE) once they have been free for the purge
//! delay (default 1 s, [`crate::set_purge_delay_ms`]), and at once when the dirty bytes pass the
//! cap (32 MiB) or the delay is 0. A segment that is entirely free and cold is unmapped (one is
//! kept, purged, as a spare). Cached
//! large mappings older than the delay are unmapped. The delay avoids the cost of purging and
//! re-faulting memory that is about to be reused (-5..18% throughput when purging eagerly, see
//! the design notes); the cap bounds RSS whatever the timing.
//!
//! The purger thread wakes every `clamp(delay / 4, 10 ms, 250 ms)`, collects the remote frees of
//! pooled pages (so pages emptied by other threads' frees are found without any owner), frees
//! the empty ones, and purges what is old enough — so an idle process shrinks too. It is started
//! lazily, from an allocation slow path that holds no lock, the first time there is something
//! to purge; `pthread_create` may allocate through us, which is then an ordinary nested call.

use core::ptr;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::os;
use crate::pool::{self, BUCKETS, POOLS};
use crate::segment::{self, SEGMENTS};
use crate::size_class::{self, NUM_CLASSES};

/// Pooled pages of blocks at least this big get their free blocks' interiors purged after the
/// delay (`Page::trim_free`), without waiting for the whole page to empty: a 128 KiB page of
/// 64 KiB blocks (Ruby's heap pages, socket buffers) may stay partly used for a long time.
pub const TRIM_MIN_BLOCK: usize = 16 << 10;

static WANTED: AtomicBool = AtomicBool::new(false);
static STARTED: AtomicBool = AtomicBool::new(false);

/// Notes that there is memory to purge (called under locks: only sets a flag).
#[inline]
pub fn want_purger() {
    if !WANTED.load(Ordering::Relaxed) {
        WANTED.store(true, Ordering::Relaxed);
    }
}

/// Starts the purger thread if it is wanted and not running. Call with no lock held.
#[inline]
pub fn maybe_start() {
    if WANTED.load(Ordering::Relaxed) && !STARTED.load(Ordering::Relaxed) {
        start();
    }
}

/// Whether the background purger thread has been started.
pub fn purger_running() -> bool {
    STARTED.load(Ordering::Relaxed)
}

#[cold]
fn start() {
    if !crate::options::background_enabled() {
        return;
    }
    if STARTED
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    // SAFETY: plain pthread calls on local, initialised values. All signals are blocked while
    // the thread is created so that it inherits a full mask and never takes the program's
    // signals; the caller's mask is restored afterwards.
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
        libc::pthread_create(&mut tid, &attr, purger_main, ptr::null_mut());
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut());
        libc::pthread_attr_destroy(&mut attr);
    }
}

extern "C" fn purger_main(_: *mut libc::c_void) -> *mut libc::c_void {
    loop {
        let delay = crate::options::purge_delay_ms();
        os::sleep_ms((delay / 4).clamp(10, 250));
        tick(os::now_ms(), crate::options::purge_delay_ms());
    }
}

/// In a forked child: the purger thread is gone; let the next slow path start a new one.
pub fn forget_after_fork() {
    STARTED.store(false, Ordering::Relaxed);
    // Wait for a new reason (a page freed or pooled, a large block): a child that only
    // allocates a little before `exec` should not pay for a thread.
    WANTED.store(false, Ordering::Relaxed);
}

/// One purge round: collect pooled pages, free the empty ones, purge what is `delay` ms old.
pub fn tick(now: u64, delay: u64) {
    for cls in 0..NUM_CLASSES {
        collect_pool(cls, now, delay);
    }
    {
        let mut st = SEGMENTS.lock();
        segment::purge_locked(&mut st, now, delay);
    }
    crate::large::purge(now, delay);
}

/// Collects the remote frees of every page in pool `cls`, gives the empty pages back to their
/// segments and re-buckets the others by their new fullness.
fn collect_pool(cls: usize, now: u64, delay: u64) {
    let trim = size_class::block_size(cls) >= TRIM_MIN_BLOCK;
    let mut pool = POOLS[cls].lock();
    if pool.len == 0 {
        return;
    }
    let heads = pool.heads;
    pool.heads = [ptr::null(); BUCKETS];
    pool.len = 0;
    for head in heads {
        let mut p = head;
        while !p.is_null() {
            // SAFETY: pages on the detached lists are live descriptors held by the pool, whose
            // lock we hold.
            let page = unsafe { &*p };
            p = page.next.get();
            page.in_pool.set(false);
            if page.collect_remote() > 0 {
                page.trimmed.set(false);
            }
            if page.used.load(Ordering::Relaxed) == 0 {
                // SAFETY: the pool holds the page, it is unlinked, and no block is in use.
                unsafe { segment::free_page(page) };
            } else {
                if trim && !page.trimmed.get() && now.saturating_sub(page.pooled_at.get()) >= delay
                {
                    let bytes = page.trim_free();
                    crate::stats::PURGED.fetch_add(bytes, Ordering::Relaxed);
                }
                let b = pool::bucket_of(page);
                pool.link(page, b);
            }
        }
    }
}

/// Gives back, now, what can be given back: the calling thread's empty active pages and
/// empty pooled pages go back to their segments; then dirty memory older than the purge delay
/// (all of it if `force`) is purged. Returns the bytes purged by this call (others' purges
/// running at the same time may be counted too).
pub fn collect(force: bool) -> usize {
    crate::init::ensure();
    let before = crate::stats::PURGED.load(Ordering::Relaxed);
    crate::heap::release_empty_pages();
    let delay = if force {
        0
    } else {
        crate::options::purge_delay_ms()
    };
    tick(os::now_ms(), delay);
    crate::stats::PURGED
        .load(Ordering::Relaxed)
        .saturating_sub(before)
}
