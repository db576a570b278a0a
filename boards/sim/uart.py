"""Virtual board UART: a ``machine.UART``-like object bridged to TCP on 127.0.0.1.

Runs on the MicroPython unix port and on CPython. Two flavours:

- ``TcpUart(port, host='127.0.0.1')`` listens; one client at a time (a new client replaces the
  previous one, like plugging an optical head onto the port). Used for the optical port.
- ``BusUart(port, host='127.0.0.1')`` connects as a client to the RS-485 hub
  (``tools/rs485_hub.py``), which passes every byte to every other member.

The TCP stream carries characters, not line signals: a byte written is delivered at once,
no baud mismatch or parity error is simulated. What is modelled:

- the frame format last set by ``init(baudrate, bits, parity, stop)`` (attributes ``baudrate``,
  ``bits``, ``parity``, ``stop``; ``inits`` counts calls). With ``bits=7`` bit 7 is cleared on
  send and receive, as a 7E1 UART does;
- transmit timing: ``write`` of n bytes at b Bd keeps ``txdone()`` False for n*10/b seconds of
  real time after the previous transmission ends, so an RS-485 DE line can be released after
  the last stop bit (1 start + 7 data + parity + 1 stop = 10 bits, or 8N1, also 10 bits);
- ``ioctl(3, flags)`` (MP_STREAM_POLL) so ``asyncio.StreamReader(uart)`` works on MicroPython.

Everything is non-blocking; the socket is serviced whenever the UART is used (``any``, ``read``,
``readinto``, ``write``, ``ioctl``) or by calling ``poll()``. The rx buffer holds ``rxbuf``
bytes (default 1024); older bytes are kept and newer ones dropped on overflow (counted in
``overruns``). At most ``TX_HOLD`` bytes wait for a TCP peer that does not read; the rest are
lost (``tx_dropped``), as on a line nobody listens to, never held in RAM.
"""

import socket
import time

try:
    _ticks_ms = time.ticks_ms
    _ticks_diff = time.ticks_diff
    _sleep_ms = time.sleep_ms
except AttributeError:  # CPython

    def _ticks_ms():
        return (time.monotonic_ns() // 1000000) & 0x3FFFFFFF

    def _ticks_diff(a, b):
        return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000

    def _sleep_ms(ms):
        time.sleep(ms / 1000)


_POLL = 3  # MP_STREAM_POLL
_POLL_RD = 1
_POLL_WR = 4
_EAGAIN = (11, 35)  # Linux, BSD/macOS
_RETRY_MS = 1000  # BusUart reconnect interval
TX_HOLD = 16384  # bytes held for a TCP peer that does not read; more are lost, as on a line


def _again(e):
    return isinstance(e, OSError) and e.args and e.args[0] in _EAGAIN


class _SockUart:
    def __init__(self, rxbuf):
        self.baudrate = 300
        self.bits = 7
        self.parity = 0
        self.stop = 1
        self.inits = 0
        self.overruns = 0
        self.tx_count = 0  # bytes written
        self.tx_dropped = 0  # bytes lost because a TCP peer did not read (TX_HOLD)
        self.rx_count = 0  # bytes received
        self._rx = bytearray(rxbuf)
        self._rxn = 0
        self._tx_pending = bytearray()
        self._tx_end = _ticks_ms()
        self._conn = None

    # -- machine.UART API ------------------------------------------------------------------

    def init(self, baudrate=None, bits=None, parity=-1, stop=None, **_kw):
        """Record a new frame format. parity: None, 0 (even) or 1 (odd); -1 = unchanged.
        Other keywords (tx, rx, timeout, rxbuf, ...) are accepted and ignored."""
        if baudrate is not None:
            if baudrate <= 0:
                raise ValueError("baudrate")
            self.baudrate = baudrate
        if bits is not None:
            if bits not in (7, 8, 9):
                raise ValueError("bits")
            self.bits = bits
        if parity != -1:
            if parity not in (None, 0, 1):
                raise ValueError("parity")
            self.parity = parity
        if stop is not None:
            self.stop = stop
        self.inits += 1

    def deinit(self):
        self.close()

    def any(self):
        """Number of received bytes waiting."""
        self.poll()
        return self._rxn

    def read(self, n=-1):
        """Up to ``n`` waiting bytes (all when n < 0), or None when there are none."""
        self.poll()
        if not self._rxn:
            return None
        if n < 0 or n > self._rxn:
            n = self._rxn
        out = bytes(self._rx[:n])
        self._take(n)
        return out

    def readinto(self, buf, nbytes=-1):
        """Copy waiting bytes into ``buf``; return the count, or None when none are waiting."""
        self.poll()
        if not self._rxn:
            return None
        n = len(buf) if nbytes < 0 else min(nbytes, len(buf))
        if n > self._rxn:
            n = self._rxn
        buf[:n] = self._rx[:n]
        self._take(n)
        return n

    def readline(self):
        self.poll()
        i = self._rx.find(b"\n", 0, self._rxn)
        return self.read(i + 1 if i >= 0 else -1)

    def write(self, buf):
        """Send ``buf``; returns its length. Bit 7 is cleared when bits == 7."""
        n = len(buf)
        data = bytearray(buf)
        if self.bits == 7:
            for i in range(n):
                data[i] &= 0x7F
        now = _ticks_ms()
        start = self._tx_end if _ticks_diff(self._tx_end, now) > 0 else now
        self._tx_end = (start + (n * 10000 + self.baudrate - 1) // self.baudrate) & 0x3FFFFFFF
        self.tx_count += n
        if self._conn is not None:
            room = TX_HOLD - len(self._tx_pending)
            if n > room:  # the peer does not read: the line loses the bits
                self.tx_dropped += n - (room if room > 0 else 0)
                data = data[:room] if room > 0 else b""
            self._tx_pending.extend(data)
        self.poll()
        return n

    def txdone(self):
        """True once the last written character would have left the shift register."""
        self.poll()
        return _ticks_diff(_ticks_ms(), self._tx_end) >= 0

    def flush(self):
        """Block until transmission is complete (as machine.UART.flush)."""
        while not self.txdone():
            _sleep_ms(1)

    def ioctl(self, req, arg):
        if req == _POLL:
            self.poll()
            ret = 0
            if arg & _POLL_RD and self._rxn:
                ret |= _POLL_RD
            if arg & _POLL_WR:
                ret |= _POLL_WR
            return ret
        if req == 4:  # MP_STREAM_CLOSE
            self.close()
            return 0
        return -1

    # -- socket side -----------------------------------------------------------------------

    @property
    def connected(self):
        """True while a TCP peer (client or hub) is attached."""
        return self._conn is not None

    def poll(self):
        """Service the socket(s): accept/connect, receive into the rx buffer, send pending."""
        self._link()
        c = self._conn
        if c is None:
            return
        try:
            while self._tx_pending:
                k = c.send(self._tx_pending)
                if not k:
                    break
                self._tx_pending = self._tx_pending[k:]
        except OSError as e:
            if not _again(e):
                self._drop()
                return
        while True:
            try:
                d = c.recv(256)
            except OSError as e:
                if not _again(e):
                    self._drop()
                return
            if not d:
                self._drop()
                return
            self._store(d)

    def close(self):
        self._drop()

    def _store(self, d):
        self.rx_count += len(d)
        room = len(self._rx) - self._rxn
        n = len(d)
        if n > room:
            self.overruns += n - room
            n = room
        if n:
            self._rx[self._rxn : self._rxn + n] = d[:n] if self.bits != 7 else _mask(d[:n])
            self._rxn += n

    def _take(self, n):
        rest = self._rxn - n
        if rest:
            self._rx[:rest] = self._rx[n : self._rxn]
        self._rxn = rest

    def _drop(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
        self._conn = None
        self._tx_pending = bytearray()

    def _adopt(self, s):
        s.setblocking(False)
        self._conn = s
        self._rxn = 0
        self._tx_pending = bytearray()

    def _link(self):
        pass


def _mask(d):
    b = bytearray(d)
    for i in range(len(b)):
        b[i] &= 0x7F
    return b


def _addr(host, port):
    return socket.getaddrinfo(host, port)[0][-1]


class TcpUart(_SockUart):
    """UART whose line is a TCP server on ``host:port``; one client at a time.

    Raises OSError if the port cannot be bound.
    """

    def __init__(self, port, host="127.0.0.1", rxbuf=1024):
        super().__init__(rxbuf)
        self.port = port
        self.host = host
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(_addr(host, port))
        s.listen(1)
        s.setblocking(False)
        self._srv = s
        self.clients = 0  # connections accepted so far

    def _link(self):
        if self._srv is None:
            return
        while True:
            try:
                conn = self._srv.accept()[0]
            except OSError:
                return
            self._drop()  # a new client replaces the old one
            self._adopt(conn)
            self.clients += 1

    def close(self):
        self._drop()
        if self._srv is not None:
            self._srv.close()
            self._srv = None


class BusUart(_SockUart):
    """UART attached to the simulated RS-485 bus hub at ``host:port`` (TCP client).

    Connects on creation and reconnects every second while the hub is unreachable;
    ``clients`` counts the connections made (a reconnection is a new link for the port task,
    firmware/ports/pump.py, even when it happens unseen between two of its passes).
    """

    def __init__(self, port, host="127.0.0.1", rxbuf=1024):
        super().__init__(rxbuf)
        self.port = port
        self.host = host
        self._next_try = _ticks_ms()
        self._closed = False
        self.clients = 0
        self._link()

    def _link(self):
        if self._conn is not None or self._closed:
            return
        now = _ticks_ms()
        if _ticks_diff(now, self._next_try) < 0:
            return
        self._next_try = (now + _RETRY_MS) & 0x3FFFFFFF
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.connect(_addr(self.host, self.port))  # localhost: completes at once or fails
        except OSError:
            s.close()
            return
        self._adopt(s)
        self.clients += 1

    def close(self):
        self._closed = True
        self._drop()
