#!/usr/bin/env bash
# Builds the agentos_ccc extension in release mode into its own venv (target/py-bench-venv)
# and runs bench/py_log_event.py: CCCClient.log_event vs the seed-style adapter, 1k and 100k
# turns already in the log. Extra arguments are passed on (the log sizes).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=$ROOT/target/py-bench-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c 'import maturin' 2>/dev/null || "$VENV/bin/python" -m pip install --quiet "maturin>=1.9.4,<2"
echo "== build (release extension)" >&2
(cd "$ROOT/crates/agentos-py" && "$VENV/bin/maturin" build --release --quiet --out "$ROOT/target/py-bench-wheels" >&2)
"$VENV/bin/python" -m pip install --quiet --force-reinstall --no-deps "$ROOT"/target/py-bench-wheels/agentos_ccc-*.whl
"$VENV/bin/python" --version >&2
"$VENV/bin/python" "$ROOT/bench/py_log_event.py" "$@"
