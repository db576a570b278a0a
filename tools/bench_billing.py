"""Billing core benchmarks for docs/BENCHMARKS.md (CPython driver, MicroPython unix port runs).

    python tools/bench_billing.py [--runs 5] [--n 20000]

1. Load profile storage: bytes per 15-minute row and days held in a 512 KiB ring log
   (4 KiB sectors, 256-byte slots, lib/flashstore/ringlog.py) with 6 channels: the worst case
   (every value needs 16 bits) and the bundled household + PV trace of 2016 (a year of 15-minute
   rows: A+, A-, R+, R-, apparent interval energies in Wh and the last average demand in W),
   packed with billing.profile.
2. CPU per metering interval on the MicroPython unix port, modules compiled with mpy-cross:
   the existing metering step (Metering.step() on a table-driven SPI bus, as in
   host_tests/unit/test_metering.py) against the billing work of one 1-s interval
   (TariffClock.split + WindowDemand.feed + ThermalDemand.feed, with a plan of 6 switches a
   day, so switches and demand captures are included, amortised) and the cost of the rare
   paths. Reported as medians of --runs runs and as a ratio (the machine is noisy).
"""

import argparse
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "tools"), os.path.join(ROOT, "host_tests", "shim"),
                os.path.join(ROOT, "lib")]
from bench import BUILD, MPY, build  # noqa: E402

from billing import profile  # noqa: E402
from billing.profile import UNSIGNED, Layout, ProfileBuffer  # noqa: E402

LOAD = os.path.join(ROOT, "boards/sim/loads/household_pv_2016.csv")

_MP_SCRIPT = r"""
import time, gc
from billing import tou, tariff, demand
from billing.localtime import Zone, RULE_EU
from civil import seconds
import events
from ade7953 import ADE7953, Calibration
from energy import Registers, lsb_per_unit_q8
from metering import Metering
from energy.pulse import NoLoadGate, PulseOutput

N = %(n)d


class Bus:
    def __init__(self, t):
        self._t = t
        self._z = b"\x00\x00\x00"

    def write_readinto(self, w, r):
        v = self._t.get(w[1], self._z)
        r[3] = v[0]
        r[4] = v[1]
        r[5] = v[2]


class Pin:
    def value(self, v=None):
        return 1


class Clock:
    def __init__(self):
        self.now = 0

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, a, b):
        return a - b

    def ticks_add(self, a, b):
        return a + b

    def time(self):
        return 820000000 + self.now // 1000


def metering_us():
    clock = Clock()
    drv = ADE7953(Bus({0x1E: b"\x00\x01\x00", 0x20: b"\x00\x01\x00", 0x22: b"\x00\x01\x00"}),
                  Pin())
    cal = Calibration()
    lpw = lsb_per_unit_q8(cal.wh_per_lsb)
    m = Metering(drv, Registers(lpw, lpw, lpw), NoLoadGate(cal.vah_per_lsb), PulseOutput(lpw),
                 clock, events.EventLog(clock))
    m.ok = True
    clock.now += 1000
    m.step()
    gc.collect()
    t0 = time.ticks_us()
    for _ in range(N):
        clock.now += 1000
        m.step()
    return time.ticks_diff(time.ticks_us(), t0) / N


def plan():
    days = [{"day_id": 1, "day_schedule": [
        {"start_time": s, "script_selector": t} for s, t in (
            ("00:00", 1), ("06:00", 2), ("08:00", 3), ("12:00", 4), ("17:00", 5),
            ("22:00", 6))]}]
    w = {"week_profile_name": "w"}
    for d in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"):
        w[d] = 1
    return tou.load({"season_profile_active": [{"season_profile_name": "s",
                                                 "season_start": "01-01", "week_name": "w"}],
                     "week_profile_table_active": [w], "day_profile_table_active": days,
                     "special_days_table": [{"index": 1, "easter_offset": 1, "day_id": 1}]})


def billing_us(start):
    tc = tariff.TariffClock(plan(), Zone(60, RULE_EU))
    wd = demand.WindowDemand(900, 1, demand.RESUME, demand.Maxima())
    th = demand.ThermalDemand(900, demand.Maxima())
    out = [0] * 7
    t = start
    tc.split(t - 1, t, 1000, out)
    wd.feed(t, 1000, 1)
    th.feed(t, 1000, 1)
    gc.collect()
    t0 = time.ticks_us()
    for k in range(N):
        t += 1
        e = 500 + (k & 1023)
        tc.split(t - 1, t, e, out)
        tar = tc._t
        wd.feed(t, e, tar)
        th.feed(t, e, tar)
    us = time.ticks_diff(time.ticks_us(), t0) / N
    return us, tc.recomputes, wd.captures


def rare_us(start):
    # a tariff recompute (switch), a block-demand capture: one each, repeated
    tc = tariff.TariffClock(plan(), Zone(60, RULE_EU))
    n = 2000
    gc.collect()
    t0 = time.ticks_us()
    for k in range(n):
        tc._lo, tc._hi = 1, 0
        tc.tariff(start + k)
    rec = time.ticks_diff(time.ticks_us(), t0) / n
    wd = demand.WindowDemand(900, 1, demand.RESUME, demand.Maxima())
    wd.feed(start, 0)
    t = start
    gc.collect()
    t0 = time.ticks_us()
    for k in range(n):
        t += 900
        wd.feed(t, 1000, 1)
    cap = time.ticks_diff(time.ticks_us(), t0) / n
    return rec, cap


s = seconds(2026, 5, 4, 5)
m = metering_us()
b, rc, cp = billing_us(s)
r, c = rare_us(s)
print("RESULT %%.2f %%.2f %%d %%d %%.2f %%.2f" %% (m, b, rc, cp, r, c))
"""


def mp_run(n):
    env = dict(os.environ, MICROPYPATH=".frozen:%s/firmware:%s/lib:%s" % (BUILD, BUILD, BUILD))
    p = subprocess.run([MPY, "-X", "heapsize=4m", "-c", _MP_SCRIPT % {"n": n}], cwd=ROOT,
                       env=env, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(p.stderr)
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT")][-1].split()
    return [float(x) for x in line[1:]]


def six_channels(layout_id=1):
    return Layout(layout_id, 900, (("1.29", "kWh", 3, UNSIGNED), ("2.29", "kWh", 3, UNSIGNED),
                                   ("3.29", "kvarh", 3, UNSIGNED),
                                   ("4.29", "kvarh", 3, UNSIGNED),
                                   ("9.29", "kVAh", 3, UNSIGNED), ("1.5", "kW", 3, UNSIGNED)))


def trace_rows():
    """A year of 15-minute rows from the bundled trace (power holds row to row)."""
    pts = []
    with open(LOAD) as f:
        next(f)
        for ln in f:
            t, p, q = ln.strip().split(",")
            pts.append((int(float(t)), float(p), float(q)))
    rows = []
    for i in range(len(pts) - 1):
        t, p, q = pts[i]
        h = (pts[i + 1][0] - t) / 3600.0
        s = (p * p + q * q) ** 0.5
        rows.append((820454400 + pts[i + 1][0], 0,
                     (round(max(p, 0) * h), round(max(-p, 0) * h), round(max(q, 0) * h),
                      round(max(-q, 0) * h), round(s * h), round(max(p, 0)))))
    return rows


def pack_stats(layout, rows):
    buf = ProfileBuffer(layout)  # max_rows 96, as the wiring will use
    recs = 0
    for t, st, v in rows:
        if buf.add(t, st, v) is not None:
            recs += 1
    if buf.flush() is not None:
        recs += 1
    return recs


def storage_report():
    lay = six_channels()
    kept_recs = profile.capacity(lay, 1)[0]
    print("## Load profile storage: 6 channels, 15-minute rows, 512 KiB ring log\n")
    print("ring log: 4 KiB sectors, 256-byte slots (16-byte record header + 240-byte payload),"
          " 15 records per sector, 1 sector kept erased + 1 dropped at wrap-around: %d records"
          " always kept\n" % kept_recs)
    print("| data | rows per record | flash bytes per row | days kept in 512 KiB |")
    print("|---|---:|---:|---:|")
    worst = lay.rows_per_record(16)
    wrows = [(k * 900, 0, (65535,) * 6) for k in range(1, 96 * 30 + 1)]
    wrecs = pack_stats(lay, wrows)
    assert wrecs == -(-len(wrows) // worst)
    _r, rows_kept, days = profile.capacity(lay, worst)
    print("| worst case: every value 16 bits (%d-byte header + %d x 12 B) | %d | %.2f | %.1f |"
          % (lay.head, worst, worst, 4096 / (15 * worst), days))
    rows = trace_rows()
    recs = pack_stats(lay, rows)
    per = len(rows) / recs
    print("| household + PV 2016 trace (%d rows, %d records) | %.1f | %.2f | %.0f |"
          % (len(rows), recs, per, 4096 / (15 * per), kept_recs * per / 96))
    from flashstore.ringlog import slot_size

    slot = slot_size(16 + 17, 256)
    per_sector = 4096 // slot - 1
    print("\nfor comparison, one row per record (6 x u16 + status + u32 time = 17 B payload): "
          "%d-byte slots, %d rows per sector, %.1f flash bytes per row, %.0f days\n"
          % (slot, per_sector, 4096 / per_sector, 126 * per_sector / 96))


def cpu_report(runs, n):
    build()
    res = [mp_run(n) for _ in range(runs)]
    m = statistics.median(r[0] for r in res)
    b = statistics.median(r[1] for r in res)
    rec = statistics.median(r[4] for r in res)
    cap = statistics.median(r[5] for r in res)
    print("## CPU per 1-s metering interval (MicroPython unix port, .mpy, %d intervals, "
          "median of %d runs)\n" % (n, runs))
    ratio = statistics.median(r[1] / r[0] for r in res)  # per run: both timed in one process
    print("| work | us per call | ratio to the metering step (median of per-run ratios) |")
    print("|---|---:|---:|")
    print("| metering step (`Metering.step()`, 4 SPI frames, gate, registers, LED) | %.1f | 1 |"
          % m)
    print("| billing per interval: `TariffClock.split` + `WindowDemand.feed` + "
          "`ThermalDemand.feed` (amortised: %d tariff recomputes, %d demand captures) | %.1f |"
          " %.2f |" % (res[0][2], res[0][3], b, ratio))
    print("| rare: tariff window recompute (at a switch, midnight or DST) | %.1f | %.2f |"
          % (rec, statistics.median(r[4] / r[0] for r in res)))
    print("| rare: block demand capture (end of a 15-min period, maxima) | %.1f | %.2f |"
          % (cap, statistics.median(r[5] / r[0] for r in res)))
    print("\nruns (metering, billing us): %s\n" % ", ".join("%.1f/%.1f" % (r[0], r[1])
                                                        for r in res))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--n", type=int, default=20000)
    a = ap.parse_args()
    storage_report()
    cpu_report(a.runs, a.n)


if __name__ == "__main__":
    main()
