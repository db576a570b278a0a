# Register-level model of the ADE7953 for the virtual board.
"""ADE7953 register model, fed by a load trace (data sheet Rev. C, "DS" below).

What it models, and where from:

- SPI framing (DS p.52): 2 address bytes, command byte 0x80 read / 0x00 write, 1..4 data
  bytes MSB first; width from address bits 11:8 (VERSION 0x702 and EX_REF 0x800 are 8 bit).
- Storage: 8/16-bit registers; 24-bit registers at 0x2xx with their 32-bit aliases at 0x3xx
  (same storage; signed registers read sign-extended through 0x3xx, DS p.60).
- Defaults (DS Tables 14-15): CONFIG 0x8004, LCYCMODE 0x40, AP/VAR_NOLOAD 0x00E419,
  ZXTOUT 0xFFFF, CF1DEN/CF2DEN 0x3F, CFMODE 0x300, gains 0x400000, IRQENA 0x100000, OVLVL and
  OILVL 0xFFFFFF.
- 0x120 is written only straight after 0xAD to 0x0FE (DS p.18). CONFIG.SWRST resets.
- Power-up: not ready for 40 ms, then IRQSTATA.RESET (bit 20) set and the IRQ pin low until
  RSTIRQSTATA is read (DS p.18, p.50).
- Energy: AENERGYA/RENERGYA/APENERGYA integrate the trace's P, Q and S = sqrt(P^2 + Q^2) at
  206 900 LSB/s at full scale (DS p.25) scaled by xWGAIN/xVARGAIN/xVAGAIN / 0x400000, with an
  exact rational accumulator (no rounding is ever lost: the sum of all counts read equals
  floor(integral * rate)). Signed 24-bit with wrap-around and the AEOFA/VAREOFA/VAEOFA flags
  on wrap (DS p.25); read-with-reset when LCYCMODE.RSTREAD (bit 6) is set.
- No-load (DS p.40-42): a component whose magnitude is below Pfs / ((65536 - X_NOLOAD) * 1.4)
  does not accumulate (per segment of the trace, DISNOLOAD bits honoured).
- Instantaneous: VRMS, IRMSA/B (9 032 007 LSB at full scale, DS p.23), AWATT/AVAR/AVA
  (4 862 401 LSB, DS p.24), PFA (2^-15, sign of the reactive power, DS p.38), PERIOD
  (223 750 / f - 1, DS p.36), ANGLE_A (4.47 us LSB, DS p.39).

Front end: Vfs = 354 V rms, Ifs = 88 A rms (see lib/ade7953.Calibration). Channel B (neutral)
carries the same current as A unless ``neutral_ratio_pct`` says otherwise.

Faults for tests: ``fault='dead0'`` (MISO stuck low), ``'deadff'`` (stuck high),
``'misclocked'`` (every read shifted right by one bit), :meth:`inject_reset`.
"""

from micropython import const

_VFS_MV = const(354000)
_IFS_MA = const(88000)
_RMS_FS = const(9032007)
_POWER_FS = const(4862401)
_ERATE_FS = const(206900)
_UNITY = const(0x400000)

_DEFAULTS = {
    0x000: 0x00, 0x001: 0x00, 0x004: 0x40, 0x007: 0, 0x008: 0, 0x009: 0, 0x040: 0,
    0x800: 0, 0x702: 0x04,
    0x100: 0xFFFF, 0x101: 0, 0x102: 0x8004, 0x103: 0x3F, 0x104: 0x3F, 0x107: 0x300,
    0x108: 0, 0x109: 0, 0x110: 0, 0x120: 0,
    0x200: 0, 0x201: 0, 0x203: 0xE419, 0x204: 0xE419, 0x205: 0,
    0x224: 0xFFFFFF, 0x225: 0xFFFFFF, 0x22C: 0x100000, 0x22F: 0,
    0x280: _UNITY, 0x281: _UNITY, 0x282: _UNITY, 0x283: _UNITY, 0x284: _UNITY,
    0x286: 0, 0x288: 0, 0x289: 0, 0x28A: 0, 0x28B: 0,
    0x28C: _UNITY, 0x28D: _UNITY, 0x28E: _UNITY, 0x28F: _UNITY, 0x290: _UNITY,
    0x292: 0, 0x295: 0, 0x296: 0, 0x297: 0,
}
_SIGNED24 = (0x210, 0x211, 0x212, 0x213, 0x214, 0x215, 0x216, 0x217, 0x218, 0x21E, 0x21F,
             0x220, 0x221, 0x222, 0x223, 0x286, 0x288, 0x289, 0x28A, 0x28B, 0x292, 0x295,
             0x296, 0x297)
_SIGNED16 = (0x10A, 0x10B, 0x10C, 0x10D)
_ENERGY = (0x21E, 0x21F, 0x220, 0x221, 0x222, 0x223)
_READONLY = (0x0FD, 0x0FF, 0x702, 0x10A, 0x10B, 0x10C, 0x10D, 0x10E, 0x1FE, 0x1FF,
             0x22D, 0x22E, 0x230, 0x231, 0x2FF) + tuple(range(0x210, 0x224)) + tuple(
    range(0x226, 0x22C))


def _isqrt(n):
    """Integer square root (floor) by Newton's method."""
    if n <= 0:
        return 0
    x = 1 << ((n.bit_length() + 1) >> 1) if hasattr(n, "bit_length") else n
    while True:
        y = (x + n // x) >> 1
        if y >= x:
            return x
        x = y


def _width(addr):
    if addr == 0x702 or addr == 0x800:
        return 1
    return ((addr >> 8) & 3) + 1


class ADE7953Model:
    """The chip. ``trace``: object with ``at(t_ms) -> (p_mw, q_mvar, next_ms)``;
    ``now_ms``: callable giving simulated ms. ``v_mv`` line voltage (mV rms), ``f_mhz``
    frequency (mHz)."""

    def __init__(self, trace, now_ms, v_mv=230000, f_mhz=50000, fault=None,
                 neutral_ratio_pct=100):
        self._trace = trace
        self._now = now_ms
        self.v_mv = v_mv
        self.f_mhz = f_mhz
        self.fault = fault
        self.neutral_ratio_pct = neutral_ratio_pct
        self.reads = 0
        self.writes = 0
        self._sel = False
        self._pos = 0
        self._addr = 0
        self._cmd = 0
        self._val = 0
        self._n = 0
        self._wdata = 0
        self._last_was_unlock = False
        self.unlocked_120 = False
        self.power_on()

    # -- reset and power -------------------------------------------------------------------

    def power_on(self):
        """Apply supply: registers to defaults; ready (RESET irq) after 40 ms (DS p.18)."""
        self._regs = dict(_DEFAULTS)
        self._irqstata = 0
        self._ready_at = self._now() + 40
        self._t = self._now()
        self._scale_key = None
        self._cfg = None  # cached (scale, no-load thresholds); cleared on register writes
        self._sp = self._sq = self._ss = 0
        self._acc = [0, 0, 0]  # exact residues of P, Q, S (units: LSB * _den)
        self._reg = [0, 0, 0]  # AENERGYA, RENERGYA, APENERGYA counts
        self._last_was_unlock = False
        self.unlocked_120 = False

    def inject_reset(self):
        """Reset as after a supply glitch or RESET pin pulse: defaults + RESET interrupt."""
        self.power_on()
        self._ready_at = self._now()

    def _ready(self):
        if self._ready_at is not None and self._now() >= self._ready_at:
            self._ready_at = None
            self._irqstata |= 1 << 20
            self._t = self._now()
        return self._ready_at is None

    def irq_pin(self):
        """IRQ pin level: 0 (asserted) when an enabled interrupt is pending (DS p.50)."""
        self._ready()
        return 0 if (self._irqstata & self._regs[0x22C]) else 1

    def reset_pin(self, level):
        """RESET pin: low holds the chip in reset; the rising edge restarts it."""
        if not level:
            self.power_on()
            self._ready_at = 1 << 60
        else:
            self._ready_at = self._now() + 40

    # -- energy integration ----------------------------------------------------------------

    def _nl_mw(self, reg, dis_bit):
        if self._regs[0x001] & dis_bit:
            return 0
        x = self._regs[reg]
        y = (65536 - x) * 14  # (65536 - X) * 1.4, times 10
        if y <= 0:
            return 1 << 60
        return (_VFS_MV * _IFS_MA // 1000) * 10 // y  # mW

    def _scale(self):
        """Per component (P, Q, S): counts = P_mW * dt_ms * k / den, exactly
        (206 900 LSB/s at Pfs times xGAIN / 0x400000, DS p.25, p.34)."""
        g = self._regs
        key = (g[0x282], g[0x283], g[0x284])
        if key != self._scale_key:
            pfs_mw = _VFS_MV * _IFS_MA // 1000
            ks = []
            ds = []
            for gain in key:
                a, b = gain, _UNITY
                while b:
                    a, b = b, a % b
                ks.append(gain // a * _ERATE_FS)
                ds.append(pfs_mw * 1000 * (_UNITY // a))
            if self._scale_key is not None:
                self._acc = [0, 0, 0]  # a gain change restarts the fractional residue
            self._scale_key = key
            self._scale_val = (ks, ds)
        return self._scale_val

    def _advance(self):
        now = self._now()
        t = self._t
        if now <= t or self._ready_at is not None:
            self._t = now if now > t else t
            return
        if self._cfg is None:
            self._cfg = (self._scale(), (self._nl_mw(0x203, 1), self._nl_mw(0x204, 2),
                                         self._nl_mw(0x205, 4)))
        (k, den), nl = self._cfg
        acc = self._acc
        trace_at = self._trace.at
        while t < now:
            p, q, nxt = trace_at(t)
            end = now if (nxt is None or nxt > now) else nxt
            dt = end - t
            if p != self._sp or q != self._sq:
                self._sp = p
                self._sq = q
                self._ss = _isqrt(p * p + q * q)
            s = self._ss
            if (p if p >= 0 else -p) >= nl[0]:
                acc[0] += p * dt * k[0]
            if (q if q >= 0 else -q) >= nl[1]:
                acc[1] += q * dt * k[1]
            if s >= nl[2]:
                acc[2] += s * dt * k[2]
            t = end
        self._t = now
        reg = self._reg
        for i in range(3):
            c = acc[i] // den[i]
            if c:
                acc[i] -= c * den[i]
                r = reg[i] + c
                if r > 0x7FFFFF or r < -0x800000:
                    r = ((r + 0x800000) & 0xFFFFFF) - 0x800000
                    self._irqstata |= 1 << (3 + i)  # AEOFA, VAREOFA, VAEOFA
                reg[i] = r

    # -- instantaneous values ----------------------------------------------------------------

    def _inst(self, addr):
        p, q, _n = self._trace.at(self._now())
        s = _isqrt(p * p + q * q)
        g = self._regs
        v = self.v_mv
        if addr == 0x21C:  # VRMS
            return v * _RMS_FS // _VFS_MV * g[0x281] // _UNITY
        i_ma = s * 1000 // v if v else 0
        if addr == 0x21A or addr == 0x21B:
            if addr == 0x21B:
                i_ma = i_ma * self.neutral_ratio_pct // 100
            gain = g[0x280] if addr == 0x21A else g[0x28C]
            return i_ma * _RMS_FS // _IFS_MA * gain // _UNITY
        pfs = _VFS_MV * _IFS_MA // 1000  # mW
        if addr in (0x212, 0x213):
            return p * _POWER_FS // pfs
        if addr in (0x214, 0x215):
            return q * _POWER_FS // pfs
        if addr in (0x210, 0x211):
            return s * _POWER_FS // pfs
        if addr == 0x10A or addr == 0x10B:  # PF, 2^-15, sign of Q
            if s == 0:
                return 0x7FFF
            pf = (p if p >= 0 else -p) * 32767 // s
            return -pf if q < 0 else pf
        if addr == 0x10E:  # PERIOD
            return (223750 * 1000 + self.f_mhz // 2) // self.f_mhz - 1
        if addr == 0x10C or addr == 0x10D:
            import math

            phi = math.atan2(q, p) if (p or q) else 0.0
            return int(phi / (2 * math.pi) / (self.f_mhz / 1000) / 4.47e-6)
        return 0

    # -- register file ---------------------------------------------------------------------

    def read_reg(self, addr):
        """Value of register ``addr`` as the chip would send it (unsigned, width bits)."""
        n = _width(addr)
        base = addr - 0x100 if n == 4 else addr
        if not self._ready():
            return 0
        if base in _ENERGY:
            self._advance()
            idx = 0 if base < 0x220 else (1 if base < 0x222 else 2)
            if base & 1:  # channel B mirrors A without reset bookkeeping
                v = self._reg[idx]
            else:
                v = self._reg[idx]
                if self._regs[0x004] & 0x40:
                    self._reg[idx] = 0
        elif base == 0x22D or base == 0x22E:
            self._advance()
            v = self._irqstata
            if base == 0x22E:
                self._irqstata = 0
        elif base in (0x21A, 0x21B, 0x21C, 0x210, 0x211, 0x212, 0x213, 0x214, 0x215,
                      0x10A, 0x10B, 0x10C, 0x10D, 0x10E):
            v = self._inst(base)
        elif base == 0x201:
            v = self._regs[0x201]
        else:
            v = self._regs.get(base, 0)
        bits = 8 * n
        if n == 4 and base in _SIGNED24:
            v &= 0xFFFFFF
            if v & 0x800000:
                v |= 0xFF000000
        return v & ((1 << bits) - 1)

    def write_reg(self, addr, value):
        n = _width(addr)
        base = addr - 0x100 if n == 4 else addr
        unlock = self._last_was_unlock
        self._last_was_unlock = addr == 0x0FE and value == 0xAD
        if not self._ready():
            return
        if addr == 0x0FE:
            return
        if base == 0x120:
            if unlock:
                self._regs[0x120] = value & 0xFFFF
                self.unlocked_120 = value == 0x30
            return
        if base in _READONLY:
            return
        if base == 0x102 and value & 0x80:  # SWRST
            self.inject_reset()
            return
        if n == 4:
            value &= 0xFFFFFF
        self._advance()  # energy so far accrues at the old settings
        self._regs[base] = value
        self._cfg = None

    # -- SPI side --------------------------------------------------------------------------

    def select(self, level):
        """CS pin level (0 = selected). The rising edge completes a write frame."""
        if level == 0:
            self._sel = True
            self._pos = 0
        else:
            if self._sel and self._cmd == 0 and self._pos >= 3 + self._n and self._n:
                self.writes += 1
                self.write_reg(self._addr, self._wdata)
            self._sel = False
            self._pos = 0
            self._n = 0

    def transfer(self, wbuf, rbuf):
        """Clock ``len(wbuf)`` bytes while CS is low; MISO bytes go to ``rbuf``."""
        if not self._sel:
            for i in range(len(rbuf)):
                rbuf[i] = 0xFF if self.fault == "deadff" else 0
            return
        pos = self._pos
        for i in range(len(wbuf)):
            b = wbuf[i]
            out = 0
            if pos == 0:
                self._addr = b << 8
            elif pos == 1:
                self._addr |= b
                self._n = _width(self._addr)
            elif pos == 2:
                self._cmd = b & 0x80
                self._wdata = 0
                if self._cmd:
                    self.reads += 1
                    self._val = self.read_reg(self._addr)
            elif pos < 3 + self._n:
                k = pos - 3
                if self._cmd:
                    out = (self._val >> (8 * (self._n - 1 - k))) & 0xFF
                    if self.fault == "misclocked":
                        # sampled on the wrong edge: the whole word arrives one bit late
                        prev = (self._val >> (8 * (self._n - k))) & 1 if k else 0
                        out = (out >> 1) | (prev << 7)
                else:
                    self._wdata = (self._wdata << 8) | b
            pos += 1
            if self.fault == "dead0":
                out = 0
            elif self.fault == "deadff":
                out = 0xFF
            if i < len(rbuf):
                rbuf[i] = out
        self._pos = pos
