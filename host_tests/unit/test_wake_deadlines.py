"""Issue 12 (session 7): the profile, billing, housekeeping and watchdog tasks wake on their
deadlines and on events, not every simulated second; a clock set, a DST change and a power
cut still give their rows and records at the right time.

The whole meter runs on the virtual board (speed max) and each task's work is counted: one
``Profiles.service`` / ``Billing.service`` / ``Settings.tick`` per wake-up of its task, one
``wdt.feed`` per wake-up of the watchdog task (they each ran once per simulated second)."""

import asyncio

import events
from app import Meter
from tasks import billing as billing_task
from tasks import storage as storage_tasks
from tasks.wake import Wake

from boards.sim.board import Options, SimBoard
from simkit import StepTrace

_NOR = ("the whole meter on the virtual board with its 1 MiB NOR-flash image (a flash chip on "
        "a device), which has no room outside the heap: the core has 128 KiB of SRAM in all")
EMU_HOST_ONLY = {"test_a_simulated_hour_wakes_each_task_only_for_its_work":
                     ("flashmem", 1024 * 1024, _NOR),
                 "test_clock_set_replans_the_profile_boundary_at_once":
                     ("flashmem", 1024 * 1024, _NOR),
                 "test_power_cut_row_and_record_stamp": ("flashmem", 1024 * 1024, _NOR)}

H = 3600 * 1000


def _meter(p_mw=1000000, start=None):
    o = Options()
    o.quiet = True
    o.no_uplink = True
    o.speed = 0
    if start is not None:
        o.start = start
    return Meter(SimBoard(o, trace=StepTrace([(0, p_mw, 0)])))


def _count(m):
    n = {"profile": 0, "billing": 0, "housekeeping": 0}

    def wrap(obj, name, key):
        f = getattr(obj, name)

        def g(*a, **k):
            n[key] += 1
            return f(*a, **k)

        setattr(obj, name, g)

    wrap(m.profiles, "service", "profile")
    wrap(m.billing, "service", "billing")
    wrap(m.settings, "tick", "housekeeping")
    return n


async def _main(m, ms, at=None):
    # the meter for ``ms`` of the board clock; ``at``: [(ms, fn)] run at those times
    clock = m.board.clock
    task = asyncio.create_task(m.main(ms))
    done = 0
    for t, fn in at or ():
        await clock.sleep_ms(t - done)
        done = t
        fn()
    await task


def test_a_simulated_hour_wakes_each_task_only_for_its_work():
    m = _meter()
    n = _count(m)
    asyncio.run(_main(m, H))
    # before: 3 600 each (every second); now: the 15-min boundaries (profile; the one at
    # 3 600 s ends the run), the demand periods' ends (billing: the state record), the
    # hourly look (housekeeping)
    assert n["profile"] == 3, n
    assert 4 <= n["billing"] <= 6, n
    assert 1 <= n["housekeeping"] <= 3, n
    feeds = m.board.wdt.feeds  # the model watchdog (no timeout): every 5 simulated s
    assert 719 <= feeds <= 721, feeds
    # the work is still done: a row per quarter hour, 250 Wh at 1 kW (the first one less
    # the discarded first read), then the shutdown's provisional row
    rows = list(m.profiles.items[0].iter_rows())
    assert [r[0] % 900 for r in rows] == [0] * 5, rows
    assert [r[2][0] for r in rows[1:4]] == [250, 250, 250], rows
    assert rows[-1][1] & 128, rows  # ST_POWER_DOWN


def test_clock_set_replans_the_profile_boundary_at_once():
    # a set forward by 1 h 7 min 30 s at 400 s: the interval in progress ends at the next
    # boundary of the new time (ST_CLOCK_ADJUSTED), reached at once, not at the old boundary
    import billing.profile as bp

    m = _meter()
    clock = m.board.clock
    t0 = clock.time()

    def set_clock():
        m.catalogue._s_clock(t0 + 400 + 4050, events.SRC_OPTICAL, "0.9.1")

    asyncio.run(_main(m, 1300 * 1000, [(400 * 1000, set_clock)]))
    p = m.profiles.items[0]
    rows = list(p.iter_rows())
    # new time at 400 s: t0 + 4450 (t0 on a quarter hour); next boundary t0 + 4500, reached
    # 50 s later (450 s of metering), then t0 + 5400 at 1350 s (after the run)
    assert [r[0] - t0 for r in rows] == [4500, 5400], [(r[0] - t0, r[1]) for r in rows]
    assert rows[0][1] & bp.ST_CLOCK_ADJUSTED, rows
    assert rows[1][1] & bp.ST_POWER_DOWN, rows  # the end of the run
    # the row holds 450 s of 1 kW: 124.7 Wh (A+ interval energy, whole Wh)
    assert rows[0][2][0] == 124, rows[0]  # (less the first read, discarded)


def test_power_cut_row_and_record_stamp():
    # a power-fail warning at 1000 s: the power-fail record carries the RTC of that second
    # (the stamp advanced from the last one: housekeeping no longer stamps every second) and
    # the profile's provisional row the interval in progress
    import billing.profile as bp

    m = _meter()
    clock = m.board.clock
    t0 = clock.time()
    st = m.storage
    seen = {}

    def warn():
        orig = st.journal.commit

        def commit(payload, reason, urgent=False):
            seen["t"] = st._t[0] | st._t[1] << 16
            seen["rtc"] = clock.time()
            return orig(payload, reason, urgent)

        st.journal.commit = commit
        st.power_fail_begin()
        m._on_warning()

    asyncio.run(_main(m, 1001 * 1000 + 500, [(1000 * 1000 + 500, warn)]))
    assert seen["t"] == seen["rtc"] and 1000 <= seen["rtc"] - t0 <= 1001, (seen, t0)
    p = m.profiles.items[0]
    rows = list(p.iter_rows())
    assert [r[0] - t0 for r in rows] == [900, 1800], rows
    assert rows[-1][1] & bp.ST_POWER_DOWN, rows


def test_stamp_advances_with_the_ticks():
    # unit: the power-fail record's RTC is the last stamp + whole seconds of ticks since
    class Clock:
        ms = 0
        t = 0x1FFFF  # a carry into the high half

        def ticks_ms(self):
            return self.ms

        def ticks_diff(self, a, b):
            return a - b

        def time(self):
            return self.t + self.ms // 1000

    from meter.storage import Storage

    class S:  # the fields stamp() and _advance() use
        pass

    c = Clock()
    s = S()
    s.clock = c
    s._t = [0, 0]
    Storage.stamp(s)
    c.ms = 2999
    Storage._advance(s)
    assert s._t[0] | s._t[1] << 16 == 0x1FFFF + 2, s._t
    c.ms = 3000
    Storage._advance(s)
    assert s._t[0] | s._t[1] << 16 == 0x1FFFF + 3, s._t


def test_housekeeping_sleeps_to_the_config_write_and_the_flood_summary():
    # the deferred configuration write 2 s after a change (CONFIG_DELAY_S) and a flood
    # summary at its window's end, each on its own wake-up; nothing in between
    from boards.sim.clock import VirtualClock

    clock = VirtualClock(speed=0)

    class Settings:
        CONFIG_DELAY_S = 2

        def __init__(self):
            self.now_s = None
            self.on_change = None
            self.due = None
            self.ticks = []
            self.writes = []

        def change(self):
            self.due = self.now_s() + 2
            self.on_change()

        def tick(self, now):
            self.ticks.append(clock.ticks_ms())
            if self.due is not None and now >= self.due:
                self.writes.append(clock.ticks_ms())
                self.due = None

        def due_s(self, now):
            return None if self.due is None else max(self.due - now, 0)

    class Store:
        def __init__(self):
            self.on_pending = None
            self.at = None
            self.written = []

        def due_t(self):
            return self.at

        def tick(self, force=False):
            if self.at is not None and clock.time() >= self.at:
                self.written.append(clock.ticks_ms())
                self.at = None

    s = Settings()
    es = Store()
    up = storage_tasks.Uptime(clock)

    async def main():
        t = asyncio.create_task(storage_tasks.housekeeping(s, es, clock, up))
        await clock.sleep_ms(100500)
        s.change()  # at 100.5 s: written at 102 s (the task's whole seconds)
        await clock.sleep_ms(1000)
        es.at = clock.time() + 59  # a flood counted at 101.5 s, its window ends 59 s later
        es.on_pending()
        await clock.sleep_ms(3 * H - 101500)
        t.cancel()
        clock.stopped = True
        await asyncio.sleep_ms(0)

    asyncio.run(main())
    assert s.writes == [102000], s.writes
    assert es.written == [160000], es.written
    # wake-ups: 1 s (first), 100.5 (change), 101.5 (flood), 102 (write), 160 (summary), then
    # hourly: 3 h -> about 8, not 10 800
    assert 6 <= len(s.ticks) <= 9, s.ticks


def test_billing_task_sleeps_until_the_step_notes_something():
    from boards.sim.clock import VirtualClock

    clock = VirtualClock(speed=0)

    class Billing:
        on_due = None
        n = 0

        def service(self, urgent=False):
            self.n += 1

        def maintain(self):
            pass

    b = Billing()

    async def main():
        t = asyncio.create_task(billing_task.run(b, clock))
        await clock.sleep_ms(1500)
        b.on_due()  # as the step does when something is pending
        await clock.sleep_ms(H + 1000)
        t.cancel()
        clock.stopped = True
        await asyncio.sleep_ms(0)

    asyncio.run(main())
    assert b.n == 1 + 1, b.n  # the note, and one look at the end of the hour's sleep


def test_demand_reset_button_press_of_02_s_real_time():
    # the button is sampled on real time (100 ms), not by a per-second wake-up on the board
    # clock: a 0.2 s press is one reset whatever the simulation's speed
    class Pin:
        v = 0

        def value(self):
            return self.v

    class Billing:
        def __init__(self):
            self.resets = []

        def demand_reset(self, src):
            self.resets.append(src)

    b = Billing()
    pin = Pin()

    async def main():
        t = asyncio.create_task(billing_task.button(b, pin))
        await asyncio.sleep_ms(250)
        pin.v = 1
        await asyncio.sleep_ms(200)
        pin.v = 0
        await asyncio.sleep_ms(250)
        pin.v = 1
        await asyncio.sleep_ms(450)  # held: still one
        pin.v = 0
        await asyncio.sleep_ms(150)
        t.cancel()
        await asyncio.sleep_ms(0)

    asyncio.run(main())
    assert b.resets == [events.SRC_LOCAL, events.SRC_LOCAL], b.resets


def test_demand_reset_button_press_shorter_than_the_sampling_is_latched():
    # session 8: a press made and released between two samples (shorter than 100 ms, or
    # while a flash erase held the loop) was missed; the pin's edge interrupt latches it.
    # A both-edge interrupt (machine.Pin's default) latches the release too: not a press.
    from boards.sim.hw import SimPin

    class EdgePin:
        v = 0
        handler = None

        def value(self):
            return self.v

        def irq(self, handler=None, trigger=None):
            self.handler = handler

        def set(self, v):
            self.v = v
            self.handler(self)

    class Billing:
        def __init__(self):
            self.resets = 0

        def demand_reset(self, src):
            self.resets += 1

    async def run(pin, b, steps):
        t = asyncio.create_task(billing_task.button(b, pin, 40))
        for v, ms in steps:
            await asyncio.sleep_ms(ms)
            if v is not None:
                v()
        t.cancel()
        await asyncio.sleep_ms(0)

    sim = SimPin("BTN_MDRESET")  # the virtual board's button: rising edges
    b = Billing()
    def press():  # never seen by a sample
        sim.set_input(1)
        sim.set_input(0)

    asyncio.run(run(sim, b, [(None, 100), (press, 0), (None, 100), (press, 0),
                             (None, 100)]))
    assert b.resets == 2, b.resets
    e = EdgePin()
    b = Billing()
    asyncio.run(run(e, b, [(None, 100), (lambda: e.set(1), 0), (None, 150),  # held: seen
                           (lambda: e.set(0), 0), (None, 150),  # its release edge
                           (lambda: (e.set(1), e.set(0)), 0), (None, 150)]))  # a short one
    assert b.resets == 2, b.resets


def test_wake_ends_a_clock_sleep_early():
    from boards.sim.clock import VirtualClock

    clock = VirtualClock(speed=0)
    w = Wake()
    out = []

    async def waiter():
        w.clear()
        await w.wait_ms(clock, H)
        out.append(clock.ticks_ms())
        w.clear()
        await w.wait_ms(clock, 5000)
        out.append(clock.ticks_ms())

    async def main():
        t = asyncio.create_task(waiter())
        await clock.sleep_ms(1234)
        w.set()
        await clock.sleep_ms(10000)
        clock.stopped = True
        await asyncio.sleep_ms(0)
        return t

    t = asyncio.run(main())
    assert out == [1234, 6234], out
    assert t.done()


def test_watchdog_period_is_a_quarter_of_the_hardware_timeout():
    # a real board's watchdog is fed every 1-2 s of board time (a quarter of its timeout);
    # the virtual board's model (no timeout) every 5 s: no wake-up per simulated second
    from tasks.supervisor import Supervisor

    class Hw:
        def __init__(self, ms):
            self.timeout_ms = ms

        def feed(self):
            pass

    class Model:
        def feed(self):
            pass

    log = events.EventLog(None)
    assert Supervisor(Hw(8000), None, log).feed_period_ms() == 2000  # RP2040, STM32 boards
    assert Supervisor(Hw(2000), None, log).feed_period_ms() == 1000
    assert Supervisor(Hw(32000), None, log).feed_period_ms() == 2000
    assert Supervisor(Model(), None, log).feed_period_ms() == 5000


def test_wake_ends_a_real_time_sleep_early():
    # a real board's clock sleeps with asyncio.sleep_ms (the task keyed in the run queue):
    # set() brings it forward as Task.cancel would, without the CancelledError
    class Real:
        def sleep_ms(self, ms):
            return asyncio.sleep_ms(ms)

    import ticks

    w = Wake()
    out = []

    async def waiter():
        w.clear()
        t0 = ticks.ticks_ms()
        await w.wait_ms(Real(), 60000)
        out.append(ticks.ticks_diff(ticks.ticks_ms(), t0))
        w.clear()
        await w.wait_ms(Real(), 30)  # times out
        out.append(ticks.ticks_diff(ticks.ticks_ms(), t0))

    async def main():
        t = asyncio.create_task(waiter())
        await asyncio.sleep_ms(20)
        w.set()
        await asyncio.sleep_ms(200)
        return t

    t = asyncio.run(main())
    assert t.done() and len(out) == 2, out
    assert out[0] < 1000 and out[1] >= out[0] + 25, out
