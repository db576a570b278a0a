"""The active tariff 0.0.96.14.0 in the default readout list (issue 10 item 2), and R1 of
C.90.3 answering the whole readout list in value groups of at most 128 characters (it
answered ER09 while the default list passed one value's 128 characters:
firmware/ports/iec.py list_groups, lib/iec62056/codec.build_data)."""

import events
import iec62056.codec as iec
from meter import defaults
from ports.iec import list_groups

import test_protocols as tp

# tools/emu: the whole meter on the sim board's flash image (tools/emu/emu_host_only.py)
_NOR = ("the virtual board's 1 MiB NOR-flash image (a flash chip on a device) has no room "
        "outside the heap: the core has 128 KiB of SRAM in all")
EMU_HOST_ONLY = {
    "test_default_readout_has_the_active_tariff": ("flashmem", 1024 * 1024, _NOR),
    "test_r1_of_the_default_readout_list_answers_the_whole_list": ("flashmem", 1024 * 1024,
                                                                   _NOR)}


def test_default_readout_has_the_active_tariff():
    board, m, d = tp._meter()
    ro = d.readout()
    addrs = [a for a, _v, _u in ro]
    assert "0.0.96.14.0" in defaults.READOUT
    assert addrs.index("0.0.96.14.0") == addrs.index("16.8.0") + 1, addrs
    assert ro[addrs.index("0.0.96.14.0")][1:] == ("%d" % m.tariffs.active, None)
    # the readout over a port: the data line is there, byte for byte
    opt = tp.Port(d, events.SRC_OPTICAL)
    assert opt.x(b"/?12345678!\r\n").startswith(b"/OMF5")
    out = opt.x(b"\x06050\r\n")
    assert b"\r\n0.0.96.14.0(1)\r\n" in out, out


def test_list_groups_of_whole_codes():
    codes = list(defaults.READOUT)
    g = list_groups(codes)
    assert isinstance(g, tuple) and len(g) == 2, g
    assert all(len(x) <= 128 for x in g) and ",".join(g) == ",".join(codes), g
    assert list_groups(["1.8.0", "C.1.0"]) == "1.8.0,C.1.0"
    long = ["1.8.%d" % (k % 10) for k in range(64)]  # 64 codes (the list's limit)
    g = list_groups(long, 20)
    assert ",".join(g).split(",") == long and all(len(x) <= 20 for x in g), g
    msg = bytes(iec.build_data("C.90.3", ("a,b", "c")))
    assert msg[1:-2] == b"C.90.3(a,b)(c)", msg


def test_r1_of_the_default_readout_list_answers_the_whole_list():
    board, m, d = tp._meter()
    opt = tp.Port(d, events.SRC_OPTICAL)
    assert opt.prog() == iec.ACK_MSG
    out = opt.x(tp._cmd("R", 1, "C.90.3()"))
    assert out[:1] == b"\x02" and out[-2:-1] == b"\x03", out
    body = out[1:-2].decode()
    assert body.startswith("C.90.3(") and body.endswith(")"), body
    groups = body[len("C.90.3("):-1].split(")(")
    assert ",".join(groups).split(",") == list(defaults.READOUT), groups
    assert all(len(x) <= 128 for x in groups)
    # a written list that fits one value is answered as one
    assert opt.x(tp._cmd("W", 1, "C.90.3(1.8.0,0.0.96.14.0)")) == iec.ACK_MSG
    assert opt.x(tp._cmd("R", 1, "C.90.3()"))[1:-2] == b"C.90.3(1.8.0,0.0.96.14.0)"
