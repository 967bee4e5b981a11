"""A job that really allocates ``need`` MB and holds it, like a tool with a known footprint.

    python allocate.py NEED_MB LIMIT_MB HOLD_S OUT LEDGER [--outcome FILE] [--enforce]

``--enforce`` makes it behave like a Java tool with -Xmx: when ``need`` exceeds its ``limit`` it
fails with exit 3 (as -XX:+ExitOnOutOfMemoryError does) after half its run. Each run appends
``{need, limit, start, held, end, ok, rss_mb}`` to LEDGER (for measuring what ran at once; ``held``
is when its ``need`` MB became resident, ``rss_mb`` the process's own peak resident memory, the
interpreter included) and, with
``--outcome``, ``{kind, need_mb, mem_mb}`` to that file (what the chromosched scheduler reads).
"""

import argparse
import json
import os
import resource
import time

p = argparse.ArgumentParser()
p.add_argument("need", type=int)
p.add_argument("limit", type=int)
p.add_argument("hold", type=float)
p.add_argument("out")
p.add_argument("ledger")
p.add_argument("--outcome")
p.add_argument("--enforce", action="store_true")
a = p.parse_args()


def peak_rss_mb():
    """This process's peak resident set (ru_maxrss is in KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def append(path, item):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(item) + "\n")


start = time.time()
if a.enforce and a.need > a.limit:
    time.sleep(a.hold / 2)
    entry = {"out": a.out, "need": a.need, "limit": a.limit, "start": start, "end": time.time(), "ok": False}
    append(a.ledger, {**entry, "rss_mb": peak_rss_mb()})
    if a.outcome:
        append(a.outcome, {"kind": "heap_oom", "mem_mb": a.limit})
    raise SystemExit(3)
block = bytearray(a.need * 2**20)
for i in range(0, len(block), 4096):  # touch every page so it is resident
    block[i] = 1
held = time.time()
time.sleep(a.hold)
entry = {"out": a.out, "need": a.need, "limit": a.limit, "start": start, "held": held, "end": time.time(), "ok": True}
append(a.ledger, {**entry, "rss_mb": peak_rss_mb()})
if a.outcome:
    append(a.outcome, {"kind": "ok", "need_mb": a.need, "mem_mb": a.limit})
with open(a.out, "w") as fh:
    fh.write(f"{a.need}\n")
