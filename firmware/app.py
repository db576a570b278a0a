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
        # the power-fail warning is on (firmware/storage.py): nothing may erase flash (event
        # appends are urgent, configuration writes wait) and test pulses are shown at once
        self.power_warning = False
        self.events_unsaved = 0  # events not persisted during a power-fail warning (no slot)
        # why the persisted event logs take no records (F.F.0 storage bit), or None: a log of
        # another format (write-protected until the sealed E2 C.91.8) or a failed write
        self.events_fault = None
        self._led_task = None
        self._train = None  # the LED task's pulse schedule
        self._event_ring = None
        self._event_rings = ()
        self._event_limit = None
        self.config_status = None
        self.config_errors = 0  # F.F.0 bits from the configuration load (firmware/status.py)
        self.password_trusted = True
        self.config_store = None
        self._cfg_dirty = False
        self._cfg_changed_s = 0
        self._cfg_first_s = 0
        self._cfg_fresh = False
        self._cfg_twice = False
        self._up_s = 0  # metering-clock seconds since boot (config write budget)
        import config

        self._cfg_budget = config.SaveBudget(self.CONFIG_BURST, self.CONFIG_REFILL_S)
        self._cfg_deferred = False
        layout = board.flash_layout if board.flash is not None else {}
        if "events" in layout:  # first: what the configuration load reports is persisted
            self._open_event_ring(layout["events"])
        if cfg is None:
            cfg = defaults.config()
            if "config" in layout:
                cfg = self._load_config(cfg, layout["config"])
        self.cfg = cfg
        if self._event_limit is not None:
            self._event_limit.burst_for[events.WRONG_PASSWORD] = max(
                3, cfg.get("prog_max_failures", 3))
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
        self._config_settle()

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
        train = self._train = PulseTrain(clock, period, self.cfg["pulse_ms"])
        while True:
            led, other, reactive = self._led_select()
            if other is not None:
                other.value(0)
            n = m.var_pulses_due if reactive else m.pulses_due
            if n > 0 and self.power_warning:  # the supply may go any moment: at once
                self._led_flush()
                n = 0
            if n <= 0:
                train.idle()
                led.value(0)
                # until just after the next metering step (reads at whole periods)
                await clock.sleep_ms(period - clock.ticks_ms() % period + 1)
                continue
            # each pulse is taken off the owed count as it goes ON: shown, whatever happens
            await train.show(led, n, m, "var_pulses_due" if reactive else "pulses_due")
            await train.release(led)

    def _led_select(self):
        # (LED shown, LED dark, reactive?) and the owed pulses of the output not shown dropped:
        # never shown, so they leave its ``total`` too (a counter on each LED equals the
        # ``total`` of the output it shows)
        b = self.board
        m = self.metering
        if self.display.led_reactive() and b.led_kvarh is not None:
            m.pulse.total -= m.pulses_due
            m.pulses_due = 0
            return b.led_kvarh, b.led_kwh, True
        pv = m.pulse_var
        if pv is not None:
            pv.total -= m.var_pulses_due
        m.var_pulses_due = 0
        return b.led_kwh, b.led_kvarh, False

    def led_restart(self):
        """The power-fail warning began: the LED task may be waiting inside a pulse schedule,
        so it is restarted, and the pulses owed are shown at once (during the warning every
        interval's pulses are shown at once: a counter on the LED equals the pulse output
        even if the supply goes)."""
        t = self._led_task
        if t is not None:
            t.cancel()  # (a pulse it left ON was counted when it went on)
        self._led_flush()
        if t is not None:
            self._led_task = asyncio.create_task(self.led_task())

    def led_now(self):
        """During the power-fail warning: show the pulses owed at once (the LED task is then
        never inside a pulse schedule, see :meth:`led_restart`)."""
        if self.power_warning:
            self._led_flush()

    def _led_flush(self):
        # end of a run: the pulses still owed are shown at once (lib.pulse.PulseTrain.flush)
        if self._train is not None:  # a pulse an interrupt (Ctrl-C) caught being lit
            self._train.settle()
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
        """Configuration from flash (lib/config.py): blank -> defaults (saved once the journal
        shows whether the meter was used before: blank after use is a fallback); anything but
        a good newest copy is a fallback (:meth:`_config_fallback`)."""
        import config
        from flash import Partition

        store = config.ConfigStore(Partition(self.board.flash, part[0], part[1]), dflt)
        self.config_store = store
        cfg, st = store.load()
        self.config_status = st
        self._dflt = dflt
        if st == config.STATUS_BLANK:
            self._cfg_fresh = True  # saved in _config_settle()
        elif st not in (config.STATUS_OK, config.STATUS_MIGRATED):
            if st != config.STATUS_ONE_BAD:
                self.log.log(events.CONFIG_DEFAULTS, 0, "config: %s" % st)
            self._config_fallback(cfg, store.copies, "config: %s: %s" % (st, store.detail))
        self._config_latched(cfg)
        return cfg

    def _config_fallback(self, cfg, copies, text):
        """Stored configuration lost or possibly older: logged persistently (CONFIG_FALLBACK,
        SECURITY_FALLBACK), latched in F.F.0 (ERR_CONFIG, ERR_SECURITY; kept in cfg
        ``fallback`` so that a later save and restart do not clear them silently). Security
        parameters never fall back silently to weaker values: the password is not trusted
        (the factory password needs the open seal, protocols.MeterData.passwords) and the
        lockout keeps the stricter of the copy's and the factory values."""
        import status

        dflt = self._dflt
        cfg["fallback"] = cfg.get("fallback", 0) | status.ERR_CONFIG | status.ERR_SECURITY
        self.log.log(events.CONFIG_FALLBACK, copies, text)
        cfg["prog_max_failures"] = min(cfg.get("prog_max_failures", 3), dflt["prog_max_failures"])
        for k in ("prog_lockout_s", "prog_lockout_max_s"):
            cfg[k] = max(cfg.get(k, dflt[k]), dflt[k])
        sealed = cfg.get("password") == dflt["password"]
        self.log.log(events.SECURITY_FALLBACK, 1 if sealed else 0,
                     "factory password needs the open seal" if sealed else
                     "password from an older copy")

    def _config_latched(self, cfg):
        import status

        f = cfg.get("fallback", 0)
        self.config_errors = f & (status.ERR_CONFIG | status.ERR_SECURITY)
        self.password_trusted = not f & status.ERR_SECURITY

    def _config_settle(self):
        """After the journal restore: a blank configuration on a meter whose register journal
        holds a commit was erased after use (a fallback); save the defaults either way."""
        if not self._cfg_fresh:
            return
        self._cfg_fresh = False
        if self.storage_status == "ok":
            self.log.log(events.CONFIG_DEFAULTS, 0, "config: blank after use")
            self._config_fallback(self.cfg, 0, "config: blank after use")
            self._config_latched(self.cfg)
        try:
            self.config_store.save(self.cfg)
        except Exception as e:
            self.log.log(events.FLASH_CORRUPT, 0, "config save: %s" % e)

    def _open_event_ring(self, part):
        """The persisted event logs in the ``events`` partition: the standard log and, apart
        from it, the security log (``events.log_spans``). Records: 16 bytes,
        ``events.FORMAT`` (lib/events.py), oldest overwritten (lib/ringlog.RingLog); floods
        are held back by ``events.RateLimit``."""
        import ringlog
        from flash import Partition

        flash = self.board.flash
        rings = []
        for o, ln in events.log_spans(part[0], part[1], flash.sector_size):
            ring = ringlog.RingLog(Partition(flash, o, ln), events.RECORD_SIZE)
            ring.mount()
            rings.append(ring)
        self._event_rings = rings
        self._event_ring = rings[0]
        self._event_rec = bytearray(events.RECORD_SIZE)
        self._event_limit = events.RateLimit(burst_for={events.WRONG_PASSWORD: 3})
        kept = 0
        for r in rings:
            kept += sum(1 for _ in r.entries())
        foreign = self.events_blocked()
        if foreign:  # (so that the failing appends below log nothing more)
            self.events_fault = "foreign"
        self.log.log(events.POWER_UP, kept)  # value: events kept
        if foreign:
            self.log.log(events.FLASH_CORRUPT, 0, "event log of another format: not written "
                         "until E2 C.91.8 (seal open) formats it")

    def events_blocked(self):
        """True while a persisted event log is write-protected (another format found)."""
        for r in self._event_rings:
            if r.blocked:
                return True
        return False

    def format_event_logs(self):
        """Sealed E2 C.91.8 (the caller checks the seal): format the write-protected (foreign)
        event logs; logged (STORAGE_FORMATTED, value -2). Returns True when done."""
        try:
            for r in self._event_rings:
                if r.blocked:
                    r.format()
        except Exception as e:
            self.log.log(events.STORAGE_WRITE_FAILED, 0, "event log format: %s" % e)
            return False
        self.events_fault = None
        self.log.log(events.STORAGE_FORMATTED, -2, "event logs formatted (E2 C.91.8)")
        return True

    def _ring_for(self, code):
        rings = self._event_rings
        return rings[events.log_of(code)] if len(rings) > 1 else rings[0]

    def _persist(self, t, code, value, src, subj):
        ring = self._ring_for(code)
        # during a power-fail warning: one page program, never an erase (lib/ringlog.py)
        ring.append(events.encode_record(self._event_rec, t, code, value, src, subj),
                    events.FORMAT, self.power_warning)

    def _event_sink(self, t, code, value, text, src=0, subj=b"\xff" * 6):
        if self._event_rings:
            try:
                lim = self._event_limit
                for c, n, s, j in lim.due(t):
                    self._persist(t, c, n, s | events.SUMMARY, j)
                if lim.admit(code, t, src, subj):
                    self._persist(t, code, value, src, subj)
                    if self.events_fault == "write":  # written again: the episode is over
                        self.events_fault = None
            except Exception as e:  # storage trouble must never stop metering
                if self.power_warning:  # no prepared slot left: kept in RAM only
                    self.events_unsaved += 1
                elif self.events_fault is None:  # once per episode, not once per event
                    self.events_fault = "write"
                    self.log.sink = None
                    self.log.log(events.FLASH_CORRUPT, 0, "event ring: %s" % e)
                    self.log.sink = self._event_sink
        sink = getattr(self.board, "event_sink", None)
        if sink is not None:
            sink(t, code, value, text)

    def persist_event(self, t, code, value, src=events.SRC_METER):
        """Write one record stamped ``t`` (RTC s) straight to its persisted log, without a RAM
        copy or the flood limit: state carried over a restart (protocols.MeterData's
        lockout, PROG_LOCK_KEPT). Never raises."""
        if not self._event_rings:
            return
        try:
            self._persist(t, code, value, src, b"\xff" * 6)
        except Exception:
            pass

    def events_tick(self, force=False):
        """Write the flood summaries that are due (all of them with ``force``)."""
        lim = self._event_limit
        if lim is None:
            return
        t = self.board.clock.time()
        try:
            for c, n, s, j in lim.due(t, force):
                self._persist(t, c, n, s | events.SUMMARY, j)
        except Exception:
            pass

    def persisted_events(self, log=None):
        """Decoded persisted events, oldest first within each log: list of ``(t, code, value,
        src, subject, summary, legacy)`` (``legacy``: an old 12-byte record); ``log``:
        events.LOG_* or None for all."""
        out = []
        rings = self._event_rings
        for i in range(len(rings)):
            if log is not None and len(rings) > 1 and i != log:
                continue
            for _seq, tag, rec in rings[i].entries():
                try:
                    d = events.decode_record(tag, rec)
                except ValueError:
                    continue
                if log is None or len(rings) > 1 or events.log_of(d[1]) == log:
                    out.append(d + (tag == 0,))
        return out

    def set_meter_constant(self, imp_per_kwh, src=events.SRC_METER):
        """Metrological parameter (seal checked by the caller): the test LEDs' constant
        (imp/kWh, and imp/kvarh for the reactive output)."""
        self.cfg["meter_constant"] = imp_per_kwh
        m = self.metering
        outs = self._pulse_outputs(imp_per_kwh)
        olds = (m.pulse, m.pulse_var)
        for i in range(2):
            # the LED's count and the energy not yet pulsed carry over: a counter on the
            # LED keeps equal to ``total``, and no energy is dropped by the change
            if olds[i] is not None:
                outs[i].total = olds[i].total
                outs[i].res = olds[i].res
        m.pulse, m.pulse_var = outs
        self.save_config()
        self.log.log(events.PARAM_CHANGED, imp_per_kwh, "meter constant", src, "0.3.0")

    # Configuration writes are coalesced under a wear budget (lib/config.SaveBudget): the RAM
    # copy changes at once; the flash copy CONFIG_DELAY_S after the last change, or
    # CONFIG_MAX_DELAY_S after the first unsaved one while changes keep coming; at most
    # CONFIG_BURST writes at once and one per CONFIG_REFILL_S after that, plus one at an
    # orderly shutdown. 2 sectors of 4 KiB, one erased per write: 24 writes a day = 12
    # erases per sector a day = 22.8 years to 100 000 cycles (docs/BENCHMARKS.md).
    CONFIG_DELAY_S = 2
    CONFIG_MAX_DELAY_S = 60
    CONFIG_BURST = 4
    CONFIG_REFILL_S = 3600

    def save_config(self):
        """The configuration changed: it is written within the wear budget (config_tick)."""
        if self.config_store is None:
            return
        if not self._cfg_dirty:
            self._cfg_first_s = self._up_s
        self._cfg_dirty = True
        self._cfg_changed_s = self._up_s

    def config_tick(self, force=False):
        """Write a changed configuration if it is due (``force``: now, e.g. at shutdown);
        returns True if written."""
        store = self.config_store
        if store is None or not self._cfg_dirty or self.power_warning:
            return False  # (a save erases a sector: never while the supply may go)
        b = self._cfg_budget
        now = self._up_s
        if not force:
            if (now - self._cfg_changed_s < self.CONFIG_DELAY_S
                    and now - self._cfg_first_s < self.CONFIG_MAX_DELAY_S):
                return False
            if not b.take(now):
                if not self._cfg_deferred:
                    self._cfg_deferred = True
                    self.log.log(events.CONFIG_DEFERRED, b.wait_s(now), "config write budget")
                return False
        return self._config_write()

    def config_save_allowed(self):
        """True if :meth:`save_config_now` would be allowed by the wear budget now."""
        return self.config_store is None or not self._cfg_budget.wait_s(self._up_s)

    def save_config_now(self):
        """Write the configuration at once, spending one write of the wear budget: for the
        security and metrological parameters (password C.90.2, meter constant 0.3.0), whose
        ACK must mean that a power cut cannot bring the old value back. Returns True when
        written (or the board has no configuration partition: RAM only, a documented
        limit); False when the budget is spent (nothing written, the change stays due) or the
        flash failed (logged)."""
        if self.config_store is None:
            return True
        self.save_config()
        if not self._cfg_budget.take(self._up_s):
            return False
        return self._config_write()

    def _config_write(self):
        store = self.config_store
        now = self._up_s
        self._cfg_dirty = False
        self._cfg_deferred = False
        try:
            store.save(self.cfg)
        except Exception as e:  # a full or failing partition must not stop the meter
            self.log.log(events.FLASH_CORRUPT, 0, "config save: %s" % e)
            return False
        if self._cfg_twice:  # the other copy too (after a fallback was acknowledged)
            self._cfg_twice = False
            self._cfg_dirty = True
            self._cfg_first_s = self._cfg_changed_s = now - self.CONFIG_MAX_DELAY_S
        return True

    async def config_task(self, period_ms=1000):
        """Every second of metering time: the deferred configuration write and the event
        log's flood summaries."""
        clock = self.board.clock
        last = clock.ticks_ms()
        while True:
            await clock.sleep_ms(period_ms)
            d = clock.ticks_diff(clock.ticks_ms(), last)
            if d >= 1000:
                k = d // 1000
                self._up_s += k
                last = clock.ticks_add(last, k * 1000)
            self.config_tick()
            self.events_tick()

    def password_set(self):
        """A new password was written: trusted again (F.F.0 ERR_SECURITY clears)."""
        import status

        self.password_trusted = True
        self.config_errors &= ~status.ERR_SECURITY
        self.cfg["fallback"] = self.config_errors

    def clear_config_alarm(self):
        """E2 C.91.0: the configuration fallback is acknowledged; both copies are written
        again (F.F.0 ERR_CONFIG clears; ERR_SECURITY only by a new password)."""
        import status

        self.config_errors &= ~status.ERR_CONFIG
        self.cfg["fallback"] = self.config_errors
        if self.config_store is not None:
            import config

            self.config_status = config.STATUS_OK
            self.save_config()
            self._cfg_twice = True

    def cold_start(self, src=events.SRC_METER):
        """Master reset under open seal: registers to zero, logged, committed at once.
        Returns False when the commit failed on a writable journal (a restart would bring
        the old registers back; the caller answers ER09), else True."""
        r = self.registers
        for i in range(len(r.whole)):
            r.whole[i] = 0
            r.res[i] = 0
        self.log.log(events.PARAM_CHANGED, 0, "cold start: registers cleared", src, "C.91.9")
        if self.storage is not None:
            import journal

            if not self.storage.force_commit(journal.REASON_MANUAL):
                return self.storage.journal.blocked  # foreign: nothing to bring back
        return True

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
            s = self.meter_data.session(True, events.SRC_OPTICAL)
            st["optical"] = optical.PortStats()
            out.append(asyncio.create_task(optical.run_port(b.uart_optical, s,
                                                            stats=st["optical"])))
        if b.uart_rs485 is not None:
            s = self.meter_data.session(False, events.SRC_RS485)
            st["rs485"] = optical.PortStats()
            out.append(asyncio.create_task(optical.run_port(b.uart_rs485, s, b.rs485_de,
                                                            stats=st["rs485"])))
        return out

    async def main(self, duration_ms=None):
        tasks = [asyncio.create_task(self.metering.run())]
        self._led_task = asyncio.create_task(self.led_task())
        tasks.append(asyncio.create_task(self.display.run()))
        if self.storage is not None:
            tasks.append(asyncio.create_task(self.storage.run()))
            if getattr(self.board, "on_power_fail", None) is not None:
                tasks.append(asyncio.create_task(self.storage.power_fail_watch(self.board)))
        tasks.append(asyncio.create_task(self.config_task()))
        import tamper

        self.tamper = tamper.TamperWatch(self)
        tasks.append(asyncio.create_task(self.tamper.run()))
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
            for t in tasks + [self._led_task]:  # (the LED task may have been restarted)
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
        self.config_tick(force=True)  # a configuration change held back by the budget
        self.events_tick(force=True)  # flood summaries not yet written


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
