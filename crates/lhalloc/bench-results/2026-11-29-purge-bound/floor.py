#!/usr/bin/env python3
"""What 0.90x jemalloc leaves to an allocator on the nine profile x seed runs.

For each run of ../2026-11-29-profiles-e4c06ef/runs (or the directory given), over the last
quarter of simulated time (means, MiB): the floor no allocator can go below -- the harness's
own memory (measured with mincore) + the workload's live bytes + the process's base (code,
libraries, stacks: RSS minus harness minus the allocator's counted resident bytes at the
first sample, the smaller of the two allocators) -- and the overhead above that floor which
0.90x jemalloc's RSS allows, jemalloc has and ours has, also as a share of live bytes.

Usage: python3 floor.py [PROFILES_RECORD_DIR]
"""
import sys
import csv, glob, statistics
M=2**20
ROOT=sys.argv[1] if len(sys.argv)>1 else "../2026-11-29-profiles-e4c06ef"
print("| run | floor: harness + live + base | jemalloc RSS | ours RSS | 0.90 x jemalloc | overhead allowed at 0.90 (% of live) | jemalloc overhead (% of live) | ours overhead (% of live) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for d in sorted(glob.glob(f"{ROOT}/runs/*-seed*")):
    rows=list(csv.DictReader(open(f"{d}/samples.csv")))
    m={}
    base=None
    for a in ("jemalloc","ours"):
        r=[x for x in rows if x["allocator"]==a]
        f=r[0]
        b=(float(f["rss_bytes"])-float(f["harness_rss_bytes"])-float(f["alloc_resident_bytes"] or 0))/M
        base=b if base is None else min(base,b)
        end=max(float(x["sim_time_s"]) for x in r)
        last=[x for x in r if float(x["sim_time_s"])>=0.75*end]
        m[a]={k:statistics.mean(float(x[k]) for x in last)/M for k in ("rss_bytes","harness_rss_bytes","live_bytes")}
    je,o=m["jemalloc"],m["ours"]
    live=(je["live_bytes"]+o["live_bytes"])/2
    harn=(je["harness_rss_bytes"]+o["harness_rss_bytes"])/2
    floor=harn+live+base
    allowed=0.9*je["rss_bytes"]-floor
    print(f"| {d.split('/')[-1]} | {harn:.1f} + {live:.1f} + {base:.1f} = {floor:.1f} | {je['rss_bytes']:.1f} | {o['rss_bytes']:.1f} | {0.9*je['rss_bytes']:.1f} | {allowed:.1f} ({allowed/live:.0%}) | {je['rss_bytes']-floor:.1f} ({(je['rss_bytes']-floor)/live:.0%}) | {o['rss_bytes']-floor:.1f} ({(o['rss_bytes']-floor)/live:.0%}) |")
