# Cost of one metering interval (Metering.step) on the MicroPython unix port.
#
#   MICROPYPATH=.frozen:firmware:lib:. .venv/bin/micropython tools/bench_step.py [steps]
#
# Prints the SPI frames and bytes per step, the median of 5 runs of `steps` (default 20 000)
# calls of Metering.step() against a fake bus that answers at once (the firmware's own
# cost: driver, plausibility, gate, registers, the consumers (the test output)), and against
# the virtual
# board's ADE7953 register model (what --speed max pays per simulated second).
import sys
import time

sys.path.insert(0, "host_tests/unit")

import events  # noqa: E402
from ade7953 import ADE7953, Calibration  # noqa: E402
from energy import Registers, lsb_per_unit_q8  # noqa: E402
from energy.pulse import NoLoadGate  # noqa: E402
from meter.metering import Metering  # noqa: E402
from meter.testoutput import TestOutput  # noqa: E402
from simkit import ManualClock  # noqa: E402


class Bus:
    """Answers every read at once: AENERGYA 0x100, RENERGYA 0x80, APENERGYA 0x180, CONFIG
    0x0004, LCYCMODE 0x40, LAST_RWDATA the last word; counts frames and bytes."""

    def __init__(self):
        self.last = 0
        self.frames = 0
        self.bytes = 0

    def write_readinto(self, w, r):
        self.frames += 1
        self.bytes += len(w)
        a = (w[0] << 8) | w[1]
        if a == 0x2FF or a == 0x1FF:
            v = self.last
        else:
            v = 0x100 if a == 0x21E else (0x80 if a == 0x220 else (
                0x180 if a == 0x222 else (4 if a == 0x102 else (0x40 if a == 0x004 else 0))))
            self.last = v
        n = len(r) - 3
        for i in range(n):
            r[3 + i] = (v >> (8 * (n - 1 - i))) & 0xFF


class Pin:
    def value(self, v=None):
        return 1


def meter(spi, cs, clock):
    cal = Calibration()
    lpw = lsb_per_unit_q8(cal.wh_per_lsb)
    m = Metering(ADE7953(spi, cs), Registers(lpw, lpw, lpw), NoLoadGate(cal.vah_per_lsb),
                 clock, events.EventLog(clock), consumers=(TestOutput(cal, 1000),))
    m.ok = True
    return m


def timed(m, clock, n):
    t = time.ticks_us()
    for _ in range(n):
        clock.now += 1000
        m.step()
    return time.ticks_diff(time.ticks_us(), t) / n


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    clock = ManualClock()
    bus = Bus()
    m = meter(bus, Pin(), clock)
    clock.now += 1000
    m.step()
    f0, b0 = bus.frames, bus.bytes
    clock.now += 1000
    m.step()
    print("SPI per step: %d frames, %d bytes (at 1 MHz: %d us of clock)"
          % (bus.frames - f0, bus.bytes - b0, 8 * (bus.bytes - b0)))
    us = median([timed(m, clock, n) for _ in range(5)])
    print("Metering.step(), fake bus: %.1f us (median of 5 x %d)" % (us, n))

    from boards.sim.ade7953_model import ADE7953Model
    from boards.sim.hw import ChipSelect, SimSPI
    from simkit import StepTrace, run

    clock = ManualClock()
    model = ADE7953Model(StepTrace([(0, 1000000, 200000)]), clock.ticks_ms)
    m = meter(SimSPI(model), ChipSelect("CS", model), clock)  # (wired as boards/sim/board.py)
    from tasks.metering import start_chip

    run(start_chip(m))
    us = median([timed(m, clock, n) for _ in range(5)])
    print("Metering.step(), ADE7953 model: %.1f us (median of 5 x %d)" % (us, n))


main()
