# Storage tasks: periodic commits, the power-fail commit, configuration and event housekeeping.
"""The asyncio side of storage (firmware/meter/storage.py, settings.py, eventstore.py).

- :func:`commits`: the register commit when the policy says so (lib/flashstore/journal.
  CommitPolicy), followed by ``maintain()``; woken by the metering step that finds it due
  (``Storage.on_due``), not every second (issue 12: ~12 wake-ups an hour instead of 3 600);
  also when a power-fail warning has ended without a cut (``Storage.owed``): its urgent
  commits used prepared slots, erased ahead again at once (``maintain()``), not at the next
  periodic commit;
- :func:`power_fail_watch`: waits for the power-fail interrupt, then (once per rising edge)
  the urgent commit (one page program), the test LED restarted to show what it owes at once,
  POWER_FAIL and the event logs' flood summaries (urgent appends), in that order;
- :func:`housekeeping`: the deferred configuration write (Settings.tick, under its wear
  budget), the event logs' flood summaries and ``Storage.second`` (the RTC stamp the
  power-fail record advances from, a warning's end), on deadlines instead of every second
  (issue 12): it sleeps until the write is due (``Settings.due_s``), the earliest flood
  window ends (``EventStore.due_t``) or at most :data:`MAX_SLEEP_S`; a change of the
  configuration, an event counted for a summary, a power-fail warning (then every second
  until it ends) and a clock set (``wake``) wake it early. It keeps the whole seconds of its
  first wake-up (the uptime's), so every check falls on the second the per-second task
  made it.
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
        elif storage.owed:  # a warning ended without a cut: prepare its slots again now
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
            if storage.on_warning is not None:  # housekeeping: each second until it ends
                storage.on_warning()


class Uptime:
    """Whole seconds of the metering clock since boot, counted with ``ticks_diff`` (so the
    12.4-day wrap of a real port's ``ticks_ms`` changes nothing, as long as it is updated at
    least every few days: the housekeeping task does it at least hourly)."""

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

    def ms_until(self, n):
        """Milliseconds from now until ``n`` (>= 1) whole seconds past the last update."""
        c = self._clock
        return c.ticks_diff(c.ticks_add(self._last, n * 1000), c.ticks_ms())


MAX_SLEEP_S = 3600  # the longest sleep of the housekeeping task (the stamp, the uptime)


async def housekeeping(settings, eventstore, clock, uptime, period_ms=1000, storage=None,
                       wake=None):
    """The deferred configuration write, the event logs' flood summaries and
    ``storage.second()`` (meter.storage.Storage or None), at their deadlines (module
    docstring); ``period_ms``: the cadence during a power-fail warning; ``wake``: a
    tasks.wake.Wake the caller sets at a clock set (None: one of its own)."""
    w = wake if wake is not None else Wake()
    settings.now_s = uptime.update
    settings.on_change = w.set
    if eventstore is not None:
        eventstore.on_pending = w.set
    if storage is not None:
        storage.on_warning = w.set
    w.clear()
    ms = period_ms
    while True:
        await w.wait_ms(clock, ms)
        w.clear()
        now = uptime.update()
        warn = storage.second() if storage is not None else False
        settings.tick(now)
        if eventstore is not None:
            eventstore.tick()
        if warn:
            ms = period_ms
            continue
        n = MAX_SLEEP_S
        d = settings.due_s(now)
        if d is not None and d < n:
            n = d
        if eventstore is not None:
            t = eventstore.due_t()
            if t is not None:
                e = t - clock.time()
                if e < n:
                    n = e
        ms = uptime.ms_until(n if n > 1 else 1)
