#!/usr/bin/env bash
# Side-by-side benchmark: `agentos ccc report daily --source codex` vs ccusage 20.0.24
# (`ccusage codex daily --json --offline`) on the same generated Codex corpus
# (bench/codex_make_sessions.py). Checks token totals against each other and TRUTH.json, then
# prints medians, ratios and peak RSS for docs/perf/codex.md.
#
# usage: bench/codex_vs_ccusage.sh [--sessions 300] [--turns 150] [--pad 1500] [--runs 5]
# env:   BENCH_DIR (corpus + npm dir; default a temp dir, kept when set), AGENTOS_BENCH_TARGET
#        (measure the release `agentos` already built there)
set -euo pipefail

SESSIONS=300; TURNS=150; PAD=1500; RUNS=5
while [ $# -gt 0 ]; do
  case "$1" in
    --sessions) SESSIONS=$2; shift 2;;
    --turns) TURNS=$2; shift 2;;
    --pad) PAD=$2; shift 2;;
    --runs) RUNS=$2; shift 2;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
MEASURE="python3 $ROOT/bench/ingest_measure.py"

CORPUS=$WORK/codex-$SESSIONS-$TURNS-$PAD
if [ ! -f "$CORPUS/TRUTH.json" ]; then
  echo "== generating Codex corpus ($SESSIONS sessions x $TURNS turns)" >&2
  # No counter restarts and no torn token_count lines: the two rules where ccusage and agentos
  # differ on purpose (docs/perf/codex.md); everything else is in.
  python3 "$ROOT/bench/codex_make_sessions.py" "$CORPUS" --sessions "$SESSIONS" --turns "$TURNS" --pad "$PAD" >&2
fi
BYTES=$(du -sb "$CORPUS/sessions" | cut -f1)

echo "== installing ccusage 20.0.24 with npm" >&2
NPM_DIR=$WORK/npm
if [ ! -x "$NPM_DIR/node_modules/.bin/ccusage" ]; then
  npm install --prefix "$NPM_DIR" ccusage@20.0.24 >&2
fi
CCUSAGE=$NPM_DIR/node_modules/.bin/ccusage

DATA=$WORK/data
OUT=$WORK/out-codex; mkdir -p "$OUT"
find "$CORPUS/sessions" -name '*.jsonl' -exec cat {} + > /dev/null

# Alternate the tools run by run so load from other jobs on the box hits both alike, and swap
# which goes first every round: whichever runs right after ccusage measured slower (its exit
# leaves the box busy for a moment), so a fixed order favours one side.
: > "$OUT/measurements.jsonl"
ccusage_run() {
  MEASURE_STDOUT=$OUT/ccusage.json $MEASURE ccusage_codex_daily 1 --env CODEX_HOME="$CORPUS" -- "$CCUSAGE" codex daily --json --offline >> "$OUT/measurements.jsonl"
}
agentos_runs() {
  MEASURE_STDOUT=$OUT/agentos.json $MEASURE agentos_codex_daily_cold 1 --before "rm -rf '$DATA'" --env AGENTOS_DATA_DIR="$DATA" -- "$BIN" ccc report daily --source codex --path "$CORPUS" --json --timezone UTC >> "$OUT/measurements.jsonl"
  MEASURE_STDOUT=$OUT/agentos_warm.json $MEASURE agentos_codex_daily_warm 1 --env AGENTOS_DATA_DIR="$DATA" -- "$BIN" ccc report daily --source codex --path "$CORPUS" --json --timezone UTC >> "$OUT/measurements.jsonl"
}
for i in $(seq "$RUNS"); do
  if [ $((i % 2)) -eq 1 ]; then ccusage_run; agentos_runs; else agentos_runs; ccusage_run; fi
done

python3 - "$OUT" "$CORPUS" "$BYTES" <<'PY'
import json, statistics, sys
out, corpus, nbytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = {}
for line in open(f"{out}/measurements.jsonl"):
    r = json.loads(line)
    runs.setdefault(r["label"], []).extend(r["runs"])
truth = json.load(open(f"{corpus}/TRUTH.json"))
ours = json.load(open(f"{out}/agentos.json"))["totals"]
warm = json.load(open(f"{out}/agentos_warm.json"))["totals"]
cc = json.load(open(f"{out}/ccusage.json"))["totals"]
print(f"corpus: {truth['files']} files, {nbytes / 1e6:.0f} MB, {truth['turns']} turns, shapes {truth['shapes']}")
mine = {"input": ours["input_tokens"] + ours["cache_read_tokens"], "cached": ours["cache_read_tokens"],
        "output": ours["output_tokens"], "total": ours["total_tokens"]}
theirs = {"input": cc["inputTokens"] + cc["cacheReadTokens"], "cached": cc["cacheReadTokens"],
          "output": cc["outputTokens"], "total": cc["totalTokens"]}
print("agentos tokens:", mine)
print("ccusage tokens:", theirs, "reasoning (inside output):", cc["reasoningOutputTokens"])
print("agentos == TRUTH.json:", all(mine[k] == truth[k] for k in mine))
print("agentos == ccusage:", mine == theirs)
print("warm == cold:", warm == ours)
print(f"cost: agentos {ours['cost_usd']:.4f} USD, ccusage {cc['costUSD']:.4f} USD")
med = {}
for label, rs in runs.items():
    w = statistics.median(x["wall_s"] for x in rs)
    rss = statistics.median(x["max_rss_mb"] for x in rs)
    cpu = statistics.median(x["cpu_s"] for x in rs)
    med[label] = (w, rss, cpu)
    print(f"{label:26s} median wall {w:.3f} s, CPU {cpu:.3f} s, peak RSS {rss:.1f} MB  (walls: {[round(x['wall_s'], 3) for x in rs]})")
cw = med["agentos_codex_daily_cold"][0]
print(f"speed-up vs ccusage, cold: {med['ccusage_codex_daily'][0] / cw:.2f}x wall, {med['ccusage_codex_daily'][2] / med['agentos_codex_daily_cold'][2]:.2f}x CPU")
print(f"speed-up vs ccusage, warm: {med['ccusage_codex_daily'][0] / med['agentos_codex_daily_warm'][0]:.2f}x wall")
print(f"agentos cold throughput: {nbytes / 1e6 / cw:.0f} MB/s")
PY
