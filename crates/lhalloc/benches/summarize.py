#!/usr/bin/env python3
"""Medians per allocator of key=value lines (churn.sh output) read from stdin, as a
Markdown table, with ratios to jemalloc, and each run's CPU per request over jemalloc's run of
the same seed. Usage: summarize.py < raw.txt"""
import re
import statistics
import sys

rows = {}
for line in sys.stdin:
    kv = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
    if "alloc" not in kv:
        continue
    rows.setdefault(kv["alloc"], []).append(kv)
keys = ["rss_load_mib", "rss_peak_mib", "rss_idle_mib", "p50_us", "p99_us", "cpu_us_per_req",
        "faults_per_req", "requests"]
# Older raw files have no faults_per_req: keep the columns every line has.
keys = [k for k in keys if all(k in r for rs in rows.values() for r in rs)]
med = {a: {k: statistics.median(float(r[k]) for r in rs) for k in keys} for a, rs in rows.items()}
print("| allocator | runs | " + " | ".join(keys) + " |")
print("|---|---|" + "---|" * len(keys))
for a, m in med.items():
    print(f"| {a} | {len(rows[a])} | " + " | ".join(f"{m[k]:.1f}" for k in keys) + " |")
if "jemalloc" in med:
    print()
    print("Ratios to jemalloc (medians):")
    print()
    print("| allocator | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for a, m in med.items():
        print(f"| {a} | " + " | ".join(f"{m[k] / med['jemalloc'][k]:.3f}" if med['jemalloc'][k] else "-" for k in keys) + " |")
    # CPU per request varies by +-15% from run to run: also pair each run with jemalloc's run
    # of the same seed (run next to it) and give the spread of those ratios.
    je = {r["seed"]: float(r["cpu_us_per_req"]) for r in rows["jemalloc"]}
    print()
    print("CPU per request, each run over jemalloc's run of the same seed:")
    print()
    for a, rs in rows.items():
        if a == "jemalloc":
            continue
        ratios = sorted(float(r["cpu_us_per_req"]) / je[r["seed"]] for r in rs if r["seed"] in je)
        if ratios:
            print(f"- {a}: median {statistics.median(ratios):.3f}, range {ratios[0]:.3f}-{ratios[-1]:.3f} "
                  f"({', '.join(f'{x:.3f}' for x in ratios)})")
