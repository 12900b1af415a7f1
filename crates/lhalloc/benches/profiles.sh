#!/usr/bin/env bash
# lhalloc against jemalloc on the nine profile x seed runs (issue 11): rails-api, rails-html and
# sidekiq, seeds 1, 2 and 3, each one runner run with ALLOCS side by side, and a table of
# steady RSS per allocator and ours' ratio to jemalloc (and to the other allocators given).
#
# Usage: crates/lhalloc/benches/profiles.sh [HOURS [ALLOCS [SPEED]]]
#   defaults: 0.25 jemalloc,ours auto  (about 35 minutes on a 2-core VM at speed 8)
# Runs go under results/runs/profiles-<stamp>/ (one run directory each, with its run.json:
# command, commit, machine, allocator versions and settings); the table is printed and written
# to results/runs/profiles-<stamp>/table.md with each run's largest replay lag. The runner is
# copied next to the runs first, so a rebuild meanwhile does not break them. Run it alone.
set -euo pipefail
cd "$(dirname "$0")/../../.."
hours=${1:-0.25}
allocs=${2:-jemalloc,ours}
speed=${3:-auto}
case ",$allocs," in *,ours,*) ;; *) echo "error: ALLOCS must include ours" >&2; exit 2 ;; esac
case ",$allocs," in *,jemalloc,*) ;; *) echo "error: ALLOCS must include jemalloc" >&2; exit 2 ;; esac
stamp=$(date -u +%Y%m%d-%H%M%S)
root=results/runs/profiles-$stamp
mkdir -p "$root/bin"
cargo build --release -p runner >&2
cp target/release/runner "$root/bin/runner"
scripts/run-context crates/lhalloc/benches/profiles.sh $hours $allocs $speed > "$root/context.txt"
for workload in rails-api rails-html sidekiq; do
    for seed in 1 2 3; do
        name=$workload-seed$seed
        echo "$name: $(cat /proc/loadavg)" | tee -a "$root/load.txt" >&2
        "$root/bin/runner" --workload "$workload" --seed "$seed" --alloc "$allocs" \
            --hours "$hours" --speed "$speed" --no-report -q --out "$root/$name" >/dev/null \
            || echo "warning: run $name failed" >&2
    done
done
python3 - "$root" "$allocs" > "$root/table.md" <<'PY'
import json, statistics, sys
root, allocs = sys.argv[1], sys.argv[2].split(",")
others = [a for a in allocs if a != "ours"]
print(open(f"{root}/context.txt").read())
print("Steady RSS (MiB) per allocator, ours' ratio to each other allocator, the run's speed and")
print("largest replay lag (simulated s).\n")
print("| run | " + " | ".join(allocs) + " | " + " | ".join(f"ours/{o}" for o in others)
      + " | speed | max lag |")
print("|---|" + "---:|" * (len(allocs) + len(others) + 2))
ratios = {o: [] for o in others}
for workload in ("rails-api", "rails-html", "sidekiq"):
    for seed in (1, 2, 3):
        name = f"{workload}-seed{seed}"
        try:
            s = json.load(open(f"{root}/{name}/summary.json"))
        except OSError:
            print(f"| {name} | failed |")
            continue
        by = {a["name"]: a for a in s["allocators"]}
        rss = {a: (by.get(a) or {}).get("rss_steady_bytes") for a in allocs}
        cells = [f"{rss[a] / 2**20:.1f}" if rss[a] else "failed" for a in allocs]
        for o in others:
            if rss["ours"] and rss[o]:
                ratios[o].append(rss["ours"] / rss[o])
                cells.append(f"{rss['ours'] / rss[o]:.3f}")
            else:
                cells.append("-")
        lags = [a["max_lag_s"] for a in s["allocators"] if a.get("max_lag_s") is not None]
        print(f"| {name} | " + " | ".join(cells) + f" | {s.get('speed')} | "
              + (f"{max(lags):.1f}" if lags else "-") + " |")
for o, r in ratios.items():
    if r:
        print(f"\nours/{o}: median {statistics.median(r):.3f}, range {min(r):.3f}-{max(r):.3f}, "
              f"{sum(x <= 0.90 for x in r)} of {len(r)} at most 0.90")
PY
cat "$root/table.md"
