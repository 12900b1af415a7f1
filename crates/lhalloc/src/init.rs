//! Process-wide initialisation (once, lazily, on the first slow path) and fork safety.
//!
//! Order matters because both pthread calls below may allocate through us when we are the
//! process's malloc: the pthread key is created first (it never allocates), the state is set to
//! READY, and only then is `pthread_atfork` called, so a nested malloc finds us ready.
//!
//! Fork: `prepare` takes every allocator lock in the lock order (pools, segments, large cache);
//! the parent releases them; the child force-releases them and forgets the purger thread (it
//! does not exist in the child and is restarted lazily). Pages held by the parent's other
//! threads stay with their (dead, in the child) heaps: the child leaks them, as mimalloc does.

use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};

use crate::large;
use crate::pool::POOLS;
use crate::segment::SEGMENTS;

const UNINIT: u8 = 0;
const RUNNING: u8 = 1;
const READY: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNINIT);
static KEY: AtomicU32 = AtomicU32::new(0);

/// Initialises the allocator once; cheap afterwards.
#[inline]
pub fn ensure() {
    if STATE.load(Ordering::Acquire) != READY {
        init_slow();
    }
}

#[cold]
fn init_slow() {
    if STATE
        .compare_exchange(UNINIT, RUNNING, Ordering::Acquire, Ordering::Acquire)
        .is_err()
    {
        while STATE.load(Ordering::Acquire) != READY {
            // SAFETY: sched_yield has no preconditions.
            unsafe {
                libc::sched_yield();
            }
        }
        return;
    }
    crate::options::load_env();
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is writable; the destructor has the required signature and never unwinds.
    let rc = unsafe { libc::pthread_key_create(&mut key, Some(crate::heap::thread_exit)) };
    if rc == 0 {
        KEY.store(key + 1, Ordering::Relaxed);
    }
    STATE.store(READY, Ordering::Release);
    // SAFETY: the handlers are `extern "C"` functions that never unwind.
    unsafe {
        libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child));
    }
}

/// Registers the calling thread's heap for the thread-exit destructor.
pub fn register_thread(heap: *mut libc::c_void) {
    let k = KEY.load(Ordering::Relaxed);
    if k != 0 {
        // SAFETY: `k - 1` is a key we created; the value is the caller's heap pointer.
        unsafe {
            libc::pthread_setspecific(k - 1, heap);
        }
    }
}

/// Takes every allocator lock in the lock order.
pub fn lock_all() {
    for p in POOLS.iter() {
        p.lock_raw();
    }
    SEGMENTS.lock_raw();
    large::CACHE.lock_raw();
}

/// Releases every allocator lock.
///
/// # Safety
/// The caller took them with [`lock_all`], or is the only thread of a forked child.
pub unsafe fn unlock_all() {
    // SAFETY: forwarded contract.
    unsafe {
        large::CACHE.unlock_raw();
        SEGMENTS.unlock_raw();
        for p in POOLS.iter().rev() {
            p.unlock_raw();
        }
    }
}

extern "C" fn fork_prepare() {
    lock_all();
}

extern "C" fn fork_parent() {
    // SAFETY: `fork_prepare` took all locks in this thread.
    unsafe { unlock_all() };
}

extern "C" fn fork_child() {
    // SAFETY: the child has a single thread, the one that forked and took the locks.
    unsafe { unlock_all() };
    crate::purge::forget_after_fork();
}
