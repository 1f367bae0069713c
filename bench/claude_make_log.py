#!/usr/bin/env python3
"""Write a synthetic `windows.jsonl` of Claude Code turns (the shape `agentos claude hook`
records) of about SIZE bytes, recorded_at spread over the last DAYS days up to now, for the
statusline benchmark's "history already ingested".

usage: claude_make_log.py OUT_FILE SIZE_BYTES [--days 60] [--append] [--seed N]
"""
import argparse, json, random, uuid
from datetime import datetime, timedelta, timezone

MODELS = ["claude-sonnet-4-20250514", "claude-opus-4-1-20250805", "claude-3-5-haiku-20241022", "claude-sonnet-4-5-20250929"]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out"); ap.add_argument("size", type=int)
    ap.add_argument("--days", type=int, default=60); ap.add_argument("--append", action="store_true")
    ap.add_argument("--seed", type=int, default=None, help="default: random")
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    now = datetime.now(timezone.utc)
    start = now - timedelta(days=a.days)
    seq = 0
    if a.append:
        with open(a.out, "rb") as f:
            seq = sum(1 for _ in f)
    written = 0
    n_est = max(1, a.size // 560)
    step = (now - start) / n_est
    t = start if not a.append else now - timedelta(minutes=5)
    sessions = [str(uuid.UUID(int=rnd.getrandbits(128))) for _ in range(max(1, n_est // 400))]
    with open(a.out, "a" if a.append else "w") as f:
        while written < a.size:
            seq += 1
            # Never in the future: the line size estimate is rough.
            t = min(now, t + (step if not a.append else timedelta(milliseconds=1)))
            model = rnd.choice(MODELS)
            tin, tout = rnd.randrange(1, 50), rnd.randrange(1, 2000)
            cc, cr = rnd.randrange(0, 5000), rnd.randrange(0, 60000)
            ev = {"type": "turn", "event_id": str(uuid.UUID(int=rnd.getrandbits(128))), "seq": seq,
                  "recorded_at": t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "tier": "local",
                  "turn": {"turn_id": str(uuid.UUID(int=rnd.getrandbits(128))), "session_id": rnd.choice(sessions),
                           "model": model, "subagent": "", "tokens_in": tin, "tokens_out": tout, "input_kind": "text",
                           "latency_ms": float(rnd.randrange(500, 30000)), "cache_creation_tokens": cc,
                           "cache_read_tokens": cr, "source": "claude_code"},
                  "cost": {"provider": "anthropic", "estimated_usd": round((tin * 3 + tout * 15 + cc * 3.75 + cr * 0.3) / 1e6, 8)}}
            line = json.dumps(ev, separators=(",", ":")) + "\n"
            f.write(line); written += len(line)
    print(json.dumps({"bytes": written, "events_to": seq}))

if __name__ == "__main__":
    main()
