# Load profiles: interval rows captured from the registers at clock-aligned boundaries.
"""Interval load profiles (DLMS class 7 profile generic 1.0.99.1.0.255 / 1.0.99.2.0.255,
read over IEC 62056-21 as ``P.01`` / ``P.02`` / ``P.03``): a consumer of the metering step,
one row per capture period, stored in the board's ``profile`` partition.

Configuration (setting ``load_profiles``, absent = :data:`DEFAULT`): a list of 1..3
profiles, each ``{"period_s": P, "channels": [ident, ...]}`` with P one of 60, 300, 600,
900, 1800, 3600 s (clock-aligned: a row ends at a whole multiple of P in UTC seconds) and
1..6 channels of :data:`CHANNELS`:

==========  ======  =========================================================================
ident       unit    value (integer, stored; shown / 10**decimals)
==========  ======  =========================================================================
1.29 2.29   kWh     A+ / A- energy of the interval, Wh (difference of the 1.8.0 / 2.8.0
                    registers' whole Wh at the two ends: the rows sum exactly to the register
                    difference, to the Wh)
3.29 4.29   kvarh   R+ (Q1 + Q2) / R- (Q3 + Q4) of the interval, varh
5.29..8.29  kvarh   Q1..Q4 of the interval, varh
9.29 10.29  kVAh    apparent energy, import / export, VAh
1.5 2.5     kW      last average demand A+ / A-: the interval's Wh x 3600 / P, W
32.7        V       voltage at the end of the interval (the last 1-s instantaneous value), 0.1 V
14.7        Hz      frequency at the end of the interval, 0.01 Hz
==========  ======  =========================================================================

Default: one profile, 15 min, ``1.29 2.29 3.29 4.29 1.5 32.7``. Changing the channels or the
period of a profile starts it empty (the records carry a layout id; rows of another layout
are not read), as writing capture_objects does in DLMS (billing reference C1).

Status byte per row (lib/billing/profile: the DSMR/IDIS bits): 0x80 ST_POWER_DOWN (the
supply failed during the interval: the power-fail warning or an orderly stop wrote the
partial row), 0x40 ST_POWER_UP (the meter started during the interval), 0x20
ST_CLOCK_ADJUSTED (the RTC was set or jumped by more than 2 s during the interval; the
interval then ends at the next boundary of the new time, so it is shorter or longer than P),
0x08 ST_DST (daylight saving time in force at the end of the interval, ``zone``), 0x04
ST_DATA_INVALID (the metrology was faulty during the interval, or a cold start cleared the
registers: the energy was not measured), 0x02 ST_CLOCK_INVALID (the RTC was not trusted).

Capture. :meth:`LoadProfile.interval` (the step consumer, heap-locked, allocation-free, small
ints only) compares the metering clock's ticks with the deadline of the next boundary and,
at the first step that reaches it, copies the totals bank's whole units (8 small ints) into a
preallocated snapshot. :meth:`LoadProfile.service` (the profile task, once a second of
metering time, outside the heap-locked step: it allocates) turns a snapshot into a row,
writes it, and sets the next deadline from the RTC. A boundary that no step reached (chip
down, task starved) is captured from the registers as they are (they do not move while the
chip is down) with ST_DATA_INVALID when the metrology was faulty.

Flash. The partition is split between the profiles (equal shares of sectors); each share
holds two ``flashstore.ringlog.RingLog`` rings of 240-byte records (one 256-byte slot, one
page program each): the *main* ring of closed records (lib/billing/profile: up to 48 rows
packed with per-record bit widths; oldest overwritten, FIFO) and a small *tail* ring (1/16
of the share, at least 2 sectors) that gets the open record again after every row. So a
row is in flash one page program after its capture; a cut during that program leaves the
previous tail record (every earlier row) valid, and a cut while a closed record goes to the
main ring leaves it in the tail. At boot the newest tail record is read back into the open
record unless it equals the newest main record.

Power. At the power-fail warning (after the register commit) and at an orderly stop, the
interval in progress is closed with ST_POWER_DOWN: a provisional row stamped with the end of
the interval, holding the energy so far, written urgently (one page program, no erase; a
record that finds no prepared slot is counted in ``lost``). If the meter starts again
within that interval (or the warning ends without a power loss), the provisional row is
replaced at the boundary by the whole interval (the energy before the cut plus the energy
after the restart; the demand channels as the sum of both parts' demand, +-1 W), status
ST_POWER_DOWN | ST_POWER_UP. If it starts later, the provisional row stays, the rows of the
outage are missing (a new header in the P.01 readout), and the first interval after the
restart carries ST_POWER_UP with the energy since the restart. A loss of supply without the
warning loses the row in progress (and the journal loses what it had not committed: the
rows then hold energy the registers lost; docs/PERSISTENCE.md).
"""

from micropython import const

import events
from billing import profile as bp
from billing.localtime import Zone
from energy import COUNT
from flashstore import ringlog
from flashstore.flash import Partition

_ENERGY = const(0)
_DEMAND = const(1)
_SAMPLE = const(2)

TAG_MAIN = const(1)
_TAG_TAIL = const(2)
_MAX_PROFILES = const(3)
_RAM_RECORDS = const(4)  # closed records kept in RAM by a profile without a partition
_JUMP_S = const(2)  # an RTC step beyond this (against the metering clock) is a clock change
_BUCKET = const(16)  # ring records per entry of the time index (ProfileStore)

# lib/energy's register indices, as constants of this module so that CHANNELS is a constant
# tuple (in flash when frozen; a dict of tuples of the imported names held ~0.8 KB of RAM,
# issue 12); test_load_profile checks them against lib/energy
_A_PLUS = const(0)
_A_MINUS = const(1)
_Q1 = const(2)
_Q2 = const(3)
_Q3 = const(4)
_Q4 = const(5)
_S_IMPORT = const(6)
_S_EXPORT = const(7)

# (ident, (kind, sources (register indices) or instant key, unit, decimals, scale))
CHANNELS = (
    ("1.29", (_ENERGY, (_A_PLUS,), "kWh", 3, 1)),
    ("2.29", (_ENERGY, (_A_MINUS,), "kWh", 3, 1)),
    ("3.29", (_ENERGY, (_Q1, _Q2), "kvarh", 3, 1)),
    ("4.29", (_ENERGY, (_Q3, _Q4), "kvarh", 3, 1)),
    ("5.29", (_ENERGY, (_Q1,), "kvarh", 3, 1)),
    ("6.29", (_ENERGY, (_Q2,), "kvarh", 3, 1)),
    ("7.29", (_ENERGY, (_Q3,), "kvarh", 3, 1)),
    ("8.29", (_ENERGY, (_Q4,), "kvarh", 3, 1)),
    ("9.29", (_ENERGY, (_S_IMPORT,), "kVAh", 3, 1)),
    ("10.29", (_ENERGY, (_S_EXPORT,), "kVAh", 3, 1)),
    ("1.5", (_DEMAND, (_A_PLUS,), "kW", 3, 1)),
    ("2.5", (_DEMAND, (_A_MINUS,), "kW", 3, 1)),
    ("32.7", (_SAMPLE, "V", "V", 1, 10)),
    ("14.7", (_SAMPLE, "f", "Hz", 2, 100)),
)


def channel(ident):
    """The description of channel ``ident`` (:data:`CHANNELS`), or None."""
    for c, d in CHANNELS:
        if c == ident:
            return d
    return None


DEFAULT = ({"period_s": 900, "channels": ["1.29", "2.29", "3.29", "4.29", "1.5", "32.7"]},)
NAMES = ("P.01", "P.02", "P.03")


def layout_of(cfg, index=0):
    """lib/billing/profile.Layout of one profile configuration (``{"period_s", "channels"}``);
    the layout id is a checksum of the period and channels, so a changed configuration never
    reads rows of the old one. Raises ValueError naming what is wrong."""
    if not isinstance(cfg, dict):
        raise ValueError("load_profiles[%d]: %r is not {period_s, channels}" % (index, cfg))
    period = cfg.get("period_s", 900)
    chans = cfg.get("channels")
    if not isinstance(chans, (list, tuple)) or not chans:
        raise ValueError("load_profiles[%d].channels: %r is not a list of %s" % (
            index, chans, "/".join(sorted(c for c, _d in CHANNELS))))
    spec = []
    lid = period & 0xFF
    for i, c in enumerate(chans):
        d = channel(c)
        if d is None:
            raise ValueError("load_profiles[%d].channels[%d]: unknown channel %r" % (index, i, c))
        spec.append((c, d[2], d[3], bp.UNSIGNED))
        for ch in c:
            lid = (lid * 31 + ord(ch)) & 0xFFFF
    lid = ((lid >> 8) ^ lid ^ len(chans)) & 0xFF
    try:
        return bp.Layout(lid, period, spec)
    except ValueError as e:
        raise ValueError("load_profiles[%d]: %s" % (index, e)) from None


def configs(value):
    """The validated list of profile configurations (``value`` None: :data:`DEFAULT`)."""
    if value is None:
        value = DEFAULT
    if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= _MAX_PROFILES:
        raise ValueError("load_profiles: 1..%d profiles, got %r" % (_MAX_PROFILES, value))
    for i, c in enumerate(value):
        layout_of(c, i)
    return value


def shares(part, n):
    """``n`` equal sector-aligned Partitions of ``part`` (the profiles' shares)."""
    ss = part.sector_size
    k = part.size // ss // n
    return [Partition(part, i * k * ss, k * ss) for i in range(n)]


def _rows_in(t0, n, p, cur, t_to):
    """How many of the rows ending t0, t0 + p, ... t0 + (n - 1) p end in cur < t <= t_to."""
    a = 0 if t0 > cur else (cur - t0) // p + 1
    z = n if t0 + (n - 1) * p <= t_to else (t_to - t0) // p + 1 if t_to >= t0 else 0
    return z - a if z > a else 0


class ProfileStore:
    """The flash of one profile: the main ring of closed records and the tail ring that holds
    the open record again after each row (module docstring). ``part``: a flashstore.flash
    partition of at least 4 sectors; ``layout``: lib/billing/profile.Layout.

    Time index (for :meth:`LoadProfile.range_rows`, built by :meth:`index_steps`, then kept
    up by :meth:`write`): per bucket of ``bucket`` (16) ring sequence numbers, the earliest and
    the latest row end of its records of this layout (RTC s), in three arrays of one entry
    per 16 slots of the ring (~1.5 KB for 512 KiB). Min and max per bucket, not an order:
    it stays true after the RTC was set back (rows then not in time order). A bucket's
    entry may still cover records the ring dropped (a superset: only more is read)."""

    def __init__(self, part, layout):
        ss = part.sector_size
        n = part.size // ss
        if n < 4:
            raise ValueError("profile partition: %d sectors, at least 4 needed" % n)
        nt = max(2, n // 16)
        self.layout = layout
        self.main = ringlog.RingLog(Partition(part, 0, (n - nt) * ss), layout.payload)
        self.tail = ringlog.RingLog(Partition(part, (n - nt) * ss, nt * ss), layout.payload)
        self.status = None
        self.bucket = _BUCKET  # ring records per entry of the time index (set before a build)
        self._ib = None  # the time index: bucket held by each entry (-1: none)
        self._lo = self._hi = None  # its earliest / latest row end, RTC s
        self.indexed = False  # the index covers the whole ring (index_steps ran to its end)

    def mount(self):
        """Scan both rings; returns (the main ring's status, the rows of the open record to
        restore: list of (t, status, values), oldest first)."""
        self.indexed = False
        self._ib = None
        st = self.main.mount()
        self.tail.mount()
        self.status = st
        last = self.main.newest()
        tail = self.tail.newest()
        if tail is None or tail[1] != _TAG_TAIL:
            return st, []
        if last is not None and bytes(last[2]) == bytes(tail[2]):
            return st, []  # the open record was closed into the main ring
        try:
            return st, list(bp.decode(tail[2], self.layout))
        except ValueError:
            return st, []  # another layout: the profile starts empty

    def blocked(self):
        return self.main.blocked or self.tail.blocked

    def write(self, closed, open_rec, urgent):
        """A closed record (or None) to the main ring, then the open record to the tail."""
        if closed is not None:
            seq = self.main.next_seq()  # (urgent appends return None)
            self.main.append(closed, TAG_MAIN, urgent)
            if self._ib is not None:
                self._note(seq, closed)
        if open_rec is not None:
            self.tail.append(open_rec, _TAG_TAIL, urgent)

    def _note(self, seq, rec):
        # the time index learns record ``seq`` (bytes; other layouts are not noted)
        lay = self.layout
        if not rec or rec[0] != lay.layout_id:
            return
        t0 = rec[2] | rec[3] << 8 | rec[4] << 16 | rec[5] << 24
        end = t0 + (rec[1] - 1) * lay.period
        b = seq // self.bucket
        i = b % len(self._ib)
        if self._ib[i] != b:
            self._ib[i] = b
            self._lo[i] = t0
            self._hi[i] = end
        else:
            if t0 < self._lo[i]:
                self._lo[i] = t0
            if end > self._hi[i]:
                self._hi[i] = end

    def index_steps(self, tick=32):
        """Build the time index (class docstring) unless it is built: one pass over the main
        ring, oldest first, yielding None after every ``tick`` records read (a caller on
        the event loop reads ``tick`` a round). Records appended meanwhile are noted by
        :meth:`write`."""
        if self.indexed:
            return
        from array import array

        r = self.main
        nb = r.sectors * r.slots_per_sector // self.bucket + 2  # > the live sequence span
        self._ib = array("i", [-1] * nb)
        # (unsigned: RTC seconds reach 2**31 in 2068, the clock is settable to 2099)
        self._lo = array("I", [0] * nb)
        self._hi = array("I", [0] * nb)
        k = 0
        for seq, tag, rec in r.entries():
            if tag == TAG_MAIN:
                self._note(seq, rec)
            k += 1
            if tick and k >= tick:
                k = 0
                yield None
        self.indexed = True

    def buckets(self, t_from, t_to):
        """The sequence numbers of the buckets (their first record's) whose rows may end in
        ``t_from`` <= t <= ``t_to``, oldest first (the built index; RAM only). Evaluated
        lazily: a record appended meanwhile is in a later bucket or in the same one."""
        ib = self._ib
        nb = len(ib)
        z = self.bucket
        b = (self.main.next_seq() - 1) // z - nb + 1
        if b < 0:
            b = 0
        while b <= (self.main.next_seq() - 1) // z:
            i = b % nb
            if ib[i] == b and self._lo[i] <= t_to and self._hi[i] >= t_from:
                yield b * z
            b += 1

    def records(self):
        """The main ring's records of this layout, oldest first (bytes)."""
        lid = self.layout.layout_id
        for _seq, tag, rec in self.main.entries():
            if tag == TAG_MAIN and rec and rec[0] == lid:
                yield rec

    def records_newest(self):
        """The main ring's records, newest first, as (ring seq, bytes) (every layout: the
        reader stops at another one), read lazily (flashstore.ringlog.RingLog.entries_newest;
        ``record(seq)`` reads one again)."""
        for seq, tag, rec in self.main.entries_newest():
            if tag == TAG_MAIN and rec:
                yield seq, rec

    def record(self, seq):
        """The main ring's record ``seq`` (bytes), or None when it is gone."""
        got = self.main.get(seq)
        return got[2] if got is not None and got[1] == TAG_MAIN else None


class LoadProfile:
    """One interval profile (module docstring). ``regs``: lib.energy.Registers (the totals
    bank is read); ``metering``: meter.metering.Metering (``ok``, ``instant``); ``clock``: the
    board clock (``ticks_ms``/``ticks_diff``/``ticks_add``, ``time()``, optional ``rtc_ms()``
    and ``rtc_valid``); ``cfg``: one configuration (:func:`layout_of`); ``part``: its flash
    (None: RAM only); ``zone``: lib/billing/localtime.Zone (UTC without DST if None);
    ``supply``: meter.supply.Supply; ``log``: lib.events.EventLog; ``name``: "P.01".."P.03".

    Counters: ``rows`` (captured since boot), ``lost`` (rows that could not be written),
    ``fault`` (None, or why the last write failed)."""

    def __init__(self, regs, metering, clock, cfg, part=None, zone=None, supply=None, log=None,
                 name="P.01", max_rows=48):
        self.layout = lay = layout_of(cfg)
        self.name = name
        self.regs = regs
        self.metering = metering
        self.clock = clock
        self.zone = zone if zone is not None else Zone()
        self.supply = supply
        self.log = log
        m = lay.nch
        self._kind = tuple(channel(c[0])[0] for c in lay.channels)  # (tuples: RAM)
        self._src = tuple(channel(c[0])[1] for c in lay.channels)
        self._scale = tuple(channel(c[0])[4] for c in lay.channels)
        self.buf = bp.ProfileBuffer(lay, max_rows)
        self.store = ProfileStore(part, lay) if part is not None else None
        self._ram = []  # closed records without a partition
        self._snap = [0] * COUNT  # the registers' whole units at the boundary (the step)
        self._base = [0] * m  # each channel's cumulative value at the last capture
        self._carry = [0] * m  # a provisional row's values carried over a restart
        self._vals = [0] * m
        self._armed = False
        self.due = False
        self.on_due = None  # callable(): the step took a snapshot (wakes the profile task)
        self._bad_m = False  # a step saw the metrology untrusted (latched for service)
        self._bad_c = False  # a step saw the RTC invalid
        self._att = None  # Metering.attempts at the last service (a chip restart between)
        self._has_att = hasattr(metering, "attempts")
        self._due_st = 0  # what the steps saw up to the snapshot: the status of its row
        self._has_valid = hasattr(clock, "rtc_valid")
        self._deadline = 0
        self.tb = 0  # RTC s of the next boundary (the end of the interval in progress)
        self._st = 0  # status bits of the interval in progress
        self._prov = -1  # time of a provisional (power-down) last row, or -1
        self._ref_t = None  # RTC s and ticks of the last service (clock jump detection)
        self._ref_ms = 0
        self.rows = 0
        self.lost = 0
        self.fault = None
        self.status = None

    # -- the step (heap-locked) -----------------------------------------------------------

    def interval(self, ea, er, es, dt):
        """Consumer of the metering step: at the first step that reaches the boundary, copy
        the totals' whole units into the snapshot. Allocation-free, small ints only."""
        self.second()

    def second(self):
        """:meth:`interval` without its arguments (small frames: MicroPython heap-allocates,
        at every call, a frame of more than 11 machine words, meter/tariffs.py)."""
        m = self.metering
        if m is not None and not m.ok:
            self._bad_m = True  # (the task no longer samples it every second: latched)
        if self._has_valid and not self.clock.rtc_valid:
            self._bad_c = True
        if self._armed and self.clock.ticks_diff(self.clock.ticks_ms(), self._deadline) >= 0:
            self._take()

    def _take(self):
        # the boundary reached: the snapshot of the totals, the row's status, the task woken
        # (in three frames of at most 11 words: one was 15, heap-allocated at every
        # boundary, 136 B a profile on the unix port; host_tests/unit/test_frames.py)
        self._copy_snap()
        self._due_st = self._row_status()
        self._bad_m = self._bad_c = False
        self._armed = False
        self.due = True
        cb = self.on_due
        if cb is not None:
            cb()

    def _copy_snap(self):
        w = self.regs.whole
        s = self._snap
        i = 0
        while i < COUNT:
            s[i] = w[i]
            i += 1

    def _row_status(self):
        # what was seen up to the snapshot flags the row it ends; what service() samples
        # later (the task runs after this step) flags the next one
        st = bp.ST_DATA_INVALID if self._bad_m else 0
        if self._has_att:
            a = self.metering.attempts
            if self._att is not None and a != self._att:
                st = bp.ST_DATA_INVALID
            self._att = a
        if self._bad_c:
            st |= bp.ST_CLOCK_INVALID
        return st

    # -- boot ---------------------------------------------------------------------------

    def start(self):
        """At boot, after the registers were restored: the open record read back from flash,
        the baseline taken from the registers, the first boundary armed."""
        now = self.clock.time()
        rows = []
        if self.store is not None:
            try:
                self.status, rows = self.store.mount()
            except Exception as e:  # flash trouble must never stop metering
                self._failed(e)
                rows = []
            if self.store.blocked():
                self.status = "foreign"
        st = bp.ST_POWER_UP
        if rows:
            last = rows[-1]
            if last[1] & bp.ST_POWER_DOWN and last[0] > now and \
                    last[0] - now <= self.layout.period:
                rows = rows[:-1]  # restarted within the interval: the row is completed later
                st |= last[1]
                for k in range(self.layout.nch):
                    if self._kind[k] != _SAMPLE:
                        self._carry[k] = last[2][k]
            for t, s, v in rows:
                self.buf.add(t, s, v)
        self._take_base(self.regs.whole)
        self._st = st
        self._ref_t = now  # (clock jumps are measured from boot on)
        self._ref_ms = self.clock.ticks_ms()
        self._arm(now)
        if rows and rows[-1][0] >= self.tb:
            # a restored row ends at or after the boundary armed (a clock set backwards)
            self._st |= bp.ST_CLOCK_ADJUSTED

    def _cum(self, k, w):
        v = 0
        for i in self._src[k]:
            v += w[i]
        return v

    def _take_base(self, w):
        for k in range(self.layout.nch):
            if self._kind[k] != _SAMPLE:
                self._base[k] = self._cum(k, w)

    def _rtc_ms(self):
        c = self.clock
        f = getattr(c, "rtc_ms", None)
        return f() if f is not None else c.time() * 1000

    def _arm(self, now):
        """Arm the boundary after RTC second ``now``."""
        p = self.layout.period
        tb = (now // p + 1) * p
        self.tb = tb
        self._set_deadline()

    def _set_deadline(self):
        c = self.clock
        ms = c.ticks_ms()
        d = self.tb * 1000 - self._rtc_ms()
        if d < 0:
            d = 0
        self._deadline = c.ticks_add(ms, d)
        self._armed = True

    # -- the task ---------------------------------------------------------------------------

    def wait_ms(self):
        """Milliseconds of the metering clock until :meth:`service` must look without a
        step's snapshot: a boundary no step reached (chip down) is captured ``_JUMP_S`` after
        it (the profile task sleeps until then or until the step's ``on_due``)."""
        c = self.clock
        if not self._armed:
            return 1000
        return c.ticks_diff(self._deadline, c.ticks_ms()) + _JUMP_S * 1000

    def service(self):
        """The profile task, after a step's snapshot, at :meth:`wait_ms` and after a clock
        set: turn a snapshot into a row, capture a boundary no step reached, notice clock
        changes. What the steps saw up to the snapshot (metrology untrusted, a chip restart,
        the RTC invalid) flags the row it ends; what they saw after it, and the state sampled
        here (the task runs after the step), flags the interval in progress."""
        c = self.clock
        now = c.time()
        ms = c.ticks_ms()
        jump = False
        if self._ref_t is not None:
            exp = self._ref_t + c.ticks_diff(ms, self._ref_ms) // 1000
            jump = now - exp > _JUMP_S or exp - now > _JUMP_S
        self._ref_t = now
        self._ref_ms = ms
        if self.due:
            self.due = False
            self._st |= self._due_st  # (the steps' flags up to the snapshot)
            self._due_st = 0
            self._capture(self.tb, self._snap)
            if not jump:
                self.tb += self.layout.period
                self._set_deadline()
        # sampled now: the interval in progress (a boundary no step reached is captured
        # below with it)
        m = self.metering
        if m is not None:
            a = getattr(m, "attempts", 0)
            if self._bad_m or not m.ok or (self._att is not None and a != self._att):
                self._st |= bp.ST_DATA_INVALID
            self._att = a
        if self._bad_c:
            self._st |= bp.ST_CLOCK_INVALID
        self._bad_m = self._bad_c = False
        if not getattr(c, "rtc_valid", True):
            self._st |= bp.ST_CLOCK_INVALID
        if jump:
            self._st |= bp.ST_CLOCK_ADJUSTED
            self._arm(now)
            return
        k = 0
        while now >= self.tb + _JUMP_S and k < 4:  # no step reached the boundary
            self._armed = False
            w = self.regs.whole
            for i in range(COUNT):
                self._snap[i] = w[i]
            self._capture(self.tb, self._snap)
            self.tb += self.layout.period
            k += 1
        if k:
            if now >= self.tb:
                self._arm(now)
            else:
                self._set_deadline()

    def _values(self, w, provisional=False):
        """The channel values of the interval ending now, from the whole units ``w``."""
        v = self._vals
        p = self.layout.period
        bad = False
        for k in range(self.layout.nch):
            kind = self._kind[k]
            if kind == _SAMPLE:
                m = self.metering  # (once per interval: the float reading may allocate)
                x = m.instant_value(self._src[k]) if m is not None else None
                v[k] = int(x * self._scale[k] + 0.5) if x is not None and x > 0 else 0
                continue
            e = self._cum(k, w) - self._base[k]
            if e < 0:  # the registers were cleared (cold start)
                e = 0
                bad = True
            if kind == _DEMAND:
                e = e * 3600 // p
            v[k] = e + self._carry[k]
            if not provisional:
                self._base[k] = self._cum(k, w)
        return v, bad

    def _capture(self, tb, w):
        vals, bad = self._values(w)
        st = self._st
        if bad:
            st |= bp.ST_DATA_INVALID
        if self.zone.is_dst(tb - 1):
            st |= bp.ST_DST
        if self._prov >= 0:
            if self._prov == tb:  # the provisional row of this interval: replaced
                last = self._pop()
                if last is not None:
                    st |= last[1]
            self._prov = -1
        for k in range(self.layout.nch):
            self._carry[k] = 0
        self._st = 0
        self._add(tb, st, vals)

    def _pop(self):
        """Remove the open record's last row (returns it, or None)."""
        return self.buf.pop()

    def _add(self, t, st, vals):
        try:
            closed = self.buf.add(t, st & 0xFF, vals)
        except ValueError as e:  # a value beyond 31 bits: the row is not kept
            self.lost += 1
            self._say("row: %s" % e)
            return
        self.rows += 1
        self._persist(closed)

    def _persist(self, closed):
        s = self.store
        if s is None:  # RAM only: the last _RAM_RECORDS closed records are kept
            if closed is not None:
                self._ram.append(closed)
                if len(self._ram) > _RAM_RECORDS:
                    self._ram.pop(0)
            return
        sp = self.supply
        try:
            s.write(closed, self.buf.pack(), sp is not None and sp.warning)
            self.fault = None
        except Exception as e:  # flash trouble or no prepared slot during the warning
            self.lost += 1
            self._failed(e)

    def _failed(self, e):
        if self.fault is None and self.log is not None:
            self.log.log(events.STORAGE_WRITE_FAILED, 3, "load profile %s: %s" % (self.name, e))
        self.fault = str(e)

    def _say(self, text):
        if self.log is not None:
            self.log.log(events.STORAGE_WRITE_FAILED, 3, "load profile %s %s" % (self.name, text))

    def power_down(self):
        """The power-fail warning (after the register commit) or an orderly stop: the interval
        in progress closed with ST_POWER_DOWN, provisionally (module docstring)."""
        if self.due:  # a boundary the task has not served yet
            self.due = False
            self._st |= self._due_st
            self._due_st = 0
            self._capture(self.tb, self._snap)
            self.tb += self.layout.period
            self._set_deadline()
        tb = self.tb
        if self._prov == tb:
            self._pop()
        vals, bad = self._values(self.regs.whole, True)
        st = self._st | bp.ST_POWER_DOWN
        if bad:
            st |= bp.ST_DATA_INVALID
        if self.zone.is_dst(tb - 1):
            st |= bp.ST_DST
        self._st |= bp.ST_POWER_DOWN
        self._prov = tb
        self._add(tb, st, list(vals))

    # -- reading ----------------------------------------------------------------------------

    def iter_rows(self, t_from=None, t_to=None, tick=0):
        """Rows ``(t, status, values)`` with t_from <= t <= t_to (None: open), in capture
        order (oldest first): the main ring's records, then the open record. Read record by
        record from flash. ``tick`` > 0: resumable in bounded steps; after every ``tick``
        records read, ``None`` is yielded (the uplink's ``profile`` answer reads at most
        ``tick`` records a round: a range with no row in a full 512 KiB ring is ~2 000
        record reads, not one round of the event loop)."""
        p = self.layout.period
        lay = self.layout
        recs = self.store.records() if self.store is not None else self._ram
        k = 0
        for rec in recs:
            if tick:
                k += 1
                if k >= tick:
                    k = 0
                    yield None
            n = rec[1]
            t0 = rec[2] | rec[3] << 8 | rec[4] << 16 | rec[5] << 24
            if t_to is not None and t0 > t_to:
                continue
            if t_from is not None and t0 + (n - 1) * p < t_from:
                continue
            try:
                for r in bp.decode(rec, lay):
                    if (t_from is None or r[0] >= t_from) and (t_to is None or r[0] <= t_to):
                        yield r
            except ValueError:
                continue
        for r in self.buf.rows():
            if (t_from is None or r[0] >= t_from) and (t_to is None or r[0] <= t_to):
                yield r

    def range_rows(self, t_from, t_to, tick=32):
        """The rows of :meth:`iter_rows` ``(t_from, t_to, tick)`` (every row ending in
        ``t_from`` <= t <= ``t_to``, in capture order, None yielded between shares of
        ``tick`` records read), read through the store's time index (ProfileStore): only the
        buckets of 16 records whose rows may end in the range are read, oldest first, then
        the open record. For the uplink's ``profile`` range answer: a range of the last days
        on a year's ring reads a bucket or two, not all ~730 from the oldest (docs/BENCHMARKS.md
        "The load profile read for the uplink"). The index is built at the first call after a
        start (one pass over the ring, ``tick`` records a round; ``Uplink`` starts it at its
        start-up) and kept up by every row written. Exact after the RTC was set back (a
        bucket's earliest and latest row end, not an order) and across the ring's wrap."""
        st = self.store
        if st is None:
            yield from self.iter_rows(t_from, t_to, tick)
            return
        yield from st.index_steps(tick)
        lid = self.layout.layout_id
        p = self.layout.period
        ring = st.main
        k = 0
        for b in st.buckets(t_from, t_to):
            for seq in range(b, b + st.bucket):
                if seq >= ring.next_seq():
                    break
                got = ring.get(seq)
                if tick:
                    k += 1
                    if k >= tick:
                        k = 0
                        yield None
                if got is None or got[1] != TAG_MAIN:
                    continue
                rec = got[2]
                if not rec or rec[0] != lid:
                    continue
                t0 = rec[2] | rec[3] << 8 | rec[4] << 16 | rec[5] << 24
                if t0 > t_to or t0 + (rec[1] - 1) * p < t_from:
                    continue
                try:
                    for r in bp.decode(rec, self.layout):
                        if t_from <= r[0] <= t_to:
                            yield r
                except ValueError:
                    continue
        for r in self.buf.rows():
            if t_from <= r[0] <= t_to:
                yield r

    def rows_since(self, cur, t_to, max_rows, tick=0):
        """The rows captured after the newest row ending at or before ``cur`` (RTC s) that
        end in ``cur`` < t <= ``t_to``: a list of (t, status, values), oldest first, at most
        ``max_rows`` (the oldest of them). A generator: its value is *returned* (``rows =
        yield from p.rows_since(...)``); with ``tick`` > 0 it yields None after every
        ``tick`` records read and before each record decoded.

        For the uplink's schedule (firmware/uplink/task.py ``profile_bodies``): newest first,
        the open record, then the main ring's records back to the first one that holds a row
        ending at or before ``cur`` (every row before it was captured before that row),
        reading only their headers (first time, row count: rows are contiguous); then it
        decodes, oldest first, only the records that hold the ``max_rows`` rows returned. A
        quarter hour's read is the open record and a record or two, not the ring from its
        oldest record (docs/BENCHMARKS.md "The load profile read for the uplink"). Without a
        clock set back (rows in capture order end in increasing times) these are the rows of
        ``iter_rows(cur + 1, t_to)``; after one, a row of the old time captured before the
        newest row at or before ``cur`` is not read again. A record of another layout (a
        configuration change: every older row was captured before it) ends the read too.
        Records dropped by the ring while the read is suspended are left out: the ring drops
        its oldest, but the decode pass also goes oldest first, so a ring that wraps faster
        than the read leaves a gap of the rows dropped meanwhile (each row keeps its time;
        they are gone from flash either way)."""
        p = self.layout.period
        lay = self.layout
        b = self.buf
        keep = []  # (ring seq / RAM record / None: the open rows, rows in range), oldest first
        total = 0
        opened = None
        if b.n:  # the open rows in range, copied now: a row closes them into the ring later
            opened = [r for r in b.rows() if cur < r[0] <= t_to]
            if opened:
                keep.append((None, len(opened)))
                total = len(opened)
        if not (b.n and b.t0 <= cur):
            st = self.store
            if st is not None:
                recs = st.records_newest()
            else:
                ram = self._ram
                recs = ((ram[i], ram[i]) for i in range(len(ram) - 1, -1, -1))
            k = 0
            for h, rec in recs:
                if tick:
                    k += 1
                    if k >= tick:
                        k = 0
                        yield None
                if rec[0] != lay.layout_id:
                    break
                t0 = rec[2] | rec[3] << 8 | rec[4] << 16 | rec[5] << 24
                c = _rows_in(t0, rec[1], p, cur, t_to)
                if c:
                    keep.insert(0, (h, c))
                    total += c
                    while total - keep[-1][1] >= max_rows:  # the older ones are enough
                        total -= keep.pop()[1]
                if t0 <= cur:
                    break
        out = []
        for h, _c in keep:
            if h is None:
                rows = opened
            else:
                rec = h if self.store is None else self.store.record(h)
                if rec is None:
                    continue
                if tick:
                    yield None  # (a record's decode a round)
                rows = bp.decode(rec, lay)
            try:
                for r in rows:
                    if cur < r[0] <= t_to:
                        out.append(r)
                        if len(out) >= max_rows:
                            return out
            except ValueError:
                continue
        return out

    def p01_lines(self, t_from=None, t_to=None):
        """The VDEW readout lines (lib/billing/p01) of the rows in the range."""
        from billing import p01  # only for a readout (R5 P.01): not held by every meter

        return p01.lines(self.iter_rows(t_from, t_to), self.layout, self.zone, 2, self.name)

    def csv_lines(self):
        """CSV export: a header line, then ``time_utc,status,<ident>...`` one row a line
        (ISO 8601 UTC end of the interval, status in hex, values in the channels' units)."""
        from billing import p01
        from civil import civil

        lay = self.layout
        yield "time_utc,status," + ",".join("%s_%s" % (c[0], c[1]) for c in lay.channels)
        for t, st, vals in self.iter_rows():
            y, mo, d, hh, mi, ss, _ = civil(t)
            yield "%04d-%02d-%02dT%02d:%02d:%02dZ,%02X,%s" % (
                y, mo, d, hh, mi, ss, st,
                ",".join(p01.fixed(vals[k], lay.channels[k][2]) for k in range(lay.nch)))


class Profiles:
    """The meter's interval profiles (1..3 :class:`LoadProfile`), a step consumer as one.
    ``cfgs``: the ``load_profiles`` setting (None: :data:`DEFAULT`); ``part``: the board's
    ``profile`` partition or None; the rest as :class:`LoadProfile`.

    The step calls :meth:`LoadProfile.second` only once the earliest boundary armed is
    reached (issue 12: 3 calls a second instead of 5); the flags it latches every second
    (the metrology untrusted, the RTC invalid) are latched here meanwhile (:meth:`_latch`).
    That boundary is taken again after every call that can change one (:meth:`start`,
    :meth:`service`, :meth:`power_down` and the step's own): the items are driven through
    this object."""

    def __init__(self, regs, metering, clock, cfgs=None, part=None, zone=None, supply=None,
                 log=None):
        cfgs = configs(cfgs)
        parts = shares(part, len(cfgs)) if part is not None else [None] * len(cfgs)
        self.items = [LoadProfile(regs, metering, clock, c, parts[i], zone, supply, log,
                                  NAMES[i]) for i, c in enumerate(cfgs)]
        self._m = metering
        self._clock = clock
        self._hv = hasattr(clock, "rtc_valid")
        self._armed = False  # a boundary armed: _due_ms, the earliest (metering ticks)
        self._due_ms = 0

    def interval(self, ea, er, es, dt):
        """Consumer of the metering step (allocation-free; small frames: a ``for`` loop
        takes 4 words of the 11 a frame may have before MicroPython heap-allocates it)."""
        m = self._m
        if m is not None and not m.ok or self._hv and not self._clock.rtc_valid:
            self._latch(self.items)
        if self._armed:
            m = self._clock
            if m.ticks_diff(m.ticks_ms(), self._due_ms) >= 0:
                self._second(self.items)

    def _latch(self, items):
        # what LoadProfile.second latches (the metrology untrusted, the RTC invalid), for
        # each profile (one metering, one clock)
        bm = self._m is not None and not self._m.ok
        bc = self._hv and not self._clock.rtc_valid
        i = 0
        while i < len(items):
            if bm:
                items[i]._bad_m = True
            if bc:
                items[i]._bad_c = True
            i += 1

    def _second(self, items):
        for p in items:
            p.second()
        self._earliest(items)

    def _earliest(self, items):
        # the earliest boundary armed (LoadProfile._deadline) into _armed / _due_ms (a
        # while loop: a for loop's iterator takes 4 words of the frame)
        self._armed = False
        i = 0
        while i < len(items):
            p = items[i]
            if p._armed and (not self._armed
                             or self._clock.ticks_diff(p._deadline, self._due_ms) < 0):
                self._due_ms = p._deadline
                self._armed = True
            i += 1

    def start(self):
        for p in self.items:
            p.start()
        self._earliest(self.items)

    def service(self):
        for p in self.items:
            p.service()
        self._earliest(self.items)

    def set_on_due(self, cb):
        """``cb()`` is called by the step that takes a snapshot (allocation-free)."""
        for p in self.items:
            p.on_due = cb

    def wait_ms(self):
        """The earliest :meth:`LoadProfile.wait_ms` (ms of the metering clock, >= 1)."""
        best = None
        for p in self.items:
            d = p.wait_ms()
            if best is None or d < best:
                best = d
        return 1000 if best is None else (best if best > 1 else 1)

    def power_down(self):
        for p in self.items:
            p.power_down()
        self._earliest(self.items)

    def get(self, name):
        """The profile read as ``name`` ("P.01".."P.03"), or None."""
        for p in self.items:
            if p.name == name:
                return p
        return None
