//! Runtime options: the purge delay, the cap on unpurged free memory, and whether the
//! preload library should start the background purger.
//!
//! Precedence: a value set through the API ([`set_purge_delay_ns`] and friends) always wins;
//! otherwise the environment (`LHALLOC_PURGE_DELAY_MS`, `LHALLOC_PURGE_DELAY_NS`,
//! `LHALLOC_PURGE_CAP_MB`, `LHALLOC_BACKGROUND`), read once, lazily, by the first reader or
//! writer of any option; otherwise the defaults. Each option is one atomic that holds
//! [`UNSET`] until the API or the environment gives it a value; the environment fills it
//! with a compare-and-swap from [`UNSET`], so it can never overwrite a value the API stored,
//! whichever runs first, and nobody ever waits for anybody.

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use crate::os;

/// Default delay before free memory is given back to the OS: 1 s, mimalloc v3's choice. The
/// cms-sw measurements quoted in the design notes show that purging much sooner (0.1 s or
/// immediately) costs 5-18% throughput, while much later (jemalloc's 10 s) keeps RSS high.
pub const DEFAULT_PURGE_DELAY_NS: u64 = 1_000_000_000;
/// [`DEFAULT_PURGE_DELAY_NS`] in milliseconds.
pub const DEFAULT_PURGE_DELAY_MS: u64 = DEFAULT_PURGE_DELAY_NS / 1_000_000;

/// Default cap on free-but-resident bytes in empty slots: past it, they are purged at once
/// whatever their age (time-based decay alone does not bound RSS, jemalloc#2688).
pub const DEFAULT_PURGE_CAP_BYTES: usize = 32 << 20;

/// Shortest interval between two purge rounds.
pub const MIN_PURGE_INTERVAL_NS: u64 = 100_000;
/// Longest interval between two purge rounds.
pub const MAX_PURGE_INTERVAL_NS: u64 = 250_000_000;

/// "No value yet" for an option atomic.
const UNSET: u64 = u64::MAX;

static PURGE_DELAY_NS: AtomicU64 = AtomicU64::new(UNSET);
static PURGE_CAP_BYTES: AtomicU64 = AtomicU64::new(UNSET);
static BACKGROUND: AtomicU64 = AtomicU64::new(UNSET);

const ENV_NOT_READ: u8 = 0;
const ENV_READ: u8 = 1;
static ENV: AtomicU8 = AtomicU8::new(ENV_NOT_READ);

/// Reads the environment once (idempotent; concurrent first calls both read it, and the
/// compare-and-swaps keep the first value stored).
#[inline]
pub fn load_env() {
    if ENV.load(Ordering::Acquire) != ENV_READ {
        load_env_slow();
    }
}

#[cold]
fn load_env_slow() {
    let delay = os::env_u64(c"LHALLOC_PURGE_DELAY_NS")
        .or_else(|| os::env_u64(c"LHALLOC_PURGE_DELAY_MS").map(|ms| ms.saturating_mul(1_000_000)));
    if let Some(ns) = delay {
        let _ = PURGE_DELAY_NS.compare_exchange(
            UNSET,
            ns.min(UNSET - 1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }
    if let Some(mb) = os::env_u64(c"LHALLOC_PURGE_CAP_MB") {
        let bytes = mb.saturating_mul(1 << 20).min(UNSET - 1);
        let _ =
            PURGE_CAP_BYTES.compare_exchange(UNSET, bytes, Ordering::Relaxed, Ordering::Relaxed);
    }
    if let Some(b) = os::env_u64(c"LHALLOC_BACKGROUND") {
        let _ = BACKGROUND.compare_exchange(
            UNSET,
            u64::from(b != 0),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }
    ENV.store(ENV_READ, Ordering::Release);
}

/// Sets the purge delay in nanoseconds: free memory (empty slots, the free blocks of partly
/// used pooled pages, cached large mappings) is given back to the OS once it has been free
/// for at least this long. 0 means "at once, on the freeing path" for empty slots and large
/// blocks, and "at the next purge round" for the rest. Wins over the environment whenever it
/// is called. See the crate README ("Purge timing") for when rounds run.
pub fn set_purge_delay_ns(ns: u64) {
    load_env();
    PURGE_DELAY_NS.store(ns.min(UNSET - 1), Ordering::Relaxed);
}

/// The purge delay in nanoseconds (see [`set_purge_delay_ns`]).
#[inline]
pub fn purge_delay_ns() -> u64 {
    load_env();
    match PURGE_DELAY_NS.load(Ordering::Relaxed) {
        UNSET => DEFAULT_PURGE_DELAY_NS,
        v => v,
    }
}

/// Sets the purge delay in milliseconds: `set_purge_delay_ns(ms * 1_000_000)`.
pub fn set_purge_delay_ms(ms: u64) {
    set_purge_delay_ns(ms.saturating_mul(1_000_000));
}

/// The purge delay in milliseconds, rounded down (use [`purge_delay_ns`] for precision).
pub fn purge_delay_ms() -> u64 {
    purge_delay_ns() / 1_000_000
}

/// The interval between purge rounds that the current delay asks for:
/// `clamp(delay / 4, MIN_PURGE_INTERVAL_NS, MAX_PURGE_INTERVAL_NS)`. Memory free since `t` is
/// purged by the first round at or after `t + delay`, so at most about a quarter of the delay
/// late (plus, without the background purger, the wait for the next allocator slow path).
#[inline]
pub fn purge_interval_ns() -> u64 {
    (purge_delay_ns() / 4).clamp(MIN_PURGE_INTERVAL_NS, MAX_PURGE_INTERVAL_NS)
}

/// Sets the cap on free-but-unpurged bytes in empty slots (see [`DEFAULT_PURGE_CAP_BYTES`]).
pub fn set_purge_cap_bytes(bytes: usize) {
    load_env();
    PURGE_CAP_BYTES.store((bytes as u64).min(UNSET - 1), Ordering::Relaxed);
}

/// The cap on free-but-unpurged bytes in empty slots.
#[inline]
pub fn purge_cap_bytes() -> usize {
    load_env();
    match PURGE_CAP_BYTES.load(Ordering::Relaxed) {
        UNSET => DEFAULT_PURGE_CAP_BYTES,
        v => v as usize,
    }
}

/// Whether the environment asks for the background purger thread (`LHALLOC_BACKGROUND=1`;
/// default off). Only the preload library's constructor acts on it; a Rust program calls
/// [`crate::start_background_purger`] itself.
pub fn background_requested() -> bool {
    load_env();
    BACKGROUND.load(Ordering::Relaxed) == 1
}
