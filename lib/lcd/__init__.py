"""Meter LCD model: 7-segment font, frames, value formatting and the scrolling display logic.

No board knowledge: a device (``lib/lcd/ht1621.py`` on hardware, ``boards/sim/lcd_term.py`` on the
virtual board) takes a :class:`Frame` in ``show(frame)`` and maps it onto its glass.

The glass modelled here is the usual utility-meter layout:

- 8 main 7-segment digit cells, each with a decimal point. A cell is one byte,
  bit 0..6 = segments a..g, bit 7 = decimal point (``SEG_A`` .. ``SEG_DP``)::

       a
     f   b
       g
     e   c
       d   dp

- a small identifier field above the digits (an OBIS code such as ``"1.8.0"`` or a 2-letter
  prefix as used on Landis+Gyr Focus meters: ``"DE"``, ``"RX"``, ``"NT"``), max 6 characters,
- annunciators (units, energy-direction arrows, tariff T1..T6, relay, alarm, DST ...), one bit each
  in ``Frame.ann`` (``ANN_*`` constants).

Values are integers in thousandths of the displayed unit (Wh for a register shown in kWh, mV for
a voltage shown in V); the display does no unit conversion, it only places the decimal point.
Formatting truncates towards zero, so a billing register is never rounded up (it must not show
energy that has not been measured yet).

Display practice (utility meters; the meter's own specification is docs/DISPLAY.md): an
auto-scroll list with a hold time per item, an alternate list stepped by a button, a test-mode
list with higher resolution, a segment test ("8.8.8.8.8.8.8.8." with every annunciator on), and
the firmware version (Measurement Canada PS-E-17 wants version and hash displayable; OBIS
1-0:0.2.0 is the active firmware identifier).
"""

from micropython import const

from ticks import ticks_diff as _ticks_diff

DIGITS = const(8)  # main digit cells
IDENT_MAX = const(6)  # identifier characters (dots count)

# Segment bits of one cell.
SEG_A = const(0x01)
SEG_B = const(0x02)
SEG_C = const(0x04)
SEG_D = const(0x08)
SEG_E = const(0x10)
SEG_F = const(0x20)
SEG_G = const(0x40)
SEG_DP = const(0x80)

# Annunciators, one bit each in Frame.ann. The bit order is also the order of the names in
# frame_text() and of the annunciator segments in the HT1621 default map.
ANN_KWH = const(1 << 0)
ANN_KVARH = const(1 << 1)
ANN_KVAH = const(1 << 2)
ANN_V = const(1 << 3)
ANN_A = const(1 << 4)
ANN_HZ = const(1 << 5)
ANN_W = const(1 << 6)
ANN_VAR = const(1 << 7)
ANN_IMPORT = const(1 << 8)  # arrow: energy flowing from the grid to the customer (A+)
ANN_EXPORT = const(1 << 9)  # arrow: energy flowing to the grid (A-)
ANN_T1 = const(1 << 10)
ANN_T2 = const(1 << 11)
ANN_T3 = const(1 << 12)
ANN_T4 = const(1 << 13)
ANN_T5 = const(1 << 14)
ANN_T6 = const(1 << 15)
ANN_RELAY = const(1 << 16)  # relay OPEN (supply disconnected)
ANN_ALARM = const(1 << 17)
ANN_BATTERY = const(1 << 18)  # RTC backup battery low
ANN_TEST = const(1 << 19)  # test mode active
ANN_ALT = const(1 << 20)  # alternate (manual) list shown
ANN_COMM = const(1 << 21)  # communication in progress
ANN_DST = const(1 << 22)  # daylight saving (summer) time in force
ANN_COUNT = const(23)
ANN_ALL = const((1 << 23) - 1)

ANN_NAMES = (
    "kWh", "kvarh", "kVAh", "V", "A", "Hz", "W", "var", "IMP", "EXP",
    "T1", "T2", "T3", "T4", "T5", "T6", "RELAY", "ALARM", "BAT", "TEST", "ALT", "COMM",
    "DST",
)

# Display lists.
LIST_AUTO = const(0)  # auto-scroll list (billing registers)
LIST_ALT = const(1)  # alternate list, stepped by the button, returns to auto after return_ms
LIST_TEST = const(2)  # test-mode list (high resolution), auto-scrolls

# 7-segment font. Digits come first so that frame_text() reads ambiguous glyphs as digits
# ('O' shows as 0, 'S' as 5).
CHARS = "0123456789 -_=AbCcdEFGHhIJLnoOPrStUuy"
_SEGS = (
    b"\x3f\x06\x5b\x4f\x66\x6d\x7d\x07\x7f\x6f"  # 0-9
    b"\x00\x40\x08\x48"  # space - _ =
    b"\x77\x7c\x39\x58\x5e\x79\x71\x3d\x76\x74"  # A b C c d E F G H h
    b"\x30\x1e\x38\x54\x5c\x3f\x73\x50\x6d\x78"  # I J L n o O P r S t
    b"\x3e\x1c\x6e"  # U u y
)
_MINUS = const(0x40)
_SCALE = (1000, 100, 10, 1)  # divisor of a thousandths value for 0..3 decimals


def glyph(ch):
    """Segment byte (bits a..g, no point) of one character.

    ``ch``: a 1-character str from ``CHARS`` (digits, space, ``- _ =`` and the letters
    ``A b C c d E F G H h I J L n o O P r S t U u y``). Case matters: ``'b'`` exists, ``'B'``
    does not (it would read as 8). Raises ValueError naming the character otherwise.
    """
    i = CHARS.find(ch) if len(ch) == 1 else -1
    if i < 0:
        raise ValueError("lcd: no 7-segment glyph for %r" % ch)
    return _SEGS[i]


def char_of(seg):
    """Inverse of :func:`glyph` for display text: the character whose glyph is ``seg & 0x7F``
    (digits preferred), ``' '`` for a blank cell, ``'?'`` for a pattern not in the font."""
    seg &= 0x7F
    for i in range(len(_SEGS)):
        if _SEGS[i] == seg:
            return CHARS[i]
    return "?"


def ident_cells(text, out):
    """Render an identifier into small 7-segment cells (for devices whose identifier field is
    7-segment, like the HT1621 default glass).

    ``out``: bytearray, one byte per cell, filled left-aligned; ``'.'`` sets the point of the
    previous cell. Characters without an exact glyph try the other case (``'R'`` -> ``r``,
    ``'N'`` -> ``n``, ``'T'`` -> ``t``, ``'D'`` -> ``d``); ones without any (``'X'``, ``'M'``)
    leave the cell blank. Extra characters are dropped. Returns the number of cells used.
    Never raises for text: the display path must not fail on an identifier.
    """
    n = len(out)
    for i in range(n):
        out[i] = 0
    k = 0
    for ch in text:
        if ch == ".":
            if k > 0 and not out[k - 1] & SEG_DP:
                out[k - 1] |= SEG_DP
                continue
            if k < n:
                out[k] = SEG_DP
                k += 1
            continue
        if k >= n:
            break
        i = CHARS.find(ch)
        if i < 0:
            i = CHARS.find(ch.lower())
        if i < 0:
            i = CHARS.find(ch.upper())
        out[k] = _SEGS[i] if i >= 0 else 0
        k += 1
    return k


class Frame:
    """One screenful: what a device's ``show(frame)`` draws.

    - ``cells``: bytearray(8), segment byte per digit cell, index 0 = leftmost, decimal point in
      bit 7 (``SEG_DP``).
    - ``ann``: annunciator bit-mask (``ANN_*``), int 0..``ANN_ALL``.
    - ``ident``: identifier text, str of at most ``IDENT_MAX`` (6) characters, "" for none.
    - ``all_on``: True for the segment test: a device lights every segment of its glass,
      including ones the model does not describe (e.g. the identifier field).
    """

    def __init__(self):
        self.cells = bytearray(DIGITS)
        self.ann = 0
        self.ident = ""
        self.all_on = False

    def clear(self):
        """Blank everything (cells, annunciators, identifier, all_on)."""
        c = self.cells
        for i in range(DIGITS):
            c[i] = 0
        self.ann = 0
        self.ident = ""
        self.all_on = False

    def set_ident(self, text):
        """Set the identifier; raises ValueError if ``text`` is longer than 6 characters."""
        if len(text) > IDENT_MAX:
            raise ValueError("lcd: identifier %r longer than %d characters" % (text, IDENT_MAX))
        self.ident = text

    def copy_from(self, other):
        """Copy another frame into this one (no allocation)."""
        c = self.cells
        o = other.cells
        for i in range(DIGITS):
            c[i] = o[i]
        self.ann = other.ann
        self.ident = other.ident
        self.all_on = other.all_on

    def same(self, other):
        """True if ``other`` shows exactly the same content."""
        return (self.ann == other.ann and self.all_on == other.all_on
                and self.ident == other.ident and self.cells == other.cells)


_LZ = const(0x10)  # _format's mode: digits (1..8) | leading zeros | negative
_NEG = const(0x20)


def format_value(frame, value_milli, decimals, digits=DIGITS, leading_zeros=False):
    """Write an integer given in thousandths into the rightmost ``digits`` cells of ``frame``.

    ``value_milli``: int, thousandths of the displayed unit (12345 with decimals=3 -> "12.345",
    with decimals=1 -> "12.3"). ``decimals``: 0..3 digits after the point; the value is truncated
    towards zero (never rounded up). Negative values get a '-' cell left of the first digit (or
    in the leftmost cell of the field with ``leading_zeros``). At least one digit stands before
    the point ("0.5"). Cells left of the field are not touched; the identifier and annunciators
    are not touched.

    Returns True; if the value does not fit the field returns False and fills the field with
    dashes ("--------"), no points. Raises ValueError for decimals outside 0..3 or digits outside
    1..8. Allocation-free for small ints (|value| < 2**30 on 32-bit ports).
    """
    if decimals < 0 or decimals > 3:
        raise ValueError("lcd: decimals must be 0..3")
    if digits < 1 or digits > DIGITS:
        raise ValueError("lcd: digits must be 1..8")
    # (the options packed in ``digits`` and no other local: this frame and _format's stay
    # within 11 machine words, else MicroPython heap-allocates them at every call, py/objfun.c
    # VM_MAX_STATE_ON_STACK; 4 refreshes a second)
    if leading_zeros:
        digits |= _LZ
    if value_milli < 0:
        return _format(frame, -value_milli // _SCALE[decimals], decimals, digits | _NEG)
    return _format(frame, value_milli // _SCALE[decimals], decimals, digits)


def format_units(frame, value, digits=DIGITS, leading_zeros=False):
    """:func:`format_value` of a whole number of the displayed unit (not thousandths), no
    decimals: for a value whose thousandths would pass 2**30 (a long int on a 32-bit port),
    e.g. the cumulative maximum demand in W. Allocation-free for small ints."""
    if digits < 1 or digits > DIGITS:
        raise ValueError("lcd: digits must be 1..8")
    if leading_zeros:
        digits |= _LZ
    if value < 0:
        return _format(frame, -value, 0, digits | _NEG)
    return _format(frame, value, 0, digits)


def _format(frame, v, decimals, mode):
    # v >= 0: the digits to show, the last ``decimals`` of them after the point
    if v == 0:
        mode &= ~_NEG  # -0.0004 shown with 3 decimals is 0.000, not -0.000
    n = _width(v, decimals)
    if mode & _NEG:
        n += 1  # the sign's cell
    if n > mode & 0xF:
        _dashes(frame.cells, DIGITS - (mode & 0xF))
        return False
    if mode & _LZ:
        n = mode & 0xF
    if mode & _NEG:
        n -= 1  # the digits: the field less the sign
    n = _digits(frame.cells, v, decimals, n)  # (now the cell left of them)
    _pad(frame.cells, n, mode)
    return True


def _width(v, decimals):
    # digits shown for v >= 0: at least one before the point
    n = 1
    v //= 10
    while v:
        n += 1
        v //= 10
    return n if n > decimals else decimals + 1


def _dashes(cells, first):
    while first < DIGITS:
        cells[first] = _MINUS
        first += 1


def _digits(cells, v, decimals, count):
    # the ``count`` last digits of v right-aligned, the point after the units digit; returns
    # the cell left of them
    i = DIGITS - 1
    while count:
        cells[i] = _SEGS[v % 10] | (SEG_DP if decimals and i == DIGITS - 1 - decimals else 0)
        v //= 10
        i -= 1
        count -= 1
    return i


def _pad(cells, i, mode):
    # the sign left of the digits, the rest of the field blank
    if mode & _NEG:
        cells[i] = _MINUS
        i -= 1
    mode = DIGITS - (mode & 0xF)  # (the field's first cell)
    while i >= mode:
        cells[i] = 0
        i -= 1


def format_text(frame, text, right=False):
    """Write a word into the 8 digit cells (e.g. "ALt", "tESt", "Err", "1.2.3").

    Each character takes one cell; ``'.'`` or ``','`` lights the point of the cell before it
    (a leading or doubled point takes a blank cell of its own). Left-aligned unless ``right``.
    All 8 cells are rewritten; identifier and annunciators are not touched. Raises ValueError
    for a character without a glyph (see :func:`glyph`) or text needing more than 8 cells.
    """
    n = 0
    dot_ok = False
    for ch in text:
        if ch == "." or ch == ",":
            if dot_ok:
                dot_ok = False
                continue
            n += 1
        else:
            glyph(ch)
            n += 1
            dot_ok = True
    if n > DIGITS:
        raise ValueError("lcd: text %r needs %d cells, the display has %d" % (text, n, DIGITS))
    cells = frame.cells
    for i in range(DIGITS):
        cells[i] = 0
    k = DIGITS - n if right else 0
    dot_ok = False
    for ch in text:
        if ch == "." or ch == ",":
            if dot_ok:
                cells[k - 1] |= SEG_DP
                dot_ok = False
            else:
                cells[k] = SEG_DP
                k += 1
        else:
            cells[k] = glyph(ch)
            k += 1
            dot_ok = True


def render_segment_test(frame):
    """Segment test: "8.8.8.8.8.8.8.8.", every annunciator, identifier "8.8.8.", all_on."""
    c = frame.cells
    for i in range(DIGITS):
        c[i] = 0xFF
    frame.ann = ANN_ALL
    frame.ident = "8.8.8."
    frame.all_on = True


def ann_text(mask):
    """Names of the annunciators set in ``mask``, space-separated, in bit order ("kWh IMP T1")."""
    out = []
    for i in range(ANN_COUNT):
        if mask & (1 << i):
            out.append(ANN_NAMES[i])
    return " ".join(out)


def cells_text(cells):
    """The digit cells as text: one character per cell (see :func:`char_of`) plus '.' for a
    lit point, e.g. "00012.345"."""
    out = []
    for c in cells:
        out.append(char_of(c))
        if c & SEG_DP:
            out.append(".")
    return "".join(out)


def frame_text(frame):
    """The frame as one plain-text line for logs, tests and the terminal:
    identifier padded to 6, three spaces, the digit cells, then the annunciator names.
    Example: ``"1.8.0    00012.345 kWh IMP T1"``."""
    s = "%-6s   %s" % (frame.ident, cells_text(frame.cells))
    a = ann_text(frame.ann)
    return s + " " + a if a else s


def tariff_ann(tariff):
    """Annunciator bit of tariff 1..6 (ANN_T1..ANN_T6); 0 for 0 (no tariff).
    Raises ValueError outside 0..6."""
    if tariff < 0 or tariff > 6:
        raise ValueError("lcd: tariff must be 0..6")
    return ANN_T1 << (tariff - 1) if tariff else 0


def unit_ann(unit):
    """Annunciator bit of a unit name ("kWh", "kvarh", "kVAh", "V", "A", "Hz", "W", "var");
    "" or None -> 0; an int is returned as is (already a mask). Raises ValueError otherwise."""
    if not unit:
        return 0
    if isinstance(unit, int):
        return unit
    for i in range(8):
        if ANN_NAMES[i] == unit:
            return 1 << i
    raise ValueError("lcd: unknown unit %r" % unit)


def text_item(ident, text, ann=0, right=False):
    """A display-list item showing fixed text (version, hash, "tESt", ...).

    Formats once, here (so ValueError for bad text is raised at configuration time); returns a
    callable ``render(frame)`` that :class:`Display` accepts as an item.
    """
    f = Frame()
    f.set_ident(ident)
    format_text(f, text, right)
    f.ann = ann

    def _render(frame):
        frame.copy_from(f)

    return _render


def _norm_item(item):
    # -> (ident, getter, decimals, ann): ident None marks a render(frame) callable.
    if callable(item):
        return (None, item, 0, 0)
    if len(item) != 5:
        raise ValueError("lcd: item must be (ident, getter, decimals, ann, unit)")
    ident, getter, decimals, ann, unit = item
    if len(ident) > IDENT_MAX:
        raise ValueError("lcd: identifier %r longer than %d characters" % (ident, IDENT_MAX))
    if not callable(getter):
        raise ValueError("lcd: getter of %r is not callable" % ident)
    if decimals < 0 or decimals > 3:
        raise ValueError("lcd: decimals of %r must be 0..3" % ident)
    return (ident, getter, decimals, ann | unit_ann(unit))


_ERR = object()  # _read: the getter raised


def _read(get):
    try:
        return get()
    except Exception:
        return _ERR


class Display:
    """Display logic: item lists, scrolling, and the frame to show.

    An item is a tuple ``(ident, getter, decimals, ann, unit)``:

    - ``ident``: identifier text (<= 6 characters, e.g. "1.8.0", "DE"),
    - ``getter``: callable with no arguments returning an int in thousandths of the shown unit,
    - ``decimals``: 0..3 digits after the point (truncating),
    - ``ann``: annunciator mask of the item (e.g. ``ANN_IMPORT | ANN_T1``),
    - ``unit``: unit name ("kWh", "V", ...) or unit annunciator mask, or "" / 0.

    or a callable ``render(frame)`` (see :func:`text_item`, :func:`render_segment_test`).
    Invalid items raise ValueError when set. A getter that raises shows "Err".

    Lists: ``LIST_AUTO`` scrolls every ``hold_ms`` (default 10 000 ms), ``LIST_ALT`` is stepped
    with :meth:`next` only and falls back to the auto list ``return_ms`` after the last step
    (0 = never), ``LIST_TEST`` scrolls like the auto list. ``flags`` (:meth:`set_flags`: tariff,
    arrows, relay, alarm, ...) are OR-ed into every frame.

    Use: call :meth:`tick` with a ms clock (``board.clock.ticks_ms()``) every few hundred ms; it
    re-reads the current value and returns True when ``frame`` changed, then
    ``lcd.show(display.frame)``. ``tick`` and value rendering allocate nothing (one preallocated
    frame), provided the getters do not and values are small ints; in a list set by keys
    (:meth:`set_items` with ``make``) a step to the next item makes that item.
    """

    def __init__(self, auto=(), alt=(), test=(), hold_ms=10000, return_ms=30000,
                 leading_zeros=True, ticks_diff=None):
        if hold_ms <= 0:
            raise ValueError("lcd: hold_ms must be > 0")
        self.frame = Frame()
        self._prev = Frame()
        self._prev.ann = -1  # differs from any frame: the first tick reports a change
        self._lists = [[], [], []]
        self._make = [None, None, None]  # per list: make(key) -> item, or None (items held)
        self._cur = None  # the item made for the one shown (lists with ``make``)
        self._cur_at = -1  # list_id * 256 + index it was made for
        self.set_items(LIST_AUTO, auto)
        self.set_items(LIST_ALT, alt)
        self.set_items(LIST_TEST, test)
        self.hold_ms = hold_ms
        self.return_ms = return_ms
        self.leading_zeros = leading_zeros
        self.flags = 0
        self.list_id = LIST_AUTO
        self.index = 0
        self._t0 = None  # start of the current hold (ms); None = from the next tick
        self._override = False
        self._diff = ticks_diff or _ticks_diff
        self._render()

    def set_items(self, which, items, make=None):
        """Replace list ``which`` (LIST_AUTO/LIST_ALT/LIST_TEST) with ``items`` (validated).
        With ``make``, ``items`` are keys and ``make(key)`` makes each one's item: each is
        made and checked here, then only the one shown is held, made again when it is
        reached (RAM: a getter closure each; a step to the next item allocates then)."""
        if which < 0 or which > LIST_TEST:
            raise ValueError("lcd: unknown list %r" % which)
        if make is None:
            self._lists[which] = [_norm_item(it) for it in items]
        else:
            for k in items:
                _norm_item(make(k))
            self._lists[which] = list(items)
        self._make[which] = make
        self._cur = None
        self._cur_at = -1
        if which == getattr(self, "list_id", LIST_AUTO):
            self.index = 0

    def items(self, which):
        """Number of items in list ``which``."""
        return len(self._lists[which])

    def set_flags(self, mask):
        """Set the state annunciators OR-ed into every frame (tariff, IMPORT/EXPORT, RELAY,
        ALARM, BATTERY, TEST, COMM, ...). Replaces the previous flags; re-renders now."""
        self.flags = mask
        if not self._override:
            self._render()

    def set_list(self, which, now_ms=None):
        """Show list ``which`` from its first item; the hold starts at ``now_ms`` (or the next
        tick). Returns the frame."""
        if which < 0 or which > LIST_TEST:
            raise ValueError("lcd: unknown list %r" % which)
        self.list_id = which
        self.index = 0
        self._t0 = now_ms
        self._override = False
        self._render()
        return self.frame

    def tick(self, now_ms):
        """Advance the display clock to ``now_ms`` (int ms, wrapping ticks allowed).

        Moves to the next item once the hold time has passed (wrapping at the end of the list),
        ends a held segment-test/version frame, returns from the alt list after ``return_ms``,
        and re-reads the current value. Returns True if ``frame`` differs from the frame at the
        previous tick (show it), else False.
        """
        if self._t0 is None:
            self._t0 = now_ms
        el = self._diff(now_ms, self._t0)
        if self._override:
            if el < self.hold_ms:
                return self._commit()
            self._override = False
            self._t0 = now_ms
        elif self.list_id == LIST_ALT:
            if self.return_ms and el >= self.return_ms:
                self.list_id = LIST_AUTO
                self.index = 0
                self._t0 = now_ms
        elif el >= self.hold_ms:
            n = len(self._lists[self.list_id])
            self.index = self.index + 1 if self.index + 1 < n else 0
            self._t0 = now_ms
        self._render()
        return self._commit()

    def next(self, now_ms=None):
        """Button step: the next item of the active list (wrapping); ends a held
        segment-test/version frame; restarts the hold (and the alt list's return timeout) at
        ``now_ms`` (or the next tick). Returns the frame."""
        if self._override:
            self._override = False
        else:
            n = len(self._lists[self.list_id])
            self.index = self.index + 1 if self.index + 1 < n else 0
        self._t0 = now_ms
        self._render()
        return self.frame

    def render(self):
        """Re-read and render the current item now (no timing). Returns the frame."""
        if not self._override:
            self._render()
        return self.frame

    def segment_test(self, now_ms=None):
        """Render the segment test (see :func:`render_segment_test`) and hold it for
        ``hold_ms`` from ``now_ms`` (or the next tick); then the list resumes. Returns the
        frame."""
        render_segment_test(self.frame)
        self._hold(now_ms)
        return self.frame

    def version_frame(self, version_str, now_ms=None, ident="0.2.0"):
        """Render the firmware version (e.g. "1.2.3", digits/letters of the font and points)
        with identifier ``ident`` (OBIS 1-0:0.2.0, active firmware identifier) plus the flags,
        held like :meth:`segment_test`. Raises ValueError if the text cannot be shown."""
        return self.text_frame(ident, version_str, now_ms)

    def text_frame(self, ident, text, now_ms=None, ann=0):
        """Render fixed text (e.g. "tESt", a hash) with an identifier, held like
        :meth:`segment_test`. Raises ValueError if the text cannot be shown."""
        f = self.frame
        f.clear()
        f.set_ident(ident)
        format_text(f, text)
        f.ann = ann | self.flags
        self._hold(now_ms)
        return f

    def _hold(self, now_ms):
        self._override = True
        self._t0 = now_ms

    def _render(self):
        f = self.frame
        lst = self._lists[self.list_id]
        if not lst:
            f.clear()
            f.ann = self.flags
            return
        if self.index >= len(lst):
            self.index = 0
        it = lst[self.index]
        mk = self._make[self.list_id]
        if mk is not None:
            at = self.list_id * 256 + self.index
            if self._cur_at != at:
                self._cur = None  # (the previous one is garbage before the next is made)
                self._cur_at = -1  # (until made: a make that raised is tried again)
                self._cur = _norm_item(mk(it))
                self._cur_at = at
            it = self._cur
        self._item(f, it)
        f.ann |= self.flags

    def _item(self, f, it):
        # it: (ident, getter, decimals, ann), ident None: a render(frame) callable (a frame
        # apart from _render's: 11 machine words at most, else heap-allocated at each call)
        if it[0] is None:
            f.clear()
            it[1](f)
            return
        f.ident = it[0]
        f.all_on = False
        v = _read(it[1])
        if v is _ERR:  # a broken getter must not stop the display
            format_text(f, "Err")
        else:
            format_value(f, v, it[2], DIGITS, self.leading_zeros)
        f.ann = it[3]

    def _commit(self):
        f = self.frame
        p = self._prev
        if f.same(p):
            return False
        p.copy_from(f)
        return True
