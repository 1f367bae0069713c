#!/usr/bin/env python3
"""Codex CLI session rollouts with ground truth, for tests and bench/codex_vs_ccusage.sh.

usage: codex_make_sessions.py OUT [--sessions N] [--turns T] [--seed S] [--pad BYTES]
                              [--restarts] [--torn]

Writes OUT/sessions/YYYY/MM/DD/rollout-<time>-<uuid>.jsonl (OUT is a CODEX_HOME) and
OUT/TRUTH.json. Shapes, mixed per session: per-turn `last_token_usage` plus cumulative totals;
cumulative totals only; no `turn_context` at all (model unknown); resumed sessions (a second
`session_meta` appended hours later, totals carrying on, or restarting from zero with
--restarts). Every session has `info: null` events and repeated `token_count` events (same
totals), reasoning inside output, cached inside input. --torn adds torn lines in the middle
(skipped, counted in the truth) and a half-written last line (not counted: still being
written). Truth tokens follow Codex's split: input includes cached, output includes reasoning.
"""
import argparse, json, os, random, uuid
from datetime import datetime, timedelta, timezone

MODELS = ["gpt-5-codex", "gpt-5", "gpt-5-mini"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--turns", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pad", type=int, default=400)
    ap.add_argument("--restarts", action="store_true")
    ap.add_argument("--torn", action="store_true")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    base = datetime(2026, 9, 1, tzinfo=timezone.utc)
    keys = ("input", "cached", "output", "reasoning")
    truth = {k: 0 for k in keys}
    truth.update(turns=0, skipped=0, sessions=a.sessions, files=0, by_day={}, by_model={}, shapes={})
    pad = "x" * a.pad

    def stamp(t):
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"

    def usage(u):
        return {"input_tokens": u[0], "cached_input_tokens": u[1], "output_tokens": u[2],
                "reasoning_output_tokens": u[3], "total_tokens": u[0] + u[2]}

    def count(day, model, u):
        truth["turns"] += 1
        for k, v in zip(keys, u):
            truth[k] += v
        for bucket in (truth["by_day"].setdefault(day, {}), truth["by_model"].setdefault(model, {})):
            bucket["turns"] = bucket.get("turns", 0) + 1
            for k, v in zip(keys, u):
                bucket[k] = bucket.get(k, 0) + v

    for s in range(a.sessions):
        shape = rng.choices(["full", "cumulative", "no_context", "resumed"], [50, 25, 10, 15])[0]
        truth["shapes"][shape] = truth["shapes"].get(shape, 0) + 1
        sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        t = base + timedelta(days=rng.randrange(60), seconds=rng.randrange(86400))
        path = os.path.join(a.out, "sessions", t.strftime("%Y/%m/%d"),
                            f"rollout-{t.strftime('%Y-%m-%dT%H-%M-%S')}-{sid}.jsonl")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        lines = []
        cwd = f"/home/dev/src/project-{rng.randrange(8)}"
        model = rng.choice(MODELS)
        total = [0, 0, 0, 0]

        def line(kind, payload):
            lines.append(json.dumps({"timestamp": stamp(t), "type": kind, "payload": payload},
                                    separators=(",", ":")))

        def meta():
            line("session_meta", {"id": sid, "timestamp": stamp(t), "cwd": cwd, "originator": "codex_cli_rs",
                                  "cli_version": "0.63.0", "instructions": None,
                                  "git": {"commit_hash": "%040x" % rng.getrandbits(160), "branch": "main"}})

        meta()
        parts = [a.turns] if shape != "resumed" else [a.turns // 2, a.turns - a.turns // 2]
        for part, n in enumerate(parts):
            if part == 1:
                t += timedelta(hours=rng.randrange(2, 30))
                meta()
                if a.restarts:
                    total = [0, 0, 0, 0]
            for _ in range(n):
                t += timedelta(seconds=rng.randrange(5, 400))
                line("response_item", {"type": "message", "role": "user",
                                       "content": [{"type": "input_text", "text": "please " + pad}]})
                if rng.random() < 0.1:
                    model = rng.choice(MODELS)
                if shape != "no_context":
                    line("turn_context", {"cwd": cwd, "approval_policy": "on-request",
                                          "sandbox_policy": {"mode": "workspace-write"},
                                          "model": model, "effort": "medium", "summary": "auto"})
                if rng.random() < 0.3:
                    line("event_msg", {"type": "token_count", "info": None, "rate_limits": None})
                t += timedelta(seconds=rng.randrange(1, 60))
                line("response_item", {"type": "reasoning", "summary": [{"type": "summary_text", "text": pad}]})
                if a.torn and rng.random() < 0.02:
                    full = json.dumps({"timestamp": stamp(t), "type": "response_item",
                                       "payload": {"type": "message", "role": "assistant", "content": pad}})
                    lines.append(full[: len(full) // 2])
                    truth["skipped"] += 1
                inp = rng.randrange(2000, 120000)
                cached = rng.randrange(0, inp) if rng.random() < 0.8 else 0
                out = rng.randrange(10, 8000)
                reasoning = rng.randrange(0, out)
                u = [inp, cached, out, reasoning]
                total = [x + y for x, y in zip(total, u)]
                info = {"total_token_usage": usage(total), "model_context_window": 272000}
                if shape != "cumulative":
                    info["last_token_usage"] = usage(u)
                line("event_msg", {"type": "token_count", "info": info,
                                   "rate_limits": {"primary": {"used_percent": 12.0, "window_minutes": 300}}})
                if rng.random() < 0.15:
                    t += timedelta(milliseconds=rng.randrange(1, 900))
                    line("event_msg", {"type": "token_count", "info": info, "rate_limits": None})
                count(t.strftime("%Y-%m-%d"), "unknown" if shape == "no_context" else model, u)
                line("response_item", {"type": "message", "role": "assistant",
                                       "content": [{"type": "output_text", "text": pad}]})
        tail = ""
        if a.torn and rng.random() < 0.1:
            tail = json.dumps({"timestamp": stamp(t), "type": "event_msg",
                               "payload": {"type": "token_count", "info": {"total_token_usage": usage(total)}}})
            tail = tail[: len(tail) // 2]
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n" + tail)
        truth["files"] += 1
    truth["total"] = truth["input"] + truth["output"]
    with open(os.path.join(a.out, "TRUTH.json"), "w") as f:
        json.dump(truth, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
