# Storage tasks: periodic commits, the power-fail commit, configuration and event housekeeping.
"""The asyncio side of storage (firmware/meter/storage.py, settings.py, eventstore.py).

- :func:`commits`: every second of metering time, the register commit when the policy says
  so (lib/flashstore/journal.CommitPolicy), followed by ``maintain()``;
- :func:`power_fail_watch`: waits for the power-fail interrupt, reads the partial interval
  and makes the urgent commit (one page program), once per warning;
- :func:`housekeeping`: every second of metering time, the deferred configuration write
  (Settings.tick, under its wear budget) and the event logs' flood summaries.
"""

import asyncio

import events


async def commits(storage):
    """Periodic commits of ``storage`` (meter.storage.Storage)."""
    from flashstore import journal

    clock = storage.clock
    while True:
        await clock.sleep_ms(1000)
        storage.stamp()
        storage.tick()
        if storage.journal.blocked:
            continue
        if storage.policy.due(storage.mono_s, journal.REASON_PERIODIC, storage.unsaved_wh()):
            storage.commit(journal.REASON_PERIODIC)
            storage.maintain()


async def power_fail_watch(storage, metering, board, log):
    """Wait for the power-fail interrupt (``board.on_power_fail(handler)`` installs it on the
    rising edge of ``board.power_fail``); read the partial interval (``metering.finish()``)
    and commit urgently, once per warning."""
    # ISR-safe flag on real boards; the virtual board raises its "interrupt" from task
    # context and supplies a plain Event (ThreadSafeFlag wakes through the poller there).
    from flashstore import journal

    make = getattr(board, "irq_flag", None)
    flag = make() if make is not None else asyncio.ThreadSafeFlag()
    board.on_power_fail(lambda _pin: flag.set())
    while True:
        await flag.wait()
        if hasattr(flag, "clear"):
            flag.clear()  # asyncio.Event; ThreadSafeFlag clears itself
        if board.power_fail.value():
            metering.finish()
            storage.commit(journal.REASON_POWERFAIL)
            log.log(events.POWER_FAIL)


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


async def housekeeping(settings, eventstore, clock, uptime, period_ms=1000):
    """Every second of metering time: the deferred configuration write and the event logs'
    flood summaries."""
    while True:
        await clock.sleep_ms(period_ms)
        settings.tick(uptime.update())
        if eventstore is not None:
            eventstore.tick()
