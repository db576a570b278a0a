# Billing period: end-of-billing schedule, snapshot record, historical value names.
"""End of billing period (DLMS single action schedule 0.0.15.0.0.255 running the MDI reset /
end of billing script 0.0.10.0.1.255; billing reference B3).

- :class:`Schedule`: the billing period ends every month on ``day`` (1..28, so every month
  has it) at ``time`` local (default: the 1st, 00:00). Times are local seconds; a billing
  end inside the skipped spring hour is converted by the caller with ``Zone.to_utc``
  (fold 0: it happens when the clock jumps past it).
- :class:`Snapshot`: what is frozen at the end of a billing period (the row of the billing
  data profile 0.0.98.1.0.255): billing period counter VZ (1.0.0.1.0.255, 0..99, wraps),
  time stamp (1.0.0.1.2.VZ), reason, clock status, the eight energy registers, the tariff
  registers 1.8.1..1.8.6 and 2.8.1..2.8.6, the maximum demands 1.6.0..1.6.6 with their time
  stamps and the cumulative maxima 1.2.0..1.2.6. Fixed-size record (:data:`SIZE` bytes,
  little-endian)::

      off size field
       0   1   format (1)
       1   1   VZ (0..99)
       2   1   reason (REASON_SCHEDULE 1, REASON_MANUAL 2, REASON_REMOTE 3)
       3   1   clock status (DLMS class 8 bits)
       4   4   time stamp (u32 RTC seconds UTC)
       8  32   energy, 8 x u32 Wh/varh/VAh: 1.8.0 2.8.0 5.8.0 6.8.0 7.8.0 8.8.0 9.8.0 10.8.0
      40  48   tariff registers, 12 x u32 Wh: 1.8.1..1.8.6, 2.8.1..2.8.6
      88  28   maximum demand, 7 x u32 W: 1.6.0, 1.6.1..1.6.6
     116  28   their time stamps, 7 x u32 RTC seconds UTC (0 = none)
     144  28   cumulative maximum demand, 7 x u32 W: 1.2.0, 1.2.1..1.2.6
     172       (end)

- Historical values are named with the VZ of the period that *ended* (the counter is
  incremented first): ``1.8.0*26`` in EMH 62056-21 readouts (:func:`historical`), with
  ``0.1.0(26)`` the counter and ``0.1.2*26(Zyymmddhhmmss)`` the time stamp.
  (In DLMS, F = VZ 0..99 addresses a period absolutely, 101..125 relatively, 255 = current.)
"""

import struct

from micropython import const

from civil import civil, seconds

REASON_SCHEDULE = const(1)
REASON_MANUAL = const(2)
REASON_REMOTE = const(3)

ENERGY_OBIS = ("1.8.0", "2.8.0", "5.8.0", "6.8.0", "7.8.0", "8.8.0", "9.8.0", "10.8.0")
ENERGY_UNITS = ("kWh", "kWh", "kvarh", "kvarh", "kvarh", "kvarh", "kVAh", "kVAh")
_FMT = "<BBBBI8I12I7I7I7I"
SIZE = const(172)
_FORMAT = const(1)


def next_vz(vz):
    """The billing period counter after ``vz`` (0..99, wraps to 0)."""
    return (vz + 1) % 100


def historical(obis, vz, digits=2):
    """Readout name of a historical value: ``historical("1.8.0", 26) == "1.8.0*26"``;
    ``digits`` zero-pads the VZ (two digits as in EMH readouts)."""
    if not 0 <= vz <= 99:
        raise ValueError("vz: %r not in 0..99" % (vz,))
    return "%s*%0*d" % (obis, digits, vz)


class Schedule:
    """Monthly end of billing: ``day`` 1..28, ``time_s`` seconds of the day (0..86399)."""

    def __init__(self, day=1, time_s=0):
        if not isinstance(day, int) or not 1 <= day <= 28:
            raise ValueError("day: %r not in 1..28" % (day,))
        if not isinstance(time_s, int) or not 0 <= time_s < 86400:
            raise ValueError("time: %r not a time of day" % (time_s,))
        self.day = day
        self.time_s = time_s

    @classmethod
    def from_config(cls, cfg):
        """From ``{"day": 1, "time": "00:00"}`` (both optional); ValueError names the
        field (``billing_period.day``, ``billing_period.time``)."""
        from .tou import parse_time

        if not isinstance(cfg, dict):
            raise ValueError("billing_period: must be an object")
        for k in cfg:
            if k not in ("day", "time"):
                raise ValueError("billing_period.%s: unknown field" % k)
        day = cfg.get("day", 1)
        if not isinstance(day, int) or isinstance(day, bool) or not 1 <= day <= 28:
            raise ValueError("billing_period.day: %r not in 1..28" % (day,))
        return cls(day, parse_time(cfg.get("time", "00:00"), "billing_period.time"))

    def _at(self, y, m):
        return seconds(y, m, self.day) + self.time_s

    def next_end(self, local):
        """First billing end > ``local`` (local seconds)."""
        y, m = civil(local)[:2]
        t = self._at(y, m)
        if t > local:
            return t
        return self._at(y + (m == 12), m % 12 + 1)

    def previous_end(self, local):
        """Last billing end <= ``local``."""
        y, m = civil(local)[:2]
        t = self._at(y, m)
        if t <= local:
            return t
        return self._at(y - (m == 1), (m - 2) % 12 + 1)


class Snapshot:
    """Billing snapshot (see the module docstring for the record). Attributes: ``vz``,
    ``reason``, ``clock_status``, ``time``, ``energy`` (8), ``tariffs`` (12: 1.8.1..6 then
    2.8.1..6), ``max_value`` (7, W), ``max_time`` (7), ``cum`` (7, W)."""

    def __init__(self, vz, time, energy, tariffs, max_value, max_time, cum,
                 reason=REASON_SCHEDULE, clock_status=0):
        if len(energy) != 8 or len(tariffs) != 12 or len(max_value) != 7 or \
                len(max_time) != 7 or len(cum) != 7:
            raise ValueError("snapshot: 8 energies, 12 tariff registers, 7 maxima, 7 times, "
                             "7 cumulative maxima")
        self.vz = vz
        self.time = time
        self.energy = tuple(energy)
        self.tariffs = tuple(tariffs)
        self.max_value = tuple(max_value)
        self.max_time = tuple(max_time)
        self.cum = tuple(cum)
        self.reason = reason
        self.clock_status = clock_status

    def pack(self):
        """The :data:`SIZE`-byte record."""
        return struct.pack(_FMT, _FORMAT, self.vz, self.reason, self.clock_status, self.time,
                           *(self.energy + self.tariffs + self.max_value + self.max_time +
                             self.cum))

    @classmethod
    def unpack(cls, b):
        """Snapshot from a record (ValueError if the size or format is wrong)."""
        if len(b) != SIZE or b[0] != _FORMAT:
            raise ValueError("billing snapshot: %d bytes / format %d not supported"
                             % (len(b), b[0] if len(b) else -1))
        v = struct.unpack(_FMT, b)
        return cls(v[1], v[4], v[5:13], v[13:25], v[25:32], v[32:39], v[39:46], v[2], v[3])

    def readout(self, zone):
        """62056-21 data lines of the snapshot with historical names (EMH style)."""
        vz = self.vz
        out = [historical("0.1.2", vz) + "(" + zone.vdew_stamp(self.time) + ")"]
        for k in range(8):
            e = self.energy[k]
            out.append("%s(%07d.%03d*%s)" % (historical(ENERGY_OBIS[k], vz), e // 1000,
                                             e % 1000, ENERGY_UNITS[k]))
        for k in range(12):
            e = self.tariffs[k]
            obis = "%d.8.%d" % (1 + k // 6, 1 + k % 6)
            out.append("%s(%07d.%03d*kWh)" % (historical(obis, vz), e // 1000, e % 1000))
        for k in range(7):
            w = self.max_value[k]
            ts = self.max_time[k]
            stamp = zone.vdew_stamp(ts) if ts else "0000000000000"
            out.append("%s(%d.%03d*kW)(%s)" % (historical("1.6.%d" % k, vz), w // 1000,
                                               w % 1000, stamp))
        for k in range(7):
            w = self.cum[k]
            out.append("%s(%d.%03d*kW)" % (historical("1.2.%d" % k, vz), w // 1000, w % 1000))
        return out


def end_of_billing(vz, t, energy, tariffs, maxima, reason=REASON_SCHEDULE, clock_status=0,
                   demand_div=1000):
    """Close a billing period at ``t`` (RTC s, UTC): increment the counter, take the
    snapshot (maxima from ``maxima``, a demand.Maxima, divided by ``demand_div`` to W, e.g.
    1000 for mW), then reset the maxima (scheduled: no lockout; manual: the lockout applies
    and a refused reset returns None). Returns (new vz, Snapshot) or None."""
    if reason == REASON_MANUAL:
        lr = maxima.last_reset
        if lr is not None and lr <= t < lr + maxima.lockout_s:
            return None
    nv = next_vz(vz)
    n = len(maxima.value)
    mv = [0] * 7
    mt = [0] * 7
    cum = [0] * 7
    for i in range(min(n, 7)):
        mv[i] = maxima.value[i] // demand_div
        mt[i] = maxima.time[i]
        cum[i] = (maxima.cum[i] + maxima.value[i]) // demand_div
    snap = Snapshot(nv, t, energy, tariffs, mv, mt, cum, reason, clock_status)
    maxima.reset(t, manual=reason == REASON_MANUAL)
    return nv, snap
