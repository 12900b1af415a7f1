//! C programs under `LD_PRELOAD`: no thread is ever created inside a malloc-family call; fork
//! from a signal handler that interrupts the allocator; fork from a thread while others
//! allocate and free each other's blocks. A missing C compiler fails them.

mod common;

use common::{build_c, run_preloaded, scratch};

#[test]
fn no_thread_is_created_inside_malloc() {
    let dir = scratch("nothread");
    let bin = build_c("no_thread_in_malloc", dir.path());
    // Deferred purging only: no thread at all besides the program's own.
    let out = run_preloaded(&bin, &["0"], &[("LHALLOC_PURGE_DELAY_MS", "10")]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    // Asked for: exactly one thread, created by the library's constructor before main.
    let out = run_preloaded(
        &bin,
        &["1"],
        &[
            ("LHALLOC_PURGE_DELAY_MS", "10"),
            ("LHALLOC_BACKGROUND", "1"),
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[test]
fn fork_from_a_signal_handler() {
    let dir = scratch("forksig");
    let bin = build_c("fork_from_signal", dir.path());
    let out = run_preloaded(&bin, &[], &[("LHALLOC_PURGE_DELAY_MS", "5")]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok "));
}

#[test]
fn fork_from_a_thread_while_others_allocate() {
    let dir = scratch("forkthr");
    let bin = build_c("fork_while_allocating", dir.path());
    let out = run_preloaded(&bin, &[], &[("LHALLOC_PURGE_DELAY_MS", "5")]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok "));
}
