"""lib/lcd/ht1621.py: bit stream on fake CS/WR/DATA pins, checked against the HT1621 datasheet
command summary (command mode 100 + C8..C0; write mode 101 + A5..A0 + D0 D1 D2 D3)."""

import lcd
from lcd import ANN_COMM, ANN_KWH, SEG_A, SEG_DP, Frame

from lcd import ht1621
from lcd.ht1621 import HT1621


class _Bus:
    """Records one bit string per CS-low transaction; a bit is DATA at a WR rising edge."""

    def __init__(self):
        self.frames = []
        self.cur = None
        self.edges_outside_cs = 0


class _Pin:
    def __init__(self, bus, role):
        self.bus = bus
        self.role = role
        self.v = None

    def value(self, v=None):
        if v is None:
            return self.v
        v = 1 if v else 0
        old = self.v
        self.v = v
        b = self.bus
        if self.role == "cs":
            if old == 1 and v == 0:
                b.cur = []
            elif old == 0 and v == 1 and b.cur is not None:
                b.frames.append("".join(b.cur))
                b.cur = None
        elif self.role == "wr" and old == 0 and v == 1:
            if b.cur is None:
                b.edges_outside_cs += 1
            else:
                b.cur.append(str(b.data.v))
        return None


def _make(**kw):
    bus = _Bus()
    cs, wr, data = _Pin(bus, "cs"), _Pin(bus, "wr"), _Pin(bus, "data")
    bus.data = data
    h = HT1621(cs, wr, data, **kw)
    return h, bus, (cs, wr, data)


def _raises(exc, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except exc as e:
        return str(e)
    raise AssertionError("%s not raised" % exc.__name__)


def _decode_write(bits):
    """'101' + 6-bit address (MSB first) + nibbles (D0 first) -> (address, [nibble, ...])."""
    assert bits[:3] == "101", "write mode ID 101, got %r" % bits[:3]
    addr = int(bits[3:9], 2)
    rest = bits[9:]
    assert len(rest) % 4 == 0, "whole nibbles"
    nib = []
    for i in range(0, len(rest), 4):
        d = rest[i:i + 4]
        nib.append(int(d[0]) | int(d[1]) << 1 | int(d[2]) << 2 | int(d[3]) << 3)
    return addr, nib


def _ram_after(bus, start=0):
    ram = [None] * 32
    for fr in bus.frames[start:]:
        if fr.startswith("101"):
            addr, nib = _decode_write(fr)
            for k in range(len(nib)):
                ram[addr + k] = nib[k]
    return ram


# Datasheet command summary, written out bit by bit (ID, C8..C1, C0 = X sent as 0).
SYS_DIS = "100" + "0000" + "0000" + "0"
SYS_EN = "100" + "0000" + "0001" + "0"
LCD_OFF = "100" + "0000" + "0010" + "0"
LCD_ON = "100" + "0000" + "0011" + "0"
RC_256K = "100" + "0001" + "1000" + "0"
BIAS_13_4COM = "100" + "0010" + "1001" + "0"  # 0010-abX1-X with ab = 10 (4 commons)


def test_lines_idle_high():
    h, bus, pins = _make()
    assert [p.v for p in pins] == [1, 1, 1], "CS, WR, DATA idle high"
    assert bus.frames == [], "nothing sent by the constructor"


def test_command_bits():
    h, bus, _ = _make()
    h.command(ht1621.CMD_SYS_EN)
    h.command(ht1621.CMD_LCD_ON)
    h.command(ht1621.CMD_BIAS_13_4COM)
    h.command(ht1621.CMD_SYS_DIS)
    h.command(ht1621.CMD_RC_256K)
    assert bus.frames == [SYS_EN, LCD_ON, BIAS_13_4COM, SYS_DIS, RC_256K], bus.frames
    assert len(bus.frames[0]) == 12, "3-bit ID + 9-bit command"
    assert bus.edges_outside_cs == 0, "no clock while deselected"


def test_init_sequence():
    h, bus, _ = _make()
    h.init()
    f = bus.frames
    assert f[:4] == [BIAS_13_4COM, RC_256K, SYS_EN, LCD_ON], f[:4]
    assert all(x.startswith("100") and len(x) == 12 for x in f[:-1]), "commands, then RAM"
    assert f[-1] == "101" + "000000" + "0000" * 32, "RAM cleared from address 0"


def test_init_crystal_option():
    h, bus, _ = _make(osc=ht1621.CMD_XTAL_32K)
    h.init()
    assert bus.frames[1] == "100" + "0001" + "0100" + "0", bus.frames[1]


def test_off():
    h, bus, _ = _make()
    h.off()
    assert bus.frames == [LCD_OFF, SYS_DIS], bus.frames


def test_write_bit_order():
    h, bus, _ = _make()
    h.write(5, b"\x01")
    assert bus.frames[-1] == "101" + "000101" + "1000", "address MSB first, D0 first"
    h.write(31, b"\x08")
    assert bus.frames[-1] == "101" + "011111" + "0001", bus.frames[-1]
    h.write(2, b"\x03\x0c")
    assert bus.frames[-1] == "101" + "000010" + "1100" + "0011", "successive addresses"
    _raises(ValueError, h.write, 31, b"\x01\x02")
    _raises(ValueError, h.write, -1, b"\x01")


def test_show_default_map():
    h, bus, _ = _make()
    f = Frame()
    f.cells[0] = lcd.glyph("1")  # b c -> SEG0 COM1, COM2
    f.cells[7] = lcd.glyph("8") | SEG_DP  # SEG14, SEG15 all
    f.set_ident("1.8.0")
    f.ann = ANN_KWH | ANN_COMM  # ann bit 0 -> SEG26 COM0; bit 21 -> SEG31 COM1
    n = h.show(f)
    assert n == 32 and len(bus.frames) == 1, "first show writes the whole RAM"
    ram = _ram_after(bus)
    want = [0] * 32
    want[0] = 0b0110
    want[14] = 0xF
    want[15] = 0xF
    want[16] = 0b0110  # ident '1.'
    want[17] = 0b1000  # its point (s = 7 -> COM3)
    want[18] = 0xF  # '8.'
    want[19] = 0xF
    want[20] = 0xF  # '0' a b c d
    want[21] = 0b0011  # '0' e f
    want[26] = 0b0001
    want[31] = 0b0010
    assert ram == want, "RAM %r" % ram


def test_show_writes_only_changes():
    h, bus, _ = _make()
    f = Frame()
    lcd.format_value(f, 1000, 0)
    h.show(f)
    assert h.show(f) == 0 and len(bus.frames) == 1, "unchanged frame: no bus traffic"
    f.cells[3] = lcd.glyph("8")
    assert h.show(f) == 2, "one digit = two addresses"
    assert bus.frames[-1] == "101" + "000110" + "1111" + "1110", bus.frames[-1]
    assert h.show(f, force=True) == 32, "forced refresh writes everything"


def test_segment_test_lights_everything():
    h, bus, _ = _make()
    f = Frame()
    lcd.render_segment_test(f)
    h.show(f)
    assert _ram_after(bus) == [0xF] * 32, "all 128 segments"


def test_custom_segmap():
    entries = [None] * 128
    entries[0] = (31, 3)  # digit 0 segment a -> SEG31 COM3
    entries[104] = (0, 0)  # kWh -> SEG0 COM0
    m = ht1621.build_segmap(entries)
    assert len(m) == 128 and m[0] == 127 and m[1] == ht1621.NC, "map entries"
    h, bus, _ = _make(segmap=m)
    f = Frame()
    f.cells[0] = SEG_A | lcd.glyph("8")  # only a is wired
    f.ann = ANN_KWH | ANN_COMM
    h.show(f)
    want = [0] * 32
    want[31] = 0b1000
    want[0] = 0b0001
    assert _ram_after(bus) == want, _ram_after(bus)
    _raises(ValueError, ht1621.build_segmap, [(32, 0)])
    _raises(ValueError, ht1621.build_segmap, [(1, 4)])
    _raises(ValueError, ht1621.build_segmap, [(1, 1), (1, 1)])
    _raises(ValueError, _make, segmap=b"\x00" * 10)


def test_display_to_controller():
    h, bus, _ = _make()
    d = lcd.Display(auto=[("1.8.0", lambda: 5000, 0, 0, "kWh")])
    d.tick(0)
    h.show(d.frame)
    ram = _ram_after(bus)
    assert ram[14] == lcd.glyph("5") & 0xF and ram[15] == lcd.glyph("5") >> 4, "last digit 5"
    assert ram[26] & 1, "kWh annunciator"
