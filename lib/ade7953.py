# ADE7953 single-phase energy metering IC: SPI driver.
# Facts: ADE7953 data sheet Rev. C (DS), pages cited inline; see docs/ARCHITECTURE.md.
"""ADE7953 driver over SPI (data sheet Rev. C).

Framing (DS p.52): CS low for the whole frame; 2 address bytes MSB first, one command byte
(0x80 = read, 0x00 = write), then 1/2/3/4 data bytes MSB first. The width follows from the
address: bits 11:8 = 0x0 -> 8 bit, 0x1 -> 16 bit, 0x2 -> 24 bit, 0x3 -> 32 bit; 0x702 (VERSION)
and 0x800 (EX_REF) are 8 bit. SPI mode 0, MSB first, <= 5 MHz (DS p.52, Table 2 p.6).

Power-up (DS p.18, p.50-51): wait for the RESET interrupt (IRQ pin low, IRQSTATA bit 20) or
100 ms; write 0xAD to 0x0FE then 0x0030 to 0x120 ("in succession", every power-up); lock the
interface by clearing CONFIG.COMM_LOCK (bit 15). After any reset every configuration register
is written again (Tasmota notes that a reset does not always restore all registers).

Energy comes only from the accumulation registers AENERGYA, RENERGYA, APENERGYA read with
reset (LCYCMODE.RSTREAD = 1, DS p.25): signed two's complement, 24 bit, never abs()'d.

Overflow bound (DS p.25-26: 206 900 LSB/s at full-scale V and I with xWGAIN = 0x400000, the
24-bit register holds +/-8 388 607 LSB):
    rate(Imax)  = 206 900 * (Vmax * Imax) / (Vfs * Ifs)                      [LSB/s]
    t_overflow  = 8 388 607 / rate(Imax)                                      [s]
For the reference front end (Vfs = 354 V rms, Ifs = 88 A rms) at Imax = 60 A and
Vmax = 1.15 * 230 V = 264.5 V: rate = 206 900 * 15 870 / 31 152 = 105 403 LSB/s, so
t_overflow = 79.6 s. :meth:`max_read_interval_ms` computes this bound from the calibration;
the metering task reads every 1 s by default (80x margin) and refuses intervals above half
the bound. An overflow that happens anyway is detected through IRQSTATA.AEOFA/VAREOFA/VAEOFA
(bits 3-5) and reported (:attr:`overflow`).
"""

from micropython import const

# Register addresses (DS Tables 13-15, p.60-62). 24-bit views (0x2xx) are used for energy.
SAGCYC = const(0x000)
DISNOLOAD = const(0x001)
LCYCMODE = const(0x004)
PGA_V = const(0x007)
PGA_IA = const(0x008)
PGA_IB = const(0x009)
WRITE_PROTECT = const(0x040)
LAST_OP = const(0x0FD)
UNLOCK_120 = const(0x0FE)
VERSION = const(0x702)
EX_REF = const(0x800)
ZXTOUT = const(0x100)
LINECYC = const(0x101)
CONFIG = const(0x102)
CF1DEN = const(0x103)
CF2DEN = const(0x104)
CFMODE = const(0x107)
PHCALA = const(0x108)
PHCALB = const(0x109)
PFA = const(0x10A)
PFB = const(0x10B)
ANGLE_A = const(0x10C)
ANGLE_B = const(0x10D)
PERIOD = const(0x10E)
RESERVED_120 = const(0x120)
SAGLVL = const(0x200)
ACCMODE = const(0x201)
AP_NOLOAD = const(0x203)
VAR_NOLOAD = const(0x204)
VA_NOLOAD = const(0x205)
AVA = const(0x210)
BVA = const(0x211)
AWATT = const(0x212)
BWATT = const(0x213)
AVAR = const(0x214)
BVAR = const(0x215)
IRMSA = const(0x21A)
IRMSB = const(0x21B)
VRMS = const(0x21C)
AENERGYA = const(0x21E)
AENERGYB = const(0x21F)
RENERGYA = const(0x220)
RENERGYB = const(0x221)
APENERGYA = const(0x222)
APENERGYB = const(0x223)
IRQENA = const(0x22C)
IRQSTATA = const(0x22D)
RSTIRQSTATA = const(0x22E)
AIGAIN = const(0x280)
AVGAIN = const(0x281)
AWGAIN = const(0x282)
AVARGAIN = const(0x283)
AVAGAIN = const(0x284)
BIGAIN = const(0x28C)
BVGAIN = const(0x28D)
BWGAIN = const(0x28E)
BVARGAIN = const(0x28F)
BVAGAIN = const(0x290)

# Register defaults used by the health check (DS Tables 14-15; pitfall 3 in the reference).
CONFIG_DEFAULT = const(0x8004)
LCYCMODE_DEFAULT = const(0x40)
AP_NOLOAD_DEFAULT = const(0x00E419)
ZXTOUT_DEFAULT = const(0xFFFF)

# Bits.
_COMM_LOCK = const(0x8000)  # CONFIG b15, 1 = interface not locked
_HPFEN = const(0x0004)  # CONFIG b2
_SWRST = const(0x0080)  # CONFIG b7
IRQ_AEOFA = const(1 << 3)
IRQ_VAREOFA = const(1 << 4)
IRQ_VAEOFA = const(1 << 5)
IRQ_RESET = const(1 << 20)
_EOF_MASK = const((1 << 3) | (1 << 4) | (1 << 5))

# Nominal full-scale codes (DS p.23, p.24, p.25).
RMS_FULL_SCALE = const(9032007)  # IRMS/VRMS code at 0.5 V peak input
POWER_FULL_SCALE = const(4862401)  # xWATT/xVAR/xVA code at full-scale V and I
ENERGY_RATE_FULL_SCALE = const(206900)  # energy LSB per second at full scale
PERIOD_CLOCK_HZ = const(223750)  # f = 223 750 / (PERIOD + 1) (DS p.36)
_GAIN_UNITY = const(0x400000)

# Registers read as signed two's complement (the rest unsigned). PHCALx is sign-magnitude.
_SIGNED = (AVA, BVA, AWATT, BWATT, AVAR, BVAR, AENERGYA, AENERGYB, RENERGYA, RENERGYB,
           APENERGYA, APENERGYB, PFA, PFB, ANGLE_A, ANGLE_B)


class ADE7953Error(Exception):
    """The chip does not answer as an ADE7953 should (dead bus, wrong clocking, reset)."""


def width(addr):
    """Register width in bytes (1..4) from its address (DS p.60; VERSION and EX_REF are 8 bit)."""
    if addr == VERSION or addr == EX_REF:
        return 1
    return ((addr >> 8) & 0x3) + 1


class Calibration:
    """Calibration constants of one meter (front end + chip), with reference-design defaults.

    Defaults describe the reference front end: voltage divider giving Vfs = 354 V rms at the
    0.5 V peak input (1 MOhm / 1 kOhm class divider) and a 250 uOhm shunt with PGA_IA = x16
    giving Ifs = 88 A rms (31.25 mV peak full scale, DS Table 6 p.19), gains at 0x400000.
    From the nominal full-scale codes (DS p.23-25):

    - ``wh_per_lsb``   = Vfs*Ifs / (206 900 * 3600) = 4.1824e-5 Wh per AENERGYA LSB
    - ``varh_per_lsb`` and ``vah_per_lsb``: the same for RENERGYA / APENERGYA
    - ``v_per_lsb``    = Vfs / 9 032 007 (VRMS), ``a_per_lsb`` = Ifs / 9 032 007 (IRMSA/IRMSB)
    - ``w_per_lsb``    = Vfs*Ifs / 4 862 401 (AWATT/AVAR/AVA)

    Gains (unsigned, 0x200000..0x600000 = -50 %..+50 %, DS p.34) are written to the chip;
    ``phcal_a`` is PHCALA in LSB of 1.117 us (0.02 deg at 50 Hz), -383..383 (DS p.34).
    Real meters calibrate per unit (AN-1118); these defaults hold only for the reference design.
    """

    VFS_V = 354
    IFS_A = 88

    def __init__(self, **kw):
        pfs = self.VFS_V * self.IFS_A
        self.wh_per_lsb = pfs / (ENERGY_RATE_FULL_SCALE * 3600)
        self.varh_per_lsb = self.wh_per_lsb
        self.vah_per_lsb = self.wh_per_lsb
        self.v_per_lsb = self.VFS_V / RMS_FULL_SCALE
        self.a_per_lsb = self.IFS_A / RMS_FULL_SCALE
        self.a_per_lsb_b = self.IFS_A / RMS_FULL_SCALE
        self.w_per_lsb = pfs / POWER_FULL_SCALE
        self.awgain = _GAIN_UNITY
        self.avargain = _GAIN_UNITY
        self.avagain = _GAIN_UNITY
        self.aigain = _GAIN_UNITY
        self.avgain = _GAIN_UNITY
        self.bigain = _GAIN_UNITY
        self.phcal_a = 0
        self.pga_ia = 4  # x16
        # No-load threshold written to AP/VAR/VA_NOLOAD, in W (below the firmware's
        # starting-current gate so the firmware gate decides; DS p.40-42).
        self.chip_no_load_w = 1.0
        for k in kw:
            if not hasattr(self, k):
                raise ValueError("unknown calibration constant %s" % k)
            setattr(self, k, kw[k])

    def no_load_code(self):
        """X_NOLOAD for a threshold of ``chip_no_load_w`` W: 65 536 - Y/1.4 with
        Y = Pfs/threshold (DS p.40-41). Clamped to 0..65 535."""
        pfs = self.w_per_lsb * POWER_FULL_SCALE
        y = pfs / self.chip_no_load_w
        x = int(65536 - y / 1.4)
        return 0 if x < 0 else (65535 if x > 65535 else x)


def _phcal_code(v):
    """PHCAL sign-magnitude encoding (DS p.34): bit 9 set = advance, magnitude <= 383."""
    if v < -383 or v > 383:
        raise ValueError("PHCAL out of range -383..383")
    return (-v) | 0x200 if v < 0 else v


class ADE7953:
    """ADE7953 on an SPI bus.

    ``spi``: a machine.SPI-like object (``write_readinto(wbuf, rbuf)``), mode 0, MSB first.
    ``cs``: Pin, output, idle high. ``irq``: Pin, input (active low) or None.
    ``reset``: Pin, output (active low) or None. ``cal``: :class:`Calibration`.

    After :meth:`begin`, :meth:`read_energy` fills ``e_active``, ``e_reactive``,
    ``e_apparent`` (signed LSB since the previous read), ``irq_status`` and ``overflow``
    without allocating. Errors raise :class:`ADE7953Error`.
    """

    def __init__(self, spi, cs, irq=None, reset=None, cal=None):
        self._spi = spi
        self._cs = cs
        self._irq = irq
        self._reset = reset
        self.cal = cal if cal is not None else Calibration()
        self._tx = bytearray(7)
        self._rx = bytearray(7)
        mt = memoryview(self._tx)
        mr = memoryview(self._rx)
        # Preallocated views per width so the read path never allocates.
        self._txv = (None, mt[:4], mt[:5], mt[:6], mt[:7])
        self._rxv = (None, mr[:4], mr[:5], mr[:6], mr[:7])
        self._config = _HPFEN  # HPF on, COMM_LOCK cleared (locked)
        self.e_active = 0
        self.e_reactive = 0
        self.e_apparent = 0
        self.irq_status = 0
        self.overflow = 0
        self.resets_seen = 0
        self.vrms = self.irms_a = self.irms_b = self.watt = self.var = self.va = 0
        self.pf = self.period = self.angle = 0
        self._nl = -1
        cs.value(1)

    # -- raw access ---------------------------------------------------------------------

    def read(self, addr):
        """Read register ``addr``; returns int (sign-extended for signed registers)."""
        n = width(addr)
        tx = self._tx
        tx[0] = addr >> 8
        tx[1] = addr & 0xFF
        tx[2] = 0x80
        for i in range(3, 3 + n):
            tx[i] = 0
        rx = self._rx
        self._cs.value(0)
        self._spi.write_readinto(self._txv[n], self._rxv[n])
        self._cs.value(1)
        v = 0
        for i in range(3, 3 + n):
            v = (v << 8) | rx[i]
        if (addr - 0x100 if n == 4 else addr) in _SIGNED:
            bits = 8 * n
            if v & (1 << (bits - 1)):
                v -= 1 << bits
        return v

    def write(self, addr, value):
        """Write ``value`` (int, masked to the register width) to register ``addr``."""
        n = width(addr)
        tx = self._tx
        tx[0] = addr >> 8
        tx[1] = addr & 0xFF
        tx[2] = 0x00
        for i in range(n):
            tx[3 + n - 1 - i] = (value >> (8 * i)) & 0xFF
        self._cs.value(0)
        self._spi.write_readinto(self._txv[n], self._rxv[n])
        self._cs.value(1)

    # -- set-up -------------------------------------------------------------------------

    async def begin(self, sleep_ms, hard_reset=True):
        """Power-up sequence (DS p.18, p.50): optional RESET pulse (>= 10 us), wait for the
        RESET interrupt (IRQ low) up to 100 ms, check defaults, then :meth:`configure`.

        ``sleep_ms``: async sleep on the board clock. Raises ADE7953Error if the chip does not
        come out of reset with its default register values (dead bus, 1-bit shift from a
        wrong SPI mode: CONFIG 0x4002 instead of 0x8004, DS/EZ thread in the reference).
        """
        if hard_reset and self._reset is not None:
            self._reset.value(0)
            await sleep_ms(1)
            self._reset.value(1)
        waited = 0
        while waited < 100:
            if self._irq is not None and self._irq.value() == 0:
                break
            await sleep_ms(5)
            waited += 5
        self.check_defaults()
        self.read(RSTIRQSTATA)  # service the RESET interrupt, release IRQ
        self.configure()

    def check_defaults(self):
        """Read registers with known reset values; raise ADE7953Error naming what was read.

        Run straight after a reset, before :meth:`configure`.
        """
        cfg = self.read(CONFIG)
        lcyc = self.read(LCYCMODE)
        nl = self.read(AP_NOLOAD)
        if cfg == CONFIG_DEFAULT and lcyc == LCYCMODE_DEFAULT and nl == AP_NOLOAD_DEFAULT:
            return
        if cfg == 0 and lcyc == 0 and nl == 0:
            what = "all 0x00: no chip or MISO stuck low"
        elif cfg == 0xFFFF and lcyc == 0xFF and nl == 0xFFFFFF:
            what = "all 0xFF: no chip or MISO stuck high"
        elif cfg == CONFIG_DEFAULT >> 1:
            what = "1-bit shift: wrong SPI mode or clock"
        else:
            what = "unexpected defaults"
        raise ADE7953Error("ADE7953 %s (CONFIG=0x%04X LCYCMODE=0x%02X AP_NOLOAD=0x%06X)"
                           % (what, cfg, lcyc, nl))

    def configure(self):
        """Write the whole configuration (after every power-up or reset) and verify it."""
        c = self.cal
        self.write(UNLOCK_120, 0xAD)
        self.write(RESERVED_120, 0x0030)
        self.write(CONFIG, self._config)  # lock the SPI interface (DS p.51)
        self.write(LCYCMODE, LCYCMODE_DEFAULT)  # RSTREAD on, no line-cycle mode
        self.write(PGA_IA, c.pga_ia)
        nl = c.no_load_code()
        self.write(DISNOLOAD, 0x07)  # thresholds are written with no-load disabled (DS p.40)
        self.write(AP_NOLOAD, nl)
        self.write(VAR_NOLOAD, nl)
        self.write(VA_NOLOAD, nl)
        self.write(DISNOLOAD, 0x00)
        self.write(AWGAIN, c.awgain)
        self.write(AVARGAIN, c.avargain)
        self.write(AVAGAIN, c.avagain)
        self.write(AIGAIN, c.aigain)
        self.write(AVGAIN, c.avgain)
        self.write(BVGAIN, c.avgain)  # BVGAIN must equal AVGAIN (DS p.21, p.34)
        self.write(BIGAIN, c.bigain)
        self.write(PHCALA, _phcal_code(c.phcal_a))
        self.write(ACCMODE, 0)  # signed accumulation for active and reactive (DS p.27)
        self._nl = nl
        self.verify()

    def verify(self):
        """Read back key configuration; raise ADE7953Error if the chip lost it (a reset or a
        dead bus). Cheap enough to run every few seconds."""
        cfg = self.read(CONFIG)
        nl = self.read(AP_NOLOAD)
        if cfg != self._config or nl != self._nl:
            if cfg == CONFIG_DEFAULT:
                self.resets_seen += 1
                raise ADE7953Error("ADE7953 was reset (CONFIG back to default)")
            raise ADE7953Error("ADE7953 configuration lost (CONFIG=0x%04X AP_NOLOAD=0x%06X)"
                               % (cfg, nl))

    def max_read_interval_ms(self, imax_a=60, vmax_v=264.5):
        """Longest energy read interval (ms) before a 24-bit accumulator overflows at
        ``imax_a`` and ``vmax_v`` (see the module docstring)."""
        rate = imax_a * vmax_v / 3600 / self.cal.vah_per_lsb  # LSB/s at Smax
        return int(8388607 / rate * 1000)

    # -- the metering read path (allocation-free) ---------------------------------------

    def read_energy(self):
        """Read and reset the channel-A accumulators (DS p.25, RSTREAD = 1).

        Sets ``e_active``, ``e_reactive`` (signed LSB), ``e_apparent`` (LSB), ``irq_status``
        (IRQSTATA at the read, cleared by reading RSTIRQSTATA) and ``overflow`` (the AEOFA /
        VAREOFA / VAEOFA bits: an accumulator wrapped since the previous read, so that
        interval's values are not to be trusted).
        """
        self.e_active = self.read(AENERGYA)
        self.e_reactive = self.read(RENERGYA)
        self.e_apparent = self.read(APENERGYA)
        st = self.read(RSTIRQSTATA)
        self.irq_status = st
        self.overflow = st & _EOF_MASK
        if st & IRQ_RESET:
            self.resets_seen += 1
            raise ADE7953Error("ADE7953 reset interrupt: chip restarted")

    def read_instant(self):
        """Raw instantaneous codes into attributes: ``vrms``, ``irms_a``, ``irms_b``,
        ``watt``, ``var``, ``va``, ``pf`` (signed, 2^-15), ``period``, ``angle``."""
        self.vrms = self.read(VRMS)
        self.irms_a = self.read(IRMSA)
        self.irms_b = self.read(IRMSB)
        self.watt = self.read(AWATT)
        self.var = self.read(AVAR)
        self.va = self.read(AVA)
        self.pf = self.read(PFA)
        self.period = self.read(PERIOD)
        self.angle = self.read(ANGLE_A)

    def instant_values(self):
        """Instantaneous quantities in SI units (floats, for display only), from the last
        :meth:`read_instant`: dict with V (V), I (A), IN (A, channel B / neutral), P (W),
        Q (var), S (VA), PF (-1..1), f (Hz), angle (degrees at the measured frequency)."""
        c = self.cal
        f = PERIOD_CLOCK_HZ / (self.period + 1) if self.period else 0.0
        return {
            "V": self.vrms * c.v_per_lsb,
            "I": self.irms_a * c.a_per_lsb,
            "IN": self.irms_b * c.a_per_lsb_b,
            "P": self.watt * c.w_per_lsb,
            "Q": self.var * c.w_per_lsb,
            "S": self.va * c.w_per_lsb,
            "PF": self.pf / 32768,
            "f": f,
            "angle": self.angle * 4.47e-6 * f * 360,  # 4.47 us per LSB (DS p.39)
        }
