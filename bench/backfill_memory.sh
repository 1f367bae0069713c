#!/usr/bin/env bash
# Peak RSS and throughput of `agentos ccc backfill` as the input grows (issue #15: at most
# 64 MB for any input size, at least 300 MB/s kept). Generates each CCC root with the shared
# generator (or reuses one under BENCH_DIR), runs the backfill RUNS times, checks the turn count
# against the generator's TRUTH.json and prints one JSON line per size; inputs are deleted after
# measuring unless KEEP_INPUTS=1 (the 3.8 GB root is large).
#
# usage: bench/backfill_memory.sh [--runs 3] [--requests "400000 4000000"]
set -euo pipefail
RUNS=3
REQUESTS="400000 4000000"
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2;;
    --requests) REQUESTS=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
MEASURE="python3 $ROOT/bench/ingest_measure.py"
for n in $REQUESTS; do
  CCC=$WORK/ccc-$n
  if [ ! -f "$CCC/TRUTH.json" ]; then
    echo "== generating CCC root ($n requests)" >&2
    python3 "$SHARED/tools/gen_ccp_logs.py" "$CCC" --requests "$n" >&2
  fi
  bytes=$(cat "$CCC"/logs/usage.jsonl* "$CCC"/logs/archive/*.jsonl | wc -c)
  echo "== backfill of $bytes bytes ($n requests)" >&2
  out=$WORK/backfill-$n.json
  line=$(MEASURE_STDOUT=$out $MEASURE "ccc_backfill_$n" "$RUNS" \
    --env AGENTOS_DATA_DIR="$WORK/data" -- "$BIN" ccc backfill --ccp-root "$CCC" --dry-run)
  python3 - "$line" "$bytes" "$out" "$CCC/TRUTH.json" <<'PY'
import json, sys
m = json.loads(sys.argv[1]); size = int(sys.argv[2])
got = json.load(open(sys.argv[3])); truth = json.load(open(sys.argv[4]))
assert got["turns"] == truth["requests"], (got["turns"], truth["requests"])
m["input_bytes"] = size
m["mb_per_s"] = round(size / 1e6 / m["median_wall_s"], 1)
m["turns"] = got["turns"]
print(json.dumps(m))
PY
  if [ -z "${KEEP_INPUTS:-}" ]; then rm -rf "$CCC"; fi
done
