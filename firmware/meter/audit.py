# The audit trail of metrological and billing parameters (WELMEC 7.2 style event logger).
"""Audit trail: every change of a legally relevant parameter that the seal does not protect
alone (the clock 0.9.1 / 0.9.2, the meter constant 0.3.0; :data:`PARAMS`) is recorded with an
event counter, the parameter, the old and the new value and a time stamp, in the board's
``audit`` partition (billing reference D4, WELMEC 7.2 as summarised there: to be checked
against the guide's text).

Rules:

- ``CAPACITY`` (100) entries; when they are used, further changes of these parameters are
  refused (the catalogue answers ER09, logged) until the trail is read out (R5 ``P.99``,
  firmware/ports/iec.py) and cleared (E2 ``C.91.7``, only with the seal open: ER06
  otherwise; refused with ER09 while entries were added since the last complete readout).
- The counter never goes back: a clear writes one entry (parameter ``C.91.7``, old = the
  entries cleared, new = 0) that carries it on; the trail shows the entries from the last
  clear entry on (one atomic record: a power cut leaves it whole or cleared). The counter
  and the entries survive a restart (a RingLog of 32-byte slots on >= 4 sectors: at least
  255 records are always kept, more than the capacity, so nothing is ever overwritten
  before a clear).
- Without an ``audit`` partition the trail lives in RAM (lost at a restart).

Record (24 bytes, little-endian): u32 counter, u32 RTC s, 6-byte parameter (lib/events
``pack_subject``), u8 source (events.SRC_*), u8 reserved, i32 old value, i32 new value.
"""

import struct

from micropython import const

import events
from flashstore import ringlog

CAPACITY = const(100)
PARAMS = ("0.9.1", "0.9.2", "0.3.0")
CLEAR = "C.91.7"
RECORD = const(24)
_FMT = "<II6sBBii"
_TAG = const(1)


class AuditTrail:
    """``part``: the ``audit`` partition (flashstore.flash interface, >= 4 sectors) or None;
    ``clock``: ``time()``; ``log``: lib.events.EventLog. ``counter``: the last entry's
    number; ``used``: entries since the last clear; ``full``: no room for a change."""

    def __init__(self, part, clock, log, capacity=CAPACITY):
        self.clock = clock
        self.log = log
        self.capacity = capacity
        self.params = PARAMS
        self.ring = None
        self._ram = []
        self._counter = 0
        self._used = 0
        self.read_at = -1  # counter at the last complete readout
        if part is not None and part.size // part.sector_size < 4:
            raise ValueError("audit partition: at least 4 sectors")
        self._part = part
        self._buf = bytearray(RECORD)
        self._csubj = None
        self._mount()  # at boot: the trail's RAM is taken before the meter's steady state

    def _mount(self):
        p = self._part
        if p is None:
            return
        self._part = None
        self.ring = ringlog.RingLog(p, RECORD)
        self.ring.mount()
        for e in self.entries():
            self._counter = e[0]
            self._used = 0 if e[2] == CLEAR else self._used + 1

    @property
    def counter(self):
        """The last entry's number (never goes back)."""
        self._mount()
        return self._counter

    @property
    def used(self):
        """Entries since the last clear."""
        self._mount()
        return self._used

    @property
    def full(self):
        return self.used >= self.capacity

    def _append(self, obis, old, new, src):
        self._mount()
        self._counter += 1
        b = self._buf
        subj = bytearray(6)
        kind = events.pack_subject(subj, obis)
        struct.pack_into(_FMT, b, 0, self._counter, self.clock.time() & 0xFFFFFFFF,
                         bytes(subj), (src & 7) | kind, 0, old, new)
        if self.ring is not None:
            self.ring.append(b, _TAG)
        else:
            self._ram.append(bytes(b))

    def record(self, obis, old, new, src=events.SRC_METER):
        """Record a change of ``obis`` from ``old`` to ``new`` (ints, 31-bit)."""
        self._append(obis, old, new, src)
        self._used += 1
        if self.full:
            self.log.log(events.AUDIT_FULL, self.used, "audit trail full: changes refused "
                         "until it is read out and cleared (E2 C.91.7, seal open)")

    def entries(self):
        """``(counter, t, parameter, old, new, source)`` oldest first, from the last clear
        entry on (older records stay in flash until the ring overwrites them)."""
        self._mount()
        cs = self._clear_subj()
        first = 0
        for r in self._records():
            if r[8:14] == cs:
                first = struct.unpack_from("<I", r, 0)[0]
        for r in self._records():
            n, t, subj, src, _res, old, new = struct.unpack(_FMT, r)
            if n >= first:
                yield n, t, events.subject_text(src & 0x30, subj), old, new, src & 7

    def _records(self):
        if self.ring is None:
            return iter(self._ram)
        return (r for _s, _t, r in self.ring.entries())

    def _clear_subj(self):
        c = self._csubj
        if c is None:
            b = bytearray(6)
            events.pack_subject(b, CLEAR)
            c = self._csubj = bytes(b)
        return c

    def p99_lines(self, zone, t_from=None, t_to=None):
        """``P.99(Zyymmddhhmmss)(counter)(parameter)(old)(new)(source)`` lines; a complete
        readout (no range) allows the next clear."""
        last = None
        for n, t, obis, old, new, src in self.entries():
            last = n
            if (t_from is None or t >= t_from) and (t_to is None or t <= t_to):
                yield "P.99(%s)(%d)(%s)(%d)(%d)(%s)" % (zone.vdew_stamp(t), n, obis, old, new,
                                                      events.SRC_NAMES[src])
        if t_from is None and t_to is None:
            self.read_at = self._counter if last is None else last

    def clear(self, src=events.SRC_METER):
        """Clear the entries (the caller checked the open seal). Returns False (nothing
        done) while entries were added since the last complete readout."""
        if self.read_at != self.counter:
            return False
        n = self._used
        # one record, written atomically by the ring: a cut leaves the trail either whole
        # or cleared, and the counter is carried on (a format first would lose it)
        self._append(CLEAR, n, 0, src)
        if self.ring is None:
            self._ram = self._ram[-1:]
        self._used = 0
        return True
