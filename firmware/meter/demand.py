# Demand and maximum demand: a consumer of each metering interval.
"""Import active demand (block or sliding, and thermal) and the maximum demands 1.6.0,
1.6.1..1.6.6 with their time stamps, cumulative maxima 1.2.0..1.2.6.

A consumer of :meth:`meter.metering.Metering.step`, after :class:`meter.tariffs.Tariffs`
(it feeds on that consumer's ``da``: the mWh by which A+ 1.8.0 grew in the interval, so the
energy of every demand period is exactly the readout's increment), and before the billing
consumer (a sub-period that ends with a billing period is captured first). Units: mWh in,
**mW** out (``billing.demand``: demand = energy x 3600 / window).

- Block / sliding (``billing.demand.WindowDemand``, DLMS class 5 1.0.1.4.0 current average,
  1.0.1.5.0 last average with its capture time): sub-periods on the UTC clock grid (DST
  never moves them); the maximum of each tariff is offered the value captured at each
  sub-period end with the tariff of the sub-period's last interval (switching times should
  lie on sub-period boundaries, as meters require).
- Thermal (``billing.demand.ThermalDemand``, 1.0.1.14.0): 90 % of a step in one period;
  read out, not a maximum.
- Power cuts: ``policy`` (billing.config): resume (default), synchronise or restart, from
  the state persisted at each capture (the billing task writes it into the ``billing``
  partition, never on the power-fail path): the energy of the open sub-period before a cut
  is not in the persisted state, so that sub-period can only read low (never high); the
  thermal value decays over the outage. Clock sets: ``clock_set(old, new)`` (the sub-period
  ends at the set, see billing.demand).

Allocation: an interval inside the open sub-period is small-int comparisons and adds: its
time is the tariffs' ``s`` (seconds since their ``base``, meter/tariffs.py) compared with the
sub-period's end relative to that base, and the window and thermal parts get its energy
without a time (``add``); their last feed time (an absolute RTC s, a long int from 2034 on
a 32-bit port) is set when it is next needed (``_sync``: a capture, a power or clock event,
:meth:`state`). The thermal step is small-int arithmetic below about 100 kW (T = 15 min); a
capture (once per sub-period) computes a few small ints. ``dirty`` is set at each capture:
the billing task persists :meth:`state`.
"""

import struct

from billing.demand import Maxima, ThermalDemand, WindowDemand
from meter.tariffs import rel

_HEAD = "<BBH"  # version, 0, length of the window state


class Demand:
    """``cfg``: billing.config.Config; ``tariffs``: meter.tariffs.Tariffs (the feed)."""

    def __init__(self, cfg, tariffs):
        self.tariffs = tariffs
        self.maxima = Maxima(cfg.reset_lockout_s)
        self.window = WindowDemand(cfg.period_s, cfg.number_of_periods, cfg.policy,
                                   self.maxima)
        self.thermal = ThermalDemand(cfg.thermal_period_s)
        self.dirty = False
        self.captures = 0
        self._base = None  # the tariffs' base of _s and _end_r (None: the next feed is timed)
        self._s = 0  # the last interval's end, s after _base
        self._end_r = 0  # the open sub-period's end, s after _base
        self._stale = False  # intervals fed without a time since the last timed feed

    def interval(self, ea, er, es, dt):
        """One metering interval (hot path; allocation-free inside a sub-period; small
        frames: meter/tariffs.py ``interval``)."""
        tf = self.tariffs
        if tf.warn:  # power-fail warning: skipped (meter/tariffs.py)
            return
        dt = (dt + 500) // 1000  # (s)
        if tf.base is self._base and self._s <= tf.s < self._end_r:
            # inside the open sub-period: its energy without its time (a method of its own
            # before issue 12: a call less each second; ``ea`` reused, 11 words at most)
            ea = tf.da
            self.window.add(ea)
            if dt > 0:
                self.thermal.add(ea, dt)
            self._s = tf.s
            self._stale = True
        else:
            self._timed(tf, dt)

    def _timed(self, tf, n):
        # an interval that ends the open sub-period (or the first one, or after an event)
        self._sync()
        t = tf.base + tf.s
        if self.window.feed(t, tf.da, tf.prev):
            self.dirty = True
            self.captures += 1
        if n > 0:
            self.thermal.feed(t, tf.da, tf.prev, n)
        self._base = tf.base
        self._s = tf.s
        self._end_r = rel(self.window.end(), tf.base)

    def _sync(self):
        # give the window and the thermal part the time of the last interval fed untimed
        if self._stale:
            self._stale = False
            t = self._base + self._s
            self.window.touch(t)
            self.thermal.touch(t)
        self._base = None

    def power_up(self, t):
        """Power back at ``t`` (RTC s) after a restore (or the first start)."""
        self._sync()
        self.window.power_up(t, self.tariffs.active)
        self.thermal.power_up(t)

    def clock_set(self, old, new):
        """The RTC was set from ``old`` to ``new`` (RTC s)."""
        self._sync()
        if self.window.clock_set(old, new, self.tariffs.active):
            self.dirty = True
        self.thermal.clock_set(old, new)

    def state(self):
        """The persisted state: header, the window (with the maxima), the thermal part."""
        if self._stale:
            b = self._base
            self._sync()
            self._base = b  # (the untimed feeds may go on: the window's time is current)
        w = self.window.state()
        return struct.pack(_HEAD, 1, 0, len(w)) + w + self.thermal.state()

    def restore(self, b):
        """Load :meth:`state` bytes (ValueError if written for another configuration: the
        caller then starts the demand afresh and logs it; the maxima 1.6.x, 1.2.x and the
        last reset are kept whenever they are readable, and the reset lockout is always the
        configured one)."""
        v, _z, n = struct.unpack_from(_HEAD, b, 0)
        if v != 1 or 4 + n + 16 > len(b):
            raise ValueError("demand state: version %d / length %d" % (v, n))
        self._base = None
        self._stale = False
        self.window.restore(b[4:4 + n])
        self.thermal.restore(b[4 + n:4 + n + 16])
