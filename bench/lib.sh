# Shared setup of the bench scripts (source it): ROOT, SHARED, WORK (BENCH_DIR, kept when set,
# else a temp dir removed on exit), a release build and BIN.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${AGENTOS_SHARED_DIR:-$ROOT/../shared}
if [ -n "${BENCH_DIR:-}" ]; then WORK=$BENCH_DIR; mkdir -p "$WORK"; else WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT; fi
echo "== build (release)" >&2
(cd "$ROOT" && cargo build --release -p agentos-cli >&2)
BIN=$ROOT/target/release/agentos
