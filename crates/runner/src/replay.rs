//! The replay engine (inside a child): a dispatcher pulls events from the source and routes each
//! to the replay thread of its trace thread; each replay thread executes its events against the
//! allocator under test, sleeping through idle gaps on the scaled clock, writing every byte it
//! allocates, and timing every allocator call and every touch of memory.
//!
//! Ordering: the trace is in simulated-time order and each replay thread runs its own events in
//! order. A free (or realloc) of a block allocated on another thread waits until the block table
//! shows that allocation, and an allocation into a slot waits until the slot's previous block is
//! freed. Those waits always point to events earlier in the trace, which the dispatcher has
//! already handed out (and woken their threads for), so the replay cannot deadlock; a waiting
//! thread releases the GVL first. [`crate::stream_check`] refuses a stream whose waits could
//! not end.
//!
//! Waiting never spins for long: a thread with nothing to do parks (futex), the dispatcher parks
//! while a ring is full, and sleeps on the simulated clock are timed sleeps with a 1 µs timer
//! slack.

use std::sync::atomic::{fence, AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use rtrb::{Consumer, Producer, RingBuffer};
use serde::{Deserialize, Serialize};
use workload::{BlockRef, Event};

use crate::block_table::BlockTable;
use crate::latency::{record, Latencies};
use crate::os::Usage;
use crate::source::{EventSource, SourceError};
use crate::stream_check::{StreamCheck, StreamError};
use crate::under_test::AllocatorUnderTest;

/// Events buffered per replay thread (512 KiB each at 32 bytes per event; about 30 ms of a
/// rails-api thread's events at speed 60).
pub const RING_EVENTS: usize = 1 << 14;
/// The dispatcher, blocked on a full ring, is woken once this many slots are free again (so it
/// does not wake for every event).
const WAKE_DISPATCHER_FREE: usize = RING_EVENTS / 4;
/// A replay thread commits what it has executed (freeing ring space) every this many events.
const COMMIT_EVERY: usize = 512;
/// The dispatcher checks which replay threads sleep, and wakes those it gave events, after this
/// many events.
const DISPATCH_BATCH: u32 = 256;
/// A wait for another thread's event spins this many times before it parks.
const SPINS_BEFORE_PARK: u32 = 200;
/// Parked waiters re-check at least this often: a bound on the cost of a wake-up lost to the
/// unfenced fast path of the thread that should have woken them (see `Worker::publish`).
const PARK_RECHECK: Duration = Duration::from_micros(200);
/// Byte written into allocated memory.
const TOUCH_BYTE: u8 = 0x5a;
/// One call in this many (a power of two) goes into the per-call histogram; every call is still
/// timed into the per-request sums. Recording into an HDR histogram costs about as much as
/// reading the clock, and an eighth of millions of calls describes the distribution as well.
const CALL_HISTOGRAM_EVERY: u32 = 8;

/// How fast simulated time runs: simulated seconds per real second, or as fast as possible.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speed {
    Fixed(f64),
    /// No sleeps: idle gaps take no time; latency means nothing (memory-only runs).
    Max,
}

impl Speed {
    /// The factor, if the clock is scaled.
    pub fn factor(self) -> Option<f64> {
        match self {
            Speed::Fixed(s) => Some(s),
            Speed::Max => None,
        }
    }
}

impl std::fmt::Display for Speed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Speed::Fixed(s) => write!(f, "{s}"),
            Speed::Max => f.write_str("max"),
        }
    }
}

/// One trace thread's state, shared between its replay thread, the dispatcher and the sampler;
/// padded so that threads do not share cache lines.
#[derive(Default)]
#[repr(align(128))]
pub struct WorkerSlot {
    /// Bytes allocated minus bytes freed by this thread (can be negative: others free its
    /// blocks); the sum over threads is the workload's live bytes.
    live: AtomicI64,
    requests: AtomicU64,
    collections: AtomicU64,
    /// Simulated time of the latest `Resume` this thread reached.
    sim_ns: AtomicU64,
    /// Worst lag (simulated ns behind schedule) this thread woke up with: over the whole replay,
    /// and since the sampler last looked.
    max_lag_ns: AtomicU64,
    window_lag_ns: AtomicU64,
    /// Time inside allocator calls and touching memory, ns (published now and then).
    alloc_ns: AtomicU64,
    touch_ns: AtomicU64,
    /// The replay thread is about to park, or parked, because its ring is empty.
    sleeping: AtomicBool,
    /// Slot + 1 of the block table entry this thread waits on, 0 when it does not wait.
    waiting_on: AtomicU64,
    thread: OnceLock<Thread>,
    /// This thread's CPU use and scheduler run delay (ns, if the kernel keeps it), recorded as
    /// it ends.
    usage: Mutex<Option<(Usage, Option<u64>)>>,
}

/// What the replay threads, the dispatcher and the sampler share.
pub struct Shared {
    pub table: BlockTable,
    pub speed: Speed,
    /// When the replay started (set by [`replay`]; simulated time 0 is due then).
    start: OnceLock<Instant>,
    clock: quanta::Clock,
    gvl: Option<Mutex<()>>,
    slots: Box<[WorkerSlot]>,
    /// Replay threads parked on a block table entry (a hint: see `Worker::publish`).
    waiters: AtomicUsize,
    dispatcher: OnceLock<Thread>,
    /// Index + 1 of the replay thread whose full ring the dispatcher waits on; 0 if none.
    dispatcher_waits_on: AtomicUsize,
    /// Set once the dispatcher has handed out its last event.
    stream_done: AtomicBool,
    started: AtomicUsize,
    /// Replay threads that ended (`ThreadEnd`) or drained their ring after the stream's end.
    finished: AtomicUsize,
    release: AtomicBool,
    /// Slots used so far (the block table's resident extent).
    slots_used: AtomicU64,
    /// Stop dispatching (the parent asked, or `stop_at_ns` was reached).
    stop: AtomicBool,
    stop_at_ns: Option<u64>,
    /// Histograms of replay threads that have ended.
    merged: Mutex<Latencies>,
}

impl Shared {
    /// Shared state for a trace with request threads `1..=threads` (plus thread 0).
    pub fn new(threads: u32, speed: Speed, gvl: bool) -> std::io::Result<Shared> {
        Ok(Shared {
            table: BlockTable::new()?,
            speed,
            start: OnceLock::new(),
            clock: quanta::Clock::new(),
            gvl: gvl.then(|| Mutex::new(())),
            slots: (0..=threads as usize)
                .map(|_| WorkerSlot::default())
                .collect(),
            waiters: AtomicUsize::new(0),
            dispatcher: OnceLock::new(),
            dispatcher_waits_on: AtomicUsize::new(0),
            stream_done: AtomicBool::new(false),
            started: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            release: AtomicBool::new(false),
            slots_used: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            stop_at_ns: None,
            merged: Mutex::new(Latencies::new()),
        })
    }

    /// Stops the replay once the workload reaches `sim_s` simulated seconds.
    pub fn stop_at(&mut self, sim_s: f64) {
        self.stop_at_ns = Some((sim_s * 1e9) as u64);
    }

    /// Asks the dispatcher to stop handing out events (the replay then drains and ends).
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// The real instant at which simulated time `sim_ns` is due (never, at speed max).
    #[inline]
    fn due(&self, sim_ns: u64) -> Option<Instant> {
        let speed = self.speed.factor()?;
        Some(self.start() + Duration::from_secs_f64(sim_ns as f64 / 1e9 / speed))
    }

    /// The instant the replay started (now, if it has not started yet).
    pub fn start(&self) -> Instant {
        *self.start.get_or_init(Instant::now)
    }

    /// Real seconds since the replay started.
    pub fn elapsed_s(&self) -> f64 {
        self.start().elapsed().as_secs_f64()
    }

    pub fn live_bytes(&self) -> i64 {
        self.slots
            .iter()
            .map(|w| w.live.load(Ordering::Relaxed))
            .sum()
    }

    pub fn requests(&self) -> u64 {
        self.slots
            .iter()
            .map(|w| w.requests.load(Ordering::Relaxed))
            .sum()
    }

    pub fn collections(&self) -> u64 {
        self.slots
            .iter()
            .map(|w| w.collections.load(Ordering::Relaxed))
            .sum()
    }

    /// Simulated time the workload has reached.
    pub fn sim_ns(&self) -> u64 {
        self.slots
            .iter()
            .map(|w| w.sim_ns.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }

    /// The worst lag of the whole replay, simulated ns.
    pub fn max_lag_ns(&self) -> u64 {
        self.slots
            .iter()
            .map(|w| w.max_lag_ns.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }

    /// The worst lag since the previous call, simulated ns (the sampler's window).
    pub fn take_window_lag_ns(&self) -> u64 {
        self.slots
            .iter()
            .map(|w| w.window_lag_ns.swap(0, Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }

    /// Time spent in allocator calls and touching memory so far, ns.
    pub fn alloc_touch_ns(&self) -> (u64, u64) {
        self.slots.iter().fold((0, 0), |(a, t), w| {
            (
                a + w.alloc_ns.load(Ordering::Relaxed),
                t + w.touch_ns.load(Ordering::Relaxed),
            )
        })
    }

    /// Slots the replay has used so far.
    pub fn slots_used(&self) -> u64 {
        self.slots_used.load(Ordering::Relaxed)
    }

    /// CPU use of the replay threads that have ended.
    /// CPU use of the replay threads that have ended, and their total scheduler run delay in
    /// seconds (`None` if the kernel does not keep it).
    pub fn replay_threads_usage(&self) -> (Usage, Option<f64>) {
        let mut total = Usage::default();
        let mut delay = Some(0u64);
        for w in self.slots.iter() {
            if let Some((u, d)) = *w.usage.lock().unwrap_or_else(|p| p.into_inner()) {
                total.add(&u);
                delay = delay.zip(d).map(|(a, b)| a + b);
            }
        }
        (total, delay.map(|d| d as f64 / 1e9))
    }

    /// Wakes the replay threads parked on block table entry `slot`.
    #[cold]
    fn wake_waiters(&self, slot: u32) {
        let want = slot as u64 + 1;
        for w in self.slots.iter() {
            if w.waiting_on.load(Ordering::SeqCst) == want {
                if let Some(t) = w.thread.get() {
                    t.unpark();
                }
            }
        }
    }
}

/// How a replay ended.
pub struct ReplayOutcome {
    /// Every replay thread's histograms, merged.
    pub latencies: Latencies,
    /// Events handed to replay threads.
    pub events: u64,
    pub threads_started: u64,
    /// The dispatcher thread's CPU use.
    pub dispatcher_usage: Usage,
    /// Why the stream ended early, if it did (the replay covers the events before it).
    pub stream_error: Option<DispatchError>,
    /// A replay thread could not be started.
    pub spawn_error: Option<std::io::Error>,
}

/// Why dispatching stopped before the end of the stream.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("{0}")]
    Source(#[from] SourceError),
    #[error("malformed event stream: {0}")]
    Stream(#[from] StreamError),
}

/// Replays the whole `source` against `alloc`: the dispatcher runs on the calling thread, one
/// replay thread per trace thread (started at its first event, ended at its `ThreadEnd` or at the
/// end of the stream), and `alongside` (the sampler) on one more thread until `stop` is set,
/// which happens once every replay thread has finished, before any of them exits.
pub fn replay<A: AllocatorUnderTest, F: FnOnce() + Send>(
    alloc: &A,
    shared: &Shared,
    mut source: EventSource,
    alongside: F,
    stop: &AtomicBool,
) -> ReplayOutcome {
    let _ = shared.dispatcher.set(std::thread::current());
    shared.start();
    let threads = shared.slots.len();
    let usage_before = crate::os::usage(crate::os::UsageOf::Thread);
    let mut producers: Vec<Option<Producer<Event>>> = (0..threads).map(|_| None).collect();
    let mut outcome = ReplayOutcome {
        latencies: Latencies::new(),
        events: 0,
        threads_started: 0,
        dispatcher_usage: Usage::default(),
        stream_error: None,
        spawn_error: None,
    };
    std::thread::scope(|s| {
        let side = s.spawn(alongside);
        let mut d = Dispatcher {
            sh: shared,
            producers: &mut producers,
            check: StreamCheck::new((threads - 1) as u32, !source.is_generated()),
            touched: Vec::with_capacity(threads),
            in_batch: 0,
        };
        let result = d.run(&mut source, |i, rx| {
            std::thread::Builder::new()
                .name(format!("replay-{i}"))
                .spawn_scoped(s, move || run_worker(alloc, shared, i, rx))
                .map(|h| h.thread().clone())
        });
        d.wake_touched();
        outcome.events = d.check.index();
        match result {
            Ok(()) => {}
            Err(DispatchOutcome::Stream(e)) => outcome.stream_error = Some(e),
            Err(DispatchOutcome::Spawn(e)) => outcome.spawn_error = Some(e),
        }
        // Whatever happened, let the replay threads drain what they have; once all have
        // finished, stop the sampler (which takes its last sample), then let them exit.
        shared.stream_done.store(true, Ordering::SeqCst);
        for w in shared.slots.iter() {
            if let Some(t) = w.thread.get() {
                t.unpark();
            }
        }
        while shared.finished.load(Ordering::Acquire) < shared.started.load(Ordering::Acquire) {
            std::thread::park_timeout(Duration::from_millis(1));
        }
        stop.store(true, Ordering::Release);
        let _ = side.join();
        shared.release.store(true, Ordering::Release);
        for w in shared.slots.iter() {
            if let Some(t) = w.thread.get() {
                t.unpark();
            }
        }
    });
    outcome.threads_started = shared.started.load(Ordering::Relaxed) as u64;
    outcome.dispatcher_usage = crate::os::usage(crate::os::UsageOf::Thread).since(&usage_before);
    outcome.latencies =
        std::mem::take(&mut *shared.merged.lock().unwrap_or_else(|p| p.into_inner()));
    outcome
}

enum DispatchOutcome {
    Stream(DispatchError),
    Spawn(std::io::Error),
}

/// The dispatcher's state.
struct Dispatcher<'a, 'p> {
    sh: &'a Shared,
    producers: &'p mut [Option<Producer<Event>>],
    check: StreamCheck,
    /// Replay threads given events since the last wake-up check.
    touched: Vec<usize>,
    in_batch: u32,
}

impl Dispatcher<'_, '_> {
    fn run(
        &mut self,
        source: &mut EventSource,
        mut spawn: impl FnMut(usize, Consumer<Event>) -> std::io::Result<Thread>,
    ) -> Result<(), DispatchOutcome> {
        loop {
            if self.in_batch == 0 && self.sh.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let e = match source.next_event() {
                Ok(Some(e)) => e,
                Ok(None) => return Ok(()),
                Err(e) => return Err(DispatchOutcome::Stream(e.into())),
            };
            self.check
                .check(&e)
                .map_err(|e| DispatchOutcome::Stream(e.into()))?;
            if let (Event::Resume { at_ns, .. }, Some(stop)) = (e, self.sh.stop_at_ns) {
                if at_ns > stop {
                    self.sh.stop.store(true, Ordering::Relaxed);
                }
            }
            let t = e.thread() as usize;
            if self.producers[t].is_none() {
                let (p, c) = RingBuffer::new(RING_EVENTS);
                let thread = spawn(t, c).map_err(DispatchOutcome::Spawn)?;
                let _ = self.sh.slots[t].thread.set(thread);
                self.sh.started.fetch_add(1, Ordering::AcqRel);
                self.producers[t] = Some(p);
            }
            self.push(t, e);
            self.sh
                .slots_used
                .store(self.check.slots_used(), Ordering::Relaxed);
            self.in_batch += 1;
            if self.in_batch >= DISPATCH_BATCH {
                self.wake_touched();
            }
        }
    }

    /// Hands `e` to replay thread `t`, waiting while its ring is full.
    #[inline]
    fn push(&mut self, t: usize, mut e: Event) {
        if self.touched.last() != Some(&t) && !self.touched.contains(&t) {
            self.touched.push(t);
        }
        loop {
            let Some(p) = self.producers[t].as_mut() else {
                return;
            };
            match p.push(e) {
                Ok(()) => return,
                Err(rtrb::PushError::Full(back)) => {
                    e = back;
                    // Everyone given events must be awake before we wait on one of them.
                    self.wake_touched();
                    self.sh.dispatcher_waits_on.store(t + 1, Ordering::SeqCst);
                    let p = self.producers[t].as_ref();
                    if p.is_some_and(|p| p.slots() < WAKE_DISPATCHER_FREE) {
                        std::thread::park_timeout(Duration::from_millis(2));
                    }
                    self.sh.dispatcher_waits_on.store(0, Ordering::SeqCst);
                }
            }
        }
    }

    /// Wakes the replay threads given events in this batch that went to sleep.
    fn wake_touched(&mut self) {
        // Pairs with the fence in `run_worker` before a thread re-checks its ring and parks:
        // either it sees our events, or we see its `sleeping` flag.
        fence(Ordering::SeqCst);
        for &t in &self.touched {
            let w = &self.sh.slots[t];
            if w.sleeping.load(Ordering::Relaxed) && w.sleeping.swap(false, Ordering::AcqRel) {
                if let Some(th) = w.thread.get() {
                    th.unpark();
                }
            }
        }
        self.touched.clear();
        self.in_batch = 0;
    }
}

/// A replay thread's state.
struct Worker<'a, A: AllocatorUnderTest> {
    alloc: &'a A,
    sh: &'a Shared,
    me: &'a WorkerSlot,
    clock: &'a quanta::Clock,
    gvl: Option<MutexGuard<'a, ()>>,
    lat: Latencies,
    intended: Instant,
    service_start: Instant,
    in_request: bool,
    /// Raw clock ticks inside allocator calls and touching memory: for the current request,
    /// and not yet published to `me`.
    req_alloc: u64,
    req_touch: u64,
    alloc_ticks: u64,
    touch_ticks: u64,
    /// Allocator calls made (which of them go into the per-call histogram).
    calls: u32,
    live: i64,
}

impl<'a, A: AllocatorUnderTest> Worker<'a, A> {
    #[inline]
    fn take_gvl(&mut self) {
        if self.gvl.is_none() {
            if let Some(m) = &self.sh.gvl {
                // A poisoned GVL only means another thread panicked; the lock still works.
                self.gvl = Some(m.lock().unwrap_or_else(|p| p.into_inner()));
            }
        }
    }

    /// Runs `f` (one allocator call) and times it; returns its result and the clock reading
    /// at its end (which a following touch of memory starts from).
    #[inline]
    fn call<R>(&mut self, f: impl FnOnce() -> R) -> (R, u64) {
        let t0 = self.clock.raw();
        let r = f();
        let t1 = self.clock.raw();
        let d = t1.saturating_sub(t0);
        self.req_alloc += d;
        self.alloc_ticks += d;
        self.calls = self.calls.wrapping_add(1);
        if self.calls % CALL_HISTOGRAM_EVERY == 0 {
            record(&mut self.lat.call_ns, self.clock.delta_as_nanos(t0, t1));
        }
        (r, t1)
    }

    /// Writes `len` bytes at `p` (as a program initialising its memory does) and times it
    /// from `t0` (the end of the call that returned `p`).
    #[inline]
    fn touch(&mut self, p: *mut u8, len: usize, t0: u64) {
        // SAFETY: callers pass memory the allocator under test just handed out, of at least
        // `len` bytes, that no one else uses.
        unsafe { std::ptr::write_bytes(p, TOUCH_BYTE, len) };
        let d = self.clock.raw().saturating_sub(t0);
        self.req_touch += d;
        self.touch_ticks += d;
    }

    /// Publishes counters for the sampler.
    fn flush(&mut self) {
        self.me.live.fetch_add(self.live, Ordering::Relaxed);
        self.live = 0;
        let ns = |t| self.clock.delta_as_nanos(0, t);
        self.me
            .alloc_ns
            .fetch_add(ns(self.alloc_ticks), Ordering::Relaxed);
        self.me
            .touch_ns
            .fetch_add(ns(self.touch_ticks), Ordering::Relaxed);
        self.alloc_ticks = 0;
        self.touch_ticks = 0;
    }

    /// Stores a table entry and wakes whoever waits on it. The check of `waiters` is a plain
    /// load with no fence (this runs for every event): a waiter that registers at the same
    /// moment may be missed, and then finds the entry on its next re-check (`PARK_RECHECK`).
    #[inline]
    fn publish(&self, slot: u32, entry: u64) {
        self.sh.table.entry(slot).store(entry, Ordering::Release);
        if self.sh.waiters.load(Ordering::Relaxed) != 0 {
            self.sh.wake_waiters(slot);
        }
    }

    /// Waits until `ok(entry of slot)` holds and returns the entry: spins a little (the other
    /// thread is usually about to get there), then parks.
    #[inline]
    fn wait_entry(&mut self, slot: u32, ok: impl Fn(u64) -> bool) -> u64 {
        let e = self.sh.table.entry(slot);
        let v = e.load(Ordering::Acquire);
        if ok(v) {
            return v;
        }
        self.wait_entry_slow(slot, ok)
    }

    #[cold]
    fn wait_entry_slow(&mut self, slot: u32, ok: impl Fn(u64) -> bool) -> u64 {
        drop(self.gvl.take());
        self.flush();
        let e = self.sh.table.entry(slot);
        for _ in 0..SPINS_BEFORE_PARK {
            std::hint::spin_loop();
            let v = e.load(Ordering::Acquire);
            if ok(v) {
                return v;
            }
        }
        self.me.waiting_on.store(slot as u64 + 1, Ordering::SeqCst);
        self.sh.waiters.fetch_add(1, Ordering::SeqCst);
        let v = loop {
            let v = e.load(Ordering::SeqCst);
            if ok(v) {
                break v;
            }
            std::thread::park_timeout(PARK_RECHECK);
        };
        self.sh.waiters.fetch_sub(1, Ordering::SeqCst);
        self.me.waiting_on.store(0, Ordering::SeqCst);
        v
    }

    /// Waits until the slot's previous generation has been freed (by whichever thread).
    #[inline]
    fn wait_slot_ready(&mut self, block: BlockRef) {
        self.wait_entry(block.slot, |v| BlockTable::ready_for(v, block.gen));
    }

    /// Waits until block `(slot, gen)` is live and returns its address.
    #[inline]
    fn wait_live(&mut self, block: BlockRef) -> *mut u8 {
        BlockTable::addr(self.wait_entry(block.slot, |v| BlockTable::is_live(v, block.gen)))
    }

    #[inline]
    fn allocated(&mut self, block: BlockRef, size: u64, (p, t): (*mut u8, u64)) {
        if p.is_null() {
            out_of_memory(size);
        }
        self.touch(p, size as usize, t);
        self.publish(block.slot, BlockTable::pack(block.gen, p));
        self.live += size as i64;
    }

    /// Sleeps until simulated time `at_ns` is due and records how late it woke.
    fn sleep_until(&mut self, at_ns: u64) {
        let Some(due) = self.sh.due(at_ns) else {
            return;
        };
        let mut now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
            now = Instant::now();
        }
        if now > due {
            let speed = self.sh.speed.factor().unwrap_or(1.0);
            let lag = ((now - due).as_secs_f64() * speed * 1e9) as u64;
            self.me.max_lag_ns.fetch_max(lag, Ordering::Relaxed);
            self.me.window_lag_ns.fetch_max(lag, Ordering::Relaxed);
        }
    }

    /// Executes one event; returns `false` when the thread ends here.
    #[inline]
    fn exec(&mut self, ev: &Event) -> bool {
        let a = self.alloc;
        match *ev {
            Event::Malloc { block, size, .. } => {
                self.wait_slot_ready(block);
                self.take_gvl();
                // SAFETY: size > 0 (the generator never emits empty blocks; recorded traces
                // map malloc(0) to 1 byte).
                let p = self.call(|| unsafe { a.malloc(size.max(1) as usize) });
                self.allocated(block, size, p);
            }
            Event::Calloc { block, size, .. } => {
                self.wait_slot_ready(block);
                self.take_gvl();
                // SAFETY: as for malloc.
                let p = self.call(|| unsafe { a.calloc(size.max(1) as usize) });
                self.allocated(block, size, p);
            }
            Event::Aligned {
                block, size, align, ..
            } => {
                self.wait_slot_ready(block);
                self.take_gvl();
                let align = (align as usize).max(16).next_power_of_two();
                // SAFETY: size > 0 and align is a power of two >= 16.
                let p = self.call(|| unsafe { a.aligned(size.max(1) as usize, align) });
                self.allocated(block, size, p);
            }
            Event::Realloc {
                block,
                old_size,
                new_size,
                ..
            } => {
                let p = self.wait_live(block);
                self.take_gvl();
                let (old, new) = (old_size as usize, new_size.max(1) as usize);
                // SAFETY: p is the live block (slot, gen) of `old` bytes from this allocator.
                let (q, t) = self.call(|| unsafe { a.realloc(p, old, new) });
                if q.is_null() {
                    out_of_memory(new_size);
                }
                if new > old {
                    // SAFETY: q holds at least `new` bytes; the tail beyond `old` is new memory.
                    self.touch(unsafe { q.add(old) }, new - old, t);
                }
                // The resized block is the slot's next generation (see `Event::Realloc`).
                self.publish(block.slot, BlockTable::pack(block.gen.wrapping_add(1), q));
                self.live += new_size as i64 - old_size as i64;
            }
            Event::Free { block, size, .. } => {
                let p = self.wait_live(block);
                self.take_gvl();
                // SAFETY: p is the live block (slot, gen) of `size` bytes from this allocator;
                // the table entry is cleared right after, so nobody frees it twice.
                self.call(|| unsafe { a.free(p, size as usize) });
                self.publish(
                    block.slot,
                    BlockTable::pack(block.gen, std::ptr::null_mut()),
                );
                self.live -= size as i64;
            }
            Event::Resume { at_ns, .. } => {
                drop(self.gvl.take());
                self.flush();
                self.me.sim_ns.fetch_max(at_ns, Ordering::Relaxed);
                self.sleep_until(at_ns);
            }
            Event::RequestStart { arrival_ns, .. } => {
                let now = Instant::now();
                self.intended = self.sh.due(arrival_ns).unwrap_or(now);
                self.service_start = now;
                self.in_request = true;
                self.req_alloc = 0;
                self.req_touch = 0;
            }
            Event::RequestEnd { .. } => {
                drop(self.gvl.take());
                if self.in_request {
                    let now = Instant::now();
                    let latency = now.saturating_duration_since(self.intended);
                    let service = now.saturating_duration_since(self.service_start);
                    record(&mut self.lat.request_us, latency.as_micros() as u64);
                    record(&mut self.lat.service_us, service.as_micros() as u64);
                    let alloc = self.clock.delta_as_nanos(0, self.req_alloc);
                    let touch = self.clock.delta_as_nanos(0, self.req_touch);
                    record(&mut self.lat.alloc_per_request_ns, alloc);
                    record(&mut self.lat.touch_per_request_ns, touch);
                    self.in_request = false;
                }
                self.flush();
                self.me.requests.fetch_add(1, Ordering::Relaxed);
            }
            Event::Gc { .. } => {
                self.me.collections.fetch_add(1, Ordering::Relaxed);
            }
            Event::ThreadEnd { .. } => return false,
        }
        true
    }
}

/// Replays the events of ring `rx` for trace thread `index` until its `ThreadEnd`, or until the
/// dispatcher is done and the ring is empty (then waits for `release` before exiting).
fn run_worker<A: AllocatorUnderTest>(
    alloc: &A,
    sh: &Shared,
    index: usize,
    mut rx: Consumer<Event>,
) {
    crate::os::tight_timer_slack();
    let usage_before = crate::os::usage(crate::os::UsageOf::Thread);
    let sched_before = crate::os::thread_schedstat();
    let me = &sh.slots[index];
    let now = Instant::now();
    let mut w = Worker {
        alloc,
        sh,
        me,
        clock: &sh.clock,
        gvl: None,
        lat: Latencies::new(),
        intended: now,
        service_start: now,
        in_request: false,
        req_alloc: 0,
        req_touch: 0,
        alloc_ticks: 0,
        touch_ticks: 0,
        calls: 0,
        live: 0,
    };
    let mut ended = false;
    'run: loop {
        let n = rx.slots();
        if n == 0 {
            drop(w.gvl.take());
            w.flush();
            if sh.stream_done.load(Ordering::Acquire) && rx.slots() == 0 {
                break;
            }
            me.sleeping.store(true, Ordering::SeqCst);
            // Pairs with the dispatcher's fence in `wake_touched`.
            fence(Ordering::SeqCst);
            if rx.slots() == 0 && !sh.stream_done.load(Ordering::SeqCst) {
                std::thread::park_timeout(Duration::from_millis(10));
            }
            me.sleeping.store(false, Ordering::Relaxed);
            continue;
        }
        let Ok(chunk) = rx.read_chunk(n.min(COMMIT_EVERY)) else {
            continue;
        };
        let (a, b) = chunk.as_slices();
        let mut done = 0;
        for ev in a.iter().chain(b) {
            done += 1;
            if !w.exec(ev) {
                ended = true;
                chunk.commit(done);
                break 'run;
            }
        }
        chunk.commit_all();
        // Pairs with the dispatcher's SeqCst store of `dispatcher_waits_on` before it re-checks
        // the ring: either it sees the space we made, or we see that it waits.
        fence(Ordering::SeqCst);
        let waits = sh.dispatcher_waits_on.load(Ordering::SeqCst);
        if waits == index + 1 && rx.slots() + WAKE_DISPATCHER_FREE <= RING_EVENTS {
            if let Some(d) = sh.dispatcher.get() {
                d.unpark();
            }
        }
    }
    drop(w.gvl.take());
    w.flush();
    if let Some(d) = sh.dispatcher.get() {
        d.unpark();
    }
    let finish = |w: &Worker<A>| {
        sh.merged
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .merge(&w.lat);
        let used = crate::os::usage(crate::os::UsageOf::Thread).since(&usage_before);
        let delay = crate::os::thread_schedstat()
            .zip(sched_before)
            .map(|((_, after), (_, before))| after.saturating_sub(before));
        *me.usage.lock().unwrap_or_else(|p| p.into_inner()) = Some((used, delay));
    };
    if ended {
        // The recorded program's thread ended here: end ours too, now.
        finish(&w);
        sh.finished.fetch_add(1, Ordering::AcqRel);
        return;
    }
    sh.finished.fetch_add(1, Ordering::AcqRel);
    if let Some(d) = sh.dispatcher.get() {
        d.unpark();
    }
    while !sh.release.load(Ordering::Acquire) {
        std::thread::park_timeout(Duration::from_millis(5));
    }
    finish(&w);
}

/// The allocator under test returned NULL: nothing sensible can follow.
#[cold]
fn out_of_memory(size: u64) -> ! {
    crate::protocol::ChildMsg::Error {
        message: format!("the allocator under test returned NULL for {size} bytes"),
    }
    .send();
    std::process::abort();
}
