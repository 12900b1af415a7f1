//! A small lock that never allocates, so it can guard allocator state: it spins briefly, then
//! sleeps on a futex (so that a preempted holder does not make every waiter burn its time
//! slice: on an oversubscribed machine, spinning and yielding convoys), and it remembers its
//! holder (a thread token) so that:
//! - a thread that re-enters a lock it already holds (a signal handler calling malloc while
//!   the interrupted code was inside the allocator) aborts with a message instead of waiting
//!   for ever;
//! - the fork handlers can tell "held by another thread" (wait for it) from "held by the
//!   forking thread itself" (a `fork` from a signal handler; see `init.rs`).
//!
//! Invariant: `word == 0` iff the lock is free; otherwise `word & TOKEN_MASK` is the holder's
//! [`thread_token`] (set by the same atomic operation that takes the lock, so there is no
//! moment where the lock is held by nobody in particular), and `word & SLEEPERS` may be set
//! when threads sleep on it.

use core::cell::{Cell, UnsafeCell};
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU32, Ordering};

use crate::os;

const FREE: u32 = 0;
const SLEEPERS: u32 = 1 << 31;
const TOKEN_MASK: u32 = !SLEEPERS;
/// Spins before sleeping.
const SPINS: u32 = 100;

/// Next thread token (tokens are never reused; 2^31 - 1 threads before they would wrap).
static NEXT_TOKEN: AtomicU32 = AtomicU32::new(1);

thread_local! {
    static TOKEN: Cell<u32> = const { Cell::new(0) };
}

/// A non-zero token naming the calling thread, unique in the process and kept across `fork`
/// by the thread that forks (it lives in the thread's TLS, which the child copies).
#[inline]
pub fn thread_token() -> u32 {
    TOKEN.with(|t| {
        let v = t.get();
        if v != 0 {
            return v;
        }
        let v = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed) & TOKEN_MASK;
        let v = v.max(1);
        t.set(v);
        v
    })
}

/// A lock around a `T`.
pub struct Lock<T> {
    word: AtomicU32,
    value: UnsafeCell<T>,
}

// SAFETY: `value` is only reached through a `Guard` (or `peek`), which exists only while this
// thread holds the lock, so at most one thread touches the `T` at a time; moving access
// between threads that way needs `T: Send`.
unsafe impl<T: Send> Sync for Lock<T> {}

/// What [`Lock::acquire_for_fork`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ForkHold {
    /// The lock is now held by the forking thread.
    Taken,
    /// The forking thread already held it (it forked from a signal handler that interrupted
    /// an allocator call); the protected state may be half-updated.
    HeldBySelf,
}

impl<T> Lock<T> {
    /// A new unlocked lock.
    pub const fn new(value: T) -> Self {
        Lock {
            word: AtomicU32::new(FREE),
            value: UnsafeCell::new(value),
        }
    }

    /// Takes the lock, spinning briefly and then sleeping while another thread holds it.
    /// Aborts the process if the calling thread already holds it (re-entry from a signal
    /// handler).
    #[inline]
    pub fn lock(&self) -> Guard<'_, T> {
        self.lock_raw();
        Guard { lock: self }
    }

    /// Takes the lock without a guard (the fork handlers and the validator release it later).
    pub fn lock_raw(&self) {
        let me = thread_token();
        if self
            .word
            .compare_exchange(FREE, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended(me);
        }
    }

    #[cold]
    fn lock_contended(&self, me: u32) {
        for _ in 0..SPINS {
            let w = self.word.load(Ordering::Relaxed);
            if w & TOKEN_MASK == me {
                os::fatal(
                    "lhalloc: allocator re-entered while it held a lock (malloc or free called \
                     from a signal handler?); aborting instead of deadlocking\n",
                );
            }
            if w == FREE
                && self
                    .word
                    .compare_exchange(FREE, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
            core::hint::spin_loop();
        }
        // Sleep until released; once we slept, take it with the SLEEPERS mark kept (others
        // may still sleep), as in Drepper's mutex.
        loop {
            let w = self.word.load(Ordering::Relaxed);
            if w == FREE {
                if self
                    .word
                    .compare_exchange(FREE, me | SLEEPERS, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
                continue;
            }
            if w & SLEEPERS == 0
                && self
                    .word
                    .compare_exchange(w, w | SLEEPERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            os::futex_wait(&self.word, w | SLEEPERS);
        }
    }

    /// For the `fork` prepare handler: takes the lock, unless the calling thread holds it
    /// already (it forked from a signal handler that interrupted an allocator call).
    pub fn acquire_for_fork(&self) -> ForkHold {
        if self.word.load(Ordering::Relaxed) & TOKEN_MASK == thread_token() {
            ForkHold::HeldBySelf
        } else {
            self.lock_raw();
            ForkHold::Taken
        }
    }

    /// Reads the value of a lock taken with [`Lock::lock_raw`].
    ///
    /// # Safety
    /// The caller holds the lock (taken with `lock_raw`) for as long as it uses the reference.
    pub unsafe fn peek(&self) -> &T {
        // SAFETY: per the contract the lock is held, so nobody writes the value meanwhile.
        unsafe { &*self.value.get() }
    }

    /// Mutable access to the value of a lock taken with [`Lock::lock_raw`].
    ///
    /// # Safety
    /// The caller holds the lock (or is the only thread of a forked child) and no other
    /// reference to the value is in use.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn peek_mut(&self) -> &mut T {
        // SAFETY: per the contract the access is exclusive.
        unsafe { &mut *self.value.get() }
    }

    /// Releases a lock taken with [`Lock::lock_raw`], or force-releases it in a forked child
    /// (where the holder, if any, no longer exists, nor do sleepers).
    ///
    /// # Safety
    /// The caller took the lock with `lock_raw` and holds no `Guard` of it, or is the only
    /// thread of a freshly forked child.
    pub unsafe fn unlock_raw(&self) {
        self.release();
    }

    #[inline]
    fn release(&self) {
        if self.word.swap(FREE, Ordering::Release) & SLEEPERS != 0 {
            os::futex_wake_one(&self.word);
        }
    }
}

/// Proof that the lock is held; releases it on drop.
pub struct Guard<'a, T> {
    lock: &'a Lock<T>,
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard proves exclusive access to the value.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves exclusive access to the value.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.release();
    }
}
