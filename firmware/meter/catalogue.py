# The OBIS catalogue: every quantity the meter exposes, keyed by OBIS code.
"""The OBIS catalogue: the one list of what the meter exposes. The LCD (firmware/tasks/
display.py), the IEC 62056-21 map (firmware/ports/iec.py) and, later, DLMS and the uplink
read and write only through it; none of them knows where a value comes from.

An entry is a tuple ``(obis, kind, unit, decimals, access, source)`` (indexes ``E_*``):

- ``kind`` (``K_*``) fixes the value's type, which every reader formats its own way:

  ============  =========================================================================
  K_ENERGY      int, thousandths of the register unit (mWh, mvarh, mVAh; net may be
                negative); ``unit`` is the shown unit, 1000 x that (kWh, kvarh, kVAh)
  K_INSTANT     float in ``unit`` (V, A, W, var, Hz; "" for PF and the angle in degrees),
                the chip's calibrated reading of the last real second; ``decimals`` shown
                (kept in thousandths, Metering.instant_milli: :meth:`milli_getter`)
  K_TIME        int, RTC seconds since 2000-01-01 UTC, shown as the time of day
  K_DATE        int, RTC seconds, shown as the date
  K_TEXT        str
  K_HEX         int 32-bit word (or None: unavailable), shown as 8 hex digits
  K_INT         int in ``unit`` ("s", "min" or None)
  K_LIST        tuple of OBIS codes
  K_SEGMENTS    no value: the LCD segment test (8.8.8)
  K_ACTION      no value: executed (E2)
  K_DEMAND      int, mW (demand, maximum demand), shown as kW with 3 decimals
  ============  =========================================================================

- ``access``: bits A_READ (protocols read it), A_SHOW (it may be on the LCD lists),
  A_WRITE, A_EXEC, A_SEAL (writing or executing needs the seal open), A_HIST (a
  historical value ``X*VZ`` of a closed billing period: the source is the code itself);
- ``source``: what gives the value: a register selector (lib/energy), a key of
  ``Metering.instant_milli``, or a name: the catalogue's methods ``_g_<name>`` (read),
  ``_s_<name>`` (write) and ``_x_<name>`` (execute) serve the entry.

Values come from the single owner of each: registers (only the metering task writes them;
a cold start is a request to it), settings (validated setters, firmware/meter/settings.py),
test mode, status words, clock, software identification. Writes are logged here, once, with
the address and the source port (PARAM_CHANGED, CLOCK_SET; lib/events), whatever the
protocol. Clock sets from the local ports are limited per period while the seal is closed
(:attr:`Catalogue.clock_limit`, lib/billing/clocklimit.py: Failed, logged
CLOCK_SET_REFUSED); the uplink's sets (SRC_UPLINK) by the same rule in a budget of their
own (:attr:`Catalogue.clock_limit_uplink`). Errors: ``NotWritable`` (no such
writable/executable entry), ``Sealed`` (seal closed), ``ValueError`` (bad value), ``Failed``
(the action failed), ``Unavailable`` (a KeyError: no value yet, e.g. instantaneous values
before the first reading).

Billing (with ``billing=``, meter.billing.Billing; docs/BILLING.md): the tariff
registers of the tariffs the plan uses (1.8.E, 2.8.E, E = 1..``billing.tariffs_used``; the
banks beyond and the net per tariff have no entry: RAM), the active
tariff 0.0.96.14.0, the billing period counter 0.1.0 (VZ) and the time of the last end
0.1.2 (``Zyymmddhhmmss``), demand 1.4.0 (current average), 1.5.0 (last average), 1.14.0
(thermal), maximum demand 1.6.0 / 1.6.1..1.6.6 with their time stamps ``1.6.E.T``
(``Zyymmddhhmmss``, local time, Z = 1 in DST; "0000000000000" while there is none), the
cumulative maxima 1.2.0..1.2.6, the demand reset C.91.5 (E2, seal open; refused within
the reset lockout: Failed), and every historical value ``1.8.0*VZ``, ``1.8.E*VZ``,
``2.8.E*VZ``, ``1.6.E*VZ``, ``1.6.E.T*VZ``, ``1.2.E*VZ``, ``0.1.2*VZ`` of the snapshots
kept (R1 only: not in the catalogue's order).

Adding a quantity: one entry in ``_TABLE`` (or, for a register, nothing here: the energy
entries are made from the register layout, lib/energy.Registers.codes) plus its source.
RAM: the static rows are one constant tuple (in flash when frozen) and are the entries
themselves, found by a search; the catalogue holds only the register rows it made (a dict by
code); reads dispatch on the kind and allocate only what the value itself needs.
"""

from micropython import const

import events
from energy import NET
from meter import defaults, swid
from meter.testmode import SRC_COMMAND

K_ENERGY = const(1)
K_INSTANT = const(2)
K_TIME = const(3)
K_DATE = const(4)
K_TEXT = const(5)
K_HEX = const(6)
K_INT = const(7)
K_LIST = const(8)
K_SEGMENTS = const(9)
K_ACTION = const(10)
K_DEMAND = const(11)

A_READ = const(1)
A_SHOW = const(2)
A_WRITE = const(4)
A_EXEC = const(8)
A_SEAL = const(16)
A_HIST = const(32)

# the fields of an entry
E_OBIS = const(0)
E_KIND = const(1)
E_UNIT = const(2)
E_DEC = const(3)
E_ACCESS = const(4)
E_SRC = const(5)

MAX_LIST = const(64)
BILLING_REGISTER = "1.8.0"

# OBIS code, kind, unit, decimals, access, name (the source method "_g_<name>", the setter
# "_s_<name>", the action "_x_<name>"; for K_INSTANT the key of Metering.instant_milli)
_R = const(A_READ)  # (const: the rows below are constant tuples, in flash when frozen)
_RS = const(A_READ | A_SHOW)
_TABLE = (
    ("C.1.0", K_TEXT, None, 0, _R, "serial"),
    ("0.0.0", K_TEXT, None, 0, _R, "address"),
    ("0.9.1", K_TIME, None, 0, _RS | A_WRITE, "clock"),
    ("0.9.2", K_DATE, None, 0, _RS | A_WRITE, "clock"),
    ("0.2.0", K_TEXT, None, 0, _RS, "version"),
    ("0.2.8", K_HEX, None, 0, _RS, "checksum"),
    ("32.7.0", K_INSTANT, "V", 1, _RS, "V"),
    ("31.7.0", K_INSTANT, "A", 3, _RS, "I"),
    ("91.7.0", K_INSTANT, "A", 3, A_SHOW, "IN"),
    ("1.7.0", K_INSTANT, "W", 1, A_SHOW, "P"),
    ("3.7.0", K_INSTANT, "var", 1, A_SHOW, "Q"),
    ("14.7.0", K_INSTANT, "Hz", 2, _RS, "f"),
    ("13.7.0", K_INSTANT, "", 3, A_SHOW, "PF"),
    ("81.7.4", K_INSTANT, "", 1, A_SHOW, "angle"),
    ("C.5.0", K_HEX, None, 0, _RS, "service_flags"),
    ("F.F.0", K_HEX, None, 0, _RS, "error_flags"),
    ("8.8.8", K_SEGMENTS, None, 0, A_SHOW, None),
    ("0.3.0", K_INT, None, 0, _R | A_WRITE | A_SEAL, "meter_constant"),
    ("C.90.1", K_INT, "s", 0, _R | A_WRITE, "scroll_s"),
    ("C.90.2", K_TEXT, None, 0, A_WRITE, "password"),
    ("C.90.3", K_LIST, None, 0, _R | A_WRITE, "readout_list"),
    ("C.90.4", K_LIST, None, 0, _R | A_WRITE, "display_list"),
    ("C.90.5", K_LIST, None, 0, _R | A_WRITE, "alt_list"),
    ("C.91.0", K_ACTION, None, 0, A_EXEC, "clear_alarms"),
    ("C.91.1", K_INT, "min", 0, _R | A_EXEC, "test_mode"),
    ("C.91.2", K_ACTION, None, 0, A_EXEC, "leave_test"),
    ("C.91.3", K_INT, None, 0, _R | A_WRITE, "test_output"),
    ("C.91.4", K_INT, "min", 0, _R | A_WRITE, "test_minutes"),
    ("C.91.8", K_ACTION, None, 0, A_EXEC | A_SEAL, "format_journal"),
    ("C.91.7", K_ACTION, None, 0, A_EXEC | A_SEAL, "clear_audit"),  # meter/audit.py
    ("C.91.9", K_ACTION, None, 0, A_EXEC | A_SEAL, "cold_start"),
    # the uplink's MQTT broker "host:port" and GPRS APN (manufacturer-specific: mode C has
    # no code for them; DLMS keeps the APN in GPRS modem setup 0-0:25.4.0.255 attribute 2)
    ("C.93.1", K_TEXT, None, 0, _R | A_WRITE, "uplink_broker"),
    ("C.93.2", K_TEXT, None, 0, _R | A_WRITE, "uplink_apn"),
    # the uplink key (128 bits, 32 hex digits): written on a local port only, never read;
    # its key check value (meter/uplinkcfg.key_check) tells which key is set
    ("C.93.3", K_TEXT, None, 0, A_WRITE, "uplink_key"),
    ("C.93.4", K_TEXT, None, 0, _R, "uplink_key_check"),
    # W1 of a bus address (or "*"): the concentrator's serial binding of it removed (a
    # replaced meter; uplink/concentrator.py)
    ("C.93.9", K_TEXT, None, 0, A_WRITE, "bus_unbind"),
)
# where the register entries go in the catalogue's order (after 0.2.8, as the readout has
# them)
_ENERGY_AT = const(6)


# the billing entries (module docstring; with ``billing=``), after the energy registers: a
# constant tuple (in flash when frozen: no RAM on a device)
_XS = const(A_EXEC | A_SEAL)
_BILLING_TABLE = (
    ("0.0.96.14.0", K_INT, None, 0, _RS, "b:tariff"),
    ("0.1.0", K_INT, None, 0, _RS, "b:vz"),
    ("0.1.2", K_TEXT, None, 0, _R, "b:end"),
    ("1.4.0", K_DEMAND, "kW", 3, _RS, "b:cur"),
    ("1.5.0", K_DEMAND, "kW", 3, _RS, "b:last"),
    ("1.14.0", K_DEMAND, "kW", 3, _RS, "b:thermal"),
    ("1.6.0", K_DEMAND, "kW", 3, _RS, "b:max0"),
    ("1.6.0.T", K_TEXT, None, 0, _R, "b:maxt0"),
    ("1.6.1", K_DEMAND, "kW", 3, _RS, "b:max1"),
    ("1.6.1.T", K_TEXT, None, 0, _R, "b:maxt1"),
    ("1.6.2", K_DEMAND, "kW", 3, _RS, "b:max2"),
    ("1.6.2.T", K_TEXT, None, 0, _R, "b:maxt2"),
    ("1.6.3", K_DEMAND, "kW", 3, _RS, "b:max3"),
    ("1.6.3.T", K_TEXT, None, 0, _R, "b:maxt3"),
    ("1.6.4", K_DEMAND, "kW", 3, _RS, "b:max4"),
    ("1.6.4.T", K_TEXT, None, 0, _R, "b:maxt4"),
    ("1.6.5", K_DEMAND, "kW", 3, _RS, "b:max5"),
    ("1.6.5.T", K_TEXT, None, 0, _R, "b:maxt5"),
    ("1.6.6", K_DEMAND, "kW", 3, _RS, "b:max6"),
    ("1.6.6.T", K_TEXT, None, 0, _R, "b:maxt6"),
    ("1.2.0", K_DEMAND, "kW", 3, _RS, "b:cum0"),
    ("1.2.1", K_DEMAND, "kW", 3, _RS, "b:cum1"),
    ("1.2.2", K_DEMAND, "kW", 3, _RS, "b:cum2"),
    ("1.2.3", K_DEMAND, "kW", 3, _RS, "b:cum3"),
    ("1.2.4", K_DEMAND, "kW", 3, _RS, "b:cum4"),
    ("1.2.5", K_DEMAND, "kW", 3, _RS, "b:cum5"),
    ("1.2.6", K_DEMAND, "kW", 3, _RS, "b:cum6"),
    ("C.91.5", K_ACTION, None, 0, _XS, "demand_reset"),
    # the passive tariff plan written in programming mode (meter/touprog.py), seal open
    ("C.92.1", K_TEXT, None, 0, A_WRITE | A_SEAL, "tou_season"),
    ("C.92.2", K_TEXT, None, 0, A_WRITE | A_SEAL, "tou_week"),
    ("C.92.3", K_TEXT, None, 0, A_WRITE | A_SEAL, "tou_day"),
    ("C.92.4", K_TEXT, None, 0, A_WRITE | A_SEAL, "tou_special"),
    ("C.92.5", K_TEXT, None, 0, A_WRITE | A_SEAL, "tou_activation"),
    ("C.92.8", K_ACTION, None, 0, _XS, "tou_clear"),
    ("C.92.9", K_TEXT, None, 0, _R | _XS, "tou_install"),
)


def _hist_entry(obis):
    # the entry of a historical value X*VZ (read through Billing.historical)
    base = obis.partition("*")[0]
    if base.endswith(".T") or base == "0.1.2":
        kind, unit = K_TEXT, None
    elif base.startswith("1.6.") or base.startswith("1.2."):
        kind, unit = K_DEMAND, "kW"
    else:
        kind, unit = K_ENERGY, "kWh" if base[:2] in ("1.", "2.") else "kvarh"
        if base.startswith("9.") or base.startswith("10."):
            unit = "kVAh"
    return (obis, kind, unit, 3, A_READ | A_HIST, obis)


def event_code(code):
    """The n (1..9) of an LCD list code ``P.98&n``: the n-th newest event of the logs
    (tasks/display.py), else 0."""
    if isinstance(code, str) and len(code) == 6 and code[:5] == "P.98&" and "1" <= code[5] <= "9":
        return int(code[5])
    return 0


class NotWritable(KeyError):
    """No writable (or executable) entry of that code."""


class Sealed(ValueError):
    """The entry needs the seal open."""


class Failed(Exception):
    """The action was accepted but failed (e.g. the flash)."""


class Unavailable(KeyError):
    """The quantity has no value yet."""


class Catalogue:
    """The catalogue over the meter's parts: ``registers`` (lib.energy.Registers),
    ``metering`` (meter.metering.Metering), ``settings`` (meter.settings.Settings),
    ``status`` (meter.status.Status), ``testmode`` (meter.testmode.TestMode), ``clock`` (the
    board clock: ``time()``, ``set_time(s)``), ``log`` (lib.events.EventLog), ``serial``,
    ``address`` (str); :attr:`storage` (meter.storage.Storage or None) and :attr:`events`
    (meter.eventstore.EventStore or None) for C.91.8 and the commits of a cold start.
    Registers the list validators with ``settings``."""

    def __init__(self, registers, metering, settings, status, testmode, clock, log, serial,
                 address, billing=None):
        self.registers = registers
        self.metering = metering
        self.settings = settings
        self.status = status
        self.testmode = testmode
        self.clock = clock
        self.log = log
        self.serial = serial
        self.address = address
        self.storage = None
        self.events = None
        self.audit = None  # meter.audit.AuditTrail: changes of its PARAMS recorded (WELMEC)
        self.concentrator = None  # uplink.concentrator.Concentrator: C.93.9 unbinds there
        self.billing = billing
        self.on_clock_set = None  # callable(old, new): the billing consumers re-align
        self.clock_limit = None  # billing.clocklimit.ClockLimit: local ports' sets per period
        self.clock_limit_uplink = None  # the same rule, the uplink's own budget (SRC_UPLINK)
        # callable() -> ClockLimit: each of the two built at its first set (RAM: most meters
        # never have their clock set over a port; the budget is rebuilt then anyway)
        self.make_clock_limit = None
        self.touprog = None  # meter.touprog.TouProgram: C.92.x, the tariff plan over IEC
        self.make_touprog = None  # callable(obis) -> TouProgram: built at the first C.92.x
        used = registers.tariffs if billing is None else billing.tariffs_used
        ent = {}
        for e in self._order(used):
            if e[E_KIND] == K_ENERGY:
                ent[e[E_OBIS]] = e
        self._ent = ent  # the register rows (the static ones are searched: _row)
        settings.validator("readout_list", self._check_readout)
        settings.validator("display_list", lambda v: self.check_list(v, A_SHOW, True))
        settings.validator("alt_list", lambda v: self.check_list(v, A_SHOW, False))

    def _order(self, used):
        # every entry in the catalogue's order (the readout's): the static rows, and after
        # 0.2.8 the registers (of the tariff banks 1..``used``) and the billing entries
        for i in range(len(_TABLE)):
            if i == _ENERGY_AT:
                for obis, unit, sel in self.registers.codes():
                    if sel >> 4 > used or (sel >> 4 and sel & 15 == NET):
                        continue  # banks the plan does not use, net per tariff: no entry
                    yield (obis, K_ENERGY, "k" + unit, 3, _RS, sel)
                if self.billing is not None:
                    for row in _BILLING_TABLE:
                        yield row
            yield _TABLE[i]

    def _row(self, obis, need=False):
        # the entry of ``obis``: a register row the catalogue made, else a static row found in
        # the constant tables (no dict of every code in RAM, issue 12); None (``need``:
        # KeyError) when there is none
        e = self._ent.get(obis)
        if e is None:
            for row in _TABLE:
                if row[E_OBIS] == obis:
                    return row
            if self.billing is not None:
                for row in _BILLING_TABLE:
                    if row[E_OBIS] == obis:
                        return row
            if need:
                raise KeyError(obis)
        return e

    # -- lookup ----------------------------------------------------------------------------

    def entry(self, obis):
        """The entry tuple of ``obis`` (module docstring, fields ``E_*``) or None."""
        e = self._row(obis)
        if e is None and self.billing is not None and "*" in obis:
            return _hist_entry(obis)
        return e

    def codes(self, access):
        """Codes (catalogue order) whose entries have every bit of ``access``. (The order is
        made again at each call, not kept: RAM, issue 12.)"""
        ent = self._ent
        return [e[E_OBIS] for e in self._order(self.registers.tariffs)
                if (e[E_KIND] != K_ENERGY or e[E_OBIS] in ent) and e[E_ACCESS] & access == access]

    def check_list(self, codes, access, billing=False):
        """Raise ValueError (naming the problem) unless ``codes`` is a list of 1..64 codes
        with ``access`` (and, with ``billing``, holding the billing register 1.8.0). LCD
        lists (A_SHOW) may also hold the historical values of the last closed billing
        periods, ``X*VZ`` / ``X&VZ-n`` (meter.billing.show_code), and the last events
        ``P.98&n`` (:func:`event_code`)."""
        if not isinstance(codes, (list, tuple)) or not 1 <= len(codes) <= MAX_LIST:
            raise ValueError("list must hold 1..%d codes" % MAX_LIST)
        if billing and BILLING_REGISTER not in codes:
            raise ValueError("the billing register 1.8.0 must be in the list")
        hist = None
        if access == A_SHOW and self.billing is not None:
            from meter.billing import show_code as hist  # X*VZ, X&VZ-n: closed periods
        for c in codes:
            e = self._row(c) if isinstance(c, str) else None
            if e is None and hist is not None and isinstance(c, str) and hist(c):
                continue
            if e is None and access == A_SHOW and event_code(c):
                continue
            if e is None or e[E_ACCESS] & access != access:
                raise ValueError("unknown display code %r" % (c,) if access == A_SHOW else
                                 "unknown readout code %r" % (c,))

    def _check_readout(self, codes):
        self.check_list(codes, A_READ)
        for c in codes:
            if self._row(c)[E_KIND] == K_LIST:
                raise ValueError("%s is a list, not a readout value" % c)

    # -- reading ---------------------------------------------------------------------------

    def read(self, obis, access=A_READ):
        """The value of ``obis`` (typed by its kind). KeyError if there is no entry with
        ``access``, Unavailable (a KeyError) if it has no value yet."""
        e = self.entry(obis)
        if e is None or not e[E_ACCESS] & access:
            raise KeyError(obis)
        return self.value(e)

    def value(self, e):
        """The value of entry ``e``."""
        k = e[E_KIND]
        if e[E_ACCESS] & A_HIST:
            return self.billing.historical(e[E_SRC])
        if k == K_ENERGY:
            return self.registers.milli(e[E_SRC])
        if k == K_INSTANT:
            v = self.metering.instant_value(e[E_SRC])
            if v is None:
                raise Unavailable("no reading yet")
            return v
        if k == K_SEGMENTS or k == K_ACTION:
            return None
        if k == K_DEMAND or e[E_SRC][:2] == "b:":
            return self.billing.read(e[E_SRC])
        return getattr(self, "_g_" + e[E_SRC])()

    def getter(self, obis):
        """A callable returning the value of ``obis`` (made once, e.g. for an LCD list
        item); KeyError if unknown."""
        e = self._row(obis, True)
        k = e[E_KIND]
        if k == K_ENERGY:
            milli = self.registers.milli
            sel = e[E_SRC]
            return lambda: milli(sel)
        if k == K_INSTANT:
            m = self.metering
            key = e[E_SRC]

            def inst():
                v = m.instant_value(key)
                if v is None:
                    raise Unavailable("no reading yet")
                return v

            return inst
        if k == K_SEGMENTS or k == K_ACTION:
            return lambda: None
        if k == K_DEMAND or e[E_SRC][:2] == "b:":
            return self.billing.getter(e[E_SRC])  # (the key parsed once: no slices a read)
        return getattr(self, "_g_" + e[E_SRC])  # the bound method, made once

    def milli_getter(self, obis):
        """K_INSTANT entry ``obis``: a callable returning its value in thousandths (int, as
        Metering.instant_milli keeps it; Unavailable before the first reading), for readers
        that refresh every second (the LCD): no float allocated."""
        m = self.metering
        key = self._row(obis, True)[E_SRC]

        def inst():
            v = m.instant_milli
            if v is None:
                raise Unavailable("no reading yet")
            return v[key]

        return inst

    def units_getter(self, obis):
        """K_ENERGY entry ``obis``: a callable returning whole units (Wh, varh, VAh; int,
        truncated towards zero; lib/energy Registers.units), a small int on a 32-bit port up
        to 1.07 GWh where the mWh of :meth:`read` pass 2^30 at 1.07 MWh."""
        units = self.registers.units
        sel = self._row(obis, True)[E_SRC]
        return lambda: units(sel)

    def _g_serial(self):
        return self.serial

    def _g_address(self):
        return self.address

    def _g_clock(self):
        return self.clock.time()

    def _g_version(self):
        return swid.VERSION

    def _g_checksum(self):
        return swid.checksum_cached()

    def _g_service_flags(self):
        return self.status.service_flags()

    def _g_error_flags(self):
        return self.status.error_flags()

    def _g_meter_constant(self):
        return self.settings["meter_constant"]  # imp/kWh

    def _g_scroll_s(self):
        return self.settings["scroll_ms"] // 1000

    def _g_readout_list(self):
        return tuple(self.settings.get("readout_list") or defaults.READOUT)

    def _g_display_list(self):
        return tuple(self.settings["display_list"])

    def _g_alt_list(self):
        return tuple(self.settings["alt_list"])

    def _g_uplink_broker(self):
        return self.settings["uplink_broker"]

    def _g_uplink_apn(self):
        return self.settings["uplink_apn"]

    def _g_uplink_key_check(self):
        from meter.uplinkcfg import key_check

        try:
            return key_check(self.settings.get("uplink_key", ""))
        except (ValueError, TypeError):  # (a damaged stored key: the uplink refuses it)
            return "invalid"

    def _g_test_mode(self):
        return self.testmode.minutes_left()

    def _g_test_output(self):
        return 1 if self.settings.get("test_led") == "kvarh" else 0

    def _g_test_minutes(self):
        return self.testmode.minutes

    # -- writing ---------------------------------------------------------------------------

    def _target(self, obis, bit, seal_open):
        e = self._row(obis)
        fn = None
        if e is not None and e[E_ACCESS] & bit:
            fn = getattr(self, ("_x_" if bit == A_EXEC else "_s_") + e[E_SRC], None)
        if fn is None:
            raise NotWritable(obis)
        if e[E_ACCESS] & A_SEAL and not seal_open:
            raise Sealed(obis)
        return fn

    def write(self, obis, value, src=events.SRC_METER, seal_open=False):
        """Write ``value`` (typed as the entry's kind) to ``obis`` for port ``src``. Raises
        NotWritable, Sealed or ValueError (nothing changed then); logs the change. A
        parameter of the audit trail (meter/audit.py) is recorded with its old and new
        value, and refused (Failed, logged AUDIT_REFUSED) while the trail is full."""
        fn = self._target(obis, A_WRITE, seal_open)
        e = self._row(obis)
        if e[E_SRC] == "clock":
            fn = self._clock_gate(value, src, seal_open, obis)
        au = self.audit
        if au is None or obis not in au.params:
            fn(value, src, obis)
            return
        if au.full:
            self.log.log(events.AUDIT_REFUSED, au.used, None, src, obis)
            raise Failed("audit trail full: read it out (R5 P.99) and clear it (E2 C.91.7)")
        old = self.value(e)
        fn(value, src, obis)
        au.record(obis, old, self.value(e), src)

    def execute(self, obis, arg=None, src=events.SRC_METER, seal_open=False):
        """Execute the action ``obis`` (``arg``: its typed argument or None). Raises
        NotWritable, Sealed, ValueError or Failed."""
        self._target(obis, A_EXEC, seal_open)(arg, src, obis)

    def _changed(self, obis, value, src, text=None):
        self.log.log(events.PARAM_CHANGED, value, text or obis, src, obis)

    def _s_clock(self, secs, src, obis):
        if not isinstance(secs, int) or not 0 <= secs < 3155760000:  # 2000 .. 2099
            raise ValueError("RTC seconds out of range")
        old = self.clock.time()
        self.clock.set_time(secs)
        self.log.log(events.CLOCK_SET, secs, None, src, obis)
        if self.on_clock_set is not None:
            self.on_clock_set(old, secs)

    def _clock_gate(self, secs, src, seal_open, obis):
        # the limit per period on the local ports (lib/billing/clocklimit.py): a refused set
        # is logged CLOCK_SET_REFUSED (value: why) and answered ER09 (Failed); the setter
        # that counts an allowed set is returned. The uplink (``time`` and ``config``) has a
        # budget of its own: its sets never use up the local ports' (an unauthenticated
        # ``time`` could otherwise block a technician's sets for the day)
        up = src == events.SRC_UPLINK
        if not (up or src in (events.SRC_OPTICAL, events.SRC_RS485)):
            return self._s_clock
        lim = self.clock_limit_uplink if up else self.clock_limit
        if lim is None and self.make_clock_limit is not None:
            lim = self.make_clock_limit()
            # the period's sets from the audit trail before it is kept: a read that raised
            # (a flash error, memory short) must not leave a budget that counted none
            self._clock_restore(lim, up)
            lim.restored = True
            if up:
                self.clock_limit_uplink = lim
            else:
                self.clock_limit = lim
        if lim is None:
            return self._s_clock
        if not isinstance(secs, int) or not 0 <= secs < 3155760000:
            raise ValueError("RTC seconds out of range")
        if not lim.restored:  # (marked once done: a read that raised is done again)
            self._clock_restore(lim, up)
            lim.restored = True
        old = self.clock.time()
        valid = getattr(self.clock, "rtc_valid", True)
        why = 0 if seal_open else lim.check(old, secs, valid)
        if why:
            sets, shift = lim.left(old)
            self.log.log(events.CLOCK_SET_REFUSED, why,
                         "clock set refused: %s (%d sets, %d s of shift left this %s)" % (
                             "sets per period used up" if why == 1 else "shift too large",
                             sets, shift, lim.period), src, obis)
            raise Failed("clock set limit per period")

        def setter(v, src_, obis_):
            self._s_clock(v, src_, obis_)
            lim.record(old, v, valid)

        return setter

    def _clock_restore(self, lim, uplink=False):
        # the budget of the period from the audit trail's record of the local ports' sets
        # (``uplink``: of the uplink's)
        au = self.audit
        if au is None:
            return
        for _n, _t, p, old, new, src in au.entries():
            if (p == "0.9.1" or p == "0.9.2") and (
                    src == events.SRC_UPLINK if uplink else src in (events.SRC_OPTICAL,
                                                                   events.SRC_RS485)):
                lim.record(old, new)

    # -- the passive tariff plan over IEC 62056-21 (meter/touprog.py) -------------------------

    def _tou(self, obis):
        if self.touprog is None:
            if self.make_touprog is None:
                raise NotWritable(obis)
            self.touprog = self.make_touprog(obis)
        return self.touprog

    def _tou_write(self, kind, v, src, obis):
        tp = self._tou(obis)
        try:
            tp.write(kind, v)
        except ValueError:
            self.log.log(events.TOU_REFUSED, kind, tp.result, src, obis)
            raise

    def _s_tou_season(self, v, src, obis):
        self._tou_write(1, v, src, obis)

    def _s_tou_week(self, v, src, obis):
        self._tou_write(2, v, src, obis)

    def _s_tou_day(self, v, src, obis):
        self._tou_write(3, v, src, obis)

    def _s_tou_special(self, v, src, obis):
        self._tou_write(4, v, src, obis)

    def _s_tou_activation(self, v, src, obis):
        self._tou_write(5, v, src, obis)

    def _x_tou_clear(self, _arg, src, obis):
        self._tou(obis).clear()

    def _g_tou_install(self):
        # the last result as a mode C value: no ( ) / ! *, at most 128 characters
        r = self.touprog.result if self.touprog is not None else "ok"
        for c in "()/!*":
            r = r.replace(c, "?")
        return r[:128]

    def _x_tou_install(self, _arg, src, obis):
        # check and install the staged plan: audited, saved before the ACK, logged
        tp = self._tou(obis)
        au = self.audit
        if au is not None and au.full:
            self.log.log(events.AUDIT_REFUSED, au.used, None, src, obis)
            raise Failed("audit trail full: read it out (R5 P.99) and clear it (E2 C.91.7)")
        st = self.settings
        if not st.save_allowed():
            raise Failed("configuration write budget spent")
        try:
            old, new = tp.install()
        except ValueError:
            self.log.log(events.TOU_REFUSED, 9, tp.result, src, obis)
            raise
        st.set("tou_program", tp.record())
        if au is not None:
            au.record(obis, old, new, src)
        self.log.log(events.TOU_PROGRAMMED, new, None, src, obis)
        if not st.save_now():
            raise Failed("configuration not written")

    def _x_demand_reset(self, _arg, src, obis):
        # closes the billing period (snapshot, VZ + 1, maxima reset); logged by the billing
        b = self.billing
        if b is None:
            raise NotWritable(obis)
        if b.demand_reset(src) is None:
            raise Failed("demand reset lockout: %d s left" % b.lockout_left())

    def _s_meter_constant(self, v, src, obis):
        # metrological: in flash before the ACK (never acknowledged and then lost)
        st = self.settings
        st.check_value("meter_constant", v)
        if not st.save_allowed():
            raise Failed("configuration write budget spent")
        st.set_sealed("meter_constant", v, True)
        self._changed(obis, v, src, "meter constant")
        if not st.save_now():
            raise Failed("configuration not written")

    def _s_scroll_s(self, v, src, obis):
        if not isinstance(v, int) or not 1 <= v <= 255:
            raise ValueError("scroll time must be 1..255 s")
        self.settings.set("scroll_ms", v * 1000)
        self._changed(obis, v, src)

    def _s_password(self, v, src, obis):
        # in flash before the ACK: a power cut never brings an old password back
        st = self.settings
        st.check_value("password", v)
        if not st.save_allowed():
            raise Failed("configuration write budget spent")
        st.set("password", v)
        st.password_set()  # trusted again: clears F.F.0 ERR_SECURITY
        ok = st.save_now()
        self._changed(obis, 0, src, "password changed")
        if not ok:
            raise Failed("configuration not written")

    def _s_readout_list(self, codes, src, obis):
        self.settings.set("readout_list", list(codes))
        self._changed(obis, len(codes), src)

    def _s_display_list(self, codes, src, obis):
        self.settings.set("display_list", list(codes))
        self._changed(obis, len(codes), src)

    def _s_alt_list(self, codes, src, obis):
        self.settings.set("alt_list", list(codes))
        self._changed(obis, len(codes), src)

    def _s_uplink_broker(self, v, src, obis):
        # (ValueError naming the setting; the uplink reconnects at its next session)
        self.settings.set("uplink_broker", v)
        self._changed(obis, len(v), src)

    def _s_uplink_apn(self, v, src, obis):
        self.settings.set("uplink_apn", v)
        self._changed(obis, len(v), src)

    def _s_uplink_key(self, v, src, obis):
        # a secret: never over the uplink it protects (the MQTT link is not encrypted), in
        # flash before the ACK (a power cut never brings an old key back), logged without
        # its value (UPLINK_KEY_CHANGED, IDIS 48)
        if src == events.SRC_UPLINK:
            raise Failed("uplink key: written on a local port only")
        st = self.settings
        st.check_value("uplink_key", v)
        if not st.save_allowed():
            raise Failed("configuration write budget spent")
        st.set("uplink_key", v)
        ok = st.save_now()
        self.log.log(events.UPLINK_KEY_CHANGED, 1 if v else 0, None, src, obis)
        if not ok:
            raise Failed("configuration not written")

    def _s_bus_unbind(self, v, src, obis):
        # in flash before the ACK (a power cut never brings the replaced meter's binding
        # back: its successor would be refused until the next visit); "ADDRESS=SERIAL"
        # binds instead (a pre-binding, before the first poll: uplinkcfg.bind_table)
        st = self.settings
        if not st.save_allowed():
            raise Failed("configuration write budget spent")
        c = self.concentrator
        if isinstance(v, str) and "=" in v:
            if c is not None:
                c.bind(v)
            else:
                from meter.uplinkcfg import bind_table

                st.set("bus_bindings", bind_table(st.get("bus_bindings") or {}, v))
            ok = st.save_now()
            self._changed(obis, 1, src, "bus binding " + v)
            if not ok:
                raise Failed("configuration not written")
            return
        if c is not None:  # (its bindings kept in RAM only too; an address's variants)
            n = c.unbind(v)
        else:
            b = st.get("bus_bindings") or {}
            if v == "*":
                nb = {}
            elif isinstance(v, str) and v in b:
                nb = dict(b)
                del nb[v]
            else:
                raise ValueError("bus address not bound")
            st.set("bus_bindings", nb)
            n = len(b) - len(nb)
        ok = st.save_now()
        self._changed(obis, n, src, "bus binding removed")
        if not ok:
            raise Failed("configuration not written")

    def _s_test_output(self, v, src, obis):
        if v not in (0, 1):
            raise ValueError("test output: 0 kWh LED, 1 kvarh LED")
        self.settings.set("test_led", "kvarh" if v else "kWh")
        self._changed(obis, v, src)

    def _s_test_minutes(self, v, src, obis):
        self.settings.set("test_mode_minutes", v)
        self._changed(obis, v, src)

    def _x_clear_alarms(self, _arg, src, obis):
        self.settings.clear_alarm()
        self._changed(obis, 0, src, "alarms cleared")

    def _x_test_mode(self, minutes, src, obis):
        self.testmode.enter(minutes, SRC_COMMAND)

    def _x_leave_test(self, _arg, src, obis):
        self.testmode.leave(SRC_COMMAND)

    def _x_format_journal(self, _arg, src, obis):
        # a foreign register journal and/or event log (write-protected): formatted
        s = self.storage
        ev = self.events
        jb = s is not None and s.journal.blocked
        eb = ev is not None and ev.blocked()
        if not jb and not eb:
            raise NotWritable(obis)
        ok = ev.format() if eb else True  # first: the journal's events are persisted then
        if jb:
            ok = s.format_journal() and ok
        if not ok:
            raise Failed("format failed")
        self._changed(obis, 0, src, "journal formatted")  # who: the port, in the audit

    def _x_clear_audit(self, _arg, src, obis):
        # the audit trail, read out completely since its last entry (meter/audit.py)
        au = self.audit
        if au is None:
            raise NotWritable(obis)
        n = au.used
        if not au.clear(src):
            raise Failed("audit trail not read out since its last entry")
        self.log.log(events.AUDIT_CLEARED, n, None, src, obis)

    def _x_cold_start(self, _arg, src, obis):
        # a request the metering task executes (it alone writes registers); acknowledged only
        # when the journal can take a commit now (else a restart would silently undo it)
        s = self.storage
        done = None
        if s is not None:
            from flashstore import journal

            if not s.journal.blocked and not s.commit(journal.REASON_MANUAL):
                raise Failed("journal not writable")

            def done():
                s.commit(journal.REASON_MANUAL)

        self.metering.request_clear(src, done)
