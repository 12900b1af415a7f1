//! Prints what a profile's event stream looks like: `cargo run --release -p workload --example stream_stats -- workloads/rails-api.toml 0.5`
use std::path::Path;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .map(String::as_str)
        .unwrap_or("workloads/rails-api.toml");
    let hours: f64 = args.get(2).map(|h| h.parse()).transpose()?.unwrap_or(0.1);
    let profile = workload::Profile::load(Path::new(path))?;
    let mut w = workload::Workload::new(profile, 1, hours);
    let t0 = Instant::now();
    let mut n = 0u64;
    let mut next_report = 600e9 as u64;
    while w.next().is_some() {
        n += 1;
        if w.sim_time_ns() >= next_report {
            next_report += 600e9 as u64;
            println!(
                "t={:>6.0}s live={:>7.1} MiB slots={}",
                w.sim_time_ns() as f64 / 1e9,
                w.live_bytes() as f64 / 1048576.0,
                w.slots_used()
            );
        }
    }
    let el = t0.elapsed().as_secs_f64();
    println!(
        "{n} events in {el:.2}s = {:.1} M events/s",
        n as f64 / el / 1e6
    );
    println!("{:#?}", w.stats());
    println!(
        "live at end {:.1} MiB, slots used {}",
        w.live_bytes() as f64 / 1048576.0,
        w.slots_used()
    );
    Ok(())
}
