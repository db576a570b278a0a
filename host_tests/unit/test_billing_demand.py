"""billing.demand: block, sliding and thermal demand, maxima per tariff, demand reset,
power cuts (resume / synchronise / restart), clock sets, persistence, allocation.

Demand values are compared with an independent computation over pseudo-random per-second
loads (energies in mWh, demand in mW): exact integer arithmetic for block and sliding demand
(a float reference would lose the unit at 1e7 mW in the single-precision floats of the MCU
ports), float for the thermal one (its tolerance is relative).
"""

import sys

from billing import demand
from billing.demand import RESTART, RESUME, SYNCHRONISE, Maxima, ThermalDemand, WindowDemand
from civil import seconds

MICROPYTHON = sys.implementation.name == "micropython"
T0 = seconds(2026, 5, 5)  # a grid point of every period


class _Rng:
    def __init__(self, seed):
        self.s = seed

    def below(self, n):
        self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.s >> 4) % n


def _loads(n, seed=1, peak=7000):
    """n per-second energies (mWh), one at a time: slowly varying random load up to ~25 kW
    (the same sequence for the same arguments; streamed: a list of four hours of them does
    not fit the 96 KiB heap of an emulated STM32F205, tools/emu)."""
    rng = _Rng(seed)
    level = 1000
    for k in range(n):
        if k % 60 == 0:
            level = rng.below(peak)
        yield level + rng.below(300)


def _load(n, seed=1, peak=7000):
    return list(_loads(n, seed, peak))


def _tariff(t):
    return 1 + (t // 3600) % 6  # a new tariff every hour (switches on period boundaries)


def test_block_and_sliding_against_an_exact_reference():
    count = 4 * 3600 + 123
    for period, n in ((900, 1), (1800, 1), (3600, 1), (300, 3), (600, 7), (60, 15)):
        mx = Maxima()
        d = WindowDemand(period, n, RESUME, mx)
        caps = []
        # reference: sums per aligned sub-period (exact ints), windows of n; the demand
        # win * 3600 / (period * n) mW is a rational: |v - demand| <= 1/2 checked as
        # |v * den - win * 3600| * 2 <= den, in integers (no float rounding at all)
        subs = [0] * (count // period)
        k = 0
        for e in _loads(count, seed=3):
            t = T0 + k + 1
            if d.feed(t, e, _tariff(t - 1)):
                caps.append((d.capture_time, d.last_average, d.last_complete))
            if k // period < len(subs):
                subs[k // period] += e
            k += 1
        assert len(caps) == len(subs), (period, n, len(caps), len(subs))
        ref_max = [0] * 7
        ref_time = [0] * 7
        den = period * n
        for j in range(len(subs)):
            win = sum(subs[max(0, j - n + 1): j + 1])
            ct, v, complete = caps[j]
            assert ct == T0 + (j + 1) * period
            assert abs(v * den - win * 3600) * 2 <= den, (period, n, j, v, win * 3600, den)
            assert complete == (j >= n), "first window complete only after n sub-periods"
            tar = _tariff(ct - 1)
            for i in (0, tar):
                if v > ref_max[i]:
                    ref_max[i] = v
                    ref_time[i] = ct
        assert mx.value == ref_max, (period, n, mx.value, ref_max)
        assert mx.time == ref_time


def test_interval_straddling_a_boundary_is_split_exactly():
    d = WindowDemand(900, 1)
    d.feed(T0 + 899, 0)
    assert d.feed(T0 + 901, 1001)  # 1 s before, 1 s after the boundary
    assert d.last_average == 500 * 4 and d.capture_time == T0 + 900
    assert not d.feed(T0 + 1800 - 1, 0)
    assert d.feed(T0 + 1800, 0) and d.last_average == 501 * 4


def test_current_average_open_window():
    d = WindowDemand(300, 3)
    for k in range(1, 601):
        d.feed(T0 + k, 10)  # 36 W in mWh per second, 2 sub-periods
    assert d.current_average() == (3000 + 3000 + 0) * 4, "2 closed + the open one (empty)"
    d.feed(T0 + 750, 1500)
    assert d.current_average() == (3000 + 3000 + 1500) * 4


def test_thermal_step_response_90_and_99_percent():
    for T in (300, 900, 3600):
        th = ThermalDemand(T)
        p = 10000000  # 10 kW in mW: 10 000 000 / 3600 mWh per second is not an integer
        e = p // 3600
        pv = e * 3600
        for k in range(1, 2 * T + 1):
            th.feed(T0 + k, e)
            if k == T:
                assert abs(th.value - 0.9 * pv) <= 0.0002 * pv, (T, th.value)
            if k == T // 3 and T == 900:  # 5 min: 53.6 %
                assert abs(th.value / pv - 0.536) < 0.001, th.value / pv
        assert abs(th.value - 0.99 * pv) <= 0.0002 * pv, (T, th.value)
        assert abs(T / 2.302585093 - {300: 130.3, 900: 390.9, 3600: 1563.5}[T]) < 0.1


def test_thermal_against_float_random_load():
    count = 3 * 3600
    es = _loads(count, seed=9)
    th = ThermalDemand(900, Maxima())
    a = 1.0 - 10.0 ** (-1.0 / 900)
    y = 0.0
    best = 0.0
    k = 0
    while k < count:
        dt = 1 + (k // 1000) % 3  # also multi-second feeds
        e = 0
        for _ in range(min(dt, count - k)):  # the next dt energies (fewer at the end)
            e += next(es)
        p = e * 3600 // dt
        for _ in range(dt):
            y += a * (p - y)
        k += dt
        th.feed(T0 + k, e, 2, dt)
        assert abs(th.value - y) <= 2 + 1e-4 * y, (k, th.value, y)
        best = max(best, y)
    assert abs(th.maxima.value[0] - best) <= 2 + 1e-4 * best
    assert th.maxima.value[2] == th.maxima.value[0] and th.maxima.value[1] == 0


def test_thermal_decays_over_an_outage_and_ignores_clock_sets():
    th = ThermalDemand(900)
    for k in range(1, 5 * 900):
        th.feed(T0 + k, 1000)
    v = th.value
    th.power_down(T0 + 4500)
    th.power_up(T0 + 4500 + 900)
    assert abs(th.value - v * 0.1) <= 2 + 1e-4 * v, (th.value, v)
    w = th.value
    th.clock_set(T0 + 5400, T0 - 86400)
    assert th.value == w
    th.power_up(T0 + 10 ** 6)
    assert th.value == 0
    try:
        th.feed(T0, 1, 1, 0)
        assert False
    except ValueError:
        pass


def _run(d, t_from, t_to, e=1000, tariff=1):
    caps = []
    for t in range(t_from + 1, t_to + 1):
        if d.feed(t, e, tariff):
            caps.append((d.capture_time, d.last_average, d.last_complete))
    return caps


def test_power_cut_inside_one_period_resume_sync_restart():
    # 300 s fed, outage 300..500, 400 s more: all in the sub-period [T0, T0 + 900)
    for pol in (RESUME, SYNCHRONISE, RESTART):
        mx = Maxima()
        d = WindowDemand(900, 1, pol, mx)
        d.feed(T0, 0)  # start exactly on the grid
        _run(d, T0, T0 + 300)
        d.power_down(T0 + 300)
        caps = []
        if d.power_up(T0 + 500):
            caps.append((d.capture_time, d.last_average, d.last_complete))
        caps += _run(d, T0 + 500, T0 + 900)
        if pol == RESTART:
            assert caps[0] == (T0 + 300, 300 * 1000 * 4, False), caps
            assert d.start_time_current == T0 + 500 and d._end == T0 + 1400
            assert len(caps) == 1, "next capture at power-up + 900"
            caps += _run(d, T0 + 900, T0 + 1400)
            assert caps[-1] == (T0 + 1400, 900 * 1000 * 4, True), caps
        else:
            assert caps == [(T0 + 900, 700 * 1000 * 4, False)], caps
            want = 0 if pol == SYNCHRONISE else 700 * 1000 * 4
            assert mx.value[0] == want, (pol, mx.value)
            caps = _run(d, T0 + 900, T0 + 1800)
            assert caps == [(T0 + 1800, 900 * 1000 * 4, True)] and mx.value[0] == 3600000


def test_power_cut_across_periods_sliding():
    mx = Maxima()
    d = WindowDemand(300, 3, RESUME, mx)
    d.feed(T0, 0)
    _run(d, T0, T0 + 1000)  # closes 300, 600, 900; open [900, 1200) with 100 s
    d.power_down(T0 + 1000)
    assert d.power_up(T0 + 1850)  # [900,1200) closes; [1200,1500) and [1500,1800) are zero
    assert d.capture_time == T0 + 1200
    assert d.last_average == (300 + 300 + 100) * 1000 * 4
    caps = _run(d, T0 + 1850, T0 + 2700)
    assert caps[0] == (T0 + 2100, (0 + 0 + 250) * 1000 * 4, False), caps
    assert caps[1] == (T0 + 2400, (0 + 250 + 300) * 1000 * 4, False)
    assert caps[2] == (T0 + 2700, (250 + 300 + 300) * 1000 * 4, False)
    caps = _run(d, T0 + 2700, T0 + 3000)
    assert caps == [(T0 + 3000, 900 * 1000 * 4, True)], "window of 3 whole sub-periods"
    # synchronise: nothing offered until a window of complete sub-periods
    mx2 = Maxima()
    d2 = WindowDemand(300, 3, SYNCHRONISE, mx2)
    d2.feed(T0, 0)
    _run(d2, T0, T0 + 1000, 2000)
    assert mx2.value[0] == 900 * 2000 * 4, "first complete window at T0 + 900"
    d2.power_down(T0 + 1000)
    d2.power_up(T0 + 1850)
    _run(d2, T0 + 1850, T0 + 2700, 5000)  # high load, but windows incomplete
    assert mx2.value[0] == 900 * 2000 * 4, mx2.value
    _run(d2, T0 + 2700, T0 + 3000, 5000)
    assert mx2.value[0] == 900 * 5000 * 4 and mx2.time[0] == T0 + 3000


def test_power_back_exactly_on_a_boundary():
    d = WindowDemand(900, 1, SYNCHRONISE, Maxima())
    d.feed(T0, 0)
    _run(d, T0, T0 + 100)
    d.power_down(T0 + 100)
    d.power_up(T0 + 1800)
    caps = _run(d, T0 + 1800, T0 + 2700)
    assert caps == [(T0 + 2700, 900 * 1000 * 4, True)], caps
    assert d.maxima.value[0] == 900 * 1000 * 4


def test_clock_set_backwards_across_periods_conserves_energy():
    """Energy is never doubled into one demand value: every captured sub-period holds at most
    one period's worth of fed seconds, and captured + open energy = energy fed."""
    for pol in (RESUME, SYNCHRONISE, RESTART):
        mx = Maxima()
        d = WindowDemand(900, 1, pol, mx)
        d.feed(T0, 0)
        total = 0
        caps = []
        t = T0
        for _k in range(2000):
            t += 1
            total += 1000
            if d.feed(t, 1000, 1):
                caps.append((d.capture_time, d.last_average))
        old = t
        t = T0 + 650  # set back 1350 s: across the boundaries at 900 and 1800
        if d.clock_set(old, t, 1):
            caps.append((d.capture_time, d.last_average))
        assert caps[-1] == (old, 200 * 1000 * 4), caps[-1]  # [1800, 2000) closed at the set
        assert d.start_time_current == t
        for _k in range(3000):
            t += 1
            total += 1000
            if d.feed(t, 1000, 2):
                caps.append((d.capture_time, d.last_average))
        got = sum(v // 4 for _ct, v in caps) + d._acc
        assert got == total, (pol, got, total)
        assert all(v <= 900 * 1000 * 4 for _ct, v in caps)
        assert caps[-4][0] == T0 + 900, "the first capture after the set: the grid end"
        assert caps[-4][0] < caps[-5][0], "capture times went back with the clock"


def test_unannounced_clock_jumps_are_clock_sets():
    d = WindowDemand(900, 1)
    d.feed(T0, 0)
    _run(d, T0, T0 + 100)
    assert d.feed(T0 + 5000, 1000)  # forward by more than a period: taken as a clock set
    assert d.capture_time == T0 + 100 and d.last_average == 101 * 1000 * 4
    assert d.start_time_current == T0 + 5000
    assert d.feed(T0 + 5000 - 2000, 1000)  # backwards
    assert d.last_average == 1000 * 4 * 1, "the open sub-period (1 feed) closed at the set"


def test_demand_reset_lockout_and_cumulative():
    mx = Maxima(lockout_s=3600)
    mx.offer(5000, T0, 2)
    assert mx.reset(T0 + 10, manual=True)
    assert mx.cum[0] == 5000 and mx.cum[2] == 5000 and mx.value == [0] * 7
    mx.offer(7000, T0 + 20, 3)
    assert not mx.reset(T0 + 100, manual=True), "manual reset within the lockout"
    assert mx.value[3] == 7000
    assert mx.reset(T0 + 200), "the scheduled reset is not locked out"
    assert mx.cum[0] == 12000 and mx.cum[3] == 7000 and mx.resets == 2
    assert not mx.reset(T0 + 200 + 3599, manual=True)
    assert mx.reset(T0 + 200 + 3600, manual=True)
    assert mx.reset(T0 - 86400, manual=True), "a clock set before the last reset: allowed"
    mx.offer(3, T0, 1)
    mx.offer(3, T0 + 5, 1)
    assert mx.time[1] == T0, "an equal later value keeps the first time"


def test_state_round_trip_continues_identically():
    es = _load(5000, seed=5)
    for mk in (lambda: WindowDemand(300, 4, SYNCHRONISE, Maxima(600)),
               lambda: WindowDemand(900, 1, RESTART, None),
               lambda: ThermalDemand(600, Maxima())):
        a = mk()
        for k in range(2345):
            a.feed(T0 + k + 1, es[k], _tariff(T0 + k))
        a.power_down(T0 + 2345)
        blob = a.state()
        b = mk()
        b.restore(blob)
        assert b.state() == blob
        for x in (a, b):
            x.power_up(T0 + 2999)
            for k in range(3000, 5000):
                x.feed(T0 + k, es[k], _tariff(T0 + k))
        assert a.state() == b.state()
        if isinstance(a, WindowDemand):
            assert (a.last_average, a.capture_time) == (b.last_average, b.capture_time)
    w = WindowDemand(900, 1).state()
    assert len(w) == 40 + 4, len(w)
    assert len(WindowDemand(300, 3, maxima=Maxima()).state()) == 40 + 12 + 128
    for bad in (lambda: WindowDemand(900, 2).restore(w),
                lambda: WindowDemand(1800, 1).restore(w),
                lambda: WindowDemand(900, 1, maxima=Maxima()).restore(w),
                lambda: ThermalDemand(900).restore(b"\x01"),
                lambda: Maxima(tariffs=4).restore(Maxima().state())):
        try:
            bad()
            assert False
        except ValueError:
            pass


def test_bad_configuration_named():
    for fn, name in ((lambda: WindowDemand(700), "period_s"),
                     (lambda: WindowDemand(900, 16), "number_of_periods"),
                     (lambda: WindowDemand(900, 1, 9), "policy"),
                     (lambda: ThermalDemand(200), "period_s"),
                     (lambda: Maxima(-1), "lockout_s"),
                     (lambda: Maxima(0, 7), "tariffs")):
        try:
            fn()
            assert False, name
        except ValueError as e:
            assert str(e).startswith(name), (name, e)


def test_feed_allocates_nothing_between_captures():
    """Heap-locked on MicroPython: window and thermal feeds (no capture), with ordinary and
    long-int times (>= 2**62 here, as RTC seconds >= 2**30 on a 32-bit port)."""
    w = WindowDemand(900, 3 - 2, RESUME, Maxima())
    th = ThermalDemand(900, Maxima())
    w.feed(T0 + 1, 5)
    th.feed(T0 + 1, 5)
    big = 1 << 62
    wb = WindowDemand(900, 1, RESUME, Maxima())
    wb._end, wb._last = big + 900, big  # white box: an open sub-period in long-int time
    times = [T0 + 2 + k for k in range(200)]
    btimes = [big + 1 + k for k in range(200)]
    if MICROPYTHON:
        import micropython

        micropython.heap_lock()
    try:
        for k in range(200):
            w.feed(times[k], 2000 + k, 3)
            th.feed(times[k], 2000 + k, 3)
            wb.feed(btimes[k], 7, 2)
            th.feed(btimes[k], 3000, 4)
    finally:
        if MICROPYTHON:
            micropython.heap_unlock()
    assert w.captures == 0 and th.value > 0 and wb._acc == 1400
    assert th.maxima.time[4] == btimes[-1] or th.maxima.value[4] > 0
    assert demand.RESUME == 0
