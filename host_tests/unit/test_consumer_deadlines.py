"""The step consumers that skip their per-second question until a deadline (issue 12, session
11): meter/storage.py asks the commit policy only once the metering clock reaches the next
periodic deadline or the unsaved energy its bound (CommitPolicy.quiet_s / quiet_wh), and
meter/profile.py Profiles calls LoadProfile.second only at the earliest armed boundary
(latching the metrology / RTC flags itself meanwhile). Each is checked against the
question asked every second, as before. Both interpreters."""

import events
from billing import profile as bp
from boards.sim.norflash import NORFlash
from energy import A_MINUS, A_PLUS, Registers
from flashstore import journal
from flashstore.flash import Partition
from meter import storage
from meter.profile import LoadProfile, Profiles
from meter.supply import Supply
from simkit import ManualClock
from simkit import MeterStub as Met


class _Lcg:
    # a small deterministic generator (the same on both interpreters)
    def __init__(self, seed):
        self.x = seed

    def below(self, n):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.x >> 8) % n


class _M:
    steps = 0

    def finish(self, cb):
        cb()


def _storage(period_s=300, clk=ManualClock, t0=0):
    regs = Registers(25600, 25600, 25600)
    clock = clk()
    clock.now = t0
    dev = NORFlash(32 * 1024, sector_size=4096, page_size=256)  # (NETDUINO2's heap)
    s = storage.Storage(Partition(dev, 0, dev.size), regs, _M(), clock,
                        events.EventLog(clock), period_s=period_s, supply=Supply())
    s.restore()
    return s, regs, clock


def _task(s):
    # tasks/storage.py commits, woken by the step
    s.stamp()
    s.tick()
    if s.policy.due(s.mono_s, journal.REASON_PERIODIC, s.unsaved_wh()):
        s.commit(journal.REASON_PERIODIC)
        s.maintain()
    elif s.owed:
        s.maintain()


def _woken_commit(s, woken):
    # the task run if the step woke it; True if it committed
    if not woken:
        return False
    del woken[:]
    n = s.commits
    _task(s)
    return s.commits != n


class _WrapClock(ManualClock):
    # a 32-bit port's ticks_ms: wraps at 2**30 ms (12.4 days); ``now`` runs on unwrapped
    def ticks_ms(self):
        return self.now & 0x3FFFFFFF

    def ticks_diff(self, a, b):
        return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000

    def ticks_add(self, a, b):
        return (a + b) & 0x3FFFFFFF


def _differential(period_s, drift, keep=False, t0=0):
    # steps of 1000 ms +- 3 (+ ``drift`` ms every 5th: the ms phase of the steps against the
    # monotonic seconds sweeps the whole second); returns the commits made, and with ``keep``
    # a list of (step, why) of them (a short list: the emulated cores' heap). ``t0``: the
    # ticks at boot (near 2**30: the wrap of a 32-bit port within the run). The reference
    # is a policy of its own, marked at each commit with the seconds of the step before it
    # (what the step's tick each second left): the power-fail commit's mark included
    s, regs, clock = _storage(period_s, _WrapClock, t0)
    ref = journal.CommitPolicy(period_s=period_s)
    t0 = clock.now
    woken = []
    s.on_due = lambda: woken.append(1)
    rnd = _Lcg(7)
    commits = []  # (second, reason: "energy" / "other")
    for i in range(4000):
        clock.now += 1000 + rnd.below(7) - 3 + (drift if i % 5 == 0 else 0)
        if i % 211 == 100:
            clock.now += 4000 + rnd.below(3000)  # a stalled loop: one step of 5..8 s
        phase = i // 500 % 4
        wh = (0, 1, 7, rnd.below(10))[phase]  # idle, light, heavy (the 200 Wh bound), mixed
        regs.whole[A_PLUS] += wh
        if i % 97 == 5 and phase:
            regs.whole[A_MINUS] += 3
        # what the step asked every second before: the monotonic seconds are the ticks
        # since construction, whole (Storage.tick adds them up exactly)
        mono = (clock.now - t0) // 1000
        u = s.unsaved_wh()
        want = s.owed or ref.due(mono, journal.REASON_PERIODIC, u)
        del woken[:]
        s.interval(wh, 0, wh, 1000)
        assert bool(woken) == bool(want), (i, mono, u, s.owed)
        if woken:
            n = s.commits
            _task(s)
            if s.commits != n:
                ref.mark(mono)
                if keep:
                    commits.append((i, "energy" if u >= 200 else "other"))
        if i % 1013 == 800:  # a warning's urgent commit: the erase-ahead owed next step
            assert s.commit(journal.REASON_POWERFAIL)
            ref.mark(mono)
            assert s.policy._last == mono, (i, s.policy._last, mono)
    return commits if keep else s.commits


def test_storage_wakes_its_task_at_the_very_steps_the_policy_asked_each_second_would():
    for period_s, drift, t0 in ((60, 37, 0), (60, -41, 0), (300, 0, 0), (7, 13, 0),
                                (300, 11, (1 << 30) - 1700 * 1000), (60, -7, (1 << 30) - 900)):
        assert _differential(period_s, drift, t0=t0)
    commits = _differential(300, 0, True)
    heavy = [i for i, why in commits if why == "energy" and 1000 <= i < 1500]
    assert len(heavy) > 10, commits
    for k in range(1, len(heavy)):  # 7 Wh a second: 203 Wh unsaved at the 29th step
        assert heavy[k] - heavy[k - 1] == 29, heavy
    idle = [i for i, _w in commits if 0 < i < 500]
    assert idle == [], idle  # nothing to save: no periodic commit
    assert [i for i, _w in commits if 500 <= i < 510] == [500], commits  # the first Wh


def test_storage_warning_without_a_cut_keeps_the_periodic_schedule():
    # a dip: the urgent commit marks the policy with the seconds of the last step (as the
    # step's tick each second left them), not those of the policy's last question (the
    # first step after the boot's commit here: the next periodic commit came 199 s early)
    s, regs, clock = _storage(300)
    s.on_due = lambda: woken.append(1)
    woken = []
    commits = []
    for i in range(1, 1000):
        clock.now += 1000
        regs.whole[A_PLUS] += i % 2  # 150 Wh a period: the period's commits, not the bound
        s.interval(1, 0, 1, 1000)
        if _woken_commit(s, woken):
            commits.append(i)
        if i == 200:  # (no power-fail input: the warning ends at the next step)
            assert s.power_fail_begin() and s.owed
            assert s.policy._last == 200, s.policy._last
    assert commits == [1, 500, 800], commits


def test_storage_deadline_before_the_ticks_wrap_reached_by_a_step_past_both():
    # the periodic deadline 1.5 s before a 32-bit port's ticks wrap, a stalled step of 5 s
    # from before it to after the wrap: the deadline is reached (ticks_diff), not 12.4 days
    # away (a plain ``<`` on the wrapped ticks)
    t0 = (1 << 30) - 301 * 1000 - 1500
    s, regs, clock = _storage(300, _WrapClock, t0)
    woken = []
    s.on_due = lambda: woken.append(1)
    commits = []
    for i in range(1, 320):
        clock.now += 5000 if i == 300 else 1000
        regs.whole[A_PLUS] += i % 2  # (below the 200 Wh bound: the period's commit)
        s.interval(1, 0, 1, 1000)
        if _woken_commit(s, woken):
            commits.append((i, clock.ticks_ms()))
    assert commits == [(1, t0 + 1000), (300, 1500)], commits


def test_storage_step_skips_the_policy_between_deadlines():
    # the point of it: most steps do not ask (no tick, no policy call)
    s, regs, clock = _storage()
    asked = []
    due = s.policy.due

    def counted(*a):
        asked.append(1)
        return due(*a)

    s.policy.due = counted
    s.on_due = lambda: _task(s)
    for i in range(1000):
        clock.now += 1000
        regs.whole[A_PLUS] += 1 if i % 3 == 0 else 0  # (below the 200 Wh bound a period)
        s.interval(1, 0, 1, 1000)
    # the boot's commit (blank journal), then the period's: each commit's next step asks
    # again (_FORCE), the periodic deadline once more; the task's own question each time
    assert s.commits == 4, s.commits
    assert len(asked) <= 4 * s.commits, len(asked)


def _pair(cfgs, clk, regs, met):
    new = Profiles(regs, met, clk, cfgs)
    old = [LoadProfile(regs, met, clk, c, name="P.0%d" % (i + 1)) for i, c in enumerate(cfgs)]
    new.start()
    for p in old:
        p.start()
    return new, old


def test_profiles_take_flag_and_arm_as_each_profile_asked_each_second_did():
    clk = ManualClock(t0=10 ** 8)
    regs = Registers(25600, 25600, 25600)
    met = Met()
    cfgs = [{"period_s": 60, "channels": ["1.29", "2.29"]},
            {"period_s": 900, "channels": ["1.29", "1.5"]}]
    new, old = _pair(cfgs, clk, regs, met)
    due = []
    new.set_on_due(lambda: due.append(1))
    rnd = _Lcg(3)
    for i in range(3 * 3600):
        clk.now += 1000
        regs.whole[A_PLUS] += rnd.below(5)
        # a metrology fault of a step or a few (between boundaries, never at one served by
        # the task: only the latch carries it to the row), the RTC invalid for a while
        met.ok = not (i % 700 == 333 or 1500 <= i < 1503)
        clk.rtc_valid = not (4000 <= i < 4002)
        if i == 6000:
            clk.set_time(clk.time() + 45)  # a clock set (the app wakes the profile task)
        new.interval(1, 0, 1, 1000)
        for p in old:
            p.interval(1, 0, 1, 1000)
        if due or i == 6000:
            del due[:]
            new.service()
            for p in old:
                p.service()
    new.power_down()
    for p in old:
        p.power_down()
    got = [list(p.iter_rows()) for p in new.items]
    want = [list(p.iter_rows()) for p in old]
    assert got == want
    flags = [r[1] for r in got[1]]
    assert any(f & bp.ST_DATA_INVALID for f in flags), flags
    assert any(f & bp.ST_CLOCK_INVALID for f in flags), flags
    assert any(f & bp.ST_CLOCK_ADJUSTED for f in flags), flags


def test_profiles_latch_a_fault_between_boundaries_into_the_row_it_ends():
    clk = ManualClock(t0=10 ** 8)  # (boundaries at +800 s, +1700 s)
    regs = Registers(25600, 25600, 25600)
    met = Met()
    new = Profiles(regs, met, clk, [{"period_s": 900, "channels": ["1.29"]}])
    new.start()
    new.set_on_due(new.service)  # the profile task, right after the step
    for i in range(2 * 900):
        clk.now += 1000
        regs.whole[A_PLUS] += 1
        met.ok = i != 1200  # one bad step inside the second interval
        new.interval(1, 0, 1, 1000)
    rows = list(new.items[0].iter_rows())
    assert [r[1] & bp.ST_DATA_INVALID for r in rows[-2:]] == [0, bp.ST_DATA_INVALID], rows


def test_commit_policy_quiet_gives_the_time_and_energy_its_answer_holds():
    p = journal.CommitPolicy(period_s=300, min_gap_s=10, max_unsaved_wh=200)
    assert p.quiet_s(0, 0) == 0, "no commit yet: due at once"
    p.mark(100)
    assert (p.quiet_s(150, 50), p.quiet_wh(150)) == (250, 200)
    assert p.quiet_s(105, 250) == 0, "the bound reached within the gap: ask each second"
    assert (p.quiet_s(400, 0), p.quiet_wh(400)) == (300, 1), "period over: any Wh"
    assert not p.due(105, journal.REASON_TARIFF)  # within the gap: pending
    assert p.quiet_s(106, 0) == 0
    q = journal.CommitPolicy(max_unsaved_wh=None)
    q.mark(0)
    assert (q.quiet_s(10, 5), q.quiet_wh(10)) == (290, 1 << 29)


def test_profiles_across_the_ticks_wrap_with_stalls_and_three_periods():
    # three periods at once (the earliest boundary cached over all), a 32-bit port's ticks
    # wrapping mid-run, stalled steps of 5..8 s past a boundary, metrology / RTC faults and
    # clock sets at random: rows and wake-ups as each profile asked each second
    clk = _WrapClock(t0=10 ** 8 + 7)
    clk.now = (1 << 30) - 900 * 1000
    regs = Registers(25600, 25600, 25600)
    met = Met()
    cfgs = [{"period_s": 60, "channels": ["1.29", "2.29"]},
            {"period_s": 900, "channels": ["1.29", "1.5"]},
            {"period_s": 300, "channels": ["1.29"]}]
    new, old = _pair(cfgs, clk, regs, met)
    due = []
    new.set_on_due(lambda: due.append(1))
    for p in old:
        p.on_due = lambda: due.append(2)
    rnd = _Lcg(11)
    for i in range(2500):
        r = rnd.below(200)
        clk.now += 1000 + rnd.below(11) - 5 + (4000 + rnd.below(4000) if r == 0 else 0)
        regs.whole[A_PLUS] += rnd.below(5)
        met.ok = rnd.below(300) != 0
        clk.rtc_valid = rnd.below(500) != 0
        if r == 1:
            clk.set_time(clk.time() + rnd.below(200) - 100)
        new.interval(1, 0, 1, 1000)
        for p in old:
            p.interval(1, 0, 1, 1000)
        assert 1 not in due or 2 in due, i  # (both or neither: each wake as before)
        assert 2 not in due or 1 in due, i
        if due or r == 1 or rnd.below(50) == 0:
            del due[:]
            new.service()
            for p in old:
                p.service()
        if i % 1100 == 700:  # a warning: the interval in progress closed provisionally
            new.power_down()
            for p in old:
                p.power_down()
    got = [list(p.iter_rows()) for p in new.items]
    want = [list(p.iter_rows()) for p in old]
    assert got == want
    assert len(got[0]) > 30, len(got[0])
