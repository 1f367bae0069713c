#!/usr/bin/env bash
# Report API and dashboard speed at scale (issue #10 §6): for each backend, seeds one tenant with
# N turns over 90 days (rollup maintained as in production), then times sequential requests:
# /v1/report?kind=daily for the 90 days, the overview page, /v1/usage, /v1/report?kind=session.
# Prints one markdown table per run; figures go to docs/perf/dashboard.md.
#
# usage: bench/dashboard.sh [turns=1000000] [backends...=sqlite postgres]
set -euo pipefail
cd "$(dirname "$0")/.."
turns="${1:-1000000}"; shift || true
backends=("${@:-sqlite postgres}")
# shellcheck disable=SC2206
backends=(${backends[@]})
cargo build --release -q -p agentos-collector --example report_bench
rel="${CARGO_TARGET_DIR:-target}/release"
for b in "${backends[@]}"; do
  echo "# backend=$b turns=$turns" >&2
  "$rel/examples/report_bench" --backend "$b" --turns "$turns" --requests 200
done
