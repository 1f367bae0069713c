#!/usr/bin/env bash
# Bounded fuzzing smoke run (stable toolchain, no sanitizer), every target in turn.
# Usage: bench/fuzz.sh [SECONDS per target] [TARGET...]   (default 60 s, all targets)
# Exits 1 if any target found a crash (its input is left in fuzz/artifacts/<target>/).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  # collector_request: the /v1/events body parser; license_pack: pack verification;
  # claude_line / ccc_line: the Claude Code transcript and CCC usage-log line parsers;
  # report_query: the query string of GET /v1/report; otlp_request: an OTLP/HTTP body of the
  # OpenTelemetry receiver (logs or metrics, protobuf or JSON, gzip or not).
  targets=(collector_request license_pack claude_line ccc_line report_query otlp_request)
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
failed=0
for t in "${targets[@]}"; do
  echo "== fuzz $t for ${secs}s"
  mkdir -p "corpus/$t"
  if ! cargo fuzz run -s none "$t" "corpus/$t" -- -max_total_time="$secs" >"/tmp/fuzz-$t.log" 2>&1; then
    failed=1
    echo "!! $t failed (log: /tmp/fuzz-$t.log)"
  fi
  grep -E "^(#[0-9]+ +DONE|Done [0-9]+ runs)|SUMMARY|panicked" "/tmp/fuzz-$t.log" || true
done
exit $failed
