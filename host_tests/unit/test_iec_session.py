"""IEC 62056-21 meter-side session (lib/iec62056/session.py): sign-on, readout, programming mode,
timeouts, addressing, password lockout, seal, robustness; plus the port task
(firmware/ports/pump.py) over the virtual board's TCP UART (boards/sim/uart.py)."""

import sys

from iec62056 import codec as iec

_ROOT = __file__[: __file__.rfind("host_tests")]
if _ROOT + "tools" not in sys.path:
    sys.path.append(_ROOT + "tools")

import iec_client as cli  # noqa: E402  (the client side of the protocol)
from iec62056 import session as S  # noqa: E402

SERIAL = "12345678"
ITEMS = [
    ("C.1.0", SERIAL, None),
    ("0.9.1", "134501", None),
    ("0.9.2", "250101", None),
    ("1.8.0", "0001234.567", "kWh"),
    ("2.8.0", "0000012.000", "kWh"),
    ("0.2.0", "OM-0.1", None),
]
REGS = {"1.8.0": ("0012345.678", "kWh"), "C.1.0": (SERIAL, None)}


class Meter:
    """A session with recording callbacks: a small register map, a seal, an event log."""

    def __init__(self, **kw):
        self.events = []
        self.full = []  # (code, detail, value, cmd)
        self.written = {}
        self.executed = []
        self.seal = False  # closed
        self.params = {"C.90.1": "0", "0.0.5": "1"}  # C.90.1 metrological, 0.0.5 free
        args = dict(
            device_address=SERIAL,
            readout=lambda: ITEMS,
            reader=self.read,
            writer=self.write,
            executor=self.execute,
            seal_open=lambda: self.seal,
            on_event=self.event,
        )
        args.update(kw)
        self.s = S.Session(**args)

    def event(self, code, detail, value, cmd):
        self.events.append((code, detail))
        self.full.append((code, detail, value, cmd))

    def read(self, addr):
        if addr in REGS:
            return REGS[addr]
        if addr in self.params:
            return self.params[addr], None
        raise KeyError(addr)

    def write(self, addr, value, sealed):
        if addr in REGS:
            return S.ER_NOT_WRITABLE
        if addr not in self.params:
            raise KeyError(addr)
        if addr == "C.90.1" and sealed:
            return S.ER_SEALED
        if not value.isdigit():
            raise ValueError(value)
        if value == "666":
            raise RuntimeError("boom")
        self.params[addr] = value
        self.written[addr] = value
        return None

    def execute(self, addr, args, sealed):
        if addr == "C.99.1" and sealed:
            return S.ER_SEALED
        if addr not in ("C.99.0", "C.99.1"):
            raise S.IecError(S.ER_UNKNOWN_ADDRESS)
        self.executed.append((addr, args))
        return None

    def codes(self):
        return [e[0] for e in self.events]


def drain(s, data, now):
    """Feed `data` at `now` (None: only poll) and return every action produced."""
    acts = []
    a = s.feed(data, now) if data is not None else s.poll(now)
    while a is not None:
        acts.append(a)
        a = s.poll(now)
    return acts


def sent(acts):
    return b"".join(bytes(a[1]) for a in acts if a[1])


def cmd(c, t, data=None):
    return bytes(iec.build_command(c, t, data))


def is_action(a):
    return (
        isinstance(a, tuple)
        and len(a) == 3
        and isinstance(a[0], int)
        and (a[1] is None or len(a[1]) > 0)
        and a[2] in (0,) + iec.BAUD_RATES
    )


def sign_on(m, mode="1", t=1000, z="5"):
    """Request + option select; returns the time after the first answer."""
    acts = drain(m.s, b"/?" + SERIAL.encode() + b"!\r\n", t)
    assert len(acts) == 1 and acts[0][1].startswith(b"/XYZ5"), acts
    acts = drain(m.s, cli.build_option_select("0", z, mode), t + 1000)
    assert acts, "answer to option select"
    return t + 3000, acts


def prog(m, password=S.DEFAULT_PASSWORD):
    t, acts = sign_on(m, "1")
    acts = drain(m.s, cmd("P", 1, "(" + password + ")"), t)
    return t + 1000, acts


# ---------------------------------------------------------------------------------------------
# Sign-on and readout


def test_readout_flow_exact_bytes_and_timing():
    m = Meter()
    acts = drain(m.s, b"/?12345678!\r\n", 1000)
    assert acts == [(1200, b"/XYZ5OPENMETER\r\n", 0)], acts
    assert m.s.state == S.IDENT, m.s.state
    acts = drain(m.s, b"\x06050\r\n", 2000)
    assert acts[0] == (2000, None, 9600), "switch to 9600 at once: %r" % (acts,)
    assert acts[1][0] == 2800 and acts[1][2] == 0, "readout after switch_ms: %r" % (acts,)
    assert bytes(acts[1][1]) == bytes(iec.build_readout(ITEMS)), acts[1][1]
    assert m.s.state == S.READOUT and m.s.baud == 9600, (m.s.state, m.s.baud)
    # Still at 9600 during the NAK window; back to 300 once it has passed.
    assert drain(m.s, None, 2900) == [], "hold"
    acts = drain(m.s, None, 2800 + 1000 + 1500 + 10)
    assert acts and acts[-1][1:] == (None, 300), acts
    assert m.s.state == S.IDLE and m.s.baud == 300, m.s.state


def test_readout_nak_repeats_then_gives_up():
    m = Meter()
    t, acts = sign_on(m, "0")
    block = bytes(acts[-1][1])
    for i in range(3):
        again = drain(m.s, iec.NAK_MSG, t + i * 10)
        assert len(again) == 1 and bytes(again[0][1]) == block, (i, again)
    last = drain(m.s, iec.NAK_MSG, t + 50)
    assert last == [(t + 50, None, 300)], "4th NAK ends the session: %r" % (last,)


def test_reaction_time_rules():
    m = Meter(reaction_ms=20)
    acts = drain(m.s, b"/?!\r\n", 500)
    assert acts[0][0] == 700, "uppercase id: clamped to 200 ms (%r)" % (acts,)
    m = Meter(manufacturer="XYz", reaction_ms=20)
    acts = drain(m.s, b"/?!\r\n", 500)
    assert acts[0] == (520, b"/XYz5OPENMETER\r\n", 0), acts
    m = Meter(reaction_ms=5000, switch_ms=9000)
    assert m.s.reaction_ms == 1500 and m.s.switch_ms == 1500, "tr <= 1500 ms"


def test_client_may_choose_lower_speed_only():
    m = Meter()
    drain(m.s, b"/?!\r\n", 0)
    acts = drain(m.s, b"\x06030\r\n", 1000)
    assert acts[0] == (1000, None, 2400), acts
    m = Meter(baud_char="4")
    drain(m.s, b"/?!\r\n", 0)
    acts = drain(m.s, b"\x06050\r\n", 1000)
    assert acts == [] and m.s.state == S.IDLE, "9600 not offered: %r" % (acts,)
    m = Meter()
    drain(m.s, b"/?!\r\n", 0)
    acts = drain(m.s, b"\x06000\r\n", 1000)
    assert len(acts) == 1 and acts[0][2] == 0 and m.s.baud == 300, "stay at 300: %r" % acts


def test_unsupported_option_modes_return_to_idle():
    for opt in (b"\x06252\r\n", b"\x06056\r\n", b"\x06150\r\n", b"\x060X0\r\n"):
        m = Meter()
        drain(m.s, b"/?!\r\n", 0)
        acts = drain(m.s, opt, 1000)
        assert acts == [] and m.s.state == S.IDLE, (opt, acts)


def test_identification_configurable():
    m = Meter(manufacturer="ABC", ident="OM1", baud_char="6")
    acts = drain(m.s, b"/?!\r\n", 0)
    assert acts[0][1] == b"/ABC6OM1\r\n", acts
    for bad in ({"baud_char": "7"}, {"baud_char": "A"}, {"manufacturer": "AB"}):
        try:
            S.Session(**bad)
            ok = False
        except ValueError:
            ok = True
        assert ok, bad


def test_ack_timeout_returns_to_idle():
    m = Meter(ack_timeout_ms=3000)
    acts = drain(m.s, b"/?!\r\n", 1000)
    tx_end = 1200 + (len(acts[0][1]) * 10000 + 299) // 300 + 1
    drain(m.s, None, tx_end + 2990)
    assert m.s.state == S.IDENT, "still waiting"
    drain(m.s, None, tx_end + 3010)
    assert m.s.state == S.IDLE, "gave up"


def test_next_deadline_for_port_sleep():
    m = Meter(gap_ms=1500, ack_timeout_ms=3000)
    assert m.s.next_deadline(0) == -1, "idle: nothing to wait for"
    m.s.feed(b"/?12", 1000)
    assert m.s.next_deadline(1100) == 1400, "gap timer: %d" % m.s.next_deadline(1100)
    a = m.s.feed(b"345678!\r\n", 1200)
    assert a is not None and a[1].startswith(b"/XYZ"), a
    d = m.s.next_deadline(1500)
    assert 3000 < d < 3000 + 1000, "ack timeout after the identification: %d" % d
    a = m.s.feed(b"\x06050\r\n", 2000)
    assert a == (2000, None, 9600), a
    assert m.s.next_deadline(2000) == 0, "the readout is still queued"


def test_char_gap_timeout_drops_partial_request():
    m = Meter(gap_ms=1500)
    drain(m.s, b"/?1234", 1000)
    acts = drain(m.s, b"5678!\r\n", 2600)
    assert acts == [] and m.s.state == S.IDLE, "stale first half dropped: %r" % (acts,)
    drain(m.s, b"/?1234", 5000)
    acts = drain(m.s, b"5678!\r\n", 6400)
    assert len(acts) == 1, "within the gap: answered"


# ---------------------------------------------------------------------------------------------
# Addressing


def test_addressed_and_unaddressed_requests():
    bus = Meter(answer_unaddressed=False)
    assert drain(bus.s, b"/?!\r\n", 0) == [], "RS-485: /?! ignored"
    assert drain(bus.s, b"/?87654321!\r\n", 1000) == [], "other meter"
    assert len(drain(bus.s, b"/?12345678!\r\n", 2000)) == 1, "own address"
    bus = Meter(answer_unaddressed=False)
    assert len(drain(bus.s, b"/?0012345678!\r\n", 0)) == 1, "leading zeros ignored"
    opt = Meter()
    assert len(drain(opt.s, b"/?!\r\n", 0)) == 1, "optical: /?! answered"
    opt = Meter(device_address="AB12")
    assert drain(opt.s, b"/?0AB12!\r\n", 0) == [], "zeros only stripped for digits"
    assert len(drain(opt.s, b"/?AB12!\r\n", 100)) == 1, "letters exact"


def test_request_for_other_meter_ends_ident():
    bus = Meter(answer_unaddressed=False)
    drain(bus.s, b"/?12345678!\r\n", 0)
    assert bus.s.state == S.IDENT, bus.s.state
    drain(bus.s, b"/?99999999!\r\n", 1000)
    assert bus.s.state == S.IDLE, "master talks to another meter"


# ---------------------------------------------------------------------------------------------
# Programming mode


def test_p0_then_password_then_read():
    m = Meter()
    t, acts = sign_on(m, "1")
    assert acts[0] == (2000, None, 9600), acts
    assert bytes(acts[1][1]) == b"\x01P0\x02(12345678)\x03h", acts[1]
    acts = drain(m.s, cmd("R", 1, "1.8.0()"), t)
    assert sent(acts) == bytes(iec.build_error(S.ER_NO_PASSWORD)), "R1 before P1: %r" % acts
    acts = drain(m.s, cmd("P", 1, "(00000000)"), t + 100)
    assert acts == [(t + 300, iec.ACK_MSG, 0)], acts
    assert m.s.authorized and S.EV_PROG_ENTER in m.codes(), m.events
    want = b"\x021.8.0(0012345.678*kWh)\x03c"
    assert sent(drain(m.s, cmd("R", 1, "1.8.0()"), t + 200)) == want, "ADDR()"
    assert sent(drain(m.s, cmd("R", 1, "1.8.0(1)"), t + 300)) == want, "ADDR(1)"
    got = sent(drain(m.s, cmd("R", 1, "C.1.0()"), t + 400))
    assert got == bytes(iec.build_data("C.1.0", SERIAL)), got
    got = sent(drain(m.s, cmd("R", 1, "1.8.0(2)"), t + 500))
    assert got == bytes(iec.build_error(S.ER_BAD_VALUE)), got
    got = sent(drain(m.s, cmd("R", 1, "9.9.9(1)"), t + 600))
    assert got == b"\x02(ER01)\x03\x14", got


def test_read_without_password_when_allowed():
    m = Meter(read_needs_password=False)
    t, _ = sign_on(m, "1")
    got = sent(drain(m.s, cmd("R", 1, "1.8.0()"), t))
    assert got == b"\x021.8.0(0012345.678*kWh)\x03c", got
    got = sent(drain(m.s, cmd("W", 1, "0.0.5(2)"), t + 100))
    assert got == bytes(iec.build_error(S.ER_NO_PASSWORD)), "writes still need P1"


def test_wrong_password_lockout_and_expiry():
    m = Meter(max_failures=3, lockout_ms=60000)
    t, _ = sign_on(m, "1")
    for i in range(2):
        got = sent(drain(m.s, cmd("P", 1, "(11111111)"), t + i))
        assert got == bytes(iec.build_error(S.ER_WRONG_PASSWORD)), (i, got)
    got = sent(drain(m.s, cmd("P", 1, "(22222222)"), t + 10))
    assert got == bytes(iec.build_error(S.ER_LOCKED)), "3rd failure locks: %r" % got
    assert m.codes().count(S.EV_PW_WRONG) == 3 and S.EV_LOCKED in m.codes(), m.events
    got = sent(drain(m.s, cmd("P", 1, "(00000000)"), t + 20))
    assert got == bytes(iec.build_error(S.ER_LOCKED)), "right password refused while locked"
    assert not m.s.authorized and S.EV_PW_LOCKED in m.codes(), m.events
    # A new session does not clear the lockout.
    drain(m.s, iec.BREAK_MSG, t + 30)
    t2, _ = sign_on(m, "1", t=t + 1000)
    got = sent(drain(m.s, cmd("P", 1, "(00000000)"), t2))
    assert got == bytes(iec.build_error(S.ER_LOCKED)), "lockout survives B0"
    # After the lockout the right password works and the count restarts.
    t3 = t + 10 + 60000 + 1
    drain(m.s, iec.BREAK_MSG, t3)
    t4, _ = sign_on(m, "1", t=t3)
    got = sent(drain(m.s, cmd("P", 1, "(00000000)"), t4))
    assert got == iec.ACK_MSG and m.s.failures == 0, (got, m.s.failures)


def test_password_callable_and_list():
    current = ["secret01"]
    m = Meter(passwords=lambda: current[0])
    t, acts = prog(m, "secret01")
    assert sent(acts) == iec.ACK_MSG, acts
    current[0] = "secret02"
    got = sent(drain(m.s, cmd("P", 1, "(secret01)"), t))
    assert got == bytes(iec.build_error(S.ER_WRONG_PASSWORD)), "old password rejected"
    m = Meter(passwords=("aaaa", "bbbb"))
    t, acts = prog(m, "bbbb")
    assert sent(acts) == iec.ACK_MSG, "any listed password"
    m = Meter()
    t, _ = sign_on(m, "1")
    got = sent(drain(m.s, cmd("P", 1), t))
    assert got == bytes(iec.build_error(S.ER_WRONG_PASSWORD)), "P1 without data"


def test_write_permitted_refused_and_sealed():
    m = Meter()
    t, _ = sign_on(m, "1")
    got = sent(drain(m.s, cmd("W", 1, "0.0.5(7)"), t))
    assert got == bytes(iec.build_error(S.ER_NO_PASSWORD)), "W1 before P1"
    assert sent(drain(m.s, cmd("P", 1, "(00000000)"), t + 10)) == iec.ACK_MSG, "P1"
    assert sent(drain(m.s, cmd("W", 1, "0.0.5(7)"), t + 20)) == iec.ACK_MSG, "permitted"
    assert m.written == {"0.0.5": "7"} and (S.EV_WRITE, "0.0.5") in m.events, m.events
    cases = [
        ("1.8.0(5)", S.ER_NOT_WRITABLE),
        ("7.7.7(5)", S.ER_UNKNOWN_ADDRESS),
        ("0.0.5(x)", S.ER_BAD_VALUE),
        ("0.0.5(666)", S.ER_FAILED),
        ("0.0.5", S.ER_BAD_VALUE),
    ]
    for data, code in cases:
        got = sent(drain(m.s, cmd("W", 1, data), t + 30))
        assert got == bytes(iec.build_error(code)), (data, got)
    # Seal closed: refused although the password was right, and logged.
    got = sent(drain(m.s, cmd("W", 1, "C.90.1(5)"), t + 40))
    assert got == b"\x02(ER06)\x03" + bytes((iec.bcc(b"(ER06)\x03"),)), got
    assert (S.EV_SEALED, "C.90.1") in m.events and "C.90.1" not in m.written, m.events
    m.seal = True  # opened
    assert sent(drain(m.s, cmd("W", 1, "C.90.1(5)"), t + 50)) == iec.ACK_MSG, "seal open"
    assert m.written.get("C.90.1") == "5", m.written


def test_seal_defaults_to_closed():
    m = Meter(seal_open=None)
    t, _ = prog(m)
    got = sent(drain(m.s, cmd("W", 1, "C.90.1(5)"), t))
    assert got == bytes(iec.build_error(S.ER_SEALED)), "no seal input = sealed"
    m = Meter(seal_open=lambda: 1 / 0)
    t, _ = prog(m)
    got = sent(drain(m.s, cmd("W", 1, "C.90.1(5)"), t))
    assert got == bytes(iec.build_error(S.ER_SEALED)), "failing seal input = sealed"


def test_execute_and_unsupported_commands():
    m = Meter()
    t, _ = prog(m)
    assert sent(drain(m.s, cmd("E", 2, "C.99.0()"), t)) == iec.ACK_MSG, "E2"
    assert m.executed == [("C.99.0", "")] and (S.EV_EXEC, "C.99.0") in m.events, m.events
    got = sent(drain(m.s, cmd("E", 2, "C.99.1(1)"), t + 10))
    assert got == bytes(iec.build_error(S.ER_SEALED)), "sealed command"
    got = sent(drain(m.s, cmd("E", 2, "C.42.0()"), t + 20))
    assert got == bytes(iec.build_error(S.ER_UNKNOWN_ADDRESS)), "IecError code passed"
    for c, ty, data in (("E", 1, "C.99.0()"), ("R", 2, "1.8.0()"), ("W", 2, "0.0.5(1)"),
                        ("P", 2, "(x)"), ("P", 0, "(x)"), ("R", 5, "P.01()")):
        got = sent(drain(m.s, cmd(c, ty, data), t + 30))
        assert got == bytes(iec.build_error(S.ER_UNSUPPORTED)), (c, ty, got)
    part = bytearray(b"\x01R3\x021.8.0()\x04")
    part.append(iec.bcc(part))
    got = sent(drain(m.s, bytes(part), t + 40))
    assert got == bytes(iec.build_error(S.ER_UNSUPPORTED)), "partial blocks"


def test_break_and_inactivity_return_to_300():
    m = Meter()
    t, _ = prog(m)
    acts = drain(m.s, iec.BREAK_MSG, t)
    assert acts == [(t, None, 300)] and m.s.state == S.IDLE, acts
    assert (S.EV_PROG_EXIT, "B0") in m.events, m.events
    assert drain(m.s, cmd("R", 1, "1.8.0()"), t + 10) == [], "no answers after B0"
    m.s.reset(t + 20)
    assert drain(m.s, None, t + 20) == [(t + 20, None, 300)], "reset forces 300 Bd"
    m = Meter(inactivity_ms=120000)
    t, acts = prog(m)
    ack_end = acts[0][0] + (10000 + 9599) // 9600 + 1
    assert drain(m.s, None, ack_end + 119990) == [] and m.s.state == S.PROG, "not yet"
    acts = drain(m.s, None, ack_end + 120010)
    assert acts == [(ack_end + 120010, None, 300)] and m.s.state == S.IDLE, acts
    assert (S.EV_PROG_EXIT, "timeout") in m.events, m.events
    m = Meter(inactivity_ms=5000)
    t, _ = prog(m)
    for i in range(1, 6):
        drain(m.s, cmd("R", 1, "1.8.0()"), t + i * 4000)
    assert m.s.state == S.PROG, "activity keeps programming mode open"


def test_bcc_error_gets_nak_and_nak_repeats():
    m = Meter()
    t, _ = prog(m)
    bad = bytearray(cmd("R", 1, "1.8.0()"))
    bad[-1] ^= 0x20
    assert sent(drain(m.s, bytes(bad), t)) == iec.NAK_MSG, "NAK on BCC error"
    data = sent(drain(m.s, cmd("R", 1, "1.8.0()"), t + 10))
    for i in range(3):
        assert sent(drain(m.s, iec.NAK_MSG, t + 20 + i)) == data, "repeat %d" % i
    assert drain(m.s, iec.NAK_MSG, t + 30) == [], "at most 3 repeats"
    assert m.s.state == S.PROG, m.s.state


def test_callback_errors_are_mapped():
    def reader(addr):
        if addr == "A":
            raise S.IecError(S.ER_NOT_WRITABLE)
        if addr == "B":
            raise RuntimeError("x")
        if addr == "C":
            return ("bad(value", None)
        raise ValueError(addr)

    m = Meter(reader=reader)
    t, _ = prog(m)
    for addr, code in (("A", 4), ("B", 9), ("C", 9), ("D", 5)):
        got = sent(drain(m.s, cmd("R", 1, addr + "()"), t))
        assert got == bytes(iec.build_error(code)), (addr, got)
    m = Meter(writer=lambda a, v, s: 123)
    t, _ = prog(m)
    got = sent(drain(m.s, cmd("W", 1, "0.0.5(1)"), t))
    assert got == bytes(iec.build_error(S.ER_FAILED)), "out-of-range code"


def test_readout_provider_problems():
    m = Meter(readout=lambda: [("1.8.0", "1", "kWh"), ("bad(", "1", None), None])
    t, acts = sign_on(m, "0")
    assert bytes(acts[-1][1]) == bytes(iec.build_readout([("1.8.0", "1", "kWh")])), acts

    def boom():
        raise OSError("flash")

    m = Meter(readout=boom)
    t, acts = sign_on(m, "0")
    assert bytes(acts[-1][1]) == bytes(iec.build_readout([])), "empty readout"
    assert S.EV_READOUT_ERROR in m.codes(), m.events


def test_parity_bits_and_split_feeds():
    m = Meter()
    req = bytes(cli.add_even_parity(c) for c in b"/?12345678!\r\n")
    acts = []
    for i in range(len(req)):
        acts += drain(m.s, req[i : i + 1], 1000 + i * 33)
    assert len(acts) == 1 and acts[0][1] == b"/XYZ5OPENMETER\r\n", "7E1 seen as 8N1: %r" % acts
    buf = bytearray(b"\x06050\r\nXXXX")
    a = m.s.feed(buf, 2000, 6)
    assert a == (2000, None, 9600), "n limits the bytes fed: %r" % (a,)


def test_byte_path_does_not_allocate():
    # Under heap_lock (MicroPython) an allocation raises MemoryError, which feed() turns into
    # a reset: the frame completed after unlocking would then get no answer.
    import micropython

    m = Meter()
    t, _ = prog(m)
    frame = cmd("R", 1, "1.8.0(1)")
    noise = b"\x00\xff\x13garbage"
    micropython.heap_lock()
    try:
        a1 = m.s.feed(noise, t)
        a2 = m.s.feed(frame, t + 1, len(frame) - 1)
        a3 = m.s.poll(t + 2)
    finally:
        micropython.heap_unlock()
    assert a1 is None and a2 is None and a3 is None, (a1, a2, a3)
    got = sent(drain(m.s, frame[-1:], t + 3))
    assert got == b"\x021.8.0(0012345.678*kWh)\x03c", "frame survived: %r" % got
    m = Meter()
    micropython.heap_lock()
    try:
        m.s.feed(b"/?1234", 0)
    finally:
        micropython.heap_unlock()
    assert len(drain(m.s, b"5678!\r\n", 10)) == 1, "request survived"


# ---------------------------------------------------------------------------------------------
# Robustness


class _Lcg:
    def __init__(self, seed):
        self.s = seed

    def next(self, n):
        self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.s >> 8) % n


def test_garbage_never_raises():
    rnd = _Lcg(11)
    alphabet = b"/?!\r\n\x01\x02\x03\x04\x06\x15()*PRWEB01256.12345678"
    for trial in range(40):
        m = Meter(answer_unaddressed=bool(trial & 1))
        t = rnd.next(1 << 30)  # includes ticks wrap-around
        for _ in range(150):
            n = rnd.next(12)
            if rnd.next(2):
                chunk = bytes(alphabet[rnd.next(len(alphabet))] for _ in range(n))
            else:
                chunk = bytes(rnd.next(256) for _ in range(n))
            t = (t + rnd.next(3000)) & ((1 << 30) - 1)
            for a in drain(m.s, chunk, t):
                assert is_action(a), a
            assert m.s.state in (S.IDLE, S.IDENT, S.READOUT, S.PROG), m.s.state
    m = Meter()
    for junk in (None, 5, "text", [1, 2], b"\x00" * 1000, b"/" + b"1" * 2000):
        a = m.s.feed(junk, 0)
        assert a is None or is_action(a), (junk, a)


def test_mutated_frames_never_raise():
    # Every single-bit flip of every byte of a valid exchange.
    frames = [
        b"/?12345678!\r\n",
        b"\x06051\r\n",
        cmd("P", 1, "(00000000)"),
        cmd("R", 1, "1.8.0(1)"),
        cmd("W", 1, "0.0.5(3)"),
        cmd("E", 2, "C.99.0()"),
        iec.BREAK_MSG,
    ]
    m = Meter()
    t = 0
    answers = 0
    for k in range(len(frames)):
        for pos in range(len(frames[k])):
            for bit in range(7):
                m.s.reset(t)
                for f in frames[:k]:
                    t += 100
                    drain(m.s, f, t)
                mut = bytearray(frames[k])
                mut[pos] ^= 1 << bit
                t += 100
                for a in drain(m.s, bytes(mut), t):
                    assert is_action(a), a
                    if a[1] and a[1][0] in (iec.STX, iec.SOH):
                        assert cli.check_bcc(a[1]), a
                    answers += 1
    assert answers > 0, "some mutations are still valid messages"


# ---------------------------------------------------------------------------------------------
# Port task over the virtual board's TCP UART (both interpreters)


def _tcp_uart():
    import time

    from boards.sim.uart import TcpUart

    base = 30000 + (time.time_ns() // 1000) % 20000 if hasattr(time, "time_ns") else 34567
    for i in range(50):
        try:
            return TcpUart(base + i * 7)
        except OSError:
            pass
    raise OSError("no free port")


def test_sim_uart_format_and_tx_timing():
    import time

    u = _tcp_uart()
    try:
        u.init(baudrate=300, bits=7, parity=0, stop=1)
        assert (u.baudrate, u.bits, u.parity, u.stop) == (300, 7, 0, 1), "7E1 recorded"
        assert u.txdone(), "idle line"
        u.write(b"abc")  # 3 chars at 300 Bd = 100 ms
        assert not u.txdone(), "still shifting out"
        time.sleep(0.15)
        assert u.txdone(), "done after n*10/b"
        u.init(baudrate=9600, bits=8, parity=None)
        assert (u.baudrate, u.bits, u.parity) == (9600, 8, None), "8N1"
        assert u.inits == 2 and u.any() == 0 and u.read() is None, u.inits
        assert u.ioctl(3, 1 | 4) == 4, "writable, nothing to read"
    finally:
        u.close()


class _Pin:
    def __init__(self):
        self.v = 0
        self.highs = 0

    def value(self, v=None):
        if v is None:
            return self.v
        if v and not self.v:
            self.highs += 1
        self.v = v


class _Stop:
    def __init__(self):
        self.flag = False

    def is_set(self):
        return self.flag


async def test_port_task_over_tcp():
    import asyncio
    import socket

    from ports import pump

    u = _tcp_uart()
    m = Meter(reaction_ms=200, switch_ms=200, readout_hold_ms=300)
    de = _Pin()
    stop = _Stop()
    stats = pump.PortStats()
    task = asyncio.create_task(pump.run_port(u, m.s, de_pin=de, stats=stats, stop=stop))
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.connect(socket.getaddrinfo("127.0.0.1", u.port)[0][-1])
    c.setblocking(False)
    got = bytearray()

    async def recv_until(pred, ms):
        for _ in range(ms // 10):
            try:
                d = c.recv(512)
                if d:
                    got.extend(d)
            except OSError:
                pass
            if pred():
                return True
            await asyncio.sleep(0.01)
        return False

    try:
        c.send(b"/?!\r\n")
        ok = await recv_until(lambda: got.endswith(b"\r\n"), 3000)
        assert ok and bytes(got) == b"/XYZ5OPENMETER\r\n", got
        assert u.baudrate == 300 and u.bits == 7 and u.parity == 0, "7E1 300 at sign-on"
        got[:] = b""
        c.send(b"\x06050\r\n")
        ok = await recv_until(lambda: len(got) > 2 and got[-2] == iec.ETX, 3000)
        assert ok and bytes(got) == bytes(iec.build_readout(ITEMS)), got
        assert u.baudrate == 9600, "switched to 9600: %d" % u.baudrate
        ok = await recv_until(lambda: u.baudrate == 300, 3000)
        assert ok and m.s.state == S.IDLE, "back to 300 after the hold time"
        assert de.highs == 2 and de.v == 0, "DE high per message, released: %d" % de.highs
        assert stats.messages == 2 and stats.errors == 0, (stats.messages, stats.errors)
    finally:
        stop.flag = True
        await task
        c.close()
        u.close()


# ---------------------------------------------------------------------------------------------
# Programming rights belong to the dialogue that earned them (issue 7 item 10)


def test_rights_end_when_the_link_ends():
    m = Meter()
    t, acts = prog(m)
    assert sent(acts) == iec.ACK_MSG and m.s.authorized, acts
    drain(m.s, cmd("R", 1, "1.8.0()"), t)  # an answer still queued for client A ...
    m.s.link_lost(t + 10)  # ... when A hangs up and B takes the port
    assert drain(m.s, None, t + 10) == [(t + 10, None, 300)], "queued answer dropped"
    assert m.s.state == S.IDLE and not m.s.authorized, m.s.state
    assert (S.EV_PROG_EXIT, "link") in m.events, m.events
    assert drain(m.s, cmd("W", 1, "0.0.5(9)"), t + 20) == [], "B's W1 gets nothing"
    assert "0.0.5" not in m.written, m.written


def test_any_sign_on_ends_rights_and_is_answered():
    m = Meter()
    t, _ = prog(m)
    acts = drain(m.s, b"/?12345678!\r\n", t)
    assert sent(acts) == b"/XYZ5OPENMETER\r\n", "not deaf to a sign-on: %r" % (acts,)
    assert m.s.state == S.IDENT and not m.s.authorized, m.s.state
    assert (S.EV_PROG_EXIT, "sign-on") in m.events, m.events
    bus = Meter(answer_unaddressed=False)
    t, _ = prog(bus)
    assert drain(bus.s, b"/?99999999!\r\n", t) == [(t, None, 300)], "another meter's sign-on"
    assert bus.s.state == S.IDLE and not bus.s.authorized
    got = drain(bus.s, cmd("W", 1, "0.0.5(9)"), t + 100)
    assert got == [] and "0.0.5" not in bus.written, "an injected W1 after it: nothing"


def test_bad_bcc_junk_neither_refreshes_inactivity_nor_deafens():
    m = Meter(inactivity_ms=120000)
    t, acts = prog(m)
    ack_end = acts[0][0] + 2
    bad = bytearray(cmd("R", 1, "1.8.0()"))
    bad[-1] ^= 0x11
    for i in range(1, 15):  # junk with a bad BCC every 10 s: answered NAK, no refresh
        got = sent(drain(m.s, bytes(bad), t + i * 10000))
        assert got in (iec.NAK_MSG, b""), got
        drain(m.s, iec.NAK_MSG, t + i * 10000 + 1)  # and NAKs asking for repeats
    assert m.s.state == S.IDLE and not m.s.authorized, "120 s after the last valid message"
    assert (S.EV_PROG_EXIT, "timeout") in m.events, m.events
    assert ack_end + 120000 < t + 14 * 10000
    m = Meter()
    t, _ = prog(m)
    junk = b"\x01W1\x02C.90.2(1" + b"7" * 40  # a frame that never ends
    drain(m.s, junk, t)
    acts = drain(m.s, b"/?!\r\n", t + 100)
    assert sent(acts) == b"/XYZ5OPENMETER\r\n", "a sign-on cuts through junk: %r" % (acts,)
    m = Meter()
    t, _ = prog(m)
    drain(m.s, b"/garbage\x01R1\x021.8.0()\x03", t)
    assert m.s.state == S.PROG, "a junk line is no sign-on"


def test_lockout_is_shared_by_the_meters_ports():
    from iec62056.lockout import Lockout

    now = [1000]
    lk = Lockout(3, 600)
    opt = Meter(lockout=lk, time_s=lambda: now[0])
    bus = Meter(lockout=lk, time_s=lambda: now[0], answer_unaddressed=False)
    t, _ = sign_on(opt, "1")
    for i in range(3):
        drain(opt.s, cmd("P", 1, "(1111111%d)" % i), t + i)
    t2, _ = sign_on(bus, "1")
    got = sent(drain(bus.s, cmd("P", 1, "(00000000)"), t2))
    assert got == bytes(iec.build_error(S.ER_LOCKED)), "the other port is locked too: %r" % got
    assert (S.EV_PW_LOCKED, "", 600, "P1") in bus.full, bus.full
    now[0] += 600
    got = sent(drain(bus.s, cmd("P", 1, "(00000000)"), t2 + 100))
    assert got == iec.ACK_MSG, "lockout over (RTC time)"


def test_every_refusal_is_reported_with_address_and_command():
    m = Meter()
    t, _ = sign_on(m, "1")
    drain(m.s, cmd("W", 1, "C.90.2(12345678)"), t)
    drain(m.s, cmd("R", 1, "1.8.0()"), t + 1)
    assert ("refused", "C.90.2", S.ER_NO_PASSWORD, "W1") in m.full, m.full
    assert ("refused", "1.8.0", S.ER_NO_PASSWORD, "R1") in m.full, m.full
    drain(m.s, cmd("P", 1, "(00000000)"), t + 2)
    for data, c, code in (("1.8.0(5)", "W", S.ER_NOT_WRITABLE), ("0.0.5(x)", "W", S.ER_BAD_VALUE),
                          ("9.9.9()", "R", S.ER_UNKNOWN_ADDRESS)):
        drain(m.s, cmd(c, 1, data), t + 3)
        assert ("refused", data[: data.index("(")], code, c + "1") in m.full, (data, m.full)
    drain(m.s, cmd("W", 1, "C.90.1(5)"), t + 4)
    assert ("sealed_refused", "C.90.1", S.ER_SEALED, "W1") in m.full, m.full
    drain(m.s, cmd("R", 5, "P.01()"), t + 5)
    assert ("refused", "P.01", S.ER_UNSUPPORTED, "R5") in m.full, m.full


def test_untrusted_password_needs_the_seal():
    m = Meter(passwords=lambda: None)
    t, _ = sign_on(m, "1")
    got = sent(drain(m.s, cmd("P", 1, "(00000000)"), t))
    assert got == bytes(iec.build_error(S.ER_SEALED)) and not m.s.authorized, got
    assert ("sealed_refused", "", S.ER_SEALED, "P1") in m.full and m.s.failures == 0, m.full


async def test_port_task_ends_rights_when_the_tcp_client_changes():
    import asyncio
    import socket

    from ports import pump

    u = _tcp_uart()
    m = Meter(reaction_ms=200, switch_ms=200)
    stop = _Stop()
    task = asyncio.create_task(pump.run_port(u, m.s, stop=stop))
    addr = socket.getaddrinfo("127.0.0.1", u.port)[0][-1]

    async def recv(c, n, ms):
        got = bytearray()
        for _ in range(ms // 10):
            try:
                d = c.recv(512)
                if d:
                    got.extend(d)
            except OSError:
                pass
            if len(got) >= n:
                break
            await asyncio.sleep(0.01)
        return bytes(got)

    def client():
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.connect(addr)
        c.setblocking(False)
        return c

    try:
        a = client()
        a.send(b"/?!\r\n")
        assert (await recv(a, 16, 3000)).startswith(b"/XYZ5"), "identification"
        a.send(b"\x06051\r\n")
        assert (await recv(a, 14, 3000)).startswith(b"\x01P0"), "P0"
        a.send(cmd("P", 1, "(00000000)"))
        assert await recv(a, 1, 3000) == iec.ACK_MSG and m.s.authorized
        a.send(cmd("R", 1, "1.8.0()"))
        await asyncio.sleep(0.05)
        a.close()  # A leaves, its answer still due in 150 ms; B takes the port
        b = client()
        got = await recv(b, 1, 600)
        assert got == b"", "nothing meant for A reaches B: %r" % got
        b.send(cmd("W", 1, "0.0.5(9)"))
        got = await recv(b, 1, 800)
        assert got == b"" and "0.0.5" not in m.written, "B never signed on: %r" % got
        assert (S.EV_PROG_EXIT, "link") in m.events, m.events
        b.close()
    finally:
        stop.flag = True
        await task
        u.close()


def test_a_flood_of_sign_ons_gets_one_answer():
    m = Meter()
    acts = drain(m.s, b"/?12345678!\r\n" * 40, 1000)
    assert len([a for a in acts if a[1]]) == 1, "only the last request is answered: %d" % len(
        acts)
    t, _ = prog(m)
    got = sent(drain(m.s, cmd("R", 1, "1.8.0()") + b"/?!\r\n", t))
    assert got == b"/XYZ5OPENMETER\r\n", "the R1 answer is dropped too: %r" % got
    assert m.s.state == S.IDENT


def test_bus_uart_reconnection_is_a_new_link():
    # the port task ends programming rights when the link's (generation, present) pair
    # changes (ports.pump._link); a bus connection dropped and made again within one pass of
    # the port task (e.g. while it waited for txdone) left the pair unchanged, so the rights
    # of the old link carried over to whoever was on the bus after the reconnection
    import socket
    import time

    from boards.sim.uart import BusUart
    from ports import pump as optical

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    base = 30000 + (time.time_ns() // 1000) % 20000 if hasattr(time, "time_ns") else 36789
    for i in range(50):
        try:
            port = base + i * 13
            srv.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
            break
        except OSError:
            pass
    srv.listen(2)
    u = BusUart(port)
    try:
        conn = srv.accept()[0]
        assert u.connected
        before = optical._link(u)
        conn.close()  # the hub drops the member ...
        for _ in range(100):
            u.poll()
            if not u.connected:
                break
            time.sleep(0.005)
        assert not u.connected
        time.sleep(1.05)  # ... and it reconnects at its next try, unseen by the port task
        u.poll()
        conn2 = srv.accept()[0]
        assert u.connected
        assert optical._link(u) != before, "a new connection is a new link"
        conn2.close()
    finally:
        u.close()
        srv.close()


def test_sim_uart_holds_little_for_a_peer_that_does_not_read():
    # a TCP client that sends sign-ons and never reads: every answer stayed queued in the
    # virtual UART until the unix port's heap ran out (a real line just loses the bits)
    import socket

    from boards.sim.uart import TX_HOLD

    u = _tcp_uart()
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        c.connect(socket.getaddrinfo("127.0.0.1", u.port)[0][-1])
        for _ in range(100):
            u.poll()
            if u.connected:
                break
        block = b"\x02" + b"1.8.0(0001234.567*kWh)\r\n" * 40 + b"\x03"
        most = 0
        k = 0
        while not u.tx_dropped and k < 64000:  # until the socket's buffers are full
            u.write(block)
            k += 1
            if len(u._tx_pending) > most:
                most = len(u._tx_pending)
        for _ in range(1000):  # and well beyond
            u.write(block)
            k += 1
            if len(u._tx_pending) > most:
                most = len(u._tx_pending)
        assert most <= TX_HOLD, most
        assert u.tx_dropped > 0 and u.tx_count == k * len(block)
    finally:
        c.close()
        u.close()
