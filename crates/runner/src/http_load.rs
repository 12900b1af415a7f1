//! The **load generator** of a live run: HTTP requests drawn from a [`LoadMix`], sent to a
//! server on 127.0.0.1 over a pool of keep-alive connections (ureq).
//!
//! Open loop by default (`--rate`): request k is due at `start + k / rate` whatever happened to
//! the others, and its latency is measured from that intended send time, so a server that
//! stalls makes every request due during the stall wait, as its users would (no coordinated
//! omission, as wrk2 does). Closed loop (`--connections` without a rate): each connection sends
//! its next request when the previous one answers, as wrk does; latency is then measured from
//! the actual send and hides stalls, which the summary says.
//!
//! Written over ureq rather than driving a packaged tool: Debian's wrk is closed-loop only
//! (wrk2 is not packaged), and the mix, the per-kind counts and the HDR histograms belong in the
//! run directory.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::latency::{record, Latencies};
use crate::load_mix::{LoadMix, Planned};

/// How requests are paced.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pacing {
    /// Requests per second, sent on schedule over the connections.
    Rate(f64),
    /// Each connection sends its next request when the previous one answers.
    ClosedLoop,
}

/// What to send, where, for how long.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    /// `http://127.0.0.1:PORT` (the load never leaves this machine).
    pub base: String,
    pub mix: LoadMix,
    pub pacing: Pacing,
    pub connections: u32,
    pub duration: Duration,
    pub seed: u64,
    /// A request that takes longer is an error.
    pub timeout: Duration,
}

/// Counters the sampler reads while the load runs.
#[derive(Default)]
pub struct LoadProgress {
    pub completed: AtomicU64,
    pub errors: AtomicU64,
    /// Worst delay (µs) of a send behind its schedule since the sampler last looked: how far
    /// the load generator itself, or the connection pool, fell behind.
    pub window_send_delay_us: AtomicU64,
}

/// Per kind of request: how many were sent, answered well, failed (defined with the run
/// directory, where `summary.json` keeps it).
pub use rundir::KindCount;

/// What the load generator did.
pub struct LoadOutcome {
    /// `request_us` from the intended send time (open loop) or the actual send (closed loop);
    /// `service_us` from the actual send.
    pub latencies: Latencies,
    pub kinds: Vec<KindCount>,
    pub sent: u64,
    pub completed: u64,
    pub errors: u64,
    /// Requests still queued when the duration ended (the server could not keep up).
    pub unsent_at_end: u64,
    /// Worst delay of a send behind its schedule, µs.
    pub max_send_delay_us: u64,
    pub response_bytes: u64,
    pub real_seconds: f64,
}

struct Job {
    intended: Instant,
    planned: Planned,
}

/// One connection's state and tallies.
struct Connection {
    agent: ureq::Agent,
    lat: Latencies,
    kinds: Vec<KindCount>,
    bytes: u64,
}

impl Connection {
    fn new(plan: &LoadPlan) -> Connection {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(plan.timeout))
            .max_idle_connections(1)
            .max_idle_connections_per_host(1)
            .build();
        Connection {
            agent: ureq::Agent::new_with_config(config),
            lat: Latencies::new(),
            kinds: plan
                .mix
                .kinds
                .iter()
                .map(|k| KindCount {
                    name: k.name.clone(),
                    ..KindCount::default()
                })
                .collect(),
            bytes: 0,
        }
    }

    /// Sends one request and records it; returns whether it was answered well.
    fn send(&mut self, plan: &LoadPlan, job: &Job, progress: &LoadProgress) -> bool {
        let kind = &plan.mix.kinds[job.planned.kind];
        let started = Instant::now();
        let delay = started.saturating_duration_since(job.intended).as_micros() as u64;
        progress
            .window_send_delay_us
            .fetch_max(delay, Ordering::Relaxed);
        let url = format!("{}{}", plan.base, job.planned.path);
        let result = self.request(kind, &url);
        let done = Instant::now();
        let count = &mut self.kinds[job.planned.kind];
        count.sent += 1;
        match result {
            Ok(bytes) => {
                count.ok += 1;
                self.bytes += bytes;
                let from = match plan.pacing {
                    Pacing::Rate(_) => job.intended,
                    Pacing::ClosedLoop => started,
                };
                record(
                    &mut self.lat.request_us,
                    done.saturating_duration_since(from).as_micros() as u64,
                );
                record(
                    &mut self.lat.service_us,
                    (done - started).as_micros() as u64,
                );
                progress.completed.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                count.errors += 1;
                count.first_error.get_or_insert(e);
                progress.errors.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// The request; `Ok(body bytes)` for a 2xx answer, the problem in words otherwise.
    fn request(&self, kind: &crate::load_mix::RequestKind, url: &str) -> Result<u64, String> {
        let mut b = ureq::http::Request::builder()
            .method(kind.method.as_str())
            .uri(url);
        if let Some(ct) = &kind.content_type {
            b = b.header("content-type", ct.as_str());
        }
        let body = kind.body.clone().unwrap_or_default().into_bytes();
        let req = b.body(body).map_err(|e| format!("{url}: {e}"))?;
        let mut resp = self.agent.run(req).map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status();
        let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
        let mut buf = [0u8; 16 * 1024];
        let mut bytes = 0u64;
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => bytes += n as u64,
                Err(e) => return Err(format!("{url}: reading the answer: {e}")),
            }
        }
        if status.is_success() {
            Ok(bytes)
        } else {
            Err(format!("{url}: HTTP {status}"))
        }
    }
}

/// Runs the load for the plan's duration (or until `stop`), then waits for requests in flight.
pub fn run(
    plan: &LoadPlan,
    progress: &LoadProgress,
    stop: &AtomicBool,
) -> std::io::Result<LoadOutcome> {
    let start = Instant::now();
    let end = start + plan.duration;
    let conns: Vec<Connection> = (0..plan.connections.max(1))
        .map(|_| Connection::new(plan))
        .collect();
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    let sent = AtomicU64::new(0);
    let unsent = AtomicU64::new(0);
    let finished: std::io::Result<Vec<Connection>> = std::thread::scope(|s| {
        let mut workers = Vec::new();
        let mut spawned = Ok(());
        for (i, mut c) in conns.into_iter().enumerate() {
            let rx = rx.clone();
            let sent = &sent;
            let unsent = &unsent;
            let w = std::thread::Builder::new()
                .name(format!("load-{i}"))
                .spawn_scoped(s, move || {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(plan.seed + i as u64);
                    loop {
                        let job = match plan.pacing {
                            Pacing::Rate(_) => {
                                let next = rx.lock().map(|r| r.recv());
                                match next {
                                    Ok(Ok(job)) => job,
                                    _ => break,
                                }
                            }
                            Pacing::ClosedLoop => {
                                if Instant::now() >= end || stop.load(Ordering::Relaxed) {
                                    break;
                                }
                                Job {
                                    intended: Instant::now(),
                                    planned: plan.mix.draw(&mut rng),
                                }
                            }
                        };
                        if Instant::now() >= end || stop.load(Ordering::Relaxed) {
                            unsent.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                        c.send(plan, &job, progress);
                    }
                    c
                });
            match w {
                Ok(w) => workers.push(w),
                Err(e) => {
                    spawned = Err(e);
                    break;
                }
            }
        }
        if let (Pacing::Rate(rate), Ok(())) = (plan.pacing, &spawned) {
            let mut rng = rand::rngs::StdRng::seed_from_u64(plan.seed);
            let mut k = 0u64;
            loop {
                let intended = start + Duration::from_secs_f64(k as f64 / rate);
                if intended >= end || stop.load(Ordering::Relaxed) {
                    break;
                }
                let now = Instant::now();
                if intended > now {
                    std::thread::sleep(intended - now);
                }
                let job = Job {
                    intended,
                    planned: plan.mix.draw(&mut rng),
                };
                if tx.send(job).is_err() {
                    break;
                }
                k += 1;
            }
        }
        drop(tx);
        let done = workers.into_iter().filter_map(|w| w.join().ok()).collect();
        spawned.map(|()| done)
    });
    let finished = finished?;
    let mut out = LoadOutcome {
        latencies: Latencies::new(),
        kinds: plan
            .mix
            .kinds
            .iter()
            .map(|k| KindCount {
                name: k.name.clone(),
                ..KindCount::default()
            })
            .collect(),
        sent: sent.load(Ordering::Relaxed),
        completed: 0,
        errors: 0,
        unsent_at_end: unsent.load(Ordering::Relaxed),
        max_send_delay_us: 0,
        response_bytes: 0,
        real_seconds: start.elapsed().as_secs_f64(),
    };
    for c in &finished {
        out.latencies.merge(&c.lat);
        out.response_bytes += c.bytes;
        for (total, k) in out.kinds.iter_mut().zip(&c.kinds) {
            total.sent += k.sent;
            total.ok += k.ok;
            total.errors += k.errors;
            if total.first_error.is_none() {
                total.first_error.clone_from(&k.first_error);
            }
        }
    }
    out.completed = out.kinds.iter().map(|k| k.ok).sum();
    out.errors = out.kinds.iter().map(|k| k.errors).sum();
    out.max_send_delay_us = progress.window_send_delay_us.load(Ordering::Relaxed);
    Ok(out)
}

/// Asks `url` until it answers 2xx, the process `alive` says the server is gone, or `timeout`
/// passes. Returns how long it took.
pub fn wait_ready(
    url: &str,
    timeout: Duration,
    mut alive: impl FnMut() -> bool,
) -> Result<Duration, String> {
    let start = Instant::now();
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let mut last = String::from("no answer yet");
    while start.elapsed() < timeout {
        if !alive() {
            return Err(format!("the server exited before {url} answered ({last})"));
        }
        match agent.get(url).call() {
            Ok(r) if r.status().is_success() => return Ok(start.elapsed()),
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "{url} did not answer 2xx within {:.0} s (last: {last})",
        timeout.as_secs_f64()
    ))
}
