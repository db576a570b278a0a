"""The pump between a modem UART, its PWRKEY pin and a ``modem.manager.Manager``.

``Link(uart, pwrkey, manager)``: ``uart`` is ``machine.UART``-like (``any()``, ``read(n)``,
``write(buf)`` returning the count written, ``init(baudrate=...)``), ``pwrkey`` Pin-like
(``value(v)``, 1 = key pressed) or None, ``ticks_ms`` defaults to lib/ticks' (the 2**30 wrap
the AT engine's deadlines use).

``service()`` does one round: read what the UART holds (at most ``max_read`` bytes per
round, default 512, so a babbling modem cannot starve the caller), feed it, poll the
timers, write what the engine queued (a short write keeps the rest for the next round) and
apply the PWRKEY level and the baud rate; ``backlog`` says bytes were left either way
(a caller pacing its rounds by ``wake_ms`` alone would leave them for its idle period).
``run()`` is the asyncio task that calls it every ``period_ms`` (default 20) or sooner
when a timer is due.
"""

import ticks

from modem.at import wrap_add


class Link:
    def __init__(self, uart, pwrkey, manager, ticks_ms=None, max_read=512):
        self.uart = uart
        self.pwrkey = pwrkey
        self.manager = manager
        self.ticks_ms = ticks_ms or ticks.ticks_ms
        self.max_read = max_read
        self._pend = None
        self._baud = None
        self._key = None
        self.rx_bytes = 0
        self.tx_bytes = 0
        self.backlog = False  # bytes left after the last round (see service)

    def now(self):
        return self.ticks_ms()

    def service(self):
        """One pump round; returns ms until the manager needs the next one (0..1000)."""
        m = self.manager
        u = self.uart
        if m.baud != self._baud:
            self._baud = m.baud
            if hasattr(u, "init"):
                u.init(baudrate=m.baud)
        now = self.ticks_ms()
        n = u.any()
        if n:
            data = u.read(n if n < self.max_read else self.max_read)
            if data:
                self.rx_bytes = wrap_add(self.rx_bytes, len(data))  # (mod 2**30, no long int)
                m.feed(data, now)
        m.poll(now)
        self._flush()
        # due at once whatever the manager's timers say: more than max_read received (the
        # rest still in the UART) or a short write (the rest in _pend)
        self.backlog = (n is not None and n > self.max_read) or self._pend is not None
        if self.pwrkey is not None and m.pwrkey != self._key:
            self._key = m.pwrkey
            self.pwrkey.value(m.pwrkey)
        return m.wake_ms(now)

    def _flush(self):
        m = self.manager
        while True:
            b = self._pend
            self._pend = None
            if b is None:
                b = m.tx()
                if b is None:
                    return
            k = self.uart.write(b)
            if k is None:
                k = 0
            self.tx_bytes = wrap_add(self.tx_bytes, k)
            if k < len(b):
                self._pend = b[k:]
                return

    async def run(self, period_ms=20):
        """Pump forever (asyncio task)."""
        import asyncio

        while True:
            w = self.service()
            await asyncio.sleep_ms(w if w < period_ms else period_ms)
