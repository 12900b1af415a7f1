//! Option precedence: a purge delay set through the API wins over `LHALLOC_PURGE_DELAY_MS`,
//! whether it is set before or after the allocator initialises, and `settings()` reports the
//! value in use. One test function (the options are process-wide); the "set before anything
//! was read" case runs in a forked child, before the parent touches any option.

use lhalloc::c;

fn malloc_and_free() {
    // SAFETY: plain allocation, freed at once (the first one initialises the allocator).
    unsafe { c::free(c::malloc(100)) };
}

#[test]
fn api_delay_wins_over_the_environment() {
    std::env::set_var("LHALLOC_PURGE_DELAY_MS", "777");

    // Child: the API sets the delay before anything read the environment.
    // SAFETY: the child only calls lhalloc and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        lhalloc::set_purge_delay_ns(123_456);
        malloc_and_free();
        let ok = lhalloc::purge_delay_ns() == 123_456
            && lhalloc::settings().contains("purge_delay_ns=123456 ");
        // SAFETY: leaving the child without unwinding.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);

    // Parent: the runner's pattern: read (the environment's value), scale, set, then init.
    assert_eq!(lhalloc::purge_delay_ms(), 777);
    assert_eq!(lhalloc::purge_delay_ns(), 777_000_000);
    let scaled = lhalloc::purge_delay_ns() / 60; // 12.95 ms, not rounded to whole ms
    lhalloc::set_purge_delay_ns(scaled);
    malloc_and_free();
    assert_eq!(lhalloc::purge_delay_ns(), 12_950_000);
    assert_eq!(lhalloc::purge_interval_ns(), 12_950_000 / 4);
    let s = lhalloc::settings();
    assert!(s.contains("purge_delay_ns=12950000 "), "{s}");
    assert!(s.contains("purge_interval_ns=3237500 "), "{s}");
    // Setting again after init still wins; ms is a thin wrapper.
    lhalloc::set_purge_delay_ms(5);
    assert_eq!(lhalloc::purge_delay_ns(), 5_000_000);
    // Very short delays clamp the round interval, not the delay.
    lhalloc::set_purge_delay_ns(10_000);
    assert_eq!(lhalloc::purge_delay_ns(), 10_000);
    assert_eq!(lhalloc::purge_interval_ns(), lhalloc::MIN_PURGE_INTERVAL_NS);
}
