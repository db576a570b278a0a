"""IEC 62056-21 mode C readout, the client (bus master) side: a sans-IO state machine.

The concentrator (firmware/uplink/concentrator.py) reads the meters on its RS-485 bus with
it; it never touches a UART. One :class:`Client` reads one meter at a time::

    act = c.start(address, now)      # -> (at_ms, b"/?address!\\r\\n", 0)
    ... send act's data at act[0]; once its last stop bit is out: c.sent(now);
        then switch the UART to act[2] (7E1) when it is not 0 ...
    act = c.feed(buf, now, n)        # received bytes -> an action or None
    act = c.poll(now)                # timeouts -> an action or None
    until c.done: c.readout (a Readout) or c.error / c.step / c.detail

Actions are tuples ``(at_ms, data, baud)`` as in ``iec62056.session``: wait until ticks
``at_ms`` (lib/ticks, real time, wrapping at 2**30), send ``data`` (bytes), call
:meth:`Client.sent` when it has left the UART, then switch to ``baud`` if not 0.

The exchange (IEC 62056-21:2002 6.4.3, mode C, protocol mode "readout")::

    -> / ? address ! CR LF                     at 300 Bd 7E1
    <- / XXX Z [\\W] ident CR LF               identification (Z: the highest baud offered)
    -> ACK 0 Z' 0 CR LF                        Z' = min(Z, max_baud); then both switch to Z'
    <- STX data-lines ! CR LF ETX BCC          the readout
    -> NAK (at most ``nak_retries`` times)     on a wrong BCC: the meter repeats it

Mode A/B meters (a Z that is not '0'..'6', or a letter 'A'..'F') are read without the option
select: after the identification they send the readout at once, at 300 Bd (mode A) or at
the mode B rate (the client switches with the identification). Escape ``\\2`` (mode E) is
ignored: the readout is requested in mode C.

Timing (6.3.14 and the reference table of reaction times): the meter answers within
``reaction_ms`` (tr <= 1500 ms) of the end of our message; characters of a message follow
each other within ``gap_ms`` (ta < 1500 ms); ``margin_ms`` (default 300) is added to both
for line turn-around and a loaded host. The option select goes out ``ack_delay_ms``
(default 200, tr's minimum) after the identification. A readout must also end within
``reaction + 2 x max_bytes character times + margin`` of the option select (a meter that
drips one byte per second cannot hold the bus for ever).

Bounded memory: the identification is at most 25 characters, a readout line at most
``max_line`` (128: the standard's 78 with room for meters that exceed it) and the readout
``max_bytes`` (2048) bytes and ``max_sets`` (64) data sets; beyond any bound the read ends
with E_OVERFLOW, so a meter sending endless bytes never grows the heap. Received bytes are
masked to 7 bits (7E1).

Errors (``error``, with ``step`` = the message awaited, ``detail`` = a short text):

==========  ===================================================================
E_TIMEOUT   no answer / a gap longer than ta / the readout did not end in time
E_BCC       the readout's BCC was wrong (after the NAK retries)
E_GARBAGE   bytes that are not the message awaited (a malformed identification,
            data set or end of readout; noise before the first character)
E_OVERFLOW  a message beyond its bound (identification, line, readout, data sets)
E_ADDRESS   the readout's 0.0.0 (device address) is not the address polled: an
            other meter answered (``check_address``; leading zeros ignored when both
            are digits, as the meter side does)
==========  ===================================================================
"""

from micropython import const

from iec62056.codec import (
    ACK,
    BAUD_RATES,
    CR,
    ETX,
    LF,
    MAX_DEVICE_ADDRESS,
    MAX_IDENT,
    NAK_MSG,
    STX,
    parse_data_set,
    same_address,
)
from ticks import ticks_add, ticks_diff

E_NONE = const(0)
E_TIMEOUT = const(1)
E_BCC = const(2)
E_GARBAGE = const(3)
E_OVERFLOW = const(4)
E_ADDRESS = const(5)
ERROR_NAMES = ("ok", "timeout", "bcc", "garbage", "overflow", "address")

# steps (the message awaited)
S_IDLE = const(0)
S_IDENT = const(1)
S_READOUT = const(2)
S_DONE = const(3)
STEP_NAMES = ("idle", "identification", "readout", "done")

_SLASH = const(0x2F)
_EXCL = const(0x21)
_BSLASH = const(0x5C)
_IDENT_MAX = const(25)  # / XXX Z \W ident(16) CR LF
_NOISE_MAX = const(16)  # stray bytes tolerated before a message starts
_MODE_B = "ABCDEF"  # mode B baud characters: 600 .. 19200 Bd


def _alnum(c):
    return "0" <= c <= "9" or "A" <= c <= "Z" or "a" <= c <= "z"


def check_address(address):
    """Raise ValueError unless ``address`` is 1..32 letters and digits (a bus address:
    ``/?!`` without one would make every meter on the bus answer)."""
    if not isinstance(address, str) or not 0 < len(address) <= MAX_DEVICE_ADDRESS:
        raise ValueError("bus address must be 1..%d letters/digits" % MAX_DEVICE_ADDRESS)
    for ch in address:
        if not _alnum(ch):
            raise ValueError("bus address %r: only letters and digits" % address)


class Readout:
    """A meter's readout: ``address`` (polled), ``manufacturer`` (3 letters), ``baud_char``,
    ``ident`` (<= 16 characters), ``baud`` (the readout's rate, Bd) and ``data``, a list of
    ``(address, value, unit)`` str tuples (unit None when absent; a data set of several
    values gives one tuple per value, same address) in the meter's order."""

    def __init__(self, address, manufacturer, baud_char, ident, baud, data):
        self.address = address
        self.manufacturer = manufacturer
        self.baud_char = baud_char
        self.ident = ident
        self.baud = baud
        self.data = data

    def get(self, code, default=None):
        """The first value (str) read out under ``code``, or ``default``."""
        for a, v, _u in self.data:
            if a == code:
                return v
        return default


class Client:
    """Reads one meter at a time (see the module docstring). Times in ms; ``max_baud``:
    the highest rate accepted (a mode C meter offering more is asked for this one)."""

    def __init__(self, max_baud=9600, reaction_ms=1500, gap_ms=1500, margin_ms=300,
                 ack_delay_ms=200, max_bytes=2048, max_line=128, max_sets=64, nak_retries=1,
                 check_address=True):
        zmax = "0"
        for i, b in enumerate(BAUD_RATES):
            if b <= max_baud:
                zmax = str(i)
        self._zmax = zmax
        self.reaction_ms = reaction_ms
        self.gap_ms = gap_ms
        self.margin_ms = margin_ms
        self.ack_delay_ms = ack_delay_ms
        self.max_bytes = max_bytes
        self.max_sets = max_sets
        self.nak_retries = nak_retries
        self.check_address = check_address
        self._line = bytearray(max_line)
        self._ident = bytearray(_IDENT_MAX)
        self.step = S_IDLE
        self.done = False
        self.readout = None
        self.error = E_NONE
        self.detail = ""
        self.address = ""
        self.step_failed = S_IDLE  # the step a failed read was in
        self.rx = 0  # bytes received in this read

    # -- API ---------------------------------------------------------------------------

    def start(self, address, now):
        """Begin reading the meter at ``address`` (1..32 letters/digits; ValueError
        otherwise). The UART must be at 300 Bd 7E1. Returns the request action."""
        check_address(address)
        self.address = address
        self.step = S_IDENT
        self.done = False
        self.readout = None
        self.error = E_NONE
        self.detail = ""
        self.rx = 0
        self.step_failed = S_IDLE
        self._n = 0  # bytes in the identification / line buffer
        self._noise = 0
        self._naks = 0
        self._baud = 300
        self._mfr = self._z = self._id = ""
        # a guard until sent() gives the real deadline (a driver that never calls it)
        self._deadline = ticks_add(now, 2000 + self.reaction_ms + self.margin_ms)
        self._readout_end = None
        self._last_rx = now
        return (now, b"/?" + address.encode() + b"!\r\n", 0)

    def sent(self, now):
        """The last action's data has left the UART (its last stop bit) at ``now``: the
        meter's reaction time counts from here."""
        self._deadline = ticks_add(now, self.reaction_ms + self.margin_ms)
        if self.step == S_READOUT and self._readout_end is None:
            char_ms = (10000 + self._baud - 1) // self._baud
            self._readout_end = ticks_add(now, self.reaction_ms + self.margin_ms
                                          + 2 * self.max_bytes * char_ms)

    def feed(self, data, now, n=-1):
        """Bytes received (first ``n`` of ``data``; all when n < 0) at ``now``; returns an
        action or None. Never raises on any input."""
        if n < 0:
            n = len(data)
        act = None
        for i in range(n):
            if self.done:
                break
            self.rx += 1
            a = self._byte(data[i] & 0x7F, now)
            if a is not None:
                act = a
        self._last_rx = now
        if not self.done and self._deadline is not None and self._started():
            self._deadline = ticks_add(now, self.gap_ms + self.margin_ms)
        return act

    def poll(self, now):
        """Check the timeouts at ``now``; returns None (a timeout only ends the read)."""
        if self.done or self.step == S_IDLE:
            return None
        if self._deadline is not None and ticks_diff(now, self._deadline) > 0:
            self._fail(E_TIMEOUT, "gap" if self._started() else "no answer")
        elif self._readout_end is not None and ticks_diff(now, self._readout_end) > 0:
            self._fail(E_TIMEOUT, "readout too slow")
        return None

    def next_deadline(self, now):
        """ms until the next timeout check is due (for the driver's sleep), >= 0."""
        if self.done or self._deadline is None:
            return 0
        d = ticks_diff(self._deadline, now)
        return d if d > 0 else 0

    # -- the state machine -------------------------------------------------------------

    def _started(self):
        return self._n > 0 or (self.step == S_READOUT and self._in_data)

    def _fail(self, code, detail):
        self.error = code
        self.detail = detail
        self.done = True
        self.readout = None
        self._data = None
        self.step_failed = self.step
        self.step = S_DONE

    def _byte(self, c, now):
        if self.step == S_IDENT:
            return self._ident_byte(c, now)
        if self.step == S_READOUT:
            return self._readout_byte(c, now)
        return None

    def _ident_byte(self, c, now):
        n = self._n
        if n == 0 and c != _SLASH:  # noise before the identification (line turn-around)
            self._noise += 1
            if self._noise > _NOISE_MAX:
                self._fail(E_GARBAGE, "noise before identification")
            return None
        if n >= _IDENT_MAX:
            self._fail(E_OVERFLOW, "identification too long")
            return None
        self._ident[n] = c
        self._n = n = n + 1
        if c != LF:
            if c != CR and (c < 0x20 or c > 0x7E):
                self._fail(E_GARBAGE, "identification char")
            return None
        return self._identified(now)

    def _identified(self, now):
        b = self._ident
        n = self._n
        self._n = 0
        if n < 7 or b[n - 2] != CR:
            self._fail(E_GARBAGE, "identification")
            return None
        for i in range(1, 4):
            ch = chr(b[i])
            if not ("A" <= ch <= "Z" or "a" <= ch <= "z"):
                self._fail(E_GARBAGE, "manufacturer")
                return None
        z = chr(b[4])
        i = 5
        if n - 2 > 6 and b[5] == _BSLASH:  # \W escape (e.g. \2 = mode E offered)
            i = 7
        ident = bytes(b[i:n - 2]).decode()
        if len(ident) > MAX_IDENT or "/" in ident or "!" in ident:
            self._fail(E_GARBAGE, "ident")
            return None
        self._mfr = bytes(b[1:4]).decode()
        self._z = z
        self._id = ident
        self.step = S_READOUT
        self._start_readout()
        self._readout_end = None
        if "0" <= z <= "6":  # mode C: option select for a readout at min(Z, max_baud)
            zz = z if z <= self._zmax else self._zmax
            self._baud = BAUD_RATES[ord(zz) - 0x30]
            msg = bytes((ACK, 0x30, ord(zz), 0x30, CR, LF))
            # until the option select has left (sent()): a guard
            self._deadline = ticks_add(now, self.ack_delay_ms + 1000 + self.reaction_ms)
            return (ticks_add(now, self.ack_delay_ms), msg, self._baud)
        # mode A (stays at 300 Bd) or B (switches now): the readout follows by itself
        if z in _MODE_B:
            self._baud = BAUD_RATES[1 + _MODE_B.find(z)]
        self.sent(now)
        return (now, None, self._baud if self._baud != 300 else 0)

    def _start_readout(self):
        self._n = 0
        self._in_data = False
        self._bcc = 0
        self._etx = False
        self._end_line = False
        self._bytes = 0
        self._bad = ""
        self._data = []

    def _readout_byte(self, c, now):
        if not self._in_data:
            if c != STX:
                self._noise += 1
                if self._noise > _NOISE_MAX:
                    self._fail(E_GARBAGE, "no STX")
                return None
            self._in_data = True
            return None
        self._bytes += 1
        if self._bytes > self.max_bytes:
            self._fail(E_OVERFLOW, "readout longer than %d bytes" % self.max_bytes)
            return None
        if self._etx:  # the BCC
            return self._ended(c, now)
        self._bcc ^= c
        if c == ETX:
            self._etx = True
            if self._n and not self._bad:
                self._bad = "unterminated line"
            if not self._end_line and not self._bad:
                self._bad = "no end of readout"
            return None
        if self._end_line:  # only ETX may follow "!" CR LF
            if not self._bad:
                self._bad = "data after end of readout"
            return None
        if c == LF:
            self._line_done()
            return None
        n = self._n
        if n >= len(self._line):
            self._fail(E_OVERFLOW, "line longer than %d" % len(self._line))
            return None
        self._line[n] = c
        self._n = n + 1
        return None

    def _line_done(self):
        n = self._n
        self._n = 0
        if n and self._line[n - 1] == CR:
            n -= 1
        else:
            if not self._bad:
                self._bad = "LF without CR"
            return
        if n == 1 and self._line[0] == _EXCL:
            self._end_line = True
            return
        if self._bad:
            return
        try:
            self._sets(bytes(self._line[:n]).decode())
        except (ValueError, UnicodeError):
            self._bad = "data set"

    def _sets(self, text):
        # one line: address(value*unit)... ; a data set may have several (value) groups
        d = self._data
        i = 0
        addr = ""
        m = len(text)
        while i < m:
            j = text.find("(", i)
            k = text.find(")", i)
            if j < 0 or k < j:
                raise ValueError("data set")
            if j > i:
                addr = text[i:j]
            for ch in addr:
                if ch < " " or ch > "~" or ch in "/!":
                    raise ValueError("address char")
            a, v, u = parse_data_set(addr + text[j:k + 1])
            for ch in v:
                if ch < " " or ch > "~":
                    raise ValueError("value char")
            if len(d) >= self.max_sets:
                self._fail(E_OVERFLOW, "more than %d data sets" % self.max_sets)
                return
            d.append((a, v, u))
            i = k + 1

    def _ended(self, c, now):
        if self._bcc & 0x7F != c:
            if self._naks < self.nak_retries:  # ask for the readout again (6.3.14 NAK)
                self._naks += 1
                self._start_readout()
                self._noise = 0
                self._deadline = ticks_add(now, 1000 + self.reaction_ms)  # until sent()
                self._readout_end = None
                return (now, NAK_MSG, 0)
            self._fail(E_BCC, "BCC %02x, expected %02x" % (c, self._bcc & 0x7F))
            return None
        if self._bad:
            self._fail(E_GARBAGE, self._bad)
            return None
        r = Readout(self.address, self._mfr, self._z, self._id, self._baud, self._data)
        if self.check_address:
            a = r.get("0.0.0")
            if a is not None and not same_address(a, self.address):
                self._fail(E_ADDRESS, "0.0.0 is %s" % a[:MAX_DEVICE_ADDRESS])
                return None
        self.readout = r
        self._data = None
        self.step = S_DONE
        self.done = True
        return None
