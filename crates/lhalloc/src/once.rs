//! A run-once cell that never waits and survives `fork`: the first caller runs the function;
//! callers that arrive while it runs go on without it (they must be able to do without its
//! effect for a moment: they will call again on their next slow path). If a `fork` happens
//! while another thread runs the function, the child sees a run that was started by another
//! process and starts it again, instead of waiting forever for a thread it does not have.
//!
//! State word: `(pid << 2) | phase`, `phase` ∈ {UNINIT, RUNNING, DONE}; `pid` is the process
//! that moved it to RUNNING (one atomic word, so a reader sees both together).

use core::sync::atomic::{AtomicU64, Ordering};

use crate::os;

const UNINIT: u64 = 0;
const RUNNING: u64 = 1;
const DONE: u64 = 2;

/// A run-once cell (see the module docs).
pub struct Once {
    state: AtomicU64,
}

impl Once {
    /// A cell whose function has not run.
    pub const fn new() -> Once {
        Once {
            state: AtomicU64::new(UNINIT),
        }
    }

    /// Whether the function has completed (in this process or in the one that forked it).
    #[inline]
    pub fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) & 3 == DONE
    }

    /// Runs `f` unless it has completed or is running in this process right now (in another
    /// thread, or further up the calling thread's own stack). Never waits.
    pub fn call(&self, f: impl FnOnce()) {
        let mut pid = None;
        loop {
            let s = self.state.load(Ordering::Acquire);
            match s & 3 {
                DONE => return,
                RUNNING => {
                    let me = *pid.get_or_insert_with(os::pid);
                    if s >> 2 == u64::from(me) {
                        return;
                    }
                    // Started by the process we were forked from, in a thread we do not have.
                    let _ =
                        self.state
                            .compare_exchange(s, UNINIT, Ordering::AcqRel, Ordering::Relaxed);
                }
                _ => {
                    let me = u64::from(*pid.get_or_insert_with(os::pid));
                    if self
                        .state
                        .compare_exchange(
                            UNINIT,
                            (me << 2) | RUNNING,
                            Ordering::AcqRel,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                    {
                        f();
                        self.state.store((me << 2) | DONE, Ordering::Release);
                        return;
                    }
                }
            }
        }
    }
}
