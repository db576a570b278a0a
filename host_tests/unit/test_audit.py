"""The audit trail of metrological and billing parameters (firmware/meter/audit.py, wired
through the OBIS catalogue and the IEC map): counter, parameter, old and new value, time;
full -> changes refused; cleared only under the open seal after a complete readout; kept
over a restart; the counter never goes back."""

from billing.localtime import Zone
from boards.sim.norflash import NORFlash
from civil import seconds
from flashstore.flash import Partition
from meter.audit import CLEAR, AuditTrail

import events

T0 = seconds(2026, 5, 4, 10)


class Clock:
    def __init__(self):
        self.t = T0

    def time(self):
        return self.t


def test_trail_full_refuses_and_clears_after_a_readout():
    nor = NORFlash(4 * 4096, 4096, 256)
    part = Partition(nor, 0, nor.size)
    clk = Clock()
    log = events.EventLog(clk)
    au = AuditTrail(part, clk, log, capacity=5)
    for k in range(5):
        clk.t += 60
        au.record("0.9.1", T0 + k, T0 + k + 100, events.SRC_OPTICAL)
    assert au.full and log.count(events.AUDIT_FULL) == 1
    au2 = AuditTrail(part, clk, log, capacity=5)  # a restart keeps entries and counter
    assert au2.full and au2.counter == 5 and au2.used == 5
    got = list(au2.entries())
    assert got[0] == (1, T0 + 60, "0.9.1", T0, T0 + 100, events.SRC_OPTICAL), got[0]
    assert not au2.clear(), "not read out: refused"
    z = Zone()
    lines = list(au2.p99_lines(z))
    assert lines[0] == "P.99(%s)(1)(0.9.1)(%d)(%d)(optical)" % (z.vdew_stamp(T0 + 60), T0,
                                                                 T0 + 100), lines[0]
    assert len(lines) == 5 and au2.clear()
    assert not au2.full and au2.counter == 6
    au3 = AuditTrail(part, clk, log, capacity=5)
    assert [e[:3] for e in au3.entries()] == [(6, clk.t, CLEAR)] and au3.used == 0
    au3.record("0.3.0", 1000, 2000)
    assert au3.counter == 7 and not au3.clear(), "an entry since the readout"


def test_catalogue_records_clock_and_refuses_when_full():
    import test_storage as ts  # the whole meter on the virtual board
    from meter import catalogue as C

    board = ts._board()
    m = ts._meter(board)
    cat = m.catalogue
    au = m.audit
    assert au is not None and au.ring is not None  # the audit partition of the sim board
    au.capacity = 2
    t = board.clock.time()
    cat.write("0.9.1", t + 30, events.SRC_OPTICAL)
    e = list(au.entries())[-1]
    assert e[2] == "0.9.1" and e[3] == t and abs(e[4] - (t + 30)) <= 1, e
    cat.write("0.9.2", t + 60, events.SRC_OPTICAL)
    try:
        cat.write("0.9.1", t + 90, events.SRC_OPTICAL)
    except C.Failed:
        pass
    else:
        raise AssertionError("full trail: refused")
    assert m.log.count(events.AUDIT_REFUSED) == 1
    try:
        cat.execute("C.91.7", None, events.SRC_OPTICAL, False)
    except C.Sealed:
        pass
    else:
        raise AssertionError("sealed: no clear")
    try:
        cat.execute("C.91.7", None, events.SRC_OPTICAL, True)
    except C.Failed:
        pass
    else:
        raise AssertionError("not read out: no clear")
    data = m.iec_map()
    lines = list(data.profile("P.99", "")())
    assert len(lines) == 2 and "(0.9.2)" in lines[1], lines
    cat.execute("C.91.7", None, events.SRC_OPTICAL, True)
    assert m.log.count(events.AUDIT_CLEARED) == 1 and not au.full
    cat.write("0.9.1", t + 120, events.SRC_OPTICAL)  # allowed again
