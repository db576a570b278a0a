# Display task: LCD lists and display modes, the scroll button and the test switch.
"""LCD task: display modes, the scroll button and the test switch.

Display practice: reference/metering-anchors.md 2.7 (lists, segment test, version and hash)
and 2.8 (test mode). The state annunciators (IMPORT/EXPORT arrow, T1, ALARM while the
metrology is faulty, RELAY when the relay is open) are OR-ed into every frame; ALT marks the
alternate list, TEST the test mode.

Modes:

- **start-up**: segment test, firmware version (identifier 0.2.0, ``app.VERSION``) and the
  metrology checksum (0.2.8, CRC-32 as 8 hex digits, firmware/swid.py), each ``BOOT_MS``
  (3 s, or the scroll time if shorter). A button action or the test switch ends it.
- **normal**: cfg ``display_list`` (1..64 codes of the catalogue below, must contain the
  billing register 1.8.0), auto-scrolled every ``scroll_ms`` (default 10 s). A short press
  shows the next item (and restarts the hold).
- **alternate** (ALT annunciator): scroll button held 3 s .. 6 s. cfg ``alt_list`` (1..64
  codes; default segment test, R+/R-, S import/export, date, time, version, checksum).
  Advances every ``scroll_ms`` or at a short press; after its last item the normal list
  returns (one pass).
- **diagnostic**: scroll button held 6 s or longer. A title ("dIAG"), then V (32.7.0),
  I_A (31.7.0, phase), I_B (91.7.0, neutral, channel B), f (14.7.0), PF (13.7.0, signed),
  phase angle of I relative to U (81.7.4, degrees), service flags (C.5.0) and error flags
  (F.F.0) as 8 hex digits. Stepped and ended like the alternate list (one pass).
- **test** (TEST annunciator): entered at a rising edge of the test switch or by command
  (IEC 62056-21 E2 C.91.1), left at its falling edge, by command (E2 C.91.2) or by itself
  ``test_mode_minutes`` (cfg, 1..255, default 30) minutes of metering time after entry
  (on a device that is real time; on the virtual board it follows ``--speed`` like the
  RTC). Entry and exit are logged: TEST_MODE_ON / TEST_MODE_OFF with value = source
  (0 timeout, 1 switch, 2 command). The test list auto-scrolls: A+ 1.8.0, A- 2.8.0 in Wh
  and R+ 3.8.0, R- 4.8.0 in varh, each with 3 decimals (high resolution; counted from the
  entry into test mode, so eight digits last for 99 999.999 Wh; no unit annunciator, the
  glass has no Wh), P (1.7.0, W, 1 decimal), Q (3.7.0, var, 1 decimal) and the selected
  test output (C.91.3: "LEd" with the kWh or kvarh annunciator). cfg ``test_led`` "kvarh"
  moves the test pulses to the kvarh LED (|reactive| energy, firmware/app.py led_task);
  "kWh" (default) keeps the kWh LED. Test mode is a display/LED mode only: it never writes
  the billing registers, which go on counting as usual. Any press steps the test list.

Button (``board.btn_scroll``, 1 = pressed), polled every ``POLL_MS`` (50 ms) of real time:
a press counts once two successive samples read pressed (debounce); the action happens at
the release, by the time held: < 3 s next item; 3 s .. < 6 s alternate list; >= 6 s
diagnostic list. While held, "ALt" appears at 3 s and "dIAG" at 6 s, naming what a release
would select. Choice documented here: 6 s and longer selects the diagnostic list (the issue
leaves it open); a hold in the alternate or diagnostic list restarts the chosen list.

Test switch (``board.sw_test``, 1 = on): debounced like the button; its level at power-up is
the baseline (a switch left on at power-up does not enter test mode; switch off and on).

Item catalogue (codes for ``display_list`` / ``alt_list``):
energy registers 1.8.0 .. 10.8.0, 16.8.0 (shown "NT") in kWh / kvarh / kVAh with
``energy_decimals``; 32.7.0 V, 31.7.0 A, 91.7.0 A (neutral), 1.7.0 P, 3.7.0 Q, 14.7.0 Hz,
13.7.0 PF, 81.7.4 angle; 0.9.1 time "hh-mm-ss" and 0.9.2 date "YY-MM-DD" (RTC, UTC);
0.2.0 version; 0.2.8 metrology checksum; C.5.0 service flags; F.F.0 error flags; 8.8.8 the
segment test.

Service flags (C.5.0) and error flags (F.F.0): firmware/status.py (one definition for the
LCD and the readout); ALARM is lit while any alarm bit of F.F.0 is set.

The LCD runs on real time (``time.ticks_ms``) even when the virtual board's metering clock
runs faster; only the test-mode timeout uses the metering clock.
"""

import asyncio
import time

from micropython import const

import events
import lcd
import status
import swid

POLL_MS = const(50)  # button / switch sampling period
TICK_MS = const(250)  # LCD refresh period (values re-read)
BOOT_MS = const(3000)  # each start-up frame
HOLD_ALT_MS = const(3000)  # scroll button held this long: alternate list
HOLD_DIAG_MS = const(6000)  # ... this long: diagnostic list
MAX_ITEMS = const(64)

MODE_NORMAL = const(0)
MODE_ALT = const(1)
MODE_DIAG = const(2)
MODE_TEST = const(3)
MODE_NAMES = ("normal", "alt", "diag", "test")

# test mode entry/exit sources (event value)
SRC_TIMEOUT = const(0)
SRC_SWITCH = const(1)
SRC_COMMAND = const(2)
_SRC_NAMES = ("timeout", "switch", "command")

_BOOT_SEG = const(0)
_BOOT_VERSION = const(1)
_BOOT_SUM = const(2)
_BOOT_DONE = const(3)

_ENERGY_UNITS = {"1.8.0": "kWh", "2.8.0": "kWh", "3.8.0": "kvarh", "4.8.0": "kvarh",
                 "5.8.0": "kvarh", "6.8.0": "kvarh", "7.8.0": "kvarh", "8.8.0": "kvarh",
                 "9.8.0": "kVAh", "10.8.0": "kVAh", "16.8.0": "kWh"}
# instantaneous values: code -> (key of Metering.instant, scale to thousandths, decimals,
# unit). P and Q in W / var with one decimal (the glass has no kW annunciator).
_INSTANT = {"32.7.0": ("V", 1000, 1, "V"), "31.7.0": ("I", 1000, 3, "A"),
            "91.7.0": ("IN", 1000, 3, "A"), "1.7.0": ("P", 1000, 1, "W"),
            "3.7.0": ("Q", 1000, 1, "var"), "14.7.0": ("f", 1000, 2, "Hz"),
            "13.7.0": ("PF", 1000, 3, ""), "81.7.4": ("angle", 1000, 1, "")}
CATALOGUE = tuple(_ENERGY_UNITS) + tuple(_INSTANT) + (
    "0.9.1", "0.9.2", "0.2.0", "0.2.8", "C.5.0", "F.F.0", "8.8.8")
DIAG_LIST = ("32.7.0", "31.7.0", "91.7.0", "14.7.0", "13.7.0", "81.7.4", "C.5.0", "F.F.0")


def _date_text(secs):
    # RTC seconds since 2000-01-01 (UTC) -> "YY-MM-DD"
    from civil import civil

    y, m, d = civil(secs)[:3]
    return "%02d-%02d-%02d" % (y % 100, m, d)


def _time_text(secs):
    s = secs % 86400
    return "%02d-%02d-%02d" % (s // 3600, s // 60 % 60, s % 60)


def _text_render(ident, text_fn, ann=0):
    """A render(frame) item showing ``text_fn()`` (str); "Err" if it raises or has no
    glyphs."""

    def render(frame):
        frame.ident = ident
        try:
            lcd.format_text(frame, text_fn(), True)
        except Exception:
            lcd.format_text(frame, "Err", True)
        frame.ann = ann

    return render


class DisplayTask:
    """The LCD task over a firmware.app.Meter (``meter``) and an LCD ``device``
    (``show(frame)``); ``cfg``: the configuration dict; ``ticks_ms``: real-time ms clock
    (default ``time.ticks_ms``; tests pass a fake). Drive with :meth:`run` or, in tests,
    :meth:`poll`."""

    def __init__(self, meter, device, cfg, ticks_ms=None):
        self.meter = meter
        self.device = device
        self.cfg = cfg
        self._ms = ticks_ms or time.ticks_ms
        b = meter.board
        self._btn = getattr(b, "btn_scroll", None)
        self._sw = getattr(b, "sw_test", None)
        self.mode = MODE_NORMAL
        self.test_minutes = self._cfg_int("test_mode_minutes", 30, 1, 255)
        self._test_base = {}
        self._test_end = 0
        normal = self._list_cfg("display_list", True)
        self._alt = self._list_cfg("alt_list", False)
        self._diag = [lcd.text_item("", "dIAG")] + [self.item(c) for c in DIAG_LIST]
        self.display = lcd.Display(auto=normal, alt=self._alt, test=self._test_items(),
                                   hold_ms=cfg.get("scroll_ms", 10000), return_ms=0,
                                   ticks_diff=time.ticks_diff)
        self._version = meter_version()
        self._boot = _BOOT_SEG
        self._boot_t = None
        self._step_t = 0
        self._tick_t = None
        self._dirty = True
        self._n_down = 0  # successive samples with the button pressed
        self._t_down = 0
        self._prompt = 0
        self._sw_state = self._sw.value() if self._sw is not None else 0
        self._sw_n = 0
        self.presses = 0  # button actions seen (short + long), for tests and diagnostics

    # -- configuration ---------------------------------------------------------------------

    def _cfg_int(self, key, dflt, lo, hi):
        v = self.cfg.get(key, dflt)
        if not isinstance(v, int) or not lo <= v <= hi:
            self.meter.log.log(events.CONFIG_DEFAULTS, 0, "%s %r not in %d..%d" % (key, v, lo, hi))
            return dflt
        return v

    def _list_cfg(self, key, billing):
        import defaults

        try:
            return self.build_list(self.cfg.get(key), billing)
        except ValueError as e:
            self.meter.log.log(events.CONFIG_DEFAULTS, 0, "%s: %s" % (key, e))
            return self.build_list(defaults.config()[key], billing)

    def build_list(self, codes, billing=False):
        """Display items for a list of catalogue codes (1..64 str). ``billing``: the list
        must contain 1.8.0 (the billing register is always in the normal list). Raises
        ValueError naming the problem."""
        if not isinstance(codes, (list, tuple)) or not 1 <= len(codes) <= MAX_ITEMS:
            raise ValueError("list must hold 1..%d codes" % MAX_ITEMS)
        if billing and "1.8.0" not in codes:
            raise ValueError("the billing register 1.8.0 must be in the list")
        return [self.item(c) for c in codes]

    def item(self, code):
        """The lib.lcd item for catalogue ``code`` (see the module doc); ValueError if
        unknown."""
        if not isinstance(code, str) or code not in CATALOGUE:
            raise ValueError("unknown display code %r" % (code,))
        meter = self.meter
        regs = meter.registers
        if code in _ENERGY_UNITS:
            ann = lcd.ANN_IMPORT if code == "1.8.0" else (
                lcd.ANN_EXPORT if code == "2.8.0" else 0)
            return ("NT" if code == "16.8.0" else code,
                    lambda: regs.value_milli(code) // 1000,  # mWh -> Wh = kWh/1000
                    self.cfg.get("energy_decimals", 3), ann, _ENERGY_UNITS[code])
        if code in _INSTANT:
            key, scale, dec, unit = _INSTANT[code]
            return (code, self._inst(key, scale), dec, 0, unit)
        clock = meter.board.clock
        if code == "0.9.1":
            return _text_render(code, lambda: _time_text(clock.time()))
        if code == "0.9.2":
            return _text_render(code, lambda: _date_text(clock.time()))
        if code == "0.2.0":
            return _text_render(code, meter_version)
        if code == "0.2.8":
            return _text_render(code, lambda: swid.hex_text(swid.checksum_cached()))
        if code == "C.5.0":
            return _text_render(code, lambda: swid.hex_text(status.service_flags(meter)))
        if code == "F.F.0":
            return _text_render(code, lambda: swid.hex_text(status.error_flags(meter)))
        return lcd.render_segment_test  # "8.8.8"

    def _inst(self, key, scale):
        m = self.meter.metering

        def get():
            v = m.instant
            if v is None:
                raise ValueError("no reading yet")
            return int(v[key] * scale)

        return get

    def _test_items(self):
        regs = self.meter.registers

        def delta(obis):
            return lambda: regs.value_milli(obis) - self._test_base.get(obis, 0)

        def led(frame):
            frame.ident = "C.91.3"
            lcd.format_text(frame, "LEd", True)
            frame.ann = lcd.ANN_KVARH if self.cfg.get("test_led") == "kvarh" else lcd.ANN_KWH

        return [("1.8.0", delta("1.8.0"), 3, 0, ""), ("2.8.0", delta("2.8.0"), 3, 0, ""),
                ("3.8.0", delta("3.8.0"), 3, 0, ""), ("4.8.0", delta("4.8.0"), 3, 0, ""),
                ("1.7.0", self._inst("P", 1000), 1, 0, "W"),
                ("3.7.0", self._inst("Q", 1000), 1, 0, "var"), led]

    def set_test_minutes(self, minutes):
        """Test-mode timeout, 1..255 min (cfg ``test_mode_minutes``); ValueError outside."""
        if not isinstance(minutes, int) or not 1 <= minutes <= 255:
            raise ValueError("test mode minutes must be 1..255")
        self.test_minutes = minutes
        self.cfg["test_mode_minutes"] = minutes

    def set_test_led(self, kvarh):
        """Select the test output: True = kvarh LED (|reactive|), False = kWh LED."""
        self.cfg["test_led"] = "kvarh" if kvarh else "kWh"
        self._dirty = True

    # -- test mode -------------------------------------------------------------------------

    def enter_test(self, minutes=None, source=SRC_COMMAND, now=None):
        """Enter test mode for ``minutes`` (1..255, default cfg ``test_mode_minutes``) of
        metering time; in test mode already: restart the timeout (no new event). Raises
        ValueError for minutes out of range."""
        if minutes is None:
            minutes = self.test_minutes
        if not 1 <= minutes <= 255:
            raise ValueError("test mode minutes must be 1..255")
        clock = self.meter.board.clock
        self._test_end = clock.ticks_add(clock.ticks_ms(), minutes * 60000)
        if self.mode == MODE_TEST:
            return
        self._test_base = self.meter.registers.snapshot()
        self.mode = MODE_TEST
        self._boot = _BOOT_DONE
        self.display.set_list(lcd.LIST_TEST, now)
        self._dirty = True
        self.meter.log.log(events.TEST_MODE_ON, source, "test mode on (%s), %d min"
                           % (_SRC_NAMES[source], minutes))

    def leave_test(self, source=SRC_COMMAND, now=None):
        """Leave test mode (nothing if not in it); logs TEST_MODE_OFF with ``source``."""
        if self.mode != MODE_TEST:
            return
        self.mode = MODE_NORMAL
        self.display.set_list(lcd.LIST_AUTO, now)
        self._dirty = True
        self.meter.log.log(events.TEST_MODE_OFF, source, "test mode off (%s)"
                           % _SRC_NAMES[source])

    def in_test_mode(self):
        """True while test mode is active (C.5.0 bit 0x001)."""
        return self.mode == MODE_TEST

    def led_reactive(self):
        """True while the test pulses go to the kvarh LED (test mode, cfg test_led kvarh)."""
        return self.mode == MODE_TEST and self.cfg.get("test_led") == "kvarh"

    def test_minutes_left(self):
        """Metering-time minutes (rounded up) until test mode ends; 0 outside test mode."""
        if self.mode != MODE_TEST:
            return 0
        clock = self.meter.board.clock
        ms = clock.ticks_diff(self._test_end, clock.ticks_ms())
        return (ms + 59999) // 60000 if ms > 0 else 0

    # -- annunciators ----------------------------------------------------------------------

    def flags(self):
        m = self.meter.metering
        f = lcd.ANN_T1
        inst = m.instant
        if inst is not None and not m.no_load:
            f |= lcd.ANN_EXPORT if inst["P"] < 0 else lcd.ANN_IMPORT
        if status.alarm(self.meter):
            f |= lcd.ANN_ALARM
        relay = self.meter.board.relay
        if relay is not None and not relay.value():
            f |= lcd.ANN_RELAY
        if self.mode == MODE_TEST:
            f |= lcd.ANN_TEST
        elif self.mode == MODE_ALT:
            f |= lcd.ANN_ALT
        return f

    # -- polling ---------------------------------------------------------------------------

    async def run(self):
        while True:
            self.poll(self._ms())
            await asyncio.sleep_ms(POLL_MS)

    def poll(self, now):
        """One poll at real time ``now`` (ms): inputs, timeouts, start-up frames, LCD."""
        d = self.display
        self._scan_switch(now)
        self._scan_button(now)
        if self.mode == MODE_TEST:
            clock = self.meter.board.clock
            if clock.ticks_diff(clock.ticks_ms(), self._test_end) >= 0:
                self.leave_test(SRC_TIMEOUT, now)
        if self._boot != _BOOT_DONE:
            if not self._n_down:  # a held button's prompt is not overwritten
                self._boot_step(now)
        elif (self.mode == MODE_ALT or self.mode == MODE_DIAG) and not self._n_down \
                and time.ticks_diff(now, self._step_t) >= d.hold_ms:
            self._step(now)
        if self._dirty or self._tick_t is None or time.ticks_diff(now, self._tick_t) >= TICK_MS:
            self._dirty = False
            self._tick_t = now
            fl = self.flags()
            if fl != d.flags:
                d.set_flags(fl)
            if d.tick(now):
                self.device.show(d.frame)

    def _boot_step(self, now):
        d = self.display
        if self._boot_t is None:
            self._boot_t = now
            d.segment_test(now)
            self._dirty = True
            return
        if time.ticks_diff(now, self._boot_t) < min(d.hold_ms, BOOT_MS):
            return
        self._boot_t = now
        self._boot += 1
        self._dirty = True
        if self._boot == _BOOT_VERSION:
            try:
                d.version_frame(self._version, now)
            except ValueError:
                d.text_frame("0.2.0", "Err", now)
        elif self._boot == _BOOT_SUM:
            d.text_frame("0.2.8", swid.hex_text(swid.checksum_cached()), now)
        else:
            d.set_list(lcd.LIST_AUTO, now)

    def _end_boot(self, now):
        if self._boot != _BOOT_DONE:
            self._boot = _BOOT_DONE
            self.display.set_list(lcd.LIST_AUTO, now)

    def _scan_switch(self, now):
        sw = self._sw
        if sw is None:
            return
        v = 1 if sw.value() else 0
        if v == self._sw_state:
            self._sw_n = 0
            return
        self._sw_n += 1
        if self._sw_n < 2:
            return
        self._sw_state = v
        self._sw_n = 0
        if v:
            self.enter_test(None, SRC_SWITCH, now)
        else:
            self.leave_test(SRC_SWITCH, now)

    def _scan_button(self, now):
        btn = self._btn
        if btn is None:
            return
        if btn.value():
            self._n_down += 1
            if self._n_down == 1:
                self._t_down = now
            elif self.mode != MODE_TEST:
                held = time.ticks_diff(now, self._t_down)
                d = self.display
                if held >= HOLD_DIAG_MS and self._prompt < 2:
                    self._prompt = 2
                    d.text_frame("", "dIAG", now)
                    self._dirty = True
                elif HOLD_ALT_MS <= held < HOLD_DIAG_MS and self._prompt < 1:
                    self._prompt = 1
                    d.text_frame("", "ALt", now, lcd.ANN_ALT)
                    self._dirty = True
            return
        n = self._n_down
        self._n_down = 0
        self._prompt = 0
        if n >= 2:
            self._release(time.ticks_diff(now, self._t_down), now)

    def _release(self, held, now):
        d = self.display
        self.presses += 1
        self._dirty = True
        if self.mode == MODE_TEST:
            d.next(now)
            return
        if held >= HOLD_DIAG_MS:
            self._enter_list(MODE_DIAG, now)
        elif held >= HOLD_ALT_MS:
            self._enter_list(MODE_ALT, now)
        elif self._boot != _BOOT_DONE:
            self._end_boot(now)
        elif self.mode == MODE_NORMAL:
            d.next(now)
        else:
            self._step(now)

    def _enter_list(self, mode, now):
        d = self.display
        self._boot = _BOOT_DONE
        self.mode = mode
        d.set_items(lcd.LIST_ALT, self._alt if mode == MODE_ALT else self._diag)
        d.set_list(lcd.LIST_ALT, now)
        self._step_t = now

    def _step(self, now):
        # next item of the alternate/diagnostic list; after the last one back to normal
        d = self.display
        d.next(now)
        self._step_t = now
        self._dirty = True
        if d.index == 0:
            self.mode = MODE_NORMAL
            d.set_list(lcd.LIST_AUTO, now)


def meter_version():
    import app

    return app.VERSION
