# Time of use: activity calendar (DLMS class 20) and special days table (class 11).
"""Activity calendar: which tariff (1..6) is in force at a local time.

Shape (DLMS/COSEM interface class 20 "activity calendar", 0.0.13.0.0.255, and class 11
"special days table", 0.0.11.0.0.255; attribute names as in the Blue Book / Gurux):

- ``season_profile``: up to 12 seasons ``{season_profile_name, season_start, week_name}``.
  ``season_start`` is ``"MM-DD"`` (00:00 local, every year: DLMS year wildcard 0xFFFF). The
  season in force on a date is the one with the latest start <= that date; before the first
  start of the year, the last season of the previous year continues.
- ``week_profile_table``: week profiles ``{week_profile_name, monday .. sunday}``, each day a
  ``day_id`` of the day profile table (at most 12 week profiles).
- ``day_profile_table``: up to 7 day profiles ``{day_id (0..255), day_schedule}``, the
  schedule up to 12 actions ``{start_time "HH:MM[:SS]", script_selector 1..6}`` (the script
  of the tariffication script table 0.0.10.0.100.255; selector N = tariff N). Within a day
  the action in force is the one with the latest start_time <= now; before the day's first
  action, the last action of the previous day's profile (same plan) is still in force.
- special days table (shared by the active and the passive plan, as class 11 is one
  object): up to 30 entries ``{index, specialday_date, day_id}``; the date is
  ``"MM-DD"`` (every year) or ``"YYYY-MM-DD"`` (that day only), or, for movable holidays
  (regenerated yearly as dated class 11 entries in DLMS meters), ``easter_offset`` days
  (-80..230, which keeps the day in Easter's year) from Western Easter, or from Orthodox
  Easter with ``"computus": "orthodox"``. A special day replaces the week profile's day;
  when several entries fall on one date, the lowest ``index`` wins.
- Active and passive plans (attributes 2-5 and 6-9); ``activate_passive_calendar_time``
  (attribute 10, local time, ``null`` = not scheduled): at that time the passive plan is
  copied to the active one (:meth:`Calendar.activate_due`, which returns True so that the
  caller logs IDIS event 9 "TOU activated"); method 1 is :meth:`Calendar.activate_passive`.
  A passive plan may bring its own special days table (:meth:`Calendar.set_passive`, the
  plan written over IEC 62056-21: firmware/meter/touprog.py): it replaces the shared one
  when the plan becomes active.

Limits (the AD11A seed numbers, billing reference A3): 6 tariffs, 12 actions per day,
12 seasons, 7 day profiles, 30 special days.

Time contract: every function takes **local seconds** (seconds since 2000-01-01 00:00 on
the local wall clock, see localtime.py). ``tariff_at(t)`` is constant on
``[t, next_switch(t))``; ``next_switch(t) > t`` is the next switching time of the day, the
next local midnight (a special day or a new season may start) or the passive activation
time, whichever comes first. DST is the caller's: local time jumps at a transition, so a
caller working in UTC must also stop at ``Zone.next_transition`` and re-evaluate there
(``tariff.TariffClock`` does). An action in the skipped spring hour takes effect when the
clock jumps past it; actions in the repeated autumn hour are executed twice.

Configuration (JSON text or the parsed dict) mirrors the DLMS attributes: keys
``calendar_name_active``, ``season_profile_active``, ``week_profile_table_active``,
``day_profile_table_active``, the same with ``_passive`` (all four or none),
``activate_passive_calendar_time`` (``"YYYY-MM-DD HH:MM[:SS]"`` or null) and
``special_days_table`` (list of entries). Errors raise ValueError naming the field, e.g.
``day_profile_table_active[1].day_schedule[2].start_time: '25:00' is not HH:MM[:SS]``.
``DEFAULT`` is the default plan (JSON text): one season from 01-01, every day profile 1,
tariff 1 from 00:00, no special days.
"""

from micropython import const

from civil import civil, seconds

from . import easter as _easter

MAX_TARIFFS = const(6)
MAX_ACTIONS = const(12)
MAX_SEASONS = const(12)
MAX_WEEKS = const(12)
MAX_DAY_PROFILES = const(7)
MAX_SPECIAL_DAYS = const(30)
MAX_NAME = const(32)
TARIFF_SCRIPT = "0.0.10.0.100.255"
# IDIS standard event log codes the caller logs (billing reference D2)
IDIS_TOU_ACTIVATED = const(9)  # passive calendar copied to active (activate_due / method 1)
IDIS_PASSIVE_TOU_PROGRAMMED = const(19)  # a new passive plan installed (set_passive)

_DAY = const(86400)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MDAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# special day kinds
_FIXED = const(0)
_WESTERN = const(1)
_ORTHODOX = const(2)

# the default plan as JSON text (:func:`load` takes both): a str constant stays in flash when
# frozen, where the dict with its lists and dicts held ~0.5 KB of RAM for good (issue 12)
DEFAULT = (
    '{"calendar_name_active": "default", "season_profile_active": [{"season_profile_name": '
    '"all year", "season_start": "01-01", "week_name": "week"}], "week_profile_table_active": '
    '[{"week_profile_name": "week", "monday": 1, "tuesday": 1, "wednesday": 1, "thursday": 1, '
    '"friday": 1, "saturday": 1, "sunday": 1}], "day_profile_table_active": [{"day_id": 1, '
    '"day_schedule": [{"start_time": "00:00", "script_selector": 1}]}], '
    '"activate_passive_calendar_time": null, "special_days_table": []}'
)


# ---- field parsers (each raises ValueError naming the field) ------------------------------
def _err(field, msg):
    return ValueError("%s: %s" % (field, msg))


def _get(obj, key, field):
    if not isinstance(obj, dict):
        raise _err(field, "must be an object")
    if key not in obj:
        raise _err(field + "." + key, "missing")
    return obj[key]


def _int(v, lo, hi, field):
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise _err(field, "%r is not an integer in %d..%d" % (v, lo, hi))
    return v


def _name(v, field):
    if not isinstance(v, str) or not 0 < len(v) <= MAX_NAME:
        raise _err(field, "%r is not a name of 1..%d characters" % (v, MAX_NAME))
    return v


def _list(v, lo, hi, field):
    if not isinstance(v, list):
        raise _err(field, "must be a list")
    if not lo <= len(v) <= hi:
        raise _err(field, "%d entries, allowed %d..%d" % (len(v), lo, hi))
    return v


def _digits(s, n):
    return len(s) == n and s.isdigit()


def parse_time(s, field="time"):
    """``"HH:MM"`` or ``"HH:MM:SS"`` -> seconds of the day (0..86399)."""
    p = s.split(":") if isinstance(s, str) else ()
    if not 2 <= len(p) <= 3 or not all(_digits(x, 2) for x in p):
        raise _err(field, "%r is not HH:MM[:SS]" % (s,))
    h, m = int(p[0]), int(p[1])
    sec = int(p[2]) if len(p) == 3 else 0
    if h > 23 or m > 59 or sec > 59:
        raise _err(field, "%r is not a time of day" % (s,))
    return h * 3600 + m * 60 + sec


def parse_date(s, field="date", yearly=True):
    """``"MM-DD"`` (every year, returned with year 0; only if ``yearly``) or
    ``"YYYY-MM-DD"`` (2000..2099) -> (year or 0, month, day). ``"02-29"`` is allowed every
    year (it applies in leap years only)."""
    p = s.split("-") if isinstance(s, str) else ()
    if len(p) == 2 and yearly and _digits(p[0], 2) and _digits(p[1], 2):
        y, m, d = 0, int(p[0]), int(p[1])
    elif len(p) == 3 and _digits(p[0], 4) and _digits(p[1], 2) and _digits(p[2], 2):
        y, m, d = int(p[0]), int(p[1]), int(p[2])
        if not 2000 <= y <= 2099:
            raise _err(field, "%r: year outside 2000..2099" % (s,))
    else:
        raise _err(field, "%r is not %s" % (s, "MM-DD or YYYY-MM-DD" if yearly
                                            else "YYYY-MM-DD"))
    if not 1 <= m <= 12 or not 1 <= d <= _MDAYS[m - 1]:
        raise _err(field, "%r is not a date" % (s,))
    if y and m == 2 and d == 29 and not (y % 4 == 0 and (y % 100 or y % 400 == 0)):
        raise _err(field, "%r: %d is not a leap year" % (s, y))
    return y, m, d


def parse_datetime(s, field="datetime"):
    """``"YYYY-MM-DD HH:MM[:SS]"`` -> local seconds."""
    p = s.split(" ") if isinstance(s, str) else ()
    if len(p) != 2:
        raise _err(field, "%r is not YYYY-MM-DD HH:MM[:SS]" % (s,))
    y, m, d = parse_date(p[0], field, yearly=False)
    return seconds(y, m, d) + parse_time(p[1], field)


# ---- a plan (one set of class 20 attributes) ----------------------------------------------
class Plan:
    """One calendar (active or passive). Built by :func:`plan_from_config`.

    ``name``; ``seasons``: tuple of (start key = month * 32 + day, week index, name), sorted;
    ``weeks``: tuple of (name, 7-tuple of day-profile indices); ``day_ids``: tuple of the
    day profiles' ids; ``days``: tuple of schedules, each a tuple of (start second of the
    day, tariff) sorted by start.
    """

    def __init__(self, name, seasons, weeks, day_ids, days):
        self.name = name
        self.seasons = seasons
        self.weeks = weeks
        self.day_ids = day_ids
        self.days = days

    def day_index(self, day_id):
        """Index of the day profile with ``day_id`` (ValueError if absent)."""
        for i in range(len(self.day_ids)):
            if self.day_ids[i] == day_id:
                return i
        raise ValueError("day_id %d not in the day profile table" % day_id)

    def week_day(self, m, d, wd):
        """Day-profile index of an ordinary (not special) day: month, day, weekday."""
        key = m * 32 + d
        s = self.seasons
        w = s[-1][1]  # before the first start: the last season of the year before
        for i in range(len(s)):
            if s[i][0] <= key:
                w = s[i][1]
            else:
                break
        return self.weeks[w][1][wd]


def _plan(cfg, sfx):
    """Plan from the ``..._active`` (sfx) or ``..._passive`` attributes of a config dict."""
    f = "calendar_name" + sfx
    name = _name(cfg.get(f, "calendar"), f)
    # day profiles
    fd = "day_profile_table" + sfx
    dpt = _list(_get(cfg, fd, "calendar"), 1, MAX_DAY_PROFILES, fd)
    day_ids = []
    days = []
    for i, e in enumerate(dpt):
        fi = "%s[%d]" % (fd, i)
        did = _int(_get(e, "day_id", fi), 0, 255, fi + ".day_id")
        if did in day_ids:
            raise _err(fi + ".day_id", "%d appears twice" % did)
        sched = _list(_get(e, "day_schedule", fi), 1, MAX_ACTIONS, fi + ".day_schedule")
        acts = []
        for j, a in enumerate(sched):
            fj = "%s.day_schedule[%d]" % (fi, j)
            st = parse_time(_get(a, "start_time", fj), fj + ".start_time")
            tar = _int(_get(a, "script_selector", fj), 1, MAX_TARIFFS, fj + ".script_selector")
            ln = a.get("script_logical_name", TARIFF_SCRIPT)
            if ln != TARIFF_SCRIPT:
                raise _err(fj + ".script_logical_name", "%r: only the tariffication script "
                           "table %s is supported" % (ln, TARIFF_SCRIPT))
            for k in range(len(acts)):
                if acts[k][0] == st:
                    raise _err(fj + ".start_time", "%s appears twice" % a["start_time"])
            acts.append((st, tar))
        acts.sort()
        day_ids.append(did)
        days.append(tuple(acts))
    # week profiles
    fw = "week_profile_table" + sfx
    wpt = _list(_get(cfg, fw, "calendar"), 1, MAX_WEEKS, fw)
    weeks = []
    for i, e in enumerate(wpt):
        fi = "%s[%d]" % (fw, i)
        wn = _name(_get(e, "week_profile_name", fi), fi + ".week_profile_name")
        for k in range(len(weeks)):
            if weeks[k][0] == wn:
                raise _err(fi + ".week_profile_name", "%r appears twice" % wn)
        idx = []
        for dn in _WEEKDAYS:
            did = _int(_get(e, dn, fi), 0, 255, fi + "." + dn)
            if did not in day_ids:
                raise _err(fi + "." + dn, "day_id %d not in %s" % (did, fd))
            idx.append(day_ids.index(did))
        weeks.append((wn, tuple(idx)))
    # seasons
    fs = "season_profile" + sfx
    spt = _list(_get(cfg, fs, "calendar"), 1, MAX_SEASONS, fs)
    seasons = []
    for i, e in enumerate(spt):
        fi = "%s[%d]" % (fs, i)
        sn = _name(_get(e, "season_profile_name", fi), fi + ".season_profile_name")
        _y, m, d = parse_date(_get(e, "season_start", fi), fi + ".season_start")
        if _y:
            raise _err(fi + ".season_start", "seasons repeat every year: give MM-DD")
        if m == 2 and d == 29:
            raise _err(fi + ".season_start", "02-29 cannot start a season every year")
        key = m * 32 + d
        for k in range(len(seasons)):
            if seasons[k][0] == key:
                raise _err(fi + ".season_start", "%02d-%02d appears twice" % (m, d))
        wn = _get(e, "week_name", fi)
        w = -1
        for k in range(len(weeks)):
            if weeks[k][0] == wn:
                w = k
        if w < 0:
            raise _err(fi + ".week_name", "%r not in %s" % (wn, fw))
        seasons.append((key, w, sn))
    seasons.sort()
    return Plan(name, tuple(seasons), tuple(weeks), tuple(day_ids), tuple(days))


def _specials(cfg, plans):
    f = "special_days_table"
    tab = _list(cfg.get(f, []), 0, MAX_SPECIAL_DAYS, f)
    out = []
    for i, e in enumerate(tab):
        fi = "%s[%d]" % (f, i)
        idx = _int(_get(e, "index", fi), 0, 65535, fi + ".index")
        for k in range(len(out)):
            if out[k][0] == idx:
                raise _err(fi + ".index", "%d appears twice" % idx)
        did = _int(_get(e, "day_id", fi), 0, 255, fi + ".day_id")
        for p, pf in plans:
            if did not in p.day_ids:
                raise _err(fi + ".day_id", "day_id %d not in day_profile_table%s" % (did, pf))
        has_date = "specialday_date" in e
        has_off = "easter_offset" in e
        if has_date == has_off:
            raise _err(fi, "give either specialday_date or easter_offset")
        if has_date:
            if "computus" in e:
                raise _err(fi + ".computus", "only with easter_offset")
            y, m, d = parse_date(e["specialday_date"], fi + ".specialday_date")
            out.append((idx, _FIXED, y, m, d, did))
        else:
            off = _int(e["easter_offset"], -80, 230, fi + ".easter_offset")
            comp = e.get("computus", "western")
            if comp not in ("western", "orthodox"):
                raise _err(fi + ".computus", "%r is not 'western' or 'orthodox'" % (comp,))
            out.append((idx, _ORTHODOX if comp == "orthodox" else _WESTERN, off, 0, 0, did))
    out.sort()
    return tuple(out)


def plan_from_config(cfg, sfx):
    """:class:`Plan` from the ``calendar_name<sfx>``, ``season_profile<sfx>``,
    ``week_profile_table<sfx>``, ``day_profile_table<sfx>`` attributes of ``cfg`` (sfx
    ``"_active"`` or ``"_passive"``); ValueError naming the field."""
    return _plan(cfg, sfx)


def specials_from_config(cfg, plans):
    """The special days table of ``cfg`` (``special_days_table``) checked against
    ``plans`` (list of (Plan, field suffix)); ValueError naming the field."""
    return _specials(cfg, plans)


def load(cfg):
    """:class:`Calendar` from a configuration (JSON text or dict; see the module docstring).
    Raises ValueError naming the field."""
    if isinstance(cfg, (str, bytes)):
        import json

        try:
            cfg = json.loads(cfg)
        except ValueError:
            raise ValueError("calendar: not valid JSON") from None
    if not isinstance(cfg, dict):
        raise ValueError("calendar: must be a JSON object")
    known = ("calendar_name_active", "season_profile_active", "week_profile_table_active",
             "day_profile_table_active", "calendar_name_passive", "season_profile_passive",
             "week_profile_table_passive", "day_profile_table_passive",
             "activate_passive_calendar_time", "special_days_table")
    for k in cfg:
        if k not in known:
            raise _err(k, "unknown field")
    active = _plan(cfg, "_active")
    plans = [(active, "_active")]
    pkeys = ("season_profile_passive", "week_profile_table_passive",
             "day_profile_table_passive")
    have = [k for k in pkeys if k in cfg]
    passive = None
    if have:
        if len(have) != len(pkeys):
            missing = [k for k in pkeys if k not in cfg]
            raise _err(missing[0], "missing (a passive plan needs all three tables)")
        passive = _plan(cfg, "_passive")
        plans.append((passive, "_passive"))
    act = cfg.get("activate_passive_calendar_time")
    if act is not None:
        act = parse_datetime(act, "activate_passive_calendar_time")
        if passive is None:
            raise _err("activate_passive_calendar_time", "set but there is no passive plan")
    return Calendar(active, passive, act, _specials(cfg, plans))


class Calendar:
    """Active + passive :class:`Plan`, activation time (local seconds or None) and the
    special days table (tuple of (index, kind, year|offset, month, day, day_id))."""

    def __init__(self, active, passive=None, activation=None, specials=()):
        self.active = active
        self.passive = passive
        self.activation = activation
        self.specials = specials
        # the passive plan's own special days (a plan written over IEC 62056-21 brings its
        # table; None: the shared table, as class 11 is one object)
        self.passive_specials = None
        self._sp_year = -1
        self._sp_tab = None
        self._sp_map = None
        self._pc_day = -1
        self._pc_plan = None
        self._pc = None

    # ---- special days ---------------------------------------------------------------------
    def special_dates(self, year, table=None):
        """{month * 32 + day: day_id} of the special days of ``year`` (lowest index wins) in
        ``table`` (default the shared :attr:`specials`)."""
        if table is None:
            table = self.specials
        if year != self._sp_year or table is not self._sp_tab:
            mp = {}
            for _idx, kind, a, m, d, did in table:
                if kind == _FIXED:
                    if a and a != year:
                        continue
                    if m == 2 and d == 29 and not (year % 4 == 0 and
                                                    (year % 100 or year % 400 == 0)):
                        continue
                else:
                    if year < 2000:  # local 1999 (an RTC restarted at 2000-01-01 UTC)
                        continue
                    em, ed = _easter.easter(year, kind == _ORTHODOX)
                    y2, m, d = civil((seconds(year, em, ed) // _DAY + a) * _DAY)[:3]
                    if y2 != year:  # cannot happen for offsets -80..230
                        continue
                key = m * 32 + d
                if key not in mp:
                    mp[key] = did
            self._sp_map = mp
            self._sp_year = year
            self._sp_tab = table
        return self._sp_map

    # ---- resolution -----------------------------------------------------------------------
    def plan_at(self, local):
        """The plan in force at ``local``: the passive one once its activation time has come
        (even before :meth:`activate_due` copied it)."""
        a = self.activation
        if self.passive is not None and a is not None and local >= a:
            return self.passive
        return self.active

    def day_profile(self, day, plan=None):
        """Schedule (tuple of (second of day, tariff)) of local day number ``day`` (days since
        2000-01-01) in ``plan`` (default: the plan in force at that day's start)."""
        if plan is None:
            plan = self.plan_at(day * _DAY)
        if day == self._pc_day and plan is self._pc_plan:
            return self._pc
        y, m, d, _h, _mi, _s, wd = civil(day * _DAY)
        tab = self.passive_specials if plan is self.passive else None
        did = self.special_dates(y, tab).get(m * 32 + d)
        i = plan.day_index(did) if did is not None else plan.week_day(m, d, wd)
        prof = plan.days[i]
        self._pc_day = day
        self._pc_plan = plan
        self._pc = prof
        return prof

    def tariff_at(self, local):
        """Tariff (1..6) in force at ``local`` (local seconds)."""
        plan = self.plan_at(local)
        day = local // _DAY
        sod = local - day * _DAY
        prof = self.day_profile(day, plan)
        tar = 0
        for s, t in prof:
            if s <= sod:
                tar = t
            else:
                break
        if tar == 0:  # before the first action: yesterday's last action is still in force
            tar = self.day_profile(day - 1, plan)[-1][1]
        return tar

    def next_switch(self, local):
        """First instant > ``local`` at which the tariff may change: the next action of the
        day, the next local midnight, or a pending passive activation time."""
        plan = self.plan_at(local)
        day = local // _DAY
        sod = local - day * _DAY
        nxt = (day + 1) * _DAY
        for s, _t in self.day_profile(day, plan):
            if s > sod:
                nxt = day * _DAY + s
                break
        a = self.activation
        if self.passive is not None and a is not None and local < a < nxt:
            nxt = a
        return nxt

    # ---- active / passive -----------------------------------------------------------------
    def set_passive(self, plan, activation=None, specials=None):
        """Install a passive plan (IDIS event 19 "passive TOU programmed" is the caller's),
        with its own special days table ``specials`` (replacing the shared one at the
        activation) or None (the shared one). The special days' day_ids must exist in it
        (ValueError)."""
        for e in self.specials if specials is None else specials:
            if e[5] not in plan.day_ids:
                raise ValueError("special_days_table: day_id %d not in the passive plan" % e[5])
        self.passive = plan
        self.passive_specials = specials
        self.activation = activation
        self._pc_day = -1

    def activate_due(self, local):
        """Copy passive to active if the activation time has come; True if it did (the
        caller logs IDIS event 9 "TOU activated")."""
        a = self.activation
        if self.passive is None or a is None or local < a:
            return False
        return self.activate_passive()

    def activate_passive(self):
        """DLMS method 1: copy the passive plan to the active one now (the passive plan stays
        as it is, as in DLMS; the activation time is cleared). True if there was one."""
        if self.passive is None:
            return False
        self.active = self.passive
        self.activation = None
        if self.passive_specials is not None:  # the plan's own special days come with it
            self.specials = self.passive_specials
            self.passive_specials = None
        self._pc_day = -1
        return True
