#!/usr/bin/env bash
# What maintaining the aggregates costs ingest (issue #10 §6), measured on one commit: the
# collector's loadgen built from HEAD, against the same code with the one call that maintains
# the rollups in the ingest transaction (`super::rollup::apply` in
# crates/agentos-collector/src/store/sql.rs) removed. Everything else (parsing, validation, the
# event insert and its columns, the precedence checks, coverage) is the same in both, so the
# difference is the aggregates and nothing else. Three binaries run in turn, the order rotated
# every round: that variant, HEAD, and optionally a third loadgen (e.g. one built from the
# commit before any aggregate, 7a687c4, for the whole round's drop).
#
# usage: bench/ingest_rollup_ab.sh [backend=sqlite] [rounds=5] [THIRD_LOADGEN]
# Prints one line per run (`backend round N which events/s load`), then the median ratios.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
backend=${1:-sqlite}; rounds=${2:-5}; third=${3:-}
WORK=$(mktemp -d)
trap 'git -C "$ROOT" worktree remove --force "$WORK/tree" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

echo "== loadgen without the rollup maintenance (worktree of HEAD)" >&2
git -C "$ROOT" worktree add --detach "$WORK/tree" HEAD >&2
SQL=$WORK/tree/crates/agentos-collector/src/store/sql.rs
CALL='        super::rollup::apply(&mut tx, tenant, device_id, events, &stored).await?;'
grep -qF "$CALL" "$SQL" || { echo "the rollup call is not in $SQL any more: update this script" >&2; exit 1; }
grep -vF "$CALL" "$SQL" > "$SQL.new" && mv "$SQL.new" "$SQL"
# One target dir for both builds (dependencies built once); the worktree's crate has other
# paths, so cargo rebuilds it, and then the checkout's again.
(cd "$WORK/tree" && CARGO_TARGET_DIR=$TARGET cargo build --release -p agentos-collector --example loadgen >&2)
cp "$TARGET/release/examples/loadgen" "$WORK/loadgen-norollup"
echo "== loadgen of HEAD" >&2
touch "$ROOT/crates/agentos-collector/src/store/sql.rs"
(cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release -p agentos-collector --example loadgen >&2)
cp "$TARGET/release/examples/loadgen" "$WORK/loadgen-head"
# Cargo decides freshness by mtimes; make sure it really built two programs.
if cmp -s "$WORK/loadgen-norollup" "$WORK/loadgen-head"; then
  echo "the two loadgen builds are identical: cargo did not rebuild one of them" >&2; exit 1
fi

names=(norollup head); bins=("$WORK/loadgen-norollup" "$WORK/loadgen-head")
if [ -n "$third" ]; then names+=(third); bins+=("$third"); fi
n=${#names[@]}
: > "$WORK/runs.txt"
for i in $(seq "$rounds"); do
  for k in $(seq 0 $((n - 1))); do
    j=$(( (k + i) % n ))
    eps=$("${bins[$j]}" --backend "$backend" --seconds 10 2>&1 | grep -oE 'throughput_events_per_s=[0-9]+' | cut -d= -f2)
    echo "$backend round $i ${names[$j]} $eps $(cut -d' ' -f1 /proc/loadavg)" | tee -a "$WORK/runs.txt"
  done
done
python3 - "$WORK/runs.txt" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    _, _, rnd, which, eps, _ = line.split()
    runs.setdefault(int(rnd), {})[which] = float(eps)
def ratios(a, b):
    return [r[a] / r[b] for r in runs.values() if a in r and b in r]
r = ratios("head", "norollup")
print("head / no rollup maintenance:", [round(x, 3) for x in r], "median", round(statistics.median(r), 3))
if any("third" in x for x in runs.values()):
    r = ratios("head", "third")
    print("head / third:", [round(x, 3) for x in r], "median", round(statistics.median(r), 3))
    r = ratios("norollup", "third")
    print("no rollup maintenance / third:", [round(x, 3) for x in r], "median", round(statistics.median(r), 3))
PY
