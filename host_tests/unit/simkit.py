"""Test helpers: an ADE7953 driver wired to the register model on a manual clock."""

import sys

from ade7953 import ADE7953
from boards.sim.ade7953_model import ADE7953Model
from boards.sim.hw import SimPin, SimSPI

MICROPYTHON = sys.implementation.name == "micropython"


class ManualClock:
    """Metering clock moved by hand (ms)."""

    def __init__(self):
        self.now = 0

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, a, b):
        return a - b

    def ticks_add(self, a, b):
        return a + b

    def time(self):
        return 504921600 + self.now // 1000

    async def sleep_ms(self, ms):
        self.now += ms


class StepTrace:
    """Rows of (t_ms, p_mw, q_mvar); power holds from each row to the next."""

    def __init__(self, rows):
        self.rows = rows

    def at(self, t):
        cur = (0, 0)
        nxt = None
        for i in range(len(self.rows)):
            r = self.rows[i]
            if r[0] <= t:
                cur = (r[1], r[2])
                nxt = self.rows[i + 1][0] if i + 1 < len(self.rows) else None
            else:
                if i == 0:
                    nxt = r[0]
                break
        return cur[0], cur[1], nxt


def chip(rows, fault=None, v_mv=230000):
    """(clock, model, driver) for a trace given as rows."""
    clock = ManualClock()
    model = ADE7953Model(StepTrace(rows), clock.ticks_ms, v_mv=v_mv, fault=fault)
    cs = SimPin("CS", 1, on_change=model.select)
    spi = SimSPI(model)
    irq = SimPin("IRQ", source=model.irq_pin)
    reset = SimPin("RESET", 1, on_change=model.reset_pin)
    drv = ADE7953(spi, cs, irq, reset)
    return clock, model, drv


def run(coro):
    """Run a coroutine that only awaits the manual clock (no event loop needed)."""
    try:
        coro.send(None)
        while True:
            coro.send(None)
    except StopIteration as e:
        return e.value if hasattr(e, "value") else None


def started(rows, **kw):
    clock, model, drv = chip(rows, **kw)
    run(drv.begin(clock.sleep_ms))
    return clock, model, drv
