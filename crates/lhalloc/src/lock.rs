//! A small test-and-test-and-set spin lock that yields to the scheduler when contended. It
//! never allocates, so it can guard allocator state, and it remembers its holder (a thread
//! token) so that:
//! - a thread that re-enters a lock it already holds (a signal handler calling malloc while
//!   the interrupted code was inside the allocator) aborts with a message instead of spinning
//!   forever;
//! - the fork handlers can tell "held by another thread" (wait for it) from "held by the
//!   forking thread itself" (a `fork` from a signal handler; see `init.rs`).
//!
//! Invariant: `holder == 0` iff the lock is free; otherwise `holder` is the token
//! (`os::thread_token`) of the thread holding it.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::os;

/// A spin lock around a `T`.
pub struct Lock<T> {
    holder: AtomicUsize,
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
            holder: AtomicUsize::new(0),
            value: UnsafeCell::new(value),
        }
    }

    /// Takes the lock, spinning and then yielding while another thread holds it. Aborts the
    /// process if the calling thread already holds it (re-entry from a signal handler).
    #[inline]
    pub fn lock(&self) -> Guard<'_, T> {
        self.lock_raw();
        Guard { lock: self }
    }

    /// Takes the lock without a guard (the fork handlers and the validator release it later).
    pub fn lock_raw(&self) {
        let me = os::thread_token();
        if self
            .holder
            .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        self.lock_contended(me);
    }

    #[cold]
    fn lock_contended(&self, me: usize) {
        let mut spins = 0u32;
        loop {
            loop {
                let h = self.holder.load(Ordering::Relaxed);
                if h == 0 {
                    break;
                }
                if h == me {
                    os::fatal(
                        "lhalloc: allocator re-entered while it held a lock (malloc or free \
                         called from a signal handler?); aborting instead of deadlocking\n",
                    );
                }
                spins += 1;
                if spins < 64 {
                    core::hint::spin_loop();
                } else {
                    os::yield_now();
                }
            }
            if self
                .holder
                .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    /// For the `fork` prepare handler: takes the lock, unless the calling thread holds it
    /// already (it forked from a signal handler that interrupted an allocator call).
    pub fn acquire_for_fork(&self) -> ForkHold {
        if self.holder.load(Ordering::Relaxed) == os::thread_token() {
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
    /// (where the holder, if any, no longer exists).
    ///
    /// # Safety
    /// The caller took the lock with `lock_raw` and holds no `Guard` of it, or is the only
    /// thread of a freshly forked child.
    pub unsafe fn unlock_raw(&self) {
        self.holder.store(0, Ordering::Release);
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
        self.lock.holder.store(0, Ordering::Release);
    }
}
