"""A serial cable between two ptys, with a line model (CPython, Linux).

    python tools/pty_bridge.py --link-a /tmp/ttyMETER --link-b /tmp/ttyHHU

Opens two pty pairs and keeps their masters; the two slaves are the ends of the cable
(symlinked to the given names; the paths are printed). One end is for the meter, which opens
it with ``--optical-dev`` (boards/sim/tty_uart.py: the MicroPython unix port can open a tty
but cannot create a pty), the other for a client such as iec62056-21's serial transport
(pyserial). It replaces ``socat pty,raw,echo=0,link=A pty,raw,echo=0,link=B`` and adds what a
pty lacks (a Linux pty passes all 8 bits and keeps no baud rate or parity):

- **pacing**: each direction carries one character per (1 start + data + parity + stop) bits /
  baud of the *sending* end's termios settings, so a 300 Bd identification takes 33 ms per
  character, as on a wire, and reaction times count from the real end of a message;
- **speed check**: a character is delivered only if the receiving end's termios settings
  equal the sender's at the moment it arrives (a UART at the wrong speed would see garbage);
  otherwise it is dropped and counted in ``mismatched``. This is where a forgotten or early
  baud-rate switch shows up. A Linux pty keeps the speed set on it but forces CS8 without
  parity whatever is asked (drivers/tty/pty.c), so only speeds (and stop bits) can differ
  here; the 7E1 format is checked by the unit tests and on real UARTs;
- the bridge holds each slave open itself, so an end survives its user closing and
  re-opening it (pyserial clients do that to change speed); bytes that arrive while nobody
  has it open wait in the tty and are lost when the next user flushes on open, as with a USB
  adapter. A full tty (nobody reading) drops bytes, counted in ``lost``.

In tests: ``with PtyCable() as c: ... c.path[0], c.path[1] ... c.stats``.
"""

import argparse
import os
import select
import signal
import sys
import termios
import threading
import time
import tty

_RATES = {}
for _r in (50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400,
           57600, 115200, 230400):
    _code = getattr(termios, "B%d" % _r, None)
    if _code is not None:
        _RATES[_code] = _r
_BITS = {termios.CS5: 5, termios.CS6: 6, termios.CS7: 7, termios.CS8: 8}


def line_settings(fd):
    """(baud, data bits, parity 'N'/'E'/'O', stop bits) of the tty behind ``fd`` (a pty master
    reports its slave's settings)."""
    a = termios.tcgetattr(fd)
    c = a[2]
    parity = "N"
    if c & termios.PARENB:
        parity = "O" if c & termios.PARODD else "E"
    return (_RATES.get(a[4], 0), _BITS[c & termios.CSIZE], parity,
            2 if c & termios.CSTOPB else 1)


def char_time(settings):
    """Seconds one character takes on the line with ``settings`` (see line_settings)."""
    baud, bits, parity, stop = settings
    n = 1 + bits + (0 if parity == "N" else 1) + stop
    return n / baud if baud else 0.0


class _End:
    def __init__(self, link):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo or line editing before the user sets its own mode
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.link = link
        if link:
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(self.path, link)

    def close(self):
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.link and os.path.islink(self.link):
            os.unlink(self.link)


class PtyCable:
    """Two ptys joined by a paced serial line. ``path[0]``, ``path[1]``: the two ends."""

    def __init__(self, links=(None, None), pace=True):
        self.ends = [_End(links[0]), _End(links[1])]
        self.path = [e.path for e in self.ends]
        self.pace = pace
        self._q = ([], [])  # per direction (0: a->b, 1: b->a): [due, byte, settings]
        self._line_free = [0.0, 0.0]
        self._stop = False
        self._thread = None
        # forwarded / mismatched / lost bytes per direction; `log` keeps (time, direction,
        # bytes) of every delivery when `record` is True
        self.stats = {"a_to_b": 0, "b_to_a": 0, "mismatched": 0, "lost": 0}
        self.record = False
        self.log = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop = True
        if self._thread is not None:
            self._thread.join(2)
        for e in self.ends:
            e.close()

    def _serve(self):
        masters = [e.master for e in self.ends]
        while not self._stop:
            now = time.monotonic()
            due = [q[0][0] for q in self._q if q]
            wait = 0.02 if not due else max(0.0, min(0.02, min(due) - now))
            try:
                ready = select.select(masters, [], [], wait)[0]
            except (OSError, ValueError):
                return
            now = time.monotonic()
            for i in (0, 1):
                if masters[i] in ready:
                    self._receive(i, now)
            for i in (0, 1):
                self._deliver(i, time.monotonic())

    def _receive(self, i, now):
        try:
            data = os.read(self.ends[i].master, 4096)
        except (BlockingIOError, OSError):
            return
        if not data:
            return
        s = line_settings(self.ends[i].master)
        ct = char_time(s) if self.pace else 0.0
        t = max(now, self._line_free[i])
        q = self._q[i]
        for b in data:
            t += ct
            q.append((t, b, s))
        self._line_free[i] = t

    def _deliver(self, i, now):
        q = self._q[i]
        if not q:
            return
        dst = self.ends[1 - i].master
        rx = line_settings(dst)
        out = bytearray()
        k = 0
        while k < len(q) and q[k][0] <= now:
            if q[k][2] == rx:
                out.append(q[k][1])
            else:
                self.stats["mismatched"] += 1
            k += 1
        del q[:k]
        if not out:
            return
        try:
            n = os.write(dst, bytes(out))
        except (BlockingIOError, OSError):
            n = 0
        self.stats["lost"] += len(out) - n
        self.stats["a_to_b" if i == 0 else "b_to_a"] += n
        if self.record and n:
            self.log.append((now, i, bytes(out[:n])))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--link-a", help="symlink to end a (e.g. the meter's --optical-dev)")
    ap.add_argument("--link-b", help="symlink to end b (e.g. the client's port)")
    ap.add_argument("--no-pace", action="store_true", help="deliver at once (no wire time)")
    a = ap.parse_args(argv)
    cable = PtyCable((a.link_a, a.link_b), pace=not a.no_pace).start()

    def _stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)  # `kill` also removes the links
    print("pty cable: a = %s%s, b = %s%s" % (
        cable.path[0], " (%s)" % a.link_a if a.link_a else "",
        cable.path[1], " (%s)" % a.link_b if a.link_b else ""), flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        cable.stop()
        print("pty cable: %r" % cable.stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
