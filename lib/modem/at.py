"""AT command engine for 2G modems: a sans-IO state machine (no UART, no clock of its own).

The caller (``modem.manager``) submits one ``Command`` at a time, feeds the bytes the modem
sent together with the time, polls for timeouts and writes out what ``tx()`` hands back::

    eng = AtEngine(urc=profile.urc_kind, on_urc=f, on_done=g)
    eng.submit(Command(b"AT+CSQ", 1000, prefix=b"+CSQ:"), now_ms)
    uart.write(eng.tx())            # b"AT+CSQ\\r"
    eng.feed(uart.read(), now_ms)   # -> g(Result(R_OK, lines=[b"+CSQ: 17,0"]))
    eng.poll(now_ms)                # -> g(Result(R_TIMEOUT)) once the deadline has passed

Times are ``ticks_ms`` values that wrap at 2**30 (lib/ticks: ``ticks.ticks_ms()``).

Lines. The modem's output is split at CR or LF; empty lines are skipped; leading bytes that
are not printable ASCII (NUL, 0xFF noise at power-up, spaces) and trailing spaces are stripped
(the stripped non-space bytes count as ``garbage``). Every line is classified, in this order
(SIM800 quirks reported by the public drivers (TinyGSM, attentive): text after OK, no final
OK, prefix-less and
suffix-style URCs, odd finals):

1. while a command is in flight: its echo (``ATE1``: the line equals the command text) is
   dropped and counted (``echoes``; ``echo_seen`` tells the manager the modem has lost its
   ATE0 setting, i.e. it rebooted);
2. the command's own ``binary`` header (e.g. ``+CIPRXGET: 2,0,<n>,<left>``): the next
   ``n`` bytes are raw data, whatever they contain (``OK\\r\\n`` included), stored up to
   ``max_data`` (the rest is consumed and counted in ``data_dropped``, the result is marked
   ``truncated``);
3. the command's ``fails`` / ``finals`` (prefixes such as ``SHUT OK``, ``DATA ACCEPT:``,
   ``0, CONNECT OK``) end it with ``R_FAIL`` / ``R_FINAL``;
4. lines starting with the command's ``prefix`` are its information text;
5. URCs: ``urc(line)`` returns a non-zero kind -> ``on_urc(kind, line)``, anywhere in the
   stream, also in the middle of a command's response;
6. generic final result codes: ``OK``, ``ERROR``, ``+CME ERROR: <n>``, ``+CMS ERROR: <n>``,
   ``NO CARRIER``, ``BUSY``, ``NO ANSWER``, ``NO DIALTONE`` (3GPP TS 27.007 / V.250). A
   command with ``ok_final=False`` (``AT+CIPSTART``: ``OK`` and later ``0, CONNECT OK``) notes
   the ``OK`` and keeps waiting;
7. any other line is information text of the command in flight (at most ``max_lines`` kept,
   the rest counted in ``lines_dropped``); with ``line_final`` the first such line is the
   answer (``AT+CIFSR`` prints the IP address and no OK); with no command in flight it is
   counted as ``stray`` (or ``garbage`` when it holds non-printable bytes) and dropped.

Prompt. A command with a ``payload`` (``AT+CIPSEND=0,<n>``) waits ``prompt_ms`` for the
``>`` prompt (a line, terminated or not, starting with ``>``), then queues the payload bytes
as they are (binary safe) and waits ``timeout_ms`` for its final answer.

Timeouts. A command that gets no final answer by its deadline ends with ``R_TIMEOUT``. The
engine then drains: lines that are not URCs are dropped (``late``) until the modem has been
quiet for ``drain_ms`` (default 200) or ``max_drain_ms`` (default 2000) have passed, so a
late ``OK`` cannot be taken as the answer to the next command. ``busy`` stays True meanwhile.

Memory is bounded: one line buffer of ``max_line`` bytes (default 256; a longer line is
consumed and dropped, counted in ``overlong``), one data buffer of ``max_data`` bytes
(default 1460, the SIM800's CIPSEND/CIPRXGET maximum), at most ``max_lines`` lines per
result. Nothing raises out of ``feed``/``poll``: bad input is counted and dropped.
"""

from micropython import const

from ticks import ticks_add, ticks_diff  # noqa: F401  (re-exported: modem.manager uses them)

IDLE = const(0)  # no command in flight
WAIT = const(1)  # command sent, waiting for its final answer
PROMPT = const(2)  # CIPSEND-style command sent, waiting for '>'
DRAIN = const(3)  # after a timeout: dropping late answers

R_OK = const(1)  # OK (or the line of a line_final command)
R_ERROR = const(2)  # ERROR
R_CME = const(3)  # +CME ERROR: <n>  (code in Result.code, -1 when verbose text)
R_CMS = const(4)  # +CMS ERROR: <n>
R_TIMEOUT = const(5)  # no final answer within the command's timeout
R_FINAL = const(6)  # one of the command's own success finals (SHUT OK, DATA ACCEPT: ...)
R_FAIL = const(7)  # one of the command's own failure finals (SEND FAIL, CONNECT FAIL ...)
R_NO_CARRIER = const(8)  # NO CARRIER / BUSY / NO ANSWER / NO DIALTONE

_GT = const(0x3E)  # '>'
_WRAP = const(0x3FFFFFFF)  # the counters wrap at 2**30: small ints on a 32-bit core


def wrap_add(a, n):
    """``(a + n) mod 2**30`` for counters ``0 <= a <= 0x3FFFFFFF``, ``0 <= n <= 0x3FFFFFFF``,
    with no long int on the way: ``(a + n) & 0x3FFFFFFF`` passes through 2**30 and more, a
    long int (a heap allocation, MemoryError under ``heap_lock``) on a 31-bit small-int
    core. (A ``+ 1`` counter is ``a + 1 if a < _WRAP else 0`` inline.)"""
    r = _WRAP - n
    return a + n if a <= r else a - r - 1


class Command:
    """One AT command and how its answer looks.

    - ``text``: the command without CR (bytes), e.g. ``b"AT+CSQ"``;
    - ``timeout_ms``: bound for the final answer (after the prompt for payload commands);
    - ``prefix``: information lines starting with it belong to this command (bytes or None);
    - ``finals`` / ``fails``: tuples of line prefixes that end the command with R_FINAL /
      R_FAIL (checked before the URC table, so ``0, CONNECT OK`` ends ``AT+CIPSTART``);
    - ``ok_final``: False when ``OK`` is only an intermediate answer;
    - ``line_final``: the first unclassified information line is the answer (R_OK);
    - ``payload``: bytes sent after the ``>`` prompt; ``prompt_ms`` bounds the wait for it;
    - ``binary``: ``f(line) -> n`` for lines starting with ``prefix``: n >= 0 means n raw data
      bytes follow the line; -1 means an ordinary line;
    - ``level``: what a timeout of this command means to the manager (its recovery level);
    - ``tag``: free for the caller (the manager's step name).
    """

    # the defaults as class attributes: an instance holds only what differs (each instance
    # attribute is a slot of its dict, grown as they are set)
    prefix = None
    finals = ()
    fails = ()
    ok_final = True
    line_final = False
    payload = None
    prompt_ms = 2000
    binary = None
    wire = None  # text + CR, kept by a Command made once and used again (modem.profile)

    def __init__(self, text, timeout_ms=1000, prefix=None, finals=(), fails=(), ok_final=True,
                 line_final=False, payload=None, prompt_ms=2000, binary=None, level=0,
                 tag=None):
        self.text = text
        self.timeout_ms = timeout_ms
        self.level = level
        self.tag = tag
        if prefix is not None:
            self.prefix = prefix
        if finals:
            self.finals = finals
        if fails:
            self.fails = fails
        if not ok_final:
            self.ok_final = False
        if line_final:
            self.line_final = True
        if payload is not None:
            self.payload = payload
            self.prompt_ms = prompt_ms
        if binary is not None:
            self.binary = binary


class Result:
    """How a command ended. ``status`` R_*; ``code`` the CME/CMS number (-1 when not
    numeric, 0 otherwise); ``final`` the line that ended it (bytes or None on timeout);
    ``lines`` its information lines (list of bytes); ``data`` the raw bytes read after a
    binary header (bytes or None); ``truncated`` True when data bytes were dropped;
    ``ok_seen`` an intermediate OK arrived (``ok_final=False`` commands). With the engine's
    ``one_result`` the object is the same for every command: read it before the next
    submit."""

    data = None  # (class defaults: an instance's dict holds only what is set)
    truncated = False
    ok_seen = False

    def __init__(self, cmd, status, final=None, code=0):
        self.cmd = cmd
        self.status = status
        self.final = final
        self.code = code
        self.lines = []

    def reset(self, cmd):
        """As new for ``cmd`` (AtEngine ``one_result``; the lines list is emptied, kept)."""
        self.cmd = cmd
        self.status = 0
        self.final = None
        self.code = 0
        self.lines.clear()
        self.data = None
        self.truncated = False
        self.ok_seen = False

    @property
    def ok(self):
        """True for R_OK and R_FINAL."""
        return self.status == R_OK or self.status == R_FINAL


def _printable(line):
    for b in line:
        if b < 0x20 or b > 0x7E:
            return False
    return True


def _eol(data, i):
    # index of the first CR or LF at or after i, -1 when none. (The CR search runs to the
    # chunk's end at every line: O(n^2) for n LF-only lines in one chunk, bounded by the
    # chunk, which the Link caps at max_read 512 B a round: 512 LFs 0.34 ms on the unix
    # port, the same as a search bounded to 300 B, which cost every normal line 18 % more;
    # docs/BENCHMARKS.md "Session 11")
    cr = data.find(b"\r", i)
    if cr < 0:
        return data.find(b"\n", i)
    lf = data.find(b"\n", i, cr)
    return cr if lf < 0 else lf


def _starts(line, prefixes):
    for f in prefixes:
        if line.startswith(f):
            return True
    return False


def _final_of(line):
    # the generic final result code of a line (R_*), 0 when it is none
    c0 = line[0]
    if line == b"OK":
        return R_OK
    if c0 == 0x45 and line == b"ERROR":
        return R_ERROR
    if c0 == 0x2B and line.startswith(b"+CME ERROR:"):
        return R_CME
    if c0 == 0x2B and line.startswith(b"+CMS ERROR:"):
        return R_CMS
    if line == b"NO CARRIER" or line == b"BUSY" or line == b"NO ANSWER" \
            or line == b"NO DIALTONE":
        return R_NO_CARRIER
    return 0


def _code_of(st, line):
    # the number of a +CME / +CMS ERROR (-1 when not numeric), else 0
    if st == R_CME or st == R_CMS:
        return _int_or(line[11:].strip(), -1)
    return 0


def _int_or(b, default):
    try:
        return int(b)
    except ValueError:
        return default


class AtEngine:
    """The engine. ``urc(line) -> kind`` (0 = not a URC) classifies unsolicited lines;
    ``on_urc(kind, line)`` and ``on_done(result)`` are called from ``feed``/``poll``.
    Counters (ints): ``rx_bytes``, ``tx_bytes``, ``lines``, ``urcs``, ``echoes``, ``stray``,
    ``garbage``, ``overlong``, ``late``, ``timeouts``, ``data_dropped``, ``lines_dropped``,
    ``commands``, each wrapping at 2**30 (small ints on a 32-bit core: a module babbling
    at 115 200 baud would pass 2**30 garbage bytes in a day, and then every count
    allocated a long int)."""

    def __init__(self, urc=None, on_urc=None, on_done=None, max_line=256, max_data=1460,
                 max_lines=8, drain_ms=200, max_drain_ms=2000, one_result=False):
        # one_result: one Result object for every command, reset at each submit (a caller
        # that is done with a result before it submits the next: modem.manager), so a
        # command's answer allocates no Result
        self._one = Result(None, 0) if one_result else None
        self._urc = urc
        self.on_urc = on_urc
        self.on_done = on_done
        self.max_line = max_line
        self.max_data = max_data
        self.max_lines = max_lines
        self.drain_ms = drain_ms
        self.max_drain_ms = max_drain_ms
        self._line = bytearray(max_line)
        self._data = bytearray(max_data)
        self.rx_bytes = self.tx_bytes = self.lines = self.urcs = self.echoes = 0
        self.stray = self.garbage = self.overlong = self.late = self.timeouts = 0
        self.data_dropped = self.lines_dropped = self.commands = 0
        self.echo_seen = False
        self.last_stray = None
        self.reset(0)

    # -- caller API --------------------------------------------------------------------------

    def reset(self, now):
        """Forget the command in flight (no callback), partial input and pending output."""
        self._cmd = None
        self._res = None
        self.phase = IDLE
        self._ln = 0
        self._long = False
        self._raw = 0
        self._skip_lf = False
        self._dn = 0
        self._out = []
        self._deadline = now
        self._drain_start = now
        self._last_rx = now

    @property
    def busy(self):
        """True while a command is in flight or late answers are being drained."""
        return self.phase != IDLE

    @property
    def command(self):
        """The Command in flight, or None."""
        return self._cmd

    def submit(self, cmd, now):
        """Send ``cmd``; returns False (and does nothing) while ``busy``."""
        if self.phase != IDLE:
            return False
        self._cmd = cmd
        r = self._one
        if r is None:
            self._res = Result(cmd, 0)
        else:
            r.reset(cmd)
            self._res = r
        self._raw = 0
        self._dn = 0
        self.commands = self.commands + 1 if self.commands < _WRAP else 0
        self._out.append(cmd.wire if cmd.wire is not None else cmd.text + b"\r")
        if cmd.payload is not None:
            self.phase = PROMPT
            self._deadline = ticks_add(now, cmd.prompt_ms)
        else:
            self.phase = WAIT
            self._deadline = ticks_add(now, cmd.timeout_ms)
        return True

    def taken(self, res):
        """The answer ``res`` has been read: with ``one_result`` what it holds (a read's
        data, up to ``max_data`` B; the command with its payload; the lines) would stay
        alive until the next command ends; dropped now, unless ``res`` is already the
        pending command's again (a new command submitted while its answer was read)."""
        if res is not self._res:
            res.data = res.cmd = res.final = None
            res.lines.clear()

    def send_raw(self, data):
        """Queue bytes to write as they are (e.g. the ``AT`` autobaud sync or an ESC)."""
        self._out.append(data)

    def tx(self):
        """The next bytes to write to the modem, or None."""
        if not self._out:
            return None
        b = self._out.pop(0)
        self.tx_bytes = wrap_add(self.tx_bytes, len(b))
        return b

    def feed(self, data, now):
        """Bytes received from the modem at ``now``."""
        if not data:
            return
        if not isinstance(data, bytes):
            data = bytes(data)
        n = len(data)
        self.rx_bytes = wrap_add(self.rx_bytes, n)
        self._last_rx = now
        i = 0
        while i < n:
            if self._skip_lf:
                self._skip_lf = False
                if data[i] == 0x0A:  # the LF of the header's CR LF is not data
                    i += 1
                    continue
            if self._raw:
                i = self._raw_in(data, i, n)
                continue
            j = _eol(data, i)
            if j < 0:
                if n > i:
                    self._append(data, i, n)
                if self.phase == PROMPT and self._ln and self._line[0] == _GT and not self._long:
                    self._ln = 0
                    self._prompt(now)
                break
            if j > i:
                self._append(data, i, j)
            i = j + 1
            self._line_end(now)
            if self._raw and data[j] == 0x0D:
                self._skip_lf = True

    def _raw_in(self, data, i, n):
        # raw data bytes after a binary header, from data[i:]; returns the index after them
        k = self._raw if self._raw < n - i else n - i
        room = self.max_data - self._dn
        c = k if k < room else room
        if c > 0:
            self._data[self._dn:self._dn + c] = data[i:i + c]
            self._dn += c
        if k > c:
            self.data_dropped = wrap_add(self.data_dropped, k - c)
            self._res.truncated = True
        self._raw -= k
        if not self._raw:
            self._res.data = bytes(self._data[:self._dn])
        return i + k

    def poll(self, now):
        """Timeouts and the end of a drain."""
        ph = self.phase
        if ph == WAIT or ph == PROMPT:
            if ticks_diff(now, self._deadline) >= 0:
                self.timeouts = self.timeouts + 1 if self.timeouts < _WRAP else 0
                self._raw = 0
                self._drain_start = now
                self._last_rx = now
                self._finish(R_TIMEOUT, None, 0, DRAIN)
        elif ph == DRAIN:
            if (ticks_diff(now, self._last_rx) >= self.drain_ms
                    or ticks_diff(now, self._drain_start) >= self.max_drain_ms):
                self.phase = IDLE
                self._ln = 0
                self._long = False

    def deadline(self):
        """ms tick of the next timeout/drain check (or None when idle)."""
        if self.phase == IDLE:
            return None
        if self.phase == DRAIN:
            return ticks_add(self._last_rx, self.drain_ms)
        return self._deadline

    # -- internals ---------------------------------------------------------------------------

    def _append(self, data, i, end):
        if self._long:
            return
        k = end - i
        if self._ln + k > self.max_line:
            self._long = True
            return
        self._line[self._ln:self._ln + k] = data[i:end]
        self._ln += k

    def _line_end(self, now):
        if self._long:
            self.overlong = self.overlong + 1 if self.overlong < _WRAP else 0
            self._long = False
            self._ln = 0
            return
        n = self._ln
        if not n:
            return
        self._ln = 0
        buf = self._line
        a = 0
        while a < n and (buf[a] <= 0x20 or buf[a] > 0x7E):
            if buf[a] != 0x20:
                self.garbage = self.garbage + 1 if self.garbage < _WRAP else 0
            a += 1
        while n > a and buf[n - 1] == 0x20:
            n -= 1
        if a >= n:
            return
        if n - a == 2 and buf[a] == 0x4F and buf[a + 1] == 0x4B:
            self._classify(b"OK", now)  # (the commonest line: the constant, no copy)
        else:
            self._classify(bytes(buf[a:n]), now)

    def _classify(self, line, now):
        # (split in small functions: each frame on the C stack, no heap at a line)
        self.lines = self.lines + 1 if self.lines < _WRAP else 0
        ph = self.phase
        if ph == DRAIN:
            if self._urc is not None and self._urc(line):
                self._emit_urc(line)
            else:
                self.late = self.late + 1 if self.late < _WRAP else 0
            return
        cmd = self._cmd
        if cmd is not None and self._own(line, now):
            return
        if self._urc is not None and self._urc(line):
            self._emit_urc(line)
            return
        st = _final_of(line)
        if cmd is None:
            if _printable(line):
                self.stray = self.stray + 1 if self.stray < _WRAP else 0
            else:
                self.garbage = self.garbage + 1 if self.garbage < _WRAP else 0
            self.last_stray = line
        elif st:
            if ph == PROMPT and st == R_OK:
                # an OK cannot answer a send that has had no prompt yet
                self.late = self.late + 1 if self.late < _WRAP else 0
            else:
                self._final(cmd, st, line)
        else:
            self._info(cmd, line)

    def _info(self, cmd, line):
        # an information line of the command (with line_final, its answer)
        self._keep(line)
        if cmd.line_final:
            self._finish(R_OK, line, 0, IDLE)

    def _final(self, cmd, st, line):
        if st == R_OK and not cmd.ok_final:
            self._res.ok_seen = True
        else:
            self._finish(st, line, _code_of(st, line), IDLE)

    def _own(self, line, now):
        # the command's echo, prompt or binary header, or its own text: True
        cmd = self._cmd
        if line == cmd.text:
            self.echoes = self.echoes + 1 if self.echoes < _WRAP else 0
            self.echo_seen = True
            return True
        if self.phase == PROMPT and line[0] == _GT:
            self._prompt(now)
            return True
        if cmd.binary is not None and cmd.prefix is not None \
                and line.startswith(cmd.prefix) and self._header(cmd, line):
            return True
        return self._own_text(cmd, line)

    def _header(self, cmd, line):
        # a binary header: the next k bytes are raw data (True), or an ordinary line
        k = cmd.binary(line)
        if k < 0:
            return False
        self._keep(line)
        self._dn = 0
        self._raw = k
        if not k:
            self._res.data = b""
        return True

    def _own_text(self, cmd, line):
        # its own failure / success finals, or its information text: True
        if _starts(line, cmd.fails):
            self._finish(R_FAIL, line, 0, IDLE)
            return True
        if _starts(line, cmd.finals):
            self._finish(R_FINAL, line, 0, IDLE)
            return True
        p = cmd.prefix
        if p is not None and line.startswith(p):
            self._keep(line)
            return True
        return False

    def _keep(self, line):
        r = self._res
        if len(r.lines) < self.max_lines:
            r.lines.append(line)
        else:
            self.lines_dropped = self.lines_dropped + 1 if self.lines_dropped < _WRAP else 0

    def _emit_urc(self, line):
        self.urcs = self.urcs + 1 if self.urcs < _WRAP else 0
        if self.on_urc is not None:
            self.on_urc(self._urc(line), line)

    def _prompt(self, now):
        cmd = self._cmd
        self.phase = WAIT
        self._deadline = ticks_add(now, cmd.timeout_ms)
        self._out.append(cmd.payload)

    def _finish(self, status, final, code, phase):
        r = self._res
        r.status = status
        r.final = final
        r.code = code
        if r.data is None and self._dn and not self._raw:
            r.data = bytes(self._data[:self._dn])
        self._cmd = None
        self._res = None
        self._raw = 0
        self._dn = 0
        self.phase = phase
        if self.on_done is not None:
            self.on_done(r)
