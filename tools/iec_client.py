"""IEC 62056-21 mode C, the client side (a hand-held unit or a head-end): the messages a
meter never sends and the checks a client makes. For the host tests and tools
(tools/fuzz_iec.py, tools/bench_trust.py); the meter's own codec is lib/iec62056/codec.py,
whose constants and BCC this uses. Runs on CPython and MicroPython.
"""

from iec62056.codec import (  # noqa: F401  (re-exported for the tests)
    _PARITY,
    ACK,
    BAUD_RATES,
    CR,
    EOT,
    ETX,
    LF,
    MAX_DEVICE_ADDRESS,
    MAX_IDENT,
    MAX_VALUE,
    SOH,
    STX,
    _alnum,
    bcc,
    put_data_set,
)

_SLASH = 0x2F
_EXCL = 0x21
_BSLASH = 0x5C


def add_even_parity(b):
    """Return the 7-bit character ``b`` (0..127; bit 7 is ignored) with bit 7 set to its even
    parity, so an 8N1 UART puts a 7E1 character on the wire (both frames are 10 bits)."""
    b &= 0x7F
    return b | _PARITY[b]


def strip_parity(b):
    """Return ``b`` (0..255) with the parity bit 7 removed (0..127)."""
    return b & 0x7F


def parity_ok(b):
    """True if bit 7 of ``b`` (0..255) is the even parity of bits 0..6."""
    return (b & 0x80) == _PARITY[b & 0x7F]


def strip_parity_into(buf, n=-1):
    """Clear bit 7 on the first ``n`` bytes (all when n < 0) of ``buf`` in place; returns buf."""
    if n < 0:
        n = len(buf)
    for i in range(n):
        buf[i] &= 0x7F
    return buf


def baud_for_char(z):
    """Baud rate (int, 300..19200) for the mode C/E baud character ``z`` ('0'..'6', str or
    int code). Raises ValueError for any other character (7-9 are reserved)."""
    if isinstance(z, str):
        if len(z) != 1:
            raise ValueError("baud char")
        z = ord(z)
    i = z - 0x30
    if i < 0 or i >= len(BAUD_RATES):
        raise ValueError("baud char")
    return BAUD_RATES[i]


def char_for_baud(baud):
    """Mode C/E baud character ('0'..'6') for ``baud`` (300..19200). Raises ValueError."""
    for i in range(len(BAUD_RATES)):
        if BAUD_RATES[i] == baud:
            return chr(0x30 + i)
    raise ValueError("baud")


def data_set(address, value, unit=None, max_value=MAX_VALUE):
    """Return the data set ``address(value*unit)`` as bytes (see :func:`put_data_set`)."""
    return bytes(put_data_set(bytearray(), address, value, unit, max_value))


def build_request(address=""):
    """``/?address!CR LF`` as bytes; address '' (all meters) or <= 32 letters/digits."""
    b = address.encode()
    if len(b) > MAX_DEVICE_ADDRESS:
        raise ValueError("address too long")
    for c in b:
        if not _alnum(c):
            raise ValueError("address char")
    return b"/?" + b + b"!\r\n"


def parse_identification(msg, n=-1):
    """``(manufacturer, baud_char, escape, ident)`` (str; escape None when there is no ``\\W``)
    of an identification message. Raises ValueError."""
    if n < 0:
        n = len(msg)
    if n < 7 or msg[0] != _SLASH or msg[n - 2] != CR or msg[n - 1] != LF:
        raise ValueError("not an identification")
    for i in range(1, n - 2):
        if msg[i] < 0x20 or msg[i] > 0x7E:
            raise ValueError("ident char")
    s = bytes(msg[1 : n - 2]).decode()
    esc = None
    rest = s[4:]
    if len(rest) >= 2 and rest[0] == "\\":
        esc = rest[1]
        rest = rest[2:]
    if len(rest) > MAX_IDENT:
        raise ValueError("ident too long")
    return s[:3], s[3], esc, rest


def build_option_select(v, z, y):
    """``ACK V Z Y CR LF`` as bytes; each argument is one character (V protocol control
    '0' normal / '1' secondary / '2' HDLC, Z baud character, Y mode '0' readout /
    '1' programming / '2' binary)."""
    return bytes((ACK, ord(v), ord(z), ord(y), CR, LF))


def check_bcc(frame, n=-1):
    """True if the last byte of ``frame`` (first ``n`` bytes) is the BCC of what precedes it
    (bit 7 of the received BCC is ignored)."""
    if n < 0:
        n = len(frame)
    if n < 2:
        return False
    return bcc(frame, n - 1) == frame[n - 1] & 0x7F
