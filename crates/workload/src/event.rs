//! The **event** vocabulary: one allocator call or one marker, with the thread that makes it.
//!
//! Blocks are named by a [`BlockRef`]: a slot number reused after the block is freed, plus a
//! generation that tells two lives of one slot apart. A replayer keeps one table entry per slot,
//! so its bookkeeping is bounded by the most blocks alive at once, whatever the run's length.

/// Thread 0 is the main thread (boot); request threads are `1..=threads`. Recorded traces
/// number a program's threads in the order they first called the allocator.
pub type ThreadId = u32;

/// A block's name in a trace.
///
/// Invariant: between the event that allocates `(slot, gen)` and the one that frees or
/// reallocates it, no other event allocates `slot`. A realloc turns `(slot, gen)` into
/// `(slot, gen + 1)`, and the allocation after a free of `(slot, gen)` uses `gen + 1`
/// (wrapping): every event on a slot names a distinct generation, so a replayer can order a
/// free after the realloc before it even when other threads perform them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockRef {
    pub slot: u32,
    pub gen: u16,
}

/// One event of a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// `malloc(size)`.
    Malloc {
        thread: ThreadId,
        block: BlockRef,
        size: u64,
    },
    /// `calloc(1, size)`.
    Calloc {
        thread: ThreadId,
        block: BlockRef,
        size: u64,
    },
    /// `posix_memalign`/`aligned_alloc` with `align` a power of two above 16.
    Aligned {
        thread: ThreadId,
        block: BlockRef,
        size: u64,
        align: u64,
    },
    /// `realloc(block, new_size)`: the resized block is named `(block.slot, block.gen + 1)`.
    Realloc {
        thread: ThreadId,
        block: BlockRef,
        old_size: u64,
        new_size: u64,
    },
    /// `free(block)`; `size` is the block's current size (for sized deallocation and live bytes).
    Free {
        thread: ThreadId,
        block: BlockRef,
        size: u64,
    },
    /// The thread does nothing until simulated time `at_ns` (an idle gap or an I/O wait; the
    /// GVL, if any, is released meanwhile).
    Resume { thread: ThreadId, at_ns: u64 },
    /// The thread starts serving a request that arrived at simulated time `arrival_ns`.
    RequestStart {
        thread: ThreadId,
        request: u64,
        arrival_ns: u64,
    },
    /// The thread finished the request.
    RequestEnd { thread: ThreadId, request: u64 },
    /// A garbage collection starts on this thread (the sweep's frees follow as `Free`s).
    Gc { thread: ThreadId, major: bool },
    /// The thread exits: it makes no further event, and a replayer ends its thread here (so the
    /// allocator's thread-exit path runs where the recorded program's did).
    ThreadEnd { thread: ThreadId },
}

impl Event {
    /// The thread that performs the event.
    pub fn thread(&self) -> ThreadId {
        match *self {
            Event::Malloc { thread, .. }
            | Event::Calloc { thread, .. }
            | Event::Aligned { thread, .. }
            | Event::Realloc { thread, .. }
            | Event::Free { thread, .. }
            | Event::Resume { thread, .. }
            | Event::RequestStart { thread, .. }
            | Event::RequestEnd { thread, .. }
            | Event::Gc { thread, .. }
            | Event::ThreadEnd { thread } => thread,
        }
    }

    /// The block the event allocates, resizes or frees, if any.
    pub fn block(&self) -> Option<BlockRef> {
        match *self {
            Event::Malloc { block, .. }
            | Event::Calloc { block, .. }
            | Event::Aligned { block, .. }
            | Event::Realloc { block, .. }
            | Event::Free { block, .. } => Some(block),
            _ => None,
        }
    }
}
