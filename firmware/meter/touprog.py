# The tariff plan written over IEC 62056-21 in programming mode (passive calendar).
"""A passive tariff plan written piece by piece over the local ports (W1, programming mode,
seal open), checked as a whole and installed by one command, then activated at its
activation time by the calendar (lib/billing/tou.py: TOU_ACTIVATED, IDIS 9).

Addresses (each W1 value at most 128 characters; ``;`` between fields, ``,`` in lists; a
piece written again replaces the one with the same number):

========  ==================================================================================
C.92.1    season: ``n;MM-DD;w`` (n 1..12: the season's slot; it starts every year on MM-DD
          at 00:00 local with week profile w 1..12)
C.92.2    week profile: ``w;d1,d2,d3,d4,d5,d6,d7`` (w 1..12; the day ids 0..255 of Monday ..
          Sunday)
C.92.3    day profile: ``id;HH:MM=t,HH:MM=t,...`` (id 0..255, at most 7 day profiles; 1..12
          switching times ``HH:MM`` or ``HH:MM:SS``, each to tariff t 1..6)
C.92.4    special day: ``i;date;id`` (i 1..30, day profile id; date ``MM-DD`` every year,
          ``YYYY-MM-DD`` that day, ``E+n`` / ``E-n`` n days from Western Easter, ``O+n`` /
          ``O-n`` from Orthodox Easter, n -80..230)
C.92.5    activation time ``YYYY-MM-DD HH:MM[:SS]`` local (a time already passed activates
          the plan at once)
C.92.8    E2: clear what was written (the staging area)
C.92.9    E2: check and install the written plan as the passive plan with its activation
          time and its special days (they replace the table at the activation); R1: the
          result of the last write or install (``ok``, or the reason, e.g.
          ``day_profile_table_passive[0].day_schedule[1].script_selector: 7 is not an
          integer in 1..6``)
========  ==================================================================================

Every address needs the open seal (ER06 otherwise, logged SEALED_REFUSED), as the other
metrological parameters; a bad piece or plan answers ER05 and is logged TOU_REFUSED (value:
the address's last group, subject the address), R1 C.92.9 naming the reason. An install is
recorded in the audit trail (meter/audit.py: parameter C.92.9, old and new value = the
31-bit CRC of the previous and the new plan text, 0 = none; refused with ER09 while the
trail is full), logged TOU_PROGRAMMED (IDIS 19) and saved in the configuration (setting
``tou_program``: the written pieces and whether the plan was activated, replayed at boot),
before the ACK (ER09 while the configuration's write budget is spent).

The staging area holds at most the limits above (12 seasons, 12 week profiles, 7 day
profiles, 30 special days): a flood of writes cannot grow it.
"""

import binascii

from micropython import const

from billing import tou

SEASON = const(1)
WEEK = const(2)
DAY = const(3)
SPECIAL = const(4)
ACTIVATION = const(5)
CLEAR = const(8)
INSTALL = const(9)
_LIMITS = {SEASON: tou.MAX_SEASONS, WEEK: tou.MAX_WEEKS, DAY: tou.MAX_DAY_PROFILES,
           SPECIAL: tou.MAX_SPECIAL_DAYS}
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _int(s, lo, hi, what):
    if not (s.isdigit() or (s[:1] in "+-" and s[1:].isdigit())) or len(s) > 5:
        raise ValueError("%s: %r is not a number" % (what, s))
    v = int(s)
    if not lo <= v <= hi:
        raise ValueError("%s: %d not in %d..%d" % (what, v, lo, hi))
    return v


def parse(kind, text):
    """One written piece -> (number, JSON-shaped entry of lib/billing/tou) for ``kind``
    (SEASON .. ACTIVATION); ValueError naming what is wrong."""
    if kind == ACTIVATION:
        return 0, tou.parse_datetime(text, "activation time")
    f = text.split(";")
    if kind == SEASON:
        if len(f) != 3:
            raise ValueError("season: give n;MM-DD;w")
        n = _int(f[0], 1, tou.MAX_SEASONS, "season")
        tou.parse_date(f[1], "season %d start" % n)  # checked again as a plan
        w = _int(f[2], 1, tou.MAX_WEEKS, "season %d week profile" % n)
        return n, {"season_profile_name": "s%d" % n, "season_start": f[1],
                   "week_name": "w%d" % w}
    if kind == WEEK:
        if len(f) != 2:
            raise ValueError("week profile: give w;d1,...,d7")
        w = _int(f[0], 1, tou.MAX_WEEKS, "week profile")
        ids = f[1].split(",")
        if len(ids) != 7:
            raise ValueError("week profile %d: %d day ids, give 7 (Monday..Sunday)" % (
                w, len(ids)))
        e = {"week_profile_name": "w%d" % w}
        for i in range(7):
            e[_WEEKDAYS[i]] = _int(ids[i], 0, 255, "week profile %d %s" % (w, _WEEKDAYS[i]))
        return w, e
    if kind == DAY:
        if len(f) != 2:
            raise ValueError("day profile: give id;HH:MM=t,...")
        did = _int(f[0], 0, 255, "day profile")
        acts = f[1].split(",")
        if not 1 <= len(acts) <= tou.MAX_ACTIONS:
            raise ValueError("day profile %d: %d switching times, allowed 1..%d" % (
                did, len(acts), tou.MAX_ACTIONS))
        sched = []
        for a in acts:
            p = a.split("=")
            if len(p) != 2:
                raise ValueError("day profile %d: %r is not HH:MM=t" % (did, a))
            tou.parse_time(p[0], "day profile %d start time" % did)
            sched.append({"start_time": p[0], "script_selector": _int(
                p[1], 1, tou.MAX_TARIFFS, "day profile %d tariff" % did)})
        return did, {"day_id": did, "day_schedule": sched}
    if kind == SPECIAL:
        if len(f) != 3:
            raise ValueError("special day: give i;date;id")
        i = _int(f[0], 1, tou.MAX_SPECIAL_DAYS, "special day")
        e = {"index": i, "day_id": _int(f[2], 0, 255, "special day %d day id" % i)}
        d = f[1]
        if d[:1] in ("E", "O"):
            e["easter_offset"] = _int(d[1:], -80, 230, "special day %d Easter offset" % i)
            if d[0] == "O":
                e["computus"] = "orthodox"
        else:
            tou.parse_date(d, "special day %d date" % i)
            e["specialday_date"] = d
        return i, e
    raise ValueError("unknown piece")


class TouProgram:
    """The staging area and the install of a passive plan into ``cfg.calendar``
    (billing.config.Config; ``cfg.zone`` for the activation); ``settings``
    (meter.settings.Settings: ``tou_program``); ``log`` (lib.events.EventLog). Set by the
    app: :attr:`tariffs` (meter.tariffs.Tariffs: re-evaluated after an install),
    :attr:`audit` (meter.audit.AuditTrail)."""

    def __init__(self, cfg, settings):
        self.cfg = cfg
        self.settings = settings
        self.tariffs = None
        self.audit = None
        self.result = "ok"  # R1 C.92.9
        self._lines = {}  # (kind, n) -> the written text
        self.crc = 0  # the installed plan's 31-bit CRC (0: none)

    # -- writing ---------------------------------------------------------------------------

    def write(self, kind, text):
        """Stage one piece (W1 C.92.kind); ValueError naming what is wrong."""
        try:
            if not isinstance(text, str):
                raise ValueError("not text")
            n, _e = parse(kind, text)
            key = (kind, n)
            if key not in self._lines and kind in _LIMITS and sum(
                    1 for k in self._lines if k[0] == kind) >= _LIMITS[kind]:
                raise ValueError("at most %d of these" % _LIMITS[kind])
        except ValueError as e:
            self.result = str(e)
            raise
        self._lines[key] = text
        self.result = "ok"

    def clear(self):
        """E2 C.92.8: forget what was written."""
        self._lines = {}
        self.result = "ok"

    @staticmethod
    def _text(lines):
        # the canonical text of a plan: its pieces in order
        return "|".join("%d:%s" % (k[0], lines[k]) for k in sorted(lines))

    def build(self, lines):
        """(Plan, specials, activation local seconds, highest tariff) from written pieces;
        ValueError naming what is wrong (fields of lib/billing/tou's JSON shape)."""
        cfg = {"calendar_name_passive": "iec", "season_profile_passive": [],
               "week_profile_table_passive": [], "day_profile_table_passive": [],
               "special_days_table": []}
        table = {SEASON: "season_profile_passive", WEEK: "week_profile_table_passive",
                 DAY: "day_profile_table_passive", SPECIAL: "special_days_table"}
        act = None
        for k in sorted(lines):
            _n, e = parse(k[0], lines[k])
            if k[0] == ACTIVATION:
                act = e
            else:
                cfg[table[k[0]]].append(e)
        if act is None:
            raise ValueError("activation time (C.92.5): missing")
        plan = tou.plan_from_config(cfg, "_passive")
        sp = tou.specials_from_config(cfg, [(plan, "_passive")])
        top = 1
        for day in plan.days:
            for _s, t in day:
                if t > top:
                    top = t
        return plan, sp, act, top

    def install(self):
        """E2 C.92.9: check the staged plan and install it as the passive plan. Returns (old
        CRC, new CRC); ValueError naming what is wrong (nothing changed then). The caller
        checked the seal and the audit trail, saves and logs."""
        try:
            plan, sp, act, _top = self.build(self._lines)
        except ValueError as e:
            self.result = str(e)
            raise
        self._apply(plan, sp, act, False)
        old = self.crc
        text = self._text(self._lines)
        self.crc = (binascii.crc32(text.encode()) & 0x7FFFFFFF) or 1
        self.result = "ok"
        return old, self.crc

    def _apply(self, plan, sp, act, active):
        cal = self.cfg.calendar
        if active:  # activated before a restart: the active plan with its special days
            cal.active = plan
            cal.specials = sp
            cal.passive = None
            cal.passive_specials = None
            cal.activation = None
            cal._pc_day = -1
        else:
            cal.set_passive(plan, act, sp)
        if self.tariffs is not None:
            self.tariffs.clock_set()  # the tariff window and the activation re-evaluated

    def record(self):
        """The setting ``tou_program`` for the installed plan (saved by the caller)."""
        return {"lines": [[k[0], k[1], self._lines[k]] for k in sorted(self._lines)],
                "active": False, "crc": self.crc}

    # -- boot and activation ---------------------------------------------------------------

    def restore(self):
        """At boot, before the tariffs are built: the plan of the setting ``tou_program``
        (passive, or active if it was activated). Returns its highest tariff (0: none);
        ValueError if the stored plan does not check (the caller logs it)."""
        rec = self.settings.get("tou_program")
        if not rec:
            return 0
        lines = {}
        for kind, n, text in rec["lines"]:
            lines[(kind, n)] = text
        plan, sp, act, top = self.build(lines)
        self._apply(plan, sp, act, rec.get("active", False))
        self.crc = rec.get("crc", 0)
        return top

    def activated(self):
        """The passive plan became active (the billing service logged TOU_ACTIVATED): the
        setting remembers it, so a restart keeps it active without a second event."""
        rec = self.settings.get("tou_program")
        if rec and not rec.get("active"):
            rec = dict(rec)
            rec["active"] = True
            self.settings.set("tou_program", rec)
