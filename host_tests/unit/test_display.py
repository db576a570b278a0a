"""firmware/tasks/display.py (docs/DISPLAY.md): start-up frames, the scroll button (short
press, 3..6 s alternate list, >= 6 s diagnostic list), the test switch and test mode
(firmware/meter/testmode.py: timeout, events, registers untouched, LED selection), list
configuration; firmware/meter/swid.py checksum; the IEC 62056-21 entries for test mode; the
virtual board's control channel commands.

Driven with fake time: ``poll(now_ms)`` on the real-time side, a discrete-event
VirtualClock (``--speed max``) for metering time. Runs under pytest and tools/mptest.py.
"""

import asyncio
import gc
import sys

import events
import lcd
from app import Meter
from meter import defaults, swid
from meter.catalogue import A_SHOW
from meter.status import ALARM_MASK, ERR_CONFIG, ERR_METROLOGY
from meter.testmode import SRC_COMMAND, SRC_SWITCH, SRC_TIMEOUT
from tasks import display

from boards.sim.board import Options, SimBoard
from simkit import StepTrace

KW = 1000000


class Dev:
    """LCD device: remembers the text of every frame shown."""

    def __init__(self):
        self.lines = []

    def show(self, frame):
        self.lines.append(lcd.frame_text(frame))

    @property
    def text(self):
        return self.lines[-1] if self.lines else ""


def _meter(**cfg_over):
    o = Options()
    o.quiet = True
    o.no_flash = True
    o.speed = 0  # discrete-event metering clock: moves only when a task sleeps on it
    board = SimBoard(o, trace=StepTrace([(0, KW, KW // 2)]))
    cfg = defaults.config()
    cfg.update(cfg_over)
    meter = Meter(board, cfg)
    dev = Dev()
    d = display.DisplayTask(dev, meter.catalogue, meter.settings, meter.testmode,
                            meter.status, meter.metering, board.btn_scroll, board.sw_test,
                            board.relay, ticks_ms=lambda: 0)
    meter.display = d
    return meter, d, dev


def _iec(meter):
    from ports.iec import IecMap

    b = meter.board
    return IecMap(meter.catalogue, meter.settings, lambda: b.seal.value() == 1, b.clock,
                  meter.log)


def _booted(**cfg_over):
    meter, d, dev = _meter(**cfg_over)
    d.poll(0)
    d.poll(3000)
    d.poll(6000)
    d.poll(9000)
    return meter, d, dev, 9000


def _press(d, t, ms=200, step=50):
    """Hold the scroll button ``ms`` from ``t`` (polling every ``step``); returns the time
    after the release has been polled."""
    btn = d._btn
    btn.set_input(1)
    end = t + ms
    while t < end:
        d.poll(t)
        t += step
    btn.set_input(0)
    d.poll(t)
    return t + step


def _ident(text):
    return text.split()[0] if text and not text.startswith(" ") else ""


def _has(text, ann):
    return ann in text.split()[1:]


def _events(meter, code):
    return [e for e in meter.log.entries() if e[1] == code]


# -- start-up and normal list ------------------------------------------------------------------

def test_start_up_segment_test_version_checksum_then_normal_list():
    meter, d, dev = _meter()
    d.poll(0)
    assert dev.text.startswith("8.8.8.   8.8.8.8.8.8.8.8.") and "TEST" in dev.text, dev.text
    d.poll(2950)
    assert dev.text.startswith("8.8.8."), "segment test held 3 s"
    d.poll(3000)
    assert dev.text.startswith("0.2.0") and "0.1.0" in dev.text, dev.text
    d.poll(6000)
    crc = swid.hex_text(swid.checksum_cached())  # frozen images: the build-time checksum
    assert dev.text.startswith("0.2.8") and crc in dev.text, (dev.text, crc)
    d.poll(9000)
    assert dev.text.startswith("1.8.0 ") and "kWh" in dev.text, dev.text
    assert d.mode == display.MODE_NORMAL


def test_press_during_start_up_ends_it():
    meter, d, dev = _meter()
    d.poll(0)
    _press(d, 100)
    assert dev.text.startswith("1.8.0 "), dev.text


def test_short_press_steps_the_normal_list_and_a_glitch_does_not():
    meter, d, dev, t = _booted()
    t = _press(d, t)
    assert _ident(dev.text) == "2.8.0", dev.text
    btn = meter.board.btn_scroll
    btn.set_input(1)  # one sample only: contact bounce / noise
    d.poll(t)
    btn.set_input(0)
    d.poll(t + 50)
    d.poll(t + 300)
    assert _ident(dev.text) == "2.8.0", ("a single pressed sample is not a press", dev.text)
    assert d.presses == 1


def test_normal_list_auto_scrolls():
    meter, d, dev, t = _booted()
    d.poll(t + 10000)
    assert _ident(dev.text) == "2.8.0", dev.text
    d.poll(t + 20000)
    assert _ident(dev.text) == "NT", "16.8.0 is shown as NT"


# -- alternate and diagnostic lists --------------------------------------------------------

def test_hold_3_to_6_s_alternate_list_one_pass():
    meter, d, dev, t = _booted()
    btn = meter.board.btn_scroll
    btn.set_input(1)
    for k in range(0, 3100, 50):
        d.poll(t + k)
    assert "ALt" in dev.text.replace(".", "") and _has(dev.text, "ALT"), (
        "prompt at 3 s", dev.text)
    for k in range(3100, 4000, 50):
        d.poll(t + k)
    btn.set_input(0)
    t += 4000
    d.poll(t)
    assert d.mode == display.MODE_ALT and _has(dev.text, "ALT"), dev.text
    seen = [dev.text]
    n = len(defaults.config()["alt_list"])
    for _ in range(n - 1):
        t = _press(d, t + 100)
        seen.append(dev.text)
    assert all(_has(s, "ALT") for s in seen), seen
    assert seen[0].startswith("8.8.8."), "segment test first"
    assert [_ident(s) for s in seen[1:]] == ["3.8.0", "4.8.0", "9.8.0", "10.8.0", "0.9.2",
                                             "0.9.1", "0.2.0", "0.2.8"], seen
    assert "16-01-01" in seen[5], ("date of the RTC (2016-01-01)", seen[5])
    t = _press(d, t + 100)
    assert d.mode == display.MODE_NORMAL, "one pass, then back to normal"
    assert _ident(dev.text) == "1.8.0" and not _has(dev.text, "ALT"), dev.text


def test_alternate_list_advances_by_itself_and_returns():
    meter, d, dev, t = _booted()
    t = _press(d, t, 3500)
    assert d.mode == display.MODE_ALT
    n = len(defaults.config()["alt_list"])
    for k in range(n - 1):
        t += 10000
        d.poll(t)
        assert d.mode == display.MODE_ALT and d.display.index == k + 1, (k, dev.text)
    t += 10000
    d.poll(t)
    assert d.mode == display.MODE_NORMAL and _ident(dev.text) == "1.8.0", dev.text


def test_only_the_list_shown_holds_items_in_ram():
    """RAM (issue 12): the alternate, diagnostic and test lists' items (a getter closure
    each, ~110 B on a 32-bit core) exist only while that list is shown; the normal list's
    always. A W1 of the alternate list while it is not shown builds nothing."""
    meter, d, dev, t = _booted()
    dl = d.display
    n_normal = len(defaults.config()["display_list"])

    def held():
        return (dl.items(lcd.LIST_AUTO), dl.items(lcd.LIST_ALT), dl.items(lcd.LIST_TEST))

    assert held() == (n_normal, 0, 0), held()
    meter.settings.set("alt_list", ["3.8.0", "4.8.0"])
    assert held() == (n_normal, 0, 0), held()
    t = _press(d, t, 3500)
    assert d.mode == display.MODE_ALT and held() == (n_normal, 2, 0), held()
    meter.settings.set("alt_list", ["3.8.0", "4.8.0", "9.8.0"])  # shown: rebuilt at once
    assert held() == (n_normal, 3, 0) and _ident(dev.text) != "", held()
    for _ in range(3):
        t = _press(d, t + 100)
    assert d.mode == display.MODE_NORMAL and held() == (n_normal, 0, 0), held()
    t = _press(d, t, 6500)
    assert d.mode == display.MODE_DIAG, dev.text
    assert held() == (n_normal, 1 + len(display.DIAG_LIST), 0), held()
    meter.testmode.enter(None, SRC_COMMAND)  # test mode from the diagnostic list
    d.poll(t)
    assert d.mode == display.MODE_TEST and held() == (n_normal, 0, len(display.TEST_LIST) + 1)
    meter.testmode.leave(SRC_COMMAND)
    d.poll(t + 50)
    assert d.mode == display.MODE_NORMAL and held() == (n_normal, 0, 0), held()


def test_hold_over_6_s_diagnostic_list():
    meter, d, dev, t = _booted()
    b = meter.board
    b.seal.set_input(1)
    b.cover.set_input(1)
    m = meter.metering
    m.instant_milli = {"V": 230050, "I": 4500, "IN": 4250, "P": -1000000, "Q": 0,
                       "S": 1035000, "PF": -966, "f": 49985, "angle": -15000}  # thousandths
    m.no_load = False
    m.ok = False
    btn = b.btn_scroll
    btn.set_input(1)
    for k in range(0, 6100, 50):
        d.poll(t + k)
    assert "dIAG" in dev.text, ("prompt at 6 s", dev.text)
    btn.set_input(0)
    t += 6500
    d.poll(t)
    assert d.mode == display.MODE_DIAG and "dIAG" in dev.text, dev.text
    assert not _has(dev.text, "ALT"), "the diagnostic list has no ALT annunciator"
    seen = []
    for _ in range(len(display.DIAG_LIST)):
        t = _press(d, t + 100)
        seen.append(dev.text)
    want = ["32.7.0   0000230.0 V", "31.7.0   00004.500 A", "91.7.0   00004.250 A",
            "14.7.0   000049.98 Hz", "13.7.0   -0000.966", "81.7.4   -000015.0",
            "C.5.0    0000020C", "F.F.0    00000001"]
    assert len(seen) == len(want), seen
    for i in range(len(want)):
        assert seen[i].startswith(want[i]), (seen[i], want[i])
    assert _has(seen[0], "EXP") and _has(seen[0], "ALARM"), seen[0]
    t = _press(d, t + 100)
    assert d.mode == display.MODE_NORMAL, dev.text


def test_dst_annunciator_while_summer_time():
    # issue 10 item 1: DST is shown (annunciator DST) while the clock's zone is in summer time
    from civil import seconds

    o = Options()
    o.quiet = True
    o.no_flash = True
    o.speed = 0
    board = SimBoard(o, trace=StepTrace([(0, KW, 0)]))
    board.billing_config = {"time_zone": {"offset_min": 60, "dst_rule": "eu"}}
    dev = Dev()
    now = [0]

    def boot():
        meter = Meter(board, defaults.config())
        d = display.DisplayTask(dev, meter.catalogue, meter.settings, meter.testmode,
                                meter.status, meter.metering, board.btn_scroll, board.sw_test,
                                board.relay, ticks_ms=lambda: 0)
        d.tariff = meter.tariffs
        for t in (0, 3000, 6000, 9000):  # the start-up frames
            d.poll(now[0] + t)
        now[0] += 9000
        return meter.catalogue, d

    cat, d = boot()

    def show(t):
        cat.write("0.9.2", t)  # the meter's own set (not a local port: no limit)
        cat.write("0.9.1", t)
        now[0] += 1000
        d._dirty = True
        d.poll(now[0])
        return dev.text

    assert not _has(show(seconds(2026, 1, 15, 12)), "DST"), dev.text  # winter: CET
    assert _has(show(seconds(2026, 7, 15, 12)), "DST"), dev.text  # summer: CEST
    # the EU transition: last Sunday of October 2026 (25th) at 01:00 UTC
    assert _has(show(seconds(2026, 10, 25, 0, 59, 59)), "DST"), dev.text
    assert not _has(show(seconds(2026, 10, 25, 1)), "DST"), dev.text
    # without a DST rule: never, in summer too (the meter restarted without one: the first
    # meter is gone first, as on a device, which holds one; tools/emu NETDUINO2)
    board.billing_config = None
    cat = d = None
    gc.collect()  # (the first meter's blocks free before the second is built: 96 KiB heap)
    cat, d = boot()
    assert d.tariff.zone.dst == 0, "no summer time without a DST rule"
    assert not _has(show(seconds(2026, 7, 15, 12)), "DST"), dev.text


def test_flags_words():
    meter, d, dev = _meter()
    b = meter.board
    m = meter.metering
    m.no_load = True
    assert meter.status.service_flags() == 0x002, hex(meter.status.service_flags())
    b.terminal_cover.set_input(1)
    b.magnet.set_input(1)
    b.power_fail.set_input(1)
    b.relay.value(0)
    meter.settings.set("test_led", "kvarh")
    st = meter.status
    assert st.service_flags() == 0x002 | 0x010 | 0x020 | 0x040 | 0x080 | 0x100
    m.ok = True
    meter.settings.status = "corrupt -> defaults"
    assert st.error_flags() == 0x02
    meter.settings.status = "blank -> defaults"
    assert st.error_flags() == 0


def test_error_flags_one_definition_lcd_and_readout():
    """F.F.0 is the same word on the LCD's diagnostic list and in the IEC readout, in every
    state, and ALARM is lit exactly when an alarm bit is set (issue 7, item 17)."""
    meter, d, dev, t = _booted()
    md = _iec(meter)
    m = meter.metering
    st = meter.status
    for ok, cst in ((True, None), (False, None), (True, "corrupt -> defaults"),
                    (False, "corrupt -> defaults"), (True, "blank -> defaults")):
        m.ok = ok
        meter.settings.status = cst
        word = st.error_flags()
        assert md.reader("F.F.0") == ("%08X" % word, None), (ok, cst)
        assert bool(d.flags() & lcd.ANN_ALARM) == bool(word & ALARM_MASK), (ok, cst)
        f = lcd.Frame()
        d.item("F.F.0")(f)
        assert lcd.frame_text(f).split()[:2] == ["F.F.0", "%08X" % word], lcd.frame_text(f)
    m.ok = False
    assert st.error_flags() & ERR_METROLOGY
    m.ok = True
    meter.settings.status = "corrupt -> defaults"
    assert st.error_flags() & ERR_CONFIG


# -- test mode -----------------------------------------------------------------------------

def test_test_switch_enters_and_leaves_test_mode_logged():
    meter, d, dev, t = _booted()
    sw = meter.board.sw_test
    sw.set_input(1)
    d.poll(t)
    assert d.mode == display.MODE_NORMAL, "debounce: two samples"
    d.poll(t + 50)
    assert d.mode == display.MODE_TEST and _has(dev.text, "TEST"), dev.text
    assert _ident(dev.text) == "1.8.0" and "00000.000" in dev.text, dev.text
    on = _events(meter, events.TEST_MODE_ON)
    assert len(on) == 1 and on[0][2] == SRC_SWITCH, on
    t = _press(d, t + 100)
    assert _ident(dev.text) == "2.8.0" and _has(dev.text, "TEST"), dev.text
    t = _press(d, t + 100, 7000)  # any hold only steps the test list
    assert d.mode == display.MODE_TEST and _ident(dev.text) == "3.8.0", dev.text
    sw.set_input(0)
    d.poll(t)
    d.poll(t + 50)
    assert d.mode == display.MODE_NORMAL and not _has(dev.text, "TEST"), dev.text
    off = _events(meter, events.TEST_MODE_OFF)
    assert len(off) == 1 and off[0][2] == SRC_SWITCH, off


def test_switch_on_at_power_up_is_no_edge():
    o = Options()
    o.quiet = True
    o.no_flash = True
    board = SimBoard(o, trace=StepTrace([(0, 0, 0)]))
    board.sw_test.set_input(1)
    meter = Meter(board, defaults.config())
    d = meter.display
    for k in range(5):
        d.poll(k * 50)
    assert d.mode == display.MODE_NORMAL, "the level at power-up is the baseline"


async def test_test_mode_times_out_in_metering_time():
    meter, d, dev, t = _booted(test_mode_minutes=2)
    clock = meter.board.clock
    tm = meter.testmode
    tm.enter()
    assert tm.minutes_left() == 2
    await clock.sleep_ms(119000)
    d.poll(t)
    assert d.mode == display.MODE_TEST and tm.minutes_left() == 1
    tm.enter()  # again: restarts the timeout, no second event
    await clock.sleep_ms(119000)
    d.poll(t + 50)
    assert d.mode == display.MODE_TEST
    await clock.sleep_ms(1000)
    d.poll(t + 100)
    assert d.mode == display.MODE_NORMAL and not _has(dev.text, "TEST"), dev.text
    on = _events(meter, events.TEST_MODE_ON)
    off = _events(meter, events.TEST_MODE_OFF)
    assert len(on) == 1 and on[0][2] == SRC_COMMAND, on
    assert len(off) == 1 and off[0][2] == SRC_TIMEOUT, off
    assert off[0][0] - on[0][0] == 239, ("RTC seconds between the events", on, off)
    clock.stopped = True


def test_test_mode_high_resolution_and_registers_untouched():
    meter, d, dev, t = _booted()
    regs = meter.registers
    regs.whole[0] = 123456  # 123.456 kWh: too long for Wh with 3 decimals on 8 digits
    before = regs.snapshot()
    meter.testmode.enter(5)
    assert regs.snapshot() == before, "entering test mode writes no register"
    d.poll(t)
    assert dev.text.startswith("1.8.0    00000.000 ") and _has(dev.text, "TEST"), dev.text
    regs.whole[0] += 1  # one more Wh metered during the test
    regs.add(20000, 0, 20000)  # plus 0.84 Wh (reference front end), through the registers
    d.poll(t + 250)
    delta = regs.snapshot()["1.8.0"] - before["1.8.0"]
    assert 1500 < delta < 2000, delta
    want = "%05d.%03d" % (delta // 1000, delta % 1000)
    assert dev.text.startswith("1.8.0    " + want), (dev.text, want)
    mid = regs.snapshot()
    meter.testmode.leave()
    d.poll(t + 500)
    assert regs.snapshot() == mid, "leaving test mode writes no register"
    assert dev.text.startswith("1.8.0    00123.457"), ("normal list: kWh", dev.text)


def test_led_selection_and_limits():
    meter, d, dev, t = _booted()
    tm = meter.testmode
    assert not tm.led_reactive()
    meter.settings.set("test_led", "kvarh")
    assert not tm.led_reactive(), "only in test mode"
    tm.enter()
    assert tm.led_reactive()
    for _ in range(7):
        t = _press(d, t + 100)
        if _ident(dev.text) == "C.91.3":
            break
    assert "LEd" in dev.text and _has(dev.text, "kvarh"), dev.text
    meter.settings.set("test_led", "kWh")
    assert not tm.led_reactive()
    for bad in (0, 256):
        for fn in (tm.enter, lambda v: meter.settings.set("test_mode_minutes", v)):
            try:
                fn(bad)
                assert False, "%r accepted" % bad
            except ValueError:
                pass
    meter.settings.set("test_mode_minutes", 255)
    assert tm.minutes == 255


async def test_led_task_follows_the_selection():
    meter, d, dev, t = _booted()
    b = meter.board
    m = meter.metering
    o = meter.output
    m.ok = True
    m.no_load = False
    o.due = 2
    o.var_due = 3
    meter.settings.set("test_led", "kvarh")
    meter.testmode.enter()
    task = asyncio.create_task(meter.led.run())
    await b.clock.sleep_ms(3000)
    assert b.led_kvarh.rises == 3 and b.led_kwh.rises == 0, (b.led_kvarh.rises,
                                                             b.led_kwh.rises)
    assert o.due == 0, "active pulses not shown are dropped"
    meter.testmode.leave()
    o.due = 2
    o.var_due = 5
    o.interval(0, 0, 0, 1000)  # a step that leaves them owed wakes the LED task
    await b.clock.sleep_ms(3000)
    assert b.led_kwh.rises == 2 and b.led_kvarh.rises == 3, (b.led_kwh.rises,
                                                            b.led_kvarh.rises)
    assert o.var_due == 0
    task.cancel()
    b.clock.stopped = True
    await asyncio.sleep_ms(0)


# -- list configuration --------------------------------------------------------------------

def test_normal_list_configurable_and_validated():
    meter, d, dev, t = _booted(display_list=["32.7.0", "1.8.0"])
    assert _ident(dev.text) == "32.7.0", dev.text
    cat = meter.catalogue
    ok = ["1.8.0"] + ["2.8.0"] * 63
    cat.check_list(ok, A_SHOW, True)
    assert len(d.build_list(ok)) == 64
    for bad, word in ((ok + ["1.8.0"], "1..64"), ([], "1..64"), (["2.8.0"], "1.8.0"),
                      (["1.8.0", "99.9.9"], "99.9.9"), ("1.8.0", "1..64"),
                      (["1.8.0", "C.1.0"], "C.1.0")):
        try:
            cat.check_list(bad, A_SHOW, True)
            assert False, "accepted %r" % (bad,)
        except ValueError as e:
            assert word in str(e), (bad, str(e))
    for code in cat.codes(A_SHOW):
        d.item(code)


def test_bad_list_configuration_falls_back_to_defaults_logged():
    meter, d, dev, t = _booted(display_list=["2.8.0"], alt_list=["nope"], test_mode_minutes=0)
    assert _ident(dev.text) == "1.8.0", dev.text
    assert meter.testmode.minutes == 30
    # one per setting, when the Meter checks the stored values
    assert len(_events(meter, events.CONFIG_DEFAULTS)) == 3, meter.log.entries()


# -- software identification ---------------------------------------------------------------

def test_checksum_is_crc32_of_the_metrology_files():
    import binascii

    crc = 0
    for name in swid.METROLOGY_MODULES:
        p = swid.module_file(name)
        path = name.replace(".", "/")
        assert p and (p.endswith(path + ".py") or p.endswith(path + "/__init__.py")), (name, p)
        with open(p, "rb") as f:
            crc = binascii.crc32(f.read(), crc)
    assert swid.checksum() == crc & 0xFFFFFFFF
    assert swid.checksum_cached() == swid.checksum()
    assert swid.checksum(("ade7953", "energy")) != swid.checksum()
    assert swid.checksum(("no_such_module_here",)) is None
    assert swid._crc32(b"123456789", 0) == 0xCBF43926, "CRC-32 check value"
    assert swid.hex_text(0xABCDEF01) == "AbCdEF01" and swid.hex_text(None) == "--------"
    assert swid.checksum_text() == "%08X" % swid.checksum()
    if sys.implementation.name != "micropython":
        import zlib

        assert zlib.crc32(b"abc") == swid._crc32(b"abc", 0)


# -- IEC 62056-21 entries -------------------------------------------------------------------

def test_iec_test_mode_commands_and_reads():
    from iec62056.session import ER_BAD_VALUE

    meter, d, dev, t = _booted()
    md = _iec(meter)
    out = {a: v for a, v, u in md.readout()}
    assert out["0.2.8"] == swid.checksum_text(), out
    assert md.reader("C.91.1") == ("0", "min")
    assert md.executor("C.91.1", "0", True) == ER_BAD_VALUE
    assert md.executor("C.91.1", "x", True) == ER_BAD_VALUE
    assert md.executor("C.91.1", "", True) is None, "no seal needed: display/LED mode"
    d.poll(t)
    assert d.mode == display.MODE_TEST and md.reader("C.91.1") == ("30", "min")
    assert md.reader("C.5.0")[0] == "%08X" % meter.status.service_flags()
    assert int(md.reader("C.5.0")[0], 16) & 1
    assert md.writer("C.91.3", "2", True) == ER_BAD_VALUE
    assert md.writer("C.91.3", "1", True) is None and meter.testmode.led_reactive()
    assert md.reader("C.91.3") == ("1", None)
    assert md.writer("C.91.4", "256", True) == ER_BAD_VALUE
    assert md.writer("C.91.4", "7", True) is None and md.reader("C.91.4") == ("7", "min")
    assert md.executor("C.91.2", "", True) is None
    d.poll(t + 50)
    assert d.mode == display.MODE_NORMAL
    assert md.executor("C.91.1", "3", True) is None and md.reader("C.91.1") == ("3", "min")
    vals = [e[2] for e in _events(meter, events.TEST_MODE_ON)]
    assert vals == [SRC_COMMAND, SRC_COMMAND], vals


# -- the virtual board's control channel ----------------------------------------------------

def test_control_channel_commands():
    from boards.sim.control import ControlServer

    meter, d, dev = _meter()
    b = meter.board
    c = ControlServer(b, 0)
    try:
        assert c.command("seal open") == "OK" and b.seal.value() == 1
        assert c.command("seal closed") == "OK" and b.seal.value() == 0
        assert c.command("test on") == "OK" and b.sw_test.value() == 1
        assert c.command("cover open") == "OK" and b.cover.value() == 1
        assert c.command("tcover open") == "OK" and b.terminal_cover.value() == 1
        assert c.command("magnet on") == "OK" and b.magnet.value() == 1
        assert c.command("down scroll") == "OK" and b.btn_scroll.value() == 1
        assert c.command("release scroll") == "OK" and b.btn_scroll.value() == 0
        assert c.command("press demand 0.05") == "OK" and b.btn_demand_reset.value() == 1
        import time

        time.sleep(0.1)
        c.poll()
        assert b.btn_demand_reset.value() == 0, "released when due"
        assert c.command("leds") == "kwh=0 kvarh=0 kwh_flashes=0 kvarh_flashes=0"
        inp = c.command("inputs")
        assert "test=1" in inp and "seal=0" in inp and "magnet=1" in inp, inp
        assert c.command("lcd") == ""
        d.poll(0)
        b.lcd.show(d.display.frame)
        assert c.command("lcd").startswith("8.8.8."), c.command("lcd")
        for bad in ("seal ajar", "press", "hold scroll", "press knob", "press scroll x",
                    "frobnicate"):
            assert c.command(bad).startswith("ERR"), bad
    finally:
        c.close()


def test_button_scan_allocates_no_frame():
    # _scan_button runs at every 50-ms poll: 12 machine words of frame (taken from the heap
    # at every call by MicroPython, py/objfun.c VM_MAX_STATE_ON_STACK), also while held
    from test_frames import _allocated

    meter, d, dev, t = _booted()
    now = [t]
    d._btn.set_input(1)
    d._scan_button(t)  # pressed: the press time taken

    def pre():
        now[0] += 5  # held, short of the alternate list's prompt

    got = _allocated(lambda: d._scan_button(now[0]), calls=100, before=pre)
    if got is None:
        return
    assert got == 0, got
