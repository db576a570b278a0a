"""Power-cut-safe, wear-levelled rings of fixed-size records on NOR flash.

:class:`SectorRing` is the engine shared by the register journal (lib/journal.py) and by
:class:`RingLog` (load profiles, event logs). It runs over any object with the flash interface
of lib/flash.py (``read/program/erase``, ``size``, ``sector_size``, ``page_size``), normally a
``flash.Partition``.

On-flash format (version ``FORMAT`` = 1, little-endian). Each sector is cut into equal slots of
``slot_size`` bytes; slot 0 holds the sector header, slots 1.. hold one record each::

    sector header (slot 0)              record (slot k >= 1)
    off size field                      off size field
     0   2   magic b"SR"                 0   2   magic b"RC"
     2   1   format (1)                  2   1   format (1)
     3   1   kind (1 journal, 2 log)     3   1   tag (journal: payload schema)
     4   4   erase count of the sector   4   4   sequence number (u32, +1 per record)
     8   2   slot size in bytes          8   2   payload length
    10   2   reserved (0)               10   2   aux (journal: commit reason)
    12   4   CRC-32 of bytes 0..11      12   4   CRC-32 of bytes 0..11 + payload
                                        16   n   payload

CRC-32 is ``binascii.crc32`` (IEEE 802.3 polynomial). ``slot_size`` is the smallest divisor of
the page size that holds 16 + payload bytes (or a whole number of pages for larger payloads),
so a record never crosses a page and costs exactly one page program.

Rules that make it safe against a power cut at any program or erase:

- A sector is written only after it was erased *and* its header was programmed; the header is
  the proof that the erase finished. A sector with a torn erase or a torn header is "dirty" and
  is erased again before use.
- Records are appended in slot order, sectors in ring order; a slot is programmed once, never
  over non-blank bytes. A torn record fails its CRC and is skipped; the next record goes after
  it.
- The newest valid record (highest sequence number) wins. Erasing happens only in
  ``maintain()`` (or in a non-urgent append that finds no prepared sector), never on the sector
  holding the newest valid record, and only on the ``reserve`` sectors ahead of the head, so
  sectors are erased in strict rotation: every sector gets the same number of erases (+-1).
- ``urgent=True`` appends never erase and never read: one page program per record (records up
  to ``page_size - 16`` bytes), or they raise :class:`NoSpace` at once.

Scan counters after ``mount()``/``recover()``: ``records`` (valid), ``torn`` (invalid record in
the last written slot of its sector: an interrupted append), ``corrupt`` (any other invalid
record), ``blank_sectors``, ``dirty_sectors`` (torn erase/header or garbage), and
``foreign_sectors`` (a valid header of another format version or ring kind, or an impossible
slot size). An image with no valid record but a foreign sector is never overwritten
implicitly: writes raise :class:`StorageError` until ``format()`` is called. Sectors written
with another (possible) slot size, e.g. by firmware with a smaller payload, stay readable;
new records then start in the next sector.
"""

import binascii
import struct

from micropython import const

FORMAT = const(1)
KIND_JOURNAL = const(1)
KIND_RINGLOG = const(2)

_HDR = const(16)
_SEC_M0 = const(0x53)  # "S"
_SEC_M1 = const(0x52)  # "R"
_REC_M0 = const(0x52)  # "R"
_REC_M1 = const(0x43)  # "C"
_HFMT = "<BBBBIHH"  # header bytes 0..11, CRC-32 follows at 12

# sector states
_BLANK = const(0)  # all 0xFF, no header: needs only a header program
_READY = const(1)  # header valid, no record yet
_USED = const(2)  # header valid, records written
_DIRTY = const(3)  # needs an erase
_FOREIGN = const(4)  # valid header of another format/kind/geometry

STATUS_OK = "ok"
STATUS_BLANK = "blank"
STATUS_CORRUPT = "corrupt"
STATUS_FOREIGN = "foreign"


class StorageError(Exception):
    """The ring cannot take this write (not mounted, or a foreign image is write-protected)."""


class NoSpace(StorageError):
    """No pre-erased slot is left and the caller did not allow an erase (``urgent=True``)."""


def slot_size(need, page):
    """Slot bytes for a record of ``need`` bytes: smallest divisor of ``page`` >= need, else
    ``need`` rounded up to whole pages."""
    if need <= page:
        s = need
        while page % s:
            s += 1
        return s
    return (need + page - 1) // page * page


class SectorRing:
    """Ring of sectors holding fixed-slot records; see the module docstring for the format.

    ``flash``: flash interface (>= 2 sectors); ``kind``: KIND_JOURNAL or KIND_RINGLOG;
    ``payload_max``: largest payload in bytes (1..65519); ``reserve``: sectors kept erased ahead
    of the head (1 <= reserve < sectors); ``log``: callable taking one str, or None.
    Raises ValueError on impossible geometry.
    """

    def __init__(self, flash, kind, payload_max, reserve=1, log=None):
        ss = flash.sector_size
        n = flash.size // ss
        if not 0 < payload_max <= 0xFFFF - _HDR:
            raise ValueError("payload size out of range")
        slot = slot_size(_HDR + payload_max, flash.page_size)
        if ss // slot < 2:
            raise ValueError("record too large for the sector size")
        if n < 2 or not 1 <= reserve < n:
            raise ValueError("need >= 2 sectors and 1 <= reserve < sectors")
        self._flash = flash
        self._kind = kind
        self._max = payload_max
        self._log = log
        self.sector_size = ss
        self.page_size = flash.page_size
        self.slot_size = slot
        self.slots_per_sector = ss // slot
        self.sectors = n
        self.reserve = reserve
        self._rec = bytearray(slot)
        self._recmv = memoryview(self._rec)
        self._hdr = bytearray(_HDR)
        self._hdrmv = memoryview(self._hdr)
        # views made once, so that an append of the configured size allocates nothing
        need = _HDR + payload_max
        self._v_hdr = self._recmv[0:12]
        self._v_body = self._recmv[_HDR:need]
        self._chunks = self._split(need)
        self._buf = bytearray(slot)
        self._blanks = {}
        self._state = bytearray(n)
        self._ssz = [0] * n
        self._fill = [0] * n
        self._first = [-1] * n
        self._erases = [0] * n
        self._head = n - 1
        self._slot = self.slots_per_sector
        self._newest = -1
        self._best_slot = 0
        self._seq = 1
        self._mounted = False
        self._blocked = False
        self.status = None
        self.records = self.torn = self.corrupt = 0
        self.blank_sectors = self.dirty_sectors = self.foreign_sectors = 0

    # ---- helpers ------------------------------------------------------------------------
    def _split(self, need):
        """[(offset, view)] of the record's first ``need`` bytes cut at page boundaries."""
        p = self.page_size
        if self.slot_size <= p:
            return [(0, self._recmv[0:need])]
        out = []
        i = 0
        while i < need:
            c = min(p, need - i)
            out.append((i, self._recmv[i : i + c]))
            i += c
        return out

    def _say(self, msg):
        if self._log is not None:
            self._log(msg)

    def _blank(self, n):
        b = self._blanks.get(n)
        if b is None:
            b = b"\xff" * n
            self._blanks[n] = b
        return b

    def _read(self, addr, n):
        if len(self._buf) < n:
            self._buf = bytearray(n)
        mv = memoryview(self._buf)[:n]
        self._flash.read(addr, mv)
        return mv

    def _valid_ssz(self, ssz):
        p = self.page_size
        return _HDR < ssz <= self.sector_size // 2 and (p % ssz == 0 or ssz % p == 0)

    def _check(self, mv, ssz):
        """Sequence number of the record in ``mv`` (``ssz`` bytes), or -1 if invalid."""
        if mv[0] != _REC_M0 or mv[1] != _REC_M1 or mv[2] != FORMAT:
            return -1
        seq, ln = struct.unpack_from("<IH", mv, 4)
        if ln > ssz - _HDR:
            return -1
        crc = struct.unpack_from("<I", mv, 12)[0]
        if binascii.crc32(mv[_HDR : _HDR + ln], binascii.crc32(mv[0:12])) != crc:
            return -1
        return seq

    def _sector_header(self, s):
        """(state, slot size, erase count) of sector ``s`` from its header."""
        ss = self.sector_size
        base = s * ss
        h = self._read(base, _HDR)
        if h == self._blank(_HDR):
            step = len(self._buf)
            off = _HDR
            while off < ss:
                n = min(step, ss - off)
                if self._read(base + off, n) != self._blank(n):
                    return _DIRTY, 0, 0
                off += n
            return _BLANK, 0, 0
        if h[0] != _SEC_M0 or h[1] != _SEC_M1:
            return _DIRTY, 0, 0
        crc = struct.unpack_from("<I", h, 12)[0]
        if binascii.crc32(h[0:12]) != crc:
            return _DIRTY, 0, 0
        _m0, _m1, fmt, kind, erases, ssz, _r = struct.unpack_from(_HFMT, h, 0)
        if fmt != FORMAT or kind != self._kind or not self._valid_ssz(ssz):
            return _FOREIGN, 0, erases
        return _READY, ssz, erases

    # ---- scan ---------------------------------------------------------------------------
    def _scan(self):
        """Read every sector header and record; set counters, head and next sequence."""
        ss = self.sector_size
        self.records = self.torn = self.corrupt = 0
        self.blank_sectors = self.dirty_sectors = self.foreign_sectors = 0
        best_seq = -1
        best_sec = -1
        best_slot = 0
        for s in range(self.sectors):
            st, ssz, er = self._sector_header(s)
            self._erases[s] = er
            self._ssz[s] = ssz
            self._first[s] = -1
            self._fill[s] = 0
            if st == _BLANK:
                self.blank_sectors += 1
            elif st == _DIRTY:
                self.dirty_sectors += 1
            elif st == _FOREIGN:
                self.foreign_sectors += 1
            if st != _READY:
                self._state[s] = st
                continue
            base = s * ss
            blank = self._blank(ssz)
            last = 0
            bad = 0
            last_bad = False
            for k in range(1, ss // ssz):
                mv = self._read(base + k * ssz, ssz)
                if mv == blank:
                    continue
                last = k
                seq = self._check(mv, ssz)
                if seq < 0:
                    bad += 1
                    last_bad = True
                    continue
                last_bad = False
                self.records += 1
                if self._first[s] < 0:
                    self._first[s] = seq
                if seq > best_seq:
                    best_seq = seq
                    best_sec = s
                    best_slot = k
            if bad:
                if last_bad:
                    self.torn += 1
                    bad -= 1
                self.corrupt += bad
            self._fill[s] = last + 1
            self._state[s] = _USED if last else _READY
        self._blocked = best_seq < 0 and self.foreign_sectors > 0
        if best_seq >= 0:
            self._newest = best_sec
            self._best_slot = best_slot
            self._head = best_sec
            self._seq = best_seq + 1
            if self._ssz[best_sec] == self.slot_size:
                self._slot = self._fill[best_sec]
            else:  # written with another geometry: continue in the next sector
                self._slot = self.slots_per_sector
        else:
            self._newest = -1
            self._best_slot = 0
            self._head = self.sectors - 1  # a virtual full head: the first record goes to 0
            self._slot = self.slots_per_sector
            self._seq = 1
        self._mounted = True
        return best_seq

    def _summary(self):
        return "%d records, %d torn, %d corrupt, %d blank/%d dirty/%d foreign sectors" % (
            self.records,
            self.torn,
            self.corrupt,
            self.blank_sectors,
            self.dirty_sectors,
            self.foreign_sectors,
        )

    # ---- sector preparation -------------------------------------------------------------
    def _format(self, s, erases):
        h = self._hdr
        struct.pack_into(_HFMT, h, 0, _SEC_M0, _SEC_M1, FORMAT, self._kind, erases,
                         self.slot_size, 0)
        struct.pack_into("<I", h, 12, binascii.crc32(self._hdrmv[0:12]))
        self._flash.program(s * self.sector_size, h)

    def _prepare(self, s):
        """Make sector ``s`` READY: erase unless blank, then program its header."""
        st = self._state[s]
        known = st == _READY or st == _USED
        er = self._erases[s] if known else max(self._erases)
        self._state[s] = _DIRTY
        self._first[s] = -1
        self._fill[s] = 0
        if st != _BLANK:
            self._flash.erase(s * self.sector_size)
            er += 1
        self._format(s, er)
        self._state[s] = _READY
        self._ssz[s] = self.slot_size
        self._fill[s] = 1
        self._erases[s] = er

    def maintain(self, max_erases=1):
        """Prepare the ``reserve`` sectors ahead of the head; return the number of erases.

        Call at a quiet time (after a periodic commit, at boot after recovery). Each erase
        blocks for one sector erase (W25Q16JV tSE typ 45 ms, max 400 ms); at most
        ``max_erases`` erases are done per call. Blank sectors need only a header program.
        Never erases the sector holding the newest valid record. Does nothing on a
        write-protected (foreign) image or before mounting.
        """
        if not self._mounted or self._blocked:
            return 0
        done = 0
        n = self.sectors
        for i in range(1, self.reserve + 1):
            s = (self._head + i) % n
            st = self._state[s]
            if st == _READY:
                continue
            if s == self._newest:
                break
            if st != _BLANK:
                if done >= max_erases:
                    break
                done += 1
            self._prepare(s)
        return done

    def needs_maintenance(self):
        """True if ``maintain()`` has work to do (a reserve sector is not prepared)."""
        if not self._mounted or self._blocked:
            return False
        for i in range(1, self.reserve + 1):
            s = (self._head + i) % self.sectors
            if self._state[s] != _READY and s != self._newest:
                return True
        return False

    def ready_slots(self):
        """Records that can be appended with no erase (head sector + prepared sectors)."""
        if not self._mounted or self._blocked:
            return 0
        sps = self.slots_per_sector
        free = sps - self._slot if self._slot < sps else 0
        for i in range(1, self.sectors):
            s = (self._head + i) % self.sectors
            if self._state[s] != _READY:
                break
            free += sps - 1
        return free

    def format(self):
        """Erase and format every sector (all records lost); clears a write protection."""
        self._mounted = True
        self._blocked = False
        for s in range(self.sectors):
            self._state[s] = _DIRTY
            self._prepare(s)
        self._newest = -1
        self._head = self.sectors - 1
        self._slot = self.slots_per_sector
        self._seq = 1
        self.status = STATUS_BLANK
        self._say("storage: partition formatted, all records erased")

    def wear(self):
        """Erase count of each sector as recorded in the sector headers (list of ints).

        Counts of sectors whose header was lost (torn erase) continue from the ring's maximum.
        """
        return list(self._erases)

    def position(self):
        """(head sector, next slot, next sequence number), for diagnostics."""
        return self._head, self._slot, self._seq

    # ---- append -------------------------------------------------------------------------
    def _append(self, payload, tag, aux, urgent):
        if not self._mounted:
            raise StorageError("mount/recover the ring before writing")
        if self._blocked:
            raise StorageError("foreign image: writes blocked until format()")
        n = len(payload)
        if n > self._max:
            raise ValueError("payload larger than %d bytes" % self._max)
        if self._slot >= self.slots_per_sector:
            nxt = (self._head + 1) % self.sectors
            if self._state[nxt] != _READY:
                if urgent:
                    raise NoSpace("no pre-erased sector left: call maintain() at a quiet time")
                self.maintain(1)
                if self._state[nxt] != _READY:
                    raise NoSpace("cannot prepare the next sector")
            self._head = nxt
            self._slot = 1
            self._state[nxt] = _USED
        head = self._head
        seq = self._seq
        self._seq = seq + 1  # never reuse a sequence number, even if this program fails
        r = self._rec
        r[_HDR : _HDR + n] = payload
        struct.pack_into(_HFMT, r, 0, _REC_M0, _REC_M1, FORMAT, tag, seq, n, aux)
        if n == self._max:
            body = self._v_body
            chunks = self._chunks
        else:
            body = self._recmv[_HDR : _HDR + n]
            chunks = self._split(_HDR + n)
        struct.pack_into("<I", r, 12, binascii.crc32(body, binascii.crc32(self._v_hdr)))
        addr = head * self.sector_size + self._slot * self.slot_size
        self._slot += 1  # the slot is used even if the program is cut
        self._fill[head] = self._slot
        for off, view in chunks:
            self._flash.program(addr + off, view)
        self._newest = head
        if self._first[head] < 0:
            self._first[head] = seq
        return seq

    def append_cost(self, payload_len):
        """(page programs, bytes programmed) of one append of ``payload_len`` bytes."""
        need = _HDR + payload_len
        if self.slot_size <= self.page_size:
            return 1, need
        return (need + self.page_size - 1) // self.page_size, need

    def _slot_record(self, s, k):
        """(seq, tag, aux, payload bytes) of sector ``s`` slot ``k``, or None if invalid."""
        ssz = self._ssz[s]
        mv = self._read(s * self.sector_size + k * ssz, ssz)
        seq = self._check(mv, ssz)
        if seq < 0:
            return None
        tag = mv[3]
        ln, aux = struct.unpack_from("<HH", mv, 8)
        return seq, tag, aux, bytes(mv[_HDR : _HDR + ln])


class RingLog(SectorRing):
    """Fixed-size records, oldest overwritten: load profiles and event logs.

    ``RingLog(flash, record_size, reserve=1, log=None, auto_maintain=True)``; ``record_size``
    in bytes. With ``auto_maintain`` a non-urgent ``append()`` that used up the prepared
    sector erases the next one at once (one sector erase), so one sector is always kept erased
    ahead; urgent appends never erase.
    Capacity: with ``k = slots_per_sector - 1`` records per sector and ``n`` sectors, the log
    holds at most ``capacity = (n - reserve) * k`` records and always keeps at least
    ``min_kept = (n - reserve - 1) * k + 1`` of the newest (whole sectors are dropped at once).
    Call ``mount()`` once before ``append()`` or iteration.
    """

    def __init__(self, flash, record_size, reserve=1, log=None, auto_maintain=True):
        SectorRing.__init__(self, flash, KIND_RINGLOG, record_size, reserve, log)
        self.record_size = record_size
        self._auto = auto_maintain
        k = self.slots_per_sector - 1
        self.capacity = (self.sectors - reserve) * k
        self.min_kept = (self.sectors - reserve - 1) * k + 1

    def mount(self):
        """Scan the partition; return the status (STATUS_OK/BLANK/CORRUPT/FOREIGN)."""
        best = self._scan()
        if best >= 0:
            self.status = STATUS_OK
        elif self._blocked:
            self.status = STATUS_FOREIGN
        elif self.corrupt or self.dirty_sectors:
            self.status = STATUS_CORRUPT
        else:
            self.status = STATUS_BLANK
        self._say("ringlog: %s: %s" % (self.status, self._summary()))
        return self.status

    def append(self, record, tag=0, urgent=False):
        """Append ``record`` (exactly ``record_size`` bytes); return its sequence number.

        ``tag``: 0..255 stored with the record. ``urgent=True``: never erase (raises NoSpace
        when no prepared slot is left). Raises ValueError on a wrong size.
        """
        if len(record) != self.record_size:
            raise ValueError("record must be %d bytes" % self.record_size)
        seq = self._append(record, tag, 0, urgent)
        if self._auto and not urgent and self.needs_maintenance():
            self.maintain(1)
        return seq

    def entries(self):
        """Yield ``(seq, tag, record bytes)`` for every valid record, oldest first."""
        order = [s for s in range(self.sectors) if self._first[s] >= 0]
        order = sorted(order, key=lambda s: self._first[s])
        for s in order:
            for k in range(1, self._fill[s]):
                r = self._slot_record(s, k)
                if r is not None:
                    yield r[0], r[1], r[3]

    def __iter__(self):
        for _seq, _tag, rec in self.entries():
            yield rec

    def newest(self):
        """(seq, tag, record bytes) of the newest record, or None when empty."""
        if self._newest < 0:
            return None
        s = self._newest
        last = None
        for k in range(1, self._fill[s]):
            r = self._slot_record(s, k)
            if r is not None:
                last = r
        return None if last is None else (last[0], last[1], last[3])
