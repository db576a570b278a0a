# Test mode: its own state, read by the display, the test LED and the status word.
"""Test mode (docs/DISPLAY.md "Test mode"): a display/LED mode only, it never writes a
register.

Entered by the test switch's rising edge (the display task sees it) or IEC E2 C.91.1; left
at the switch's falling edge, by E2 C.91.2, or by itself ``minutes`` (setting
``test_mode_minutes``, 1..255, default 30) of metering time after the entry (on a device that
is real time; on the virtual board it follows ``--speed`` like the RTC). Entry and exit are
logged: TEST_MODE_ON / TEST_MODE_OFF with value = the source (``SRC_TIMEOUT`` 0, ``SRC_SWITCH``
1, ``SRC_COMMAND`` 2). :meth:`TestMode.active` is the one place the timeout is applied, so
whoever reads the state first (display, test LED, C.5.0) ends it on time.

At the entry the registers are copied (:attr:`TestMode.base`, OBIS -> thousandths) so that the
test list shows the energy since the entry. With the setting ``test_led`` "kvarh" the test
pulses go to the kvarh LED (|reactive| energy) while test mode is on (:meth:`led_reactive`).
"""

from micropython import const

import events

SRC_TIMEOUT = const(0)
SRC_SWITCH = const(1)
SRC_COMMAND = const(2)
_SRC_NAMES = ("timeout", "switch", "command")


class TestMode:
    """``clock``: the board's metering clock; ``log``: lib.events.EventLog; ``settings``:
    meter.settings.Settings (``test_mode_minutes``, ``test_led``); ``snapshot``: callable
    returning the registers as {OBIS: thousandths} (lib.energy.Registers.snapshot)."""

    __test__ = False  # not a pytest test class

    def __init__(self, clock, log, settings, snapshot):
        self._clock = clock
        self._log = log
        self._settings = settings
        self._snapshot = snapshot
        self._on = False
        self._end = 0
        self.base = {}
        self.changes = 0  # entries + exits so far (readers notice a change by it)

    @property
    def minutes(self):
        """The configured timeout, min (setting ``test_mode_minutes``)."""
        return self._settings.get("test_mode_minutes", 30)

    def enter(self, minutes=None, source=SRC_COMMAND):
        """Enter test mode for ``minutes`` (1..255, default :attr:`minutes`) of metering
        time; in test mode already: restart the timeout (no new event). ValueError for
        minutes out of range."""
        if minutes is None:
            minutes = self.minutes
        if not isinstance(minutes, int) or not 1 <= minutes <= 255:
            raise ValueError("test mode minutes must be 1..255")
        c = self._clock
        self._end = c.ticks_add(c.ticks_ms(), minutes * 60000)
        if self._on:
            return
        self.base = self._snapshot()
        self._on = True
        self.changes += 1
        self._log.log(events.TEST_MODE_ON, source, "test mode on (%s), %d min"
                      % (_SRC_NAMES[source], minutes))

    def leave(self, source=SRC_COMMAND):
        """Leave test mode (nothing if not in it); logs TEST_MODE_OFF with ``source``."""
        if not self._on:
            return
        self._on = False
        self.changes += 1
        self._log.log(events.TEST_MODE_OFF, source, "test mode off (%s)" % _SRC_NAMES[source])

    def active(self):
        """True while test mode is on (C.5.0 bit 0x001); ends it when its time is up."""
        if self._on:
            c = self._clock
            if c.ticks_diff(c.ticks_ms(), self._end) >= 0:
                self.leave(SRC_TIMEOUT)
        return self._on

    def minutes_left(self):
        """Metering-time minutes (rounded up) until test mode ends; 0 outside it."""
        if not self.active():
            return 0
        c = self._clock
        ms = c.ticks_diff(self._end, c.ticks_ms())
        return (ms + 59999) // 60000 if ms > 0 else 0

    def led_reactive(self):
        """True while the test pulses go to the kvarh LED (test mode, ``test_led`` kvarh)."""
        return self.active() and self._settings.get("test_led") == "kvarh"
