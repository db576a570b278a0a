"""The clock-set limit per period (lib/billing/clocklimit.py, wired in the OBIS catalogue for
the local ports): at most N sets and a total shift per day or billing period while the seal
is closed; a refused set is logged CLOCK_SET_REFUSED naming why and answered ER09; the
allowed sets keep their CLOCK_SET event and audit entry (old / new time); the budget survives
a restart (rebuilt from the audit trail); a hostile client's flood of sets moves the clock
by at most the budget."""

from billing import config
from billing.clocklimit import REASON_SETS, REASON_SHIFT, ClockLimit
from billing.localtime import RULE_EU, Zone
from billing.period import Schedule
from civil import seconds

import events

T0 = seconds(2026, 3, 10, 12)
# tools/emu: tests that need the sim board's flash image outside the heap (module docstring
# of tools/emu/emu_host_only.py)
_NOR = ("the virtual board's 1 MiB NOR-flash image (a flash chip on a device) has no room "
        "outside the heap: the core has 128 KiB of SRAM in all")
EMU_HOST_ONLY = {"test_hostile_flood_of_clock_sets_over_the_optical_port":
                 ("flashmem", 1024 * 1024, _NOR)}


def test_sets_and_shift_per_local_day():
    z = Zone(60, RULE_EU)  # CET: the local day starts at 23:00 UTC
    lim = ClockLimit(3, 100, "day", z)
    t = T0
    for _k in range(3):
        assert lim.check(t, t + 10) == 0
        lim.record(t, t + 10)
        t += 3600
    assert lim.check(t, t + 1) == REASON_SETS
    assert lim.left(t) == (0, 70)
    # 22:59:59 UTC is still the same local day; 23:00 UTC is the next one
    end = seconds(2026, 3, 10, 23) - 1
    assert lim.check(end, end + 1) == REASON_SETS
    assert lim.check(end + 1, end + 2) == 0 and lim.left(end + 1) == (3, 100)
    lim.record(end + 1, end + 81)  # next day: 80 s
    assert lim.check(end + 200, end + 221) == REASON_SHIFT  # 80 + 21 > 100
    assert lim.check(end + 200, end + 220) == 0  # exactly the budget
    # a set back across midnight does not reopen the previous day's fresh budget
    lim.record(end + 10, end - 5)
    assert lim.sets == 2 and lim.shift == 95 and lim.check(end - 5, end + 1) == REASON_SHIFT


def test_billing_period_and_free_sets_of_an_invalid_clock():
    lim = ClockLimit(2, 60, "billing", Zone(), Schedule(1, 0))
    t = seconds(2026, 3, 2)
    lim.record(t, t + 30)
    lim.record(t + 86400 * 20, t + 86400 * 20 + 30)
    assert lim.check(t + 86400 * 25, t + 86400 * 25 + 1) == REASON_SETS
    nxt = seconds(2026, 4, 1)
    assert lim.check(nxt, nxt + 60) == 0  # a new billing period
    # an invalid clock (RTC lost its time) is set freely, date then time
    lim2 = ClockLimit(1, 60)
    lim2.record(T0, T0 + 10)
    assert lim2.check(T0 + 20, T0 + 21) == REASON_SETS
    assert lim2.check(0, T0, valid=False) == 0
    lim2.record(0, T0, valid=False)
    assert lim2.check(T0, T0 + 40000) == 0, "the completing set (the other half) is free"
    lim2.record(T0, T0 + 40000)
    assert lim2.check(T0 + 40000, T0 + 40001) == REASON_SETS, "only one completing set"
    assert lim2.shift == 10, "a set beyond the budget alone counts no shift"


def test_config_clock_field():
    c = config.load({"clock": {"max_sets": 2, "max_shift_s": 3600, "period": "billing"}})
    assert (c.clock_max_sets, c.clock_max_shift_s, c.clock_period) == (2, 3600, "billing")
    d = config.load(None)
    assert (d.clock_max_sets, d.clock_max_shift_s, d.clock_period) == (4, 900, "day")
    for bad, field in (({"max_sets": 0}, "clock.max_sets"), ({"period": "week"}, "clock.period"),
                       ({"max_shift_s": "1"}, "clock.max_shift_s"), ({"x": 1}, "clock.x")):
        try:
            config.load({"clock": bad})
        except ValueError as e:
            assert str(e).startswith(field), e
        else:
            raise AssertionError(bad)


def _hhmmss(t):
    from iec62056.codec import date_time_text

    return date_time_text(t)[1]


def test_hostile_flood_of_clock_sets_over_the_optical_port():
    import test_storage as ts  # the whole meter on the virtual board

    board = ts._board(T0)
    m = ts._meter(board)
    data = m.iec_map()
    clk = board.clock
    start = clk.time()
    # built at the first set over a port, not at boot (RAM: docs/BENCHMARKS.md, session 9)
    assert m.catalogue.clock_limit is None and m.catalogue.clock_limit_uplink is None
    answers = []
    for _k in range(40):  # a probe sets the clock 60 s forward, again and again
        answers.append(data.writer("0.9.1", _hhmmss(clk.time() + 60), True, events.SRC_OPTICAL))
    assert answers[:4] == [None] * 4, answers[:6]
    assert m.catalogue.clock_limit is not None and m.catalogue.clock_limit_uplink is None
    assert all(a == 9 for a in answers[4:]), answers  # ER09
    assert clk.time() - start <= 240 + 2, "moved by the 4 allowed sets only"
    assert m.log.count(events.CLOCK_SET) == 4
    assert m.log.count(events.CLOCK_SET_REFUSED) == 36
    ref = [r for r in m.log.records() if r[1] == events.CLOCK_SET_REFUSED][0]
    assert ref[2] == REASON_SETS, ref
    # the allowed sets are in the audit trail with the old and the new time
    sets = [e for e in m.audit.entries() if e[2] == "0.9.1"]
    assert len(sets) == 4 and all(e[4] - e[3] in (59, 60, 61) for e in sets), sets
    # a large shift is refused as such (a fresh budget: the next day)
    clk.set_time(seconds(2026, 3, 11, 12))
    big = data.writer("0.9.1", "180000", True, events.SRC_OPTICAL)
    assert big == 9 and clk.time() < seconds(2026, 3, 11, 13)
    ref = [r for r in m.log.records() if r[1] == events.CLOCK_SET_REFUSED][-1]
    assert ref[2] == REASON_SHIFT, ref
    # with the seal open: allowed
    assert data.writer("0.9.1", "180000", False, events.SRC_OPTICAL) is None
    assert clk.time() >= seconds(2026, 3, 11, 18)
    # a restart keeps the budget: rebuilt from the persisted audit trail
    clk.set_time(seconds(2026, 3, 12, 9))
    for _ in range(4):
        assert data.writer("0.9.1", _hhmmss(clk.time() + 5), True, events.SRC_OPTICAL) is None
    from meter.audit import AuditTrail

    m.catalogue.audit = AuditTrail(board.partitions["audit"], clk, m.log)
    m.catalogue.clock_limit = ClockLimit(4, 900)  # as built at boot: not restored yet
    assert data.writer("0.9.1", _hhmmss(clk.time() + 5), True, events.SRC_OPTICAL) == 9
    assert data.writer("0.9.1", _hhmmss(clk.time() + 5), True, events.SRC_RS485) == 9
    # the uplink's head-end synchronisation is not a local port: not limited
    m.catalogue.write("0.9.1", clk.time() + 5, events.SRC_UPLINK)


def test_a_budget_not_rebuilt_is_not_taken_for_a_fresh_one():
    # The budget of the period is rebuilt from the audit trail at the first set over a
    # port (since session 9 also built then). A read of the trail that failed (a flash
    # read error, or memory running short for the first set) left the budget marked
    # rebuilt with none of the period's sets counted: the next sets were allowed again.
    import test_storage as ts  # the whole meter on the virtual board
    from meter.audit import AuditTrail

    board = ts._board(T0)
    m = ts._meter(board)
    data = m.iec_map()
    clk = board.clock
    for _ in range(4):  # the period's four sets
        assert data.writer("0.9.1", _hhmmss(clk.time() + 5), True, events.SRC_OPTICAL) is None
    au = AuditTrail(board.partitions["audit"], clk, m.log)  # a restart: built at first set
    m.catalogue.audit = au
    m.catalogue.clock_limit = None
    fail = [True]
    entries = au.entries

    def flaky():
        if fail[0]:
            fail[0] = False
            raise OSError(5)  # EIO: the flash read failed once
        return entries()

    au.entries = flaky
    try:
        got = data.writer("0.9.1", _hhmmss(clk.time() + 5), True, events.SRC_OPTICAL)
    except OSError:
        got = "raised"
    assert got is not None, "the clock was set without its budget"
    t = clk.time()
    assert data.writer("0.9.1", _hhmmss(clk.time() + 5), True, events.SRC_OPTICAL) == 9
    assert clk.time() - t < 5, "a fifth set in the period"
