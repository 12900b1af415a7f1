//! Fork before and during the allocator's initialisation. Each test forks a fresh child of
//! the test process (where lhalloc is not initialised: nothing in this binary uses it outside
//! such children) and runs its scenario there; a process that hangs is killed by `alarm` and
//! fails the test.
//!
//! "During initialisation" is made deterministic by interposing `getenv`: lhalloc reads its
//! options with it while initialising, so the hook below runs in the middle of `init`.

use std::ffi::{c_char, CStr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread;
use std::time::Duration;

use lhalloc::c;

/// What the `getenv` hook does when lhalloc asks for its first option.
static HOOK: AtomicU8 = AtomicU8::new(HOOK_NONE);
const HOOK_NONE: u8 = 0;
/// Fork right here, in the initialising thread.
const HOOK_FORK_SELF: u8 = 1;
/// Let another thread fork while this one is inside `init`.
const HOOK_LET_OTHER_FORK: u8 = 2;
static STEP: AtomicU8 = AtomicU8::new(0);
static GRANDCHILD_OK: AtomicU8 = AtomicU8::new(0);

/// Interposes libc's `getenv` for this executable (lhalloc is linked in statically, so its
/// calls resolve here).
///
/// # Safety
/// `name` is a NUL-terminated string (libc's contract).
#[no_mangle]
pub unsafe extern "C" fn getenv(name: *const c_char) -> *mut c_char {
    // SAFETY: `name` is NUL-terminated per the contract.
    let n = unsafe { CStr::from_ptr(name) };
    if n.to_bytes().starts_with(b"LHALLOC_") {
        match HOOK.swap(HOOK_NONE, Ordering::SeqCst) {
            HOOK_FORK_SELF => {
                // SAFETY: fork; the grandchild runs the workload and leaves with _exit.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    // SAFETY: a timer for this process; leaving it without unwinding.
                    unsafe {
                        libc::alarm(20);
                        libc::_exit(workload())
                    };
                }
                GRANDCHILD_OK.store(u8::from(wait_ok(pid)), Ordering::SeqCst);
            }
            HOOK_LET_OTHER_FORK => {
                STEP.store(1, Ordering::SeqCst);
                while STEP.load(Ordering::SeqCst) != 2 {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            _ => {}
        }
    }
    type GetEnv = unsafe extern "C" fn(*const c_char) -> *mut c_char;
    // SAFETY: looking up the next definition of a libc function by a valid name.
    let real = unsafe { libc::dlsym(libc::RTLD_NEXT, c"getenv".as_ptr()) };
    // SAFETY: `real` is libc's getenv, whose signature this is.
    unsafe { std::mem::transmute::<*mut libc::c_void, GetEnv>(real)(name) }
}

/// Allocates and frees from two threads, crosses blocks between them, checks the contents
/// and the invariants. Returns an exit code (0 = fine).
fn workload() -> i32 {
    let blocks: Vec<usize> = (0..2000)
        // SAFETY: plain allocation and a write inside it.
        .map(|i| unsafe {
            let p = c::malloc(16 + (i * 37) % 3000);
            p.write_bytes(i as u8, 16);
            p as usize
        })
        .collect();
    let other = thread::spawn(move || {
        let mut bad = 0;
        for (i, &p) in blocks.iter().enumerate() {
            // SAFETY: each block is live, at least 16 bytes, and freed once.
            unsafe {
                if *(p as *const u8) != i as u8 {
                    bad += 1;
                }
                c::free(p as *mut u8);
            }
        }
        // SAFETY: plain allocation, growth and free.
        unsafe {
            let mut q = c::malloc(100);
            for n in [1000, 10_000, 300_000] {
                q = c::realloc(q, n);
            }
            c::free(q);
        }
        bad
    });
    let bad = other.join().unwrap_or(1);
    if bad != 0 {
        return 3;
    }
    match lhalloc::validate() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            4
        }
    }
}

fn wait_ok(pid: libc::pid_t) -> bool {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

/// Runs `f` in a forked child of the test process (alarm: 20 s) and asserts it exits 0.
fn in_child(f: fn() -> i32) {
    // SAFETY: the child runs `f` and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: a timer for this process only; _exit leaves without unwinding.
        unsafe {
            libc::alarm(20);
            libc::_exit(f());
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed: status {status:#x} (signal {})",
        if libc::WIFSIGNALED(status) {
            libc::WTERMSIG(status)
        } else {
            0
        }
    );
}

#[test]
fn fork_before_initialisation() {
    in_child(|| {
        // Neither side has initialised lhalloc yet.
        // SAFETY: fork; the grandchild leaves with _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: a timer for this process; leaving it without unwinding.
            unsafe {
                libc::alarm(20);
                libc::_exit(workload())
            };
        }
        let mine = workload();
        if !wait_ok(pid) {
            return 10;
        }
        mine
    });
}

#[test]
fn fork_by_the_initialising_thread_during_initialisation() {
    in_child(|| {
        HOOK.store(HOOK_FORK_SELF, Ordering::SeqCst);
        let mine = workload(); // its first malloc initialises, and the hook forks
        if GRANDCHILD_OK.load(Ordering::SeqCst) != 1 {
            return 10;
        }
        mine
    });
}

#[test]
fn fork_by_another_thread_during_initialisation() {
    in_child(|| {
        HOOK.store(HOOK_LET_OTHER_FORK, Ordering::SeqCst);
        let forker = thread::spawn(|| {
            while STEP.load(Ordering::SeqCst) != 1 {
                thread::sleep(Duration::from_millis(1));
            }
            // The main thread is inside lhalloc's initialisation right now.
            // SAFETY: fork; the grandchild (this thread alone) leaves with _exit.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: a timer for this process; leaving it without unwinding.
                unsafe {
                    libc::alarm(20);
                    libc::_exit(workload())
                };
            }
            STEP.store(2, Ordering::SeqCst);
            wait_ok(pid)
        });
        // SAFETY: plain allocation (the first: it initialises lhalloc).
        let p = unsafe { c::malloc(64) };
        // SAFETY: `p` is live.
        unsafe { c::free(p) };
        let grandchild_ok = forker.join().unwrap_or(false);
        if !grandchild_ok {
            return 10;
        }
        workload()
    });
}
