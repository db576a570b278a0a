"""What a modem profile gives the connection manager, and the 3GPP commands every 2G modem
shares (TS 27.007: +CPIN, +CSQ, +CREG, +CGREG, +CGATT, +CMEE; V.250: AT, ATE, AT&F).

A profile (``modem.sim800.Sim800``, ``modem.m95.M95``) adds the vendor's TCP/IP command set:
the PDP bring-up list, open / send / read / close / shut commands, the parse of a read, and
the URC table (``urc_kind``). The manager never builds an AT string itself.

URC kinds (``urc_kind(line)``; 0 = not a URC):

==============  ===================================================================
U_DATA          data waiting on our link (SIM800 ``+CIPRXGET: 1,0``, M95 ``+QIRDI:``)
U_CLOSED        our link closed by the peer or the network (``0, CLOSED``, ``CLOSED``)
U_CONNECT_OK    ``0, CONNECT OK`` (outside AT+CIPSTART: a late answer after a timeout)
U_CONNECT_FAIL  ``0, CONNECT FAIL`` / ``0, ALREADY CONNECT`` outside AT+CIPSTART
U_PDP_DEACT     the network dropped the PDP context (``+PDP: DEACT``)
U_BOOT          ``RDY``: the module (re)booted at a fixed baud rate
U_POWER_DOWN    ``NORMAL POWER DOWN``, ``UNDER-VOLTAGE POWER DOWN``, ``OVER-VOLTAGE ...``
U_UNDERVOLT     ``UNDER-VOLTAGE WARNNING`` (sic; VBAT <= 3.49 V on SIM800)
U_OVERVOLT      ``OVER-VOLTAGE WARNNING`` (>= 4.3 V)
U_INFO          other URCs: ``Call Ready``, ``SMS Ready``, ``+CFUN:``, ``+CPIN:``, time
                (``*PSUTTZ``, ``+CTZV``, ``DST:``, ``+CIEV``), ``+CMTI``, ``RING``, other links
==============  ===================================================================

Recovery levels (``Command.level`` says what a timeout of that command means; the manager's
escalation uses the same scale): L_RETRY retry the failed step (socket: CIPCLOSE +
CIPSTART, PDP kept), L_PDP CIPSHUT and bring the PDP context up again, L_MODEM re-sync and
re-initialise the module (it rebooted), L_POWER power-cycle it. A single timeout of a quick
query, a send or a read is L_RETRY (a byte lost on the UART is enough to cause one); the
manager power-cycles on the second timeout in a row (a hung module answers nothing).
"""

from micropython import const

from modem.at import R_OK, Command

U_DATA = const(1)
U_CLOSED = const(2)
U_CONNECT_OK = const(3)
U_CONNECT_FAIL = const(4)
U_PDP_DEACT = const(5)
U_BOOT = const(6)
U_POWER_DOWN = const(7)
U_UNDERVOLT = const(8)
U_OVERVOLT = const(9)
U_INFO = const(10)

L_RETRY = const(0)
L_PDP = const(1)
L_MODEM = const(2)
L_POWER = const(3)

# 3GPP TS 27.007 7.2 / 10.1.20 <stat>
REG_NOT_SEARCHING = const(0)
REG_HOME = const(1)
REG_SEARCHING = const(2)
REG_DENIED = const(3)
REG_UNKNOWN = const(4)
REG_ROAMING = const(5)


def match_table(line, prefixes, suffixes):
    """Kind from ``prefixes`` ((bytes, kind), ...) by line start, then ``suffixes`` by line
    end; 0 when nothing matches."""
    k = _by_start(line, prefixes)
    return k if k else _by_end(line, suffixes)


def _by_start(line, table):
    for e in table:
        if line.startswith(e[0]):
            return e[1]
    return 0


def _by_end(line, table):
    for e in table:
        if line.endswith(e[0]):
            return e[1]
    return 0


def uint_in(line, a, b):
    """The decimal number in ``line[a:b]`` (white space around it and one ``+`` allowed, as
    ``int()`` takes them), -1 when there is none or anything else is there. Allocates
    nothing (``int(line[a:b])`` made a slice and raised ValueError on junk)."""
    while a < b and (line[a] == 0x20 or 0x09 <= line[a] <= 0x0D):  # (int()'s white space:
        a += 1  # a CR with one bit flipped is a tab or a form feed before the LF)
    while b > a and (line[b - 1] == 0x20 or 0x09 <= line[b - 1] <= 0x0D):
        b -= 1
    if a < b and line[a] == 0x2B:
        a += 1
    if a >= b or b - a > 9:  # (9 digits: a small int on a 32-bit core)
        return -1
    v = 0
    while a < b:
        c = line[a] - 0x30
        if c < 0 or c > 9:
            return -1
        v = v * 10 + c
        a += 1
    return v


def field_at(line, start, index):
    """Where comma-separated field ``index`` of ``line[start:]`` begins, -1 when there are
    fewer fields (it ends at the next comma or the line's end: :func:`field_end`)."""
    a = start
    while index > 0:
        a = line.find(b",", a)
        if a < 0:
            return -1
        a += 1
        index -= 1
    return a


def field_end(line, a):
    b = line.find(b",", a)
    return len(line) if b < 0 else b


def parse_reg(line):
    """``+CREG: <n>,<stat>[,<lac>,<ci>]`` (or the URC form ``+CREG: <stat>``), same for
    +CGREG -> stat int 0..5, or -1 when malformed."""
    i = line.find(b":")
    if i < 0:
        return -1
    a = field_at(line, i + 1, 1)
    if a < 0:  # one field: the URC form
        a = i + 1
    st = uint_in(line, a, field_end(line, a))
    return st if 0 <= st <= 5 else -1


def parse_int_field(line, prefix, index=0):
    """Field ``index`` of ``<prefix> a,b,c`` as a non-negative int, or -1 (none there, or
    not a number). No slice, no exception: it parses every read's answer."""
    if not line.startswith(prefix):
        return -1
    a = field_at(line, len(prefix), index)
    return -1 if a < 0 else uint_in(line, a, field_end(line, a))


def is_ipv4(line):
    """True for ``a.b.c.d`` with four decimal octets 0..255."""
    f = line.split(b".")
    if len(f) != 4:
        return False
    for x in f:
        if not x or len(x) > 3:
            return False
        try:
            v = int(x)
        except ValueError:
            return False
        if v < 0 or v > 255 or not x.isdigit():
            return False
    return True


def _kept(text, timeout_ms, prefix, level, tag):
    # a query made once and sent again (its bytes on the wire made once too)
    c = Command(text, timeout_ms, prefix=prefix, level=level, tag=tag)
    c.wire = text + b"\r"
    return c


def _quote(s):
    # AT string parameter: no quotes, CR or LF inside (they would end or break the command)
    if isinstance(s, str):
        s = s.encode()
    for b in s:
        if b == 0x22 or b < 0x20 or b > 0x7E:
            raise ValueError("bad character in AT string parameter")
    return b'"' + s + b'"'


class Profile:
    """3GPP part shared by the SIM800 and Quectel profiles. Timeouts in ms."""

    name = "3GPP"
    max_send = 1460  # bytes per send command
    max_read = 1460  # bytes per read command

    # The queries a waiting state repeats (AT every 300 ms, +CPIN? every second, +CSQ /
    # +CREG? / +CGREG? every 2 s while registering, +CSQ every minute when up) are made once
    # and kept: a Command was ~940 B of allocation each time (unix port), ~3 KB a second
    # for a meter searching for a network. Nothing changes a Command after it is made
    # (``send``/``read``, which set ``arg``, make theirs each time).
    _sync = _sim = _csq = _regs = _att = None

    def sync(self, timeout_ms=300):
        """``AT``: autobaud sync / probe (SIM800: repeat every 200-300 ms up to 10 s)."""
        c = self._sync
        if c is None or c.timeout_ms != timeout_ms:
            c = self._sync = _kept(b"AT", timeout_ms, None, L_POWER, "sync")
        return c

    def init_cmds(self):
        """Factory defaults (leftover echo/CIPMUX/CIPMODE settings break drivers, G6.2), echo
        off, numeric +CME ERROR codes."""
        return [Command(b"AT&F", 2000, level=L_POWER, tag="init"),
                Command(b"ATE0", 1000, level=L_POWER, tag="init"),
                Command(b"AT+CMEE=1", 1000, level=L_POWER, tag="init")]

    def sim_query(self):
        c = self._sim
        if c is None:
            c = self._sim = _kept(b"AT+CPIN?", 5000, b"+CPIN:", L_RETRY, "sim")
        return c

    def pin_cmd(self, pin):
        return Command(b"AT+CPIN=" + _quote(pin), 5000, level=L_POWER, tag="pin")

    def csq(self):
        c = self._csq
        if c is None:
            c = self._csq = _kept(b"AT+CSQ", 1000, b"+CSQ:", L_RETRY, "csq")
        return c

    def reg_queries(self):
        return [Command(b"AT+CREG?", 1000, prefix=b"+CREG:", level=L_RETRY, tag="creg"),
                Command(b"AT+CGREG?", 1000, prefix=b"+CGREG:", level=L_RETRY, tag="cgreg")]

    def reg_polls(self):
        """The registration poll, made once: ``csq()`` and the two of ``reg_queries()``."""
        q = self._regs
        if q is None:
            q = self._regs = (self.csq(), _kept(b"AT+CREG?", 1000, b"+CREG:", L_RETRY, "creg"),
                              _kept(b"AT+CGREG?", 1000, b"+CGREG:", L_RETRY, "cgreg"))
        return q

    def attach_query(self):
        c = self._att
        if c is None:
            c = self._att = _kept(b"AT+CGATT?", 1000, b"+CGATT:", L_RETRY, "cgatt?")
        return c

    def attach(self):
        return Command(b"AT+CGATT=1", 75000, level=L_PDP, tag="cgatt")

    @staticmethod
    def sim_ready(res):
        """True when the +CPIN answer says READY."""
        return res.ok and b"+CPIN: READY" in res.lines

    @staticmethod
    def sim_needs_pin(res):
        return res.ok and b"+CPIN: SIM PIN" in res.lines

    @staticmethod
    def pdp_ok(res):
        """The last bring-up answer (SIM800 AT+CIFSR, Quectel AT+QILOCIP: the local address
        as a bare line) is an IPv4 address."""
        return res.status == R_OK and res.final is not None and is_ipv4(res.final)

    @staticmethod
    def attached(res):
        for ln in res.lines:
            if parse_int_field(ln, b"+CGATT:") == 1:
                return True
        return False
