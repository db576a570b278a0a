# The virtual board's command line: the options table, checked values, clear errors.
"""Options of the virtual board (``make sim ARGS="..."``).

The command-line options are in :data:`USAGE` (printed by ``--help``; a constant, because
MicroPython drops docstrings). :func:`parse_args` checks every value and raises
:class:`UsageError` with a message naming the option and the bad value; :func:`opening`
turns an OSError into one naming the file, tty or TCP port.
"""

from boards.sim.ade7953_model import FAULTS, ONE_SHOT

DEFAULT_LOAD = "boards/sim/loads/household_pv_2016.csv"

USAGE = """usage: make sim ARGS="[options]"  (micropython firmware/main.py [options])

Metering and time
  --load FILE        load trace CSV t_s,p_w,q_var
                     (default: the bundled household + PV load, 2016)
  --speed N|max      simulated seconds per wall second, 0.001..1e9 (default
                     1); max (or 0): as fast as possible. Same registers.
  --duration S       stop at exactly S simulated seconds (default: Ctrl-C)
  --voltage V        line voltage, 1..354 V rms (default 230)
  --neutral-pct P    neutral (channel B) current in % of the phase current,
                     0..200 (default 100)
  --fault F          ADE7953 fault from power-up (or from --fault-at): dead0,
                     deadff (MISO stuck), misclocked (1-bit shift), irqstuck
                     (IRQSTATA overflow bits stuck); once at --fault-at: reset,
                     bitflip (one MISO bit of APENERGYA), rstread (RSTREAD off)
  --fault-at S       ... from (or at) simulated second S

Billing
  --tariffs FILE     billing configuration JSON: time zone and DST rule, tariff
                     plan (DLMS activity calendar shape), demand, billing
                     period (README "Billing"; default: UTC, one tariff,
                     15-min block demand, period end on the 1st at 00:00)

RTC (battery backed; its state is kept in PATH.rtc next to --flash PATH)
  --start T          set the RTC at power-up: ISO 8601 UTC, e.g.
                     2016-01-01T00:00:00Z or 2016-01-01, or seconds since
                     2000-01-01 (default: the kept state, else 2016-01-01)
  --off-time S       with --flash: the mains was off S seconds before this
                     run (default: the host's wall time since the last run)
  --rtc-battery B    ok (default), or flat: the RTC lost its time; it restarts
                     at 2000-01-01, flagged invalid (F.F.0, ALARM) until set

Flash and power
  --flash PATH       keep the NOR-flash image in PATH: a restart resumes the
                     registers (--duration 0 --json boots and prints them)
  --no-flash         no flash at all (heap measurements)
  --commit-s S       periodic register commit, 1..1e9 s (default 300)
  --power-fail-at S  power-fail input at simulated second S; the supply goes
                     --holdup-ms (0..60000, default 100) simulated ms later
  --cut-at-op N      cut power at the N-th flash program/erase

Load profile (firmware/meter/profile.py)
  --profile-period S capture period of load profile 1 (P.01): 60, 300, 600,
                     900 (default), 1800 or 3600 s
  --profile-channels C  its channels, comma-separated (default
                     1.29,2.29,3.29,4.29,1.5,32.7; see docs/PERSISTENCE.md)
  --profile-csv PATH at exit write the load profile as CSV to PATH (profiles
                     2 and 3, if configured, to PATH.p02.csv, PATH.p03.csv)

Ports and inputs
  --serial ID        serial number, 1..16 printable characters (SIM00001)
  --address A        IEC 62056-21 device address, 1..32 letters and digits
                     (default: the serial)
  --optical-tcp P    optical port (IEC 62056-21): TCP server 127.0.0.1:P
  --optical-dev PATH optical port on a tty (pty from tools/pty_bridge.py)
  --rs485-bus H:P    join the RS-485 bus hub (tools/rs485_hub.py) at H:P
  --control-tcp P    control channel on 127.0.0.1:P (buttons, switches, LCD,
                     modem network conditions)
  --concentrator A[,A...]  bus master on the RS-485 bus (needs --rs485-bus):
                     read these 1..32 meter addresses with IEC 62056-21
                     readouts every --concentrator-interval S (default 900,
                     60..86400) and forward them (with --broker) under their
                     serials; the meter itself does not answer on the bus
  --broker H:P       MQTT broker of the uplink, reached through the modem
                     model; overrides the setting uplink_broker (C.93.1,
                     default 127.0.0.1:1883) at start-up; none there: quiet
                     retries
  --no-uplink        no modem on the board: the uplink does not start
  --network-outage A:B  the modem's network goes down (+PDP: DEACT) at
                     simulated second A and comes back at B
  --seal open|closed seal switch (default closed)

Output
  --json             at exit one JSON line: registers (Wh, varh, VAh; 3
                     decimals), sim_s, wall_s, rtc_s, rtc_valid, error_flags
                     (F.F.0), events, status_leds, heap, flash, ports
  --plain            one plain text line per LCD frame
  --quiet            no LCD and no summary at the end
  --heap-every S     every S wall seconds the heap after gc (--json heap_log)
  -h, --help         this text
"""

# 2000-01-01 .. 2099-12-31: the RTC range meters use (lib/civil)
_START_MAX = 3155760000


class Options:
    def __init__(self):
        self.load = DEFAULT_LOAD
        self.speed = 1.0
        self.duration = None
        self.serial = "SIM00001"
        self.json = False
        self.plain = False
        self.quiet = False
        self.fault = None
        self.fault_at = None
        self.voltage = 230.0
        self.neutral_pct = 100
        self.start = None  # --start (RTC seconds since 2000) or None: kept state / default
        self.off_time = None
        self.rtc_battery = "ok"
        self.flash = None
        self.power_fail_at = None
        self.holdup_ms = 100
        self.cut_at_op = None
        self.commit_s = 300
        self.no_flash = False
        self.no_uplink = False
        self.optical_tcp = None
        self.rs485_bus = None
        self.optical_dev = None
        self.heap_every = None
        self.address = None
        self.seal = "closed"
        self.control_tcp = None
        self.profile_period = None
        self.profile_channels = None
        self.profile_csv = None
        self.load_profiles = None  # from --profile-period / --profile-channels
        # the uplink's broker (host, port) over the setting uplink_broker at start-up; None:
        # the setting's (default 127.0.0.1:1883; none there: quiet retries)
        self.broker = None
        self.network_outage = None
        self.tariffs = None  # --tariffs: the billing configuration file or None
        self.concentrator = None  # --concentrator: bus addresses (tuple) or None
        self.concentrator_interval = 900


class UsageError(ValueError):
    """A bad command line; the message names the option and the value."""


class HelpRequested(UsageError):
    """``-h`` / ``--help``: the message is :data:`USAGE` (exit status 0)."""


def _finite(x):
    return x - x == 0  # False for inf and nan


def _number(v, lo, hi, integer=False):
    """``v`` (text) as a number in lo..hi; ValueError (with the reason) otherwise."""
    try:
        x = int(v) if integer else float(v)
    except ValueError:
        raise ValueError("not %s" % ("an integer" if integer else "a number")) from None
    if not _finite(x) or not lo <= x <= hi:
        raise ValueError("must be %s..%s" % (_g(lo), _g(hi)))
    return x


def _g(x):
    if x == int(x) and abs(x) < 1e7:
        return str(int(x))
    return "%g" % x


def load_tariffs(path):
    """--tariffs FILE: the billing configuration, checked (lib/billing/config.py); raises
    UsageError naming the file and its problem or the field. Called by the board after the
    flash model took its memory (the billing modules' code would fragment the heap)."""
    try:
        return _tariffs(path)
    except ValueError as e:
        raise UsageError("bad value for --tariffs: %r (%s)" % (path, e)) from None


def _tariffs(path):
    import json

    from billing import config

    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ValueError(os_error_text(e)) from None
    try:
        cfg = json.loads(text)
    except ValueError:
        raise ValueError("not valid JSON") from None
    config.load(cfg)
    return cfg


def _port(v):
    return _number(v, 1, 65535, True)


def _text(v, n, what):
    if not 0 < len(v) <= n or not all(" " < c <= "~" for c in v):
        raise ValueError("%s must be 1..%d printable ASCII characters" % (what, n))
    return v


def _device_address(v):
    # IEC 62056-21 device address: 1..32 letters and digits (lib/iec62056/codec.py)
    if not 0 < len(v) <= 32 or not all(
            "0" <= c <= "9" or "A" <= c <= "Z" or "a" <= c <= "z" for c in v):
        raise ValueError("an IEC 62056-21 device address is 1..32 letters and digits")
    return v


def parse_start(v):
    """--start: ISO 8601 UTC ``YYYY-MM-DD[THH:MM[:SS]][Z]`` (or a space for the T) or whole
    seconds since 2000-01-01; returns RTC seconds. ValueError naming the problem."""
    from civil import seconds

    if v.isdigit():
        s = int(v)
        if s >= _START_MAX:
            raise ValueError("seconds since 2000 must be below %d (2100-01-01)" % _START_MAX)
        return s
    t = v[:-1] if v.endswith("Z") or v.endswith("z") else v
    date, _, tod = t.replace(" ", "T").partition("T")
    d = date.split("-")
    hm = tod.split(":") if tod else []
    if len(d) != 3 or (tod and len(hm) not in (2, 3)) or not all(
            p.isdigit() for p in d + hm) or len(d[0]) != 4:
        raise ValueError("use YYYY-MM-DD[THH:MM[:SS]][Z] (UTC) or seconds since 2000")
    y, mo, dd = int(d[0]), int(d[1]), int(d[2])
    hh = int(hm[0]) if hm else 0
    mi = int(hm[1]) if hm else 0
    ss = int(hm[2]) if len(hm) > 2 else 0
    if y > 2099:
        raise ValueError("year must be 2000..2099")
    return seconds(y, mo, dd, hh, mi, ss)


# option -> (Options attribute, parser of the text value)
_VALUED = {
    "--load": ("load", lambda v: v),
    "--duration": ("duration", lambda v: _number(v, 0, 3.2e9)),
    "--serial": ("serial", lambda v: _text(v, 16, "a serial number")),
    "--fault-at": ("fault_at", lambda v: _number(v, 0, 3.2e9)),
    "--voltage": ("voltage", lambda v: _number(v, 1, 354)),
    "--neutral-pct": ("neutral_pct", lambda v: _number(v, 0, 200, True)),
    "--start": ("start", parse_start),
    "--tariffs": ("tariffs", lambda v: v),
    "--off-time": ("off_time", lambda v: _number(v, 0, 3.2e9)),
    "--flash": ("flash", lambda v: v),
    "--power-fail-at": ("power_fail_at", lambda v: _number(v, 0, 3.2e9)),
    "--holdup-ms": ("holdup_ms", lambda v: _number(v, 0, 60000, True)),
    "--cut-at-op": ("cut_at_op", lambda v: _number(v, 1, 10 ** 9, True)),
    "--optical-tcp": ("optical_tcp", _port),
    "--optical-dev": ("optical_dev", lambda v: v),
    "--heap-every": ("heap_every", lambda v: _number(v, 0.001, 86400)),
    "--address": ("address", _device_address),
    "--control-tcp": ("control_tcp", _port),
    "--commit-s": ("commit_s", lambda v: _number(v, 1, 10 ** 9, True)),
    "--profile-period": ("profile_period", lambda v: _number(v, 60, 3600, True)),
    "--profile-channels": ("profile_channels", lambda v: v.split(",")),
    "--profile-csv": ("profile_csv", lambda v: v),
}
_CHOICES = {"--fault": ("fault", FAULTS),
            "--seal": ("seal", ("open", "closed")),
            "--rtc-battery": ("rtc_battery", ("ok", "flat"))}
_FLAGS = {"--json": "json", "--plain": "plain", "--quiet": "quiet", "--no-flash": "no_flash",
          "--no-uplink": "no_uplink"}


def _speed(v):
    if v == "max":
        return 0.0
    try:
        x = _number(v, 0, 1e9)
    except ValueError:
        x = -1
    if x != 0 and not 0.001 <= x <= 1e9:
        raise ValueError("simulated s per wall s: a number 0.001..1e9, or max")
    return x


def _bus(v):
    host, sep, port = v.rpartition(":")
    if not sep or not host:
        raise ValueError("use HOST:PORT")
    return (host, _port(port))


def _broker(v):
    # the host goes into the modem's AT+CIPSTART: a DNS name or IPv4 address only
    host, port = _bus(v)
    if len(host) > 253 or not all("0" <= c <= "9" or "a" <= c <= "z" or "A" <= c <= "Z" or
                                  c in "-." for c in host):
        raise ValueError("host %r: a name or IPv4 address, no scheme (mqtt://) or IPv6"
                         % host)
    return (host, port)


_VALUED["--speed"] = ("speed", _speed)
_VALUED["--rs485-bus"] = ("rs485_bus", _bus)
_VALUED["--broker"] = ("broker", _broker)


def _addresses(v):
    from uplink.concentrator import check_addresses  # 1..32, letters/digits, no duplicate

    return check_addresses(v.split(","))


_VALUED["--concentrator"] = ("concentrator", _addresses)
_VALUED["--concentrator-interval"] = ("concentrator_interval",
                                      lambda v: _number(v, 60, 86400, True))


def _outage(v):
    a, sep, b = v.partition(":")
    if not sep:
        raise ValueError("use A:B (simulated seconds)")
    x, y = _number(a, 0, 1e9), _number(b, 0, 1e9)
    if y <= x:
        raise ValueError("B must be after A")
    return (x, y)


_VALUED["--network-outage"] = ("network_outage", _outage)


def parse_args(argv):
    """Parse the virtual board's command line into :class:`Options`. Raises
    :class:`HelpRequested` for -h/--help and :class:`UsageError` naming the option and value
    for anything wrong."""
    o = Options()
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a in _FLAGS:
            setattr(o, _FLAGS[a], True)
            continue
        if a in ("-h", "--help"):
            raise HelpRequested(USAGE)
        if a not in _VALUED and a not in _CHOICES:
            raise UsageError("unknown option %s (try --help)" % a)
        if i >= len(argv) or (argv[i].startswith("--") and (
                argv[i] in _VALUED or argv[i] in _CHOICES or argv[i] in _FLAGS)):
            raise UsageError("option %s needs a value" % a)
        v = argv[i]
        i += 1
        if a in _CHOICES:
            attr, allowed = _CHOICES[a]
            if v not in allowed:
                raise UsageError("bad value for %s: %r (use %s)" % (a, v, "|".join(allowed)))
            setattr(o, attr, v)
            continue
        attr, conv = _VALUED[a]
        try:
            setattr(o, attr, conv(v))
        except ValueError as e:
            raise UsageError("bad value for %s: %r (%s)" % (a, v, e)) from None
    if o.optical_tcp is not None and o.optical_dev is not None:
        raise UsageError("--optical-tcp and --optical-dev exclude each other")
    if o.off_time is not None and o.flash is None:
        raise UsageError("--off-time needs --flash (the RTC state is kept next to the image)")
    if o.fault in ONE_SHOT and o.fault_at is None:
        raise UsageError("--fault %s happens once: give the time with --fault-at S" % o.fault)
    if o.flash is not None and o.no_flash:
        raise UsageError("--flash and --no-flash exclude each other")
    if o.profile_period is not None or o.profile_channels is not None:
        from meter.profile import DEFAULT, layout_of

        cfg = {"period_s": o.profile_period or DEFAULT[0]["period_s"],
               "channels": o.profile_channels or DEFAULT[0]["channels"]}
        try:
            layout_of(cfg)
        except ValueError as e:
            raise UsageError("bad load profile (--profile-period/--profile-channels): %s"
                             % e) from None
        o.load_profiles = [cfg]
    if o.address is None and (o.optical_tcp is not None or o.optical_dev is not None
                              or o.rs485_bus is not None):
        try:
            _device_address(o.serial)
        except ValueError:
            raise UsageError("--serial %r is the ports' device address: use 1..32 letters "
                             "and digits, or give --address" % o.serial) from None
    if o.concentrator is not None and o.rs485_bus is None:
        raise UsageError("--concentrator needs --rs485-bus (the bus it is master of)")
    ports = [p for p in (o.optical_tcp, o.control_tcp) if p is not None]
    if len(ports) == 2 and ports[0] == ports[1]:
        raise UsageError("--optical-tcp and --control-tcp both use port %d" % ports[0])
    return o


_ERRNO = {1: "operation not permitted", 2: "no such file or directory", 13: "permission denied",
          17: "exists", 20: "not a directory", 21: "is a directory", 98: "address in use",
          99: "address not available", 111: "connection refused", 110: "timed out",
          6: "no such device", 19: "no such device", 25: "not a tty", 28: "no space left"}


def os_error_text(e):
    """An OSError as words (MicroPython's OSError carries only the errno)."""
    n = e.args[0] if e.args and isinstance(e.args[0], int) else None
    if n is None:
        return str(e)
    try:
        import errno

        name = errno.errorcode.get(n, "")
    except (ImportError, AttributeError):
        name = ""
    words = _ERRNO.get(n)
    if words and name:
        return "%s (%s)" % (words, name)
    return words or name or "error %d" % n


def regular(what, path):
    """UsageError naming ``what`` when ``path`` exists but is a fifo, device or socket (open()
    would block for a fifo's writer); absent files and directories are left to open()."""
    import os

    try:
        kind = os.stat(path)[0] & 0o170000
    except OSError:
        return
    if kind not in (0o100000, 0o040000):
        raise UsageError("%s: not a regular file (a fifo, device or socket)" % what)


def opening(what, fn, *args):
    """fn(*args), with an OSError turned into a UsageError naming ``what``."""
    try:
        return fn(*args)
    except OSError as e:
        raise UsageError("%s: %s" % (what, os_error_text(e))) from None
