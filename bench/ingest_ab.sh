#!/usr/bin/env bash
# Ingest throughput A/B (issue #10 §6): alternates two loadgen binaries, PAIRS times, on one
# backend, and prints each run's events/s with the load average. Ratios and medians go to
# docs/perf/dashboard.md.
#
# usage: bench/ingest_ab.sh BASE_LOADGEN NEW_LOADGEN [backend=sqlite] [pairs=5]
# e.g.   git archive 7a687c4 | tar -x -C /tmp/base
#        (cd /tmp/base && cargo build --release -p agentos-collector --example loadgen)
#        cargo build --release -p agentos-collector --example loadgen
#        bench/ingest_ab.sh /tmp/base/target/release/examples/loadgen \
#          target/release/examples/loadgen sqlite 5
set -euo pipefail
base=$1; new=$2; backend=${3:-sqlite}; pairs=${4:-5}
for i in $(seq 1 "$pairs"); do
  for which in base new; do
    bin=$base; [ "$which" = new ] && bin=$new
    eps=$("$bin" --backend "$backend" --seconds 10 2>&1 | grep -oE 'throughput_events_per_s=[0-9]+' | cut -d= -f2)
    echo "$backend pair $i $which: $eps events/s | load $(uptime | sed 's/.*load average: //')"
  done
done
