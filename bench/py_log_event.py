#!/usr/bin/env python3
"""CCCClient.log_event from Python (agentos_ccc, the Rust recorder) against the seed-style
pure-Python adapter (bench/seed_rollup.py: append, then re-read the whole log), side by side
in one run, with N turns already in the log.

    python3 bench/py_log_event.py [N ...]        # default: 1000 100000

Needs agentos_ccc importable (bench/py_log_event.sh builds the release extension first).
"""
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seed_rollup  # noqa: E402

from agentos_ccc import CCCClient  # noqa: E402

TURN = dict(
    model="claude-sonnet-4.5", subagent="main", tokens_in=1200, tokens_out=300,
    input_kind="text", latency_ms=850.0, attribution={"claude-sonnet-4.5": 1.0},
    capacity_used=0.5,
    measurement={"cls": 1.2, "impf": 4.5, "churn_score": 0.1, "feature_delta": 1.0},
)


def agentos_median(n, samples):
    d = tempfile.mkdtemp(prefix="py-bench-")
    c = CCCClient(base_url=None, api_key=None, data_dir=d, privacy="local")
    c.start_session(repo_id="r", branch="main", commit="c", license_id="")
    for _ in range(n):
        c.log_event(**TURN)
    c.flush()
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        c.log_event(**TURN)
        times.append(time.perf_counter() - t0)
    c.close()
    return statistics.median(times)


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [1000, 100000]
    print(f"{'turns in log':>12}  {'agentos_ccc median':>18}  {'seed-style median':>17}  {'ratio':>8}")
    for n in sizes:
        ours = agentos_median(n, 2000)
        seed = seed_rollup.bench(n, samples=30 if n <= 10000 else 11)
        print(f"{n:>12}  {ours * 1e6:>15.1f} µs  {seed * 1e3:>14.2f} ms  {seed / ours:>7.0f}x")


if __name__ == "__main__":
    main()
