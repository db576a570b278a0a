# Status words: C.5.0 service flags and F.F.0 error flags, one definition for every reader.
"""The meter's two status words, read through the OBIS catalogue by the LCD (diagnostic
list, ALARM annunciator), the IEC 62056-21 map and (later) DLMS and the uplink. One
definition, here; nothing else computes them.

C.5.0 service flags (state, not faults; 32 bits, read out as 8 hex digits):
  0x001 test mode, 0x002 no-load (anti-creep), 0x004 seal open, 0x008 cover open,
  0x010 terminal cover open, 0x020 magnetic field, 0x040 power-fail input, 0x080 relay open,
  0x100 test output on the kvarh LED (selected), 0x200 exporting now.

F.F.0 error flags (faults; 32 bits, 8 hex digits; IEC 62056-21 readouts conventionally end
with F.F.0, 0 = no error). Every bit in ``ALARM_MASK`` also lights the LCD ALARM annunciator:
  0x0001 metrology fault: ADE7953 missing, mis-clocked, reset, lost its configuration, or
         delivered physically implausible counts (the interval was dropped)
  0x0002 configuration: the configuration record was blank-after-use, damaged or of an
         unknown version, so defaults or an older copy are in use (latched at boot by
         firmware/meter/settings.py; E2 C.91.0 clears it and writes both copies again)
  0x0004 metrology checksum unavailable (software identification cannot be shown)
  0x0008 over-range: current, voltage or power beyond the measuring range in this episode
         (ADE7953 OIA/OV flags or apparent energy above full scale; ends 60 s after the last)
  0x0010 clock invalid: the RTC was not trusted at power-up and has not been set since
         (the board clock's ``rtc_valid``, boards/board.py; set by IEC W1 0.9.1/0.9.2)
  0x0020 storage: the register journal could not be restored or written: it holds records
         of another format (writes refused until E2 C.91.8), held no valid record at boot,
         or the last commit failed or took only at its retry, a record that did not read
         back (firmware/meter/storage.Storage.fault); or the persisted
         event logs take no records: another format (until E2 C.91.8) or a failed write
         (firmware/meter/eventstore.EventStore.fault)
  0x0040 security: a security parameter (password) came from a damaged or older copy, or
         from defaults (then the factory password needs the open seal); cleared when a new
         password is written (W1 C.90.2)
"""

from micropython import const

from meter import swid

SVC_TEST_MODE = const(0x001)
SVC_NO_LOAD = const(0x002)
SVC_SEAL_OPEN = const(0x004)
SVC_COVER_OPEN = const(0x008)
SVC_TCOVER_OPEN = const(0x010)
SVC_MAGNET = const(0x020)
SVC_POWER_FAIL = const(0x040)
SVC_RELAY_OPEN = const(0x080)
SVC_TEST_KVARH = const(0x100)
SVC_EXPORT = const(0x200)

ERR_METROLOGY = const(0x0001)
ERR_CONFIG = const(0x0002)
ERR_CHECKSUM = const(0x0004)
ERR_OVER_RANGE = const(0x0008)
ERR_CLOCK = const(0x0010)
ERR_STORAGE = const(0x0020)
ERR_SECURITY = const(0x0040)

# F.F.0 bits that light the ALARM annunciator (the checksum bit is shown, not alarmed: a
# frozen build without module files still meters correctly)
ALARM_MASK = const(0x007B)

_INPUTS = ((SVC_SEAL_OPEN, "seal"), (SVC_COVER_OPEN, "cover"),
           (SVC_TCOVER_OPEN, "terminal_cover"), (SVC_MAGNET, "magnet"),
           (SVC_POWER_FAIL, "power_fail"))


class Status:
    """The two words of a meter, from the parts that own the conditions: ``board`` (the
    inputs and the relay, the clock's ``rtc_valid``), ``metering`` (meter.metering.Metering:
    ``ok``, ``no_load``, ``over_range``, ``instant_milli``), ``settings`` (meter.settings.Settings:
    the configuration bits and ``test_led``), ``testmode`` (meter.testmode.TestMode or None);
    :attr:`storage` (meter.storage.Storage or None, set once it exists) and :attr:`events`
    (meter.eventstore.EventStore or None)."""

    def __init__(self, board, metering, settings, testmode=None):
        self.board = board
        self.metering = metering
        self.settings = settings
        self.testmode = testmode
        self.storage = None
        self.events = None

    def service_flags(self):
        """C.5.0 word (int, see the module doc)."""
        b = self.board
        m = self.metering
        f = 0
        t = self.testmode
        if t is not None and t.active():
            f |= SVC_TEST_MODE
        if m.no_load:
            f |= SVC_NO_LOAD
        for bit, pin in _INPUTS:
            p = getattr(b, pin, None)
            if p is not None and p.value():
                f |= bit
        relay = getattr(b, "relay", None)
        if relay is not None and not relay.value():
            f |= SVC_RELAY_OPEN
        if self.settings.get("test_led") == "kvarh":
            f |= SVC_TEST_KVARH
        inst = m.instant_milli
        if inst is not None and not m.no_load and inst["P"] < 0:
            f |= SVC_EXPORT
        return f

    def error_flags(self):
        """F.F.0 word (int, see the module doc)."""
        m = self.metering
        f = 0 if m.ok else ERR_METROLOGY
        f |= self.settings.config_error()
        if swid.checksum_cached() is None:
            f |= ERR_CHECKSUM
        sto = self.storage
        if sto is not None and sto.fault is not None:
            f |= ERR_STORAGE
        ev = self.events
        if ev is not None and ev.fault is not None:  # the event logs take no records
            f |= ERR_STORAGE
        if m.over_range:  # episode: firmware/meter/metering.py
            f |= ERR_OVER_RANGE
        if not getattr(self.board.clock, "rtc_valid", True):  # cleared by clock.set_time()
            f |= ERR_CLOCK
        return f

    def alarm(self):
        """True when the LCD ALARM annunciator is to be lit (F.F.0 & ALARM_MASK)."""
        return bool(self.error_flags() & ALARM_MASK)
