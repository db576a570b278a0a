# The virtual board's clock: simulated time that can run faster than real time.
"""Virtual metering clock.

``speed`` = simulated seconds per wall second (1 = real time). ``speed = 0`` runs as fast as
possible: simulated time jumps straight to the earliest pending ``sleep_ms`` deadline once
every other task has had its turn (discrete-event mode), so results do not depend on how
busy the machine is. Only metering time runs on this clock; protocol timing (reaction times,
timeouts) keeps using real ``asyncio.sleep_ms``.

``time()`` is the RTC: seconds since 2000-01-01 00:00:00 UTC, ``start`` plus simulated time.
"""

import asyncio
import time

# 2016-01-01 00:00:00 UTC in seconds since 2000-01-01: the bundled load's first row.
EPOCH_2016 = 504921600


class VirtualClock:
    def __init__(self, speed=1.0, start=EPOCH_2016):
        self.speed = speed
        self._start = start
        self._now = 0
        self._wall0 = time.ticks_ms()
        self._waiters = []  # [due_ms, seq, event]
        self._seq = 0
        self._driver = None
        self.stopped = False

    def ticks_ms(self):
        if self.speed > 0:
            wall = time.ticks_diff(time.ticks_ms(), self._wall0)
            t = int(wall * self.speed)
            if t > self._now:
                self._now = t
        return self._now

    def ticks_diff(self, a, b):
        return a - b

    def ticks_add(self, a, b):
        return a + b

    def time(self):
        return self._start + self.ticks_ms() // 1000

    def set_time(self, secs):
        self._start += secs - self.time()

    async def sleep_ms(self, ms):
        """Sleep ``ms`` simulated milliseconds."""
        if ms < 0:
            ms = 0
        due = self.ticks_ms() + ms
        if self.speed > 0:
            while True:
                left = due - self.ticks_ms()
                if left <= 0:
                    return
                wall = left / self.speed
                await asyncio.sleep_ms(int(wall) if wall >= 1 else 0)
        ev = asyncio.Event()
        self._seq += 1
        w = [due, self._seq, ev]
        ws = self._waiters
        i = len(ws)
        while i > 0 and (ws[i - 1][0] > due):
            i -= 1
        ws.insert(i, w)
        if self._driver is None:
            self._driver = asyncio.create_task(self._drive())
        await ev.wait()

    async def _drive(self):
        # Discrete-event mode: let every ready task run, then jump to the next deadline.
        ws = self._waiters
        while not self.stopped:
            for _ in range(3):
                await asyncio.sleep_ms(0)
            if not ws:
                await asyncio.sleep_ms(1)
                continue
            w = ws.pop(0)
            if w[0] > self._now:
                self._now = w[0]
            w[2].set()
        self._driver = None
