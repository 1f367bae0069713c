#!/usr/bin/env bash
# End-to-end delivery benchmark: N recorded events -> `agentos ccc sync` (separate process, peak
# RSS via /usr/bin/time -v) -> loopback recording server (agentos-test-support, in the bench
# process). Prints one JSON object per run; figures go to docs/perf/delivery.md.
#
# usage: bench/delivery.sh [runs=3] [event counts...=100000 1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"; shift || true
counts=("${@:-100000 1000000}")
# shellcheck disable=SC2206
counts=(${counts[@]})
cargo build --release -q -p agentos-cli
cargo build --release -q -p agentos-delivery --example delivery_bench
for n in "${counts[@]}"; do
  for r in $(seq 1 "$runs"); do
    echo "# events=$n run=$r" >&2
    target/release/examples/delivery_bench --events "$n" --agentos target/release/agentos
  done
done
