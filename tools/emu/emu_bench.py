# On-target figures for the emulated cores (frozen into the emu firmware; tools/emu/bench.py).
"""``run(step_n, sim_s)`` prints ``BENCH key=value`` lines:

- boot_free: free heap (bytes) after boot and the RAM-disk set-up;
- step_cycles / step_model_cycles: SysTick cycles (time.ticks_cpu) of one Metering.step()
  on an allocation-free fixed SPI bus (the firmware's own cost) and through the virtual
  board's ADE7953 register model (model cost included), medians of ``step_n`` steps;
- meter_alloc_peak / meter_alloc_steady: the whole meter (firmware/app.py Meter on the virtual
  board without flash, a constant 1 kW load, every task running) for ``sim_s`` simulated
  seconds: the largest heap in use after gc.collect() every 5 simulated s, and the heap in
  use after the run (meter_alloc_before: in use before the meter was built);
- registers_wh: 1.8.0 after the run (checks the meter metered).
"""

import gc
import time

import asyncio


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


class _FixedBus:
    """SPI stand-in answering reads from ``table`` {address: unsigned value} (else 0), in the
    frame width of the register; LAST_RWDATA echoes the last word sent (the driver checks
    each read against it). Allocation-free."""

    def __init__(self, table):
        self._t = table
        self._last = 0

    def write_readinto(self, w, r):
        a = (w[0] << 8) | w[1]
        if a == 0x2FF or a == 0x1FF:  # LAST_RWDATA (32 / 16 bit)
            v = self._last
        else:
            v = self._t.get(a, 0)
            self._last = v
        n = len(r) - 3
        for i in range(n):
            r[3 + i] = (v >> (8 * (n - 1 - i))) & 0xFF


class _HighPin:
    def value(self, v=None):
        return 1


def _fixed_metering():
    import events
    from ade7953 import ADE7953, Calibration
    from energy import Registers, lsb_per_unit_q8
    from energy.pulse import NoLoadGate
    from meter.metering import Metering
    from meter.testoutput import TestOutput
    from simkit import ManualClock

    clock = ManualClock()
    # CONFIG and LCYCMODE as the driver sets them; AENERGYA, RENERGYA 256 LSB, APENERGYA 384
    drv = ADE7953(_FixedBus({0x102: 0x0004, 0x004: 0x40, 0x21E: 0x100, 0x220: 0x100,
                             0x222: 0x180}), _HighPin())
    cal = Calibration()
    lpw = lsb_per_unit_q8(cal.wh_per_lsb)
    m = Metering(drv, Registers(lpw, lpw, lpw), NoLoadGate(cal.vah_per_lsb), clock,
                 events.EventLog(clock), consumers=(TestOutput(cal, 1000),))
    m.ok = True
    return m, clock


def _model_metering():
    import events
    from ade7953 import Calibration
    from energy import Registers, lsb_per_unit_q8
    from energy.pulse import NoLoadGate
    from meter.metering import Metering
    from meter.testoutput import TestOutput
    from simkit import run, started

    clock, model, drv = started([(0, 1000000, 200000)])
    cal = Calibration()
    lpw = lsb_per_unit_q8(cal.wh_per_lsb)
    m = Metering(drv, Registers(lpw, lpw, lpw), NoLoadGate(cal.vah_per_lsb), clock,
                 events.EventLog(clock), consumers=(TestOutput(cal, 1000),))
    m.ok = True
    del run
    return m, clock


def _time_steps(m, clock, n):
    out = []
    for _ in range(n):
        clock.now += 1000
        c0 = time.ticks_cpu()
        m.step()
        out.append(time.ticks_diff(time.ticks_cpu(), c0))
    return _median(out)


def _whole_meter(sim_s):
    import app
    from boards.sim.board import Options, SimBoard
    from simkit import StepTrace

    o = Options()
    o.quiet = True
    o.no_flash = True
    o.speed = 0.0
    board = SimBoard(o, trace=StepTrace([(0, 1000000, 0)]))
    meter = app.Meter(board)
    peak = [0]

    async def sampler():
        while True:
            await board.clock.sleep_ms(5000)
            gc.collect()
            peak[0] = max(peak[0], gc.mem_alloc())

    board.tasks = lambda m: [asyncio.create_task(sampler())]
    asyncio.run(meter.main(sim_s * 1000))
    asyncio.new_event_loop()
    wh = meter.registers.whole[0]
    gc.collect()
    steady = gc.mem_alloc()
    return peak[0], steady, wh, meter


def loop_cycles(n=10000):
    """Cycles of an empty ``for`` loop of n turns (a calibration figure for the bench)."""
    c0 = time.ticks_cpu()
    for _ in range(n):
        pass
    return time.ticks_diff(time.ticks_cpu(), c0)


def run(step_n=200, sim_s=120):
    gc.collect()
    print("BENCH boot_free=%d" % gc.mem_free())
    print("BENCH loop10k_cycles=%d" % loop_cycles())
    m, clock = _fixed_metering()
    m.step()
    print("BENCH step_cycles=%d" % _time_steps(m, clock, step_n))
    del m, clock
    gc.collect()
    m, clock = _model_metering()
    m.step()
    print("BENCH step_model_cycles=%d" % _time_steps(m, clock, step_n))
    del m, clock
    gc.collect()
    base = gc.mem_alloc()
    peak, steady, wh, meter = _whole_meter(sim_s)
    print("BENCH meter_alloc_peak=%d" % peak)
    print("BENCH meter_alloc_steady=%d" % steady)
    print("BENCH meter_alloc_before=%d" % base)
    print("BENCH registers_wh=%d" % wh)
    print("BENCH steps=%d" % meter.metering.steps)
