#!/usr/bin/env bash
# Claude Code integration benchmark: `agentos statusline` side by side with `ccusage statusline`
# in one run, and the hook's latency. Figures go to docs/perf/claude.md.
#
#   statusline, steady state : a ~1 GB windows.jsonl already folded, nothing new (p50, RSS)
#   statusline, after 10 MB  : the first call after 10 MB of new turns were appended
#   ccusage statusline       : `ccusage statusline --no-cache` over the generator corpus
#   hook                     : `agentos claude hook` Stop after each new request (p50, p95)
#
# usage: bench/claude_vs_ccusage.sh [--log-bytes 1000000000] [--sessions 400] [--turns 1000] [--runs 30]
# env:   BENCH_DIR (kept when set; default a temp dir), AGENTOS_SHARED_DIR
set -euo pipefail

LOG_BYTES=1000000000; SESSIONS=400; TURNS=1000; RUNS=30
while [ $# -gt 0 ]; do
  case "$1" in
    --log-bytes) LOG_BYTES=$2; shift 2;;
    --sessions) SESSIONS=$2; shift 2;;
    --turns) TURNS=$2; shift 2;;
    --runs) RUNS=$2; shift 2;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
M="python3 $ROOT/bench/ingest_measure.py"

CLAUDE=$WORK/claude-$SESSIONS-$TURNS
if [ ! -f "$CLAUDE/TRUTH.json" ]; then
  echo "== generating Claude corpus ($SESSIONS sessions x $TURNS turns)" >&2
  python3 "$SHARED/tools/gen_claude_logs.py" "$CLAUDE" --sessions "$SESSIONS" --turns "$TURNS" >&2
fi
FIRST=$(find "$CLAUDE/projects" -name '*.jsonl' | sort | head -1)
SID=$(basename "$FIRST" .jsonl)
PAYLOAD=$WORK/statusline.json
python3 - "$PAYLOAD" "$SID" "$FIRST" <<'PY'
import json, sys
out, sid, tp = sys.argv[1:]
json.dump({"hook_event_name": "Status", "session_id": sid, "transcript_path": tp, "cwd": "/tmp",
           "model": {"id": "claude-sonnet-4-5-20250929", "display_name": "Sonnet 4.5"},
           "workspace": {"current_dir": "/tmp", "project_dir": "/tmp"}, "version": "2.0.0",
           "cost": {"total_cost_usd": 0.0}}, open(out, "w"))
PY

DATA=$WORK/data; mkdir -p "$DATA"
if [ ! -f "$DATA/windows.jsonl" ]; then
  echo "== writing a ~$LOG_BYTES byte history log" >&2
  python3 "$ROOT/bench/claude_make_log.py" "$DATA/windows.jsonl" "$LOG_BYTES" >&2
  rm -f "$DATA/claude/statusline_state.json"
fi
echo "== folding the history once (untimed)" >&2
for _ in $(seq 1 100000); do
  out=$(AGENTOS_DATA_DIR=$DATA "$BIN" statusline < "$PAYLOAD")
  case "$out" in *"…"*) ;; *) break;; esac
done

results=()
echo "== agentos statusline, steady state" >&2
results+=("$($M agentos_statusline_steady "$RUNS" --stdin "$PAYLOAD" --env AGENTOS_DATA_DIR="$DATA" --env NO_COLOR=1 -- "$BIN" statusline)")
echo "== agentos statusline, first call after 10 MB of new turns" >&2
results+=("$($M agentos_statusline_after_10mb 5 --stdin "$PAYLOAD" --env AGENTOS_DATA_DIR="$DATA" --env NO_COLOR=1 \
  --before "python3 $ROOT/bench/claude_make_log.py $DATA/windows.jsonl 10000000 --append >/dev/null" -- "$BIN" statusline)")

echo "== hook latency (Stop after each new request)" >&2
HOOKDATA=$WORK/hookdata; rm -rf "$HOOKDATA"; mkdir -p "$HOOKDATA"
T=$WORK/hook/$SID.jsonl; mkdir -p "$(dirname "$T")"; : > "$T"
HOOKIN=$WORK/stop.json
python3 -c "import json,sys; json.dump({'session_id':sys.argv[1],'transcript_path':sys.argv[2],'cwd':'/tmp','hook_event_name':'Stop'}, open(sys.argv[3],'w'))" "$SID" "$T" "$HOOKIN"
FEED=$WORK/feed.py
cat > "$FEED" <<'PY'
import sys
src, dst, state = sys.argv[1:]
try: pos = int(open(state).read())
except Exception: pos = 0
lines = open(src).read().splitlines(True)
open(dst, "a").writelines(lines[pos:pos + 2])
open(state, "w").write(str(pos + 2))
PY
rm -f "$WORK/feed.pos"
results+=("$($M agentos_hook_stop "$RUNS" --stdin "$HOOKIN" --env AGENTOS_DATA_DIR="$HOOKDATA" \
  --before "python3 $FEED $FIRST $T $WORK/feed.pos" -- "$BIN" claude hook)")

echo "== installing ccusage with npm" >&2
NPM_DIR=$WORK/npm
if npm install --prefix "$NPM_DIR" ccusage@20.0.24 >&2; then
  echo "== ccusage statusline --no-cache" >&2
  results+=("$($M ccusage_statusline_no_cache 3 --stdin "$PAYLOAD" --env CLAUDE_CONFIG_DIR="$CLAUDE" -- "$NPM_DIR/node_modules/.bin/ccusage" statusline --no-cache --offline)")
else
  echo "npm could not install ccusage; agentos figures only" >&2
fi
printf '%s\n' "${results[@]}"
echo "corpus: $(du -sb "$CLAUDE/projects" | cut -f1) bytes of transcripts; log: $(stat -c %s "$DATA/windows.jsonl") bytes" >&2
