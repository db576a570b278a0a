# The virtual board: the firmware's peripherals as register-level models.
"""Virtual board for the MicroPython unix port (``make sim``).

The command-line options are in :data:`USAGE` (printed by ``--help``; a constant, because
MicroPython drops docstrings). :func:`parse_args` checks every value and raises
:class:`UsageError` with a message naming the option and the bad value; :class:`SimBoard`
names the file, tty or TCP port it cannot open.

A power loss (hold-up elapsed, or a cut) ends the process at once, like a hard kill: with
``--json`` the RAM registers at that instant are printed with ``"power_lost": true``.
"""

import gc
import sys
import time

from boards.board import NullWDT, RGBLed
from boards.sim.ade7953_model import FAULTS, ONE_SHOT, ADE7953Model
from boards.sim.clock import EPOCH_2016, VirtualClock
from boards.sim.hw import SimPin, SimSPI

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

Ports and inputs
  --serial ID        serial number, 1..16 printable characters (SIM00001)
  --address A        IEC 62056-21 device address, 1..32 letters and digits
                     (default: the serial)
  --optical-tcp P    optical port (IEC 62056-21): TCP server 127.0.0.1:P
  --optical-dev PATH optical port on a tty (pty from tools/pty_bridge.py)
  --rs485-bus H:P    join the RS-485 bus hub (tools/rs485_hub.py) at H:P
  --control-tcp P    control channel on 127.0.0.1:P (buttons, switches, LCD)
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

# 2000-01-01 .. 2099-12-31: the RTC range meters use (lib/civil.py)
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
        self.optical_tcp = None
        self.rs485_bus = None
        self.optical_dev = None
        self.heap_every = None
        self.address = None
        self.seal = "closed"
        self.control_tcp = None


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


def _port(v):
    return _number(v, 1, 65535, True)


def _text(v, n, what):
    if not 0 < len(v) <= n or not all(" " < c <= "~" for c in v):
        raise ValueError("%s must be 1..%d printable ASCII characters" % (what, n))
    return v


def _device_address(v):
    # IEC 62056-21 device address: 1..32 letters and digits (lib/iec62056_21.py)
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
}
_CHOICES = {"--fault": ("fault", FAULTS),
            "--seal": ("seal", ("open", "closed")),
            "--rtc-battery": ("rtc_battery", ("ok", "flat"))}
_FLAGS = {"--json": "json", "--plain": "plain", "--quiet": "quiet", "--no-flash": "no_flash"}


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


_VALUED["--speed"] = ("speed", _speed)
_VALUED["--rs485-bus"] = ("rs485_bus", _bus)


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
    if o.address is None and (o.optical_tcp is not None or o.optical_dev is not None
                              or o.rs485_bus is not None):
        try:
            _device_address(o.serial)
        except ValueError:
            raise UsageError("--serial %r is the ports' device address: use 1..32 letters "
                             "and digits, or give --address" % o.serial) from None
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


def _regular(what, path):
    """UsageError naming ``what`` when ``path`` exists but is a fifo, device or socket (open()
    would block for a fifo's writer); absent files and directories are left to open()."""
    import os

    try:
        kind = os.stat(path)[0] & 0o170000
    except OSError:
        return
    if kind not in (0o100000, 0o040000):
        raise UsageError("%s: not a regular file (a fifo, device or socket)" % what)


def _opening(what, fn, *args):
    """fn(*args), with an OSError turned into a UsageError naming ``what``."""
    try:
        return fn(*args)
    except OSError as e:
        raise UsageError("%s: %s" % (what, os_error_text(e))) from None


class SimBoard:
    """The virtual board (attributes as in boards/board.py). Raises :class:`UsageError`
    naming the file, tty or port that cannot be opened, or the load trace's file and line."""

    name = "sim"

    def __init__(self, opts=None, trace=None):
        from boards.sim import rtc
        from boards.sim.load import LoadTrace

        self.opts = o = opts if opts is not None else Options()
        self.serial = o.serial
        self.commit_s = o.commit_s
        # the battery-backed RTC, before the flash model creates a new image file
        flash_path = None if o.no_flash else o.flash
        if flash_path:
            for suffix in ("", ".rtc", ".wear"):
                _regular("--flash %s" % (flash_path + suffix), flash_path + suffix)
        rtc_ms, valid, note = rtc.power_up(flash_path, EPOCH_2016, o.start, o.off_time,
                                           o.rtc_battery)
        self.clock = VirtualClock(o.speed, valid=valid, note=note, start_ms=rtc_ms)
        self.rtc_file = rtc.RtcFile(flash_path, self.clock) if flash_path else None
        self.clock.on_rtc_set = self.save_rtc
        if trace is None:
            trace = _opening("--load %s" % o.load, LoadTrace, o.load)
        self.trace = trace
        self.ade = ADE7953Model(self.trace, self.clock.ticks_ms, v_mv=int(o.voltage * 1000),
                                fault=None if o.fault_at is not None else o.fault,
                                neutral_ratio_pct=o.neutral_pct)
        self.ade_cs = SimPin("ADE_CS", 1, on_change=self.ade.select)
        self.ade_spi = SimSPI(self.ade)
        self.ade_irq = SimPin("ADE_IRQ", source=self.ade.irq_pin)
        self.ade_reset = SimPin("ADE_RESET", 1, on_change=self.ade.reset_pin)
        self.led_kwh = SimPin("LED_KWH")
        self.led_kvarh = SimPin("LED_KVARH")
        self.status_leds = (RGBLed(SimPin("S1R"), SimPin("S1G"), SimPin("S1B")),
                            RGBLed(SimPin("S2R"), SimPin("S2G"), SimPin("S2B")))
        self.relay = SimPin("RELAY", 1)
        self.relay_feedback = SimPin("RELAY_FB", source=self.relay.value)
        self.btn_scroll = SimPin("BTN_SCROLL")
        self.btn_demand_reset = SimPin("BTN_MDRESET")
        self.sw_test = SimPin("SW_TEST")
        self.cover = SimPin("COVER")
        self.terminal_cover = SimPin("TCOVER")
        self.magnet = SimPin("MAGNET")
        self.power_fail = SimPin("PFAIL")
        self.seal = SimPin("SEAL", 1 if o.seal == "open" else 0)
        self.device_address = o.address or o.serial
        self.uart_optical = None
        self.uart_rs485 = None
        if o.optical_tcp is not None:
            from boards.sim.uart import TcpUart

            self.uart_optical = _opening("--optical-tcp: port %d" % o.optical_tcp, TcpUart,
                                         o.optical_tcp)
        if o.optical_dev is not None:
            from boards.sim.tty_uart import TtyUart

            self.uart_optical = _opening("--optical-dev %s" % o.optical_dev, TtyUart,
                                         o.optical_dev)
        if o.rs485_bus is not None:
            import socket

            from boards.sim.uart import BusUart

            _opening("--rs485-bus %s:%d: cannot resolve the host" % o.rs485_bus,
                     socket.getaddrinfo, o.rs485_bus[0], o.rs485_bus[1])
            self.uart_rs485 = _opening("--rs485-bus %s:%d" % o.rs485_bus, BusUart,
                                       o.rs485_bus[1], o.rs485_bus[0])
        self.rs485_de = SimPin("RS485_DE")
        self.uart_modem = None
        self.modem_pwrkey = SimPin("MODEM_PWRKEY")
        _opening("--flash %s" % o.flash, self._make_flash)
        self.save_rtc()  # the state file exists from the first power-up on
        self.wdt = NullWDT()
        self.lcd = self._make_lcd()
        self.control = None
        if o.control_tcp is not None:  # the control channel (buttons, switches, LCD query)
            from boards.sim.control import ControlServer

            self.control = _opening("--control-tcp: port %d" % o.control_tcp, ControlServer,
                                    self, o.control_tcp)
        self.heap_peak = 0
        self._wall0 = time.ticks_ms()

    # -- RTC -----------------------------------------------------------------------------

    def save_rtc(self):
        """Persist the battery-backed RTC's state next to the --flash image (no-op without
        one); a write error is reported once on stderr, the meter runs on."""
        f = self.rtc_file
        if f is None:
            return
        had = f.error
        f.save()
        if f.error and f.error != had:
            sys.stderr.write("sim: RTC state: %s\n" % f.error)

    async def _rtc_keeper(self):
        # every wall second: the RTC state survives a hard kill to within a second
        import asyncio

        while True:
            await asyncio.sleep_ms(1000)
            self.save_rtc()

    # -- flash and power -----------------------------------------------------------------

    # NOR flash: W25Q-class geometry (4 KiB sectors, 256-byte pages); 128 KiB modelled.
    FLASH_SIZE = 128 * 1024
    FLASH_LAYOUT = {"journal": (0, 64 * 1024), "config": (64 * 1024, 8 * 1024),
                    "events": (72 * 1024, 32 * 1024)}

    def _make_flash(self):
        from boards.sim.norflash import NORFlash

        o = self.opts
        self._meter = None
        if o.no_flash:
            self.nor = _NoNOR()
            self.flash = None
            self.flash_layout = {}
            return
        self.nor = NORFlash(self.FLASH_SIZE, 4096, 256, path=o.flash)
        if o.cut_at_op:
            self.nor.cut_at_op(o.cut_at_op)
        self.flash = _CutGuard(self.nor, self)
        self.flash_layout = self.FLASH_LAYOUT
        self._meter = None
        self._pf_handler = None

    def irq_flag(self):
        """Flag for interrupt -> task hand-over (an Event: sim 'interrupts' run in tasks)."""
        import asyncio

        return asyncio.Event()

    def attach(self, meter):
        """The firmware's meter object, for the report at a power loss."""
        self._meter = meter

    def on_power_fail(self, handler):
        """Install the power-fail interrupt handler (rising edge of ``power_fail``)."""
        self.power_fail.irq(handler)

    def lose_power(self, why):
        """Supply gone: stop at once (no more flash operations, no clean shutdown)."""
        sys.stderr.write("sim: power lost (%s)\n" % why)
        self.save_rtc()  # the RTC runs on from its battery
        if self.opts.json:
            m = self._meter
            if m is not None and hasattr(m, "storage_status"):
                self.report(m, power_lost=True)
            else:  # cut while booting: nothing metered yet in this run
                from energy import ALL_OBIS

                sys.stdout.write(_json_text({"registers": {k: _Milli(0) for k in ALL_OBIS},
                                             "power_lost": True, "booting": True}) + "\n")
        self.nor.close()
        raise SystemExit(0)

    async def _power_fail(self):
        o = self.opts
        await self.clock.sleep_ms(int(o.power_fail_at * 1000))
        self.power_fail.set_input(1)
        await self.clock.sleep_ms(o.holdup_ms)
        self.lose_power("hold-up time %d ms after the power-fail warning" % o.holdup_ms)

    @classmethod
    def from_argv(cls, argv):
        return cls(parse_args(argv))

    def _make_lcd(self):
        o = self.opts
        if o.quiet:
            return _NullLCD()
        return _BoardLCD(self, ansi=not o.plain)

    # -- instrumentation -----------------------------------------------------------------

    def sample_heap(self):
        a = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
        if a > self.heap_peak:
            self.heap_peak = a

    def duration_ms(self):
        d = self.opts.duration
        return None if d is None else int(d * 1000)

    def tasks(self, meter):
        """Board-side tasks started by the firmware (fault injection, heap sampling)."""
        import asyncio

        self._meter = meter
        t = [asyncio.create_task(self._sampler())]
        if self.opts.heap_every:
            t.append(asyncio.create_task(self._heap_log()))
        if hasattr(self.lcd, "refresh"):
            t.append(asyncio.create_task(self._lcd_refresh()))
        if self.opts.power_fail_at is not None:
            t.append(asyncio.create_task(self._power_fail()))
        if self.opts.fault_at is not None:
            t.append(asyncio.create_task(self._inject_fault()))
        if self.control is not None:
            t.append(asyncio.create_task(self.control.run()))
        if self.rtc_file is not None:
            t.append(asyncio.create_task(self._rtc_keeper()))
        return t

    def lcd_text(self):
        """The LCD's last frame as lib.lcd.frame_text (control channel ``lcd``)."""
        return self.lcd.last_text

    async def _sampler(self):
        import asyncio

        while True:
            self.sample_heap()
            await asyncio.sleep_ms(20)

    async def _lcd_refresh(self):
        import asyncio

        while True:
            await asyncio.sleep_ms(100)
            self.lcd.refresh()

    async def _heap_log(self):
        # --heap-every: the heap after a full collection, in wall time (not metering time)
        import asyncio

        from array import array

        # Preallocated, so that the log does not measure itself: slot 0 keeps the first
        # sample, slots 1.. are a ring of the most recent ones.
        n = 512
        t = self._heap_t = array("i", [0] * n)
        b = self._heap_b = array("i", [0] * n)
        self._heap_k = 0
        ms = int(self.opts.heap_every * 1000)
        while True:
            await asyncio.sleep_ms(ms)
            gc.collect()
            k = self._heap_k
            i = k if k < n else 1 + (k - 1) % (n - 1)
            t[i] = time.ticks_diff(time.ticks_ms(), self._wall0)
            b[i] = gc.mem_alloc()
            self._heap_k = k + 1

    def heap_log(self):
        """--heap-every samples, oldest first: [[wall_s, bytes], ...]."""
        k = getattr(self, "_heap_k", 0)
        if not k:
            return []
        t, b = self._heap_t, self._heap_b
        m = len(t) - 1
        idx = [0] + [1 + (j - 1) % m for j in range(max(1, k - m), k)]
        return [[_Milli(t[i]), b[i]] for i in idx]

    def _port_report(self, meter):
        # --json: counters of the IEC 62056-21 ports (port task and UART), heap log
        out = {}
        ports = {}
        for name, st in getattr(meter, "port_stats", {}).items():
            u = self.uart_optical if name == "optical" else self.uart_rs485
            ports[name] = {"rx": st.rx, "tx": st.tx, "messages": st.messages,
                           "errors": st.errors, "baud": st.baud,
                           "uart_rx": getattr(u, "rx_count", 0),
                           "overruns": getattr(u, "overruns", 0)}
        if ports:
            out["ports"] = ports
        if self.opts.heap_every:
            out["heap_log"] = self.heap_log()
        return out

    async def _inject_fault(self):
        await self.clock.sleep_ms(int(self.opts.fault_at * 1000))
        self.ade.fault = self.opts.fault

    def report(self, meter, power_lost=False):
        """At the end of a run (orderly or power lost): persist the RTC, refresh the status
        LEDs, print the summary of the registers (unless --quiet) and the JSON line
        (--json)."""
        if getattr(self, "_reported", False):
            return
        self._reported = True
        self.save_rtc()
        refresh = getattr(meter, "update_status_leds", None)
        if refresh is not None:
            refresh()
        regs = meter.registers.snapshot()
        wall_ms = time.ticks_diff(time.ticks_ms(), self._wall0)
        o = self.opts
        if not o.quiet:  # end of a timed run, Ctrl-C or a power loss
            if hasattr(self.lcd, "refresh"):
                self.lcd.refresh()  # the status line at the end
            sys.stdout.write(summary(regs, self.clock, wall_ms, power_lost))
        if not o.json:
            return
        out = {
            "registers": {k: _Milli(regs[k]) for k in regs},
            "sim_s": _Milli(self.clock.ticks_ms()),
            "wall_s": _Milli(wall_ms),
            "rtc_s": self.clock.time(),
            "rtc_valid": self.clock.rtc_valid,
            "error_flags": _error_flags(meter),
            "heap_peak_bytes": self.heap_peak,
            "heap_steady_bytes": _steady_heap(),
            "pulses": meter.metering.pulse.total,
            "led_kwh_flashes": self.led_kwh.rises,
            "led_kvarh_flashes": self.led_kvarh.rises,
            "events": [[t, c, v] for (t, c, v) in meter.log.entries()],
            "fault": meter.metering.fault,
            "power_lost": power_lost,
            "wdt_feeds": self.wdt.feeds,
            "status_leds": [list(led.get()) for led in self.status_leds],
            "flash_ops": self.nor.ops,
            "commits": meter.storage.commits if meter.storage else 0,
            "storage": meter.storage_status,
        }
        out.update(self._port_report(meter))
        sys.stdout.write(_json_text(out) + "\n")


def _error_flags(meter):
    # F.F.0 (firmware/status.py), for the report
    try:
        import status
    except ImportError:
        return None
    return status.error_flags(meter)


class _Milli:
    """A value in thousandths written as an exact decimal with 3 places (no float noise:
    the registers' resolution is 1 mWh / mvarh / mVAh)."""

    def __init__(self, m):
        self.m = m


def milli_text(m):
    """Thousandths as a decimal string: 8499 -> "8.499", -5 -> "-0.005"."""
    sign = "-" if m < 0 else ""
    m = -m if m < 0 else m
    return "%s%d.%03d" % (sign, m // 1000, m % 1000)


def _json_text(o):
    """JSON text of dicts, lists, str, int, bool, None and :class:`_Milli` values."""
    import json

    if isinstance(o, _Milli):
        return milli_text(o.m)
    if isinstance(o, dict):
        return "{" + ", ".join(json.dumps(str(k)) + ": " + _json_text(v)
                               for k, v in o.items()) + "}"
    if isinstance(o, (list, tuple)):
        return "[" + ", ".join(_json_text(v) for v in o) + "]"
    return json.dumps(o)


# the summary's rows: (label, OBIS, unit) pairs, two per line
_SUMMARY = ((("A+", "1.8.0", "Wh"), ("A-", "2.8.0", "Wh")),
            (("R+", "3.8.0", "varh"), ("R-", "4.8.0", "varh")),
            (("Q1", "5.8.0", "varh"), ("Q2", "6.8.0", "varh")),
            (("Q3", "7.8.0", "varh"), ("Q4", "8.8.0", "varh")),
            (("S+", "9.8.0", "VAh"), ("S-", "10.8.0", "VAh")),
            (("net", "16.8.0", "Wh"),))


def summary(regs, clock, wall_ms, power_lost=False):
    """The short human summary printed at the end of a timed run (lines <= 80 columns)."""
    from civil import civil

    y, mo, d, h, mi, s, _ = civil(clock.time())
    lines = ["", "sim: %s at t = %s s (RTC %04d-%02d-%02d %02d:%02d:%02d UTC%s), %s s wall"
             % ("power lost" if power_lost else "end", milli_text(clock.ticks_ms()), y, mo, d,
                h, mi, s, "" if clock.rtc_valid else ", INVALID", milli_text(wall_ms))]
    for row in _SUMMARY:
        lines.append("    ".join("%-3s %-6s %13s %-4s" % (lab, obis, milli_text(regs[obis]), u)
                                 for lab, obis, u in row).rstrip())
    return "\n".join(lines) + "\n"


def _make_board_lcd():
    from boards.sim.lcd_term import TermLCD

    class BoardLCD(TermLCD):
        """The terminal LCD plus a status line: test LEDs, relay, seal, sim time."""

        def __init__(self, board, ansi=True):
            TermLCD.__init__(self, ansi=ansi)
            self._board = board
            self._status = ""

        def status(self):
            b = self._board
            lit = b.led_kwh.value()
            led = "(*)" if lit else "( )"
            if self.ansi and lit:
                led = "\x1b[1;31m(*)\x1b[0m"  # 3 visible columns either way
            return "LED kWh %s %7d pulses | relay %s | seal %s | t=%ds" % (
                led, b.led_kwh.rises, "closed" if b.relay.value() else "OPEN",
                "open" if b.seal.value() else "closed", b.clock.ticks_ms() // 1000)

        def lines(self, frame):
            out = TermLCD.lines(self, frame)
            if self.ansi:
                out = list(out) + [self.status()]
            return out

        def refresh(self):
            """Redraw the last frame with a fresh status line (ANSI mode only)."""
            if self.ansi and self.frames_shown:
                st = self.status()
                if st != self._status:
                    self._status = st
                    self.frames_shown -= 1  # the redraw below is not a new frame
                    f = self._last
                    self._last = type(f)()
                    self.show(f)

    return BoardLCD


def _BoardLCD(board, ansi=True):
    return _make_board_lcd()(board, ansi)


class _NoNOR:
    ops = 0

    def close(self):
        pass


class _CutGuard:
    """The flash as the firmware sees it: a cut injected in the NOR model ends the run."""

    def __init__(self, nor, board):
        from boards.sim.norflash import PowerCut

        self._nor = nor
        self._board = board
        self._cut = PowerCut  # (an import per operation could allocate on the power-fail path)
        self.size = nor.size
        self.sector_size = nor.sector_size
        self.page_size = nor.page_size

    def read(self, addr, buf):
        self._nor.read(addr, buf)

    def program(self, addr, data):
        # a page may carry an RTC timestamp: the RTC state on disk is never older than it
        try:
            self._board.save_rtc()
        except MemoryError:  # heap locked (an allocation-free path under test): the RTC
            pass  # keeper task saves the state within a wall second anyway
        try:
            self._nor.program(addr, data)
        except self._cut:
            self._board.lose_power("cut at flash operation %d" % self._nor.ops)

    def erase(self, addr):
        try:
            self._nor.erase(addr)
        except self._cut:
            self._board.lose_power("cut at flash operation %d" % self._nor.ops)


def _steady_heap():
    if not hasattr(gc, "mem_alloc"):
        return 0
    gc.collect()
    return gc.mem_alloc()


class _NullLCD:
    """--quiet: draws nothing, keeps the last frame (``last_text`` for the control channel)."""

    def __init__(self):
        from lcd import Frame

        self.frames_shown = 0
        self._last = Frame()

    def show(self, frame):
        self.frames_shown += 1
        self._last.copy_from(frame)  # no allocation: --quiet serves the heap measurements

    @property
    def last_text(self):
        if not self.frames_shown:
            return ""
        from lcd import frame_text

        return frame_text(self._last)
