#!/usr/bin/env bash
# Old-vs-new re-measurement of the at-a-glance figures, alternating the two builds run by run
# (old new old new ...) so both see the same machine load. Each run appends one JSON line to
# $AB_OUT; `bench/ab_summary.py $AB_OUT` prints medians, new/old ratios and the spread.
#
# usage: bench/ab_remeasure.sh OLD_TARGET NEW_TARGET PAIRS AREA [ARGS]
#   OLD_TARGET/NEW_TARGET: cargo target dirs holding release builds of the two trees
#     (agentos, examples/delivery_bench, examples/loadgen, the record_turn bench binary)
#   AREA: recorder [SIZES=1000,100000,1000000] | delivery [EVENTS=1000000]
#         | sqlite | postgres | ingest (runs bench/ingest_vs_ccusage.sh --runs 1 per run;
#           BENCH_DIR must be set so the corpora and ccusage are reused)
# env:   AB_OUT (default ab.jsonl)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
old=$1 new=$2 pairs=$3 area=$4; shift 4
out=${AB_OUT:-ab.jsonl}

record_turn_bin() { # newest record_turn bench executable in a target dir
  find "$1/release/deps" -maxdepth 1 -type f -executable -name 'record_turn-*' -printf '%T@ %p\n' \
    | sort -n | tail -1 | cut -d' ' -f2
}

run_one() { # which target run
  local which=$1 t=$2 r=$3
  case "$area" in
    recorder)
      local sizes=${ARG1:-1000,100000,1000000} home
      home=$(mktemp -d)
      AGENTOS_BENCH_SIZES=$sizes CRITERION_HOME=$home "$(record_turn_bin "$t")" --bench \
        'record_turn/[0-9]+$' >&2
      for d in "$home"/record_turn/*/; do
        local id; id=$(basename "$d")
        case "$id" in *fsync*) continue;; esac
        python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); print(json.dumps({"area":"recorder","metric":"record_turn_"+sys.argv[2]+"_us","which":sys.argv[3],"run":int(sys.argv[4]),"value":e["median"]["point_estimate"]/1000}))' \
          "$d/new/estimates.json" "$id" "$which" "$r" >> "$out"
      done
      rm -rf "$home";;
    delivery)
      AGENTOS_BENCH_TARGET=$t "$ROOT/bench/delivery.sh" 1 "${ARG1:-1000000}" \
        | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["zero_loss"], d; print(json.dumps({"area":"delivery","metric":"events_per_s_%d"%d["events"],"which":sys.argv[1],"run":int(sys.argv[2]),"value":d["events_per_second"],"rss_mb":d["uploader_max_rss_mb"],"cpu_s":d["uploader_user_seconds"]+d["uploader_sys_seconds"],"wall_s":d["wall_seconds"],"zero_loss":d["zero_loss"]}))' "$which" "$r" >> "$out";;
    sqlite|postgres)
      "$t/release/examples/loadgen" --backend "$area" --seconds 10 \
        | python3 -c '
import json, re, sys
txt = sys.stdin.read(); print(txt, file=sys.stderr)
kv = dict(re.findall(r"(\w+)=([\d.]+)", txt))
assert kv["accepted_events"] == kv["stored_events"] and kv["errors"] == "0", kv
print(json.dumps({"area": "collector", "metric": sys.argv[1] + "_events_per_s", "which": sys.argv[2], "run": int(sys.argv[3]),
  "value": float(kv["throughput_events_per_s"]), "p50_ms": float(kv["p50"]), "p99_ms": float(kv["p99"])}))' "$area" "$which" "$r" >> "$out";;
    ingest)
      : "${BENCH_DIR:?set BENCH_DIR}"
      AGENTOS_BENCH_TARGET=$t "$ROOT/bench/ingest_vs_ccusage.sh" --runs 1 >&2
      python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    print(json.dumps({"area": "ingest", "metric": m["label"] + "_s", "which": sys.argv[2], "run": int(sys.argv[3]),
      "value": m["median_wall_s"], "rss_mb": m["median_max_rss_mb"], "cpu_s": m.get("median_cpu_s", 0)}))' "$BENCH_DIR/out/measurements.jsonl" "$which" "$r" >> "$out"
      cp "$BENCH_DIR/out/agentos.json" "$BENCH_DIR/out/agentos.$which.$r.json";;
    *) echo "unknown area $area" >&2; exit 2;;
  esac
}

ARG1=${1:-}
for r in $(seq 1 "$pairs"); do
  echo "# $area pair $r/$pairs: old" >&2; run_one old "$old" "$r"
  echo "# $area pair $r/$pairs: new" >&2; run_one new "$new" "$r"
done
