"""RTC seconds past 2**30 (2034-01-10) on a 32-bit port (issue 12, session 8): the wired
metering step's billing consumers (meter/tariffs.py, demand.py, billing.py) keep the time of
each interval as a small int relative to a base and compare it with boundaries precomputed
once per boundary, so a second of metering allocates nothing for any RTC value up to 2**32
(2136); the real board's clock gives those seconds without reading its RTC (a long int)
every call (boards/board.py ``seconds_since``). On MicroPython under
``micropython.heap_lock()`` (on the emulated 32-bit cores a long int raises MemoryError);
under CPython through smallint.long_locals."""

import struct

import smallint
from simkit import MICROPYTHON

T30 = 1 << 30  # 2034-01-10 13:37:04 UTC in RTC seconds since 2000
_LIMIT = 1 << 32  # 2136-02-07


def _locked(fn):
    if MICROPYTHON:
        import micropython

        micropython.heap_lock()
    try:
        return fn()
    finally:
        if MICROPYTHON:
            micropython.heap_unlock()


def _consumers(t0):
    from ade7953 import Calibration
    from billing import config
    from energy import Registers, lsb_per_unit_q8

    import events
    from meter.billing import Billing
    from meter.demand import Demand
    from meter.tariffs import TARIFF_Q8, Tariffs
    from simkit import ManualClock

    lpw = lsb_per_unit_q8(Calibration().wh_per_lsb)
    cfg = config.Config()
    regs = Registers(lpw, lpw, lpw, 1, 2, TARIFF_Q8)
    clock = ManualClock(t0=t0)
    log = events.EventLog(clock)
    tf = Tariffs(regs, clock, cfg, lpw, log)
    dm = Demand(cfg, tf)
    bl = Billing(regs, tf, dm, cfg, clock, log)
    tf.reconcile()
    bl.boot()
    return regs, clock, tf, dm, bl


def _second(regs, clock, cons):
    clock.now += 1000
    regs.add(20000, 0, 20000)  # the wired step: the registers first, then the consumers
    for c in cons:
        c.interval(20000, 0, 20000, 1000)


def test_billing_consumers_allocate_nothing_across_2_30_and_up_to_2_32():
    # Tariffs.interval read the RTC (a long int from 2**30) and computed with it every
    # interval: MemoryError on an emulated core, long locals under CPython
    for t0 in (T30 - 10, T30 + 86400, (1 << 31) - 10, _LIMIT - 200):
        regs, clock, tf, dm, bl = _consumers(t0)
        cons = (tf, dm, bl)
        _second(regs, clock, cons)  # the first interval: each consumer's first boundary
        w0 = dm.window.captures

        def run(regs=regs, clock=clock, cons=cons):
            for _ in range(60):
                _second(regs, clock, cons)

        if MICROPYTHON:
            _locked(run)
        else:
            bad = smallint.long_locals(run)
            assert not bad, (t0, bad[:5])
        assert tf.now() == clock.time(), (t0, tf.now(), clock.time())
        assert dm.window.captures == w0  # no sub-period end inside these 60 s


def test_relative_time_gives_the_same_demand_and_billing_as_the_rtc():
    # the demand sub-periods and the billing period end at the same RTC seconds whether the
    # consumers read the RTC (a clock without seconds_since) or the relative seconds, on
    # both sides of 2**30; a state taken mid sub-period carries the last interval's time
    from simkit import ManualClock

    class RtcOnly(ManualClock):
        seconds_since = None

    def run(clock_cls):
        import simkit

        saved = simkit.ManualClock
        simkit.ManualClock = clock_cls
        try:
            regs, clock, tf, dm, bl = _consumers(T30 - 1000)
        finally:
            simkit.ManualClock = saved
        if clock_cls is RtcOnly:
            tf._since = None
        cons = (tf, dm, bl)
        caps = []
        for k in range(2000):
            _second(regs, clock, cons)
            if dm.window.captures != len(caps):
                caps.append((dm.window.capture_time, dm.window.last_average))
            if k == 700:
                st = dm.state()
        return caps, st, tf.now(), dm.thermal.value

    a = run(ManualClock)
    b = run(RtcOnly)
    assert a == b, (a, b)
    caps = a[0]
    assert len(caps) == 2 and caps[0][0] % 900 == 0 and caps[0][0] < T30 < caps[1][0], caps
    # the window's last feed time in the state taken after 701 s (struct "<BBH" + the
    # window's "<BBBBHHII...": end at 8, last at 12)
    assert struct.unpack_from("<I", a[1], 16)[0] == T30 - 1000 + 701, a[1][:24]


class _Time:
    """``time`` of a board: ticks_ms (wrapping at 2**30, starting near the wrap) and an RTC
    ``s0`` + ``el`` ms (a sub-second phase); only ``time()`` computes with a long int."""

    def __init__(self, s0, el):
        self.s0 = s0
        self.el = el
        self.tk = 0x3FFFF000

    def advance(self, ms):
        self.el += ms
        self.tk = (self.tk + ms) & 0x3FFFFFFF

    def ticks_ms(self):
        return self.tk

    def ticks_diff(self, a, b):
        return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000

    def time(self):
        return self.s0 + self.el // 1000


def test_board_clock_seconds_since_follows_the_rtc_without_reading_it_each_call():
    # boards/board.py: time.time() of a 32-bit port is a long int from 2034; the seconds
    # since a base are counted on the ticks between anchors (the RTC read once an hour)
    from boards.board import ANCHOR_MS, MonotonicClock

    clk = MonotonicClock(0)
    tm = _Time(T30 - 31, 500)  # 30.5 s before 2**30, mid-second
    clk._time = tm
    base = T30 - 100
    prev = None
    anchors = 0
    for k in range(3 * ANCHOR_MS // 1000 + 5):  # three hours, the ticks wrapping
        tm.advance(1013 if k % 7 == 3 else 1000)  # a jittery caller
        try:
            s = _locked(lambda: clk.seconds_since(base))
        except MemoryError:  # an anchor (a 32-bit core): the RTC read, a long int
            anchors += 1
            s = clk.seconds_since(base)
        exact = tm.time() - base
        assert exact - 1 <= s <= exact, (k, s, exact)
        assert prev is None or s >= prev, (k, s, prev)
        prev = s
    assert anchors <= 4, anchors  # the first call and one an hour
    clk.set_time(T30 + 5000)  # a set: the next call follows the new time at once
    assert clk.seconds_since(base) in (5100, 5099)
    clk.set_time(T30 - 5000)  # backwards too
    assert clk.seconds_since(base) in (-4900, -4901)
