#!/usr/bin/env bash
# Rebuilds docs/PERFORMANCE.md from its header and the per-area sections in docs/perf/.
set -euo pipefail
cd "$(dirname "$0")/.."
{
  cat docs/perf/_header.md
  for area in recorder delivery collector ingest claude codex dashboard python; do
    echo
    echo "---"
    echo
    # Demote each section's headings one level under the area heading.
    sed -e 's/^# /## /' "docs/perf/$area.md"
  done
} > docs/PERFORMANCE.md
