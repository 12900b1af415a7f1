//! The **workload**: a seeded, streaming discrete-event simulation of one Puma worker of a Rails
//! app, yielding its allocator **events** in simulated-time order.
//!
//! Threads: 0 boots the app, then `1..=threads` serve requests from a FIFO queue, as Puma's
//! thread pool does. A request is a chain of compute segments separated by I/O waits; with the
//! GVL on, compute segments of different threads never overlap in simulated time. Memory use is
//! bounded by the blocks alive at once, not by the simulated duration.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

use crate::cache::Lru;
use crate::event::{Event, ThreadId};
use crate::gc::{GcState, Trigger};
use crate::profile::Profile;
use crate::sizes::{exponential, log_uniform, Clamped};
use crate::slots::{Block, Slots};
use crate::trace::TraceMeta;

const NS_PER_S: f64 = 1e9;
const NS_PER_MS: f64 = 1e6;
/// Boot is emitted in chunks of this many calls, each at its own simulated time.
const BOOT_CHUNK_CALLS: u32 = 2_000;
/// Chance per call that one pending buffer growth advances (appends interleave with other work).
const GROW_STEP_CHANCE: f64 = 0.3;

/// Counters of what the generator emitted, for tests and the run record.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    pub events: u64,
    pub allocs: u64,
    pub reallocs: u64,
    pub frees: u64,
    pub cross_thread_frees: u64,
    pub gc_frees: u64,
    pub gc_cross_thread_frees: u64,
    pub collections: u64,
    pub major_collections: u64,
    pub malloc_triggered_collections: u64,
    pub requests_started: u64,
    pub requests_completed: u64,
    pub heavy_requests: u64,
    pub alloc_bytes: u64,
    pub max_live_bytes: u64,
}

/// Where a block goes when its allocation (and growth) is done.
#[derive(Clone, Copy, Debug)]
enum Fate {
    /// Freed a few calls later by the same thread.
    Immediate,
    /// Dies with its request; freed by a later GC sweep.
    Garbage,
    /// Promoted to the old generation; freed at a later major GC.
    Promoted,
    /// Never freed.
    Permanent,
    /// Freed later during boot.
    BootGarbage,
}

#[derive(Clone, Copy, Debug)]
enum Growth {
    /// `2 * capa + 1` (string.c appends).
    Double,
    /// `capa + max(capa / 2, 16 elements)` (array.c).
    HalfAgain,
}

#[derive(Debug)]
struct Grower {
    block: Block,
    target: u64,
    growth: Growth,
    fate: Fate,
}

#[derive(Debug)]
struct Request {
    id: u64,
    arrival_ns: u64,
    started: bool,
    segments_left: u32,
    calls_per_segment: u32,
    cpu_per_segment_ns: u64,
    io_wait_ns: u64,
    heavy_bytes: u64,
    garbage: Vec<Block>,
}

#[derive(Debug, Default)]
struct ThreadState {
    req: Option<Request>,
    /// Immediate blocks and the call count at which each is freed.
    temps: Vec<(Block, u64)>,
    growers: Vec<Grower>,
    calls: u64,
}

#[derive(Debug)]
struct Boot {
    permanent_left: i64,
    chunk: u64,
    chunks_expected: u64,
    garbage_prev: Vec<Block>,
    garbage_cur: Vec<Block>,
}

/// Distributions drawn from the profile once.
#[derive(Debug)]
struct Dists {
    sizes: MixSizes,
    kinds: WeightedIndex<f64>,
    calls: Clamped,
    cpu_ms: Clamped,
    string: Clamped,
    array_elems: Clamped,
    zipf: Option<Zipf<f64>>,
    /// The measured size table's rows, and their weights (`None` without a table).
    table: Option<SizeTable>,
}

/// A measured size table's row choice (by share) and rows' `[lo, hi]` size ranges.
type SizeTable = (WeightedIndex<f64>, Vec<(u64, u64)>);

/// The generator. Iterate it to get events; it ends after `hours` of simulated time.
#[derive(Debug)]
pub struct Workload {
    p: Profile,
    rng: StdRng,
    d: Dists,
    end_ns: u64,
    now_ns: u64,
    out: VecDeque<Event>,
    slots: Slots,
    gc: GcState,
    cache: Lru,
    /// Index = thread id; 0 is the main thread.
    threads: Vec<ThreadState>,
    /// Threads due to run a segment: (simulated time, ticket, thread). The ticket is taken when
    /// a thread first becomes ready and kept while it waits for the GVL, so that waiting threads
    /// get the GVL first come, first served (MRI's GVL is a FIFO queue), not by thread id.
    wake: BinaryHeap<Reverse<(u64, u64, ThreadId)>>,
    next_ticket: u64,
    idle: VecDeque<ThreadId>,
    waiting: VecDeque<(u64, u64)>,
    next_arrival_ns: u64,
    next_request: u64,
    gvl_free_ns: u64,
    boot: Option<Boot>,
    done: bool,
    stats: Stats,
    seed: u64,
    hours: f64,
    scratch: Vec<Block>,
}

impl Workload {
    /// A workload for `profile`, deterministic in `seed`, lasting `hours` of simulated time.
    pub fn new(profile: Profile, seed: u64, hours: f64) -> Workload {
        let mut rng = StdRng::seed_from_u64(seed);
        let m = &profile.mix;
        let r = &profile.requests;
        let kinds = WeightedIndex::new([
            m.struct_weight,
            m.string_weight,
            m.array_weight,
            m.hash_weight,
            m.grow_weight,
            m.table_weight,
        ])
        .unwrap_or_else(|_| WeightedIndex::new([1.0]).expect("one positive weight"));
        let zipf = Zipf::new(profile.cache.keys as f64, profile.cache.zipf_s).ok();
        let d = Dists {
            sizes: m.clone_sizes(),
            kinds,
            calls: Clamped::new(r.calls_median, r.calls_sigma, 1.0, r.calls_max as f64),
            cpu_ms: Clamped::new(
                r.cpu_ms_median,
                r.cpu_ms_sigma,
                r.cpu_ms_median / 20.0,
                r.cpu_ms_median * 50.0,
            ),
            string: Clamped::new(
                m.string_median,
                m.string_sigma,
                m.string_min as f64,
                m.string_max as f64,
            ),
            array_elems: Clamped::new(
                m.array_elems_median,
                m.array_elems_sigma,
                m.array_start_elems as f64,
                1e7,
            ),
            zipf,
            table: WeightedIndex::new(m.table.iter().map(|r| r.2))
                .ok()
                .map(|w| (w, m.table.iter().map(|r| (r.0, r.1)).collect())),
        };
        let gc = GcState::new(profile.gc.clone(), r.calls_median, &mut rng);
        let threads = profile.process.threads;
        let boot_calls = profile.boot.permanent_bytes as f64
            / (mean_call_bytes(&profile) * (1.0 - profile.boot.garbage_fraction)).max(1.0);
        let boot = Boot {
            permanent_left: profile.boot.permanent_bytes as i64,
            chunk: 0,
            chunks_expected: (boot_calls / BOOT_CHUNK_CALLS as f64).ceil().max(1.0) as u64,
            garbage_prev: Vec::new(),
            garbage_cur: Vec::new(),
        };
        let boot_end = (profile.boot.duration_s * NS_PER_S) as u64;
        Workload {
            cache: Lru::new(profile.cache.keys),
            rng,
            d,
            end_ns: (hours.max(0.0) * 3600.0 * NS_PER_S) as u64 + boot_end,
            now_ns: 0,
            out: VecDeque::new(),
            slots: Slots::default(),
            gc,
            threads: (0..=threads).map(|_| ThreadState::default()).collect(),
            wake: BinaryHeap::new(),
            next_ticket: 0,
            idle: (1..=threads as ThreadId).collect(),
            waiting: VecDeque::new(),
            next_arrival_ns: boot_end,
            next_request: 0,
            gvl_free_ns: 0,
            boot: Some(boot),
            done: false,
            stats: Stats::default(),
            seed,
            hours,
            scratch: Vec::new(),
            p: profile,
        }
    }

    /// The trace metadata for this workload's stream.
    pub fn meta(&self) -> TraceMeta {
        TraceMeta {
            threads: self.p.process.threads,
            events: None,
            origin: "synthetic".into(),
            workload: Some(serde_json::json!({
                "profile": self.p.name,
                "seed": self.seed,
                "hours": self.hours,
            })),
            ..TraceMeta::default()
        }
    }

    /// Request threads (thread ids `1..=threads`; 0 boots).
    pub fn threads(&self) -> u32 {
        self.p.process.threads
    }

    pub fn profile(&self) -> &Profile {
        &self.p
    }

    /// Simulated time of the latest `Resume` emitted.
    pub fn sim_time_ns(&self) -> u64 {
        self.now_ns
    }

    /// Simulated time at which the stream ends (boot included).
    pub fn end_ns(&self) -> u64 {
        self.end_ns
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Bytes the workload holds now (after the events handed out so far and those buffered).
    pub fn live_bytes(&self) -> u64 {
        self.slots.live_bytes()
    }

    pub fn live_blocks(&self) -> u64 {
        self.slots.live_blocks()
    }

    /// Slots ever used: the block table size a replayer needs.
    pub fn slots_used(&self) -> u64 {
        self.slots.slots_used()
    }

    // ---- emission primitives -------------------------------------------------------------

    fn emit(&mut self, e: Event) {
        self.stats.events += 1;
        self.out.push_back(e);
    }

    fn alloc(&mut self, t: ThreadId, size: u64, counts_for_gc: bool) -> Block {
        let b = self.slots.alloc(size, t);
        let m = &self.p.mix;
        let u: f64 = self.rng.random();
        let e = if u < m.aligned_fraction {
            // posix_memalign in C extensions: cache-line alignment, now and then a page.
            let align = if self.rng.random_ratio(1, 16) {
                4096
            } else {
                64
            };
            Event::Aligned {
                thread: t,
                block: b.r,
                size,
                align,
            }
        } else if u < m.aligned_fraction + m.calloc_fraction {
            Event::Calloc {
                thread: t,
                block: b.r,
                size,
            }
        } else {
            Event::Malloc {
                thread: t,
                block: b.r,
                size,
            }
        };
        self.emit(e);
        self.stats.allocs += 1;
        self.stats.alloc_bytes += size;
        self.stats.max_live_bytes = self.stats.max_live_bytes.max(self.slots.live_bytes());
        self.threads[t as usize].calls += 1;
        if counts_for_gc {
            if let Some(trigger) = self.gc.on_alloc(size) {
                self.collect(t, trigger);
            }
        }
        b
    }

    fn realloc(&mut self, t: ThreadId, b: &mut Block, new_size: u64) {
        let old = b.size;
        self.emit(Event::Realloc {
            thread: t,
            block: b.r,
            old_size: old,
            new_size,
        });
        // The block is renamed (next generation): see `Event::Realloc`.
        self.slots.resize(b, new_size);
        self.stats.reallocs += 1;
        self.stats.max_live_bytes = self.stats.max_live_bytes.max(self.slots.live_bytes());
        if new_size > old && self.boot.is_none() {
            self.stats.alloc_bytes += new_size - old;
            // Ruby counts a realloc's growth into malloc_increase (objspace_malloc_increase).
            if let Some(trigger) = self.gc.on_alloc(new_size - old) {
                self.collect(t, trigger);
            }
        } else if new_size < old {
            self.gc.on_free(old - new_size);
        }
    }

    fn free(&mut self, t: ThreadId, b: &Block) {
        self.emit(Event::Free {
            thread: t,
            block: b.r,
            size: b.size,
        });
        self.slots.free(b);
        self.gc.on_free(b.size);
        self.stats.frees += 1;
        if b.owner != t {
            self.stats.cross_thread_frees += 1;
        }
    }

    fn free_swept(&mut self, t: ThreadId, blocks: &mut Vec<Block>) {
        for b in blocks.drain(..) {
            self.emit(Event::Free {
                thread: t,
                block: b.r,
                size: b.size,
            });
            self.slots.free(&b);
            self.gc.on_free(b.size);
            self.stats.frees += 1;
            self.stats.gc_frees += 1;
            if b.owner != t {
                self.stats.cross_thread_frees += 1;
                self.stats.gc_cross_thread_frees += 1;
            }
        }
    }

    // ---- GC --------------------------------------------------------------------------------

    /// Runs a collection on thread `t`: finishes the previous sweep, marks, sweeps one step.
    fn collect(&mut self, t: ThreadId, trigger: Trigger) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.append(&mut self.gc.sweep);
        self.free_swept(t, &mut scratch);
        let major = self.gc.collect(
            trigger,
            self.p.requests.calls_median,
            self.p.lifetimes.promoted_major_survival,
            &mut self.rng,
        );
        self.stats.collections = self.gc.collections;
        self.stats.major_collections = self.gc.majors;
        self.stats.malloc_triggered_collections = self.gc.malloc_triggered;
        self.emit(Event::Gc { thread: t, major });
        self.gc.sweep_step(&mut scratch);
        self.free_swept(t, &mut scratch);
        self.scratch = scratch;
    }

    fn lazy_sweep_step(&mut self, t: ThreadId) {
        if self.gc.sweep.is_empty() {
            return;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        self.gc.sweep_step(&mut scratch);
        self.free_swept(t, &mut scratch);
        self.scratch = scratch;
    }

    // ---- blocks and their fates ----------------------------------------------------------

    fn draw_fate(&mut self) -> Fate {
        if self.boot.is_some() {
            // Boot's temporaries die as fast as a request's (the `immediate` share of all
            // calls, as far as the boot's garbage allows); the rest of its garbage one chunk later.
            let g = self.p.boot.garbage_fraction;
            let u: f64 = self.rng.random();
            return if u < self.p.lifetimes.immediate.min(g) {
                Fate::Immediate
            } else if u < g {
                Fate::BootGarbage
            } else {
                Fate::Permanent
            };
        }
        let l = &self.p.lifetimes;
        let u: f64 = self.rng.random();
        if u < l.immediate {
            Fate::Immediate
        } else if u < l.immediate + l.promoted {
            Fate::Promoted
        } else {
            Fate::Garbage
        }
    }

    fn place(&mut self, t: ThreadId, b: Block, fate: Fate) {
        match fate {
            Fate::Immediate => {
                let l = &self.p.lifetimes;
                let (window, far, far_window) = (
                    l.immediate_window as u64,
                    l.immediate_far,
                    l.immediate_far_window as u64,
                );
                let after = if far > 0.0 && self.rng.random_bool(far) {
                    log_uniform(&mut self.rng, 1, far_window)
                } else {
                    self.rng.random_range(1..=window)
                };
                let ts = &mut self.threads[t as usize];
                let due = ts.calls + after;
                ts.temps.push((b, due));
            }
            Fate::Garbage => match self.threads[t as usize].req.as_mut() {
                Some(r) => r.garbage.push(b),
                None => self.gc.young.push(b),
            },
            Fate::Promoted => self.gc.old.push(b),
            Fate::Permanent => {}
            Fate::BootGarbage => match self.boot.as_mut() {
                Some(boot) => boot.garbage_cur.push(b),
                None => self.gc.young.push(b),
            },
        }
    }

    /// Frees the thread's immediate blocks that are due (all of them if `all`).
    fn free_due_temps(&mut self, t: ThreadId, all: bool) {
        let now = self.threads[t as usize].calls;
        let mut i = 0;
        while i < self.threads[t as usize].temps.len() {
            let (b, due) = self.threads[t as usize].temps[i];
            if all || due <= now {
                self.threads[t as usize].temps.swap_remove(i);
                self.free(t, &b);
            } else {
                i += 1;
            }
        }
    }

    /// One growth step of grower `i`; places the block when it reaches its target.
    fn grow_step(&mut self, t: ThreadId, i: usize) {
        let mut g = self.threads[t as usize].growers.swap_remove(i);
        let capa = g.block.size;
        let next = match g.growth {
            Growth::Double => capa * 2 + 1,
            Growth::HalfAgain => capa + (capa / 2).max(16 * 8),
        }
        .min(g.target);
        self.realloc(t, &mut g.block, next);
        if g.block.size >= g.target {
            self.place(t, g.block, g.fate);
        } else {
            self.threads[t as usize].growers.push(g);
        }
    }

    fn finish_growers(&mut self, t: ThreadId) {
        while !self.threads[t as usize].growers.is_empty() {
            self.grow_step(t, 0);
        }
    }

    fn start_growth(&mut self, t: ThreadId, start: u64, target: u64, growth: Growth) {
        let counts = self.boot.is_none();
        let block = self.alloc(t, start, counts);
        let fate = self.draw_fate();
        if target > start {
            self.threads[t as usize].growers.push(Grower {
                block,
                target,
                growth,
                fate,
            });
        } else {
            self.place(t, block, fate);
        }
    }

    /// One malloc-family call of the request mix (plus the reallocs/frees it implies).
    fn call(&mut self, t: ThreadId) {
        self.free_due_temps(t, false);
        let n = self.threads[t as usize].growers.len();
        if n > 0 && self.rng.random_bool(GROW_STEP_CHANCE) {
            let i = self.rng.random_range(0..n);
            self.grow_step(t, i);
        }
        let counts = self.boot.is_none();
        let m = self.d.sizes;
        match self.d.kinds.sample(&mut self.rng) {
            0 => {
                let size = log_uniform(&mut self.rng, m.struct_min, m.struct_max);
                let b = self.alloc(t, size, counts);
                let fate = self.draw_fate();
                self.place(t, b, fate);
            }
            1 => {
                let size = self.d.string.sample_u64(&mut self.rng);
                let b = self.alloc(t, size, counts);
                let fate = self.draw_fate();
                self.place(t, b, fate);
            }
            2 => {
                let start = 8 * m.array_start_elems;
                let target = 8 * self.d.array_elems.sample_u64(&mut self.rng);
                self.start_growth(t, start, target, Growth::HalfAgain);
            }
            3 => {
                // st.c: entries and bins are two mallocs; a rebuild mallocs the doubled table
                // and frees the old one (no realloc). Bins are ~1/3 of the entries' bytes.
                let k = self.rng.random_range(0..=m.hash_max_doublings);
                let mut entries = self.alloc(t, m.hash_entry_bytes, counts);
                let mut bins: Option<Block> = None;
                for j in 1..=k {
                    let size = m.hash_entry_bytes << j;
                    let new_entries = self.alloc(t, size, counts);
                    self.free(t, &entries);
                    entries = new_entries;
                    let new_bins = self.alloc(t, (size / 3).next_multiple_of(8), counts);
                    if let Some(old) = bins.take() {
                        self.free(t, &old);
                    }
                    bins = Some(new_bins);
                }
                let fate = self.draw_fate();
                self.place(t, entries, fate);
                if let Some(b) = bins {
                    self.place(t, b, fate);
                }
            }
            5 => {
                let size = match &self.d.table {
                    Some((w, rows)) => {
                        let (lo, hi) = rows[w.sample(&mut self.rng)];
                        log_uniform(&mut self.rng, lo, hi)
                    }
                    // Validation requires rows when the table has a weight.
                    None => m.struct_min,
                };
                let b = self.alloc(t, size, counts);
                let fate = self.draw_fate();
                self.place(t, b, fate);
            }
            _ => {
                let start = log_uniform(&mut self.rng, m.grow_start_min, m.grow_start_max);
                let target = log_uniform(&mut self.rng, m.grow_final_min, m.grow_final_max);
                self.start_growth(t, start, target, Growth::Double);
            }
        }
    }

    // ---- boot ------------------------------------------------------------------------------

    fn boot_step(&mut self) {
        let (chunk, expected) = match self.boot.as_ref() {
            Some(b) => (b.chunk, b.chunks_expected),
            None => return,
        };
        let at =
            ((chunk as f64 / expected as f64).min(1.0) * self.p.boot.duration_s * NS_PER_S) as u64;
        self.now_ns = at;
        self.emit(Event::Resume {
            thread: 0,
            at_ns: at,
        });
        let before = self.slots.live_bytes() as i64;
        for _ in 0..BOOT_CHUNK_CALLS {
            self.call(0);
        }
        self.finish_growers(0);
        self.free_due_temps(0, true);
        let mut boot = match self.boot.take() {
            Some(b) => b,
            None => return,
        };
        let mut prev = std::mem::take(&mut boot.garbage_prev);
        for b in prev.drain(..) {
            self.free(0, &b);
        }
        boot.garbage_prev = std::mem::replace(&mut boot.garbage_cur, prev);
        boot.permanent_left -= self.slots.live_bytes() as i64 - before;
        boot.chunk += 1;
        if boot.permanent_left > 0 {
            self.boot = Some(boot);
        } else {
            for b in boot
                .garbage_prev
                .drain(..)
                .chain(boot.garbage_cur.drain(..))
            {
                self.free(0, &b);
            }
        }
    }

    // ---- requests --------------------------------------------------------------------------

    /// Thread `t` is ready to run its next segment at `at_ns`.
    fn ready(&mut self, at_ns: u64, t: ThreadId) {
        self.wake.push(Reverse((at_ns, self.next_ticket, t)));
        self.next_ticket += 1;
    }

    fn start_request(&mut self, t: ThreadId, arrival_ns: u64, id: u64, at_ns: u64) {
        let r = &self.p.requests;
        let heavy = self.rng.random_bool(self.p.heavy.probability);
        let heavy_bytes = if heavy {
            log_uniform(
                &mut self.rng,
                self.p.heavy.bytes_min,
                self.p.heavy.bytes_max,
            )
        } else {
            0
        };
        let calls = self.d.calls.sample(&mut self.rng);
        // A heavy request also computes longer: one extra median request per 8 MiB it builds.
        let cpu_ms = self.d.cpu_ms.sample(&mut self.rng)
            * (1.0 + heavy_bytes as f64 / (8.0 * 1024.0 * 1024.0));
        let waits = self.rng.random_range(1..=r.io_waits_max);
        let segments = waits + 1;
        let io_ms = cpu_ms * r.io_fraction / (1.0 - r.io_fraction);
        let req = Request {
            id,
            arrival_ns,
            started: false,
            segments_left: segments,
            calls_per_segment: (calls / segments as f64).ceil() as u32,
            cpu_per_segment_ns: (cpu_ms * NS_PER_MS / segments as f64) as u64,
            io_wait_ns: (io_ms * NS_PER_MS / waits as f64) as u64,
            heavy_bytes,
            garbage: Vec::new(),
        };
        self.threads[t as usize].req = Some(req);
        self.stats.requests_started += 1;
        if heavy {
            self.stats.heavy_requests += 1;
        }
        self.ready(at_ns, t);
    }

    /// The first segment's extra work: socket read, cache lookups, memoization.
    fn request_prologue(&mut self, t: ThreadId) {
        // Puma reads the request into a 64 KiB buffer and shrinks it when > 4 KiB is unused.
        let rq = &self.p.requests;
        if rq.socket_read_bytes > 0 {
            let (read, lo, hi) = (rq.socket_read_bytes, rq.socket_keep_min, rq.socket_keep_max);
            let mut b = self.alloc(t, read, true);
            let keep = log_uniform(&mut self.rng, lo, hi);
            if read - keep > 4096 {
                self.realloc(t, &mut b, keep);
            }
            self.place(t, b, Fate::Garbage);
        }
        let lookups = self.p.cache.lookups_per_request;
        let n = lookups.floor() as u32 + u32::from(self.rng.random_bool(lookups.fract()));
        for _ in 0..n {
            self.cache_lookup(t);
        }
        let mm = &self.p.memo;
        let served = self.stats.requests_started as f64;
        let p = mm.probability * mm.tau_requests / (mm.tau_requests + served);
        if self.rng.random_bool(p.clamp(0.0, 1.0)) {
            let size = log_uniform(&mut self.rng, mm.size_min, mm.size_max);
            let b = self.alloc(t, size, true);
            self.place(t, b, Fate::Permanent);
        }
    }

    fn cache_lookup(&mut self, t: ThreadId) {
        let Some(zipf) = self.d.zipf else { return };
        let key = (zipf.sample(&mut self.rng) as u32).saturating_sub(1) % self.p.cache.keys;
        let c = &self.p.cache;
        match self.cache.get(key) {
            Some(size) => {
                // A hit deserializes a copy of the entry (request garbage) (E).
                let b = self.alloc(t, size, true);
                self.place(t, b, Fate::Garbage);
            }
            None => {
                // An entry's size is a property of its key: the same page renders the same size.
                let h = (key as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
                let frac = h as f64 / (1u64 << 53) as f64;
                let (lo, hi) = (c.entry_min as f64, c.entry_max as f64);
                let size = (lo * (hi / lo).powf(frac)).round() as u64;
                let (cap, keep) = (c.capacity_bytes, c.prune_to);
                let b = self.alloc(t, size, true);
                self.cache.insert(key, b);
                if self.cache.bytes() > cap {
                    let target = (cap as f64 * keep) as u64;
                    while self.cache.bytes() > target {
                        match self.cache.pop_lru() {
                            Some(old) => self.free(t, &old),
                            None => break,
                        }
                    }
                }
            }
        }
    }

    /// A heavy request's export: a body buffer doubling to half the bytes, and rows (strings of
    /// 1-64 KiB) for the rest, all garbage of the request.
    fn heavy_work(&mut self, t: ThreadId, bytes: u64) {
        let mut body = self.alloc(t, 64 * 1024, true);
        let mut rows = 0u64;
        while rows < bytes / 2 {
            let size = log_uniform(&mut self.rng, 1024, 64 * 1024);
            let b = self.alloc(t, size, true);
            self.place(t, b, Fate::Garbage);
            rows += size;
            if body.size < bytes / 2 && self.rng.random_ratio(1, 16) {
                let next = (body.size * 2 + 1).min(bytes / 2);
                self.realloc(t, &mut body, next);
            }
        }
        while body.size < bytes / 2 {
            let next = (body.size * 2 + 1).min(bytes / 2);
            self.realloc(t, &mut body, next);
        }
        self.place(t, body, Fate::Garbage);
    }

    /// Runs thread `t`'s next compute segment, starting at simulated time `start`.
    fn segment(&mut self, t: ThreadId, start: u64) {
        self.now_ns = self.now_ns.max(start);
        self.emit(Event::Resume {
            thread: t,
            at_ns: start,
        });
        let Some(req) = self.threads[t as usize].req.as_mut() else {
            return;
        };
        let first = !req.started;
        req.started = true;
        req.segments_left -= 1;
        let (id, arrival, last, calls, cpu, io, heavy) = (
            req.id,
            req.arrival_ns,
            req.segments_left == 0,
            req.calls_per_segment,
            req.cpu_per_segment_ns,
            req.io_wait_ns,
            req.heavy_bytes,
        );
        if first {
            self.emit(Event::RequestStart {
                thread: t,
                request: id,
                arrival_ns: arrival,
            });
        }
        // The lazy sweep continues at this thread's first allocation needing a slot.
        self.lazy_sweep_step(t);
        if first {
            self.request_prologue(t);
        }
        for _ in 0..calls {
            self.call(t);
        }
        if last && heavy > 0 {
            self.heavy_work(t, heavy);
        }
        self.finish_growers(t);
        self.free_due_temps(t, true);
        let end = start + cpu;
        if self.p.process.gvl {
            self.gvl_free_ns = end;
        }
        if last {
            // The request ends when its last segment's CPU time is spent, not when its last
            // allocation is made.
            self.emit(Event::Resume {
                thread: t,
                at_ns: end,
            });
            self.emit(Event::RequestEnd {
                thread: t,
                request: id,
            });
            self.stats.requests_completed += 1;
            if let Some(mut r) = self.threads[t as usize].req.take() {
                self.gc.young.append(&mut r.garbage);
            }
            match self.waiting.pop_front() {
                Some((arrival_ns, next)) => self.start_request(t, arrival_ns, next, end),
                None => self.idle.push_back(t),
            }
        } else {
            self.ready(end + io, t);
        }
    }

    /// Advances the simulation by one happening (a boot chunk, an arrival or a segment).
    fn step(&mut self) {
        if self.boot.is_some() {
            self.boot_step();
            return;
        }
        let t_wake = self.wake.peek().map(|Reverse((w, _, _))| *w);
        let t_arr = self.next_arrival_ns;
        let next = t_wake.map_or(t_arr, |w| w.min(t_arr));
        if next >= self.end_ns {
            self.done = true;
            return;
        }
        match t_wake {
            Some(w) if w <= t_arr => {
                let Some(Reverse((time, ticket, t))) = self.wake.pop() else {
                    return;
                };
                if self.p.process.gvl && self.gvl_free_ns > time {
                    // Waiting for the GVL: try again when it is released.
                    self.wake.push(Reverse((self.gvl_free_ns, ticket, t)));
                    return;
                }
                debug_assert_eq!(w, time);
                self.segment(t, time);
            }
            _ => {
                let id = self.next_request;
                self.next_request += 1;
                let mean_ns = NS_PER_S / self.p.requests.rate_per_s;
                self.next_arrival_ns = t_arr + exponential(&mut self.rng, mean_ns).max(1.0) as u64;
                match self.idle.pop_front() {
                    Some(t) => self.start_request(t, t_arr, id, t_arr),
                    None => self.waiting.push_back((t_arr, id)),
                }
            }
        }
    }
}

impl Iterator for Workload {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.out.pop_front() {
                return Some(e);
            }
            if self.done {
                return None;
            }
            self.step();
        }
    }
}

/// Mean bytes of one call of the mix, roughly (sizes the boot in chunks).
fn mean_call_bytes(p: &Profile) -> f64 {
    let m = &p.mix;
    let w = m.struct_weight
        + m.string_weight
        + m.array_weight
        + m.hash_weight
        + m.grow_weight
        + m.table_weight;
    let table_shares: f64 = m.table.iter().map(|r| r.2).sum();
    let table = m
        .table
        .iter()
        .map(|&(lo, hi, share)| share * (lo + hi) as f64 / 2.0)
        .sum::<f64>()
        / table_shares.max(f64::MIN_POSITIVE);
    let string = m.string_median * (m.string_sigma * m.string_sigma / 2.0).exp();
    let strukt = (m.struct_min + m.struct_max) as f64 / 4.0;
    let array = 8.0 * m.array_elems_median;
    let hash = m.hash_entry_bytes as f64 * 2f64.powi(m.hash_max_doublings as i32) / 2.0;
    let grow = ((m.grow_final_min as f64) * (m.grow_final_max as f64)).sqrt();
    (m.struct_weight * strukt
        + m.string_weight * string
        + m.array_weight * array
        + m.hash_weight * hash
        + m.grow_weight * grow
        + m.table_weight * table)
        / w.max(f64::MIN_POSITIVE)
}

/// The size parameters of the mix, copied out once so that drawing does not borrow the profile.
#[derive(Clone, Copy, Debug)]
struct MixSizes {
    struct_min: u64,
    struct_max: u64,
    array_start_elems: u64,
    hash_entry_bytes: u64,
    hash_max_doublings: u32,
    grow_start_min: u64,
    grow_start_max: u64,
    grow_final_min: u64,
    grow_final_max: u64,
}

impl crate::profile::Mix {
    fn clone_sizes(&self) -> MixSizes {
        MixSizes {
            struct_min: self.struct_min,
            struct_max: self.struct_max,
            array_start_elems: self.array_start_elems,
            hash_entry_bytes: self.hash_entry_bytes,
            hash_max_doublings: self.hash_max_doublings,
            grow_start_min: self.grow_start_min,
            grow_start_max: self.grow_start_max,
            grow_final_min: self.grow_final_min,
            grow_final_max: self.grow_final_max,
        }
    }
}
