//! Runtime options: the purge delay, the amount cap on unpurged memory, whether the
//! background purger may run. Defaults can be overridden by environment variables read once at
//! initialisation (without allocating) and, for the delay, at run time by
//! [`set_purge_delay_ms`].

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Default delay before an empty page or a cached large block is given back to the OS.
/// 1 s: mimalloc v3's choice; the cms-sw measurements quoted in the design notes show that
/// purging much sooner (0.1 s or immediately) costs 5-18% throughput, while much later
/// (jemalloc's 10 s) keeps RSS high for long.
pub const DEFAULT_PURGE_DELAY_MS: u64 = 1000;

/// Default cap on free-but-resident bytes in pages: past it, empty pages are purged at once
/// whatever their age (time-based decay alone does not bound RSS, jemalloc#2688).
pub const DEFAULT_PURGE_CAP_BYTES: usize = 32 << 20;

static PURGE_DELAY_MS: AtomicU64 = AtomicU64::new(DEFAULT_PURGE_DELAY_MS);
static PURGE_CAP_BYTES: AtomicUsize = AtomicUsize::new(DEFAULT_PURGE_CAP_BYTES);
static BACKGROUND: AtomicBool = AtomicBool::new(true);

/// Sets the delay (milliseconds) after which empty pages and cached large blocks are
/// returned to the OS. 0 means "immediately, on the freeing path". Default
/// [`DEFAULT_PURGE_DELAY_MS`] (1000 ms); also settable with `LHALLOC_PURGE_DELAY_MS`.
pub fn set_purge_delay_ms(ms: u64) {
    PURGE_DELAY_MS.store(ms, Ordering::Relaxed);
}

/// The current purge delay in milliseconds (see [`set_purge_delay_ms`]).
pub fn purge_delay_ms() -> u64 {
    PURGE_DELAY_MS.load(Ordering::Relaxed)
}

/// Sets the cap on free-but-resident page bytes (see [`DEFAULT_PURGE_CAP_BYTES`]).
pub fn set_purge_cap_bytes(bytes: usize) {
    PURGE_CAP_BYTES.store(bytes, Ordering::Relaxed);
}

/// The cap on free-but-resident page bytes.
pub fn purge_cap_bytes() -> usize {
    PURGE_CAP_BYTES.load(Ordering::Relaxed)
}

/// Whether a background purger thread may be started (`LHALLOC_BACKGROUND=0` disables it).
pub fn background_enabled() -> bool {
    BACKGROUND.load(Ordering::Relaxed)
}

/// Reads `name` (NUL-terminated) from the environment as a decimal number, without allocating.
fn env_u64(name: &[u8]) -> Option<u64> {
    debug_assert_eq!(name.last(), Some(&0));
    // SAFETY: `name` is NUL-terminated; getenv returns null or a NUL-terminated string.
    let p = unsafe { libc::getenv(name.as_ptr().cast()) };
    if p.is_null() {
        return None;
    }
    let mut v: u64 = 0;
    let mut i = 0;
    loop {
        // SAFETY: `p` is a NUL-terminated string and we stop at the NUL.
        let c = unsafe { *p.add(i) } as u8;
        if c == 0 {
            break;
        }
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
        i += 1;
    }
    if i == 0 {
        None
    } else {
        Some(v)
    }
}

/// Applies `LHALLOC_PURGE_DELAY_MS`, `LHALLOC_PURGE_CAP_MB` and `LHALLOC_BACKGROUND`.
pub(crate) fn load_env() {
    if let Some(ms) = env_u64(b"LHALLOC_PURGE_DELAY_MS\0") {
        set_purge_delay_ms(ms);
    }
    if let Some(mb) = env_u64(b"LHALLOC_PURGE_CAP_MB\0") {
        set_purge_cap_bytes((mb as usize).saturating_mul(1 << 20));
    }
    if let Some(b) = env_u64(b"LHALLOC_BACKGROUND\0") {
        BACKGROUND.store(b != 0, Ordering::Relaxed);
    }
}
