# A wake-up flag: one task waits, the metering step sets it (allocation-free both ways).
"""``Wake``: what an idle task waits on until the metering step has work for it (issue 12:
the storage and LED tasks no longer wake every second to look).

``w.set()`` (from the heap-locked metering step: allocates nothing), ``w.clear()``,
``await w.wait()`` (returns at once while set). One waiting task at a time. On MicroPython
the waiting task is parked off the run queue as asyncio's Event does, but ``wait()``
returns one preallocated awaitable instead of a new coroutine per await (asyncio's
``Event.wait`` is an ``async def``: ~48 B per idle wake-up); ``Task.cancel`` removes the
parked task (:meth:`remove`). Elsewhere (CPython host tests) it is an ``asyncio.Event``.

``await w.wait_ms(clock, ms)``: until the flag is set or ``ms`` of ``clock`` (the board
clock: real time on a real board, simulated time on the virtual board) have passed, so a
task sleeps to its next deadline and is still woken early by an event (issue 12: the
billing, profile and housekeeping tasks). The sleep is the clock's own ``sleep_ms`` (no
allocation on MicroPython); ``set()`` ends it early as ``Task.cancel`` would reschedule the
task (out of the structure it is parked in, back on the run queue), without the
CancelledError. The caller calls ``clear()`` after each wait.
"""

import asyncio

_core = getattr(asyncio, "core", None)
_MP = _core is not None and hasattr(_core, "_task_queue")


class _Wait:
    # the awaitable of Wake.wait (MicroPython): the first resume parks the task unless the
    # flag is set; the resume after Wake.set pushed it back ends the await
    def __init__(self, wake):
        self.wake = wake
        self.exc = StopIteration()

    def __iter__(self):
        return self

    def __next__(self):
        w = self.wake
        if not w.is_set:
            t = _core.cur_task
            w._task = t
            t.data = w  # Task.cancel() calls w.remove(t), then reschedules it
            return None
        self.exc.__traceback__ = None
        raise self.exc


class Wake:
    """A flag for one waiting task (module docstring)."""

    def __init__(self):
        self.is_set = False
        self._task = None
        self._ev = None if _MP else asyncio.Event()
        self._it = _Wait(self) if _MP else None
        self._timed = False  # the waiting task sleeps on a clock (wait_ms)

    def set(self):
        """Set the flag; the waiting task (if any) becomes runnable. Allocation-free."""
        ev = self._ev
        if ev is not None:
            ev.set()
            return
        self.is_set = True
        t = self._task
        if t is not None:
            self._task = None
            if self._timed:
                self._timed = False
                if t is _core.cur_task or t.state is False:
                    return  # (set by the task itself: its next wait returns at once; done)
                d = t.data
                if isinstance(d, type) or isinstance(d, BaseException):
                    return  # being cancelled (it runs at once anyway)
                q = _core._task_queue
                if d is not None:  # parked off the run queue (the virtual clock's table)
                    d.remove(t)
                    t.data = None
                else:  # on the run queue, possibly keyed in the future (asyncio.sleep_ms)
                    q.remove(t)
                q.push(t)
                return
            t.data = None
            _core._task_queue.push(t)

    def clear(self):
        self.is_set = False
        self._task = None
        self._timed = False
        if self._ev is not None:
            self._ev.clear()

    def wait(self):
        """``await w.wait()``: until the flag is set (at once if it is)."""
        if self._ev is not None:
            return self._ev.wait()
        return self._it

    def wait_ms(self, clock, ms):
        """``await w.wait_ms(clock, ms)``: until the flag is set or ``ms`` (>= 0) of
        ``clock`` have passed (module docstring); at once (a 0 ms sleep) while set."""
        if self.is_set or (self._ev is not None and self._ev.is_set()):
            ms = 0
        if self._ev is not None:
            return self._race(clock, ms)
        self._task = _core.cur_task
        self._timed = True
        return clock.sleep_ms(ms)

    async def _race(self, clock, ms):
        # CPython: the clock's sleep against the event (allocation does not matter here)
        sl = asyncio.ensure_future(clock.sleep_ms(ms))
        ev = asyncio.ensure_future(self._ev.wait())
        try:
            await asyncio.wait((sl, ev), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for f in (sl, ev):
                if not f.done():
                    f.cancel()

    def remove(self, task):
        # the parked task was cancelled (asyncio's Task.cancel)
        if self._task is task:
            self._task = None
