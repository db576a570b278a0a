"""Driver for the Holtek HT1621 RAM-mapping 32x4 segment-LCD controller (meter glass).

Datasheet facts used (Holtek HT1621, "RAM Mapping 32x4 LCD Controller for I/O MCU"; command
summary and timing diagrams, Rev. 1.30 / 2.90):

- 3-wire serial interface: CS (active low), WR (write clock), DATA. DATA is latched on the
  rising edge of WR. Taking CS high ends an operation and resets the serial interface; a new
  mode ID must follow the next CS low.
- Command mode: ID ``100`` then a 9-bit command C8..C0, MSB first (C0 is "don't care").
- Write mode: ID ``101``, 6-bit RAM address A5..A0 MSB first, then 4-bit data sent D0 first
  (D0 D1 D2 D3). More nibbles may follow while CS stays low: the address auto-increments
  (successive address writing).
- Display RAM: 32 addresses (SEG0..SEG31) x 4 bits; data bit Dk drives COMk.
- Commands used (C8..C1, C0 = 0): SYS DIS 0000-0000, SYS EN 0000-0001, LCD OFF 0000-0010,
  LCD ON 0000-0011, TIMER DIS 0000-0100, WDT DIS 0000-0101, TONE OFF 0000-1000,
  RC 256K 0001-10XX, BIAS 1/3 with 4 commons 0010-10X1, IRQ DIS 100X-0XXX.
- The datasheet recommends initialising the chip after power-on, because its power-on reset
  may fail; :meth:`HT1621.init` therefore sends the whole configuration.
- The WR clock has a minimum pulse width (A.C. characteristics, a few us, longer at 3 V than
  at 5 V); bit-banged MicroPython is normally slower than that, ``delay_us`` adds margin on
  fast ports.

Segment map (``segmap``): a bytes-like of 128 entries, one per *logical* segment of a
:class:`lcd.Frame`, each the RAM bit it drives: ``address * 4 + com`` (0..127), or 0xFF for a
segment the glass does not have. Logical segment order:

- 0..63: digit cell d (0 = leftmost) segment s (0..7 = a, b, c, d, e, f, g, dp): ``d * 8 + s``,
- 64..103: identifier cell k (0..4, left to right) segment s: ``64 + k * 8 + s``
  (the identifier text is drawn with :func:`lcd.ident_cells` into 5 small 7-segment cells),
- 104..127: annunciator bit j of ``Frame.ann`` (``lcd.ANN_*``): ``104 + j``.

The default map (``DEFAULT_SEGMAP``) is for a generic 8-digit meter glass wired in that order:
digit d on SEG 2d (COM0..3 = a, b, c, d) and SEG 2d+1 (COM0..3 = e, f, g, dp); identifier cell
k on SEG 16+2k / 17+2k the same way; annunciator j on SEG 26 + j // 4, COM j % 4 (SEG 26..31).
A real glass has its own pinout: build its map with :func:`build_segmap` from the glass
drawing's (SEG, COM) table.
"""

from micropython import const

from lcd import DIGITS, ident_cells

CMD_SYS_DIS = const(0x00)
CMD_SYS_EN = const(0x01)
_CMD_LCD_OFF = const(0x02)
CMD_LCD_ON = const(0x03)
_CMD_TIMER_DIS = const(0x04)
_CMD_WDT_DIS = const(0x05)
_CMD_TONE_OFF = const(0x08)
CMD_XTAL_32K = const(0x14)
CMD_RC_256K = const(0x18)
CMD_BIAS_13_4COM = const(0x29)
_CMD_IRQ_DIS = const(0x80)

_RAM_SIZE = const(32)  # addresses (SEG0..SEG31), 4 bits each
SEGMAP_SIZE = const(128)
_IDENT_BASE = const(64)
_IDENT_CELLS = const(5)
_ANN_BASE = const(104)
_ANN_BITS = const(24)
NC = const(0xFF)  # segment not connected

DEFAULT_SEGMAP = bytes(range(SEGMAP_SIZE))


def build_segmap(entries):
    """Segment map from a glass table.

    ``entries``: iterable of up to 128 items in logical-segment order (see module doc), each
    ``(seg, com)`` with seg 0..31 and com 0..3, or None for a segment the glass lacks.
    Returns bytes(128). Raises ValueError for an out-of-range or doubly used (seg, com).
    """
    out = bytearray(SEGMAP_SIZE)
    for i in range(SEGMAP_SIZE):
        out[i] = NC
    used = bytearray(SEGMAP_SIZE)
    i = 0
    for e in entries:
        if i >= SEGMAP_SIZE:
            raise ValueError("ht1621: more than 128 segment entries")
        if e is not None:
            seg, com = e
            if not (0 <= seg < _RAM_SIZE and 0 <= com < 4):
                raise ValueError("ht1621: bad (seg, com) %r at %d" % (e, i))
            b = seg * 4 + com
            if used[b]:
                raise ValueError("ht1621: (seg, com) %r used twice" % (e,))
            used[b] = 1
            out[i] = b
        i += 1
    return bytes(out)


def _fill(buf, v):
    i = 0
    while i < _RAM_SIZE:
        buf[i] = v
        i += 1


def _first_diff(ram, shadow):
    # the first address whose nibble differs from the shadow (_RAM_SIZE: none)
    lo = 0
    while lo < _RAM_SIZE and ram[lo] == shadow[lo]:
        lo += 1
    return lo


def _end_diff(ram, shadow):
    # one past the last address that differs (some address differs)
    hi = _RAM_SIZE
    while ram[hi - 1] == shadow[hi - 1]:
        hi -= 1
    return hi


class HT1621:
    """HT1621 on three Pin-like objects (``value(v)``), configured as outputs by the board.

    ``HT1621(cs, wr, data, segmap=None, delay_us=0, osc=CMD_RC_256K)``: ``segmap`` as in the
    module doc (default ``DEFAULT_SEGMAP``; ValueError if not 128 entries); ``osc`` the clock
    source command (``CMD_RC_256K`` internal RC, ``CMD_XTAL_32K`` crystal). Lines idle high.
    """

    def __init__(self, cs, wr, data, segmap=None, delay_us=0, osc=CMD_RC_256K):
        self._cs = cs
        self._wr = wr
        self._data = data
        m = DEFAULT_SEGMAP if segmap is None else segmap
        if len(m) != SEGMAP_SIZE:
            raise ValueError("ht1621: segmap needs %d entries" % SEGMAP_SIZE)
        self._map = m
        self._delay = delay_us
        self._osc = osc
        self._ram = bytearray(_RAM_SIZE)  # image being built, low nibble per address
        self._shadow = bytearray(_RAM_SIZE)  # what the chip holds
        self._valid = False  # shadow unknown until the first full write
        self._icells = bytearray(_IDENT_CELLS)
        self._ident = None
        self.writes = 0  # write transactions sent (for tests and statistics)
        cs.value(1)
        wr.value(1)
        data.value(1)

    # -- bus -----------------------------------------------------------------------------

    def _pause(self):
        if self._delay:
            import time

            if hasattr(time, "sleep_us"):
                time.sleep_us(self._delay)
            else:
                time.sleep(self._delay / 1000000)

    def _bits(self, value, n):
        # n bits of value, MSB first, each latched on the WR rising edge.
        wr = self._wr
        data = self._data
        while n:
            n -= 1
            wr.value(0)
            data.value((value >> n) & 1)
            self._pause()
            wr.value(1)
            self._pause()

    def _nibble(self, v):
        # 4 data bits D0 first (datasheet: 101 A5..A0 D0 D1 D2 D3).
        wr = self._wr
        data = self._data
        for k in range(4):
            wr.value(0)
            data.value((v >> k) & 1)
            self._pause()
            wr.value(1)
            self._pause()

    def command(self, cmd):
        """Send one command (``CMD_*``: C8..C1 as 8 bits, C0 sent as 0) in its own CS frame:
        ``100`` + 9 bits."""
        self._cs.value(0)
        self._bits(0b100, 3)
        self._bits(cmd << 1, 9)
        self._cs.value(1)

    def write(self, addr, nibbles):
        """Write RAM from ``addr`` (0..31) on: ``101`` + 6-bit address + 4 bits per nibble
        (low 4 bits of each item of ``nibbles``), auto-incrementing. ValueError past SEG31."""
        if addr < 0 or addr + len(nibbles) > _RAM_SIZE:
            raise ValueError("ht1621: RAM write outside 0..31")
        self._cs.value(0)
        self._bits(0b101, 3)
        self._bits(addr, 6)
        for v in nibbles:
            self._nibble(v)
        self._cs.value(1)
        self.writes += 1

    # -- device --------------------------------------------------------------------------

    def init(self):
        """Configure and switch on: BIAS 1/3 4 COM, clock source, SYS EN, LCD ON, timer/WDT/
        tone/IRQ off; then clear the RAM."""
        for c in (CMD_BIAS_13_4COM, self._osc, CMD_SYS_EN, CMD_LCD_ON, _CMD_TIMER_DIS,
                  _CMD_WDT_DIS, _CMD_TONE_OFF, _CMD_IRQ_DIS):
            self.command(c)
        self.clear()

    def clear(self):
        """Blank the whole glass."""
        ram = self._ram
        for i in range(_RAM_SIZE):
            ram[i] = 0
        self.write(0, ram)
        self._store(0, _RAM_SIZE)

    def off(self):
        """LCD OFF then SYS DIS (power-down mode; RAM content is kept). ``init()`` resumes."""
        self.command(_CMD_LCD_OFF)
        self.command(CMD_SYS_DIS)

    def _store(self, lo, hi):
        s = self._shadow
        r = self._ram
        for i in range(lo, hi):
            s[i] = r[i]
        self._valid = True

    # (small frames: MicroPython heap-allocates, at every call, the frame of a function
    # whose arguments, locals and stack pass 11 machine words, py/objfun.c
    # VM_MAX_STATE_ON_STACK; a for loop takes 4 of them: while loops here)
    def image(self, frame):
        """Build the RAM image of ``frame`` (an lcd.Frame) with the segment map; returns the
        internal bytearray(32) (one nibble per address; do not keep it)."""
        ram = self._ram
        if frame.all_on:
            _fill(ram, 0x0F)
            return ram
        _fill(ram, 0)
        self._cells(frame.cells)
        if frame.ident is not self._ident:
            ident_cells(frame.ident, self._icells)
            self._ident = frame.ident
        self._idents()
        if frame.ann:
            self._set_bits(frame.ann, _ANN_BASE, _ANN_BITS)
        return ram

    def _cells(self, cells):
        d = 0
        while d < DIGITS:
            if cells[d]:
                self._set_bits(cells[d], d * 8, 8)
            d += 1

    def _idents(self):
        ic = self._icells
        k = 0
        while k < _IDENT_CELLS:
            if ic[k]:
                self._set_bits(ic[k], _IDENT_BASE + k * 8, 8)
            k += 1

    def _set_bits(self, bits, base, n):
        s = 0
        while s < n:
            if bits & (1 << s):
                self._set_bit(base + s)
            s += 1

    def _set_bit(self, i):
        b = self._map[i]
        if b != NC:
            self._ram[b >> 2] |= 1 << (b & 3)

    def show(self, frame, force=False):
        """Show an lcd.Frame: builds the RAM image and writes the changed address range in one
        successive-address write (everything on the first call or with ``force``, e.g. a
        periodic refresh against disturbed RAM). Returns the number of addresses written."""
        ram = self.image(frame)
        if force or not self._valid:
            lo = 0
            hi = _RAM_SIZE
        else:
            lo = _first_diff(ram, self._shadow)
            if lo == _RAM_SIZE:
                return 0
            hi = _end_diff(ram, self._shadow)
        self._write(lo, hi)
        self.writes += 1
        self._store(lo, hi)
        return hi - lo

    def _write(self, lo, hi):
        # RAM addresses [lo, hi) of the image, one successive-address write
        self._cs.value(0)
        self._bits(0b101, 3)
        self._bits(lo, 6)
        i = lo
        while i < hi:
            self._nibble(self._ram[i])
            i += 1
        self._cs.value(1)
