#!/usr/bin/env bash
# Runs the churn program (benches/c/churn.c) under every allocator with LD_PRELOAD, the same
# binary each time, interleaved (one run of each allocator, then the next seed), and prints
# one line per run: allocator, seed, load average before the run, and the program's output.
#
# Usage: crates/lhalloc/benches/churn.sh [REPEATS [THREADS LOAD_S IDLE_S]] > raw.txt
#   defaults: 3 repeats, 5 threads, 30 s of load, 10 s idle.
#   CHURN_ALLOCS="jemalloc ours base" runs only those (default: every allocator but base);
#   base is another build of lhalloc's preload library, CHURN_BASE_SO=PATH (for A/B runs).
# Needs: cc, libjemalloc2, libmimalloc2.0 (Debian packages), a release build of
# lhalloc-preload (built here if missing).
set -euo pipefail
cd "$(dirname "$0")/../../.."
REPEATS=${1:-3}
THREADS=${2:-5}
LOAD=${3:-30}
IDLE=${4:-10}
OUT=$(mktemp -d)
cc -O2 -pthread -o "$OUT/churn" crates/lhalloc/benches/c/churn.c -lm -ldl
[ -f target/release/liblhalloc_preload.so ] || cargo build --release -p lhalloc-preload >&2
OURS=$PWD/target/release/liblhalloc_preload.so
JE=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
MI=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2
for seed in $(seq 1 "$REPEATS"); do
  for alloc in ${CHURN_ALLOCS:-glibc glibc-arena2 jemalloc mimalloc ours ours-bg}; do
    env=()
    case $alloc in
      glibc) ;;
      glibc-arena2) env=(MALLOC_ARENA_MAX=2) ;;
      jemalloc) env=(LD_PRELOAD=$JE) ;;
      mimalloc) env=(LD_PRELOAD=$MI) ;;
      ours) env=(LD_PRELOAD=$OURS) ;;
      ours-bg) env=(LD_PRELOAD=$OURS LHALLOC_BACKGROUND=1) ;;
      base) env=(LD_PRELOAD=${CHURN_BASE_SO:?CHURN_BASE_SO=PATH of the base library}) ;;
      *) echo "churn.sh: unknown allocator $alloc in CHURN_ALLOCS" >&2; exit 2 ;;
    esac
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    res=$(env "${env[@]}" "$OUT/churn" "$THREADS" "$LOAD" "$IDLE" "$seed")
    echo "alloc=$alloc seed=$seed loadavg=\"$load\" $res"
  done
done
rm -rf "$OUT"
