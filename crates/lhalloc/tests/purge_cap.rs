//! The cap on free-but-unpurged slot memory (`segment::free_page`): past it, dirty slots are
//! purged down to half the cap (not to zero), and what stays resident serves the next blocks
//! without page faults; and dirty slots reused within the purge delay raise the cap (they are
//! working memory). Not tested here: the oldest-first order of that purge (every block here is
//! freed within the same few milliseconds, so all fall in one age band). One test function:
//! the options and statistics are process-wide.

use lhalloc::c;

const MIB: usize = 1 << 20;
/// A medium block (a solo page of 16 slots).
const BLOCK: usize = 1000 << 10;

/// Minor page faults of this thread so far.
fn minor_faults() -> i64 {
    // SAFETY: getrusage writes the struct we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, &mut ru), 0);
        ru.ru_minflt
    }
}

fn alloc_written(n: usize) -> Vec<usize> {
    (0..n)
        .map(|_| {
            // SAFETY: plain allocation, then writes within its size.
            unsafe {
                let p = c::malloc(BLOCK);
                assert!(!p.is_null());
                p.write_bytes(7, BLOCK);
                p as usize
            }
        })
        .collect()
}

fn free_all(blocks: Vec<usize>) {
    for p in blocks {
        // SAFETY: each block is live and freed once.
        unsafe { c::free(p as *mut u8) };
    }
}

/// Frees `blocks` and returns how many of their bytes stayed resident (by `stats().resident`).
fn kept_after_freeing(blocks: Vec<usize>) -> (isize, lhalloc::Stats) {
    let freed = (blocks.len() * BLOCK) as isize;
    let before = lhalloc::stats();
    free_all(blocks);
    let after = lhalloc::stats();
    (
        after.resident as isize - (before.resident as isize - freed),
        after,
    )
}

#[test]
fn the_cap_purges_down_to_half_what_stays_is_reused_and_recent_reuse_raises_it() {
    // A delay no test outlasts: only the cap purges here.
    lhalloc::set_purge_delay_ns(600_000_000_000);
    lhalloc::set_purge_cap_bytes(8 * MIB);

    // 1. No reuse yet: freeing 9 blocks (~9 MiB) passes the cap at the last free: at most the
    // cap stays unpurged...
    let (kept, after) = kept_after_freeing(alloc_written(9));
    assert!(
        kept <= 8 * MIB as isize,
        "{kept} bytes of 9 blocks freed stayed resident, cap 8 MiB: {after:?}"
    );
    // ... and at least three blocks' worth (it stops at half the cap, not at zero)...
    assert!(
        kept >= 3 * MIB as isize,
        "only {kept} bytes stayed resident: {after:?}"
    );
    // ... and what stays resident is reused: three new blocks fault almost nothing.
    let f0 = minor_faults();
    let again = alloc_written(3);
    let faults = minor_faults() - f0;
    assert!(
        faults < (3 * BLOCK / 4096 / 4) as i64,
        "{faults} minor faults writing 3 blocks that should reuse resident slots"
    );
    free_all(again);

    // 2. Reuse: the same 6 MiB allocated and freed ten times within the delay is 60 MiB of
    // dirty slots taken again: the cap is raised to that, and 24 blocks freed stay resident.
    for _ in 0..10 {
        free_all(alloc_written(6));
    }
    let (kept, after) = kept_after_freeing(alloc_written(24));
    assert!(
        kept >= 20 * MIB as isize,
        "with 60 MiB of recent reuse, only {kept} bytes of 24 blocks freed stayed resident: {after:?}"
    );
    lhalloc::validate().expect("heap invariants");
}
