#!/usr/bin/env python3
"""CPU per request over every run in this directory's raw files: jemalloc's runs against
lhalloc's, pooled, and each lhalloc run over the jemalloc run of the same seed in the same
file. lhalloc's runs are `base` (4bb09f6) in all three files and `ours` in raw-tls.txt (the
same allocation code plus the TLS change); `ours` in raw-recent-runs-reverted.txt (the
reverted hint) is left out.
Usage: python3 pooled.py   (from this directory)"""
import glob
import re
import statistics

je_all, lh_all, paired = [], [], []
for f in sorted(glob.glob("raw-*.txt")):
    runs = [dict(re.findall(r'(\w+)=("[^"]*"|\S+)', l)) for l in open(f) if l.startswith("alloc=")]
    je = {r["seed"]: float(r["cpu_us_per_req"]) for r in runs if r["alloc"] == "jemalloc"}
    je_all += je.values()
    for r in runs:
        if r["alloc"] == "base" or (r["alloc"] == "ours" and f == "raw-tls.txt"):
            v = float(r["cpu_us_per_req"])
            lh_all.append(v)
            paired.append(v / je[r["seed"]])
print(f"jemalloc: {len(je_all)} runs, median {statistics.median(je_all):.1f} us/request "
      f"({min(je_all):.1f}-{max(je_all):.1f})")
print(f"lhalloc:  {len(lh_all)} runs, median {statistics.median(lh_all):.1f} us/request "
      f"({min(lh_all):.1f}-{max(lh_all):.1f})")
print(f"ratio of medians {statistics.median(lh_all) / statistics.median(je_all):.3f}; "
      f"paired ratios median {statistics.median(paired):.3f} ({min(paired):.3f}-{max(paired):.3f})")
