//! `stats().resident` counts a solo page's stale tail: the memory of the dirty slots a solo
//! block took (when placed, or as headroom when it grew), past its own bytes, which stays
//! resident until the purge round gives it back or the block grows into it. Measured with `residency()` (mincore). One test in its own
//! process: the purge delay is process-wide and the scenario needs one segment's slots alone.

use lhalloc::c;

const KIB: usize = 1024;

#[test]
fn stale_tails_are_counted_until_grown_into_or_purged() {
    // No round purges anything on its own during the test.
    lhalloc::set_purge_delay_ms(3_600_000);
    // SAFETY: plain allocations; every access stays inside the block's current size.
    unsafe {
        // A medium block written whole leaves four dirty slots resident when freed.
        let a = c::malloc(250 * KIB);
        assert!(!a.is_null());
        core::ptr::write_bytes(a, 1, 250 * KIB);
        c::free(a);
        // A smaller medium block takes three of them (dirty first): 140 KiB of its own, and
        // the rest of the three slots (192 KiB) is its stale tail.
        let b = c::malloc(140 * KIB);
        assert!(!b.is_null());
        let r = lhalloc::residency();
        assert!(r.solo_resident_beyond > 0, "no stale tail was made: {r}");
        assert_eq!(r.stale_counted, r.solo_resident_beyond, "{r}");
        assert!(r.measured <= r.counted, "resident memory not counted: {r}");

        // Growing in place into the tail moves those bytes from stale to touched.
        let b = c::realloc(b, 180 * KIB);
        assert!(!b.is_null());
        let r = lhalloc::residency();
        assert!(r.solo_resident_beyond > 0, "{r}");
        assert_eq!(r.stale_counted, r.solo_resident_beyond, "{r}");
        assert!(r.measured <= r.counted, "{r}");

        // A forced round purges the tail: nothing stale is left, nor counted.
        lhalloc::collect(true);
        let r = lhalloc::residency();
        assert_eq!(r.solo_resident_beyond, 0, "{r}");
        assert_eq!(r.stale_counted, 0, "{r}");
        c::free(b);
    }
    lhalloc::collect(true);
    let r = lhalloc::residency();
    assert_eq!(r.stale_counted, 0, "{r}");

    // SAFETY: as above.
    unsafe {
        // Growth past a solo page's slots takes the free slots right after it as headroom
        // (twice its slots): a dirty one brings its memory along, which joins the tail.
        let a = c::malloc(250 * KIB);
        assert!(!a.is_null());
        core::ptr::write_bytes(a, 2, 250 * KIB);
        c::free(a);
        let b = c::malloc(130 * KIB);
        assert!(!b.is_null());
        let b = c::realloc(b, 200 * KIB);
        assert!(!b.is_null());
        let r = lhalloc::residency();
        assert!(r.stale_counted > 0, "the growth took no dirty slot: {r}");
        assert_eq!(r.stale_counted, r.solo_resident_beyond, "{r}");
        assert!(r.measured <= r.counted, "{r}");
        lhalloc::collect(true);
        let r = lhalloc::residency();
        assert_eq!(r.solo_resident_beyond, 0, "{r}");
        assert_eq!(r.stale_counted, 0, "{r}");
        c::free(b);
    }
    lhalloc::collect(true);
    assert_eq!(lhalloc::residency().stale_counted, 0);
    lhalloc::validate().unwrap();
}
