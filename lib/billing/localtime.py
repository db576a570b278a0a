# Local time: time zone, daylight saving time rule, DLMS clock status bits.
"""A time zone with a DST rule: UTC RTC seconds <-> local seconds, integer-only.

Both time scales count seconds since 2000-01-01 00:00:00 (UTC for RTC seconds, the local
wall clock for local seconds), so ``civil.civil(local)`` gives the local date and time.

Rules (tz database rules ``EU`` and ``US``, as found in public tz code; the present rule is
applied to every year, so the US rule before 2007 is not modelled):

- ``RULE_EU``: DST from the last Sunday of March 01:00 UTC to the last Sunday of October
  01:00 UTC, whatever the zone's offset (Directive 2000/84/EC): CET 02:00 -> 03:00 CEST,
  CEST 03:00 -> 02:00 CET.
- ``RULE_US`` (North America): from the second Sunday of March 02:00 local standard time to
  the first Sunday of November 02:00 local daylight time.
- ``RULE_NONE``: no DST.

Local times that do not exist or occur twice (the hour skipped in spring, repeated in
autumn) are resolved like Python's PEP 495 ``fold``: see :meth:`Zone.to_utc`.

Clock status (DLMS/COSEM interface class 8, attribute 4 and the status byte of a date-time,
as Gurux decodes it): 0x01 invalid value, 0x02 doubtful value, 0x04 different clock base,
0x08 invalid clock status, 0x10..0x40 reserved, 0x80 daylight saving active; 0xFF = not
specified.

Range: 2000-01-02 .. 2099-12-31 (RTC seconds >= 0). On a 32-bit port RTC seconds reach 2**30
on 2034-01-10; the cached :meth:`Zone.offset` / :meth:`Zone.is_dst` path only compares, so it
allocates nothing even then; conversions allocate.
"""

from micropython import const

from civil import civil, seconds

RULE_NONE = const(0)
RULE_EU = const(1)
RULE_US = const(2)

# DLMS class 8 clock status bits
STATUS_INVALID = const(0x01)
STATUS_DOUBTFUL = const(0x02)
STATUS_DIFFERENT_BASE = const(0x04)
STATUS_INVALID_STATUS = const(0x08)
STATUS_DST = const(0x80)
STATUS_NOT_SPECIFIED = const(0xFF)

# kinds of local time (classify)
LOCAL_NORMAL = const(0)
LOCAL_GAP = const(1)  # skipped by the spring transition: never shown by the clock
LOCAL_REPEATED = const(2)  # shown twice: once in DST, then in standard time

_DAY = const(86400)


def day_number(y, m, d):
    """Days since 2000-01-01 of a civil date (ValueError if invalid or before 2000)."""
    return seconds(y, m, d) // _DAY


def weekday(days):
    """Weekday of a day number (days since 2000-01-01): 0 = Monday .. 6 = Sunday."""
    return (days + 5) % 7


def nth_sunday(y, m, n):
    """Day of the month of the n-th Sunday (n = 1..4) of month m, or the last one (n = -1)."""
    if n < 0:
        last = 31 if m in (1, 3, 5, 7, 8, 10, 12) else (30 if m != 2 else 28)
        if m == 2 and (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)):
            last = 29
        return last - (weekday(day_number(y, m, last)) + 1) % 7
    first = 1 + (6 - weekday(day_number(y, m, 1))) % 7
    return first + 7 * (n - 1)


class Zone:
    """Standard offset + DST rule.

    ``offset_min``: standard time minus UTC in minutes (CET = 60, EST = -300), -720..840 in
    steps of 15; ``rule``: RULE_NONE, RULE_EU or RULE_US; ``dst_min``: the DST shift in
    minutes (1..120, usually 60; DLMS clock attribute 7). Raises ValueError naming the
    argument.
    """

    def __init__(self, offset_min=0, rule=RULE_NONE, dst_min=60):
        if not -720 <= offset_min <= 840 or offset_min % 15:
            raise ValueError("offset_min: %r not in -720..840 in steps of 15" % (offset_min,))
        if rule not in (RULE_NONE, RULE_EU, RULE_US):
            raise ValueError("rule: %r is not RULE_NONE, RULE_EU or RULE_US" % (rule,))
        if not 1 <= dst_min <= 120:
            raise ValueError("dst_min: %r not in 1..120" % (dst_min,))
        self.std = offset_min * 60
        self.dst = dst_min * 60 if rule != RULE_NONE else 0
        self.rule = rule
        # cache: the UTC year [_ys, _ye) and its transitions [_on, _off)
        self._ys = 1
        self._ye = 0
        self._on = self._off = 0

    def transitions(self, year):
        """(start, end) of DST in ``year`` as RTC seconds (UTC), or None without a rule."""
        r = self.rule
        if r == RULE_EU:
            on = seconds(year, 3, nth_sunday(year, 3, -1), 1)
            off = seconds(year, 10, nth_sunday(year, 10, -1), 1)
        elif r == RULE_US:
            on = seconds(year, 3, nth_sunday(year, 3, 2), 2) - self.std
            off = seconds(year, 11, nth_sunday(year, 11, 1), 2) - self.std - self.dst
        else:
            return None
        return on, off

    def _load(self, utc):
        if utc < 0:  # before 2000-01-01 UTC (local times near it): no DST in either rule
            self._ys = utc
            self._ye = 0
            self._on = self._off = 0
            return
        y = civil(utc)[0]
        self._ys = seconds(y, 1, 1)
        self._ye = seconds(y + 1, 1, 1)
        tr = self.transitions(y)
        if tr is None:
            self._on = self._off = self._ye
        else:
            self._on, self._off = tr

    def is_dst(self, utc):
        """True while DST is in force at ``utc`` (RTC seconds)."""
        if not self._ys <= utc < self._ye:
            self._load(utc)
        return self._on <= utc < self._off

    def offset(self, utc):
        """Local minus UTC in seconds at ``utc`` (standard offset, plus the DST shift)."""
        if not self._ys <= utc < self._ye:
            self._load(utc)
        if self._on <= utc < self._off:
            return self.std + self.dst
        return self.std

    def local(self, utc):
        """Local seconds at ``utc``."""
        return utc + self.offset(utc)

    def to_local(self, utc):
        """(local seconds, DST flag) at ``utc``."""
        d = self.is_dst(utc)
        return utc + (self.std + self.dst if d else self.std), d

    def next_transition(self, utc):
        """The first DST transition strictly after ``utc`` (RTC seconds), or None."""
        if self.rule == RULE_NONE:
            return None
        y = civil(utc)[0]
        on, off = self.transitions(y)
        if utc < on:
            return on
        if utc < off:
            return off
        return self.transitions(y + 1)[0]

    def classify(self, local):
        """LOCAL_NORMAL, LOCAL_GAP (skipped in spring) or LOCAL_REPEATED (autumn) for a
        local time."""
        a = self.offset(local - self.std) == self.std  # valid as standard time
        b = self.dst and self.offset(local - self.std - self.dst) != self.std  # valid as DST
        if a and b:
            return LOCAL_REPEATED
        if a or b:
            return LOCAL_NORMAL
        return LOCAL_GAP

    def to_utc(self, local, fold=0):
        """RTC seconds (UTC) of a local time.

        Normal local times have one answer. A repeated local time (the hour after the autumn
        transition) maps to its first occurrence (DST) with ``fold=0``, to the second
        (standard time) with ``fold=1``. A skipped local time (the hour after the spring
        transition) is mapped with the offset in force before the transition (``fold=0``:
        the result is after the transition, i.e. 02:30 CET becomes 03:30 CEST) or after it
        (``fold=1``: 01:30 CET). This is PEP 495's rule, and what a meter does with a
        switching time that the clock skips: it is executed when the clock jumps past it.
        """
        u_std = local - self.std
        if not self.dst:
            return u_std
        u_dst = u_std - self.dst
        a = self.offset(u_std) == self.std
        b = self.offset(u_dst) != self.std
        if a and b:
            return u_std if fold else u_dst
        if a:
            return u_std
        if b:
            return u_dst
        return u_dst if fold else u_std  # gap: before-transition offset for fold=0

    def status(self, utc, extra=0):
        """DLMS clock status byte at ``utc``: ``extra`` bits (STATUS_INVALID, ...) plus
        STATUS_DST while DST is in force."""
        return extra | (STATUS_DST if self.is_dst(utc) else 0)

    def deviation(self, utc):
        """DLMS date-time deviation in minutes = UTC - local (CET -> -60, CEST -> -120), the
        sign both Gurux and dlms-cosem put on the wire (Blue Book 4.1.6.1 as they read it;
        some companion standards use the opposite sign)."""
        return -self.offset(utc) // 60

    def vdew_stamp(self, utc, seconds_field=True):
        """IEC 62056-21 / VDEW time stamp of ``utc`` in local time: ``Zyymmddhhmmss`` with
        Z = 1 in DST (summer) and 0 in standard time (as in EMH/MetCom readouts; ``P.01``
        headers, ``0.1.2`` and maximum demand time stamps). Without ``seconds_field``:
        ``Zyymmddhhmm``."""
        loc, d = self.to_local(utc)
        y, mo, dd, hh, mi, ss, _ = civil(loc)
        if seconds_field:
            return "%d%02d%02d%02d%02d%02d%02d" % (1 if d else 0, y % 100, mo, dd, hh, mi, ss)
        return "%d%02d%02d%02d%02d%02d" % (1 if d else 0, y % 100, mo, dd, hh, mi)

    def from_vdew(self, text):
        """RTC seconds (UTC) of a ``Zyymmddhhmm[ss]`` stamp (years 2000..2099); the season
        digit Z picks the occurrence of a repeated local hour (1 = DST). Raises ValueError
        naming the bad stamp."""
        if len(text) not in (11, 13) or not text.isdigit() or text[0] not in "01":
            raise ValueError("time stamp %r is not Zyymmddhhmm[ss]" % (text,))
        v = [int(text[i: i + 2]) for i in range(1, len(text), 2)]
        ss = v[5] if len(v) > 5 else 0
        local = seconds(2000 + v[0], v[1], v[2], v[3], v[4], ss)
        return self.to_utc(local, 0 if text[0] == "1" else 1)
