//! Reclaiming memory on request: [`collect`] (what `malloc_trim` calls), and the optional
//! background purger thread, which runs purge rounds so that an idle process shrinks too.
//!
//! The background thread is never started by the allocator itself: only by
//! [`start_background_purger`], called by the program from a point where creating a thread is
//! safe (its `main`, or the preload library's constructor when `LHALLOC_BACKGROUND=1`), never
//! from inside a malloc-family call. Creating a thread inside malloc can deadlock under the
//! dynamic loader's or stdio's locks, breaks in signal handlers and vfork children, and makes
//! every program multi-threaded (`unshare(CLONE_NEWUSER)` then fails). Without it, purge
//! rounds are deferred to the allocation slow paths (`purge.rs`): a process that stops calling
//! the allocator keeps its free memory until it calls it again (as jemalloc without
//! `background_thread`). A forked child does not inherit the thread; it may start its own.

use core::fmt;
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU8, Ordering};

use crate::counters;
use crate::options;
use crate::os;
use crate::purge;

const NOT_STARTED: u8 = 0;
const STARTING: u8 = 1;
const RUNNING: u8 = 2;
const FAILED: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(NOT_STARTED);
/// The process that started the thread (a forked child does not have it).
static PID: AtomicU32 = AtomicU32::new(0);
static ERRNO: AtomicI32 = AtomicI32::new(0);

/// Why [`start_background_purger`] did not start a thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PurgerError {
    /// This process already runs one (or another call is starting it now).
    AlreadyRunning,
    /// `pthread_create` failed with this error number (e.g. EAGAIN: a thread limit; or EPERM).
    Spawn(i32),
}

impl fmt::Display for PurgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PurgerError::AlreadyRunning => write!(f, "the background purger is already running"),
            PurgerError::Spawn(e) => write!(
                f,
                "could not create the background purger thread (pthread_create error {e}); \
                 purging stays deferred to allocation slow paths"
            ),
        }
    }
}

impl std::error::Error for PurgerError {}

/// What the background purger is doing, as [`crate::settings`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PurgerState {
    /// Never started in this process.
    NotStarted,
    /// Running in this process.
    Running,
    /// The last start failed with this `pthread_create` error number.
    Failed(i32),
}

/// Starts the background purger thread: it sleeps `purge_interval_ns()` between purge
/// rounds, takes no signal, and never exits. Call it from a point where creating a thread is
/// safe (not from a signal handler, not between `vfork` and `exec`, not while holding a lock
/// that malloc or thread creation may need). Purge rounds keep running on allocation slow
/// paths too.
pub fn start_background_purger() -> Result<(), PurgerError> {
    crate::init::ensure();
    let me = os::pid();
    loop {
        let s = STATE.load(Ordering::Acquire);
        if (s == RUNNING || s == STARTING) && PID.load(Ordering::Relaxed) == me {
            return Err(PurgerError::AlreadyRunning);
        }
        if STATE
            .compare_exchange(s, STARTING, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            break;
        }
    }
    PID.store(me, Ordering::Relaxed);
    match os::spawn_detached(purger_main) {
        Ok(()) => {
            STATE.store(RUNNING, Ordering::Release);
            Ok(())
        }
        Err(e) => {
            ERRNO.store(e, Ordering::Relaxed);
            STATE.store(FAILED, Ordering::Release);
            Err(PurgerError::Spawn(e))
        }
    }
}

/// The background purger's state in this process.
pub fn purger_state() -> PurgerState {
    match STATE.load(Ordering::Acquire) {
        RUNNING | STARTING if PID.load(Ordering::Relaxed) == os::pid() => PurgerState::Running,
        FAILED => PurgerState::Failed(ERRNO.load(Ordering::Relaxed)),
        _ => PurgerState::NotStarted,
    }
}

extern "C" fn purger_main(_: *mut libc::c_void) -> *mut libc::c_void {
    loop {
        os::sleep_ns(options::purge_interval_ns());
        purge::run(os::now_ns(), options::purge_delay_ns());
    }
}

/// Gives back, now, what can be given back: flushes the calling thread's remote frees, gives
/// its empty active pages and the empty pooled pages back to their segments, then purges
/// memory that has been free for at least the purge delay (all of it if `force`). Returns the
/// bytes purged by this call (others' purges running at the same time may be counted too).
/// Never creates a thread.
pub fn collect(force: bool) -> usize {
    crate::init::ensure();
    let before = counters::get(&counters::PURGED);
    crate::heap::release_empty_pages();
    // Every pool: collect() is rare, and pages may be flagged for a later round.
    for cls in 0..crate::size_class::NUM_CLASSES {
        crate::purge_flags::note_pool_remote(cls);
    }
    let delay = if force { 0 } else { options::purge_delay_ns() };
    purge::run_after_others(delay);
    counters::get(&counters::PURGED).saturating_sub(before)
}
