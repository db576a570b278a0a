# Energy register banks: integer accumulation, quadrant split, totals and tariff banks.
"""Billing energy registers kept as integers, in banks.

Each register holds whole units (Wh, varh or VAh) in ``whole`` and the remainder in chip LSB
scaled by 256 in ``res`` (0 <= res < lsb_per_unit_q8). All values stay small ints on a 32-bit
MicroPython port (whole < 2^30 Wh, i.e. 1.07 GWh, far beyond MID's 4 000 h at Imax =
55 200 kWh; res < 2^24; an interval's counts are carried in pieces of 2^21 LSB, so
``res + (piece << 8)`` < 2^30 whatever the interval: one 24-bit read at full scale is
2^23 LSB, and 2^23 << 8 would be a long int), so :meth:`Registers.add` never allocates.
The resolution is one chip LSB (4.2e-5 Wh for the reference front end), finer than the
1 mWh the registers are read out at.

Quadrants (IEC 62053-23 / DLMS four-quadrant convention, OBIS C = 5..8 for Q1..Q4):
Q1: P >= 0, Q >= 0 (import, inductive); Q2: P < 0, Q >= 0; Q3: P < 0, Q < 0;
Q4: P >= 0, Q < 0. Each read interval is classified by the sign of its net active and
reactive energy; an interval with zero active energy counts as import.

Banks. Bank 0 holds the totals, eight registers (index: OBIS C, unit): A_PLUS 1 Wh,
A_MINUS 2 Wh, Q1..Q4 5..8 varh, S_IMPORT 9 VAh, S_EXPORT 10 VAh. Banks 1..``tariffs``
(0..6) are the tariff registers (OBIS E = the tariff: 1.8.1 .. 1.8.6, 2.8.1 ..), each with the
first ``tariff_width`` registers of that order: 2 (A+, A-), 6 (+ the quadrants, i.e.
reactive per tariff) or 8 (+ apparent). Registers of bank b sit at ``base(b) .. base(b) +
width(b) - 1`` of the flat ``whole``/``res`` lists, totals first, so the metering step's
:meth:`add` touches bank 0 exactly as a bank-less meter would. Derived per bank: C = 3
R+ = Q1 + Q2 and C = 4 R- = Q3 + Q4 (with the quadrants), C = 16 net = A+ - A- (Wh,
signed). A register is addressed by a *selector* ``bank << 4 | kind`` (kind 0..7 the
registers above, 8 R+, 9 R-, 10 net): :meth:`milli` reads one, :meth:`codes` lists every
one with its OBIS code and unit (the OBIS catalogue, firmware/meter/catalogue.py, is built
from it). Historical values (billing periods) are snapshots of these banks kept by the
billing task, not banks here.

Registers only ever increase; :meth:`restore` refuses values below the current ones. The
metering task (firmware/meter/metering.py) is their only writer.
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
COUNT = const(8)  # registers of the totals bank
_PIECE = const(1 << 21)  # LSB carried at once: res + (piece << 8) < 2^24 + 2^29 < 2^30
R_PLUS = const(8)  # derived kinds (selectors only)
R_MINUS = const(9)
NET = const(10)

MAX_TARIFFS = const(6)
TARIFF_WIDTHS = (0, 2, 6, 8)

# OBIS C and base unit of each kind 0..10
_C = (1, 2, 5, 6, 7, 8, 9, 10, 3, 4, 16)
_UNIT = ("Wh", "Wh", "varh", "varh", "varh", "varh", "VAh", "VAh", "varh", "varh", "Wh")
# display order of one bank's codes: 1, 2, 3, 4, 5..8, 9, 10, 16 (as the readout lists them)
_ORDER = (A_PLUS, A_MINUS, R_PLUS, R_MINUS, Q1, Q2, Q3, Q4, S_IMPORT, S_EXPORT, NET)


def lsb_per_unit_q8(unit_per_lsb):
    """Chip LSB per Wh (or varh, VAh) times 256, rounded: the integer the registers use.

    ``unit_per_lsb``: calibration constant, e.g. 4.1824e-5 Wh/LSB. Raises ValueError unless
    the result lies in 256..2^24 (i.e. 1 to 65 536 LSB per unit)."""
    q = int(256 / unit_per_lsb + 0.5)
    if q < 256 or q > (1 << 24):
        raise ValueError("calibration out of range: %r units per LSB" % unit_per_lsb)
    return q


class Registers:
    """The register banks (see the module docstring).

    ``lpw``, ``lpvar``, ``lpva``: chip LSB per Wh / varh / VAh, times 256 (ints from
    :func:`lsb_per_unit_q8`); ``tariffs``: tariff banks 0..6; ``tariff_width``: registers
    per tariff bank, one of ``TARIFF_WIDTHS`` (0 only with no tariffs); ``tariff_q8``:
    the tariff banks' own unit per register unit times 256 (default: the totals' chip LSB,
    so that :meth:`add_tariff` takes chip counts). ``tariff_q8=256000`` makes a tariff
    bank count whole mWh (mvarh, mVAh): ``add_tariff`` then takes thousandths and the
    readout equals their sum exactly (the billing wiring, firmware/meter/tariffs.py, feeds
    the totals' mWh increments, so the tariff registers sum exactly to the totals' readout).
    Raises ValueError for another layout.
    """

    def __init__(self, lpw, lpvar, lpva, tariffs=0, tariff_width=2, tariff_q8=None):
        if not 0 <= tariffs <= MAX_TARIFFS or tariff_width not in TARIFF_WIDTHS or (
                tariffs and not tariff_width):
            raise ValueError("register banks: tariffs 0..6 of width 2, 6 or 8")
        if not tariffs:
            tariff_width = 0
        self.tariffs = tariffs
        self.tariff_width = tariff_width
        n = COUNT + tariffs * tariff_width
        self.whole = [0] * n
        self.res = [0] * n
        unit = (lpw, lpw, lpvar, lpvar, lpvar, lpvar, lpva, lpva)
        tu = unit if tariff_q8 is None else (tariff_q8,) * COUNT
        self._div = [unit[i] for i in range(COUNT)] + [
            tu[i] for _ in range(tariffs) for i in range(tariff_width)]

    def __len__(self):
        return len(self.whole)

    def base(self, bank):
        """Index of the first register of ``bank`` (0 totals, 1..tariffs) in ``whole``."""
        return 0 if bank == 0 else COUNT + (bank - 1) * self.tariff_width

    def width(self, bank):
        """Registers in ``bank``."""
        return COUNT if bank == 0 else self.tariff_width

    def _add(self, i, lsb):
        # lsb >= 0, chip counts; carried into whole units without allocation (in pieces:
        # see _PIECE)
        r = self.res[i]
        d = self._div[i]
        while lsb > 0:
            c = lsb if lsb < _PIECE else _PIECE
            lsb -= c
            r += c << 8
            if r >= d:
                q = r // d
                self.whole[i] += q
                r -= q * d
        self.res[i] = r

    def add(self, e_active, e_reactive, e_apparent):
        """Account one read interval in the totals: signed active and reactive LSB, apparent
        LSB (>= 0). Allocation-free (checked with micropython.heap_lock in host_tests)."""
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

    def add_tariff(self, tariff, e_active, e_reactive, e_apparent):
        """Account (a tariff's part of) an interval in tariff bank ``tariff`` (1..tariffs),
        with the same quadrant split as :meth:`add`; the registers the bank has not got are
        skipped. Allocation-free. The caller splits an interval between tariffs exactly
        (lib/billing/tariff.TariffClock.split), so the tariff banks sum to the totals to
        within one residue per register."""
        # (no local for the width: the frame stays within 11 words, else MicroPython
        # allocates it at every call: py/objfun.c VM_MAX_STATE_ON_STACK)
        b = COUNT + (tariff - 1) * self.tariff_width
        if e_apparent < 0:
            e_apparent = -e_apparent
        if e_active >= 0:
            self._add(b + A_PLUS, e_active)
            if self.tariff_width > Q4:
                self._add(b + (Q1 if e_reactive >= 0 else Q4),
                          e_reactive if e_reactive >= 0 else -e_reactive)
            if self.tariff_width > S_EXPORT:
                self._add(b + S_IMPORT, e_apparent)
        else:
            self._add(b + A_MINUS, -e_active)
            if self.tariff_width > Q4:
                self._add(b + (Q2 if e_reactive >= 0 else Q3),
                          e_reactive if e_reactive >= 0 else -e_reactive)
            if self.tariff_width > S_EXPORT:
                self._add(b + S_EXPORT, e_apparent)

    def _frac(self, i):
        # floor(res * 1000 / div), 0..999, by three decimal steps of long division: res *
        # 1000 would pass 2^30 (res < div < 2^24), each step's remainder * 10 stays < 2^28
        d = self._div[i]
        r = self.res[i]
        f = 0
        for _ in range(3):
            r *= 10
            q = r // d
            f = f * 10 + q
            r -= q * d
        return f

    def _milli(self, i):
        return self.whole[i] * 1000 + self._frac(i)

    def milli(self, sel):
        """Register ``sel`` (a selector ``bank << 4 | kind``; for bank 0 the kinds A_PLUS ..
        NET themselves) in thousandths of its unit (mWh, mvarh, mVAh), truncated; NET may be
        negative. Raises IndexError for a register the layout has not got."""
        bank = sel >> 4
        k = sel & 15
        if bank <= self.tariffs:
            b = self.base(bank)
            w = self.width(bank)
            if k < w:
                return self._milli(b + k)
            if k == NET:
                return self._milli(b + A_PLUS) - self._milli(b + A_MINUS)
            if w > Q4:
                if k == R_PLUS:
                    return self._milli(b + Q1) + self._milli(b + Q2)
                if k == R_MINUS:
                    return self._milli(b + Q3) + self._milli(b + Q4)
        raise IndexError("no register %d in bank %d" % (k, bank))

    def units(self, sel):
        """Register ``sel`` (as :meth:`milli`) in whole units (Wh, varh, VAh), rounded down
        (``milli(sel) // 1000``, so NET -0.5 Wh is -1), computed without the mWh product: a
        small int up to 2^30 units (1.07 GWh) on a 32-bit port, where :meth:`milli` passes
        2^30 at 1.07 MWh and returns a long int. Allocation-free (the LCD's refresh).
        Raises IndexError for a register the layout has not got."""
        bank = sel >> 4
        k = sel & 15
        if bank <= self.tariffs:
            b = self.base(bank)
            w = self.width(bank)
            wh = self.whole
            if k < w:
                return wh[b + k]
            if k == NET:
                i = b + A_PLUS
                j = b + A_MINUS
                return wh[i] - wh[j] - (1 if self._frac(i) < self._frac(j) else 0)
            if w > Q4 and (k == R_PLUS or k == R_MINUS):
                i = b + (Q1 if k == R_PLUS else Q3)
                return wh[i] + wh[i + 1] + (
                    1 if self._frac(i) + self._frac(i + 1) >= 1000 else 0)
        raise IndexError("no register %d in bank %d" % (k, bank))

    def codes(self):
        """Every register of the layout, derived ones included, in readout order (totals
        first, then bank by bank): list of ``(obis, base unit, selector)``, e.g.
        ``("1.8.0", "Wh", 0)``, ``("2.8.3", "Wh", 0x31)``."""
        out = []
        for bank in range(self.tariffs + 1):
            w = self.width(bank)
            for k in _ORDER:
                if k < COUNT:
                    if k >= w:
                        continue
                elif k != NET and w <= Q4:
                    continue
                out.append(("%d.8.%d" % (_C[k], bank), _UNIT[k], bank << 4 | k))
        return out

    def snapshot(self):
        """Dict OBIS -> thousandths of the unit, for every register incl. derived ones."""
        return {o: self.milli(s) for o, _u, s in self.codes()}

    def clear(self):
        """Every register to zero (the cold start, executed by the metering task only)."""
        for i in range(len(self.whole)):
            self.whole[i] = 0
            self.res[i] = 0

    # -- persistence ----------------------------------------------------------------------

    def restore(self, whole, res, first=0):
        """Load saved values into registers ``first .. first + len(whole) - 1``. Registers
        never go backwards: each takes the larger of its current and the saved value.
        Returns the number of registers raised."""
        n = 0
        for j in range(len(whole)):
            i = first + j
            if (whole[j], res[j]) > (self.whole[i], self.res[i]):
                self.whole[i] = whole[j]
                self.res[i] = res[j] if res[j] < self._div[i] else self._div[i] - 1
                n += 1
        return n
