# The 31-bit small-int rule, checked on a 64-bit host (CPython and the MicroPython unix port).
"""On a 32-bit MicroPython core a small int holds 31 bits (-2**30 .. 2**30 - 1); any other
int is a heap-allocated long, i.e. a MemoryError under ``micropython.heap_lock()``. The unix
port is 64-bit, so a heap-locked test there cannot see it. :class:`Spy` makes it visible:
installed as the ``struct`` and ``binascii`` of lib/flashstore/ringlog.py and
firmware/meter/storage.py, it records every int packed and every CRC computed by ``binascii``,
and :func:`changed_ints` lists the ints an object's attributes took on during a call. A
power-fail path passes when nothing it packed, computed or stored is outside the small-int range.
"""

import binascii as _binascii
import struct as _struct

SMALL_MIN = -(1 << 30)
SMALL_MAX = (1 << 30) - 1


def small(v):
    return SMALL_MIN <= v <= SMALL_MAX


class Spy:
    """Stand-in for the ``struct`` and ``binascii`` modules that records the ints it sees."""

    def __init__(self):
        self.packed = 0
        self.big = []  # (what, value) outside the small-int range
        self.crc_calls = 0
        self.max_seen = 0

    def _see(self, what, v):
        if isinstance(v, int):
            self.packed += 1
            if abs(v) > self.max_seen:
                self.max_seen = abs(v)
            if not small(v):
                self.big.append((what, v))

    # struct
    def pack_into(self, fmt, buf, off, *vals):
        self._see("offset", off)
        for v in vals:
            self._see("pack_into " + fmt, v)
        return _struct.pack_into(fmt, buf, off, *vals)

    def pack(self, fmt, *vals):
        for v in vals:
            self._see("pack " + fmt, v)
        return _struct.pack(fmt, *vals)

    def unpack_from(self, fmt, buf, off=0):
        return _struct.unpack_from(fmt, buf, off)

    def unpack(self, fmt, buf):
        return _struct.unpack(fmt, buf)

    def calcsize(self, fmt):
        return _struct.calcsize(fmt)

    # binascii
    def crc32(self, data, value=0):
        self.crc_calls += 1
        r = _binascii.crc32(data, value)
        self._see("binascii.crc32", r)
        return r


def install(spy, *modules):
    """Make ``spy`` the ``struct``/``binascii`` of each module that imports them; returns the
    originals for :func:`uninstall`."""
    saved = []
    for m in modules:
        for name in ("struct", "binascii"):
            if hasattr(m, name):
                saved.append((m, name, getattr(m, name)))
                setattr(m, name, spy)
    return saved


def uninstall(saved):
    for m, name, orig in saved:
        setattr(m, name, orig)


def _ints(v, out, where):
    if isinstance(v, bool):
        return
    if isinstance(v, int):
        out.append((where, v))
    elif isinstance(v, (list, tuple)):
        for i in range(len(v)):
            _ints(v[i], out, where)


def snapshot(obj):
    """{attribute: copy} of ``obj``'s int and list-of-int attributes."""
    d = {}
    for k, v in obj.__dict__.items():
        if isinstance(v, int) or isinstance(v, list):
            d[k] = list(v) if isinstance(v, list) else v
    return d


def changed_ints(obj, before):
    """[(attribute, int)] for every int in an attribute of ``obj`` that changed since
    ``before`` (a :func:`snapshot`) and lies outside the small-int range."""
    bad = []
    for k, v in obj.__dict__.items():
        if k in before and before[k] == v:
            continue
        found = []
        _ints(v, found, k)
        for where, x in found:
            if not small(x):
                bad.append((where, x))
    return bad
