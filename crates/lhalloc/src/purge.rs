//! The purge round: giving free memory back to the OS, on a clock.
//!
//! Policy: memory that has been free for at least the purge delay
//! ([`crate::set_purge_delay_ns`], default 1 s) is given back with MADV_DONTNEED (RSS drops
//! at once, unlike MADV_FREE) or munmap:
//! - empty slots (pages that emptied), from the time they emptied; at once when the delay is
//!   0 or the dirty bytes pass the cap (32 MiB);
//! - the free blocks of partly used pages sitting in a pool, at OS-page granularity, once the
//!   page has been pooled (or last trimmed) for the delay and its free set grew since, so at
//!   most once per delay per page and at most about two delays after a block was freed
//!   (`Page::trim`); but, fullest page first, as many free bytes as refills took from the
//!   pool over the last delay stay unpurged (the pool's reserve, `Pool::demand`,
//!   `demand.rs`): they would be faulted back in within the next delay;
//! - the stale tail of a solo page (memory of earlier pages past its block), once the block
//!   is the delay old (`segment::purge`);
//! - cached large mappings, from the time they were freed;
//! - entirely free segments are unmapped (one is kept, purged, as a spare).
//!
//! The delay avoids purging and re-faulting memory that is about to be reused (-5..18%
//! throughput when purging eagerly, see the design notes); the cap bounds RSS whatever the
//! timing.
//!
//! Who runs rounds: **deferred purging** (as mimalloc's): every allocation slow path of every
//! thread (page refill, large allocation) reads the clock and runs a round when the previous
//! one is at least `purge_interval_ns()` old. No thread is ever created here, and nothing
//! waits: a round already running elsewhere makes the others skip. A background thread
//! (`reclaim.rs`) may also run rounds, if the program started it from a safe point.
//!
//! Each round collects the remote frees of the pooled pages of flagged classes (so pages
//! emptied by other threads' frees are found without any owner), frees the empty ones, trims
//! the old enough ones, then purges slots and the large cache.

use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::options;
use crate::page::Page;
use crate::pool::{self, BUCKETS, POOLS};
use crate::purge_flags::{self, POOL_TRIM_AT};
use crate::segment;

/// Set while a round runs (rounds never wait for each other).
static BUSY: AtomicBool = AtomicBool::new(false);
/// When the next deferred round is due, ns.
static NEXT_AT: AtomicU64 = AtomicU64::new(0);
/// Rounds run so far.
pub static ROUNDS: AtomicU64 = AtomicU64::new(0);

/// Runs a round if one is due (called from allocation slow paths, with no lock held).
#[inline]
pub fn maybe_run(now: u64) {
    let next = NEXT_AT.load(Ordering::Relaxed);
    if now < next {
        return;
    }
    let interval = options::purge_interval_ns();
    if NEXT_AT
        .compare_exchange(next, now + interval, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
    {
        run(now, options::purge_delay_ns());
    }
}

/// One purge round: collect and trim pooled pages, free empty ones, purge what is `delay` ns
/// old. Skipped (returns 0) if another round is running. Returns the bytes given back.
pub fn run(now: u64, delay: u64) -> usize {
    if BUSY.swap(true, Ordering::Acquire) {
        return 0;
    }
    run_claimed(now, delay)
}

/// Like [`run`], but waits for a round running elsewhere to end first (for explicit
/// requests: `collect`). Rounds take bounded time, so the wait ends.
pub fn run_after_others(delay: u64) -> usize {
    while BUSY.swap(true, Ordering::Acquire) {
        crate::os::yield_now();
    }
    run_claimed(crate::os::now_ns(), delay)
}

/// A round, with `BUSY` already set by the caller.
fn run_claimed(now: u64, delay: u64) -> usize {
    let before = crate::counters::get(&crate::counters::PURGED);
    let mut classes = purge_flags::take_pool_remote();
    for (cls, at) in POOL_TRIM_AT.iter().enumerate() {
        if at.load(Ordering::Relaxed) <= now {
            classes |= 1 << cls;
        }
    }
    while classes != 0 {
        let cls = classes.trailing_zeros() as usize;
        classes &= classes - 1;
        collect_pool(cls, now, delay);
    }
    if segment::has_work() {
        segment::purge(now, delay);
    }
    crate::large::purge(now, delay);
    ROUNDS.fetch_add(1, Ordering::Relaxed);
    BUSY.store(false, Ordering::Release);
    crate::counters::get(&crate::counters::PURGED).saturating_sub(before)
}

/// Pages handled per locked pass over a pool.
const BATCH: usize = 64;

/// Collects the remote frees of every page in pool `cls`, gives the empty pages back to their
/// segments, trims the free memory of pages pooled or last trimmed `delay` ns ago, and
/// re-buckets the others by their new fullness. System calls happen with the lock released.
fn collect_pool(cls: usize, now: u64, delay: u64) {
    loop {
        let mut empty: [*const Page; BATCH] = [ptr::null(); BATCH];
        let mut nempty = 0;
        let mut trim: [*const Page; BATCH] = [ptr::null(); BATCH];
        let mut ntrim = 0;
        let mut more = false;
        {
            POOL_TRIM_AT[cls].store(u64::MAX, Ordering::Relaxed);
            let mut pool = POOLS[cls].lock();
            if pool.len == 0 {
                return;
            }
            let heads = pool.heads;
            pool.heads = [ptr::null(); BUCKETS];
            pool.len = 0;
            // Free memory the next delay's refills will take (fullest pages first) is kept.
            let mut reserve = pool.demand.recent(now, delay);
            for &head in heads.iter().rev() {
                let mut p = head;
                while !p.is_null() {
                    // SAFETY: pages on the detached lists are live descriptors held by the
                    // pool, whose lock we hold.
                    let page = unsafe { &*p };
                    p = page.next.get();
                    page.in_pool.store(false, Ordering::Relaxed);
                    // SAFETY: the pool holds the page.
                    if unsafe { page.collect_remote() } > 0 {
                        page.trimmed.set(false);
                    }
                    let used = page.used.load(Ordering::Relaxed);
                    let mut due =
                        !page.trimmed.get() && now.saturating_sub(page.changed_at.get()) >= delay;
                    let mut kept = false;
                    if used != 0 && reserve > 0 {
                        let free = pool::free_bytes(page);
                        if due && free <= reserve {
                            // Within the reserve: look again one delay later.
                            due = false;
                            kept = true;
                            purge_flags::note_trim_due(cls, now.saturating_add(delay));
                        }
                        reserve = reserve.saturating_sub(free);
                    }
                    if used == 0 && nempty < BATCH {
                        empty[nempty] = page;
                        nempty += 1;
                        continue;
                    }
                    if used != 0 && due && ntrim < BATCH {
                        trim[ntrim] = page;
                        ntrim += 1;
                        continue;
                    }
                    if used == 0 || due {
                        more = true;
                    } else if !page.trimmed.get() && !kept {
                        purge_flags::note_trim_due(
                            cls,
                            page.changed_at.get().saturating_add(delay),
                        );
                    }
                    let b = pool::bucket_of(page);
                    // SAFETY: we hold the pool lock and the page, now on no list.
                    unsafe { pool.link(page, b) };
                }
            }
        }
        for &p in &empty[..nempty] {
            // SAFETY: taken off the pool above: we hold it, and no block of it is in use.
            unsafe { segment::free_page(&*p) };
        }
        for &p in &trim[..ntrim] {
            // SAFETY: taken off the pool above: we hold it (unlinked, unowned), its remote
            // frees collected.
            let page = unsafe { &*p };
            // SAFETY: as above.
            unsafe { page.trim() };
            page.trimmed.set(true);
            page.changed_at.set(now);
        }
        if ntrim > 0 {
            let mut pool = POOLS[cls].lock();
            for &p in &trim[..ntrim] {
                // SAFETY: we hold the page (taken off the pool above).
                let page = unsafe { &*p };
                let b = pool::bucket_of(page);
                // SAFETY: we hold the pool lock and the page, on no list.
                unsafe { pool.link(page, b) };
                if page.thread_free.load(Ordering::Relaxed) != 0 {
                    purge_flags::note_pool_remote(cls);
                }
            }
        }
        if !more {
            return;
        }
    }
}

/// In a forked child: a round that another thread was running is gone.
pub fn after_fork_child() {
    BUSY.store(false, Ordering::Relaxed);
}
