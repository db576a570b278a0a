"""The demand consumer (meter/demand.py) feeds its window and thermal parts without a time
inside a sub-period (relative seconds, issue 12 session 8); it must give exactly what
feeding them with the RTC time every interval gave (the consumer before that change, here
a reference WindowDemand / ThermalDemand / Maxima fed alongside): captures, the window's
last time and open energy, the thermal value, the maxima, across RTC sets forwards and
backwards (inside a sub-period, across its end, a second before it), a power-fail warning
across a sub-period end, a warning with a set in it, and the state saved and restored
mid sub-period (a power cut), on both sides of 2**30 s."""

from test_rtc_31bit import _consumers
from billing.demand import ThermalDemand, WindowDemand, Maxima
from billing import config
from meter.demand import Demand


class _Sup:
    warning = False


def _ref(cfg):
    mx = Maxima(cfg.reset_lockout_s)
    w = WindowDemand(cfg.period_s, cfg.number_of_periods, cfg.policy, mx)
    return w, ThermalDemand(cfg.thermal_period_s), mx


def _run(t0, script):
    regs, clock, tf, dm, bl = _consumers(t0)
    sp = tf.supply = _Sup()
    cfg = config.Config()
    w, th, mx = _ref(cfg)
    caps = []
    rcaps = []
    for k in range(3000):
        act = script.get(k)
        if act is not None:
            kind, v = act
            if kind == "set":
                old = clock.time()
                clock.set_time(old + v)
                tf.clock_set()
                dm.clock_set(old, clock.time())
                bl.clock_set(clock.time())
                w.clock_set(old, clock.time(), tf.active)
                th.clock_set(old, clock.time())
            elif kind == "warn":
                sp.warning = v
            elif kind == "cut":  # the state restored into a new consumer after v s off
                st = dm.state()
                clock.now += 1000 * v
                tf.clock_set()  # (the tariffs' boot: their base taken from the RTC)
                d2 = Demand(cfg, tf)
                d2.restore(st)
                bl.demand = d2
                d2.power_up(clock.time())
                dm = d2
                w.power_up(clock.time(), tf.active)
                th.power_up(clock.time())
        clock.now += 1000
        regs.add(20000 + 37 * (k % 11), 0, 20000)
        for c in (tf, dm, bl):
            c.interval(20000, 0, 20000, 1000)
        if not tf.warn:
            t = clock.time()
            w.feed(t, tf.da, tf.prev)
            th.feed(t, tf.da, tf.prev, 1)
        if w.captures != len(rcaps):
            rcaps.append((w.capture_time, w.last_average))
        if dm.window.captures != len(caps):
            caps.append((dm.window.capture_time, dm.window.last_average))
    dm.state()
    got = (caps, dm.window._last, dm.window._acc, dm.thermal.value, dm.thermal._last,
           dm.maxima.value, dm.maxima.time)
    return got, (rcaps, w._last, w._acc, th.value, th._last, mx.value, mx.time)


def _check(script, t0=(1 << 30) - 1000):
    a, r = _run(t0, script)
    assert a == r, (a, r)


def test_set_forward_inside():
    _check({300: ("set", 100)})


def test_set_forward_across():
    _check({300: ("set", 2000)})


def test_set_back_small():
    _check({300: ("set", -100)})


def test_set_back_across():
    _check({300: ("set", -2000)})


def test_set_around_end():
    _check({897: ("set", 1), 1790: ("set", -5)})


def test_warn_across_end():
    s = {}
    s[800 - 3] = ("warn", True)
    s[800 + 8] = ("warn", False)
    _check(s, t0=(1 << 30) - 900 + 1 - 800 + 700)


def test_power_cut_mid_sub_period():
    _check({400: ("cut", 0), 1300: ("cut", 0)})


def test_power_cut_over_sub_period_ends():
    _check({400: ("cut", 200), 1300: ("cut", 2000), 2500: ("cut", 3)})


def test_warn_then_set():
    _check({100: ("warn", True), 105: ("set", 50), 106: ("warn", False)})
