#!/usr/bin/env python3
"""Medians per allocator of key=value lines (churn.sh output) read from stdin, as a
Markdown table, with ratios to jemalloc. Usage: summarize.py < raw.txt"""
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
