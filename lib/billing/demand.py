# Demand: block, sliding and thermal; maximum demand per tariff; demand reset.
"""Demand (average power) from interval energies, as a pure state machine fed by the caller.

Units: the caller feeds integer energies in any unit (mWh recommended: then every demand
value is in mW); demand values are that unit per hour. Times are RTC seconds (UTC, so that
DST does not move the grid; for zones with whole-hour or half-hour offsets the grid is also
aligned to local time).

**Block and sliding demand** (:class:`WindowDemand`; DLMS class 5 "demand register":
``period`` = sub-period in seconds, attribute 8, ``number_of_periods`` = n, attribute 9,
1 = block, > 1 = sliding; billing reference B1/B2): sub-periods are aligned to the clock
(grid points are multiples of the period, which must divide 3600). At the end of each
sub-period the demand over the last n sub-periods is ``last_average`` = energy x 3600 /
(n x period), rounded half up, captured at the sub-period's end (``capture_time``). Until n
sub-periods have been measured (start, reset of the window), the missing ones count as 0
(the value never overestimates). An interval fed with end time ``t`` covers ``(t_prev, t]``
and belongs to the sub-period ending at or after ``t``; one that straddles a boundary is
split in proportion to time (integer parts that sum to its energy).

**Thermal demand** (:class:`ThermalDemand`): the exponential response of a thermal demand
meter, 90 % of a step after one period T and 99 % after two (Siemens ACCESS 9340,
fig. 4-5): time constant tau = T / ln 10 (390.9 s for T = 15 min). Discretisation: one
step per second of fed time with the interval's mean power P, ``D += alpha (P - D)``,
alpha = 1 - 10**(-1/T) (0.002555 for T = 900 s) held as a Q24 integer; D is kept with a Q24
fraction (no truncation drift), and its integer part is the value. The step uses the integer
part of D, so the value stays within one unit of the exact discrete solution.

**Maximum demand** (:class:`Maxima`): index 0 is the total maximum 1.6.0, 1..6 the tariffs'
1.6.1..1.6.6 (OBIS 1.0.1.6.E.255, class 4 with capture_time = the time of the maximum), each
with its time stamp (strictly greater values replace; an equal later value keeps the first
time). A block/sliding value is offered at its capture with the tariff the caller passes
(normally the tariff in force at the end of the sub-period, so tariff switching times
should lie on sub-period boundaries); a thermal value at every feed. The cumulative maximum
demand (1.2.0, 1.2.E, OBIS D = 2) adds each maximum at a demand reset. A reset
(:meth:`Maxima.reset`) ends the billing period of the maxima: a manual one (button, local
command) is refused during ``lockout_s`` after the previous reset (OBIS 1.0.0.9.12.255);
a scheduled one (end of billing period) always runs.

**Power cuts and clock changes** (billing reference B1: Itron ACE6000 end-of-interval
options). The caller calls ``power_down(t)`` if it can (else the last feed time is used),
``power_up(t)`` at power-up and ``clock_set(old, new)`` when the RTC is set (after feeding
the energy up to ``old``). A sub-period touched by an outage or a clock set is
*incomplete*.

- ``RESUME`` (default): the grid stays on the clock. An outage inside one sub-period just
  continues it (energy before + after). Over a boundary, the interrupted sub-period ends at
  its regular end with what it had; sub-periods entirely inside the outage count 0 in the
  sliding window (real time passed) and produce no capture; the sub-period in which power
  returns starts partial. Incomplete values are offered to the maxima (they can only be
  lower than a full measurement).
- ``SYNCHRONISE``: as RESUME, but a value is offered to the maxima only if all n sub-periods
  of its window are complete: demand counts again from the first whole period after the
  power returns.
- ``RESTART``: the interrupted sub-period is closed at the power-down time; the window is
  cleared, and a new full sub-period starts at power-up: the grid is shifted to the
  power-up instant (until the next ``clock_set``, which re-aligns it to the clock).

A clock set that stays inside the current sub-period only changes its length (|shift| < one
sub-period). Otherwise the sub-period ends at the set (captured at ``old``, incomplete) and
a new one starts at ``new``, ending at the next grid point: no sub-period is ever longer
than the period, so a backward set cannot double any energy into one demand value; the
maxima's time stamps may then go back in time. No time passes in a clock set, so no zero
sub-periods are inserted. A feed whose time goes backwards, or forwards by more than a
sub-period, is taken as an unannounced clock set.

Persistence: ``state()`` returns compact bytes (format below each class), ``restore(b)``
takes them back (ValueError if they were written for another configuration).

Allocation: a feed that closes nothing only compares and adds, so it allocates nothing even
for long-int times (RTC seconds >= 2**30 on a 32-bit port, from 2034); thermal feeds
allocate nothing while |P - D| stays below about 34 kW (T = 5 min) .. 100 kW (T = 15 min) in
mW. Closing a sub-period computes (a few small allocations once per period at most).
"""

import struct

from micropython import const

RESUME = const(0)
RESTART = const(1)
SYNCHRONISE = const(2)

_VERSION = const(1)
_NT = const(6)


def _ratio(window):
    """(num, den): 3600 / window reduced, so that demand = energy * num / den stays small."""
    a, b = 3600, window
    while b:
        a, b = b, a % b
    return 3600 // a, window // a


class Maxima:
    """Maximum demand per tariff with time stamps, cumulative maxima, reset with lockout.

    ``value[i]``, ``time[i]`` (i = 0 total, 1..6 tariffs; time 0 = no maximum yet),
    ``cum[i]`` cumulative maxima, ``resets`` (count), ``last_reset`` (RTC s or None).
    State: ``<BBHiII`` (version, tariffs, 0, lockout_s, last_reset + 1 or 0, resets) + per
    index ``<iIq`` (value, time, cumulative): 16 + 16 x 7 = 128 bytes.
    """

    def __init__(self, lockout_s=0, tariffs=_NT):
        if not 0 <= lockout_s <= 31 * 86400:
            raise ValueError("lockout_s: %r not in 0..2678400" % (lockout_s,))
        if not 1 <= tariffs <= _NT:
            raise ValueError("tariffs: %r not in 1..6" % (tariffs,))
        self.lockout_s = lockout_s
        self.tariffs = tariffs
        self.value = [0] * (tariffs + 1)
        self.time = [0] * (tariffs + 1)
        self.cum = [0] * (tariffs + 1)
        self.resets = 0
        self.last_reset = None

    def offer(self, v, t, tariff):
        """Compare the demand ``v`` captured at ``t`` in ``tariff`` (1..6) with the maxima."""
        if v > self.value[0]:
            self.value[0] = v
            self.time[0] = t
        if v > self.value[tariff]:
            self.value[tariff] = v
            self.time[tariff] = t

    def reset(self, t, manual=False):
        """Demand reset at ``t``: add the maxima to the cumulative ones, clear them. A manual
        reset within ``lockout_s`` after the previous one is refused (returns False); a clock
        set before the previous reset does not block it. Returns True when done."""
        lr = self.last_reset
        if manual and lr is not None and lr <= t < lr + self.lockout_s:
            return False
        for i in range(self.tariffs + 1):
            self.cum[i] += self.value[i]
            self.value[i] = 0
            self.time[i] = 0
        self.resets += 1
        self.last_reset = t
        return True

    def state(self):
        n = self.tariffs
        out = bytearray(16 + 16 * (n + 1))
        lr = 0 if self.last_reset is None else self.last_reset + 1
        struct.pack_into("<BBHiII", out, 0, _VERSION, n, 0, self.lockout_s, lr, self.resets)
        for i in range(n + 1):
            struct.pack_into("<iIq", out, 16 + 16 * i, self.value[i], self.time[i],
                             self.cum[i])
        return bytes(out)

    def restore(self, b):
        n = self.tariffs
        if len(b) != 16 + 16 * (n + 1):
            raise ValueError("maxima state: %d bytes for another configuration" % len(b))
        ver, tn, _z, _lock, lr, resets = struct.unpack_from("<BBHiII", b, 0)
        if ver != _VERSION or tn != n:
            raise ValueError("maxima state: version %d / %d tariffs not supported" % (ver, tn))
        # lockout_s stays the configured one (the state's is the one of the last write)
        self.last_reset = None if lr == 0 else lr - 1
        self.resets = resets
        for i in range(n + 1):
            self.value[i], self.time[i], self.cum[i] = struct.unpack_from("<iIq", b,
                                                                          16 + 16 * i)


class WindowDemand:
    """Block (``number_of_periods`` = 1) or sliding demand on a clock-aligned grid.

    ``period_s``: sub-period in seconds (60..3600, a divisor of 3600; 900, 1800, 3600 for the
    usual 15/30/60 min block); ``number_of_periods``: 1..15; ``policy``: RESUME, RESTART or
    SYNCHRONISE; ``maxima``: a :class:`Maxima` to offer captured values to, or None.

    Read-outs: ``last_average`` (demand of the last completed window, DLMS attribute 3),
    ``capture_time`` (its end), ``start_time_current`` (start of the open sub-period),
    ``last_complete`` (False if the window held an incomplete sub-period), ``captures``
    (count), :meth:`current_average` (attribute 2).

    State (:meth:`state`): ``<BBBBHHIIiiIIIBBH`` (40 bytes: version, policy, n, flags,
    period, phase, end, last, acc, last_average, capture_time, start_time_current, captures,
    ring index, ring fill, complete bits) + n x ``<i`` sub-period energies + the maxima's
    state, if any.
    """

    def __init__(self, period_s=900, number_of_periods=1, policy=RESUME, maxima=None):
        if not 60 <= period_s <= 3600 or 3600 % period_s:
            raise ValueError("period_s: %r is not a divisor of 3600 in 60..3600" % (period_s,))
        if not 1 <= number_of_periods <= 15:
            raise ValueError("number_of_periods: %r not in 1..15" % (number_of_periods,))
        if policy not in (RESUME, RESTART, SYNCHRONISE):
            raise ValueError("policy: %r is not RESUME, RESTART or SYNCHRONISE" % (policy,))
        self.period = period_s
        self.n = number_of_periods
        self.policy = policy
        self.maxima = maxima
        self._num, self._den = _ratio(period_s * number_of_periods)
        self._ring = [0] * number_of_periods
        self._okr = bytearray(number_of_periods)
        self._i = 0
        self._filled = 0
        self._phase = 0
        self._end = None  # end of the open sub-period; None until the first feed
        self._last = 0
        self._acc = 0
        self._ok = False
        self.last_average = 0
        self.capture_time = 0
        self.start_time_current = 0
        self.last_complete = False
        self.captures = 0

    # ---- grid -----------------------------------------------------------------------------
    def _floor(self, t):
        return t - (t - self._phase) % self.period

    def _start(self, t):
        # first feed: the open sub-period is the one ending at or after t; it is partial
        end = self._floor(t - 1) + self.period
        self._end = end
        self._last = t
        self._ok = False
        self.start_time_current = end - self.period

    # ---- feeding ----------------------------------------------------------------------------
    def feed(self, t, e, tariff=1):
        """Energy ``e`` measured in (previous feed, ``t``], in ``tariff``. Returns True if a
        sub-period closed (``last_average`` / ``capture_time`` are new)."""
        end = self._end
        if end is not None and self._last <= t <= end:
            self._acc += e
            self._last = t
            if t == end:
                self._close(tariff, end)
                return True
            return False
        return self._feed_slow(t, e, tariff)

    def add(self, e):
        """Energy ``e`` of an interval that ends inside the open sub-period, before its end,
        fed without its time (31-bit small ints: the caller compares its own relative time
        with :meth:`end`); :meth:`touch` then gives the time of the last such interval
        before any call with a time. Small-int adds only."""
        self._acc += e

    def touch(self, t):
        """The last interval fed (:meth:`add`) ended at ``t`` (RTC s)."""
        if self._end is not None and t >= self._last:
            self._last = t

    def end(self):
        """The end of the open sub-period (RTC s; None before the first feed)."""
        return self._end

    def _feed_slow(self, t, e, tariff):
        if self._end is None:
            self._start(t)
            return self.feed(t, e, tariff)
        t0 = self._last
        if t < t0 or t - t0 > self.period:  # not a metering interval: a clock change
            self._acc += e
            return self.clock_set(t0, t, tariff)
        b = self._end  # t0 < b < t <= b + period: split at the boundary
        first = e * (b - t0) // (t - t0)
        self._acc += first
        self._close(tariff, b)
        self._acc += e - first
        self._last = t
        return True

    def _close(self, tariff, capture):
        """Close the open sub-period at ``capture``; the next one ends at end + period."""
        i = self._i
        self._ring[i] = self._acc
        self._okr[i] = 1 if self._ok else 0
        self._i = (i + 1) % self.n
        if self._filled < self.n:
            self._filled += 1
        s = 0
        ok = self._filled == self.n
        for k in range(self.n):
            s += self._ring[k]
            if not self._okr[k]:
                ok = False
        self.last_average = (s * self._num + self._den // 2) // self._den
        self.capture_time = capture
        self.last_complete = ok
        self.captures += 1
        self._acc = 0
        self._ok = True
        self._end += self.period
        self.start_time_current = self._end - self.period
        if self.maxima is not None and (ok or self.policy != SYNCHRONISE):
            self.maxima.offer(self.last_average, capture, tariff)

    def current_average(self):
        """Demand of the open window so far (the last n - 1 sub-periods + the open one),
        over the full window length (DLMS attribute 2)."""
        s = self._acc
        n = self.n
        for k in range(1, n):
            s += self._ring[(self._i - k) % n]
        return (s * self._num + self._den // 2) // self._den

    # ---- events ------------------------------------------------------------------------------
    def power_down(self, t):
        """Power failing at ``t`` (feed the energy up to ``t`` first)."""
        if self._end is not None and t >= self._last:
            self._last = t

    def power_up(self, t, tariff=1):
        """Power back at ``t``. Returns True if a sub-period was closed (captured)."""
        if self._end is None:
            return False
        if t < self._last:  # the clock went back during the outage: a clock set
            return self.clock_set(self._last, t, tariff)
        down = self._last
        P = self.period
        if self.policy == RESTART:
            self._ok = False
            self._close(tariff, down)
            for k in range(self.n):
                self._ring[k] = 0
                self._okr[k] = 0
            self._i = 0
            self._filled = 0
            self._phase = t % P
            self._end = t + P
            self.start_time_current = t
            self._ok = True
            self._last = t
            return True
        self._last = t
        if t <= self._end:  # inside the same sub-period: continue it
            self._ok = False
            return False
        old_end = self._end
        self._ok = False
        self._close(tariff, old_end)
        fl = self._floor(t)
        k = (fl - old_end) // P  # sub-periods entirely inside the outage
        if k > self.n:
            k = self.n
        for _ in range(k):  # zero energy, real time passed (not captured)
            self._ring[self._i] = 0
            self._okr[self._i] = 0
            self._i = (self._i + 1) % self.n
            if self._filled < self.n:
                self._filled += 1
        self._end = fl + P
        self.start_time_current = fl
        self._ok = fl == t  # power back exactly on a boundary: a whole sub-period follows
        return True

    def clock_set(self, old, new, tariff=1):
        """The RTC was set from ``old`` to ``new``. Returns True if the open sub-period was
        closed (captured at ``old``)."""
        if self._end is None:
            return False
        P = self.period
        self._last = new
        if self._phase and self.policy == RESTART:
            self._phase = 0  # a clock set re-aligns a RESTART grid to the clock
        elif self._end - P < new <= self._end:
            return False  # stays in the open sub-period
        self._ok = False
        self._close(tariff, old)
        fl = self._floor(new)
        self._end = fl + P if fl < new else new + P
        self.start_time_current = new
        self._ok = False
        return True

    # ---- persistence ---------------------------------------------------------------------------
    def state(self):
        """Compact bytes of the whole state (see the class docstring)."""
        n = self.n
        okbits = 0
        for k in range(n):
            if self._okr[k]:
                okbits |= 1 << k
        flags = (1 if self._end is not None else 0) | (2 if self._ok else 0) | \
            (4 if self.last_complete else 0)
        head = struct.pack("<BBBBHHIIiiIIIBBH", _VERSION, self.policy, n, flags, self.period,
                           self._phase, self._end or 0, self._last, self._acc,
                           self.last_average, self.capture_time, self.start_time_current,
                           self.captures, self._i, self._filled, okbits)
        ring = struct.pack("<%di" % n, *self._ring)
        mx = self.maxima.state() if self.maxima is not None else b""
        return head + ring + mx

    def restore(self, b):
        """Load a state from :meth:`state` (ValueError if it is for another configuration)."""
        n = self.n
        hl = struct.calcsize("<BBBBHHIIiiIIIBBH")
        v = struct.unpack_from("<BBBBHHIIiiIIIBBH", b, 0) if len(b) >= hl else None
        if v is None or v[0] != _VERSION or v[1] != self.policy or v[2] != n or \
                v[4] != self.period:
            # another period, policy or number of sub-periods: the window starts afresh, but
            # the maxima (billing values: 1.6.x, 1.2.x, resets) are kept when readable
            if v is not None and v[0] == _VERSION and self.maxima is not None and \
                    len(b) > hl + 4 * v[2]:
                try:
                    self.maxima.restore(b[hl + 4 * v[2]:])
                except ValueError:
                    pass
            raise ValueError("demand state: written for another configuration")
        mlen = len(b) - hl - 4 * n
        if (self.maxima is None) != (mlen == 0):
            raise ValueError("demand state: maxima present/absent mismatch")
        if self.maxima is not None:
            self.maxima.restore(b[hl + 4 * n:])
        flags = v[3]
        self._phase = v[5]
        self._end = v[6] if flags & 1 else None
        self._last, self._acc, self.last_average = v[7], v[8], v[9]
        self.capture_time, self.start_time_current, self.captures = v[10], v[11], v[12]
        self._i, self._filled = v[13], v[14]
        self._ok = bool(flags & 2)
        self.last_complete = bool(flags & 4)
        ring = struct.unpack_from("<%di" % n, b, hl)
        for k in range(n):
            self._ring[k] = ring[k]
            self._okr[k] = 1 if v[15] >> k & 1 else 0


_Q = const(24)
_QM = const(0xFFF)


class ThermalDemand:
    """Exponential (thermal) demand with response time ``period_s`` (300..3600 s: 90 % of a
    step after one period).

    ``value``: the demand (energy unit per hour; floor of the exact state); ``maxima``: a
    :class:`Maxima` offered the value at every feed, or None.
    State: ``<BBHiII`` (version, 0, period, value, Q24 fraction, last time) = 16 bytes + the
    maxima's state, if any.
    """

    def __init__(self, period_s=900, maxima=None):
        if not 300 <= period_s <= 3600:
            raise ValueError("period_s: %r not in 300..3600" % (period_s,))
        self.period = period_s
        self.maxima = maxima
        # alpha = 1 - 10**(-1/T) in Q24, computed once (float only here)
        self.alpha = int((1.0 - 10.0 ** (-1.0 / period_s)) * (1 << _Q) + 0.5)
        self.value = 0
        self._frac = 0
        self._last = None

    def _step(self, p):
        # value + frac / 2**24 += alpha * (p - value) / 2**24, exactly: (p - value) is cut into
        # 12-bit halves so that every product stays a small int (< 2**30) on a 32-bit port
        d = p - self.value
        a = (d >> 12) * self.alpha
        b = (d & _QM) * self.alpha + self._frac
        c = a + (b >> 12)
        self.value += c >> 12
        self._frac = ((c & _QM) << 12) | (b & _QM)

    def _steps(self, p, n):
        if n >= 5 * self.period:  # residue < 1e-5 of the step: settled
            self.value = p
            self._frac = 0
            return
        for _ in range(n):
            self._step(p)

    def feed(self, t, e, tariff=1, dt=1):
        """Energy ``e`` measured over the last ``dt`` seconds (>= 1, the caller's interval
        length), ending at ``t``: ``dt`` steps with the mean power."""
        if dt < 1:
            raise ValueError("dt: %r < 1 s" % (dt,))
        self._steps(e * 3600 // dt, dt)
        self._last = t
        if self.maxima is not None:
            self.maxima.offer(self.value, t, tariff)

    def add(self, e, dt=1):
        """:meth:`feed` without the time (the caller gives it with :meth:`touch` before any
        call with a time); only without maxima (a maximum needs its time)."""
        if self.maxima is not None:
            raise ValueError("thermal demand with maxima: feed with the time")
        self._steps(e * 3600 // dt, dt)

    def touch(self, t):
        """The last interval fed (:meth:`add`) ended at ``t`` (RTC s)."""
        self._last = t

    def power_down(self, t):
        """Power failing at ``t``."""
        self._last = t

    def power_up(self, t):
        """Power back at ``t``: the demand decays over the outage (zero power), as the
        thermal element of a thermal demand meter cools."""
        if self._last is not None and t > self._last:
            self._steps(0, t - self._last)
        self._last = t

    def clock_set(self, old, new):
        """The RTC was set: no time passed, only the reference moves."""
        self._last = new

    def state(self):
        mx = self.maxima.state() if self.maxima is not None else b""
        last = 0 if self._last is None else self._last + 1
        return struct.pack("<BBHiII", _VERSION, 0, self.period, self.value, self._frac,
                           last) + mx

    def restore(self, b):
        if len(b) < 16:
            raise ValueError("thermal state: too short")
        ver, _z, per, val, frac, last = struct.unpack_from("<BBHiII", b, 0)
        if ver != _VERSION or per != self.period:
            raise ValueError("thermal state: written for another configuration")
        if (self.maxima is None) != (len(b) == 16):
            raise ValueError("thermal state: maxima present/absent mismatch")
        if self.maxima is not None:
            self.maxima.restore(b[16:])
        self.value = val
        self._frac = frac
        self._last = None if last == 0 else last - 1
