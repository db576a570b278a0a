# Application wiring: builds the meter's parts from a board and its settings, runs the tasks.
"""The meter application: wiring only (docs/ARCHITECTURE.md has the map).

``Meter(board, cfg=None)`` builds the parts, each from what it uses, and restores the
registers; ``await meter.main(duration_ms)`` runs the tasks under the supervisor until the
duration (metering time) elapses, or forever; :meth:`Meter.shutdown` is the orderly stop.
Boot order (the event log shows it): event store (POWER_UP), settings (fallbacks), stored
values checked, clock trust, register journal restore, the configuration settled.
"""

import asyncio
import gc
import sys

import events
from ade7953 import ADE7953, Calibration
from billing import config as billing_config
from energy import Registers, lsb_per_unit_q8
from energy.pulse import NoLoadGate
from meter.audit import AuditTrail
from meter.billing import Billing
from meter.catalogue import Catalogue
from meter.demand import Demand
from meter.metering import Metering
from meter.profile import Profiles
from meter.settings import Settings
from meter.status import Status
from meter.supply import Supply
from meter.swid import VERSION  # noqa: F401  (the firmware version, re-exported)
from meter.testmode import TestMode
from meter.tariffs import TARIFF_Q8, Tariffs
from meter.testoutput import TestOutput
from tasks import billing as billing_task
from tasks import leds
from tasks import profile as profile_task
from tasks import storage as storage_tasks
from tasks.display import DisplayTask
from tasks.supervisor import Supervisor
from tasks.tamper import TamperWatch
from tasks.wake import Wake


class Meter:
    """The meter on ``board`` (boards/board.py); ``cfg``: settings to start from instead of
    the stored configuration (tests). Attributes: the parts (``log``, ``events``,
    ``settings``, ``ade``, ``registers``, ``output``, ``metering``, ``testmode``,
    ``status``, ``catalogue``, ``display``, ``storage``, ``iec``, ``led``, ``tamper``,
    ``supervisor``, ``supply``, ``uplink`` (None without a modem, outbox or broker),
    ``concentrator`` (None unless the board names bus addresses))."""

    def __init__(self, board, cfg=None):
        self.board = board
        clock = board.clock
        attach = getattr(board, "attach", None)
        if attach is not None:
            attach(self)
        # the meter's long-lived parts are allocated from a collected heap: packed below the
        # imports' garbage (and a previous meter's, on a restart in one process) instead of
        # among it, so its larger buffers (profile rows, ring tables) find room (issue 12)
        gc.collect()
        parts = getattr(board, "partitions", None) or {}
        if getattr(board, "uart_optical", None) is not None or getattr(
                board, "uart_rs485", None) is not None:
            # the port modules first, while the heap is least fragmented (the unix port
            # compiles them into its heap, beside the virtual board's 1 MiB flash image)
            import ports.iec  # noqa: F401
            import ports.pump  # noqa: F401
        self.log = log = events.EventLog(clock)
        # the power-fail warning (meter/supply.py): set by the storage, read by every writer
        self.supply = sp = Supply()
        self.events = None
        if "events" in parts:  # first: what the configuration load reports is persisted
            from meter.eventstore import EventStore

            self.events = EventStore(parts["events"], log, clock, sp)
        self.settings = st = Settings(log, parts.get("config") if cfg is None else None, cfg,
                                      sp)
        if self.events is not None:
            self.events.limit.burst_for[events.WRONG_PASSWORD] = max(
                3, st.get("prog_max_failures", 3))
        cal = Calibration(**st.calibration)
        self.ade = ADE7953(board.ade_spi, board.ade_cs, board.ade_irq, board.ade_reset, cal)
        lpw = lsb_per_unit_q8(cal.wh_per_lsb)
        # totals + 6 tariff banks of A+/A- in whole mWh (meter/tariffs.py): a fixed layout,
        # so a new tariff plan never changes the journal record
        self.registers = regs = Registers(lpw, lsb_per_unit_q8(cal.varh_per_lsb),
                                          lsb_per_unit_q8(cal.vah_per_lsb), 6, 2, TARIFF_Q8)
        gate = NoLoadGate(cal.vah_per_lsb, st["start_current_ma"], st["un_v"],
                          st["no_load_ratio_pct"])
        self.output = TestOutput(cal, st["meter_constant"])
        bc = self._billing_config(board, log)
        # a tariff plan written over IEC 62056-21 (meter/touprog.py), kept in the settings:
        # built at boot only when one is stored, else at the first C.92 command (RAM)
        self._bc = bc
        self.touprog = tp = None
        if st.get("tou_program"):
            tp = self._make_touprog(None)
            try:
                bc.tariffs = max(bc.tariffs, tp.restore())
            except (ValueError, KeyError, TypeError) as e:
                log.log(events.CONFIG_DEFAULTS, 0, "tou_program: %s" % e)
        self.tariffs = tf = Tariffs(regs, clock, bc, lpw, log, sp)
        self.zone = tf.zone  # the clock's time zone and DST rule (load profiles' DST bit)
        if tp is not None:
            tp.tariffs = tf
        self.demand = dm = Demand(bc, tf)
        self.billing = bl = Billing(regs, tf, dm, bc, clock, log, parts.get("billing"))
        billing_consumers = (tf, dm, bl)  # after the registers, before the storage
        self.metering = m = Metering(self.ade, regs, gate, clock, log, st["period_ms"],
                                     consumers=(self.output,) + billing_consumers)
        self.testmode = TestMode(clock, log, st, regs.snapshot)
        self.status = Status(board, m, st, self.testmode)
        self.status.events = self.events
        self.catalogue = cat = Catalogue(regs, m, st, self.status, self.testmode, clock, log,
                                         board.serial,
                                         getattr(board, "device_address", board.serial), bl)
        cat.events = self.events
        # WELMEC 7.2 audit trail of the billing parameters
        cat.audit = self.audit = AuditTrail(parts.get("audit"), clock, log)
        cat.on_clock_set = self._clock_set
        cat.touprog = tp
        cat.make_touprog = self._make_touprog
        if tp is not None:
            tp.audit = self.audit
        bl.on_tou_activated = self._tou_activated
        # sets of the clock over the local ports per period (seal closed; billing config),
        # and the uplink's (``time``, ``config``: the same rule, a budget of their own)
        cat.make_clock_limit = self._make_clock_limit
        st.check(("test_mode_minutes", "display_list", "alt_list"))
        st.subscribe(self._setting_changed)
        self.display = DisplayTask(board.lcd, cat, st, self.testmode, self.status, m,
                                   getattr(board, "btn_scroll", None),
                                   getattr(board, "sw_test", None), board.relay)
        if self.events is None:
            log.log(events.POWER_UP)
        if not getattr(clock, "rtc_valid", True):  # RTC not trusted after this power-up
            log.log(events.CLOCK_INVALID, 0, getattr(clock, "rtc_note", ""))
        self.storage = None
        if "journal" in parts:
            from meter.storage import Storage

            self.storage = s = Storage(parts["journal"], regs, m, clock, log,
                                       getattr(board, "commit_s", st["commit_s"]), sp)
            s.power_fail = getattr(board, "power_fail", None)
            # during the warning: every interval committed (after the billing consumers)
            m.consumers = (self.output,) + billing_consumers + (s,)
            s.restore()
        self.profiles = self._profiles(board, parts, st, clock, log, sp)
        if any(tf.reconcile()) and self.storage is not None:
            # a journal from before the tariff banks: its energy is tariff 1's, committed
            from flashstore.journal import REASON_REWRITE

            self.storage.commit(REASON_REWRITE)
        bl.boot()  # VZ, demand state; a period end passed while off is closed now
        self.display.tariff = tf
        self.restored = True  # the registers are what the journal held (board reports)
        self.status.storage = cat.storage = self.storage
        st.settle(self.storage.status if self.storage is not None else None)
        self.iec = None
        self.port_stats = {}  # port name -> ports.pump.PortStats (diagnostics)
        self.led = leds.TestLed(self.output, self.testmode, board.led_kwh, board.led_kvarh,
                                clock, m.period_ms, st["pulse_ms"], sp)
        if self.storage is not None:
            self.storage.on_interval = self.led.now
        self.tamper = TamperWatch(board, m, log, st)
        self.uplink = self._uplink(parts)
        self.concentrator = self._concentrator()
        self.catalogue.concentrator = self.concentrator  # (W1 C.93.9 unbinds there)
        self.supervisor = Supervisor(board.wdt, m, log, self.update_status_leds, clock=clock)
        self.wakes = (Wake(), Wake())  # housekeeping, profile: set at a clock set

    def _profiles(self, board, parts, st, clock, log, sp):
        """The interval load profiles (meter/profile.py) on the ``profile`` partition, started
        from the restored registers; a step consumer after the others."""
        cfg = getattr(board, "load_profiles", None) or st.get("load_profiles")
        part = parts.get("profile")
        zone = getattr(self, "zone", None)  # lib/billing/localtime.Zone (the clock's), or UTC
        try:
            pr = Profiles(self.registers, self.metering, clock, cfg, part, zone, sp, log)
        except ValueError as e:  # a bad configuration: the default profile, logged
            log.log(events.CONFIG_DEFAULTS, 0, str(e), events.SRC_METER, "P.01")
            pr = Profiles(self.registers, self.metering, clock, None, part, zone, sp, log)
        pr.start()
        self.metering.consumers = self.metering.consumers + (pr,)
        return pr

    def _uplink(self, parts):
        # the uplink (firmware/uplink/, docs/UPLINK.md): needs the modem UART and the outbox
        # partition; the broker and APN are settings (uplink_broker C.93.1, uplink_apn
        # C.93.2), the board's ``broker`` (host, port) overrides the broker at start-up
        b = self.board
        if getattr(b, "uart_modem", None) is None or "outbox" not in parts:
            return None
        from uplink.outbox import Outbox
        from uplink.task import Uplink

        ob = Outbox(parts["outbox"], self.supply)  # mounted by the uplink task, in steps
        floor = None
        if "uplink_seq" in parts:  # the seq floor (uplink/seqfloor.py; older layouts: none)
            from uplink.seqfloor import SeqFloor

            floor = SeqFloor(parts["uplink_seq"], self.log, self.supply)
        up = Uplink(b, self.catalogue, self.log, ob, b.serial, getattr(b, "broker", None),
                    supply=self.supply, modem_cfg=getattr(b, "modem_cfg", None),
                    settings=self.settings, floor=floor)
        up.profile = self.profiles.get("P.01")  # its rows go out on the schedule
        up.events_store = self.events  # the ``log`` command's logbook
        up.iec_map = self.iec_map  # ``config``: the password, the uplink's own lockout
        return up

    def _concentrator(self):
        # the RS-485 bus master (uplink/concentrator.py): the board's ``concentrator``
        # (bus addresses) and RS-485 UART; its readings go into the uplink's outbox
        b = self.board
        addrs = getattr(b, "concentrator", None)
        if not addrs or getattr(b, "uart_rs485", None) is None:
            return None
        from uplink.concentrator import Concentrator

        up = self.uplink
        return Concentrator(b.uart_rs485, addrs, b.clock, self.log,
                            up.outbox if up is not None else None, b.serial,
                            getattr(b, "rs485_de", None),
                            getattr(b, "concentrator_interval_s", 900), supply=self.supply,
                            settings=self.settings)

    @staticmethod
    def _billing_config(board, log):
        # the board's billing configuration (billing.config JSON; the virtual board's
        # --tariffs FILE), else the documented default; a bad one is logged, default used
        try:
            return billing_config.load(getattr(board, "billing_config", None))
        except ValueError as e:
            log.log(events.CONFIG_DEFAULTS, 0, "billing configuration: %s" % e)
            return billing_config.load(None)

    def _make_touprog(self, _obis=None):
        from meter.touprog import TouProgram

        tp = self.touprog = TouProgram(self._bc, self.settings)
        tp.tariffs = getattr(self, "tariffs", None)
        tp.audit = getattr(self, "audit", None)
        return tp

    def _make_clock_limit(self):
        # built at the first set of the clock over a port (imported then: RAM, issue 12)
        from billing.clocklimit import ClockLimit

        bc = self._bc
        return ClockLimit(bc.clock_max_sets, bc.clock_max_shift_s, bc.clock_period,
                          self.tariffs.zone, bc.schedule)

    def _tou_activated(self):
        if self.touprog is not None:  # a plan written over IEC: remember it is active
            self.touprog.activated()

    def _clock_set(self, old, new):
        # the RTC was set (W1 0.9.1/0.9.2): tariff window, demand grid, next billing end
        self.tariffs.clock_set()
        self.demand.clock_set(old, new)
        self.billing.clock_set(new)
        # the RTC deadlines re-planned (issue 12): the profile boundary, the flood windows,
        # the stamp the power-fail record advances from
        if self.storage is not None:
            self.storage.stamp()
        for w in self.wakes:
            w.set()

    def _setting_changed(self, key):
        if key == "meter_constant":
            self.output.set_constant(self.settings["meter_constant"])

    @property
    def storage_status(self):
        """The register journal's status (``ok``, ``blank``, ...), None without one."""
        return self.storage.status if self.storage is not None else None

    def update_status_leds(self):
        """Show the state on the two status LEDs now (tasks/leds.show_status)."""
        leds.show_status(getattr(self.board, "status_leds", None) or (), self.metering,
                         self.storage_status)

    def iec_map(self):
        """The IEC 62056-21 map of the meter's ports (made once; ports/iec.py)."""
        if self.iec is None:
            from ports.iec import IecMap

            b = self.board
            self.iec = IecMap(self.catalogue, self.settings, self._seal_open, b.clock, self.log,
                              self.events)
            self.iec.profiles = self.profiles
            self.iec.audit = self.audit
        return self.iec

    def _seal_open(self):
        # the debounced seal switch (tasks/tamper.py), else the pin itself: 1 = open
        lv = self.tamper.level("seal")
        if lv is None:
            lv = self.board.seal.value()
        return lv == 1

    def _on_warning(self):
        # the power-fail warning began: the LED task may wait inside a pulse schedule, so
        # the pulses owed are shown at once and the task restarted (tasks/leds.py)
        self.led.flush()
        self.supervisor.restart("led")
        self.profiles.power_down()  # the interval in progress closed, ST_POWER_DOWN
        if self.uplink is not None:  # last gasp within the board's hold-up time
            self.uplink.last_gasp(getattr(self.board, "holdup_ms", 100))

    def _ports(self, spawn):
        """IEC 62056-21 on the optical port (answers /?!) and the RS-485 bus (addressed)."""
        b = self.board
        if b.uart_optical is None and b.uart_rs485 is None:
            return
        from ports import pump

        self.iec_map()
        for name, uart, de, src in (("optical", b.uart_optical, None, events.SRC_OPTICAL),
                                    ("rs485", b.uart_rs485, getattr(b, "rs485_de", None),
                                     events.SRC_RS485)):
            if uart is None or (name == "rs485" and self.concentrator is not None):
                continue  # (the concentrator is the bus master on the RS-485 UART)
            stats = self.port_stats[name] = pump.PortStats()

            def port(uart=uart, de=de, stats=stats, src=src):
                return pump.run_port(uart, self.iec.session(src == events.SRC_OPTICAL, src),
                                     de, stats=stats)

            spawn(name, port)

    def tasks(self):
        """Start every task under the supervisor; returns them (board tasks included)."""
        from tasks import metering as metering_task

        b = self.board
        sv = self.supervisor
        sp = sv.spawn
        m = self.metering
        sp("metering", lambda: metering_task.run(m))
        sp("led", self.led.run)
        sp("display", self.display.run)
        if self.storage is not None:
            sp("storage", lambda: storage_tasks.commits(self.storage))
            if getattr(b, "on_power_fail", None) is not None:
                sp("power-fail", lambda: storage_tasks.power_fail_watch(
                    self.storage, b, self.log, self.events, self._on_warning))
        uptime = storage_tasks.Uptime(b.clock)
        sp("housekeeping", lambda: storage_tasks.housekeeping(
            self.settings, self.events, b.clock, uptime, storage=self.storage,
            wake=self.wakes[0]))
        sp("tamper", self.tamper.run)
        sp("profile", lambda: profile_task.run(self.profiles, b.clock, self.wakes[1]))
        sp("billing", lambda: billing_task.run(self.billing, b.clock, self.supply))
        btn = getattr(b, "btn_demand_reset", None)
        if btn is not None:
            sp("demand-button", lambda: billing_task.button(self.billing, btn))
        self._ports(sp)
        if self.uplink is not None:
            sp("uplink", self.uplink.run)
            sp("uplink-schedule", self.uplink.schedule)
        if self.concentrator is not None:
            sp("concentrator", self.concentrator.run)
        out = list(sv.tasks.values())
        out.append(asyncio.create_task(sv.watchdog()))
        extra = getattr(b, "tasks", None)
        if extra is not None:
            out += extra(self)
        return out

    async def main(self, duration_ms=None):
        tasks = self.tasks()
        try:
            if duration_ms is None:
                while True:
                    await asyncio.sleep_ms(60000)
            else:
                await self.board.clock.sleep_ms(duration_ms)
        finally:
            for t in tasks:
                t.cancel()
            if hasattr(self.board.clock, "stopped"):
                self.board.clock.stopped = True
            self.shutdown()

    def shutdown(self):
        """Orderly stop (end of a simulated run, Ctrl-C): last interval, the test pulses
        still owed, then a commit, the configuration held back and the flood summaries."""
        self.metering.finish()
        self.led.flush()
        if self.storage is not None:
            from flashstore.journal import REASON_MANUAL

            self.storage.commit(REASON_MANUAL)
        self.profiles.power_down()
        self.billing.service()  # snapshots and the demand state
        self.settings.flush()
        if self.events is not None:
            self.events.tick(force=True)


_HEAP_LOCKED = ("stopped by Ctrl-C inside a garbage collection, which leaves MicroPython's "
                "heap locked: no orderly shutdown and no report; the flash holds the last "
                "commit, as after a power cut (the virtual board stops safely with the control "
                "channel's 'stop' or at --duration)\n")


def _say(text):  # (stderr; a test replaces it: MicroPython's sys.stderr cannot be)
    sys.stderr.write(text)


def _heap_usable():
    try:
        bytearray(8)
        return True
    except MemoryError:
        return False


def run(board):
    """Entry used by main.py: run the meter on ``board`` (blocking) until the board's
    duration ends, the board stops it (the virtual board's ``stop``: the main task is
    cancelled at an await and shuts down in order) or Ctrl-C; then the board's report.

    On the unix port Ctrl-C is raised at once wherever the interpreter is
    (MICROPY_ASYNC_KBD_INTR). Landing inside a garbage collection it leaves the collector's
    lock set, so nothing can be allocated any more: then a line saying so goes to stderr
    and the KeyboardInterrupt is raised again, without a shutdown or report that would only
    end in "MemoryError: heap is locked"."""
    meter = Meter(board)
    usable = True
    try:
        asyncio.run(meter.main(board.duration_ms() if hasattr(board, "duration_ms") else None))
    except KeyboardInterrupt:
        usable = _heap_usable()
        if not usable:
            _say(_HEAP_LOCKED)
            raise
        meter.shutdown()
    except asyncio.CancelledError:
        pass  # the board's stop(): Meter.main has shut down in its finally
    finally:
        if usable:
            asyncio.new_event_loop()
            rep = getattr(board, "report", None)
            if rep is not None:
                rep(meter)
    return meter
