//! lhalloc: longhaul's general-purpose allocator. See the crate README for the design and
//! the layer order (os -> lock/options -> size_class -> page -> segment -> remote/pool ->
//! large -> heap -> purge -> stats/validate -> c_api/global_alloc).
//!
//! Glossary: a **segment** is a 4 MiB aligned mapping of 64 **slots** of 64 KiB; a **page** is
//! 1..=16 slots cut into **blocks** of one size **class**; a **heap** is a thread's set of active
//! pages (one per class); a **pool** holds, per class, pages no thread holds; to **purge** is
//! to give physical memory back with MADV_DONTNEED or munmap.
#![warn(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

mod c_api;
mod global_alloc;
mod heap;
mod init;
mod large;
mod lock;
mod options;
mod os;
mod page;
mod pool;
mod purge;
mod remote;
mod segment;
mod size_class;
mod stats;
mod validate;

pub use global_alloc::LhAlloc;
pub use options::{
    purge_cap_bytes, purge_delay_ms, set_purge_cap_bytes, set_purge_delay_ms,
    DEFAULT_PURGE_CAP_BYTES, DEFAULT_PURGE_DELAY_MS,
};
pub use purge::collect;
pub use stats::{stats, Stats};
pub use validate::validate;

/// The C-style API: `malloc`, `free`, `calloc`, `realloc`, `aligned_alloc`, `usable_size`.
pub mod c {
    pub use crate::c_api::{aligned_alloc, calloc, free, malloc, realloc, usable_size};
}

/// Crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Largest request served from size-classed pages; larger ones are mapped individually.
pub const SMALL_MAX: usize = size_class::SMALL_MAX;

/// The effective options, as one human-readable line.
pub fn settings() -> String {
    format!(
        "lhalloc {VERSION}: purge_delay_ms={} purge_cap_bytes={} background_purger={} \
         (running={}) segment={}KiB slot={}KiB small_max={}KiB classes={} \
         large_cache_max_block={}KiB purge=MADV_DONTNEED",
        purge_delay_ms(),
        purge_cap_bytes(),
        options::background_enabled(),
        purge::purger_running(),
        segment::SEGMENT_SIZE >> 10,
        segment::SLOT_SIZE >> 10,
        size_class::SMALL_MAX >> 10,
        size_class::NUM_CLASSES,
        large::CACHE_MAX_BLOCK >> 10,
    )
}
