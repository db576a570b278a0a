# The uplink's ``log`` range answer: event-loop work per round with a full event store.
"""Usage: MICROPYPATH=.frozen:.frozen-lib:firmware:lib:.:host_tests/unit .venv/bin/micropython
tools/bench_log_scan.py [records] [repeats]

The whole meter of the virtual board (as host_tests/unit/test_protocols._meter builds it),
its event store filled with ``records`` events (default 600: both rings of the virtual
board's 64 KiB partition turned over), then a ``log`` request whose range holds no entry
(the worst case: every record read, no page sent). Prints per variant the rounds, the
records read in the longest round and the longest round's time (real ms, unix port; the
median over ``repeats`` runs, default 5): ``scan 32`` is the uplink as built
(``Uplink.range_scan``), ``scan 0`` the earlier whole-store scan in one round."""

import json
import sys
import time

import events
from test_protocols import _meter


def run(up, es, t, scan):
    up.range_scan = scan
    up._range = None
    req = {"id": 1, "cmd": "log", "log": "disconnector", "from": 0, "to": t + 86400}
    up._answer(json.dumps(req).encode())
    worst = 0
    rounds = 0
    while True:
        t0 = time.ticks_us()
        page = next(up._range, None)
        d = time.ticks_diff(time.ticks_us(), t0)
        rounds += 1
        if d > worst:
            worst = d
        if page is None:
            return rounds, worst


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    board, m, d = _meter()
    up = m.uplink
    up.setup()
    es = m.events
    t = board.clock.time()
    for k in range(n):
        es.persist(t, events.PARAM_CHANGED if k % 2 else events.CLOCK_INVALID, k)
    kept = sum(1 for _ in es.iter_persisted())
    for scan in (32, 0):
        w = []
        r = 0
        for _ in range(reps):
            r, us = run(up, es, t, scan)
            w.append(us)
        w.sort()
        print("scan %d: %d records kept, %d rounds, longest round %.1f ms (median of %d; "
              "runs %s)" % (scan, kept, r, w[len(w) // 2] / 1000, reps,
                            ", ".join("%.1f" % (x / 1000) for x in w)))


main()
