# ADE7953 single-phase energy metering IC: SPI driver.
# Facts: ADE7953 data sheet Rev. C (DS), pages cited inline; see docs/METROLOGY.md.
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

Trust in each read (:meth:`read_energy`, DS p.57 Table 11 and p.62 Table 16): every word of
the interval (AENERGYA, RENERGYA, APENERGYA, RSTIRQSTATA) is followed by a read of the chip's
own record of what it sent (LAST_RWDATA_24), so a bit corrupted on MISO shows as a mismatch;
then CONFIG and LCYCMODE are read back against the values written: a mis-clocked bus (every
word shifted one bit: 0x0004 reads 0x0002), MISO stuck at 0 or 1 (0x0000 / 0xFFFF) and a chip
that restarted (0x8004, its default) all differ, and LCYCMODE.RSTREAD must still be set (else
every read would count the whole total again). Ten SPI frames per interval (was four): at
1 MHz about 0.45 ms of bus time per second. A shifted or stuck bus repeats its error in the
echo, so the echo alone does not catch it; the readback alone does not catch a single flipped
bit: each check covers the other's blind spot.

Over-range (DS p.46-47 peak, overcurrent and overvoltage detection; IRQSTATA bits 13 OIA and
16 OV, Table 22): OILVL and OVLVL are written at 85 % of the nominal ADC waveform full scale
(about +/-6 500 000 LSB at 0.5 V peak, DS p.21; "varies part-to-part", so the threshold sits
below the spread): the current peak above 106 A (75 A rms for a sine) or the voltage peak above
425 V (300 V rms) sets OIA / OV, latched until the next RSTIRQSTATA read. Beyond full scale the
ADC clips, so the energies read are those of the clipped waveforms: bounded, of the right
sign, below the true energy (docs/METROLOGY.md).

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
# Underscore names are the ones no other module reads: const() makes no global of them (no
# RAM on a device); the others are read by the chip model and the tests.
_SAGCYC = const(0x000)
DISNOLOAD = const(0x001)
LCYCMODE = const(0x004)
_PGA_V = const(0x007)
_PGA_IA = const(0x008)
_PGA_IB = const(0x009)
_WRITE_PROTECT = const(0x040)
LAST_OP = const(0x0FD)
_UNLOCK_120 = const(0x0FE)
_LAST_RWDATA_8 = const(0x0FF)
LAST_ADD = const(0x1FE)
LAST_RWDATA_16 = const(0x1FF)
LAST_RWDATA_24 = const(0x2FF)
VERSION = const(0x702)
EX_REF = const(0x800)
ZXTOUT = const(0x100)
_LINECYC = const(0x101)
CONFIG = const(0x102)
CF1DEN = const(0x103)
CF2DEN = const(0x104)
CFMODE = const(0x107)
PHCALA = const(0x108)
_PHCALB = const(0x109)
PFA = const(0x10A)
_PFB = const(0x10B)
ANGLE_A = const(0x10C)
_ANGLE_B = const(0x10D)
PERIOD = const(0x10E)
_RESERVED_120 = const(0x120)
SAGLVL = const(0x200)
ACCMODE = const(0x201)
AP_NOLOAD = const(0x203)
VAR_NOLOAD = const(0x204)
_VA_NOLOAD = const(0x205)
AVA = const(0x210)
_BVA = const(0x211)
AWATT = const(0x212)
_BWATT = const(0x213)
AVAR = const(0x214)
_BVAR = const(0x215)
IRMSA = const(0x21A)
_IRMSB = const(0x21B)
VRMS = const(0x21C)
AENERGYA = const(0x21E)
_AENERGYB = const(0x21F)
RENERGYA = const(0x220)
_RENERGYB = const(0x221)
APENERGYA = const(0x222)
APENERGYB = const(0x223)
OVLVL = const(0x224)
OILVL = const(0x225)
VPEAK = const(0x226)
RSTVPEAK = const(0x227)
IAPEAK = const(0x228)
RSTIAPEAK = const(0x229)
IRQENA = const(0x22C)
IRQSTATA = const(0x22D)
RSTIRQSTATA = const(0x22E)
_AIGAIN = const(0x280)
_AVGAIN = const(0x281)
AWGAIN = const(0x282)
_AVARGAIN = const(0x283)
_AVAGAIN = const(0x284)
_BIGAIN = const(0x28C)
_BVGAIN = const(0x28D)
_BWGAIN = const(0x28E)
_BVARGAIN = const(0x28F)
_BVAGAIN = const(0x290)

# Register defaults used by the health check (DS Tables 14-15; pitfall 3 in the reference).
_CONFIG_DEFAULT = const(0x8004)
_LCYCMODE_DEFAULT = const(0x40)
_AP_NOLOAD_DEFAULT = const(0x00E419)
_ZXTOUT_DEFAULT = const(0xFFFF)

# Bits.
_COMM_LOCK = const(0x8000)  # CONFIG b15, 1 = interface not locked
_HPFEN = const(0x0004)  # CONFIG b2
_SWRST = const(0x0080)  # CONFIG b7
IRQ_AEOFA = const(1 << 3)
_IRQ_VAREOFA = const(1 << 4)
_IRQ_VAEOFA = const(1 << 5)
IRQ_OIA = const(1 << 13)  # current channel A peak above OILVL (DS p.47, Table 22)
IRQ_OV = const(1 << 16)  # voltage peak above OVLVL
_IRQ_RESET = const(1 << 20)
_EOF_MASK = const((1 << 3) | (1 << 4) | (1 << 5))
_OVER_MASK = const((1 << 13) | (1 << 16))

# Result of read_energy(): can this interval's counts be trusted as read?
READ_OK = const(0)
READ_ECHO = const(1)  # a word differs from the chip's LAST_RWDATA record: corrupted on MISO
READ_CONFIG = const(2)  # CONFIG is not what was written: mis-clocked / stuck bus, config lost
READ_RESET = const(3)  # RESET interrupt or CONFIG back to its default: the chip restarted

# Nominal full-scale codes (DS p.23, p.24, p.25).
_RMS_FULL_SCALE = const(9032007)  # IRMS/VRMS code at 0.5 V peak input
_POWER_FULL_SCALE = const(4862401)  # xWATT/xVAR/xVA code at full-scale V and I
ENERGY_RATE_FULL_SCALE = const(206900)  # energy LSB per second at full scale
_WAVE_FULL_SCALE = const(6500000)  # IA/IB/V waveform code at 0.5 V peak, nominal (DS p.21)
_PERIOD_CLOCK_HZ = const(223750)  # f = 223 750 / (PERIOD + 1) (DS p.36)
_PERIOD_CLOCK_MHZ = const(223750000)  # the same in mHz (< 2^30)
_ANGLE_FMAX_MHZ = const(65535)  # instant_into: angle pieces x f_mHz stay below 2^24
_GAIN_UNITY = const(0x400000)

# Registers read as signed two's complement (the rest unsigned). PHCALx is sign-magnitude.
_SIGNED = (AVA, _BVA, AWATT, _BWATT, AVAR, _BVAR, AENERGYA, _AENERGYB, RENERGYA, _RENERGYB,
           APENERGYA, APENERGYB, PFA, _PFB, ANGLE_A, _ANGLE_B)


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
        self.v_per_lsb = self.VFS_V / _RMS_FULL_SCALE
        self.a_per_lsb = self.IFS_A / _RMS_FULL_SCALE
        self.a_per_lsb_b = self.IFS_A / _RMS_FULL_SCALE
        self.w_per_lsb = pfs / _POWER_FULL_SCALE
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
        # OILVL / OVLVL: waveform peak code above which the chip flags over-range (OIA, OV),
        # 85 % of the nominal full scale (DS p.21, p.47); see the module docstring.
        self.over_range_code = _WAVE_FULL_SCALE * 85 // 100
        for k in kw:
            if not hasattr(self, k):
                raise ValueError("unknown calibration constant %s" % k)
            setattr(self, k, kw[k])

    def no_load_code(self):
        """X_NOLOAD for a threshold of ``chip_no_load_w`` W: 65 536 - Y/1.4 with
        Y = Pfs/threshold (DS p.40-41). Clamped to 0..65 535."""
        pfs = self.w_per_lsb * _POWER_FULL_SCALE
        y = pfs / self.chip_no_load_w
        x = int(65536 - y / 1.4)
        return 0 if x < 0 else (65535 if x > 65535 else x)


def _mulk(x, k1, k0, sh):
    # x * K / 2^sh truncated towards zero (as int() of the float), K = k1 * 2^17 + k0 < 2^34
    # (k1, k0 < 2^17), sh >= 29, |x| < 2^24, without a long int: |x| = xh * 2^12 + xl and
    # the four partial products (each < 2^29) summed from the lowest weight up with exact
    # nested floors (floor((floor(u / 2^a) + v) / 2^b) = floor((u / 2^a + v) / 2^b))
    neg = x < 0
    if neg:
        x = -x
    xh = x >> 12
    xl = x & 0xFFF
    acc = xh * k0 + ((xl * k0) >> 12)  # units of 2^12
    acc = (acc >> 5) + xl * k1  # 2^17
    acc = (acc >> 12) + xh * k1  # 2^29
    acc >>= sh - 29
    return -acc if neg else acc


def _k34(milli_per_lsb):
    # (k1, k0, sh): (k1 * 2^17 + k0) / 2^sh = milli_per_lsb to a relative 2^-33 (as exact
    # as a double's product for the LCD's truncation), 2^33 <= K < 2^34, sh >= 29
    sh = 29
    while milli_per_lsb * (1 << (sh + 1)) < 17179869184 and sh < 60:
        sh += 1
    k = int(milli_per_lsb * (1 << sh) + 0.5)
    if k >= 17179869184:
        sh -= 1
        k = int(milli_per_lsb * (1 << sh) + 0.5)
    if sh < 29 or k <= 0:
        raise ValueError("calibration out of range for the instantaneous values")
    return k >> 17, k & 0x1FFFF, sh


def _inst_scales(c):
    # (cal, V, I, IN, P/Q/S, angle x 256, angle as (k1, k0, sh)): once per calibration
    return (c, _k34(c.v_per_lsb * 1000), _k34(c.a_per_lsb * 1000),
            _k34(c.a_per_lsb_b * 1000), _k34(c.w_per_lsb * 1000),
            _k34(4.47e-6 * 360 * 256), _k34(4.47e-6 * 360))


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
        self.over_range = 0
        self.vrms = self.irms_a = self.irms_b = self.watt = self.var = self.va = 0
        self.pf = self.period = self.angle = 0
        self._nl = -1
        self._k = None  # integer scales of instant_into() for self.cal (_inst_scales)
        cs.value(1)

    # -- raw access ---------------------------------------------------------------------

    def _word(self, addr):
        # one read frame; the register's bits as sent, unsigned (allocation-free)
        # (unrolled: the metering read is 10 of these a second; width() inlined)
        n = 1 if (addr == VERSION or addr == EX_REF) else ((addr >> 8) & 0x3) + 1
        tx = self._tx
        tx[0] = addr >> 8
        tx[1] = addr & 0xFF
        tx[2] = 0x80
        tx[3] = tx[4] = tx[5] = tx[6] = 0
        cs = self._cs
        cs.value(0)
        self._spi.write_readinto(self._txv[n], self._rxv[n])
        cs.value(1)
        rx = self._rx
        if n == 3:
            return (rx[3] << 16) | (rx[4] << 8) | rx[5]
        if n == 2:
            return (rx[3] << 8) | rx[4]
        if n == 1:
            return rx[3]
        return (((((rx[3] << 8) | rx[4]) << 8) | rx[5]) << 8) | rx[6]

    def _w24(self, frame):
        # one 24-bit read frame: ``frame`` is its 6 bytes as sent (address, read command,
        # zeros: a constant of read_energy, no stores into _tx), the word unsigned
        # (allocation-free; the metering read is 8 of these a second)
        cs = self._cs
        cs.value(0)
        self._spi.write_readinto(frame, self._rxv[3])
        cs.value(1)
        rx = self._rx
        return (rx[3] << 16) | (rx[4] << 8) | rx[5]

    def read(self, addr):
        """Read register ``addr``; returns int (sign-extended for signed registers)."""
        v = self._word(addr)
        n = width(addr)
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
        """Power-up sequence (DS p.18, p.50): with ``hard_reset`` a RESET pulse (>= 10 us),
        or without a RESET pin a software reset (CONFIG.SWRST, DS p.62 Table 16), so that a
        re-initialisation after a fault starts from the chip's defaults; wait for the RESET
        interrupt (IRQ falling) up to 100 ms (the full 100 ms if the pin is low already: a
        stuck IRQ line must not cut the start-up short), check defaults, then
        :meth:`configure`.

        ``sleep_ms``: async sleep on the board clock. Raises ADE7953Error if the chip does not
        come out of reset with its default register values (dead bus, 1-bit shift from a
        wrong SPI mode: CONFIG 0x4002 instead of 0x8004, DS/EZ thread in the reference).
        """
        if hard_reset and self._reset is not None:
            self._reset.value(0)
            await sleep_ms(1)
            self._reset.value(1)
        elif hard_reset:
            self.write(CONFIG, _CONFIG_DEFAULT | _SWRST)  # the chip restarts at once
            await sleep_ms(1)
        # an IRQ pin already low here, with the chip just reset, is stuck: then wait 100 ms
        irq = self._irq
        trust = irq is not None and irq.value() == 1
        waited = 0
        while waited < 100:
            if trust and irq.value() == 0:
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
        if cfg == _CONFIG_DEFAULT and lcyc == _LCYCMODE_DEFAULT and nl == _AP_NOLOAD_DEFAULT:
            return
        if cfg == 0 and lcyc == 0 and nl == 0:
            what = "all 0x00: no chip or MISO stuck low"
        elif cfg == 0xFFFF and lcyc == 0xFF and nl == 0xFFFFFF:
            what = "all 0xFF: no chip or MISO stuck high"
        elif cfg == _CONFIG_DEFAULT >> 1:
            what = "1-bit shift: wrong SPI mode or clock"
        else:
            what = "unexpected defaults"
        raise ADE7953Error("ADE7953 %s (CONFIG=0x%04X LCYCMODE=0x%02X AP_NOLOAD=0x%06X)"
                           % (what, cfg, lcyc, nl))

    def configure(self):
        """Write the whole configuration (after every power-up or reset) and read every
        register back (ADE7953Error naming the first that differs)."""
        c = self.cal
        self.write(_UNLOCK_120, 0xAD)
        self.write(_RESERVED_120, 0x0030)
        self.write(CONFIG, self._config)  # lock the SPI interface (DS p.51)
        self.write(LCYCMODE, _LCYCMODE_DEFAULT)  # RSTREAD on, no line-cycle mode
        self.write(_PGA_IA, c.pga_ia)
        nl = c.no_load_code()
        self.write(DISNOLOAD, 0x07)  # thresholds are written with no-load disabled (DS p.40)
        self.write(AP_NOLOAD, nl)
        self.write(VAR_NOLOAD, nl)
        self.write(_VA_NOLOAD, nl)
        self.write(DISNOLOAD, 0x00)
        self.write(AWGAIN, c.awgain)
        self.write(_AVARGAIN, c.avargain)
        self.write(_AVAGAIN, c.avagain)
        self.write(_AIGAIN, c.aigain)
        self.write(_AVGAIN, c.avgain)
        self.write(_BVGAIN, c.avgain)  # BVGAIN must equal AVGAIN (DS p.21, p.34)
        self.write(_BIGAIN, c.bigain)
        self.write(PHCALA, _phcal_code(c.phcal_a))
        self.write(ACCMODE, 0)  # signed accumulation for active and reactive (DS p.27)
        self.write(OILVL, c.over_range_code)  # over-range flags OIA / OV (DS p.47)
        self.write(OVLVL, c.over_range_code)
        self._nl = nl
        self.verify()
        # every register that scales or gates the counts read back as written: a bit lost on
        # MOSI would otherwise bias every interval, unseen by the per-read checks
        for addr, want in ((LCYCMODE, _LCYCMODE_DEFAULT), (_PGA_IA, c.pga_ia),
                           (VAR_NOLOAD, nl), (_VA_NOLOAD, nl), (DISNOLOAD, 0),
                           (AWGAIN, c.awgain), (_AVARGAIN, c.avargain), (_AVAGAIN, c.avagain),
                           (_AIGAIN, c.aigain), (_AVGAIN, c.avgain), (_BVGAIN, c.avgain),
                           (_BIGAIN, c.bigain), (PHCALA, _phcal_code(c.phcal_a)),
                           (OILVL, c.over_range_code), (OVLVL, c.over_range_code)):
            got = self._word(addr)
            if got != want & ((1 << (8 * width(addr))) - 1):
                raise ADE7953Error("ADE7953 register 0x%03X reads 0x%X, written 0x%X"
                                   % (addr, got, want))
        if self._word(ACCMODE) & 0x3FF:  # (bits 10-21 are live sign / no-load flags)
            raise ADE7953Error("ADE7953 ACCMODE not signed accumulation")

    def verify(self):
        """Read back key configuration; raise ADE7953Error if the chip lost it (a reset or a
        dead bus). Cheap enough to run every few seconds."""
        cfg = self.read(CONFIG)
        nl = self.read(AP_NOLOAD)
        if cfg != self._config or nl != self._nl:
            if cfg == _CONFIG_DEFAULT:
                raise ADE7953Error("ADE7953 was reset (CONFIG back to default)")
            raise ADE7953Error("ADE7953 configuration lost (CONFIG=0x%04X AP_NOLOAD=0x%06X)"
                               % (cfg, nl))

    def max_read_interval_ms(self, imax_a=60, vmax_v=264.5):
        """Longest energy read interval (ms) before a 24-bit accumulator overflows at
        ``imax_a`` and ``vmax_v`` (see the module docstring)."""
        rate = imax_a * vmax_v / 3600 / self.cal.vah_per_lsb  # LSB/s at Smax
        return int(8388607 / rate * 1000)

    def count_limit_per_ms(self):
        """The most any of AENERGYA, RENERGYA, APENERGYA can count per ms (LSB/ms, int): the
        physical limit of the chip, not of the meter's rating.

        The ADC clips at full scale, so no input can make the chip count faster than with
        both inputs clipped to square waves at full scale: mean(v*i) <= Vpk*Ipk, twice the
        full-scale sine product, i.e. 2 x 206 900 LSB/s (DS p.25-26, p.31) times the largest
        of xWGAIN/xVARGAIN/xVAGAIN / 0x400000 (DS p.34), plus 2 % for the CLKIN tolerance
        (3.54..3.62 MHz, DS p.5) that scales the accumulation rate. Rounded up. For the
        reference front end at unity gains: 423 LSB/ms (twice 31.15 kVA)."""
        c = self.cal
        g = max(c.awgain, c.avargain, c.avagain)
        den = _GAIN_UNITY * 100 * 1000
        return (2 * ENERGY_RATE_FULL_SCALE * g * 102 + den - 1) // den

    # -- the metering read path (allocation-free) ---------------------------------------

    def read_energy(self):
        """Read and reset the channel-A accumulators (DS p.25, RSTREAD = 1) and check that
        the words can be trusted (module docstring). Allocation-free; never raises.

        Sets ``e_active``, ``e_reactive`` (signed LSB), ``e_apparent`` (LSB), ``irq_status``
        (IRQSTATA at the read, cleared by reading RSTIRQSTATA), ``overflow`` (the AEOFA /
        VAREOFA / VAEOFA bits: an accumulator wrapped since the previous read) and
        ``over_range`` (the OIA / OV bits). Returns READ_OK (0) when every word matched the
        chip's echo and CONFIG and LCYCMODE read back as written (LCYCMODE.RSTREAD is what
        makes each read one interval: without it every read would repeat the total); else
        READ_ECHO, READ_CONFIG or READ_RESET, and the counts must not be used (they are
        still set, for the log). Ten SPI frames."""
        # (no more locals: a frame above 11 words is heap-allocated at every call)
        # (the 24-bit frames as constants: AENERGYA 0x21E, LAST_RWDATA_24 0x2FF, RENERGYA
        # 0x220, APENERGYA 0x222, RSTIRQSTATA 0x22E, each + read command 0x80 + 3 zeros)
        a = self._w24(b"\x02\x1e\x80\x00\x00\x00")
        bad = self._w24(b"\x02\xff\x80\x00\x00\x00") != a
        r = self._w24(b"\x02\x20\x80\x00\x00\x00")
        if self._w24(b"\x02\xff\x80\x00\x00\x00") != r:
            bad = True
        s = self._w24(b"\x02\x22\x80\x00\x00\x00")
        if self._w24(b"\x02\xff\x80\x00\x00\x00") != s:
            bad = True
        st = self._w24(b"\x02\x2e\x80\x00\x00\x00")
        if self._w24(b"\x02\xff\x80\x00\x00\x00") != st:
            bad = True
        cfg = self._word(CONFIG)
        lcyc = self._word(LCYCMODE)
        self.e_active = a - 0x1000000 if a & 0x800000 else a
        self.e_reactive = r - 0x1000000 if r & 0x800000 else r
        self.e_apparent = s - 0x1000000 if s & 0x800000 else s
        self.irq_status = st
        self.overflow = st & _EOF_MASK
        self.over_range = st & _OVER_MASK
        if cfg == _CONFIG_DEFAULT:
            return READ_RESET
        if bad:
            return READ_ECHO
        if cfg != self._config or lcyc != _LCYCMODE_DEFAULT:  # (before the RESET bit: a bus
            return READ_CONFIG  # stuck at 1 sets it too)
        if st & _IRQ_RESET:
            return READ_RESET
        return READ_OK

    def read_instant(self):
        """Raw instantaneous codes into attributes: ``vrms``, ``irms_a``, ``irms_b``,
        ``watt``, ``var``, ``va``, ``pf`` (signed, 2^-15), ``period``, ``angle``."""
        self.vrms = self.read(VRMS)
        self.irms_a = self.read(IRMSA)
        self.irms_b = self.read(_IRMSB)
        self.watt = self.read(AWATT)
        self.var = self.read(AVAR)
        self.va = self.read(AVA)
        self.pf = self.read(PFA)
        self.period = self.read(PERIOD)
        self.angle = self.read(ANGLE_A)

    def instant_into(self, d):
        """The quantities of :meth:`instant_values` as ints in thousandths, written into the
        dict ``d`` under the same keys (existing keys: no allocation): V mV, I and IN mA,
        P mW, Q mvar, S mVA, PF in 1/1000 (-1000..1000), f mHz, angle in 1/1000 degree
        (each truncated towards zero, as ``int(1000 * x)`` of :meth:`instant_values`; the
        scales to a relative 2^-33, f to 1 mHz: the LCD's readers). Every
        intermediate stays within 31 bits, so on a 32-bit port this allocates nothing (the
        display and the tamper check read them once a second); only a period register
        below 3 414 (f above 65.5 Hz, outside the 45..65 Hz the chip is specified for,
        DS p.5) takes a float path for the angle."""
        k = self._k
        if k is None or k[0] is not self.cal:
            k = self._k = _inst_scales(self.cal)
        v = k[1]
        d["V"] = _mulk(self.vrms, v[0], v[1], v[2])
        v = k[2]
        d["I"] = _mulk(self.irms_a, v[0], v[1], v[2])
        v = k[3]
        d["IN"] = _mulk(self.irms_b, v[0], v[1], v[2])
        v = k[4]
        d["P"] = _mulk(self.watt, v[0], v[1], v[2])
        d["Q"] = _mulk(self.var, v[0], v[1], v[2])
        d["S"] = _mulk(self.va, v[0], v[1], v[2])
        pf = self.pf
        d["PF"] = (pf * 1000) >> 15 if pf >= 0 else -((-pf * 1000) >> 15)
        per = self.period
        fm = _PERIOD_CLOCK_MHZ // (per + 1) if per else 0
        d["f"] = fm
        a = self.angle
        if fm <= _ANGLE_FMAX_MHZ:
            # 4.47 us per LSB (DS p.39): mdeg = angle * f_mHz * 4.47e-6 * 360; |angle| <
            # 2^15 in two pieces of 7 and 8 bits, each times f_mHz < 2^16 below 2^24
            neg = a < 0
            if neg:
                a = -a
            u = k[5]
            w = k[6]
            r = _mulk((a >> 8) * fm, u[0], u[1], u[2]) + _mulk((a & 0xFF) * fm, w[0], w[1],
                                                               w[2])
            d["angle"] = -r if neg else r
        else:
            d["angle"] = int(a * 4.47e-6 * fm * 360)

    def instant_values(self):
        """Instantaneous quantities in SI units (floats, for display only), from the last
        :meth:`read_instant`: dict with V (V), I (A), IN (A, channel B / neutral), P (W),
        Q (var), S (VA), PF (-1..1), f (Hz), angle (degrees at the measured frequency)."""
        c = self.cal
        f = _PERIOD_CLOCK_HZ / (self.period + 1) if self.period else 0.0
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
