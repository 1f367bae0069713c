#!/usr/bin/env bash
# Regenerates the ccusage 20.0.24 goldens that `--json-format ccusage` is tested against
# (crates/agentos-cli/tests/golden/ccusage/): a small seeded Claude corpus from the shared
# generator, and ccusage's JSON for each report over it. Installs ccusage with npm into a temp
# dir (the only step that needs the network); tests never install it.
#
# usage: bench/ccusage_goldens.sh
# env:   AGENTOS_SHARED_DIR (holding tools/gen_claude_logs.py; default ../shared)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${AGENTOS_SHARED_DIR:-$ROOT/../shared}
OUT=$ROOT/crates/agentos-cli/tests/golden/ccusage
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

npm install --prefix "$WORK/npm" ccusage@20.0.24 >&2
CCUSAGE=$WORK/npm/node_modules/.bin/ccusage

rm -rf "$OUT/claude"
mkdir -p "$OUT"
python3 "$SHARED/tools/gen_claude_logs.py" "$OUT/claude" --sessions 4 --turns 12 --seed 14 --pad 8 --projects 2 >&2

for kind in daily weekly monthly session blocks; do
  extra=()
  # agentos weeks start on Monday by default; ccusage's on Sunday.
  if [ "$kind" = weekly ]; then extra=(--start-of-week monday); fi
  CLAUDE_CONFIG_DIR="$OUT/claude" TZ=UTC "$CCUSAGE" claude "$kind" --json --offline --timezone UTC "${extra[@]}" > "$OUT/$kind.json"
done
"$CCUSAGE" --version > "$OUT/VERSION"
echo "goldens written to $OUT" >&2
