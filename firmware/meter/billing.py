# Billing periods: end of billing, demand reset, snapshots, historical values, persistence.
"""Billing periods (DLMS end-of-billing script 0.0.10.0.1, schedule 0.0.15.0.0, billing
period counter VZ 1.0.0.1.0, billing profile 0.0.98.1.0; billing reference B3).

A consumer of :meth:`meter.metering.Metering.step`, after the tariff and demand consumers:
when the RTC reaches the scheduled end (``billing.period.Schedule``: default the 1st of
the month, 00:00 local, converted to UTC with the zone, so the DST rule is applied), the
period is closed right after the interval that reaches it, i.e. the snapshot holds the
registers *at* the period end: VZ incremented, then ``billing.period.Snapshot`` (energies
and tariff registers in Wh, maxima in W with their time stamps, cumulative maxima), then
the maxima reset. A **demand reset** (E2 ``C.91.5`` over IEC 62056-21, seal open; or
:meth:`demand_reset`) closes a period the same way (reason manual), refused (returns False)
within the reset lockout (``demand.reset_lockout_s``, 1.0.0.9.12) after the previous
reset. A period end missed while the power was off is closed at power-up with the registers
as they were (they did not change), stamped with the scheduled end (one close for several
missed ends). No scheduled end at or before the last close is ever closed: a clock behind it
(an RTC restarted at 2000-01-01 by a flat battery, a set back) waits for the first end after
it, so the billing profile never goes back in time.

Persistence (the board's ``billing`` partition, two ``flashstore.ringlog.RingLog`` s): the
first half holds the snapshots (172-byte records; with 4 sectors of 4 KiB at least 31 and
at most 45 periods are kept, oldest overwritten), the second half the state (240-byte
records, tag 1: VZ, the time of the last close, the demand state incl. the maxima),
written at every demand capture, every close and at shutdown by :meth:`service` (the
billing task, never on the power-fail path). Without the partition everything lives in
RAM (24 snapshots).

Events (lib/events): BILLING_END (value: the new VZ; subject ``0.1.0``), DEMAND_RESET
(value: VZ, the port as source), DEMAND_RESET_REFUSED (value: seconds of lockout left),
DST_CHANGED (value: 1 DST on, 0 off), TOU_ACTIVATED (passive plan now active).

Historical values (readout, R1): ``1.8.0*VZ`` for the energies and tariff registers,
``1.6.E*VZ`` the maxima (with the time stamp), ``1.2.E*VZ`` cumulative maxima, ``0.1.2*VZ``
the time of the end; VZ as 1 or 2 digits (:meth:`historical`).
"""

import struct

from micropython import const

import events
from billing import period
from energy import A_MINUS, A_PLUS
from flashstore.flash import Partition
from flashstore.ringlog import RingLog
from meter.tariffs import rel

_STATE_TAG = const(1)
STATE_SIZE = const(240)
_SHEAD = "<BBBBI"  # version 1, vz, 0, 0, time of the last close + 1 (0 = none)
RAM_SNAPSHOTS = const(24)


def _spans(part):
    # (offset, length) of the snapshot ring and the state ring in the billing partition
    n = part.size // part.sector_size
    k = n // 2
    return (0, k * part.sector_size), (k * part.sector_size, (n - k) * part.sector_size)


class Billing:
    """``regs`` (lib.energy.Registers with the tariff banks), ``tariffs``
    (meter.tariffs.Tariffs), ``demand`` (meter.demand.Demand), ``cfg`` (billing.config
    .Config), ``clock``, ``log`` (lib.events.EventLog), ``part``: the ``billing`` partition
    or None."""

    def __init__(self, regs, tariffs, demand, cfg, clock, log, part=None):
        self.regs = regs
        self.tariffs = tariffs
        self.demand = demand
        self.schedule = cfg.schedule
        self.tariffs_used = cfg.tariffs  # the highest tariff of the plan (catalogue entries)
        self.on_tou_activated = None  # callable(): the passive plan became active
        self.zone = cfg.zone
        self.clock = clock
        self.log = log
        self.vz = 0
        self.last_end = None  # RTC s of the last close
        self.closes = 0
        self._pending = []  # snapshots not yet written
        self._ram = []  # snapshots kept in RAM (no partition)
        self._state_due = False
        self._events = []  # (code, value, src) to log from the task
        self.on_due = None  # callable(): something for service() (wakes the billing task)
        self._owed = False  # an urgent append (power-fail warning): maintain() after it
        self.snaps = None
        self.states = None
        self.status = None
        if part is not None:
            (o1, l1), (o2, l2) = _spans(part)
            self.snaps = RingLog(Partition(part, o1, l1), period.SIZE)
            self.states = RingLog(Partition(part, o2, l2), STATE_SIZE)
            st1 = self.snaps.mount()
            st2 = self.states.mount()
            self.status = st2 if st1 in ("ok", "blank") else st1
        self.next_end = 0
        self._nb = self._ne = None  # tariffs' base and next_end of _ne_r (interval)
        self._ne_r = 0

    # -- boot ------------------------------------------------------------------------------

    def boot(self):
        """Restore VZ, the last close and the demand state; close a period whose end passed
        while the power was off; demand power-up. Returns the state's source ("flash",
        "new", or the error)."""
        src = "new"
        rec = None
        if self.states is not None and not self.states.blocked:
            for _seq, tag, r in self.states.entries():
                if tag == _STATE_TAG:
                    rec = r
        if rec is not None:
            ver, vz, _a, _b, le = struct.unpack_from(_SHEAD, rec, 0)
            if ver == 1:
                self.vz = vz
                self.last_end = le - 1 if le else None
                try:
                    self.demand.restore(rec[8:])
                    src = "flash"
                except ValueError as e:  # another demand configuration: start afresh
                    src = str(e)
        self._adopt_newest(rec is not None)
        t = self.clock.time()
        prev = self._prev_end(t)
        # first the demand: the sub-period the cut interrupted closes at its own end (it
        # belongs to the period it lay in), then a period end passed while off is closed
        self.demand.power_up(t)
        if self.last_end is None:
            self.last_end = prev  # a new meter: the period runs from the last end
            self._state_due = True
        elif prev is not None and self.last_end < prev:  # ended while the power was off
            self.close(prev, period.REASON_SCHEDULE, events.SRC_METER)
        self._next(t)
        return src

    def _adopt_newest(self, restored):
        # A cut between a close's snapshot and its state record (service() writes them in
        # that order) leaves a snapshot one VZ ahead of the state: that close happened, so
        # take its VZ and end and apply its maxima reset (closing it again would store the
        # period twice). test_billing_cuts. Without a state record (its half of the
        # partition lost) the newest snapshot gives VZ and the last close: VZ never restarts
        # at 0 beside the periods it counted.
        if self.snaps is None or self.snaps.blocked:
            return
        newest = None
        for _seq, _tag, r in self.snaps.entries():
            newest = r
        if newest is None:
            return
        try:
            s = period.Snapshot.unpack(newest)
        except ValueError:
            return
        if not restored:
            self.vz = s.vz
            self.last_end = s.time
            self._state_due = True
        elif s.vz == period.next_vz(self.vz) and (self.last_end is None
                                                  or s.time > self.last_end):
            self.vz = s.vz
            self.last_end = s.time
            self.demand.maxima.reset(s.time)
            self._state_due = True

    def _prev_end(self, t):
        # the last scheduled end <= t, or None before the first one since 2000-01-01 (an
        # RTC restarted at 2000-01-01 by a flat battery)
        z = self.zone
        try:
            loc = self.schedule.previous_end(z.local(t))
            u = z.to_utc(loc)
            if u > t:  # an end in the skipped spring hour, run at to_utc (fold 0): not due
                u = z.to_utc(self.schedule.previous_end(loc - 1))
        except ValueError:  # it would lie before 2000
            return None
        return u if u >= 0 else None

    def _next(self, t):
        lt = self.last_end
        if lt is not None and t < lt:  # the clock is behind the last close (flat battery):
            t = lt  # no period ends before it, the billing profile never goes back in time
        z = self.zone
        loc = z.local(t)
        if loc < 0:  # before 2000-01-01 local
            loc = 0
        try:
            u = z.to_utc(self.schedule.previous_end(loc))
        except ValueError:
            u = -1
        # an end in the skipped spring hour is due at to_utc (fold 0), after the jump
        self.next_end = u if u > t else z.to_utc(self.schedule.next_end(loc))

    def clock_set(self, t):
        """The RTC was set to ``t``: the next scheduled end is the first after the last
        close (a set forward past it closes that period at the next interval; a set back
        never closes a period twice)."""
        if self.last_end is None:
            self._next(t)
            return
        z = self.zone
        self.next_end = z.to_utc(self.schedule.next_end(z.local(self.last_end)))

    # -- the consumer ----------------------------------------------------------------------

    def interval(self, ea, er, es, dt):
        """One metering interval (hot path: a comparison unless a period ends; small
        frames: meter/tariffs.py ``interval``)."""
        tf = self.tariffs
        if not tf.warn:  # power-fail warning: nothing but the commit (meter/tariffs.py)
            if tf.base is not self._nb or self.next_end is not self._ne:
                self._relative()
            if tf.s >= self._ne_r:
                self._scheduled()
            if self.demand.dirty:
                self.demand.dirty = False
                self._state_due = True
        # (pending() inlined: a call less each second, issue 12)
        if self.on_due is not None and (
                self._events or self._pending or self._state_due or tf.dst_changes
                or tf.activations or ((tf.fix or self._owed) and not tf.warn)):
            self.on_due()

    def _relative(self):
        # the next end relative to the tariffs' base: small ints every interval (RTC s are
        # long ints from 2034 on a 32-bit port); once per period or rebase
        tf = self.tariffs
        self._nb = tf.base
        self._ne = self.next_end
        self._ne_r = rel(self.next_end, tf.base)

    def _scheduled(self):
        # the billing period ends (its scheduled end passed in this interval)
        t = self.tariffs.now()
        self.close(self.next_end, period.REASON_SCHEDULE, events.SRC_METER)
        self._next(t)

    def pending(self):
        """True if :meth:`service` has something to log or write (allocation-free: the step
        asks it, and wakes the billing task only then: issue 12). Also True after a
        warning's urgent append until :meth:`maintain` (the erase-ahead it held back).
        :meth:`interval` tests the same inline (a call less each second): keep them alike."""
        tf = self.tariffs
        return bool(self._events or self._pending or self._state_due or tf.dst_changes
                    or tf.activations or ((tf.fix or self._owed) and not tf.warn))

    # -- closing a period ------------------------------------------------------------------

    def snapshot_values(self):
        """(energies 8 Wh, tariff registers 12 Wh) as the snapshot stores them."""
        r = self.regs
        energy = [r.milli(k) // 1000 for k in range(8)]
        tar = [0] * 12
        for b in range(1, min(r.tariffs, 6) + 1):
            tar[b - 1] = r.milli(b << 4 | A_PLUS) // 1000
            tar[5 + b] = r.milli(b << 4 | A_MINUS) // 1000
        return energy, tar

    def close(self, t, reason, src):
        """Close the billing period at ``t`` (RTC s): snapshot, then maxima reset. Returns
        the Snapshot, or None when a manual reset is refused by the lockout."""
        energy, tar = self.snapshot_values()
        res = period.end_of_billing(self.vz, t, energy, tar, self.demand.maxima, reason,
                                    self.zone.status(t))
        if res is None:
            return None
        self.vz, snap = res
        self.last_end = t
        self.closes += 1
        self._pending.append(snap)
        self._state_due = True
        if reason == period.REASON_SCHEDULE:
            self._events.append((events.BILLING_END, self.vz, src))
        else:
            self._events.append((events.DEMAND_RESET, self.vz, src))
        return snap

    def demand_reset(self, src=events.SRC_METER):
        """A manual demand reset now (button, E2 C.91.5). Returns the Snapshot, or None
        (logged DEMAND_RESET_REFUSED) within the lockout."""
        t = self.clock.time()
        snap = self.close(t, period.REASON_MANUAL, src)
        if snap is None:
            mx = self.demand.maxima
            left = mx.last_reset + mx.lockout_s - t
            self.log.log(events.DEMAND_RESET_REFUSED, left, "demand reset locked out", src,
                         "C.91.5")
        else:  # (urgent during a power-fail warning: nothing erases while the supply goes)
            self.service(urgent=self.tariffs.warn)
        return snap

    def lockout_left(self):
        """Seconds until a manual demand reset is allowed again (0: now)."""
        mx = self.demand.maxima
        t = self.clock.time()
        lr = mx.last_reset
        if lr is None or not lr <= t < lr + mx.lockout_s:
            return 0
        return lr + mx.lockout_s - t

    # -- the task's side -------------------------------------------------------------------

    def service(self, urgent=False):
        """Log what the consumers noted, write pending snapshots and the state (the billing
        task, when the step finds something :meth:`pending`; at shutdown). Never raises: a
        flash error is logged."""
        tf = self.tariffs
        if tf.fix and not tf.warn:  # the totals were cleared (cold start) or written
            tf.reconcile(tf.active)
        ev = self._events
        while ev:
            code, value, src = ev.pop(0)
            self.log.log(code, value, None, src, "0.1.0")
        if tf.dst_changes:
            tf.dst_changes = 0
            self.log.log(events.DST_CHANGED, 1 if self.zone.is_dst(tf.now()) else 0)
        if tf.activations:
            tf.activations = 0
            self.log.log(events.TOU_ACTIVATED, 0)
            if self.on_tou_activated is not None:  # meter/touprog.py remembers it
                self.on_tou_activated()
        while self._pending:
            snap = self._pending.pop(0)
            if self.snaps is None or self.snaps.blocked:
                self._ram.append(snap)
                if len(self._ram) > RAM_SNAPSHOTS:
                    self._ram.pop(0)
            else:
                self._ram.append(snap)  # the newest ones also in RAM (readout speed)
                if len(self._ram) > 2:
                    self._ram.pop(0)
                self._write(self.snaps, snap.pack(), 0, urgent)
        if self._state_due:
            self._state_due = False
            if self.states is not None and not self.states.blocked:
                self._write(self.states, self.state_record(), _STATE_TAG, urgent)

    def _write(self, ring, rec, tag, urgent):
        if urgent:  # no erase now: the erase-ahead is owed once the warning ends (pending)
            self._owed = True
        try:
            ring.append(rec, tag, urgent)
        except Exception as e:  # noqa: BLE001  (a flash failure must not stop metering)
            self.log.log(events.STORAGE_WRITE_FAILED, -3, "billing: %s" % e)

    def state_record(self):
        """The 240-byte state record (VZ, last close, demand state)."""
        b = bytearray(STATE_SIZE)
        le = 0 if self.last_end is None else self.last_end + 1
        struct.pack_into(_SHEAD, b, 0, 1, self.vz, 0, 0, le)
        d = self.demand.state()
        if 8 + len(d) > STATE_SIZE:
            raise ValueError("demand state of %d bytes does not fit" % len(d))
        b[8:8 + len(d)] = d
        return bytes(b)

    def maintain(self):
        """Erase ahead in both rings (not during a power-fail warning: the caller checks).
        Allocation-free when nothing is to erase (the task's every second)."""
        self._owed = False
        ring = self.snaps  # (no tuple of the two rings: a heap object every second)
        if ring is not None and not ring.blocked and ring.needs_maintenance():
            ring.maintain(1)
        ring = self.states
        if ring is not None and not ring.blocked and ring.needs_maintenance():
            ring.maintain(1)

    # -- reading ---------------------------------------------------------------------------

    def snapshots(self):
        """Every kept snapshot, oldest first (flash, else RAM; then those not yet written)."""
        if self.snaps is not None and not self.snaps.blocked:
            out = []
            for _seq, _tag, r in self.snaps.entries():
                try:
                    out.append(period.Snapshot.unpack(r))
                except ValueError:
                    pass
            return out + self._pending
        return self._ram + self._pending

    def snapshot(self, vz):
        """The newest snapshot with counter ``vz``, or None."""
        if self._pending and self._pending[-1].vz == vz:
            return self._pending[-1]
        if self._ram and self._ram[-1].vz == vz:
            return self._ram[-1]
        found = None
        for s in self.snapshots():
            if s.vz == vz:
                found = s
        return found

    def historical(self, obis):
        """Value of a historical code ``X.Y.Z*VZ`` (e.g. ``1.8.0*3``): energies and tariff
        registers in mWh (Wh x 1000: a snapshot holds whole Wh), maxima and cumulative
        maxima in mW (W x 1000), ``1.6.E.T*VZ`` and ``0.1.2*VZ`` as ``Zyymmddhhmmss``
        text. ``X*VZ`` is the last closed period, ``X*VZ-n`` (n 1..9) the n-th before it
        (:func:`relative`). KeyError if the code or the period is unknown."""
        base, _s, vz = obis.partition("*")
        back = relative(vz)
        if back is not None:  # X*VZ, X*VZ-n: the last closed period, n before it
            vz = "%d" % ((self.vz - back) % 100)
        if not vz.isdigit() or len(vz) > 2:
            raise KeyError(obis)
        s = self.snapshot(int(vz))
        if s is None:
            raise KeyError(obis)
        if base == "0.1.2":
            return self.stamp(s.time)
        parts = base.split(".")
        if len(parts) == 4 and parts[3] == "T" and parts[:2] == ["1", "6"]:
            k = _digit(parts[2])
            return self.stamp(s.max_time[k])
        if len(parts) != 3:
            raise KeyError(obis)
        c, d, e = parts
        if d == "8":
            if e == "0" and base in period.ENERGY_OBIS:
                return s.energy[period.ENERGY_OBIS.index(base)] * 1000
            if c in ("1", "2") and e != "0":
                k = _digit(e)
                if 1 <= k <= 6:
                    return s.tariffs[(int(c) - 1) * 6 + k - 1] * 1000
        if c == "1" and d == "6":
            return s.max_value[_digit(e)] * 1000
        if c == "1" and d == "2":
            return s.cum[_digit(e)] * 1000
        raise KeyError(obis)

    def stamp(self, t):
        """``Zyymmddhhmmss`` (local, Z = 1 in DST) of RTC seconds ``t``; zeros for 0."""
        return self.zone.vdew_stamp(t) if t else "0000000000000"

    def getter(self, key):
        """A callable returning :meth:`read` ``(key)``, the key parsed once (the LCD re-reads
        its item every 250 ms: :meth:`read` slices the key, ~256 B per call for 1.6.x). An
        unknown key raises KeyError when read, as :meth:`read` does."""
        k = key[2:]
        if k[:3] == "max" and k[:4] != "maxt" and len(k) == 4 and k[3] in "0123456":
            i = int(k[3])
            return lambda: self.demand.maxima.value[i]
        if k[:3] == "cum" and len(k) == 4 and k[3] in "0123456":
            i = int(k[3])
            return lambda: self.demand.maxima.cum[i]
        if k == "cur":
            return lambda: self.demand.window.current_average()
        if k == "last":
            return lambda: self.demand.window.last_average
        if k == "thermal":
            return lambda: self.demand.thermal.value
        return lambda: self.read(key)

    def read(self, key):
        """The catalogue's billing values (meter/catalogue.py ``b:`` sources): ``b:tariff``,
        ``b:vz``, ``b:end`` (text), ``b:cur`` / ``b:last`` / ``b:thermal`` (mW),
        ``b:maxE`` (mW), ``b:maxtE`` (text), ``b:cumE`` (mW)."""
        k = key[2:]
        d = self.demand
        if k == "tariff":
            return self.tariffs.active
        if k == "vz":
            return self.vz
        if k == "end":
            return self.stamp(self.last_end or 0)
        if k == "cur":
            return d.window.current_average()
        if k == "last":
            return d.window.last_average
        if k == "thermal":
            return d.thermal.value
        mx = d.maxima
        if k[:4] == "maxt":
            return self.stamp(mx.time[_digit(k[4:])])
        if k[:3] == "max":
            return mx.value[_digit(k[3:])]
        if k[:3] == "cum":
            return mx.cum[_digit(k[3:])]
        raise KeyError(key)


def relative(f):
    """Periods back of a relative billing period group ``VZ`` (0: the last closed period)
    or ``VZ-n`` (n 1..9), else None."""
    if f == "VZ":
        return 0
    if len(f) == 4 and f[:3] == "VZ-" and "1" <= f[3] <= "9":
        return int(f[3])
    return None


def show_code(code):
    """True for a historical value the LCD lists may hold: ``X*VZ`` / ``X*VZ-n`` (``&`` for
    ``*`` too: a mode C value cannot hold ``*``) of 1.8.0, 2.8.0, 5.8.0..10.8.0, the tariff
    registers 1.8.1..1.8.6 / 2.8.1..2.8.6, the maxima 1.6.0..1.6.6 and the cumulative
    maxima 1.2.0..1.2.6."""
    i = code.find("*")
    if i < 0:
        i = code.find("&")
    if i < 0 or relative(code[i + 1:]) is None:
        return False
    base = code[:i]
    p = base.split(".")
    if len(p) != 3 or len(p[2]) != 1 or p[2] not in "0123456":
        return False
    c, d, e = p
    if d == "8":
        return (e == "0" and base in period.ENERGY_OBIS) or (e != "0" and c in ("1", "2"))
    return c == "1" and d in ("6", "2")


def _digit(e):
    if len(e) != 1 or e not in "0123456":
        raise KeyError(e)
    return int(e)
