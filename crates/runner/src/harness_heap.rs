//! The **harness heap**: where the runner's own Rust allocations go (the workload generator's
//! state, the replay rings, sample formatting), kept apart from every allocator under test.
//!
//! Without it the harness would allocate from the C library's malloc, which *is* the allocator
//! under test for `glibc`, `glibc-arena2` and any `preload:` library: the generator's churn would
//! land in the same arenas as the workload's blocks, and harness threads would take arenas that
//! replay threads would otherwise get. Here the harness allocates with talc (a well-kept
//! general-purpose allocator crate) from chunks it maps itself, and the resident part of those
//! chunks is the harness's own RSS, measured exactly with `mincore` (see
//! [`HarnessHeap::resident_bytes`]) so that RSS/live can leave it out.
//!
//! The runner binary installs it as its `#[global_allocator]` (`main.rs`); library users
//! (tests, benchmarks) keep their own global allocator and [`HarnessHeap::resident_bytes`]
//! then reports 0.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

use talc::{OomHandler, Span, Talc, Talck};

/// Chunks are mapped this big (or bigger for one large request); untouched parts cost nothing.
const CHUNK_BYTES: usize = 64 << 20;
/// Most chunks the heap maps (16 GiB at the default size: far beyond what the harness needs).
const MAX_CHUNKS: usize = 256;

/// The chunks mapped so far. Invariant: entries `0..COUNT` hold `(base, len)` of live mappings,
/// written before `COUNT` is raised (Release) and never changed after.
static CHUNK_BASE: [AtomicUsize; MAX_CHUNKS] = [const { AtomicUsize::new(0) }; MAX_CHUNKS];
static CHUNK_LEN: [AtomicUsize; MAX_CHUNKS] = [const { AtomicUsize::new(0) }; MAX_CHUNKS];
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// Talc's out-of-memory handler: maps one more chunk and gives it to talc.
#[derive(Debug, Default)]
pub struct MapChunks;

impl OomHandler for MapChunks {
    fn handle_oom(talc: &mut Talc<Self>, layout: Layout) -> Result<(), ()> {
        let n = COUNT.load(Ordering::Acquire);
        if n >= MAX_CHUNKS {
            return Err(());
        }
        // Room for the request plus talc's headers, rounded to whole chunks.
        let len = (layout.size() + layout.align() + 4096).next_multiple_of(CHUNK_BYTES);
        let base = crate::os::map_harness_chunk(len);
        if base.is_null() {
            return Err(());
        }
        // SAFETY: `base..base+len` is a fresh private mapping that nothing else uses; talc
        // takes ownership of it for the rest of the process.
        unsafe { talc.claim(Span::from_base_size(base, len))? };
        CHUNK_BASE[n].store(base as usize, Ordering::Relaxed);
        CHUNK_LEN[n].store(len, Ordering::Relaxed);
        COUNT.store(n + 1, Ordering::Release);
        Ok(())
    }
}

/// The lock around talc: a spin lock that yields, since the harness's threads rarely contend
/// (the dispatcher allocates, the sampler formats a line now and then, replay threads never
/// allocate on their hot path) and a futex-based lock could allocate while locking.
type Lock = spin::mutex::SpinMutex<(), spin::relax::Yield>;

/// The runner's global allocator (see the module documentation).
pub struct HarnessHeap(Talck<Lock, MapChunks>);

impl HarnessHeap {
    pub const fn new() -> HarnessHeap {
        HarnessHeap(Talc::new(MapChunks).lock())
    }

    /// Resident bytes of every chunk the harness heap has mapped (0 if it is not in use).
    /// `scratch` is `mincore`'s output buffer, reused between calls.
    pub fn resident_bytes(scratch: &mut [u8]) -> u64 {
        let n = COUNT.load(Ordering::Acquire);
        (0..n)
            .map(|i| {
                let base = CHUNK_BASE[i].load(Ordering::Relaxed) as *const u8;
                let len = CHUNK_LEN[i].load(Ordering::Relaxed);
                // SAFETY: `base..base+len` is a chunk this heap mapped (page-aligned, never
                // unmapped).
                unsafe { crate::os::resident_bytes(base, len, scratch) }
            })
            .sum()
    }

    /// Bytes the harness heap has mapped.
    pub fn mapped_bytes() -> u64 {
        let n = COUNT.load(Ordering::Acquire);
        (0..n)
            .map(|i| CHUNK_LEN[i].load(Ordering::Relaxed) as u64)
            .sum()
    }
}

impl Default for HarnessHeap {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every method forwards to talc's `GlobalAlloc` implementation with the caller's
// arguments unchanged, so talc's guarantees are ours.
unsafe impl GlobalAlloc for HarnessHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.0.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { self.0.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.0.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}
