//! lhalloc: longhaul's general-purpose allocator. See the crate README for the design and
//! the layer order (each module uses only modules listed before it):
//! geometry, purge_flags -> os -> lock, options, counters -> once -> size_class -> page ->
//! segment -> pool -> remote -> large -> solo -> thread_stats -> purge -> init -> heap ->
//! realloc -> reclaim -> stats, validate, residency -> c_api -> global_alloc (the table in the
//! README, checked by `tests/layer_order.rs`).
//!
//! Glossary: a **segment** is a 4 MiB aligned mapping of 64 **slots** of 64 KiB; a **page** is
//! 1..=16 slots cut into **blocks** of one size **class** (or a *solo* page: one block that
//! grew by realloc); a **heap** is a thread's set of active pages (one per class); a **pool**
//! holds, per class, pages no thread holds; to **purge** is to give physical memory back with
//! MADV_DONTNEED or munmap; a **purge round** does that for everything old enough.
#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

mod c_api;
mod counters;
mod demand;
mod geometry;
mod global_alloc;
mod heap;
mod init;
mod large;
mod lock;
mod once;
mod options;
mod os;
mod page;
mod pool;
mod purge;
mod purge_flags;
mod realloc;
mod reclaim;
mod remote;
mod residency;
mod segment;
mod size_class;
mod solo;
mod stats;
mod thread_stats;
mod validate;

pub use global_alloc::LhAlloc;
pub use options::{
    purge_cap_bytes, purge_delay_ms, purge_delay_ns, purge_interval_ns, set_purge_cap_bytes,
    set_purge_delay_ms, set_purge_delay_ns, DEFAULT_PURGE_CAP_BYTES, DEFAULT_PURGE_DELAY_MS,
    DEFAULT_PURGE_DELAY_NS, MAX_PURGE_INTERVAL_NS, MIN_PURGE_INTERVAL_NS,
};
pub use reclaim::{collect, purger_state, start_background_purger, PurgerError, PurgerState};
pub use residency::{residency, Residency};
pub use stats::{stats, Stats};
pub use validate::validate;

/// The C-style API: `malloc`, `free`, `calloc`, `realloc`, `aligned_alloc`, `usable_size`.
pub mod c {
    pub use crate::c_api::{aligned_alloc, calloc, free, malloc, realloc, usable_size};
}

/// Crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Largest request served from size-classed pages.
pub const SMALL_MAX: usize = geometry::SMALL_MAX;
/// Largest `malloc` served as a solo block in a segment's slots (above [`SMALL_MAX`]); larger
/// ones, and `calloc` or aligned requests above [`SMALL_MAX`], are mapped individually.
pub const MEDIUM_MAX: usize = solo::MALLOC_MAX;

/// Initialises the allocator now (it otherwise initialises on its first slow path). Never
/// creates a thread; the preload library calls it from its constructor.
pub fn init() {
    init::ensure();
}

/// Whether the environment asks for the background purger (`LHALLOC_BACKGROUND=1`); the
/// preload library's constructor starts it then.
pub fn background_requested() -> bool {
    options::background_requested()
}

/// Purge rounds run so far (deferred on slow paths, by the background purger, or by
/// [`collect`]).
pub fn purge_rounds() -> u64 {
    purge::ROUNDS.load(core::sync::atomic::Ordering::Relaxed)
}

/// The effective options and state, as one human-readable line: every value is what the
/// allocator uses now (the background purger is reported as running only if its thread was
/// created in this process).
pub fn settings() -> String {
    let purger = match purger_state() {
        PurgerState::Running => "deferred+background(running)".to_string(),
        PurgerState::NotStarted => "deferred(background not started)".to_string(),
        PurgerState::Failed(e) => format!("deferred(background failed: error {e})"),
    };
    format!(
        "lhalloc {VERSION}: purge_delay_ns={} purge_interval_ns={} purge_cap_bytes={} \
         purger={} segment={}KiB slot={}KiB small_max={}KiB classes={} \
         large_cache_max_block={}KiB solo_promote_min={}B remote_batch={}x{} \
         purge=MADV_DONTNEED",
        purge_delay_ns(),
        purge_interval_ns(),
        purge_cap_bytes(),
        purger,
        geometry::SEGMENT_SIZE >> 10,
        geometry::SLOT_SIZE >> 10,
        geometry::SMALL_MAX >> 10,
        size_class::NUM_CLASSES,
        large::CACHE_MAX_BLOCK >> 10,
        solo::PROMOTE_MIN,
        remote::BATCH_SLOTS,
        remote::CHAIN_MAX,
    )
}
