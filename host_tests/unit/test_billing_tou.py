"""billing.tou: activity calendar (DLMS class 20) + special days (class 11).

Season / week / day / special-day resolution, movable holidays 2025..2035, switching at
00:00 and 23:59:59, carry-over from the previous day, leap days, limits, passive
activation, and validation errors naming the field. Fixed expectations run under
MicroPython; ``*_dateutil`` tests compare with an independent resolver built on datetime and
python-dateutil (easter, rrule byeaster) and run only under CPython.
"""

import json
import sys

from billing import tou
from civil import seconds

CPY = sys.implementation.name != "micropython"

_WEEK = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _week(name, days):
    w = {"week_profile_name": name}
    for k in range(7):
        w[_WEEK[k]] = days[k]
    return w


def _day(did, acts):
    return {"day_id": did, "day_schedule": [{"start_time": s, "script_selector": t}
                                            for s, t in acts]}


def plan_cfg():
    """Two seasons, weekday/weekend profiles, fixed and movable holidays (both computi)."""
    return {
        "calendar_name_active": "HT/NT",
        "season_profile_active": [
            {"season_profile_name": "winter", "season_start": "10-01", "week_name": "W"},
            {"season_profile_name": "summer", "season_start": "04-01", "week_name": "S"}],
        "week_profile_table_active": [_week("W", (1, 1, 1, 1, 1, 2, 3)),
                                      _week("S", (4, 4, 4, 4, 4, 2, 3))],
        "day_profile_table_active": [
            _day(1, (("06:00", 2), ("22:00", 1))),
            _day(2, (("00:00", 1), ("08:00", 3), ("12:00", 1))),
            _day(3, (("00:00", 1),)),
            _day(4, (("07:00", 2), ("21:00", 1), ("23:59:59", 5)))],
        "special_days_table": [
            {"index": 1, "specialday_date": "01-01", "day_id": 3},
            {"index": 2, "specialday_date": "12-25", "day_id": 3},
            {"index": 3, "easter_offset": 1, "day_id": 3},
            {"index": 4, "easter_offset": -2, "day_id": 3},
            {"index": 5, "easter_offset": 39, "day_id": 3},
            {"index": 6, "easter_offset": 50, "day_id": 3},
            {"index": 7, "easter_offset": 1, "computus": "orthodox", "day_id": 2},
            {"index": 8, "specialday_date": "2026-05-04", "day_id": 2},
            {"index": 9, "specialday_date": "02-29", "day_id": 2},
            {"index": 10, "easter_offset": 60, "day_id": 1}],
    }


def _err(cfg):
    try:
        tou.load(cfg)
    except ValueError as e:
        return str(e)
    raise AssertionError("accepted: %r" % (cfg,))


def _at(y, m, d, hh=0, mi=0, ss=0):
    return seconds(y, m, d, hh, mi, ss)


# ---- resolution, fixed expectations -------------------------------------------------------
def test_default_plan_is_one_tariff():
    cal = tou.load(tou.DEFAULT)
    for t in (0, _at(2026, 3, 29, 2, 30), _at(2099, 12, 31, 23, 59, 59)):
        assert cal.tariff_at(t) == 1
        assert cal.next_switch(t) == (t // 86400 + 1) * 86400
    assert tou.load(json.loads(tou.DEFAULT)).tariff_at(12345) == 1  # the parsed dict


def test_season_week_day_resolution():
    cal = tou.load(plan_cfg())
    # Wed 2026-01-14 winter weekday (day 1)
    assert cal.tariff_at(_at(2026, 1, 14, 5, 59, 59)) == 1
    assert cal.tariff_at(_at(2026, 1, 14, 6)) == 2
    assert cal.tariff_at(_at(2026, 1, 14, 21, 59, 59)) == 2
    assert cal.tariff_at(_at(2026, 1, 14, 22)) == 1
    # Sat 2026-01-17 (day 2), Sun 2026-01-18 (day 3)
    assert [cal.tariff_at(_at(2026, 1, 17, h)) for h in (0, 7, 8, 11, 12)] == [1, 1, 3, 3, 1]
    assert cal.tariff_at(_at(2026, 1, 18, 9)) == 1
    # summer weekday (day 4, no 00:00 action): Tue 2026-06-16 00:30 carries Monday's 23:59:59
    assert cal.tariff_at(_at(2026, 6, 16, 0, 30)) == 5
    assert cal.tariff_at(_at(2026, 6, 16, 7)) == 2
    assert cal.tariff_at(_at(2026, 6, 16, 23, 59, 58)) == 1
    assert cal.tariff_at(_at(2026, 6, 16, 23, 59, 59)) == 5
    # Monday after a summer Sunday (day 3 ends with tariff 1): 00:30 -> 1
    assert cal.tariff_at(_at(2026, 6, 15, 0, 30)) == 1
    # season boundaries: 03-31 winter (Tue, day 1), 04-01 summer (Wed, day 4)
    assert cal.tariff_at(_at(2026, 3, 31, 6, 30)) == 2
    assert cal.tariff_at(_at(2026, 4, 1, 6, 30)) == 1, "summer day 4: before 07:00 -> carry"
    assert cal.tariff_at(_at(2026, 4, 1, 0, 0)) == 1, "carry from 03-31 (winter day 1, 22:00)"
    assert cal.tariff_at(_at(2026, 9, 30, 6, 30)) == 5
    assert cal.tariff_at(_at(2026, 10, 1, 6, 30)) == 2


def test_special_days_fixed_and_movable():
    cal = tou.load(plan_cfg())
    # 2026: Western Easter 04-05, Orthodox 04-12
    for d in ((1, 1), (12, 25), (4, 3), (4, 6), (5, 14), (5, 25)):
        assert cal.tariff_at(_at(2026, d[0], d[1], 9)) == 1, d  # day 3: tariff 1 all day
    assert cal.tariff_at(_at(2026, 4, 13, 9)) == 3, "Orthodox Easter Monday: day 2"
    assert cal.tariff_at(_at(2026, 5, 4, 9)) == 3, "dated 2026-05-04: day 2"
    assert cal.tariff_at(_at(2027, 5, 4, 9)) == 2, "2027-05-04 ordinary summer Tuesday"
    assert cal.tariff_at(_at(2026, 6, 4, 9)) == 2, "Corpus Christi -> day 1 (weekday profile)"
    assert cal.tariff_at(_at(2026, 6, 4, 22, 30)) == 1
    assert cal.tariff_at(_at(2026, 12, 24, 9)) == 2 and cal.tariff_at(_at(2026, 12, 26, 9)) == 3


# MMDD of Good Friday, Easter Monday, Ascension, Whit Monday, Corpus Christi, Orthodox
# Easter Monday, 2025..2035 (dateutil rrule byeaster / easter(EASTER_ORTHODOX) + 1)
_MOVABLE = ("041804210529060906190421", "040304060514052506040413", "032603290506051705270503",
            "041404170525060506150417", "033004020510052105310409", "041904220530061006200429",
            "041104140522060206120414", "032603290506051705270503", "041504180526060606160425",
            "040704100518052906080410", "032303260503051405240430")


def test_movable_holidays_2025_2035():
    cal = tou.load(plan_cfg())
    for y in range(2025, 2036):
        s = _MOVABLE[y - 2025]
        md = [(int(s[i:i + 2]), int(s[i + 2:i + 4])) for i in range(0, 24, 4)]
        sp = cal.special_dates(y)
        for k in range(6):
            did = (3, 3, 3, 3, 1, 2)[k]
            key = md[k][0] * 32 + md[k][1]
            want = did
            if k == 5 and md[5] == md[1]:
                want = 3  # Orthodox and Western Easter Monday coincide: index 3 wins
            assert sp.get(key) == want, (y, md[k], sp.get(key), want)


def test_orthodox_and_western_coinciding_lowest_index_wins():
    cal = tou.load(plan_cfg())
    # 2025: both Easters on 04-20 -> both Easter Mondays 04-21: index 3 (day 3) beats 7
    assert cal.special_dates(2025)[4 * 32 + 21] == 3
    assert cal.tariff_at(_at(2025, 4, 21, 9)) == 1
    cfg = plan_cfg()
    for e in cfg["special_days_table"]:
        if e["index"] == 7:
            e["index"] = 0  # now the Orthodox entry comes first
    cal = tou.load(cfg)
    assert cal.special_dates(2025)[4 * 32 + 21] == 2
    assert cal.tariff_at(_at(2025, 4, 21, 9)) == 3


def test_leap_days():
    cal = tou.load(plan_cfg())
    assert cal.special_dates(2028).get(2 * 32 + 29) == 2
    assert cal.tariff_at(_at(2028, 2, 29, 9)) == 3, "02-29 special in a leap year (Tue)"
    assert 2 * 32 + 29 not in cal.special_dates(2027)
    assert cal.tariff_at(_at(2027, 3, 1, 9)) == 2, "2027-03-01 ordinary Monday"
    assert cal.tariff_at(_at(2100 - 1, 12, 31, 23, 59, 59)) in (1, 2)
    cfg = plan_cfg()
    cfg["season_profile_active"][0]["season_start"] = "03-01"
    cal = tou.load(cfg)
    assert cal.tariff_at(_at(2028, 2, 28, 9)) == 2 and cal.tariff_at(_at(2028, 3, 1, 9)) == 2
    assert "02-29 cannot start" in _err(dict(cfg, season_profile_active=[
        {"season_profile_name": "x", "season_start": "02-29", "week_name": "W"}]))


def test_next_switch_contract():
    cal = tou.load(plan_cfg())
    t = _at(2026, 1, 14, 5)
    assert cal.next_switch(t) == _at(2026, 1, 14, 6)
    assert cal.next_switch(_at(2026, 1, 14, 6)) == _at(2026, 1, 14, 22)
    assert cal.next_switch(_at(2026, 1, 14, 22)) == _at(2026, 1, 15)
    assert cal.next_switch(_at(2026, 6, 16, 21)) == _at(2026, 6, 16, 23, 59, 59)
    assert cal.next_switch(_at(2026, 6, 16, 23, 59, 59)) == _at(2026, 6, 17)
    # walk a month: the tariff is constant on [t, next) and next > t
    t = _at(2026, 3, 1)
    while t < _at(2026, 4, 15):
        n = cal.next_switch(t)
        assert n > t and n <= (t // 86400 + 1) * 86400
        assert cal.tariff_at(n - 1) == cal.tariff_at(t) == cal.tariff_at((t + n) // 2)
        t = n


def test_limits_accepted_and_exceeded():
    cfg = plan_cfg()
    cfg["day_profile_table_active"] = [
        _day(d, [("%02d:%02d" % (2 * k, 59 if k == 11 else 0), 1 + (k + d) % 6)
                 for k in range(12)]) for d in range(1, 8)]
    cfg["season_profile_active"] = [
        {"season_profile_name": "s%d" % m, "season_start": "%02d-01" % m,
         "week_name": "W" if m % 2 else "S"} for m in range(1, 13)]
    cfg["special_days_table"] = [{"index": i, "specialday_date": "%02d-%02d" % (1 + i // 28,
                                                                                 1 + i % 28),
                                  "day_id": 1 + i % 7} for i in range(30)]
    cfg["week_profile_table_active"] = [_week("W", (1, 2, 3, 4, 5, 6, 7)),
                                        _week("S", (7, 6, 5, 4, 3, 2, 1))]
    cal = tou.load(cfg)
    assert len(cal.specials) == 30 and len(cal.active.seasons) == 12
    # 2026-01-05 is Monday, special day index 4 (01-05) -> day 5: actions every 2 h
    prof = cal.day_profile(_at(2026, 1, 5) // 86400)
    assert len(prof) == 12 and prof[-1][0] == 22 * 3600 + 59 * 60
    assert cal.tariff_at(_at(2026, 1, 5, 22, 58)) == 1 + (10 + 5) % 6
    assert cal.tariff_at(_at(2026, 1, 5, 22, 59)) == 1 + (11 + 5) % 6
    big = dict(cfg)
    big["special_days_table"] = cfg["special_days_table"] + [
        {"index": 99, "specialday_date": "12-30", "day_id": 1}]
    assert "special_days_table: 31 entries" in _err(big)
    big = dict(cfg, season_profile_active=cfg["season_profile_active"] + [
        {"season_profile_name": "x", "season_start": "12-15", "week_name": "W"}])
    assert "season_profile_active: 13 entries" in _err(big)
    big = dict(cfg, day_profile_table_active=cfg["day_profile_table_active"] + [
        _day(8, (("00:00", 1),))])
    assert "day_profile_table_active: 8 entries" in _err(big)
    big = dict(cfg, day_profile_table_active=[_day(1, [("%02d:00" % h, 1) for h in range(13)])])
    assert "day_profile_table_active[0].day_schedule: 13 entries" in _err(big)


def test_passive_activation():
    cfg = plan_cfg()
    cfg["calendar_name_passive"] = "flat"
    cfg["season_profile_passive"] = [
        {"season_profile_name": "all", "season_start": "01-01", "week_name": "A"}]
    cfg["week_profile_table_passive"] = [_week("A", (1, 1, 1, 1, 1, 1, 1))]
    cfg["day_profile_table_passive"] = [_day(1, (("00:00", 4),)), _day(2, (("00:00", 6),)),
                                        _day(3, (("00:00", 6),))]
    cfg["activate_passive_calendar_time"] = "2026-07-01 12:00"
    cal = tou.load(cfg)
    act = _at(2026, 7, 1, 12)
    assert cal.tariff_at(act - 1) == 2 and cal.tariff_at(act) == 4, "passive from its time"
    assert cal.next_switch(_at(2026, 7, 1, 7)) == act
    assert not cal.activate_due(act - 1)
    assert cal.active.name == "HT/NT"
    assert cal.activate_due(act) and cal.active.name == "flat", "IDIS 9 to log"
    assert tou.IDIS_TOU_ACTIVATED == 9 and tou.IDIS_PASSIVE_TOU_PROGRAMMED == 19
    assert not cal.activate_due(act + 10), "activated once"
    assert cal.tariff_at(act + 3600) == 4 and cal.tariff_at(_at(2026, 12, 25, 9)) == 6
    assert cal.activation is None
    # method 1: immediate; without a passive plan nothing happens
    cal2 = tou.load(cfg)
    assert cal2.activate_passive() and cal2.tariff_at(_at(2026, 1, 14, 9)) == 4
    assert not tou.load(plan_cfg()).activate_passive()
    assert not tou.load(plan_cfg()).activate_due(_at(2099, 1, 1))


# ---- validation -------------------------------------------------------------------------------
def test_invalid_configurations_name_the_field():
    base = plan_cfg()

    def mod(path, value=None, delete=False):
        cfg = json.loads(json.dumps(base))
        obj = cfg
        for p in path[:-1]:
            obj = obj[p]
        if delete:
            del obj[path[-1]]
        else:
            obj[path[-1]] = value
        return cfg

    cases = (
        ("{not json", "calendar: not valid JSON"),
        ("[1, 2]", "calendar: must be a JSON object"),
        (mod(["tariffs"], 6), "tariffs: unknown field"),
        (mod(["season_profile_active"], delete=True), "calendar.season_profile_active: missing"),
        (mod(["season_profile_active"], []), "season_profile_active: 0 entries"),
        (mod(["season_profile_active", 0, "season_start"], "13-01"),
         "season_profile_active[0].season_start: '13-01' is not a date"),
        (mod(["season_profile_active", 0, "season_start"], "2026-10-01"),
         "season_profile_active[0].season_start: seasons repeat every year"),
        (mod(["season_profile_active", 1, "season_start"], "10-01"),
         "season_profile_active[1].season_start: 10-01 appears twice"),
        (mod(["season_profile_active", 1, "week_name"], "X"),
         "season_profile_active[1].week_name: 'X' not in week_profile_table_active"),
        (mod(["season_profile_active", 0, "season_profile_name"], ""),
         "season_profile_active[0].season_profile_name"),
        (mod(["week_profile_table_active", 1, "sunday"], 9),
         "week_profile_table_active[1].sunday: day_id 9 not in day_profile_table_active"),
        (mod(["week_profile_table_active", 0, "friday"], delete=True),
         "week_profile_table_active[0].friday: missing"),
        (mod(["week_profile_table_active", 1, "week_profile_name"], "W"),
         "week_profile_table_active[1].week_profile_name: 'W' appears twice"),
        (mod(["day_profile_table_active", 0, "day_schedule", 1, "start_time"], "25:00"),
         "day_profile_table_active[0].day_schedule[1].start_time: '25:00' is not a time"),
        (mod(["day_profile_table_active", 0, "day_schedule", 1, "start_time"], "6:00"),
         "day_profile_table_active[0].day_schedule[1].start_time: '6:00' is not HH:MM[:SS]"),
        (mod(["day_profile_table_active", 0, "day_schedule", 1, "start_time"], "06:00"),
         "day_profile_table_active[0].day_schedule[1].start_time: 06:00 appears twice"),
        (mod(["day_profile_table_active", 1, "day_schedule", 0, "script_selector"], 7),
         "day_profile_table_active[1].day_schedule[0].script_selector: 7 is not an integer "
         "in 1..6"),
        (mod(["day_profile_table_active", 1, "day_schedule", 0, "script_selector"], True),
         "day_profile_table_active[1].day_schedule[0].script_selector"),
        (mod(["day_profile_table_active", 1, "day_schedule", 0, "script_logical_name"],
             "0.0.10.0.1.255"),
         "day_profile_table_active[1].day_schedule[0].script_logical_name"),
        (mod(["day_profile_table_active", 1, "day_schedule"], []),
         "day_profile_table_active[1].day_schedule: 0 entries"),
        (mod(["day_profile_table_active", 2, "day_id"], 1),
         "day_profile_table_active[2].day_id: 1 appears twice"),
        (mod(["day_profile_table_active", 2], 5), "day_profile_table_active[2]: must be an "
                                                  "object"),
        (mod(["special_days_table", 0, "specialday_date"], "2026-02-29"),
         "special_days_table[0].specialday_date: '2026-02-29': 2026 is not a leap year"),
        (mod(["special_days_table", 0, "specialday_date"], "1999-12-31"),
         "special_days_table[0].specialday_date: '1999-12-31': year outside 2000..2099"),
        (mod(["special_days_table", 0, "specialday_date"], "04-31"),
         "special_days_table[0].specialday_date: '04-31' is not a date"),
        (mod(["special_days_table", 1, "index"], 1),
         "special_days_table[1].index: 1 appears twice"),
        (mod(["special_days_table", 1, "day_id"], 4 + 5),
         "special_days_table[1].day_id: day_id 9 not in day_profile_table_active"),
        (mod(["special_days_table", 2, "easter_offset"], 231),
         "special_days_table[2].easter_offset: 231 is not an integer in -80..230"),
        (mod(["special_days_table", 6, "computus"], "julian"),
         "special_days_table[6].computus: 'julian' is not 'western' or 'orthodox'"),
        (mod(["special_days_table", 0, "easter_offset"], 3),
         "special_days_table[0]: give either specialday_date or easter_offset"),
        (mod(["special_days_table", 2, "easter_offset"], delete=True),
         "special_days_table[2]: give either specialday_date or easter_offset"),
        (mod(["activate_passive_calendar_time"], "2026-07-01 12:00"),
         "activate_passive_calendar_time: set but there is no passive plan"),
        (mod(["season_profile_passive"], []),
         "week_profile_table_passive: missing (a passive plan needs all three tables)"),
    )
    for cfg, want in cases:
        got = _err(cfg)
        assert got.startswith(want), (want, got)


def test_passive_plan_must_hold_special_day_ids():
    cfg = plan_cfg()
    cfg["season_profile_passive"] = [
        {"season_profile_name": "all", "season_start": "01-01", "week_name": "A"}]
    cfg["week_profile_table_passive"] = [_week("A", (1, 1, 1, 1, 1, 1, 1))]
    cfg["day_profile_table_passive"] = [_day(1, (("00:00", 4),))]
    got = _err(cfg)
    assert got.startswith("special_days_table[0].day_id: day_id 3 not in "
                          "day_profile_table_passive"), got
    cfg["activate_passive_calendar_time"] = "2026-07-01 25:00"
    cfg["special_days_table"] = []
    assert _err(cfg).startswith("activate_passive_calendar_time: '25:00' is not a time")


# ---- CPython only: an independent resolver on datetime + python-dateutil ---------------------
_RULES = {}


def _byeaster(year, off):
    """Western Easter + off days, via dateutil.rrule(byeaster=...) (cached)."""
    import datetime as dt

    from dateutil.rrule import YEARLY, rrule

    k = (year, off)
    if k not in _RULES:
        _RULES[k] = rrule(YEARLY, count=1, byeaster=off, dtstart=dt.datetime(year, 1, 1))[0]
    return _RULES[k].date()


def _ref_tariff(cfg, when, sfx="_active"):
    import datetime as dt

    from dateutil.easter import EASTER_ORTHODOX, easter

    d = when.date()
    did = None
    for e in sorted(cfg["special_days_table"], key=lambda e: e["index"]):
        if "specialday_date" in e:
            p = [int(x) for x in e["specialday_date"].split("-")]
            hit = (d.month, d.day) == tuple(p[-2:]) and (len(p) == 2 or p[0] == d.year)
        elif e.get("computus") == "orthodox":
            hit = d == easter(d.year, EASTER_ORTHODOX) + dt.timedelta(days=e["easter_offset"])
        else:
            hit = d == _byeaster(d.year, e["easter_offset"])
        if hit:
            did = e["day_id"]
            break
    if did is None:
        seasons = sorted(cfg["season_profile" + sfx],
                         key=lambda s: tuple(int(x) for x in s["season_start"].split("-")))
        cur = seasons[-1]
        for s in seasons:
            if tuple(int(x) for x in s["season_start"].split("-")) <= (d.month, d.day):
                cur = s
        week = [w for w in cfg["week_profile_table" + sfx]
                if w["week_profile_name"] == cur["week_name"]][0]
        did = week[_WEEK[d.weekday()]]
    day = [p for p in cfg["day_profile_table" + sfx] if p["day_id"] == did][0]
    tod = when.hour * 3600 + when.minute * 60 + when.second
    best = None
    for a in day["day_schedule"]:
        h, m = a["start_time"].split(":")[:2]
        s = int(h) * 3600 + int(m) * 60 + (int(a["start_time"][6:]) if
                                           len(a["start_time"]) > 5 else 0)
        if s <= tod and (best is None or s > best[0]):
            best = (s, a["script_selector"])
    if best is None:
        prev = dt.datetime.combine(d - dt.timedelta(days=1), dt.time(23, 59, 59))
        return _ref_tariff(cfg, prev, sfx)
    return best[1]


def test_calendar_against_independent_resolver_dateutil():
    """CPython only (python-dateutil): every switching window 2025..2035 of the test plan, and
    2027..2028 of the limit-sized plan (12 seasons, 30 special days, 12 actions a day),
    agrees with an independent resolver (datetime weekdays, dateutil easter / rrule byeaster
    for the movable holidays)."""
    if not CPY:
        return
    import datetime as dt

    epoch = dt.datetime(2000, 1, 1)
    for cfg, y0, y1 in ((plan_cfg(), 2025, 2036), (_limits_cfg(), 2027, 2029)):
        cal = tou.load(cfg)
        t = seconds(y0, 1, 1)
        end = seconds(y1, 1, 1)
        n = 0
        while t < end:
            nx = cal.next_switch(t)
            got = cal.tariff_at(t)
            assert got == _ref_tariff(cfg, epoch + dt.timedelta(seconds=t)), t
            assert cal.tariff_at(nx - 1) == got
            t = nx
            n += 1
        assert n > 4000


def _limits_cfg():
    cfg = plan_cfg()
    cfg["day_profile_table_active"] = [
        _day(d, [("%02d:%02d:%02d" % (2 * k, 7 * d % 60, 59 if k == 11 else 0),
                  1 + (k * d) % 6) for k in range(12)]) for d in range(1, 8)]
    cfg["season_profile_active"] = [
        {"season_profile_name": "s%d" % m, "season_start": "%02d-%02d" % (m, 1 + m),
         "week_name": "W" if m % 2 else "S"} for m in range(1, 13)]
    cfg["week_profile_table_active"] = [_week("W", (1, 2, 3, 4, 5, 6, 7)),
                                        _week("S", (7, 6, 5, 4, 3, 2, 1))]
    sp = [{"index": 100 - i, "specialday_date": "%02d-%02d" % (1 + i % 12, 1 + (7 * i) % 28),
           "day_id": 1 + i % 7} for i in range(20)]
    sp += [{"index": 50 + i, "easter_offset": -30 + 9 * i, "day_id": 1 + i % 7,
            "computus": "orthodox" if i % 2 else "western"} for i in range(10)]
    cfg["special_days_table"] = sp
    return cfg


def test_local_times_before_2000_resolve():
    # adversarial review: an RTC restarted at 2000-01-01 00:00 UTC (flat battery) is still
    # 1999 in local time west of UTC (or yesterday's last action is looked up before a first
    # switch); with a movable holiday in the table special_dates(1999) raised ValueError
    # ("invalid date 1999-04-04") and the meter did not start (Tariffs.__init__)
    cal = tou.load(plan_cfg())
    est = -5 * 3600  # 2000-01-01 00:00 UTC is Friday 1999-12-31 19:00 EST: winter, day 1
    assert cal.tariff_at(est) == 2
    assert cal.next_switch(est) == -2 * 3600  # 22:00 that day
    assert cal.tariff_at(-3 * 86400 + 3 * 3600) == 1  # Wed 03:00: Tuesday's last action
    assert cal.tariff_at(_at(2000, 1, 3, 3)) == 1  # Monday 03:00: Sunday (day 3)'s action
