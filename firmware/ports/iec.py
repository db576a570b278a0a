# IEC 62056-21 data map: the meter's quantities and parameters as mode C data sets.
"""What the meter answers on its local ports (lib/iec62056/session.py does the protocol,
firmware/ports/pump.py moves the bytes). This map only translates: every value and every
change goes through the OBIS catalogue (firmware/meter/catalogue.py), which owns the access
rights, the seal rule and the change log; here are the mode C texts (formats, units, the
``ERnn`` codes) and the session's set-up.

Readout list (mode C, default): C.1.0 serial, 0.0.0 device address, 0.9.1 time (hhmmss) and
0.9.2 date (YYMMDD) of the RTC (UTC), 0.2.0 firmware version, 0.2.8 metrology checksum
(CRC-32, 8 hex digits, firmware/meter/swid.py), then 1.8.0, 2.8.0, 3.8.0, 4.8.0,
5.8.0..8.8.0, 9.8.0, 10.8.0 (kWh / kvarh / kVAh, 3 decimals, 7 integer digits) and 16.8.0
(net, signed), 0.0.96.14.0 the active tariff (1..6), then 32.7.0 V, 31.7.0 A, 14.7.0 Hz,
and F.F.0 (error flags, hex, firmware/meter/status.py). Formats by the catalogue's kind:
registers ``kwh_text`` (kWh/kvarh/kVAh, 3 decimals, truncated), instantaneous values
rounded to the entry's decimals, time ``hhmmss`` and date ``YYMMDD`` (UTC), words as 8
upper-case hex digits, integers in decimal, lists joined by "," (value groups beyond 128
characters: :func:`list_groups`).

Programming mode (after P1 with the password, default ``00000000``; cfg ``prog_max_failures``
(3) wrong passwords on either local port lock it on both local ports (optical and RS-485)
for ``prog_lockout_s`` (600 s), doubling per further lockout within 24 h up to
``prog_lockout_max_s`` (lib/iec62056/lockout.py; one lockout for the local ports, restored
from the security log at boot). The uplink's ``config`` command (SRC_UPLINK,
firmware/uplink/task.py) has a lockout of its own with the same parameters
(:attr:`IecMap.uplink_lockout`), so wrong MACs from the head-end never lock the local ports
and a guesser at the optical port never locks the uplink. Rights end with B0, any sign-on on
the port, the link (``Session.link_lost``) and ``OPTICAL_INACTIVITY_MS`` /
``RS485_INACTIVITY_MS`` without a valid message (docs/PORTS.md, session-rights rule).
When the configuration fell back (F.F.0 ERR_SECURITY) and the password is the factory one, P1
needs the open seal (ER06 otherwise). Every refusal is logged with its port and the address
concerned (REFUSED_*, SEALED_REFUSED, WRONG_PASSWORD, PW_WHILE_LOCKED; lib/events), every
change as PARAM_CHANGED with the address (and the new value when numeric; never the password)):
- Readout list: setting ``readout_list`` (default meter/defaults.READOUT), writable.
- R1: any readout address, plus 0.3.0 (meter constant, imp/kWh), C.90.1 (scroll time, s),
  C.90.3 / C.90.4 / C.90.5 (readout, normal display, alternate display lists; a list
  longer than the 128 characters of one value, as the default readout list, is answered
  in several value groups of whole codes, ``C.90.3(C.1.0,...,16.8.0)(0.0.96.14.0,...)``),
  C.5.0 (service flags, hex, firmware/meter/status.py), C.91.1 (test mode: minutes left, 0 = off),
  C.91.3 (test output: 0 kWh LED, 1 kvarh LED) and C.91.4 (test mode timeout, min).
- W1: 0.9.1 / 0.9.2 clock (logged CLOCK_SET; with the seal closed at most 4 sets and 900 s
  of total shift per local day, configurable, else ER09 logged CLOCK_SET_REFUSED:
  lib/billing/clocklimit.py), C.90.1 scroll time (1..255 s), C.90.2 new
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
  zero, executed by the metering task before its next step and committed; ER09 when the
  journal cannot take a commit now): only with the seal open. C.91.8 format a foreign
  register journal (committing the registers in RAM) and/or event log
  (firmware/meter/storage.py, eventstore.py): only with the seal open, ER04 if nothing is
  write-protected, ER09 if the flash failed; a security-log record with the port.
- W1 C.92.1 .. C.92.5, E2 C.92.8 / C.92.9, R1 C.92.9: the passive tariff plan, seal open
  (firmware/meter/touprog.py documents the addresses and value formats).
- R5 (or R6) ``P.01(from;to)``, ``P.02(...)``, ``P.03(...)``: the interval load profiles
  (firmware/meter/profile.py) in the VDEW format (lib/billing/p01: a header line
  ``P.01(Zyymmddhhmmss)(SS)(pp)(m)(id)(unit)...`` whenever the status or the time
  continuity changes, then one ``(v1)...(vm)`` line per interval, oldest first); ``from``
  and ``to`` are ``Zyymmddhhmm[ss]`` local time stamps (Z = 1 in summer time), either may be
  empty (``P.01(;)`` or ``P.01()`` = everything); the rows whose interval end lies in
  ``[from, to]``. No rows: an empty data message. ER01 for a profile the meter has not got,
  ER05 for a malformed range. Streamed (lib/iec62056/session.Stream): no readout is held in
  RAM.
- R5 (or R6) ``P.98(from;to)``: the persisted event logs as an IDIS logbook, one event a
  line ``P.98(Zyymmddhhmmss)(LL)(III)(CCC)(value)(source)(subject)`` (IDIS log E: 00
  standard, 01 fraud, 02 disconnector, 04 power quality, 05 communication; IDIS code, 128 +
  ours without one; our code; meter/eventstore.EventStore.p98_lines); ``P.98.E(...)`` one
  log, ``P.98.97(...)`` the power failure log (end of each outage, value = its duration in
  s). ER01 without an event store.
- R5 (or R6) ``P.99(from;to)``: the audit trail of the clock and the meter constant
  (meter/audit.py, WELMEC 7.2 style): ``P.99(Zyymmddhhmmss)(counter)(parameter)(old)(new)
  (source)``; full (100 entries): W1 of 0.9.1 / 0.9.2 / 0.3.0 answers ER09 until it is read
  out completely (``P.99(;)``) and cleared with E2 ``C.91.7`` (seal open, else ER06).
"""

from micropython import const

import events
from civil import seconds
from iec62056.codec import MAX_VALUE_PROG, date_time_text
from iec62056.lockout import Lockout
from meter import catalogue as C
from meter import defaults

# lib/iec62056/session.py's ERnn codes (the same values, checked by
# host_tests/unit/test_iec_map.py): the session module itself (its class, ~2 KB of RAM) and
# billing.p01 are imported when a port's session is made / a profile or log is read, so a
# map that only answers reads (the uplink's config command, tests) does not hold them
_ER_NOT_WRITABLE = const(4)
_ER_BAD_VALUE = const(5)
_ER_SEALED = const(6)
_ER_FAILED = const(9)

DEFAULT_READOUT = defaults.READOUT

# session refusals (ERnn) -> event codes; ER02/ER03/ER06 have their own
_REFUSALS = {7: events.REFUSED_NO_PASSWORD, 4: events.REFUSED_NOT_WRITABLE,
             5: events.REFUSED_VALUE, 1: events.REFUSED_UNKNOWN, 8: events.REFUSED_UNSUPPORTED}
_EXITS = {"B0": events.EXIT_B0, "timeout": events.EXIT_TIMEOUT, "link": events.EXIT_LINK,
          "sign-on": events.EXIT_SIGN_ON}

# RS-485: a bus master answers within the ACK timeout or its dialogue is over (the rights
# rule, docs/PORTS.md): programming mode ends after 3 s without a valid message there,
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


def _secs(date, time_):
    # (YYMMDD, hhmmss) -> RTC seconds; ValueError if not a valid date and time
    return seconds(2000 + int(date[0:2]), int(date[2:4]), int(date[4:6]), int(time_[0:2]),
                   int(time_[2:4]), int(time_[4:6]))


def text(e, v):
    """(value text, unit) of catalogue entry ``e`` holding value ``v``, as mode C data."""
    k = e[C.E_KIND]
    if k == C.K_ENERGY:
        return kwh_text(v), e[C.E_UNIT]
    if k == C.K_INSTANT:
        return "%.*f" % (e[C.E_DEC], v), e[C.E_UNIT]
    if k == C.K_TIME:
        return date_time_text(v)[1], None
    if k == C.K_DATE:
        return date_time_text(v)[0], None
    if k == C.K_HEX:
        return ("--------" if v is None else "%08X" % v), None
    if k == C.K_INT:
        return "%d" % v, e[C.E_UNIT]
    if k == C.K_DEMAND:  # mW -> kW with 3 decimals (W)
        w = v // 1000
        return "%d.%03d" % (w // 1000, w % 1000), e[C.E_UNIT]
    if k == C.K_LIST:
        return list_groups(v), None
    return v, None


def list_groups(codes, width=MAX_VALUE_PROG):
    """The codes joined by ",": one str while it fits a programming-mode value (128
    characters), else a tuple of groups of whole codes, each <= ``width`` characters (R1
    answers ``C.90.3(a,b,...)(x,y,...)``: lib/iec62056/codec.build_data)."""
    whole = ",".join(codes)
    if len(whole) <= width:
        return whole
    out = []
    cur = ""
    for c in codes:
        if cur and len(cur) + 1 + len(c) > width:
            out.append(cur)
            cur = ""
        cur = c if not cur else cur + "," + c
    out.append(cur)
    return tuple(out)


def _lockout_history(events_, uplink=False, last_n=None):
    """The security log (meter.eventstore.EventStore or None) as lib/iec62056/lockout.py's
    history, oldest first, read record by record: a flood fills the log, and a list of all
    its records (two tuples each) grew the boot's peak heap with the log's size (~15 KB for
    254 records on a 32-bit core). ``uplink``: the uplink's records (source SRC_UPLINK: its
    own lockout), else the local ports' (every other source). ``last_n``: a one-item list
    that is raised to the highest UPLINK_CONFIG_N value found (the uplink's replay guard)."""
    if events_ is None:
        return
    for t, code, value, src, _subj, summary, legacy in events_.iter_persisted(
            events.LOG_SECURITY):
        if legacy or summary:
            continue
        if code == events.UPLINK_CONFIG_N:
            if last_n is not None and value > last_n[0]:
                last_n[0] = value
            continue
        if (src == events.SRC_UPLINK) != uplink:
            continue
        if code == events.WRONG_PASSWORD:
            yield t, "fail", value, src
        elif code == events.PROG_LOCKED:
            yield t, "lock", value, src
        elif code == events.PROG_LOCK_KEPT:
            yield t, "kept", value, src
        elif code == events.PROG_ENTER:
            yield t, "ok", 0, src


class IecMap:
    """Readout, reader, writer and executor callbacks over ``catalogue``
    (meter.catalogue.Catalogue), and the programming access state: the local ports' password
    lockout (``lockout``, lib/iec62056/lockout.py), shared by the optical and the RS-485
    port's sessions (each books its own wrong and right passwords); the uplink's own lockout
    (``uplink_lockout``: same class and parameters, booked to SRC_UPLINK by the ``config``
    command, firmware/uplink/task.py), and the uplink's replay guard ``uplink_n`` (the
    highest ``n`` of a ``config`` accepted, :meth:`accept_n`). All three are restored from the
    persisted security log (``events``: meter.eventstore.EventStore, or None: then RAM only)
    by the records' source, so neither another port, the other lockout nor a restart clears
    them; a lockout (PROG_LOCK_KEPT, with its source) and ``uplink_n`` (UPLINK_CONFIG_N) are
    recorded again at each power-up, so floods and power cycles cannot push them out of the
    log either. ``settings``: meter.settings.Settings
    (password, lockout parameters, readout list); ``seal_open``: callable, True while the
    seal is open (the debounced level the security log reports, tasks/tamper.py);
    ``clock``: the board clock (``time()``); ``log``: lib.events.EventLog."""

    def __init__(self, catalogue, settings, seal_open, clock, log, events_=None):
        self.catalogue = catalogue
        self.settings = settings
        self.seal_open = seal_open
        self.clock = clock
        self.log = log
        self.address = catalogue.address
        self.profiles = None  # meter.profile.Profiles (R5 P.01..P.03), set by the app
        self.events = events_  # meter.eventstore.EventStore (R5 P.98) or None
        self.audit = None  # meter.audit.AuditTrail (R5 P.99), set by the app
        now = clock.time()
        n = [0]
        self.lockout = self._lockout(events_, now, events.SRC_METER, None)
        self.uplink_lockout = self._lockout(events_, now, events.SRC_UPLINK, n)
        self.uplink_n = n[0]
        if n[0] > 0 and events_ is not None:  # (the replay guard, carried like a lockout)
            events_.persist(now, events.UPLINK_CONFIG_N, n[0], events.SRC_UPLINK)
        if events_ is not None:  # (and again before the ring turns them over: a long run)
            events_.carry = self._carried
            # the flood limit counts WRONG_PASSWORD per code, not per source: both lockouts'
            # wrong passwords (max_failures each before a lock, PW_WHILE_LOCKED after) fit in
            # its burst, so neither lockout's count loses a record to the other's
            events_.limit.burst_for[events.WRONG_PASSWORD] = 2 * self.lockout.max_failures

    def _carried(self):
        # the records the security log must never lose (meter.eventstore.EventStore.carry)
        now = self.clock.time()
        for lk, src in ((self.lockout, events.SRC_METER),
                        (self.uplink_lockout, events.SRC_UPLINK)):
            kept = lk.carried(now)
            if kept is not None:
                yield kept[0], events.PROG_LOCK_KEPT, kept[1], src
        if self.uplink_n > 0:
            yield now, events.UPLINK_CONFIG_N, self.uplink_n, events.SRC_UPLINK

    def _lockout(self, events_, now, src, last_n):
        # a lockout with the settings' parameters, restored from the records of ``src``
        # (SRC_UPLINK: the uplink's; SRC_METER: the local ports')
        st = self.settings
        lk = Lockout(st.get("prog_max_failures", 3), st.get("prog_lockout_s", 600),
                     st.get("prog_lockout_max_s", 86400))
        lk.restore(_lockout_history(events_, src == events.SRC_UPLINK, last_n), now)
        # the log is a ring that floods and power cycles can turn over: the lockout (active,
        # or still counting for the doubling) is recorded again at every power-up
        kept = lk.carried(now)
        if kept is not None and events_ is not None:
            events_.persist(kept[0], events.PROG_LOCK_KEPT, kept[1], src)
        return lk

    def accept_n(self, n):
        """The uplink's ``config`` number ``n`` (1..2**31 - 1, above :attr:`uplink_n`) is
        used: recorded (UPLINK_CONFIG_N, value n, in the security log) before the change is
        made, so a power cut cannot bring back an older number and let a recorded message
        be replayed. True when recorded (or there is no event log: RAM only, a documented
        limit); False when the flash took no record (the change must not be made)."""
        ev = self.events
        if ev is not None and not ev.persist(self.clock.time(), events.UPLINK_CONFIG_N, n,
                                             events.SRC_UPLINK):
            return False
        self.uplink_n = n
        return True

    @property
    def password(self):
        return self.settings.get("password", FACTORY_PASSWORD)

    def passwords(self):
        """Passwords P1 accepts now: the configured one; None (P1 answered ER06) when the
        password is the factory one but not trusted (a damaged configuration copy or
        defaults replaced a stored password) and the seal is closed."""
        pw = self.password
        if (pw == FACTORY_PASSWORD and not self.settings.password_trusted
                and not self.seal_open()):
            return None
        return (pw,)

    def reader(self, addr):
        """(value text, unit) of ``addr``; KeyError if it is not readable (or has no value
        yet)."""
        cat = self.catalogue
        e = cat.entry(addr)
        if e is None or not e[C.E_ACCESS] & C.A_READ:
            raise KeyError(addr)
        return text(e, cat.value(e))

    def readout(self):
        """The configured readout list (setting ``readout_list``); an address that has no
        value yet (instantaneous values before the first reading) is left out."""
        out = []
        for a in self.settings.get("readout_list") or DEFAULT_READOUT:
            try:
                v, u = self.reader(a)
            except KeyError:
                continue
            out.append((a, v, u))
        return out

    def w1_value(self, addr, value):
        """The typed value of W1 text ``value`` (str) for ``addr`` (as the catalogue's write
        takes it: RTC s for 0.9.1 / 0.9.2, int, list of codes, else the text); ValueError if
        malformed. Also the uplink's ``config`` command (uplink/task.py)."""
        e = self.catalogue.entry(addr)
        k = e[C.E_KIND] if e is not None else 0
        if k == C.K_TIME or k == C.K_DATE:
            if len(value) != 6 or not value.isdigit():
                raise ValueError(value)
            d, t = date_time_text(self.clock.time())
            if k == C.K_TIME:
                t = value
            else:
                d = value
            return _secs(d, t)
        if k == C.K_INT:
            if not value.isdigit() or len(value) > 9:
                raise ValueError(value)
            return int(value)
        if k == C.K_LIST:
            return value.split(",")
        return value

    def _run(self, fn, addr, value, sealed, src):
        try:
            fn(addr, value, src, not sealed)
        except C.Sealed:
            return _ER_SEALED
        except (C.NotWritable, KeyError):
            return _ER_NOT_WRITABLE
        except ValueError:
            return _ER_BAD_VALUE
        except C.Failed:
            return _ER_FAILED
        return None

    def writer(self, addr, value, sealed, src=events.SRC_METER):
        """W1: None (ACK) or an ERnn (the catalogue logs each change)."""
        cat = self.catalogue
        e = cat.entry(addr)
        if e is None or not e[C.E_ACCESS] & C.A_WRITE:
            return _ER_NOT_WRITABLE
        if e[C.E_ACCESS] & C.A_SEAL and sealed:
            return _ER_SEALED
        try:
            v = self.w1_value(addr, value)
        except ValueError:
            return _ER_BAD_VALUE
        return self._run(cat.write, addr, v, sealed, src)

    def executor(self, addr, args, sealed, src=events.SRC_METER):
        """E2: None (ACK) or an ERnn."""
        return self._run(self.catalogue.execute, addr, self.e2_arg(args), sealed, src)

    @staticmethod
    def e2_arg(args):
        """The typed argument of E2 text ``args``: None (empty), an int (digits), else -1
        (refused by an action that takes a number, ignored by the others)."""
        if not args:
            return None
        if not args.isdigit() or len(args) > 9:
            return -1
        return int(args)

    def profile(self, addr, arg):
        """R5/R6 ``P.0n(from;to)`` (load profiles) and ``P.98(from;to)`` / ``P.98.E(...)``
        (the event logbook, all logs or IDIS log E): a callable returning the lines; KeyError
        (ER01) for a profile or log the meter has not got, ValueError (ER05) for a malformed
        range."""
        if addr == "P.98" or addr.startswith("P.98."):
            return self._logbook(addr, arg)
        if addr == "P.99" and self.audit is not None:
            from billing import p01

            au = self.audit
            zone = self._zone()
            a, b = p01.parse_range(arg or ";", zone)

            def lines():
                return au.p99_lines(zone, a, b)

            return lines
        pr = self.profiles.get(addr) if self.profiles is not None else None
        if pr is None:
            raise KeyError(addr)
        from billing import p01

        a, b = p01.parse_range(arg or ";", pr.zone)

        def make():
            return pr.p01_lines(a, b)

        return make

    def _zone(self):
        # the profiles' time zone (the clock's), else UTC
        if self.profiles is not None:
            return self.profiles.items[0].zone
        from billing.localtime import Zone

        return Zone()

    def _logbook(self, addr, arg):
        ev = self.events
        log = None
        if addr != "P.98":
            e = addr[5:]
            if not e.isdigit() or int(e) not in events.IDIS_LOGS:
                raise KeyError(addr)
            log = int(e)
        if ev is None:
            raise KeyError(addr)
        from billing import p01

        zone = self._zone()
        a, b = p01.parse_range(arg or ";", zone)

        def make():
            return ev.p98_lines(zone, log, a, b)

        return make

    def on_event(self, src, code, detail, value, cmd):
        """Session events of port ``src`` (events.SRC_*) into the meter's log, with the
        address concerned as the record's subject (refusal values: ERnn << 16 | command)."""
        S = events
        log = self.log.log
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
        # write / exec: the catalogue logs what changed

    def session(self, answer_unaddressed, src=None):
        """The Session of one port: the optical port (``answer_unaddressed`` True, events
        SRC_OPTICAL) or the RS-485 port (False, SRC_RS485, bus inactivity limit)."""
        if src is None:
            src = events.SRC_OPTICAL if answer_unaddressed else events.SRC_RS485
        bus = src == events.SRC_RS485
        from iec62056.session import Session

        return Session(self.address, manufacturer="OMF", ident="OPENMETER1",
                       readout=self.readout, reader=self.reader,
                       writer=lambda a, v, s: self.writer(a, v, s, src),
                       executor=lambda a, v, s: self.executor(a, v, s, src),
                       passwords=self.passwords, seal_open=self.seal_open,
                       on_event=lambda c, d, v, k: self.on_event(src, c, d, v, k),
                       lockout=self.lockout.port(src), time_s=self.clock.time,
                       profile=self.profile,
                       inactivity_ms=RS485_INACTIVITY_MS if bus else OPTICAL_INACTIVITY_MS,
                       answer_unaddressed=answer_unaddressed)
