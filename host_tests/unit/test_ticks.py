"""lib/ticks: one wrap rule (2**30) for every real-time deadline, and the port pump's reaction
time once the port's own ticks pass 2**30 (the unix port after 12.4 days of host uptime, where
``time.ticks_ms`` does not wrap at 2**30: the meter used to answer after 0 ms)."""

import ticks
from iec62056.session import Session

from ports import pump


def test_wrap_rule():
    top = ticks.PERIOD - 10
    assert ticks.ticks_add(top, 20) == 10
    assert ticks.ticks_diff(ticks.ticks_add(top, 20), top) == 20
    assert ticks.ticks_diff(top, ticks.ticks_add(top, 20)) == -20
    assert ticks.ticks_diff(5, ticks.PERIOD - 5) == 10
    # a raw port value beyond 2**30 and a masked deadline still compare right
    raw = (1 << 30) + 12345
    assert ticks.ticks_diff(ticks.ticks_add(raw, 200), raw) == 200
    assert ticks.ticks_diff(raw + 300, ticks.ticks_add(raw, 200)) == 100
    t = ticks.ticks_ms()
    assert 0 <= t < ticks.PERIOD


class _Uart:
    def __init__(self, data):
        self.rx = bytearray(data)
        self.writes = []

    def any(self):
        return len(self.rx)

    def readinto(self, buf):
        n = min(len(buf), len(self.rx))
        buf[:n] = self.rx[:n]
        self.rx = self.rx[n:]
        return n

    def write(self, data):
        self.writes.append((ticks.ticks_ms(), bytes(data)))
        return len(data)

    def init(self, **kw):
        pass


class _Stop:
    def __init__(self, uart, t0):
        self.uart = uart
        self.t0 = t0

    def is_set(self):
        return bool(self.uart.writes) or ticks.ticks_diff(ticks.ticks_ms(), self.t0) > 2000


async def test_reaction_time_after_the_port_ticks_pass_2_30():
    off = (1 << 30) + 12345  # the unix port's ticks_ms after 12.4 days of host uptime

    def port_ticks():  # the port's own ticks, not wrapped at 2**30
        return ticks.ticks_ms() + off

    uart = _Uart(b"/?!\r\n")
    s = Session("12345678", answer_unaddressed=True, now_ms=port_ticks())
    t0 = ticks.ticks_ms()
    await pump.run_port(uart, s, clock_ms=port_ticks, stop=_Stop(uart, t0))
    assert uart.writes, "no identification sent"
    at, data = uart.writes[0]
    assert data.startswith(b"/X"), data
    waited = ticks.ticks_diff(at, t0)
    assert waited >= 190, ("the identification came after %d ms, not the 200 ms reaction "
                           "time" % waited)
