"""The passive tariff plan written over IEC 62056-21 in programming mode (issue 10 item 2:
firmware/meter/touprog.py, addresses C.92.1..C.92.9): pieces checked as written, the plan as
a whole at the install (E2 C.92.9), refused while sealed, audited, saved, activated at its
activation time (TOU_ACTIVATED) and kept over a restart; hostile clients: garbage, too many
switching times, tariff 7, out-of-range dates, floods of pieces."""

import events
from civil import seconds
from meter import touprog as T

from boards.sim.board import Options, SimBoard
from simkit import StepTrace

ER_BAD_VALUE = 5
ER_SEALED = 6
ER_FAILED = 9
# tools/emu: the whole meter on the sim board's flash image (tools/emu/emu_host_only.py)
_NOR = ("the virtual board's 1 MiB NOR-flash image (a flash chip on a device) has no room "
        "outside the heap: the core has 128 KiB of SRAM in all")
EMU_HOST_ONLY = {"test_sealed_refused_and_bad_plans_named": ("flashmem", 1024 * 1024, _NOR),
                 "test_install_activate_audit_and_restart": ("flashmem", 1024 * 1024, _NOR),
                 "test_written_over_the_optical_port_bytes": ("flashmem", 1024 * 1024, _NOR)}

# a two-rate plan: weekdays T2 06:00..22:00, weekends and Christmas (special day) T1
PLAN = (("C.92.3", "1;00:00=1,06:00=2,22:00=1"), ("C.92.3", "2;00:00=1"),
        ("C.92.2", "1;1,1,1,1,1,2,2"), ("C.92.1", "1;01-01;1"), ("C.92.4", "1;12-25;2"),
        ("C.92.4", "2;E+1;2"))


def test_pieces_parse_and_hostile_values_are_refused():
    assert T.parse(T.SEASON, "3;04-01;2") == (3, {"season_profile_name": "s3",
                                                  "season_start": "04-01", "week_name": "w2"})
    n, e = T.parse(T.DAY, "7;00:00=1,06:30:15=6")
    assert n == 7 and e["day_schedule"][1] == {"start_time": "06:30:15", "script_selector": 6}
    assert T.parse(T.SPECIAL, "4;O-2;1")[1] == {"index": 4, "day_id": 1, "easter_offset": -2,
                                               "computus": "orthodox"}
    assert T.parse(T.ACTIVATION, "2026-04-01 00:00")[1] == seconds(2026, 4, 1)
    thirteen = ",".join("%02d:00=1" % h for h in range(13))
    for kind, text, why in (
            (T.DAY, "garbage", "day profile"), (T.DAY, "1;" + thirteen, "13 switching times"),
            (T.DAY, "1;00:00=7", "tariff: 7 not in 1..6"), (T.DAY, "1;25:00=1", "start time"),
            (T.DAY, "1;00:00=1,00:00=2", None), (T.DAY, "256;00:00=1", "0..255"),
            (T.SEASON, "1;13-01;1", "13-01"), (T.SEASON, "1;02-30;1", "02-30"),
            (T.SEASON, "13;01-01;1", "1..12"), (T.SEASON, "1;01-01", "n;MM-DD;w"),
            (T.WEEK, "1;1,1,1,1,1,1", "6 day ids"), (T.WEEK, "1;1,1,1,1,1,1,x", "number"),
            (T.SPECIAL, "31;12-25;1", "1..30"), (T.SPECIAL, "1;E+231;1", "-80..230"),
            (T.SPECIAL, "1;2101-01-01;1", "2000..2099"), (T.SPECIAL, "1;2027-02-29;1", "leap"),
            (T.ACTIVATION, "2026-13-01 00:00", "13"), (T.ACTIVATION, "tomorrow", "YYYY"),
            (T.SPECIAL, "", "i;date;id"), (T.WEEK, ";;;;", "w;d1")):
        try:
            T.parse(kind, text)
            if why is None:  # (a duplicate start time: refused by the plan check)
                continue
        except ValueError as e:
            assert why is None or why in str(e), (text, str(e))
        else:
            raise AssertionError("accepted: %r" % text)


def _meter(board=None):
    import app

    if board is None:
        o = Options()
        o.quiet = True
        o.serial = "TOU00001"
        o.start = seconds(2026, 3, 2, 12)  # a Monday, 12:00 UTC
        board = SimBoard(o, trace=StepTrace([(0, 1000000, 0)]))
    m = app.Meter(board)
    return board, m, m.iec_map()


def _write(d, pieces, sealed=False):
    return [d.writer(a, v, sealed, events.SRC_OPTICAL) for a, v in pieces]


def test_sealed_refused_and_bad_plans_named():
    board, m, d = _meter()
    assert _write(d, PLAN[:1], sealed=True) == [ER_SEALED]
    assert d.executor("C.92.9", "", True, events.SRC_OPTICAL) == ER_SEALED
    assert d.executor("C.92.8", "", True, events.SRC_OPTICAL) == ER_SEALED
    # garbage, tariff 7, too many switching times: ER05, the reason readable, logged
    assert _write(d, [("C.92.3", "1;00:00=7")]) == [ER_BAD_VALUE]
    assert "7 not in 1..6" in d.reader("C.92.9")[0], d.reader("C.92.9")
    assert _write(d, [("C.92.3", "1;" + ",".join("%02d:00=1" % h for h in range(13)))]) == [
        ER_BAD_VALUE]
    assert _write(d, [("C.92.1", "\x7f")]) == [ER_BAD_VALUE]
    rec = [r for r in m.log.records() if r[1] == events.TOU_REFUSED]
    assert len(rec) == 3 and rec[0][2] == 3 and rec[0][4] == "C.92.3", rec
    # a plan without an activation time, then with a week naming a missing day profile
    assert _write(d, PLAN) == [None] * len(PLAN)
    assert d.executor("C.92.9", "", False, events.SRC_OPTICAL) == ER_BAD_VALUE
    assert "activation time" in d.reader("C.92.9")[0]
    assert _write(d, [("C.92.5", "2026-03-02 13:00"), ("C.92.2", "1;1,1,1,1,1,3,3")]) == [
        None, None]
    assert d.executor("C.92.9", "", False, events.SRC_OPTICAL) == ER_BAD_VALUE
    why = d.reader("C.92.9")[0]
    assert "week_profile_table_passive[0].saturday" in why and "day_id 3" in why, why
    # a special day on a missing day profile
    assert _write(d, [("C.92.2", "1;1,1,1,1,1,2,2"), ("C.92.4", "3;01-06;9")]) == [None, None]
    assert d.executor("C.92.9", "", False, events.SRC_OPTICAL) == ER_BAD_VALUE
    assert "special_days_table" in d.reader("C.92.9")[0] and m.tariffs.tc.calendar.passive is None
    assert m.settings.get("tou_program") is None and m.log.count(events.TOU_PROGRAMMED) == 0
    # a flood of pieces cannot grow the staging area beyond the limits
    res = _write(d, [("C.92.4", "%d;01-%02d;1" % (1 + k % 40, 1 + k % 28)) for k in range(200)])
    assert set(res) == {None, ER_BAD_VALUE} and len(m.touprog._lines) <= 12 + 12 + 7 + 30 + 1
    assert d.executor("C.92.8", "", False, events.SRC_OPTICAL) is None
    assert m.touprog._lines == {}


def test_install_activate_audit_and_restart():
    board, m, d = _meter()
    clk = board.clock
    tf = m.tariffs
    t0 = clk.time()
    assert tf.tc.tariff(t0) == 1  # the default plan: one tariff
    act = "2026-03-02 13:00"  # UTC here (no time zone configured)
    assert _write(d, PLAN + (("C.92.5", act),)) == [None] * (len(PLAN) + 1)
    assert d.executor("C.92.9", "", False, events.SRC_OPTICAL) is None
    assert d.reader("C.92.9")[0] == "ok"
    cal = tf.tc.calendar
    assert cal.passive is not None and cal.activation == seconds(2026, 3, 2, 13)
    assert tf.tc.tariff(t0) == 1, "not active before its activation time"
    # audited (old: none, new: the plan's CRC), logged, saved
    au = [e for e in m.audit.entries() if e[2] == "C.92.9"]
    crc = m.touprog.crc
    assert len(au) == 1 and au[0][3:6] == (0, crc, events.SRC_OPTICAL) and crc > 0, au
    assert [r[2] for r in m.log.records() if r[1] == events.TOU_PROGRAMMED] == [crc]
    assert m.settings["tou_program"]["active"] is False and not m.settings.pending
    # the activation time comes: the new plan, logged once, remembered
    clk.set_time(seconds(2026, 3, 2, 13, 0, 5))
    tf.clock_set()
    assert tf.tc.tariff(clk.time()) == 2  # a Monday, 13:00: T2
    assert tf.tc.tariff(seconds(2026, 3, 7, 13)) == 1  # a Saturday
    assert tf.tc.tariff(seconds(2026, 12, 25, 13)) == 1  # Christmas (special day)
    assert tf.tc.tariff(seconds(2026, 4, 6, 13)) == 1  # Easter Monday 2026 (E+1)
    assert tf.tc.tariff(seconds(2026, 4, 7, 13)) == 2
    m.billing.service()
    assert m.log.count(events.TOU_ACTIVATED) == 1
    assert m.settings["tou_program"]["active"] is True
    # a restart keeps the plan active, without a second activation event
    m.shutdown()
    m = d = None
    board2, m2, d2 = _meter(board)
    tf2 = m2.tariffs
    assert tf2.tc.tariff(seconds(2026, 3, 3, 13)) == 2 and tf2.tc.tariff(
        seconds(2026, 3, 3, 23)) == 1
    assert tf2.tc.calendar.passive is None and m2.touprog.crc == crc
    m2.billing.service()
    assert m2.log.count(events.TOU_ACTIVATED) == 0
    # the billing entries follow the plan's tariffs (1.8.2 exists now)
    assert m2.catalogue.entry("1.8.2") is not None


def test_written_over_the_optical_port_bytes():
    # the whole path: mode C frames through the meter's session (values with ; , = : -)
    import iec62056.codec as iec

    import test_protocols as tp

    board, m, d = _meter()
    opt = tp.Port(d, events.SRC_OPTICAL)
    assert opt.x(b"/?TOU00001!\r\n").startswith(b"/OMF5")
    assert opt.x(b"\x06051\r\n").startswith(b"\x01P0")
    assert opt.x(bytes(iec.build_command("P", 1, "(00000000)"))) == iec.ACK_MSG
    w = tp._cmd("W", 1, "C.92.3(1;00:00=1,06:00=2,22:00=1)")
    assert opt.x(w) == tp._err(ER_SEALED), "seal closed"
    board.seal.set_input(1)
    for a, v in PLAN + (("C.92.5", "2026-03-01 00:00"),):
        assert opt.x(tp._cmd("W", 1, "%s(%s)" % (a, v))) == iec.ACK_MSG, (a, v)
    assert opt.x(tp._cmd("W", 1, "C.92.3(1;00:00=7)")) == tp._err(ER_BAD_VALUE)
    out = opt.x(tp._cmd("R", 1, "C.92.9()"))
    assert b"7 not in 1..6" in out, out
    assert opt.x(tp._cmd("E", 2, "C.92.9()")) == iec.ACK_MSG
    assert opt.x(tp._cmd("R", 1, "C.92.9()"))[1:-2] == b"C.92.9(ok)"
    assert m.tariffs.tc.tariff(seconds(2026, 3, 2, 12)) == 2  # activation passed: in force
