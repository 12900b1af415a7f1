//! Shadow-model test: random sequences of malloc/calloc/realloc/aligned_alloc/free checked
//! against a model of what every live block must hold.

use lhalloc::c;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Malloc(usize),
    Calloc(usize, usize),
    Realloc(usize, usize),
    Aligned(u32, usize),
    Free(usize),
    Validate,
}

/// Sizes: mostly small (the common case in Ruby/Python heaps), some medium up to the small
/// limit, a few large ones and the edges 0 and SMALL_MAX +- 1.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 0usize..=256,
        4 => 257usize..=16 << 10,
        2 => (16usize << 10)..=lhalloc::SMALL_MAX + 1,
        1 => (lhalloc::SMALL_MAX + 1)..=(1usize << 20),
        1 => prop_oneof![Just(0usize), Just(lhalloc::SMALL_MAX), Just(lhalloc::SMALL_MAX + 1), Just(3 << 20)],
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => size().prop_map(Op::Malloc),
        1 => (0usize..64, 0usize..512).prop_map(|(n, s)| Op::Calloc(n, s)),
        3 => (any::<usize>(), size()).prop_map(|(i, s)| Op::Realloc(i, s)),
        2 => (4u32..=23, size()).prop_map(|(a, s)| Op::Aligned(a, s)),
        5 => any::<usize>().prop_map(Op::Free),
        1 => Just(Op::Validate),
    ]
}

struct Live {
    p: *mut u8,
    size: usize,
    tag: u8,
}

fn fill(l: &Live) {
    // SAFETY: `l.p` is a live block of at least `l.size` bytes.
    unsafe { core::ptr::write_bytes(l.p, l.tag, l.size) };
}

/// Checks the first `n` bytes hold the tag (every byte for small blocks, a sample for big ones).
fn check(l: &Live, n: usize) -> Result<(), TestCaseError> {
    // SAFETY: `l.p` is live for at least `n <= l.size` bytes.
    let s = unsafe { core::slice::from_raw_parts(l.p, n) };
    let step = if n > 64 << 10 { 61 } else { 1 };
    for i in (0..n).step_by(step).chain(n.saturating_sub(16)..n) {
        prop_assert_eq!(
            s[i],
            l.tag,
            "byte {} of block {:p} (size {})",
            i,
            l.p,
            l.size
        );
    }
    Ok(())
}

fn admit(
    live: &mut Vec<Live>,
    p: *mut u8,
    size: usize,
    align: usize,
    tag: u8,
) -> Result<(), TestCaseError> {
    prop_assert!(!p.is_null(), "allocation of {} failed", size);
    prop_assert_eq!(p as usize % align, 0, "misaligned {:p} for {}", p, align);
    // SAFETY: `p` is live.
    let us = unsafe { c::usable_size(p) };
    prop_assert!(us >= size, "usable {} < {}", us, size);
    let (a0, a1) = (p as usize, p as usize + us.max(1));
    for o in live.iter() {
        // SAFETY: `o.p` is live.
        let ous = unsafe { c::usable_size(o.p) }.max(1);
        let (b0, b1) = (o.p as usize, o.p as usize + ous);
        prop_assert!(
            a1 <= b0 || b1 <= a0,
            "{:p}+{} overlaps {:p}+{}",
            p,
            us,
            o.p,
            ous
        );
    }
    let l = Live { p, size, tag };
    fill(&l);
    live.push(l);
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut live: Vec<Live> = Vec::new();
    let mut tag: u8 = 1;
    for op in ops {
        tag = tag.wrapping_add(1).max(1);
        match op {
            Op::Malloc(s) => {
                // SAFETY: plain allocation.
                let p = unsafe { c::malloc(s) };
                admit(&mut live, p, s, 16, tag)?;
            }
            Op::Calloc(n, s) => {
                // SAFETY: plain allocation.
                let p = unsafe { c::calloc(n, s) };
                prop_assert!(!p.is_null());
                // SAFETY: `p` holds n * s bytes.
                let z = unsafe { core::slice::from_raw_parts(p, n * s) };
                prop_assert!(z.iter().all(|&b| b == 0), "calloc not zeroed");
                admit(&mut live, p, n * s, 16, tag)?;
            }
            Op::Aligned(shift, s) => {
                let a = 1usize << shift;
                // SAFETY: `a` is a power of two.
                let p = unsafe { c::aligned_alloc(a, s) };
                admit(&mut live, p, s, a, tag)?;
            }
            Op::Realloc(i, s) => {
                if live.is_empty() {
                    continue;
                }
                let l = live.swap_remove(i % live.len());
                check(&l, l.size)?;
                if s == 0 {
                    // SAFETY: `l.p` is live; realloc(p, 0) frees it.
                    let q = unsafe { c::realloc(l.p, 0) };
                    prop_assert!(q.is_null());
                    continue;
                }
                // SAFETY: `l.p` is live.
                let q = unsafe { c::realloc(l.p, s) };
                prop_assert!(!q.is_null());
                let moved = Live {
                    p: q,
                    size: s,
                    tag: l.tag,
                };
                check(&moved, l.size.min(s))?;
                admit(&mut live, q, s, 16, tag)?;
            }
            Op::Free(i) => {
                if live.is_empty() {
                    continue;
                }
                let l = live.swap_remove(i % live.len());
                check(&l, l.size)?;
                // SAFETY: `l.p` is live and dropped from the model.
                unsafe { c::free(l.p) };
            }
            Op::Validate => {
                if let Err(e) = lhalloc::validate() {
                    prop_assert!(false, "{}", e);
                }
            }
        }
    }
    for l in live.drain(..) {
        check(&l, l.size)?;
        // SAFETY: `l.p` is live.
        unsafe { c::free(l.p) };
    }
    if let Err(e) = lhalloc::validate() {
        prop_assert!(false, "{}", e);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn shadow_model(ops in proptest::collection::vec(op(), 1..300)) {
        run(ops)?;
    }
}

#[test]
fn edge_cases() {
    // SAFETY: each call is a plain use of the C API with its documented edge cases.
    unsafe {
        c::free(core::ptr::null_mut());
        assert!(c::calloc(usize::MAX, 2).is_null());
        assert!(c::calloc(1 << 40, 1 << 40).is_null());
        assert!(c::malloc(usize::MAX).is_null());
        assert!(c::malloc(isize::MAX as usize).is_null());
        assert!(c::aligned_alloc(3, 16).is_null());
        let p = c::malloc(0);
        assert!(!p.is_null());
        assert!(c::usable_size(p) >= 1);
        let q = c::realloc(p, 100);
        assert!(!q.is_null());
        // In place while the class fits.
        let r = c::realloc(q, c::usable_size(q));
        assert_eq!(q, r);
        c::free(r);
        let big = c::aligned_alloc(8 << 20, 100);
        assert_eq!(big as usize % (8 << 20), 0);
        c::free(big);
        let p = c::realloc(core::ptr::null_mut(), 10);
        assert!(!p.is_null());
        c::free(p);
    }
    lhalloc::validate().unwrap();
}

#[test]
fn medium_mallocs_are_solo_blocks_and_larger_ones_mappings() {
    const SLOT: usize = 64 << 10;
    // SAFETY: plain use of the C API; blocks are written only within their sizes.
    unsafe {
        for n in [lhalloc::SMALL_MAX + 1, 300 << 10, lhalloc::MEDIUM_MAX] {
            let p = c::malloc(n);
            assert!(!p.is_null());
            // A solo block starts its slots (64 KiB-aligned); a large block starts 64 bytes
            // into its mapping, after the header.
            assert_eq!(p as usize % SLOT, 0, "malloc({n}) is not a solo block");
            assert!(c::usable_size(p) >= n);
            core::ptr::write_bytes(p, 0x5a, n);
            c::free(p);
        }
        let n = lhalloc::MEDIUM_MAX + 1;
        let p = c::malloc(n);
        assert!(!p.is_null());
        assert_eq!(p as usize % SLOT, 64, "malloc({n}) is not a large block");
        core::ptr::write_bytes(p, 0x5a, n);
        c::free(p);
    }
    lhalloc::validate().unwrap();
}

#[test]
fn large_realloc_grows_in_place_or_moves_intact() {
    // SAFETY: plain use of the C API; the block is written only within its size.
    unsafe {
        let mut p = c::malloc(200 << 10);
        let mut size = 200 << 10;
        core::ptr::write_bytes(p, 0xab, size);
        for _ in 0..8 {
            let n = size * 3 / 2;
            p = c::realloc(p, n);
            assert!(!p.is_null());
            let s = core::slice::from_raw_parts(p, size);
            assert!(s.iter().step_by(97).all(|&b| b == 0xab));
            core::ptr::write_bytes(p, 0xab, n);
            size = n;
        }
        c::free(p);
    }
}
