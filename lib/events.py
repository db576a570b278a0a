# Meter event log (in RAM; persisted through the ring log once storage is wired).
"""Event log: (RTC seconds, code, value) entries in a fixed-size ring, oldest overwritten.

Codes (DLMS-style event numbers are mapped in docs; these are the firmware's own):
"""

from micropython import const

POWER_UP = const(1)
METROLOGY_FAULT = const(2)  # ADE7953 missing / mis-clocked / lost configuration
METROLOGY_OK = const(3)  # ADE7953 (re)configured after a fault or at boot
CHIP_RESET = const(4)  # ADE7953 reset seen (RESET irq or CONFIG back to default)
ENERGY_OVERFLOW = const(5)  # an accumulator wrapped between two reads (value: LSB lost/fixed)
NO_LOAD_START = const(6)
NO_LOAD_END = const(7)
FLASH_BLANK = const(8)
FLASH_CORRUPT = const(9)
CONFIG_DEFAULTS = const(10)
PROG_ENTER = const(11)
PROG_EXIT = const(12)
WRONG_PASSWORD = const(13)
PROG_LOCKED = const(14)
SEALED_REFUSED = const(15)
PARAM_CHANGED = const(16)
TEST_MODE_ON = const(17)
TEST_MODE_OFF = const(18)
POWER_FAIL = const(19)
CLOCK_SET = const(20)
# 40..49: register storage (firmware/storage.py)
STORAGE_RECOVERED = const(40)  # records salvaged from sectors with a damaged header (value: n)
STORAGE_FOREIGN = const(41)  # journal of another format: writes refused (value: schema, -1)
STORAGE_MIGRATED = const(42)  # journal of an older schema converted (value: old schema)
STORAGE_FORMATTED = const(43)  # foreign journal formatted by E2 C.91.8 (value: old schema)
STORAGE_WRITE_FAILED = const(44)  # a commit or erase failed (value: commit reason)
ENERGY_IMPLAUSIBLE = const(21)  # interval dropped: counts beyond the chip's limit or
# |P|,|Q| > S (value: firmware/metering.DROP_*; a bus fault is METROLOGY_FAULT with the same)
OVER_RANGE_START = const(22)  # current / voltage / power beyond the measuring range (value: cause)
OVER_RANGE_END = const(23)  # over-range episode over (value: its length in s)
# 30..39: clock and RTC
CLOCK_INVALID = const(30)  # RTC not trusted at power-up (backup supply lost); text: why

NAMES = {
    POWER_UP: "power up", METROLOGY_FAULT: "metrology fault", METROLOGY_OK: "metrology ok",
    CHIP_RESET: "metering chip reset", ENERGY_OVERFLOW: "energy register overflow",
    NO_LOAD_START: "no-load start", NO_LOAD_END: "no-load end", FLASH_BLANK: "flash blank",
    FLASH_CORRUPT: "flash record corrupt", CONFIG_DEFAULTS: "configuration defaults used",
    PROG_ENTER: "programming mode entered", PROG_EXIT: "programming mode left",
    WRONG_PASSWORD: "wrong password", PROG_LOCKED: "programming locked",
    SEALED_REFUSED: "refused: seal closed", PARAM_CHANGED: "parameter changed",
    TEST_MODE_ON: "test mode on", TEST_MODE_OFF: "test mode off", POWER_FAIL: "power fail",
    CLOCK_SET: "clock set",
    STORAGE_RECOVERED: "journal recovered from damaged sectors",
    STORAGE_FOREIGN: "journal of another format: writes refused",
    STORAGE_MIGRATED: "journal migrated from an older schema",
    STORAGE_FORMATTED: "journal formatted", STORAGE_WRITE_FAILED: "journal write failed",
    ENERGY_IMPLAUSIBLE: "implausible energy dropped", OVER_RANGE_START: "over-range start",
    OVER_RANGE_END: "over-range end",
    CLOCK_INVALID: "clock invalid",
}


class EventLog:
    """Ring of ``capacity`` events. ``clock`` has ``time()`` (RTC seconds since 2000).
    ``sink``: optional callable(t, code, value, text) (the virtual board prints to stderr)."""

    def __init__(self, clock, capacity=64, sink=None):
        self._clock = clock
        self._t = [0] * capacity
        self._c = [0] * capacity
        self._v = [0] * capacity
        self._n = 0
        self.sink = sink
        self.counts = {}

    def log(self, code, value=0, text=None):
        i = self._n % len(self._c)
        t = self._clock.time()
        self._t[i] = t
        self._c[i] = code
        self._v[i] = value
        self._n += 1
        self.counts[code] = self.counts.get(code, 0) + 1
        if self.sink is not None:
            self.sink(t, code, value, text)

    def __len__(self):
        return min(self._n, len(self._c))

    def entries(self):
        """List of (t, code, value), oldest first."""
        cap = len(self._c)
        first = self._n - len(self)
        return [(self._t[j % cap], self._c[j % cap], self._v[j % cap])
                for j in range(first, self._n)]

    def count(self, code):
        return self.counts.get(code, 0)
