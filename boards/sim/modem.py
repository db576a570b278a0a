"""SIM800 model for the virtual board: the modem UART, its PWRKEY, and real TCP behind it.

Runs on the MicroPython unix port and on CPython. ``Sim800Model`` is what the firmware sees
as ``uart_modem`` (``machine.UART``-like: ``init(baudrate=...)``, ``any``, ``read``,
``readinto``, ``write``, ``txdone``, ``flush``, ``ioctl`` poll) and ``modem_pwrkey``
(``model.pwrkey``, a SimPin; 1 = key pressed). Everything is serviced when the UART is used
or ``poll()`` is called; no thread.

What it answers (SIM800 Series AT Command Manual V1.09, SIM800 Hardware Design V1.09):
``AT``, ``ATE0/1``, ``AT&F``, ``AT&W``, ``AT+IPR``, ``AT+CMEE``, ``AT+CFUN``,
``AT+CPIN?``/``=``, ``AT+CSQ``, ``AT+CREG?``, ``AT+CGREG?``, ``AT+CGATT?``/``=1``,
``AT+CIPMODE``, ``AT+CIPMUX`` (IP INITIAL only), ``AT+CIPQSEND``, ``AT+CIPRXGET=1/2/4``,
``AT+CSTT``, ``AT+CIICR``, ``AT+CIFSR`` (IP line, no OK), ``AT+CIPSTATUS`` (text after the
OK, as the module does), ``AT+CIPSTART=0,"TCP",host,port``, ``AT+CIPSEND=0,<n>`` (prompt,
exactly n bytes, ``DATA ACCEPT:0,n`` with CIPQSEND=1), ``AT+CIPCLOSE=0[,1]``,
``AT+CIPSHUT``, ``AT+CPOWD=1``; anything else ``ERROR``. IP states IP INITIAL -> IP START ->
IP GPRSACT -> IP STATUS / IP PROCESSING, PDP DEACT; CIPSTART only in IP STATUS/PROCESSING.

Link 0 is a real TCP connection (``connect(host, port)`` hook, default a socket to
``getaddrinfo(host, port)``; on the unix port a connect to 127.0.0.1 completes at once or is
refused). Received data waits in the module (``rxbuf`` 4096 bytes; when full the socket is
not read, so TCP flow control holds the peer) and is announced once with ``+CIPRXGET: 1,0``.

Power and baud: off at start unless ``powered=True``; a PWRKEY press of >= 1 s toggles the
power (on: the UART answers after ``boot`` ms; off: ``NORMAL POWER DOWN``). ``baud=None``
autobauds: the first ``AT`` after power-on locks the rate the MCU's UART has (set with
``init``) and is not answered; a fixed ``baud`` (or a later MCU rate change) that differs
from the MCU's makes input unreadable and output scrambled, with a scrambled echo of what
the MCU sent (what a module at the wrong baud rate looks like). At a fixed rate the boot
prints ``RDY``, ``+CFUN: 1``, ``+CPIN: READY``, ``Call Ready``, ``SMS Ready``.

Scripted conditions (for tests and, later, the control channel): ``network_down(mode)``
(``"deact"``: +PDP: DEACT and the link closed; ``"silent"``: link looks open but data is
black-holed), ``network_up()``, ``set_registration(stat or None)``, ``set_signal(rssi)``,
``hang(on)`` (no answer to anything until a power cycle), ``pdp_deact()``,
``remote_close()`` (``0, CLOSED``), ``undervoltage(power_down=False)``, ``garbage(n)``,
``inject(bytes)``, ``reboot()`` (brown-out), ``set_sim("READY"|"PIN"|"ABSENT")``,
``set_fixed_baud(rate or None)``, ``delays`` (ms per answer kind, see ``DELAYS``).
Counters: ``commands``, ``log`` (last 64 command lines), ``power_ons``, ``power_offs``,
``tcp_connects``, ``tcp_sent``, ``tcp_received``, ``uart_in``, ``uart_out``.
"""

import time

from boards.sim.hw import SimPin

try:
    _ticks_ms = time.ticks_ms
    _ticks_diff = time.ticks_diff
except AttributeError:  # CPython

    def _ticks_ms():
        return (time.monotonic_ns() // 1000000) & 0x3FFFFFFF

    def _ticks_diff(a, b):
        return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000


DELAYS = {
    "answer": 2,  # any answer
    "boot": 2500,  # power-on to UART ready
    "sim": 300,  # SIM ready after boot
    "reg": 1000,  # registered after boot / network up
    "attach": 100,
    "ciicr": 300,
    "connect": 100,  # CIPSTART -> CONNECT OK
    "connect_fail": 1000,  # CIPSTART -> CONNECT FAIL (no network / refused)
    "shut": 50,
}
_EAGAIN = (11, 35)
_LOG = 64
_MAX_SEND = 1460
_OUT_CAP = 16384  # bytes waiting to go to the MCU (a module's UART buffer)


def _real_connect(host, port):
    import socket  # here, not at the top: only this bridge needs a network stack

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.connect(socket.getaddrinfo(host, port)[0][-1])
    except OSError:
        s.close()
        raise
    s.setblocking(False)
    return s


class _Link:
    def __init__(self, sock):
        self.sock = sock
        self.rx = bytearray()
        self.tx = bytearray()
        self.announced = False
        self.blackhole = False


class Sim800Model:
    def __init__(self, baud=None, powered=False, sim="READY", pin="1234", rssi=20,
                 now_ms=None, connect=None, delays=None, rxbuf=4096, seed=1):
        self._now = now_ms or _ticks_ms
        self._connect = connect or _real_connect
        self.delays = dict(DELAYS)
        if delays:
            self.delays.update(delays)
        self.rxbuf = rxbuf
        self.fixed_baud = baud
        self.sim = sim
        self.pin = pin
        self.rssi = rssi
        self.net_up = True
        self.reg_override = None
        self.mcu_baud = 115200
        self.pwrkey = SimPin("MODEM_PWRKEY", on_change=self._key)
        self._press_at = None
        self._seed = seed or 1
        self.commands = 0
        self.log = []
        self.power_ons = self.power_offs = 0
        self.tcp_connects = self.tcp_sent = self.tcp_received = 0
        self.uart_in = self.uart_out = 0
        self.garbled = 0
        self._out = []  # [due_ms, bytes]
        self._outn = 0
        self._ready = bytearray()
        self.powered = False
        self._off_state()
        if powered:
            self._power_on(boot_ms=0)

    # -- machine.UART side -----------------------------------------------------------------

    def init(self, baudrate=None, **_kw):
        if baudrate:
            self.mcu_baud = baudrate

    def deinit(self):
        self.close()

    def any(self):
        self.poll()
        return len(self._ready)

    def read(self, n=-1):
        self.poll()
        if not self._ready:
            return None
        if n < 0 or n > len(self._ready):
            n = len(self._ready)
        out = bytes(self._ready[:n])
        self._ready = self._ready[n:]
        return out

    def readinto(self, buf, nbytes=-1):
        k = len(buf) if nbytes < 0 else min(nbytes, len(buf))
        d = self.read(k)
        if not d:
            return None
        buf[:len(d)] = d
        return len(d)

    def write(self, buf):
        n = len(buf)
        self.uart_in += n
        self.poll()
        if self.powered and not self._hung and self._booted():
            self._rx_from_mcu(bytes(buf))
        return n

    def txdone(self):
        return True

    def flush(self):
        pass

    def ioctl(self, req, arg):
        if req == 3:  # MP_STREAM_POLL
            r = 0
            if arg & 1 and self.any():
                r |= 1
            if arg & 4:
                r |= 4
            return r
        return 0

    def close(self):
        self._close_link()

    # -- scripted conditions ---------------------------------------------------------------

    def network_down(self, mode="deact"):
        """Lose the network: registration searching, CSQ 99; the link is dropped with
        +PDP: DEACT (mode "deact") or kept but black-holed (mode "silent")."""
        self.net_up = False
        self._attached = False
        if self._link is not None:
            if mode == "silent":
                self._link.blackhole = True
            else:
                self.pdp_deact()

    def network_up(self):
        self.net_up = True
        self._reg_at = self._now()
        if self._link is not None:
            self._link.blackhole = False

    def set_registration(self, stat):
        """Force +CREG/+CGREG stat (0..5), or None for the modelled value."""
        self.reg_override = stat

    def set_signal(self, rssi):
        self.rssi = rssi

    def hang(self, on=True):
        """Stop answering anything (the UART stays silent) until a power cycle."""
        self._hung = on

    def pdp_deact(self):
        self._close_link()
        self._ip = "PDP DEACT"
        self._emit(b"\r\n+PDP: DEACT\r\n")

    def remote_close(self):
        if self._link is not None:
            self._close_link()
            self._emit(b"\r\n0, CLOSED\r\n")

    def undervoltage(self, power_down=False):
        if power_down:
            self._emit(b"\r\nUNDER-VOLTAGE POWER DOWN\r\n")
            self._power_off()
        else:
            self._emit(b"\r\nUNDER-VOLTAGE WARNNING\r\n")

    def garbage(self, n):
        """n pseudo-random bytes on the UART now."""
        b = bytearray(n)
        for i in range(n):
            b[i] = self._rand() & 0xFF
        self._emit(bytes(b), raw=True)

    def inject(self, data):
        self._emit(data, raw=True)

    def reboot(self):
        """Brown-out: the module restarts (no power-down message), settings lost."""
        self._power_off(quiet=True)
        self._power_on()

    def set_sim(self, state):
        self.sim = state

    def set_fixed_baud(self, rate):
        self.fixed_baud = rate
        self._rate = rate

    @property
    def ip_state(self):
        return self._ip

    @property
    def connected(self):
        return self._link is not None

    # -- servicing -------------------------------------------------------------------------

    def poll(self):
        now = self._now()
        if self._boot_at is not None and _ticks_diff(now, self._boot_at) >= 0:
            self._boot_at = None
            if self._rate is not None:
                self._emit(b"\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nCall Ready\r\n"
                           b"\r\nSMS Ready\r\n")
        self._service_link(now)
        if self._out and not self._hung:
            keep = []
            for item in self._out:
                if _ticks_diff(now, item[0]) >= 0 and not keep:
                    self._deliver(item[1])
                else:
                    keep.append(item)
            self._out = keep

    def _deliver(self, data):
        self._outn -= len(data)
        if self._rate is not None and self._rate != self.mcu_baud:
            data = self._scramble(data)
        self.uart_out += len(data)
        self._ready.extend(data)

    def _scramble(self, data):
        self.garbled += len(data)
        b = bytearray(data)
        for i in range(len(b)):
            b[i] = (b[i] * 37 + (self._rand() & 0x1F)) & 0xFF
        return bytes(b)

    def _rand(self):
        x = self._seed
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self._seed = x & 0xFFFFFFFF
        return self._seed

    def _emit(self, data, delay=0, raw=False):
        if not self.powered and not raw:
            return
        if self._outn + len(data) > _OUT_CAP:
            return  # a real module drops output it cannot send
        due = (self._now() + delay) & 0x3FFFFFFF
        if self._out and _ticks_diff(self._out[-1][0], due) > 0:
            due = self._out[-1][0]  # keep order
        self._out.append([due, data])
        self._outn += len(data)

    def _answer(self, text, delay=None):
        self._emit(b"\r\n" + text + b"\r\n", self.delays["answer"] if delay is None else delay)

    def _ok(self, delay=None):
        self._answer(b"OK", delay)

    def _error(self, delay=None):
        # the TCP/IP commands answer a plain ERROR even with AT+CMEE=1 (SIM/PIN: _cme)
        self._answer(b"ERROR", delay)

    # -- power -----------------------------------------------------------------------------

    def _key(self, v):
        now = self._now()
        if v:
            self._press_at = now
            return
        if self._press_at is None:
            return
        held = _ticks_diff(now, self._press_at)
        self._press_at = None
        if held >= 1000:
            if self.powered:
                self._emit(b"\r\nNORMAL POWER DOWN\r\n")
                self._power_off()
            else:
                self._power_on()

    def _off_state(self):
        self._hung = False
        self._boot_at = None
        self._rate = self.fixed_baud
        self._line = bytearray()
        self._data_left = 0
        self._data = bytearray()
        self._echo = True
        self._cmee = 0
        self._mux = 0
        self._qsend = 0
        self._rxget = 0
        self._ip = "IP INITIAL"
        self._attached = False
        self._unlocked = self.sim == "READY"
        self._link = None
        self._pending_open = None
        self._power_at = self._now()
        self._reg_at = self._power_at

    def _power_on(self, boot_ms=None):
        self._off_state()
        self.powered = True
        self.power_ons += 1
        now = self._now()
        b = self.delays["boot"] if boot_ms is None else boot_ms
        self._boot_at = (now + b) & 0x3FFFFFFF
        self._power_at = self._boot_at
        self._reg_at = self._boot_at

    def _power_off(self, quiet=False):
        self._close_link()
        if quiet:
            self._out = []
            self._outn = 0
        self.powered = False
        self.power_offs += 1
        self._off_state()

    def _booted(self):
        return self._boot_at is None

    # -- AT parser -------------------------------------------------------------------------

    def _rx_from_mcu(self, data):
        if self._rate is not None and self._rate != self.mcu_baud:
            # what the module hears is noise; it echoes noise back when echo is on
            if self._echo:
                self._emit(data)
            return
        i = 0
        n = len(data)
        while i < n:
            if self._data_left:
                k = min(self._data_left, n - i)
                self._data.extend(data[i:i + k])
                self._data_left -= k
                i += k
                if not self._data_left:
                    self._send_done()
                continue
            j = data.find(b"\r", i)
            end = n if j < 0 else j
            chunk = data[i:end]
            if self._rate is None:
                # autobauding: wait for "AT" / "at" at the MCU's rate; that one is eaten
                self._line.extend(chunk)
                if j >= 0:
                    ln = bytes(self._line).strip().upper()
                    self._line = bytearray()
                    if ln.startswith(b"AT"):
                        self._rate = self.mcu_baud
                i = n if j < 0 else j + 1
                continue
            if self._echo:
                self._emit(data[i:end + 1] if j >= 0 else chunk)
            self._line.extend(chunk)
            if len(self._line) > 556:  # the module's command line limit
                self._line = bytearray()
            i = n if j < 0 else j + 1
            if j >= 0:
                ln = bytes(self._line).strip(b"\n \t")
                self._line = bytearray()
                if ln:
                    self._command(ln)

    def _command(self, line):
        self.commands += 1
        if len(self.log) >= _LOG:
            self.log.pop(0)
        self.log.append(line)
        try:
            self._dispatch(line)
        except (ValueError, IndexError):  # a malformed parameter: the module says ERROR
            self._error()

    def _dispatch(self, line):
        u = line.upper()
        if not u.startswith(b"AT"):
            self._error(self.delays["answer"])
            return
        c = u[2:]
        arg = line[2:]
        d = self.delays
        if c == b"" or c == b"&W" or c.startswith(b"+IPR") or c.startswith(b"+CFUN") or \
                c.startswith(b"+CLTS"):
            self._ok()
        elif c == b"E0" or c == b"E1":
            self._echo = c == b"E1"
            self._ok()
        elif c == b"&F" or c == b"&F0":
            self._echo = True
            self._cmee = 0
            self._ok()
        elif c.startswith(b"+CMEE="):
            self._cmee = int(c[6:] or b"0")
            self._ok()
        elif c == b"+CPIN?":
            self._cpin()
        elif c.startswith(b"+CPIN="):
            if self.sim == "ABSENT":
                self._cme(10)
            elif arg[6:].strip(b'"') == self.pin.encode():
                self._unlocked = True
                self._ok()
            else:
                self._cme(16)
        elif c == b"+CSQ":
            r = self.rssi if self.net_up and self._sim_ok() else 99
            self._answer(b"+CSQ: %d,0" % r)
            self._ok()
        elif c == b"+CREG?" or c == b"+CGREG?":
            self._answer(b"%s: 0,%d" % (c[:-1], self._reg()))
            self._ok()
        elif c == b"+CGATT?":
            self._answer(b"+CGATT: %d" % (1 if self._is_attached() else 0))
            self._ok()
        elif c == b"+CGATT=1":
            if self._registered():
                self._attached = True
                self._ok(d["attach"])
            else:
                self._error(d["attach"])
        elif c.startswith(b"+CIPMODE=") or c.startswith(b"+CIPMUX="):
            if self._ip != "IP INITIAL":
                self._error()
            else:
                if c.startswith(b"+CIPMUX="):
                    self._mux = int(c[8:] or b"0")
                self._ok()
        elif c.startswith(b"+CIPQSEND="):
            self._qsend = int(c[10:] or b"0")
            self._ok()
        elif c == b"+CIPRXGET=1" or c == b"+CIPRXGET=0":
            self._rxget = int(c[10:])
            self._ok()
        elif c.startswith(b"+CIPRXGET=2,") or c.startswith(b"+CIPRXGET=4,"):
            self._rxget_cmd(c)
        elif c.startswith(b"+CSTT"):
            if self._ip != "IP INITIAL":
                self._error()
            else:
                self._ip = "IP START"
                self._ok()
        elif c == b"+CIICR":
            if self._ip == "IP START" and self._is_attached() and self.net_up:
                self._ip = "IP GPRSACT"
                self._ok(d["ciicr"])
            else:
                self._error(d["ciicr"])
        elif c == b"+CIFSR":
            if self._ip in ("IP GPRSACT", "IP STATUS", "IP PROCESSING"):
                if self._ip == "IP GPRSACT":
                    self._ip = "IP STATUS"
                self._answer(b"10.64.%d.%d" % (self.power_ons & 0xFF, self.commands & 0xFF))
            else:
                self._error()
        elif c == b"+CIPSTATUS":
            self._ok()
            self._answer(b"STATE: " + self._ip.encode())
            if self._mux:
                self._answer(b'C: 0,0,"TCP","","","%s"' % (
                    b"CONNECTED" if self._link is not None else b"INITIAL"))
        elif c.startswith(b"+CIPSTART="):
            self._cipstart(arg[10:])
        elif c.startswith(b"+CIPSEND=0,") or c.startswith(b"+CIPSEND="):
            self._cipsend(c)
        elif c.startswith(b"+CIPCLOSE"):
            if self._link is not None:
                self._close_link()
                self._answer(b"0, CLOSE OK")
            else:
                self._error()
        elif c == b"+CIPSHUT":
            self._close_link()
            self._pending_open = None
            self._ip = "IP INITIAL"
            self._answer(b"SHUT OK", d["shut"])
        elif c.startswith(b"+CPOWD"):
            self._answer(b"NORMAL POWER DOWN")
            self._power_off()
        else:
            self._error()

    def _cme(self, code):
        if self._cmee:
            self._answer(b"+CME ERROR: %d" % code)
        else:
            self._answer(b"ERROR")

    def _sim_ok(self):
        return self.sim != "ABSENT" and self._unlocked

    def _cpin(self):
        if self.sim == "ABSENT":
            self._cme(10)
        elif _ticks_diff(self._now(), self._power_at) < self.delays["sim"]:
            self._cme(14)  # SIM busy
        elif not self._unlocked:
            self._answer(b"+CPIN: SIM PIN")
            self._ok()
        else:
            self._answer(b"+CPIN: READY")
            self._ok()

    def _reg(self):
        if self.reg_override is not None:
            return self.reg_override
        if not self._sim_ok() or not self.net_up:
            return 2
        if _ticks_diff(self._now(), self._reg_at) < self.delays["reg"]:
            return 2
        return 1

    def _registered(self):
        return self._reg() in (1, 5)

    def _is_attached(self):
        # a registered SIM800 attaches to GPRS by itself
        return self._attached or self._registered()

    # -- TCP link 0 ------------------------------------------------------------------------

    def _cipstart(self, args):
        d = self.delays
        if self._ip not in ("IP STATUS", "IP PROCESSING") or self._mux != 1:
            self._error()
            return
        if self._link is not None or self._pending_open is not None:
            self._answer(b"0, ALREADY CONNECT")
            self._error()
            return
        f = args.split(b",")
        try:
            host = f[2].strip(b'"').decode()
            port = int(f[3])
        except (IndexError, ValueError):
            self._error()
            return
        self._ok()
        self._ip = "IP PROCESSING"
        if not self.net_up or not self._registered():
            self._answer(b"0, CONNECT FAIL", d["connect_fail"])
            return
        try:
            s = self._connect(host, port)
        except OSError:
            self._answer(b"0, CONNECT FAIL", d["connect_fail"])
            return
        self.tcp_connects += 1
        self._link = _Link(s)
        self._answer(b"0, CONNECT OK", d["connect"])

    def _cipsend(self, c):
        try:
            f = c[9:].split(b",")
            n = int(f[-1])
        except ValueError:
            self._error()
            return
        if self._link is None or n <= 0 or n > _MAX_SEND:
            self._error()
            return
        self._emit(b"\r\n> ", self.delays["answer"])
        self._data = bytearray()
        self._data_left = n

    def _send_done(self):
        data = bytes(self._data)
        self._data = bytearray()
        lk = self._link
        if lk is None:
            self._answer(b"0, SEND FAIL" if self._mux else b"SEND FAIL")
            return
        if not lk.blackhole:
            lk.tx.extend(data)
            self.tcp_sent += len(data)
        if self._qsend:
            self._answer(b"DATA ACCEPT:0,%d" % len(data))
        else:
            self._answer(b"0, SEND OK")

    def _rxget_cmd(self, c):
        f = c[10:].split(b",")
        lk = self._link
        if c[10:11] == b"4":
            self._answer(b"+CIPRXGET: 4,0,%d" % (len(lk.rx) if lk else 0))
            self._ok()
            return
        if lk is None or self._rxget != 1:
            self._error()
            return
        try:
            want = int(f[2])
        except (IndexError, ValueError):
            self._error()
            return
        k = min(want, len(lk.rx), _MAX_SEND)
        data = bytes(lk.rx[:k])
        lk.rx = lk.rx[k:]
        left = len(lk.rx)
        if not left:
            lk.announced = False
        self._emit(b"\r\n+CIPRXGET: 2,0,%d,%d\r\n" % (k, left) + data + b"\r\nOK\r\n",
                   self.delays["answer"])

    def _close_link(self):
        lk = self._link
        self._link = None
        if lk is not None:
            try:
                lk.sock.close()
            except OSError:
                pass
        if self._ip == "IP PROCESSING":
            self._ip = "IP STATUS"

    def _service_link(self, now):
        lk = self._link
        if lk is None or lk.blackhole or not self.powered:
            return
        s = lk.sock
        try:
            while lk.tx:
                k = s.send(lk.tx)
                if not k:
                    break
                lk.tx = lk.tx[k:]
        except OSError as e:
            if not (e.args and e.args[0] in _EAGAIN):
                self._lost()
                return
        while len(lk.rx) < self.rxbuf:
            try:
                d = s.recv(min(512, self.rxbuf - len(lk.rx)))
            except OSError as e:
                if not (e.args and e.args[0] in _EAGAIN):
                    self._lost()
                return
            if d is None:
                return
            if not d:
                self._lost()
                return
            self.tcp_received += len(d)
            lk.rx.extend(d)
            if not lk.announced and self._rxget == 1:
                lk.announced = True
                self._emit(b"\r\n+CIPRXGET: 1,0\r\n")

    def _lost(self):
        self._close_link()
        self._emit(b"\r\n0, CLOSED\r\n")
