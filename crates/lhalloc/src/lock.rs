//! A tiny test-and-test-and-set spin lock that yields to the scheduler when contended. It never
//! allocates, so it can guard allocator state; it can be force-released in a forked child.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

/// A spin lock around a `T`.
pub struct Lock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: `value` is only reached through a `Guard`, which exists only while `locked` is held
// by this thread; the raw pointers inside the guarded states point to allocator metadata that
// is itself only touched under the same lock.
unsafe impl<T> Sync for Lock<T> {}

impl<T> Lock<T> {
    /// A new unlocked lock.
    pub const fn new(value: T) -> Self {
        Lock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Takes the lock, spinning and then yielding while another thread holds it.
    #[inline]
    pub fn lock(&self) -> Guard<'_, T> {
        self.lock_raw();
        Guard { lock: self }
    }

    /// Takes the lock without a guard (used by the fork handlers, which release it later).
    pub fn lock_raw(&self) {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        let mut spins = 0u32;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                spins += 1;
                if spins < 64 {
                    core::hint::spin_loop();
                } else {
                    // SAFETY: sched_yield has no preconditions.
                    unsafe {
                        libc::sched_yield();
                    }
                }
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
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

    /// Releases a lock taken with [`Lock::lock_raw`], or force-releases it in a forked child
    /// (where the holder, if any, no longer exists).
    ///
    /// # Safety
    /// The caller took the lock with `lock_raw` and holds no `Guard` of it, or is the only
    /// thread of a freshly forked child.
    pub unsafe fn unlock_raw(&self) {
        self.locked.store(false, Ordering::Release);
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
        self.lock.locked.store(false, Ordering::Release);
    }
}
