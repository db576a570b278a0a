"""The event logs as an IDIS logbook (firmware/meter/eventstore.EventStore.logbook and the
``P.98`` lines read over IEC 62056-21): the IDIS log and code of each event, our own codes
at >= 128, both persisted rings merged by time, the power failure log with durations."""

from billing.localtime import RULE_EU, Zone
from boards.sim.norflash import NORFlash
from civil import seconds
from flashstore.flash import Partition
from meter.eventstore import EventStore

import events

T0 = seconds(2026, 7, 1, 12)


class Clock:
    def __init__(self, t):
        self.t = t

    def time(self):
        return self.t


def _store(nor, clock):
    log = events.EventLog(clock)
    return log, EventStore(Partition(nor, 0, nor.size), log, clock)


def test_logbook_split_codes_and_power_failures():
    nor = NORFlash(8 * 4096, 4096, 256)
    clk = Clock(T0)
    log, st = _store(nor, clk)  # POWER_UP at T0
    for dt, code, src, subj in ((10, events.COVER_OPEN, events.SRC_LOCAL, None),
                                (20, events.PROG_ENTER, events.SRC_OPTICAL, None),
                                (30, events.OVER_RANGE_START, events.SRC_METER, None),
                                (40, events.PARAM_CHANGED, events.SRC_OPTICAL, "C.90.1"),
                                (50, events.POWER_FAIL, events.SRC_METER, None)):
        clk.t = T0 + dt
        log.log(code, 7, None, src, subj)
    clk.t = T0 + 50 + 3600  # an hour without supply
    log, st = _store(nor, clk)  # POWER_UP again
    book = list(st.logbook())
    got = [(t - T0, lg, ic, c) for t, lg, ic, c, _v, _s, _j, _m in book]
    assert got == [(0, 0, 2, events.POWER_UP), (10, 1, 44, events.COVER_OPEN),
                   (20, 5, 128 + events.PROG_ENTER, events.PROG_ENTER),
                   (30, 4, 128 + events.OVER_RANGE_START, events.OVER_RANGE_START),
                   (40, 0, 47, events.PARAM_CHANGED), (50, 0, 1, events.POWER_FAIL),
                   (3650, 0, 2, events.POWER_UP)], got
    assert [b[0] - T0 for b in st.logbook(events.IDIS_FRAUD)] == [10]
    pf = list(st.logbook(events.IDIS_POWER_FAILURE))
    assert [(t - T0, v) for t, _l, _i, _c, v, _s, _j, _m in pf] == [(3650, 3600)], pf
    assert list(st.logbook(None, T0 + 15, T0 + 40))[-1][3] == events.PARAM_CHANGED
    z = Zone(60, RULE_EU)
    lines = list(st.p98_lines(z, events.IDIS_STANDARD, T0 + 40, T0 + 40))
    assert lines == ["P.98(1260701140040)(00)(47)(16)(7)(optical)(C.90.1)"], lines
    assert list(st.p98_lines(z, events.IDIS_POWER_FAILURE)) == [
        "P.98(1260701150050)(97)(1)(19)(3600)(meter)()"]
    for c in events.NAMES:  # every code has an IDIS code in 1..255 and a log
        assert 1 <= events.idis_code(c) <= 255 and events.idis_log(c) in events.IDIS_LOGS, c
