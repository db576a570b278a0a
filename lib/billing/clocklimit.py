# Clock-set limit: how often and how far the local ports may set the RTC per period.
"""The limit on setting the clock over the local ports (IEC 62056-21 W1 0.9.1 / 0.9.2 on the
optical and RS-485 ports) while the seal is closed: at most ``max_sets`` sets and at most
``max_shift_s`` seconds of total shift (the sum of ``|new - old|``) per period, the period
being the local day (``"day"``, 00:00..24:00 local) or the billing period (``"billing"``,
from one end of billing to the next, lib/billing/period.Schedule). With the seal open a set
is never refused (but counted). A set of a clock that is not trusted (``rtc_valid`` False:
the RTC lost its time) is free, and so is the completing set of the other half (0.9.1 after
0.9.2 or the other way round) within ``FREE_S`` (600 s) of RTC time after it: an installer
sets the date, then the time. Every set counts as one set; its shift counts only when it is
at most ``max_shift_s`` (a larger one, possible only free or with the seal open, would
otherwise block the rest of the period). The same rule rebuilds the budget after a restart
from the audit trail (firmware/meter/audit.py), which records every set.

Why: a clock moved far, or back and forth, shifts energy between tariffs and moves billing
ends and demand periods; the audit trail records every set, the limit bounds what a holder of
the password can do without breaking the seal (billing reference A: "limited per period
unless the seal is open"; DLMS class 8 has no such attribute, this is our documented rule).

The period of a set is the one holding the clock's reading *before* the set (``old``); the
budget starts afresh only when that period is later than the one counted (a set back across
midnight does not reset it). A set forward past the period's end reaches the next period's
budget: with the defaults an attacker gains at most ``max_shift_s`` beyond one period per
period.

Configuration: ``billing.config`` key ``"clock"``: ``{"max_sets": 4, "max_shift_s": 900,
"period": "day"}`` (``max_sets`` 1..100, ``max_shift_s`` 1..2678400, ``period`` ``"day"`` or
``"billing"``).
"""

from micropython import const

FREE_S = const(600)
OK = const(0)
REASON_SETS = const(1)  # the period's number of sets is used up
REASON_SHIFT = const(2)  # the set would exceed the period's total shift
PERIOD_DAY = "day"
PERIOD_BILLING = "billing"


class ClockLimit:
    """``max_sets`` sets and ``max_shift_s`` s of total shift per period (``"day"`` or
    ``"billing"``); ``zone`` (localtime.Zone) gives local time, ``schedule``
    (period.Schedule) the billing period. All times are RTC seconds (UTC)."""

    def __init__(self, max_sets=4, max_shift_s=900, period=PERIOD_DAY, zone=None,
                 schedule=None):
        if period not in (PERIOD_DAY, PERIOD_BILLING):
            raise ValueError("clock.period: %r is not one of billing, day" % (period,))
        self.max_sets = max_sets
        self.max_shift_s = max_shift_s
        self.period = period
        self.zone = zone
        self.schedule = schedule
        self.start = -1  # the counted period's start (RTC s), -1: none yet
        self.sets = 0
        self.shift = 0
        self._free_until = -1  # RTC s: a completing set of a clock that was invalid is free
        self.restored = False  # the caller rebuilt the budget (from the audit trail)

    def period_start(self, utc):
        """Start (RTC seconds UTC) of the period holding ``utc``."""
        z = self.zone
        loc = z.local(utc) if z is not None else utc
        if self.period == PERIOD_BILLING and self.schedule is not None:
            start = self.schedule.previous_end(loc)
        else:
            start = loc - loc % 86400
        return z.to_utc(start) if z is not None else start

    def _roll(self, old):
        p = self.period_start(old)
        if p > self.start:
            self.start = p
            self.sets = 0
            self.shift = 0

    def check(self, old, new, valid=True):
        """OK (0), REASON_SETS or REASON_SHIFT for a set from ``old`` to ``new`` (RTC s) of a
        clock that is ``valid`` (trusted); nothing is counted (:meth:`record` after the set).
        """
        if not valid or old < self._free_until:
            return OK
        self._roll(old)
        if self.sets + 1 > self.max_sets:
            return REASON_SETS
        if self.shift + abs(new - old) > self.max_shift_s:
            return REASON_SHIFT
        return OK

    def record(self, old, new, valid=True):
        """Count a set from ``old`` to ``new`` (done; ``valid``: the clock was trusted)."""
        self._free_until = -1 if valid else new + FREE_S  # one completing set
        self._roll(old)
        self.sets += 1
        d = abs(new - old)
        if d <= self.max_shift_s:
            self.shift += d

    def left(self, now):
        """(sets, seconds of shift) left in the period holding ``now``."""
        if self.period_start(now) > self.start:
            return self.max_sets, self.max_shift_s
        return max(0, self.max_sets - self.sets), max(0, self.max_shift_s - self.shift)
