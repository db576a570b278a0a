"""lib/lcd (font, frames, formatting, display logic) and boards/sim/lcd_term.py (terminal).

Runs under pytest (CPython) and tools/mptest.py (MicroPython unix port); the heap-lock check
is only meaningful on MicroPython.
"""

import io
import sys

import lcd
from lcd import (
    ANN_ALL, ANN_COMM, ANN_EXPORT, ANN_IMPORT, ANN_KWH, ANN_RELAY, ANN_T1, ANN_T2, ANN_T6,
    ANN_V, LIST_ALT, LIST_AUTO, LIST_TEST, SEG_A, SEG_B, SEG_C, SEG_D, SEG_DP, SEG_E, SEG_F,
    SEG_G, Display, Frame,
)

from boards.sim.lcd_term import TermLCD, art_rows


def _raises(exc, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except exc as e:
        return str(e)
    raise AssertionError("%s not raised by %r%r" % (exc.__name__, fn, args))


def _text(frame):
    return lcd.cells_text(frame.cells)


def _value(v, dec, digits=8, lz=False):
    f = Frame()
    ok = lcd.format_value(f, v, dec, digits, lz)
    return ok, _text(f)


def _bits(n):
    c = 0
    while n:
        c += n & 1
        n >>= 1
    return c


# -- font -------------------------------------------------------------------------------------

def test_digit_glyphs():
    counts = (6, 2, 5, 5, 4, 5, 6, 3, 7, 6)  # lit segments of 0..9
    for d in range(10):
        g = lcd.glyph(str(d))
        assert _bits(g) == counts[d], "digit %d has %d segments" % (d, _bits(g))
        assert not g & SEG_DP, "digit glyph %d must not include the point" % d
    assert lcd.glyph("1") == SEG_B | SEG_C, "1 = b c"
    assert lcd.glyph("7") == SEG_A | SEG_B | SEG_C, "7 = a b c"
    assert lcd.glyph("8") == 0x7F, "8 = all seven"
    assert lcd.glyph("0") == 0x7F & ~SEG_G, "0 = all but g"
    assert lcd.glyph("4") == SEG_B | SEG_C | SEG_F | SEG_G, "4 = b c f g"


def test_letter_glyphs():
    want = {
        "A": SEG_A | SEG_B | SEG_C | SEG_E | SEG_F | SEG_G,
        "b": SEG_C | SEG_D | SEG_E | SEG_F | SEG_G,
        "C": SEG_A | SEG_D | SEG_E | SEG_F,
        "c": SEG_D | SEG_E | SEG_G,
        "d": SEG_B | SEG_C | SEG_D | SEG_E | SEG_G,
        "E": SEG_A | SEG_D | SEG_E | SEG_F | SEG_G,
        "F": SEG_A | SEG_E | SEG_F | SEG_G,
        "G": SEG_A | SEG_C | SEG_D | SEG_E | SEG_F,
        "H": SEG_B | SEG_C | SEG_E | SEG_F | SEG_G,
        "h": SEG_C | SEG_E | SEG_F | SEG_G,
        "I": SEG_E | SEG_F,
        "J": SEG_B | SEG_C | SEG_D | SEG_E,
        "L": SEG_D | SEG_E | SEG_F,
        "n": SEG_C | SEG_E | SEG_G,
        "o": SEG_C | SEG_D | SEG_E | SEG_G,
        "P": SEG_A | SEG_B | SEG_E | SEG_F | SEG_G,
        "r": SEG_E | SEG_G,
        "t": SEG_D | SEG_E | SEG_F | SEG_G,
        "U": SEG_B | SEG_C | SEG_D | SEG_E | SEG_F,
        "u": SEG_C | SEG_D | SEG_E,
        "y": SEG_B | SEG_C | SEG_D | SEG_F | SEG_G,
        "-": SEG_G,
        "_": SEG_D,
        " ": 0,
    }
    for ch in want:
        assert lcd.glyph(ch) == want[ch], "glyph %r = %02x, want %02x" % (
            ch, lcd.glyph(ch), want[ch])
    assert lcd.glyph("O") == lcd.glyph("0"), "O looks like 0"
    assert lcd.glyph("S") == lcd.glyph("5"), "S looks like 5"


def test_glyphs_distinct_except_lookalikes():
    seen = {}
    for ch in lcd.CHARS:
        g = lcd.glyph(ch)
        if g in seen:
            pair = seen[g] + ch
            assert pair in ("0O", "5S"), "glyph of %r duplicates %r" % (ch, seen[g])
        else:
            seen[g] = ch


def test_unknown_character_raises_naming_it():
    for ch in "XMWKBqv?":
        msg = _raises(ValueError, lcd.glyph, ch)
        assert ch in msg, "message %r should name %r" % (msg, ch)
    _raises(ValueError, lcd.glyph, "12")
    _raises(ValueError, lcd.glyph, "")


def test_char_of_inverse():
    for ch in "0123456789AbCcdEFGHhIJLnoPrtUuy-_ ":
        assert lcd.char_of(lcd.glyph(ch)) == ch, "char_of(glyph(%r))" % ch
    assert lcd.char_of(lcd.glyph("2") | SEG_DP) == "2", "point ignored"
    assert lcd.char_of(SEG_A | SEG_D) == "?", "unknown pattern reads as ?"


# -- formatting --------------------------------------------------------------------------------

def test_value_decimals_0_to_3():
    v = 12345678  # 12345.678 units
    assert _value(v, 3) == (True, "12345.678"), _value(v, 3)
    assert _value(v, 2) == (True, " 12345.67"), _value(v, 2)
    assert _value(v, 1) == (True, "  12345.6"), _value(v, 1)
    assert _value(v, 0) == (True, "   12345"), _value(v, 0)
    assert _value(5, 3) == (True, "    0.005"), _value(5, 3)
    assert _value(0, 3) == (True, "    0.000"), _value(0, 3)
    assert _value(0, 0) == (True, "       0"), _value(0, 0)


def test_value_point_on_the_units_cell():
    f = Frame()
    for dec in range(4):
        lcd.format_value(f, 1234567, dec)
        for i in range(8):
            has = bool(f.cells[i] & SEG_DP)
            want = dec > 0 and i == 7 - dec
            assert has == want, "decimals %d cell %d point %r" % (dec, i, has)


def test_value_truncates_never_rounds_up():
    assert _value(1999, 0)[1] == "       1", _value(1999, 0)
    assert _value(12999, 2)[1] == "    12.99", _value(12999, 2)
    assert _value(99999, 1)[1] == "     99.9", _value(99999, 1)
    assert _value(-1999, 0)[1] == "      -1", "negative truncates towards zero"


def test_value_negative():
    assert _value(-12345, 3) == (True, "  -12.345"), _value(-12345, 3)
    assert _value(-12345, 3, lz=True) == (True, "-0012.345"), _value(-12345, 3, lz=True)
    assert _value(-500, 1) == (True, "     -0.5"), _value(-500, 1)
    assert _value(-4, 2) == (True, "     0.00"), "no sign on a value truncated to zero"
    assert _value(-9999999000, 0) == (True, "-9999999"), "sign plus 7 digits fits"


def test_value_leading_zeros():
    assert _value(12345, 3, lz=True) == (True, "00012.345"), _value(12345, 3, lz=True)
    assert _value(0, 0, lz=True) == (True, "00000000"), _value(0, 0, lz=True)
    assert _value(7000, 1, lz=True) == (True, "0000007.0"), _value(7000, 1, lz=True)


def test_value_overflow_all_dashes():
    assert _value(99999999999, 0) == (True, "99999999"), "8 digits fit"
    assert _value(100000000000, 0) == (False, "--------"), _value(100000000000, 0)
    assert _value(99999999, 3) == (True, "99999.999"), "largest with 3 decimals"
    assert _value(100000000, 3) == (False, "--------"), _value(100000000, 3)
    assert _value(-10000000000, 0) == (False, "--------"), "sign needs a cell"
    f = Frame()
    lcd.format_value(f, 10 ** 12, 3)
    for c in f.cells:
        assert c == SEG_G, "overflow cells are dashes without points, got %02x" % c


def test_value_field_width_leaves_other_cells():
    f = Frame()
    a = lcd.glyph("A")
    for i in range(8):
        f.cells[i] = a
    ok = lcd.format_value(f, 12345, 1, 4)
    assert ok, "12.3 fits in 4 cells"
    assert _text(f) == "AAAA 12.3", _text(f)
    assert lcd.format_value(f, 123456, 1, 4), "123.4 (4 digits) fits"
    assert not lcd.format_value(f, 1234567, 1, 4), "1234.5 (5 digits) does not"
    assert _text(f) == "AAAA----", _text(f)


def test_value_does_not_touch_ident_or_ann():
    f = Frame()
    f.set_ident("1.8.0")
    f.ann = ANN_KWH | ANN_T1
    lcd.format_value(f, 1, 3)
    assert f.ident == "1.8.0" and f.ann == ANN_KWH | ANN_T1, "ident/ann kept"


def test_value_bad_arguments():
    f = Frame()
    _raises(ValueError, lcd.format_value, f, 1, 4)
    _raises(ValueError, lcd.format_value, f, 1, -1)
    _raises(ValueError, lcd.format_value, f, 1, 2, 0)
    _raises(ValueError, lcd.format_value, f, 1, 2, 9)


def test_text_words():
    f = Frame()
    lcd.format_text(f, "tESt")
    want = [lcd.glyph(c) for c in "tESt"] + [0] * 4
    assert list(f.cells) == want, "tESt left-aligned: %r" % list(f.cells)
    lcd.format_text(f, "ALt", right=True)
    assert list(f.cells) == [0] * 5 + [lcd.glyph(c) for c in "ALt"], "ALt right-aligned"
    lcd.format_text(f, "1.2.3")
    assert _text(f) == "1.2.3     ", _text(f)
    assert f.cells[0] == lcd.glyph("1") | SEG_DP and f.cells[2] == lcd.glyph("3"), "points"
    lcd.format_text(f, ".5")
    assert f.cells[0] == SEG_DP and f.cells[1] == lcd.glyph("5"), "leading point own cell"
    lcd.format_text(f, "8.8.8.8.8.8.8.8.")
    assert _text(f) == "8.8.8.8.8.8.8.8.", "8 cells with points fit"


def test_text_errors():
    f = Frame()
    msg = _raises(ValueError, lcd.format_text, f, "123456789")
    assert "123456789" in msg, msg
    msg = _raises(ValueError, lcd.format_text, f, "vEr")
    assert "v" in msg, msg


# -- frame, identifier, annunciators -----------------------------------------------------------

def test_frame_text_example():
    f = Frame()
    f.set_ident("1.8.0")
    lcd.format_value(f, 12345, 3, leading_zeros=True)
    f.ann = ANN_T1 | ANN_KWH | ANN_IMPORT
    assert lcd.frame_text(f) == "1.8.0    00012.345 kWh IMP T1", repr(lcd.frame_text(f))
    f.clear()
    assert lcd.frame_text(f) == " " * 9 + " " * 8, repr(lcd.frame_text(f))


def test_identifier():
    f = Frame()
    for t in ("1.8.0", "DE", "RX", "NT", "96.1.0", ""):
        f.set_ident(t)
        assert f.ident == t, t
    msg = _raises(ValueError, f.set_ident, "1.8.0.2")
    assert "1.8.0.2" in msg, msg
    out = bytearray(5)
    assert lcd.ident_cells("1.8.0", out) == 3, "three cells"
    assert list(out) == [lcd.glyph("1") | SEG_DP, lcd.glyph("8") | SEG_DP, lcd.glyph("0"), 0, 0]
    lcd.ident_cells("RX", out)
    assert out[0] == lcd.glyph("r") and out[1] == 0, "R via r, X has no glyph"
    lcd.ident_cells("NT", out)
    assert out[0] == lcd.glyph("n") and out[1] == lcd.glyph("t"), "NT via n t"
    assert lcd.ident_cells("123456", out) == 5, "truncated to the cells"


def test_frame_copy_and_same():
    a = Frame()
    b = Frame()
    assert a.same(b), "blank frames equal"
    a.set_ident("DE")
    lcd.format_value(a, 42, 0)
    a.ann = ANN_V
    assert not a.same(b), "differ"
    b.copy_from(a)
    assert a.same(b) and b.cells is not a.cells, "copied, own buffer"
    b.cells[3] ^= SEG_DP
    assert not a.same(b), "one point differs"


def test_annunciator_constants():
    names = ("ANN_KWH ANN_KVARH ANN_KVAH ANN_V ANN_A ANN_HZ ANN_W ANN_VAR ANN_IMPORT ANN_EXPORT "
             "ANN_T1 ANN_T2 ANN_T3 ANN_T4 ANN_T5 ANN_T6 ANN_RELAY ANN_ALARM ANN_BATTERY "
             "ANN_TEST ANN_ALT ANN_COMM ANN_DST").split()
    acc = 0
    for n in names:
        v = getattr(lcd, n)
        assert _bits(v) == 1, "%s is one bit" % n
        assert not acc & v, "%s overlaps" % n
        acc |= v
    assert acc == ANN_ALL, "ANN_ALL covers every annunciator"
    assert len(lcd.ANN_NAMES) == lcd.ANN_COUNT == len(names), "one name per bit"
    assert lcd.ann_text(ANN_COMM | ANN_KWH | ANN_EXPORT) == "kWh EXP COMM", "bit order"
    assert lcd.ann_text(0) == "", "none"
    assert lcd.tariff_ann(1) == ANN_T1 and lcd.tariff_ann(6) == ANN_T6, "tariffs"
    assert lcd.tariff_ann(0) == 0, "no tariff"
    _raises(ValueError, lcd.tariff_ann, 7)
    assert lcd.unit_ann("kWh") == ANN_KWH and lcd.unit_ann("V") == ANN_V, "units"
    assert lcd.unit_ann("") == 0 and lcd.unit_ann(ANN_V) == ANN_V, "empty / mask"
    _raises(ValueError, lcd.unit_ann, "kW")


# -- display logic -----------------------------------------------------------------------------

class _Box:
    def __init__(self, v):
        self.v = v

    def get(self):
        return self.v


def _display(**kw):
    a, b, c = _Box(1000), _Box(2000), _Box(3000)
    items = [
        ("1.8.0", a.get, 3, ANN_IMPORT, "kWh"),
        ("2.8.0", b.get, 3, ANN_EXPORT, "kWh"),
        ("32.7.0", c.get, 1, 0, "V"),
    ]
    return Display(auto=items, **kw), (a, b, c)


def test_scroll_hold_and_wrap():
    d, _ = _display()
    assert d.hold_ms == 10000, "default hold 10 s"
    assert d.tick(0), "first tick shows a frame"
    assert d.frame.ident == "1.8.0", d.frame.ident
    assert not d.tick(9999), "nothing changes before the hold time"
    assert d.frame.ident == "1.8.0", "held"
    assert d.tick(10000), "advances at the hold time"
    assert d.frame.ident == "2.8.0", d.frame.ident
    d.tick(19999)
    assert d.frame.ident == "2.8.0", "held again"
    d.tick(20000)
    assert d.frame.ident == "32.7.0" and d.index == 2, d.frame.ident
    d.tick(30000)
    assert d.frame.ident == "1.8.0" and d.index == 0, "wraps to the first item"


def test_scroll_configurable_hold():
    d, _ = _display(hold_ms=5000)
    d.tick(100)
    d.tick(5099)
    assert d.index == 0, "5 s hold not yet over"
    d.tick(5100)
    assert d.index == 1, "5 s hold over"
    _raises(ValueError, Display, hold_ms=0)


def test_item_rendering_units_and_values():
    d, (a, b, c) = _display()
    d.tick(0)
    assert lcd.frame_text(d.frame) == "1.8.0    00001.000 kWh IMP", lcd.frame_text(d.frame)
    a.v = 1234
    assert d.tick(1), "value change is a frame change"
    assert _text(d.frame) == "00001.234", _text(d.frame)
    assert not d.tick(2), "same value, no change"
    d.next()
    d.next()
    c.v = 230456
    d.render()
    assert lcd.frame_text(d.frame) == "32.7.0   0000230.4 V", lcd.frame_text(d.frame)


def test_leading_zeros_option():
    d, _ = _display(leading_zeros=False)
    d.tick(0)
    assert _text(d.frame) == "    1.000", _text(d.frame)


def test_button_step_restarts_hold():
    d, _ = _display()
    d.tick(0)
    d.next(3000)
    assert d.frame.ident == "2.8.0", "button steps"
    d.tick(12999)
    assert d.index == 1, "hold restarted at the button press"
    d.tick(13000)
    assert d.index == 2, "then scrolls on"
    d.next(13500)
    assert d.index == 0, "button wraps too"


def test_alt_list_manual_and_return():
    d, _ = _display(return_ms=30000)
    x = _Box(5)
    d.set_items(LIST_ALT, [("DE", x.get, 0, 0, ""), ("RX", x.get, 0, 0, "")])
    d.tick(0)
    d.set_list(LIST_ALT, 1000)
    assert d.list_id == LIST_ALT and d.frame.ident == "DE", d.frame.ident
    d.tick(25000)
    assert d.frame.ident == "DE", "alt list does not auto-scroll"
    d.next(26000)
    assert d.frame.ident == "RX", "button steps the alt list"
    d.tick(55999)
    assert d.list_id == LIST_ALT, "return timeout counts from the last press"
    d.tick(56000)
    assert d.list_id == LIST_AUTO and d.frame.ident == "1.8.0", "back to the auto list"
    _raises(ValueError, d.set_list, 3)


def test_test_list_scrolls():
    d, _ = _display(hold_ms=1000)
    w = _Box(123456)
    d.set_items(LIST_TEST, [("1.8.0", w.get, 3, 0, "kWh"), ("1.7.0", w.get, 0, 0, "W")])
    d.set_list(LIST_TEST, 0)
    d.tick(0)
    assert d.frame.ident == "1.8.0", "test list"
    d.tick(1000)
    assert d.frame.ident == "1.7.0", "test list scrolls"


def test_flags_ored_into_every_frame():
    d, _ = _display()
    d.set_flags(ANN_T2 | ANN_RELAY)
    d.tick(0)
    assert d.frame.ann == ANN_T2 | ANN_RELAY | ANN_KWH | ANN_IMPORT, lcd.frame_text(d.frame)
    d.tick(10000)
    assert d.frame.ann == ANN_T2 | ANN_RELAY | ANN_KWH | ANN_EXPORT, lcd.frame_text(d.frame)
    d.set_flags(ANN_T1)
    assert d.frame.ann == ANN_T1 | ANN_KWH | ANN_EXPORT, "cleared flags disappear"
    d.version_frame("1.2.3")
    assert d.frame.ann & ANN_T1, "flags on the version frame too"


def test_segment_test_frame_and_hold():
    d, _ = _display()
    d.tick(0)
    f = d.segment_test(500)
    assert f is d.frame, "renders into the display frame"
    assert list(f.cells) == [0xFF] * 8 and f.ann == ANN_ALL and f.all_on, "all on"
    assert _text(f) == "8.8.8.8.8.8.8.8.", _text(f)
    assert lcd.frame_text(f).startswith("8.8.8.   8.8.8.8.8.8.8.8. kWh"), lcd.frame_text(f)
    assert d.tick(600), "changed since the last tick"
    d.tick(10499)
    assert f.all_on, "held for hold_ms"
    d.tick(10500)
    assert not f.all_on and d.frame.ident == "1.8.0", "list resumes where it was"
    d.segment_test()
    d.next(20000)
    assert not f.all_on, "button ends the segment test"


def test_version_frame():
    d, _ = _display()
    f = d.version_frame("1.2.3")
    assert lcd.frame_text(f) == "0.2.0    1.2.3     ", repr(lcd.frame_text(f))
    f = d.version_frame("0.10", ident="0.2.8")
    assert f.ident == "0.2.8" and _text(f) == "0.10     ", _text(f)
    _raises(ValueError, d.version_frame, "v1.2")


def test_custom_items_and_errors():
    def bad():
        raise OSError("sensor gone")

    items = [
        lcd.text_item("0.2.0", "1.0.0"),
        lcd.render_segment_test,
        ("1.8.0", bad, 3, 0, "kWh"),
    ]
    d = Display(auto=items)
    d.tick(0)
    assert lcd.frame_text(d.frame) == "0.2.0    1.0.0     ", lcd.frame_text(d.frame)
    d.next()
    assert d.frame.all_on, "segment test as a list item"
    d.next()
    assert _text(d.frame) == "Err     " and not d.frame.all_on, "getter error shows Err"
    _raises(ValueError, Display, auto=[("1.8.0.255", bad, 3, 0, "")])
    _raises(ValueError, Display, auto=[("1.8.0", bad, 4, 0, "")])
    _raises(ValueError, Display, auto=[("1.8.0", 5, 3, 0, "")])
    _raises(ValueError, Display, auto=[("1.8.0", bad, 3, 0)])
    _raises(ValueError, Display, auto=[("1.8.0", bad, 3, 0, "kW")])
    _raises(ValueError, lcd.text_item, "0.2.0", "X")


def test_empty_list_shows_flags_only():
    d = Display()
    d.set_flags(ANN_RELAY)
    assert d.tick(0) is True, "first frame"
    assert _text(d.frame) == " " * 8 and d.frame.ann == ANN_RELAY, lcd.frame_text(d.frame)
    d.next()
    d.tick(20000)
    assert d.index == 0, "nothing to scroll"


def test_ticks_wrap():
    period = 1 << 30

    def diff(a, b):
        return ((a - b + period // 2) % period) - period // 2

    d, _ = _display(ticks_diff=diff)
    d.tick(period - 1000)
    d.tick(8999)
    assert d.index == 0, "9.999 s across the wrap"
    d.tick(9000)
    assert d.index == 1, "10 s across the wrap"


def test_a_list_by_keys_holds_only_the_item_shown():
    # (RAM, issue 12: the LCD task's normal list; each item is a getter closure)
    made = []

    def make(k):
        made.append(k)
        return (k, lambda: 1000, 3, 0, "kWh")

    d = Display(hold_ms=1000)
    d.set_items(LIST_AUTO, ["1.8.0", "2.8.0", "3.8.0"], make)
    assert made == ["1.8.0", "2.8.0", "3.8.0"] and d.items(LIST_AUTO) == 3, "checked when set"
    del made[:]
    d.tick(0)
    d.tick(10)
    assert made == ["1.8.0"] and d.frame.ident == "1.8.0", made
    d.tick(1000)
    d.tick(1500)
    assert made == ["1.8.0", "2.8.0"] and d.frame.ident == "2.8.0", "made once while shown"
    try:
        d.set_items(LIST_AUTO, ["x"], lambda k: (k, 5, 3, 0, ""))
        raise AssertionError("a bad item accepted")
    except ValueError:
        pass
    assert d.frame.ident == "2.8.0" and d.items(LIST_AUTO) == 3, "the list kept"


def test_a_list_by_keys_survives_an_item_not_made():
    # A step to the next item makes it (a closure): under memory pressure the make raised
    # after the item shown was dropped, and the index it had been made for was kept. The
    # scroll then came back to that index (a list of two) and the display drew no item:
    # the LCD task died at each tick until the list was set again.
    fail = [False]

    def make(k):
        if fail[0]:
            raise MemoryError("memory allocation failed")
        return (k, lambda: 1000, 3, 0, "kWh")

    d = Display(hold_ms=1000)
    d.set_items(LIST_AUTO, ["1.8.0", "2.8.0"], make)
    d.tick(0)
    assert d.frame.ident == "1.8.0"
    fail[0] = True
    try:
        d.tick(1000)  # the step to 2.8.0: not made
    except MemoryError:
        pass
    for t in (2000, 2100):  # back to 1.8.0 at the next step: made again, or refused alike
        try:
            d.tick(t)
        except MemoryError:
            pass
    fail[0] = False
    d.tick(2200)
    d.tick(3000)
    d.tick(4000)
    assert d.frame.ident in ("1.8.0", "2.8.0"), d.frame.ident


def test_hot_path_allocation_free():
    box = [1000]
    items = [("1.8.0", lambda: box[0], 3, ANN_IMPORT, "kWh"),
             ("2.8.0", lambda: box[0], 0, ANN_EXPORT, "kWh")]
    d = Display(auto=items, hold_ms=1000)
    d.tick(0)
    f = Frame()
    res = bytearray(6)
    mp = sys.implementation.name == "micropython"
    if mp:
        import micropython

        micropython.heap_lock()
    try:
        res[0] = d.tick(10)  # nothing changes
        res[1] = d.tick(20)
        box[0] = 1234
        res[2] = d.tick(30)  # value changes
        res[3] = d.tick(1030)  # next item
        res[4] = d.tick(2030)  # wrap
        res[5] = lcd.format_value(f, -987654, 2, 8, True)
    finally:
        if mp:
            micropython.heap_unlock()
    assert list(res) == [0, 0, 1, 1, 1, 1], list(res)
    assert _text(f) == "-00987.65", _text(f)
    assert d.frame.ident == "1.8.0" and _text(d.frame) == "00001.234", lcd.frame_text(d.frame)


# -- terminal device ---------------------------------------------------------------------------

def _frame(ident, v, dec, ann=0):
    f = Frame()
    f.set_ident(ident)
    lcd.format_value(f, v, dec)
    f.ann = ann
    return f


def test_term_plain_lines():
    s = io.StringIO()
    t = TermLCD(stream=s, ansi=False)
    f = _frame("1.8.0", 12345, 3, ANN_KWH)
    assert t.show(f), "first frame drawn"
    assert s.getvalue() == "1.8.0       12.345 kWh\n", repr(s.getvalue())
    assert t.last_text == "1.8.0       12.345 kWh" and t.frames_shown == 1, t.last_text
    assert not t.show(f), "identical frame not redrawn"
    assert t.frames_shown == 1 and s.getvalue().count("\n") == 1, "nothing written"
    f.ann |= ANN_T1
    assert t.show(f), "annunciator change redrawn"
    assert s.getvalue().endswith("1.8.0       12.345 kWh T1\n"), repr(s.getvalue())
    assert t.frames_shown == 2, t.frames_shown
    assert "\x1b" not in s.getvalue(), "no escape codes in plain mode"


def test_term_art_rows():
    f = Frame()
    f.cells[0] = lcd.glyph("0")
    f.cells[1] = lcd.glyph("1") | SEG_DP
    f.cells[2] = lcd.glyph("2")
    rows = art_rows(f)
    assert rows == [" _       _", "| |   |  _|", "|_|   |.|_"], rows
    f.cells[7] = SEG_E | SEG_D | SEG_C | SEG_DP
    assert art_rows(f)[2].endswith("|_|."), art_rows(f)


def test_term_ansi_seven_segment_redraw_in_place():
    s = io.StringIO()
    t = TermLCD(stream=s)
    f = _frame("1.8.0", 8, 0, ANN_KWH | ANN_IMPORT)
    t.show(f)
    first = s.getvalue()
    assert first.count("\n") == 4, "header plus three art rows: %r" % first
    assert "\x1b[2K1.8.0   kWh IMP\n" in first, repr(first)
    assert "\x1b[" + "4A" not in first, "nothing to move over on the first draw"
    assert first.rstrip().endswith("|_|"), "digit 8 drawn"
    t.show(f)
    assert s.getvalue() == first, "identical frame not redrawn"
    f2 = _frame("2.8.0", 1, 0)
    t.show(f2)
    rest = s.getvalue()[len(first):]
    assert rest.startswith("\x1b[4A"), "cursor up 4 lines: %r" % rest[:8]
    assert t.frames_shown == 2 and t.last_text == lcd.frame_text(f2), t.last_text


def test_term_ansi_single_line():
    s = io.StringIO()
    t = TermLCD(stream=s, seven_segment=False)
    t.show(_frame("DE", 1000, 0))
    t.show(_frame("DE", 2000, 0))
    out = s.getvalue()
    assert out.count("\n") == 2 and "\x1b[1A" in out, repr(out)
    assert t.last_text == "DE              2", repr(t.last_text)


def test_term_default_stream_is_stdout():
    t = TermLCD(ansi=False)
    assert t._out is sys.stdout, "writes to sys.stdout by default"
