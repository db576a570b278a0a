"""Virtual board UART on a tty device: a pty slave (``tools/pty_bridge.py``) or a USB serial
adapter with an optical head (``--optical-dev PATH``).

Runs on the MicroPython unix port and on CPython (Linux; BSD/macOS for the speed only).

Why a device path and not a pty of its own: the MicroPython unix port has no ``pty``, no
``os.openpty`` and no ``fcntl``/``ioctl``, so it cannot create or unlock a pty pair (that needs
the TIOCSPTLCK/TIOCGPTN ioctls on /dev/ptmx). It can ``open()`` an existing tty and set it up
with its ``termios`` module (``setraw``, ``tcgetattr``, ``tcsetattr``), which is all this
class uses. ``tools/pty_bridge.py`` (CPython) creates the pty pair(s) and joins them like a
cable.

How it behaves:

- the device is opened ``r+b`` unbuffered and put in raw mode with VMIN = VTIME = 0, so a read
  returns at once with whatever has arrived (0 bytes when nothing has): non-blocking without
  O_NONBLOCK. Writes are made only while ``select.poll`` reports the device writable, at most
  256 bytes at a time;
- ``init(baudrate, bits, parity, stop)`` also programs the tty: speed 300..19200 and, on Linux,
  CS7/CS8, PARENB/PARODD and CSTOPB (the values of the Linux termios ABI; MicroPython's
  ``termios`` does not export them). A Linux pty stores the speed (so the peer,
  ``tools/pty_bridge.py``, can check that both ends agree) but forces CS8 without parity;
  a USB serial adapter applies both. Receive masking (bit 7 cleared
  with bits=7), the rx buffer, ``overruns`` and the ``txdone()`` timing model are those of
  ``boards.sim.uart`` (a byte written is in the tty at once; ``txdone()`` turns True n*10/baud
  seconds later);
- an error from the device (the peer closed a pty: EIO) drops the bytes concerned and counts
  ``io_errors``; the port stays open and works again once the peer is back.
"""

import select
import sys
import termios

from boards.sim.uart import _SockUart

_VTIME = getattr(termios, "VTIME", 5)  # cc indices (Linux values; MicroPython has no names)
_VMIN = getattr(termios, "VMIN", 6)
_LINUX = sys.platform == "linux"
# Linux termios ABI: c_cflag bits and Bnnn speed codes.
_CSIZE = 0o60
_CS7 = 0o40
_CS8 = 0o60
_CSTOPB = 0o100
_PARENB = 0o400
_PARODD = 0o1000
_LINUX_SPEED = {300: 0o7, 600: 0o10, 1200: 0o11, 2400: 0o13, 4800: 0o14, 9600: 0o15,
                19200: 0o16, 38400: 0o17}
_CHUNK = 256


def _speed_code(baud):
    if _LINUX:
        return _LINUX_SPEED.get(baud)
    if sys.platform == "darwin" or "bsd" in sys.platform:
        return baud  # BSD speed codes are the rates
    return None


class TtyUart(_SockUart):
    """UART on the tty device ``path`` (raises OSError if it cannot be opened)."""

    def __init__(self, path, rxbuf=1024):
        super().__init__(rxbuf)
        self.path = path
        self.io_errors = 0
        f = open(path, "r+b", buffering=0)
        self._f = f
        self._fd = f.fileno()
        try:
            setraw = termios.setraw  # MicroPython
        except AttributeError:  # CPython
            import tty

            setraw = tty.setraw
        setraw(self._fd)
        a = termios.tcgetattr(self._fd)
        a[6][_VMIN] = 0
        a[6][_VTIME] = 0
        termios.tcsetattr(self._fd, termios.TCSANOW, a)
        self._poller = select.poll()
        self._poller.register(f, select.POLLOUT)
        self._tmp = bytearray(_CHUNK)
        self._conn = f  # the base class queues writes while a peer is attached
        self._program()

    def init(self, baudrate=None, bits=None, parity=-1, stop=None, **kw):
        super().init(baudrate, bits, parity, stop, **kw)
        self._program()

    def _program(self):
        """Put speed and character format into the tty's termios (best effort)."""
        if self._f is None:
            return
        try:
            a = termios.tcgetattr(self._fd)
            code = _speed_code(self.baudrate)
            if code is not None:
                a[4] = code
                a[5] = code
            if _LINUX:
                c = a[2] & ~(_CSIZE | _PARENB | _PARODD | _CSTOPB)
                c |= _CS7 if self.bits == 7 else _CS8
                if self.parity is not None:
                    c |= _PARENB | (_PARODD if self.parity == 1 else 0)
                if self.stop == 2:
                    c |= _CSTOPB
                a[2] = c
            termios.tcsetattr(self._fd, termios.TCSANOW, a)
        except (OSError, ValueError, TypeError):
            self.io_errors += 1

    def termios_speed(self):
        """The speed code the tty holds now (for tests)."""
        return termios.tcgetattr(self._fd)[4]

    def poll(self):
        """Move bytes between the tty and the buffers (never blocks)."""
        f = self._f
        if f is None:
            return
        try:
            while self._tx_pending and self._poller.poll(0):
                k = f.write(self._tx_pending[:_CHUNK])
                if not k:
                    break
                self._tx_pending = self._tx_pending[k:]
        except OSError:
            self.io_errors += 1
            self._tx_pending = bytearray()
        tmp = self._tmp
        while True:
            try:
                k = f.readinto(tmp)
            except OSError:
                self.io_errors += 1
                return
            if not k:
                return
            self._store(memoryview(tmp)[:k])

    def close(self):
        f = self._f
        self._f = None
        self._conn = None
        self._tx_pending = bytearray()
        if f is not None:
            try:
                self._poller.unregister(f)
            except (OSError, KeyError, ValueError):
                pass
            f.close()
