# Billing configuration: time zone and DST rule, tariff plan, demand, billing period (JSON).
"""The billing configuration of a meter, one JSON object (every key optional)::

    {"time_zone": {"offset_min": 60, "dst_rule": "eu", "dst_min": 60},
     "calendar": { ... tou.load's DLMS class 20/11 shape ... },
     "demand": {"period_s": 900, "number_of_periods": 1, "policy": "resume",
                "thermal_period_s": 900, "reset_lockout_s": 3600},
     "billing_period": {"day": 1, "time": "00:00"},
     "clock": {"max_sets": 4, "max_shift_s": 900, "period": "day"}}

- ``time_zone`` (DLMS clock class 8 attributes 3 time_zone, 7 deviation, 8 enabled):
  ``offset_min`` standard time minus UTC in minutes (-720..840, steps of 15; CET 60),
  ``dst_rule`` ``"eu"`` (last Sunday of March / October, 01:00 UTC), ``"us"`` (2nd Sunday
  of March / 1st Sunday of November, 02:00 local) or ``"none"``, ``dst_min`` 1..120.
  Default: UTC, no DST.
- ``calendar``: the activity calendar and special days (lib/billing/tou.py documents the
  shape; it mirrors DLMS class 20 and 11). Default: ``tou.DEFAULT``, one tariff all year.
- ``demand`` (DLMS class 5, 1.0.1.4.0 / 1.0.1.5.0; thermal as scheme 2, 1.0.1.14.0):
  ``period_s`` 60..3600 dividing 3600 (default 900), ``number_of_periods`` 1 (block, the
  default) .. 12 (sliding; 12 keeps the persisted state in one 240-byte record),
  ``policy`` ``"resume"`` (default), ``"synchronise"`` or ``"restart"`` after a power cut
  (lib/billing/demand.py), ``thermal_period_s`` 300..3600 (default 900: 90 % of a step
  in 15 min), ``reset_lockout_s`` 0..2678400 (1.0.0.9.12: a manual demand reset within
  that time after the previous one is refused; default 3600).
- ``billing_period``: end of billing every month on ``day`` 1..28 at ``time`` local
  (0.0.15.0.0; default the 1st at 00:00).
- ``clock``: the limit on setting the clock over the local ports while the seal is closed
  (lib/billing/clocklimit.py): at most ``max_sets`` (1..100, default 4) sets and
  ``max_shift_s`` (1..2678400, default 900) seconds of total shift per ``period``
  (``"day"``, the local day, default; or ``"billing"``, the billing period).

:func:`load` takes JSON text or the parsed dict and returns a :class:`Config`; errors raise
ValueError naming the field (``demand.period_s: 700 is not a divisor of 3600 ...``,
``calendar.day_profile_table_active[0].day_schedule[1].start_time: ...``).
"""

from . import demand as _demand
from . import localtime, period, tou

_RULES = {"none": localtime.RULE_NONE, "eu": localtime.RULE_EU, "us": localtime.RULE_US}
_POLICIES = {"resume": _demand.RESUME, "restart": _demand.RESTART,
             "synchronise": _demand.SYNCHRONISE}
MAX_SLIDING = 12


class Config:
    """Parsed configuration: ``zone`` (localtime.Zone), ``calendar`` (tou.Calendar),
    ``period_s``, ``number_of_periods``, ``policy`` (demand.RESUME ...),
    ``thermal_period_s``, ``reset_lockout_s``, ``schedule`` (period.Schedule),
    ``tariffs`` (the highest tariff any plan uses, 1..6), ``clock_max_sets``,
    ``clock_max_shift_s``, ``clock_period`` (the clock-set limit)."""

    def __init__(self):
        self.zone = localtime.Zone()
        self.calendar = tou.load(tou.DEFAULT)
        self.period_s = 900
        self.number_of_periods = 1
        self.policy = _demand.RESUME
        self.thermal_period_s = 900
        self.reset_lockout_s = 3600
        self.schedule = period.Schedule()
        self.tariffs = 1
        self.clock_max_sets = 4
        self.clock_max_shift_s = 900
        self.clock_period = "day"


def _obj(v, field):
    if not isinstance(v, dict):
        raise ValueError("%s: must be an object" % field)
    return v


def _known(d, keys, field):
    for k in d:
        if k not in keys:
            raise ValueError("%s.%s: unknown field" % (field, k))


def _int(d, key, lo, hi, default, field):
    v = d.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ValueError("%s.%s: %r not an integer in %d..%d" % (field, key, v, lo, hi))
    return v


def _choice(d, key, table, default, field):
    v = d.get(key, default)
    if v not in table:
        raise ValueError("%s.%s: %r is not one of %s" % (field, key, v,
                                                         ", ".join(sorted(table))))
    return table[v]


def _max_tariff(cal):
    n = 1
    for plan in (cal.active, cal.passive):
        if plan is None:
            continue
        for day in plan.days:
            for _s, t in day:
                if t > n:
                    n = t
    return n


def load(cfg):
    """:class:`Config` from JSON text or a dict (None = the defaults). Raises ValueError
    naming the field."""
    c = Config()
    if cfg is None:
        return c
    if isinstance(cfg, (str, bytes)):
        import json

        try:
            cfg = json.loads(cfg)
        except ValueError:
            raise ValueError("billing configuration: not valid JSON") from None
    _obj(cfg, "billing configuration")
    _known(cfg, ("time_zone", "calendar", "demand", "billing_period", "clock"),
           "billing configuration")
    if "time_zone" in cfg:
        z = _obj(cfg["time_zone"], "time_zone")
        _known(z, ("offset_min", "dst_rule", "dst_min"), "time_zone")
        off = _int(z, "offset_min", -720, 840, 0, "time_zone")
        if off % 15:
            raise ValueError("time_zone.offset_min: %r not a multiple of 15" % off)
        c.zone = localtime.Zone(off, _choice(z, "dst_rule", _RULES, "none", "time_zone"),
                                _int(z, "dst_min", 1, 120, 60, "time_zone"))
    if "calendar" in cfg:
        try:
            c.calendar = tou.load(cfg["calendar"])
        except ValueError as e:
            m = str(e)  # tou names its fields, some from "calendar" on: once
            if m[:9] not in ("calendar.", "calendar:"):
                m = "calendar." + m
            raise ValueError(m) from None
    if "demand" in cfg:
        d = _obj(cfg["demand"], "demand")
        _known(d, ("period_s", "number_of_periods", "policy", "thermal_period_s",
                   "reset_lockout_s"), "demand")
        p = _int(d, "period_s", 60, 3600, 900, "demand")
        if 3600 % p:
            raise ValueError("demand.period_s: %r is not a divisor of 3600" % p)
        c.period_s = p
        c.number_of_periods = _int(d, "number_of_periods", 1, MAX_SLIDING, 1, "demand")
        c.policy = _choice(d, "policy", _POLICIES, "resume", "demand")
        c.thermal_period_s = _int(d, "thermal_period_s", 300, 3600, 900, "demand")
        c.reset_lockout_s = _int(d, "reset_lockout_s", 0, 31 * 86400, 3600, "demand")
    if "billing_period" in cfg:
        c.schedule = period.Schedule.from_config(cfg["billing_period"])
    if "clock" in cfg:
        k = _obj(cfg["clock"], "clock")
        _known(k, ("max_sets", "max_shift_s", "period"), "clock")
        c.clock_max_sets = _int(k, "max_sets", 1, 100, 4, "clock")
        c.clock_max_shift_s = _int(k, "max_shift_s", 1, 31 * 86400, 900, "clock")
        c.clock_period = _choice(k, "period", {"day": "day", "billing": "billing"}, "day",
                                 "clock")
    c.tariffs = _max_tariff(c.calendar)
    return c
