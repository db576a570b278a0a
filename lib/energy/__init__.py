# Energy registers: integer accumulation, quadrant split, OBIS names.
"""Billing energy registers kept as integers.

Each register holds whole units (Wh, varh or VAh) in ``whole`` and the remainder in chip LSB
scaled by 256 in ``res`` (0 <= res < lsb_per_unit_q8). All values stay small ints on a 32-bit
MicroPython port (whole < 2^30 Wh, i.e. 1.07 GWh, far beyond MID's 4 000 h at Imax =
55 200 kWh; res < 2^24; one interval's counts << 8 < 2^30 for intervals below 40 s at full
scale), so :meth:`Registers.add` never allocates. The resolution is one chip LSB (4.2e-5 Wh for the
reference front end), finer than the 1 mWh the registers are read out at.

Quadrants (IEC 62053-23 / DLMS four-quadrant convention, OBIS C = 5..8 for Q1..Q4):
Q1: P >= 0, Q >= 0 (import, inductive); Q2: P < 0, Q >= 0; Q3: P < 0, Q < 0;
Q4: P >= 0, Q < 0. Each read interval is classified by the sign of its net active and
reactive energy; an interval with zero active energy counts as import.

Registers (index: OBIS, unit):
  A_PLUS 1.8.0 Wh, A_MINUS 2.8.0 Wh, Q1..Q4 5.8.0..8.8.0 varh, S_IMPORT 9.8.0 VAh,
  S_EXPORT 10.8.0 VAh. Derived: 3.8.0 R+ = Q1 + Q2, 4.8.0 R- = Q3 + Q4,
  16.8.0 net = A+ - A- (Wh, signed).
Registers only ever increase; :meth:`restore` refuses values below the current ones.
"""

from micropython import const

A_PLUS = const(0)
A_MINUS = const(1)
Q1 = const(2)
Q2 = const(3)
Q3 = const(4)
Q4 = const(5)
S_IMPORT = const(6)
S_EXPORT = const(7)
COUNT = const(8)

OBIS = ("1.8.0", "2.8.0", "5.8.0", "6.8.0", "7.8.0", "8.8.0", "9.8.0", "10.8.0")
UNITS = ("Wh", "Wh", "varh", "varh", "varh", "varh", "VAh", "VAh")
DERIVED = ("3.8.0", "4.8.0", "16.8.0")
ALL_OBIS = ("1.8.0", "2.8.0", "3.8.0", "4.8.0", "5.8.0", "6.8.0", "7.8.0", "8.8.0", "9.8.0",
            "10.8.0", "16.8.0")


def lsb_per_unit_q8(unit_per_lsb):
    """Chip LSB per Wh (or varh, VAh) times 256, rounded: the integer the registers use.

    ``unit_per_lsb``: calibration constant, e.g. 4.1824e-5 Wh/LSB. Raises ValueError unless
    the result lies in 256..2^24 (i.e. 1 to 65 536 LSB per unit)."""
    q = int(256 / unit_per_lsb + 0.5)
    if q < 256 or q > (1 << 24):
        raise ValueError("calibration out of range: %r units per LSB" % unit_per_lsb)
    return q


class Registers:
    """The eight accumulating registers (see module docstring).

    ``lpw``, ``lpvar``, ``lpva``: chip LSB per Wh / varh / VAh, times 256 (ints from
    :func:`lsb_per_unit_q8`).
    """

    def __init__(self, lpw, lpvar, lpva):
        self.whole = [0] * COUNT
        self.res = [0] * COUNT
        self._div = [lpw, lpw, lpvar, lpvar, lpvar, lpvar, lpva, lpva]

    def set_scale(self, lpw, lpvar, lpva):
        """Change calibration: residues are kept in their old scale's proportion (rounded
        down), so no register goes backwards by more than one chip LSB's worth."""
        new = [lpw, lpw, lpvar, lpvar, lpvar, lpvar, lpva, lpva]
        for i in range(COUNT):
            self.res[i] = self.res[i] * new[i] // self._div[i]
        self._div = new

    def _add(self, i, lsb):
        # lsb >= 0, chip counts; carried into whole units without allocation.
        r = self.res[i] + (lsb << 8)
        d = self._div[i]
        if r >= d:
            q = r // d
            self.whole[i] += q
            r -= q * d
        self.res[i] = r

    def add(self, e_active, e_reactive, e_apparent):
        """Account one read interval: signed active and reactive LSB, apparent LSB (>= 0).

        Allocation-free (checked with micropython.heap_lock in host_tests)."""
        if e_apparent < 0:
            e_apparent = -e_apparent
        if e_active >= 0:
            self._add(A_PLUS, e_active)
            if e_reactive >= 0:
                self._add(Q1, e_reactive)
            else:
                self._add(Q4, -e_reactive)
            self._add(S_IMPORT, e_apparent)
        else:
            self._add(A_MINUS, -e_active)
            if e_reactive >= 0:
                self._add(Q2, e_reactive)
            else:
                self._add(Q3, -e_reactive)
            self._add(S_EXPORT, e_apparent)

    def milli(self, i):
        """Register ``i`` in thousandths of its unit (mWh, mvarh, mVAh), truncated."""
        return self.whole[i] * 1000 + self.res[i] * 1000 // self._div[i]

    def value_milli(self, obis):
        """Register by OBIS code (``'1.8.0'`` ... ``'16.8.0'``) in thousandths; KeyError if
        unknown. 16.8.0 may be negative."""
        if obis == "3.8.0":
            return self.milli(Q1) + self.milli(Q2)
        if obis == "4.8.0":
            return self.milli(Q3) + self.milli(Q4)
        if obis == "16.8.0":
            return self.milli(A_PLUS) - self.milli(A_MINUS)
        for i in range(COUNT):
            if OBIS[i] == obis:
                return self.milli(i)
        raise KeyError(obis)

    def snapshot(self):
        """Dict OBIS -> thousandths of the unit, for every register incl. derived ones."""
        return {o: self.value_milli(o) for o in ALL_OBIS}

    # -- persistence ----------------------------------------------------------------------

    def state(self):
        """(whole, res) lists copies: what the journal stores."""
        return (list(self.whole), list(self.res))

    def restore(self, whole, res):
        """Load a saved state. Registers never go backwards: each register takes the larger
        of its current and the saved value. Returns the number of registers raised."""
        n = 0
        for i in range(COUNT):
            if (whole[i], res[i]) > (self.whole[i], self.res[i]):
                self.whole[i] = whole[i]
                self.res[i] = res[i] if res[i] < self._div[i] else self._div[i] - 1
                n += 1
        return n
