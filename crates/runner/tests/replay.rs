//! The replay engine in-process: block-table ordering rules, and a multi-threaded replay whose
//! final live bytes must equal the generator's exactly.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use runner::block_table::BlockTable;
use runner::replay::{replay_stream, Shared};
use runner::under_test::Libc;
use workload::trace::{TraceWriter, HEADER_LEN};
use workload::{Profile, Workload};

#[test]
fn an_allocation_waits_for_exactly_its_predecessor() {
    let p = 0x7f00_0000_1000usize as *mut u8;
    let null = std::ptr::null_mut();
    // A fresh slot takes generation 0 only.
    assert!(BlockTable::ready_for(0, 0));
    assert!(!BlockTable::ready_for(0, 1));
    // Generation 0 live: nobody may allocate, generation 0 is live, 1 is not.
    let live0 = BlockTable::pack(0, p);
    assert!(!BlockTable::ready_for(live0, 1));
    assert!(BlockTable::is_live(live0, 0) && !BlockTable::is_live(live0, 1));
    // Generation 0 freed: generation 1 may come, generation 0 (or 2) may not.
    let freed0 = BlockTable::pack(0, null);
    assert!(BlockTable::ready_for(freed0, 1));
    assert!(!BlockTable::ready_for(freed0, 0) && !BlockTable::ready_for(freed0, 2));
    assert!(!BlockTable::is_live(freed0, 0));
    // Generations wrap: after 65535 is freed, 0 comes next.
    let freed_last = BlockTable::pack(u16::MAX, null);
    assert!(BlockTable::ready_for(freed_last, 0));
    assert_eq!(BlockTable::addr(BlockTable::pack(7, p)), p);
}

#[test]
fn replay_on_six_threads_ends_with_the_generators_live_bytes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workloads/rails-api.toml");
    let profile = Profile::load(&path).unwrap();
    let mut w = Workload::new(profile, 9, 0.01);
    let header = w.header();
    let mut tw = TraceWriter::new(Vec::new(), header).unwrap();
    for e in w.by_ref() {
        tw.write(&e).unwrap();
    }
    let bytes = tw.finish().unwrap();
    assert!(w.stats().cross_thread_frees > 10_000, "{:?}", w.stats());

    // Speed 1e9: no idle sleeps; the GVL is on, as in the default profile.
    let shared = Shared::new(header.threads as usize + 1, 1e9, true).unwrap();
    let stop = AtomicBool::new(false);
    let (lat, result) = replay_stream(&Libc, &shared, &bytes[HEADER_LEN..], || {}, &stop);
    result.unwrap();
    assert_eq!(shared.live_bytes(), w.live_bytes() as i64);
    assert_eq!(shared.requests(), w.stats().requests_completed);
    assert_eq!(shared.collections(), w.stats().collections);
    assert_eq!(lat.request_us.len(), w.stats().requests_completed);
    // A second replay needs fresh state.
    let (_, again) = replay_stream(&Libc, &shared, &bytes[HEADER_LEN..], || {}, &stop);
    assert!(again.is_err());
}
