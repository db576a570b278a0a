"""billing.tariff: the tariff in force in UTC across DST, and the exact energy split.

The split property test checks, for random plans and intervals (some across DST transitions
and passive activations), that the parts sum exactly to the energy and that each part is
within one unit of its exact share, against durations counted second by second. The no-switch
split is checked allocation-free under micropython.heap_lock() (MicroPython), also with
long-int times as a 32-bit port has them from 2034.
"""

import sys

from billing import tou
from billing.localtime import RULE_EU, RULE_US, Zone
from billing.tariff import TariffClock, split_exact
from civil import seconds

MICROPYTHON = sys.implementation.name == "micropython"


class _Rng:
    """Small deterministic PRNG (same sequence on CPython and MicroPython)."""

    def __init__(self, seed):
        self.s = seed & 0x7FFFFFFF or 1

    def below(self, n):
        self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.s >> 4) % n


def _cal(days, specials=(), passive=None, act=None):
    """Calendar with one season, day profile k for weekday k (days: 7 schedules)."""
    cfg = {
        "season_profile_active": [{"season_profile_name": "s", "season_start": "01-01",
                                   "week_name": "w"}],
        "week_profile_table_active": [dict({"week_profile_name": "w"}, **{
            n: k + 1 for k, n in enumerate(("monday", "tuesday", "wednesday", "thursday",
                                            "friday", "saturday", "sunday"))})],
        "day_profile_table_active": [
            {"day_id": k + 1, "day_schedule": [{"start_time": "%02d:%02d:%02d" % (
                s // 3600, s // 60 % 60, s % 60), "script_selector": t} for s, t in days[k]]}
            for k in range(7)],
        "special_days_table": list(specials),
    }
    if passive is not None:
        cfg["season_profile_passive"] = cfg["season_profile_active"]
        cfg["week_profile_table_passive"] = cfg["week_profile_table_active"]
        cfg["day_profile_table_passive"] = [
            {"day_id": k + 1, "day_schedule": [{"start_time": "00:00", "script_selector":
                                                passive}]} for k in range(7)]
        cfg["activate_passive_calendar_time"] = act
    return tou.load(cfg)


def _every_day(acts):
    return [acts] * 7


def test_utc_tariff_across_eu_spring_and_autumn():
    cal = _cal(_every_day(((0, 1), (2 * 3600 + 1800, 2), (6 * 3600, 3))))
    tc = TariffClock(cal, Zone(60, RULE_EU))
    on = seconds(2026, 3, 29, 1)  # 02:00 CET -> 03:00 CEST
    assert tc.window(on - 3600) == (1, on - 3600, on), "window ends at the transition"
    assert tc.tariff(on - 1) == 1
    assert tc.tariff(on) == 2, "the 02:30 action, skipped by the clock, runs at 03:00 CEST"
    assert tc.window(on)[2] == seconds(2026, 3, 29, 4), "06:00 CEST = 04:00 UTC"
    off = seconds(2026, 10, 25, 1)  # 03:00 CEST -> 02:00 CET
    assert tc.tariff(seconds(2026, 10, 25, 0, 29, 59)) == 1
    assert tc.tariff(seconds(2026, 10, 25, 0, 30)) == 2, "02:30 CEST"
    assert tc.tariff(off) == 1, "02:00 CET: back before 02:30"
    assert tc.tariff(seconds(2026, 10, 25, 1, 30)) == 2, "02:30 CET: the action runs again"
    assert tc.tariff(seconds(2026, 10, 25, 5)) == 3, "06:00 CET"


def test_utc_tariff_across_us_transitions():
    cal = _cal(_every_day(((0, 1), (2 * 3600 + 1800, 2), (6 * 3600, 3))))
    tc = TariffClock(cal, Zone(-300, RULE_US))
    on = seconds(2026, 3, 8, 7)
    assert tc.tariff(on - 1) == 1 and tc.tariff(on) == 2
    off = seconds(2026, 11, 1, 6)  # 02:00 EDT -> 01:00 EST
    assert tc.tariff(off - 1) == 1 and tc.tariff(off) == 1
    assert tc.tariff(seconds(2026, 11, 1, 7, 30)) == 2, "02:30 EST"


def _brute(cal, zone, t0, t1):
    """Seconds per tariff in [t0, t1), second by second."""
    d = [0] * 7
    for s in range(t0, t1):
        d[cal.tariff_at(zone.local(s))] += 1
    return d


def _check_split(tc, cal, zone, t0, t1, e):
    out = [0] * 7
    tc.split(t0, t1, e, out)
    assert sum(out) == e, (t0, t1, e, out)
    d = _brute(cal, zone, t0, t1)
    total = t1 - t0
    for k in range(1, 7):
        assert abs(out[k] * total - e * d[k]) < total, (k, out, d, e)
        if d[k] == 0:
            assert out[k] == 0
    return out


def test_split_property_random_plans_and_intervals():
    rng = _Rng(2026)
    zone = Zone(60, RULE_EU)
    for _plan in range(6):
        days = []
        for _ in range(7):
            n = 1 + rng.below(12)
            starts = sorted(set([rng.below(86400) for _ in range(n)] +
                                ([0] if rng.below(2) else [])))[:12]
            days.append([(s, 1 + rng.below(6)) for s in starts])
        cal = _cal(days)
        tc = TariffClock(cal, zone)
        sw = [seconds(2026, 3, 29, 1), seconds(2026, 10, 25, 1)]  # DST transitions
        for _ in range(20):
            day = seconds(2026, 1, 1) // 86400 + rng.below(365)
            prof = cal.day_profile(day)
            if rng.below(3) == 0:
                anchor = sw[rng.below(2)]
            else:
                anchor = zone.to_utc(day * 86400 + prof[rng.below(len(prof))][0])
            length = 1 + rng.below(900)
            t0 = anchor - rng.below(length + 1)
            e = rng.below(1000000) if rng.below(4) else rng.below(7)
            _check_split(tc, cal, zone, t0, t0 + length, e)


def test_split_many_switches_inside_one_interval():
    acts = [(k * 600, 1 + k % 6) for k in range(12)]  # every 10 min 00:00..01:50
    cal = _cal(_every_day(acts))
    zone = Zone(0)
    tc = TariffClock(cal, zone)
    t0 = seconds(2026, 5, 5) - 7
    out = _check_split(tc, cal, zone, t0, t0 + 7200 + 13, 1000003)
    assert all(out[k] > 0 for k in range(1, 7))
    for e in range(0, 13):  # tiny energies: every unit goes somewhere, exactly
        _check_split(tc, cal, zone, t0, t0 + 7200 + 13, e)


def test_split_in_milliseconds_negative_and_degenerate():
    cal = _cal(_every_day(((0, 1), (8 * 3600, 2))))
    tc = TariffClock(cal, Zone(0), unit=1000)
    t = seconds(2026, 5, 5, 8) * 1000
    out = [0] * 7
    assert tc.split(t - 250, t + 750, 1000, out) == 2
    assert out[1] == 250 and out[2] == 750
    out = [0] * 7
    tc.split(t - 333, t + 667, -1000, out)
    assert out[1] == -333 and out[2] == -667 and sum(out) == -1000
    out = [0] * 7
    tc.split(t + 5000, t + 5000, 9, out)
    tc.split(t + 5000, t - 5000, 4, out)  # clock set back inside the interval
    assert out[2] == 13 and sum(out) == 13
    assert split_exact(10, [1, 1, 1], [0, 0, 0]) == [4, 3, 3], "ties: the earlier weight"
    assert split_exact(7, [0, 5, 0], [0, 0, 0]) == [0, 7, 0]


def test_split_across_passive_activation_calls_back():
    seen = []
    cal = _cal(_every_day(((0, 1),)), passive=5, act="2026-07-01 12:00")
    tc = TariffClock(cal, Zone(120), on_activate=seen.append)
    act = seconds(2026, 7, 1, 10)  # 12:00 UTC+2
    out = [0] * 7
    tc.split(act - 30, act + 90, 120, out)
    assert out[1] == 30 and out[5] == 90
    assert seen == [act], seen
    tc.split(act + 90, act + 100, 10, out)
    assert seen == [act] and out[5] == 100


def test_split_allocates_nothing_without_a_switch():
    """Heap-locked on MicroPython: 200 one-second intervals inside one window; then the same
    with long-int times (>= 2**62 here, as RTC seconds >= 2**30 are on a 32-bit port)."""
    cal = _cal(_every_day(((0, 1), (22 * 3600, 2))))
    tc = TariffClock(cal, Zone(60, RULE_EU))
    out = [0] * 7
    t = seconds(2026, 5, 5, 12)
    tc.split(t - 1, t, 3, out)
    big = 1 << 62
    n_big = 200
    times = [t + k for k in range(201)]
    btimes = [big + k for k in range(n_big + 1)]
    if MICROPYTHON:
        import micropython

        micropython.heap_lock()
    try:
        for k in range(200):
            tc.split(times[k], times[k + 1], 3, out)
            tc.tariff(times[k])
    finally:
        if MICROPYTHON:
            micropython.heap_unlock()
    assert out[1] == 603 and tc.recomputes == 1
    tc._lo, tc._hi = big, big + 10 ** 6  # white box: the same window in long-int time
    if MICROPYTHON:
        micropython.heap_lock()
    try:
        for k in range(n_big):
            tc.split(btimes[k], btimes[k + 1], 2, out)
    finally:
        if MICROPYTHON:
            micropython.heap_unlock()
    assert out[1] == 1003


def test_special_day_on_a_dst_day_easter_sunday_2027():
    """2027-03-28 is both Western Easter Sunday and the EU spring transition: the special
    day's profile applies, and its 02:30 action (skipped hour) runs at 03:00 CEST."""
    spec = ({"index": 1, "easter_offset": 0, "day_id": 8},)
    cfg_days = [{"day_id": 1, "day_schedule": [{"start_time": "00:00", "script_selector": 1}]}]
    cfg_days.append({"day_id": 8, "day_schedule": [
        {"start_time": "00:00", "script_selector": 4},
        {"start_time": "02:30", "script_selector": 5},
        {"start_time": "23:59:59", "script_selector": 6}]})
    cfg = {
        "season_profile_active": [{"season_profile_name": "s", "season_start": "01-01",
                                   "week_name": "w"}],
        "week_profile_table_active": [dict({"week_profile_name": "w"}, **{
            n: 1 for n in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                           "sunday")})],
        "day_profile_table_active": cfg_days,
        "special_days_table": list(spec),
    }
    cal = tou.load(cfg)
    z = Zone(60, RULE_EU)
    tc = TariffClock(cal, z)
    on = seconds(2027, 3, 28, 1)
    assert z.transitions(2027)[0] == on
    assert tc.tariff(seconds(2027, 3, 27, 22, 59, 59)) == 1, "Saturday 23:59:59 CET"
    assert tc.tariff(seconds(2027, 3, 27, 23)) == 4, "Easter Sunday 00:00 CET"
    assert tc.tariff(on - 1) == 4
    assert tc.tariff(on) == 5, "02:30 skipped: runs at 03:00 CEST"
    assert tc.tariff(seconds(2027, 3, 28, 21, 59, 58)) == 5
    assert tc.tariff(seconds(2027, 3, 28, 21, 59, 59)) == 6, "23:59:59 CEST"
    assert tc.tariff(seconds(2027, 3, 28, 22)) == 1, "Monday 00:00 CEST"
    out = [0] * 7
    tc.split(on - 600, on + 600, 1200, out)
    assert out[4] == 600 and out[5] == 600


def test_special_day_on_us_dst_days_and_clock_set_back():
    cfg_days = [{"day_id": 1, "day_schedule": [{"start_time": "00:00", "script_selector": 1}]},
                {"day_id": 2, "day_schedule": [{"start_time": "01:30", "script_selector": 2},
                                               {"start_time": "02:30", "script_selector": 3}]}]
    cfg = {
        "season_profile_active": [{"season_profile_name": "s", "season_start": "01-01",
                                   "week_name": "w"}],
        "week_profile_table_active": [dict({"week_profile_name": "w"}, **{
            n: 1 for n in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                           "sunday")})],
        "day_profile_table_active": cfg_days,
        "special_days_table": [{"index": 1, "specialday_date": "2026-03-08", "day_id": 2},
                               {"index": 2, "specialday_date": "2026-11-01", "day_id": 2}],
    }
    z = Zone(-300, RULE_US)
    tc = TariffClock(tou.load(cfg), z)
    assert tc.tariff(seconds(2026, 3, 8, 6, 30)) == 2, "01:30 EST"
    assert tc.tariff(seconds(2026, 3, 8, 7)) == 3, "02:30 skipped: 03:00 EDT"
    # autumn: 01:30 happens twice (EDT then EST): the 01:30 action runs in both
    assert tc.tariff(seconds(2026, 11, 1, 5, 30)) == 2, "01:30 EDT"
    assert tc.tariff(seconds(2026, 11, 1, 6)) == 1, "01:00 EST: before 01:30 again -> carry"
    assert tc.tariff(seconds(2026, 11, 1, 6, 30)) == 2, "01:30 EST"
    assert tc.tariff(seconds(2026, 11, 1, 7, 30)) == 3, "02:30 EST"
    # the clock set back a day: the window is recomputed, not reused
    assert tc.tariff(seconds(2026, 10, 31, 7, 30)) == 1
    assert tc.tariff(seconds(2026, 11, 1, 7, 30)) == 3
