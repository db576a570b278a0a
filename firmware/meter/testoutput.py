# The test output's pulse accounting: a consumer of each metering interval.
"""Test output (kWh LED, and the kvarh LED in test mode): how many pulses each interval owes.

A consumer of :meth:`meter.metering.Metering.step` (``interval(ea, er, es, dt)``, chip LSB of
an interval that passed the no-load gate, zeros for one that did not): the active energy goes
to a ``PulseOutput`` at the meter constant (setting ``meter_constant``, imp/kWh), |reactive|
energy to a second one at the same constant in imp/kvarh (the kvarh LED in test mode). The
pulses owed are counted in :attr:`TestOutput.due` / :attr:`var_due`; the LED task
(firmware/tasks/leds.py) shows them and takes them off. Allocation-free (small ints only).
"""

from energy import lsb_per_unit_q8
from energy.pulse import PulseOutput


class TestOutput:
    """``cal``: lib.ade7953.Calibration (``wh_per_lsb``, ``varh_per_lsb``); ``k``: the meter
    constant, imp/kWh (and imp/kvarh for the reactive output)."""

    __test__ = False  # not a pytest test class

    def __init__(self, cal, k):
        self._cal = cal
        self.due = 0  # active pulses not yet shown
        self.var_due = 0  # reactive pulses not yet shown
        self.on_owed = None  # called after an interval that leaves pulses owed (the LED task)
        self.set_constant(k)

    def set_constant(self, k):
        """A new meter constant (imp/kWh): new outputs that carry the old ones' ``total`` and
        the energy not yet pulsed (``res``) over, so a counter on the LED keeps equal to
        ``total`` and no energy is dropped by the change."""
        c = self._cal
        # k imp/kWh -> LSB per pulse = LSB per Wh * 1000 / k
        p = PulseOutput(lsb_per_unit_q8(c.wh_per_lsb) * 1000 // k)
        pv = PulseOutput(lsb_per_unit_q8(c.varh_per_lsb) * 1000 // k)
        old = getattr(self, "pulse", None)
        if old is not None:
            p.total, p.res = old.total, old.res
            pv.total, pv.res = self.pulse_var.total, self.pulse_var.res
        self.pulse = p
        self.pulse_var = pv

    def interval(self, ea, er, es, dt):
        """One metering interval (hot path, allocation-free)."""
        self.due += self.pulse.add(ea)
        self.var_due += self.pulse_var.add(er)
        cb = self.on_owed
        if cb is not None and (self.due > 0 or self.var_due > 0):
            cb()
