"""IEC 62056-21 (ex IEC 61107) mode C codec: framing, BCC, baud characters, data sets.

Pure functions over bytes; no I/O, no floats, no board knowledge: what the meter sends and
parses (the client side, requests, option selects, identification parsing, is
tools/iec_client.py, for tests and tools). The meter-side state machine that uses them is
``iec62056.session``. Facts from IEC 62056-21:2002 clause 6 (message formats 6.3, mode C
6.4.3) and ISO 1745 (the BCC):

- Characters are 7-bit ISO 646, sent 7E1 (1 start bit, 7 data bits, even parity, 1 stop
  bit). Callers mask received bytes with 0x7F; :func:`add_parity_into` makes 8N1 bytes
  that look like 7E1 on a wire.
- Request ``/ ? [address] ! CR LF``, address <= 32 letters/digits.
- Identification ``/ XXX Z [\\W] ident CR LF``: XXX manufacturer (FLAG id, 3rd letter lowercase =
  20 ms minimum reaction time), Z baud character, ident <= 16 printable characters.
- Ack/option select ``ACK V Z Y CR LF``.
- Readout ``STX data-lines ! CR LF ETX BCC``; a data set is ``address(value*unit)``, address
  <= 16, value <= 32 (128 in programming mode), unit <= 16, line <= 78 characters; no ``( ) / !``
  in a data set and no ``*`` in the value.
- Command ``SOH C D [STX data-set] ETX|EOT BCC``; data ``STX data-set ETX BCC``; error
  ``STX (text) ETX BCC``, text <= 32 printable characters; the standard advises ``ER`` first
  so that an error cannot be read as data.
- BCC (ISO 1745 longitudinal redundancy check): XOR of every byte after the first SOH/STX up
  to and including ETX/EOT, 7 bits; e.g. ``SOH B 0 ETX`` -> 0x42 ^ 0x30 ^ 0x03 = 0x71 ``q``.
- Mode C/E baud characters ``'0'..'6'`` = 300, 600, 1200, 2400, 4800, 9600, 19200 Bd
  (``'7'..'9'`` reserved).

Text arguments are ``str``; messages are returned as ``bytes``/``bytearray``. Malformed input
raises ``ValueError`` (a wrong BCC raises its subclass :class:`BccError`).
"""

from micropython import const

SOH = const(0x01)
STX = const(0x02)
ETX = const(0x03)
EOT = const(0x04)
ACK = const(0x06)
NAK = const(0x15)
CR = const(0x0D)
LF = const(0x0A)

MAX_DEVICE_ADDRESS = const(32)  # request address, characters
MAX_IDENT = const(16)  # identification text after Z (and \W)
MAX_SET_ADDRESS = const(16)  # data-set address (OBIS code)
MAX_VALUE = const(32)  # data-set value, readout
MAX_VALUE_PROG = const(128)  # data-set value, programming mode C
MAX_UNIT = const(16)
MAX_LINE = const(78)  # readout line without CR LF
MAX_ERROR = const(32)  # error message text

# Mode C/E baud-rate character '0'..'6' (IEC 62056-21 6.3, the baud rate identification Z).
BAUD_RATES = (300, 600, 1200, 2400, 4800, 9600, 19200)

ACK_MSG = b"\x06"
NAK_MSG = b"\x15"
BREAK_MSG = b"\x01B0\x03q"  # SOH B 0 ETX BCC, complete sign-off

_SLASH = const(0x2F)
_QMARK = const(0x3F)
_EXCL = const(0x21)
_LPAR = const(0x28)
_RPAR = const(0x29)
_STAR = const(0x2A)
_BSLASH = const(0x5C)

# Even-parity bit (bit 7) for each 7-bit character, built once at import.
_PARITY = bytearray(128)
for _c in range(128):
    _p = 0
    _v = _c
    while _v:
        _p ^= _v & 1
        _v >>= 1
    _PARITY[_c] = _p << 7
del _c, _p, _v


class BccError(ValueError):
    """A message whose block check character does not match (answer it with NAK)."""


# ---------------------------------------------------------------------------------------------
# Character level


def add_parity_into(buf, n=-1):
    """Set the even-parity bit on the first ``n`` bytes (all when n < 0) of the bytearray or
    writable memoryview ``buf`` in place; returns ``buf``. Allocation-free."""
    if n < 0:
        n = len(buf)
    for i in range(n):
        c = buf[i] & 0x7F
        buf[i] = c | _PARITY[c]
    return buf


# ---------------------------------------------------------------------------------------------
# Block check character (ISO 1745 longitudinal redundancy check)


def bcc_span(data, start, end):
    """XOR of ``data[start:end]`` masked to 7 bits (0..127), without slicing."""
    x = 0
    for i in range(start, end):
        x ^= data[i]
    return x & 0x7F


def bcc(data, n=-1):
    """BCC (0..127) of a message in ``data`` (first ``n`` bytes; all when n < 0).

    If data[0] is SOH or STX it is skipped (the BCC starts after the first SOH/STX); the XOR
    then runs up to and including the first ETX or EOT, or to the end when there is none. So
    ``bcc(b"B0\\x03") == bcc(b"\\x01B0\\x03") == 0x71`` ('q').
    """
    if n < 0:
        n = len(data)
    i = 0
    if n and (data[0] == SOH or data[0] == STX):
        i = 1
    x = 0
    while i < n:
        c = data[i]
        x ^= c
        i += 1
        if c == ETX or c == EOT:
            break
    return x & 0x7F


def _append_bcc(out):
    out.append(bcc(out))
    return out


# ---------------------------------------------------------------------------------------------
# Field checks


def _alnum(c):
    return 0x30 <= c <= 0x39 or 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A


def same_address(a, b):
    """True if the device addresses ``a`` and ``b`` (str) are the same: equal text, or, when
    both are all digits, equal without leading zeros (``/?0012!`` addresses meter ``12``).
    The meter's session matches a request's address with it, the bus master a reply's."""
    if a == b:
        return True
    if not a or not b:
        return False
    for s in (a, b):
        for ch in s:
            if ch < "0" or ch > "9":
                return False
    return a.lstrip("0") == b.lstrip("0")


def _letter(c):
    return 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A


def _field(text, maxlen, what, no_star):
    # `text` (str) encoded, after checking the data-set character rules.
    b = text.encode()
    if len(b) > maxlen:
        raise ValueError(what + " too long")
    for c in b:
        if c < 0x20 or c > 0x7E or c == _LPAR or c == _RPAR or c == _SLASH or c == _EXCL:
            raise ValueError(what + " char")
        if no_star and c == _STAR:
            raise ValueError(what + " char")
    return b


def put_data_set(out, address, value, unit=None, max_value=MAX_VALUE):
    """Append ``address(value*unit)`` (or ``address(value)`` when unit is None or '') to the
    bytearray ``out``. Limits: address <= 16, value <= ``max_value`` (32 readout, 128
    programming), unit <= 16 printable characters; none may contain ``( ) / !`` and value and
    unit may not contain ``*``. Raises ValueError (or TypeError for non-str fields)
    before anything is appended."""
    a = _field(address, MAX_SET_ADDRESS, "address", False)
    v = _field(value, max_value, "value", True)
    u = _field(unit, MAX_UNIT, "unit", True) if unit else None
    out.extend(a)
    out.append(_LPAR)
    out.extend(v)
    if u:
        out.append(_STAR)
        out.extend(u)
    out.append(_RPAR)
    return out


def parse_data_set(text):
    """Split a data set ``address(value*unit)`` / ``address(value)`` / ``(value)`` (str) into
    ``(address, value, unit)``; address may be '', unit is None when absent. Raises
    ValueError if the parentheses are missing or nested."""
    i = text.find("(")
    if i < 0 or len(text) < i + 2 or text[-1] != ")":
        raise ValueError("data set")
    inner = text[i + 1 : -1]
    if "(" in inner or ")" in inner:
        raise ValueError("data set")
    j = inner.find("*")
    if j >= 0:
        return text[:i], inner[:j], inner[j + 1 :]
    return text[:i], inner, None


# ---------------------------------------------------------------------------------------------
# Sign-on messages


def parse_request(msg, n=-1):
    """Device address (str, '' when absent) of a request ``/?[address]!CR LF`` in the first
    ``n`` bytes of ``msg`` (7-bit). Raises ValueError if it is not a request, the address is
    longer than 32 characters or holds anything but letters and digits."""
    if n < 0:
        n = len(msg)
    if (
        n < 5
        or msg[0] != _SLASH
        or msg[1] != _QMARK
        or msg[n - 3] != _EXCL
        or msg[n - 2] != CR
        or msg[n - 1] != LF
    ):
        raise ValueError("not a request")
    if n - 5 > MAX_DEVICE_ADDRESS:
        raise ValueError("address too long")
    for i in range(2, n - 3):
        if not _alnum(msg[i]):
            raise ValueError("address char")
    return bytes(msg[2 : n - 3]).decode()


def short_reaction(manufacturer):
    """True if the manufacturer id's 3rd letter is lowercase: the meter's minimum reaction
    time is then 20 ms instead of 200 ms."""
    return len(manufacturer) == 3 and "a" <= manufacturer[2] <= "z"


def build_identification(manufacturer, baud_char, ident, escape=None):
    """``/ XXX Z [\\W] ident CR LF`` as bytes.

    manufacturer: 3 letters (FLAG id); baud_char: one printable character other than
    ``/ ! \\`` (mode C: '0'..'6'); ident: <= 16 printable characters without ``/ !`` and not
    starting with ``\\``; escape: None or one printable character W (``\\2`` = mode E).
    Raises ValueError.
    """
    m = manufacturer.encode()
    if len(m) != 3 or not (_letter(m[0]) and _letter(m[1]) and _letter(m[2])):
        raise ValueError("manufacturer")
    z = baud_char.encode()
    if len(z) != 1 or z[0] < 0x21 or z[0] > 0x7E or z[0] in (_SLASH, _EXCL, _BSLASH):
        raise ValueError("baud char")
    t = ident.encode()
    if len(t) > MAX_IDENT or (t and t[0] == _BSLASH):
        raise ValueError("ident")
    for c in t:
        if c < 0x20 or c > 0x7E or c == _SLASH or c == _EXCL:
            raise ValueError("ident char")
    out = bytearray(b"/")
    out.extend(m)
    out.extend(z)
    if escape is not None:
        e = escape.encode()
        if len(e) != 1 or e[0] < 0x21 or e[0] > 0x7E or e[0] in (_SLASH, _EXCL, _BSLASH):
            raise ValueError("escape")
        out.append(_BSLASH)
        out.extend(e)
    out.extend(t)
    out.extend(b"\r\n")
    return bytes(out)


def parse_option_select(msg, n=-1):
    """``(v, z, y)`` (one-character strs) of ``ACK V Z Y CR LF``. Raises ValueError when the
    frame is not exactly that or a character is not printable."""
    if n < 0:
        n = len(msg)
    if n != 6 or msg[0] != ACK or msg[4] != CR or msg[5] != LF:
        raise ValueError("not an option select")
    for i in (1, 2, 3):
        if msg[i] < 0x20 or msg[i] > 0x7E:
            raise ValueError("option char")
    return chr(msg[1]), chr(msg[2]), chr(msg[3])


# ---------------------------------------------------------------------------------------------
# Readout and programming-mode messages


def build_readout(items, skip_invalid=False):
    """Readout data message ``STX lines ! CR LF ETX BCC`` as a bytearray.

    items: iterable of ``(address, value, unit)`` (str, str, str or None); each becomes one
    line ``address(value*unit) CR LF`` (<= 67 characters given the field limits, so within
    the 78-character line limit). An item breaking the field rules raises ValueError, or is
    left out when ``skip_invalid`` is True.
    """
    out = bytearray()
    out.append(STX)
    for item in items:
        try:
            put_data_set(out, item[0], item[1], item[2])
        except (ValueError, TypeError, IndexError, AttributeError, UnicodeError):
            if not skip_invalid:
                raise ValueError("readout item") from None
            continue
        out.append(CR)
        out.append(LF)
    out.extend(b"!\r\n")
    out.append(ETX)
    return _append_bcc(out)


def build_command(cmd, ctype, data=None):
    """Command message ``SOH C D STX data ETX BCC`` (``SOH C D ETX BCC`` when data is None) as
    a bytearray. cmd: one of 'P W R E B'; ctype: 0..9; data: str of printable characters."""
    if len(cmd) != 1 or cmd not in "PWREB":
        raise ValueError("command")
    if not 0 <= ctype <= 9:
        raise ValueError("command type")
    out = bytearray((SOH, ord(cmd), 0x30 + ctype))
    if data is not None:
        out.append(STX)
        b = data.encode()
        for c in b:
            if c < 0x20 or c > 0x7E:
                raise ValueError("data char")
        out.extend(b)
    out.append(ETX)
    return _append_bcc(out)


def parse_command(frame, n=-1):
    """Parse a command ``SOH C D [STX data] ETX|EOT BCC`` held in the first ``n`` bytes of
    ``frame`` (7-bit). Returns ``(cmd, ctype, data, partial)``: cmd 'P'/'W'/'R'/'E'/'B',
    ctype 0..9, data str or None (no data set), partial True when the block ends with EOT.
    Raises BccError on a BCC mismatch and ValueError on any other malformation."""
    if n < 0:
        n = len(frame)
    if n < 5 or frame[0] != SOH:
        raise ValueError("not a command")
    end = frame[n - 2]
    if end != ETX and end != EOT:
        raise ValueError("no ETX/EOT")
    if bcc_span(frame, 1, n - 1) != frame[n - 1] & 0x7F:
        raise BccError("BCC")
    c = frame[1]
    if c not in b"PWREB":
        raise ValueError("command")
    d = frame[2] - 0x30
    if d < 0 or d > 9:
        raise ValueError("command type")
    data = None
    if n > 5:
        if frame[3] != STX:
            raise ValueError("no STX")
        for i in range(4, n - 2):
            if frame[i] < 0x20 or frame[i] > 0x7E:
                raise ValueError("data char")
        data = bytes(frame[4 : n - 2]).decode()
    return chr(c), d, data, end == EOT


def build_data(address, value, unit=None, max_value=MAX_VALUE_PROG):
    """Programming-mode data message ``STX address(value*unit) ETX BCC`` as a bytearray
    (value <= 128 characters by default). A tuple ``value`` gives one data set with several
    value groups, ``address(v1)(v2)...`` (each <= 128 characters, no unit; the manufacturer
    practice of e.g. EMH's ``1.6.1(value)(time)``): for a value longer than one group.
    Raises ValueError (see :func:`put_data_set`)."""
    out = bytearray()
    out.append(STX)
    if isinstance(value, tuple):
        put_data_set(out, address, value[0], None, max_value)
        for v in value[1:]:
            put_data_set(out, "", v, None, max_value)
    else:
        put_data_set(out, address, value, unit, max_value)
    out.append(ETX)
    return _append_bcc(out)


def build_error(code):
    """Error message ``STX (text) ETX BCC`` as a bytearray. code: int 0..99 gives ``ERnn``;
    a str is sent as is (<= 32 printable characters, no ``( ) * / !``)."""
    if isinstance(code, int):
        if not 0 <= code <= 99:
            raise ValueError("error code")
        text = "ER%02d" % code
    else:
        text = code
    out = bytearray()
    out.append(STX)
    out.append(_LPAR)
    out.extend(_field(text, MAX_ERROR, "error", True))
    out.append(_RPAR)
    out.append(ETX)
    return _append_bcc(out)


# ---------------------------------------------------------------------------------------------
# Clock values for a readout list


def date_time_text(secs):
    """``(date, time)`` texts ``'YYMMDD'`` and ``'hhmmss'`` for ``secs`` (int, seconds since
    2000-01-01 00:00:00, the board RTC epoch; 0 .. 2099-12-31), as read out under 0.9.2 and
    0.9.1 by many IEC 62056-21 meters (lib/civil does the calendar)."""
    from civil import civil

    y, m, d, hh, mi, ss, _wd = civil(secs)
    return "%02d%02d%02d" % (y % 100, m, d), "%02d%02d%02d" % (hh, mi, ss)
