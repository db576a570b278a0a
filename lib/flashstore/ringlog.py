"""Power-cut-safe, wear-levelled rings of fixed-size records on NOR flash.

:class:`SectorRing` is the engine shared by the register journal (lib/flashstore/journal.py) and by
:class:`RingLog` (load profiles, event logs). It runs over any object with the flash interface
of lib/flashstore/flash.py (``read/program/erase``, ``size``, ``sector_size``, ``page_size``),
normally a ``flash.Partition``.

On-flash format (record layout version ``FORMAT`` = 1, little-endian). Each sector is cut into
equal slots of ``slot_size`` bytes; slot 0 holds the sector header, slots 1.. hold one record
each::

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

CRC-32 is the IEEE 802.3 polynomial of ``binascii.crc32``. ``slot_size`` is the smallest
divisor of the page size that holds 16 + payload bytes (or a whole number of pages for larger
payloads), so a record never crosses a page and costs exactly one page program.

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

Damaged sector headers (bit flips after the fact). A record proves itself: its own magic,
format, CRC-32 and sequence number. So a sector whose header is unreadable (bad magic or CRC)
but not blank is *salvaged*: its slots are scanned with every possible slot size (the one in
the damaged header, ours, the others the geometry allows; the size that yields the most valid
records wins) and its valid records take part in "newest wins" like any other. Such a sector
is "damaged": never appended to (its header proves nothing) and, like every sector, erased
only in rotation, i.e. only once the newest record lies elsewhere, so everything in it is
proven older. ``salvaged`` counts the records read from damaged sectors and
``newest_damaged`` says the newest record lies in one: the caller should rewrite it into a
good sector (lib/flashstore/journal.py, firmware/meter/storage.py do) and log the recovery. A
torn erase leaves a damaged sector too; what it still holds is older than the newest record,
so nothing changes.

Versions. ``FORMAT`` is the layout of headers and records; the journal's payload schema is a
separate version (the record's tag, lib/flashstore/journal.py). A sector with a valid header
of another format, another kind of ring or an impossible slot size is "foreign", and so is a
record of our layout (valid CRC) whose format byte differs. Foreign content may hold newer
data this firmware cannot read (a downgrade after an update that changed the format), so a
ring with any foreign sector or record is *write-protected*: no append, no erase, not even of
its own older sectors, until ``format()`` is called explicitly (status ``STATUS_FOREIGN``). A
firmware that introduces ``FORMAT`` 2 must keep reading format-1 sectors here (a decoder per known
older format in ``_check``) so that its own rings migrate instead of being refused.

Small ints. The power-fail path must not allocate on a 32-bit MicroPython core, where a small
int holds only 31 bits (values >= 2**30 are heap-allocated long ints). So an append keeps the
sequence number as two 16-bit halves and computes the record's CRC-32 in two 16-bit halves
(:func:`crc32_feed`, table-driven, equal to ``binascii.crc32``); urgent appends return None
instead of the (possibly long) sequence number. Scans at mount time may allocate and use
``binascii.crc32``.

Scan counters after ``mount()``/``recover()``: ``records`` (valid), ``torn`` (invalid record in
the last written slot of its sector: an interrupted append), ``corrupt`` (any other invalid
record), ``blank_sectors``, ``dirty_sectors`` (torn erase/header or garbage, nothing valid
inside), ``damaged_sectors`` (header unreadable, valid records salvaged), ``salvaged``,
``foreign_sectors`` and ``foreign_records``. Sectors written with another (possible) slot
size, e.g. by firmware with a smaller payload, stay readable; new records then start in the
next sector.
"""

import binascii
import struct
from array import array

from micropython import const

FORMAT = const(1)
KIND_JOURNAL = const(1)
KIND_RINGLOG = const(2)

_HDR = const(16)
_SEC_M0 = const(0x53)  # "S"
_SEC_M1 = const(0x52)  # "R"
_REC_M0 = const(0x52)  # "R"
_REC_M1 = const(0x43)  # "C"
_HFMT = const("<BBBBIHH")  # sector header bytes 0..11, CRC-32 follows at 12
_RFMT = const("<BBBBHHHH")  # record header bytes 0..11: the u32 sequence number as two u16 halves

# sector states
_BLANK = const(0)  # all 0xFF, no header: needs only a header program
_READY = const(1)  # header valid, no record yet
_USED = const(2)  # header valid, records written
_DIRTY = const(3)  # needs an erase, holds no valid record
_FOREIGN = const(4)  # valid header of another format/kind/geometry
_DAMAGED = const(5)  # header unreadable but valid records inside (salvaged): erase in turn

STATUS_OK = "ok"
STATUS_BLANK = "blank"
STATUS_CORRUPT = "corrupt"
STATUS_FOREIGN = "foreign"

# The read buffer, shared by every ring (RAM, issue 12: one slot-sized buffer per meter, not
# one per ring): a read's view is used and copied out before the method returns, and the
# power-fail path (appends) never reads. Grown to the largest read; salvaging shrinks it back.
_rbuf = bytearray(0)
# 0xFF bytes to compare slots with, and views of them by length (SectorRing._blank): shared by
# every ring like _rbuf (a scan uses them within one call)
_ff = b""
_blanks = {}
# CRC-32 register of an append, two 16-bit halves: shared by every ring, as an append runs to
# its end without yielding (no await; the power-fail interrupt only sets a flag, the urgent
# commit runs in a task: firmware/tasks/storage.py)
_crc = array("H", (0, 0))


def _zeros(code, n):
    # a per-sector table: 16-bit where the values fit (RAM: half a list's words)
    return array(code, [0] * n)


# CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) table as two 16-bit halves, so that no
# intermediate value of an append exceeds 16 bits (see "Small ints" above): entry i is the
# register after 8 shifts of i, low and high half. Constant tuples: in flash when frozen (no
# RAM; they were two 512-byte arrays built at import, issue 12); test_ringlog checks them.
_TLO = (
    0x0000, 0x3096, 0x612C, 0x51BA, 0xC419, 0xF48F, 0xA535, 0x95A3, 0x8832, 0xB8A4, 0xE91E, 0xD988,
    0x4C2B, 0x7CBD, 0x2D07, 0x1D91, 0x1064, 0x20F2, 0x7148, 0x41DE, 0xD47D, 0xE4EB, 0xB551, 0x85C7,
    0x9856, 0xA8C0, 0xF97A, 0xC9EC, 0x5C4F, 0x6CD9, 0x3D63, 0x0DF5, 0x20C8, 0x105E, 0x41E4, 0x7172,
    0xE4D1, 0xD447, 0x85FD, 0xB56B, 0xA8FA, 0x986C, 0xC9D6, 0xF940, 0x6CE3, 0x5C75, 0x0DCF, 0x3D59,
    0x30AC, 0x003A, 0x5180, 0x6116, 0xF4B5, 0xC423, 0x9599, 0xA50F, 0xB89E, 0x8808, 0xD9B2, 0xE924,
    0x7C87, 0x4C11, 0x1DAB, 0x2D3D, 0x4190, 0x7106, 0x20BC, 0x102A, 0x8589, 0xB51F, 0xE4A5, 0xD433,
    0xC9A2, 0xF934, 0xA88E, 0x9818, 0x0DBB, 0x3D2D, 0x6C97, 0x5C01, 0x51F4, 0x6162, 0x30D8, 0x004E,
    0x95ED, 0xA57B, 0xF4C1, 0xC457, 0xD9C6, 0xE950, 0xB8EA, 0x887C, 0x1DDF, 0x2D49, 0x7CF3, 0x4C65,
    0x6158, 0x51CE, 0x0074, 0x30E2, 0xA541, 0x95D7, 0xC46D, 0xF4FB, 0xE96A, 0xD9FC, 0x8846, 0xB8D0,
    0x2D73, 0x1DE5, 0x4C5F, 0x7CC9, 0x713C, 0x41AA, 0x1010, 0x2086, 0xB525, 0x85B3, 0xD409, 0xE49F,
    0xF90E, 0xC998, 0x9822, 0xA8B4, 0x3D17, 0x0D81, 0x5C3B, 0x6CAD, 0x8320, 0xB3B6, 0xE20C, 0xD29A,
    0x4739, 0x77AF, 0x2615, 0x1683, 0x0B12, 0x3B84, 0x6A3E, 0x5AA8, 0xCF0B, 0xFF9D, 0xAE27, 0x9EB1,
    0x9344, 0xA3D2, 0xF268, 0xC2FE, 0x575D, 0x67CB, 0x3671, 0x06E7, 0x1B76, 0x2BE0, 0x7A5A, 0x4ACC,
    0xDF6F, 0xEFF9, 0xBE43, 0x8ED5, 0xA3E8, 0x937E, 0xC2C4, 0xF252, 0x67F1, 0x5767, 0x06DD, 0x364B,
    0x2BDA, 0x1B4C, 0x4AF6, 0x7A60, 0xEFC3, 0xDF55, 0x8EEF, 0xBE79, 0xB38C, 0x831A, 0xD2A0, 0xE236,
    0x7795, 0x4703, 0x16B9, 0x262F, 0x3BBE, 0x0B28, 0x5A92, 0x6A04, 0xFFA7, 0xCF31, 0x9E8B, 0xAE1D,
    0xC2B0, 0xF226, 0xA39C, 0x930A, 0x06A9, 0x363F, 0x6785, 0x5713, 0x4A82, 0x7A14, 0x2BAE, 0x1B38,
    0x8E9B, 0xBE0D, 0xEFB7, 0xDF21, 0xD2D4, 0xE242, 0xB3F8, 0x836E, 0x16CD, 0x265B, 0x77E1, 0x4777,
    0x5AE6, 0x6A70, 0x3BCA, 0x0B5C, 0x9EFF, 0xAE69, 0xFFD3, 0xCF45, 0xE278, 0xD2EE, 0x8354, 0xB3C2,
    0x2661, 0x16F7, 0x474D, 0x77DB, 0x6A4A, 0x5ADC, 0x0B66, 0x3BF0, 0xAE53, 0x9EC5, 0xCF7F, 0xFFE9,
    0xF21C, 0xC28A, 0x9330, 0xA3A6, 0x3605, 0x0693, 0x5729, 0x67BF, 0x7A2E, 0x4AB8, 0x1B02, 0x2B94,
    0xBE37, 0x8EA1, 0xDF1B, 0xEF8D,
)
_THI = (
    0x0000, 0x7707, 0xEE0E, 0x9909, 0x076D, 0x706A, 0xE963, 0x9E64, 0x0EDB, 0x79DC, 0xE0D5, 0x97D2,
    0x09B6, 0x7EB1, 0xE7B8, 0x90BF, 0x1DB7, 0x6AB0, 0xF3B9, 0x84BE, 0x1ADA, 0x6DDD, 0xF4D4, 0x83D3,
    0x136C, 0x646B, 0xFD62, 0x8A65, 0x1401, 0x6306, 0xFA0F, 0x8D08, 0x3B6E, 0x4C69, 0xD560, 0xA267,
    0x3C03, 0x4B04, 0xD20D, 0xA50A, 0x35B5, 0x42B2, 0xDBBB, 0xACBC, 0x32D8, 0x45DF, 0xDCD6, 0xABD1,
    0x26D9, 0x51DE, 0xC8D7, 0xBFD0, 0x21B4, 0x56B3, 0xCFBA, 0xB8BD, 0x2802, 0x5F05, 0xC60C, 0xB10B,
    0x2F6F, 0x5868, 0xC161, 0xB666, 0x76DC, 0x01DB, 0x98D2, 0xEFD5, 0x71B1, 0x06B6, 0x9FBF, 0xE8B8,
    0x7807, 0x0F00, 0x9609, 0xE10E, 0x7F6A, 0x086D, 0x9164, 0xE663, 0x6B6B, 0x1C6C, 0x8565, 0xF262,
    0x6C06, 0x1B01, 0x8208, 0xF50F, 0x65B0, 0x12B7, 0x8BBE, 0xFCB9, 0x62DD, 0x15DA, 0x8CD3, 0xFBD4,
    0x4DB2, 0x3AB5, 0xA3BC, 0xD4BB, 0x4ADF, 0x3DD8, 0xA4D1, 0xD3D6, 0x4369, 0x346E, 0xAD67, 0xDA60,
    0x4404, 0x3303, 0xAA0A, 0xDD0D, 0x5005, 0x2702, 0xBE0B, 0xC90C, 0x5768, 0x206F, 0xB966, 0xCE61,
    0x5EDE, 0x29D9, 0xB0D0, 0xC7D7, 0x59B3, 0x2EB4, 0xB7BD, 0xC0BA, 0xEDB8, 0x9ABF, 0x03B6, 0x74B1,
    0xEAD5, 0x9DD2, 0x04DB, 0x73DC, 0xE363, 0x9464, 0x0D6D, 0x7A6A, 0xE40E, 0x9309, 0x0A00, 0x7D07,
    0xF00F, 0x8708, 0x1E01, 0x6906, 0xF762, 0x8065, 0x196C, 0x6E6B, 0xFED4, 0x89D3, 0x10DA, 0x67DD,
    0xF9B9, 0x8EBE, 0x17B7, 0x60B0, 0xD6D6, 0xA1D1, 0x38D8, 0x4FDF, 0xD1BB, 0xA6BC, 0x3FB5, 0x48B2,
    0xD80D, 0xAF0A, 0x3603, 0x4104, 0xDF60, 0xA867, 0x316E, 0x4669, 0xCB61, 0xBC66, 0x256F, 0x5268,
    0xCC0C, 0xBB0B, 0x2202, 0x5505, 0xC5BA, 0xB2BD, 0x2BB4, 0x5CB3, 0xC2D7, 0xB5D0, 0x2CD9, 0x5BDE,
    0x9B64, 0xEC63, 0x756A, 0x026D, 0x9C09, 0xEB0E, 0x7207, 0x0500, 0x95BF, 0xE2B8, 0x7BB1, 0x0CB6,
    0x92D2, 0xE5D5, 0x7CDC, 0x0BDB, 0x86D3, 0xF1D4, 0x68DD, 0x1FDA, 0x81BE, 0xF6B9, 0x6FB0, 0x18B7,
    0x8808, 0xFF0F, 0x6606, 0x1101, 0x8F65, 0xF862, 0x616B, 0x166C, 0xA00A, 0xD70D, 0x4E04, 0x3903,
    0xA767, 0xD060, 0x4969, 0x3E6E, 0xAED1, 0xD9D6, 0x40DF, 0x37D8, 0xA9BC, 0xDEBB, 0x47B2, 0x30B5,
    0xBDBD, 0xCABA, 0x53B3, 0x24B4, 0xBAD0, 0xCDD7, 0x54DE, 0x23D9, 0xB366, 0xC461, 0x5D68, 0x2A6F,
    0xB40B, 0xC30C, 0x5A05, 0x2D02,
)


def crc32_feed(st, data):
    """Run the CRC-32 register ``st`` (a list ``[lo16, hi16]``) over ``data`` (bytes-like).

    Start with ``[0xFFFF, 0xFFFF]``; the CRC is then ``(hi ^ 0xFFFF) << 16 | (lo ^ 0xFFFF)``,
    the value ``binascii.crc32`` returns. Every intermediate is < 2**16: allocation-free on a
    32-bit port (checked with heap_lock in host_tests/unit/test_ringlog.py)."""
    lo = st[0]
    hi = st[1]
    tlo = _TLO
    thi = _THI
    for b in data:
        i = (lo ^ b) & 0xFF
        lo = ((lo >> 8) | ((hi & 0xFF) << 8)) ^ tlo[i]
        hi = (hi >> 8) ^ thi[i]
    st[0] = lo
    st[1] = hi


def crc32(data, value=0):
    """``binascii.crc32(data, value)`` through :func:`crc32_feed` (an int; for tests and tools,
    not allocation-free when the result is >= 2**30)."""
    v = value ^ 0xFFFFFFFF
    st = [v & 0xFFFF, v >> 16]
    crc32_feed(st, data)
    return ((st[1] ^ 0xFFFF) << 16) | (st[0] ^ 0xFFFF)


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

    # RAM (issue 12): a MicroPython instance keeps its attributes in a hash table that grows
    # through 29, 37, 47, 59 slots of 8 bytes; a ring keeps at most 37 (one per ring of the
    # meter: the journal, the event, billing, audit and profile rings). So the kind is a class
    # attribute (set on the instance only for another kind, a bare SectorRing in tests), the
    # page size the flash's, RingLog's capacity and min_kept properties, the scan's best record
    # one list; the log callable too is a class attribute unless one is given.
    _kind = 0
    _log = None

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
        if kind != self._kind:
            self._kind = kind
        self._max = payload_max
        if log is not None:
            self._log = log
        self.sector_size = ss
        self.slot_size = slot
        self.slots_per_sector = ss // slot
        self.sectors = n
        self.reserve = reserve
        # the record being appended (and a sector header being programmed: _format): the
        # record's bytes only, not its slot's (only they are programmed)
        need = _HDR + payload_max
        self._rec = bytearray(need)
        # views made once, so that an append of the configured size allocates nothing
        mv = memoryview(self._rec)
        self._v_hdr = mv[0:12]
        self._v_body = mv[_HDR:need]
        self._chunks = self._split(need)
        self._state = bytearray(n)
        # per sector: slots used, first sequence number as two 16-bit halves (hi -1: no valid
        # record); the slot size only where it is not ours (a sector salvaged or written with
        # another payload size: {sector: bytes}); the erase counts stay in the sector headers
        # (read again when a sector is prepared), only their maximum here (RAM, issue 12)
        self._odd = {}
        self._fill = _zeros("B" if ss // (_HDR + 1) < 256 else "H", n)  # (slots > 16 bytes)
        self._first_hi = _zeros("i", n)
        for i in range(n):
            self._first_hi[i] = -1
        self._first_lo = _zeros("H", n)
        self._emax = 0
        self._head = n - 1
        self._slot = self.slots_per_sector
        self._newest = -1
        self._best = [-1, -1, 0]  # the last scan's newest record: [seq (-1: none), sector, slot]
        self._seq_lo = 1  # next sequence number, as two 16-bit halves (small ints)
        self._seq_hi = 0
        self._mounted = False
        self._blocked = False
        self.status = None
        self.newest_damaged = False
        self.records = self.torn = self.corrupt = self.salvaged = 0
        self.blank_sectors = self.dirty_sectors = self.damaged_sectors = 0
        self.foreign_sectors = self.foreign_records = 0

    # ---- helpers ------------------------------------------------------------------------
    def _split(self, need):
        """[(offset, view)] of the record's first ``need`` bytes cut at page boundaries."""
        p = self._flash.page_size
        mv = memoryview(self._rec)
        if self.slot_size <= p:
            return [(0, mv[0:need])]
        out = []
        i = 0
        while i < need:
            c = min(p, need - i)
            out.append((i, mv[i : i + c]))
            i += c
        return out

    def _say(self, msg):
        if self._log is not None:
            self._log(msg)

    def _blank(self, n):
        """``n`` bytes of 0xFF: a view of one shared buffer, kept per size. (Salvaging probes
        many slot sizes: a bytes object per size added up to ~90 KB on 16 KiB sectors with
        16-byte rows, a MemoryError at boot on a device.)"""
        global _ff, _blanks
        b = _blanks.get(n)
        if b is None:
            if len(_ff) < n:
                _ff = b"\xff" * n
                _blanks = {}  # the views of the shorter buffer go with it
            b = memoryview(_ff)[:n]
            _blanks[n] = b
        return b

    def _read(self, addr, n):
        global _rbuf
        b = _rbuf
        if len(b) < n:
            b = _rbuf = bytearray(n)
        mv = memoryview(b)[:n]
        self._flash.read(addr, mv)
        return mv

    def _valid_ssz(self, ssz):
        p = self._flash.page_size
        return _HDR < ssz <= self.sector_size // 2 and (p % ssz == 0 or ssz % p == 0)

    def _sizes(self, s, hint):
        """Slot sizes to try on damaged sector ``s``: ours, ``hint`` (the slot size field of
        its damaged header) and every other possible size whose slot 1 or 2 starts with a
        record magic (two 4-byte reads per size: cheap even for 16-byte program rows)."""
        out = [self.slot_size]
        if hint != self.slot_size and self._valid_ssz(hint):
            out.append(hint)
        p = self._flash.page_size
        base = s * self.sector_size
        for d in range(_HDR + 1, self.sector_size // 2 + 1):
            if d in out or not (p % d == 0 or d % p == 0):
                continue
            for k in (1, 2):
                if (k + 1) * d > self.sector_size:
                    break
                h = self._read(base + k * d, 4)
                if h[0] == _REC_M0 and h[1] == _REC_M1:
                    out.append(d)
                    break
        return out

    def _check(self, mv, ssz):
        """Sequence number of the record in ``mv`` (``ssz`` bytes); -1 if invalid, -2 if a
        valid record of our layout carries another format number (foreign)."""
        if mv[0] != _REC_M0 or mv[1] != _REC_M1:
            return -1
        seq, ln = struct.unpack_from("<IH", mv, 4)
        if ln > ssz - _HDR:
            return -1
        crc = struct.unpack_from("<I", mv, 12)[0]
        if binascii.crc32(mv[_HDR : _HDR + ln], binascii.crc32(mv[0:12])) != crc:
            return -1
        if mv[2] != FORMAT:
            return -2
        return seq

    def _sector_header(self, s):
        """(state, slot size, erase count) of sector ``s`` from its header; for a dirty sector
        the slot size field as read (a hint for salvaging) instead of the slot size."""
        ss = self.sector_size
        base = s * ss
        h = self._read(base, _HDR)
        if h == self._blank(_HDR):
            step = max(self.slot_size, len(_rbuf))
            off = _HDR
            while off < ss:
                n = min(step, ss - off)
                if self._read(base + off, n) != self._blank(n):
                    return _DIRTY, 0, 0
                off += n
            return _BLANK, 0, 0
        hint = h[8] | h[9] << 8
        if h[0] != _SEC_M0 or h[1] != _SEC_M1:
            return _DIRTY, hint, 0
        crc = struct.unpack_from("<I", h, 12)[0]
        if binascii.crc32(h[0:12]) != crc:
            return _DIRTY, hint, 0
        _m0, _m1, fmt, kind, erases, ssz, _r = struct.unpack_from(_HFMT, h, 0)
        if fmt != FORMAT or kind != self._kind or not self._valid_ssz(ssz):
            return _FOREIGN, 0, erases
        return _READY, ssz, erases

    # ---- scan ---------------------------------------------------------------------------
    def _scan_slots(self, s, ssz, count_only=False):
        """Scan the slots of sector ``s`` as ``ssz``-byte slots. Returns the number of valid
        records (``count_only``: valid or foreign records, without side effects); otherwise
        also updates the counters, ``_first_*``/``_fill`` and the running best
        (``self._best``: [seq, sector, slot])."""
        base = s * self.sector_size
        blank = self._blank(ssz)
        valid = last = bad = 0
        last_bad = False
        for k in range(1, self.sector_size // ssz):
            mv = self._read(base + k * ssz, ssz)
            if mv == blank:
                continue
            last = k
            seq = self._check(mv, ssz)
            if seq == -2:  # a record of our layout and another format: proves itself too
                last_bad = False
                if count_only:
                    valid += 1
                else:
                    self.foreign_records += 1
                continue
            if seq < 0:
                bad += 1
                last_bad = True
                continue
            last_bad = False
            valid += 1
            if count_only:
                continue
            if self._first_hi[s] < 0:
                self._first_hi[s] = (seq >> 16) & 0xFFFF
                self._first_lo[s] = seq & 0xFFFF
            b = self._best
            if seq > b[0]:
                b[0] = seq
                b[1] = s
                b[2] = k
        if not count_only:
            self.records += valid
            if bad:
                if last_bad:
                    self.torn += 1
                    bad -= 1
                self.corrupt += bad
            self._fill[s] = last + 1
        return valid

    def _scan(self):
        """Read every sector header and record; set counters, head and next sequence.
        Returns the newest record's sequence number (-1: none)."""
        for _ in self._scan_steps():
            pass
        return self._best[0]

    def _scan_steps(self):
        """:meth:`_scan` as a generator that yields after each sector (a caller on an event
        loop reads one sector per turn); the result is then in ``_best``."""
        global _rbuf, _ff, _blanks
        self._mounted = False
        self.records = self.torn = self.corrupt = self.salvaged = 0
        self.blank_sectors = self.dirty_sectors = self.damaged_sectors = 0
        self.foreign_sectors = self.foreign_records = 0
        self._best = [-1, -1, 0]
        self._emax = 0
        for s in range(self.sectors):
            if s:
                yield s
            st, ssz, er = self._sector_header(s)
            if er > self._emax:
                self._emax = er
            self._odd.pop(s, None)
            self._first_hi[s] = -1
            self._fill[s] = 0
            self._state[s] = st
            if st == _BLANK:
                self.blank_sectors += 1
                continue
            if st == _FOREIGN:
                self.foreign_sectors += 1
                continue
            if st == _DIRTY:  # header unreadable: salvage the records it may still hold
                best_n = 0
                for size in self._sizes(s, ssz):
                    c = self._scan_slots(s, size, True)
                    if c > best_n:
                        best_n = c
                        ssz = size
                if best_n == 0:
                    self.dirty_sectors += 1
                    continue
                self._state[s] = _DAMAGED
                self.damaged_sectors += 1
            if ssz != self.slot_size:
                self._odd[s] = ssz
            n = self._scan_slots(s, ssz)
            if st == _DIRTY:
                self.salvaged += n
            if st == _READY and n == 0 and self._fill[s] == 1 and ssz == self.slot_size:
                continue  # header only, our geometry: READY (another slot size: erase first)
            if st == _READY:
                self._state[s] = _USED
        best_seq, best_sec, _slot = self._best
        if self.damaged_sectors or self.dirty_sectors:  # drop what salvaging grew
            _blanks = {}
            _ff = b""
            if len(_rbuf) > self.slot_size:
                _rbuf = bytearray(self.slot_size)
        self._blocked = self.foreign_sectors > 0 or self.foreign_records > 0
        self.newest_damaged = False
        if best_seq >= 0:
            self._newest = best_sec
            self._head = best_sec
            self._set_seq(best_seq + 1)
            if self._state[best_sec] == _DAMAGED:
                self.newest_damaged = True
                self._slot = self.slots_per_sector  # its header proves nothing: no appends
            elif best_sec not in self._odd:
                self._slot = self._fill[best_sec]
            else:  # written with another geometry: continue in the next sector
                self._slot = self.slots_per_sector
        else:
            self._newest = -1
            self._head = self.sectors - 1  # a virtual full head: the first record goes to 0
            self._slot = self.slots_per_sector
            self._set_seq(1)
        self._mounted = True

    def _set_seq(self, seq):
        self._seq_lo = seq & 0xFFFF
        self._seq_hi = (seq >> 16) & 0xFFFF

    def _summary(self):
        s = "%d records, %d torn, %d corrupt, %d blank/%d dirty/%d foreign sectors" % (
            self.records,
            self.torn,
            self.corrupt,
            self.blank_sectors,
            self.dirty_sectors,
            self.foreign_sectors,
        )
        if self.damaged_sectors:
            s += ", %d records salvaged from %d sectors with a damaged header" % (
                self.salvaged, self.damaged_sectors)
        if self.foreign_records:
            s += ", %d foreign records" % self.foreign_records
        return s

    # ---- sector preparation -------------------------------------------------------------
    def _format(self, s, erases):
        # built in the record buffer: no append is under way (they prepare before they build)
        h = self._rec
        struct.pack_into(_HFMT, h, 0, _SEC_M0, _SEC_M1, FORMAT, self._kind, erases,
                         self.slot_size, 0)
        struct.pack_into("<I", h, 12, binascii.crc32(self._v_hdr))
        self._flash.program(s * self.sector_size, memoryview(h)[0:_HDR])

    def _header_erases(self, s):
        """The erase count in the header of sector ``s`` as read from the flash, or -1 when
        the header is not valid (magic, CRC-32)."""
        h = self._read(s * self.sector_size, _HDR)
        if h[0] != _SEC_M0 or h[1] != _SEC_M1:
            return -1
        if binascii.crc32(h[0:12]) != struct.unpack_from("<I", h, 12)[0]:
            return -1
        return struct.unpack_from("<I", h, 4)[0]

    def _prepare(self, s):
        """Make sector ``s`` READY: erase unless blank, then program its header (erase count:
        the sector's own + 1, or the ring's highest + 1 when its header is not known)."""
        st = self._state[s]
        er = self._header_erases(s) if st == _READY or st == _USED else -1
        if er < 0:
            er = self._emax
        self._state[s] = _DIRTY
        self._first_hi[s] = -1
        self._fill[s] = 0
        if st != _BLANK:
            self._flash.erase(s * self.sector_size)
            er += 1
        self._format(s, er)
        self._state[s] = _READY
        self._odd.pop(s, None)
        self._fill[s] = 1
        if er > self._emax:
            self._emax = er

    def maintain(self, max_erases=1):
        """Prepare the ``reserve`` sectors ahead of the head; return the number of erases.

        Call at a quiet time (after a periodic commit, at boot after recovery). Each erase
        blocks for one sector erase (W25Q16JV tSE typ 45 ms, max 400 ms); at most
        ``max_erases`` erases are done per call. Blank sectors need only a header program.
        Never erases the sector holding the newest valid record (so a sector is erased only
        when every valid record in it is older than the newest). Does nothing on a
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

    @property
    def blocked(self):
        """True while the ring is write-protected (foreign content found by the last scan)."""
        return self._blocked

    def block(self):
        """Write-protect the ring until ``format()`` (e.g. when it cannot be read)."""
        self._blocked = True

    def format(self):
        """Erase and format every sector (all records lost); clears a write protection.

        Blocks for one sector erase per sector (W25Q16JV: 16 x 45 ms typ, 400 ms max). A cut
        leaves the sectors not yet erased as they were: a foreign image stays foreign."""
        self._mounted = True
        self._blocked = False
        for s in range(self.sectors):
            self._state[s] = _DIRTY
            self._prepare(s)
        self._newest = -1
        self._head = self.sectors - 1
        self._slot = self.slots_per_sector
        self._set_seq(1)
        self.newest_damaged = False
        self.foreign_sectors = self.foreign_records = 0
        self.status = STATUS_BLANK
        self._say("storage: partition formatted, all records erased")

    def wear(self):
        """Erase count of each sector as recorded in the sector headers (list of ints).

        Read from the flash (one header read per sector); 0 for a sector without a valid
        header (blank, torn erase). Such a sector continues from the ring's maximum when it is
        prepared.
        """
        return [max(0, self._header_erases(s)) for s in range(self.sectors)]

    def _first_seq(self, s):
        """First sequence number in sector ``s`` (int), or -1 if it holds no valid record."""
        hi = self._first_hi[s]
        return -1 if hi < 0 else (hi << 16) | self._first_lo[s]

    def next_seq(self):
        """Sequence number the next record gets (int)."""
        return (self._seq_hi << 16) | self._seq_lo

    def position(self):
        """(head sector, next slot, next sequence number), for diagnostics."""
        return self._head, self._slot, self.next_seq()

    # ---- append -------------------------------------------------------------------------
    def _append(self, payload, tag, aux, urgent):
        """Program one record; returns the sequence number, or None if ``urgent`` (the
        power-fail path builds no int that could be long on a 32-bit port)."""
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
        lo = self._seq_lo
        hi = self._seq_hi
        # never reuse a sequence number, even if this program fails
        if lo == 0xFFFF:
            self._seq_lo = 0
            self._seq_hi = (hi + 1) & 0xFFFF
        else:
            self._seq_lo = lo + 1
        r = self._rec
        # byte by byte: a slice assignment r[a:b] = payload builds its slice object on the
        # heap on MicroPython < 1.26 (e.g. 1.25 on the emulated cores, tools/emu)
        for i in range(n):
            r[_HDR + i] = payload[i]
        struct.pack_into(_RFMT, r, 0, _REC_M0, _REC_M1, FORMAT, tag, lo, hi, n, aux)
        if n == self._max:
            body = self._v_body
            chunks = self._chunks
        else:
            body = memoryview(r)[_HDR : _HDR + n]
            chunks = self._split(_HDR + n)
        c = _crc
        c[0] = 0xFFFF
        c[1] = 0xFFFF
        crc32_feed(c, self._v_hdr)
        crc32_feed(c, body)
        struct.pack_into("<HH", r, 12, c[0] ^ 0xFFFF, c[1] ^ 0xFFFF)
        addr = head * self.sector_size + self._slot * self.slot_size
        self._slot += 1  # the slot is used even if the program is cut
        self._fill[head] = self._slot
        for off, view in chunks:
            self._flash.program(addr + off, view)
        self._newest = head
        if self._first_hi[head] < 0:
            self._first_hi[head] = hi
            self._first_lo[head] = lo
        if urgent:
            return None
        return (hi << 16) | lo

    def append_cost(self, payload_len):
        """(page programs, bytes programmed) of one append of ``payload_len`` bytes."""
        need = _HDR + payload_len
        if self.slot_size <= self._flash.page_size:
            return 1, need
        return (need + self._flash.page_size - 1) // self._flash.page_size, need

    def _slot_record(self, s, k):
        """(seq, tag, aux, payload bytes) of sector ``s`` slot ``k``, or None if invalid."""
        ssz = self._odd.get(s, self.slot_size)
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
    Records in a sector whose header was damaged are salvaged (module docstring).
    Call ``mount()`` once before ``append()`` or iteration.
    """

    _kind = KIND_RINGLOG
    _auto = True  # (an instance attribute only when False: RAM, see SectorRing)

    def __init__(self, flash, record_size, reserve=1, log=None, auto_maintain=True):
        SectorRing.__init__(self, flash, KIND_RINGLOG, record_size, reserve, log)
        if not auto_maintain:
            self._auto = False

    @property
    def capacity(self):
        """The most records the log holds (int)."""
        return (self.sectors - self.reserve) * (self.slots_per_sector - 1)

    @property
    def min_kept(self):
        """The fewest of the newest records the log always keeps (int)."""
        return (self.sectors - self.reserve - 1) * (self.slots_per_sector - 1) + 1

    def mount(self):
        """Scan the partition; return the status (STATUS_OK/BLANK/CORRUPT/FOREIGN).

        STATUS_FOREIGN (write-protected until ``format()``) whenever a foreign sector or
        record is present, even beside records of our own; they stay readable."""
        for _ in self.mount_steps():
            pass
        return self.status

    def mount_steps(self):
        """:meth:`mount` as a generator yielding after each sector read (an event loop's task
        mounts a large ring one sector per turn: ``for _ in ring.mount_steps(): await
        asyncio.sleep_ms(0)``); ``status`` is set when it ends. Not mounted meanwhile."""
        yield from self._scan_steps()
        best = self._best[0]
        if self._blocked:
            self.status = STATUS_FOREIGN
        elif best >= 0:
            self.status = STATUS_OK
        elif self.corrupt or self.dirty_sectors:
            self.status = STATUS_CORRUPT
        else:
            self.status = STATUS_BLANK
        self._say("ringlog: %s: %s" % (self.status, self._summary()))

    def append(self, record, tag=0, urgent=False):
        """Append ``record`` (exactly ``record_size`` bytes); return its sequence number (None
        for ``urgent`` appends).

        ``tag``: 0..255 stored with the record. ``urgent=True``: never erase (raises NoSpace
        when no prepared slot is left). Raises ValueError on a wrong size, StorageError when
        not mounted or write-protected.
        """
        if len(record) != self._max:  # the record size
            raise ValueError("record must be %d bytes" % self._max)
        seq = self._append(record, tag, 0, urgent)
        if self._auto and not urgent and self.needs_maintenance():
            self.maintain(1)
        return seq

    def entries(self):
        """Yield ``(seq, tag, record bytes)`` for every valid record, oldest first."""
        order = [s for s in range(self.sectors) if self._first_hi[s] >= 0]
        order = sorted(order, key=self._first_seq)
        for s in order:
            for k in range(1, self._fill[s]):
                r = self._slot_record(s, k)
                if r is not None:
                    yield r[0], r[1], r[3]

    def _before(self, hi, lo, s):
        """The sector read after sector ``s`` (first sequence number ``hi``:``lo``, 16-bit
        halves) in :meth:`entries_newest`: the one with the largest (first sequence number,
        sector) below ``(hi, lo, s)``, or -1. One pass over the per-sector table, small ints
        only, no list."""
        best = -1
        bh = bl = 0
        fh = self._first_hi
        fl = self._first_lo
        for i in range(self.sectors):
            h = fh[i]
            if h < 0 or h > hi:
                continue
            lw = fl[i]
            if h == hi and (lw > lo or (lw == lo and i >= s)):
                continue
            if best < 0 or h > bh or (h == bh and (lw > bl or (lw == bl and i > best))):
                best = i
                bh = h
                bl = lw
        return best

    def entries_newest(self):
        """Yield ``(seq, tag, record bytes)`` for every valid record, newest first: the
        reverse of :meth:`entries` (a record numbered out of order, possible only in a
        damaged ring, is left out). Lazy: a reader that wants the last few records stops
        after them and reads only their slots (the sectors are taken in turn, one pass over
        the per-sector table each, instead of sorting them all first). Records appended
        while the generator is suspended are not yielded, and sequence numbers only go
        down (a sector erased and reused meanwhile is not read twice)."""
        top = self.next_seq()  # (the records there are at this call)
        s = self._before(0x10000, 0, 0)
        while s >= 0:
            hi = self._first_hi[s]
            lo = self._first_lo[s]
            for k in range(self._fill[s] - 1, 0, -1):
                r = self._slot_record(s, k)
                if r is not None and r[0] < top:
                    top = r[0]
                    yield r[0], r[1], r[3]
            s = self._before(hi, lo, s)

    def __iter__(self):
        for _seq, _tag, rec in self.entries():
            yield rec

    def oldest_seq(self):
        """Sequence number of the oldest record still in the ring (int), -1 when empty."""
        best = -1
        for s in range(self.sectors):
            f = self._first_seq(s)
            if f >= 0 and (best < 0 or f < best):
                best = f
        return best

    def get(self, seq):
        """(seq, tag, record bytes) of the record numbered ``seq``, or None when it is not
        in the ring (dropped, torn, never written). Reads one slot when slots and sequence
        numbers run in step in its sector (the normal case), else scans that sector."""
        owner = -1
        start = -1
        for s in range(self.sectors):
            f = self._first_seq(s)
            if 0 <= f <= seq and f > start:
                owner = s
                start = f
        if owner < 0:
            return None
        k = 1 + seq - start
        if k < self._fill[owner]:
            r = self._slot_record(owner, k)
            if r is not None and r[0] == seq:
                return r[0], r[1], r[3]
        for k in range(1, self._fill[owner]):  # a torn slot put them out of step
            r = self._slot_record(owner, k)
            if r is not None and r[0] == seq:
                return r[0], r[1], r[3]
        return None

    def tail_damaged(self):
        """True when the last scan found a slot written after the newest valid record that
        does not read (a cut append, or the newest record lost to a bit flip), or no valid
        record beside damaged ones: the newest sequence number written may be unknown."""
        s = self._newest
        if s < 0:
            return bool(self.corrupt or self.torn or self.dirty_sectors
                        or self.damaged_sectors)
        if self._fill[s] > self._best[2] + 1:  # (the last scan's newest slot)
            return True
        n = (s + 1) % self.sectors  # (the sector the next append goes to)
        return n != s and self._first_hi[n] < 0 and self._fill[n] > 1

    def newest(self):
        """(seq, tag, record bytes) of the newest record, or None when empty."""
        if self._newest < 0:
            return None
        s = self._newest
        last = None
        for k in range(1, self._fill[s]):
            r = self._slot_record(s, k)
            if r is not None and (last is None or r[0] > last[0]):
                last = r
        return None if last is None else (last[0], last[1], last[3])
