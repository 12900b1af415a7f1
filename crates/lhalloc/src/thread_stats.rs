//! Per-thread allocation counters and the registry that lets `stats()` sum them without
//! stopping anybody. Each thread's heap holds a [`ThreadStats`]; its owner updates `live`
//! with a plain (relaxed load + store) add on every malloc and free, other threads only read
//! it. Registered counters are on a list under the registry lock, which only thread start,
//! thread exit, `fork` and `stats()` take: never a malloc or free.
//!
//! Equation: bytes allocated (in size-classed pages) `== Σ registered live +
//! counters::ORPHAN_ALLOCATED` (wrapping; a thread's own `live` goes "negative" when it frees
//! other threads' blocks). At thread exit a counter is unregistered and its value folded into
//! `ORPHAN_ALLOCATED`.

use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::counters;
use crate::lock::{thread_token, Lock};

/// One thread's counters.
pub struct ThreadStats {
    /// Bytes this thread handed out minus bytes it took back (wrapping).
    pub live: AtomicUsize,
    next: Cell<*const ThreadStats>,
    prev: Cell<*const ThreadStats>,
    registered: Cell<bool>,
    /// The registering thread's token (`lock::thread_token`).
    token: Cell<u32>,
}

impl ThreadStats {
    /// Fresh, unregistered counters.
    pub const fn new() -> ThreadStats {
        ThreadStats {
            live: AtomicUsize::new(0),
            next: Cell::new(ptr::null()),
            prev: Cell::new(ptr::null()),
            registered: Cell::new(false),
            token: Cell::new(0),
        }
    }

    /// Adds `n` bytes (owner only: a plain load and store, no atomic read-modify-write).
    #[inline]
    pub fn add(&self, n: usize) {
        let v = self.live.load(Ordering::Relaxed);
        self.live.store(v.wrapping_add(n), Ordering::Relaxed);
    }

    /// Subtracts `n` bytes (owner only).
    #[inline]
    pub fn sub(&self, n: usize) {
        let v = self.live.load(Ordering::Relaxed);
        self.live.store(v.wrapping_sub(n), Ordering::Relaxed);
    }

    /// Whether these counters are on the registry.
    pub fn is_registered(&self) -> bool {
        self.registered.get()
    }
}

/// The registry: a doubly linked list of the registered counters.
pub struct Registry {
    head: *const ThreadStats,
}

// SAFETY: the list links point to counters of live threads (unregistered before their memory
// goes away), touched only under the registry lock.
unsafe impl Send for Registry {}

/// The registry lock. Lock order: first of all (before the pool locks).
pub static REGISTRY: Lock<Registry> = Lock::new(Registry { head: ptr::null() });

/// Registers `s` (the calling thread's counters).
///
/// # Safety
/// `s` lives until [`unregister`] is called on it by the same thread, and is not registered.
pub unsafe fn register(s: &ThreadStats) {
    let mut r = REGISTRY.lock();
    s.token.set(thread_token());
    s.prev.set(ptr::null());
    s.next.set(r.head);
    if !r.head.is_null() {
        // SAFETY: registered counters are alive (see the module docs).
        unsafe { (*r.head).prev.set(s) };
    }
    r.head = s;
    s.registered.set(true);
}

/// Unregisters `s` and folds its value into `ORPHAN_ALLOCATED`.
///
/// # Safety
/// `s` was registered by the calling thread with [`register`] and is still alive.
pub unsafe fn unregister(s: &ThreadStats) {
    let mut r = REGISTRY.lock();
    // Walk rather than trust `s`'s links: after a fork from a signal handler the child's
    // registry may have been reset (`reset_in_child`) while `s` still looked registered.
    let mut p = r.head;
    while !p.is_null() && !core::ptr::eq(p, s) {
        // SAFETY: registered counters are alive while we hold the lock.
        p = unsafe { (*p).next.get() };
    }
    if p.is_null() {
        s.registered.set(false);
        let v = s.live.swap(0, Ordering::Relaxed);
        counters::ORPHAN_ALLOCATED.fetch_add(v, Ordering::Relaxed);
    } else {
        // SAFETY: `s` is on the list; the lock is held.
        unsafe { unlink(&mut r, s) };
    }
}

/// # Safety
/// `s` is on `r`'s list; the caller holds the registry (lock, or sole thread of a child).
unsafe fn unlink(r: &mut Registry, s: &ThreadStats) {
    let prev = s.prev.get();
    let next = s.next.get();
    if prev.is_null() {
        r.head = next;
    } else {
        // SAFETY: registered counters are alive.
        unsafe { (*prev).next.set(next) };
    }
    if !next.is_null() {
        // SAFETY: as above.
        unsafe { (*next).prev.set(prev) };
    }
    s.registered.set(false);
    let v = s.live.swap(0, Ordering::Relaxed);
    counters::ORPHAN_ALLOCATED.fetch_add(v, Ordering::Relaxed);
}

/// Σ registered `live` + `ORPHAN_ALLOCATED` (wrapping), read without stopping any thread.
pub fn allocated() -> usize {
    let r = REGISTRY.lock();
    let mut sum = counters::ORPHAN_ALLOCATED.load(Ordering::Relaxed);
    let mut p = r.head;
    while !p.is_null() {
        // SAFETY: registered counters are alive while we hold the registry lock.
        let s = unsafe { &*p };
        sum = sum.wrapping_add(s.live.load(Ordering::Relaxed));
        p = s.next.get();
    }
    sum
}

/// In a forked child: drops every registered counter but the forking thread's (the other
/// threads do not exist in the child, and their stacks may be unmapped), folding their values
/// into `ORPHAN_ALLOCATED` (their blocks live on in the child).
///
/// # Safety
/// Only the fork child handler calls it (one thread; the registry lock abandoned or held by
/// the prepare handler).
pub unsafe fn keep_only_self_in_child() {
    // SAFETY: the child has one thread.
    let r = unsafe { REGISTRY.peek_mut() };
    let me = thread_token();
    let mut p = r.head;
    while !p.is_null() {
        // SAFETY: the list was consistent when the prepare handler took the lock, and the
        // other threads' counters are still mapped at this point (fork copied them).
        let s = unsafe { &*p };
        p = s.next.get();
        if s.token.get() != me {
            // SAFETY: `s` is on the list.
            unsafe { unlink(r, s) };
        }
    }
}

/// In a forked child whose forking thread interrupted a registry operation: forgets the list.
///
/// # Safety
/// Only the fork child handler calls it.
pub unsafe fn reset_in_child() {
    // SAFETY: the child has one thread.
    let r = unsafe { REGISTRY.peek_mut() };
    r.head = ptr::null();
}
