"""Device paths that run every second allocate nothing (issue 12): the real board's clock
sleep, the instantaneous values (ADE7953.instant_into, Metering.refresh_instant, the tamper
check), a register above 10 MWh metered and read through the catalogue for the LCD. On
MicroPython under ``micropython.heap_lock()`` (an allocation raises MemoryError; on the
emulated 32-bit cores a long int does too); under CPython the 31-bit rule through
smallint.long_locals."""

import asyncio

import smallint
from ade7953 import ADE7953, Calibration
from energy import A_MINUS, A_PLUS, NET, Q1, Q2, R_PLUS, Registers, lsb_per_unit_q8
from simkit import MICROPYTHON


def _locked(fn):
    if MICROPYTHON:
        import micropython

        micropython.heap_lock()
    try:
        return fn()
    finally:
        if MICROPYTHON:
            micropython.heap_unlock()


def test_real_board_clock_sleep_allocates_nothing():
    # the async def wrapper around asyncio.sleep_ms built a coroutine object per await
    from boards.board import MonotonicClock

    c = MonotonicClock()
    assert not hasattr(MonotonicClock.sleep_ms, "__code__") or not (
        MonotonicClock.sleep_ms.__code__.co_flags & 0x80), "not a coroutine function"
    n = [0]

    async def loop():
        await c.sleep_ms(0)  # warm up (the task queue)
        if MICROPYTHON:
            import micropython

            micropython.heap_lock()
        try:
            for _ in range(20):
                await c.sleep_ms(1)
                n[0] += 1
        finally:
            if MICROPYTHON:
                micropython.heap_unlock()

    asyncio.run(loop())
    assert n[0] == 20


class _Pin:
    def value(self, v=None):
        return 1


def _drv():
    return ADE7953(None, _Pin())


_KEYS = ("V", "I", "IN", "P", "Q", "S", "PF", "f", "angle")


def _set(drv, vrms, ia, ib, w, var, va, pf, period, angle):
    drv.vrms, drv.irms_a, drv.irms_b = vrms, ia, ib
    drv.watt, drv.var, drv.va = w, var, va
    drv.pf, drv.period, drv.angle = pf, period, angle


# Parsed from text, not written as int constants: in a frozen module (mpy-tool, the emulated
# cores) a constant tuple keeps its ints beyond +-8191 as long-int objects, whose arithmetic
# allocates under heap_lock although the values are small (int() of a text gives small ints)
_EXTREMES = tuple(tuple(int(x) for x in row.split()) for row in (
    "0 0 0 0 0 0 0 0 0",
    "5870000 2240000 2240000 3600000 -3600000 5100000 -30000 4474 -1118",
    "16777215 16777215 1 8388607 -8388608 8388607 32767 65535 -32768",  # 2^24-1, 2^23-1, ...
    "1 1 1 -1 1 -1 -32768 3414 32767",
    "9 9 9 9 9 9 9 2796 9"))


def _cases():
    # the extremes, then 300 pseudo-random register sets (a generator: the device heap is
    # small)
    for c in _EXTREMES:
        yield c
    # (a generator of small ints only: on a 32-bit core an LCG over 2^31 gives long-int
    # objects, whose arithmetic allocates even when the value is small)
    seed = 12345
    for _ in range(300):
        vals = []
        for lim, signed in ((1 << 24, 0), (1 << 24, 0), (1 << 24, 0), (1 << 23, 1),
                            (1 << 23, 1), (1 << 23, 1), (1 << 15, 1), (1 << 16, 0),
                            (1 << 15, 1)):
            seed = (seed * 75 + 74) % 65537
            hi = seed
            seed = (seed * 75 + 74) % 65537
            v = ((hi << 9) ^ seed) % lim
            if signed and hi & 1:
                v = -v
            vals.append(v)
        yield tuple(vals)


# single-precision floats (the MCU ports): instant_values itself is only good to ~1e-7
_F32 = 1.0 + 1e-9 == 1.0


def test_instant_into_is_the_float_values_in_thousandths():
    drv = _drv()
    d = {k: 0 for k in _KEYS}
    same = total = 0
    for case in _cases():
        _set(drv, *case)
        ref = drv.instant_values()
        drv.instant_into(d)
        for k in _KEYS:
            want = ref[k] * 1000
            # (the angle scales with f, which instant_into holds to the mHz)
            rel = (2e-6 if _F32 else 2e-7) + (1.0 / d["f"] if k == "angle" and d["f"] else 0)
            assert abs(d[k] - want) <= 2 + abs(want) * rel, (k, case, d[k], want)
            assert int(want) == 0 or (d[k] < 0) == (want < 0), (k, case, d[k], want)
            if k != "angle":
                total += 1
                same += d[k] == int(want)
    if not _F32:  # (doubles: mostly the LCD's int(1000 * x) exactly)
        assert same >= total * 0.99, (same, total)


def test_instant_into_allocates_nothing_and_stays_in_31_bits():
    drv = _drv()
    d = {k: 0 for k in _KEYS}
    drv.instant_into(d)  # the scales, once per calibration
    # (f within 65.5 Hz, i.e. PERIOD >= 3 414: beyond it the angle takes the float path)
    cases = []
    for c in _cases():
        if c in _EXTREMES:
            continue  # (test_instant_into_extremes_allocate_nothing)
        if c[7] == 0 or c[7] >= 3414:
            cases.append(c)
            if len(cases) == 40:
                break
    assert len(cases) == 40

    def run():
        i = 0
        while i < 40:
            c = cases[i]
            drv.vrms = c[0]
            drv.irms_a = c[1]
            drv.irms_b = c[2]
            drv.watt = c[3]
            drv.var = c[4]
            drv.va = c[5]
            drv.pf = c[6]
            drv.period = c[7]
            drv.angle = c[8]
            drv.instant_into(d)
            i += 1

    if MICROPYTHON:
        _locked(run)
    else:
        bad = smallint.long_locals(run)
        assert not bad, bad[:5]


def test_instant_into_extremes_allocate_nothing():
    # (these register sets once raised MemoryError on the emulated Cortex-M3 cores: written as
    # int constants they were long-int objects in the frozen test module, see _EXTREMES)
    drv = _drv()
    d = {k: 0 for k in _KEYS}
    drv.instant_into(d)
    cases = _EXTREMES[1:4]

    def run():
        i = 0
        while i < 3:
            c = cases[i]
            drv.vrms = c[0]
            drv.irms_a = c[1]
            drv.irms_b = c[2]
            drv.watt = c[3]
            drv.var = c[4]
            drv.va = c[5]
            drv.pf = c[6]
            drv.period = c[7]
            drv.angle = c[8]
            drv.instant_into(d)
            i += 1

    if MICROPYTHON:
        _locked(run)
    else:
        bad = smallint.long_locals(run)
        assert not bad, bad[:5]


def test_a_new_calibration_gets_its_own_scales():
    drv = _drv()
    d = {k: 0 for k in _KEYS}
    _set(drv, 5870000, 1000000, 0, 1000000, 0, 1000000, 0, 4474, 0)
    drv.instant_into(d)
    v0 = d["V"]
    drv.cal = Calibration(v_per_lsb=2 * Calibration().v_per_lsb)
    drv.instant_into(d)
    assert abs(d["V"] - 2 * v0) <= 2, (v0, d["V"])


def test_refresh_instant_allocates_nothing_in_steady_state():
    from simkit import started

    from meter.metering import Metering
    import events
    from energy.pulse import NoLoadGate

    clock, model, drv = started([(0, 2300 * 1000, 500 * 1000)])
    cal = drv.cal
    lpw = lsb_per_unit_q8(cal.wh_per_lsb)
    m = Metering(drv, Registers(lpw, lpw, lpw), NoLoadGate(cal.vah_per_lsb), clock,
                 events.EventLog(clock))
    m.refresh_instant(True)
    first = m.instant_milli
    assert 229000 < first["V"] < 231000 and 9000 < first["I"] < 11000, first
    seq = m.instant_seq
    # the model behind the SPI bus allocates; the driver's reads are checked in
    # test_ade7953 (read_energy): here the conversion and the bookkeeping
    drv.read_instant = lambda: None
    def five():
        for _ in range(5):
            m.refresh_instant(True)

    if MICROPYTHON:
        _locked(five)
    else:
        bad = smallint.long_locals(lambda: m.refresh_instant(True))
        assert not bad, bad
    assert m.instant_milli is first and m.instant_seq != seq, "updated in place"
    assert abs(m.instant_value("V") - first["V"] / 1000) < 0.002


def _regs_at(wh):
    cal = Calibration()
    lpw = lsb_per_unit_q8(cal.wh_per_lsb)
    r = Registers(lpw, lpw, lpw)
    for i in (A_PLUS, A_MINUS, Q1, Q2):
        r.whole[i] = wh
    return r


def test_register_above_10_mwh_metered_and_read_without_long_ints():
    # 12 MWh: the mWh (1.2e10) are a long int on a 32-bit port, the Wh (1.2e7) are not
    r = _regs_at(12000000)
    lsb = 206900 * 4  # ~35 Wh per interval, both signs
    sels = (A_PLUS, A_MINUS, NET, R_PLUS)

    def meter_and_read():
        s = 0
        for _k in range(30):
            r.add(lsb, lsb >> 1, lsb)
            r.add(-(lsb >> 2), lsb >> 3, lsb)
            for sel in sels:
                s += r.units(sel) & 1
        return s

    if MICROPYTHON:
        _locked(meter_and_read)
    else:
        bad = smallint.long_locals(meter_and_read)
        assert not bad, bad[:5]
    for sel in sels:
        assert r.units(sel) == r.milli(sel) // 1000, (sel, r.units(sel), r.milli(sel))
    assert r.units(A_PLUS) > 12000000


def test_units_is_milli_floored_for_every_kind():
    cal = Calibration()
    lpw = lsb_per_unit_q8(cal.wh_per_lsb)
    r = Registers(lpw, lpw, lpw, tariffs=2, tariff_width=6)
    seed = 7
    for _ in range(200):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        a = seed % 300000 - 150000
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        q = seed % 300000 - 150000
        r.add(a, q, abs(a) + abs(q))
        r.add_tariff(1 + (seed & 1), a, q, abs(a) + abs(q))
        for _o, _u, sel in r.codes():
            assert r.units(sel) == r.milli(sel) // 1000, (sel, r.units(sel), r.milli(sel))


def test_lcd_reads_a_10_mwh_register_through_the_catalogue_without_long_ints():
    from app import Meter
    from boards.sim.board import Options, SimBoard
    from simkit import StepTrace

    o = Options()
    o.quiet = True
    o.no_flash = True
    meter = Meter(SimBoard(o, trace=StepTrace([(0, 2000000, 300000)])))
    regs = meter.registers
    regs.whole[A_PLUS] = 10500000  # 10.5 MWh
    regs.whole[A_MINUS] = 10400000
    for code in ("1.8.0", "2.8.0", "16.8.0"):
        it = meter.display.item(code)
        get = it[1]
        if MICROPYTHON:
            v = _locked(get)
        else:
            bad = smallint.long_locals(get)
            assert not bad, (code, bad[:3])
            v = get()
        assert v == meter.catalogue.read(code) // 1000, (code, v)
    assert meter.display.item("1.8.0")[1]() == 10500000


def test_flood_summary_check_allocates_nothing_until_one_is_due():
    # the housekeeping task asks every second; due() built a list (and its iterator) each time
    import events

    lim = events.RateLimit(burst=1, window_s=60)
    assert lim.admit(7, 100) and not lim.admit(7, 101) and not lim.admit(7, 102)
    got = []

    def quiet():
        for t in range(103, 160):
            got.append(lim.any_due(t)) if not MICROPYTHON else lim.any_due(t)

    if MICROPYTHON:
        _locked(quiet)
        assert not lim.any_due(159)
    else:
        quiet()
        assert not any(got), got
    assert lim.any_due(160) and lim.any_due(120, force=True)
    assert lim.due(160) == [(7, 2, 0, b"\xff" * 6)], "due() returns what any_due saw"
    assert not lim.any_due(161, force=True)


def test_eventstore_tick_asks_before_building_the_list():
    from meter.eventstore import EventStore

    calls = []

    class Lim:
        def any_due(self, t, force=False):
            calls.append(("any", force))
            return False

        def due(self, t, force=False):
            raise AssertionError("due() called with nothing due")

    class Clock:
        def time(self):
            return 1000

    class Fake:  # just what tick() reads
        limit = Lim()
        _clock = Clock()

    EventStore.tick(Fake())
    assert calls == [("any", False)], calls


def test_test_led_pulse_steps_allocate_nothing():
    # PulseTrain.show/release are coroutines (one object per pulse each); the LED task uses
    # show_wait / show_now / on_ms around its own clock sleeps
    from energy.pulse import PulseTrain
    from simkit import ManualClock

    class Led:
        def __init__(self):
            self.v = 0

        def value(self, v=None):
            if v is None:
                return self.v
            self.v = v

    class Owed:
        due = 0

    clock = ManualClock()
    t = PulseTrain(clock, 1000, 40)
    led = Led()
    o = Owed()
    o.due = 5
    t.show_wait(o.due)  # warm-up

    def pulses():
        shown = 0
        while o.due > 0:
            w = t.show_wait(o.due)
            if w > 0:
                clock.now += w
            shown += t.show_now(led, o, "due")
            clock.now += t.on_ms()
            led.value(0)
        return shown

    n = _locked(pulses) if MICROPYTHON else pulses()
    assert n == 5 and o.due == 0 and clock.now <= 1000, (n, o.due, clock.now)


def test_heap_sampler_reports_live_data_not_the_fill_level():
    # the virtual board's heap_peak_bytes was gc.mem_alloc() between collections every
    # 20 ms: the heap's fill level (2 MB with the default heap), not live data
    import gc

    if not hasattr(gc, "mem_alloc"):
        return  # CPython: nothing to measure
    from boards.sim.board import Options, SimBoard
    from simkit import StepTrace

    o = Options()
    o.quiet = True
    o.no_flash = True
    board = SimBoard(o, trace=StepTrace([(0, 0, 0)]))
    board.sample_heap()
    base = board.heap_peak
    junk = [bytearray(1000) for _ in range(20)]
    junk = None  # 20 KB of garbage
    live = board.sample_heap()
    assert junk is None and board.heap_peak < base + 8000, (base, board.heap_peak)
    assert live <= board.heap_peak


def test_wake_flag_set_and_wait_allocate_nothing():
    # the storage and LED tasks wait on tasks.wake.Wake until the heap-locked step sets it
    # (asyncio's Event.wait is a coroutine per await: ~48 B per idle wake-up of the LED)
    from tasks.wake import Wake

    w = Wake()
    seen = [0]

    async def waiter():
        for _ in range(20):
            w.clear()
            await w.wait()
            seen[0] += 1

    async def main():
        t = asyncio.create_task(waiter())
        await asyncio.sleep_ms(0)
        await asyncio.sleep_ms(0)
        if MICROPYTHON:
            import micropython

            micropython.heap_lock()
        try:
            for _ in range(20):
                w.set()  # as the step does
                w.set()  # (twice: still one wake-up)
                await asyncio.sleep_ms(0)
                await asyncio.sleep_ms(0)
        finally:
            if MICROPYTHON:
                import micropython

                micropython.heap_unlock()
        await asyncio.sleep_ms(0)
        t.cancel()  # parked: Task.cancel removes it from the flag
        await asyncio.sleep_ms(0)
        return t

    t = asyncio.run(main())
    assert seen[0] == 20, seen
    assert t.done()


def test_billing_task_second_allocates_nothing_in_steady_state():
    # the billing task calls service() and maintain() every simulated second; maintain()
    # built a tuple of the two rings each time (33.8 B per simulated s in bench_alloc)
    import events
    from billing import config
    from boards.sim.norflash import NORFlash
    from flashstore.flash import Partition
    from meter.billing import Billing
    from meter.demand import Demand
    from meter.tariffs import TARIFF_Q8, Tariffs
    from simkit import ManualClock

    lpw = lsb_per_unit_q8(Calibration().wh_per_lsb)
    cfg = config.Config()
    regs = Registers(lpw, lpw, lpw, 1, 2, TARIFF_Q8)
    clock = ManualClock()
    log = events.EventLog(clock)
    tf = Tariffs(regs, clock, cfg, lpw, log)
    dev = NORFlash(32 * 1024, sector_size=4096, page_size=256)
    bl = Billing(regs, tf, Demand(cfg, tf), cfg, clock, log, Partition(dev, 0, dev.size))
    tf.reconcile()
    bl.boot()
    assert bl.snaps is not None and bl.states is not None
    bl.service()
    for _ in range(50):  # erase ahead until both rings are prepared
        if not (bl.snaps.needs_maintenance() or bl.states.needs_maintenance()):
            break
        bl.maintain()
    assert not bl.snaps.needs_maintenance() and not bl.states.needs_maintenance()

    def second():
        for _ in range(5):
            bl.service()
            bl.maintain()

    if MICROPYTHON:
        _locked(second)
    else:
        bad = smallint.long_locals(second)
        assert not bad, bad[:5]


def test_lcd_reads_the_demand_items_without_allocating():
    # the LCD re-reads its item every 250 ms; a demand item (1.6.0 on the display list) went
    # through Billing.read, which slices its key: ~256 B per refresh, ~1 KB per second
    from app import Meter
    from boards.sim.board import Options, SimBoard
    from simkit import StepTrace

    o = Options()
    o.quiet = True
    o.no_flash = True
    meter = Meter(SimBoard(o, trace=StepTrace([(0, 2000000, 300000)])))
    mx = meter.demand.maxima
    mx.value[0] = 13800000  # 13.8 kW in mW
    mx.value[1] = 9200000
    mx.cum[0] = 27600000
    for code in ("1.6.0", "1.6.1", "1.4.0", "1.5.0", "1.14.0"):
        get = meter.display.item(code)[1]
        v = _locked(get) if MICROPYTHON else get()
        assert v == meter.catalogue.read(code), (code, v, meter.catalogue.read(code))
    get = meter.display.item("1.6.0")[1]
    assert get() == 13800000
    mx.value[0] = 14000000  # read live, not captured when the item was made
    assert get() == 14000000

def test_wake_ends_a_clock_sleep_without_allocating():
    # issue 12 (session 7): the profile, billing and housekeeping tasks sleep on the board
    # clock to their deadline (Wake.wait_ms); the heap-locked step ends the sleep early
    from boards.sim.clock import VirtualClock
    from tasks.wake import Wake

    clock = VirtualClock(speed=0)
    w = Wake()
    seen = []

    async def waiter():
        for _ in range(10):
            w.clear()
            await w.wait_ms(clock, 3600000)
            seen.append(clock.ticks_ms())

    async def main():
        t = asyncio.create_task(waiter())
        for _i in range(10):
            await clock.sleep_ms(1000)
            if MICROPYTHON:
                import micropython

                micropython.heap_lock()
            try:
                w.set()  # as the step does
                w.set()
            finally:
                if MICROPYTHON:
                    import micropython

                    micropython.heap_unlock()
        await clock.sleep_ms(10)
        clock.stopped = True
        await asyncio.sleep_ms(0)
        return t

    t = asyncio.run(main())
    assert seen == [1000 * (i + 1) for i in range(10)], seen
    assert t.done()


def test_lcd_shows_a_cumulative_maximum_past_2_30_mw_without_allocating():
    # 1.2.x (cumulative maximum demand, mW) passes 2**30 mW (1 074 kW of summed maxima,
    # ~6.4 years of monthly 14 kW maxima): the LCD computed its whole W from the long int
    # at every 250-ms refresh (MemoryError under heap_lock on an emulated 32-bit core)
    import lcd
    from app import Meter
    from boards.sim.board import Options, SimBoard
    from simkit import StepTrace

    o = Options()
    o.quiet = True
    o.no_flash = True
    meter = Meter(SimBoard(o, trace=StepTrace([(0, 2000000, 300000)])))
    mx = meter.demand.maxima
    d = meter.display
    for cum, w0 in ((27600000, 27600), (1187654321, 1187654), (9999999999, 9999999),
                    (0, 0)):
        mx.cum[0] = cum
        mx.cum[3] = cum + 1999
        for code, w in (("1.2.0", w0), ("1.2.3", (cum + 1999) // 1000)):
            want = lcd.Frame()
            want.ident = code
            lcd.format_value(want, w * 1000, 0, lcd.DIGITS, True)  # as the mW item showed
            want.ann = lcd.unit_ann("W")
            disp = lcd.Display(auto=[d.item(code)])  # the item as the LCD task shows it
            for k in range(3):  # the first render reads the new value, then refreshes
                if k == 0:
                    f = disp.render()
                elif MICROPYTHON:
                    f = _locked(disp.render)
                else:  # (the mW read is a reference; the LCD's formatting computed with it)
                    bad = smallint.long_locals(disp.render)
                    bad = [b for b in bad if b[0].startswith("lib")]
                    assert not bad, (code, bad[:3])
                    f = disp.frame
                assert f.same(want) and f.ident == code and f.ann == want.ann, (code, cum)


class _Steady:
    # one row of load for ever, the same tuple at every call (as boards/sim/load.LoadTrace
    # answers within a row)
    def __init__(self):
        self.row = (2300000, 400000, None)

    def at(self, t):
        return self.row


def test_virtual_board_metering_read_allocates_nothing():
    # the ADE7953 model's side of the metering read at --speed max (10 SPI frames and the
    # integration of the second since the last read): garbage there (a bound method and a
    # 6-tuple per integration) made every heap-allocated call frame of the simulation scan
    # further for room (MicroPython's allocator), ~30 % of the CPU time of a simulated day
    from boards.sim.ade7953_model import ADE7953Model
    from boards.sim.hw import ChipSelect, SimSPI
    from simkit import ManualClock, run

    clock = ManualClock()
    model = ADE7953Model(_Steady(), clock.ticks_ms)
    drv = ADE7953(SimSPI(model), ChipSelect("CS", model))
    run(drv.begin(clock.sleep_ms))
    clock.now += 1000
    assert drv.read_energy() == 0  # (the row's measured powers: computed once, then kept)

    def seconds():
        bad = 0
        for _ in range(5):
            clock.now += 1000
            bad |= drv.read_energy()
        return bad

    assert _locked(seconds) == 0
    # 2.3 kW for 1 s: 206 900 LSB/s x 2 300 000 / 31 152 000 (DS p.25), truncated
    assert drv.e_active in (15275, 15276), drv.e_active
