#!/usr/bin/env python3
"""Summarise bench/ab_remeasure.sh output: per metric, old and new medians, new/old ratio, the
runs, and the spread of each side ((max - min) / median), which is the noise between repeated
runs of the same binary. Throughput metrics (events_per_s) are better when higher; times (_s,
_us) when lower; "slower" gives the slowdown factor in both cases (> 1 means new is slower).

usage: bench/ab_summary.py ab.jsonl [more.jsonl ...]
"""
import json, statistics, sys
from collections import defaultdict

rows = defaultdict(lambda: {"old": [], "new": []})
extra = defaultdict(lambda: {"old": defaultdict(list), "new": defaultdict(list)})
order = []
for path in sys.argv[1:]:
    for line in open(path):
        r = json.loads(line)
        key = (r["area"], r["metric"])
        if key not in rows:
            order.append(key)
        rows[key][r["which"]].append(r["value"])
        for k, v in r.items():
            if k not in ("area", "metric", "which", "run", "value") and isinstance(v, (int, float)) and not isinstance(v, bool):
                extra[key][r["which"]][k].append(v)

def spread(xs):
    m = statistics.median(xs)
    return (max(xs) - min(xs)) / m if m else 0.0

print("| area | metric | old median | new median | new/old | slower | pairs | old runs | new runs | spread old / new |")
print("|---|---|---|---|---|---|---|---|---|---|")
for key in order:
    o, n = rows[key]["old"], rows[key]["new"]
    if not o or not n:
        continue
    mo, mn = statistics.median(o), statistics.median(n)
    ratio = mn / mo
    slower = 1 / ratio if "per_s" in key[1] else ratio
    fmt = lambda xs: " / ".join(f"{x:.4g}" for x in xs)
    print(f"| {key[0]} | {key[1]} | {mo:.4g} | {mn:.4g} | {ratio:.3f} | {slower:.3f} | {min(len(o), len(n))} | {fmt(o)} | {fmt(n)} | {spread(o):.0%} / {spread(n):.0%} |")
    for k in extra[key]["old"]:
        eo, en = extra[key]["old"][k], extra[key]["new"].get(k, [])
        if eo and en:
            print(f"|  | ↳ {k} | {statistics.median(eo):.4g} | {statistics.median(en):.4g} | {statistics.median(en) / statistics.median(eo) if statistics.median(eo) else float('nan'):.3f} | | | {fmt(eo)} | {fmt(en)} | |")
