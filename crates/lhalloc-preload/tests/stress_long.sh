#!/usr/bin/env bash
# The long stress (not part of `cargo test`): the C stress program (tests/c/stress.c) and the
# Ruby stress (tests/c/stress.rb) under LD_PRELOAD=liblhalloc_preload.so, side by side for
# SECONDS (default 1800), with a short purge delay so that purging runs all the time; then the
# Rust stress under the validator (`cargo test -p lhalloc --release --test stress -- --ignored`,
# LHALLOC_STRESS_SECS=RUST_SECONDS, default SECONDS/3). Exits non-zero if any of them fails.
#
# Usage: crates/lhalloc-preload/tests/stress_long.sh [SECONDS [RUST_SECONDS]]
set -euo pipefail
cd "$(dirname "$0")/../../.."
SECS=${1:-1800}
RSECS=${2:-$((SECS / 3))}
cargo build --release -p lhalloc-preload >&2
SO=$PWD/target/release/liblhalloc_preload.so
TMP=$(mktemp -d)
cc -O2 -g -pthread -o "$TMP/stress" crates/lhalloc-preload/tests/c/stress.c
echo "start $(date -u +%FT%TZ) seconds=$SECS loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
LD_PRELOAD=$SO LHALLOC_PURGE_DELAY_MS=20 "$TMP/stress" "$SECS" > "$TMP/c.out" 2>&1 & C=$!
LD_PRELOAD=$SO LHALLOC_PURGE_DELAY_MS=20 LHALLOC_BACKGROUND=1 ruby crates/lhalloc-preload/tests/c/stress.rb "$SECS" > "$TMP/rb.out" 2>&1 & R=$!
rc=0
wait $C || rc=1
echo "C stress: $(cat "$TMP/c.out") (exit $([ $rc = 0 ] && echo 0 || echo 1))"
rrc=0
wait $R || rrc=1
echo "Ruby stress: $(cat "$TMP/rb.out") (exit $rrc)"
LHALLOC_STRESS_SECS=$RSECS cargo test -q -p lhalloc --release --test stress -- --ignored 2>&1 | tail -3
trc=${PIPESTATUS[0]}
echo "end $(date -u +%FT%TZ) loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$TMP"
[ $rc = 0 ] && [ $rrc = 0 ] && [ "$trc" = 0 ]
