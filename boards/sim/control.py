# The virtual board's control channel: buttons, switches and sensors driven over TCP.
"""Control channel of the virtual board (``--control-tcp PORT``).

A line protocol on ``127.0.0.1:PORT`` (TCP; any number of clients, e.g. ``nc 127.0.0.1
PORT``). One command per line (ASCII, ``\\n`` or ``\\r\\n``, at most ``MAX_LINE`` = 256
bytes); every non-empty line gets exactly one reply line: actions answer ``OK``, queries
answer their value, a bad command, a longer line or one that is not UTF-8 text answers
``ERR <reason>``, and the channel keeps serving. A client that closes its sending side
(``nc -N``, ``printf 'lcd\\n' | nc -q1 ...``) still gets its replies, then the connection
closes; one that does not read its replies has at most ``MAX_TX`` bytes of them held, and
its further commands wait in its socket.

Inputs (the board's Pin-like inputs, 1 = active; the firmware polls or gets an interrupt):

=============================  =====================================================
``press NAME [S]``             press button NAME for S seconds (default 0.2), then release;
                               the reply comes ``SETTLE_MS`` (150 ms) after the release, so
                               that the firmware (polling every 50 ms) has seen the release
                               before a next press
``hold NAME S``                the same with S required (e.g. ``hold scroll 4``)
``down NAME`` / ``release NAME``  press and keep pressed / release (reply at once)
``seal open|closed``           seal switch under the sealed cover (open = parameters may change)
``test on|off``                the test-mode switch
``cover open|closed``          main cover switch; ``tcover open|closed``: terminal cover
``magnet on|off``              magnetic-field sensor
``power-fail``                 assert the power-fail input; power goes ``--holdup-ms`` (metering
                               time) later and the process ends as in ``--power-fail-at``
``stop``                       end the run in order, as at the end of ``--duration`` (the
                               summary and the ``--json`` line follow; the process exits 0).
                               Scripts should stop a run this way rather than with Ctrl-C
                               (SIGINT), which the unix port raises wherever the interpreter
                               is: inside a garbage collection it leaves the heap locked
=============================  =====================================================

Buttons (NAME): ``scroll`` (``btn_scroll``), ``demand`` (``btn_demand_reset``).

Queries:

=============  ===================================================================
``lcd``        the LCD's current text line, as lib.lcd.frame_text (identifier, digits,
               annunciator names), e.g. ``1.8.0    00012.345 kWh IMP T1``
``leds``       ``kwh=0 kvarh=0 kwh_flashes=N kvarh_flashes=N`` (levels now, rising edges
               since start)
``inputs``     ``scroll=0 demand=0 test=0 seal=0 cover=0 tcover=0 magnet=0 power_fail=0``
``uplink``     the uplink's counters (``pending=.. sent=.. state=.. ...``)
``help``       the command names
=============  ===================================================================

Modem (the SIM800 model, boards/sim/modem.py): ``network up``, ``network down [deact|
silent]`` (``+PDP: DEACT`` and the link closed / the link looks open, data black-holed),
``modem reg home|roaming|denied|searching|auto``, ``modem signal N`` (CSQ 0..31, 99),
``modem hang on|off``, ``modem pdp-deact``, ``modem closed`` (``0, CLOSED``), ``modem
garbage N`` (N random bytes on the UART), ``modem undervoltage``, ``modem state``.

Polled from an asyncio task every ``POLL_MS`` (20 ms) of real time with non-blocking
sockets (no threads), so it works on the MicroPython unix port and under CPython.
"""

import asyncio
import socket

from boards.sim.uart import _ticks_diff, _ticks_ms

POLL_MS = 20
SETTLE_MS = 150  # reply to press/hold this long after the release
MAX_LINE = 256  # bytes per command line; a longer line is discarded up to its newline
MAX_TX = 4096  # replies held for a client that does not read them; then its input waits
_EAGAIN = (11, 35)  # Linux, BSD/macOS

BUTTONS = (("scroll", "btn_scroll"), ("demand", "btn_demand_reset"))
# (name, board attribute, word for 1, word for 0)
SWITCHES = (("seal", "seal", "open", "closed"), ("test", "sw_test", "on", "off"),
            ("cover", "cover", "open", "closed"), ("tcover", "terminal_cover", "open", "closed"),
            ("magnet", "magnet", "on", "off"))


def _button(name):
    for n, attr in BUTTONS:
        if n == name:
            return attr
    return None
HELP = ("press hold down release seal test cover tcover magnet power-fail stop lcd leds inputs "
        "network modem uplink help")
# modem reg WORD -> +CGREG stat (3GPP TS 27.007 10.1.20); auto: the model's own
_REG = {"home": 1, "roaming": 5, "denied": 3, "searching": 2, "auto": None}


def _again(e):
    return e.args and e.args[0] in _EAGAIN


class _Client:
    def __init__(self, sock):
        sock.setblocking(False)
        self.sock = sock
        self.rx = b""
        self.tx = b""
        self.waiting = False  # a press is running: further lines wait for its reply
        self.overlong = False  # discarding the rest of a line longer than MAX_LINE
        self.eof = False  # the client closed its sending side: answer, then close


class ControlServer:
    """The control channel on ``host:port`` for ``board`` (a SimBoard). Raises OSError if
    the port cannot be bound."""

    def __init__(self, board, port, host="127.0.0.1"):
        self.board = board
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(socket.getaddrinfo(host, port)[0][-1])
        s.listen(4)
        s.setblocking(False)
        self._srv = s
        self.port = port
        self._clients = []
        self._timed = []  # [due wall ms, pin to release or None, client to answer or None]
        self.commands = 0

    async def run(self):
        try:
            while True:
                self.poll()
                await asyncio.sleep_ms(POLL_MS)
        finally:
            self.close()

    def close(self):
        for c in self._clients:
            c.sock.close()
        self._clients = []
        if self._srv is not None:
            self._srv.close()
            self._srv = None

    def poll(self):
        """Accept, read lines, run due releases, send replies (never blocks). Bad input
        (binary bytes, a line longer than ``MAX_LINE``) is answered ``ERR ...`` and the
        channel keeps serving."""
        while True:
            try:
                conn = self._srv.accept()[0]
            except OSError:
                break
            self._clients.append(_Client(conn))
        now = _ticks_ms()
        for t in self._timed[:]:
            if _ticks_diff(now, t[0]) >= 0:
                self._timed.remove(t)
                c = t[2]
                if t[1] is not None:  # release, then answer after the settle time
                    t[1].set_input(0)
                    if c is not None:
                        self._timed.append([(now + SETTLE_MS) & 0x3FFFFFFF, None, c])
                elif c in self._clients:
                    c.waiting = False
                    self._reply(c, "OK")
        for c in self._clients[:]:
            self._serve(c)

    def _serve(self, c):
        # read at most what fits the line buffer (plus one recv) per poll, and nothing while
        # MAX_TX bytes of replies wait for a client that does not read them, so a flood is
        # consumed at a bounded rate and never held in memory
        try:
            for _ in range(64):  # at most 16 KiB per poll
                if c.eof or len(c.rx) > MAX_LINE or len(c.tx) >= MAX_TX:
                    break
                d = c.sock.recv(256)
                if not d:  # half-closed (nc -N, a script's end of input): answer, then close
                    c.eof = True
                    if c.rx and not c.overlong and c.rx[-1] != 10:
                        c.rx += b"\n"  # the last line needs no newline
                    break
                self._take(c, d)
        except OSError as e:
            if not _again(e):
                self._drop(c)
                return
        self._lines(c)
        self._flush(c)
        if c.eof and not c.waiting and not c.tx and (c.overlong or c.rx.find(b"\n") < 0):
            self._drop(c)

    def _take(self, c, d):
        """Append received bytes; the tail of an over-long line is dropped up to its end."""
        if c.overlong:
            k = d.find(b"\n")
            if k < 0:
                return
            c.overlong = False
            d = d[k + 1:]
        c.rx += d

    def _lines(self, c):
        """Run the complete lines in the buffer (one reply each); a line longer than
        MAX_LINE or not UTF-8 text gets ``ERR`` and the channel goes on."""
        while not c.waiting and len(c.tx) < MAX_TX:
            k = c.rx.find(b"\n")
            if k < 0:
                if len(c.rx) > MAX_LINE:  # no end in sight: refuse it, skip to its newline
                    c.rx = b""
                    c.overlong = True
                    self._reply(c, "ERR line too long (max %d bytes)" % MAX_LINE)
                return
            line = c.rx[:k]
            c.rx = c.rx[k + 1:]
            if len(line) > MAX_LINE:
                self._reply(c, "ERR line too long (max %d bytes)" % MAX_LINE)
                continue
            try:
                text = line.decode().strip()
            except UnicodeError:
                self._reply(c, "ERR line is not UTF-8 text")
                continue
            if text:
                self.commands += 1
                try:
                    r = self.command(text, c)
                except Exception as e:  # a bug in one command must not end the channel
                    r = "ERR %s: %s" % (type(e).__name__, e)
                if r is not None:
                    self._reply(c, r)

    def _reply(self, c, text):
        c.tx += text.encode() + b"\n"
        self._flush(c)

    def _flush(self, c):
        try:
            while c.tx:
                k = c.sock.send(c.tx)
                if not k:
                    break
                c.tx = c.tx[k:]
        except OSError as e:
            if not _again(e):
                self._drop(c)

    def _drop(self, c):
        if c in self._clients:
            self._clients.remove(c)
        try:
            c.sock.close()
        except OSError:
            pass

    # -- commands --------------------------------------------------------------------------

    def command(self, text, client=None):
        """Run one command line; returns the reply (str), or None when the reply is
        deferred (a timed press answers at its release)."""
        w = text.split()
        cmd = w[0].lower()
        args = w[1:]
        b = self.board
        try:
            if cmd in ("press", "hold"):
                n = 2 if cmd == "hold" else len(args)
                if not 1 <= n <= 2 or len(args) != n or _button(args[0]) is None:
                    return "ERR usage: press scroll|demand [S] / hold scroll|demand S"
                s = float(args[1]) if n > 1 else 0.2
                if not 0 < s <= 600:
                    return "ERR seconds must be 0..600"
                pin = getattr(b, _button(args[0]))
                pin.set_input(1)
                self._timed.append([(_ticks_ms() + int(s * 1000)) & 0x3FFFFFFF, pin, client])
                if client is None:
                    return "OK"
                client.waiting = True
                return None
            if cmd in ("down", "release"):
                if len(args) != 1 or _button(args[0]) is None:
                    return "ERR usage: %s scroll|demand" % cmd
                getattr(b, _button(args[0])).set_input(1 if cmd == "down" else 0)
                return "OK"
            for name, attr, on, off in SWITCHES:
                if cmd == name:
                    if len(args) != 1 or args[0] not in (on, off):
                        return "ERR usage: %s %s|%s" % (cmd, on, off)
                    getattr(b, attr).set_input(1 if args[0] == on else 0)
                    return "OK"
            if cmd == "stop":
                if args:
                    return "ERR usage: stop"
                return "OK" if b.stop() else "ERR the meter has not started"
            if cmd == "power-fail":
                asyncio.create_task(self._power_fail())
                return "OK"
            if cmd == "lcd":
                return b.lcd_text()
            if cmd == "leds":
                return "kwh=%d kvarh=%d kwh_flashes=%d kvarh_flashes=%d" % (
                    b.led_kwh.value(), b.led_kvarh.value(), b.led_kwh.rises, b.led_kvarh.rises)
            if cmd == "inputs":
                out = ["%s=%d" % (n, getattr(b, a).value()) for n, a in BUTTONS]
                out += ["%s=%d" % (v[0], getattr(b, v[1]).value()) for v in SWITCHES]
                out.append("power_fail=%d" % b.power_fail.value())
                return " ".join(out)
            if cmd in ("network", "modem", "uplink"):
                return self._modem(cmd, args)
            if cmd == "help":
                return HELP
        except ValueError:
            return "ERR bad value in %r" % text
        return "ERR unknown command %r (try help)" % cmd

    def _modem(self, cmd, args):
        # the modem model's network conditions (boards/sim/modem.py) and the uplink's state
        md = getattr(self.board, "modem", None)
        if md is None:
            return "ERR no modem on this board"
        if cmd == "network":
            if args == ["up"]:
                md.network_up()
            elif args == ["down"] or args == ["down", "deact"]:
                md.network_down("deact")
            elif args == ["down", "silent"]:
                md.network_down("silent")
            else:
                return "ERR usage: network up|down [deact|silent]"
            return "OK"
        if cmd == "uplink":
            up = getattr(self.board._meter, "uplink", None) if self.board._meter else None
            if up is None:
                return "ERR no uplink running"
            s = up.stats()
            return " ".join("%s=%s" % (k, s[k]) for k in sorted(s) if k != "last_error")
        a = args[0] if args else ""
        n = len(args)
        if a == "reg" and n == 2 and args[1] in _REG:
            md.set_registration(_REG[args[1]])
        elif a == "signal" and n == 2 and 0 <= int(args[1]) <= 99:
            md.set_signal(int(args[1]))
        elif a == "hang" and n == 2 and args[1] in ("on", "off"):
            md.hang(args[1] == "on")
        elif a == "pdp-deact" and n == 1:
            md.pdp_deact()
        elif a == "closed" and n == 1:
            md.remote_close()
        elif a == "garbage" and n == 2 and 1 <= int(args[1]) <= 65536:
            md.garbage(int(args[1]))
        elif a == "undervoltage" and n == 1:
            md.undervoltage()
        elif a == "state" and n == 1:
            return "powered=%d ip=%s link=%d net=%d rssi=%d" % (
                md.powered, md.ip_state, 1 if md.connected else 0, 1 if md.net_up else 0,
                md.rssi)
        else:
            return ("ERR usage: modem reg home|roaming|denied|searching|auto, modem signal "
                    "0..31|99, modem hang on|off, modem pdp-deact|closed|undervoltage|state, "
                    "modem garbage N")
        return "OK"

    async def _power_fail(self):
        b = self.board
        b.power_fail.set_input(1)
        await b.clock.sleep_ms(b.opts.holdup_ms)
        b.lose_power("control channel power-fail, hold-up %d ms" % b.opts.holdup_ms)
