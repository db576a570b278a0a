# The LEDs: the test output (kWh / kvarh LED) and the two status LEDs.
"""The test LED task and the status LEDs.

Test LED (:class:`TestLed`): the pulses each metering interval owes
(firmware/meter/testoutput.py) are spread evenly over the next ``period_ms`` (ON
``pulse_ms`` each, OFF at least as long; lib/energy/pulse.PulseTrain: never skips, never
falls behind its schedule); dark otherwise: in no-load and while the metrology is faulty
(pulses already owed for registered energy are still shown). At the end of a run
:meth:`TestLed.flush` shows what is still owed, so a counter on the LED equals the pulse
output's total (hence no steady light in no-load either: it would count as a pulse; no-load
shows in C.5.0 and on status LED 1). Normally the kWh LED shows active energy and the kvarh
LED is dark; in test mode with the reactive output selected (TestMode.led_reactive, setting
``test_led`` "kvarh") the kvarh LED shows |reactive| energy at the same constant (imp/kvarh)
and the kWh LED is dark. Pulses of the output not shown are dropped (and taken off its
``total``: a counter on each LED equals the total of the output it shows), so a switch never
releases a backlog. Each pulse is taken off the owed count in the code that lights it
(PulseTrain.show with the owner); one an interrupt (Ctrl-C) catches in between is settled
from the LED's level at the end of the run. From a power-fail warning on
(firmware/meter/supply.py) the pulses owed are shown at once: the task is restarted (it may
wait inside a pulse schedule) and each interval's pulses are flushed as it is committed, so a
counter on the LED equals the pulse output even if the supply goes.

Status LEDs (:func:`show_status`): LED 1 metrology (green = metering, blue = no-load, red =
fault), LED 2 storage (green = journal ok, red = flash fault or not restored, off = no
flash).
"""

from energy.pulse import PulseTrain
from tasks.wake import Wake


class TestLed:
    """``output``: meter.testoutput.TestOutput; ``testmode``: meter.testmode.TestMode;
    ``led_kwh``, ``led_kvarh``: the board's test LEDs (Pin-like; ``led_kvarh`` may be None);
    ``clock``: the metering clock; ``period_ms``: the metering period; ``pulse_ms``: ON time
    per pulse."""

    __test__ = False  # not a pytest test class

    def __init__(self, output, testmode, led_kwh, led_kvarh, clock, period_ms, pulse_ms,
                 supply=None):
        self.output = output
        self.supply = supply
        self._train = None  # the running task's pulse schedule
        self.testmode = testmode
        self.led_kwh = led_kwh
        self.led_kvarh = led_kvarh
        self.clock = clock
        self.period_ms = period_ms
        self.pulse_ms = pulse_ms
        self._sel_w = self._sel_var = None  # _select's answers, made once

    def _select(self):
        # (LED shown, LED dark, reactive?) and the owed pulses of the output not shown dropped
        # (never shown, so they leave its ``total`` too)
        o = self.output
        if self.testmode.led_reactive() and self.led_kvarh is not None:
            o.pulse.total -= o.due
            o.due = 0
            sel = self._sel_var
            if sel is None or sel[0] is not self.led_kvarh or sel[1] is not self.led_kwh:
                sel = self._sel_var = (self.led_kvarh, self.led_kwh, True)
            return sel  # (the same tuple each time: nothing allocated per wake-up)
        o.pulse_var.total -= o.var_due
        o.var_due = 0
        sel = self._sel_w
        if sel is None or sel[0] is not self.led_kwh or sel[1] is not self.led_kvarh:
            sel = self._sel_w = (self.led_kwh, self.led_kvarh, False)
        return sel

    async def run(self):
        o = self.output
        clock = self.clock
        period = self.period_ms
        train = self._train = PulseTrain(clock, period, self.pulse_ms)
        sp = self.supply
        owed = Wake()
        o.on_owed = owed.set  # (bound once: called in the heap-locked step)
        while True:
            led, other, reactive = self._select()
            if other is not None:
                other.value(0)
            n = o.var_due if reactive else o.due
            if n > 0 and sp is not None and sp.warning:  # the supply may go: at once
                self.flush()
                n = 0
            if n <= 0:
                train.idle()
                led.value(0)
                # until a metering step leaves pulses owed (not every period: issue 12); the
                # window of those pulses starts at that step
                owed.clear()
                await owed.wait()
                continue
            # each pulse is taken off the owed count as it goes ON: shown, whatever happens
            # (PulseTrain.show and release, without a coroutine object per pulse)
            wait = train.show_wait(n)
            if wait > 0:
                await clock.sleep_ms(wait)
            train.show_now(led, o, "var_due" if reactive else "due")
            await clock.sleep_ms(train.on_ms())
            led.value(0)

    def now(self):
        """During a power-fail warning: show the pulses owed at once (the task is then never
        inside a pulse schedule: it was restarted when the warning began)."""
        sp = self.supply
        if sp is not None and sp.warning:
            self.flush()

    def flush(self):
        """End of a run (and the power-fail warning): the pulses still owed are shown at once
        (PulseTrain.flush); a pulse an interrupt caught being lit is settled first."""
        if self._train is not None:
            self._train.settle()
        o = self.output
        led, other, reactive = self._select()
        if other is not None:
            other.value(0)
        if led is None:
            return
        if reactive:
            PulseTrain.flush(led, o.var_due)
            o.var_due = 0
        else:
            PulseTrain.flush(led, o.due)
            o.due = 0


def show_status(leds, metering, storage_status):
    """Show the state on the two status LEDs (``leds``: the board's ``status_leds``, a tuple
    of boards.board.RGBLed, may be empty) from ``metering`` (``ok``, ``no_load``) and the
    journal's ``storage_status`` (None: no flash)."""
    m = metering
    if len(leds) > 0:
        leds[0].set(not m.ok, m.ok and not m.no_load, m.ok and m.no_load)
    if len(leds) > 1:
        st = storage_status
        good = st in ("ok", "blank")
        leds[1].set(st is not None and not good, good, 0)
