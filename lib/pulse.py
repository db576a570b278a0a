# Test LED pulse output and the no-load / starting-current gate.
"""Metrological test output and the no-load gate shared by the registers and the LED.

Pulse output: k imp/kWh (default 1000, i.e. one pulse per Wh) clocked from integrated energy
with the residue carried over (never from instantaneous power), as IEC 62052-11 / 62053-21
expect a test output consistent with the register. In no-load the LED stays steadily lit
(Elster A100C behaviour, see docs/ARCHITECTURE.md). Pulse ON time 40 ms (Elster A100C at
1000 imp/kWh); the maximum rate at 60 A x 264.5 V is 15.9 kW * 1000 / 3.6e6 = 4.4 Hz.

Gate: IEC 62053-21 class 1 / EN 50470-3 class B starting current Ist = 0.004 Iref (20 mA for
Iref = 5 A). An interval registers only when its mean apparent power reaches
Un * Ist * ratio / 100 (ratio default 50 %: the meter starts with margin at Ist, and with no
current it registers nothing: the no-load test). Computed from the interval's apparent
energy so the decision matches what was integrated (a load switching off mid-interval still
has its energy counted).
"""


class PulseOutput:
    """``lsb_per_pulse_q8``: chip LSB per pulse times 256 (for 1000 imp/kWh: LSB per Wh,
    i.e. lib.energy.lsb_per_unit_q8(wh_per_lsb)). :meth:`add` returns the pulses due."""

    def __init__(self, lsb_per_pulse_q8):
        self._div = lsb_per_pulse_q8
        self.res = 0
        self.total = 0

    def add(self, lsb):
        """Add ``lsb`` (chip counts, sign ignored). Returns the number of new pulses (int)."""
        if lsb < 0:
            lsb = -lsb
        r = self.res + (lsb << 8)
        n = 0
        d = self._div
        if r >= d:
            n = r // d
            r -= n * d
            self.total += n
        self.res = r
        return n


class NoLoadGate:
    """Starting-current gate. ``start_current_ma`` (Ist, default 20), ``un_v`` nominal
    voltage (V), ``vah_per_lsb`` calibration, ``ratio_pct`` gate threshold as % of Ist."""

    def __init__(self, vah_per_lsb, start_current_ma=20, un_v=230, ratio_pct=50):
        if start_current_ma < 0 or not 0 < ratio_pct <= 100:
            raise ValueError("bad gate settings")
        self.start_current_ma = start_current_ma
        self.ratio_pct = ratio_pct
        va = un_v * start_current_ma / 1000 * ratio_pct / 100
        # threshold in LSB per ms, Q16 fixed point
        self._q16 = int(va / 3.6e6 / vah_per_lsb * 65536 + 0.5)
        self.threshold_va = va
        self.closed = False

    def passes(self, e_apparent, dt_ms):
        """True when an interval of ``dt_ms`` with ``e_apparent`` LSB may register."""
        if e_apparent < 0:
            e_apparent = -e_apparent
        ok = e_apparent > 0 and e_apparent >= (dt_ms * self._q16) >> 16
        self.closed = not ok
        return ok
