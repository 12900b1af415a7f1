#!/usr/bin/env python3
"""Runs a program live under each allocator (LD_PRELOAD) and reports its steady RSS.

The live side of issue 8's check: the same program that `runner record` traced, run for real
under glibc, jemalloc, mimalloc and ours, RSS sampled from /proc/PID/status every --interval
seconds. Steady RSS = the median over the last quarter of the samples (as in the runner's
summary.json). Prints one line per allocator and run, then the median over runs and the ratio to
glibc; --csv writes every sample.

  python3 workloads/programs/live-rss.py --runs 3 -- ruby workloads/programs/retain.rb 20

Allocators (Debian 12 packages libjemalloc2 and libmimalloc2.0; ours from
`cargo build --release -p lhalloc-preload`): glibc (no preload), jemalloc, mimalloc, ours.
Each runs with its defaults (no MALLOC_CONF etc.), as `runner replay --speed 1` runs them.
"""
import argparse
import csv
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIBS = {
    "glibc": None,
    "jemalloc": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "mimalloc": "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2",
    "ours": os.path.join(ROOT, "target", "release", "liblhalloc_preload.so"),
}
# Allocator settings of the caller's environment would make the runs differ from the replay.
SCRUB = ("MALLOC_", "MIMALLOC_", "LHALLOC_", "_RJEM_MALLOC_", "JE_MALLOC_")


def rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def run_once(alloc, command, interval):
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUB)}
    env.pop("LD_PRELOAD", None)
    env.pop("MALLOC_CONF", None)
    env.pop("GLIBC_TUNABLES", None)
    if LIBS[alloc]:
        env["LD_PRELOAD"] = LIBS[alloc]
    start = time.monotonic()
    p = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    samples = []
    while p.poll() is None:
        r = rss_bytes(p.pid)
        if r is not None and r > 0:
            samples.append((time.monotonic() - start, r))
        time.sleep(interval)
    wall = time.monotonic() - start
    if p.returncode != 0:
        sys.exit(f"{alloc}: {' '.join(command)} exited with {p.returncode}")
    if len(samples) < 4:
        sys.exit(f"{alloc}: only {len(samples)} samples: run the program longer")
    tail = [r for _, r in samples[len(samples) * 3 // 4:]]
    return statistics.median(tail), max(r for _, r in samples), wall, samples


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alloc", default="glibc,jemalloc,mimalloc,ours")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between RSS samples")
    ap.add_argument("--csv", help="write every sample to this file")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        ap.error("give the program after --")
    allocs = a.alloc.split(",")
    for name in allocs:
        if name not in LIBS:
            ap.error(f"unknown allocator {name!r}: use {', '.join(LIBS)}")
        if LIBS[name] and not os.path.exists(LIBS[name]):
            ap.error(f"{name}: {LIBS[name]} is missing (apt-get install libjemalloc2 libmimalloc2.0; cargo build --release -p lhalloc-preload)")
    with open("/proc/loadavg") as f:
        print(f"load before: {f.read().strip()}")
    rows, steady, peak = [], {}, {}
    for run in range(a.runs):
        for name in allocs:  # interleaved, so drifting load hits every allocator alike
            s, mx, wall, samples = run_once(name, command, a.interval)
            steady.setdefault(name, []).append(s)
            peak.setdefault(name, []).append(mx)
            print(f"run {run + 1} {name:<9} steady RSS {s / 2**20:8.1f} MiB  max {mx / 2**20:8.1f} MiB  wall {wall:6.2f} s  samples {len(samples)}")
            rows += [(name, run + 1, t, r) for t, r in samples]
    with open("/proc/loadavg") as f:
        print(f"load after: {f.read().strip()}")
    # Medians over runs. A program that is still growing when it ends has no steady state:
    # compare its max RSS then (a replay's samples are 10 trace-seconds apart, so a short
    # replay's steady RSS is about its RSS at the end).
    print(f"\n{'allocator':<9} {'steady RSS':>12} {'vs glibc':>9} {'max RSS':>12} {'vs glibc':>9}   (medians of {a.runs} runs)")
    for name in allocs:
        cols = []
        for d in (steady, peak):
            m = statistics.median(d[name])
            base = statistics.median(d["glibc"]) if "glibc" in d else None
            cols.append(f"{m / 2**20:8.1f} MiB {m / base:9.3f}" if base else f"{m / 2**20:8.1f} MiB         -")
        print(f"{name:<9} {cols[0]} {cols[1]}")
    if a.csv:
        with open(a.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["allocator", "run", "time_s", "rss_bytes"])
            w.writerows(rows)


if __name__ == "__main__":
    main()
