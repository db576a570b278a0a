# Application wiring: builds the meter from a board and runs its tasks.
"""The meter application.

Data flow (one way): ADE7953 counts -> :class:`metering.Metering` (gate, quadrant split,
registers) -> consumers (display, test LED, later protocols and uplink) reading snapshots.

``Meter(board, cfg)`` builds the driver, registers, gate, pulse output and tasks;
``await meter.main(duration_ms)`` runs until the duration (metering time) elapses or forever.
"""

import asyncio

import defaults
import events
from ade7953 import ADE7953, Calibration
from energy import Registers, lsb_per_unit_q8
from metering import Metering
from pulse import NoLoadGate, PulseOutput, PulseTrain

VERSION = "0.1.0"


class Meter:
    def __init__(self, board, cfg=None):
        self.board = board
        clock = board.clock
        attach = getattr(board, "attach", None)
        if attach is not None:
            attach(self)
        self.log = events.EventLog(clock, sink=self._event_sink)
        self._event_ring = None
        self.config_status = None
        layout = board.flash_layout if board.flash is not None else {}
        if cfg is None:
            cfg = defaults.config()
            if "config" in layout:
                cfg = self._load_config(cfg, layout["config"])
        self.cfg = cfg
        if "events" in layout:
            self._open_event_ring(layout["events"])
        cal = Calibration(**cfg["calibration"])
        self.ade = ADE7953(board.ade_spi, board.ade_cs, board.ade_irq, board.ade_reset, cal)
        lpw = lsb_per_unit_q8(cal.wh_per_lsb)
        self.registers = Registers(lpw, lsb_per_unit_q8(cal.varh_per_lsb),
                                   lsb_per_unit_q8(cal.vah_per_lsb))
        gate = NoLoadGate(cal.vah_per_lsb, cfg["start_current_ma"], cfg["un_v"],
                          cfg["no_load_ratio_pct"])
        # k imp/kWh -> LSB per pulse = LSB per Wh * 1000 / k; the kvarh LED (test mode)
        # uses the same constant in imp/kvarh
        pulse, pulse_var = self._pulse_outputs(cfg["meter_constant"])
        self.metering = Metering(self.ade, self.registers, gate, pulse, clock, self.log,
                                 cfg["period_ms"], pulse_var=pulse_var)
        import display

        self.display = display.DisplayTask(self, board.lcd, cfg)
        if self._event_ring is None:
            self.log.log(events.POWER_UP)
        if not getattr(clock, "rtc_valid", True):  # RTC not trusted after this power-up
            self.log.log(events.CLOCK_INVALID, 0, getattr(clock, "rtc_note", ""))
        self.storage = None
        self.storage_status = None
        if board.flash is not None and "journal" in board.flash_layout:
            import storage
            from flash import Partition

            off, length = board.flash_layout["journal"]
            self.storage = storage.Storage(self, Partition(board.flash, off, length),
                                           getattr(board, "commit_s", cfg["commit_s"]))
            self.storage_status = self.storage.restore()

    def _pulse_outputs(self, k):
        """(active, reactive) PulseOutput for ``k`` imp/kWh and imp/kvarh."""
        cal = self.ade.cal
        return (PulseOutput(lsb_per_unit_q8(cal.wh_per_lsb) * 1000 // k),
                PulseOutput(lsb_per_unit_q8(cal.varh_per_lsb) * 1000 // k))

    async def led_task(self):
        """Test LED: the pulses due from each metering interval are spread evenly over the
        next ``period_ms`` (ON ``pulse_ms`` each, OFF at least as long; lib.pulse.PulseTrain:
        never skips, never falls behind its schedule); dark otherwise: in no-load and while
        the metrology is faulty (pulses already owed for registered energy are still shown).
        At the end of a run :meth:`shutdown` shows what is still owed, so a counter on the
        LED equals the pulse output's total (hence no steady light in no-load either: it
        would count as a pulse; no-load shows in C.5.0 and on status LED 1).

        Normally the kWh LED shows active energy and the kvarh LED is dark. In test mode
        with the reactive output selected (``DisplayTask.led_reactive()``, cfg ``test_led``
        "kvarh") the kvarh LED shows |reactive| energy at the same constant (imp/kvarh) and
        the kWh LED is dark. Pulses of the output not shown are dropped, so a switch never
        releases a backlog."""
        m = self.metering
        b = self.board
        clock = b.clock
        period = m.period_ms
        train = PulseTrain(clock, period, self.cfg["pulse_ms"])
        while True:
            led, other, reactive = self._led_select()
            if other is not None:
                other.value(0)
            n = m.var_pulses_due if reactive else m.pulses_due
            if n <= 0:
                train.idle()
                led.value(0)
                # until just after the next metering step (reads at whole periods)
                await clock.sleep_ms(period - clock.ticks_ms() % period + 1)
                continue
            k = await train.show(led, n)  # LED on: shown, whatever happens next
            if reactive:
                m.var_pulses_due -= k
            else:
                m.pulses_due -= k
            await train.release(led)

    def _led_select(self):
        # (LED shown, LED dark, reactive?) and the owed pulses of the output not shown dropped
        b = self.board
        m = self.metering
        if self.display.led_reactive() and b.led_kvarh is not None:
            m.pulses_due = 0
            return b.led_kvarh, b.led_kwh, True
        m.var_pulses_due = 0
        return b.led_kwh, b.led_kvarh, False

    def _led_flush(self):
        # end of a run: the pulses still owed are shown at once (lib.pulse.PulseTrain.flush)
        m = self.metering
        led, other, reactive = self._led_select()
        if other is not None:
            other.value(0)
        if led is None:
            return
        if reactive:
            PulseTrain.flush(led, m.var_pulses_due)
            m.var_pulses_due = 0
        else:
            PulseTrain.flush(led, m.pulses_due)
            m.pulses_due = 0

    def _load_config(self, dflt, part):
        """Configuration from flash (lib/config.py): blank or corrupt -> defaults, logged."""
        import config
        from flash import Partition

        self.config_store = config.ConfigStore(Partition(self.board.flash, part[0], part[1]),
                                               dflt)
        cfg, st = self.config_store.load()
        self.config_status = st
        if st not in (config.STATUS_OK, config.STATUS_MIGRATED):
            self.log.log(events.CONFIG_DEFAULTS, 0, "config: %s" % st)
        if st == config.STATUS_BLANK:
            self.config_store.save(cfg)
        return cfg

    def _open_event_ring(self, part):
        """Persist every event as a 12-byte record (u32 RTC s, u16 code, u16 spare,
        i32 value) in the ``events`` partition (lib/ringlog.RingLog, oldest overwritten)."""
        import ringlog
        from flash import Partition

        ring = ringlog.RingLog(Partition(self.board.flash, part[0], part[1]), 12)
        ring.mount()
        self._event_ring = ring
        self.log.log(events.POWER_UP, sum(1 for _ in ring.entries()))  # value: events kept

    def _event_sink(self, t, code, value, text):
        ring = self._event_ring
        if ring is not None:
            import struct

            try:
                ring.append(struct.pack("<IHHi", t & 0xFFFFFFFF, code, 0,
                                        max(-2**31, min(2**31 - 1, value))))
            except Exception as e:  # storage trouble must never stop metering
                self.log.sink = None
                self.log.log(events.FLASH_CORRUPT, 0, "event ring: %s" % e)
                self.log.sink = self._event_sink
        sink = getattr(self.board, "event_sink", None)
        if sink is not None:
            sink(t, code, value, text)

    def set_meter_constant(self, imp_per_kwh):
        """Metrological parameter (seal checked by the caller): the test LEDs' constant
        (imp/kWh, and imp/kvarh for the reactive output)."""
        self.cfg["meter_constant"] = imp_per_kwh
        self.metering.pulse, self.metering.pulse_var = self._pulse_outputs(imp_per_kwh)
        self.save_config()
        self.log.log(events.PARAM_CHANGED, imp_per_kwh, "meter constant")

    def save_config(self):
        store = getattr(self, "config_store", None)
        if store is not None:
            store.save(self.cfg)

    def cold_start(self):
        """Master reset under open seal: registers to zero, logged, committed at once."""
        r = self.registers
        for i in range(len(r.whole)):
            r.whole[i] = 0
            r.res[i] = 0
        self.log.log(events.PARAM_CHANGED, 0, "cold start: registers cleared")
        if self.storage is not None:
            import journal

            self.storage.force_commit(journal.REASON_MANUAL)

    def port_tasks(self):
        """IEC 62056-21 on the optical port (answers /?!) and the RS-485 bus (addressed)."""
        b = self.board
        out = []
        if b.uart_optical is None and b.uart_rs485 is None:
            return out
        import optical
        from protocols import MeterData

        addr = getattr(b, "device_address", b.serial)
        self.meter_data = MeterData(self, addr)
        st = self.port_stats = {}  # port name -> optical.PortStats (diagnostics)
        if b.uart_optical is not None:
            s = self.meter_data.session(True)
            st["optical"] = optical.PortStats()
            out.append(asyncio.create_task(optical.run_port(b.uart_optical, s,
                                                            stats=st["optical"])))
        if b.uart_rs485 is not None:
            s = self.meter_data.session(False)
            st["rs485"] = optical.PortStats()
            out.append(asyncio.create_task(optical.run_port(b.uart_rs485, s, b.rs485_de,
                                                            stats=st["rs485"])))
        return out

    async def main(self, duration_ms=None):
        tasks = [
            asyncio.create_task(self.metering.run()),
            asyncio.create_task(self.led_task()),
            asyncio.create_task(self.display.run()),
        ]
        if self.storage is not None:
            tasks.append(asyncio.create_task(self.storage.run()))
            if getattr(self.board, "on_power_fail", None) is not None:
                tasks.append(asyncio.create_task(self.storage.power_fail_watch(self.board)))
        tasks += self.port_tasks()
        tasks.append(asyncio.create_task(self.supervisor()))
        extra = getattr(self.board, "tasks", None)
        if extra is not None:
            tasks += extra(self)
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

    async def supervisor(self, period_ms=1000):
        """Every real second: feed the watchdog only on proof of progress (the metering task
        completed a read interval, or is retrying a faulty chip, within the last 10 s of real
        time), and show the state on the two status LEDs: LED 1 metrology (green = metering,
        blue = no-load, red = fault), LED 2 storage (green = journal ok, red = flash fault or
        not restored, off = no flash)."""
        import time

        m = self.metering
        last_steps = -1
        last_seen = time.ticks_ms()
        while True:
            now = time.ticks_ms()
            if m.steps != last_steps or not m.ok:
                last_steps = m.steps
                last_seen = now
            if time.ticks_diff(now, last_seen) < 10000:
                self.board.wdt.feed()
            self.update_status_leds()
            await asyncio.sleep_ms(period_ms)

    def update_status_leds(self):
        """Show the state on the two status LEDs now (see :meth:`supervisor`; the virtual
        board also calls this before its end-of-run report)."""
        m = self.metering
        leds = getattr(self.board, "status_leds", None) or ()
        if len(leds) > 0:
            leds[0].set(not m.ok, m.ok and not m.no_load, m.ok and m.no_load)
        if len(leds) > 1:
            st = self.storage_status
            good = st in ("ok", "blank")
            leds[1].set(st is not None and not good, good, 0)

    def shutdown(self):
        """Orderly stop (end of a simulated run, Ctrl-C): last interval, the test pulses
        still owed, then a commit."""
        self.metering.finish()
        self._led_flush()
        if self.storage is not None:
            import journal

            self.storage.commit(journal.REASON_MANUAL)


def run(board):
    """Entry used by main.py: run the meter on ``board`` (blocking)."""
    meter = Meter(board)
    try:
        asyncio.run(meter.main(board.duration_ms() if hasattr(board, "duration_ms") else None))
    except KeyboardInterrupt:
        meter.shutdown()
    finally:
        asyncio.new_event_loop()
        rep = getattr(board, "report", None)
        if rep is not None:
            rep(meter)
    return meter
