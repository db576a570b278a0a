# Time of use: the tariff registers, a consumer of each metering interval.
"""Tariff registers A+ 1.8.1..1.8.6 and A- 2.8.1..2.8.6, the active tariff (0.0.96.14.0).

A consumer of :meth:`meter.metering.Metering.step` (``interval(ea, er, es, dt)``), placed
after the registers were updated and before the storage consumer (so a power-fail commit
holds the tariff registers of the same interval). What it splits is not the chip counts
but the **increments of the totals' readout**: per interval, A+ and A- of the totals bank
in whole mWh (truncated, as the readout shows them) minus their value after the previous
interval. The tariff banks (lib/energy ``tariff_q8=256000``: whole mWh) receive exactly
these increments, so at every instant, and whatever the rounding,

    1.8.1 + ... + 1.8.6 == 1.8.0   and   2.8.1 + ... + 2.8.6 == 2.8.0   (to the mWh)

(IEC 62053-21 / DLMS register activation: only the active tariff's register accumulates;
the invariant is the one a billing system checks). An interval lies in one tariff
(switching times are whole seconds, intervals are 1 s on whole seconds); one that straddles
a switch (a longer interval after a fault or a clock set) is split by time
(``billing.tariff.TariffClock.split``: exact largest-remainder integers). The split
differs from the exact split of the energy by less than 1 mWh per switch (the sub-mWh part
goes where the readout's next mWh falls).

Time: the RTC (``clock.time()``, UTC s) at the end of the interval; the interval is
``[t - round(dt / 1000 ms), t)``. The calendar is in local time (``billing.localtime.Zone``);
:class:`billing.tariff.TariffClock` caches the window to the next switch or DST change.

**31-bit small ints.** RTC seconds are long ints from 2034-01-10 (2^30 s) on a 32-bit port.
So the time of an interval is kept as ``base`` (RTC s, any int, set at boot, at a clock set
and at most every :data:`_REL_MAX` s) plus ``s``, the small-int seconds since it, read with
the board clock's ``seconds_since(base)`` (allocation-free: boards/board.py; a clock without
it: ``time() - base``). Each interval compares ``s`` with the tariff window and the next DST
transition relative to ``base`` (computed once per window); the absolute time (``now()``)
is formed only at a switch, a DST change, a rebase or a straddling interval. The demand and
billing consumers read ``s`` / ``base`` the same way (meter/demand.py, meter/billing.py).
Checked to 2^32 s (2136) on an emulated 32-bit core (tools/emu/step_probe.py).

**Power-fail warning** (``supply.warning``, meter/supply.py): the intervals metered during
the warning are committed one by one on an allocation-free path, so the clock is not read:
the increments go to the tariff of the last normal interval (a switch inside the at most 10
s of a warning is attributed to the tariff before it), and ``warn`` tells the demand and
billing consumers to skip the interval (its energy is not in any demand value: never an
overestimate).

Allocation: none per interval while the tariff does not change (comparisons, small-int
adds, the mWh fraction by three base-10 long-division steps so that nothing exceeds 2^28);
at a switch or DST transition the window is recomputed (a few small objects, once per
switch), a straddling interval's split allocates about 100 bytes. Checked under
``micropython.heap_lock()`` in host_tests/unit/test_tariffs.py.

Owner: the tariff banks (via Registers.add_tariff, called only here, i.e. from the
metering step); readers: catalogue, display (annunciator), billing snapshots, demand.
"""

from micropython import const

from energy import A_MINUS, A_PLUS
from billing.tariff import TariffClock

TARIFF_Q8 = 256000  # tariff banks count whole mWh (lib/energy tariff_q8)
_JUMP_WH = const(10000)  # more than any interval (31 kW full scale x 79.6 s = 690 Wh)
_REL_MAX = const(0x10000000)  # seconds after ``base`` before a rebase (2^28 s, 8.5 years)
_BIG = const(0x20000000)  # a relative time clamped to +-2^29 stays a small int


def rel(v, base):
    """``v - base`` clamped to +-2^29 (a small int; v, base: RTC s, any ints). Allocates when
    they are long ints: once per boundary, not per interval."""
    d = v - base
    return _BIG if d > _BIG else -_BIG if d < -_BIG else d


def _frac_milli(r, d):
    # floor(r * 1000 / d) for 0 <= r < d < 2^24, every intermediate < 2^28 (no long int)
    r *= 10
    a = r // d
    r -= a * d
    r *= 10
    b = r // d
    r -= b * d
    r *= 10
    return a * 100 + b * 10 + r // d


class Tariffs:
    """``regs``: lib.energy.Registers with tariff banks of whole mWh (``tariff_q8=
    TARIFF_Q8``); ``clock``: ``time()`` RTC seconds; ``cfg``: billing.config.Config;
    ``lpw``: the totals' chip LSB per Wh x 256; ``log``: lib.events.EventLog or None.

    After each interval: ``base`` + ``s`` (RTC s, its end: :meth:`now`; ``s`` a small
    int), ``da`` / ``dm`` (mWh of A+ / A- in it, the totals' readout increments),
    ``active`` (tariff in force at its end), ``prev`` (the tariff of the interval).
    ``dst``: DST in force at its end (the LCD's annunciator). ``dst_changes`` counts DST
    transitions seen (logged by the
    billing task)."""

    def __init__(self, regs, clock, cfg, lpw, log=None, supply=None):
        self.regs = regs
        self.supply = supply
        self.warn = False
        self.clock = clock
        self.zone = cfg.zone
        self.log = log
        self.tc = TariffClock(cfg.calendar, cfg.zone, 1, self._activated)
        self._d = lpw
        self._since = getattr(clock, "seconds_since", None)
        t = clock.time()
        self.base = t  # RTC s; the end of the last interval is base + s
        self.s = 0
        self.active = self.tc.tariff(t)
        self.prev = self.active
        self.da = 0
        self.dm = 0
        self.activations = 0
        self._acc = [0] * 7  # split scratch (mWh per tariff)
        self._accm = [0] * 7
        tr = self.zone.next_transition(t)
        self._next_tr = -1 if tr is None else tr
        self.dst_changes = 0
        self.jumps = 0
        self.fix = False
        self._cache()
        self.resync()

    def now(self):
        """RTC s at the end of the last interval (``base + s``: a long int from 2034 on a
        32-bit port, so not for the per-interval path)."""
        return self.base + self.s

    def _cache(self):
        # the tariff window [lo, hi) and the next DST transition, relative to base
        tc = self.tc
        b = self.base
        self._lo_r = rel(tc._lo, b)
        self._hi_r = rel(tc._hi, b)
        self._tr_r = _BIG if self._next_tr < 0 else rel(self._next_tr, b)
        self._tcn = tc.recomputes  # (the window another caller made is not this one's)
        self.dst = self.zone.is_dst(b + self.s)  # (a transition is a boundary: exact)

    def _activated(self, utc):
        self.activations += 1  # passive plan now active (IDIS 9: logged by the billing task)

    def resync(self):
        """Take the totals as they are now as the reference (boot, after a cold start)."""
        r = self.regs
        self._wa = r.whole[A_PLUS]
        self._qa = _frac_milli(r.res[A_PLUS], self._d)
        self._wm = r.whole[A_MINUS]
        self._qm = _frac_milli(r.res[A_MINUS], self._d)

    def reconcile(self, tariff=1):
        """Whatever the totals hold beyond the tariff registers' sum goes to ``tariff``: at
        boot after the journal restore (a journal from before the tariff banks existed: its
        layout converts with the banks at zero; tariff 1, as a single-rate meter counted
        it), and after a cold start (the billing task, ``fix``: the active tariff). Returns
        the mWh added (A+, A-). Allocates (not for the hot path)."""
        self.fix = False
        r = self.regs
        out = []
        for kind in (A_PLUS, A_MINUS):
            s = 0
            for b in range(1, r.tariffs + 1):
                s += r.milli(b << 4 | kind)
            diff = r.milli(kind) - s
            if diff > 0 and r.tariffs:
                r.add_tariff(tariff, diff if kind == A_PLUS else -diff, 0, 0)
            out.append(diff if diff > 0 else 0)
        self.resync()
        return out[0], out[1]

    def interval(self, ea, er, es, dt):
        """One metering interval (hot path; allocation-free without a switch in it).

        Split in small functions: MicroPython allocates on the heap, at every call, the
        frame of a function whose locals and stack pass 11 machine words (py/objfun.c
        ``VM_MAX_STATE_ON_STACK``; host_tests/unit/test_frames.py)."""
        self._deltas()
        sp = self.supply
        if sp is not None and sp.warning:  # no clock, no time arithmetic (module docstring)
            self.warn = True
            self._put(self.active)
            return
        self.warn = False
        self._timed((dt + 500) // 1000)

    def _deltas(self):
        # da / dm: mWh of A+ / A- since the last interval, from the totals' readout
        r = self.regs
        dw = r.whole[A_PLUS] - self._wa
        dwm = r.whole[A_MINUS] - self._wm
        if dw < 0 or dwm < 0 or dw > _JUMP_WH or dwm > _JUMP_WH:
            # cleared (cold start) or written from outside the metering (a test): taken as
            # the new reference (no long int from the jump); the billing task reconciles
            # the tariff banks with the totals outside the hot path (``fix``)
            self.jumps += 1
            self.fix = True
            self.resync()
            self.da = self.dm = 0
            return
        q = _frac_milli(r.res[A_PLUS], self._d)
        self.da = dw * 1000 + q - self._qa
        self._qa = q
        q = _frac_milli(r.res[A_MINUS], self._d)
        self.dm = dwm * 1000 + q - self._qm
        self._qm = q
        self._wa += dw
        self._wm += dwm

    def _put(self, tar):
        # the interval's da / dm to tariff ``tar``
        if self.da:
            self.regs.add_tariff(tar, self.da, 0, 0)
        if self.dm:
            self.regs.add_tariff(tar, -self.dm, 0, 0)

    def _timed(self, n):
        # the interval of ``n`` s ends at base + s: in the cached window, or a boundary
        f = self._since
        s = f(self.base) if f is not None else self.clock.time() - self.base
        if self._lo_r <= s - n and s < self._hi_r and s < self._tr_r and s < _REL_MAX and \
                self.tc.recomputes == self._tcn:
            f = self.tc._t  # the whole interval in the cached window: small ints only
            if self.da:  # (_put inlined: a call less each second, issue 12)
                self.regs.add_tariff(f, self.da, 0, 0)
            if self.dm:
                self.regs.add_tariff(f, -self.dm, 0, 0)
            self.prev = self.active = f
            self.s = s
            return
        self._boundary(s, s - n, self.da, self.dm)

    def _boundary(self, s, s0, da, dm):
        # a switch, a DST change, a rebase or a clock jump: absolute times (allocates)
        r = self.regs
        t = self.base + s
        t0 = self.base + s0
        tc = self.tc
        tar = tc.tariff(t0 if t0 < t else t)
        if t <= tc._hi or t0 >= t:  # the whole interval in the cached tariff window
            if da:
                r.add_tariff(tar, da, 0, 0)
            if dm:
                r.add_tariff(tar, -dm, 0, 0)
        else:
            self._split(t0, t, da, dm)
        self.prev = tar
        self.active = tc.tariff(t)
        if t >= self._next_tr >= 0:
            self.dst_changes += 1
            tr = self.zone.next_transition(t)
            self._next_tr = -1 if tr is None else tr
        if -_REL_MAX < s < _REL_MAX:
            self.s = s
        else:  # a rebase (every 8.5 years, or the clock far from base)
            self.base = t
            self.s = 0
        self._cache()

    def _split(self, t0, t, da, dm):
        acc = self._acc
        accm = self._accm
        for i in range(7):
            acc[i] = 0
            accm[i] = 0
        self.tc.split(t0, t, da, acc)
        self.tc.split(t0, t, dm, accm)
        r = self.regs
        for i in range(1, 7):
            if acc[i]:
                r.add_tariff(i, acc[i], 0, 0)
            if accm[i]:
                r.add_tariff(i, -accm[i], 0, 0)

    def clock_set(self):
        """The RTC was set: re-evaluate the tariff window and the next DST transition."""
        t = self.clock.time()
        tc = self.tc
        tc.invalidate()
        self.active = tc.tariff(t)
        tr = self.zone.next_transition(t)
        self._next_tr = -1 if tr is None else tr
        self.base = t
        self.s = 0
        self._cache()
