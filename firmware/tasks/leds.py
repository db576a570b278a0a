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
and the kWh LED is dark. Pulses of the output not shown are dropped, so a switch never
releases a backlog.

Status LEDs (:func:`show_status`): LED 1 metrology (green = metering, blue = no-load, red =
fault), LED 2 storage (green = journal ok, red = flash fault or not restored, off = no
flash).
"""

from energy.pulse import PulseTrain


class TestLed:
    """``output``: meter.testoutput.TestOutput; ``testmode``: meter.testmode.TestMode;
    ``led_kwh``, ``led_kvarh``: the board's test LEDs (Pin-like; ``led_kvarh`` may be None);
    ``clock``: the metering clock; ``period_ms``: the metering period; ``pulse_ms``: ON time
    per pulse."""

    __test__ = False  # not a pytest test class

    def __init__(self, output, testmode, led_kwh, led_kvarh, clock, period_ms, pulse_ms):
        self.output = output
        self.testmode = testmode
        self.led_kwh = led_kwh
        self.led_kvarh = led_kvarh
        self.clock = clock
        self.period_ms = period_ms
        self.pulse_ms = pulse_ms

    def _select(self):
        # (LED shown, LED dark, reactive?) and the owed pulses of the output not shown dropped
        o = self.output
        if self.testmode.led_reactive() and self.led_kvarh is not None:
            o.due = 0
            return self.led_kvarh, self.led_kwh, True
        o.var_due = 0
        return self.led_kwh, self.led_kvarh, False

    async def run(self):
        o = self.output
        clock = self.clock
        period = self.period_ms
        train = PulseTrain(clock, period, self.pulse_ms)
        while True:
            led, other, reactive = self._select()
            if other is not None:
                other.value(0)
            n = o.var_due if reactive else o.due
            if n <= 0:
                train.idle()
                led.value(0)
                # until just after the next metering step (reads at whole periods)
                await clock.sleep_ms(period - clock.ticks_ms() % period + 1)
                continue
            k = await train.show(led, n)  # LED on: shown, whatever happens next
            if reactive:
                o.var_due -= k
            else:
                o.due -= k
            await train.release(led)

    def flush(self):
        """End of a run: the pulses still owed are shown at once (PulseTrain.flush)."""
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
