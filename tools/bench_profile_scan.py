# The load profile read for the uplink: event-loop work of one read over a full ring.
"""Usage: MICROPYPATH=.frozen:.frozen-lib:firmware:lib:.:host_tests/unit .venv/bin/micropython
-X heapsize=64m tools/bench_profile_scan.py [rows] [repeats]

A load profile (meter.profile.LoadProfile, the default six channels, 15-minute rows) on a
512 KiB NOR partition (the virtual board's profile partition) filled with ``rows`` rows
(default 35 040: a year), then these reads, each timed (real us, unix port; the median and
the minimum over ``repeats`` runs, default 5):

- ``oldest first``: the rows of the last quarter hour as ``Uplink.profile_bodies`` read them
  every 15 minutes before session 7 (``iter_rows(from, to)``: every record's header from the
  oldest on, in one round of the event loop);
- ``range, one round``: the same read with ``tick`` 32 (``Uplink.range_scan``, the uplink's
  ``profile`` range answer): the longest stretch between two yields;
- ``range, all rounds``: its total;
- ``schedule``: the read ``Uplink.profile_bodies`` does now (``rows_since(cursor, to, 96,
  32)``: newest first back to the cursor), the cursor a quarter hour back (the usual case),
  a day back (96 rows) and a week back (the 96 oldest of 672 rows, e.g. after the outbox
  refused rows for a while): the longest round, all rounds, and the records of the ring
  read (headers back to the cursor, then the records of the rows taken again);
- the ``profile`` range answer's time index (``ProfileStore.index_steps``, built once a
  start) and ranges of the last day, the last week and the first week of the ring, read
  oldest first (``iter_rows``, before) and through the index (``range_rows``, after): the
  longest round, all rounds, the records read."""

import sys
import time

from boards.sim.norflash import NORFlash
from energy import A_PLUS, Q1
from flashstore.flash import Partition
from test_load_profile import Clk, _prof, _regs


def _filled(n):
    nor = NORFlash(512 * 1024, 4096, 256)
    clk = Clk()
    regs = _regs()
    p = _prof(clk, regs, Partition(nor, 0, 512 * 1024), period=900)
    for k in range(n):
        clk.now += 900000
        regs.whole[A_PLUS] += 250 + k % 97
        regs.whole[Q1] += 31
        p.interval(0, 0, 0, 900000)
        p.service()
    return p, clk.time()


def _since(p, cur, t_to):
    # (longest round us, all rounds us, rows) of the schedule's read
    box = []

    def run():
        box.append((yield from p.rows_since(cur, t_to, 96, 32)))

    worst = 0
    t_all = t1 = time.ticks_us()
    for _x in run():
        t2 = time.ticks_us()
        worst = max(worst, time.ticks_diff(t2, t1))
        t1 = t2
    t2 = time.ticks_us()
    worst = max(worst, time.ticks_diff(t2, t1))
    return worst, time.ticks_diff(t2, t_all), len(box[0])


def _stats(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2], xs[0]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 35040
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    p, t_end = _filled(n)
    recs = sum(1 for _ in p.store.records())
    sched = []
    longest = []
    total = []
    for _ in range(reps):
        t0 = time.ticks_us()
        got = sum(1 for _r in p.iter_rows(t_end - 899, t_end))
        sched.append(time.ticks_diff(time.ticks_us(), t0))
        worst = 0
        t_all = t1 = time.ticks_us()
        for r in p.iter_rows(t_end - 899, t_end, 32):
            if r is None:
                t2 = time.ticks_us()
                worst = max(worst, time.ticks_diff(t2, t1))
                t1 = t2
        t2 = time.ticks_us()
        worst = max(worst, time.ticks_diff(t2, t1))
        longest.append(worst)
        total.append(time.ticks_diff(t2, t_all))
    ring = p.store.main
    slot = ring._slot_record
    reads = [0]

    def counted(s, k):
        reads[0] += 1
        return slot(s, k)

    ring._slot_record = counted
    res = []
    for back in (900, 86400, 7 * 86400):
        one = []
        whole = []
        for _ in range(reps):
            reads[0] = 0
            w, a, rows = _since(p, t_end - back, t_end)
            one.append(w)
            whole.append(a)
        res.append(("schedule, %d s back: longest round" % back, one, rows, reads[0]))
        res.append(("schedule, %d s back: all rounds" % back, whole, rows, reads[0]))
    # the range answer (Uplink's ``profile`` command) through the time index: its build
    # (once a start, by the uplink's start-up), then ranges of the last day / week and one
    # of the first week, each with iter_rows (before) and range_rows (after)
    reads[0] = 0
    build = []
    t1 = time.ticks_us()
    for _x in p.store.index_steps(32):
        t2 = time.ticks_us()
        build.append(time.ticks_diff(t2, t1))
        t1 = t2
    build.append(time.ticks_diff(time.ticks_us(), t1))
    res.append(("index build: longest round", [max(build)], len(build), reads[0]))
    res.append(("index build: all rounds", [sum(build)], len(build), reads[0]))
    t_first = t_end - 900 * (n - 1)
    for name, a, b in (("range, the last day", t_end - 86400 + 1, t_end),
                       ("range, the last week", t_end - 7 * 86400 + 1, t_end),
                       ("range, the first week", t_first, t_first + 7 * 86400 - 1)):
        for how in ("iter_rows", "range_rows"):
            one = []
            whole = []
            for _ in range(reps):
                reads[0] = 0
                fn = p.iter_rows if how == "iter_rows" else p.range_rows
                worst = rows = 0
                t_all = t1 = time.ticks_us()
                for r in fn(a, b, 32):
                    if r is None:
                        t2 = time.ticks_us()
                        worst = max(worst, time.ticks_diff(t2, t1))
                        t1 = t2
                    else:
                        rows += 1
                t2 = time.ticks_us()
                worst = max(worst, time.ticks_diff(t2, t1))
                one.append(worst)
                whole.append(time.ticks_diff(t2, t_all))
            res.append(("%s, %s: longest round" % (name, how), one, rows, reads[0]))
            res.append(("%s, %s: all rounds" % (name, how), whole, rows, reads[0]))
    print("rows %d, records %d, rows in the last quarter hour %d" % (n, recs, got))
    for name, xs in (("oldest first (one round)", sched),
                     ("range, one round (tick 32)", longest), ("range, all rounds", total)):
        med, lo = _stats(xs)
        print("%-40s median %7.2f ms  min %7.2f ms" % (name, med / 1000, lo / 1000))
    for name, xs, rows, nr in res:
        med, lo = _stats(xs)
        print("%-52s median %7.2f ms  min %7.2f ms  (%d rows, %d records read)" % (
            name, med / 1000, lo / 1000, rows, nr))


main()
