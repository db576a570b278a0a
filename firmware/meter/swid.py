# Software identification: firmware version plus a checksum of the metrology code.
"""Software identification (MID 2014/32/EU Annex I 7.6 and 8.3, WELMEC 7.2 "software
identification"; Measurement Canada PS-E-17 wants the version and a hash displayable).

``VERSION`` is the firmware version (OBIS 0.2.0). The legally relevant (metrology) modules are
``METROLOGY_MODULES``: lib/ade7953 (chip driver, calibration), lib/energy (registers),
lib/energy/pulse.py (test output, no-load gate), firmware/meter/metering.py (the metering step)
and firmware/tasks/metering.py (the read loop and its deadlines). :func:`checksum` is the
CRC-32 (IEEE 802.3, ``binascii.crc32``, the same as zlib.crc32) of the bytes of those modules'
files, in that order, concatenated. Each file is the one the running module was loaded from
(its ``__file__``), else the first ``NAME.py`` or ``NAME.mpy`` found along ``sys.path``. So the
value covers the source on the virtual board and under the host tests, and the bytecode where
the modules are shipped as ``.mpy`` files. Frozen modules have no file to read: then the
checksum is None, shown as dashes, and this is a known limit (a frozen build would hash its
frozen bytecode at build time instead).

Shown on the LCD after the version at start-up (identifier "0.2.8", 8 hexadecimal digits,
7-segment spelling ``0-9 A b C d E F``) and in the alternate list; readable over
IEC 62056-21 as 0.2.8 (OBIS 1-0:0.2.8, firmware signature), next to 0.2.0 (the version).
"""

import sys

VERSION = "0.1.0"

METROLOGY_MODULES = ("ade7953", "energy", "energy.pulse", "meter.metering", "tasks.metering")

_HEX7 = "0123456789AbCdEF"  # hex digits that a 7-segment cell can show unambiguously
_cache = []


def _crc32(data, crc):
    try:
        import binascii

        return binascii.crc32(data, crc)
    except (ImportError, AttributeError):  # a port built without binascii.crc32
        crc ^= 0xFFFFFFFF
        for b in data:
            crc ^= b
            for _ in range(8):
                crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
        return crc ^ 0xFFFFFFFF


def _exists(path):
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False


def module_file(name):
    """Path of the file module ``name`` runs from (see the module doc), or None."""
    mod = sys.modules.get(name)
    f = getattr(mod, "__file__", None) if mod is not None else None
    if f and _exists(f):
        return f
    for d in sys.path:
        if not isinstance(d, str):
            continue
        for ext in (".py", ".mpy"):
            p = (d + "/" if d and not d.endswith("/") else d) + name.replace(".", "/") + ext
            if not _exists(p):  # a package: its __init__
                p = p[: -len(ext)] + "/__init__" + ext
            if _exists(p):
                return p
    return None


def checksum(modules=METROLOGY_MODULES):
    """CRC-32 (int, 0..2**32-1) over the files of ``modules`` in order; None if one of them
    has no readable file. Reads 256 bytes at a time (no big buffer)."""
    crc = 0
    buf = bytearray(256)
    mv = memoryview(buf)
    for name in modules:
        p = module_file(name)
        if p is None:
            return None
        with open(p, "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                crc = _crc32(mv[:n], crc)
    return crc & 0xFFFFFFFF


def checksum_cached():
    """:func:`checksum` of the metrology modules, computed once per boot."""
    if not _cache:
        _cache.append(checksum())
    return _cache[0]


def hex_text(value, digits=8):
    """``value`` as ``digits`` hexadecimal digits in 7-segment spelling (A b C d E F);
    None -> dashes."""
    if value is None:
        return "-" * digits
    out = []
    for i in range(digits - 1, -1, -1):
        out.append(_HEX7[(value >> (4 * i)) & 0xF])
    return "".join(out)


def checksum_text():
    """The metrology checksum as 8 upper-case hex digits (IEC 62056-21 value), or
    "--------" when it cannot be computed."""
    c = checksum_cached()
    return "--------" if c is None else "%08X" % c
