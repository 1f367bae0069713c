#!/usr/bin/env bash
# End-to-end delivery benchmark: N recorded events -> `agentos ccc sync` (separate process, peak
# RSS via /usr/bin/time -v) -> loopback recording server (agentos-test-support, in the bench
# process). Prints one JSON object per run; figures go to docs/perf/delivery.md.
#
# usage: bench/delivery.sh [runs=3] [event counts...=100000 1000000]
# env:   AGENTOS_BENCH_TARGET=<cargo target dir>: use the release binaries already built there
#        (e.g. a baseline worktree's) instead of building this tree
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"; shift || true
counts=("${@:-100000 1000000}")
# shellcheck disable=SC2206
counts=(${counts[@]})
if [ -n "${AGENTOS_BENCH_TARGET:-}" ]; then
  rel="$AGENTOS_BENCH_TARGET/release"
else
  cargo build --release -q -p agentos-cli
  cargo build --release -q -p agentos-delivery --example delivery_bench
  rel="${CARGO_TARGET_DIR:-target}/release"
fi
for n in "${counts[@]}"; do
  for r in $(seq 1 "$runs"); do
    echo "# events=$n run=$r" >&2
    "$rel/examples/delivery_bench" --events "$n" --agentos "$rel/agentos"
  done
done
