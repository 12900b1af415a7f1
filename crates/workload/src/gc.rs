//! Ruby's garbage collector as the allocator sees it: when collections run, which blocks they
//! free, and the lazy sweep that frees them in steps on whichever thread allocates next.
//!
//! Sources (`shared/rails-model.md`, "When frees happen"): a GC runs when object slots run out
//! (every 9-30 requests in the data we have) or when bytes malloc'd since the last GC, less
//! the bytes freed, exceed `malloc_limit` (16 MiB start, 32 MiB max; after an exceeding GC the limit becomes the increase
//! x 1.4, else it decays x 0.98); about 9% of collections are major (puma#1496: 35 of 372).
//! The sweep frees dead objects' buffers in steps from the allocation slow path of the thread
//! that needs a slot, so the frees land on an arbitrary thread.

use rand::seq::SliceRandom;
use rand::Rng;

use crate::profile::Gc as GcParams;
use crate::slots::Block;

/// Why a collection runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Slots,
    Malloc,
}

/// Collector state.
///
/// Invariants: every block in `young`, `old` and `sweep` is live (not yet freed) and appears in
/// exactly one of them; `sweep` is non-empty only between a collection and the end of its sweep.
#[derive(Debug)]
pub struct GcState {
    params: GcParams,
    /// Calls left before object slots run out.
    slot_budget: f64,
    malloc_limit: u64,
    malloc_increase: u64,
    /// Dead request garbage, waiting for the next collection to mark it.
    pub young: Vec<Block>,
    /// Promoted (old-generation) blocks, alive until a major collection finds them dead.
    pub old: Vec<Block>,
    /// Marked dead, freed by lazy-sweep steps.
    pub sweep: Vec<Block>,
    pub collections: u64,
    pub majors: u64,
    pub malloc_triggered: u64,
}

impl GcState {
    pub fn new<R: Rng>(params: GcParams, calls_per_request: f64, rng: &mut R) -> GcState {
        let mut g = GcState {
            malloc_limit: params.malloc_limit_min,
            params,
            slot_budget: 0.0,
            malloc_increase: 0,
            young: Vec::new(),
            old: Vec::new(),
            sweep: Vec::new(),
            collections: 0,
            majors: 0,
            malloc_triggered: 0,
        };
        g.refill_slots(calls_per_request, rng);
        g
    }

    fn refill_slots<R: Rng>(&mut self, calls_per_request: f64, rng: &mut R) {
        let (lo, hi) = (
            self.params.requests_per_gc_min,
            self.params.requests_per_gc_max,
        );
        let requests = if hi > lo {
            rng.random_range(lo..=hi)
        } else {
            lo
        };
        self.slot_budget = requests * calls_per_request;
    }

    /// Accounts one allocation call of `bytes`; says whether a collection must run now.
    pub fn on_alloc(&mut self, bytes: u64) -> Option<Trigger> {
        self.slot_budget -= 1.0;
        self.malloc_increase += bytes;
        if self.malloc_increase > self.malloc_limit {
            Some(Trigger::Malloc)
        } else if self.slot_budget <= 0.0 {
            Some(Trigger::Slots)
        } else {
            None
        }
    }

    /// Accounts one free (or the shrink of a realloc) of `bytes`: gc.c's
    /// `objspace_malloc_increase_body` takes freed bytes off `malloc_increase` (never below 0),
    /// so the malloc trigger follows the net growth since the last collection, not the bytes
    /// malloc'd.
    pub fn on_free(&mut self, bytes: u64) {
        self.malloc_increase = self.malloc_increase.saturating_sub(bytes);
    }

    /// Runs the mark phase: decides major/minor, moves dead blocks into `sweep`, resets the
    /// triggers. The caller must have finished the previous sweep. Returns whether it is major.
    pub fn collect<R: Rng>(
        &mut self,
        trigger: Trigger,
        calls_per_request: f64,
        promoted_survival: f64,
        rng: &mut R,
    ) -> bool {
        debug_assert!(self.sweep.is_empty());
        let major = rng.random_bool(self.params.major_fraction);
        self.collections += 1;
        if trigger == Trigger::Malloc {
            self.malloc_triggered += 1;
        }
        self.sweep.append(&mut self.young);
        if major {
            self.majors += 1;
            let mut i = 0;
            while i < self.old.len() {
                if rng.random_bool(1.0 - promoted_survival) {
                    self.sweep.push(self.old.swap_remove(i));
                } else {
                    i += 1;
                }
            }
        }
        // The sweep walks the heap page by page, in heap order, not in the order objects died:
        // a dead block's place in the sweep is independent of its age.
        self.sweep.shuffle(rng);
        // gc.c: the new limit follows the increase seen since the last collection.
        let p = &self.params;
        self.malloc_limit = if self.malloc_increase > self.malloc_limit {
            ((self.malloc_increase as f64 * p.malloc_limit_growth) as u64).min(p.malloc_limit_max)
        } else {
            ((self.malloc_limit as f64 * p.malloc_limit_decay) as u64).max(p.malloc_limit_min)
        };
        self.malloc_increase = 0;
        self.refill_slots(calls_per_request, rng);
        major
    }

    /// Takes the next lazy-sweep step's blocks (at most `sweep_step_frees`), in the order the
    /// sweep walks the heap (a random order, drawn at the collection).
    pub fn sweep_step(&mut self, out: &mut Vec<Block>) {
        let n = (self.params.sweep_step_frees as usize).min(self.sweep.len());
        let at = self.sweep.len() - n;
        out.extend(self.sweep.drain(at..));
    }
}
