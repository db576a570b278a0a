#!/usr/bin/env python3
"""Which consumer of the wired metering step allocates, on an emulated 32-bit core.

    python3 tools/emu/step_probe.py [--board MPS2_AN385] [--wh 12000000] [--steps 120]
                                    [--warm 1] [--start S ...]

Builds the unit-test image (tools/emu/emu.py) and runs on it ``app.Meter`` on the virtual
board without flash, with a board-like clock (host_tests/unit/simkit.ManualClock, with
``seconds_since`` as boards/board.py's clock: no long int per call; the virtual board's own
clock computes in ms since 2000, a long int on a 32-bit core) whose RTC starts at each
``--start`` (s since 2000-01-01 UTC), every register at ``--wh`` and the chip's read
replaced by a fixed one (20 000 / 6 000 / 22 000 LSB a second). After ``--warm`` unlocked
seconds (the first interval after boot is each consumer's first timed one, a boundary),
each second: the step without its consumers, then each consumer's ``interval`` under
``micropython.heap_lock()``; one that raises MemoryError is counted and called again
unlocked, so that its state moves on as on a device. Prints per start the
count of heap-locked failures by consumer (docs/BENCHMARKS.md, "Adversarial pass").
Deterministic (no wall clock). Stdlib only.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import emu  # noqa: E402

CODE = """
import gc, micropython, sys
import emu_unit
emu_unit.setup()
from boards.sim.board import Options, SimBoard
from simkit import ManualClock, StepTrace
import app

def probe(start, wh, steps, warm):
    o = Options()
    o.quiet = True
    o.no_flash = True
    o.speed = 0.0
    board = SimBoard(o, trace=StepTrace([(0, 1000000, 0)]))
    board.clock = clock = ManualClock(t0=start)
    meter = app.Meter(board)
    m = meter.metering
    ade = m.ade

    def fixed():
        ade.e_active = 20000
        ade.e_reactive = 6000
        ade.e_apparent = 22000
        ade.irq_status = 0
        ade.overflow = 0
        ade.over_range = 0
        return 0

    ade.read_energy = fixed
    r = meter.registers
    for i in range(8):
        r.whole[i] = wh
    meter.tariffs.resync()
    meter.tariffs.reconcile()
    m.ok = True
    m.up = True
    m._last_ms = clock.ticks_ms()
    cons = m.consumers
    m.consumers = ()
    fails = {}
    for k in range(warm + steps):
        clock.now += 1000
        m.step()
        if k < warm:
            for c in cons:
                c.interval(20000, 6000, 22000, 1000)
            continue
        for c in cons:
            micropython.heap_lock()
            try:
                c.interval(20000, 6000, 22000, 1000)
                bad = 0
            except MemoryError:
                bad = 1
            micropython.heap_unlock()
            if bad:
                n = type(c).__name__
                fails[n] = fails.get(n, 0) + 1
                c.interval(20000, 6000, 22000, 1000)
    print("PROBE start=%%d steps=%%d failures=%%r" %% (start, steps, fails))
    m.consumers = cons

for s in %r:
    try:
        probe(s, %d, %d, %d)
    except Exception as e:
        micropython.heap_unlock()
        print("PROBE start=%%d raised" %% s)
        sys.print_exception(e)
    gc.collect()
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--board", choices=sorted(emu.BOARDS), default="MPS2_AN385")
    ap.add_argument("--wh", type=int, default=12000000, help="every register (Wh)")
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--warm", type=int, default=1,
                    help="steps run unlocked first (the first interval after boot gives "
                         "each consumer its time: a boundary)")
    ap.add_argument("--start", type=int, nargs="+",
                    default=[504921600, (1 << 30) - 10, (1 << 30) + 86400, (1 << 31) - 10,
                             (1 << 32) - 200],
                    help="RTC at t = 0 (s since 2000; default 2016, 10 s before 2**30 "
                         "= 2034-01-10, a day after it, 10 s before 2**31 = 2068-01-19, "
                         "200 s before 2**32 = 2136-02-07)")
    a = ap.parse_args()
    elf = emu.build(a.board)
    code = CODE % (tuple(a.start), a.wh, a.steps, a.warm)
    out = emu.run_code(a.board, elf, code, timeout=900, icount=0)
    sys.stdout.write("".join(ln + "\n" for ln in out.splitlines() if "PROBE" in ln or
                             "Error" in ln or "File" in ln))
    return 0


if __name__ == "__main__":
    sys.exit(main())
