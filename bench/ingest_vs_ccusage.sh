#!/usr/bin/env bash
# Side-by-side benchmark: `agentos ccc report daily --source claude` vs ccusage 20.0.24
# (`ccusage claude daily --json --offline`) on the generator corpus, plus CCC log throughput
# and the warm (nothing new) re-run. Figures go to docs/perf/ingest.md.
#
# usage: bench/ingest_vs_ccusage.sh [--sessions 400] [--turns 1000] [--requests 400000] [--runs 3]
# env:   BENCH_DIR (corpus + npm dir; default a temp dir, kept when set), AGENTOS_SHARED_DIR,
#        AGENTOS_BENCH_TARGET=<cargo target dir>: measure the release `agentos` already built there
#        (e.g. a baseline worktree's) instead of building this tree;
#        AGENTOS_BENCH_NO_CCUSAGE=1: agentos figures only (no npm, no ccusage runs)
set -euo pipefail

SESSIONS=400; TURNS=1000; REQUESTS=400000; RUNS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --sessions) SESSIONS=$2; shift 2;;
    --turns) TURNS=$2; shift 2;;
    --requests) REQUESTS=$2; shift 2;;
    --runs) RUNS=$2; shift 2;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
MEASURE="python3 $ROOT/bench/ingest_measure.py"

CLAUDE=$WORK/claude-$SESSIONS-$TURNS
if [ ! -f "$CLAUDE/TRUTH.json" ]; then
  echo "== generating Claude corpus ($SESSIONS sessions x $TURNS turns)" >&2
  python3 "$SHARED/tools/gen_claude_logs.py" "$CLAUDE" --sessions "$SESSIONS" --turns "$TURNS" >&2
fi
CCC=$WORK/ccc-$REQUESTS
if [ ! -f "$CCC/TRUTH.json" ]; then
  echo "== generating CCC root ($REQUESTS requests)" >&2
  python3 "$SHARED/tools/gen_ccp_logs.py" "$CCC" --requests "$REQUESTS" >&2
fi
CLAUDE_BYTES=$(du -sb "$CLAUDE/projects" | cut -f1)
CCC_BYTES=$(cat "$CCC"/logs/usage.jsonl* "$CCC"/logs/archive/*.jsonl | wc -c)

echo "== installing ccusage 20.0.24 with npm" >&2
NPM_DIR=$WORK/npm
CCUSAGE=""
if [ -n "${AGENTOS_BENCH_NO_CCUSAGE:-}" ]; then
  echo "AGENTOS_BENCH_NO_CCUSAGE set: skipping ccusage" >&2
elif npm install --prefix "$NPM_DIR" ccusage@20.0.24 >&2; then
  CCUSAGE=$NPM_DIR/node_modules/.bin/ccusage
else
  echo "npm could not install ccusage; reporting agentos figures only" >&2
fi

DATA=$WORK/data
OUT=$WORK/out; mkdir -p "$OUT"
NPROC=$(nproc)

# Warm the page cache once so both tools read from memory.
cat "$CLAUDE"/projects/*/*.jsonl > /dev/null

results=()
if [ -n "$CCUSAGE" ]; then
  echo "== ccusage" >&2
  results+=("$(MEASURE_STDOUT=$OUT/ccusage.json $MEASURE ccusage_daily "$RUNS" --env CLAUDE_CONFIG_DIR="$CLAUDE" -- "$CCUSAGE" claude daily --json --offline)")
fi
echo "== agentos cold (empty data dir each run)" >&2
results+=("$(MEASURE_STDOUT=$OUT/agentos.json $MEASURE agentos_daily_cold "$RUNS" --before "rm -rf '$DATA'" --env AGENTOS_DATA_DIR="$DATA" -- "$BIN" ccc report daily --source claude --path "$CLAUDE" --json)")
echo "== agentos warm (nothing new)" >&2
results+=("$(MEASURE_STDOUT=$OUT/agentos_warm.json $MEASURE agentos_daily_warm "$RUNS" --env AGENTOS_DATA_DIR="$DATA" -- "$BIN" ccc report daily --source claude --path "$CLAUDE" --json)")
echo "== agentos direct scan, one day (--since/--until)" >&2
results+=("$(MEASURE_STDOUT=$OUT/agentos_day.json $MEASURE agentos_daily_one_day "$RUNS" --env AGENTOS_DATA_DIR="$DATA" -- "$BIN" ccc report daily --source claude --path "$CLAUDE" --since 2026-10-01 --until 2026-10-01 --json)")
echo "== agentos --threads 1 (cold)" >&2
results+=("$(MEASURE_STDOUT=$OUT/agentos_t1.json $MEASURE agentos_daily_cold_1thread "$RUNS" --before "rm -rf '$DATA'" --env AGENTOS_DATA_DIR="$DATA" -- "$BIN" ccc report daily --source claude --path "$CLAUDE" --json --threads 1)")
echo "== CCC backfill" >&2
results+=("$(MEASURE_STDOUT=$OUT/backfill.json $MEASURE ccc_backfill "$RUNS" -- "$BIN" ccc backfill --ccp-root "$CCC" --dry-run)")
echo "== CCC report (cold, through the store)" >&2
results+=("$(MEASURE_STDOUT=$OUT/ccc_report.json $MEASURE ccc_report_daily_cold "$RUNS" --before "rm -rf '$DATA'" --env AGENTOS_DATA_DIR="$DATA" -- "$BIN" ccc report daily --source ccc --ccp-root "$CCC" --json)")

printf '%s\n' "${results[@]}" > "$OUT/measurements.jsonl"
python3 - "$OUT" "$CLAUDE" "$CCC" "$CLAUDE_BYTES" "$CCC_BYTES" "$NPROC" <<'PY'
import json, sys
out, claude, ccc, cbytes, kbytes, nproc = sys.argv[1:]
cbytes, kbytes = int(cbytes), int(kbytes)
m = {}
for line in open(f"{out}/measurements.jsonl"):
    r = json.loads(line); m[r["label"]] = r
truth = json.load(open(f"{claude}/TRUTH.json"))
ours = json.load(open(f"{out}/agentos.json"))["totals"]
warm = json.load(open(f"{out}/agentos_warm.json"))["totals"]
t1 = json.load(open(f"{out}/agentos_t1.json"))
print(f"machine: {nproc} cores; Claude corpus {cbytes/1e6:.0f} MB; CCC logs {kbytes/1e6:.0f} MB")
keys = [("input_tokens", "inputTokens", "input"), ("output_tokens", "outputTokens", "output"),
        ("cache_creation_tokens", "cacheCreationTokens", "cache_create"), ("cache_read_tokens", "cacheReadTokens", "cache_read")]
print("token totals equal to TRUTH.json:", all(ours[a] == truth[t] for a, _, t in keys))
print("warm totals equal to cold:", warm == ours)
print("--threads 1 output identical:", t1 == json.load(open(f"{out}/agentos.json")))
if "ccusage_daily" in m:
    cc = json.load(open(f"{out}/ccusage.json"))["totals"]
    print("token totals equal to ccusage:", all(ours[a] == cc[b] for a, b, _ in keys))
    print(f"cost: agentos {ours['cost_usd']:.4f} USD, ccusage {cc['totalCost']:.4f} USD")
for label, r in m.items():
    print(f"{label:28s} median wall {r['median_wall_s']:.3f} s, median peak RSS {r['median_max_rss_mb']:.1f} MB  (runs: {[x['wall_s'] for x in r['runs']]})")
cold = m["agentos_daily_cold"]["median_wall_s"]
if "ccusage_daily" in m:
    print(f"speed-up vs ccusage (cold): {m['ccusage_daily']['median_wall_s'] / cold:.2f}x")
print(f"warm / cold: {100 * m['agentos_daily_warm']['median_wall_s'] / cold:.1f} %")
print(f"Claude cold throughput: {cbytes / 1e6 / cold:.0f} MB/s")
print(f"CCC backfill throughput: {kbytes / 1e6 / m['ccc_backfill']['median_wall_s']:.0f} MB/s")
print(f"CCC report (store, cold) throughput: {kbytes / 1e6 / m['ccc_report_daily_cold']['median_wall_s']:.0f} MB/s")
PY
