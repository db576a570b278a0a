"""firmware/tasks/supervisor.py: a task that dies is logged and restarted; one that keeps
dying is given up and the watchdog starves; the watchdog is fed only on metering progress.
And in the whole meter: the display task dying mid-run is restarted, the metering goes on."""

import asyncio

import events
from tasks.supervisor import Supervisor


class _WDT:
    def __init__(self):
        self.feeds = 0

    def feed(self):
        self.feeds += 1


class _Metering:
    def __init__(self):
        self.steps = 0
        self.attempts = 0
        self.ok = True


class _Clock:
    def time(self):
        return 504921600


def _sup(**kw):
    log = events.EventLog(_Clock())
    return Supervisor(_WDT(), _Metering(), log, **kw), log


async def test_a_dying_task_is_logged_and_restarted():
    sv, log = _sup(pause_ms=10)
    runs = []

    async def flaky():
        runs.append(1)
        if len(runs) < 3:
            raise ValueError("boom %d" % len(runs))
        await asyncio.sleep_ms(10000)

    t = sv.spawn("display", flaky)
    await asyncio.sleep_ms(200)
    assert len(runs) == 3, runs
    died = [r for r in log.records() if r[1] == events.TASK_DIED]
    assert [r[2] for r in died] == [1, 2], died
    assert sv.deaths["display"] == 2 and sv.failed is None
    assert not t.done(), "running again"
    t.cancel()
    await asyncio.sleep_ms(0)


async def test_a_task_that_keeps_dying_is_given_up_and_the_watchdog_starves():
    sv, log = _sup(pause_ms=5, max_deaths=4)
    wd = asyncio.create_task(sv.watchdog(period_ms=20))
    await asyncio.sleep_ms(50)
    fed = sv.wdt.feeds
    assert fed >= 2, "fed while all is well"

    async def broken():
        raise OSError(5)

    sv.spawn("port", broken)
    await asyncio.sleep_ms(300)
    assert sv.failed == "port" and sv.deaths["port"] == 4
    assert log.count(events.TASK_FAILED) == 1 and log.count(events.TASK_DIED) == 4
    n = sv.wdt.feeds
    await asyncio.sleep_ms(100)
    assert sv.wdt.feeds == n, "no more feeds: the watchdog resets the MCU"
    wd.cancel()
    await asyncio.sleep_ms(0)


async def test_a_returning_task_counts_as_dead():
    sv, log = _sup(pause_ms=5, max_deaths=2)

    async def quits():
        return None

    sv.spawn("storage", quits)
    await asyncio.sleep_ms(100)
    assert sv.failed == "storage" and log.count(events.TASK_DIED) == 2


async def test_the_watchdog_needs_metering_progress():
    sv, log = _sup()
    sv.metering.ok = True
    wd = asyncio.create_task(sv.watchdog(period_ms=10))
    await asyncio.sleep_ms(50)
    assert sv.wdt.feeds >= 3
    wd.cancel()
    await asyncio.sleep_ms(0)


async def test_a_faulty_chip_feeds_the_watchdog_only_while_it_is_retried():
    # "proof of progress": an interval completed or a power-up attempt of a faulty chip within
    # the window. A metering task that hangs (or never starts) while the chip is faulty
    # (``ok`` False, also the state at boot) must starve the watchdog like any other hang.
    import tasks.supervisor as S

    saved = S._PROGRESS_MS
    S._PROGRESS_MS = 60
    try:
        sv, log = _sup()
        m = sv.metering
        m.ok = False
        wd = asyncio.create_task(sv.watchdog(period_ms=10))
        for _ in range(15):  # retrying: one attempt every 20 ms
            await asyncio.sleep_ms(20)
            m.attempts += 1
        assert sv.wdt.feeds >= 20, sv.wdt.feeds
        await asyncio.sleep_ms(100)  # the task hangs: no attempt, no step
        n = sv.wdt.feeds
        await asyncio.sleep_ms(100)
        assert sv.wdt.feeds == n, "a hung metering task with a faulty chip starves the watchdog"
        m.attempts += 1  # retrying again
        await asyncio.sleep_ms(30)
        assert sv.wdt.feeds > n
        wd.cancel()
        await asyncio.sleep_ms(0)
    finally:
        S._PROGRESS_MS = saved


async def test_a_failing_tick_neither_kills_the_watchdog_task_nor_floods_the_log():
    # the tick drives the status LEDs, on the Pico through the MCP23017 on I2C: one bus
    # error (OSError) ended the unsupervised watchdog task, so the MCU was reset 8 s later
    calls = []

    def tick():
        calls.append(1)
        if 2 <= len(calls) <= 6:
            raise OSError(110)

    sv, log = _sup(tick=tick)
    wd = asyncio.create_task(sv.watchdog(period_ms=10))
    await asyncio.sleep_ms(120)
    assert len(calls) >= 8 and sv.wdt.feeds >= 8, (len(calls), sv.wdt.feeds)
    assert log.count(events.TASK_DIED) == 1, "one record per episode, not one a second"
    assert sv.failed is None
    wd.cancel()
    await asyncio.sleep_ms(0)


async def test_the_display_task_dying_in_the_meter_is_restarted():
    from app import Meter
    from boards.sim.board import Options, SimBoard
    from simkit import StepTrace

    o = Options()
    o.quiet = True
    o.no_flash = True
    o.speed = 1000  # 300 simulated s in 0.3 s of real time: the display polls every 50 ms
    board = SimBoard(o, trace=StepTrace([(0, 1000000, 0)]))
    meter = Meter(board)
    meter.supervisor.pause_ms = 10
    real = meter.display.poll
    calls = [0]

    def poll(now):
        calls[0] += 1
        if calls[0] == 2:
            raise RuntimeError("glitch")
        real(now)

    meter.display.poll = poll
    await meter.main(300000)
    asyncio.new_event_loop()
    died = [r for r in meter.log.records() if r[1] == events.TASK_DIED]
    assert len(died) == 1 and meter.supervisor.deaths["display"] == 1, died
    assert calls[0] > 3, "the display ran again"
    assert meter.registers.snapshot()["1.8.0"] > 80000, "metering went on"
    assert meter.supervisor.failed is None


async def test_on_the_virtual_clock_a_stopped_metering_task_is_still_caught():
    # issue 12: the supervisor's deadlines are on the board clock. At --speed max (speed 0)
    # a simulated hour passes in a fraction of a wall second: the watchdog is fed every
    # simulated second while the metering task steps, and starves 10 simulated s after the
    # task stops (it awaits forever; the other tasks keep the clock moving). On wall time it
    # was fed once for the whole hour, and a stop went unseen for 10 wall seconds.
    from boards.sim.clock import VirtualClock

    clock = VirtualClock(speed=0)
    log = events.EventLog(_Clock())
    m = _Metering()
    sv = Supervisor(_WDT(), m, log, clock=clock)
    stop_at = 1800

    async def metering():
        while m.steps < stop_at:
            await clock.sleep_ms(1000)
            m.steps += 1
        await asyncio.Event().wait()  # hangs without dying

    async def other():  # e.g. housekeeping: sleeps on the clock every second
        while True:
            await clock.sleep_ms(1000)

    tasks = [asyncio.create_task(metering()), asyncio.create_task(other()),
             asyncio.create_task(sv.watchdog())]
    await clock.sleep_ms(3600 * 1000)
    feeds = sv.wdt.feeds
    for t in tasks:
        t.cancel()
    clock.stopped = True
    await asyncio.sleep_ms(0)
    # fed every 5 simulated s (the model watchdog's period, issue 12: not every second) at
    # t = 0 .. 1805 s (last step at 1800 s, window 10 s): 362 feeds, none after
    assert sv.feed_period_ms() == 5000
    assert 361 <= feeds <= 363, feeds
    assert log.count(events.TASK_DIED) == 0


async def test_on_the_virtual_clock_the_restart_pause_is_simulated_time():
    # a dying task's restart pause (1 s, doubling) and the give-up window are heartbeats of
    # the firmware, on the board clock: at --speed max the same simulated pauses as at 1x
    from boards.sim.clock import VirtualClock

    clock = VirtualClock(speed=0)
    log = events.EventLog(_Clock())
    sv = Supervisor(_WDT(), _Metering(), log, clock=clock, max_deaths=3)
    at = []

    async def broken():
        at.append(clock.ticks_ms())
        raise OSError(5)

    sv.spawn("port", broken)
    await clock.sleep_ms(60000)
    clock.stopped = True
    await asyncio.sleep_ms(0)
    assert at == [0, 1000, 3000], at
    assert sv.failed == "port" and log.count(events.TASK_FAILED) == 1


class _WrapClock:
    # a board clock as MonotonicClock is on a device: ticks_ms wraps at 2**30 (12.4 days)
    def __init__(self, start):
        self.now = start

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, a, b):
        import ticks

        return ticks.ticks_diff(a, b)

    async def sleep_ms(self, ms):
        while ms > 0:  # (a day in steps below 2**29)
            d = ms if ms < 1 << 28 else 1 << 28
            ms -= d
            self.now = (self.now + d) & ((1 << 30) - 1)
        await asyncio.sleep_ms(0)


async def test_a_task_dying_once_a_day_is_never_given_up_across_the_ticks_wrap():
    # ticks_diff of two deaths 2**29 .. 2**30 ms (6.2 .. 12.4 days) apart reads negative:
    # such a death counted as inside the 10-minute give-up window, so a task that died once,
    # then a week later once a day, was given up on a board (TASK_FAILED, watchdog reset)
    clock = _WrapClock((1 << 30) - 5000)
    log = events.EventLog(_Clock())
    sv = Supervisor(_WDT(), _Metering(), log, clock=clock, max_deaths=3)
    runs = [0]

    async def daily():
        runs[0] += 1
        if runs[0] > 1:
            await clock.sleep_ms(86400000 * (7 if runs[0] == 2 else 1))
        raise OSError(5)

    t = sv.spawn("uplink", daily)
    for _ in range(400):
        await asyncio.sleep_ms(0)
        if runs[0] >= 20:
            break
    t.cancel()
    await asyncio.sleep_ms(0)
    assert runs[0] >= 20, runs
    assert sv.failed is None and log.count(events.TASK_FAILED) == 0, (sv.deaths, sv.failed)
