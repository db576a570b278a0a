"""The virtual board's clock (boards/sim/clock.py) and battery-backed RTC (boards/sim/rtc.py):
simulated time never runs ahead of the tasks, starts at the first sleep, never runs faster
than N x wall time; the RTC's state across restarts. Runs under CPython and MicroPython."""

import asyncio
import os
import time

from boards.sim import rtc
from boards.sim.clock import EPOCH_2016, VirtualClock


def _tmp(name):
    d = "/tmp/omf_test_sim_clock"
    try:
        os.mkdir(d)
    except OSError:
        pass
    p = d + "/" + name
    for q in (p, p + ".rtc", p + ".rtc.tmp"):
        try:
            os.remove(q)
        except OSError:
            pass
    return p


async def _busy_then_read(clock, n, out):
    # runnable all the time (real-time yields only): simulated time must stand still
    t0 = clock.ticks_ms()
    for _ in range(n):
        await asyncio.sleep_ms(0)
    out.append((t0, clock.ticks_ms()))


async def _ticker(clock, log, period, count):
    for _ in range(count):
        await clock.sleep_ms(period)
        log.append(clock.ticks_ms())


async def _time_stands_still_while_a_task_is_runnable(speed):
    clock = VirtualClock(speed)
    out = []
    log = []
    t = asyncio.create_task(_ticker(clock, log, 1, 100))
    await asyncio.sleep_ms(0)
    await _busy_then_read(clock, 50, out)
    t0, t1 = out[0]
    assert t1 == t0, ("time ran while a task was runnable", speed, t0, t1)
    await t
    assert log == list(range(1, 101)), log  # every deadline met exactly, in order
    clock.stopped = True


async def test_time_stands_still_while_a_task_is_runnable_max():
    await _time_stands_still_while_a_task_is_runnable(0)


async def test_time_stands_still_while_a_task_is_runnable_speed_n():
    await _time_stands_still_while_a_task_is_runnable(1000)


async def _chain(clock, order, name, steps):
    for k in steps:
        await clock.sleep_ms(k)
        order.append((clock.ticks_ms(), name))


async def test_waiters_released_in_deadline_order_ties_first_come():
    clock = VirtualClock(0)
    order = []
    a = asyncio.create_task(_chain(clock, order, "a", (10, 10, 5)))
    b = asyncio.create_task(_chain(clock, order, "b", (20, 5)))
    c = asyncio.create_task(_chain(clock, order, "c", (0, 25)))
    await a
    await b
    await c
    clock.stopped = True
    # a: 10 (1st call), b: 20 (2nd), c: 0 (3rd) then 25 (4th), a: 20 (5th), b: 25, a: 25
    assert order == [(0, "c"), (10, "a"), (20, "b"), (20, "a"), (25, "c"), (25, "b"),
                     (25, "a")], order


async def test_t0_is_the_first_sleep_not_the_construction():
    clock = VirtualClock(1000)
    t0 = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t0) < 30:  # 30 ms of start-up = 30 s simulated
        pass
    assert clock.ticks_ms() == 0, clock.ticks_ms()
    await clock.sleep_ms(5)
    assert clock.ticks_ms() == 5, clock.ticks_ms()
    clock.stopped = True


async def test_never_faster_than_n_times_wall_time():
    clock = VirtualClock(10)  # 10 simulated s per wall s
    w0 = time.ticks_ms()
    await clock.sleep_ms(300)
    wall = time.ticks_diff(time.ticks_ms(), w0)
    assert clock.ticks_ms() == 300
    assert wall >= 30 - 1, ("300 ms simulated took %d ms wall at speed 10" % wall)
    assert clock.wall_ms() * 10 >= 300 - 10
    clock.stopped = True


async def test_reading_follows_wall_time_between_deadlines_without_passing_them():
    clock = VirtualClock(1)
    seen = []

    async def watch():
        for _ in range(8):
            await asyncio.sleep_ms(10)
            seen.append(clock.ticks_ms())

    w = asyncio.create_task(watch())
    await clock.sleep_ms(60)
    clock.stopped = True  # frozen from here
    assert clock.ticks_ms() == 60
    await w
    assert seen == sorted(seen) and all(v <= 60 for v in seen), seen
    assert any(0 < v < 60 for v in seen), ("reading moves between deadlines", seen)


def test_rtc_reading_and_set_time_make_the_clock_valid():
    clock = VirtualClock(0, valid=False, note="battery flat", start_ms=1500)
    assert clock.time() == 1 and clock.rtc_ms() == 1500
    assert not clock.rtc_valid and clock.rtc_note == "battery flat"
    calls = []
    clock.on_rtc_set = lambda: calls.append(clock.time())
    clock._now = 2500  # as if 2.5 s had run
    assert clock.time() == 4
    clock.set_time(EPOCH_2016)
    assert clock.time() == EPOCH_2016 and clock.rtc_valid and clock.rtc_note == ""
    assert calls == [EPOCH_2016]
    clock._now = 3700
    assert clock.time() == EPOCH_2016 + 1


def test_rtc_power_up_rules():
    img = _tmp("nor.img")
    # no --flash: factory set, valid; --start wins; flat battery: reset value, invalid
    assert rtc.power_up(None, EPOCH_2016) == (EPOCH_2016 * 1000, True, "")
    assert rtc.power_up(img, EPOCH_2016, start_s=7) == (7000, True, "")
    ms, ok, note = rtc.power_up(img, EPOCH_2016, battery="flat")
    assert ms == 0 and not ok and "battery" in note
    # a new image: factory set
    assert rtc.power_up(img, EPOCH_2016) == (EPOCH_2016 * 1000, True, "")
    # an image without its RTC state: unknown, invalid, the message names the file
    with open(img, "wb") as f:
        f.write(b"\xff" * 16)
    ms, ok, note = rtc.power_up(img, EPOCH_2016)
    assert ms == 0 and not ok and img + ".rtc" in note, note
    # saved state + the off time
    clock = VirtualClock(0, start_ms=123456789)
    store = rtc.RtcFile(img, clock)
    store.save()
    assert store.error is None and store.saves == 1
    assert rtc.power_up(img, EPOCH_2016, off_s=600) == (123456789 + 600000, True, "")
    ms, ok, note = rtc.power_up(img, EPOCH_2016)  # host wall time since the save
    assert ok and 123456789 <= ms <= 123456789 + 60000, ms
    ms, ok, note = rtc.power_up(img, EPOCH_2016, off_s=3.2e9)  # past 2099: out of range
    assert ms == 0 and not ok and "2099" in note, (ms, ok, note)
    # an invalid clock stays invalid across a restart (the battery keeps a wrong time)
    clock.rtc_valid = False
    store.save()
    ms, ok, note = rtc.power_up(img, EPOCH_2016, off_s=1)
    assert ms == 123457789 and not ok and note, (ms, ok, note)
    # a damaged state file: invalid, named
    with open(img + ".rtc", "w") as f:
        f.write("{not json")
    ms, ok, note = rtc.power_up(img, EPOCH_2016)
    assert ms == 0 and not ok and "unreadable" in note and img + ".rtc" in note, note


_MP = hasattr(asyncio, "core")


async def _sleeper(clock, period, count, log, lock_after):
    # sleeps ``count`` times; from sleep ``lock_after`` on with the heap locked (MicroPython)
    try:
        for k in range(count):
            if _MP and k == lock_after:
                import micropython

                micropython.heap_lock()
            await clock.sleep_ms(period)
            log[0] += 1
    finally:
        if _MP:
            import micropython

            micropython.heap_unlock()


async def test_a_sleep_allocates_nothing_and_one_release_per_waiter():
    # each sleep used to allocate an Event, a list and a coroutine (~416 B on the unix
    # port): now a parked task in preallocated tables (issue 12)
    clock = VirtualClock(0)
    log = [0]
    t = asyncio.create_task(_sleeper(clock, 7, 300, log, 20))
    await t
    assert log[0] == 300 and clock.ticks_ms() == 7 * 300, (log, clock.ticks_ms())
    assert clock.releases == 300
    if _MP:
        assert clock._n == 0 and clock._tasks[0] is None  # nothing left parked
    clock.stopped = True


async def test_a_cancelled_sleeper_leaves_the_table():
    clock = VirtualClock(0)
    order = []
    a = asyncio.create_task(_chain(clock, order, "a", (50,)))
    b = asyncio.create_task(_chain(clock, order, "b", (10, 10)))
    await asyncio.sleep_ms(0)
    a.cancel()
    await b
    try:
        await a
    except asyncio.CancelledError:
        pass
    clock.stopped = True
    assert order == [(10, "b"), (20, "b")], order
    if _MP:
        assert clock._n == 0, clock._n



async def _many(event_path):
    # 10 tasks, then (the ring's head has moved on) 30 more: the table grows while wrapped;
    # periods with ties and overtakes; one task cancelled mid-run
    clock = VirtualClock(0)
    if event_path:
        clock._parker = clock._yield = None  # the sorted list, an Event per sleep: reference
    order = []
    tasks = []
    for k in range(40):
        st = tuple((k * 7 + j * 13) % 29 + (k % 3) for j in range(6))
        tasks.append(asyncio.create_task(_chain(clock, order, "t%02d" % k, st)))
        if k == 9:
            await clock.sleep_ms(3)
    await clock.sleep_ms(20)
    tasks[17].cancel()
    for t in tasks:
        try:
            await t
        except asyncio.CancelledError:
            pass
    clock.stopped = True
    await asyncio.sleep_ms(0)
    return clock, order


async def test_many_waiters_wrap_and_grow_the_table_in_deadline_order():
    # the parked-task ring (MicroPython) wakes 40 tasks in the same order as the plain
    # sorted list of (deadline, first come)
    clock, order = await _many(False)
    _c, want = await _many(True)
    assert len(order) > 200 and order == want, (len(order), len(want))
    assert all(order[i][0] <= order[i + 1][0] for i in range(len(order) - 1))
    if _MP:
        assert clock._n == 0 and all(t is None for t in clock._tasks), clock._n
        assert len(clock._tasks) == 64, len(clock._tasks)


async def test_two_clocks_at_max_speed_run_side_by_side():
    # MicroPython releases sleepers from asyncio's idle turn (boards/sim/clock.py
    # _hook_idle), one clock after the other: neither starves the other, each meets every
    # deadline exactly, and time stands still on both while a task is runnable. (Under
    # CPython each clock has a driver task that yields until nothing else is runnable: two
    # of them never see that, so one clock at a time there.)
    if not hasattr(asyncio, "core"):
        return
    a = VirtualClock(0)
    b = VirtualClock(0)
    la, lb, out = [], [], []
    ta = asyncio.create_task(_ticker(a, la, 3, 200))
    tb = asyncio.create_task(_ticker(b, lb, 7, 100))
    await asyncio.sleep_ms(0)
    t0 = (a.ticks_ms(), b.ticks_ms())
    await _busy_then_read(a, 20, out)
    assert (a.ticks_ms(), b.ticks_ms()) == t0, "time ran while a task was runnable"
    await ta
    assert len(lb) == 100, len(lb)  # (turn about: b's 100 sleeps ended before a's 200)
    await tb
    assert la == [3 * k for k in range(1, 201)], la
    assert lb == [7 * k for k in range(1, 101)], lb
    a.stopped = b.stopped = True


async def test_a_stopped_clock_hands_over_to_the_next():
    # a run stops its clock (Meter.main) and a clock started after it in the same process
    # (the next test, the next run) takes over at once, its stopped forerunner still
    # waiting to notice the stop
    for k in range(3):
        c = VirtualClock(0)
        log = []
        await _ticker(c, log, 1000, 50)
        assert log == [1000 * j for j in range(1, 51)], (k, log)
        c.stopped = True


async def test_a_stopped_clock_leaves_the_idle_hook_at_the_next_turn():
    # a run stops its clock (Meter.main, the tests) and the next builds a whole meter at
    # once: after one turn of the loop nothing of the clock module's may hold the stopped
    # clock (and so its parked tasks and their meter: MemoryError in the next test on the
    # emulated NETDUINO2's 96 KiB heap when the release task held it for 20 ms of wall time)
    if not hasattr(asyncio, "core"):
        return
    q = asyncio.core._io_queue
    c = VirtualClock(0)
    await c.sleep_ms(10)
    assert c in q.vc_idle and q.vc_kept
    c.stopped = True
    await asyncio.sleep_ms(0)
    assert c not in q.vc_idle
    # (and a new event loop drops the old queue, its list and its keeper with it)


def test_a_loop_ended_with_its_clock_running_leaves_nothing_to_the_next():
    # a run that ends in an error (or Ctrl-C) leaves its clock running, tasks parked on it;
    # the next event loop (app.run, tools/mptest.py: asyncio.new_event_loop) and a clock
    # started there must never resume those tasks of the finished run
    if not hasattr(asyncio, "core"):
        return
    a = VirtualClock(0)
    la = []

    async def first():
        asyncio.create_task(_ticker(a, la, 10, 1000))
        await a.sleep_ms(25)
        raise ValueError("the run ends in an error")

    try:
        asyncio.run(first())
    except ValueError:
        pass
    asyncio.new_event_loop()
    assert la == [10, 20], la
    b = VirtualClock(0)
    lb = []
    asyncio.run(_ticker(b, lb, 7, 20))
    asyncio.new_event_loop()
    assert lb == [7 * k for k in range(1, 21)], lb
    assert la == [10, 20], ("a task of the finished run ran in the next loop", la)
    b.stopped = True


def test_a_finished_run_leaves_nothing_of_it_reachable():
    # a run ends (Meter.main: its tasks cancelled, its clock stopped), then a new event loop:
    # nothing of that run may stay reachable (the emulated cores run several meters in one
    # heap: tools/emu; tools/emu/heap_probe.py measures what a run leaves)
    if not hasattr(asyncio, "core"):
        return
    import gc

    gc.collect()
    n = gc.mem_free() // 6  # (each holder's part of the run's state: 400 KB here, less on
    # the emulated cores' heaps)

    def run():
        c = VirtualClock(0)

        async def holder(parked):
            big = bytearray(n)  # (the run's state)
            while True:
                await c.sleep_ms(1000)
                big[0] = (big[0] + 1) & 255

        async def main():
            t = asyncio.create_task(holder(False))
            asyncio.create_task(holder(True))  # left parked on the stopped clock
            await c.sleep_ms(5000)
            t.cancel()
            c.stopped = True

        asyncio.run(main())
        asyncio.new_event_loop()

    gc.collect()
    b0 = gc.mem_alloc()
    run()
    gc.collect()
    left = gc.mem_alloc() - b0
    assert left < n, ("a finished run's tasks still reachable", left, n)


async def test_a_cancelled_driver_is_replaced_at_the_next_sleep():
    # the clock's driver task cancelled from outside (a harness cancelling every task): the
    # clock must not hang for good; the next sleep on it starts a driver again, and the
    # sleepers parked meanwhile wake in deadline order. (--speed N: a driver task on both
    # interpreters; at --speed max MicroPython's clocks have none, the idle hook releases)
    clock = VirtualClock(1000)
    log = []
    t = asyncio.create_task(_ticker(clock, log, 10, 5))
    await clock.sleep_ms(15)
    clock._driver.cancel()
    await asyncio.sleep_ms(30)

    async def sleep():
        await clock.sleep_ms(100)

    await asyncio.wait_for(sleep(), 5)  # (no driver: TimeoutError, not a hang)
    assert clock.ticks_ms() == 115, clock.ticks_ms()
    assert log == [10, 20, 30, 40, 50], log
    await t
    clock.stopped = True
