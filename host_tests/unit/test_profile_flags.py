"""The load profile's status flags at a capture boundary (issue 12 adversarial pass): the
profile task serves the step's snapshot after the step that took it, so what it samples then
(metrology untrusted, the RTC invalid) belongs to the interval that starts at the boundary,
not to the row captured there (firmware/meter/profile.py). Both interpreters."""

from billing import profile as bp
from civil import seconds
from energy import A_PLUS
from simkit import MeterStub as Met
from test_load_profile import Clk, _prof, _regs, _run


def _step(p, clk, regs):
    clk.now += 1000
    regs.whole[A_PLUS] += 1
    p.interval(0, 0, 0, 1000)


def _rows(p, t0):
    return {r[0] - t0: r[1] for r in p.iter_rows()}


def test_a_chip_fault_right_after_a_boundary_flags_the_next_row_not_the_captured_one():
    t0 = seconds(2026, 3, 2)
    clk = Clk(t0)
    regs = _regs()
    met = Met()
    p = _prof(clk, regs, period=900, met=met)
    _run(p, clk, regs, 1799)  # the row at 900 and every second up to 1799: all good
    _step(p, clk, regs)  # the step that reaches 1800 takes the snapshot (metrology good)
    met.ok = False  # the chip fails before the profile task serves it
    p.service()
    _run(p, clk, regs, 5)
    met.ok = True
    _run(p, clk, regs, 895)  # to 2700
    st = _rows(p, t0)
    assert st[1800] == 0, st  # its whole interval was metered by a good chip
    assert st[2700] == bp.ST_DATA_INVALID, st  # the fault lies in this one


def test_an_rtc_found_invalid_right_after_a_boundary_flags_the_next_row():
    t0 = seconds(2026, 3, 2)
    clk = Clk(t0)
    regs = _regs()
    p = _prof(clk, regs, period=900, met=Met())
    _run(p, clk, regs, 1799)
    _step(p, clk, regs)
    clk.rtc_valid = False
    p.service()
    _run(p, clk, regs, 5)
    clk.rtc_valid = True
    _run(p, clk, regs, 895)
    st = _rows(p, t0)
    assert st[1800] == 0, st
    assert st[2700] == bp.ST_CLOCK_INVALID, st


def test_a_clock_set_while_the_profile_task_was_down_is_served_when_it_restarts():
    # the supervisor restarts a task that died after a pause (1..60 s); a clock set in that
    # pause sets the task's Wake (app._clock_set): the restarted task cleared it and slept to
    # the old boundary, so the row was stamped on the old time and the re-plan came a period
    # late
    import asyncio

    from boards.sim.clock import VirtualClock
    from tasks import profile as profile_task
    from tasks.wake import Wake

    clock = VirtualClock(speed=0)

    class Profiles:
        n = 0

        def set_on_due(self, cb):
            pass

        def wait_ms(self):
            return 900000

        def service(self):
            self.n += 1

    ps = Profiles()
    w = Wake()
    w.set()  # the clock set, during the pause

    async def main():
        t = asyncio.create_task(profile_task.run(ps, clock, w))
        await clock.sleep_ms(1000)
        n = ps.n
        t.cancel()
        clock.stopped = True
        await asyncio.sleep_ms(0)
        return n

    assert asyncio.run(main()) == 1
