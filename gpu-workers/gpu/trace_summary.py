#!/usr/bin/env python3
"""Where a trial's time goes, from the Chrome trace `dtm bench --trace FILE` writes (PyTorch's legacy profiler).

For each timeline in the trace (CPU ops; on a GPU also their device time), only outermost ops count, so an op that
calls others is not counted twice; prints the ops with the largest total time, with the shapes of their inputs.
Usage: trace_summary.py TRACE.json [TOP] [TRIALS]
"""
import collections
import json
import sys

events = json.load(open(sys.argv[1]))
top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
trials = int(sys.argv[3]) if len(sys.argv) > 3 else 1
timelines = collections.defaultdict(list)
for e in events:
    if e.get("ph") == "X":
        timelines[(e.get("pid"), e.get("tid"))].append(e)
for (pid, tid), evs in sorted(timelines.items(), key=lambda kv: str(kv[0])):
    evs.sort(key=lambda e: (e["ts"], -e["dur"]))
    outer, end = [], -1.0
    for e in evs:
        if e["ts"] >= end:
            outer.append(e)
            end = e["ts"] + e["dur"]
    total = sum(e["dur"] for e in outer)
    by_op = collections.Counter()
    calls = collections.Counter()
    for e in outer:
        key = (e["name"], str(e.get("shape", ""))[:70])
        by_op[key] += e["dur"]
        calls[key] += 1
    print(f"== {pid} (thread {tid}): {total / 1000 / trials:.2f} ms per trial in {len(outer)} outermost ops")
    for (name, shape), dur in by_op.most_common(top):
        print(f"  {dur / 1000 / trials:7.3f} ms {100 * dur / total:5.1f}%  {calls[(name, shape)] // trials:4d}x  {name} {shape}")
