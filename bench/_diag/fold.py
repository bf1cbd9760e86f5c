"""Summarise bench/results/diag-*/stacks.txt: self and inclusive time per function, per thread kind.

    .venv/bin/python bench/_diag/fold.py bench/results/diag-movement/stacks.txt [--top 30]
"""

import argparse
import collections

parser = argparse.ArgumentParser()
parser.add_argument("stacks")
parser.add_argument("--top", type=int, default=30)
args = parser.parse_args()

IDLE = {"selectors.py:select", "thread.py:_worker", "threading.py:wait", "queue.py:get"}
for kind in ("main", "thread"):
    selfc, incl = collections.Counter(), collections.Counter()
    total = busy = 0
    for line in open(args.stacks):
        n, stack = line.rstrip("\n").split(" ", 1)
        parts = stack.split(";")
        if parts[0] != kind:
            continue
        n, frames = int(n), parts[1:]
        total += n
        if frames[-1] in IDLE or (kind == "thread" and "thread.py:_worker" == frames[-1]):
            selfc["<idle> " + frames[-1]] += n
            continue
        busy += n
        selfc[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    if not total:
        continue
    print(f"== {kind} thread(s): {total} samples, {100 * busy / total:.1f}% not idle")
    print("-- self")
    for f, n in selfc.most_common(args.top):
        print(f"{100 * n / total:5.1f}% {f}")
    print("-- inclusive (busy samples only)")
    for f, n in incl.most_common(args.top):
        print(f"{100 * n / total:5.1f}% {f}")
