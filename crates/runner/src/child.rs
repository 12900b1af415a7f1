//! The child process: reads its [`ChildPlan`] (one JSON line on stdin), replays the plan's event
//! source against one allocator under test and reports samples and results on stdout (see
//! `protocol`). Started by the parent as `runner __child`. When stdin closes before the replay
//! ends (the parent was interrupted, or died), the child stops dispatching, drains and reports.

use std::io::BufRead;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;

use rundir::Percentiles;

use crate::protocol::{ChildAlloc, ChildMsg, ChildPlan, CpuSplit, Done, SourcePlan};
use crate::replay::{replay, Shared};
use crate::sampler::Sampler;
use crate::source::EventSource;
use crate::under_test::{AllocatorUnderTest, Jemalloc, Libc, Mimalloc, Ours};

pub fn main() -> anyhow::Result<()> {
    crate::os::ignore_sigint();
    let mut line = String::new();
    // The lock is released at once: the stdin watcher reads on after the plan.
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the child plan from stdin")?;
    let plan: ChildPlan =
        serde_json::from_str(&line).context("the child plan on stdin is not valid JSON")?;
    match plan.alloc {
        ChildAlloc::Libc => run(&Libc, &plan),
        ChildAlloc::Jemalloc => run(&Jemalloc, &plan),
        ChildAlloc::Mimalloc => run(&Mimalloc, &plan),
        ChildAlloc::Ours => {
            if let Some(ns) = plan.ours_purge_delay_ns {
                Ours::set_purge_delay_ns(ns);
            }
            run(&Ours, &plan)
        }
    }
}

fn open_source(plan: &ChildPlan) -> anyhow::Result<EventSource> {
    Ok(match &plan.source {
        SourcePlan::Synthetic {
            profile,
            seed,
            hours,
        } => EventSource::synthetic(workload::Workload::new((**profile).clone(), *seed, *hours)),
        SourcePlan::Trace { path } => EventSource::trace(path)?,
    })
}

fn run<A: AllocatorUnderTest>(alloc: &A, plan: &ChildPlan) -> anyhow::Result<()> {
    let source = open_source(plan)?;
    let mut shared =
        Shared::new(source.threads(), plan.speed, plan.gvl).context("mapping the block table")?;
    if let Some(s) = plan.stop_at_sim_s {
        shared.stop_at(s);
    }
    let shared = Arc::new(shared);

    // A closed stdin asks for an early stop.
    {
        let sh = shared.clone();
        std::thread::Builder::new()
            .name("stdin-watch".into())
            .spawn(move || {
                let mut sink = Vec::new();
                let _ = std::io::stdin().lock().read_until(b'\0', &mut sink);
                sh.request_stop();
            })
            .context("starting the stdin watcher")?;
    }

    let mut sampler = Sampler::new(crate::os::usage(crate::os::UsageOf::Process));
    sampler.ballast = crate::ballast::Ballast::from_env()?;
    ChildMsg::Ready {
        harness_rss_bytes: sampler.harness_rss(&shared),
        version: alloc.version(),
        settings_note: alloc.settings_note(),
    }
    .send();

    // The clock starts with the replay (in `replay`), after set-up.
    let usage_start = crate::os::usage(crate::os::UsageOf::Process);
    let stop_sampler = AtomicBool::new(false);
    let sampler_usage = std::sync::Mutex::new(crate::os::Usage::default());
    let outcome = replay(
        alloc,
        &shared,
        source,
        || {
            let before = crate::os::usage(crate::os::UsageOf::Thread);
            sampler.run(alloc, &shared, &stop_sampler);
            let used = crate::os::usage(crate::os::UsageOf::Thread).since(&before);
            *sampler_usage.lock().unwrap_or_else(|p| p.into_inner()) = used;
        },
        &stop_sampler,
    );
    let usage = crate::os::usage(crate::os::UsageOf::Process).since(&usage_start);
    let real_time_s = shared.elapsed_s();

    outcome
        .latencies
        .write(&plan.out_dir, &plan.id, plan.repetition)?;
    let (alloc_ns, touch_ns) = shared.alloc_touch_ns();
    let all = &outcome.latencies;
    let sampler_usage = *sampler_usage.lock().unwrap_or_else(|p| p.into_inner());
    let (replay_usage, run_delay) = shared.replay_threads_usage();
    ChildMsg::Done(Box::new(Done {
        events: outcome.events,
        requests: shared.requests(),
        collections: shared.collections(),
        sim_time_s: shared.sim_ns() as f64 / 1e9,
        real_time_s,
        max_lag_s: shared.max_lag_ns() as f64 / 1e9,
        usage,
        cpu: CpuSplit {
            dispatcher_s: outcome.dispatcher_usage.cpu_s(),
            sampler_s: sampler_usage.cpu_s(),
            replay_threads_s: replay_usage.cpu_s(),
            replay_threads_run_delay_s: run_delay,
        },
        alloc_time_s: alloc_ns as f64 / 1e9,
        touch_time_s: touch_ns as f64 / 1e9,
        threads_started: outcome.threads_started,
        latency_us: Percentiles::of(&all.request_us),
        service_us: Percentiles::of(&all.service_us),
        call_latency_ns: Percentiles::of(&all.call_ns),
        alloc_per_request_ns: Percentiles::of(&all.alloc_per_request_ns),
        touch_per_request_ns: Percentiles::of(&all.touch_per_request_ns),
        stream_error: outcome.stream_error.as_ref().map(|e| e.to_string()),
    }))
    .send();
    if let Some(e) = outcome.spawn_error {
        return Err(e).context("starting a replay thread");
    }
    Ok(())
}
