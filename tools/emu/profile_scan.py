#!/usr/bin/env python3
"""The uplink's scheduled load-profile read on an emulated core, in instructions.

    python3 tools/emu/profile_scan.py [--board MPS2_AN385]

Builds the unit-test image (tools/emu/emu.py) and runs on it, under ``-icount shift=0`` (one
instruction = 1 ns of virtual time, so ``time.ticks_us`` counts thousands of instructions;
deterministic): a load profile (meter.profile.LoadProfile, the default six channels, 15-min
rows) on a 512 KiB NOR image (outside the heap on MPS2_AN385) filled with a year of rows,
built directly from records of as many rows as the codec packs (48), then the reads of
tools/bench_profile_scan.py: ``iter_rows`` of the last quarter hour (the schedule's read
before session 7: the ring from its oldest record, one round) and ``rows_since`` with the
cursor a quarter hour, a day and a week back (longest round between two yields, all
rounds). docs/BENCHMARKS.md "The load profile read for the uplink". Stdlib only.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import emu  # noqa: E402

CODE = """
import emu_unit
emu_unit.setup()
import gc
import time
from boards.sim.norflash import NORFlash
from flashstore.flash import Partition
from energy import Registers
from meter.profile import LoadProfile, TAG_MAIN, DEFAULT
from billing import profile as bp
from simkit import ManualClock
from simkit import MeterStub
T0 = 825638400  # 2026-03-01 (s since 2000): small ints
clk = ManualClock(T0)
p = LoadProfile(Registers(256, 256, 256), MeterStub(), clk, DEFAULT[0],
                Partition(NORFlash(512 * 1024, 4096, 256), 0, 512 * 1024))
p.start()
buf = bp.ProfileBuffer(p.layout, 48)
rec = None
i = 0
while rec is None:  # the first record the codec closes (as many rows as fit)
    i += 1
    rec = buf.add(T0 + 900 * i, 0, [250 + i % 97, 0, 31, 0, (250 + i % 97) * 4, 2301])
rec = bytearray(rec)
K = rec[1]
N = 35040 // K
ring = p.store.main
for r in range(N):
    t = T0 + 900 + r * K * 900
    rec[2] = t & 0xFF
    rec[3] = (t >> 8) & 0xFF
    rec[4] = (t >> 16) & 0xFF
    rec[5] = (t >> 24) & 0xFF
    ring.append(rec, TAG_MAIN)
t_end = T0 + N * K * 900 + 900
p.buf.add(t_end, 0, [1, 0, 0, 0, 4, 2300])  # the open record: the last quarter hour
nrec = sum(1 for _ in p.store.records())
gc.collect()
def us(f):
    gc.collect()
    t0 = time.ticks_us()
    f()
    return time.ticks_diff(time.ticks_us(), t0)
def old():
    assert sum(1 for _ in p.iter_rows(t_end - 899, t_end)) == 1
def since(back):
    box = []
    def run():
        box.append((yield from p.rows_since(t_end - back, t_end, 96, 32)))
    worst = 0
    t0 = t1 = time.ticks_us()
    for _x in run():
        t2 = time.ticks_us()
        worst = max(worst, time.ticks_diff(t2, t1))
        t1 = t2
    t2 = time.ticks_us()
    worst = max(worst, time.ticks_diff(t2, t1))
    return worst, len(box[0]), time.ticks_diff(t2, t0)
print("SCAN records=%d rows_per_record=%d" % (nrec, K))
print("SCAN old_us=%d" % us(old))
for back in (900, 86400, 7 * 86400):
    gc.collect()
    w, n, a = since(back)
    print("SCAN since_%d longest_round_us=%d all_us=%d rows=%d" % (back, w, a, n))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--board", default="MPS2_AN385")
    a = ap.parse_args()
    elf = emu.build(a.board)
    out = emu.run_code(a.board, elf, CODE, timeout=900, icount=0)
    sys.stdout.write(out)
    if "SCAN since_604800" not in out:
        raise SystemExit("profile_scan on %s failed" % a.board)


if __name__ == "__main__":
    main()
