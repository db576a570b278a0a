# The metering task: ADE7953 counts -> gate -> registers -> pulse output.
"""Metering task (the only writer of the energy registers).

Every ``period_ms`` of metering time (default 1 000 ms; refused above half the overflow bound
from lib.ade7953.ADE7953.max_read_interval_ms) it reads the channel-A accumulators with
reset, fixes a detected 24-bit wrap, applies the no-load / starting-current gate, adds the
interval to the registers and hands the active energy to the kWh test LED and, when a second
output is given (``pulse_var``), the reactive energy |Q| to the kvarh LED (used in test mode,
firmware/display.py). Deadlines are
absolute, so no interval is lost or counted twice. Instantaneous values (V, I, P, Q, S, PF,
f) are read once per real second for the display and protocols.

A missing, mis-clocked or reset chip is logged (METROLOGY_FAULT / CHIP_RESET), the registers
hold their values, and the task retries the power-up sequence every ``retry_ms``.
"""

import time

import events
from ade7953 import ADE7953Error

_WRAP = 1 << 24


def _unwrap(c, limit):
    """Undo one 24-bit wrap of count ``c`` given |true value| <= ``limit``: of the candidates
    c, c + 2^24, c - 2^24 within the limit, the largest magnitude (the flag says it wrapped)."""
    best = c
    for cand in (c + _WRAP, c - _WRAP):
        if -limit <= cand <= limit and abs(cand) > abs(best):
            best = cand
    return best


class Metering:
    """``ade``: lib.ade7953.ADE7953; ``regs``: lib.energy.Registers; ``gate``:
    lib.pulse.NoLoadGate; ``pulse``: lib.pulse.PulseOutput (active energy, kWh LED);
    ``clock``: board clock; ``log``: lib.events.EventLog; ``period_ms``: read interval (ms of
    metering time); ``pulse_var``: optional second PulseOutput fed with the reactive energy
    (sign ignored: |Q|, kvarh LED), counted in ``var_pulses_due``."""

    def __init__(self, ade, regs, gate, pulse, clock, log, period_ms=1000, verify_every=10,
                 retry_ms=1000, pulse_var=None):
        limit = ade.max_read_interval_ms() // 2
        if not 10 <= period_ms <= limit:
            raise ValueError("read period %d ms outside 10..%d ms" % (period_ms, limit))
        self.ade = ade
        self.regs = regs
        self.gate = gate
        self.pulse = pulse
        self.pulse_var = pulse_var
        self.clock = clock
        self.log = log
        self.period_ms = period_ms
        self._verify_every = verify_every
        self._retry_ms = retry_ms
        self.fault = None  # text of the current metrology fault, or None
        self.ok = False
        self.steps = 0
        self.pulses_due = 0  # pulses not yet shown by the LED task
        self.var_pulses_due = 0  # reactive pulses (pulse_var) not yet shown
        self.no_load = True
        self.instant = None  # dict from ADE7953.instant_values(), refreshed each real second
        self._last_ms = 0
        self._inst_wall = None
        self.on_step = None  # optional hook (board instrumentation), called after each step

    async def start_chip(self):
        """Power-up sequence; on failure log once per episode and return False."""
        try:
            await self.ade.begin(self.clock.sleep_ms)
        except ADE7953Error as e:
            if self.fault is None:
                self.log.log(events.METROLOGY_FAULT, 0, str(e))
            self.fault = str(e)
            self.ok = False
            return False
        self.log.log(events.METROLOGY_OK, 0, "ADE7953 configured")
        self.fault = None
        self.ok = True
        self._last_ms = self.clock.ticks_ms()
        return True

    def step(self):
        """One read interval ending now (hot path, allocation-free on the normal path)."""
        clock = self.clock
        now = clock.ticks_ms()
        dt = clock.ticks_diff(now, self._last_ms)
        self._last_ms = now
        ade = self.ade
        ade.read_energy()
        ea = ade.e_active
        er = ade.e_reactive
        es = ade.e_apparent
        if ade.overflow:
            es = _unwrap(es, _WRAP * 4) if es >= 0 else es + _WRAP
            ea = _unwrap(ea, es)
            er = _unwrap(er, es)
            self.log.log(events.ENERGY_OVERFLOW, ade.overflow, "accumulator wrapped")
        if self.gate.passes(es, dt):
            if self.no_load:
                self.no_load = False
            self.regs.add(ea, er, es)
            self.pulses_due += self.pulse.add(ea)
            pv = self.pulse_var
            if pv is not None:
                self.var_pulses_due += pv.add(er)
        elif not self.no_load:
            self.no_load = True
        self.steps += 1

    async def run(self):
        """Run forever: bring the chip up, then read every ``period_ms``."""
        clock = self.clock
        while True:
            if not self.ok:
                if not await self.start_chip():
                    await clock.sleep_ms(self._retry_ms)
                    continue
                # align reads to whole periods of the clock (k * period_ms), so intervals
                # line up with demand and profile periods and with the load trace's steps
                deadline = self._align(self._last_ms)
            wait = clock.ticks_diff(deadline, clock.ticks_ms())
            if wait > 0:
                await clock.sleep_ms(wait)
            else:
                await clock.sleep_ms(0)
            try:
                self.step()
                if self.steps % self._verify_every == 0:
                    self.ade.verify()
                self._instant()
            except ADE7953Error as e:
                self.log.log(events.CHIP_RESET if "reset" in str(e) else events.METROLOGY_FAULT,
                             0, str(e))
                self.fault = str(e)
                self.ok = False
                continue
            deadline = clock.ticks_add(deadline, self.period_ms)
            if clock.ticks_diff(clock.ticks_ms(), deadline) > self.period_ms:
                deadline = self._align(clock.ticks_ms())  # fell behind: resynchronise
            if self.on_step is not None:
                self.on_step()

    def _align(self, t):
        # the next whole multiple of period_ms after t (ticks arithmetic, wrap-safe)
        return self.clock.ticks_add(t, self.period_ms - t % self.period_ms)

    def _instant(self):
        w = time.ticks_ms()
        if self._inst_wall is None or time.ticks_diff(w, self._inst_wall) >= 1000:
            self._inst_wall = w
            self.ade.read_instant()
            self.instant = self.ade.instant_values()

    def finish(self):
        """Account the partial interval up to now (at shutdown / before a commit)."""
        if self.ok:
            try:
                self.step()
            except ADE7953Error:
                pass
