"""The billing functions on the LCD (issue 10, docs/DISPLAY.md): historical values of the last
closed billing periods on the alternate list (``X*VZ``, ``X&VZ-n``: identifier ``X.vz``, the
snapshot's value), validated like every list code."""

from app import Meter
from meter import defaults
from meter.billing import show_code
from tasks import display

from boards.sim.board import Options, SimBoard
from simkit import StepTrace

import test_display as td

# tools/emu: the whole meter (and the sim board's flash image) (tools/emu/emu_host_only.py)
_NOR = ("the virtual board's 1 MiB NOR-flash image (a flash chip on a device) has no room "
        "outside the heap: the core has 128 KiB of SRAM in all")
EMU_HOST_ONLY = {"test_history_on_the_alternate_list": ("flashmem", 1024 * 1024, _NOR),
                 "test_last_events_on_the_alternate_list": ("flashmem", 1024 * 1024, _NOR)}


def _meter(alt, flash=True):
    o = Options()
    o.quiet = True
    o.no_flash = not flash
    o.speed = 0
    board = SimBoard(o, trace=StepTrace([(0, 0, 0)]))
    m = Meter(board, _cfg(alt))
    dev = td.Dev()
    d = display.DisplayTask(dev, m.catalogue, m.settings, m.testmode, m.status, m.metering,
                            board.btn_scroll, board.sw_test, board.relay, ticks_ms=lambda: 0)
    d.tariff = m.tariffs
    m.display = d
    for t in (0, 3000, 6000, 9000):  # the start-up frames
        d.poll(t)
    return m, d, dev, 9000


def _alt_texts(d, dev, t, n):
    t = td._press(d, t, 3500)
    assert d.mode == display.MODE_ALT
    seen = [dev.text]
    for _ in range(n - 1):
        t = td._press(d, t + 100)
        seen.append(dev.text)
    return seen, t


def test_show_codes():
    for c in ("1.8.0*VZ", "1.8.0&VZ", "2.8.0*VZ-1", "1.8.3&VZ-9", "2.8.6*VZ", "1.6.0*VZ",
              "1.6.4&VZ-2", "1.2.0*VZ", "9.8.0*VZ", "10.8.0&VZ-3", "5.8.0*VZ"):
        assert show_code(c), c
    for c in ("1.8.0", "1.8.0*VZ-0", "1.8.0*VZ-10", "1.8.0*1", "1.8.7*VZ", "3.8.0*VZ",
              "1.7.0*VZ", "1.6.0.T*VZ", "0.1.2*VZ", "1.8.0*vz", "3.8.1*VZ", "1.8*VZ", "*VZ",
              "1.6.10*VZ", ""):
        assert not show_code(c), c


def test_history_on_the_alternate_list():
    alt = ["1.8.0*VZ", "1.8.0&VZ-1", "2.8.0*VZ", "1.6.0&VZ", "1.8.1*VZ-2"]
    m, d, dev, t = _meter(alt)
    bl = m.billing
    regs = m.registers
    clk = m.board.clock
    # before any period closed: dashes, identifier of the period VZ would be
    seen, t = _alt_texts(d, dev, t, len(alt))
    assert seen[0].split()[:2] == ["1.8.0.00", "--------"], seen
    assert seen[1].split()[0] == "1.8.0.99", seen
    t = td._press(d, t + 100)  # (one pass: back to the normal list)
    wh = []
    for k in range(3):  # three closes, energy between them (A+ and A-)
        regs.add(4000000 * (k + 1), 0, 4000000 * (k + 1))
        regs.add(-1000000, 0, 1000000)
        clk.set_time(clk.time() + 7200)  # past the demand reset lockout
        assert bl.demand_reset() is not None
        wh.append((regs.milli(0) // 1000, regs.milli(1) // 1000))
    bl.service()  # the snapshots written to the billing partition
    assert bl.vz == 3 and wh[2][0] > wh[1][0] > wh[0][0] > 0, (bl.vz, wh)
    seen, t = _alt_texts(d, dev, t, len(alt))

    def kwh(v):
        return "%05d.%03d" % (v // 1000, v % 1000)

    f = [s.split() for s in seen]
    assert f[0][:2] == ["1.8.0.03", kwh(wh[2][0])] and "IMP" in f[0] and "kWh" in f[0], seen
    assert f[1][:2] == ["1.8.0.02", kwh(wh[1][0])], seen
    assert f[2][:2] == ["2.8.0.03", kwh(wh[2][1])] and "EXP" in f[2], seen
    assert f[3][0] == "1.6.0.03" and "W" in f[3], seen
    assert int(f[3][1]) == bl.historical("1.6.0*3") // 1000, seen
    assert f[4][:2] == ["1.8.1.01", kwh(bl.historical("1.8.1*1") // 1000)], seen
    assert all("ALT" in s for s in f), seen


def test_history_codes_written_over_iec_and_bad_ones_refused():
    m, d, dev, t = _meter(list(defaults.config()["alt_list"]), flash=False)
    data = m.iec_map()
    ok = "8.8.8,1.8.0&VZ,1.8.0&VZ-1,1.6.0&VZ"
    assert data.writer("C.90.5", ok, True) is None
    assert m.settings["alt_list"] == ok.split(","), m.settings["alt_list"]
    for bad in ("8.8.8,1.8.0&VZ-0", "8.8.8,3.7.0&VZ", "8.8.8,1.8.7&VZ", "1.8.0&VZ-12"):
        assert data.writer("C.90.5", bad, True) == 5, bad  # ER05
    # the normal list may hold them too (it must still hold 1.8.0)
    assert data.writer("C.90.4", "1.8.0,1.8.0&VZ", True) is None
    assert data.writer("C.90.4", "1.8.0&VZ", True) == 5
    # R1 of a relative historical value reads the same as the absolute one
    m.registers.add(3000000, 0, 3000000)
    assert m.billing.demand_reset() is not None and m.billing.vz == 1
    assert data.reader("1.8.0*VZ") == data.reader("1.8.0*1") == data.reader("1.8.0*01")
    assert data.reader("1.8.0*1")[0] != "0000000.000"


def test_last_events_on_the_alternate_list():
    # issue 10 item 6: the last events (code + date) on the LCD: P.98&n, the n-th newest
    import events
    from civil import seconds

    alt = ["P.98&1", "P.98&2", "P.98&3"]
    m, d, dev, t = _meter(alt)
    clk = m.board.clock
    clk.set_time(seconds(2026, 3, 10, 12))
    m.log.log(events.SEAL_OPEN, 0, None, events.SRC_LOCAL)
    clk.set_time(seconds(2026, 3, 11, 8))
    m.log.log(events.CLOCK_SET_REFUSED, 1, None, events.SRC_OPTICAL, "0.9.1")
    seen, t = _alt_texts(d, dev, t, len(alt))
    f = [s.split() for s in seen]
    assert f[0][:2] == ["E1.105", "26-03-11"], seen
    assert f[1][:2] == ["E2.57", "26-03-10"], seen
    assert f[2][0] == "E3.%d" % m.log.entries()[-3][1], seen  # (a boot event before them)
    # a new event moves them on; the items follow at once
    m.log.log(events.SEAL_CLOSED, 0, None, events.SRC_LOCAL)
    t = td._press(d, t + 100)  # back to normal
    seen, t = _alt_texts(d, dev, t, len(alt))
    assert [s.split()[0] for s in seen[:2]] == ["E1.58", "E2.105"], seen
    # persisted: a restart shows the same (the RAM log starts again)
    m.shutdown()
    board = m.board
    m = d = None
    m2 = Meter(board, _cfg(alt))
    dev2 = td.Dev()
    d2 = display.DisplayTask(dev2, m2.catalogue, m2.settings, m2.testmode, m2.status,
                             m2.metering, board.btn_scroll, board.sw_test, board.relay,
                             ticks_ms=lambda: 0)
    for k in (0, 3000, 6000, 9000):
        d2.poll(k)
    seen, t = _alt_texts(d2, dev2, 9000, len(alt))
    codes = [int(s.split()[0].split(".")[1]) for s in seen]
    assert events.SEAL_CLOSED in codes and events.POWER_UP in codes, seen  # then this boot
    k = codes.index(events.SEAL_CLOSED)
    assert seen[k].split()[1] == "26-03-11", seen


def _cfg(alt):
    cfg = defaults.config()
    cfg["alt_list"] = alt
    return cfg


def test_last_events_none_yet_and_bad_codes():
    from meter.catalogue import event_code

    assert [event_code(c) for c in ("P.98&1", "P.98&9", "P.98&0", "P.98&10", "P.98",
                                    "P.98*1", "P.99&1", 5)] == [1, 9, 0, 0, 0, 0, 0, 0]
    m, d, dev, t = _meter(["P.98&9"], flash=False)
    seen, t = _alt_texts(d, dev, t, 1)
    assert seen[0].split()[:2] == ["E9", "--------"], seen
    data = m.iec_map()
    assert data.writer("C.90.5", "8.8.8,P.98&1,P.98&2", True) is None
    assert data.writer("C.90.5", "8.8.8,P.98&0", True) == 5
