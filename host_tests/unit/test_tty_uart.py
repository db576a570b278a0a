"""The virtual board's tty UART (boards/sim/tty_uart.py) on a pty made here (CPython only:
the MicroPython unix port cannot create a pty, which is why the class opens an existing tty;
its MicroPython side runs in host_tests/system/test_sim_pty.py)."""

import sys
import time

MICROPYTHON = sys.implementation.name == "micropython"


def _pty():
    import os

    m, s = os.openpty()
    return m, s, os.ttyname(s)


def _wait(cond, ms=1000):
    t0 = time.monotonic()
    while not cond() and time.monotonic() - t0 < ms / 1000:
        time.sleep(0.005)
    return cond()


def test_tty_uart_on_a_pty():
    if MICROPYTHON:
        return  # no os.openpty here; see the module docstring
    import os
    import termios

    from boards.sim.tty_uart import TtyUart

    m, s, path = _pty()
    u = TtyUart(path)
    try:
        assert termios.tcgetattr(m)[4] == termios.B300, "300 Bd at start"
        t0 = time.monotonic()
        assert u.any() == 0 and u.read() is None, "nothing waiting"
        assert time.monotonic() - t0 < 0.05, "reads do not block"
        os.write(m, b"ab\xe3")
        assert _wait(lambda: u.any() == 3), u.any()
        assert u.read() == b"ab\x63", "7-bit mode clears bit 7"
        u.init(baudrate=9600, bits=8, parity=None, stop=1)
        assert termios.tcgetattr(m)[4] == termios.B9600, "speed programmed into the tty"
        assert u.write(b"\x80" + b"x" * 95) == 96
        assert not u.txdone(), "96 characters take 100 ms at 9600 Bd"
        got = b""
        while len(got) < 96:
            got += os.read(m, 256)
        assert got == b"\x80" + b"x" * 95, got[:8]
        assert _wait(u.txdone, 300), "txdone after the wire time"
        buf = bytearray(8)
        os.write(m, b"123")
        assert _wait(lambda: u.any() == 3)
        assert u.readinto(buf) == 3 and buf[:3] == b"123"
        os.close(m)  # the peer goes away: errors are counted, never raised
        u.write(b"zz")
        u.any()
        assert u.io_errors > 0, u.io_errors
    finally:
        u.close()
        os.close(s)
