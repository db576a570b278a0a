"""Configuration storage: calibration, meter constant, display lists, TOU tables.

A :class:`ConfigStore` keeps a JSON-encodable dict in two copies (A/B slots) on a flash
partition (lib/flashstore/flash.py interface). A save always overwrites the *older* copy, so a
power cut during a save leaves the previous good copy intact; ``load()`` takes the valid copy
with the highest sequence number and never returns stored data silently: it returns ``(config,
status)`` with one of the ``STATUS_*`` strings, and the reason in ``detail``.

Partition: an even number of sectors >= 2; slot A is the first half, slot B the second half.
Slot layout (record format ``FORMAT`` = 1, little-endian)::

    off size field
     0   2   magic b"CF"
     2   1   record format (1)
     3   1   reserved (0xFF)
     4   4   sequence number (u32, +1 per save)
     8   2   config version (the caller's ``version``, 0..65535)
    10   2   length n of the JSON text in bytes
    12   4   CRC-32 (binascii.crc32) of bytes 0..11 + JSON text
    16   n   compact JSON (separators "," and ":"), UTF-8, an object at top level

The JSON text is programmed first and the 16-byte header last, so an interrupted save leaves a
slot without a header (reported as "interrupted save"), not a plausible record.

Outcomes of ``load()``:

- ``STATUS_OK``: newest copy valid, current version (missing keys filled from the defaults
  and listed in ``detail``); ``STATUS_ONE_BAD``: the same, but the other copy is damaged or an
  earlier save was interrupted (save again to restore two copies).
- ``STATUS_BLANK``: both slots erased, or one erased and the other an interrupted save (the
  very first save was cut: nothing was ever committed): defaults (first boot).
- ``STATUS_CORRUPT``: no valid copy (or ``validate`` rejected every copy): defaults.
- ``STATUS_MIGRATED``: an older version converted by ``migrate(old_dict, old_version)``.
- ``STATUS_OLD_DEFAULTS``: an older version and no ``migrate`` (or it raised): defaults.
- ``STATUS_NEWER``: a version newer than this firmware's: defaults (a downgrade must not
  guess at fields it does not know).

Every status but OK, BLANK and MIGRATED means stored data may have been lost (with ONE_BAD the
damaged copy may have been the newer one): firmware/app.py treats them as a fallback
(persistent event, F.F.0, security parameters not trusted).

Wear: a save erases one slot. :class:`SaveBudget` is the write budget the firmware keeps
(firmware/app.py coalesces changes under it).
"""

import binascii
import json
import struct

from micropython import const

from flashstore.flash import FlashError

FORMAT = const(1)
_HDR = const(16)
_M0 = const(0x43)  # "C"
_M1 = const(0x46)  # "F"
_HFMT = "<BBBBIHH"

STATUS_OK = "ok"
STATUS_ONE_BAD = "ok (one copy bad)"
STATUS_BLANK = "blank -> defaults"
STATUS_CORRUPT = "corrupt -> defaults"
STATUS_MIGRATED = "old version -> migrated"
STATUS_OLD_DEFAULTS = "old version -> defaults"
STATUS_NEWER = "newer version -> defaults"

# copy (slot) states found by load()
_VALID = const(0)
_EMPTY = const(1)  # all 0xFF
_TORN = const(2)  # header blank, body written: an interrupted save
_BAD = const(3)  # header present, CRC/format/JSON wrong


def _copy(obj):
    return json.loads(json.dumps(obj))


def _loads(data):
    # JSON from a bytearray of UTF-8: in place where json.loads takes a buffer, else (an
    # older MicroPython: str or bytes only) through a decoded copy
    try:
        return json.loads(data)
    except TypeError:
        return json.loads(bytes(data).decode())


class ConfigStore:
    """Two-copy, CRC-checked configuration record.

    ``flash``: flash interface with an even number (>= 2) of sectors; ``defaults``: dict of
    JSON-encodable values (returned, as a deep copy, whenever stored data cannot be used), or
    a callable returning a new such dict at each call (then none is kept: RAM, issue 12);
    ``version``: int 0..65535, bump it when the meaning of a key changes; ``migrate``: callable
    ``(old_dict, old_version) -> dict`` or None; ``validate``: callable ``(dict) -> bool`` or
    None (e.g. calibration ranges); a copy that fails it is treated as corrupt; ``log``:
    callable(str) or None.
    """

    def __init__(self, flash, defaults, version=1, migrate=None, validate=None, log=None):
        n = flash.size // flash.sector_size
        if n < 2 or n % 2:
            raise ValueError("config partition needs an even number (>= 2) of sectors")
        if not 0 <= version <= 0xFFFF:
            raise ValueError("version must be 0..65535")
        self._flash = flash
        self._defaults = defaults if callable(defaults) else _copy(defaults)
        self.version = version
        self._migrate = migrate
        self._validate = validate
        self._log = log
        self._slot_sectors = n // 2
        self.slot_bytes = self._slot_sectors * flash.sector_size
        self.capacity = min(self.slot_bytes - _HDR, 0xFFFF)
        self._hdr = bytearray(_HDR)
        self._seq = [0, 0]
        self._state = [_EMPTY, _EMPTY]
        self.status = None
        self.detail = ""
        self.copies = 0
        self.seq = 0
        self.stored_version = None

    def _fresh(self):
        # a new copy of the defaults
        d = self._defaults
        return d() if callable(d) else _copy(d)

    def _say(self, msg):
        if self._log is not None:
            self._log(msg)

    def _reads_back(self, i, seq, n, crc):
        """True if slot ``i`` holds the header of ``seq`` (``n`` bytes of JSON) and its CRC-32
        ``crc`` over header and JSON, read in 256-byte pieces: no copy of the record is made
        (the largest, ~4 KB, is saved on a 96 KiB heap, where a second copy and its parse
        did not fit)."""
        base = i * self.slot_bytes
        h = self._hdr
        self._flash.read(base, h)
        m0, m1, fmt, _r, s, _v, ln = struct.unpack_from(_HFMT, h, 0)
        if m0 != _M0 or m1 != _M1 or fmt != FORMAT or s != seq or ln != n:
            return False
        if struct.unpack_from("<I", h, 12)[0] != crc:
            return False
        c = binascii.crc32(memoryview(h)[0:12])
        buf = bytearray(256)
        off = 0
        while off < n:
            k = min(256, n - off)
            mv = memoryview(buf)[:k]
            self._flash.read(base + _HDR + off, mv)
            c = binascii.crc32(mv, c)
            off += k
        return c == crc

    def _read_slot(self, i):
        """(state, seq, version, dict or None) of slot ``i``."""
        base = i * self.slot_bytes
        h = self._hdr
        self._flash.read(base, h)
        if h == b"\xff" * _HDR:
            # blank header: empty slot, or a save cut before its header was written
            buf = bytearray(256)
            off = _HDR
            while off < self.slot_bytes:
                n = min(256, self.slot_bytes - off)
                mv = memoryview(buf)[:n]
                self._flash.read(base + off, mv)
                if mv != b"\xff" * n:
                    return _TORN, 0, 0, None
                off += n
            return _EMPTY, 0, 0, None
        m0, m1, fmt, _r, seq, ver, ln = struct.unpack_from(_HFMT, h, 0)
        if m0 != _M0 or m1 != _M1 or fmt != FORMAT or ln > self.capacity:
            return _BAD, 0, 0, None
        # one copy of the text (~4 KB at most in use), parsed where it was read: json.loads
        # takes a bytearray (MicroPython >= 1.20: the buffer protocol; CPython: bytes-like,
        # UTF-8). bytes(data).decode() made two more contiguous copies of it, and on a 96
        # KiB heap three blocks of 3.9 KB met fragmentation at boot (MemoryError)
        data = bytearray(ln)
        self._flash.read(base + _HDR, data)
        crc = struct.unpack_from("<I", h, 12)[0]
        if binascii.crc32(data, binascii.crc32(memoryview(h)[0:12])) != crc:
            return _BAD, 0, 0, None
        if ln < 2 or data[0] != 0x7B or data[ln - 1] != 0x7D or b"\x00" in data:
            # json.dumps of a dict: "{" first, "}" last, no NUL byte. Anything else is no
            # record of ours, whatever each runtime's json.loads would make of it: CPython's
            # guesses the encoding of bytes (a UTF-8 BOM skipped, UTF-16/32 decoded),
            # MicroPython's stops at a NUL, and 1.25's (the emulated cores') takes "{" for
            # {}; all refuse it alike here
            return _BAD, 0, 0, None
        try:
            obj = _loads(data)
        except (ValueError, UnicodeError, RuntimeError):  # (RuntimeError: CPython's
            # RecursionError at a nesting past its limit; out of load(), no boot)
            return _BAD, 0, 0, None
        data = None
        if not isinstance(obj, dict):
            return _BAD, 0, 0, None
        return _VALID, seq, ver, obj

    def load(self):
        """Read both copies; return ``(config dict, status)`` (see the module docstring).

        Also sets ``status``, ``detail`` (human-readable reason), ``copies`` (valid copies,
        0..2), ``seq`` and ``stored_version`` (of the copy used, None if defaults) and logs
        one line.
        """
        found = [self._read_slot(0), self._read_slot(1)]
        for i in (0, 1):
            self._state[i] = found[i][0]
            self._seq[i] = found[i][1]
        valid = [i for i in (0, 1) if found[i][0] == _VALID]
        if self._validate is not None:
            keep = []
            for i in valid:
                ok = False
                if found[i][2] == self.version:
                    try:
                        ok = bool(self._validate(found[i][3]))
                    except Exception:  # a validator bug must not brick the meter
                        ok = False
                else:
                    ok = True  # other versions are judged after migration
                if ok:
                    keep.append(i)
                else:
                    self._state[i] = _BAD
            valid = keep
        self.copies = len(valid)
        self.seq = 0
        self.stored_version = None
        names = ("A", "B")
        states = ("valid", "empty", "interrupted save", "corrupt")
        notes = "A %s, B %s" % (states[self._state[0]], states[self._state[1]])
        if not valid:
            a, b = self._state
            if (a == _EMPTY or a == _TORN) and (b == _EMPTY or b == _TORN) and _EMPTY in (a, b):
                status = STATUS_BLANK  # nothing was ever committed (first save cut at most)
            else:
                status = STATUS_CORRUPT
            return self._done(self._fresh(), status, notes)
        i = valid[0]
        if len(valid) == 2 and self._seq[1] > self._seq[0]:
            i = 1
        _st, seq, ver, obj = found[i]
        self.seq = seq
        self.stored_version = ver
        notes = "using %s (seq %d, version %d); %s" % (names[i], seq, ver, notes)
        if ver > self.version:
            return self._done(self._fresh(), STATUS_NEWER, notes)
        if ver < self.version:
            if self._migrate is None:
                return self._done(self._fresh(), STATUS_OLD_DEFAULTS,
                                  notes + "; no migration")
            try:
                obj = self._migrate(obj, ver)
                if not isinstance(obj, dict):
                    raise ValueError("migration did not return a dict")
                if self._validate is not None and not self._validate(obj):
                    raise ValueError("migrated config fails validation")
            except Exception as e:
                return self._done(self._fresh(), STATUS_OLD_DEFAULTS,
                                  notes + "; migration failed: %r" % (e,))
            cfg, missing = self._merge(obj)
            return self._done(cfg, STATUS_MIGRATED, notes + missing)
        cfg, missing = self._merge(obj)
        other = 1 - i
        status = STATUS_OK
        if self._state[other] in (_TORN, _BAD):
            status = STATUS_ONE_BAD
        return self._done(cfg, status, notes + missing)

    def _merge(self, obj):
        cfg = self._fresh()
        missing = [k for k in cfg if k not in obj]
        for k in obj:
            cfg[k] = obj[k]
        if missing:
            missing.sort()
            return cfg, "; defaults used for missing keys: " + ",".join(missing)
        return cfg, ""

    def _done(self, cfg, status, detail):
        self.status = status
        self.detail = detail
        self._say("config: %s: %s" % (status, detail))
        return cfg, status

    def save(self, cfg):
        """Write ``cfg`` (a JSON-encodable dict) over the older copy; return its sequence number.

        Erases one slot (``slot_bytes / sector_size`` sector erases), then programs the JSON
        and the header last (``load()`` runs first if it has not, to find the older copy), and
        reads the copy back. Raises ValueError if ``cfg`` is not a dict or its JSON exceeds
        ``capacity`` bytes; flashstore.flash.FlashError if the copy does not read back (the
        next save goes over it again, never over the other copy).
        """
        if not isinstance(cfg, dict):
            raise ValueError("config must be a dict")
        if self.status is None:
            self.load()  # find the newest copy first, so it is never the one overwritten
        data = json.dumps(cfg, separators=(",", ":")).encode()
        n = len(data)
        if n > self.capacity:
            raise ValueError("config JSON is %d bytes, capacity %d" % (n, self.capacity))
        # overwrite the slot that does not hold the newest valid copy
        st = self._state
        if st[0] == _VALID and st[1] == _VALID:
            target = 0 if self._seq[0] < self._seq[1] else 1
        elif st[0] == _VALID:
            target = 1
        else:
            target = 0
        seq = max(self._seq) + 1
        base = target * self.slot_bytes
        f = self._flash
        st[target] = _BAD  # until the header is written
        for s in range(self._slot_sectors):
            f.erase(base + s * f.sector_size)
        h = self._hdr
        struct.pack_into(_HFMT, h, 0, _M0, _M1, FORMAT, 0xFF, seq, self.version, n)
        struct.pack_into("<I", h, 12, binascii.crc32(data, binascii.crc32(memoryview(h)[0:12])))
        p = f.page_size
        mv = memoryview(data)
        a = base + _HDR
        i = 0
        while i < n:
            c = min(n - i, p - a % p)
            f.program(a, mv[i : i + c])
            a += c
            i += c
        i = 0
        while i < _HDR:  # header last: the commit marker of this copy
            c = min(_HDR - i, p - (base + i) % p)
            f.program(base + i, memoryview(h)[i : i + c])
            i += c
        # read back: a NOR program that did not take (worn or faulty cells; the chip reports
        # nothing) must not pass for a copy, or the next save erases the only valid one
        crc = struct.unpack_from("<I", h, 12)[0]
        data = mv = None  # (the record's text is not needed any more: room for the check)
        if not self._reads_back(target, seq, n, crc):
            raise FlashError("config copy %s did not read back (flash program failed)"
                             % "AB"[target])
        st[target] = _VALID
        self._seq[target] = seq
        self.seq = seq
        self.stored_version = self.version
        self._say("config: saved copy %s seq %d (%d bytes)" % ("AB"[target], seq, n))
        return seq


class SaveBudget:
    """Token bucket bounding configuration writes (flash wear): ``burst`` writes at once,
    then one per ``refill_s`` seconds. Times are seconds of a monotonic clock (int).

    With the firmware's budget (burst 4, one per 3600 s) a sustained flood of writes costs
    24 saves a day; on the 2-slot, one-sector-per-slot partition that is 12 erases per sector
    a day, 100 000 cycles in 22.8 years (docs/BENCHMARKS.md).
    """

    def __init__(self, burst=4, refill_s=3600, now=0):
        if burst < 1 or refill_s < 1:
            raise ValueError("burst and refill_s must be >= 1")
        self.burst = burst
        self.refill_s = refill_s
        self.tokens = burst
        self._t = now  # time the next token accrues from
        self.taken = 0

    def _refill(self, now):
        if now < self._t:  # clock went back: restart the accrual
            self._t = now
        if self.tokens >= self.burst:
            self._t = now
            return
        k = (now - self._t) // self.refill_s
        if k:
            self.tokens = min(self.burst, self.tokens + k)
            self._t = now if self.tokens >= self.burst else self._t + k * self.refill_s

    def take(self, now):
        """Spend one write at ``now`` if the budget allows it; True if it did."""
        self._refill(now)
        if self.tokens < 1:
            return False
        self.tokens -= 1
        self.taken += 1
        return True

    def wait_s(self, now):
        """Seconds until the next write is allowed (0 = now)."""
        self._refill(now)
        if self.tokens >= 1:
            return 0
        return self._t + self.refill_s - now
