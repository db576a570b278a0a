"""billing.localtime: DST rules (EU, North America), UTC <-> local, the skipped and repeated
hours, clock status bits, VDEW time stamps.

Runs under MicroPython against fixed expectations (transition days 2000..2099 precomputed
with dateutil.rrule); the ``*_dateutil`` tests check the same against python-dateutil's
rrule/tzstr and run only under CPython (MicroPython has no dateutil).
"""

import sys

from billing import localtime
from billing.localtime import RULE_EU, RULE_NONE, RULE_US, Zone
from civil import civil, seconds

CPY = sys.implementation.name != "micropython"
H = 3600

# Per year 2000..2099: day of the EU start (last Sunday of March), EU end (last Sunday of
# October), US start (second Sunday of March), US end (first Sunday of November); two digits
# each. Generated once with dateutil.rrule(YEARLY, bymonth=.., byweekday=SU(-1 / +2 / +1)).
_DAYS = (
    "26291205252811043127100330260902283114072730130626291205252811043026090229250801"
    "28311407273013062528110431271003302609022925080127301306262912052528110431271003"
    "29250801283114072730130626291205312710033026090229250801283114072629120525281104"
    "31271003302609022831140727301306262912052528110430260902292508012831140727301306"
    "25281104312710033026090229250801273013062629120525281104312710032925080128311407"
    "27301306262912053127100330260902292508012831140726291205252811043127100330260902"
    "28311407273013062629120525281104302609022925080128311407273013062528110431271003"
    "30260902292508012730130626291205252811043127100329250801283114072730130626291205"
    "31271003302609022925080128311407262912052528110431271003302609022831140727301306"
    "26291205252811043026090229250801283114072730130625281104312710033026090229250801"
)


def _expected(y):
    i = (y - 2000) * 8
    return tuple(int(_DAYS[i + k: i + k + 2]) for k in (0, 2, 4, 6))


def _raises(fn, *a):
    try:
        fn(*a)
    except ValueError as e:
        return str(e)
    return None


def test_transition_days_2000_2099_both_rules():
    eu = Zone(60, RULE_EU)
    us = Zone(-300, RULE_US)
    for y in range(2000, 2100):
        a, b, c, d = _expected(y)
        assert eu.transitions(y) == (seconds(y, 3, a, 1), seconds(y, 10, b, 1)), y
        assert us.transitions(y) == (seconds(y, 3, c, 7), seconds(y, 11, d, 6)), y


def test_table_matches_reference_2025_2030():
    # billing reference A8 (dates computed with the tz rules)
    ref = {2025: (30, 26, 9, 2), 2026: (29, 25, 8, 1), 2027: (28, 31, 14, 7),
           2028: (26, 29, 12, 5), 2029: (25, 28, 11, 4), 2030: (31, 27, 10, 3)}
    for y, v in ref.items():
        assert _expected(y) == v, y


def test_next_transition_chain_2000_2099():
    for z, hrs in ((Zone(60, RULE_EU), (1, 1)), (Zone(-300, RULE_US), (7, 6))):
        t = seconds(2000, 1, 2)
        seen = 0
        while True:
            nt = z.next_transition(t)
            y = civil(nt)[0]
            if y > 2099:
                break
            a, b, c, d = _expected(y)
            on, off = (seconds(y, 3, a, hrs[0]), seconds(y, 10, b, hrs[1])) if \
                z.rule == RULE_EU else (seconds(y, 3, c, hrs[0]), seconds(y, 11, d, hrs[1]))
            assert nt in (on, off), (y, nt)
            assert not z.is_dst(nt - 1) == z.is_dst(nt), "flag flips at the transition"
            assert z.next_transition(nt - 1) == nt
            t = nt
            seen += 1
        assert seen == 200, seen
    assert Zone(60).next_transition(0) is None


def test_local_and_flag_around_eu_transitions():
    z = Zone(60, RULE_EU)
    on = seconds(2026, 3, 29, 1)
    assert z.to_local(on - 1) == (seconds(2026, 3, 29, 1, 59, 59), False)
    assert z.to_local(on) == (seconds(2026, 3, 29, 3), True)
    off = seconds(2026, 10, 25, 1)
    assert z.to_local(off - 1) == (seconds(2026, 10, 25, 2, 59, 59), True)
    assert z.to_local(off) == (seconds(2026, 10, 25, 2), False)
    assert z.offset(seconds(2026, 1, 15)) == H and z.offset(seconds(2026, 7, 15)) == 2 * H
    # WET/WEST and EET/EEST switch at the same UTC instant
    for off_min in (0, 120):
        assert Zone(off_min, RULE_EU).transitions(2026) == z.transitions(2026)


def test_local_and_flag_around_us_transitions():
    z = Zone(-300, RULE_US)
    on = seconds(2026, 3, 8, 7)  # 02:00 EST
    assert z.to_local(on - 1) == (seconds(2026, 3, 8, 1, 59, 59), False)
    assert z.to_local(on) == (seconds(2026, 3, 8, 3), True)
    off = seconds(2026, 11, 1, 6)  # 02:00 EDT
    assert z.to_local(off - 1) == (seconds(2026, 11, 1, 1, 59, 59), True)
    assert z.to_local(off) == (seconds(2026, 11, 1, 1), False)
    pst = Zone(-480, RULE_US)
    assert pst.transitions(2026) == (seconds(2026, 3, 8, 10), seconds(2026, 11, 1, 9))


def test_skipped_and_repeated_hours():
    z = Zone(60, RULE_EU)
    gap = seconds(2026, 3, 29, 2, 30)
    assert z.classify(gap) == localtime.LOCAL_GAP
    assert z.to_utc(gap) == seconds(2026, 3, 29, 1, 30), "fold 0: 02:30 CET = 03:30 CEST"
    assert z.to_utc(gap, 1) == seconds(2026, 3, 29, 0, 30)
    assert z.local(z.to_utc(gap)) == seconds(2026, 3, 29, 3, 30)
    assert z.classify(seconds(2026, 3, 29, 3)) == localtime.LOCAL_NORMAL
    assert z.classify(seconds(2026, 3, 29, 1, 59, 59)) == localtime.LOCAL_NORMAL
    rep = seconds(2026, 10, 25, 2, 30)
    assert z.classify(rep) == localtime.LOCAL_REPEATED
    assert z.to_utc(rep) == seconds(2026, 10, 25, 0, 30), "first occurrence: CEST"
    assert z.to_utc(rep, 1) == seconds(2026, 10, 25, 1, 30), "second occurrence: CET"
    assert z.classify(seconds(2026, 10, 25, 3)) == localtime.LOCAL_NORMAL
    assert z.classify(seconds(2026, 10, 25, 1, 59, 59)) == localtime.LOCAL_NORMAL
    n = Zone(60)
    assert n.classify(gap) == localtime.LOCAL_NORMAL and n.to_utc(gap) == gap - H


def test_round_trip_every_hour_2026_both_rules():
    for z in (Zone(60, RULE_EU), Zone(-300, RULE_US), Zone(330), Zone(-210, RULE_US, 30)):
        u = seconds(2026, 1, 1)
        while u < seconds(2027, 1, 1):
            loc, d = z.to_local(u)
            fold = 0 if d else 1
            assert z.to_utc(loc, fold) == u, (z.std, u)
            u += 1800


def test_status_bits_and_deviation():
    assert (localtime.STATUS_INVALID, localtime.STATUS_DOUBTFUL,
            localtime.STATUS_DIFFERENT_BASE, localtime.STATUS_INVALID_STATUS,
            localtime.STATUS_DST) == (1, 2, 4, 8, 0x80)
    z = Zone(60, RULE_EU)
    summer = seconds(2026, 7, 1)
    assert z.status(summer) == 0x80 and z.status(seconds(2026, 1, 1)) == 0
    assert z.status(summer, localtime.STATUS_DOUBTFUL) == 0x82
    assert z.deviation(seconds(2026, 1, 1)) == -60 and z.deviation(summer) == -120
    assert Zone(-300, RULE_US).deviation(seconds(2026, 1, 1)) == 300


def test_vdew_stamps():
    z = Zone(60, RULE_EU)
    assert z.vdew_stamp(seconds(2022, 8, 23, 14, 15)) == "1220823161500"
    assert z.vdew_stamp(seconds(2022, 1, 23, 14, 15), False) == "02201231515"
    rep1 = z.vdew_stamp(seconds(2026, 10, 25, 0, 30))
    rep2 = z.vdew_stamp(seconds(2026, 10, 25, 1, 30))
    assert rep1 == "1261025023000" and rep2 == "0261025023000"
    assert z.from_vdew(rep1) == seconds(2026, 10, 25, 0, 30)
    assert z.from_vdew(rep2) == seconds(2026, 10, 25, 1, 30)
    assert z.from_vdew("12608231615") == seconds(2026, 8, 23, 14, 15)
    for bad in ("2260823161500", "126082316150", "1261323161500", "x"):
        assert _raises(z.from_vdew, bad), bad


def test_bad_arguments_named():
    assert "offset_min" in _raises(Zone, 61)
    assert "offset_min" in _raises(Zone, 900)
    assert "rule" in _raises(Zone, 0, 7)
    assert "dst_min" in _raises(Zone, 0, RULE_EU, 0)
    assert Zone(0, RULE_NONE, 60).dst == 0


def test_cached_path_allocates_nothing():
    """offset()/is_dst() inside the cached year only compare (heap-locked on MicroPython)."""
    z = Zone(60, RULE_EU)
    t = seconds(2030, 6, 1)
    z.offset(t)
    if not CPY:
        import micropython

        micropython.heap_lock()
    try:
        for k in range(100):
            z.offset(t + k)
            z.is_dst(t + k)
    finally:
        if not CPY:
            micropython.heap_unlock()


# ---- CPython only: python-dateutil as the independent reference ---------------------------
def _du():
    import datetime as dt

    from dateutil import tz

    eu = tz.tzstr("CET-1CEST,M3.5.0,M10.5.0/3")
    us = tz.tzstr("EST5EDT,M3.2.0,M11.1.0")
    return dt, tz, ((Zone(60, RULE_EU), eu), (Zone(-300, RULE_US), us))


def test_transition_days_dateutil():
    """CPython only (python-dateutil): rrule gives the same transition days 2000..2099."""
    if not CPY:
        return
    import datetime as dt

    from dateutil.rrule import SU, YEARLY, rrule

    for y in range(2000, 2100):
        a = dt.datetime(y, 1, 1)

        def day(m, wd, a=a):
            return rrule(YEARLY, count=1, bymonth=m, byweekday=wd, dtstart=a)[0].day

        assert _expected(y) == (day(3, SU(-1)), day(10, SU(-1)), day(3, SU(+2)),
                                day(11, SU(+1))), y


def test_conversions_dateutil():
    """CPython only (python-dateutil tzstr): around every transition 2000..2099, and every
    quarter hour 00:00..06:00 (and noon, 23:59:59) of the transition days, UTC -> local, the
    DST flag and local -> UTC (both folds, gaps via resolve_imaginary) agree with dateutil."""
    if not CPY:
        return
    dt, tz, zones = _du()
    epoch = dt.datetime(2000, 1, 1, tzinfo=tz.UTC)
    nepoch = dt.datetime(2000, 1, 1)
    for z, dz in zones:
        for y in range(2000, 2100):
            for tr in z.transitions(y):
                for u in (tr - 3601, tr - 1, tr, tr + 1, tr + 3599, tr + 7200):
                    d = (epoch + dt.timedelta(seconds=u)).astimezone(dz)
                    loc = int((d.replace(tzinfo=None) - nepoch).total_seconds())
                    assert z.to_local(u) == (loc, bool(d.dst())), (y, u)
                day0 = z.local(tr) // 86400 * 86400
                for k in list(range(0, 6 * 3600, 900)) + [12 * 3600, 86399]:
                    loc = day0 + k
                    nd = nepoch + dt.timedelta(seconds=loc)
                    ld = nd.replace(tzinfo=dz)
                    if not tz.datetime_exists(ld):
                        assert z.classify(loc) == localtime.LOCAL_GAP
                        ref = tz.resolve_imaginary(ld).astimezone(tz.UTC)
                        assert z.to_utc(loc) == int((ref - epoch).total_seconds()), (y, k)
                        continue
                    amb = tz.datetime_ambiguous(ld)
                    assert z.classify(loc) == (localtime.LOCAL_REPEATED if amb
                                               else localtime.LOCAL_NORMAL), (y, k)
                    for fold in (0, 1):
                        ref = tz.enfold(ld, fold).astimezone(tz.UTC)
                        assert z.to_utc(loc, fold) == int((ref - epoch).total_seconds()), \
                            (y, k, fold)


def test_random_times_dateutil():
    """CPython only (python-dateutil): 5 000 random instants 2000..2099 per rule."""
    if not CPY:
        return
    import random

    dt, tz, zones = _du()
    epoch = dt.datetime(2000, 1, 1, tzinfo=tz.UTC)
    nepoch = dt.datetime(2000, 1, 1)
    rnd = random.Random(10)
    for z, dz in zones:
        for _ in range(5000):
            u = rnd.randrange(86400, seconds(2099, 12, 31))
            d = (epoch + dt.timedelta(seconds=u)).astimezone(dz)
            loc = int((d.replace(tzinfo=None) - nepoch).total_seconds())
            assert z.to_local(u) == (loc, bool(d.dst())), u
