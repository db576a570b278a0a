# The virtual board: the firmware's peripherals as register-level models.
"""Virtual board for the MicroPython unix port (``make sim``).

Options (``make sim ARGS="..."``):

--load FILE       load trace CSV ``t_s,p_w,q_var`` (default: bundled household + PV, 2016)
--speed N         simulated seconds per wall second (default 1); ``max`` (or 0) runs as fast
                  as possible in discrete-event time
--duration S      stop after S simulated seconds (default: run until interrupted)
--serial ID       meter serial number (default SIM00001)
--json            on exit print one JSON line: registers (Wh/varh/VAh), sim_s, wall_s,
                  heap_peak_bytes
--plain           plain one-line LCD output instead of the redrawn 7-segment picture
--quiet           no LCD output at all (CI)
--fault F         ADE7953 fault from power-up: dead0, deadff, misclocked
--fault-at S      ... or starting at simulated second S
--voltage V       line voltage (V rms, default 230)
--neutral-pct P   neutral current (ADE7953 channel B) as % of the phase current (default 100;
                  e.g. 60 for an earth-leakage / neutral-bypass tamper scenario)
--period-ms MS    metering read interval (default 1000)
--start EPOCH     RTC at simulated time 0, seconds since 2000-01-01 UTC (default 2016-01-01)
--flash PATH      keep the NOR-flash image in PATH between runs (default: in RAM, lost at exit);
                  a restart resumes the registers; ``--duration 0 --json`` boots, restores and
                  prints them
--power-fail-at S assert the power-fail input at simulated second S; power goes
                  ``--holdup-ms`` (default 100) simulated ms later
--cut-at-op N     cut power at the N-th flash program/erase (that operation left partly done)
--no-flash        no flash at all (registers in RAM only; for heap measurements, since the
                  NOR model keeps its 128 KiB image in the process heap)
--commit-s S      periodic commit period of the register journal (default 300)
--optical-tcp P   the optical port (IEC 62056-21) as a TCP server on 127.0.0.1:P
--rs485-bus H:P   join the simulated RS-485 bus hub (tools/rs485_hub.py) at H:P
--optical-dev PATH  the optical port on an existing tty instead: a pty made by
                  tools/pty_bridge.py or a USB serial adapter with an optical head
                  (boards/sim/tty_uart.py)
--heap-every S    every S wall seconds run gc.collect() and record gc.mem_alloc(); with
                  ``--json`` the line then holds ``heap_log`` [[wall_s, bytes], ...]
                  (with a port, ``--json`` also holds ``ports``: per port the bytes the
                  session took (rx) and sent (tx), messages, errors caught by the port task,
                  bytes that reached the UART (uart_rx) and those lost to a full rx buffer)
--address A       IEC 62056-21 device address (default: the serial number)
--seal open|closed  the seal switch under the sealed cover (default closed)
--control-tcp P   the control channel on 127.0.0.1:P (boards/sim/control.py): a line protocol
                  that presses and holds the buttons (``press scroll``, ``hold scroll 4``),
                  sets the seal, test switch, covers, magnet, power-fail, and reads back the
                  LCD line (``lcd``) and the LEDs (``leds``)

A power loss (hold-up elapsed, or a cut) ends the process at once, like a hard kill: with
``--json`` the RAM registers at that instant are printed with ``"power_lost": true``.
"""

import gc
import sys
import time

from boards.board import NullWDT, RGBLed
from boards.sim.ade7953_model import ADE7953Model
from boards.sim.clock import EPOCH_2016, VirtualClock
from boards.sim.hw import SimPin, SimSPI

DEFAULT_LOAD = "boards/sim/loads/household_pv_2016.csv"


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
        self.period_ms = 1000
        self.start = EPOCH_2016
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
    pass


def parse_args(argv):
    """Parse the virtual board's command line into :class:`Options`; UsageError if bad."""
    o = Options()
    i = 0
    flags = {"--json": "json", "--plain": "plain", "--quiet": "quiet", "--no-flash": "no_flash"}
    while i < len(argv):
        a = argv[i]
        if a in flags:
            setattr(o, flags[a], True)
            i += 1
            continue
        if a in ("-h", "--help"):
            raise UsageError(__doc__)
        if i + 1 >= len(argv):
            raise UsageError("option %s needs a value" % a)
        v = argv[i + 1]
        i += 2
        try:
            if a == "--load":
                o.load = v
            elif a == "--speed":
                o.speed = 0.0 if v == "max" else float(v)
                if o.speed < 0:
                    raise ValueError
            elif a == "--duration":
                o.duration = float(v)
                if o.duration < 0:
                    raise ValueError
            elif a == "--serial":
                if not 0 < len(v) <= 16:
                    raise ValueError
                o.serial = v
            elif a == "--fault":
                if v not in ("dead0", "deadff", "misclocked"):
                    raise ValueError
                o.fault = v
            elif a == "--fault-at":
                o.fault_at = float(v)
            elif a == "--voltage":
                o.voltage = float(v)
            elif a == "--neutral-pct":
                o.neutral_pct = int(v)
                if not 0 <= o.neutral_pct <= 200:
                    raise ValueError
            elif a == "--period-ms":
                o.period_ms = int(v)
            elif a == "--start":
                o.start = int(v)
            elif a == "--flash":
                o.flash = v
            elif a == "--power-fail-at":
                o.power_fail_at = float(v)
            elif a == "--holdup-ms":
                o.holdup_ms = int(v)
            elif a == "--cut-at-op":
                o.cut_at_op = int(v)
                if o.cut_at_op < 1:
                    raise ValueError
            elif a == "--optical-tcp":
                o.optical_tcp = int(v)
            elif a == "--optical-dev":
                o.optical_dev = v
            elif a == "--heap-every":
                o.heap_every = float(v)
                if not o.heap_every > 0:
                    raise ValueError
            elif a == "--rs485-bus":
                host, port = v.rsplit(":", 1)
                o.rs485_bus = (host, int(port))
            elif a == "--address":
                o.address = v
            elif a == "--control-tcp":
                o.control_tcp = int(v)
            elif a == "--seal":
                if v not in ("open", "closed"):
                    raise ValueError
                o.seal = v
            elif a == "--commit-s":
                o.commit_s = int(v)
                if o.commit_s < 1:
                    raise ValueError
            else:
                raise UsageError("unknown option %s (try --help)" % a)
        except UsageError:
            raise
        except ValueError:
            raise UsageError("bad value for %s: %r" % (a, v)) from None
    return o


class SimBoard:
    """The virtual board (attributes as in boards/board.py)."""

    name = "sim"

    def __init__(self, opts=None, trace=None):
        from boards.sim.load import LoadTrace

        self.opts = o = opts if opts is not None else Options()
        self.serial = o.serial
        self.commit_s = o.commit_s
        self.clock = VirtualClock(o.speed, o.start)
        self.trace = trace if trace is not None else LoadTrace(o.load)
        self.ade = ADE7953Model(self.trace, self.clock.ticks_ms, v_mv=int(o.voltage * 1000),
                                fault=None if o.fault_at else o.fault,
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

            self.uart_optical = TcpUart(o.optical_tcp)
        if o.optical_dev is not None:
            if o.optical_tcp is not None:
                raise UsageError("--optical-tcp and --optical-dev exclude each other")
            from boards.sim.tty_uart import TtyUart

            self.uart_optical = TtyUart(o.optical_dev)
        if o.rs485_bus is not None:
            from boards.sim.uart import BusUart

            self.uart_rs485 = BusUart(o.rs485_bus[1], o.rs485_bus[0])
        self.rs485_de = SimPin("RS485_DE")
        self.uart_modem = None
        self.modem_pwrkey = SimPin("MODEM_PWRKEY")
        self._make_flash()
        self.wdt = NullWDT()
        self.lcd = self._make_lcd()
        self.control = None
        if o.control_tcp is not None:  # the control channel (buttons, switches, LCD query)
            from boards.sim.control import ControlServer

            self.control = ControlServer(self, o.control_tcp)
        self.heap_peak = 0
        self._wall0 = time.ticks_ms()

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
        if self.opts.json:
            m = self._meter
            if m is not None and hasattr(m, "storage_status"):
                self.report(m, power_lost=True)
            else:  # cut while booting: nothing metered yet in this run
                import json

                from energy import ALL_OBIS

                sys.stdout.write(json.dumps({"registers": {k: 0.0 for k in ALL_OBIS},
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
        return [[t[i] / 1000, b[i]] for i in idx]

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
        """At exit: the JSON line (``--json``)."""
        if not self.opts.json:
            return
        self.opts.json = False  # once
        import json

        regs = meter.registers.snapshot()
        out = {
            "registers": {k: regs[k] / 1000 for k in regs},
            "sim_s": self.clock.ticks_ms() / 1000,
            "wall_s": time.ticks_diff(time.ticks_ms(), self._wall0) / 1000,
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
        sys.stdout.write(json.dumps(out) + "\n")


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
            led = "\x1b[1;31m(*)\x1b[0m" if b.led_kwh.value() else "( )"
            if not self.ansi:
                led = "(*)" if b.led_kwh.value() else "( )"
            return "LED kWh %s %6d pulses | relay %s | seal %s | t=%ds" % (
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
        self._nor = nor
        self._board = board
        self.size = nor.size
        self.sector_size = nor.sector_size
        self.page_size = nor.page_size

    def read(self, addr, buf):
        self._nor.read(addr, buf)

    def program(self, addr, data):
        from boards.sim.norflash import PowerCut

        try:
            self._nor.program(addr, data)
        except PowerCut:
            self._board.lose_power("cut at flash operation %d" % self._nor.ops)

    def erase(self, addr):
        from boards.sim.norflash import PowerCut

        try:
            self._nor.erase(addr)
        except PowerCut:
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
