#!/usr/bin/env python3
# Per-phase timings of a container start: runs a command N times with
# BULWARK_PHASES=1 (bulwark then prints monotonic marks at each phase of
# create/start/delete, from the CLI and the init) and prints the median time
# of each mark since the fork and since the previous mark.
#   python3 bench/phases.py 30 bin/bulwark --root /run/x run -b BUNDLE ID
import subprocess, time, os, sys, collections
runs=int(sys.argv[1]); cmd=sys.argv[2:]
acc=collections.defaultdict(list)
for i in range(runs):
    env=dict(os.environ, BULWARK_PHASES="1")
    t0=time.clock_gettime(time.CLOCK_MONOTONIC)
    p=subprocess.run(cmd,env=env,stderr=subprocess.PIPE,text=True)
    t1=time.clock_gettime(time.CLOCK_MONOTONIC)
    prev=t0
    for line in p.stderr.splitlines():
        if not line.startswith("PHASE "): print(line); continue
        _,ts,pid,name=line.split(" ",3)
        ts=float(ts)
        acc[name].append(((ts-t0)*1000,(ts-prev)*1000)); prev=ts
    acc["END"].append(((t1-t0)*1000,(t1-prev)*1000))
import statistics
for k,v in acc.items():
    print("%-28s at %7.2f  +%6.2f"%(k,statistics.median(x[0] for x in v),statistics.median(x[1] for x in v)))
