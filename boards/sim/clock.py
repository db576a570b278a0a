# The virtual board's clock: one discrete-event scheduler for metering time, paced by wall time.
"""Virtual metering clock (and the RTC reading) of the virtual board.

**The rule.** Simulated time ("metering time": ``ticks_ms``, ``sleep_ms``) advances only while
every task is idle (nothing runnable in asyncio's run queue), and then only up to the earliest
pending ``sleep_ms`` deadline; the sleepers are released one at a time in deadline order (ties:
in the order they went to sleep), and the next release waits until the released task and
whatever it woke have run to their next await. So every task wakes at exactly its deadline,
and the registers do not depend on the speed or on how busy the machine is.

- ``speed = 0`` (``--speed max``): time jumps straight to the next deadline.
- ``speed = N > 0``: as above, and never faster than N x wall time: the release of deadline D
  waits until ``N x (wall ms since t = 0) >= D``. While it waits (every task idle) the reading
  follows ``N x wall`` without passing D, so readers between deadlines (status line, RTC, a
  control-channel command) see time move smoothly. Tasks that fall behind wall time are
  waited for; simulated time then catches up as fast as they run.

t = 0 is the first ``sleep_ms`` on this clock (the meter's tasks starting in ``Meter.main``);
the wall anchor is taken then, so the start-up before it (flash restore, configuration) costs
no simulated time. A run with ``--duration S`` ends at exactly S (``Meter.main`` sleeps S and
its shutdown accounts the last partial interval).

Tasks that sleep on real time (``asyncio.sleep_ms``: the display's 50 ms polls, IEC 62056-21
ports, the control channel) are idle from this clock's point of view while they sleep; at
``--speed max`` they simply interleave with the jumps.

Idle detection: MicroPython's asyncio keeps every runnable task in ``asyncio.core._task_queue``,
keyed by the wall tick at which it may run (sleepers on real time carry a future key, tasks
waiting for an Event or for I/O are not in it). At ``--speed max`` its loop tells us itself:
it asks the I/O queue to wait (``wait_io_event(dt)``) with dt = 0 while a task is due and dt
> 0 when none is, and a hook there releases the next sleeper (:func:`_hook_idle`; one turn of
the loop per release). Otherwise (``--speed N``, a second clock running at once) a driver
task yields and peeks at the queue: empty, or the head due in the future, means idle. Under
CPython (host tests) the event loop's ready queue is checked instead.

Speed: the hot paths (sleep, park, release, the tick readers) are compiled by MicroPython's
native emitter (``@micropython.native``: machine code for the unix port, and for the
emulated Cortex-M3 cores that freeze this package); the device modules stay bytecode
(tools/mpy_check.py).

RTC: ``time()`` is the RTC, seconds since 2000-01-01 00:00:00 UTC: its reading at t = 0
(``start``, or ``start_ms`` for sub-second precision) plus the simulated time; ``set_time(s)``
sets it, marks it valid (``rtc_valid``) and calls ``on_rtc_set`` (persistence). ``rtc_valid``
False means the RTC was not trusted at power-up (flat backup battery, state lost) and has not
been set since; ``rtc_note`` says why (F.F.0 bit 0x10, firmware/meter/status.py). Persistence of
the battery-backed RTC across runs: boards/sim/rtc.py.
"""

import asyncio
import time

import micropython

# 2016-01-01 00:00:00 UTC in seconds since 2000-01-01: the bundled load's first row.
EPOCH_2016 = 504921600
# Longest real-time wait of the driver before it looks again for an earlier deadline (a
# control-channel "power-fail" sleeps from a wall-time task) and updates the reading.
_CHUNK_MS = 20

_core = getattr(asyncio, "core", None)
_MP = _core is not None and hasattr(_core, "_task_queue")
if _MP:

    def _others_runnable():
        # MicroPython: the run queue holds runnable tasks and real-time sleepers, keyed by
        # the wall tick at which they may run (read the module global each time: a new
        # event loop replaces the queue)
        t = _core._task_queue.peek()
        return t is not None and time.ticks_diff(t.ph_key, time.ticks_ms()) <= 0

elif _core is not None:  # a MicroPython whose asyncio changed: fail loudly, never guess
    raise ImportError("boards/sim/clock.py needs asyncio.core._task_queue (MicroPython)")
else:

    def _others_runnable():
        # CPython: callbacks ready to run in this loop iteration
        return bool(getattr(asyncio.get_event_loop(), "_ready", ()))


_turn = [0]  # the clock whose turn is next at the idle hook (round robin)


async def _keep(idle):
    # MicroPython at --speed max: a sleeper on asyncio's run queue while a clock is in
    # ``idle`` (asyncio's loop ends once every task is parked off its queue). It holds no
    # clock, and ``idle`` belongs to the loop's I/O queue: the hook drops a stopped clock at
    # the next turn, and a new event loop drops the old queue with its list, so nothing of
    # this module keeps a stopped run's clock, its parked tasks and their meter alive (the
    # next test builds a whole meter at once: 96 KiB heap on the emulated NETDUINO2)
    q = _core._io_queue
    try:
        while idle:
            await asyncio.sleep_ms(_CHUNK_MS)
    finally:
        q.vc_kept = False


@micropython.native
def _release_one(idle):
    # the idle hook's release: the next sleeper of the first clock in ``idle`` from _turn on
    # that has one (each clock in turn, so that none starves another); False if none has
    n = len(idle)
    i = _turn[0]
    for k in range(n):
        c = idle[(i + k) % n]
        if c._n and not c.stopped:
            _turn[0] = (i + k + 1) % n
            c._release()
            return True
    return False


def _hook_idle():
    """MicroPython's asyncio calls ``asyncio.core._io_queue.wait_io_event(dt)`` at every turn
    of its loop, with dt = 0 when a task is due now and dt != 0 (ms until the first
    real-time sleeper is due, or -1: none) when nothing is runnable. This replaces that
    method of the current queue once with a hook: at an idle turn it releases one sleeper of
    a clock in the queue's ``vc_idle`` list (that clock's time jumps to its deadline;
    streams, if any are registered, are polled first without waiting, and a task they make
    runnable runs before any release); any other turn polls as asyncio would, and skips the
    poll when it has nothing to find (no stream registered, no time to wait: the original's
    frame is heap-allocated at every call, 144 B a turn on the unix port). So a release
    costs one turn of the loop (the released task's), not two (a driver task's and the
    released task's). Returns that list (a new event loop has a new queue: hooked at its
    first clock), or None where asyncio has no such queue or someone else replaced the
    method."""
    q = getattr(_core, "_io_queue", None) if _MP else None
    if q is None or not hasattr(q, "map"):
        return None
    idle = getattr(q, "vc_idle", None)
    if idle is not None:
        return idle
    if "wait_io_event" in getattr(q, "__dict__", {}):
        return None
    poll = q.wait_io_event  # (the bound method, made once)
    m = q.map
    tq = _core._task_queue
    idle = []

    @micropython.native
    def wait_io_event(dt):
        # (four names closed over, no more: a closure call with more than five words of
        # arguments and cells allocates them, py/objclosure.c)
        i = len(idle)
        while i:  # a stopped clock leaves at the next turn (_keep)
            i -= 1
            if idle[i].stopped:
                idle.pop(i)._driver = None
        if dt and idle:
            if m:
                poll(0)
                t = tq.peek()
                if t is not None and time.ticks_diff(t.ph_key, time.ticks_ms()) <= 0:
                    return  # a stream woke a task: it runs first
            if _release_one(idle):
                return
        if dt or m:
            poll(dt)

    q.wait_io_event = wait_io_event
    q.vc_idle = idle
    q.vc_kept = False  # (True while a _keep task runs)
    return idle


class _Park:
    # MicroPython: the awaitable of VirtualClock.sleep_ms, one per clock (no allocation per
    # sleep, as asyncio's own SingletonGenerator). sleep_ms() sets ``clock._due`` and returns
    # this object; the first resume parks the current task in the clock's waiter table (off
    # the run queue, as an Event waiter), the next one (the driver pushed the task back)
    # ends the await.
    def __init__(self, clock):
        self.clock = clock
        self.exc = StopIteration()

    def __iter__(self):
        return self

    @micropython.native
    def __next__(self):
        c = self.clock
        due = c._due
        if due is not None:
            c._due = None
            c._park(_core.cur_task, due)
            return None
        self.exc.__traceback__ = None
        raise self.exc


class VirtualClock:
    """Board clock of the virtual board (interface: boards/board.py). ``speed``: simulated
    seconds per wall second (> 0), or 0 for as fast as possible. ``start``: RTC at t = 0
    (s since 2000-01-01 UTC) or ``start_ms`` (ms); ``valid`` / ``note``: the RTC's state at
    power-up (see the module doc)."""

    def __init__(self, speed=1.0, start=EPOCH_2016, valid=True, note="", start_ms=None):
        self.speed = speed
        self._rtc0 = start * 1000 if start_ms is None else start_ms  # RTC ms at t = 0
        self.rtc_valid = bool(valid)
        self.rtc_note = "" if valid else note
        self.on_rtc_set = None
        self._now = 0
        self._wall_last = None  # wall tick of the last sample (None: t = 0 not reached yet)
        self._wall_acc = 0  # wall ms since t = 0, accumulated (wrap-safe for long runs)
        self._waiters = []  # CPython: [due_ms, seq, event], sorted by (due, seq)
        self._seq = 0
        # MicroPython: parked tasks in preallocated tables used as a ring sorted by due
        # (ties: first come): _n of them from index _h (capacity a power of two, _mask + 1);
        # grown (doubled) only when more tasks sleep at once than ever before. A release
        # takes the head, a sleep usually lands at the tail: no shifting either way.
        self._due = None
        self._dues = [0] * 16
        self._tasks = [None] * 16
        self._h = 0
        self._mask = 15
        self._n = 0
        self._parker = _Park(self) if _MP else None
        self._driver = None
        self.stopped = False
        self.releases = 0  # sleepers released (diagnostic)
        # the firmware calls these through the instance several times a simulated second:
        # bound into the instance's table once, each call finds them there (a lookup hit)
        # instead of missing the instance's table and then looking in the class (~290 of
        # ~1 600 instructions a call on the unix port; BENCHMARKS "Session 10: speed")
        self.ticks_ms = self.ticks_ms
        self.ticks_diff = self.ticks_diff
        self.ticks_add = self.ticks_add
        self.sleep_ms = self.sleep_ms
        self.seconds_since = self.seconds_since

    # -- metering time -------------------------------------------------------------------

    @micropython.native
    def ticks_ms(self):
        """Simulated ms since t = 0 (an int; never wraps)."""
        return self._now

    @micropython.native
    def ticks_diff(self, a, b):
        return a - b

    @micropython.native
    def ticks_add(self, a, b):
        return a + b

    @micropython.native
    def sleep_ms(self, ms):
        """``await clock.sleep_ms(ms)``: sleep ``ms`` simulated milliseconds (< 0 counts as
        0). On MicroPython nothing is allocated per sleep (a parked task in preallocated
        tables, one awaitable per clock)."""
        if self._parker is None:
            return self._sleep_event(ms)
        self._due = self._now + (ms if ms > 0 else 0)
        if self._driver is None:
            self._start()
        return self._parker

    def _start(self):
        if self._wall_last is None:
            self._wall_last = time.ticks_ms()  # t = 0: the wall anchor
        idle = _hook_idle() if self._parker is not None and self.speed == 0 else None
        if idle is not None:
            idle.append(self)  # released by the idle hook (_hook_idle)
            if not _core._io_queue.vc_kept:
                _core._io_queue.vc_kept = True
                asyncio.create_task(_keep(idle))
            self._driver = True
            return
        self._driver = asyncio.create_task(self._drive())

    @micropython.native
    def _park(self, task, due):
        # insert after every waiter due at or before ``due`` (ties: first come); a free
        # slot holds None, and there is one before the head once _grow has made room (few
        # locals on purpose: on MicroPython a frame above 11 words is heap-allocated at
        # every call, and this is every sleep)
        if self._n > self._mask:
            self._grow()
        ds = self._dues
        ts = self._tasks
        m = self._mask
        j = (self._h + self._n) & m
        while True:
            k = (j - 1) & m
            if ts[k] is None or ds[k] <= due:
                break
            ds[j] = ds[k]
            ts[j] = ts[k]
            j = k
        ds[j] = due
        ts[j] = task
        self._n += 1
        task.data = self  # Task.cancel() calls self.remove(task), then reschedules it

    def _grow(self):
        # full: unroll the ring into tables twice the size
        n = self._n
        h = self._h
        self._dues = self._dues[h:] + self._dues[:h] + [0] * n
        self._tasks = self._tasks[h:] + self._tasks[:h] + [None] * n
        self._h = 0
        self._mask = 2 * n - 1

    def remove(self, task):
        """A parked task was cancelled (asyncio's Task.cancel): out of the table."""
        n = self._n
        ts = self._tasks
        ds = self._dues
        h = self._h
        mask = self._mask
        for i in range(n):
            if ts[(h + i) & mask] is task:
                for j in range(i, n - 1):
                    a = (h + j) & mask
                    b = (a + 1) & mask
                    ds[a] = ds[b]
                    ts[a] = ts[b]
                ts[(h + n - 1) & mask] = None
                self._n = n - 1
                return

    def _head(self):
        # due of the earliest waiter, or None
        if self._parker is None:
            ws = self._waiters
            return ws[0][0] if ws else None
        return self._dues[self._h] if self._n else None

    def _release_head(self):
        if self._parker is None:
            self._waiters.pop(0)[2].set()
            return
        h = self._h
        ts = self._tasks
        t = ts[h]
        ts[h] = None
        self._h = (h + 1) & self._mask
        self._n -= 1
        t.data = None
        _core._task_queue.push(t)

    async def _sleep_event(self, ms):
        # CPython (host tests): an Event per sleep
        due = self._now + (ms if ms > 0 else 0)
        ev = asyncio.Event()
        self._seq += 1
        ws = self._waiters
        i = len(ws)
        while i > 0 and ws[i - 1][0] > due:
            i -= 1
        ws.insert(i, [due, self._seq, ev])
        if self._driver is None:
            self._start()
        await ev.wait()

    def wall_ms(self):
        """Wall ms since t = 0 (0 before it)."""
        if self._wall_last is not None:
            now = time.ticks_ms()
            self._wall_acc += time.ticks_diff(now, self._wall_last)
            self._wall_last = now
        return self._wall_acc

    def _pace(self, due):
        """--speed N: wall ms still to wait before ``due`` may be released (0: now). Moves
        the reading up to N x wall time, never past ``due``."""
        spd = self.speed
        wall = self.wall_ms()
        t = int(wall * spd)
        if due is not None and t > due:
            t = due
        if t > self._now:
            self._now = t
        if due is None:
            return _CHUNK_MS
        left = due / spd - wall
        if left <= 0:
            return 0
        n = int(left)
        return n + 1 if n < left else n

    async def _drive(self):
        # every speed, both interpreters (MicroPython at --speed max: the idle hook instead,
        # when it can go in): one turn of its own per release
        try:
            await self._drive_loop()
        finally:  # (ended, or cancelled from outside: the next sleep starts one again)
            self._driver = None

    async def _drive_loop(self):
        # every speed, both interpreters: one turn of its own per release
        while True:
            await asyncio.sleep_ms(0)  # every runnable task runs before we look
            if self.stopped:
                return
            if _others_runnable():
                continue
            due = self._head()
            if self.speed > 0:
                wait = self._pace(due)
                if wait > 0:
                    await asyncio.sleep_ms(wait if wait < _CHUNK_MS else _CHUNK_MS)
                    continue
            elif due is None:
                await asyncio.sleep_ms(1)
                continue
            if due > self._now:
                self._now = due
            self.releases += 1
            self._release_head()

    @micropython.native
    def _release(self):
        # the idle hook's release: time to the head's deadline, the head back on the run
        # queue (MicroPython; _release_head's MicroPython half inlined on purpose: a call
        # less per release, the hot path of a run)
        h = self._h
        ts = self._tasks
        due = self._dues[h]
        if due > self._now:
            self._now = due
        self.releases += 1
        t = ts[h]
        ts[h] = None
        self._h = (h + 1) & self._mask
        self._n -= 1
        t.data = None
        _core._task_queue.push(t)

    # -- RTC -----------------------------------------------------------------------------

    @micropython.native
    def rtc_ms(self):
        """RTC reading in ms since 2000-01-01 00:00:00 UTC."""
        return self._rtc0 + self._now

    @micropython.native
    def time(self):
        """RTC reading in whole seconds since 2000-01-01 00:00:00 UTC."""
        return (self._rtc0 + self._now) // 1000

    @micropython.native
    def seconds_since(self, base):
        """RTC seconds since ``base`` (RTC s): exactly ``time() - base`` (boards/board.py's
        interface; the firmware's per-second reader, meter/tariffs.py)."""
        return (self._rtc0 + self._now) // 1000 - base

    def set_time(self, secs):
        """Set the RTC to ``secs`` (s since 2000-01-01 UTC) now; the clock is valid again."""
        self._rtc0 = secs * 1000 - self._now
        self.rtc_valid = True
        self.rtc_note = ""
        if self.on_rtc_set is not None:
            self.on_rtc_set()
