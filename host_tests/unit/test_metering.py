"""Metering step and task (firmware/meter/metering.py, firmware/tasks/metering.py): gate,
overflow repair, chip faults, plausibility of every interval, over-range (registers never go
backwards, never invent energy), the consumers' fan-out, requests (cold start)."""

import asyncio

import events
from ade7953 import ADE7953, Calibration
from boards.sim.ade7953_model import ADE7953Model
from boards.sim.clock import VirtualClock
from boards.sim.hw import SimPin, SimSPI
from energy import COUNT, Registers, lsb_per_unit_q8
from energy.pulse import NoLoadGate
from meter.metering import (DROP_CONFIG, DROP_ECHO, DROP_RANGE, DROP_RATIO, DROP_RESET,
                            OR_CURRENT, Metering)
from meter.status import ERR_OVER_RANGE
from meter.testoutput import TestOutput
from simkit import MICROPYTHON, ManualClock, StepTrace, run
from tasks import metering as loop
from tasks.metering import start_chip

KW = 1000000
LSB_WH = Calibration().wh_per_lsb


def _meter(rows, clock=None, fault=None, v_mv=230000):
    clock = clock or ManualClock()
    model = ADE7953Model(StepTrace(rows), clock.ticks_ms, fault=fault, v_mv=v_mv)
    drv = ADE7953(SimSPI(model), SimPin("CS", 1, on_change=model.select),
                  SimPin("IRQ", source=model.irq_pin))
    return clock, model, _metering(drv, clock)


def _metering(drv, clock, k=1000, lpv=None, **kw):
    # a Metering with the test output at ``k`` imp/kWh as its one consumer (``m.out``)
    cal = Calibration()
    lpw = lsb_per_unit_q8(cal.wh_per_lsb)
    out = TestOutput(cal, k)
    m = Metering(drv, Registers(lpw, lpv or lpw, lpw), NoLoadGate(cal.vah_per_lsb), clock,
                 events.EventLog(clock), consumers=(out,), **kw)
    m.out = out
    return m


def _milli(m, obis):
    return m.regs.snapshot()[obis]


def _steps(m, clock, n, ms=1000):
    for _ in range(n):
        clock.now += ms
        m.after_step(m.step())


def test_period_bounded_by_overflow():
    clock = ManualClock()
    model = ADE7953Model(StepTrace([(0, 0, 0)]), clock.ticks_ms)
    drv = ADE7953(SimSPI(model), SimPin("CS", 1, on_change=model.select))
    try:
        _metering(drv, clock, period_ms=60000)
        assert False, "60 s read period accepted (overflow bound 79.6 s, limit half of it)"
    except ValueError:
        pass


def test_no_load_registers_nothing():
    clock, model, m = _meter([(0, 0, 0), (10000, 2000, 0)])  # 2 W: below 50 % of Ist
    assert run(start_chip(m))
    _steps(m, clock, 30)
    assert m.no_load, "no-load state"
    snap = m.regs.snapshot()
    assert all(v == 0 for v in snap.values()), snap
    assert m.out.pulse.total == 0


def test_loads_just_below_the_gate_register_nothing():
    # Un x Ist x 50 % = 2.3 VA: an hour at 2.20 .. 2.29 W registers nothing (issue 7 item 2:
    # the threshold was truncated to 15 LSB per second, 2.2 W counts 14 or 15 a second)
    for mw in (2200, 2250, 2270, 2290, 2299):
        clock, model, m = _meter([(0, mw, 0)])
        assert run(start_chip(m))
        _steps(m, clock, 3600)
        snap = m.regs.snapshot()
        assert all(v == 0 for v in snap.values()), (mw, snap)
        assert m.out.pulse.total == 0 and m.no_load, mw


def test_loads_above_the_gate_register():
    # at Ist (4.6 W) and from threshold + 2 LSB per interval (2.56 VA) every interval counts
    for mw in (2600, 4600):
        clock, model, m = _meter([(0, mw, 0)])
        assert run(start_chip(m))
        _steps(m, clock, 3600)
        got = _milli(m, "1.8.0") / 1000  # truncated to 1 mWh
        assert mw / 1000 - 0.001 - LSB_WH <= got <= mw / 1000 + LSB_WH, (mw, got)


def test_loads_at_the_gate_fall_in_the_documented_band():
    # the gate compares count - 1 LSB (a strict lower bound of the energy): at the threshold
    # itself (2.30 W) nothing registers, between 2.41 and 2.56 W part, from 2.56 W all
    # (docs/METROLOGY.md, "Starting current / no-load")
    got = []
    for mw in (2300, 2400, 2500):
        clock, model, m = _meter([(0, mw, 0)])
        assert run(start_chip(m))
        _steps(m, clock, 3600)
        got.append(_milli(m, "1.8.0"))
    assert got[0] == 0 and got[1] == 0, got
    assert 0 < got[2] < 2500, got


def test_overflow_is_repaired():
    clock, model, m = _meter([(0, 15 * KW, 3 * KW)])
    assert run(start_chip(m))
    t0 = clock.now
    clock.now += 100000  # 100 s at 15 kW: the 24-bit register wraps once
    m.after_step(m.step())
    wh = 15000 * (clock.now - t0) / 3.6e6
    got = _milli(m, "1.8.0") / 1000
    assert abs(got - wh) < 0.01, (got, wh)
    assert m.log.count(events.ENERGY_OVERFLOW) == 1
    assert _milli(m, "2.8.0") == 0, "a wrap must not turn into export"


def test_dead_chip_logged_once_and_recovers():
    clock, model, m = _meter([(0, KW, 0)], fault="dead0")
    for _ in range(3):
        assert not run(start_chip(m))
        clock.now += 1000
    assert m.log.count(events.METROLOGY_FAULT) == 1, m.log.entries()
    assert "0x00" in m.fault
    model.set_fault(None)
    assert run(start_chip(m))
    assert not m.ok and m.fault, "trusted only after a plausible interval"
    _steps(m, clock, 1)
    assert m.ok and m.fault is None and m.log.count(events.METROLOGY_OK) == 1


async def _run_with(rows, fault, at_s, secs, v_mv=230000):
    # the metering task on a discrete-event clock; ``fault`` set at ``at_s``; registers
    # just before the fault, and at the end
    clock = VirtualClock(speed=0)
    clock_, model, m = _meter(rows, clock=clock, v_mv=v_mv)
    task = asyncio.create_task(loop.run(m))
    await clock.sleep_ms(at_s * 1000 - 1)
    before = m.regs.snapshot()
    if fault:
        model.set_fault(fault)
    await clock.sleep_ms(secs * 1000 - at_s * 1000 + 1)
    after = m.regs.snapshot()
    task.cancel()
    clock.stopped = True
    await asyncio.sleep_ms(0)
    return m, model, before, after


def _wh(regs, k):
    return regs[k] / 1000


async def test_fault_mid_run_keeps_registers():
    clock = VirtualClock(speed=0)
    clock_, model, m = _meter([(0, KW, 0)], clock=clock)
    task = asyncio.create_task(loop.run(m))
    await clock.sleep_ms(30000)
    before = m.regs.snapshot()
    model.set_fault("deadff")
    await clock.sleep_ms(15000)
    during = m.regs.snapshot()
    assert not m.ok and m.fault, "fault seen"
    for k in before:
        assert during[k] >= before[k], (k, before[k], during[k])
    assert during["2.8.0"] == 0, "0xFF garbage must not register as export"
    model.set_fault(None)
    model.inject_reset()
    await clock.sleep_ms(15000)
    after = m.regs.snapshot()
    assert m.ok, m.fault
    assert after["1.8.0"] > during["1.8.0"], "metering resumed"
    task.cancel()
    clock.stopped = True
    await asyncio.sleep_ms(0)


async def test_misclocked_bus_mid_export_invents_nothing():
    # issue 7 item 1: exporting 2 kW, the bus goes mis-clocked: the shifted negative count
    # read as ~+2^23 LSB (+350 Wh) must never reach a register
    m, model, before, after = await _run_with([(0, -2 * KW, -300000)], "misclocked", 20, 60)
    assert after == before, (before, after)
    assert _wh(before, "2.8.0") > 10, before
    assert m.log.count(events.METROLOGY_FAULT) == 1, m.log.entries()
    assert not m.ok and m.fault, m.fault


async def test_one_bit_flip_on_miso_drops_one_interval():
    # bit 14 of APENERGYA (+0.69 VAh) passes every physical bound; the echo catches it
    m, model, before, after = await _run_with([(0, KW, 0)], "bitflip", 20, 40)
    ref_wh = 40 * 1000 / 3600
    assert m.ok and m.fault is None, m.fault
    assert m.log.count(events.METROLOGY_FAULT) == 1 and m.log.count(events.METROLOGY_OK) == 2
    assert m.drops == 1 and m.drop == DROP_ECHO, (m.drops, m.drop)
    for k in ("1.8.0", "9.8.0"):
        assert ref_wh - 1.2 <= _wh(after, k) <= ref_wh, (k, after[k])  # ~1 s lost, none won


async def test_stuck_overflow_flags_are_dropped_not_unwrapped():
    # IRQSTATA's overflow bits stuck at 1: a blind unwrap would add 2^24 LSB (702 Wh) per
    # second; the range check drops every interval, one event for the whole episode
    m, model, before, after = await _run_with([(0, KW, 0)], "irqstuck", 20, 60)
    assert after == before, (before, after)
    assert m.drop == DROP_RANGE and m.drops > 30, (m.drop, m.drops)
    assert m.log.count(events.ENERGY_IMPLAUSIBLE) == 1, m.log.entries()
    assert not m.ok


async def test_chip_reset_mid_run_loses_not_invents():
    m, model, before, after = await _run_with([(0, -KW, 0)], "reset", 20, 40)
    assert m.log.count(events.CHIP_RESET) == 1 and m.ok
    ref = 40 * 1000 / 3600
    assert ref - 1.2 <= _wh(after, "2.8.0") <= ref, after
    assert after["1.8.0"] == 0, after


async def test_over_range_for_minutes_then_back():
    # 100 kW import (5x the 88 A full scale) for 3 minutes, then 1 kW: one start event, one
    # end event 60 s later, the clipped energy counted as import, nothing as export or var
    rows = [(0, KW, 0), (60000, 100000 * KW, 0), (240000, KW, 0)]
    m, model, before, after = await _run_with(rows, None, 1, 400)
    ev = [(c, v) for (t, c, v) in m.log.entries() if c in (events.OVER_RANGE_START,
                                                           events.OVER_RANGE_END)]
    assert ev[0] == (events.OVER_RANGE_START, OR_CURRENT), ev
    assert len(ev) == 2 and ev[1][0] == events.OVER_RANGE_END and 179 <= ev[1][1] <= 181, ev
    assert not m.over_range
    assert after["2.8.0"] == 0 and after["3.8.0"] == 0 and after["4.8.0"] == 0, after
    # clipped: 230 V x the fundamental of a current clipped at 88 A rms full scale
    clipped_w = 230 * 88 * 4 / 3.14159 * 0.99
    wh = _wh(after, "1.8.0")
    assert 220 * 1000 / 3600 + 180 * clipped_w / 3600 < wh < 220 * 1000 / 3600 + 180 * 100000 \
        / 3600, wh
    assert wh < 220 * 1000 / 3600 + 180 * 230 * 88 * 4 / 3.14159 / 3600 + 0.01, wh
    assert m.ok and m.drops == 0


async def test_over_range_alarm_in_status_and_lcd():
    import lcd
    from app import Meter
    from meter import defaults

    from boards.sim.board import Options, SimBoard

    o = Options()
    o.quiet = True
    o.no_flash = True
    o.speed = 0  # discrete-event metering clock
    board = SimBoard(o, trace=StepTrace([(0, KW, 0), (10000, 100000 * KW, 0)]))
    meter = Meter(board, defaults.config())
    running = asyncio.create_task(loop.run(meter.metering))
    st = meter.status
    await board.clock.sleep_ms(5000)
    assert meter.metering.ok and not st.alarm()
    assert not st.error_flags() & ERR_OVER_RANGE
    await board.clock.sleep_ms(10000)
    assert meter.metering.over_range
    assert st.error_flags() & ERR_OVER_RANGE
    assert st.alarm() and meter.display.flags() & lcd.ANN_ALARM
    assert meter.display.flags() & lcd.ANN_IMPORT, "over-range import stays import"
    m = meter.metering
    # a chip whose AWATT wrapped beyond full scale (as the model did before it saturated:
    # 1.7.0 showed -7486.7 W EXP): the display takes P from the interval's counts instead
    board.ade._inst = lambda addr: -0x700000 if addr in (0x212, 0x210) else 0
    m.refresh_instant(True)  # (the task refreshes them once per wall second)
    v = m.instant_milli
    assert 20000000 < v["P"] < 30000000 and v["S"] >= v["P"], v  # 1.7.0 (mW): still import
    assert meter.display.flags() & lcd.ANN_IMPORT
    assert meter.log.count(events.OVER_RANGE_START) == 1
    running.cancel()
    board.clock.stopped = True
    await asyncio.sleep_ms(0)


def test_hostile_counts_property():
    """For random sequences of counts, faults and resets (a seeded LCG: the same sequence on
    CPython and MicroPython), no register ever decreases, none grows by more than the chip's
    physical limit for the interval, a dropped interval changes nothing, and a plausible one
    adds exactly its counts. Every step runs with the heap locked on MicroPython."""
    rng = _Lcg(20260207)
    bus = _Bus({})
    clock = ManualClock()
    drv = ADE7953(bus, _HighPin())
    cal = Calibration()
    lpw = lsb_per_unit_q8(cal.wh_per_lsb)
    m = _metering(drv, clock)
    regs = m.regs
    m.ok = True
    lim = drv.count_limit_per_ms()
    drops = passes = 0
    for i in range(600):
        r = rng.below(100)
        dt = 1000 if r < 70 else (rng.below(6000) if r < 95 else rng.below(700000))
        plausible = rng.below(2) == 0
        table = bus.regs
        table.clear()
        cap = lim * dt
        if plausible:
            s = rng.below(cap + 1 if cap < 8000000 else 8000000)
            p = rng.below(s + 1) * (1 if rng.below(2) else -1)
            q = rng.below(s + 1) * (1 if rng.below(2) else -1)
            st = rng.below(2) << 13  # OIA sometimes
            cfg = 0x0004
        else:
            s, p, q = rng.bits24(), rng.bits24(), rng.bits24()
            st = rng.bits24() if rng.below(2) else (rng.below(64) | (rng.below(2) << 20))
            # a list: a frozen constant tuple holds 0x8004 and 0xFFFF as long-int objects
            # (tools/emu), which no SPI read returns
            cfg = [0x0004, 0x0002, 0x8004, 0xFFFF, 0x0000][rng.below(5)]
            bus.flip = (1 << rng.below(24)) if rng.below(4) == 0 else 0
        table[0x21E] = p & 0xFFFFFF
        table[0x220] = q & 0xFFFFFF
        table[0x222] = s & 0xFFFFFF
        table[0x22E] = st
        table[0x102] = cfg
        table[0x004] = 0x40 if plausible or rng.below(4) else 0x00  # RSTREAD lost
        before = _lsb_q8(regs)
        pulses = m.out.pulse.total
        clock.now += dt
        code = _locked(m.step)
        after = _lsb_q8(regs)
        grew = [after[k] - before[k] for k in range(COUNT)]
        bound = (lim * (min(dt, 1 << 19) + 2)) << 8
        for k in range(COUNT):
            assert 0 <= grew[k] <= bound, (i, k, grew[k], bound, dt)
        assert m.out.pulse.total - pulses <= (bound >> 8) // (lpw >> 8) + 1, i
        if code:
            drops += 1
            assert grew == [0] * COUNT, (i, code)
            assert not plausible, (i, code, p, q, s, dt)
        elif plausible and not m.no_load:
            passes += 1
            assert grew[0] + grew[1] == abs(p) << 8, (i, p, grew)
            assert grew[6] + grew[7] == s << 8, (i, s, grew)
    assert drops > 150 and passes > 150, (drops, passes)


def _lsb_q8(regs):
    # each register in chip LSB x 256 (whole units x LSB-per-unit x 256 + residue)
    return [regs.whole[k] * regs._div[k] + regs.res[k] for k in range(COUNT)]


class _Lcg:
    """Seeded generator with the same sequence on both interpreters (31-bit LCG)."""

    def __init__(self, seed):
        self.s = seed & 0x7FFFFFFF

    def next(self):
        self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
        return self.s

    def below(self, n):
        return (self.next() >> 4) % n if n > 0 else 0

    def bits24(self):
        return ((self.next() >> 7) ^ (self.next() << 9)) & 0xFFFFFF


class _Bus:
    """SPI stand-in answering reads from ``regs`` {address: unsigned value} (else 0); the
    LAST_RWDATA registers echo the last word the 'chip' sent; ``flip`` (a bit mask) corrupts
    the next APENERGYA word on the wire only. Writes are ignored. Allocation-free (the
    heap-locked tests use it)."""

    def __init__(self, regs):
        self.regs = regs
        self.last = 0
        self.flip = 0

    def write_readinto(self, w, r):
        a = (w[0] << 8) | w[1]
        if a == 0x2FF or a == 0x1FF:
            v = self.last
        else:
            v = self.regs.get(a, 0)
            self.last = v
            if a == 0x222 and self.flip:
                v ^= self.flip
                self.flip = 0
        n = len(r) - 3
        for i in range(n):
            r[3 + i] = (v >> (8 * (n - 1 - i))) & 0xFF


class _HighPin:
    def value(self, v=None):
        return 1


def _locked(fn):
    """``fn()`` with the heap locked on MicroPython (an allocation raises MemoryError)."""
    if MICROPYTHON:
        import micropython

        micropython.heap_lock()
    try:
        return fn()
    finally:
        if MICROPYTHON:
            micropython.heap_unlock()


def _fixed(table):
    clock = ManualClock()
    t = {0x102: 0x0004, 0x004: 0x40}
    t.update(table)
    drv = ADE7953(_Bus(t), _HighPin())
    cal = Calibration()
    # 10^6 imp/kWh: a pulse per mWh, so that 50 small intervals owe pulses
    m = _metering(drv, clock, 1000000, lsb_per_unit_q8(cal.varh_per_lsb))
    m.ok = True
    clock.now += 1000
    m.step()  # warm-up
    return clock, drv, m


def _steps_heap_locked(m, clock, n):
    codes = 0
    for _ in range(n):
        clock.now += 1000
        codes |= _locked(m.step)
    return codes


def test_metering_step_allocates_nothing():
    # AENERGYA/RENERGYA/APENERGYA = 0x000100, RSTIRQSTATA = 0, CONFIG as written
    clock, drv, m = _fixed({0x21E: 0x100, 0x220: 0x100, 0x222: 0x180})
    assert _steps_heap_locked(m, clock, 50) == 0
    assert m.steps == 51, m.steps
    assert m.regs.milli(0) > 0, "energy registered"


def test_step_count_wraps_as_a_small_int():
    # 2^30 steps (34 years at 1 s): the count past it would be a long int on a 32-bit port,
    # and its increment a MemoryError in the heap-locked step (caught on the emulated cores)
    import smallint

    clock, drv, m = _fixed({0x21E: 0x100, 0x220: 0x100, 0x222: 0x180})
    m.steps = (1 << 30) - 2
    bad = smallint.long_locals(lambda: _steps_heap_locked(m, clock, 3))
    assert not bad, bad[:3]
    assert m.steps == 1 and smallint.small(m.steps), m.steps


def test_drop_and_over_range_paths_allocate_nothing():
    # every way an interval is refused, and the over-range and overflow paths, heap-locked
    cases = (({0x102: 0x0002}, DROP_CONFIG),  # mis-clocked
             ({0x004: 0x00}, DROP_CONFIG),  # read-with-reset lost: totals, not intervals
             ({0x102: 0x8004}, DROP_RESET),  # chip back at its defaults
             ({0x22E: 1 << 20}, DROP_RESET),  # RESET interrupt
             ({0x21E: 0x7FFF80}, DROP_RANGE),  # +8.4 M LSB in 1 s
             ({0x222: 0x800000}, DROP_RANGE),  # negative apparent
             ({0x21E: 0x4000, 0x222: 0x1000}, DROP_RATIO),  # |P| = 4 S
             ({0x220: 0xFF0000, 0x222: 0x1000}, DROP_RATIO),  # |Q| = 16 S
             ({0x22E: 0x3F}, DROP_RANGE),  # overflow flags on small counts: unwrap refused
             ({0x22E: 1 << 13}, 0),  # OIA: over-range, counted
             ({0x22E: 1 << 16, 0x21E: 0x30000, 0x222: 0x30000}, 0))  # OV
    for table, want in cases:
        base = {0x21E: 0x100, 0x220: 0x80, 0x222: 0x180}
        base.update(table)
        clock, drv, m = _fixed(base)
        before = m.regs.snapshot()
        assert _steps_heap_locked(m, clock, 5) == want, (table, m.drop)
        if want:
            assert m.regs.snapshot() == before and m.drops >= 5, table
            m.after_step(want)
            assert not m.ok and m.fault and m.drop_text(), table
    clock, drv, m = _fixed({0x21E: 0x100, 0x222: 0x180})
    drv._spi.flip = 1 << 14
    assert _locked(m.step) == DROP_ECHO


def test_reactive_pulse_output_allocates_nothing():
    # AENERGYA = APENERGYA = 0x000100, RENERGYA = 0xFFFF80 (-128), RSTIRQSTATA 0
    clock, drv, m = _fixed({0x21E: 0x100, 0x220: 0xFFFF80, 0x222: 0x100})
    _steps_heap_locked(m, clock, 50)
    o = m.out
    assert drv.e_reactive < 0, drv.e_reactive
    assert o.var_due > 0 and o.pulse_var.total == o.var_due, o.var_due
    # |reactive| = half the active count: half the pulses (1 imp/Wh vs 1 imp/varh)
    assert abs(2 * o.pulse_var.total - o.pulse.total) <= 2, (o.pulse.total, o.pulse_var.total)


class _Consumer:
    """Records what the step hands its consumers (allocation-free: preallocated list)."""

    def __init__(self):
        self.got = [0, 0, 0, 0]
        self.calls = 0

    def interval(self, ea, er, es, dt):
        g = self.got
        g[0] += ea
        g[1] += er
        g[2] += es
        g[3] += dt
        self.calls += 1


def test_every_interval_is_fanned_out_to_the_consumers():
    # gated intervals reach every consumer with their counts, no-load ones with zeros,
    # dropped ones not at all; heap-locked like the rest of the step
    clock, drv, m = _fixed({0x21E: 0x100, 0x220: 0xFFFF80, 0x222: 0x180})
    a, b = _Consumer(), _Consumer()
    m.consumers = (m.out, a, b)
    assert _steps_heap_locked(m, clock, 10) == 0
    assert a.got == b.got == [10 * 0x100, -10 * 0x80, 10 * 0x180, 10 * 1000], a.got
    drv._spi.regs.update({0x21E: 0, 0x220: 0, 0x222: 1})  # below the gate: zeros, dt counts
    _steps_heap_locked(m, clock, 3)
    assert m.no_load and a.calls == 13 and a.got[0] == 10 * 0x100 and a.got[3] == 13000
    drv._spi.regs[0x102] = 0x0002  # mis-clocked: dropped, not fanned out
    _steps_heap_locked(m, clock, 2)
    assert a.calls == 13 and b.calls == 13


def test_cold_start_is_a_request_the_metering_task_executes():
    clock, drv, m = _fixed({0x21E: 0x100, 0x222: 0x180})
    _steps_heap_locked(m, clock, 5)
    assert m.regs.milli(0) > 0
    done = []
    m.request_clear(events.SRC_OPTICAL, lambda: done.append(m.regs.milli(0)))
    assert m.regs.milli(0) > 0 and not done, "nothing changes before the task serves it"
    m.serve()
    assert done == [0] and max(m.regs.whole) == 0 and max(m.regs.res) == 0
    recs = [r for r in m.log.records() if r[1] == events.PARAM_CHANGED]
    assert recs[-1][3] == events.SRC_OPTICAL and recs[-1][4] == "C.91.9", recs


def test_small_int_bounds():
    # every product the step forms stays below 2^30 (small ints on a 32-bit port)
    clock, model, m = _meter([(0, 0, 0)])
    assert m._lim_ms * ((1 << 19) + 2) < 1 << 30
    assert ((1 << 25) >> 10) * max(m._ka, m._kr) < 1 << 30
    assert m._fs_ms * (1 << 19) < 1 << 30
    assert 65535 * m.gate._q16 < 1 << 30


def test_a_wrap_of_one_accumulator_changes_only_that_one():
    # IRQSTATA has a flag per accumulator (AEOFA, VAREOFA, VAEOFA, DS p.50); a wrap of S and
    # Q alone (a reactive load read 160 s late: S and Q near 2^24 LSB, P not) once added
    # 2^24 LSB (701 Wh) to A+: a late read at 0 W invented that much active energy
    for p in (0, KW, -KW):
        clock, model, m = _meter([(0, p, 15 * KW)])
        assert run(start_chip(m))
        t0 = clock.now
        clock.now += 160000
        m.after_step(m.step())
        h = (clock.now - t0) / 3.6e6
        a = _milli(m, "1.8.0") + _milli(m, "2.8.0")
        assert abs(a / 1000 - abs(p) / 1000 * h) < 0.01, (p, a)
        assert abs(_milli(m, "5.8.0" if p >= 0 else "6.8.0") / 1000 - 15000 * h) < 0.01, p
        assert m.log.count(events.ENERGY_OVERFLOW) == 1 and m.drops == 0, p


def test_a_wrap_of_p_alone_leaves_s_alone():
    # P a little above S in LSB (the three gains calibrated apart, PF 1): AENERGYA wrapped
    # (AEOFA), APENERGYA did not. S once got 2^24 LSB added; and P's bound is the ratio
    # check's S x (1 + 1/16), not S, else the wrapped P (negative) would count as export
    clock, drv, m = _fixed({})
    regs = m.regs
    table = drv._spi.regs
    p = 8400000
    s = 8350000
    table[0x21E] = p & 0xFFFFFF  # 24 bits: reads back as p - 2^24
    table[0x220] = 0
    table[0x222] = s
    table[0x22E] = 1 << 3  # AEOFA
    before = _lsb_q8(regs)
    clock.now += 100000
    assert _locked(m.step) == 0
    after = _lsb_q8(regs)
    grew = [after[k] - before[k] for k in range(COUNT)]
    assert grew[0] == p << 8 and grew[1] == 0, grew
    assert grew[6] == s << 8 and grew[7] == 0, grew
    assert m._ovf == 1 << 3


def test_a_flagged_wrap_that_fits_no_bound_is_dropped():
    # AEOFA set, but P +- 2^24 is far beyond what S allows (S did not wrap): the counts
    # contradict each other, nothing registers (once S got 2^24 added and P 2^24 with it)
    clock, drv, m = _fixed({})
    regs = m.regs
    table = drv._spi.regs
    table[0x21E] = 3000000
    table[0x220] = 0
    table[0x222] = 5000000
    table[0x22E] = 1 << 3  # AEOFA
    before = _lsb_q8(regs)
    clock.now += 100000
    assert _locked(m.step) == DROP_RATIO
    assert _lsb_q8(regs) == before
    m.after_step(DROP_RATIO)
    assert m.log.count(events.ENERGY_IMPLAUSIBLE) == 1
    assert m.log.count(events.ENERGY_OVERFLOW) == 0


def test_a_double_wrap_of_s_does_not_turn_export_into_import():
    # 20.5 kVA exporting (-15 kW, -14 kvar) read 230 s late: S passed 2^24 + 2^23 LSB
    # (wrapped twice), repaired one 2^24 short; P and Q then fitted the ratio check with
    # the wrong sign (A+ 447 Wh, Q1 511 varh, instead of A- 958 Wh, Q3 894 varh). P^2 + Q^2
    # above S^2 refuses the interval: energy lost, never billed the wrong way
    for p, q in ((-15 * KW, -14 * KW), (14 * KW, -15 * KW)):
        clock, model, m = _meter([(0, p, q)])
        assert run(start_chip(m))
        clock.now += 230000
        assert m.step() == DROP_RATIO, p
        m.after_step(DROP_RATIO)
        for k in ("1.8.0", "2.8.0", "5.8.0", "6.8.0", "7.8.0", "8.8.0"):
            assert _milli(m, k) == 0, (p, k, _milli(m, k))
        assert m.log.count(events.ENERGY_IMPLAUSIBLE) == 1


def test_a_wrap_that_fits_either_way_is_dropped_not_guessed():
    # -19.1 kW, -11.8 kvar (a 21 kW, 13 kvar export, clipped) read 130 s late: P wrapped
    # once, and both P - 2^24 (the true export) and P + 2^24 (an import) fit below S: the
    # larger was taken, 713 Wh billed as A+. No unique repair: the interval is dropped
    clock, model, m = _meter([(0, -21 * KW, -13 * KW)])
    assert run(start_chip(m))
    clock.now += 130000
    assert m.step() == DROP_RATIO
    m.after_step(DROP_RATIO)
    for k in ("1.8.0", "2.8.0", "5.8.0", "6.8.0", "7.8.0", "8.8.0"):
        assert _milli(m, k) == 0, (k, _milli(m, k))
    # read 80 s late, P and S wrapped once and each has one repair: kept
    clock, model, m = _meter([(0, -21 * KW, -13 * KW)])
    assert run(start_chip(m))
    clock.now += 80000
    assert m.step() == 0 and m._ovf == 0x28, m._ovf
    assert _milli(m, "1.8.0") == 0
    assert abs(_milli(m, "2.8.0") / 1000 - model._meas[0] * -80 / 3.6e6) < 0.01
