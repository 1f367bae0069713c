#!/usr/bin/env python3
"""The seed adapter's approach, for comparison with the Rust recorder: after every turn it
appends the line and then re-reads the WHOLE windows.jsonl to recompute metrics_summary.json.

Measures the median cost of recording one turn when N turns are already in the log.

    python3 bench/seed_rollup.py            # N = 500 and 4000
    python3 bench/seed_rollup.py 500 4000 20000
"""
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone


def turn_line(seq, i):
    return {
        "type": "turn",
        "event_id": str(uuid.uuid4()),
        "seq": seq,
        "recorded_at": datetime.now(timezone.utc).isoformat(),
        "tier": "local",
        "turn": {
            "turn_id": f"t{i}", "session_id": "bench-session", "model": "claude-sonnet-4.5",
            "subagent": "main", "tokens_in": 1200, "tokens_out": 300, "input_kind": "text",
            "latency_ms": 850.0, "attribution": {"claude-sonnet-4.5": 1.0}, "capacity_used": 0.5,
        },
        "measurement": {"cls": 1.2, "impf": 4.5, "churn_score": 0.1, "feature_delta": 1.0},
    }


def recompute(log_path, out_path):
    turns = 0
    shipped = capacity = cls = impf = churn = 0.0
    measured = 0
    models = {}
    with open(log_path) as f:
        for line in f:
            ev = json.loads(line)
            if ev.get("type") != "turn":
                continue
            t = ev["turn"]
            turns += 1
            capacity += t.get("capacity_used") or 0.0
            m = ev.get("measurement")
            if m:
                measured += 1
                shipped += m["feature_delta"]
                cls += m["cls"]
                impf += m["impf"]
                churn += m["churn_score"]
            u = models.setdefault(t["model"], {"turns": 0, "tokens_in": 0, "tokens_out": 0})
            u["turns"] += 1
            u["tokens_in"] += t["tokens_in"]
            u["tokens_out"] += t["tokens_out"]
    summary = {
        "generated_at": datetime.now(timezone.utc).isoformat(),
        "turns": turns,
        "features_shipped": shipped,
        "capacity_used": capacity,
        "features_per_capacity": shipped / capacity if capacity else None,
        "avg_cls": cls / measured if measured else None,
        "avg_impf": impf / measured if measured else None,
        "avg_churn_score": churn / measured if measured else None,
        "models": models,
    }
    tmp = out_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
    os.replace(tmp, out_path)


def bench(n, samples=30):
    d = tempfile.mkdtemp(prefix="seed-bench-")
    log = os.path.join(d, "windows.jsonl")
    out = os.path.join(d, "metrics_summary.json")
    with open(log, "w") as f:
        for i in range(n):
            f.write(json.dumps(turn_line(i + 1, i)) + "\n")
    times = []
    for k in range(samples):
        t0 = time.perf_counter()
        with open(log, "a") as f:
            f.write(json.dumps(turn_line(n + k + 1, n + k)) + "\n")
        recompute(log, out)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:]] or [500, 4000]
    for n in sizes:
        print(f"seed-style (re-read whole log per turn), {n} turns in log: "
              f"median {bench(n) * 1e3:.2f} ms per turn")
