# The metering step: ADE7953 counts -> plausibility -> gate -> registers -> consumers.
"""The metering step (the only writer of the energy registers; no asyncio: the loop that
calls it every period is firmware/tasks/metering.py).

Every ``period_ms`` of metering time (default 1 000 ms; refused above half the overflow bound
from lib.ade7953.ADE7953.max_read_interval_ms) :meth:`Metering.step` reads the channel-A
accumulators with reset, fixes a 24-bit wrap of each accumulator whose own IRQSTATA flag
(AEOFA, VAREOFA, VAEOFA, DS p.50) reports one, checks that the interval is physically
plausible, applies the no-load / starting-current gate, adds the interval to the registers
and fans it out to a fixed tuple of consumers: ``consumer.interval(ea, er, es, dt)`` with the
interval's active, reactive and apparent counts (chip LSB; zeros when the gate is closed) and
its length in ms, every argument a small int, allocation-free. Today the test output
(firmware/meter/testoutput.py); tariff registers, demand and load profiles are the next
consumers. The task's deadlines are absolute, so no interval is lost or counted twice.
Instantaneous values (V, I, P, Q, S, PF, f) are read once per real second
(:meth:`Metering.refresh_instant`) for the display and the protocols.

Requests. Nothing else writes a register: a cold start (E2 C.91.9) or a preset is a request
(:meth:`Metering.request_clear`) that the metering task executes between two steps
(:meth:`Metering.serve`), then calls the request's ``done`` callback (the storage commits).

Plausibility (every interval, before anything reaches a register; ``dt`` = the measured
interval in ms):

1. the words are the chip's (``ADE7953.read_energy``: each word equals the chip's
   LAST_RWDATA echo, CONFIG and LCYCMODE read back as written, no RESET interrupt);
2. |AENERGYA|, |RENERGYA|, APENERGYA <= L x (dt + r' + 2 ms), L =
   ``ADE7953.count_limit_per_ms`` (twice the full-scale rate: what the chip can count at
   all, its inputs clipped); r' is how long the previous interval's reads took (a word
   covers from its read then to its read now) and the 2 ms the 1 ms tick of both ends;
3. |P| <= S x (1 + 1/16) + L x (r + r' + 1 ms) and |Q| likewise, compared in calibrated
   units (Wh, varh, VAh): the chip's VA is VRMS x IRMS (DS p.31), never below |P| or |Q|;
   1/16 covers the three paths' separate gain calibration (class 1: 1 % each) and the
   chip's own error (< 0.1 % P/Q, < 0.2 % rms, DS p.4); the constant term the 1-LSB
   quantisation of each count and the offset between the words' windows (they are read
   one after the other: at most the two intervals' read durations r' and r apart; about
   0.5 ms on a device, more on a virtual board whose clock runs during the reads);
   a count whose wrap flag is set is checked after the repair: one that no +-2^24 brings
   within this bound, or both do (no unique repair: the direction unknown), fails it, and
   so does a repaired interval with P^2 + Q^2 > (S x (1 + 1/16))^2 (VA is VRMS x IRMS:
   an S that wrapped twice is repaired one 2^24 short). A repair assumes one wrap per
   read: S below 1.5 x 2^24 LSB, i.e. a read less than ~3 x the overflow bound late.

An interval failing any of these is dropped whole: the registers and pulse outputs hold,
the drop is logged once per episode (CHIP_RESET for a restart, METROLOGY_FAULT for a bus or
configuration fault, ENERGY_IMPLAUSIBLE for counts beyond 2. or 3.; value = the reason
DROP_*), ``ok`` goes False (F.F.0 metrology bit, LCD ALARM, LED dark) and the chip is brought
up again (hard reset, full configuration, the first read after it discarded). The energy of
the dropped interval and of the re-initialisation (about 0.1 s) is lost, never invented: the
accumulators were read with reset or cleared by the reset, so nothing from the faulty
period reaches the registers later. The episode ends (METROLOGY_OK) with the first
plausible interval.

Over-range: the chip's OIA / OV flags (peak beyond 85 % of the ADC full scale) or an apparent
count above the full-scale rate (only possible with clipped inputs) start an episode:
OVER_RANGE_START (value: 1 current, 2 voltage, 4 energy) once, ``over_range`` True (F.F.0
over-range bit, LCD ALARM); it ends (OVER_RANGE_END, value: seconds) after 60 s of metering
time without any. The registers count what the chip measured (the clipped energy: bounded,
of the right sign, below the true energy), as in any interval; while it lasts the displayed
P, Q, S are the last interval's mean from those counts, not the instantaneous registers
(which saturate, or might wrap, beyond full scale).

A missing, mis-clocked or reset chip at power-up is logged (METROLOGY_FAULT), the registers
hold their values, and the task retries the power-up sequence every ``retry_ms``.
"""

from micropython import const

import events
import ticks
from ade7953 import ENERGY_RATE_FULL_SCALE, IRQ_OIA, READ_CONFIG, READ_ECHO, READ_RESET

_WRAP = const(1 << 24)
_DT_MAX = const(1 << 19)  # ms; bounds are computed for at most this interval (8.7 min)
_SLACK_MS = const(2)
_TOL_Q10 = const(1088)  # 1 + 1/16, in 1/1024
_OR_HOLD_MS = const(60000)
# IRQSTATA overflow flags, one per accumulator (DS p.50)
_AEOFA = const(1 << 3)
_VAREOFA = const(1 << 4)
_VAEOFA = const(1 << 5)

# Why an interval was dropped (event value). 1..3 are lib.ade7953.READ_* codes.
DROP_ECHO = READ_ECHO  # a word differs from the chip's own record (MISO corruption)
DROP_CONFIG = READ_CONFIG  # CONFIG not as written: mis-clocked / stuck bus, lost configuration
DROP_RESET = READ_RESET  # the chip restarted (RESET interrupt, CONFIG at its default)
DROP_RANGE = const(4)  # a count beyond what the chip can count in the interval
DROP_RATIO = const(5)  # |P| or |Q| beyond S
REASONS = ("", "word differs from the chip's LAST_RWDATA echo",
            "CONFIG not as written (bus mis-clocked or stuck, configuration lost)",
            "chip restarted", "count beyond the chip's full-scale limit", "|P| or |Q| above S")

# over-range causes (event value, bits)
OR_CURRENT = const(1)
OR_VOLTAGE = const(2)
OR_ENERGY = const(4)

# events waiting for run() (the step itself never logs: logging allocates)
_P_OVERFLOW = const(1)
_P_OR_START = const(2)
_P_OR_END = const(4)


def _unwrap(c, limit):
    """Undo one 24-bit wrap of count ``c`` (its register's wrap flag is set) given |true
    value| <= ``limit``: the one of c + 2^24, c - 2^24 within the limit; ``c`` itself when
    neither is, or both are (no unique repair: the caller drops the interval rather than
    guess the direction)."""
    a = c + _WRAP <= limit
    if (c - _WRAP >= -limit) == a:
        return c
    return c + _WRAP if a else c - _WRAP


def _mul_q10(x, m):
    # x * m / 1024 rounded down, for 0 <= x < 2^26 and 0 <= m < 2^14, with every
    # intermediate below 2^30 (small ints on a 32-bit port)
    return (x >> 10) * m + (((x & 1023) * m) >> 10)


class Metering:
    """``ade``: lib.ade7953.ADE7953; ``regs``: lib.energy.Registers; ``gate``:
    lib.energy.pulse.NoLoadGate; ``clock``: board clock; ``log``: lib.events.EventLog;
    ``period_ms``: read interval (ms of metering time); ``consumers``: tuple of objects with
    ``interval(ea, er, es, dt)`` (module docstring)."""

    def __init__(self, ade, regs, gate, clock, log, period_ms=1000, verify_every=10,
                 retry_ms=1000, consumers=()):
        limit = ade.max_read_interval_ms() // 2
        if not 10 <= period_ms <= limit:
            raise ValueError("read period %d ms outside 10..%d ms" % (period_ms, limit))
        self.ade = ade
        self.regs = regs
        self.gate = gate
        self.consumers = tuple(consumers)
        self.clock = clock
        self.log = log
        self.period_ms = period_ms
        self.verify_every = verify_every
        self.retry_ms = retry_ms
        # plausibility constants (module docstring), all small ints
        lim = ade.count_limit_per_ms()
        cal = ade.cal
        ka = int(cal.vah_per_lsb / cal.wh_per_lsb * _TOL_Q10) + 1
        kr = int(cal.vah_per_lsb / cal.varh_per_lsb * _TOL_Q10) + 1
        if not 0 < lim < 2048 or not 0 < ka < 16384 or not 0 < kr < 16384:
            raise ValueError("calibration out of the plausibility check's range")
        self._lim_ms = lim
        self._ka = ka
        self._kr = kr
        den = 0x400000 * 1000
        self._fs_ms = (ENERGY_RATE_FULL_SCALE * cal.avagain + den - 1) // den  # LSB/ms at fs
        self.fault = None  # text of the current metrology fault, or None
        self.ok = False  # metrology trusted: chip up and the last interval plausible
        # chip configured since the last fault (intervals are read); a plain attribute, not
        # a property: the metering task reads it every step (a property is a call)
        self.up = False
        # steps done, modulo 2^30 (a small int on a 32-bit port: at 1 s per step the count
        # would pass 2^30 after 34 years, and the increment in the heap-locked step allocate)
        self.steps = 0
        # power-up attempts of the chip (each ends in chip_up or chip_failed), modulo 2^30:
        # with ``steps``, the supervisor's proof of progress (tasks/supervisor.py)
        self.attempts = 0
        self.no_load = True
        # the instantaneous values in thousandths (ADE7953.instant_into: V mV, I/IN mA, P mW,
        # Q mvar, S mVA, PF 1/1000, f mHz, angle mdeg), refreshed in place each real second
        # (no allocation); None before the first reading. ``instant_seq`` counts the
        # refreshes (modulo 2^30).
        self.instant_milli = None
        self._inst_d = {"V": 0, "I": 0, "IN": 0, "P": 0, "Q": 0, "S": 0, "PF": 0, "f": 0,
                        "angle": 0}
        self.instant_seq = 0
        self._inst_or = False  # P, Q, S of the last refresh from the interval's counts
        # last dropped interval: reason (DROP_*), counts (LSB) and dt (ms); drops in total
        self.drop = 0
        self._d_ea = self._d_er = self._d_es = self._d_dt = 0
        self.drops = 0
        # over-range episode
        self.over_range = False
        self.over_range_cause = 0
        self._or_since = 0
        self._or_last = 0
        self._pend = 0
        self._ovf = 0
        self._last_ms = 0
        self._skew = 0  # ms the previous interval's reads took
        self._e_a = self._e_r = self._e_s = self._e_dt = 0
        self._inst_wall = None
        self.on_step = None  # optional hook (board instrumentation), called after each step
        self._req = []  # pending requests: (kind, src, done)

    def chip_failed(self, e):
        """The power-up sequence failed (``e``: the ADE7953Error): logged once per episode."""
        if self.fault is None:
            self.log.log(events.METROLOGY_FAULT, 0, str(e))
        self.fault = str(e)
        self.ok = False
        self.up = False
        self._attempted()

    def _attempted(self):
        a = self.attempts
        self.attempts = 0 if a >= 0x3FFFFFFF else a + 1

    def chip_up(self, t0):
        """The chip was configured and its first read (started at ticks ``t0``) discarded:
        intervals are read from now on."""
        self.up = True
        self._attempted()
        if self.fault is None:
            self.log.log(events.METROLOGY_OK, 0, "ADE7953 configured")
            self.ok = True
        self._last_ms = self.clock.ticks_ms()
        self._skew = self.clock.ticks_diff(self._last_ms, t0)

    @property
    def last_ms(self):
        """Metering-clock ticks at the end of the last read."""
        return self._last_ms

    def read_failed(self, e):
        """A read raised ADE7953Error mid-run: logged once per episode, chip down."""
        if self.fault is None:
            self.log.log(events.CHIP_RESET if "reset" in str(e) else events.METROLOGY_FAULT,
                         0, str(e))
        self.fault = str(e)
        self.ok = False
        self.up = False

    def step(self):
        """One read interval ending now (hot path, allocation-free on every path, the drop
        included). Returns 0, or the DROP_* reason when the interval was dropped."""
        # (in five parts so that no frame passes 11 words: a larger one is heap-allocated at
        # every call; docs/BENCHMARKS.md "Session 9: speed")
        clock = self.clock
        t0 = clock.ticks_ms()
        code = self.ade.read_energy()
        now = clock.ticks_ms()  # after the reads: the counts end at or before now
        dt = clock.ticks_diff(now, self._last_ms)
        self._last_ms = now
        t0 = clock.ticks_diff(now, t0)  # the reads' duration
        if self.steps >= 0x3FFFFFFF:  # (not (steps + 1) & mask: 2^30 is itself a long int)
            self.steps = 0
        else:
            self.steps += 1
        if not code:
            code = self._check(dt, t0)
        if code:
            self._skew = t0
            return self._drop_interval(code, dt)
        self._accept(dt, t0)
        return 0

    def _check(self, span, pair):
        # the counts just read, a flagged wrap repaired in the driver's e_* (module
        # docstring): 0 if physically possible, else DROP_*. Each word covers from its read
        # last time to its read now: within dt (``span`` on entry) plus the previous reads'
        # duration; two words' windows differ by at most both durations (``pair`` on entry:
        # this read's)
        span += self._skew
        pair += self._skew
        ade = self.ade
        es = ade.overflow
        if es:
            es = self._repair(es, pair)
        es = self._implausible(span, pair) or es  # (its reason first)
        if not es and ade.overflow:  # a repaired wrap (a refused one is the drop)
            es = self._circle(pair)
            if not es:
                self._ovf = ade.overflow
                self._pend |= _P_OVERFLOW
        return es

    def _repair(self, ovf, pair):
        # undo the wrap of each accumulator whose own flag is set in ``ovf`` (AEOFA, VAREOFA,
        # VAEOFA: IRQSTATA bits 3, 4, 5, DS p.25 and p.50), in the driver's e_*; the others
        # are left alone (a wrap of S alone must not add 2^24 to P or Q, nor one of P alone
        # to S). P and Q are bounded as in _implausible's ratio check (``pair``: its ms);
        # a flagged P or Q that no wrap, or both, bring within that bound is DROP_RATIO (0
        # if none)
        ade = self.ade
        es = ade.e_apparent
        if ovf & _VAEOFA:
            es += _WRAP  # (S >= 0: one wrap up, whichever sign the word reads with)
            ade.e_apparent = es
        if pair > _DT_MAX:
            pair = _DT_MAX
        pair = self._lim_ms * (pair + 1)  # (the slack)
        if ovf & _AEOFA:
            x = _mul_q10(es, self._ka) + pair
            x = _unwrap(ade.e_active, x)
            if x == ade.e_active:
                return DROP_RATIO
            ade.e_active = x
        if ovf & _VAREOFA:
            x = _mul_q10(es, self._kr) + pair
            x = _unwrap(ade.e_reactive, x)
            if x == ade.e_reactive:
                return DROP_RATIO
            ade.e_reactive = x
        return 0

    def _circle(self, pair):
        # after a repaired wrap that passed _implausible (``pair``: its ms): DROP_RATIO when
        # P^2 + Q^2 > (S (1 + 1/16))^2 in calibrated units, else 0. The chip's VA is VRMS x
        # IRMS (DS p.31), never below that (Cauchy-Schwarz: P and Q are the current's
        # products with the voltage and with the voltage shifted 90 degrees). An S that
        # wrapped twice is repaired one 2^24 short, and P or Q then passes the ratio check
        # with the wrong sign: this catches it. In 1/1024 of the ratio check's bounds
        # (rounded down: never stricter than exact), small ints only
        if pair > _DT_MAX:
            pair = _DT_MAX
        pair = self._lim_ms * (pair + 1)  # (the slack)
        es = self.ade.e_apparent
        x = (_mul_q10(es, self._ka) + pair) >> 10
        y = self.ade.e_active
        x = (y if y >= 0 else -y) // (x + 1)
        es = (_mul_q10(es, self._kr) + pair) >> 10
        y = self.ade.e_reactive
        y = (y if y >= 0 else -y) // (es + 1)
        if x > 1024 or y > 1024:
            return DROP_RATIO  # (not reached: _implausible checked each alone)
        return DROP_RATIO if x * x + y * y > 1 << 20 else 0

    def _drop_interval(self, code, dt):
        ade = self.ade
        self.drop = code
        self._d_ea = ade.e_active
        self._d_er = ade.e_reactive
        self._d_es = ade.e_apparent
        self._d_dt = dt
        self.drops += 1
        self.ok = False
        return code

    def _accept(self, dt, skew):
        # a plausible interval of ``dt`` ms (the reads took ``skew`` ms): over-range, the
        # no-load gate, the registers, the consumers
        ade = self.ade
        es = self._skew
        self._skew = skew
        skew = dt + es  # (the span, as in _check)
        es = ade.e_apparent
        self._over_range(ade.over_range, es, skew, self._last_ms)
        self._e_a = ade.e_active  # the last plausible interval (for the display while over
        self._e_r = ade.e_reactive  # range)
        self._e_s = es
        self._e_dt = dt
        if self.gate.passes(es, dt):
            if self.no_load:
                self.no_load = False
            self.regs.add(ade.e_active, ade.e_reactive, es)
            self._feed(True)
        else:
            if not self.no_load:
                self.no_load = True
            self._feed(False)

    def _feed(self, passed):
        # each consumer gets the interval (_e_*), or zeros when the gate refused it
        cs = self.consumers
        n = len(cs)
        i = 0
        while i < n:
            if passed:
                cs[i].interval(self._e_a, self._e_r, self._e_s, self._e_dt)
            else:
                cs[i].interval(0, 0, 0, self._e_dt)
            i += 1

    def _implausible(self, span, pair):
        # 0 if the counts just read (the driver's e_*) are physically possible (module
        # docstring), else DROP_*; ``span``: ms the words can cover, ``pair``: ms by which
        # two words' windows can differ
        if span > _DT_MAX:
            span = _DT_MAX
        if pair > _DT_MAX:
            pair = _DT_MAX
        lim = self._lim_ms * (span + _SLACK_MS) if span >= 0 else 0
        ade = self.ade
        span = ade.e_apparent
        if span < 0 or span > lim:
            return DROP_RANGE
        x = ade.e_active
        if (x if x >= 0 else -x) > lim:
            return DROP_RANGE
        x = ade.e_reactive
        if (x if x >= 0 else -x) > lim:
            return DROP_RANGE
        pair = self._lim_ms * (pair + 1)  # (the slack)
        x = ade.e_active
        if (x if x >= 0 else -x) > _mul_q10(span, self._ka) + pair:
            return DROP_RATIO
        x = ade.e_reactive
        if (x if x >= 0 else -x) > _mul_q10(span, self._kr) + pair:
            return DROP_RATIO
        return 0

    def _over_range(self, flags, es, span, now):
        # the over-range episode (module docstring); allocation-free
        cause = 0
        if flags:
            cause = OR_CURRENT if flags & IRQ_OIA else 0
            if flags & ~IRQ_OIA:
                cause |= OR_VOLTAGE
        if span > 0 and es > self._fs_ms * (span if span < _DT_MAX else _DT_MAX):
            cause |= OR_ENERGY
        if cause:
            self._or_last = now
            if not self.over_range:
                self.over_range = True
                self.over_range_cause = cause
                self._or_since = now
                self._pend |= _P_OR_START
            else:
                self.over_range_cause |= cause
        elif self.over_range and self.clock.ticks_diff(now, self._or_last) >= _OR_HOLD_MS:
            self.over_range = False
            self._pend |= _P_OR_END

    def log_pending(self):
        """Log what the last steps noted (overflow repaired, over-range start / end)."""
        p = self._pend
        if not p:
            return
        self._pend = 0
        log = self.log
        if p & _P_OVERFLOW:
            log.log(events.ENERGY_OVERFLOW, self._ovf, "accumulator wrapped")
        if p & _P_OR_START:
            log.log(events.OVER_RANGE_START, self.over_range_cause,
                    "over-range (1 current, 2 voltage, 4 energy)")
        if p & _P_OR_END:
            secs = self.clock.ticks_diff(self._or_last, self._or_since) // 1000
            log.log(events.OVER_RANGE_END, secs, "over-range ended after %d s" % secs)

    def drop_text(self):
        """The last dropped interval, in words (for the event log)."""
        return "interval dropped: %s (AENERGYA %d RENERGYA %d APENERGYA %d LSB in %d ms)" % (
            REASONS[self.drop], self._d_ea, self._d_er, self._d_es, self._d_dt)

    def after_step(self, code):
        """What follows a :meth:`step` outside the hot path (it allocates): log what the
        step noted, then for a dropped interval (``code`` != 0) log it once per episode and
        mark the chip for re-initialisation, else end a fault episode (METROLOGY_OK)."""
        if self._pend:  # (log_pending's own test: a call less every step)
            self.log_pending()
        if code:
            self._dropped(code)
        elif not self.ok:
            self._recovered()

    def _dropped(self, code):
        # an implausible interval (step returned code): log once per episode, re-initialise
        text = self.drop_text()
        if self.fault is None:
            if code == DROP_RESET:
                ev = events.CHIP_RESET
            elif code >= DROP_RANGE:
                ev = events.ENERGY_IMPLAUSIBLE
            else:
                ev = events.METROLOGY_FAULT
            self.log.log(ev, code, text)
        self.fault = text
        self.ok = False
        self.up = False

    def _recovered(self):
        self.log.log(events.METROLOGY_OK, 0, "metrology ok after: %s" % self.fault)
        self.fault = None
        self.ok = True

    def align(self, t):
        """The next whole multiple of ``period_ms`` after ticks ``t`` (wrap-safe)."""
        return self.clock.ticks_add(t, self.period_ms - t % self.period_ms)

    def refresh_instant(self, force=False):
        """Read the instantaneous values (:attr:`instant_milli`) if a real second passed
        since the last read (or ``force``). Allocation-free in steady state (the dict is
        updated in place); over range it computes P, Q, S in floats."""
        # (the read in _read_instant: this check runs after every step, and a frame above 11
        # words is heap-allocated at every call on MicroPython)
        w = ticks.ticks_ms()
        if force or self._inst_wall is None or ticks.ticks_diff(w, self._inst_wall) >= 1000:
            self._inst_wall = w
            self._read_instant()

    def _read_instant(self):
        ade = self.ade
        ade.read_instant()
        v = self._inst_d
        ade.instant_into(v)
        self._inst_or = self.over_range and self._e_dt > 0
        if self._inst_or:
            # beyond full scale the instantaneous registers are not to be trusted (they
            # may saturate or wrap): P, Q, S are the last interval's mean, from the counts
            # the registers took, so the display never shows an import as export
            c = ade.cal
            k = 3.6e9 / self._e_dt  # (Wh per ms -> mW)
            v["P"] = int(self._e_a * c.wh_per_lsb * k)
            v["Q"] = int(self._e_r * c.varh_per_lsb * k)
            v["S"] = int(self._e_s * c.vah_per_lsb * k)
        self.instant_milli = v
        n = self.instant_seq
        self.instant_seq = n + 1 if n < 0x1FFFFFFF else 0

    def instant_value(self, key):
        """One instantaneous quantity of the last refresh in SI units (float: V, A, W, var,
        VA, Hz, degrees; PF -1..1), as the chip's calibration gives it (ADE7953
        instant_values, the protocols' resolution), or None before the first reading.
        Allocates (floats): for the protocols, not for per-second readers (those use
        :attr:`instant_milli`)."""
        if self.instant_milli is None:
            return None
        if self._inst_or and (key == "P" or key == "Q" or key == "S"):
            return self.instant_milli[key] / 1000
        return self.ade.instant_values()[key]

    def finish(self, commit=None):
        """Account the partial interval up to now (at shutdown / before a commit); a dropped
        one is not counted. Requests still pending are executed first (a cold start is not
        undone by the commit that follows). ``commit``: called after the step and before
        anything is logged (the power-fail path: the urgent commit comes before any other
        flash write; the requests' ``done`` callbacks, non-urgent commits, are then left
        out). Allocation-free up to and including ``commit`` (if that is) when no request is
        pending."""
        n = 0
        if self._req:  # executed first, logged after the commit
            n = len(self._req)
            self.regs.clear()
        code = -1
        if self.up and self.ok:
            code = self.step()
        if commit is not None:
            commit()
        if code >= 0:
            self.after_step(code)
        if n:
            self.serve(commit is None)

    # -- requests: the only way anything else changes a register --------------------------

    def request_clear(self, src=events.SRC_METER, done=None):
        """Ask for a cold start (every register to zero, E2 C.91.9 under open seal): the
        metering task executes it before its next step (:meth:`serve`), logs it
        (PARAM_CHANGED, subject C.91.9) and calls ``done()``."""
        self._req.append((0, src, done))

    def pending(self):
        """True while a request waits for the metering task."""
        return bool(self._req)

    def serve(self, done=True):
        """Execute the pending requests (the metering task, between steps); ``done``: call
        each request's ``done`` callback."""
        if self._req:  # (the loop in _serve: this runs before every step, see refresh_instant)
            self._serve(done)

    def _serve(self, done):
        while self._req:
            _kind, src, cb = self._req.pop(0)
            self.regs.clear()
            self.log.log(events.PARAM_CHANGED, 0, "cold start: registers cleared", src,
                         "C.91.9")
            if done and cb is not None:
                cb()
