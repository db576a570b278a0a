# Test LED pulse output and the no-load / starting-current gate.
"""Metrological test output and the no-load gate shared by the registers and the LED.

Pulse output: k imp/kWh (default 1000, i.e. one pulse per Wh) clocked from integrated energy
with the residue carried over (never from instantaneous power), as IEC 62052-11 / 62053-21
expect a test output consistent with the register: a counter on the LED equals
:attr:`PulseOutput.total` (so the LED is dark, not steadily lit, in no-load: a steady light
would count as one more pulse; see docs/METROLOGY.md). Pulse ON time 40 ms (Elster A100C
at 1000 imp/kWh); the maximum rate at 60 A x 264.5 V is 15.9 kW * 1000 / 3.6e6 = 4.4 Hz, at
the chip's clipped limit (twice 31.15 kVA) 17.3 Hz.

Gate: IEC 62053-21 class 1 / EN 50470-3 class B starting current Ist = 0.004 Iref (20 mA for
Iref = 5 A). An interval registers only when its mean apparent power reaches
Un * Ist * ratio / 100 (ratio default 50 %: the meter starts with margin at Ist, and with no
current it registers nothing: the no-load test). Computed from the interval's apparent
energy so the decision matches what was integrated (a load switching off mid-interval still
has its energy counted).
"""


from micropython import const

_PIECE = const(1 << 21)  # LSB carried at once: res + (piece << 8) < 2^24 + 2^29 < 2^30


class PulseOutput:
    """``lsb_per_pulse_q8``: chip LSB per pulse times 256 (for 1000 imp/kWh: LSB per Wh,
    i.e. lib.energy.lsb_per_unit_q8(wh_per_lsb)). :meth:`add` returns the pulses due.
    ``total``: pulses issued to the LED (a caller that drops owed pulses unshown takes them
    off, and a new output for another meter constant starts from the old ``total`` and
    ``res``: firmware/meter/testoutput.py), so a counter on the LED equals it."""

    def __init__(self, lsb_per_pulse_q8):
        self._div = lsb_per_pulse_q8
        self.res = 0
        self.total = 0

    def add(self, lsb):
        """Add ``lsb`` (chip counts, sign ignored). Returns the number of new pulses (int).
        Allocation-free on a 32-bit port for any count: carried in pieces of 2^21 LSB (one
        24-bit read at full scale, 2^23 LSB, << 8 would be a long int)."""
        if lsb < 0:
            lsb = -lsb
        r = self.res
        n = 0
        d = self._div
        while lsb > 0:
            c = lsb if lsb < _PIECE else _PIECE
            lsb -= c
            r += c << 8
            if r >= d:
                q = r // d
                r -= q * d
                n += q
        self.total += n
        self.res = r
        return n


class PulseTrain:
    """Timing of the test LED: shows pulses owed, spread evenly over ``period_ms`` of
    ``clock`` (the metering clock: ``ticks_ms``, ``ticks_diff``, ``ticks_add``, async
    ``sleep_ms``), ON for ``pulse_ms`` each (shortened to half the spacing when the spacing
    is below twice ``pulse_ms``: up to period_ms / 2 pulses per period, 500 imp/s at 1 s,
    against 17.3 imp/s at 1000 imp/kWh and twice the chip's full scale).

    Schedule: when the number owed changes other than by the pulses shown (new pulses from
    a metering interval), a window of one period starts now and the N pulses then owed are
    due at now + j * period_ms // N, j = 0..N-1. :meth:`show` sleeps until the next one is
    due and switches the LED on (the pulse counts as shown from its rising edge: the caller
    takes it off the owed count at once, so a task cancelled during the ON time never shows
    it twice); :meth:`release` ends the ON time. If :meth:`show` wakes later than the due
    times of further pulses (the scheduler starved the task, or a virtual clock jumped),
    those are shown at once, back to back, so the LED never lags its schedule and no pulse
    is skipped or shown twice. At the end of a run :meth:`flush` shows what is still owed.

    Accounting: with ``owner`` and ``attr`` given, :meth:`show` takes each pulse off the owed
    count ``owner.attr`` itself, in the same straight-line code that lights it, and marks
    the pulse in between; an asynchronous exception (KeyboardInterrupt: MicroPython raises it
    at the next branch of whatever code runs, e.g. inside the pin's ``value``) can therefore
    leave at most the marked pulse unaccounted, and :meth:`settle` decides it from the LED's
    level (each pulse turns the previous one off first, so ON means "lit")."""

    def __init__(self, clock, period_ms, pulse_ms):
        self._clock = clock
        self._period = period_ms
        self._on = pulse_ms
        self._w = 0  # window start (metering ms)
        self._n = 0  # pulses in the window
        self._j = 0  # pulses of the window shown
        self._arm = None  # LED of a pulse being lit and not yet taken off the owed count
        self._arm_owner = None
        self._arm_attr = None

    def idle(self):
        """Nothing owed."""
        self._n = self._j = 0

    async def show(self, led, n, owner=None, attr=None):
        """Show some of ``n`` (>= 1) owed pulses on ``led`` (Pin-like, ``value(v)``), the
        last one left ON; returns how many (1..n), already taken off ``owner.attr`` when
        given (see the class doc). Then call :meth:`release`. (The LED task uses the same
        steps without a coroutine per pulse: ``wait = show_wait(n)``, sleep ``wait`` if
        > 0, ``show_now(led, owner, attr)``, sleep ``on_ms()``, ``led.value(0)``.)"""
        wait = self.show_wait(n)
        if wait > 0:
            await self._clock.sleep_ms(wait)
        return self.show_now(led, owner, attr)

    def show_wait(self, n):
        """First half of :meth:`show`: ms to wait before the next pulse of ``n`` owed is due
        (<= 0: now). Allocation-free."""
        clock = self._clock
        now = clock.ticks_ms()
        if n != self._n - self._j:  # new pulses (or some withdrawn): a new window
            self._w = now
            self._n = n
            self._j = 0
        return clock.ticks_diff(clock.ticks_add(self._w, self._j * self._period // self._n),
                                now)

    def show_now(self, led, owner=None, attr=None):
        """Second half of :meth:`show` (after the wait): the pulses due, the last one left
        ON; returns how many. Allocation-free."""
        k = self._due_now()  # further pulses already due: shown at once
        n = k
        while n >= 0:  # (then the next one, left ON)
            self._pulse(led, owner, attr)
            n -= 1
        self._j += k + 1
        return k + 1

    # (small frames: MicroPython heap-allocates, at every call, the frame of a function
    # whose locals and stack pass 11 machine words, py/objfun.c VM_MAX_STATE_ON_STACK)
    def _due_now(self):
        # how many pulses after the next one are due now
        now = self._clock.ticks_ms()
        j = self._j + 1
        while j < self._n and self._clock.ticks_diff(now, self._at(j)) >= 0:
            j += 1
        return j - self._j - 1

    def _at(self, i):
        # ticks when pulse ``i`` of the window is due
        return self._clock.ticks_add(self._w, i * self._period // self._n)

    def _pulse(self, led, owner, attr):
        # one pulse, left ON; taken off owner.attr in straight-line code (class doc)
        led.value(0)  # the previous pulse ends first: ON below means this one is lit
        if owner is None:
            led.value(1)
            return
        self._arm_owner = owner
        self._arm_attr = attr
        self._arm = led
        led.value(1)
        setattr(owner, attr, getattr(owner, attr) - 1); self._arm = None  # noqa: E702

    def settle(self):
        """After an exception that may have interrupted :meth:`show` (end of a run): a pulse
        lit and not yet taken off its owed count is taken off now."""
        led = self._arm
        if led is not None:
            self._arm = None
            if led.value():
                o = self._arm_owner
                setattr(o, self._arm_attr, getattr(o, self._arm_attr) - 1)

    async def release(self, led):
        """The ON time of the pulse :meth:`show` left on (``pulse_ms``, or half the spacing
        if that is shorter), then OFF."""
        await self._clock.sleep_ms(self.on_ms())
        led.value(0)

    def on_ms(self):
        """The ON time :meth:`release` waits (ms)."""
        on = self._on
        slot = self._period // self._n if self._n else self._period
        if 2 * on > slot:
            on = slot // 2 if slot > 1 else 1
        return on

    @staticmethod
    def flush(led, n):
        """Show ``n`` owed pulses at once (end of a run: the metering clock has stopped);
        a pulse left ON by a cancelled task is ended first."""
        led.value(0)
        for _ in range(n):
            led.value(1)
            led.value(0)


class NoLoadGate:
    """Starting-current gate. ``vah_per_lsb`` calibration (VAh per APENERGYA LSB; the gate
    uses the registers' own scale, lib.energy.lsb_per_unit_q8), ``start_current_ma`` Ist
    (mA, int, default 20), ``un_v`` nominal voltage (V), ``ratio_pct`` gate threshold as %
    of Ist (int). Raises ValueError for settings out of range.

    Exact, in small integers: the threshold Un * Ist * ratio is held as ``q``, the
    threshold in LSB per ms times 2^16 rounded UP (never truncated), and an interval passes
    when (count - 1) * 2^16 >= dt * q. The "- 1": a count can exceed the interval's energy by
    up to one LSB (the chip carries its internal fraction from the previous interval), so
    count - 1 is a strict lower bound of the energy; a load below the gate can therefore never
    register, whatever the carry. Price: at 1 s intervals a constant load registers fully only
    from threshold + 2 LSB/s (2.56 VA for the default 2.30 VA gate, still below Ist's
    4.6 VA) and partly between 2.41 and 2.56 VA. The rounding up of ``q`` (< 2^-16 LSB/ms)
    errs the same way."""

    def __init__(self, vah_per_lsb, start_current_ma=20, un_v=230, ratio_pct=50):
        if start_current_ma < 0 or not 0 < ratio_pct <= 100:
            raise ValueError("bad gate settings")
        from energy import lsb_per_unit_q8

        self.start_current_ma = start_current_ma
        self.ratio_pct = ratio_pct
        un_mv = int(un_v * 1000 + 0.5)
        ist = int(start_current_ma)
        rp = int(ratio_pct)
        self.threshold_va = un_mv * ist * rp / 1e8
        # LSB/ms = (un_mv * ist * rp / 1e8 VA) / (3.6e6 ms/h) * (lpva / 256 LSB/VAh); q = that
        # * 2^16, rounded up: ceil(un_mv * ist * rp * lpva * 256 / 3.6e14)
        num = un_mv * ist * rp * lsb_per_unit_q8(vah_per_lsb) * 256
        den = 360000000000000
        q = (num + den - 1) // den
        if q >= 16384:
            raise ValueError("gate threshold %.1f VA too high" % self.threshold_va)
        self._q16 = q
        self.closed = False

    def passes(self, e_apparent, dt_ms):
        """True when an interval of ``dt_ms`` (int ms) with ``e_apparent`` LSB may register.
        Allocation-free: every product stays below 2^30."""
        c = (e_apparent if e_apparent >= 0 else -e_apparent) - 1
        if c < 0:
            ok = False
        elif c >= 16384:  # above any threshold of an interval <= 65.5 s (q < 2^14)
            ok = True
        else:
            if dt_ms > 65535:
                dt_ms = 65535
            ok = (c << 16) >= dt_ms * self._q16
        self.closed = not ok
        return ok
