"""The virtual board's option parser, JSON numbers and terminal LCD width (boards/sim/board.py,
boards/sim/lcd_term.py). Runs under CPython and MicroPython."""

import io

import lcd
from boards.sim.options import HelpRequested, UsageError, parse_args
from boards.sim.report import milli_text, summary
from boards.sim.clock import EPOCH_2016, VirtualClock
from boards.sim.lcd_term import WIDTH, TermLCD, fit


def _usage(argv):
    try:
        parse_args(argv)
    except UsageError as e:
        return e
    raise AssertionError("accepted: %r" % (argv,))


def test_valid_options():
    o = parse_args(["--speed", "max", "--duration", "0.5", "--json", "--quiet"])
    assert o.speed == 0 and o.duration == 0.5 and o.json and o.quiet
    assert parse_args(["--speed", "3600"]).speed == 3600
    assert parse_args(["--speed", "0"]).speed == 0
    assert parse_args(["--speed", "1e6"]).speed == 1e6
    assert parse_args(["--start", "2016-01-01T00:00:00Z"]).start == EPOCH_2016
    assert parse_args(["--start", "2016-01-01"]).start == EPOCH_2016
    assert parse_args(["--start", "2016-01-01 00:01"]).start == EPOCH_2016 + 60
    assert parse_args(["--start", "504921600"]).start == EPOCH_2016
    assert parse_args(["--rs485-bus", "127.0.0.1:4100"]).rs485_bus == ("127.0.0.1", 4100)
    o = parse_args(["--flash", "x.img", "--off-time", "3600", "--rtc-battery", "flat"])
    assert o.off_time == 3600 and o.rtc_battery == "flat" and o.flash == "x.img"
    assert parse_args([]).start is None, "no --start: the kept RTC state or the default"


def test_help_is_a_constant_not_a_docstring():
    # MicroPython drops docstrings: __doc__ raised NameError
    e = _usage(["--speed", "3", "-h"])
    assert isinstance(e, HelpRequested) and str(e).startswith("usage:")
    for ln in str(e).split("\n"):
        assert len(ln) <= 79, ln


def test_bad_values_name_option_and_value():
    for argv in (["--speed", "inf"], ["--speed", "nan"], ["--speed", "-0.5"],
                 ["--duration", "nan"], ["--duration", "1e999"], ["--optical-tcp", "99999"],
                 ["--commit-s", "2.5"], ["--start", "2016-01-01T25:00"], ["--voltage", "x"]):
        e = _usage(argv)
        assert not isinstance(e, HelpRequested)
        assert argv[0] in str(e) and repr(argv[1]) in str(e), str(e)
    assert "needs a value" in str(_usage(["--json", "--speed"]))
    assert "unknown option --frob" in str(_usage(["--frob"]))
    assert "needs a value" in str(_usage(["--load", "--quiet"]))


def test_every_model_fault_is_reachable_from_the_command_line():
    # the ADE7953 model has 7 fault kinds; `make sim --fault` accepted only 3 of them
    from boards.sim.ade7953_model import FAULTS, ONE_SHOT

    assert len(FAULTS) == 7 and set(ONE_SHOT) < set(FAULTS)
    for kind in FAULTS:
        o = parse_args(["--fault", kind, "--fault-at", "150"])
        assert o.fault == kind and o.fault_at == 150, kind
        if kind in ONE_SHOT:  # once, at a time: from power-up it would change nothing
            e = _usage(["--fault", kind])
            assert "--fault-at" in str(e) and kind in str(e), str(e)
        else:
            assert parse_args(["--fault", kind]).fault == kind
        assert kind in str(_usage(["-h"])), "--help names %s" % kind
    e = _usage(["--fault", "melted"])
    assert "melted" in str(e) and "rstread" in str(e), str(e)


def test_milli_text_is_exact():
    for m in range(-3000, 200000, 7):
        t = milli_text(m)
        whole, frac = t.split(".")
        assert len(frac) == 3, t
        assert int(whole.lstrip("-") or "0") * 1000 + int(frac) == abs(m), (m, t)
        assert t.startswith("-") == (m < 0), (m, t)
    assert milli_text(8499) == "8.499" and milli_text(-5) == "-0.005"
    assert milli_text(0) == "0.000" and milli_text(10 ** 12 + 1) == "1000000000.001"


def test_summary_fits_80_columns():
    regs = {k: 9999999999 for k in ("1.8.0", "2.8.0", "3.8.0", "4.8.0", "5.8.0", "6.8.0",
                                    "7.8.0", "8.8.0", "9.8.0", "10.8.0", "16.8.0")}
    clock = VirtualClock(0, valid=False, note="x", start_ms=0)
    text = summary(regs, clock, 123456)
    assert "INVALID" in text and "9999999.999" in text, text
    for ln in text.split("\n"):
        assert len(ln) <= 80, ln


def _all_ann_frame():
    f = lcd.Frame()
    f.ident = "8.8.8."
    for i in range(lcd.DIGITS):
        f.cells[i] = 0xFF
    f.ann = (1 << lcd.ANN_COUNT) - 1
    return f


def test_term_lcd_fits_80_columns_and_keeps_its_height():
    s = io.StringIO()
    t = TermLCD(stream=s)
    t.show(_all_ann_frame())  # the segment test: every annunciator lit
    first = s.getvalue()
    rows = first.split("\n")[:-1]
    assert len(rows) == 5, rows  # header wrapped onto two lines + three art rows
    for r in rows:
        assert len(r.split("\x1b[2K")[-1]) <= WIDTH, r
    small = lcd.Frame()
    small.ident = "1.8.0"
    small.ann = lcd.ANN_KWH
    t.show(small)
    second = s.getvalue()[len(first):]
    assert second.startswith("\x1b[5A"), repr(second[:10])  # up over the whole last picture
    assert second.count("\n") == 5, ("the left-over line is cleared", repr(second))
    big = _all_ann_frame()
    big.ann &= ~lcd.ANN_KWH
    t.show(big)
    third = s.getvalue()[len(first) + len(second):]
    assert third.startswith("\x1b[5A") and third.count("\n") == 5, repr(third[:20])


def test_fit():
    assert fit("1.8.0    00012.345 kWh IMP T1") == ["1.8.0    00012.345 kWh IMP T1"]
    lines = fit("a " * 60)
    assert len(lines) == 2 and all(len(x) <= WIDTH for x in lines), lines
    assert lines[1].startswith("        a"), lines
    assert fit("x" * 100) == ["x" * WIDTH, " " * 8 + "x" * 21]


def test_device_address_is_checked_on_the_command_line():
    # --address "A!B" (or a serial with "/" used as the address) crashed the port task's
    # start-up with a traceback ("ValueError: address char")
    for argv in (["--address", "A!B"], ["--address", "a_b"], ["--address", "x" * 33]):
        e = str(_usage(argv))
        assert "--address" in e and repr(argv[1]) in e and "letters and digits" in e, e
    e = str(_usage(["--serial", "SIM/01", "--optical-tcp", "4001"]))
    assert "--serial" in e and "'SIM/01'" in e and "--address" in e, e
    assert parse_args(["--serial", "SIM/01"]).serial == "SIM/01", "no port: any serial"
    o = parse_args(["--serial", "SIM/01", "--address", "7", "--rs485-bus", "127.0.0.1:4100"])
    assert o.address == "7"


def test_broker_and_network_outage_options():
    o = parse_args(["--broker", "10.0.0.5:1884", "--network-outage", "3600:7200"])
    assert o.broker == ("10.0.0.5", 1884) and o.network_outage == (3600, 7200)
    assert parse_args([]).broker is None and parse_args([]).network_outage is None
    for argv, want in ((["--broker", "localhost"], "use HOST:PORT"),
                       (["--broker", "h:0"], "--broker"), (["--broker", ":1883"], "HOST:PORT"),
                       # what a new user tries: taken as host names, retried quietly forever
                       (["--broker", "mqtt://localhost:1883"], "no scheme"),
                       (["--broker", "::1"], "no scheme"), (["--broker", "a b:1883"], "name"),
                       (["--broker", 'a"b:1883'], "name"),
                       (["--network-outage", "5"], "A:B"),
                       (["--network-outage", "9:3"], "B must be after A"),
                       (["--network-outage", "x:3"], "--network-outage")):
        e = _usage(argv)
        assert want in str(e) and argv[1] in str(e), (argv, str(e))
