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
- ``urgent=True`` appends never erase: one page program per record (records up to
  ``page_size - 16`` bytes), or they raise :class:`NoSpace` at once.
- The register journal (``KIND_JOURNAL``, lib/flashstore/journal.py "Read-back")
  reads back every record and sector header it programs; a record that did not take is not
  the newest and is written again in the next slot (urgent: once), a header that did not take
  leaves its sector dirty.

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
_WORN = const(6)  # its header did not read back this run (worn cells): passed over, not
# erased again until the next scan (lib/flashstore/worn.py)

_RETRIES = const(2)  # a record that did not read back is written again at most this often

STATUS_OK = "ok"
STATUS_BLANK = "blank"
STATUS_CORRUPT = "corrupt"
STATUS_FOREIGN = "foreign"

# The read buffer, shared by every ring (RAM, issue 12: one slot-sized buffer per meter, not
# one per ring): a read's view is used and copied out before the method returns, and the
# power-fail path (appends) never reads into it (the read-back has _vb). Grown to the
# largest read; salvaging shrinks it back.
_rbuf = bytearray(0)
# 0xFF bytes to compare slots with, and views of them by length (SectorRing._blank): shared by
# every ring like _rbuf (a scan uses them within one call)
_ff = b""
_blanks = {}
# CRC-32 register of an append, two 16-bit halves: shared by every ring, as an append runs to
# its end without yielding (no await; the power-fail interrupt only sets a flag, the urgent
# commit runs in a task: firmware/tasks/storage.py)
_crc = array("H", (0, 0))
# an append's read-back (the register journal's, lib/flashstore/journal.py): 16 bytes of the
# slot at a time, compared with the record; shared by every ring like _crc
_vb = bytearray(_HDR)
# The record buffer of an append (and of a sector header being programmed, ``_format``),
# shared like _crc by every ring whose record fits in it (RAM, issue 12: the meter's rings need
# 32-256 bytes each, 1 248 in all; one buffer of the largest does): an append builds, seals
# and programs its record within one call, and a ring's views of it are made once, so the
# append still allocates nothing. Made by the first ring; a larger record (the uplink's
# outbox, 512 bytes) has its own buffer. So no ring may run inside another's operation: the
# rings call nothing outside flashstore while they hold a record (``log`` only keeps text).
# A test that checks a forked image from inside a flash operation (the NOR model's
# ``on_op``) is a second meter: its rings need a buffer of their own (set ``_srec`` to None
# around them: host_tests/system/test_flash_campaign.py); sharing this one, they overwrite
# the record being programmed (a header of another kind: the journal "foreign").
_SHARED_REC = const(256)
_srec = None


def _zeros(code, n):
    # a per-sector table: 16-bit where the values fit (RAM: half a list's words)
    return array(code, [0] * n)


# CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) table: entry i is the register after 8
# shifts of i, here as its four bytes (_T0 the lowest), so that no intermediate value of an
# append exceeds 16 bits (see "Small ints" above). Bytes constants: in flash when frozen (two
# 512-byte arrays built at import were 1 KB of RAM, issue 12; a tuple of the 16-bit halves
# would be frozen as long-int objects, which allocate in arithmetic); test_ringlog checks them.
_T0 = (  # bits 0..7
    b"\x00\x96\x2c\xba\x19\x8f\x35\xa3\x32\xa4\x1e\x88\x2b\xbd\x07\x91\x64\xf2\x48\xde\x7d\xeb\x51"
    b"\xc7\x56\xc0\x7a\xec\x4f\xd9\x63\xf5\xc8\x5e\xe4\x72\xd1\x47\xfd\x6b\xfa\x6c\xd6\x40\xe3\x75"
    b"\xcf\x59\xac\x3a\x80\x16\xb5\x23\x99\x0f\x9e\x08\xb2\x24\x87\x11\xab\x3d\x90\x06\xbc\x2a\x89"
    b"\x1f\xa5\x33\xa2\x34\x8e\x18\xbb\x2d\x97\x01\xf4\x62\xd8\x4e\xed\x7b\xc1\x57\xc6\x50\xea\x7c"
    b"\xdf\x49\xf3\x65\x58\xce\x74\xe2\x41\xd7\x6d\xfb\x6a\xfc\x46\xd0\x73\xe5\x5f\xc9\x3c\xaa\x10"
    b"\x86\x25\xb3\x09\x9f\x0e\x98\x22\xb4\x17\x81\x3b\xad\x20\xb6\x0c\x9a\x39\xaf\x15\x83\x12\x84"
    b"\x3e\xa8\x0b\x9d\x27\xb1\x44\xd2\x68\xfe\x5d\xcb\x71\xe7\x76\xe0\x5a\xcc\x6f\xf9\x43\xd5\xe8"
    b"\x7e\xc4\x52\xf1\x67\xdd\x4b\xda\x4c\xf6\x60\xc3\x55\xef\x79\x8c\x1a\xa0\x36\x95\x03\xb9\x2f"
    b"\xbe\x28\x92\x04\xa7\x31\x8b\x1d\xb0\x26\x9c\x0a\xa9\x3f\x85\x13\x82\x14\xae\x38\x9b\x0d\xb7"
    b"\x21\xd4\x42\xf8\x6e\xcd\x5b\xe1\x77\xe6\x70\xca\x5c\xff\x69\xd3\x45\x78\xee\x54\xc2\x61\xf7"
    b"\x4d\xdb\x4a\xdc\x66\xf0\x53\xc5\x7f\xe9\x1c\x8a\x30\xa6\x05\x93\x29\xbf\x2e\xb8\x02\x94\x37"
    b"\xa1\x1b\x8d"
)
_T1 = (  # bits 8..15
    b"\x00\x30\x61\x51\xc4\xf4\xa5\x95\x88\xb8\xe9\xd9\x4c\x7c\x2d\x1d\x10\x20\x71\x41\xd4\xe4\xb5"
    b"\x85\x98\xa8\xf9\xc9\x5c\x6c\x3d\x0d\x20\x10\x41\x71\xe4\xd4\x85\xb5\xa8\x98\xc9\xf9\x6c\x5c"
    b"\x0d\x3d\x30\x00\x51\x61\xf4\xc4\x95\xa5\xb8\x88\xd9\xe9\x7c\x4c\x1d\x2d\x41\x71\x20\x10\x85"
    b"\xb5\xe4\xd4\xc9\xf9\xa8\x98\x0d\x3d\x6c\x5c\x51\x61\x30\x00\x95\xa5\xf4\xc4\xd9\xe9\xb8\x88"
    b"\x1d\x2d\x7c\x4c\x61\x51\x00\x30\xa5\x95\xc4\xf4\xe9\xd9\x88\xb8\x2d\x1d\x4c\x7c\x71\x41\x10"
    b"\x20\xb5\x85\xd4\xe4\xf9\xc9\x98\xa8\x3d\x0d\x5c\x6c\x83\xb3\xe2\xd2\x47\x77\x26\x16\x0b\x3b"
    b"\x6a\x5a\xcf\xff\xae\x9e\x93\xa3\xf2\xc2\x57\x67\x36\x06\x1b\x2b\x7a\x4a\xdf\xef\xbe\x8e\xa3"
    b"\x93\xc2\xf2\x67\x57\x06\x36\x2b\x1b\x4a\x7a\xef\xdf\x8e\xbe\xb3\x83\xd2\xe2\x77\x47\x16\x26"
    b"\x3b\x0b\x5a\x6a\xff\xcf\x9e\xae\xc2\xf2\xa3\x93\x06\x36\x67\x57\x4a\x7a\x2b\x1b\x8e\xbe\xef"
    b"\xdf\xd2\xe2\xb3\x83\x16\x26\x77\x47\x5a\x6a\x3b\x0b\x9e\xae\xff\xcf\xe2\xd2\x83\xb3\x26\x16"
    b"\x47\x77\x6a\x5a\x0b\x3b\xae\x9e\xcf\xff\xf2\xc2\x93\xa3\x36\x06\x57\x67\x7a\x4a\x1b\x2b\xbe"
    b"\x8e\xdf\xef"
)
_T2 = (  # bits 16..23
    b"\x00\x07\x0e\x09\x6d\x6a\x63\x64\xdb\xdc\xd5\xd2\xb6\xb1\xb8\xbf\xb7\xb0\xb9\xbe\xda\xdd\xd4"
    b"\xd3\x6c\x6b\x62\x65\x01\x06\x0f\x08\x6e\x69\x60\x67\x03\x04\x0d\x0a\xb5\xb2\xbb\xbc\xd8\xdf"
    b"\xd6\xd1\xd9\xde\xd7\xd0\xb4\xb3\xba\xbd\x02\x05\x0c\x0b\x6f\x68\x61\x66\xdc\xdb\xd2\xd5\xb1"
    b"\xb6\xbf\xb8\x07\x00\x09\x0e\x6a\x6d\x64\x63\x6b\x6c\x65\x62\x06\x01\x08\x0f\xb0\xb7\xbe\xb9"
    b"\xdd\xda\xd3\xd4\xb2\xb5\xbc\xbb\xdf\xd8\xd1\xd6\x69\x6e\x67\x60\x04\x03\x0a\x0d\x05\x02\x0b"
    b"\x0c\x68\x6f\x66\x61\xde\xd9\xd0\xd7\xb3\xb4\xbd\xba\xb8\xbf\xb6\xb1\xd5\xd2\xdb\xdc\x63\x64"
    b"\x6d\x6a\x0e\x09\x00\x07\x0f\x08\x01\x06\x62\x65\x6c\x6b\xd4\xd3\xda\xdd\xb9\xbe\xb7\xb0\xd6"
    b"\xd1\xd8\xdf\xbb\xbc\xb5\xb2\x0d\x0a\x03\x04\x60\x67\x6e\x69\x61\x66\x6f\x68\x0c\x0b\x02\x05"
    b"\xba\xbd\xb4\xb3\xd7\xd0\xd9\xde\x64\x63\x6a\x6d\x09\x0e\x07\x00\xbf\xb8\xb1\xb6\xd2\xd5\xdc"
    b"\xdb\xd3\xd4\xdd\xda\xbe\xb9\xb0\xb7\x08\x0f\x06\x01\x65\x62\x6b\x6c\x0a\x0d\x04\x03\x67\x60"
    b"\x69\x6e\xd1\xd6\xdf\xd8\xbc\xbb\xb2\xb5\xbd\xba\xb3\xb4\xd0\xd7\xde\xd9\x66\x61\x68\x6f\x0b"
    b"\x0c\x05\x02"
)
_T3 = (  # bits 24..31
    b"\x00\x77\xee\x99\x07\x70\xe9\x9e\x0e\x79\xe0\x97\x09\x7e\xe7\x90\x1d\x6a\xf3\x84\x1a\x6d\xf4"
    b"\x83\x13\x64\xfd\x8a\x14\x63\xfa\x8d\x3b\x4c\xd5\xa2\x3c\x4b\xd2\xa5\x35\x42\xdb\xac\x32\x45"
    b"\xdc\xab\x26\x51\xc8\xbf\x21\x56\xcf\xb8\x28\x5f\xc6\xb1\x2f\x58\xc1\xb6\x76\x01\x98\xef\x71"
    b"\x06\x9f\xe8\x78\x0f\x96\xe1\x7f\x08\x91\xe6\x6b\x1c\x85\xf2\x6c\x1b\x82\xf5\x65\x12\x8b\xfc"
    b"\x62\x15\x8c\xfb\x4d\x3a\xa3\xd4\x4a\x3d\xa4\xd3\x43\x34\xad\xda\x44\x33\xaa\xdd\x50\x27\xbe"
    b"\xc9\x57\x20\xb9\xce\x5e\x29\xb0\xc7\x59\x2e\xb7\xc0\xed\x9a\x03\x74\xea\x9d\x04\x73\xe3\x94"
    b"\x0d\x7a\xe4\x93\x0a\x7d\xf0\x87\x1e\x69\xf7\x80\x19\x6e\xfe\x89\x10\x67\xf9\x8e\x17\x60\xd6"
    b"\xa1\x38\x4f\xd1\xa6\x3f\x48\xd8\xaf\x36\x41\xdf\xa8\x31\x46\xcb\xbc\x25\x52\xcc\xbb\x22\x55"
    b"\xc5\xb2\x2b\x5c\xc2\xb5\x2c\x5b\x9b\xec\x75\x02\x9c\xeb\x72\x05\x95\xe2\x7b\x0c\x92\xe5\x7c"
    b"\x0b\x86\xf1\x68\x1f\x81\xf6\x6f\x18\x88\xff\x66\x11\x8f\xf8\x61\x16\xa0\xd7\x4e\x39\xa7\xd0"
    b"\x49\x3e\xae\xd9\x40\x37\xa9\xde\x47\x30\xbd\xca\x53\x24\xba\xcd\x54\x23\xb3\xc4\x5d\x2a\xb4"
    b"\xc3\x5a\x2d"
)


def crc32_feed(st, data):
    """Run the CRC-32 register ``st`` (a list ``[lo16, hi16]``) over ``data`` (bytes-like).

    Start with ``[0xFFFF, 0xFFFF]``; the CRC is then ``(hi ^ 0xFFFF) << 16 | (lo ^ 0xFFFF)``,
    the value ``binascii.crc32`` returns. Every intermediate is < 2**16: allocation-free on a
    32-bit port (checked with heap_lock in host_tests/unit/test_ringlog.py)."""
    lo = st[0]
    hi = st[1]
    for k in range(len(data)):  # (11 words of frame: kept on the C stack, test_frames.py)
        i = (lo ^ data[k]) & 0xFF
        lo = ((lo >> 8) | ((hi & 0xFF) << 8)) ^ _T0[i] ^ (_T1[i] << 8)
        hi = (hi >> 8) ^ _T2[i] ^ (_T3[i] << 8)
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
        global _srec
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
        if need <= _SHARED_REC:
            if _srec is None:
                _srec = bytearray(_SHARED_REC)
            self._rec = _srec
        else:
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
        the header is not valid (magic, CRC-32) or of another ``FORMAT`` (its fields may mean
        something else)."""
        h = self._read(s * self.sector_size, _HDR)
        if h[0] != _SEC_M0 or h[1] != _SEC_M1 or h[2] != FORMAT:
            return -1
        if binascii.crc32(h[0:12]) != struct.unpack_from("<I", h, 12)[0]:
            return -1
        return struct.unpack_from("<I", h, 4)[0]

    def _prepare(self, s, er=-1):
        """Make sector ``s`` READY: erase unless blank, then program its header (erase count:
        ``er`` (>= 0) or the sector's own, + 1 for the erase; the ring's highest + 1 when its
        header is not known)."""
        st = self._state[s]
        if er < 0 and (st == _READY or st == _USED):
            er = self._header_erases(s)
        if er < 0:
            er = self._emax
        self._state[s] = _DIRTY
        self._first_hi[s] = -1
        self._fill[s] = 0
        if st != _BLANK:
            self._flash.erase(s * self.sector_size)
            er += 1
        self._format(s, er)
        if not self._reads_back(s * self.sector_size, _HDR):
            self._state[s] = _WORN
            raise StorageError("sector %d header did not read back (flash program failed)"
                               % s)
        self._state[s] = _READY
        self._odd.pop(s, None)
        self._fill[s] = 1
        if er > self._emax:
            self._emax = er

    def maintain(self, max_erases=1):
        """Prepare the ``reserve`` sectors ahead of the head (a WORN sector, whose header did
        not take this run, is passed over and not counted); return the number of erases.

        Call at a quiet time (after a periodic commit, at boot after recovery). Each erase
        blocks for one sector erase (W25Q16JV tSE typ 45 ms, max 400 ms); at most
        ``max_erases`` erases are done per call. Blank sectors need only a header program.
        Never erases the sector holding the newest valid record (so a sector is erased only
        when every valid record in it is older than the newest), and in the register
        journal not while that record is the only one of the head sector that took, unless
        the head is full (the record before it is kept: a second copy). Does nothing on a
        write-protected (foreign) image or before mounting.
        """
        if not self._mounted or self._blocked:
            return 0
        done = 0
        k = 0  # reserve sectors seen (a WORN one is passed over, as the appends pass it)
        for i in range(1, self.sectors):
            s = (self._head + i) % self.sectors
            st = self._state[s]
            if st == _WORN:
                continue
            k += 1
            if k > self.reserve:
                break
            if st == _READY:
                continue
            if s == self._newest:
                break
            if st != _BLANK:
                if done >= max_erases:
                    break
                h = self._newest
                if (h == self._head and self._slot < self.slots_per_sector
                        and self._kind == KIND_JOURNAL
                        and self._first_seq(h) == self.next_seq() - 1):
                    break  # (the head's only record that took is the newest: the record
                    # before is kept, a second copy should a cell decay; a 2-sector ring)
                done += 1
            self._prepare(s)
        return done

    def needs_maintenance(self):
        """True if ``maintain()`` has work to do (a reserve sector is not prepared)."""
        if not self._mounted or self._blocked:
            return False
        k = 0
        for i in range(1, self.sectors):
            s = (self._head + i) % self.sectors
            st = self._state[s]
            if st == _WORN:  # (passed over)
                continue
            if st != _READY and s != self._newest:
                return True
            k += 1
            if k >= self.reserve:
                break
        return False

    def ready_slots(self):
        """Records that can be appended with no erase (head sector + prepared sectors)."""
        if not self._mounted or self._blocked:
            return 0
        sps = self.slots_per_sector
        free = sps - self._slot if self._slot < sps else 0
        for i in range(1, self.sectors):
            s = (self._head + i) % self.sectors
            if self._state[s] == _WORN:
                continue  # (passed over by the appends)
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
        leaves the sectors not yet erased as they were: a foreign image stays foreign.

        Erase counts: each sector's header count (of this ``FORMAT``, any kind of ring) + 1,
        the one erase it gets. A sector without one (blank, torn, other format) gets the
        highest count found before the format + 1 (counts of a ring erased in rotation lie
        within one of each other), never the running maximum: one sector after the other
        took the one before's + 1, and a format of 63 sectors added up to 63 erases to each
        that never happened. A cut during the format costs the header of at most the sector
        under erase: its count is then estimated as above at the next format or preparation
        (within one or two of the erases it had: the torn erase counted or not)."""
        self._mounted = True
        self._blocked = False
        top = self._emax
        for s in range(self.sectors):
            e = self._header_erases(s)
            if e > top:
                top = e
        for s in range(self.sectors):
            e = self._header_erases(s)  # (sectors after s are not touched yet)
            self._state[s] = _DIRTY
            self._prepare(s, e if e >= 0 else top)
        self._newest = -1
        self._head = self.sectors - 1
        self._slot = self.slots_per_sector
        self._set_seq(1)
        self.newest_damaged = False
        self.foreign_sectors = self.foreign_records = 0
        self.status = STATUS_BLANK
        self._say("storage: partition formatted, all records erased")

    def _first_seq(self, s):
        """First sequence number in sector ``s`` (int), or -1 if it holds no valid record."""
        hi = self._first_hi[s]
        return -1 if hi < 0 else (hi << 16) | self._first_lo[s]

    def next_seq(self):
        """Sequence number the next record gets (int)."""
        return (self._seq_hi << 16) | self._seq_lo

    # ---- append -------------------------------------------------------------------------
    def _append(self, payload, tag, aux, urgent):
        """Program one record; returns the sequence number, or None if ``urgent`` (the
        power-fail path builds no int that could be long on a 32-bit port).

        Cut into steps of at most 11 words of frame each (arguments, locals, value stack:
        tools/frame_words.py), so that MicroPython keeps each call's state on the C stack:
        a larger frame comes from the heap at every call (py/objfun.c
        ``VM_MAX_STATE_ON_STACK``), and this one had 31 words (host_tests/unit/test_frames.py).
        """
        if not self._mounted:
            raise StorageError("mount/recover the ring before writing")
        if self._blocked:
            raise StorageError("foreign image: writes blocked until format()")
        if len(payload) > self._max:
            raise ValueError("payload larger than %d bytes" % self._max)
        if self._slot >= self.slots_per_sector:
            self._next_sector(urgent)
        self._copy(payload)
        self._build(len(payload), tag, aux)
        if not self._program(len(payload)):
            self._again(tag, aux, urgent)
        if urgent:
            return None
        r = self._rec
        return (r[6] | r[7] << 8) << 16 | r[5] << 8 | r[4]

    def _again(self, tag, aux, urgent):
        # the record did not read back (a program that did not take: worn or faulty NOR
        # cells, the chip reports nothing): it is not committed. Written again as a new record
        # (the next sequence number) in the next slot, or the next sector's first as
        # _next_sector allows (urgent: a prepared one only), at most _RETRIES times (urgent:
        # once, the supply is going: one more page program); then StorageError. The slot
        # that did not take stays used and fails its CRC at the next scan. The payload stays
        # in the buffer (a sector header built there takes its first 16 bytes).
        n = self._rec[8] | self._rec[9] << 8  # (its length, from the header just built)
        k = 1 if urgent else _RETRIES
        while k > 0:
            if self._slot >= self.slots_per_sector:
                self._next_sector(urgent)
            self._build(n, tag, aux)
            if self._program(n):
                return
            k -= 1
        raise StorageError("record did not read back at sector %d slot %d (flash program "
                           "failed)" % (self._head, self._slot - 1))

    def _reads_back(self, addr, n):
        # the ``n`` (>= 16) bytes just programmed at ``addr`` equal the record buffer's first
        # ``n`` (the register journal; any other ring: True): read in 16-byte pieces (the last
        # one overlapping the one before), compared byte by byte: no copy of the record, no
        # allocation, a frame of 11 words. If not, ``bad_writes`` counts it and ``bad_at``
        # keeps ``addr`` (the register journal's attributes, lib/flashstore/journal.py).
        if self._kind != KIND_JOURNAL:
            return True
        b = _vb
        o = 0
        while o < n:
            if o + _HDR > n:
                o = n - _HDR
            self._flash.read(addr + o, b)
            i = 0
            while i < _HDR:
                if b[i] != self._rec[o + i]:
                    self.bad_writes += 1
                    self.bad_at = addr
                    return False
                i += 1
            o += _HDR
        return True

    def _next_sector(self, urgent):
        # the head moves on to the next sector, prepared now unless ``urgent`` (NoSpace)
        if self._state[(self._head + 1) % self.sectors] == _WORN:
            self._pass_worn()
        if self._state[(self._head + 1) % self.sectors] != _READY:
            if urgent:
                raise NoSpace("no pre-erased sector left: call maintain() at a quiet time")
            nxt = (self._head + 1) % self.sectors
            if nxt != self._newest and self._state[nxt] != _DIRTY:
                self.maintain(1)  # (e.g. the first append of a ring mounted blank)
            if self._state[nxt] != _READY:  # (a header that did not take: _WORN)
                from flashstore import worn  # (rare: loaded on first use)

                e = worn.prepare_next(self)
                if e is not True:
                    raise e or NoSpace("cannot prepare the next sector")
        nxt = (self._head + 1) % self.sectors
        self._head = nxt
        self._slot = 1
        self._state[nxt] = _USED

    def _pass_worn(self):
        # the sectors after the head whose header did not take (WORN), up to a prepared one:
        # the head passes over them as over full sectors (a power-fail append lands in the
        # prepared sector after a worn one; maintain() prepares past them). None prepared:
        # the head stays (the caller's rules: NoSpace when urgent, else worn.prepare_next)
        n = self.sectors
        s = (self._head + 1) % n
        while self._state[s] == _WORN and s != self._head:
            s = (s + 1) % n
        if self._state[s] == _READY and s != self._head:
            self._head = (s - 1) % n
            self._slot = self.slots_per_sector

    def _build(self, n, tag, aux):
        # the record in ``_rec`` over the ``n``-byte payload there (:meth:`_copy`): header
        # (with the next sequence number), CRC-32
        r = self._rec
        r[0] = _REC_M0
        r[1] = _REC_M1
        r[2] = FORMAT
        r[3] = tag
        self._take_seq()
        r[8] = n & 0xFF
        r[9] = n >> 8
        r[10] = aux & 0xFF
        r[11] = aux >> 8
        self._seal(n)

    def _copy(self, payload):
        # byte by byte: a slice assignment r[a:b] = payload builds its slice object on the
        # heap on MicroPython < 1.26 (e.g. 1.25 on the emulated cores, tools/emu)
        r = self._rec
        for i in range(len(payload)):
            r[_HDR + i] = payload[i]

    def _take_seq(self):
        # the next sequence number into the record header (bytes 4..7, u32 LE); never
        # reused, even if the program fails
        r = self._rec
        lo = self._seq_lo
        hi = self._seq_hi
        r[4] = lo & 0xFF
        r[5] = lo >> 8
        r[6] = hi & 0xFF
        r[7] = hi >> 8
        if lo == 0xFFFF:
            self._seq_lo = 0
            self._seq_hi = (hi + 1) & 0xFFFF
        else:
            self._seq_lo = lo + 1

    def _seal(self, n):
        # the CRC-32 of header bytes 0..11 and the ``n``-byte payload into bytes 12..15
        c = _crc
        c[0] = 0xFFFF
        c[1] = 0xFFFF
        crc32_feed(c, self._v_hdr)
        crc32_feed(c, self._v_body if n == self._max else memoryview(self._rec)[_HDR:_HDR + n])
        r = self._rec
        v = c[0] ^ 0xFFFF
        r[12] = v & 0xFF
        r[13] = v >> 8
        v = c[1] ^ 0xFFFF
        r[14] = v & 0xFF
        r[15] = v >> 8

    def _program(self, n):
        # the record of an ``n``-byte payload (:meth:`_build`) into the head's next slot;
        # True if it took (only then is it the newest: maintain() never erases the sector of
        # the last record that took, whatever the head passed over since)
        head = self._head
        addr = head * self.sector_size + self._slot * self.slot_size
        self._write(addr, self._chunks if n == self._max else self._split(_HDR + n))
        if not self._reads_back(addr, _HDR + n):
            return False
        self._newest = head
        if self._first_hi[head] < 0:
            self._first_hi[head] = self._rec[6] | self._rec[7] << 8
            self._first_lo[head] = self._rec[4] | self._rec[5] << 8
        return True

    def _write(self, addr, chunks):
        # the head's next slot (at ``addr``) taken, then programmed, one program per page of
        # the record (a while loop: a for loop's iterator takes 4 words of the frame)
        self._slot += 1  # the slot is used even if the program is cut
        self._fill[self._head] = self._slot
        i = 0
        while i < len(chunks):
            c = chunks[i]
            self._flash.program(addr + c[0], c[1])
            i += 1

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
