//! `stats().resident` counts a solo page's stale tail: the memory of the dirty slots a solo
//! block took (when placed, or as headroom when it grew), past its own bytes, which stays
//! resident until the purge round gives it back or the block grows into it. Measured with `residency()` (mincore). One test in its own
//! process: the purge delay is process-wide and the scenario needs one segment's slots alone.

use lhalloc::c;

const KIB: usize = 1024;

/// Leaves four dirty slots resident: a medium block written whole, then freed.
fn leave_dirty_slots(fill: u8) {
    // SAFETY: plain allocation; the writes stay inside the block.
    unsafe {
        let a = c::malloc(250 * KIB);
        assert!(!a.is_null());
        core::ptr::write_bytes(a, fill, 250 * KIB);
        c::free(a);
    }
}

/// A stale tail exists (`why` says what should have made it), the counter equals its
/// mincore-measured bytes, and nothing resident escapes the counters.
fn assert_stale_tail_counted(why: &str) {
    let r = lhalloc::residency();
    assert!(r.solo_resident_beyond > 0, "{why}: no stale tail: {r}");
    assert_eq!(r.stale_counted, r.solo_resident_beyond, "{r}");
    assert!(r.measured <= r.counted, "resident memory not counted: {r}");
}

/// A forced round purges every stale tail: nothing stale is left, nor counted.
fn assert_forced_round_purges_tails() {
    lhalloc::collect(true);
    let r = lhalloc::residency();
    assert_eq!(r.solo_resident_beyond, 0, "{r}");
    assert_eq!(r.stale_counted, 0, "{r}");
}

#[test]
fn stale_tails_are_counted_until_grown_into_or_purged() {
    // No round purges anything on its own during the test.
    lhalloc::set_purge_delay_ms(3_600_000);
    // SAFETY: plain allocations and frees of blocks this test holds.
    unsafe {
        leave_dirty_slots(1);
        // A smaller medium block takes three of them (dirty first): 140 KiB of its own, and
        // the rest of the three slots (192 KiB) is its stale tail.
        let b = c::malloc(140 * KIB);
        assert!(!b.is_null());
        assert_stale_tail_counted("placement in dirty slots");
        // Growing in place into the tail moves those bytes from stale to touched.
        let b = c::realloc(b, 180 * KIB);
        assert!(!b.is_null());
        assert_stale_tail_counted("growth within the slots");
        assert_forced_round_purges_tails();
        c::free(b);
    }
    lhalloc::collect(true);
    assert_eq!(lhalloc::residency().stale_counted, 0);

    // SAFETY: as above.
    unsafe {
        // Growth past a solo page's slots takes the free slots right after it as headroom
        // (twice its slots): a dirty one brings its memory along, which joins the tail.
        leave_dirty_slots(2);
        let b = c::malloc(130 * KIB);
        assert!(!b.is_null());
        let b = c::realloc(b, 200 * KIB);
        assert!(!b.is_null());
        assert_stale_tail_counted("growth into dirty headroom");
        assert_forced_round_purges_tails();
        c::free(b);
    }
    lhalloc::collect(true);
    assert_eq!(lhalloc::residency().stale_counted, 0);
    lhalloc::validate().unwrap();
}
