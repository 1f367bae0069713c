# Shared setup of the bench scripts (source it): ROOT, SHARED, WORK (BENCH_DIR, kept when set,
# else a temp dir removed on exit), a release build and BIN. AGENTOS_BENCH_TARGET=<cargo target
# dir> measures the release `agentos` already built there (e.g. a baseline worktree's) instead.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${AGENTOS_SHARED_DIR:-$ROOT/../shared}
if [ -n "${BENCH_DIR:-}" ]; then WORK=$BENCH_DIR; mkdir -p "$WORK"; else WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT; fi
if [ -n "${AGENTOS_BENCH_TARGET:-}" ]; then
  BIN=$AGENTOS_BENCH_TARGET/release/agentos
else
  echo "== build (release)" >&2
  (cd "$ROOT" && cargo build --release -p agentos-cli >&2)
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/agentos
fi
echo "== measuring $BIN" >&2
