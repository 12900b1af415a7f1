//! The child process: replays one trace (stdin) against one allocator under test and reports
//! samples and results (stdout, see `protocol`). Started by the parent as `runner __child ...`.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use workload::trace::{decode_header, HEADER_LEN};

use crate::latency::Percentiles;
use crate::protocol::{ChildMsg, Done};
use crate::replay::{replay_stream, Shared};
use crate::under_test::{AllocatorUnderTest, Jemalloc, Libc, Mimalloc, Ours};

/// What the parent tells a child.
pub struct ChildArgs<'a> {
    /// `libc`, `jemalloc`, `mimalloc` or `ours`.
    pub alloc: &'a str,
    pub speed: f64,
    pub gvl: bool,
    /// Where the histograms go, and the file-name id they use.
    pub out_dir: &'a Path,
    pub id: &'a str,
}

pub fn main(args: &ChildArgs) -> anyhow::Result<()> {
    crate::os::ignore_sigint();
    match args.alloc {
        "libc" => replay(&Libc, args),
        "jemalloc" => replay(&Jemalloc, args),
        "mimalloc" => replay(&Mimalloc, args),
        "ours" => {
            // Purging timers see simulated time: divide the delay by the speed.
            let scaled = (lhalloc::purge_delay_ms() as f64 / args.speed).round() as u64;
            lhalloc::set_purge_delay_ms(scaled);
            replay(&Ours, args)
        }
        other => anyhow::bail!("unknown child allocator {other:?}"),
    }
}

fn replay<A: AllocatorUnderTest>(alloc: &A, args: &ChildArgs) -> anyhow::Result<()> {
    let mut stdin = std::io::stdin().lock();
    let mut h = [0u8; HEADER_LEN];
    std::io::Read::read_exact(&mut stdin, &mut h).context("reading the trace header")?;
    let header = decode_header(&h)?;
    let threads = header.threads as usize + 1;

    let mut shared =
        Shared::new(threads, args.speed, args.gvl).context("mapping the block table")?;
    let mut buf = String::with_capacity(8192);
    let harness_rss = crate::os::read_self_memory(&mut buf)
        .map(|m| m.rss)
        .unwrap_or(0);
    ChildMsg::Ready {
        harness_rss_bytes: harness_rss,
        version: alloc.version(),
    }
    .send();

    // The clock starts with the replay, after set-up.
    shared.start = std::time::Instant::now();
    let stop_sampler = AtomicBool::new(false);
    let (all, dispatched) = replay_stream(
        alloc,
        &shared,
        &mut stdin,
        || crate::sampler::run(alloc, &shared, &stop_sampler),
        &stop_sampler,
    );

    all.write(args.out_dir, args.id)?;
    ChildMsg::Done(Done {
        requests: shared.requests(),
        collections: shared.collections(),
        sim_time_s: shared.sim_ns() as f64 / 1e9,
        real_time_s: shared.start.elapsed().as_secs_f64(),
        max_lag_s: shared.max_lag_ns() as f64 / 1e9,
        latency_us: Percentiles::of(&all.request_us),
        service_us: Percentiles::of(&all.service_us),
        call_latency_ns: Percentiles::of(&all.call_ns),
    })
    .send();
    dispatched.context("replaying the trace")?;
    Ok(())
}
