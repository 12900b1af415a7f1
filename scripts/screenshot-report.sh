#!/usr/bin/env bash
# Takes a screenshot of a run's report page with headless Chromium, to check by eye that the
# charts and tables show: scripts/screenshot-report.sh <run-dir> [width,height]
# (default 1400,4200: the whole page of a four-chart report).
# Writes <run-dir>/report/screenshot.png. Generate the report first
# (cargo run -p report -- <run-dir>). Installs Debian's chromium when it is missing.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 <run-dir> [width,height]" >&2
    exit 2
fi
run_dir=$1
size=${2:-1400,4200}
page="$run_dir/report/index.html"
if [[ ! -f "$page" ]]; then
    echo "error: $page is missing: run 'cargo run -p report -- $run_dir' first" >&2
    exit 1
fi

browser=$(command -v chromium || command -v chromium-browser || true)
if [[ -z "$browser" ]]; then
    sudo=""
    if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y chromium
    browser=$(command -v chromium)
fi

abs_page=$(realpath "$page")
shot="$(realpath "$run_dir")/report/screenshot.png"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$profile" --window-size="$size" \
    --screenshot="$shot" "file://$abs_page" 2>/dev/null
if [[ ! -s "$shot" ]]; then
    echo "error: chromium wrote no screenshot to $shot" >&2
    exit 1
fi
echo "$shot"
