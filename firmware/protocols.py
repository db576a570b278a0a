# IEC 62056-21 on the optical port and the RS-485 bus: the meter's data and parameters.
"""What the meter answers on its local ports (lib/iec_session.py does the protocol).

Readout list (mode C, default): C.1.0 serial, 0.0.0 device address, 0.9.1 time (hhmmss) and
0.9.2 date (YYMMDD) of the RTC (UTC), 0.2.0 firmware version, 0.2.8 metrology checksum
(CRC-32, 8 hex digits, firmware/swid.py), then 1.8.0, 2.8.0, 3.8.0, 4.8.0,
5.8.0..8.8.0, 9.8.0, 10.8.0 (kWh / kvarh / kVAh, 3 decimals, 7 integer digits) and 16.8.0
(net, signed), then 32.7.0 V, 31.7.0 A, 14.7.0 Hz, and F.F.0 (error flags, hex,
firmware/status.py).

Programming mode (after P1 with the password, default ``00000000``; cfg
``prog_max_failures`` (3) wrong passwords on any port lock it on every port for
``prog_lockout_s`` (600 s), doubling per further lockout within 24 h up to
``prog_lockout_max_s`` (lib/lockout.py; one lockout per meter, restored from the security log
at boot). Rights end with B0, any sign-on on the port, the link (``Session.link_lost``) and
``OPTICAL_INACTIVITY_MS`` / ``RS485_INACTIVITY_MS`` without a valid message
(docs/ARCHITECTURE.md, session-rights rule). When the configuration fell back (F.F.0
ERR_SECURITY) and the password is the factory one, P1 needs the open seal (ER06 otherwise).
Every refusal is logged with its port and the address concerned (REFUSED_*, SEALED_REFUSED,
WRONG_PASSWORD, PW_WHILE_LOCKED; lib/events.py), every change as PARAM_CHANGED with the
address (and the new value when numeric; never the password)):
- Readout list: cfg ``readout_list`` (default ``DEFAULT_READOUT`` below), writable.
- R1: any readout address, plus 0.3.0 (meter constant, imp/kWh), C.90.1 (scroll time, s),
  C.90.3 / C.90.4 / C.90.5 (readout, normal display, alternate display lists),
  C.5.0 (service flags, hex, firmware/status.py), C.91.1 (test mode: minutes left, 0 = off),
  C.91.3 (test output: 0 kWh LED, 1 kvarh LED) and C.91.4 (test mode timeout, min).
- W1: 0.9.1 / 0.9.2 clock (logged CLOCK_SET), C.90.1 scroll time (1..255 s), C.90.2 new
  password (8 digits), C.90.3 readout list, C.90.4 normal display list (must hold 1.8.0),
  C.90.5 alternate display list (lists: OBIS codes separated by ",", 1..64), all saved to the
  configuration record (within 2 s, coalesced under the wear budget; the password and the
  meter constant before the ACK, ER09 while the budget has no write left), C.91.3 test
  output (0 kWh, 1 kvarh), C.91.4 test mode timeout
  (1..255 min); metrological 0.3.0 meter constant only with the seal open (ER06
  "insufficient security clearance" otherwise, logged SEALED_REFUSED).
- E2: C.91.0 clear alarms (acknowledges a configuration fallback: F.F.0 ERR_CONFIG clears and
  both copies are written again); C.91.1 enter test mode (argument: minutes 1..255, empty = the
  configured timeout; display and LEDs only, billing registers untouched; logged
  TEST_MODE_ON), C.91.2 leave test mode (TEST_MODE_OFF); C.91.9 cold start (registers to
  zero, committed at once; ER09 if the commit failed): only with the seal open. C.91.8
  format a foreign register journal and commit the registers in RAM (firmware/storage.py),
  and format event logs of another format: only with the seal open, ER04 if nothing is
  write-protected, ER09 if the flash failed.
"""

import events
import status
from civil import seconds
from iec62056_21 import date_time_text
from iec_session import ER_BAD_VALUE, ER_FAILED, ER_NOT_WRITABLE, ER_SEALED, Session
from lockout import Lockout

_ENERGY = ("1.8.0", "kWh"), ("2.8.0", "kWh"), ("3.8.0", "kvarh"), ("4.8.0", "kvarh"), \
    ("5.8.0", "kvarh"), ("6.8.0", "kvarh"), ("7.8.0", "kvarh"), ("8.8.0", "kvarh"), \
    ("9.8.0", "kVAh"), ("10.8.0", "kVAh"), ("16.8.0", "kWh")

DEFAULT_READOUT = ("C.1.0", "0.0.0", "0.9.1", "0.9.2", "0.2.0", "0.2.8", "1.8.0", "2.8.0",
                   "3.8.0", "4.8.0", "5.8.0", "6.8.0", "7.8.0", "8.8.0", "9.8.0", "10.8.0",
                   "16.8.0", "32.7.0", "31.7.0", "14.7.0", "F.F.0")
READABLE = DEFAULT_READOUT + ("0.3.0", "C.90.1", "C.5.0", "C.91.1", "C.91.3", "C.91.4")

# session refusals (ERnn) -> event codes; ER02/ER03/ER06 have their own
_REFUSALS = {7: events.REFUSED_NO_PASSWORD, 4: events.REFUSED_NOT_WRITABLE,
             5: events.REFUSED_VALUE, 1: events.REFUSED_UNKNOWN, 8: events.REFUSED_UNSUPPORTED}
_EXITS = {"B0": events.EXIT_B0, "timeout": events.EXIT_TIMEOUT, "link": events.EXIT_LINK,
          "sign-on": events.EXIT_SIGN_ON}

# RS-485: a bus master answers within the ACK timeout or its dialogue is over (the rights
# rule, docs/ARCHITECTURE.md): programming mode ends after 3 s without a valid message there,
# after the class 23 default of 120 s on the optical port (an operator with a hand-held unit)
RS485_INACTIVITY_MS = 3000
OPTICAL_INACTIVITY_MS = 120000
FACTORY_PASSWORD = "00000000"


def kwh_text(milli):
    """mWh -> '0001234.567' (kWh, 3 decimals, truncated; '-' sign for negative)."""
    wh = milli // 1000 if milli >= 0 else -((-milli) // 1000)
    sign = "-" if wh < 0 else ""
    wh = abs(wh)
    return "%s%07d.%03d" % (sign, wh // 1000, wh % 1000)


def _ymd(secs):
    # RTC seconds since 2000-01-01 -> (YYMMDD, hhmmss), UTC
    return date_time_text(secs)


def _secs(date, time_):
    # (YYMMDD, hhmmss) -> RTC seconds; ValueError if not a valid date and time
    return seconds(2000 + int(date[0:2]), int(date[2:4]), int(date[4:6]), int(time_[0:2]),
                   int(time_[2:4]), int(time_[4:6]))


class MeterData:
    """Readout, reader, writer and executor callbacks over a firmware.app.Meter, and the
    meter's one password lockout (lib/lockout.py), shared by every port's session and
    restored from the persisted security log (so neither another port nor a restart clears
    it; the lockout is recorded again at each power-up, so floods and power cycles cannot
    push it out of the log either)."""

    def __init__(self, meter, address):
        self.meter = meter
        self.address = address
        cfg = meter.cfg
        self.password = cfg.get("password", FACTORY_PASSWORD)
        self.lockout = Lockout(cfg.get("prog_max_failures", 3), cfg.get("prog_lockout_s", 600),
                               cfg.get("prog_lockout_max_s", 86400))
        hist = []
        for t, code, value, src, _subj, summary, legacy in meter.persisted_events(
                events.LOG_SECURITY):
            if legacy or summary:
                continue
            if code == events.WRONG_PASSWORD:
                hist.append((t, "fail", value, src))
            elif code == events.PROG_LOCKED:
                hist.append((t, "lock", value, src))
            elif code == events.PROG_LOCK_KEPT:
                hist.append((t, "kept", value, src))
            elif code == events.PROG_ENTER:
                hist.append((t, "ok", 0, src))
        now = meter.board.clock.time()
        self.lockout.restore(hist, now)
        # the log is a ring that floods and power cycles can turn over: the lockout (active,
        # or still counting for the doubling) is recorded again at every power-up
        kept = self.lockout.carried(now)
        persist = getattr(meter, "persist_event", None)
        if kept is not None and persist is not None:
            persist(kept[0], events.PROG_LOCK_KEPT, kept[1])

    def passwords(self):
        """Passwords P1 accepts now: the configured one; None (P1 answered ER06) when the
        password is the factory one but not trusted (a damaged configuration copy or
        defaults replaced a stored password: item 12) and the seal is closed."""
        m = self.meter
        if (self.password == FACTORY_PASSWORD and not getattr(m, "password_trusted", True)
                and not self.seal_open()):
            return None
        return (self.password,)

    def seal_open(self):
        """True while the seal switch is open: the debounced level that the security log
        reports (firmware/tamper.py), so a pulse shorter than the debounce opens nothing
        unlogged; the raw pin before the tamper task has run."""
        m = self.meter
        w = getattr(m, "tamper", None)
        v = w.level("seal") if w is not None else None
        if v is None:
            v = m.board.seal.value()
        return v == 1

    def _value(self, addr):
        m = self.meter
        b = m.board
        if addr == "C.1.0":
            return b.serial, None
        if addr == "0.0.0":
            return self.address, None
        if addr == "0.9.1":
            return _ymd(b.clock.time())[1], None
        if addr == "0.9.2":
            return _ymd(b.clock.time())[0], None
        if addr == "0.2.0":
            import app

            return app.VERSION, None
        if addr == "0.2.8":
            import swid

            return swid.checksum_text(), None
        if addr == "C.5.0":
            return "%08X" % status.service_flags(m), None
        if addr == "C.91.1":
            return "%d" % m.display.test_minutes_left(), "min"
        if addr == "C.91.3":
            return ("1" if m.cfg.get("test_led") == "kvarh" else "0"), None
        if addr == "C.91.4":
            return "%d" % m.display.test_minutes, "min"
        if addr == "0.3.0":
            return "%d" % m.cfg["meter_constant"], None  # imp/kWh ("/" is not allowed)
        if addr == "C.90.1":
            return "%d" % (m.cfg["scroll_ms"] // 1000), "s"
        if addr == "C.90.3":
            return ",".join(m.cfg.get("readout_list", DEFAULT_READOUT)), None
        if addr == "C.90.4" or addr == "C.90.5":
            return ",".join(m.cfg["display_list" if addr == "C.90.4" else "alt_list"]), None
        if addr == "F.F.0":
            return "%08X" % status.error_flags(m), None
        for obis, unit in _ENERGY:
            if obis == addr:
                return kwh_text(m.registers.value_milli(obis)), unit
        inst = m.metering.instant
        if inst is not None:
            if addr == "32.7.0":
                return "%.1f" % inst["V"], "V"
            if addr == "31.7.0":
                return "%.3f" % inst["I"], "A"
            if addr == "14.7.0":
                return "%.2f" % inst["f"], "Hz"
        raise KeyError(addr)

    def readout(self):
        """The configured readout list (cfg ``readout_list``); an address that has no value
        yet (instantaneous values before the first reading) is left out."""
        out = []
        for a in self.meter.cfg.get("readout_list", DEFAULT_READOUT):
            try:
                v, u = self._value(a)
            except KeyError:
                continue
            out.append((a, v, u))
        return out

    def reader(self, addr):
        return self._value(addr)

    def _changed(self, addr, value, src, text=None):
        self.meter.log.log(events.PARAM_CHANGED, value, text or addr, src, addr)

    def writer(self, addr, value, sealed, src=events.SRC_METER):
        """W1: None (ACK) or an ERnn; each change is logged PARAM_CHANGED with the address
        (and the new value when it is a number; never the password)."""
        m = self.meter
        if addr == "0.9.1" or addr == "0.9.2":
            d, t = _ymd(m.board.clock.time())
            if addr == "0.9.1":
                t = value
            else:
                d = value
            if len(value) != 6 or not value.isdigit():
                return ER_BAD_VALUE
            try:
                s = _secs(d, t)
            except ValueError:
                return ER_BAD_VALUE
            m.board.clock.set_time(s)
            m.log.log(events.CLOCK_SET, s, None, src, addr)
            return None
        if addr == "C.90.1":
            if not value.isdigit() or not 1 <= int(value) <= 255:
                return ER_BAD_VALUE
            m.cfg["scroll_ms"] = int(value) * 1000
            m.display.display.hold_ms = m.cfg["scroll_ms"]
            m.save_config()
            self._changed(addr, int(value), src)
            return None
        if addr == "C.90.2":
            if len(value) != 8 or not value.isdigit():
                return ER_BAD_VALUE
            if not m.config_save_allowed():
                return ER_FAILED  # never an ACK that a power cut could take back
            self.password = value
            m.cfg["password"] = value
            m.password_set()  # trusted again: clears F.F.0 ERR_SECURITY
            ok = m.save_config_now()  # in flash before the ACK
            self._changed(addr, 0, src, "password changed")
            return None if ok else ER_FAILED
        if addr == "C.90.3":  # readout list: OBIS codes separated by ','
            codes = value.split(",")
            if not 1 <= len(codes) <= 64 or any(c not in READABLE for c in codes):
                return ER_BAD_VALUE
            m.cfg["readout_list"] = codes
            m.save_config()
            self._changed(addr, len(codes), src)
            return None
        if addr == "C.90.4" or addr == "C.90.5":  # normal / alternate display list
            codes = value.split(",")
            key = "display_list" if addr == "C.90.4" else "alt_list"
            try:
                items = m.display.build_list(codes, key == "display_list")
            except ValueError:
                return ER_BAD_VALUE
            m.cfg[key] = codes
            d = m.display.display
            if key == "display_list":
                d.set_items(0, items)  # lib.lcd LIST_AUTO
            else:
                m.display._alt = items
                d.set_items(1, items)  # lib.lcd LIST_ALT
            m.save_config()
            self._changed(addr, len(codes), src)
            return None
        if addr == "C.91.3":  # test output in test mode (not the constant: no seal)
            if value not in ("0", "1"):
                return ER_BAD_VALUE
            m.display.set_test_led(value == "1")
            m.save_config()
            self._changed(addr, int(value), src)
            return None
        if addr == "C.91.4":
            if not value.isdigit() or not 1 <= int(value) <= 255:
                return ER_BAD_VALUE
            m.display.set_test_minutes(int(value))
            m.save_config()
            self._changed(addr, int(value), src)
            return None
        if addr == "0.3.0":  # metrological: meter constant of the test output
            if sealed:
                return ER_SEALED
            if not value.isdigit() or not 1 <= int(value) <= 100000:
                return ER_BAD_VALUE
            if not m.config_save_allowed():
                return ER_FAILED
            m.set_meter_constant(int(value), src)
            return None if m.save_config_now() else ER_FAILED
        return ER_NOT_WRITABLE

    def executor(self, addr, args, sealed, src=events.SRC_METER):
        """E2: None (ACK) or an ERnn."""
        m = self.meter
        if addr == "C.91.0":  # clear alarms: the latched configuration flag (F.F.0 0x2)
            m.clear_config_alarm()
            self._changed(addr, 0, src, "alarms cleared")
            return None
        if addr == "C.91.1":  # test mode: display/LED only, no seal needed
            if args and (not args.isdigit() or not 1 <= int(args) <= 255):
                return ER_BAD_VALUE
            m.display.enter_test(int(args) if args else None)
            return None
        if addr == "C.91.2":
            m.display.leave_test()
            return None
        if addr == "C.91.9":  # cold start: billing registers to zero, only under open seal
            if sealed:
                return ER_SEALED
            return None if m.cold_start(src) else ER_FAILED
        if addr == "C.91.8":  # format a foreign journal / event log: only under open seal
            if sealed:
                return ER_SEALED
            s = m.storage
            jb = s is not None and s.journal.blocked
            eb = m.events_blocked()
            if not jb and not eb:
                return ER_NOT_WRITABLE
            ok = m.format_event_logs() if eb else True  # first: the journal's event persists
            if jb:
                ok = s.format_journal() and ok
            if not ok:
                return ER_FAILED
            self._changed(addr, 0, src, "journal formatted")  # who: the port, in the audit
            return None
        return ER_NOT_WRITABLE

    def on_event(self, src, code, detail, value, cmd):
        """Session events of port ``src`` (events.SRC_*) into the meter's log, with the
        address concerned as the record's subject (refusal values: ERnn << 16 | command)."""
        S = events
        log = self.meter.log.log
        if code == "refused":
            c = _REFUSALS.get(value, S.REFUSED_FAILED)
            log(c, (value << 16) | S.command_value(cmd), "%s %s ER%02d" % (cmd, detail, value),
                src, detail or cmd)
        elif code == "sealed_refused":
            log(S.SEALED_REFUSED, (value << 16) | S.command_value(cmd), "%s %s" % (cmd, detail),
                src, detail or cmd)
        elif code == "pw_wrong":
            log(S.WRONG_PASSWORD, value, None, src)
        elif code == "prog_locked":
            log(S.PROG_LOCKED, value, None, src)
        elif code == "pw_while_locked":
            log(S.PW_WHILE_LOCKED, value, None, src)
        elif code == "prog_enter":
            log(S.PROG_ENTER, 0, None, src)
        elif code == "prog_exit":
            log(S.PROG_EXIT, _EXITS.get(detail, 0), detail, src)
        # write / exec: the writer and executor log what they changed themselves

    def session(self, answer_unaddressed, src=None):
        """The Session of one port: the optical port (``answer_unaddressed`` True, events
        SRC_OPTICAL) or the RS-485 port (False, SRC_RS485, bus inactivity limit)."""
        b = self.meter.board
        if src is None:
            src = events.SRC_OPTICAL if answer_unaddressed else events.SRC_RS485
        bus = src == events.SRC_RS485
        return Session(self.address, manufacturer="OMF", ident="OPENMETER1",
                       readout=self.readout, reader=self.reader,
                       writer=lambda a, v, s: self.writer(a, v, s, src),
                       executor=lambda a, v, s: self.executor(a, v, s, src),
                       passwords=self.passwords, seal_open=self.seal_open,
                       on_event=lambda c, d, v, k: self.on_event(src, c, d, v, k),
                       lockout=self.lockout.port(src), time_s=b.clock.time,
                       inactivity_ms=RS485_INACTIVITY_MS if bus else OPTICAL_INACTIVITY_MS,
                       answer_unaddressed=answer_unaddressed)
