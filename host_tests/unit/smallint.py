# The 31-bit small-int rule, checked on a 64-bit host (CPython and the MicroPython unix port).
"""On a 32-bit MicroPython core a small int holds 31 bits (-2**30 .. 2**30 - 1); any other
int is a heap-allocated long, i.e. a MemoryError under ``micropython.heap_lock()``. The unix
port is 64-bit, so a heap-locked test there cannot see it. :class:`Spy` makes it visible:
installed as the ``struct`` and ``binascii`` of lib/flashstore/ringlog.py and
firmware/meter/storage.py, it records every int packed and every CRC computed by ``binascii``,
and :func:`changed_ints` lists the ints an object's attributes took on during a call. A
power-fail path passes when nothing it packed, computed or stored is outside the small-int range.

:func:`slices` catches the other allocation the host misses: on MicroPython < 1.26 (1.25 on
the emulated cores, tools/emu) every ``a[x:y]`` builds a slice object on the heap, while the
unix port here (newer) builds it on the stack, so ``heap_lock()`` there does not see it. Under
CPython it traces the opcodes a call executes and lists the slices built by device code.
:func:`long_locals` lists the local variables of device code that held an int outside the
small-int range during a call (CPython line tracing): arithmetic such as ``res + (lsb << 8)``
that the 64-bit host computes without a sound.
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


def _device_filter():
    import os

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    dev = tuple(os.path.join(root, d) + os.sep for d in ("lib", "firmware", "boards"))
    sim = os.path.join(root, "boards", "sim") + os.sep

    def is_device(f):
        return f.startswith(dev) and not f.startswith(sim)

    return root, is_device


def _traced(fn, trace):
    import sys

    old = sys.gettrace()
    sys.settrace(trace)
    try:
        fn()
    finally:
        sys.settrace(old)


def _cpython():
    import sys

    return sys.implementation.name == "cpython" and hasattr(sys, "settrace")


def long_locals(fn):
    """Call ``fn()`` and return ``[(file, line, name, value)]`` for every local int variable of
    device code (as :func:`slices`) outside the small-int range at a line or return event;
    None where it cannot trace (MicroPython: heap_lock() on a 32-bit core does it)."""
    if not _cpython():
        fn()
        return None
    import os

    root, is_device = _device_filter()
    found = []

    def trace(frame, event, _arg):
        f = frame.f_code.co_filename
        if not is_device(f):
            return None
        if event in ("line", "return"):
            for k, v in frame.f_locals.items():
                if isinstance(v, int) and not isinstance(v, bool) and not small(v):
                    found.append((os.path.relpath(f, root), frame.f_lineno, k, v))
        return trace

    _traced(fn, trace)
    return found


def slices(fn):
    """Call ``fn()`` and return ``[(file, line)]`` of every slice built on the way by device
    code (lib/, firmware/, boards/ except the virtual board's models in boards/sim); None
    where opcodes cannot be traced (MicroPython: there heap_lock() on a core < 1.26 does it).
    """
    if not _cpython():
        fn()
        return None
    import dis
    import os

    root, is_device = _device_filter()
    ops = {dis.opmap[n] for n in ("BUILD_SLICE", "BINARY_SLICE", "STORE_SLICE")
           if n in dis.opmap}
    found = []

    def trace(frame, event, _arg):
        f = frame.f_code.co_filename
        if not is_device(f):
            return None
        frame.f_trace_opcodes = True
        if event == "opcode" and frame.f_code.co_code[frame.f_lasti] in ops:
            found.append((os.path.relpath(f, root), frame.f_lineno))
        return trace

    _traced(fn, trace)
    return found
