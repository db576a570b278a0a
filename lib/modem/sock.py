"""A socket-like object over the modem's TCP link, for clients written for sockets
(umqtt.simple: ``write(buf)``, ``write(buf, n)``, ``read(n)``, ``setblocking``,
``settimeout``, ``close``: what umqtt/simple.py 1.3.4 calls on its socket).

``ModemSocket(link)`` stands for one TCP connection through ``link`` (modem.link.Link) and
its manager. ``connect((host, port))`` asks the manager for a fresh link (a link another
socket already used is closed first) and waits until it is up; the socket is then bound to
that link's generation (``manager.gen``): once that link is gone every call raises
``OSError(ECONNRESET)``, even if the manager has opened a new one meanwhile.

Blocking. umqtt.simple is a blocking client. A blocking call pumps ``link.service()`` and
calls ``idle()`` (default ``time.sleep_ms(1)``) until it can complete, for at most the
timeout: ``settimeout(s)`` seconds, ``settimeout(None)`` or ``setblocking(True)`` the
socket's bound ``max_block_ms`` (default 15000: an unbounded wait on a 2G link would hang
the caller for good), then ``OSError(ETIMEDOUT)``. ``setblocking(False)`` /
``settimeout(0)``: one pump round, then ``read`` returns None when nothing is there and
``write`` returns how much was queued (None for nothing).

- ``read(n)`` returns exactly n bytes when blocking (never a short read, which umqtt would
  index past); ``read()`` / ``read(-1)`` whatever is there (at least 1 byte when blocking).
- ``write(buf[, n])`` queues the first n bytes (all by default) in the manager's transmit
  buffer and returns the count. Writes are not sent one by one: the manager sends what has
  queued up when the modem is next free, so the five writes umqtt makes per PUBLISH leave in
  one ``AT+CIPSEND``.
- ``close()`` releases the link; the manager sends what is still queued, then closes it.

``ModemNet(link, **kw)`` looks like the ``socket`` module to a client that builds its own
socket: ``socket()`` returns a new ModemSocket(link, **kw), ``getaddrinfo(host, port)``
returns ``[(AF_INET, SOCK_STREAM, 0, "", (host, port))]`` (the modem resolves the name).
"""

import errno
import time

from modem.at import ticks_diff

_ETIMEDOUT = errno.ETIMEDOUT
_ECONNRESET = errno.ECONNRESET


def _sleep1():
    if hasattr(time, "sleep_ms"):
        time.sleep_ms(1)
    else:  # CPython
        time.sleep(0.001)


class ModemSocket:
    def __init__(self, link, max_block_ms=15000, connect_ms=None, idle=None):
        self._link = link
        self._m = link.manager
        self.max_block_ms = max_block_ms
        self.connect_ms = connect_ms if connect_ms is not None else max_block_ms
        self._idle = idle or _sleep1
        self._timeout = max_block_ms
        self._gen = None
        self.closed = False

    # -- socket API ------------------------------------------------------------------------

    def settimeout(self, t):
        if t is None:
            self._timeout = self.max_block_ms
        else:
            ms = int(t * 1000)
            self._timeout = ms if ms < self.max_block_ms else self.max_block_ms

    def setblocking(self, flag):
        self._timeout = self.max_block_ms if flag else 0

    def connect(self, addr):
        host, port = addr[0], addr[1]
        m = self._m
        now = self._link.now()
        if m.connected and m.claimed == m.gen:
            m.release(now)  # a link another socket used: start a fresh TCP connection
        m.open(host, port, now)
        if not self._wait(self._fresh, self.connect_ms):
            raise OSError(_ETIMEDOUT)
        m.claimed = m.gen
        self._gen = m.gen

    def write(self, buf, n=None):
        if n is None:
            n = len(buf)
        elif n > len(buf):
            n = len(buf)
        mv = memoryview(buf)
        if self._timeout == 0:
            self._check()
            self._link.service()
            self._check()
            k = self._m.write(mv[:n])
            return k if k else None
        done = 0
        while done < n:
            self._check()
            done += self._m.write(mv[done:n])
            if done < n and not self._wait(self._room, self._timeout):
                self._check()
                raise OSError(_ETIMEDOUT)
        return n

    def read(self, n=-1):
        m = self._m
        if self._timeout == 0:
            self._check_rx()
            self._link.service()
            if self._mine() and m.rx_available():
                return m.read(n if n >= 0 else m.rx_available())
            self._check()
            return None
        want = n if n > 0 else 1
        if n == 0:
            return b""
        m.want_read = True
        try:
            ok = self._wait(lambda: m.rx_available() >= want or not self._alive(),
                            self._timeout)
        finally:
            m.want_read = False
        if self._mine() and m.rx_available() >= want:
            return m.read(n if n > 0 else m.rx_available())
        self._check()
        if not ok:
            raise OSError(_ETIMEDOUT)
        raise OSError(_ECONNRESET)

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self._alive():
            self._m.release(self._link.now())  # queued bytes are sent before AT+CIPCLOSE

    # -- internals -------------------------------------------------------------------------

    def _alive(self):
        return self._gen is not None and self._m.connected and self._m.gen == self._gen

    def _mine(self):
        # the manager has not opened another link since ours (its buffers are still ours)
        return self._gen is not None and self._m.gen == self._gen

    def _fresh(self):
        m = self._m
        return m.connected and m.gen != m.claimed

    def _room(self):
        return not self._alive() or self._m.tx_room() > 0

    def _check(self):
        if self.closed or not self._alive():
            raise OSError(_ECONNRESET)

    def _check_rx(self):
        # buffered bytes of a link that is gone may still be read
        if self.closed or not self._mine() or (not self._alive() and not self._m.rx_available()):
            raise OSError(_ECONNRESET)

    def _wait(self, cond, ms):
        link = self._link
        t0 = link.now()
        while True:
            link.service()
            if cond():
                return True
            if ticks_diff(link.now(), t0) >= ms:
                return False
            self._idle()


class ModemNet:
    """A ``socket`` module stand-in whose sockets go through the modem (see module doc)."""

    AF_INET = 2
    SOCK_STREAM = 1

    def __init__(self, link, **kw):
        self._link = link
        self._kw = kw

    def socket(self, *_args):
        return ModemSocket(self._link, **self._kw)

    def getaddrinfo(self, host, port, *_args):
        return [(2, 1, 0, "", (host, port))]
