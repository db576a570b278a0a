# Tariff in force in UTC, and the exact split of an interval's energy between tariffs.
"""The tariff register side of time of use (DLMS: the script selected by the activity
calendar sets the register activation mask, so only 1.8.E of the active tariff E
accumulates; invariant 1.8.0 = sum of 1.8.1..1.8.6).

:class:`TariffClock` answers "which tariff at UTC time u" from a ``tou.Calendar`` and a
``localtime.Zone``, and keeps the answer for the whole window ``[lo, hi)`` in which it cannot
change: ``hi`` is the calendar's next switch converted to UTC with the offset in force, or
the next DST transition, whichever is first. Inside the window a call only compares
integers, so it allocates nothing even when the times are long ints (RTC seconds >= 2**30 on
a 32-bit port, from 2034). Times are RTC seconds, or milliseconds with ``unit=1000``.

:meth:`TariffClock.split` divides the energy ``e`` (an integer: chip LSB, mWh, ...) of one
metering interval ``[t0, t1)`` between the tariffs in force during it, in proportion to
time, exactly: the parts are integers that always sum to ``e``. Rounding is the largest
remainder method (Hamilton) per interval, on the tariffs' total durations: each tariff gets
``floor(e * d / D)``, and the ``e - sum`` units left go one each to the tariffs with the
largest remainders (ties: the tariff that came first in the interval). It is stateless, so
a part never differs from the exact share by one unit or more. ``e`` may be negative (the
parts are then the negated split of ``-e``). A degenerate interval (``t1 <= t0``, e.g. the
clock was set back inside it) goes whole to the tariff in force at ``t0``. With no switch
inside the interval (the common case) the split is one comparison and one addition, and
allocates nothing (checked under ``micropython.heap_lock()`` in
host_tests/unit/test_billing_tariff.py).
"""

from micropython import const

_MAXT = const(6)


class TariffClock:
    """``calendar``: tou.Calendar; ``zone``: localtime.Zone; ``unit``: 1 (seconds) or 1000
    (milliseconds) per RTC second; ``on_activate``: optional callable(utc) called when the
    passive plan was activated (the caller logs IDIS event 9)."""

    def __init__(self, calendar, zone, unit=1, on_activate=None):
        self.calendar = calendar
        self.zone = zone
        self.unit = unit
        self.on_activate = on_activate
        self._lo = 1  # empty window: the first call computes
        self._hi = 0
        self._t = 1
        self._dur = [0] * (_MAXT + 1)  # scratch for split(): duration per tariff
        self._rem = [0] * (_MAXT + 1)
        self._order = [0] * (_MAXT + 1)  # order of first appearance in the interval
        self.recomputes = 0

    def invalidate(self):
        """Forget the cached window (the RTC was set, the calendar changed)."""
        self._lo = 1
        self._hi = 0

    def window(self, t):
        """(tariff, lo, hi): the tariff in force at ``t`` and the window [lo, hi) around
        ``t`` in which it holds (lo <= t < hi), in the clock's unit."""
        self.tariff(t)
        return self._t, self._lo, self._hi

    def tariff(self, t):
        """Tariff (1..6) in force at ``t`` (RTC seconds, or ms with unit=1000)."""
        if self._lo <= t < self._hi:
            return self._t
        return self._compute(t)

    def _compute(self, t):
        u = self.unit
        utc = t // u
        z = self.zone
        cal = self.calendar
        off = z.offset(utc)
        local = utc + off
        if cal.activate_due(local) and self.on_activate is not None:
            self.on_activate(utc)
        tar = cal.tariff_at(local)
        hi = cal.next_switch(local) - off  # the offset is constant up to the transition
        tr = z.next_transition(utc)
        if tr is not None and tr < hi:
            hi = tr
        # the window starts at t (not earlier: the caller's times normally increase)
        self._lo = t
        self._hi = hi * u
        self._t = tar
        self.recomputes += 1
        return tar

    def split(self, t0, t1, e, out):
        """Add the energy ``e`` of the interval [t0, t1) to ``out[tariff]`` (a list indexed
        by tariff 1..6; ``out[0]`` is not touched), split by time; return the number of
        tariffs that received a part (1 in the common case)."""
        if self._lo <= t0 and t1 <= self._hi:
            out[self._t] += e
            return 1
        if t1 <= t0:
            out[self.tariff(t0)] += e
            return 1
        if e < 0:
            tmp = [0] * (_MAXT + 1)
            n = self.split(t0, t1, -e, tmp)
            for i in range(1, _MAXT + 1):
                out[i] -= tmp[i]
            return n
        dur = self._dur
        order = self._order
        for i in range(_MAXT + 1):
            dur[i] = 0
        n = 0
        t = t0
        while t < t1:
            tar = self.tariff(t)
            end = self._hi if self._hi < t1 else t1
            if dur[tar] == 0:
                order[n] = tar
                n += 1
            dur[tar] += end - t
            t = end
        total = t1 - t0
        rem = self._rem
        given = 0
        for k in range(n):
            tar = order[k]
            q, r = divmod(e * dur[tar], total)
            out[tar] += q
            given += q
            rem[k] = r
        left = e - given  # 0 <= left < n
        while left > 0:
            best = 0
            for k in range(1, n):
                if rem[k] > rem[best]:
                    best = k
            out[order[best]] += 1
            rem[best] = -1
            left -= 1
        return n


def split_exact(e, weights, out):
    """Largest-remainder split of the integer ``e`` >= 0 in proportion to the non-negative
    integer ``weights`` (sum > 0) into the list ``out`` (same length, overwritten); ties
    go to the earlier weight. Returns ``out``. The parts sum to ``e`` exactly."""
    total = 0
    for w in weights:
        total += w
    if total <= 0:
        raise ValueError("weights must have a positive sum")
    given = 0
    rem = []
    for k in range(len(weights)):
        q, r = divmod(e * weights[k], total)
        out[k] = q
        given += q
        rem.append(r)
    left = e - given
    while left > 0:
        best = 0
        for k in range(1, len(rem)):
            if rem[k] > rem[best]:
                best = k
        out[best] += 1
        rem[best] = -1
        left -= 1
    return out
