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

- Over-range (DS p.21, p.46-47): the ADC clips each input at its full scale (0.5 V peak:
  Vfs = 354 V rms, Ifs = 88 A rms for a sine). A clipped sine of rms x times full scale keeps
  a fundamental of (2/pi)(a + sin a cos a) and an rms of
  sqrt((4/pi)(a/2 - sin a cos a / 2 + sin^2 a (pi/2 - a))) of its unclipped values, a =
  asin(1/x) (Fourier series of the clipped sine). Active and reactive power (and energy)
  scale with the fundamentals of both inputs (harmonic products of two clipped inputs are
  left out), apparent power with the rms values (VRMS x IRMS, DS p.31), so |P|, |Q| <= S
  still holds and the sign never changes; at any overload the counts stay below twice the
  full-scale rate. The waveform peak (VPEAK, IAPEAK, IBPEAK and their read-with-reset
  twins, nominal full scale 6 500 000 LSB) is compared with OVLVL / OILVL: above it,
  IRQSTATA.OV (bit 16) / OIA (bit 13) latch. Instantaneous registers saturate at their
  24-bit range instead of wrapping.
- Communication verification (DS p.57 Table 11): LAST_OP (0x35 read, 0xCA write), LAST_ADD
  and LAST_RWDATA (0x0FF/0x1FF/0x2FF/0x3FF) record the last transfer as the chip sent or
  received it; reading them is not itself recorded.

Faults for tests (``fault`` attribute, names in :data:`FAULTS`): ``'dead0'`` (MISO stuck
low), ``'deadff'`` (stuck high), ``'misclocked'`` (every read shifted right by one bit),
``'irqstuck'`` (the chip's IRQSTATA bits 0-5, half-full and overflow of A, stuck at 1, IRQ pin
low); one-shot, the attribute reads None afterwards: ``'reset'`` (restart now, as
:meth:`inject_reset`), ``'bitflip'`` (one bit, ``flip_bit`` of register ``flip_addr``,
default bit 14 of APENERGYA, inverted on MISO in the next read of that register; the chip's
LAST_RWDATA keeps the true value), ``'rstread'`` (LCYCMODE.RSTREAD cleared, as by a stray
write: reads stop resetting the accumulators).

Speed: the SPI path the metering read takes ten times a simulated second and the energy
integration are machine code on MicroPython: ``cs`` and the integration by the native
emitter (``@micropython.native``), ``transfer`` by viper (``@micropython.viper``: the frame's
bytes, address and word as machine ints, words of at most 24 bits; 32-bit reads go the
bytecode way). The same results; a read costs about a third less than as bytecode (docs/
BENCHMARKS.md issue 12, "Session 12" and "Session 13").
"""

import math

import micropython
from micropython import const

_VFS_MV = const(354000)
_IFS_MA = const(88000)
_RMS_FS = const(9032007)
_POWER_FS = const(4862401)
_ERATE_FS = const(206900)
_UNITY = const(0x400000)
_WAVE_FS = const(6500000)  # waveform peak code at 0.5 V peak (DS p.21)
_LAST = (0x0FD, 0x1FE, 0x0FF, 0x1FF, 0x2FF, 0x3FF)  # communication verification registers

# read_reg dispatch: 1 energy, 2 IRQSTATA/RSTIRQSTATA, 3 peak, 4 LAST_*, 5 instantaneous
_KIND = {}
for _a in (0x21E, 0x21F, 0x220, 0x221, 0x222, 0x223):  # AENERGYA .. APENERGYB
    _KIND[_a] = 1
for _a in (0x22D, 0x22E):
    _KIND[_a] = 2
for _a in range(0x226, 0x22C):
    _KIND[_a] = 3
for _a in _LAST:
    _KIND[_a] = 4
for _a in (0x21A, 0x21B, 0x21C, 0x210, 0x211, 0x212, 0x213, 0x214, 0x215, 0x10A, 0x10B,
           0x10C, 0x10D, 0x10E):
    _KIND[_a] = 5

_MASKS = (0, 0xFF, 0xFFFF, 0xFFFFFF)  # by register width in bytes (1..3)
_ONE = 1  # (not const: transfer adds it to the ``reads`` object as an object)
_NONE = None  # (viper compares objects with objects only: ``x is _NONE`` there)

try:  # viper's pointer cast (a built-in inside @micropython.viper only); on CPython and in
    ptr8  # noqa: B018  a bytecode build, the buffer itself indexes the same
except NameError:
    def ptr8(buf):
        return buf

# transfer()'s plain reads by the frame's address (the 0x3xx aliases included): 1..3
# AENERGYA / RENERGYA / APENERGYA (24 bit, the read-with-reset ones), 4 IRQSTATA, 5
# RSTIRQSTATA, 10 LAST_OP, 11 LAST_ADD, 12 LAST_RWDATA_x (10 + index in _last), 0 the rest of
# _KIND (through read_reg); an address not listed is a stored register (7) unless 32 bit
# (0: read_reg sign-extends)
_FAST = {0x21E: 1, 0x220: 2, 0x222: 3, 0x22D: 4, 0x22E: 5, 0x0FD: 10, 0x1FE: 11}
for _a in _KIND:
    for _b in (_a, _a + 0x100) if 0x200 <= _a < 0x300 else (_a,):
        if _b not in _FAST:
            _FAST[_b] = 12 if _KIND[_a] == 4 and _b in _LAST else 0

FAULTS = ("dead0", "deadff", "misclocked", "irqstuck", "reset", "bitflip", "rstread")
_STEADY = ("dead0", "deadff", "misclocked", "irqstuck")
ONE_SHOT = ("reset", "bitflip", "rstread")  # act once when set (the attribute reads None after)

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


def _clip(x):
    """A sine of ``x`` (float) times the full-scale sine, clipped at full scale: (fundamental,
    rms) relative to the unclipped sine's (floats; rms >= fundamental). (1.0, 1.0) for
    x <= 1."""
    if x <= 1:
        return 1.0, 1.0
    sa = 1 / x
    a = math.asin(sa)
    sc = sa * math.cos(a)
    f = 2 / math.pi * (a + sc)
    r = math.sqrt(4 / math.pi * (a / 2 - sc / 2 + sa * sa * (math.pi / 2 - a)))
    return f, (r if r > f else f)


def _width(addr):
    if addr == 0x702 or addr == 0x800:
        return 1
    return ((addr >> 8) & 3) + 1


class ADE7953Model:
    """The chip. ``trace``: object with ``at(t_ms) -> (p_mw, q_mvar, next_ms)``;
    ``now_ms``: callable giving simulated ms. ``v_mv`` line voltage (mV rms), ``f_mhz``
    frequency (mHz)."""

    def __init__(self, trace, now_ms, v_mv=230000, f_mhz=50000, fault=None,
                 neutral_ratio_pct=100, clock=None):
        self._trace = trace
        self._now = now_ms
        # the board's VirtualClock when ``now_ms`` is its ticks_ms: the metering read's hot
        # path (transfer, _advance) reads its ``_now`` instead of calling (a call less each)
        self._clk = clock
        self.v_mv = v_mv
        self.f_mhz = f_mhz
        self.fault = None  # the fault in force (a name from FAULTS) or None: set_fault()
        self.flip_addr = 0x222
        self.flip_bit = 14
        self._flip = False
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
        self._out = 0
        self.power_on()
        self.set_fault(fault)

    # (``fault`` is a plain attribute, not a property: a class with a property makes every
    # attribute store on its instances look the class up first, ~0.2 us each on the unix
    # port, and the SPI path stores ~13 per frame. A name assigned directly is checked and
    # acted on at the next SPI frame or IRQ read.)
    def set_fault(self, name):
        """Inject fault ``name`` (from :data:`FAULTS`) or None (no fault). The one-shot ones
        (:data:`ONE_SHOT`) act now and leave ``fault`` None. Raises ValueError for an unknown
        name."""
        if name is not None and name not in FAULTS:
            self.fault = None
            raise ValueError("unknown ADE7953 fault %r" % (name,))
        if name == "reset":
            self.inject_reset()
            name = None
        elif name == "bitflip":
            self._flip = True
            name = None
        elif name == "rstread":
            self._advance()
            self._regs[0x004] &= ~0x40  # read-with-reset off: reads return running totals
            name = None
        self.fault = name

    # -- reset and power -------------------------------------------------------------------

    def power_on(self):
        """Apply supply: registers to defaults; ready (RESET irq) after 40 ms (DS p.18)."""
        self._regs = dict(_DEFAULTS)
        self._irqstata = 0
        self._ready_at = self._now() + 40
        self._t = self._now()
        self._scale_key = None
        self._cfg = None  # cached (scales, no-load thresholds, OVLVL, OILVL); None after writes
        self._acc = [0, 0, 0]  # exact residues of P, Q, S (units: LSB * _den)
        self._reg = [0, 0, 0]  # AENERGYA, RENERGYA, APENERGYA counts
        self._meas_key = None
        self._meas = None
        self._peak = [0, 0, 0]  # VPEAK, IAPEAK, IBPEAK (waveform codes)
        self._last = [0, 0, 0]  # LAST_OP, LAST_ADD, LAST_RWDATA
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
        if self.fault is not None and self.fault not in _STEADY:
            self.set_fault(self.fault)  # assigned directly: act on it now
        if self.fault == "irqstuck":
            return 0
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

    def _measure(self, p, q):
        """(p, q, s, v_peak, ia_peak, ib_peak) as the chip measures the trace's (p mW, q mvar)
        at ``v_mv``: power in mW / mvar / mVA after ADC clipping (module docstring), peaks as
        waveform codes. Exact integers (no clipping) unless an input is beyond full scale."""
        v = self.v_mv
        k = self._meas_key
        if k is not None and k[0] == p and k[1] == q and k[2] == v and (
                k[3] == self.neutral_ratio_pct):
            return self._meas
        key = (p, q, v, self.neutral_ratio_pct)
        s = _isqrt(p * p + q * q)
        xv = v / _VFS_MV
        xi = s / v / _IFS_MA * 1000 if v else 0.0
        xb = xi * self.neutral_ratio_pct / 100
        fv, rv = _clip(xv)
        fi, ri = _clip(xi)
        if fv == 1.0 and fi == 1.0:
            pm, qm, sm = p, q, s
        else:  # clipped: int() rounds P and Q towards zero, S up, so |P|, |Q| <= S
            f = fv * fi
            pm = int(p * f)
            qm = int(q * f)
            sm = int(math.ceil(s * rv * ri))
        pk = (int(min(xv, 1.0) * _WAVE_FS), int(min(xi, 1.0) * _WAVE_FS),
              int(min(xb, 1.0) * _WAVE_FS))
        self._meas_key = key
        self._meas = (pm, qm, sm) + pk + (rv, ri, _clip(xb)[1])
        return self._meas

    @micropython.native
    def _advance(self):
        # integrate the trace from _t to now into the accumulators (module docstring):
        # per trace segment the measured powers (_measure), the peaks and the over-range
        # flags (DS p.46-47); then whole counts move from the exact residues to the
        # registers, with the wrap and its flag (DS p.25). (Split in four so that no frame
        # passes 11 words: a larger one is heap-allocated at every call, and this runs every
        # simulated second; BENCHMARKS "Session 9: speed".)
        now = self._now() if self._clk is None else self._clk._now
        t = self._t
        if now <= t or self._ready_at is not None:
            self._t = now if now > t else t
            return
        if self._cfg is None:  # (cleared by every register write)
            self._configure()
        while t < now:
            r = self._trace.at(t)
            end = r[2]
            if end is None or end > now:
                end = now
            self._segment(r[0], r[1], end - t)
            t = end
        self._t = now
        self._carry()

    def _configure(self):
        # the cached (k P, k Q, k S, den P, den Q, den S, no-load P, Q, S, OVLVL, OILVL)
        g = self._regs
        (k, den) = self._scale()
        self._cfg = (k[0], k[1], k[2], den[0], den[1], den[2], self._nl_mw(0x203, 1),
                     self._nl_mw(0x204, 2), self._nl_mw(0x205, 4), g[0x224], g[0x225])

    @micropython.native
    def _segment(self, p, q, dt):
        # one trace segment of ``dt`` ms at (p mW, q mvar): peaks, over-range flags, energy
        m = self._meas_key  # (the cache test of _measure, saving the call)
        if (m is not None and m[0] == p and m[1] == q and m[2] == self.v_mv
                and m[3] == self.neutral_ratio_pct):
            m = self._meas
        else:
            m = self._measure(p, q)
        peak = self._peak
        p = m[3]  # (the peaks one by one: a multiple assignment of more than 3 builds a tuple)
        if p > peak[0]:
            peak[0] = p
        if p > self._cfg[9]:
            self._irqstata |= 1 << 16  # OV
        p = m[4]
        if p > peak[1]:
            peak[1] = p
        if p > self._cfg[10]:
            self._irqstata |= 1 << 13  # OIA
        p = m[5]
        if p > peak[2]:
            peak[2] = p
        # the segment's P, Q, S (m[0..2]) times dt into the exact residues, each above its
        # no-load threshold (module docstring); q: the cached configuration, peak: the
        # residues (was _accrue: a call less every simulated second, the frame the same)
        q = self._cfg
        peak = self._acc
        p = m[0]
        if (p if p >= 0 else -p) >= q[6]:
            p = p * dt * q[0]
            peak[0] += p
        p = m[1]
        if (p if p >= 0 else -p) >= q[7]:
            p = p * dt * q[1]
            peak[1] += p
        p = m[2]
        if p >= q[8]:
            p = p * dt * q[2]
            peak[2] += p

    @micropython.native
    def _carry(self):
        # whole counts from the residues to the registers, with the wrap and its flag (DS
        # p.25); the three unrolled on purpose (a loop or a helper: a larger frame or a call
        # each)
        acc = self._acc
        reg = self._reg
        cfg = self._cfg
        c = acc[0] // cfg[3]
        if c:
            r = c * cfg[3]
            acc[0] -= r
            r = reg[0] + c
            if r > 0x7FFFFF or r < -0x800000:
                r = ((r + 0x800000) & 0xFFFFFF) - 0x800000
                self._irqstata |= 1 << 3  # AEOFA
            reg[0] = r
        c = acc[1] // cfg[4]
        if c:
            r = c * cfg[4]
            acc[1] -= r
            r = reg[1] + c
            if r > 0x7FFFFF or r < -0x800000:
                r = ((r + 0x800000) & 0xFFFFFF) - 0x800000
                self._irqstata |= 1 << 4  # VAREOFA
            reg[1] = r
        c = acc[2] // cfg[5]
        if c:
            r = c * cfg[5]
            acc[2] -= r
            r = reg[2] + c
            if r > 0x7FFFFF or r < -0x800000:
                r = ((r + 0x800000) & 0xFFFFFF) - 0x800000
                self._irqstata |= 1 << 5  # VAEOFA
            reg[2] = r

    # -- instantaneous values ----------------------------------------------------------------

    def _inst(self, addr):
        v = self._inst_raw(addr)
        if addr < 0x200:
            return v
        # saturate instead of wrapping (instantaneous registers: 24 bit, signed or not)
        if addr in _SIGNED24:
            return 0x7FFFFF if v > 0x7FFFFF else (-0x800000 if v < -0x800000 else v)
        return 0xFFFFFF if v > 0xFFFFFF else (0 if v < 0 else v)

    def _inst_raw(self, addr):
        p0, q0, _n = self._trace.at(self._now())
        m = self._measure(p0, q0)
        p, q, s = m[0], m[1], m[2]
        s0 = _isqrt(p0 * p0 + q0 * q0)
        g = self._regs
        v = self.v_mv
        if addr == 0x21C:  # VRMS of the (clipped) voltage
            return int((v * _RMS_FS // _VFS_MV * g[0x281] // _UNITY) * m[6])
        i_ma = s0 * 1000 // v if v else 0
        if addr == 0x21A or addr == 0x21B:
            r = m[7]
            if addr == 0x21B:
                i_ma = i_ma * self.neutral_ratio_pct // 100
                r = m[8]
            gain = g[0x280] if addr == 0x21A else g[0x28C]
            return int((i_ma * _RMS_FS // _IFS_MA * gain // _UNITY) * r)
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
            phi = math.atan2(q, p) if (p or q) else 0.0
            return int(phi / (2 * math.pi) / (self.f_mhz / 1000) / 4.47e-6)
        return 0

    # -- register file ---------------------------------------------------------------------

    def read_reg(self, addr):
        """Value of register ``addr`` as the chip would send it (unsigned, width bits)."""
        n = 1 if (addr == 0x702 or addr == 0x800) else ((addr >> 8) & 3) + 1  # _width
        base = addr - 0x100 if n == 4 else addr
        if self._ready_at is not None and not self._ready():
            return 0
        kind = _KIND.get(base, 0)
        self._kind = kind
        if kind == 0:
            v = self._regs.get(base, 0)
        elif kind == 1:
            self._advance()
            idx = 0 if base < 0x220 else (1 if base < 0x222 else 2)
            if base & 1:  # channel B mirrors A without reset bookkeeping
                v = self._reg[idx]
            else:
                v = self._reg[idx]
                if self._regs[0x004] & 0x40:
                    self._reg[idx] = 0
        elif kind == 2:
            self._advance()
            v = self._irqstata
            if base == 0x22E:
                self._irqstata = 0
            if self.fault == "irqstuck":
                v |= 0x3F
        elif kind == 3:  # VPEAK, RSTVPEAK, IAPEAK, RSTIAPEAK, IBPEAK, RSTIBPEAK
            self._advance()
            i = (base - 0x226) >> 1
            v = self._peak[i]
            if base & 1:
                self._peak[i] = 0
        elif kind == 4:
            v = self._last[0 if base == 0x0FD else (1 if base == 0x1FE else 2)]
        else:
            v = self._inst(base)
        if n == 4:
            if base in _SIGNED24:
                v &= 0xFFFFFF
                if v & 0x800000:
                    v |= 0xFF000000
            return v & 0xFFFFFFFF
        return v & _MASKS[n]

    def write_reg(self, addr, value):
        n = _width(addr)
        base = addr - 0x100 if n == 4 else addr
        unlock = self._last_was_unlock
        self._last_was_unlock = addr == 0x0FE and value == 0xAD
        if not self._ready():
            return
        last = self._last
        last[0] = 0xCA
        last[1] = addr
        last[2] = value & ((1 << (8 * n)) - 1)
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

    @micropython.native
    def cs(self, level=None):
        """The CS pin as ``machine.Pin.value``: ``cs()`` reads the level (1 idle), ``cs(v)``
        drives it; only a change is an edge (:meth:`select`). One call per edge: the board
        wires it as the pin's ``value`` (boards/sim/hw.ChipSelect, the SPI hot path)."""
        if level is None:
            return 0 if self._sel else 1
        if level:
            if self._sel:
                if self._cmd == 0 and self._n and self._pos >= 3 + self._n:
                    self.writes += 1
                    self.write_reg(self._addr, self._wdata)
                self._sel = False
                self._pos = 0
                self._n = 0
        elif not self._sel:
            self._sel = True
            self._pos = 0

    @micropython.viper
    def transfer(self, wbuf, rbuf):
        """Clock ``len(wbuf)`` bytes while CS is low; MISO bytes go to ``rbuf``."""
        # (viper: the frame's bytes, the address and the word are machine ints, so only the
        # attribute accesses and calls below cost interpreter work; ~10 frames a simulated
        # second. Words of at most 24 bits here: a 32-bit read goes through _frame, as do
        # writes, faults and split frames through _bytes, so a 32-bit core's signed machine
        # word never holds one)
        v = int(len(wbuf))
        if not (self._sel and int(self._pos) == 0 and v >= 3 and int(len(rbuf)) >= v):
            self._bytes(wbuf, rbuf)
            return
        w = ptr8(wbuf)
        a = (w[0] << 8) | w[1]
        n = 1 if (a == 0x702 or a == 0x800) else ((a >> 8) & 3) + 1  # _width
        if not (w[2] & 0x80 and v == 3 + n and n != 4 and self.fault is _NONE
                and self._ready_at is _NONE and not self._flip):
            self._frame(wbuf, rbuf)
            return
        # a read as the driver frames it, no fault: _read_cmd and read_reg inlined for what
        # the metering read asks every second (the codes of _FAST; the rest through
        # read_reg). (_addr, _wdata and _out matter only within a frame or for a write: a
        # whole read frame leaves them to the next frame's header.)
        rbuf[0] = 0  # (an object store: a read-only rbuf raises TypeError here, before any
        # state changes, as machine.SPI and the byte path do; ptr8 would write into it)
        self.reads = self.reads + _ONE  # (an object sum: no 31-bit wrap on a 32-bit core)
        if a == 0x2FF:  # LAST_RWDATA_24, AENERGYA, RENERGYA, APENERGYA, RSTIRQSTATA
            c = 12
        elif a == 0x21E or a == 0x220 or a == 0x222:
            c = (a - 0x21C) >> 1
        elif a == 0x22E:
            c = 5
        else:
            c = int(_FAST.get(a, 7))
        if c == 7:  # a stored register (CONFIG, LCYCMODE, ...)
            v = int(self._regs.get(a, 0)) & ((1 << (n << 3)) - 1)
        elif c <= 5 and c:  # AENERGYA, RENERGYA, APENERGYA; IRQSTATA, RSTIRQSTATA
            k = self._clk
            if (self._now() if k is _NONE else k._now) > self._t:
                self._advance()
            if c <= 3:
                k = self._reg
                v = int(k[c - 1])
                if int(self._regs[0x004]) & 0x40:  # LCYCMODE.RSTREAD: read with reset
                    k[c - 1] = 0
            else:
                v = int(self._irqstata)
                if c == 5:
                    self._irqstata = 0
            v &= 0xFFFFFF
        elif c >= 10:  # LAST_*: not recorded themselves
            v = int(self._last[c - 10]) & ((1 << (n << 3)) - 1)
        else:
            v = int(self.read_reg(a))
        if c < 10:
            k = self._last
            k[0] = 0x35
            k[1] = a
            k[2] = v
        self._n = n
        self._cmd = 0x80
        w = ptr8(rbuf)
        w[0] = 0
        w[1] = 0
        w[2] = 0
        if n == 3:
            w[3] = (v >> 16) & 0xFF
            w[4] = (v >> 8) & 0xFF
            w[5] = v & 0xFF
        elif n == 2:
            w[3] = (v >> 8) & 0xFF
            w[4] = v & 0xFF
        else:
            w[3] = v & 0xFF
        self._pos = 3 + n

    def _bytes(self, wbuf, rbuf):
        # transfer() byte by byte: any split of a frame, CS high, a frame already started
        if self.fault is not None and self.fault not in _STEADY:
            self.set_fault(self.fault)  # assigned directly: act on it now
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
                    self._read_cmd()
            elif pos < 3 + self._n:
                k = pos - 3
                if self._cmd:
                    out = (self._out >> (8 * (self._n - 1 - k))) & 0xFF
                    if self.fault == "misclocked":
                        # sampled on the wrong edge: the whole word arrives one bit late
                        prev = (self._out >> (8 * (self._n - k))) & 1 if k else 0
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

    def _read_cmd(self):
        # the read command byte is in: latch the word, record it, corrupt it on the wire
        self.reads += 1
        a = self._addr
        self._kind = 0
        v = self._val = self.read_reg(a)
        if self._ready_at is None and self._kind != 4:
            last = self._last  # LAST_OP read, LAST_ADD, LAST_RWDATA
            last[0] = 0x35
            last[1] = a
            last[2] = v
        if self._flip and (a - 0x100 if self._n == 4 else a) == self.flip_addr:
            self._flip = False
            v ^= 1 << self.flip_bit  # corrupted on the wire only
        self._out = v

    def _frame(self, wbuf, rbuf):
        # transfer() of a whole frame (header + data) other than a plain read, byte for byte
        # the same as the byte path
        ln = len(wbuf)
        a = (wbuf[0] << 8) | wbuf[1]
        n = _width(a)
        cmd = self._cmd = wbuf[2] & 0x80
        self._addr = a
        self._n = n
        self._wdata = 0
        fault = self.fault
        if fault is not None and fault not in _STEADY:
            self.set_fault(fault)  # assigned directly: act on it now
            fault = self.fault
        idle = 0xFF if fault == "deadff" else 0
        rbuf[0] = rbuf[1] = rbuf[2] = idle
        m = ln - 3 if ln - 3 < n else n
        if cmd:
            self._read_cmd()
            out = self._out
            if fault == "misclocked":
                out >>= 1  # sampled on the wrong edge: the word arrives one bit late
            for k in range(m):
                rbuf[3 + k] = idle if (fault == "dead0" or fault == "deadff") else (
                    (out >> (8 * (n - 1 - k))) & 0xFF)
        else:
            w = 0
            for k in range(m):
                w = (w << 8) | wbuf[3 + k]
                rbuf[3 + k] = idle
            self._wdata = w
        for k in range(3 + m, ln):
            rbuf[k] = idle
        self._pos = ln
