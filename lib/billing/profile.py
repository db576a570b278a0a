# Load profile: rows of interval values packed into fixed-size ring-log records.
"""Load profile rows (DLMS class 7 "profile generic", 1.0.99.1.0.255) and their flash codec.

A row is one capture period (60, 300, 600, 900, 1800 or 3600 s): its time stamp (RTC
seconds, UTC, the *end* of the interval, as the profile's clock column), a status byte and
1..6 channel values (integers: interval energies in Wh, cumulative registers in Wh, the last
average demand in W, V in 0.1 V, f in 0.01 Hz, ... as the :class:`Layout` says).

Interval status byte (DSMR/IDIS, as the EnergyICT parsers decode it; billing reference C3):
ST_CRITICAL 0x01 critical error, ST_CLOCK_INVALID 0x02, ST_DATA_INVALID 0x04, ST_DST 0x08
daylight saving active, 0x10 vendor-specific (here ST_BILLING_RESET, as Iskra), 0x20
ST_CLOCK_ADJUSTED, 0x40 vendor-specific (here ST_POWER_UP, as Iskra / L+G E35C), 0x80
ST_POWER_DOWN.

Record (the payload of one ``RingLog`` record; ``Layout.payload`` bytes, default 240 so that
with the ring log's 16-byte record header a record fills one 256-byte slot = one page
program; little-endian)::

    off  size         field
     0   1            layout id (the caller's channel configuration; the decoder checks it)
     1   1            row count n (1..255)
     2   4            time of row 0 (u32 RTC seconds UTC, end of its interval); row i ends
                      at time + i x period (rows of a record are contiguous)
     6   1            status of row 0
     7   1            c = number of status changes
     8   ceil(5 m/8)  bit width of each of the m channels, 5 bits each (0..31), LSB first
     .   4 x d        first value of each DELTA channel (<i)
     .   2 x c        status changes (row index, new status), rows in increasing order
     .   bits         row-major: for each row, each channel's code in its width, LSB first;
                      UNSIGNED: the value; SIGNED: zigzag(value); DELTA: zigzag(value - the
                      previous row's value) (row 0: 0)
     .   padding      0x00 up to the payload size

Widths adapt per record to the largest code in it, so a record holds as many rows as fit
(up to ``max_rows``). Worst case for 6 UNSIGNED channels of 16 bits: header 12 B + 19 rows x
12 B = 240 B, i.e. 19 rows per 256-byte slot. A record is closed when the next row does not
fit, does not follow in time (outage, clock set), or by ``flush()`` (power fail,
shutdown); a flush costs one slot. Capacity of a 512 KiB ring log of 4 KiB sectors
(ringlog.RingLog: 15 slots of 256 B per sector, one sector kept erased, one more dropped at
wrap-around, so 126 x 15 = 1890 records are always kept): worst case 35 910 rows = 374 days
of 15-minute rows (14.4 bytes per row); typical data packs tighter (docs/BENCHMARKS.md).
"""

import struct

from micropython import const

UNSIGNED = const(0)
SIGNED = const(1)
DELTA = const(2)

ST_CRITICAL = const(0x01)
ST_CLOCK_INVALID = const(0x02)
ST_DATA_INVALID = const(0x04)
ST_DST = const(0x08)
ST_BILLING_RESET = const(0x10)
ST_CLOCK_ADJUSTED = const(0x20)
ST_POWER_UP = const(0x40)
ST_POWER_DOWN = const(0x80)

PERIODS = (60, 300, 600, 900, 1800, 3600)
MAX_CHANNELS = const(6)
_FIXED = const(8)


def _bits(v):
    """Bits needed for the non-negative int ``v`` (0 -> 0)."""
    n = 0
    while v:
        v >>= 1
        n += 1
    return n


def _zz(v):
    return (v << 1) if v >= 0 else ((-v << 1) - 1)


def _unzz(c):
    return (c >> 1) if not c & 1 else -((c + 1) >> 1)


class Layout:
    """Channel configuration of a profile.

    ``layout_id``: 0..255, stored in each record (change it when the channels change);
    ``period_s``: capture period, one of PERIODS; ``channels``: 1..6 tuples
    ``(ident, unit, decimals, mode)``: ident as shown in a P.01 header (e.g. ``"1.29"``),
    unit (``"kWh"``), decimals (the value is shown as value / 10**decimals), mode (UNSIGNED,
    SIGNED or DELTA); ``payload``: record payload bytes (the ring log's record_size).
    Raises ValueError naming the argument.
    """

    def __init__(self, layout_id, period_s, channels, payload=240):
        if not 0 <= layout_id <= 255:
            raise ValueError("layout_id: %r not in 0..255" % (layout_id,))
        if period_s not in PERIODS:
            raise ValueError("period_s: %r not one of %r" % (period_s, PERIODS))
        if not 1 <= len(channels) <= MAX_CHANNELS:
            raise ValueError("channels: %d, allowed 1..%d" % (len(channels), MAX_CHANNELS))
        for i, ch in enumerate(channels):
            if len(ch) != 4 or ch[3] not in (UNSIGNED, SIGNED, DELTA) or \
                    not 0 <= ch[2] <= 6:
                raise ValueError("channels[%d]: %r is not (ident, unit, decimals 0..6, mode)"
                                 % (i, ch))
        self.layout_id = layout_id
        self.period = period_s
        self.channels = tuple(tuple(c) for c in channels)
        self.modes = bytes(c[3] for c in channels)
        self.payload = payload
        m = len(channels)
        self.nch = m
        self.wbytes = (5 * m + 7) // 8
        self.ndelta = sum(1 for c in channels if c[3] == DELTA)
        self.head = _FIXED + self.wbytes + 4 * self.ndelta
        if self.head + 2 > payload:
            raise ValueError("payload: %d bytes cannot hold one row" % payload)

    def rows_per_record(self, bits=16):
        """Rows per record when every code needs ``bits`` bits and no status changes."""
        per = bits * self.nch
        if per == 0:
            return 255
        return min(255, (self.payload - self.head) * 8 // per)


class ProfileBuffer:
    """The open (RAM) record: rows are added here; packed records come out.

    ``layout``: :class:`Layout`; ``max_rows``: rows per record at most (1..255; RAM is
    ``max_rows x channels`` ints). :meth:`add` returns a packed record (bytes of
    ``layout.payload``) when the open one had to be closed, else None; :meth:`flush` packs
    the open rows (power fail, shutdown). Values must fit their mode in 31 bits
    (ValueError, row not added).
    """

    def __init__(self, layout, max_rows=96):
        if not 1 <= max_rows <= 255:
            raise ValueError("max_rows: %r not in 1..255" % (max_rows,))
        self.layout = layout
        self.max_rows = max_rows
        m = layout.nch
        self._v = [0] * (max_rows * m)
        self._w = [0] * m
        self._nw = [0] * m
        self._chg = []  # (row, status)
        self.n = 0
        self.t0 = 0
        self.status0 = 0
        self._st = 0  # status of the last row
        self._tl = 0  # time of the last row

    def _codes_fit(self, values, status):
        """New widths in self._nw if the row (values, status) fits the open record."""
        lay = self.layout
        m = lay.nch
        modes = lay.modes
        base = (self.n - 1) * m
        tot = 0
        for k in range(m):
            v = values[k]
            md = modes[k]
            if md == UNSIGNED:
                if v < 0:
                    raise ValueError("channel %d: %d < 0 in an UNSIGNED channel" % (k, v))
                c = v
            elif md == SIGNED or self.n == 0:
                c = _zz(v)
            else:
                c = _zz(v - self._v[base + k])
            b = _bits(c)
            if b > 31:
                raise ValueError("channel %d: %d needs more than 31 bits" % (k, v))
            w = self._w[k] if self.n else 0
            if md == DELTA and self.n == 0:
                b = 0  # row 0 of a DELTA channel stores 0 (the value is in the header)
            self._nw[k] = b if b > w else w
            tot += self._nw[k]
        ch = len(self._chg) + (1 if self.n and status != self._st else 0)
        need = lay.head + 2 * ch + ((self.n + 1) * tot + 7) // 8
        return need <= lay.payload

    def add(self, t, status, values):
        """Add a row ending at ``t`` (RTC s, UTC) with ``status`` (0..255) and ``values``
        (one int per channel). Returns a packed record if the open one was closed."""
        lay = self.layout
        if len(values) != lay.nch:
            raise ValueError("values: %d given, layout has %d channels" % (len(values),
                                                                           lay.nch))
        if not 0 <= status <= 255:
            raise ValueError("status: %r not in 0..255" % (status,))
        out = None
        if self.n and (self.n >= self.max_rows or t != self._tl + lay.period):
            out = self.pack()
            self._reset()
        if not self._codes_fit(values, status):  # also checks the values (ValueError)
            if not self.n:
                raise ValueError("row does not fit an empty record")
            out = self.pack()
            self._reset()
            self._codes_fit(values, status)
        m = lay.nch
        if self.n == 0:
            self.t0 = t
            self.status0 = status
        elif status != self._st:
            self._chg.append((self.n, status))
        base = self.n * m
        for k in range(m):
            self._v[base + k] = values[k]
            self._w[k] = self._nw[k]
        self.n += 1
        self._st = status
        self._tl = t
        return out

    def _reset(self):
        self.n = 0
        self._chg = []
        for k in range(self.layout.nch):
            self._w[k] = 0

    def pop(self):
        """Remove the last open row; returns it as (t, status, values tuple), or None when
        there is none (a provisional row replaced, firmware/meter/profile.py)."""
        rows = list(self.rows())
        if not rows:
            return None
        self._reset()
        for t, s, v in rows[:-1]:
            self.add(t, s, v)  # they fitted one record before: they fit again
        return rows[-1]

    def flush(self):
        """Packed record of the open rows (then empty), or None if there are none."""
        if not self.n:
            return None
        out = self.pack()
        self._reset()
        return out

    def pack(self):
        """The open rows as one record (bytes of layout.payload); the buffer is unchanged."""
        lay = self.layout
        m = lay.nch
        buf = bytearray(lay.payload)
        struct.pack_into("<BBIBB", buf, 0, lay.layout_id, self.n, self.t0, self.status0,
                         len(self._chg))
        acc = 0
        nb = 0
        pos = _FIXED
        for k in range(m):  # widths, 5 bits each
            acc |= self._w[k] << nb
            nb += 5
            while nb >= 8:
                buf[pos] = acc & 0xFF
                acc >>= 8
                nb -= 8
                pos += 1
        if nb:
            buf[pos] = acc & 0xFF
            pos += 1
        modes = lay.modes
        for k in range(m):
            if modes[k] == DELTA:
                struct.pack_into("<i", buf, pos, self._v[k])
                pos += 4
        for r, s in self._chg:
            buf[pos] = r
            buf[pos + 1] = s
            pos += 2
        acc = 0
        nb = 0
        v = self._v
        for r in range(self.n):
            base = r * m
            for k in range(m):
                w = self._w[k]
                if not w:
                    continue
                md = modes[k]
                x = v[base + k]
                if md == SIGNED:
                    x = _zz(x)
                elif md == DELTA:
                    x = _zz(x - v[base - m + k]) if r else 0
                acc |= x << nb
                nb += w
                while nb >= 8:
                    buf[pos] = acc & 0xFF
                    acc >>= 8
                    nb -= 8
                    pos += 1
        if nb:
            buf[pos] = acc & 0xFF
        return bytes(buf)

    def rows(self):
        """Yield the open rows as (t, status, values tuple), oldest first."""
        m = self.layout.nch
        st = self.status0
        ci = 0
        for r in range(self.n):
            while ci < len(self._chg) and self._chg[ci][0] == r:
                st = self._chg[ci][1]
                ci += 1
            yield (self.t0 + r * self.layout.period, st,
                   tuple(self._v[r * m: r * m + m]))


def decode(rec, layout):
    """Yield the rows of one record as (t, status, values tuple), oldest first.

    Raises ValueError if the record was written with another layout id or is inconsistent
    (a corrupt record that passed the ring log's CRC cannot make it read out of bounds)."""
    if len(rec) < layout.head:
        raise ValueError("profile record: %d bytes, too short" % len(rec))
    lid, n, t0, st, c = struct.unpack_from("<BBIBB", rec, 0)
    if lid != layout.layout_id:
        raise ValueError("profile record: layout %d, expected %d" % (lid, layout.layout_id))
    m = layout.nch
    pos = _FIXED
    acc = 0
    nb = 0
    w = [0] * m
    for k in range(m):
        while nb < 5:
            acc |= rec[pos] << nb
            pos += 1
            nb += 8
        w[k] = acc & 31
        acc >>= 5
        nb -= 5
    pos = _FIXED + layout.wbytes
    modes = layout.modes
    prev = [0] * m
    for k in range(m):
        if modes[k] == DELTA:
            prev[k] = struct.unpack_from("<i", rec, pos)[0]
            pos += 4
    rowbits = sum(w)
    if n == 0 or pos + 2 * c + (n * rowbits + 7) // 8 > len(rec):
        raise ValueError("profile record: inconsistent header (n=%d, widths %r)" % (n, w))
    chg = []
    for _ in range(c):
        chg.append((rec[pos], rec[pos + 1]))
        pos += 2
    acc = 0
    nb = 0
    ci = 0
    period = layout.period
    for r in range(n):
        while ci < len(chg) and chg[ci][0] == r:
            st = chg[ci][1]
            ci += 1
        vals = []
        for k in range(m):
            wk = w[k]
            x = 0
            if wk:
                while nb < wk:
                    acc |= rec[pos] << nb
                    pos += 1
                    nb += 8
                x = acc & ((1 << wk) - 1)
                acc >>= wk
                nb -= wk
            md = modes[k]
            if md == SIGNED:
                x = _unzz(x)
            elif md == DELTA:
                x = prev[k] + _unzz(x)
                prev[k] = x
            vals.append(x)
        yield t0 + r * period, st, tuple(vals)


def capacity(layout, rows_per_record, flash_bytes=512 * 1024, sector=4096, slot=256,
             reserve=1):
    """(records kept, rows kept, days kept) of a ring log holding these records, counting
    only the ``(sectors - reserve - 1)`` full sectors of ``slots - 1`` records that are
    always kept (``RingLog.min_kept`` is one record more; slot 0 of each sector is its
    header; see lib/flashstore/ringlog.py)."""
    sectors = flash_bytes // sector
    recs = (sectors - reserve - 1) * (sector // slot - 1)
    rows = recs * rows_per_record
    return recs, rows, rows * layout.period / 86400
