//! Process-wide initialisation and fork safety.
//!
//! Initialisation (lazily, from the first allocation slow path; see `once.rs`): reads the
//! environment options and registers the `pthread_atfork` handlers. It never waits: a thread
//! that finds another one initialising goes on (nothing it does needs the handlers yet), and
//! a child forked while another thread was initialising starts over instead of spinning.
//! `pthread_atfork` may allocate through us; that nested call finds the run in progress in
//! this very thread and goes on.
//!
//! Fork: `prepare` takes every allocator lock in the lock order (thread registry, pools,
//! segments, large cache), except any that the forking thread itself holds — it forked from a
//! signal handler that interrupted an allocator call; the parent releases what prepare took;
//! the child force-releases every lock, resets the structures whose lock the forking thread
//! held (their contents leak in the child: they were half-updated; the child must not return
//! from that signal handler into the interrupted allocator call, as with any non-async-signal-
//! safe function), forgets the other threads' counters, returns slots that were being purged
//! to their segments, and forgets any purge round in progress. Pages held by the parent's
//! other threads stay with their (dead, in the child) heaps: the child leaks them, as in
//! mimalloc. The handlers are idempotent within one fork, so that a second registration
//! (after a restarted initialisation) is harmless.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::large;
use crate::lock::ForkHold;
use crate::once::Once;
use crate::os;
use crate::pool::POOLS;
use crate::segment::SEGMENTS;
use crate::size_class::NUM_CLASSES;
use crate::thread_stats::{self, REGISTRY};

static INIT: Once = Once::new();

/// Set between `prepare` and `parent`/`child` of one fork.
static IN_FORK: AtomicBool = AtomicBool::new(false);
/// Locks the forking thread held itself at `prepare` (see [`lock_bit`]).
static SELF_HELD: AtomicU64 = AtomicU64::new(0);

/// Bit of a lock in [`SELF_HELD`]: 0 registry, 1..=NUM_CLASSES pools, then segments, large.
const fn lock_bit(i: usize) -> u64 {
    1u64 << i
}
const SEGMENTS_BIT: usize = NUM_CLASSES + 1;
const LARGE_BIT: usize = NUM_CLASSES + 2;
const _: () = assert!(LARGE_BIT < 64);

/// Initialises the allocator once; cheap afterwards.
#[inline]
pub fn ensure() {
    if !INIT.is_done() {
        init_slow();
    }
}

#[cold]
fn init_slow() {
    INIT.call(|| {
        crate::options::load_env();
        if os::kernel_page_size() != crate::geometry::OS_PAGE {
            os::fatal("lhalloc: the kernel's page size is not 4096 bytes; unsupported\n");
        }
        // SAFETY: the handlers are `extern "C"` functions that never unwind.
        unsafe {
            libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child));
        }
    });
}

/// Takes every allocator lock in the lock order; returns the set held by the caller already
/// (those are not taken again).
pub fn lock_all() -> u64 {
    let mut held = 0u64;
    let mut take = |bit: usize, r: ForkHold| {
        if r == ForkHold::HeldBySelf {
            held |= lock_bit(bit);
        }
    };
    take(0, REGISTRY.acquire_for_fork());
    for (c, p) in POOLS.iter().enumerate() {
        take(1 + c, p.acquire_for_fork());
    }
    take(SEGMENTS_BIT, SEGMENTS.acquire_for_fork());
    take(LARGE_BIT, large::CACHE.acquire_for_fork());
    held
}

/// Releases every allocator lock taken by [`lock_all`] (those not in `held`).
///
/// # Safety
/// The caller took them with [`lock_all`], which returned `held`, or is the only thread of a
/// forked child (where every lock is released).
pub unsafe fn unlock_all(held: u64) {
    // SAFETY: forwarded contract.
    unsafe {
        if held & lock_bit(LARGE_BIT) == 0 {
            large::CACHE.unlock_raw();
        }
        if held & lock_bit(SEGMENTS_BIT) == 0 {
            SEGMENTS.unlock_raw();
        }
        for (c, p) in POOLS.iter().enumerate().rev() {
            if held & lock_bit(1 + c) == 0 {
                p.unlock_raw();
            }
        }
        if held & lock_bit(0) == 0 {
            REGISTRY.unlock_raw();
        }
    }
}

extern "C" fn fork_prepare() {
    if IN_FORK.swap(true, Ordering::Acquire) {
        return;
    }
    let held = lock_all();
    SELF_HELD.store(held, Ordering::Relaxed);
}

extern "C" fn fork_parent() {
    if !IN_FORK.load(Ordering::Relaxed) {
        return;
    }
    let held = SELF_HELD.load(Ordering::Relaxed);
    // SAFETY: `fork_prepare` took the locks not in `held` in this thread.
    unsafe { unlock_all(held) };
    IN_FORK.store(false, Ordering::Release);
}

extern "C" fn fork_child() {
    if !IN_FORK.load(Ordering::Relaxed) {
        return;
    }
    let held = SELF_HELD.load(Ordering::Relaxed);
    // SAFETY: the child has a single thread, the one that forked; structures whose lock it
    // held itself were interrupted half-way and are reset before their locks are released.
    unsafe {
        if held & lock_bit(0) != 0 {
            thread_stats::reset_in_child();
        }
        thread_stats::keep_only_self_in_child();
        for (c, p) in POOLS.iter().enumerate() {
            if held & lock_bit(1 + c) != 0 {
                let pool = p.peek_mut();
                pool.heads = [core::ptr::null(); crate::pool::BUCKETS];
                pool.len = 0;
            }
        }
        crate::segment::after_fork_child(held & lock_bit(SEGMENTS_BIT) != 0);
        if held & lock_bit(LARGE_BIT) != 0 {
            large::reset_in_child();
        }
        unlock_all(0);
    }
    crate::purge::after_fork_child();
    IN_FORK.store(false, Ordering::Release);
}
