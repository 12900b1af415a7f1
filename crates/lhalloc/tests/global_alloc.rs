//! The whole test process runs on `LhAlloc`: std collections, strings, threads, over-aligned
//! types, realloc-heavy growth.

use std::collections::{BTreeMap, HashMap};
use std::thread;

use lhalloc::LhAlloc;

#[global_allocator]
static GLOBAL: LhAlloc = LhAlloc;

#[repr(align(4096))]
struct Page([u8; 4096]);

#[repr(align(128))]
#[derive(Clone, Copy)]
struct Line([u8; 100]);

#[test]
fn std_collections_on_lhalloc() {
    let mut m: HashMap<String, Vec<u64>> = HashMap::new();
    for i in 0..20_000u64 {
        m.entry(format!("key-{}", i % 3000)).or_default().push(i);
    }
    assert_eq!(m.len(), 3000);
    let total: usize = m.values().map(|v| v.len()).sum();
    assert_eq!(total, 20_000);
    let b: BTreeMap<u64, String> = (0..10_000).map(|i| (i, i.to_string())).collect();
    assert_eq!(b[&9999], "9999");
    let mut s = String::new();
    for i in 0..100_000 {
        s.push_str(&i.to_string());
    }
    assert!(s.len() > 400_000);
    lhalloc::validate().unwrap();
}

#[test]
fn over_aligned_types() {
    let pages: Vec<Box<Page>> = (0..50).map(|_| Box::new(Page([7; 4096]))).collect();
    for p in &pages {
        assert_eq!(p.as_ref() as *const Page as usize % 4096, 0);
        assert_eq!(p.0[4095], 7);
    }
    let mut lines: Vec<Line> = Vec::new();
    for i in 0..10_000 {
        lines.push(Line([i as u8; 100]));
        assert_eq!(lines.as_ptr() as usize % 128, 0);
    }
    assert_eq!(lines[9_999].0[99], (9_999 % 256) as u8);
}

#[test]
fn threads_pass_data_around() {
    let handles: Vec<_> = (0..4)
        .map(|t| {
            thread::spawn(move || {
                (0..5000)
                    .map(|i| vec![t as u8; 1 + (i * 31) % 3000])
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let data: Vec<Vec<Vec<u8>>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (t, vs) in data.iter().enumerate() {
        for v in vs {
            assert!(v.iter().all(|&b| b == t as u8));
        }
    }
    drop(data);
    let st = lhalloc::stats();
    assert!(st.mapped >= st.resident);
}
