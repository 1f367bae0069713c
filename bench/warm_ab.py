#!/usr/bin/env python3
"""Warm re-run A/B: one cold run of each binary fills its own store, then N alternating warm
runs of `ccc report daily --source claude --json`; prints the median user+sys CPU (wait4) of
each and their ratio. usage: bench/warm_ab.py OLD_BIN NEW_BIN CLAUDE_CORPUS [N]"""
import os, resource, subprocess, sys, statistics, shutil, json
C=sys.argv[3]
bins={"old":sys.argv[1],"new":sys.argv[2]}
res={k:[] for k in bins}
env=dict(os.environ); env.pop("TZ",None)
for k,b in bins.items():
    d=f"/tmp/r14_warm_{k}"; shutil.rmtree(d, ignore_errors=True)
    subprocess.run([b,"--data-dir",d,"ccc","report","daily","--source","claude","--path",C,"--json"],stdout=subprocess.DEVNULL,check=True,env=env)
outs={}
for r in range(int(sys.argv[4]) if len(sys.argv) > 4 else 20):
    for k,b in bins.items():
        d=f"/tmp/r14_warm_{k}"
        pid=os.fork()
        if pid==0:
            fd=os.open("/tmp/r14_out_"+k, os.O_WRONLY|os.O_CREAT|os.O_TRUNC); os.dup2(fd,1)
            os.execve(b,[b,"--data-dir",d,"ccc","report","daily","--source","claude","--path",C,"--json"],env)
        _,st,ru=os.wait4(pid,0)
        assert st==0
        res[k].append(ru.ru_utime+ru.ru_stime)
print({k:round(statistics.median(v),4) for k,v in res.items()}, "new/old", round(statistics.median(res["new"])/statistics.median(res["old"]),3), "runs", len(res["old"]))
print(json.dumps({k:[round(x,4) for x in v] for k,v in res.items()}))
