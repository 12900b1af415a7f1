//! The replay engine (inside a child): a dispatcher reads the trace and routes each event to the
//! thread that performs it; one worker thread per trace thread executes its events against the
//! allocator under test, sleeping through idle gaps on the scaled clock, writing every byte it
//! allocates, and timing requests and sampled calls.
//!
//! Ordering: the trace is in simulated-time order and each worker runs its own events in order.
//! A free (or realloc) of a block allocated on another thread waits until the block table shows
//! that allocation, and an allocation into a slot waits until the slot's previous block is freed.
//! Those waits always point to events earlier in the trace, which are already dispatched, so
//! the replay cannot deadlock; a waiting worker releases the GVL first.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rtrb::{Consumer, Producer, RingBuffer};
use workload::trace::{decode, RECORD_LEN};
use workload::Event;

use crate::block_table::{BlockTable, MAX_SLOTS};
use crate::latency::{record, Latencies};
use crate::under_test::AllocatorUnderTest;

/// Events buffered per worker (about 1.5 MiB each).
const RING_EVENTS: usize = 1 << 16;
/// One in this many allocator calls is timed.
const CALL_SAMPLE_MASK: u64 = 63;
/// Byte written into allocated memory.
const TOUCH_BYTE: u8 = 0x5a;
/// Sleeps shorter than this are spun/yielded instead.
const MIN_SLEEP: Duration = Duration::from_micros(30);

/// Per-worker counters read by the sampler; padded so workers do not share cache lines.
#[derive(Default)]
#[repr(align(128))]
pub struct WorkerCounters {
    /// Bytes allocated minus bytes freed by this worker (can be negative: others free its
    /// blocks); the sum over workers is the workload's live bytes.
    pub live: AtomicI64,
    pub requests: AtomicU64,
    pub collections: AtomicU64,
    /// Simulated time of the latest `Resume` this worker reached.
    pub sim_ns: AtomicU64,
    pub max_lag_ns: AtomicU64,
}

/// What the replay threads share.
pub struct Shared {
    pub table: BlockTable,
    pub speed: f64,
    pub start: Instant,
    pub gvl: Option<Mutex<()>>,
    pub workers: Vec<WorkerCounters>,
    /// Set by the dispatcher once every event is in a ring.
    dispatched_all: AtomicBool,
    /// Workers that have replayed all their events and wait for `release` before exiting
    /// (so that the last sample sees the process as the run left it, before thread exit).
    drained: AtomicUsize,
    release: AtomicBool,
    /// The workers' rings, made (and their memory touched) up front so that the harness's RSS
    /// measured before the replay includes them; taken by [`replay_stream`].
    rings: Mutex<Option<Rings>>,
}

type Rings = (Vec<Producer<Event>>, Vec<Consumer<Event>>);

impl Shared {
    pub fn new(threads: usize, speed: f64, gvl: bool) -> std::io::Result<Shared> {
        Ok(Shared {
            table: BlockTable::new()?,
            speed,
            start: Instant::now(),
            gvl: gvl.then(|| Mutex::new(())),
            workers: (0..threads).map(|_| WorkerCounters::default()).collect(),
            dispatched_all: AtomicBool::new(false),
            drained: AtomicUsize::new(0),
            release: AtomicBool::new(false),
            rings: Mutex::new(Some(rings(threads))),
        })
    }

    /// The real instant at which simulated time `sim_ns` is due.
    #[inline]
    fn due(&self, sim_ns: u64) -> Instant {
        self.start + Duration::from_secs_f64(sim_ns as f64 / 1e9 / self.speed)
    }

    pub fn live_bytes(&self) -> i64 {
        self.workers
            .iter()
            .map(|w| w.live.load(Ordering::Relaxed))
            .sum()
    }

    pub fn requests(&self) -> u64 {
        self.workers
            .iter()
            .map(|w| w.requests.load(Ordering::Relaxed))
            .sum()
    }

    pub fn collections(&self) -> u64 {
        self.workers
            .iter()
            .map(|w| w.collections.load(Ordering::Relaxed))
            .sum()
    }

    /// Simulated time the workload has reached.
    pub fn sim_ns(&self) -> u64 {
        self.workers
            .iter()
            .map(|w| w.sim_ns.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }

    pub fn max_lag_ns(&self) -> u64 {
        self.workers
            .iter()
            .map(|w| w.max_lag_ns.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }
}

/// Creates one ring per worker and fills and drains each once, so that their pages are
/// resident before the harness's own RSS is measured.
fn rings(threads: usize) -> Rings {
    let (mut producers, mut consumers): Rings =
        (0..threads).map(|_| RingBuffer::new(RING_EVENTS)).unzip();
    let filler = Event::Gc {
        thread: 0,
        major: false,
    };
    for (p, c) in producers.iter_mut().zip(consumers.iter_mut()) {
        while p.push(filler).is_ok() {}
        while c.pop().is_ok() {}
    }
    (producers, consumers)
}

/// Why dispatching stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("trace: {0}")]
    Trace(#[from] workload::TraceError),
    #[error("trace names thread {thread}, but its header declares {threads} request threads")]
    Thread { thread: u8, threads: usize },
    #[error("trace uses slot {0}, beyond this replayer's {MAX_SLOTS}")]
    Slot(u32),
    #[error("starting a replay thread: {0}")]
    Spawn(std::io::Error),
    #[error("this replay state was already used: make a new `Shared` per replay")]
    Reused,
}

/// Replays a whole trace body (after its header) from `input` against `alloc`: one worker per
/// thread of `shared`, the dispatcher on the calling thread, and `alongside` (the sampler) on
/// one more thread until `stop` is set, which happens once every worker has finished.
/// Returns the merged latency histograms and how dispatching ended.
pub fn replay_stream<A: AllocatorUnderTest, F: FnOnce() + Send>(
    alloc: &A,
    shared: &Shared,
    input: impl Read,
    alongside: F,
    stop: &AtomicBool,
) -> (Latencies, Result<(), DispatchError>) {
    let threads = shared.workers.len();
    let taken = shared.rings.lock().ok().and_then(|mut r| r.take());
    let Some((mut producers, consumers)) = taken else {
        return (Latencies::new(), Err(DispatchError::Reused));
    };
    let mut lats: Vec<Latencies> = (0..threads).map(|_| Latencies::new()).collect();
    let result = std::thread::scope(|s| {
        let side = s.spawn(alongside);
        let mut workers = Vec::with_capacity(threads);
        let mut spawned = Ok(());
        for (i, (rx, lat)) in consumers.into_iter().zip(lats.iter_mut()).enumerate() {
            match std::thread::Builder::new()
                .name(format!("replay-{i}"))
                .spawn_scoped(s, move || run_worker(alloc, shared, i, rx, lat))
            {
                Ok(h) => workers.push(h),
                Err(e) => {
                    spawned = Err(DispatchError::Spawn(e));
                    break;
                }
            }
        }
        let result = spawned.and_then(|()| dispatch(input, &mut producers, shared));
        // Whatever happened, let the workers drain what they have; once all have (or one
        // ended early), stop the sampler, which takes its last sample, then let them exit.
        shared.dispatched_all.store(true, Ordering::Release);
        while shared.drained.load(Ordering::Acquire) < workers.len()
            && !workers.iter().any(|w| w.is_finished())
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        stop.store(true, Ordering::Release);
        let _ = side.join();
        shared.release.store(true, Ordering::Release);
        for w in workers {
            let _ = w.join();
        }
        result
    });
    let mut all = Latencies::new();
    for l in &lats {
        all.merge(l);
    }
    (all, result)
}

/// Reads records from `input` until its end and routes them to the workers' rings.
pub fn dispatch(
    mut input: impl Read,
    producers: &mut [Producer<Event>],
    shared: &Shared,
) -> Result<(), DispatchError> {
    let mut buf = vec![0u8; 4096 * RECORD_LEN];
    let mut filled = 0usize;
    let mut index = 0u64;
    loop {
        let n = match input.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(workload::TraceError::Io(e).into()),
        };
        if n == 0 {
            break;
        }
        filled += n;
        let whole = filled / RECORD_LEN * RECORD_LEN;
        for rec in buf[..whole].chunks_exact(RECORD_LEN) {
            let rec: &[u8; RECORD_LEN] = rec.try_into().expect("chunks_exact yields whole records");
            let ev = decode(rec, index)?;
            index += 1;
            if let Some(b) = ev.block() {
                if b.slot as usize >= MAX_SLOTS {
                    return Err(DispatchError::Slot(b.slot));
                }
            }
            let t = ev.thread() as usize;
            let Some(p) = producers.get_mut(t) else {
                return Err(DispatchError::Thread {
                    thread: ev.thread(),
                    threads: producers.len().saturating_sub(1),
                });
            };
            let mut ev = ev;
            loop {
                match p.push(ev) {
                    Ok(()) => break,
                    Err(rtrb::PushError::Full(back)) => {
                        ev = back;
                        std::thread::sleep(Duration::from_micros(50));
                    }
                }
            }
        }
        buf.copy_within(whole..filled, 0);
        filled -= whole;
    }
    if filled != 0 {
        return Err(workload::TraceError::Truncated.into());
    }
    shared.dispatched_all.store(true, Ordering::Release);
    Ok(())
}

/// A worker's state while replaying.
struct Worker<'a, A: AllocatorUnderTest> {
    alloc: &'a A,
    sh: &'a Shared,
    me: &'a WorkerCounters,
    gvl: Option<MutexGuard<'a, ()>>,
    lat: &'a mut Latencies,
    rng: u64,
    intended: Instant,
    service_start: Instant,
    in_request: bool,
    live: i64,
}

impl<'a, A: AllocatorUnderTest> Worker<'a, A> {
    #[inline]
    fn take_gvl(&mut self) {
        if self.gvl.is_none() {
            if let Some(m) = &self.sh.gvl {
                // A poisoned GVL only means another worker panicked; the lock still works.
                self.gvl = Some(m.lock().unwrap_or_else(|p| p.into_inner()));
            }
        }
    }

    #[inline]
    fn sample_call(&mut self) -> bool {
        // xorshift64: cheap, per-thread, no shared state.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng & CALL_SAMPLE_MASK == 0
    }

    /// Runs `f` (an allocator call), timing it for one call in 64.
    #[inline]
    fn timed<R>(&mut self, f: impl FnOnce() -> R) -> R {
        if self.sample_call() {
            let t = Instant::now();
            let r = f();
            record(&mut self.lat.call_ns, t.elapsed().as_nanos() as u64);
            r
        } else {
            f()
        }
    }

    fn flush_live(&mut self) {
        self.me.live.fetch_add(self.live, Ordering::Relaxed);
        self.live = 0;
    }

    fn sleep_until(&mut self, due: Instant) {
        let now = Instant::now();
        if due > now {
            let d = due - now;
            if d >= MIN_SLEEP {
                std::thread::sleep(d);
            } else {
                while Instant::now() < due {
                    std::thread::yield_now();
                }
            }
        } else {
            let lag = (now - due).as_secs_f64() * self.sh.speed * 1e9;
            self.me.max_lag_ns.fetch_max(lag as u64, Ordering::Relaxed);
        }
    }

    fn alloc_into(&mut self, block: workload::BlockRef, size: u64, p: *mut u8) {
        if p.is_null() {
            out_of_memory(size);
        }
        // SAFETY: `p` is a fresh block of at least `size` bytes from the allocator under test;
        // writing all of it is what a program initialising its memory does.
        unsafe { std::ptr::write_bytes(p, TOUCH_BYTE, size as usize) };
        let e = self.sh.table.entry(block.slot);
        e.store(BlockTable::pack(block.gen, p), Ordering::Release);
        self.live += size as i64;
    }

    /// Waits until the slot's previous generation has been freed (by whichever thread).
    fn wait_slot_ready(&mut self, block: workload::BlockRef) {
        let e = self.sh.table.entry(block.slot);
        let gvl = &mut self.gvl;
        BlockTable::wait_for(
            e,
            |v| BlockTable::ready_for(v, block.gen),
            || drop(gvl.take()),
        );
    }

    /// Waits until block `(slot, gen)` is live and returns its address.
    fn wait_live(&mut self, block: workload::BlockRef) -> *mut u8 {
        let e = self.sh.table.entry(block.slot);
        let gvl = &mut self.gvl;
        let v = BlockTable::wait_for(
            e,
            |v| BlockTable::is_live(v, block.gen),
            || drop(gvl.take()),
        );
        BlockTable::addr(v)
    }

    fn exec(&mut self, ev: &Event) {
        match *ev {
            Event::Malloc { block, size, .. } => {
                self.wait_slot_ready(block);
                self.take_gvl();
                let a = self.alloc;
                // SAFETY: size > 0 (the generator never emits empty blocks).
                let p = self.timed(|| unsafe { a.malloc(size as usize) });
                self.alloc_into(block, size, p);
            }
            Event::Calloc { block, size, .. } => {
                self.wait_slot_ready(block);
                self.take_gvl();
                let a = self.alloc;
                // SAFETY: size > 0.
                let p = self.timed(|| unsafe { a.calloc(size as usize) });
                self.alloc_into(block, size, p);
            }
            Event::Aligned {
                block, size, align, ..
            } => {
                self.wait_slot_ready(block);
                self.take_gvl();
                let a = self.alloc;
                let align = (align as usize).max(16).next_power_of_two();
                // SAFETY: size > 0 and align is a power of two >= 16.
                let p = self.timed(|| unsafe { a.aligned(size as usize, align) });
                self.alloc_into(block, size, p);
            }
            Event::Realloc {
                block,
                old_size,
                new_size,
                ..
            } => {
                let p = self.wait_live(block);
                self.take_gvl();
                let a = self.alloc;
                let (old, new) = (old_size as usize, new_size as usize);
                // SAFETY: p is the live block (slot, gen) of `old` bytes from this allocator.
                let q = self.timed(|| unsafe { a.realloc(p, old, new) });
                if q.is_null() {
                    out_of_memory(new_size);
                }
                if new > old {
                    // SAFETY: q holds at least `new` bytes; the tail beyond `old` is new memory.
                    unsafe { std::ptr::write_bytes(q.add(old), TOUCH_BYTE, new - old) };
                }
                // The resized block is the slot's next generation (see `Event::Realloc`).
                let e = self.sh.table.entry(block.slot);
                e.store(
                    BlockTable::pack(block.gen.wrapping_add(1), q),
                    Ordering::Release,
                );
                self.live += new_size as i64 - old_size as i64;
            }
            Event::Free { block, size, .. } => {
                let p = self.wait_live(block);
                self.take_gvl();
                let a = self.alloc;
                // SAFETY: p is the live block (slot, gen) of `size` bytes from this allocator;
                // the table entry is cleared right after, so nobody frees it twice.
                self.timed(|| unsafe { a.free(p, size as usize) });
                let e = self.sh.table.entry(block.slot);
                e.store(
                    BlockTable::pack(block.gen, std::ptr::null_mut()),
                    Ordering::Release,
                );
                self.live -= size as i64;
            }
            Event::Resume { at_ns, .. } => {
                drop(self.gvl.take());
                self.flush_live();
                self.me.sim_ns.fetch_max(at_ns, Ordering::Relaxed);
                let due = self.sh.due(at_ns);
                self.sleep_until(due);
            }
            Event::RequestStart { arrival_ns, .. } => {
                self.intended = self.sh.due(arrival_ns);
                self.service_start = Instant::now();
                self.in_request = true;
            }
            Event::RequestEnd { .. } => {
                drop(self.gvl.take());
                if self.in_request {
                    let now = Instant::now();
                    let latency = now.saturating_duration_since(self.intended);
                    let service = now.saturating_duration_since(self.service_start);
                    record(&mut self.lat.request_us, latency.as_micros() as u64);
                    record(&mut self.lat.service_us, service.as_micros() as u64);
                    self.in_request = false;
                }
                self.flush_live();
                self.me.requests.fetch_add(1, Ordering::Relaxed);
            }
            Event::Gc { .. } => {
                self.me.collections.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Replays the events of ring `index` until the dispatcher is done and the ring is empty.
pub fn run_worker<A: AllocatorUnderTest>(
    alloc: &A,
    sh: &Shared,
    index: usize,
    mut rx: Consumer<Event>,
    lat: &mut Latencies,
) {
    let now = Instant::now();
    let mut w = Worker {
        alloc,
        sh,
        me: &sh.workers[index],
        gvl: None,
        lat,
        rng: 0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03),
        intended: now,
        service_start: now,
        in_request: false,
        live: 0,
    };
    let mut idle_spins = 0u32;
    loop {
        let n = rx.slots();
        if n == 0 {
            drop(w.gvl.take());
            w.flush_live();
            if sh.dispatched_all.load(Ordering::Acquire) && rx.slots() == 0 {
                break;
            }
            idle_spins += 1;
            if idle_spins < 16 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
            continue;
        }
        idle_spins = 0;
        let Ok(chunk) = rx.read_chunk(n) else {
            continue;
        };
        let (a, b) = chunk.as_slices();
        for ev in a.iter().chain(b) {
            w.exec(ev);
        }
        chunk.commit_all();
    }
    w.flush_live();
    sh.drained.fetch_add(1, Ordering::AcqRel);
    while !sh.release.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(1));
    }
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
