//! Per-thread heaps: one active page per size class, nothing else. Allocation pops the active
//! page's free list (no atomics); freeing a block of one's own active page pushes it back.
//! When the active page runs dry the heap collects its remote frees, carves more of it, or
//! retires it as FULL (held by nobody) and refills from the class pool (fullest page first) or
//! a fresh page. Keeping a single page per class bounds what a thread can strand (mimalloc#351:
//! memory owned by idle pool threads is never returned).
//!
//! Thread exit (a pthread key destructor, which does not allocate) hands the active pages back:
//! empty ones to their segments, others to the pools.
//!
//! Invariant: `pages[c]` is null or a page with `owner == id(heap)` and `class == c`.

use core::cell::Cell;
use core::ptr;
use core::sync::atomic::Ordering;

use crate::init;
use crate::page::Page;
use crate::pool;
use crate::purge;
use crate::remote;
use crate::segment::{self, KIND_SEGMENT};
use crate::size_class::{self, NUM_CLASSES, SMALL_MAX};

const FRESH: u8 = 0;
const ACTIVE: u8 = 1;
const DONE: u8 = 2;

/// A thread's heap.
pub struct Heap {
    pages: [Cell<*const Page>; NUM_CLASSES],
    state: Cell<u8>,
}

impl Heap {
    const fn new() -> Heap {
        Heap {
            pages: [const { Cell::new(ptr::null()) }; NUM_CLASSES],
            state: Cell::new(FRESH),
        }
    }

    #[inline]
    fn id(&self) -> usize {
        self as *const Heap as usize
    }
}

thread_local! {
    // Const-initialised and without Drop: no lazy registration, no allocation on access.
    static HEAP: Heap = const { Heap::new() };
}

/// Id of the calling thread's heap.
#[inline]
pub fn current_id() -> usize {
    HEAP.with(|h| h.id())
}

/// Allocates `size <= SMALL_MAX` bytes from class `class_of(size)`.
#[inline]
pub fn malloc_small(cls: usize) -> *mut u8 {
    HEAP.with(|heap| {
        let page = heap.pages[cls].get();
        if !page.is_null() {
            // SAFETY: a heap's active page is a live descriptor held by this thread.
            let p = unsafe { (*page).pop() };
            if !p.is_null() {
                return p;
            }
        }
        alloc_slow(heap, cls)
    })
}

/// Allocates `size` bytes (any size); null on failure.
#[inline]
pub fn malloc(size: usize) -> *mut u8 {
    if size <= SMALL_MAX {
        malloc_small(size_class::class_of(size))
    } else {
        crate::large::alloc(size, size_class::MIN_ALIGN, false)
    }
}

/// Allocates `size` bytes aligned to `align` (a power of two); null on failure.
pub fn malloc_aligned(align: usize, size: usize) -> *mut u8 {
    if align <= size_class::MIN_ALIGN {
        return malloc(size);
    }
    if align <= segment::SLOT_SIZE {
        if let Some(cls) = size_class::class_for_aligned(size, align) {
            return malloc_small(cls);
        }
    }
    crate::large::alloc(size, align, false)
}

#[cold]
#[inline(never)]
fn alloc_slow(heap: &Heap, cls: usize) -> *mut u8 {
    // Both may allocate (pthread_atfork, pthread_create): do them before touching the heap.
    init::ensure();
    purge::maybe_start();
    if heap.state.get() != ACTIVE {
        activate(heap);
    }
    let me = heap.id();
    let cur = heap.pages[cls].get();
    if !cur.is_null() {
        // SAFETY: the active page is a live descriptor held by this thread.
        let page = unsafe { &*cur };
        page.collect_remote();
        if page.free.get().is_null() {
            page.extend();
        }
        let p = page.pop();
        if !p.is_null() {
            return p;
        }
        heap.pages[cls].set(ptr::null());
        if !remote::retire_full(page, me) {
            page.collect_remote();
            heap.pages[cls].set(cur);
            return page.pop();
        }
    }
    loop {
        let mut p = pool::take(cls);
        if p.is_null() {
            p = segment::alloc_page(cls);
            if p.is_null() {
                return ptr::null_mut();
            }
        }
        // SAFETY: `take`/`alloc_page` hand us a live descriptor that nobody else holds.
        let page = unsafe { &*p };
        page.owner.store(me, Ordering::Relaxed);
        page.collect_remote();
        if page.free.get().is_null() {
            page.extend();
        }
        let b = page.pop();
        if !b.is_null() {
            heap.pages[cls].set(p);
            return b;
        }
        if !remote::retire_full(page, me) {
            page.collect_remote();
            heap.pages[cls].set(p);
            return page.pop();
        }
    }
}

/// Marks the heap active and registers it for the thread-exit destructor.
fn activate(heap: &Heap) {
    // Active first: pthread_setspecific may calloc (keys >= 32), which must find the heap usable.
    heap.state.set(ACTIVE);
    init::register_thread(heap as *const Heap as *mut libc::c_void);
}

/// Frees block `p` (not null).
///
/// # Safety
/// `p` was returned by this allocator and is not used any more.
#[inline]
pub unsafe fn free(p: *mut u8) {
    let base = segment::region_of(p);
    // SAFETY: every pointer we hand out lies in a region whose first word is its kind.
    let kind = unsafe { *base.cast::<u32>() };
    if kind == KIND_SEGMENT {
        // SAFETY: `p` is a live block of segment `base`.
        let page = unsafe { segment::page_of(base, p) };
        HEAP.with(|heap| {
            if page.owner.load(Ordering::Relaxed) == heap.id() {
                // SAFETY: this thread holds the page and `p` is one of its live blocks.
                unsafe { page.push_local(p) }
            } else {
                // SAFETY: `p` is a live block of `page`.
                unsafe { remote::free_remote(page, p) }
            }
        })
    } else {
        // SAFETY: `p` is a live large block whose mapping starts at `base`.
        unsafe { crate::large::free(base) }
    }
}

/// Usable size of block `p` (not null).
///
/// # Safety
/// `p` was returned by this allocator and is live.
#[inline]
pub unsafe fn usable_size(p: *mut u8) -> usize {
    let base = segment::region_of(p);
    // SAFETY: every pointer we hand out lies in a region whose first word is its kind.
    let kind = unsafe { *base.cast::<u32>() };
    if kind == KIND_SEGMENT {
        // SAFETY: `p` is a live block of segment `base`.
        unsafe { segment::page_of(base, p) }.bsize()
    } else {
        // SAFETY: `p` is a live large block whose mapping starts at `base`.
        unsafe { crate::large::usable(base) }
    }
}

/// Whether `p` is a large block (its own mapping) — `calloc` uses it to skip zeroing.
pub fn is_large(p: *mut u8) -> bool {
    let base = segment::region_of(p);
    // SAFETY: every pointer we hand out lies in a region whose first word is its kind.
    unsafe { *base.cast::<u32>() != KIND_SEGMENT }
}

/// Hands every active page of `heap` back: empty ones to their segments, others to the pools.
fn release_pages(heap: &Heap) {
    let me = heap.id();
    for slot in heap.pages.iter() {
        let p = slot.get();
        if p.is_null() {
            continue;
        }
        slot.set(ptr::null());
        // SAFETY: an active page is a live descriptor held by this thread.
        let page = unsafe { &*p };
        page.collect_remote();
        if page.used.load(Ordering::Relaxed) == 0 {
            // SAFETY: we hold the page and no block of it is in use.
            unsafe { segment::free_page(page) };
        } else if page.has_free() || !remote::retire_full(page, me) {
            page.owner.store(0, Ordering::Relaxed);
            pool::push(page);
        }
    }
}

/// Releases the calling thread's empty active pages (used by `purge::collect`).
pub fn release_empty_pages() {
    HEAP.with(|heap| {
        for slot in heap.pages.iter() {
            let p = slot.get();
            if p.is_null() {
                continue;
            }
            // SAFETY: an active page is a live descriptor held by this thread.
            let page = unsafe { &*p };
            page.collect_remote();
            if page.used.load(Ordering::Relaxed) == 0 {
                slot.set(ptr::null());
                // SAFETY: we hold the page and no block of it is in use.
                unsafe { segment::free_page(page) };
            }
        }
    })
}

/// The pthread key destructor: runs at thread exit with the heap pointer.
///
/// # Safety
/// `arg` is the heap pointer registered by `activate` for the exiting thread.
pub unsafe extern "C" fn thread_exit(arg: *mut libc::c_void) {
    // SAFETY: per the contract `arg` is this thread's heap; thread-local storage stays valid
    // while pthread key destructors run.
    let heap = unsafe { &*(arg as *const Heap) };
    release_pages(heap);
    heap.state.set(DONE);
}

/// Calls `f` on the calling thread's active pages (for the validator).
pub fn for_each_active_page(mut f: impl FnMut(&Page)) {
    HEAP.with(|heap| {
        for slot in heap.pages.iter() {
            let p = slot.get();
            if !p.is_null() {
                // SAFETY: an active page is a live descriptor held by this thread.
                f(unsafe { &*p });
            }
        }
    })
}
