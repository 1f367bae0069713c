#!/usr/bin/env python3
"""Run a command N times and report wall time and peak RSS (of the child, via wait4).

usage: ingest_measure.py LABEL RUNS [--env K=V ...] [--before 'shell cmd'] [--stdin FILE] -- CMD...
Prints one JSON line: {"label", "runs": [{"wall_s", "max_rss_mb", "cpu_s"}...], "median_wall_s",
"p95_wall_s", "median_max_rss_mb", "median_cpu_s"} (cpu_s: the child's user + system CPU
seconds) and writes the last run's stdout to $MEASURE_STDOUT if set.
`--before` runs before each run, untimed; `--stdin` feeds the file to each run.
"""
import json, os, statistics, subprocess, sys, time

def main():
    args = sys.argv[1:]
    label, runs = args[0], int(args[1])
    rest = args[2:]
    env = dict(os.environ)
    before = None
    stdin_file = None
    while rest and rest[0] != "--":
        if rest[0] == "--env":
            k, v = rest[1].split("=", 1); env[k] = v; rest = rest[2:]
        elif rest[0] == "--before":
            before = rest[1]; rest = rest[2:]
        elif rest[0] == "--stdin":
            stdin_file = rest[1]; rest = rest[2:]
        else:
            sys.exit(f"unknown option {rest[0]}")
    cmd = rest[1:]
    out_path = os.environ.get("MEASURE_STDOUT")
    results = []
    for _ in range(runs):
        if before:
            subprocess.run(before, shell=True, check=True)
        with open(out_path or os.devnull, "wb") as out, open(stdin_file or os.devnull, "rb") as sin:
            t0 = time.perf_counter()
            p = subprocess.Popen(cmd, stdin=sin, stdout=out, stderr=subprocess.PIPE, env=env)
            _, status, ru = os.wait4(p.pid, 0)
            wall = time.perf_counter() - t0
            err = p.stderr.read().decode(errors="replace")
            p.stderr.close()
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{label}: command failed ({status}): {' '.join(cmd)}\n{err}")
        results.append({"wall_s": round(wall, 4), "max_rss_mb": round(ru.ru_maxrss / 1024, 1), "cpu_s": round(ru.ru_utime + ru.ru_stime, 3), "stderr_tail": err.strip().splitlines()[-1:] })
    print(json.dumps({
        "label": label,
        "runs": results,
        "median_wall_s": round(statistics.median(r["wall_s"] for r in results), 4),
        "p95_wall_s": round(sorted(r["wall_s"] for r in results)[min(len(results) - 1, round(0.95 * (len(results) - 1)))], 4),
        "median_max_rss_mb": round(statistics.median(r["max_rss_mb"] for r in results), 1),
        "median_cpu_s": round(statistics.median(r["cpu_s"] for r in results), 3),
    }))

if __name__ == "__main__":
    main()
