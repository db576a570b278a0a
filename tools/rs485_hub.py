"""Simulated RS-485 bus: a TCP hub that passes every byte from any member to every other member.

Members are meter processes (``boards.sim.uart.BusUart``) and clients (for example the PyPI
``iec62056-21`` client with its TCP transport). Like a real two-wire bus there is no
arbitration: if two members talk at once their bytes simply interleave. A member never gets
its own bytes back (a half-duplex transceiver with RE tied to DE does not hear itself).

Usage (CPython)::

    python tools/rs485_hub.py --port 4100      # prints "rs485 hub listening on 127.0.0.1:4100"

or in a test: ``hub = Hub(0); hub.start(); ... hub.port ...; hub.stop()``.
"""

import argparse
import selectors
import socket
import sys
import threading


class Hub:
    """The bus. port 0 picks a free port (read it back from ``port``)."""

    def __init__(self, port=0, host="127.0.0.1"):
        self._srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind((host, port))
        self._srv.listen(16)
        self._srv.setblocking(False)
        self.host, self.port = self._srv.getsockname()
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._srv, selectors.EVENT_READ, None)
        self._out = {}  # member socket -> bytearray still to send
        self._stop = False
        self._thread = None
        self.bytes_passed = 0

    @property
    def members(self):
        return len(self._out)

    def start(self):
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop = True
        if self._thread is not None:
            self._thread.join(2)
        for s in list(self._out):
            self._drop(s)
        self._sel.close()
        self._srv.close()

    def serve_forever(self):
        while not self._stop:
            for key, mask in self._sel.select(0.05):
                s = key.fileobj
                if s is self._srv:
                    self._accept()
                    continue
                if mask & selectors.EVENT_READ:
                    self._read(s)
                if mask & selectors.EVENT_WRITE and s in self._out:
                    self._flush(s)

    def _accept(self):
        try:
            conn, _ = self._srv.accept()
        except OSError:
            return
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._out[conn] = bytearray()
        self._sel.register(conn, selectors.EVENT_READ, None)

    def _read(self, s):
        try:
            data = s.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(s)
            return
        self.bytes_passed += len(data)
        for m in list(self._out):
            if m is not s:
                self._out[m].extend(data)
                self._flush(m)

    def _flush(self, s):
        buf = self._out.get(s)
        if buf is None:
            return
        try:
            while buf:
                k = s.send(buf)
                del buf[:k]
        except BlockingIOError:
            pass
        except OSError:
            self._drop(s)
            return
        ev = selectors.EVENT_READ | (selectors.EVENT_WRITE if buf else 0)
        self._sel.modify(s, ev, None)

    def _drop(self, s):
        if self._out.pop(s, None) is None:
            return
        try:
            self._sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=4100, help="TCP port (0 = any free port)")
    ap.add_argument("--host", default="127.0.0.1")
    a = ap.parse_args(argv)
    hub = Hub(a.port, a.host)
    print("rs485 hub listening on %s:%d" % (hub.host, hub.port), flush=True)
    try:
        hub.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
