"""Test helpers: an ADE7953 driver wired to the register model on a manual clock."""

import sys

from ade7953 import ADE7953
from boards.sim.ade7953_model import ADE7953Model
from boards.sim.hw import SimPin, SimSPI

MICROPYTHON = sys.implementation.name == "micropython"
EPOCH_2016 = 504921600  # 2016-01-01 00:00:00 UTC in s since 2000-01-01


class ManualClock:
    """Metering clock moved by hand (``now``, ms) and an RTC running with it: ``time()`` is
    ``t0`` (s since 2000-01-01 UTC; default 2016-01-01, the bundled load's first row) plus
    the ms moved, ``set_time(s)`` sets the RTC (keeping the sub-second phase) and makes it
    valid (``rtc_valid``). Small ints only on the ``time()`` path (heap-locked steps)."""

    def __init__(self, t0=EPOCH_2016):
        self.now = 0
        self._s0 = t0
        self._ms0 = 0
        self._sb = None
        self._sd = 0
        self.rtc_valid = True

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, a, b):
        return a - b

    def ticks_add(self, a, b):
        return a + b

    def time(self):
        return self._s0 + (self.now + self._ms0) // 1000

    def seconds_since(self, base):
        # time() - base without a long int (the board clocks' interface, boards/board.py)
        if base != self._sb:
            self._sb = base
            self._sd = self._s0 - base
        return self._sd + (self.now + self._ms0) // 1000

    def rtc_ms(self):
        return self._s0 * 1000 + self.now + self._ms0

    def set_time(self, s):
        self._s0 = s
        self._ms0 = -self.now
        self._sb = None
        self.rtc_valid = True

    async def sleep_ms(self, ms):
        self.now += ms


class MeterStub:
    """What the load profile reads of meter.metering.Metering: ``ok`` and
    ``instant_value(key)`` (V, f, ...; None when unknown), set through ``instant``."""

    def __init__(self):
        self.ok = True
        self.instant = {"V": 230.04, "f": 50.0}

    def instant_value(self, key):
        return self.instant.get(key)


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
