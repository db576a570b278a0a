# Display task: LCD lists and display modes, the scroll button and the test switch.
"""The LCD task: what the display shows and how the buttons and the test switch steer it is
specified in docs/DISPLAY.md (modes, lists, button timing, test mode, annunciators); this
module implements it.

It reads only through the OBIS catalogue (firmware/meter/catalogue.py: each list item is
made once from a catalogue getter and the entry's kind), the test-mode state
(firmware/meter/testmode.py), the status words (firmware/meter/status.py, ALARM) and the
settings (lists, scroll time, energy decimals, test output), whose changes it follows
(Settings.subscribe). It owns only the presentation: the identifier shown (``NT`` for net
16.8.0), the energy-direction arrows, the unit annunciators, the lists' order.

Polling: buttons and switch every ``POLL_MS`` (50 ms) of real time, the LCD every
``TICK_MS`` (250 ms); the LCD runs on real time (lib/ticks) even when the virtual board's
metering clock runs faster.
"""

import asyncio

from micropython import const

import lcd
import ticks
from meter import catalogue as C
from meter import swid
from meter.testmode import SRC_SWITCH

POLL_MS = const(50)  # button / switch sampling period
TICK_MS = const(250)  # LCD refresh period (values re-read)
BOOT_MS = const(3000)  # each start-up frame
HOLD_ALT_MS = const(3000)  # scroll button held this long: alternate list
HOLD_DIAG_MS = const(6000)  # ... this long: diagnostic list

MODE_NORMAL = const(0)
MODE_ALT = const(1)
MODE_DIAG = const(2)
MODE_TEST = const(3)

_BOOT_SEG = const(0)
_BOOT_VERSION = const(1)
_BOOT_SUM = const(2)
_BOOT_DONE = const(3)

DIAG_LIST = ("32.7.0", "31.7.0", "91.7.0", "14.7.0", "13.7.0", "81.7.4", "C.5.0", "F.F.0")
TEST_LIST = ("1.8.0", "2.8.0", "3.8.0", "4.8.0", "1.7.0", "3.7.0")  # + the test output item


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


def _watts_render(ident, get):
    """A render(frame) item showing ``get()`` (mW) in whole W, the W computed once per new
    value: a cumulative maximum demand (1.2.x) passes 2**30 mW (1 074 kW of summed maxima,
    ~6.4 years of monthly 14 kW maxima), a long int on a 32-bit port, and ``v // 1000`` at
    every 250-ms refresh would allocate; the value object only changes at a demand reset."""
    ann = lcd.unit_ann("W")
    seen = [None, 0]  # the last mW object read, its whole W

    def render(frame):
        frame.ident = ident
        try:
            v = get()
            if v is not seen[0]:
                seen[1] = v // 1000
                seen[0] = v
            lcd.format_units(frame, seen[1], lcd.DIGITS, True)
        except Exception:  # a broken getter must not stop the display
            lcd.format_text(frame, "Err")
        frame.ann = ann

    return render


def _ident(obis):
    # the identifier shown for a code: "NT" for the net register, else the code
    return "NT" if obis == "16.8.0" else obis


def _energy_ann(obis):
    # arrows on A+ / A- (IMPORT / EXPORT), the tariff annunciator on a tariff register
    c, _d, e = obis.split(".")
    ann = lcd.ANN_IMPORT if c == "1" else (lcd.ANN_EXPORT if c == "2" else 0)
    t = int(e)
    return ann | (lcd.tariff_ann(t) if 0 < t <= 6 else 0)


_E_IDENT = ("E0", "E1", "E2", "E3", "E4", "E5", "E6", "E7", "E8", "E9")


class _LastEvents:
    """The newest events for the ``P.98&n`` items: from the persisted logs (``store``:
    meter.eventstore.EventStore, merged by time; they survive a restart), else the RAM log
    (``log``: lib.events.EventLog). Read again only when an event was logged since
    (``log.total``), and only while such an item is shown: a flash scan per new event, not
    per refresh. Each is ``(t, code, identifier, date text)``."""

    KEEP = 9

    def __init__(self, log, store):
        self.log = log
        self.store = store
        self._seen = -1
        self._last = []

    def get(self, n):
        if self._seen != self.log.total:
            self._seen = self.log.total
            self._load()
        k = len(self._last)
        if n > k:
            return None
        return self._last[k - n]

    def _load(self):
        keep = []
        st = self.store
        if st is not None and not st.blocked():
            src = ((r[0], r[3]) for r in st.logbook())
        else:
            src = (r[:2] for r in self.log.entries())
        for t, code in src:
            keep.append((t, code))
            if len(keep) > self.KEEP:
                keep.pop(0)
        self._last = [(t, c, "E%d.%d" % (len(keep) - i, c), _date_text(t))
                      for i, (t, c) in enumerate(keep)]


class DisplayTask:
    """The LCD task: ``device`` (``show(frame)``), ``catalogue`` (meter.catalogue.Catalogue),
    ``settings`` (meter.settings.Settings), ``testmode`` (meter.testmode.TestMode),
    ``status`` (meter.status.Status), ``metering`` (meter.metering.Metering: the arrows),
    ``btn``, ``sw``, ``relay`` (the board's scroll button, test switch and relay, Pin-like,
    or None); ``ticks_ms``: real-time ms clock (default lib/ticks; tests pass a fake). Drive
    with :meth:`run` or, in tests, :meth:`poll`."""

    def __init__(self, device, catalogue, settings, testmode, status, metering, btn=None,
                 sw=None, relay=None, ticks_ms=None):
        self.device = device
        self.catalogue = catalogue
        self.settings = settings
        self.testmode = testmode
        self.status = status
        self.metering = metering
        self._btn = btn
        self._sw = sw
        self._relay = relay
        self.tariff = None  # meter.tariffs.Tariffs (``active``) for the T1..T6 annunciator
        self._last = None  # _LastEvents of the P.98&n items (made with the first one)
        self._ms = ticks_ms or ticks.ticks_ms
        self.mode = MODE_NORMAL
        self._tm = testmode.changes
        # the alternate, diagnostic and test lists are built when shown and dropped after
        # (RAM: ~110 B of getter closures per item; issue 12)
        self.display = lcd.Display(hold_ms=settings.get("scroll_ms", 10000), return_ms=0,
                                   ticks_diff=ticks.ticks_diff)
        # the normal list by its codes: only the item shown is held (lcd.Display make=)
        self.display.set_items(lcd.LIST_AUTO, settings["display_list"], self.item)
        self.display.render()
        self._version = swid.VERSION
        self._boot = _BOOT_SEG
        self._boot_t = None
        self._step_t = 0
        self._tick_t = None
        self._dirty = True
        self._n_down = 0  # successive samples with the button pressed
        self._t_down = 0
        self._prompt = 0
        self._sw_state = sw.value() if sw is not None else 0
        self._sw_n = 0
        self.presses = 0  # button actions seen (short + long), for tests and diagnostics
        settings.subscribe(self._setting_changed)

    # -- lists -----------------------------------------------------------------------------

    def _setting_changed(self, key):
        d = self.display
        if key == "display_list":
            d.set_items(lcd.LIST_AUTO, self.settings[key], self.item)
        elif key == "alt_list":
            if self.mode == MODE_ALT:  # else built when the list is entered
                d.set_items(lcd.LIST_ALT, self.build_list(self.settings[key]))
        elif key == "scroll_ms":
            d.hold_ms = self.settings[key]
        elif key != "test_led" and key != "energy_decimals":
            return
        self._dirty = True

    def build_list(self, codes):
        """Display items for a list of catalogue codes (validated by the settings)."""
        return [self.item(c) for c in codes]

    def item(self, code):
        """The lib.lcd item for catalogue ``code``; KeyError if unknown."""
        cat = self.catalogue
        n = C.event_code(code)
        if n:
            return self._event_item(n)
        e = cat.entry(code.replace("&", "*"))
        if e is None:
            raise KeyError(code)
        if e[C.E_ACCESS] & C.A_HIST:
            return self._hist_item(e)
        k = e[C.E_KIND]
        if k == C.K_ENERGY:
            # whole Wh (= kWh / 1000), small ints up to 1.07 GWh: no long int per refresh
            get = cat.units_getter(code)
            return (_ident(code), get, self.settings.get("energy_decimals", 3),
                    _energy_ann(code), e[C.E_UNIT])
        if k == C.K_INSTANT:
            return (code, cat.milli_getter(code), e[C.E_DEC], 0, e[C.E_UNIT])
        if k == C.K_DEMAND:  # mW, shown in whole W (the glass has W, not kW)
            if e[C.E_SRC][:5] == "b:cum":
                return _watts_render(code, cat.getter(code))
            return (code, cat.getter(code), 0, 0, "W")
        if k == C.K_SEGMENTS:
            return lcd.render_segment_test
        get = cat.getter(code)
        if k == C.K_TIME:
            return _text_render(code, lambda: _time_text(get()))
        if k == C.K_DATE:
            return _text_render(code, lambda: _date_text(get()))
        if k == C.K_HEX:
            return _text_render(code, lambda: swid.hex_text(get()))
        if k == C.K_INT:
            return _text_render(code, lambda: "%d" % get())
        return _text_render(code, get)

    def _hist_item(self, e):
        # a value of a closed billing period, X*VZ / X*VZ-n (meter/billing.py historical):
        # identifier "X.vz" (the period's VZ as 2 digits: "1.8.0.26" takes the glass's 5
        # identifier cells, the points merged), the value read once per close while the item
        # is held (a snapshot never changes: no flash read per refresh; the normal list makes
        # its item each time it is reached), dashes while the period does not exist
        bl = self.catalogue.billing
        code = e[C.E_SRC]
        base, _s, rel = code.partition("*")
        back = 0 if rel == "VZ" else int(rel[3:])
        energy = e[C.E_KIND] == C.K_ENERGY
        dec = self.settings.get("energy_decimals", 3) if energy else 0
        ann = (_energy_ann(base) if energy else lcd.ANN_IMPORT) | lcd.unit_ann(
            e[C.E_UNIT] if energy else "W")
        seen = [-1, -1, "", None]  # vz, closes, identifier, value (Wh or mW) or None

        def render(frame):
            if seen[0] != bl.vz or seen[1] != bl.closes:
                seen[0] = bl.vz
                seen[1] = bl.closes
                vz = (bl.vz - back) % 100
                seen[2] = "%s.%02d" % (base, vz)
                try:
                    v = bl.historical("%s*%d" % (base, vz))
                    seen[3] = v // 1000 if energy else v
                except Exception:  # no such period (yet), unreadable flash
                    seen[3] = None
            frame.ident = seen[2]
            v = seen[3]
            if v is None:
                lcd.format_text(frame, "--------", True)
            else:
                lcd.format_value(frame, v, dec, lcd.DIGITS, True)
            frame.ann = ann

        return render

    def _event_item(self, n):
        # the n-th newest event (P.98&n): identifier "En.ccc" (n, our event code: lib/events
        # NAMES), the digits its date (YY-MM-DD, UTC as 0.9.2); "--------" when there is none
        last = self._last
        if last is None:
            cat = self.catalogue
            last = self._last = _LastEvents(cat.log, cat.events)

        def render(frame):
            ev = last.get(n)
            if ev is None:
                frame.ident = _E_IDENT[n]
                lcd.format_text(frame, "--------", True)
            else:
                frame.ident = ev[2]
                lcd.format_text(frame, ev[3], True)
            frame.ann = 0

        return render

    def _test_items(self):
        cat = self.catalogue
        tm = self.testmode

        def delta(obis):
            get = cat.getter(obis)
            return lambda: get() - tm.base.get(obis, 0)

        def inst(obis):
            return cat.milli_getter(obis)

        def led(frame):
            frame.ident = "C.91.3"
            lcd.format_text(frame, "LEd", True)
            frame.ann = (lcd.ANN_KVARH if self.settings.get("test_led") == "kvarh"
                         else lcd.ANN_KWH)

        e = cat.entry
        return [(c, delta(c), 3, 0, "") for c in TEST_LIST[:4]] + [
            (c, inst(c), e(c)[C.E_DEC], 0, e(c)[C.E_UNIT]) for c in TEST_LIST[4:]] + [led]

    # -- test mode (state: meter.testmode) -------------------------------------------------

    def _sync_test(self, now):
        # follow the test-mode state (entered/left by the switch, a command, the timeout)
        on = self.testmode.active()
        if self._tm == self.testmode.changes and on == (self.mode == MODE_TEST):
            return
        self._tm = self.testmode.changes
        d = self.display
        if on:
            if self.mode != MODE_TEST:
                self._normal()  # an alternate/diagnostic list left: its items dropped
                d.set_items(lcd.LIST_TEST, self._test_items())
            self.mode = MODE_TEST
            self._boot = _BOOT_DONE
            d.set_list(lcd.LIST_TEST, now)
        elif self.mode == MODE_TEST:
            self._normal()
            d.set_list(lcd.LIST_AUTO, now)
        self._dirty = True

    # -- annunciators ----------------------------------------------------------------------

    def flags(self):
        m = self.metering
        tar = self.tariff  # the active tariff (meter.tariffs.Tariffs), else T1
        f = lcd.tariff_ann(tar.active) if tar is not None else lcd.ANN_T1
        if tar is not None and tar.dst:  # (set at each switch and DST change)
            f |= lcd.ANN_DST
        inst = m.instant_milli
        if inst is not None and not m.no_load:
            f |= lcd.ANN_EXPORT if inst["P"] < 0 else lcd.ANN_IMPORT
        if self.status.alarm():
            f |= lcd.ANN_ALARM
        relay = self._relay
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
        """One poll at real time ``now`` (ms): inputs, test mode, start-up frames, LCD."""
        d = self.display
        self._scan_switch(now)
        self._sync_test(now)
        self._scan_button(now)
        if self._boot != _BOOT_DONE:
            if not self._n_down:  # a held button's prompt is not overwritten
                self._boot_step(now)
        elif (self.mode == MODE_ALT or self.mode == MODE_DIAG) and not self._n_down \
                and ticks.ticks_diff(now, self._step_t) >= d.hold_ms:
            self._step(now)
        if self._dirty or self._tick_t is None or \
                ticks.ticks_diff(now, self._tick_t) >= TICK_MS:
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
        if ticks.ticks_diff(now, self._boot_t) < min(d.hold_ms, BOOT_MS):
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
            self.testmode.enter(None, SRC_SWITCH)
        else:
            self.testmode.leave(SRC_SWITCH)

    def _scan_button(self, now):
        btn = self._btn
        if btn is None:
            return
        if btn.value():
            self._n_down += 1
            if self._n_down == 1:
                self._t_down = now
            elif self.mode != MODE_TEST:
                self._held(now)
            return
        n = self._n_down
        self._n_down = 0
        self._prompt = 0
        if n >= 2:
            self._release(ticks.ticks_diff(now, self._t_down), now)

    def _held(self, now):
        # the button held: the prompt of the mode its release will select (a frame apart
        # from _scan_button's, polled 20 times a second: 11 machine words at most, else
        # MicroPython heap-allocates it at every call)
        held = ticks.ticks_diff(now, self._t_down)
        d = self.display
        if held >= HOLD_DIAG_MS and self._prompt < 2:
            self._prompt = 2
            d.text_frame("", "dIAG", now)
            self._dirty = True
        elif HOLD_ALT_MS <= held < HOLD_DIAG_MS and self._prompt < 1:
            self._prompt = 1
            d.text_frame("", "ALt", now, lcd.ANN_ALT)
            self._dirty = True

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
        d.set_items(lcd.LIST_ALT, self.build_list(self.settings["alt_list"])
                    if mode == MODE_ALT else
                    [lcd.text_item("", "dIAG")] + [self.item(c) for c in DIAG_LIST])
        d.set_list(lcd.LIST_ALT, now)
        self._step_t = now

    def _step(self, now):
        # next item of the alternate/diagnostic list; after the last one back to normal
        d = self.display
        d.next(now)
        self._step_t = now
        self._dirty = True
        if d.index == 0:
            self._normal()
            d.set_list(lcd.LIST_AUTO, now)

    def _normal(self):
        # back to the normal list: the items of the list left are dropped (built again when
        # shown)
        d = self.display
        if self.mode == MODE_TEST:
            d.set_items(lcd.LIST_TEST, ())
        elif self.mode != MODE_NORMAL:
            d.set_items(lcd.LIST_ALT, ())
        self.mode = MODE_NORMAL
