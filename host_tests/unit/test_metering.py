"""Metering task: gate, overflow repair, chip faults (registers never go backwards)."""

import asyncio

import events
from ade7953 import ADE7953, Calibration
from boards.sim.ade7953_model import ADE7953Model
from boards.sim.clock import VirtualClock
from boards.sim.hw import SimPin, SimSPI
from energy import Registers, lsb_per_unit_q8
from metering import Metering
from pulse import NoLoadGate, PulseOutput
from simkit import ManualClock, StepTrace, run

KW = 1000000


def _meter(rows, clock=None, fault=None):
    clock = clock or ManualClock()
    model = ADE7953Model(StepTrace(rows), clock.ticks_ms, fault=fault)
    drv = ADE7953(SimSPI(model), SimPin("CS", 1, on_change=model.select),
                  SimPin("IRQ", source=model.irq_pin))
    cal = Calibration()
    lpw = lsb_per_unit_q8(cal.wh_per_lsb)
    regs = Registers(lpw, lpw, lpw)
    log = events.EventLog(clock)
    m = Metering(drv, regs, NoLoadGate(cal.vah_per_lsb), PulseOutput(lpw), clock, log)
    return clock, model, m


def test_period_bounded_by_overflow():
    clock = ManualClock()
    model = ADE7953Model(StepTrace([(0, 0, 0)]), clock.ticks_ms)
    drv = ADE7953(SimSPI(model), SimPin("CS", 1, on_change=model.select))
    cal = Calibration()
    lpw = lsb_per_unit_q8(cal.wh_per_lsb)
    try:
        Metering(drv, Registers(lpw, lpw, lpw), NoLoadGate(cal.vah_per_lsb), PulseOutput(lpw),
                 clock, events.EventLog(clock), period_ms=60000)
        assert False, "60 s read period accepted (overflow bound 79.6 s, limit half of it)"
    except ValueError:
        pass


def test_no_load_registers_nothing():
    clock, model, m = _meter([(0, 0, 0), (10000, 2000, 0)])  # 2 W: below 50 % of Ist
    assert run(m.start_chip())
    for _ in range(30):
        clock.now += 1000
        m.step()
    assert m.no_load, "no-load state"
    snap = m.regs.snapshot()
    assert all(v == 0 for v in snap.values()), snap
    assert m.pulse.total == 0


def test_overflow_is_repaired():
    clock, model, m = _meter([(0, 15 * KW, 3 * KW)])
    assert run(m.start_chip())
    t0 = clock.now
    clock.now += 100000  # 100 s at 15 kW: the 24-bit register wraps once
    m.step()
    wh = 15000 * (clock.now - t0) / 3.6e6
    got = m.regs.value_milli("1.8.0") / 1000
    assert abs(got - wh) < 0.01, (got, wh)
    assert m.log.count(events.ENERGY_OVERFLOW) == 1
    assert m.regs.value_milli("2.8.0") == 0, "a wrap must not turn into export"


def test_dead_chip_logged_once_and_recovers():
    clock, model, m = _meter([(0, KW, 0)], fault="dead0")
    for _ in range(3):
        assert not run(m.start_chip())
        clock.now += 1000
    assert m.log.count(events.METROLOGY_FAULT) == 1, m.log.entries()
    assert "0x00" in m.fault
    model.fault = None
    assert run(m.start_chip())
    assert m.fault is None and m.log.count(events.METROLOGY_OK) == 1


async def test_fault_mid_run_keeps_registers():
    clock = VirtualClock(speed=0)
    clock_, model, m = _meter([(0, KW, 0)], clock=clock)
    task = asyncio.create_task(m.run())
    await clock.sleep_ms(30000)
    before = m.regs.snapshot()
    model.fault = "deadff"
    await clock.sleep_ms(15000)
    during = m.regs.snapshot()
    assert not m.ok and m.fault, "fault seen"
    for k in before:
        assert during[k] >= before[k], (k, before[k], during[k])
    assert during["2.8.0"] == 0, "0xFF garbage must not register as export"
    model.fault = None
    model.inject_reset()
    await clock.sleep_ms(15000)
    after = m.regs.snapshot()
    assert m.ok, m.fault
    assert after["1.8.0"] > during["1.8.0"], "metering resumed"
    task.cancel()
    clock.stopped = True
    await asyncio.sleep_ms(0)


class _FixedBus:
    """SPI stand-in answering 24-bit reads from a table {low address byte: 3 bytes}, else 0
    (allocation-free: the heap-locked tests use it)."""

    def __init__(self, table):
        self._t = table
        self._zero = b"\x00\x00\x00"

    def write_readinto(self, w, r):
        v = self._t.get(w[1], self._zero)
        r[3] = v[0]
        r[4] = v[1]
        r[5] = v[2]


class _HighPin:
    def value(self, v=None):
        return 1


def _steps_heap_locked(m, clock, n):
    """``n`` metering steps of 1 s with the heap locked on MicroPython (an allocation raises
    MemoryError); plain steps under CPython."""
    from simkit import MICROPYTHON

    if MICROPYTHON:
        import micropython

        micropython.heap_lock()
    try:
        for _ in range(n):
            clock.now += 1000
            m.step()
    finally:
        if MICROPYTHON:
            micropython.heap_unlock()


def test_metering_step_allocates_nothing():

    # AENERGYA/RENERGYA/APENERGYA = 0x000100, RSTIRQSTATA = 0
    clock = ManualClock()
    drv = ADE7953(_FixedBus({0x1E: b"\x00\x01\x00", 0x20: b"\x00\x01\x00",
                             0x22: b"\x00\x01\x00"}), _HighPin())
    cal = Calibration()
    lpw = lsb_per_unit_q8(cal.wh_per_lsb)
    m = Metering(drv, Registers(lpw, lpw, lpw), NoLoadGate(cal.vah_per_lsb), PulseOutput(lpw),
                 clock, events.EventLog(clock))
    m.ok = True
    clock.now += 1000
    m.step()
    _steps_heap_locked(m, clock, 50)
    assert m.regs.whole[0] * 1000 + 0 >= 0 and m.steps == 51, m.steps
    assert m.regs.milli(0) > 0, "energy registered"


def test_reactive_pulse_output_allocates_nothing():

    # AENERGYA = APENERGYA = 0x000100, RENERGYA = 0xFFFF80 (-128), RSTIRQSTATA 0
    clock = ManualClock()
    drv = ADE7953(_FixedBus({0x1E: b"\x00\x01\x00", 0x20: b"\xff\xff\x80",
                             0x22: b"\x00\x01\x00"}), _HighPin())
    cal = Calibration()
    lpw = lsb_per_unit_q8(cal.wh_per_lsb)
    lpv = lsb_per_unit_q8(cal.varh_per_lsb)
    m = Metering(drv, Registers(lpw, lpv, lpw), NoLoadGate(cal.vah_per_lsb),
                 PulseOutput(lpw // 1000), clock, events.EventLog(clock),
                 pulse_var=PulseOutput(lpv // 1000))
    m.ok = True
    clock.now += 1000
    m.step()
    _steps_heap_locked(m, clock, 50)
    assert drv.e_reactive < 0, drv.e_reactive
    assert m.var_pulses_due > 0 and m.pulse_var.total == m.var_pulses_due, m.var_pulses_due
    # |reactive| = half the active count: half the pulses (1 imp/Wh vs 1 imp/varh)
    assert abs(2 * m.pulse_var.total - m.pulse.total) <= 2, (m.pulse.total, m.pulse_var.total)
