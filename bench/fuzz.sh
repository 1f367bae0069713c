#!/usr/bin/env bash
# Bounded fuzzing smoke run (stable toolchain, no sanitizer). Usage: bench/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for t in collector_request license_pack; do
  echo "== fuzz $t for ${secs}s"
  cargo fuzz run -s none "$t" -- -max_total_time="$secs" 2>&1 | grep -E "^(#[0-9]+ +DONE|Done|==|SUMMARY)|panicked" || true
done
