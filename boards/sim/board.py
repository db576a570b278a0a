# The virtual board: the firmware's peripherals as register-level models.
"""Virtual board for the MicroPython unix port (``make sim``).

Options: boards/sim/options.py (``USAGE``, ``parse_args``); the end-of-run report:
boards/sim/report.py; the LCD and flash wrappers: boards/sim/parts.py; the models: the
ADE7953 (ade7953_model.py), the NOR flash (norflash.py), the clock (clock.py), the RTC
(rtc.py), the UARTs (uart.py, tty_uart.py), the control channel (control.py).

A power loss (hold-up elapsed, or a cut) ends the process at once, like a hard kill: with
``--json`` the RAM registers at that instant are printed with ``"power_lost": true``.
"""

import gc
import sys
import time

from boards.board import NullWDT, RGBLed, partitions
from boards.sim.ade7953_model import ADE7953Model
from boards.sim.clock import EPOCH_2016, VirtualClock
from boards.sim.hw import ChipSelect, SimPin, SimSPI
from boards.sim.options import (USAGE, HelpRequested, Options,  # noqa: F401 (the board's API)
                                UsageError, load_tariffs, opening, parse_args, regular)
from boards.sim.parts import board_lcd, CutGuard, NoNOR, NullLCD
from boards.sim.report import json_text, Milli


_HEAP_EVERY_MS = 500  # the heap sampler's period (wall ms)

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
        self.load_profiles = o.load_profiles  # None: the configuration's (meter/profile.py)
        # the battery-backed RTC, before the flash model creates a new image file
        flash_path = None if o.no_flash else o.flash
        if flash_path:
            for suffix in ("", ".rtc", ".wear"):
                regular("--flash %s" % (flash_path + suffix), flash_path + suffix)
        rtc_ms, valid, note = rtc.power_up(flash_path, EPOCH_2016, o.start, o.off_time,
                                           o.rtc_battery)
        self.clock = VirtualClock(o.speed, valid=valid, note=note, start_ms=rtc_ms)
        self.rtc_file = rtc.RtcFile(flash_path, self.clock) if flash_path else None
        self.clock.on_rtc_set = self.save_rtc
        # the flash image (1 MiB in the heap unless --no-flash) first, from an empty heap: made
        # after the load trace and the imports it found no such block in the default 2 MiB
        # heap whenever a module was added (MemoryError at boot, issue 12)
        import gc

        gc.collect()
        opening("--flash %s" % o.flash, self._make_flash)
        if trace is None:
            trace = opening("--load %s" % o.load, LoadTrace, o.load)
        self.trace = trace
        self.ade = ADE7953Model(self.trace, self.clock.ticks_ms, v_mv=int(o.voltage * 1000),
                                fault=None if o.fault_at is not None else o.fault,
                                neutral_ratio_pct=o.neutral_pct, clock=self.clock)
        self.ade_cs = ChipSelect("ADE_CS", self.ade)
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

            self.uart_optical = opening("--optical-tcp: port %d" % o.optical_tcp, TcpUart,
                                         o.optical_tcp)
        if o.optical_dev is not None:
            from boards.sim.tty_uart import TtyUart

            self.uart_optical = opening("--optical-dev %s" % o.optical_dev, TtyUart,
                                         o.optical_dev)
        if o.rs485_bus is not None:
            import socket

            from boards.sim.uart import BusUart

            opening("--rs485-bus %s:%d: cannot resolve the host" % o.rs485_bus,
                     socket.getaddrinfo, o.rs485_bus[0], o.rs485_bus[1])
            self.uart_rs485 = opening("--rs485-bus %s:%d" % o.rs485_bus, BusUart,
                                       o.rs485_bus[1], o.rs485_bus[0])
        self.rs485_de = SimPin("RS485_DE")
        # --concentrator: the board is the bus master on its RS-485 UART (firmware/app.py)
        self.concentrator = o.concentrator
        self.concentrator_interval_s = o.concentrator_interval
        # the 2G modem (SIM800 model, boards/sim/modem.py): CIPSTART to real TCP; the
        # uplink's broker (--broker: over the setting uplink_broker at start-up; None: the
        # setting's, default 127.0.0.1:1883: none there -> quiet retries)
        try:  # the model bridges to real TCP: no modem where there are no sockets (the
            import socket  # noqa: F401  emulated cores: no heap spent on it there)

            if o.no_uplink:  # --no-uplink: a board without the modem
                raise ImportError("--no-uplink")

            from boards.sim.modem import Sim800Model

            self.modem = Sim800Model()
            self.uart_modem = self.modem
            self.modem_pwrkey = self.modem.pwrkey
            self.broker = o.broker
        except ImportError:
            self.modem = self.uart_modem = self.broker = None
            self.modem_pwrkey = SimPin("MODEM_PWRKEY")
        self.holdup_ms = o.holdup_ms  # the uplink's last-gasp budget
        # the manager's backoff scaled to the virtual board (5..20 s instead of 15 min): a
        # simulated outage of days lasts a minute of wall time here
        self.modem_cfg = {"backoff_base_ms": 2000, "backoff_cap_ms": 20000}
        self.uplink_leds = (RGBLed(SimPin("U1R"), SimPin("U1G"), SimPin("U1B")),
                            RGBLed(SimPin("U2R"), SimPin("U2G"), SimPin("U2B")))
        # the billing configuration (firmware/app.py reads it; None: the default)
        self.billing_config = None if o.tariffs is None else load_tariffs(o.tariffs)
        self.save_rtc()  # the state file exists from the first power-up on
        self.wdt = NullWDT()
        self.lcd = self._make_lcd()
        self.control = None
        if o.control_tcp is not None:  # the control channel (buttons, switches, LCD query)
            from boards.sim.control import ControlServer

            self.control = opening("--control-tcp: port %d" % o.control_tcp, ControlServer,
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

    # NOR flash: W25Q80-class (1 MiB, 4 KiB sectors, 256-byte pages). The first 128 KiB are
    # the layout of the first virtual board (its images are extended, boards/sim/norflash.py);
    # the partitions after it are the billing functions' (issue 10) and the uplink's outbox
    # (issue 11): a partition's offset never changes once released.
    FLASH_SIZE = 1024 * 1024
    FLASH_LAYOUT = {"journal": (0, 64 * 1024), "config": (64 * 1024, 8 * 1024),
                    "events": (72 * 1024, 32 * 1024),
                    "uplink_seq": (104 * 1024, 8 * 1024),  # the outbox's seq floor
                    "audit": (240 * 1024, 16 * 1024),  # the parameter audit trail
                    "billing": (128 * 1024, 32 * 1024),  # billing periods, demand state
                    "profile": (256 * 1024, 512 * 1024),  # load profiles
                    "outbox": (768 * 1024, 256 * 1024)}  # uplink store-and-forward

    def _make_flash(self):
        from boards.sim.norflash import NORFlash

        o = self.opts
        self._meter = None
        if o.no_flash:
            self.nor = NoNOR()
            self.flash = None
            self.flash_layout = {}
            self.partitions = {}
            return
        self.nor = NORFlash(self.FLASH_SIZE, 4096, 256, path=o.flash)
        if o.cut_at_op:
            self.nor.cut_at_op(o.cut_at_op)
        self.flash = CutGuard(self.nor, self)
        self.flash_layout = self.FLASH_LAYOUT  # byte offsets (tools/events_dump.py reads them)
        self.partitions = partitions(self.flash, self.FLASH_LAYOUT)
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
            if m is not None and getattr(m, "restored", False):
                self.report(m, power_lost=True)
            else:  # cut while booting: nothing metered yet in this run
                from energy import Registers

                zero = [c for c, _u, _s in Registers(256, 256, 256, 6, 2).codes()]
                sys.stdout.write(json_text({"registers": {k: Milli(0) for k in zero},
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
            return NullLCD()
        return board_lcd(self, ansi=not o.plain)

    # -- instrumentation -----------------------------------------------------------------

    def sample_heap(self):
        """One sample of the live heap: a full collection, then ``gc.mem_alloc()``; the
        largest so far is ``heap_peak`` (the JSON's ``heap_peak_bytes``: live data and
        module code at the samples, not the heap's fill level between collections, which
        reached the whole heap)."""
        if not hasattr(gc, "mem_alloc"):
            return 0
        gc.collect()
        a = gc.mem_alloc()
        if a > self.heap_peak:
            self.heap_peak = a
        return a

    def duration_ms(self):
        d = self.opts.duration
        return None if d is None else int(d * 1000)

    def tasks(self, meter):
        """Board-side tasks started by the firmware (fault injection, heap sampling)."""
        import asyncio

        self._meter = meter
        self._main = asyncio.current_task()  # (called from Meter.main: stop() cancels it)
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
        if self.opts.network_outage is not None:
            t.append(asyncio.create_task(self._outage()))
        if self.rtc_file is not None:
            t.append(asyncio.create_task(self._rtc_keeper()))
        return t

    def stop(self):
        """End the run as ``--duration`` would (control channel ``stop``): the meter's main
        task is cancelled at its next await, shuts down in order (last interval, commit,
        held-back writes) and the summary and ``--json`` line follow. Unlike Ctrl-C, which
        the unix port raises at once wherever the interpreter is (MICROPY_ASYNC_KBD_INTR:
        inside a garbage collection it leaves the heap locked), this stops at a safe point.
        Returns False before the meter has started."""
        m = getattr(self, "_main", None)
        if m is None:
            return False
        m.cancel()
        return True

    def lcd_text(self):
        """The LCD's last frame as lib.lcd.frame_text (control channel ``lcd``)."""
        return self.lcd.last_text

    async def _sampler(self):
        import asyncio

        while True:  # (twice a wall second: a collection each, ~1 ms on the unix port)
            self.sample_heap()
            await asyncio.sleep_ms(_HEAP_EVERY_MS)

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
        return [[Milli(t[i]), b[i]] for i in idx]

    async def _outage(self):
        a, b = self.opts.network_outage
        await self.clock.sleep_ms(int(a * 1000))
        self.modem.network_down("deact")
        await self.clock.sleep_ms(int((b - a) * 1000))
        self.modem.network_up()
        self.net_up_tick = time.ticks_ms()  # (report: network restore -> outbox drained)

    async def _inject_fault(self):
        await self.clock.sleep_ms(int(self.opts.fault_at * 1000))
        self.ade.set_fault(self.opts.fault)

    def report(self, meter, power_lost=False):
        """At the end of a run (orderly or power lost): persist the RTC, refresh the status
        LEDs, print the summary (unless --quiet) and the JSON line (--json);
        boards/sim/report.py."""
        from boards.sim import report

        report.report(self, meter, power_lost)
