"""Real-time millisecond ticks with one wrap rule on every port: period 2**30.

MicroPython's ``time.ticks_ms()`` wraps at the port's own period (2**30 on 32-bit boards:
12.4 days; 2**62 on the 64-bit unix port, i.e. never) and CPython has no ticks at all. A
module that masks its deadlines to 2**30 but compares them with ``time.ticks_diff`` (the
port's period) goes wrong once the port's ticks pass 2**30: on the unix port, after 12.4 days
of host uptime, every deadline looked long past and the meter answered at once. So every
real-time deadline in firmware/ and lib/ uses this module: :func:`ticks_ms` is the port's
ticks reduced to 30 bits, and :func:`ticks_diff` / :func:`ticks_add` wrap at 2**30, so mixed
inputs (a raw port value and a masked deadline) still compare right. All values stay below
2**30: small ints on a 32-bit port, no allocation.

The metering clock is the board's (``board.clock``: ``ticks_ms``/``ticks_diff``/
``ticks_add``); this module is for protocol, display and supervision timing only.
"""

import time

from micropython import const

PERIOD = const(1 << 30)
_MASK = const((1 << 30) - 1)
_HALF = const(1 << 29)

try:
    _raw = time.ticks_ms
except AttributeError:  # CPython (host tests): a monotonic millisecond count

    def _raw():
        return time.monotonic_ns() // 1000000


def ticks_ms():
    """Real-time ms ticks, 0 .. 2**30 - 1 (wraps after 12.4 days)."""
    return _raw() & _MASK


def ticks_diff(a, b):
    """``a - b`` in ms for ticks that wrap at 2**30 (-2**29 .. 2**29 - 1)."""
    return ((a - b + _HALF) & _MASK) - _HALF


def ticks_add(t, d):
    """``t + d`` (``d`` in ms, |d| < 2**29) wrapped to 0 .. 2**30 - 1."""
    return (t + d) & _MASK
