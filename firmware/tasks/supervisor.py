# The supervisor: runs the tasks, notices one that dies, and feeds the watchdog.
"""Supervision of the firmware's tasks.

Every task of the meter (metering loop, display, test LED, storage commits, power-fail
watch, housekeeping, tamper, ports) runs under :meth:`Supervisor.spawn`: when it ends with
an exception (or returns: they are all meant to run forever) the supervisor logs TASK_DIED
(value: the task's deaths so far, text: the task and the exception; persisted in the
standard log) and starts it again after a pause that doubles from 1 s up to 60 s. A task
that dies ``MAX_DEATHS`` times within ``WINDOW_MS`` of real time is given up: TASK_FAILED is
logged and the watchdog is no longer fed, so the MCU resets (a restart is the one repair
left); on a board without a watchdog (the virtual board) the meter goes on without that
task.

The watchdog (:meth:`Supervisor.watchdog`, every 1-2 s of the board clock on a real board:
a quarter of the hardware timeout; every 5 s with the virtual board's model) is fed only on
proof of progress: the metering task completed a read interval, or made a power-up attempt
of a faulty chip (``Metering.attempts``), within the last 10 s, and no task was given up.
Each period it also calls ``tick`` (the status LEDs; an exception there is logged once per
episode as TASK_DIED, value 0, and never ends the watchdog task). Limit: a task that hangs
without dying (awaits forever) is noticed only if it is the metering task.

Time base: every supervision deadline (the progress window, the watchdog and status-LED
period, the restart pause, the give-up window) is a heartbeat of the firmware's tasks and is
measured on ``clock``, the board clock the tasks themselves sleep on. On a real board that
clock is real time (``boards.board.MonotonicClock``), so the hardware watchdog is fed every
2 real seconds, well inside its timeout (RP2040 <= 8.3 s). On the virtual board it is the
simulated clock, whose watchdog is a model (``NullWDT``): the supervisor then sees the same
simulated seconds at any ``--speed`` (max, 1, 7200, 0.5), so a fast run no longer showed
the boot-time red status LED for thousands of simulated seconds, nor fed a watchdog once per
wall second; a metering task that stops is still caught after 10 s of the clock the other
tasks keep moving. Without ``clock`` (unit tests) real time is used.
"""

import asyncio

import events
import ticks

MAX_DEATHS = 5
WINDOW_MS = 600000
_PAUSE_MS = 1000
_PAUSE_MAX_MS = 60000
_PROGRESS_MS = 10000
_FEED_MIN_MS = 1000  # a hardware watchdog (``wdt.timeout_ms``): fed every timeout / 4,
_FEED_MAX_MS = 2000  # within 1..2 s of board time (RP2040, STM32: 8 s -> 2 s)
MODEL_FEED_MS = 5000  # a watchdog without a timeout (NullWDT, the virtual board's model)


class _RealTime:
    # the board-clock interface (ticks_ms, ticks_diff, sleep_ms) on real time
    ticks_ms = staticmethod(ticks.ticks_ms)
    ticks_diff = staticmethod(ticks.ticks_diff)

    def sleep_ms(self, ms):
        return asyncio.sleep_ms(ms)


class Supervisor:
    """``wdt``: the board's watchdog (``feed()``); ``metering``: meter.metering.Metering
    (``steps``, ``attempts``: the proof of progress); ``log``: lib.events.EventLog; ``tick``:
    optional callable run every second (status LEDs); ``pause_ms``, ``max_deaths``,
    ``window_ms``: the restart pause and the give-up rule (module docstring), in ms of
    ``clock`` (the board clock: ``ticks_ms``, ``ticks_diff``, ``sleep_ms``; None: real
    time)."""

    def __init__(self, wdt, metering, log, tick=None, pause_ms=_PAUSE_MS,
                 max_deaths=MAX_DEATHS, window_ms=WINDOW_MS, clock=None):
        self.clock = clock if clock is not None else _RealTime()
        self.wdt = wdt
        self.metering = metering
        self.log = log
        self.tick = tick
        self.pause_ms = pause_ms
        self.max_deaths = max_deaths
        self.window_ms = window_ms
        self.tasks = {}  # name -> asyncio task
        self._fns = {}  # name -> coroutine function
        self.deaths = {}  # name -> deaths so far
        self.failed = None  # the name of a task given up, or None

    def spawn(self, name, fn):
        """Run ``fn()`` (a coroutine function) as the supervised task ``name``; returns the
        asyncio task."""
        self.deaths[name] = 0
        self._fns[name] = fn
        t = asyncio.create_task(self._guard(name, fn))
        self.tasks[name] = t
        return t

    def restart(self, name):
        """Cancel the task ``name`` and start it again at once (not a death: e.g. the test
        LED at a power-fail warning, which may wait inside a pulse schedule)."""
        t = self.tasks.get(name)
        if t is None:
            return None
        t.cancel()
        n = self.deaths[name]
        t = self.spawn(name, self._fns[name])
        self.deaths[name] = n
        return t

    async def _guard(self, name, fn):
        # few locals: one such frame is held for the run per task (RAM, issue 12); a death
        # is counted by _died
        st = None  # [clock time of the window's first death, deaths in it, pause ms]
        while True:
            try:
                await fn()
                why = "returned"
            except asyncio.CancelledError:
                raise
            except Exception as e:  # any failure of the task is supervised
                why = repr(e)
            st = self._died(name, why, st)
            if st is None:
                return  # given up
            await self.clock.sleep_ms(st[2])

    def _died(self, name, why, st):
        # task ``name`` died (``why``): logged; the window and the restart pause in ``st``
        # (None before its first death), the pause doubling within a window; None when the
        # task is given up
        n = self.deaths[name] = self.deaths[name] + 1
        clock = self.clock
        now = clock.ticks_ms()
        # (< 0: more than 2**29 ms ago on a board clock wrapping at 2**30, not "within")
        d = 0 if st is None else clock.ticks_diff(now, st[0])
        if st is None or d > self.window_ms or d < 0:
            st = [now, 1, self.pause_ms]
        else:
            st[1] += 1
            st[2] = min(2 * st[2], _PAUSE_MAX_MS)
        self.log.log(events.TASK_DIED, n, "task %s died: %s" % (name, why))
        if st[1] >= self.max_deaths:
            self.failed = name
            self.log.log(events.TASK_FAILED, n, "task %s given up: watchdog reset" % name)
            return None
        return st

    def feed_period_ms(self):
        """The watchdog task's period (ms of the board clock): a quarter of a hardware
        watchdog's ``timeout_ms``, within 1..2 s; :data:`MODEL_FEED_MS` for a watchdog without
        a timeout (the virtual board's model: no wake-up per simulated second, issue 12; a
        stuck metering task still starves it within _PROGRESS_MS + 5 s)."""
        t = getattr(self.wdt, "timeout_ms", None)
        if t is None:
            return MODEL_FEED_MS
        return min(_FEED_MAX_MS, max(_FEED_MIN_MS, t // 4))

    async def watchdog(self, period_ms=None):
        """Every ``period_ms`` of the clock (None: :meth:`feed_period_ms`): feed the watchdog
        on proof of progress (module docstring) and run ``tick``."""
        if period_ms is None:
            period_ms = self.feed_period_ms()
        m = self.metering
        clock = self.clock
        last_steps = last_tries = -1
        last_seen = clock.ticks_ms()
        tick_ok = True
        while True:
            now = clock.ticks_ms()
            # progress is an event (an interval, a power-up attempt), never a state: "not
            # m.ok" fed a metering task that hung while the chip was faulty (or at boot)
            if m.steps != last_steps or m.attempts != last_tries:
                last_steps = m.steps
                last_tries = m.attempts
                last_seen = now
            if self.failed is None and clock.ticks_diff(now, last_seen) < _PROGRESS_MS:
                self.wdt.feed()
            if self.tick is not None:
                # the status LEDs (on the Pico over I2C): a bus error must not end this task,
                # which would starve the watchdog; logged once per episode
                try:
                    self.tick()
                    tick_ok = True
                except Exception as e:
                    if tick_ok:
                        self.log.log(events.TASK_DIED, 0, "tick failed: %r" % (e,))
                    tick_ok = False
            await clock.sleep_ms(period_ms)
