# Micro-benchmarks of the virtual board's hot paths (issue 12): the SPI frame, the metering read
# and the virtual clock's release. Time it from outside (user CPU: /usr/bin/time).
"""Usage (MicroPython unix port, from the repository root):

    MICROPYPATH=.frozen:.frozen-lib:firmware:lib:. /usr/bin/time -f "%U %S" \\
        .venv/bin/micropython tools/bench_sim_path.py MODE N

MODE ``frame``: N register reads (LAST_RWDATA_24, 3 bytes) through the driver's ``_word``, the
CS pin, ``boards/sim/hw.SimSPI`` and ``ADE7953Model`` (a constant 1 kW / 200 var trace);
``read``: N ``ADE7953.read_energy()`` (10 frames and the model's energy integration) 1 s of
metering time apart; ``clock``: 8 tasks sleeping 1000 ms on ``VirtualClock(speed=0)`` for N
simulated s (8 N releases); ``none``: start-up only (subtract it). Prints a check line that
must be the same before and after a change."""

import asyncio
import sys

sys.path.insert(0, "firmware")

from ade7953 import ADE7953  # noqa: E402

import boards.sim.hw as hw  # noqa: E402
from boards.sim.ade7953_model import ADE7953Model  # noqa: E402
from boards.sim.clock import VirtualClock  # noqa: E402


class _Trace:
    def __init__(self):
        self.r = (1000000, 200000, None)

    def at(self, t):
        return self.r


class _Clk:
    def __init__(self):
        self.t = 0

    def now(self):
        return self.t


def _chip():
    clk = _Clk()
    m = ADE7953Model(_Trace(), clk.now)
    clk.t = 100
    m.irq_pin()  # past the 40 ms power-up
    if hasattr(hw, "ChipSelect"):
        cs = hw.ChipSelect("ADE_CS", m)
    else:  # (a tree before it)
        cs = hw.SimPin("ADE_CS", 1, on_change=m.select)
    d = ADE7953(hw.SimSPI(m), cs)
    d.write(0x004, 0x40)  # LCYCMODE.RSTREAD
    return clk, m, d


def _clock(n):
    clk = VirtualClock(speed=0)
    count = [0]

    async def sleeper():
        while True:
            await clk.sleep_ms(1000)
            count[0] += 1

    async def main():
        for _ in range(8):
            asyncio.create_task(sleeper())
        await clk.sleep_ms(n * 1000)
        clk.stopped = True

    asyncio.run(main())
    print("check", count[0], clk.releases)


def main():
    mode, n = sys.argv[1], int(sys.argv[2])
    if mode == "clock":
        _clock(n)
        return
    clk, m, d = _chip()
    if mode == "frame":
        w = d._word
        for _ in range(n):
            w(0x2FF)
    elif mode == "read":
        r = d.read_energy
        for _ in range(n):
            clk.t += 1000
            r()
    print("check", d.e_active, d.e_reactive, d.e_apparent, m.reads)


main()
