//! Per-thread heaps: one active page per size class, the thread's allocation counters and its
//! batch of pending remote frees. Allocation pops the active page's free list (no atomics,
//! no locks); freeing a block of one's own active page pushes it back; freeing another
//! page's block goes into the remote batch (`remote.rs`). When the active page runs dry the
//! heap collects its remote frees, carves more of it, or retires it as FULL (held by nobody)
//! and refills from the class pool (fullest page first) or a fresh page. Keeping a single
//! page per class bounds what a thread can strand (mimalloc#351: memory owned by idle pool
//! threads is never returned).
//!
//! Every slow path also (1) runs the deferred purge round when one is due (`purge.rs`), and
//! (2) once per purge delay, hands back the active pages of the classes it has not touched
//! since the previous check (*idle release*), so that a thread that allocated from a class
//! once does not keep that page for ever.
//!
//! Heap ids are unique for the life of the process (a counter, never a reused address), so a
//! page abandoned by a thread that died without its destructor (e.g. in a fork child) can
//! never be mistaken for a later thread's.
//!
//! Thread exit (a pthread key destructor, which does not allocate) flushes the remote batch
//! and hands the active pages back: empty ones to their segments, others to the pools.
//!
//! Invariant: `pages[c]` is null or a page with `owner == id` and `class == c`; a heap with
//! an active page is registered (`stats.is_registered()`).

use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::geometry::{region_of, KIND_SEGMENT, MIN_ALIGN, SLOT_SIZE, SMALL_MAX};
use crate::init;
use crate::large;
use crate::once::Once;
use crate::os;
use crate::page::Page;
use crate::pool;
use crate::purge;
use crate::remote::{self, RemoteBatch};
use crate::segment;
use crate::size_class::{self, NUM_CLASSES};
use crate::solo;
use crate::thread_stats::{self, ThreadStats};

/// Id of a heap that has none yet (never equal to a page's owner).
const NO_ID: usize = usize::MAX;
const FRESH: u8 = 0;
const ACTIVE: u8 = 1;
const DONE: u8 = 2;

/// Next heap id (ids start at 1; 0 is "no owner").
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// The pthread key whose destructor hands a dying thread's pages back (key + 1; 0 = none).
static KEY: AtomicUsize = AtomicUsize::new(0);
static KEY_ONCE: Once = Once::new();

/// A thread's heap.
pub struct Heap {
    pages: [Cell<*const Page>; NUM_CLASSES],
    id: Cell<usize>,
    state: Cell<u8>,
    /// The key's value is set to this heap (the destructor will run).
    key_set: Cell<bool>,
    stats: ThreadStats,
    batch: RemoteBatch,
    /// Per class, a fingerprint of the active page's state at the last idle check.
    idle_mark: [Cell<u64>; NUM_CLASSES],
    next_idle_check: Cell<u64>,
    /// Slow paths left before the clock is read again (see [`slow_path_clock`]).
    clock_skip: Cell<u32>,
    /// Slow paths since the clock was last read, and what it said.
    clock_n: Cell<u32>,
    clock_last: Cell<u64>,
}

impl Heap {
    const fn new() -> Heap {
        Heap {
            pages: [const { Cell::new(ptr::null()) }; NUM_CLASSES],
            id: Cell::new(NO_ID),
            state: Cell::new(FRESH),
            key_set: Cell::new(false),
            stats: ThreadStats::new(),
            batch: RemoteBatch::new(),
            idle_mark: [const { Cell::new(0) }; NUM_CLASSES],
            next_idle_check: Cell::new(0),
            clock_skip: Cell::new(0),
            clock_n: Cell::new(0),
            clock_last: Cell::new(0),
        }
    }
}

thread_local! {
    // Const-initialised and without Drop: no lazy registration, no allocation on access.
    static HEAP: Heap = const { Heap::new() };
}

/// Runs `f` on the calling thread's heap, whose address the thread keeps in its OS TLS word
/// (`os::thread_word`: two loads, where `HEAP.with` in the preload library is a call).
#[cfg(feature = "initial-exec-tls")]
#[inline(always)]
fn with_heap<R>(f: impl FnOnce(&Heap) -> R) -> R {
    let p = os::thread_word() as *const Heap;
    if p.is_null() {
        return with_heap_first(f);
    }
    // SAFETY: a non-zero word is the address of this thread's `HEAP` (set by
    // `with_heap_first` in this thread, or in the thread a forked child copies, at the same
    // address), which lives as long as the thread: it is const-initialised and has no
    // destructor. Only this thread uses it.
    f(unsafe { &*p })
}

/// [`with_heap`] the first time in a thread: notes the heap's address in the TLS word.
#[cfg(feature = "initial-exec-tls")]
#[cold]
#[inline(never)]
fn with_heap_first<R>(f: impl FnOnce(&Heap) -> R) -> R {
    HEAP.with(|heap| {
        // SAFETY: the word gets the address of this thread's heap, what `with_heap` expects.
        unsafe { os::set_thread_word(heap as *const Heap as usize) };
        f(heap)
    })
}

/// Runs `f` on the calling thread's heap (in an executable, `thread_local!` is one
/// `%fs`-relative access).
#[cfg(not(feature = "initial-exec-tls"))]
#[inline(always)]
fn with_heap<R>(f: impl FnOnce(&Heap) -> R) -> R {
    HEAP.with(f)
}

/// Id of the calling thread's heap (`usize::MAX` if it has none yet).
#[inline]
pub fn current_id() -> usize {
    with_heap(|h| h.id.get())
}

/// Allocates a block of class `cls`; null on failure.
#[inline]
pub fn malloc_small(cls: usize) -> *mut u8 {
    with_heap(|heap| {
        let page = heap.pages[cls].get();
        if !page.is_null() {
            // SAFETY: a heap's active page is a live descriptor held by this thread.
            let p = unsafe { (*page).pop() };
            if !p.is_null() {
                heap.stats.add(size_class::block_size(cls));
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
    } else if size <= solo::MALLOC_MAX {
        malloc_medium(size)
    } else {
        malloc_large(size, MIN_ALIGN, false)
    }
}

/// Allocates a medium block (`SMALL_MAX < size <= solo::MALLOC_MAX`) as a solo block: slots
/// of a segment, dirty ones first, so that a buffer allocated and freed over and over reuses
/// resident memory instead of faulting in a fresh mapping each time (falls back to a large
/// block if no segment can be had).
#[cold]
fn malloc_medium(size: usize) -> *mut u8 {
    init::ensure();
    if let Some(now) = with_heap(slow_path_clock) {
        purge::maybe_run(now);
    }
    let p = solo::alloc(size);
    if p.is_null() {
        large::alloc(size, MIN_ALIGN, false)
    } else {
        p
    }
}

/// Allocates a large block (its own mapping); `zero` asks for zeroed memory.
#[cold]
pub fn malloc_large(size: usize, align: usize, zero: bool) -> *mut u8 {
    init::ensure();
    purge::maybe_run(os::now_ns());
    large::alloc(size, align, zero)
}

/// Allocates `size` bytes aligned to `align` (a power of two); null on failure.
pub fn malloc_aligned(align: usize, size: usize) -> *mut u8 {
    if align <= MIN_ALIGN {
        return malloc(size);
    }
    if align <= SLOT_SIZE {
        if let Some(cls) = size_class::class_for_aligned(size, align) {
            return malloc_small(cls);
        }
    }
    malloc_large(size, align, false)
}

/// The pthread key (created once; `None` while another thread is creating it).
fn key() -> Option<libc::pthread_key_t> {
    let k = KEY.load(Ordering::Acquire);
    if k != 0 {
        return Some((k - 1) as libc::pthread_key_t);
    }
    KEY_ONCE.call(|| {
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: `key` is writable; the destructor has the required signature and never
        // unwinds. pthread_key_create does not allocate.
        let rc = unsafe { libc::pthread_key_create(&mut key, Some(thread_exit)) };
        if rc == 0 {
            KEY.store(key as usize + 1, Ordering::Release);
        }
    });
    let k = KEY.load(Ordering::Acquire);
    (k != 0).then(|| (k - 1) as libc::pthread_key_t)
}

/// Makes the heap usable: an id, registered counters, the exit destructor armed.
fn activate(heap: &Heap) {
    if heap.id.get() == NO_ID {
        heap.id.set(NEXT_ID.fetch_add(1, Ordering::Relaxed));
    }
    if !heap.stats.is_registered() {
        // SAFETY: the heap lives in this thread's TLS until after the key destructor, which
        // unregisters it; it is not registered now.
        unsafe { thread_stats::register(&heap.stats) };
    }
    heap.state.set(ACTIVE);
    if !heap.key_set.get() {
        if let Some(k) = key() {
            // Set before the call: pthread_setspecific may calloc (keys >= 32), which must
            // find the heap usable and not come back here.
            heap.key_set.set(true);
            // SAFETY: `k` is a key we created; the value is this thread's heap.
            unsafe {
                libc::pthread_setspecific(k, heap as *const Heap as *const libc::c_void);
            }
        }
    }
}

#[cold]
#[inline(never)]
fn alloc_slow(heap: &Heap, cls: usize) -> *mut u8 {
    // May allocate (pthread_atfork): before touching the heap's pages.
    init::ensure();
    if heap.state.get() != ACTIVE || !heap.key_set.get() {
        activate(heap);
    }
    if let Some(now) = slow_path_clock(heap) {
        purge::maybe_run(now);
        if now >= heap.next_idle_check.get() {
            heap.batch.flush();
            release_idle(heap, cls, now);
        }
    }
    let p = refill(heap, cls);
    if !p.is_null() {
        heap.stats.add(size_class::block_size(cls));
    }
    p
}

/// Most slow paths a hot heap goes without reading the clock.
const CLOCK_SKIP_MAX: u32 = 64;

/// The time, read on this slow path (a small class's refill, or a medium block), or `None`
/// when the heap is so hot that reading the clock (about 40 ns on a VM) on every slow path
/// would be a cost: when the previous read came less than a sixteenth of the purge interval
/// after the one before, the heap skips twice as many slow paths as it went through (at most
/// [`CLOCK_SKIP_MAX`]). So rounds start at most about an eighth of the interval late because
/// of the skipping.
#[inline]
fn slow_path_clock(heap: &Heap) -> Option<u64> {
    let n = heap.clock_n.get() + 1;
    if heap.clock_skip.get() > 0 {
        heap.clock_skip.set(heap.clock_skip.get() - 1);
        heap.clock_n.set(n);
        return None;
    }
    let now = os::now_ns();
    let quick =
        now.saturating_sub(heap.clock_last.get()) < crate::options::purge_interval_ns() / 16;
    heap.clock_skip.set(if quick {
        (2 * n).min(CLOCK_SKIP_MAX)
    } else {
        0
    });
    heap.clock_n.set(0);
    heap.clock_last.set(now);
    Some(now)
}

/// Gets a block of class `cls` from the active page after collecting and carving, or from a
/// new active page.
fn refill(heap: &Heap, cls: usize) -> *mut u8 {
    let me = heap.id.get();
    let cur = heap.pages[cls].get();
    if !cur.is_null() {
        // SAFETY: the active page is a live descriptor held by this thread.
        let page = unsafe { &*cur };
        // SAFETY: we hold the page.
        unsafe {
            page.collect_remote();
            if page.free.get().is_null() {
                page.extend();
            }
            let p = page.pop();
            if !p.is_null() {
                return p;
            }
        }
        heap.pages[cls].set(ptr::null());
        // SAFETY: we hold the page and it has no free block.
        if !unsafe { remote::retire_full(page, me) } {
            // SAFETY: we still hold the page.
            unsafe {
                page.collect_remote();
                heap.pages[cls].set(cur);
                return page.pop();
            }
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
        // SAFETY: we hold the page now.
        unsafe {
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
}

/// A fingerprint of an active page's allocation state: unchanged iff (almost surely) no
/// block was allocated or freed locally since it was taken.
fn mark_of(page: &Page) -> u64 {
    (page.free.get() as u64) ^ (u64::from(page.used.load(Ordering::Relaxed)) << 48)
}

/// Idle release: hands back the active pages (other than `keep`'s) whose state has not
/// changed since the previous check, one purge delay ago.
fn release_idle(heap: &Heap, keep: usize, now: u64) {
    let delay = crate::options::purge_delay_ns().max(crate::options::MIN_PURGE_INTERVAL_NS);
    heap.next_idle_check.set(now.saturating_add(delay));
    for (cls, slot) in heap.pages.iter().enumerate() {
        let p = slot.get();
        if p.is_null() || cls == keep {
            continue;
        }
        // SAFETY: an active page is a live descriptor held by this thread.
        let page = unsafe { &*p };
        let mark = mark_of(page);
        if heap.idle_mark[cls].get() == mark {
            slot.set(ptr::null());
            // SAFETY: we hold the page and give it up.
            unsafe { give_back(page, heap.id.get()) };
        } else {
            heap.idle_mark[cls].set(mark);
        }
    }
}

/// Gives up an active page: empty ones to their segments, others to the pools (or FULL).
///
/// # Safety
/// The caller (heap `me`) holds the page and has removed it from its heap.
unsafe fn give_back(page: &Page, me: usize) {
    // SAFETY: we hold the page.
    unsafe {
        page.collect_remote();
        if page.used.load(Ordering::Relaxed) == 0 {
            segment::free_page(page);
        } else if page.has_free() || !remote::retire_full(page, me) {
            page.collect_remote();
            page.owner.store(0, Ordering::Relaxed);
            pool::push(page);
        }
    }
}

/// Frees block `p` (not null).
///
/// # Safety
/// `p` was returned by this allocator and is not used any more.
#[inline]
pub unsafe fn free(p: *mut u8) {
    let base = region_of(p);
    // SAFETY: every pointer we hand out lies in a region whose first word is its kind.
    let kind = unsafe { *base.cast::<u32>() };
    if kind == KIND_SEGMENT {
        // SAFETY: `p` is a live block of segment `base`.
        let page = unsafe { segment::page_of(base, p) };
        with_heap(|heap| {
            if page.owner.load(Ordering::Relaxed) == heap.id.get() {
                heap.stats.sub(page.bsize());
                // SAFETY: this thread holds the page and `p` is one of its live blocks.
                unsafe { page.push_local(p) }
            } else {
                // SAFETY: `p` is a live block of `page`, which we do not hold.
                unsafe { free_remote(heap, page, p) }
            }
        })
    } else {
        // SAFETY: `p` is a live large block whose mapping starts at `base`.
        unsafe { large::free(base) }
    }
}

/// # Safety
/// `p` is a live block of `page`, not used any more; the calling thread does not hold `page`.
#[inline(never)]
unsafe fn free_remote(heap: &Heap, page: &Page, p: *mut u8) {
    if page.is_solo() {
        // SAFETY: the solo block is `p`, dead now.
        unsafe { solo::free(page) };
        return;
    }
    if heap.state.get() == FRESH {
        // A thread that frees before it ever allocates (a consumer): set it up so that its
        // frees are batched and flushed at its exit. Neither call creates a thread or waits.
        init::ensure();
        activate(heap);
    }
    let bs = page.bsize();
    if heap.stats.is_registered() {
        heap.stats.sub(bs);
    } else {
        crate::counters::ORPHAN_ALLOCATED.fetch_sub(bs, Ordering::Relaxed);
    }
    if heap.state.get() == ACTIVE {
        // SAFETY: forwarded contract; the batch is this thread's.
        unsafe { heap.batch.free(page, p) };
    } else {
        // No batching for a thread that is not (or no longer) set up: nobody would flush it.
        let b = p.cast::<crate::page::Block>();
        // SAFETY: forwarded contract.
        unsafe { remote::push_chain(page, b, b, 1) };
    }
}

/// Usable size of block `p` (not null).
///
/// # Safety
/// `p` was returned by this allocator and is live.
#[inline]
pub unsafe fn usable_size(p: *mut u8) -> usize {
    let base = region_of(p);
    // SAFETY: every pointer we hand out lies in a region whose first word is its kind.
    let kind = unsafe { *base.cast::<u32>() };
    if kind == KIND_SEGMENT {
        // SAFETY: `p` is a live block of segment `base`.
        let page = unsafe { segment::page_of(base, p) };
        if page.is_solo() {
            // SAFETY: `p` is the live solo block of `page`.
            unsafe { solo::usable(page) }
        } else {
            page.bsize()
        }
    } else {
        // SAFETY: `p` is a live large block whose mapping starts at `base`.
        unsafe { large::usable(base) }
    }
}

/// Where a live block lives.
pub enum Home {
    /// A block of a size-classed page.
    Small(&'static Page),
    /// The block of a solo page.
    Solo(&'static Page),
    /// A large block whose mapping starts at this base.
    Large(*mut u8),
}

/// Finds where block `p` lives.
///
/// # Safety
/// `p` was returned by this allocator and is live.
#[inline]
pub unsafe fn home_of(p: *mut u8) -> Home {
    let base = region_of(p);
    // SAFETY: every pointer we hand out lies in a region whose first word is its kind.
    if unsafe { *base.cast::<u32>() } == KIND_SEGMENT {
        // SAFETY: `p` is a live block of segment `base`.
        let page = unsafe { segment::page_of(base, p) };
        if page.is_solo() {
            Home::Solo(page)
        } else {
            Home::Small(page)
        }
    } else {
        Home::Large(base)
    }
}

/// Hands every active page of `heap` back and flushes its remote batch.
fn release_pages(heap: &Heap) {
    heap.batch.flush();
    let me = heap.id.get();
    for slot in heap.pages.iter() {
        let p = slot.get();
        if p.is_null() {
            continue;
        }
        slot.set(ptr::null());
        // SAFETY: an active page is a live descriptor held by this thread; we give it up.
        unsafe { give_back(&*p, me) };
    }
}

/// Releases the calling thread's empty active pages and flushes its remote batch (used by
/// `reclaim::collect`).
pub fn release_empty_pages() {
    with_heap(|heap| {
        heap.batch.flush();
        for slot in heap.pages.iter() {
            let p = slot.get();
            if p.is_null() {
                continue;
            }
            // SAFETY: an active page is a live descriptor held by this thread.
            let page = unsafe { &*p };
            // SAFETY: we hold the page.
            unsafe { page.collect_remote() };
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
unsafe extern "C" fn thread_exit(arg: *mut libc::c_void) {
    // SAFETY: per the contract `arg` is this thread's heap; thread-local storage stays valid
    // while pthread key destructors run.
    let heap = unsafe { &*(arg as *const Heap) };
    release_pages(heap);
    if heap.stats.is_registered() {
        // SAFETY: registered by this thread in `activate`.
        unsafe { thread_stats::unregister(&heap.stats) };
    }
    heap.key_set.set(false);
    heap.state.set(DONE);
}

/// Calls `f` on the calling thread's active pages (for the validator).
pub fn for_each_active_page(mut f: impl FnMut(&Page)) {
    with_heap(|heap| {
        for slot in heap.pages.iter() {
            let p = slot.get();
            if !p.is_null() {
                // SAFETY: an active page is a live descriptor held by this thread.
                f(unsafe { &*p });
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached() -> usize {
        with_heap(|h| h as *const Heap as usize)
    }

    fn own() -> usize {
        HEAP.with(|h| h as *const Heap as usize)
    }

    /// The TLS word caches each thread's own heap, not the first thread's.
    #[test]
    fn each_thread_finds_its_own_heap() {
        let here = cached();
        assert_eq!(here, own());
        assert_eq!(cached(), here);
        let there: Vec<(usize, usize)> = (0..4)
            .map(|_| std::thread::spawn(|| (cached(), own())))
            .map(|t| t.join().unwrap())
            .collect();
        for &(c, o) in &there {
            assert_eq!(c, o);
            assert_ne!(c, here);
        }
    }
}
