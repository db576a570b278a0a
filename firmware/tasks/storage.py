# Storage tasks: periodic commits, the power-fail commit, configuration and event housekeeping.
"""The asyncio side of storage (firmware/meter/storage.py, settings.py, eventstore.py).

- :func:`commits`: the register commit when the policy says so (lib/flashstore/journal.
  CommitPolicy), followed by ``maintain()``; woken by the metering step that finds it due
  (``Storage.on_due``), not every second (issue 12: ~12 wake-ups an hour instead of 3 600);
- :func:`power_fail_watch`: waits for the power-fail interrupt, then (once per rising edge)
  the urgent commit (one page program), the test LED restarted to show what it owes at once,
  POWER_FAIL and the event logs' flood summaries (urgent appends), in that order;
- :func:`housekeeping`: every second of metering time, the deferred configuration write
  (Settings.tick, under its wear budget), the event logs' flood summaries and the storage's
  second (``Storage.second``: the RTC stamp of the power-fail record, a warning's end).
"""

import asyncio

import events
from tasks.wake import Wake


async def commits(storage):
    """Periodic commits of ``storage`` (meter.storage.Storage), when its step finds one
    due."""
    from flashstore import journal

    due = Wake()
    storage.on_due = due.set  # (bound once: called in the heap-locked step)
    while True:
        await due.wait()
        due.clear()
        storage.stamp()
        storage.tick()
        if storage.journal.blocked:
            continue
        if storage.pf_active():
            continue  # no periodic commit, no erase while the supply may go
        if storage.policy.due(storage.mono_s, journal.REASON_PERIODIC, storage.unsaved_wh()):
            storage.commit(journal.REASON_PERIODIC)
            storage.maintain()


async def power_fail_watch(storage, board, log, eventstore=None, on_warning=None):
    """Wait for the power-fail interrupt (``board.on_power_fail(handler)`` installs it on the
    rising edge of ``board.power_fail``); then, once per warning: the urgent commit
    (``storage.power_fail_begin``), ``on_warning()`` (the test LED), POWER_FAIL, and the flood
    summaries still counted in RAM (attempts during a lockout, refusals)."""
    # ISR-safe flag on real boards; the virtual board raises its "interrupt" from task
    # context and supplies a plain Event (ThreadSafeFlag wakes through the poller there).
    make = getattr(board, "irq_flag", None)
    flag = make() if make is not None else asyncio.ThreadSafeFlag()
    board.on_power_fail(lambda _pin: flag.set())
    while True:
        await flag.wait()
        if hasattr(flag, "clear"):
            flag.clear()  # asyncio.Event; ThreadSafeFlag clears itself
        if board.power_fail.value() and not storage.supply.warning:
            storage.power_fail_begin()
            if on_warning is not None:
                on_warning()
            log.log(events.POWER_FAIL)
            if eventstore is not None:
                eventstore.tick(True)


class Uptime:
    """Whole seconds of the metering clock since boot, counted with ``ticks_diff`` (so the
    12.4-day wrap of a real port's ``ticks_ms`` changes nothing)."""

    def __init__(self, clock):
        self._clock = clock
        self._last = clock.ticks_ms()
        self.s = 0

    def update(self):
        c = self._clock
        d = c.ticks_diff(c.ticks_ms(), self._last)
        if d >= 1000:
            k = d // 1000
            self.s += k
            self._last = c.ticks_add(self._last, k * 1000)
        return self.s


async def housekeeping(settings, eventstore, clock, uptime, period_ms=1000, storage=None):
    """Every second of metering time: the deferred configuration write, the event logs'
    flood summaries and ``storage.second()`` (meter.storage.Storage or None)."""
    while True:
        await clock.sleep_ms(period_ms)
        if storage is not None:
            storage.second()
        settings.tick(uptime.update())
        if eventstore is not None:
            eventstore.tick()
