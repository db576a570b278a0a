"""Meter-side IEC 62056-21 mode C session: a sans-IO state machine.

Feed it the bytes a port received and the (real) time, and it hands back what to send and
when. It never touches a UART; ``firmware/ports/pump.py`` pumps a port through it.

States::

    IDLE (300 Bd) --/?addr!--> IDENT --ACK 0 Z 0--> READOUT --(hold time)--> IDLE
                                     --ACK 0 Z 1--> PROG --B0 / inactivity / sign-on /
                                                          link lost--> IDLE

Actions. ``feed(data, now_ms)`` and ``poll(now_ms)`` return None or one action, a tuple
``(at_ms, data, baud)``: wait until ticks ``at_ms``, send ``data`` (bytes-like, or None for
nothing), wait until the UART has shifted out the last stop bit, then, if ``baud`` is not 0,
switch the port to ``baud`` (7E1). Call ``poll`` again until it returns None; actions come out in
order. Times are ``ticks.ticks_ms()`` values (lib/ticks: wrapping at 2**30); use the real
clock, not the
virtual board's accelerated metering clock.

Timing (IEC 62056-21:2002 6.3 and 6.4.3; the programming-mode inactivity default is the
inactivity_time_out of the DLMS IEC HDLC setup class 23, 120 s):

- reaction time ``reaction_ms`` (default 200, clamped to 200..1500, or 20..1500 when the
  manufacturer id's 3rd letter is lowercase) from the end of a received message to the answer;
- the first answer after the option select waits ``switch_ms`` (default 800, clamped to
  reaction..1500): clients switch their baud rate after the ACK, and pyserial-based clients
  re-open the port and lose anything that arrives within about 0.6 s;
- character gap ``gap_ms`` (default 1500): a partly received message older than this is dropped
  (in IDENT the session also returns to IDLE);
- ``ack_timeout_ms`` (default 3000): no valid option select after the identification -> IDLE;
- ``readout_hold_ms`` (default 1500): after the readout the port stays at the new baud rate this
  long so a NAK can ask for a repeat (at most 3), then returns to IDLE at 300 Bd;
- ``inactivity_ms`` (default 120000, the class 23 default): no valid message in programming mode
  -> IDLE at 300 Bd. Counted from the end of the meter's answer to the last *valid* message
  (a command frame with a right BCC that parses); a frame with a bad BCC (answered NAK),
  malformed frames, junk and NAK repeats do not restart it.

Addressing: ``/?<address>!`` is answered when the address equals ``device_address`` (letters and
digits; when both are all digits, leading zeros are ignored, as bus masters send them with or
without). ``/?!`` (no
address) is answered only when ``answer_unaddressed`` is True. Rule used: True on the optical
port (point to point, every meter answers ``/?!``); False on RS-485, where several meters share
the bus and an unaddressed request would make them all answer at once. Set it True on RS-485
only when the bus is wired point to point to a single meter. A request for another address
puts a session in IDENT back to IDLE (the bus master is talking to another meter).

Programming rights (the session rule, docs/PORTS.md): a right P1 gives rights to this
session only, and they end, with the session back in IDLE at 300 Bd, at the first of: B0/B1;
any sign-on request ``/?...!`` on the port, to any address (one for this meter is answered
as a new sign-on, without rights); :meth:`Session.link_lost` (the port task calls it when the
TCP peer closes or is replaced, or the bus connection drops; queued answers are dropped, so
nothing meant for the old peer reaches a new one); ``inactivity_ms`` without a valid message.
Rights never outlive the dialogue that earned them.

Programming mode (ACK 0 Z 1): the meter sends ``SOH P0 STX (operand) ETX BCC`` (operand =
``p0_operand``, default the device address), then accepts:

- ``P1 (password)``: plain password compared with ``passwords`` -> ACK, else ``(ER02)``. The
  wrong-password lockout is a ``lockout.Lockout`` (pass one to share it between the meter's
  ports; without one the session makes its own from ``max_failures`` (default 3) and
  ``lockout_ms`` (default 600000 = 10 min)); while locked the answer is ``(ER03)``, also for
  a right password. Each failure, the lockout and every P1 during it are reported through
  ``on_event``. Lockout time is ``time_s()`` (RTC seconds) when given, else the session's
  own monotonic seconds. Default password: ``DEFAULT_PASSWORD`` = ``"00000000"``; change it
  by passing a callable that returns the current one (a str or a tuple); when it returns
  None no password is accepted at all and P1 gets ``(ER06)`` (the meter's password is not
  trusted: firmware/ports/iec.py asks for the open seal then).
- ``R1 ADDR()`` or ``R1 ADDR(1)``: ``reader(address) -> (value_text, unit or None)`` -> data
  message ``STX ADDR(value*unit) ETX BCC``. Needs a password first if ``read_needs_password``.
- ``W1 ADDR(value)``: ``writer(address, value_text, sealed) -> None (ACK) or an ERnn int``.
- ``E2 ADDR(args)``: ``executor(address, args_text, sealed) -> None (ACK) or an ERnn int``.
- ``R5 ADDR(args)`` / ``R6 ADDR(args)`` (VDEW load profile and logbook reads, e.g.
  ``R5 P.01(from;to)``; MetCom meters accept R5 or R6): ``profile(address, args) -> callable``
  returning an iterable of text lines (raises KeyError -> ER01, ValueError -> ER05 before
  anything is sent). The answer is one data message ``STX line CR LF ... ETX BCC`` of
  unknown length, *streamed*: the action's data is a :class:`Stream` (``chunks()`` yields
  pieces of about 256 bytes, the BCC computed on the way), so no readout is ever held in
  RAM; the programming inactivity time restarts when its last piece was handed to the port.
  Without a ``profile`` callback R5/R6 answer ER08. Needs a password first (as R1).
- ``B0`` / ``B1``: sign-off, no answer, back to IDLE at 300 Bd.
- ``NAK``: repeat the last message (at most 3 times); a command with a wrong BCC gets NAK.

``sealed`` is True while the seal switch is closed (``seal_open()`` returns falsy, or no
``seal_open`` was given). Writers and executors must refuse metrological parameters and
commands with ``ER_SEALED`` while sealed; the session logs each such refusal. Callbacks may
also raise ``IecError(code)``; ``KeyError`` maps to ER01, ``ValueError`` to ER05, anything else
to ER09.

Error codes (sent as ``STX (ERnn) ETX BCC``):

====  ==============================================================================
ER01  unknown address: no register or parameter with this OBIS address
ER02  wrong password
ER03  programming locked after repeated wrong passwords (retry after the lockout)
ER04  not writable: read-only or not permitted parameter
ER05  value invalid: syntax or range of the value / read operand
ER06  seal closed: insufficient security clearance for a metrological parameter
ER07  password required: R1/W1/E2 before a valid P1
ER08  unsupported or malformed command (P0/P2, R2-R6, W2-W5, E1, partial blocks ...)
ER09  execution failed (internal error in the meter while serving the command)
====  ==============================================================================

Events ``on_event(code, detail, value, cmd)`` (str, str, int, str) for the meter's log; ``cmd``
is the command concerned ('P1', 'R1', 'W1', 'E2', ... or ''): ``EV_PROG_ENTER`` (password
accepted), ``EV_PROG_EXIT`` (detail 'B0', 'timeout', 'link' or 'sign-on'), ``EV_PW_WRONG``
(value: consecutive failures), ``EV_LOCKED`` (value: lockout s), ``EV_PW_LOCKED`` (P1 while
locked; value: lockout s left), ``EV_SEALED`` (ER06; detail: the address, '' for P1),
``EV_REFUSED`` (every other error answer except ER02/ER03; detail: the address or '', value:
the ERnn code), ``EV_WRITE`` / ``EV_EXEC`` (detail: address, after success),
``EV_READOUT_ERROR`` (detail: what the readout provider raised).

Garbage never raises out of ``feed``/``poll``: unknown bytes are ignored, an internal error
returns the session to IDLE.
"""

from micropython import const

from iec62056.lockout import Lockout
from ticks import ticks_add, ticks_diff, ticks_ms
from iec62056.codec import (
    ACK,
    ACK_MSG,
    BAUD_RATES,
    ETX,
    EOT,
    LF,
    NAK,
    NAK_MSG,
    SOH,
    BccError,
    build_data,
    build_error,
    build_identification,
    build_readout,
    build_command,
    parse_command,
    parse_data_set,
    parse_option_select,
    parse_request,
    same_address,
    short_reaction,
)

IDLE = const(0)
IDENT = const(1)
READOUT = const(2)
PROG = const(3)

ER_UNKNOWN_ADDRESS = const(1)
ER_WRONG_PASSWORD = const(2)
ER_LOCKED = const(3)
ER_NOT_WRITABLE = const(4)
ER_BAD_VALUE = const(5)
ER_SEALED = const(6)
ER_NO_PASSWORD = const(7)
ER_UNSUPPORTED = const(8)
ER_FAILED = const(9)

EV_PROG_ENTER = "prog_enter"
EV_PROG_EXIT = "prog_exit"
EV_PW_WRONG = "pw_wrong"
EV_LOCKED = "prog_locked"
EV_PW_LOCKED = "pw_while_locked"
EV_SEALED = "sealed_refused"
EV_WRITE = "write"
EV_EXEC = "exec"
EV_READOUT_ERROR = "readout_error"
EV_REFUSED = "refused"

DEFAULT_PASSWORD = "00000000"
INITIAL_BAUD = const(300)

_BUF = const(320)  # SOH W1 STX + 16 + 2 + 128 + ETX BCC, with margin
_K_NONE = const(0)
_K_LINE = const(1)  # '/' or ACK ... CR LF
_K_CMD = const(2)  # SOH ... ETX|EOT BCC
_MAX_REPEATS = const(3)
_SLASH = const(0x2F)
_MAX_MS = const((1 << 29) - 1)  # the longest interval ticks_diff can tell (lib/ticks)
_STREAM_MS = const(1 << 27)  # deadline while a streamed answer is sent (37 h; reset at its end)
_STX = const(0x02)
_PIECE = const(256)  # bytes per piece of a streamed answer


class Stream:
    """A data message ``STX line CR LF ... ETX BCC`` produced piece by piece (R5/R6 answers):
    ``make()`` returns the iterable of lines (str) each time the message is (re)sent;
    ``done`` is called once the last piece was produced."""

    def __init__(self, make, done=None):
        self._make = make
        self._done = done

    def chunks(self):
        """Yield the message in pieces (bytearrays of about 256 bytes)."""
        out = bytearray()
        out.append(_STX)
        x = 0
        for line in self._make():
            b = line.encode()
            for c in b:
                x ^= c
            out.extend(b)
            out.extend(b"\r\n")
            x ^= 0x0D ^ 0x0A
            if len(out) >= _PIECE:
                yield out
                out = bytearray()
        out.append(ETX)
        x ^= ETX
        out.append(x & 0x7F)
        yield out
        if self._done is not None:
            self._done()

def _clamp(v, lo, hi):
    return lo if v < lo else hi if v > hi else v


def _same(a, b):
    # Constant-time string compare (password check).
    if len(a) != len(b):
        return False
    x = 0
    for i in range(len(a)):
        x |= ord(a[i]) ^ ord(b[i])
    return x == 0


class IecError(Exception):
    """Raised by reader/writer/executor callbacks to answer with ``(ERnn)``; ``code`` 1..99."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


def _error_code(e):
    # a callback's exception -> ERnn: IecError(code), KeyError ER01, ValueError ER05, else ER09
    if isinstance(e, IecError):
        return e.code
    if isinstance(e, KeyError):
        return ER_UNKNOWN_ADDRESS
    if isinstance(e, ValueError):
        return ER_BAD_VALUE
    return ER_FAILED


class Session:
    """One IEC 62056-21 mode C port (optical head or RS-485 bus) on the meter side.

    device_address: str, <= 32 letters/digits ('' = answer only ``/?!``); manufacturer: 3-letter
    FLAG id; ident: <= 16 printable characters; baud_char: '0'..'6', the highest speed offered
    (default '5' = 9600 Bd). readout: callable returning an iterable of
    ``(address, value_text, unit or None)``; reader/writer/executor/passwords/seal_open/on_event
    as in the module docstring; lockout: a shared ``lockout.Lockout`` or None; time_s:
    callable returning RTC seconds for the lockout, or None. Times in ms. Raises ValueError
    for invalid identification fields or baud_char.
    """

    def __init__(
        self,
        device_address="",
        manufacturer="XYZ",
        ident="OPENMETER",
        baud_char="5",
        readout=None,
        reader=None,
        writer=None,
        executor=None,
        passwords=DEFAULT_PASSWORD,
        seal_open=None,
        on_event=None,
        answer_unaddressed=True,
        profile=None,
        read_needs_password=True,
        p0_operand=None,
        reaction_ms=200,
        switch_ms=800,
        gap_ms=1500,
        ack_timeout_ms=3000,
        readout_hold_ms=1500,
        inactivity_ms=120000,
        max_failures=3,
        lockout_ms=600000,
        lockout=None,
        time_s=None,
        now_ms=0,
    ):
        if len(baud_char) != 1 or not "0" <= baud_char <= "6":
            raise ValueError("baud_char must be '0'..'6'")
        self._ident_msg = build_identification(manufacturer, baud_char, ident)
        parse_request(b"/?" + device_address.encode() + b"!\r\n")  # validates the address
        self.device_address = device_address
        self._zmax = baud_char
        self._readout = readout
        self._reader = reader
        self._writer = writer
        self._executor = executor
        self._profile = profile
        self._passwords = passwords
        self._seal_open = seal_open
        self._on_event = on_event
        self.answer_unaddressed = answer_unaddressed
        self._read_pw = read_needs_password
        self._p0 = device_address if p0_operand is None else p0_operand
        lo = 20 if short_reaction(manufacturer) else 200
        self.reaction_ms = _clamp(reaction_ms, lo, 1500)
        self.switch_ms = _clamp(switch_ms, self.reaction_ms, 1500)
        self.gap_ms = gap_ms
        self.ack_timeout_ms = ack_timeout_ms
        self.readout_hold_ms = readout_hold_ms
        self.inactivity_ms = inactivity_ms
        if lockout is None:
            lockout = Lockout(max_failures, max(1, _clamp(lockout_ms, 0, _MAX_MS) // 1000))
        self.lockout = lockout
        self._time_s = time_s
        self._mono_s = 0  # own monotonic seconds (lockout time when no time_s is given)
        self._mono_ref = now_ms
        self._buf = bytearray(_BUF)
        self._n = 0
        self._kind = _K_NONE
        self._etx = False
        self._last_rx = now_ms
        self._q = []
        self._last = None
        self._repeats = 0
        self._fresh = False  # the command being answered was a valid message
        self.state = IDLE
        self.baud = INITIAL_BAUD  # baud the port runs at once queued actions are applied
        self.authorized = False
        self._deadline = now_ms

    @property
    def failures(self):
        """Consecutive wrong passwords (of the shared lockout)."""
        return self.lockout.failures

    @property
    def max_failures(self):
        return self.lockout.max_failures

    # -- public ------------------------------------------------------------------------------

    def feed(self, data, now_ms, n=-1):
        """Consume the first ``n`` (all when n < 0) received bytes of ``data`` (bytes-like; bit
        7 is ignored) at ticks ``now_ms`` (time of the last byte). Returns the next action or
        None. Never raises."""
        try:
            self._timers(now_ms)
            if n < 0:
                n = len(data)
            for i in range(n):
                self._byte(data[i] & 0x7F, now_ms)
        except Exception:  # garbage, a bug or MemoryError: never let it out of the port task
            self._recover(now_ms)
        return self._pop()

    def poll(self, now_ms):
        """Run the timers at ticks ``now_ms``; return the next action or None. Never raises."""
        try:
            self._timers(now_ms)
        except Exception:
            self._recover(now_ms)
        return self._pop()

    def reset(self, now_ms):
        """Drop everything queued and return to IDLE; always queues a 300 Bd action, as the
        port's real speed is unknown after an error."""
        self._q = []
        self.baud = 0
        self._recover(now_ms)

    def link_lost(self, now_ms):
        """The link to the peer ended (TCP client closed or replaced by another, bus connection
        lost): programming rights end (EV_PROG_EXIT 'link'), queued answers are dropped (they
        were meant for the old peer), partial input is discarded, IDLE at 300 Bd. Never
        raises."""
        try:
            if self.state == PROG and self.authorized:
                self._event(EV_PROG_EXIT, "link")
        except Exception:
            pass
        self.reset(now_ms)

    def idle(self):
        """True in IDLE (no dialogue: the port task may poll slowly)."""
        return self.state == IDLE

    def locked(self, now_ms):
        """True while programming mode is locked after repeated wrong passwords."""
        return self.lockout.remaining(self._now_s()) > 0

    def next_deadline(self, now_ms):
        """ms until the next timer may fire (for a port task's sleep), or -1 when idle."""
        if self._q:
            return 0
        if self.state == IDLE and not self._n:
            return -1
        d = ticks_diff(self._deadline, now_ms)
        if self._n:
            g = ticks_diff(ticks_add(self._last_rx, self.gap_ms), now_ms)
            if self.state == IDLE or g < d:
                d = g
        return d if d > 0 else 0

    # -- internals ---------------------------------------------------------------------------

    def _pop(self):
        if self._q:
            return self._q.pop(0)
        return None

    def _event(self, code, detail, value=0, cmd=""):
        if self._on_event is not None:
            try:
                self._on_event(code, detail, value, cmd)
            except Exception:
                pass

    def _now_s(self):
        if self._time_s is not None:
            try:
                return int(self._time_s())
            except Exception:
                pass
        return self._mono_s

    def _recover(self, now_ms):
        self._n = 0
        self._kind = _K_NONE
        try:
            self._to_idle(now_ms)
        except Exception:  # out of memory: the port task re-inits the UART on its next error
            self.state = IDLE
            self.baud = INITIAL_BAUD
            self.authorized = False
            self._last = None

    def _to_idle(self, now_ms):
        self.state = IDLE
        self.authorized = False
        self._last = None
        if self.baud != INITIAL_BAUD:
            self.baud = INITIAL_BAUD
            self._q.append((now_ms, None, INITIAL_BAUD))

    def _send(self, now_ms, msg, delay, remember=True):
        # Queue `msg` at now+delay; return the estimated end of its transmission.
        at = ticks_add(now_ms, delay)
        self._q.append((at, msg, 0))
        if remember:
            self._last = msg
        if isinstance(msg, Stream):  # length unknown: _stream_done sets the deadline
            return ticks_add(at, _STREAM_MS)
        return ticks_add(at, (len(msg) * 10000 + self.baud - 1) // self.baud + 1)

    def _answer(self, now_ms, msg):
        self._repeats = 0
        end = self._send(now_ms, msg, self.reaction_ms)
        if self.state == PROG and self._fresh:
            # inactivity counts from the answer to the last valid message
            self._deadline = ticks_add(end, self.inactivity_ms)

    def _error(self, now_ms, code):
        self._answer(now_ms, build_error(code))

    def _refuse(self, now_ms, code, cmd, addr):
        # every error answer is reported: ER06 as EV_SEALED, the others (but the password's
        # own ER02/ER03, reported by _password) as EV_REFUSED
        if code == ER_SEALED:
            self._event(EV_SEALED, addr, code, cmd)
        else:
            self._event(EV_REFUSED, addr, code, cmd)
        self._error(now_ms, code)

    def _timers(self, now_ms):
        d = ticks_diff(now_ms, self._mono_ref)
        if d >= 1000:
            k = d // 1000
            self._mono_s += k
            self._mono_ref = ticks_add(self._mono_ref, k * 1000)
        if self._n and ticks_diff(now_ms, self._last_rx) > self.gap_ms:
            self._n = 0
            self._kind = _K_NONE
            if self.state == IDENT:
                self._to_idle(now_ms)
        st = self.state
        if st != IDLE and ticks_diff(now_ms, self._deadline) > 0:
            if st == PROG and self.authorized:
                self._event(EV_PROG_EXIT, "timeout")
            self._to_idle(now_ms)

    def _start(self, kind, c):
        self._kind = kind
        self._etx = False
        self._buf[0] = c
        self._n = 1

    def _byte(self, c, now_ms):
        self._last_rx = now_ms
        kind = self._kind
        if kind == _K_NONE:
            if c == _SLASH or (c == ACK and self.state == IDENT):
                self._start(_K_LINE, c)
            elif c == SOH:
                self._start(_K_CMD, c)
            elif c == NAK:
                self._on_nak(now_ms)
            return  # else noise between messages, lone ACK
        if kind == _K_LINE and c == _SLASH:
            self._n = 0  # a new request restarts the line
        elif kind == _K_LINE and c == SOH:
            self._start(_K_CMD, c)  # SOH never occurs in a line: a command starts
            return
        elif kind == _K_CMD and not self._etx:
            if c == SOH:
                self._n = 0  # a new command restarts the frame
            elif c == _SLASH:
                # "/" is not allowed in a data set: a sign-on request starts, so junk without
                # ETX cannot keep the port deaf to sign-ons
                self._start(_K_LINE, c)
                return
        if self._n >= _BUF:
            self._n = 0
            self._kind = _K_NONE
            return
        self._buf[self._n] = c
        self._n += 1
        if kind == _K_LINE:
            if c == LF:
                self._kind = _K_NONE
                self._on_line(now_ms)
        elif self._etx:
            self._kind = _K_NONE
            self._on_cmd(now_ms)
        elif c == ETX or c == EOT:
            self._etx = True

    def _on_nak(self, now_ms):
        if self.state in (READOUT, PROG) and self._last is not None:
            if self._repeats < _MAX_REPEATS:
                self._repeats += 1
                end = self._send(now_ms, self._last, self.reaction_ms)
                if self.state == READOUT:
                    self._deadline = ticks_add(end, self.readout_hold_ms)
                # in PROG a repeat does not restart the inactivity time
            elif self.state == READOUT:
                self._to_idle(now_ms)

    def _matches(self, addr):
        if not addr:
            return self.answer_unaddressed
        return same_address(addr, self.device_address)

    def _on_line(self, now_ms):
        n = self._n
        self._n = 0
        buf = self._buf
        st = self.state
        if buf[0] == _SLASH:
            try:
                addr = parse_request(buf, n)
            except ValueError:
                return
            if self._q:  # answers not yet sent are obsolete: the client has moved on
                self._q = [a for a in self._q if a[1] is None]
            if st == PROG:
                # any sign-on on the port ends programming mode and its rights: on a bus it
                # means the master has moved on (or another member starts a dialogue)
                if self.authorized:
                    self._event(EV_PROG_EXIT, "sign-on")
                self._to_idle(now_ms)
                st = IDLE
            if not self._matches(addr):
                if st != IDLE:
                    self._to_idle(now_ms)
                return
            if st == READOUT:
                self._to_idle(now_ms)  # a new sign-on after a 300 Bd readout
            self.state = IDENT
            self._repeats = 0
            end = self._send(now_ms, self._ident_msg, self.reaction_ms)
            self._deadline = ticks_add(end, self.ack_timeout_ms)
            return
        # ACK V Z Y CR LF (only collected in IDENT)
        try:
            v, z, y = parse_option_select(buf, n)
        except ValueError:
            self._to_idle(now_ms)
            return
        if v != "0" or not "0" <= z <= self._zmax or y not in "01":
            self._to_idle(now_ms)  # HDLC (mode E), secondary or vendor modes: not offered
            return
        baud = BAUD_RATES[ord(z) - 0x30]
        if baud != self.baud:
            self.baud = baud
            self._q.append((now_ms, None, baud))
        self._repeats = 0
        if y == "0":
            self.state = READOUT
            end = self._send(now_ms, self._readout_block(), self.switch_ms)
            self._deadline = ticks_add(end, self.readout_hold_ms)
        else:
            self.state = PROG
            self.authorized = False
            end = self._send(now_ms, build_command("P", 0, "(" + self._p0 + ")"), self.switch_ms)
            self._deadline = ticks_add(end, self.inactivity_ms)

    def _readout_block(self):
        items = ()
        if self._readout is not None:
            try:
                items = self._readout()
                return build_readout(items, skip_invalid=True)
            except Exception as e:
                self._event(EV_READOUT_ERROR, repr(e))
        return build_readout((), skip_invalid=True)

    def _on_cmd(self, now_ms):
        n = self._n
        self._n = 0
        st = self.state
        self._fresh = False
        if st == IDLE:
            return
        try:
            cmd, ctype, data, partial = parse_command(self._buf, n)
        except BccError:
            if st == PROG:  # NAK; a bad BCC does not restart the inactivity time
                self._repeats = 0
                self._send(now_ms, NAK_MSG, self.reaction_ms, False)
            return
        except ValueError:
            if st == PROG:
                self._refuse(now_ms, ER_UNSUPPORTED, "", "")
            return
        if cmd == "B":
            if st == PROG and self.authorized:
                self._event(EV_PROG_EXIT, "B0")
            self._to_idle(now_ms)
            return
        if st != PROG:
            return
        self._fresh = True  # a valid message: inactivity restarts from its answer
        self._deadline = ticks_add(now_ms, self.inactivity_ms)
        name = cmd + chr(0x30 + ctype)
        if partial:
            self._refuse(now_ms, ER_UNSUPPORTED, name, _address(data))
            return
        if cmd == "P" and ctype == 1:
            self._password(now_ms, data)
        elif cmd == "R" and ctype == 1:
            self._read(now_ms, data)
        elif cmd == "W" and ctype == 1:
            self._write(now_ms, data, self._writer, EV_WRITE, name)
        elif cmd == "E" and ctype == 2:
            self._write(now_ms, data, self._executor, EV_EXEC, name)
        elif cmd == "R" and (ctype == 5 or ctype == 6) and self._profile is not None:
            self._read_stream(now_ms, data, name)
        else:
            self._refuse(now_ms, ER_UNSUPPORTED, name, _address(data))

    def _password_ok(self, p, pw):
        if isinstance(p, str):
            p = (p,)
        ok = False
        for c in p:
            if _same(c, pw):
                ok = True
        return ok

    def _password(self, now_ms, data):
        now_s = self._now_s()
        lk = self.lockout
        left = lk.remaining(now_s)
        if left:
            self.authorized = False
            self._event(EV_PW_LOCKED, "", left, "P1")
            self._error(now_ms, ER_LOCKED)
            return
        try:
            _, pw, _ = parse_data_set(data)
        except (ValueError, TypeError, AttributeError):
            pw = None
        p = self._passwords
        if callable(p):
            p = p()
        if p is None:  # no password is trusted: programming needs the open seal
            self.authorized = False
            self._refuse(now_ms, ER_SEALED, "P1", "")
            return
        if pw is not None and self._password_ok(p, pw):
            lk.success()
            if not self.authorized:
                self.authorized = True
                self._event(EV_PROG_ENTER, "", 0, "P1")
            self._answer(now_ms, ACK_MSG)
            return
        self.authorized = False
        locked_s = lk.failure(now_s)
        self._event(EV_PW_WRONG, "", lk.failures, "P1")
        if locked_s:
            self._event(EV_LOCKED, "", locked_s, "P1")
            self._error(now_ms, ER_LOCKED)
        else:
            self._error(now_ms, ER_WRONG_PASSWORD)

    def _read(self, now_ms, data):
        try:
            addr, arg, _ = parse_data_set(data)
        except (ValueError, TypeError, AttributeError):
            addr = None
        if self._read_pw and not self.authorized:
            self._refuse(now_ms, ER_NO_PASSWORD, "R1", addr or _address(data))
            return
        if addr is None:
            self._refuse(now_ms, ER_BAD_VALUE, "R1", _address(data))
            return
        if arg != "" and arg != "1":
            self._refuse(now_ms, ER_BAD_VALUE, "R1", addr)
            return
        if self._reader is None:
            self._refuse(now_ms, ER_UNKNOWN_ADDRESS, "R1", addr)
            return
        code = 0
        try:
            value, unit = self._reader(addr)
        except Exception as e:
            code = _error_code(e)
        if not code:
            try:
                msg = build_data(addr, value, unit)
            except Exception:  # the reader produced something that is not a valid data set
                code = ER_FAILED
        if code:
            if not isinstance(code, int) or not 0 < code <= 99:
                code = ER_FAILED
            self._refuse(now_ms, code, "R1", addr)
        else:
            self._answer(now_ms, msg)

    def _read_stream(self, now_ms, data, name):
        # R5/R6 ADDR(args): a streamed data message (module docstring)
        try:
            addr, arg, _ = parse_data_set(data)
        except (ValueError, TypeError, AttributeError):
            addr = None
        if self._read_pw and not self.authorized:
            self._refuse(now_ms, ER_NO_PASSWORD, name, addr or _address(data))
            return
        if addr is None:
            self._refuse(now_ms, ER_BAD_VALUE, name, _address(data))
            return
        try:
            make = self._profile(addr, arg)
        except Exception as e:
            self._refuse(now_ms, _error_code(e), name, addr)
            return
        self._answer(now_ms, Stream(make, self._stream_done))

    def _stream_done(self):
        # the last piece of a streamed answer left: inactivity counts from now
        if self.state == PROG:
            self._deadline = ticks_add(ticks_ms(), self.inactivity_ms)

    def _write(self, now_ms, data, fn, ev, name):
        try:
            addr, value, _ = parse_data_set(data)
        except (ValueError, TypeError, AttributeError):
            addr = None
        if not self.authorized:
            self._refuse(now_ms, ER_NO_PASSWORD, name, addr or _address(data))
            return
        if addr is None:
            self._refuse(now_ms, ER_BAD_VALUE, name, _address(data))
            return
        if fn is None:
            self._refuse(now_ms, ER_NOT_WRITABLE if ev == EV_WRITE else ER_UNSUPPORTED, name,
                         addr)
            return
        sealed = True
        if self._seal_open is not None:
            try:
                sealed = not self._seal_open()
            except Exception:
                sealed = True
        try:
            code = fn(addr, value, sealed)
        except Exception as e:
            code = _error_code(e)
        if code:
            if not isinstance(code, int) or not 0 < code <= 99:
                code = ER_FAILED
            self._refuse(now_ms, code, name, addr)
            return
        self._event(ev, addr, 0, name)
        self._answer(now_ms, ACK_MSG)


def _address(data):
    # the address part of a data set that did not parse ('' if none): for the refusal's record
    if not data:
        return ""
    i = data.find("(")
    return data[:i] if i >= 0 else data[:16]
