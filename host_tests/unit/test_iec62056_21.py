"""IEC 62056-21 codec (lib/iec62056/codec.py) and the client side (tools/iec_client.py):
BCC, parity, baud characters, sign-on and programming-mode messages. BCC vectors come from an
exchange captured between the PyPI client iec62056-21 0.0.2 and a fake meter over TCP."""

import sys

from iec62056 import codec as iec

_ROOT = __file__[: __file__.rfind("host_tests")]
if _ROOT + "tools" not in sys.path:
    sys.path.append(_ROOT + "tools")

import iec_client as cli  # noqa: E402  (the client side of the protocol)


def _xor7(bs):
    # Reference BCC over exactly the bytes given (already cut after SOH/STX through ETX).
    x = 0
    for b in bs:
        x ^= b
    return x & 0x7F


def _raises(fn, exc=ValueError):
    try:
        fn()
    except exc:
        return True
    return False


class _Lcg:
    # Tiny deterministic generator (same sequence on CPython and MicroPython).
    def __init__(self, seed):
        self.s = seed

    def next(self, n):
        self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.s >> 8) % n


def test_bcc_break_message():
    assert iec.bcc(b"B0\x03") == 0x71, "B0 ETX -> 'q' (ISO 1745 LRC)"
    assert iec.bcc(b"\x01B0\x03") == ord("q"), "leading SOH is skipped"
    assert iec.BREAK_MSG == b"\x01B0\x03q", iec.BREAK_MSG
    assert iec.build_command("B", 0) == bytearray(iec.BREAK_MSG), "build_command B0"


def test_bcc_vectors_from_capture():
    # captured between the iec62056-21 client and a fake meter (TCP).
    p0 = iec.build_command("P", 0, "(12345678)")
    assert bytes(p0) == b"\x01P0\x02(12345678)\x03h", p0
    p1 = iec.build_command("P", 1, "(00000000)")
    assert p1[-1] == ord("a"), p1
    r1 = iec.build_command("R", 1, "1.8.0(1)")
    assert r1[-1] == ord("k"), r1
    data = iec.build_data("1.8.0", "0012345.678", "kWh")
    assert bytes(data) == b"\x021.8.0(0012345.678*kWh)\x03c", data
    err = iec.build_error(1)
    assert bytes(err) == b"\x02(ER01)\x03\x14", err


def test_bcc_scope_and_mask():
    # Bytes after ETX are not part of the BCC; high bits are masked to 7 bits.
    assert iec.bcc(b"\x02AB\x03ZZZ") == _xor7(b"AB\x03"), "stops at ETX"
    assert iec.bcc(b"\x02AB\x04Z") == _xor7(b"AB\x04"), "stops at EOT"
    assert iec.bcc(b"\xff\x80") == (0xFF ^ 0x80) & 0x7F, "7-bit result"
    assert iec.bcc(b"\x02AB\x03Z", 3) == _xor7(b"AB"), "n limits the span"
    frame = b"\x01R1\x02C.1.0()\x03"
    good = frame + bytes((iec.bcc(frame),))
    assert cli.check_bcc(good), good
    assert cli.check_bcc(good[:-1] + bytes((good[-1] | 0x80,))), "parity bit on BCC ignored"
    assert not cli.check_bcc(good[:-1] + bytes((good[-1] ^ 1,))), "corrupted BCC"
    assert not cli.check_bcc(b"\x03"), "too short"


def test_even_parity_helpers():
    for c in range(128):
        p = cli.add_even_parity(c)
        ones = 0
        v = p
        while v:
            ones += v & 1
            v >>= 1
        assert ones % 2 == 0, "even number of ones for %d -> %d" % (c, p)
        assert cli.strip_parity(p) == c, "strip restores %d" % c
        assert cli.parity_ok(p), "parity_ok(%d)" % p
        assert not cli.parity_ok(p ^ 0x80), "wrong parity detected for %d" % c
    assert cli.add_even_parity(0x41) == 0x41, "'A' has two ones"
    assert cli.add_even_parity(0x43) == 0xC3, "'C' has three ones"
    buf = bytearray(b"/?!\r\n")
    iec.add_parity_into(buf)
    assert bytes(buf) == bytes(cli.add_even_parity(c) for c in b"/?!\r\n"), buf
    cli.strip_parity_into(buf)
    assert bytes(buf) == b"/?!\r\n", buf


def test_baud_characters():
    rates = [cli.baud_for_char(chr(0x30 + i)) for i in range(7)]
    assert rates == [300, 600, 1200, 2400, 4800, 9600, 19200], rates
    assert cli.baud_for_char(ord("5")) == 9600, "int code accepted"
    for bad in ("7", "9", "A", "/", "", "55"):
        assert _raises(lambda b=bad: cli.baud_for_char(b)), "reserved/invalid %r" % bad
    for r in rates:
        assert cli.baud_for_char(cli.char_for_baud(r)) == r, r
    assert _raises(lambda: cli.char_for_baud(115200)), "115200 is outside mode C"


def test_request_parse_and_build():
    assert iec.parse_request(b"/?!\r\n") == "", "unaddressed"
    assert iec.parse_request(b"/?12345678!\r\n") == "12345678", "addressed"
    a32 = "A1" * 16
    assert iec.parse_request(cli.build_request(a32)) == a32, "32 characters allowed"
    assert _raises(lambda: iec.parse_request(b"/?" + b"1" * 33 + b"!\r\n")), "33 too long"
    assert _raises(lambda: cli.build_request("1" * 33)), "build refuses 33"
    bad_requests = (b"/?12 3!\r\n", b"/?12-3!\r\n", b"/?123!\n", b"/?123\r\n", b"?123!\r\n")
    for bad in bad_requests + (b"/!\r\n",):
        assert _raises(lambda b=bad: iec.parse_request(b)), bad
    assert cli.build_request() == b"/?!\r\n", cli.build_request()
    buf = bytearray(b"/?42!\r\nJUNK")
    assert iec.parse_request(buf, 7) == "42", "n bounds the message"


def test_identification():
    m = iec.build_identification("XYZ", "5", "OPENMETER")
    assert m == b"/XYZ5OPENMETER\r\n", m
    e = iec.build_identification("XYZ", "5", "OM1", escape="2")
    assert e == b"/XYZ5\\2OM1\r\n", e
    assert cli.parse_identification(m) == ("XYZ", "5", None, "OPENMETER"), "parse plain"
    assert cli.parse_identification(e) == ("XYZ", "5", "2", "OM1"), "parse with \\W"
    assert iec.build_identification("XYZ", "6", "A" * 16).endswith(b"A" * 16 + b"\r\n"), "16"
    for args in (
        ("X1Z", "5", "ID"),
        ("XY", "5", "ID"),
        ("XYZ", "!", "ID"),
        ("XYZ", "5", "A" * 17),
        ("XYZ", "5", "A/B"),
        ("XYZ", "5", "A!B"),
        ("XYZ", "5", "\\2X"),
    ):
        assert _raises(lambda a=args: iec.build_identification(*a)), args
    assert iec.short_reaction("XYz"), "3rd letter lowercase -> 20 ms"
    assert not iec.short_reaction("XYZ"), "uppercase -> 200 ms"
    assert not iec.short_reaction("xyZ"), "only the 3rd letter counts"


def test_option_select():
    assert iec.parse_option_select(b"\x06050\r\n") == ("0", "5", "0"), "readout at 9600"
    assert iec.parse_option_select(b"\x06031\r\n") == ("0", "3", "1"), "programming at 2400"
    assert cli.build_option_select("2", "5", "2") == b"\x06252\r\n", "mode E option"
    for bad in (b"\x0605\r\n", b"\x060500\r\n", b"\x15050\r\n", b"\x06050\n\r", b"\x06\x010\r\n"):
        assert _raises(lambda b=bad: iec.parse_option_select(b)), bad


def test_readout_exact_bytes():
    items = [
        ("C.1.0", "12345678", None),
        ("0.9.1", "134501", ""),
        ("1.8.0", "0001234.567", "kWh"),
        ("0.2.0", "OM-1.0", None),
    ]
    body = b"C.1.0(12345678)\r\n0.9.1(134501)\r\n1.8.0(0001234.567*kWh)\r\n0.2.0(OM-1.0)\r\n!\r\n"
    expect = b"\x02" + body + b"\x03" + bytes((_xor7(body + b"\x03"),))
    got = iec.build_readout(items)
    assert bytes(got) == expect, got
    empty = iec.build_readout([])
    assert bytes(empty) == b"\x02!\r\n\x03" + bytes((_xor7(b"!\r\n\x03"),)), empty
    for line in bytes(got)[1:-2].split(b"\r\n"):
        assert len(line) <= iec.MAX_LINE, line


def test_readout_field_limits():
    ok = ("1.8.0", "1", "kWh")
    bad_items = [
        ("A" * 17, "1", None),
        ("1.8.0", "1" * 33, None),
        ("1.8.0", "1", "u" * 17),
        ("1.8.0", "1*2", None),
        ("1.8.0", "(1)", None),
        ("1/8", "1", None),
        ("1.8.0", "1!", None),
        ("1.8.0", "1\x01", None),
        ("1.8.0", 5, None),
        ("1.8.0",),
    ]
    for item in bad_items:
        assert _raises(lambda i=item: iec.build_readout([i])), item
        got = iec.build_readout([ok, item, ok], skip_invalid=True)
        assert bytes(got) == bytes(iec.build_readout([ok, ok])), (item, got)
    assert len(cli.data_set("A" * 16, "1" * 32, "u" * 16)) == 67, "largest readout set"
    assert cli.data_set("1.8.0*12", "5", None) == b"1.8.0*12(5)", "'*' allowed in address"


def test_data_set_parse():
    cases = [
        ("1.8.0(1)", ("1.8.0", "1", None)),
        ("1.8.0()", ("1.8.0", "", None)),
        ("(00000000)", ("", "00000000", None)),
        ("1.8.0(0012345.678*kWh)", ("1.8.0", "0012345.678", "kWh")),
        ("1.8.0*01(5*Wh)", ("1.8.0*01", "5", "Wh")),
    ]
    for text, want in cases:
        got = iec.parse_data_set(text)
        assert got == want, (text, got)
    for bad in ("1.8.0", "1.8.0(1", "1.8.0)1(", "1.8.0((1))", "", "(", "1.8.0(1)x"):
        assert _raises(lambda b=bad: iec.parse_data_set(b)), bad


def test_parse_command():
    assert iec.parse_command(iec.BREAK_MSG) == ("B", 0, None, False), "B0"
    p1 = iec.build_command("P", 1, "(00000000)")
    assert iec.parse_command(p1) == ("P", 1, "(00000000)", False), "P1"
    w1 = iec.build_command("W", 1, "C.90.1(1234)")
    assert iec.parse_command(w1) == ("W", 1, "C.90.1(1234)", False), "W1"
    part = bytearray(b"\x01R3\x02P.01()\x04")
    part.append(iec.bcc(part))
    assert iec.parse_command(part) == ("R", 3, "P.01()", True), "EOT = partial block"
    bad = bytearray(p1)
    bad[-1] ^= 0x01
    assert _raises(lambda: iec.parse_command(bad), iec.BccError), "BCC mismatch"
    hi = bytearray(p1)
    hi[-1] |= 0x80
    assert iec.parse_command(hi)[0] == "P", "BCC parity bit ignored"
    x = bytearray(b"\x01X1\x02a()\x03")
    x.append(iec.bcc(x))
    try:
        iec.parse_command(x)
        raised = None
    except iec.BccError:
        raised = "bcc"
    except ValueError:
        raised = "value"
    assert raised == "value", "unknown command with a valid BCC is not a BCC error"
    for frame in (b"\x01P\x03", b"\x02P1\x03q", b"\x01P1(1)\x03", b"\x01PA\x03"):
        f = bytearray(frame)
        if f[-1] == iec.ETX:
            f.append(iec.bcc(f))
        assert _raises(lambda f=f: iec.parse_command(f)), frame
    ctl = bytearray(b"\x01W1\x02a(\x01)\x03")
    ctl.append(iec.bcc(ctl))
    assert _raises(lambda: iec.parse_command(ctl)), "control character in data"


def test_data_and_error_messages():
    v128 = "9" * 128
    d = iec.build_data("C.90.2", v128)
    assert bytes(d[:8]) == b"\x02C.90.2(", d[:8]
    assert cli.check_bcc(d), "data BCC"
    assert _raises(lambda: iec.build_data("C.90.2", v128 + "9")), "129 > programming limit"
    assert _raises(lambda: cli.data_set("C", "9" * 33)), "33 > readout limit"
    e = iec.build_error(6)
    assert bytes(e[:7]) == b"\x02(ER06)", e
    assert cli.check_bcc(e), "error BCC"
    t = iec.build_error("ER42 SEAL")
    assert bytes(t[1:-2]) == b"(ER42 SEAL)", t
    for bad in (100, -1, "E" * 33, "ER(1)"):
        assert _raises(lambda b=bad: iec.build_error(b)), bad


def _naive_date(days):
    # Independent reference: walk the calendar from 2000-01-01 one year/month at a time.
    y = 2000
    while True:
        leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
        n = 366 if leap else 365
        if days < n:
            break
        days -= n
        y += 1
    ml = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    m = 0
    while days >= ml[m]:
        days -= ml[m]
        m += 1
    return y, m + 1, days + 1


def test_date_time_text():
    assert iec.date_time_text(0) == ("000101", "000000"), "RTC epoch"
    assert iec.date_time_text(86399) == ("000101", "235959"), "end of first day"
    for days in list(range(0, 40000, 97)) + [59, 60, 365, 366, 1519, 1520, 36524, 36525]:
        y, m, d = _naive_date(days)
        secs = days * 86400 + 3723
        want = ("%02d%02d%02d" % (y % 100, m, d), "010203")
        got = iec.date_time_text(secs)
        assert got == want, (days, got, want)


def test_parsers_reject_garbage_with_valueerror_only():
    rnd = _Lcg(7)
    parsers = (
        iec.parse_request,
        iec.parse_command,
        iec.parse_option_select,
        cli.parse_identification,
    )
    alphabet = b"/?!\r\n\x01\x02\x03\x04\x06\x15()*PRWEB01259.A"
    for _ in range(600):
        n = rnd.next(24)
        if rnd.next(2):
            msg = bytes(alphabet[rnd.next(len(alphabet))] for _ in range(n))
        else:
            msg = bytes(rnd.next(256) for _ in range(n))
        for p in parsers:
            try:
                p(msg)
            except ValueError:
                pass
    for _ in range(300):
        n = rnd.next(24)
        text = "".join(chr(alphabet[rnd.next(len(alphabet))]) for _ in range(n))
        try:
            iec.parse_data_set(text)
        except ValueError:
            pass


def test_same_address_is_one_helper_for_both_sides():
    # one definition (codec): the meter's session and the bus master's client match
    # addresses alike (all digits: leading zeros ignored; letters: exact)
    from iec62056 import client, session

    assert session.same_address is iec.same_address is client.same_address
    assert iec.same_address("0012", "12") and iec.same_address("000", "0")
    assert not iec.same_address("A12", "a12") and not iec.same_address("12", "120")
    assert not iec.same_address("", "0") and iec.same_address("AB", "AB")
