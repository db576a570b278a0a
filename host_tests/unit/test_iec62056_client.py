"""IEC 62056-21 client, the bus master side (lib/iec62056/client.py): a readout from the
meter-side session (lib/iec62056/session.py) over an in-process line on a simulated clock,
and the failures a bus brings: wrong BCC, truncated, garbage, endless bytes, another meter
answering, silence; memory stays bounded."""

from iec62056 import client as C
from iec62056 import codec as iec
from iec62056 import session as S

ADDR = "10000002"
ITEMS = [
    ("C.1.0", ADDR, None),
    ("0.0.0", ADDR, None),
    ("0.9.1", "134501", None),
    ("0.9.2", "160101", None),
    ("1.8.0", "0001234.567", "kWh"),
    ("2.8.0", "0000012.000", "kWh"),
    ("32.7.0", "230.1", "V"),
    ("F.F.0", "00000000", None),
]


def _meter(**kw):
    args = dict(device_address=ADDR, manufacturer="OMF", ident="OPENMETER1",
                readout=lambda: ITEMS, answer_unaddressed=False)
    args.update(kw)
    return S.Session(**args)


class Line:
    """The client and a meter session on one wire, at simulated time (ms). ``tamper``:
    callable(bytes) -> bytes applied to what the meter sends (None: drop it all)."""

    def __init__(self, meter, client=None, tamper=None):
        self.m = meter
        self.c = client or C.Client()
        self.t = 1000
        self.tamper = tamper
        self.sent = []  # what the client sent
        self.bauds = []

    def _client_act(self, act):
        while act is not None:
            at, data, baud = act
            if C.ticks_diff(at, self.t) > 0:
                self.t = at
            if data:
                self.sent.append(bytes(data))
                self.t += 2
                self.c.sent(self.t)
                m_act = self.m.feed(bytearray(data), self.t)
                self._meter_act(m_act)
            if baud:
                self.bauds.append(baud)
            act = self.c.poll(self.t) if not self.c.done else None

    def _meter_act(self, act):
        while act is not None:
            at, data, _baud = act
            if C.ticks_diff(at, self.t) > 0:
                self.t = at
            if data is not None and hasattr(data, "chunks"):
                data = b"".join(bytes(p) for p in data.chunks())
            if data:
                out = bytes(data)
                if self.tamper is not None:
                    out = self.tamper(out)
                if out:
                    self.t += 1
                    self._client_act(self.c.feed(bytearray(out), self.t))
            act = self.m.poll(self.t)

    def run(self, address=ADDR, limit_ms=60000):
        self._client_act(self.c.start(address, self.t))
        end = self.t + limit_ms
        while not self.c.done and self.t < end:
            self.t += 10
            self._meter_act(self.m.poll(self.t))
            self._client_act(self.c.poll(self.t))
        return self.c


def _frame(lines, bcc_fix=0):
    body = bytearray(b"\x02")
    for ln in lines:
        body.extend(ln)
        body.extend(b"\r\n")
    body.extend(b"!\r\n\x03")
    body.append(iec.bcc(body) ^ bcc_fix)
    return bytes(body)


class Scripted:
    """A 'meter' that answers the request with ``ident`` and the option select (or nothing
    for mode A/B) with the ``answers`` in turn (one per option select / NAK)."""

    def __init__(self, ident=b"/OMF5OPENMETER1\r\n", answers=()):
        self.ident = ident
        self.answers = list(answers)
        self.got = []

    def feed(self, data, now, n=-1):
        self.got.append(bytes(data))
        if data[:2] == b"/?":
            if self.ident is None:
                return None
            return (now + 200, self.ident, 0)
        if self.answers:
            return (now + 300, self.answers.pop(0), 0)
        return None

    def poll(self, now):
        return None


def test_readout_from_the_meter_session():
    ln = Line(_meter())
    c = ln.run()
    assert c.done and c.error == C.E_NONE, (c.error, c.detail)
    r = c.readout
    assert r.manufacturer == "OMF" and r.ident == "OPENMETER1" and r.baud_char == "5"
    assert r.baud == 9600 and ln.bauds == [9600]
    assert ln.sent[0] == b"/?10000002!\r\n"
    assert ln.sent[1] == b"\x06050\r\n"  # ACK 0 Z 0: readout at 9600 Bd
    assert r.data == [(a, v, u) for a, v, u in ITEMS]
    assert r.get("1.8.0") == "0001234.567" and r.get("9.9.9") is None


def test_max_baud_caps_the_option_select():
    ln = Line(_meter(), C.Client(max_baud=2400))
    c = ln.run()
    assert c.error == C.E_NONE and c.readout.baud == 2400
    assert ln.sent[1] == b"\x06030\r\n"


def test_leading_zeros_and_several_values_per_line():
    good = _frame([b"0.0.0(02)", b"1.8.0(1.0*kWh)2.8.0(2.0*kWh)", b"1.6.0(3.5*kW)(1601011200)"])
    ln = Line(Scripted(answers=[good]))
    c = ln.run("2")
    assert c.error == C.E_NONE, c.detail
    assert c.readout.data == [("0.0.0", "02", None), ("1.8.0", "1.0", "kWh"),
                              ("2.8.0", "2.0", "kWh"), ("1.6.0", "3.5", "kW"),
                              ("1.6.0", "1601011200", None)]


def test_wrong_bcc_is_asked_again_with_nak_then_reported():
    good = _frame([b"1.8.0(1.0*kWh)"])
    bad = _frame([b"1.8.0(1.0*kWh)"], bcc_fix=1)
    m = Scripted(answers=[bad, good])
    ln = Line(m)
    c = ln.run()
    assert c.error == C.E_NONE and ln.sent[-1] == iec.NAK_MSG
    m = Scripted(answers=[bad, bad, good])  # still wrong after the one NAK: reported
    ln = Line(m)
    c = ln.run()
    assert c.error == C.E_BCC and c.step_failed == C.S_READOUT and "BCC" in c.detail
    assert ln.sent.count(iec.NAK_MSG) == 1
    ln = Line(Scripted(answers=[bad]), C.Client(nak_retries=0))
    assert ln.run().error == C.E_BCC


def test_wrong_bcc_on_a_real_meter_session():
    # the session repeats its readout after NAK: a line that corrupts only the first copy
    seen = []

    def once(b):
        seen.append(b)
        if len(seen) == 2:  # the first readout (the identification was the first)
            return b[:-1] + bytes((b[-1] ^ 0x40,))
        return b

    ln = Line(_meter(), tamper=once)
    c = ln.run()
    assert c.error == C.E_NONE and len(seen) == 3 and iec.NAK_MSG in ln.sent


def test_truncated_readout_times_out():
    good = _frame([b"1.8.0(1.0*kWh)", b"2.8.0(2.0*kWh)"])
    ln = Line(Scripted(answers=[good[:12]]))
    c = ln.run()
    assert c.error == C.E_TIMEOUT and c.step_failed == C.S_READOUT and c.detail == "gap"
    # the gap is counted from the last byte: ta 1500 ms + the margin
    ln = Line(Scripted(answers=[good[:-1]]))
    assert ln.run().error == C.E_TIMEOUT


def test_no_answer_and_wrong_address_time_out():
    ln = Line(_meter())
    c = ln.run("10000003")  # nobody has this address: the meter stays silent
    assert c.error == C.E_TIMEOUT and c.step_failed == C.S_IDENT and c.detail == "no answer"
    assert c.rx == 0
    # the timeout: the request's end + tr (1500 ms) + the margin, not later
    cl = C.Client(reaction_ms=1500, margin_ms=300)
    cl.start("5", 0)
    cl.sent(500)
    assert cl.poll(2300) is None and not cl.done
    cl.poll(2301)
    assert cl.done and cl.error == C.E_TIMEOUT
    # silent after the option select
    ln = Line(Scripted(answers=[]))
    c = ln.run()
    assert c.error == C.E_TIMEOUT and c.step_failed == C.S_READOUT


def test_another_meter_answering_is_not_taken_for_the_polled_one():
    other = _frame([b"0.0.0(10000009)", b"1.8.0(1.0*kWh)"])
    ln = Line(Scripted(answers=[other]))
    c = ln.run()
    assert c.error == C.E_ADDRESS and c.readout is None and "10000009" in c.detail
    ln = Line(Scripted(answers=[other]), C.Client(check_address=False))
    assert ln.run().error == C.E_NONE


def test_garbage():
    cases = [
        (b"/OMF5OPEN\x01METER\r\n", []),  # control char in the identification
        (b"/O5OPENMETER\r\n", []),  # no 3-letter manufacturer
        (b"/OMF5OPENMETER1\n", []),  # LF without CR
        (b"\x7f" * 40, []),  # line noise instead of an identification
        (None, []),
    ]
    for ident, answers in cases[:4]:
        c = Line(Scripted(ident=ident, answers=answers)).run()
        assert c.error == C.E_GARBAGE and c.step_failed == C.S_IDENT, (ident, c.error)
    bad_sets = [
        _frame([b"1.8.0 1.0 kWh"]),  # no parentheses
        _frame([b"1.8.0(1.0*kWh"]),  # unclosed
        b"\x021.8.0(1.0*kWh)\r\n\x03" + bytes((iec.bcc(b"\x021.8.0(1.0*kWh)\r\n\x03"),)),  # no !
        _frame([b"1.8.0(1.0*kWh)"]).replace(b"!\r\n", b"!\r\nX"),  # data after the end
        b"\x15" * 20,  # NAKs, never an STX
    ]
    for ans in bad_sets:
        if ans[:1] == b"\x02" and b"X" in ans:  # repair the BCC of the edited frame
            ans = ans[:-1] + bytes((iec.bcc(ans[:-1]),))
        c = Line(Scripted(answers=[ans])).run()
        assert c.error == C.E_GARBAGE and c.step_failed == C.S_READOUT, (ans, c.detail)


def test_endless_bytes_end_the_read_with_bounded_memory():
    import gc

    endless = b"\x02" + b"1.8.0(1.0*kWh)\r\n" * 400  # 6.4 KB and no end
    c = Line(Scripted(answers=[endless]), C.Client(max_bytes=2048, max_sets=1000)).run()
    assert c.error == C.E_OVERFLOW and "2048" in c.detail
    c = Line(Scripted(answers=[b"\x02" + b"9" * 5000])).run()  # one endless line
    assert c.error == C.E_OVERFLOW and "line" in c.detail
    c = Line(Scripted(ident=b"/OMF5" + b"X" * 5000)).run()  # an endless identification
    assert c.error == C.E_OVERFLOW and c.step_failed == C.S_IDENT
    many = _frame([b"1.8.%d(1*kWh)" % i for i in range(80)])
    c = Line(Scripted(answers=[many]), C.Client(max_sets=64)).run()
    assert c.error == C.E_OVERFLOW and "64" in c.detail
    # feeding 64 KB in small pieces allocates nothing that grows with the input
    cl = C.Client()
    cl.start(ADDR, 0)
    cl.sent(10)
    cl.feed(b"/OMF5OPENMETER1\r\n", 20)
    cl.sent(30)
    cl.feed(b"\x02", 40)
    chunk = bytearray(b"0.0.0(1)2.8.0(2*kWh)\r\n" * 2)
    gc.collect()
    m0 = gc.mem_free() if hasattr(gc, "mem_free") else 0
    for i in range(1500):
        cl.feed(chunk, 50 + i)
        if cl.done:
            break
    assert cl.done and cl.error == C.E_OVERFLOW
    gc.collect()
    if hasattr(gc, "mem_free"):
        assert m0 - gc.mem_free() < 8192, m0 - gc.mem_free()


def test_a_dripping_meter_cannot_hold_the_bus():
    cl = C.Client(max_bytes=64, reaction_ms=1500, margin_ms=300)
    t = 0
    cl.start(ADDR, t)
    cl.sent(t)
    act = cl.feed(b"/OMF0OPENMETER1\r\n", 100)  # 300 Bd: 34 ms a character
    assert act[1] == b"\x06000\r\n" and act[2] == 300
    cl.sent(400)
    cl.feed(b"\x02", 500)
    t = 500
    while not cl.done and t < 60000:
        t += 1400  # within ta: each byte keeps the gap timer alive
        cl.feed(b"1", t)
        cl.poll(t)
    # reaction + margin + 2 x 64 characters of 34 ms after the option select
    assert cl.done and cl.error == C.E_TIMEOUT and cl.detail == "readout too slow"
    assert t < 400 + 1800 + 2 * 64 * 34 + 1400


def test_mode_a_and_b_read_without_option_select():
    good = _frame([b"1.8.0(1.0*kWh)"])
    for z, baud in ((b"A", 600), (b"E", 9600), (b"Q", 300)):
        m = Scripted(ident=b"/ABC" + z + b"METER\r\n")
        m.feed_orig = m.feed

        def feed(data, now, n=-1, m=m):
            a = m.feed_orig(data, now, n)
            return (a[0], a[1] + good, 0) if a else a  # the readout follows at once

        m.feed = feed
        ln = Line(m)
        c = ln.run()
        assert c.error == C.E_NONE and c.readout.baud == baud, (z, c.detail)
        assert len(ln.sent) == 1  # only the request


def test_bad_addresses_are_refused():
    cl = C.Client()
    for a in ("", "A" * 33, "1 2", "a/b", None):
        try:
            cl.start(a, 0)
            raise AssertionError(a)
        except ValueError:
            pass
    assert C.same_address("0012", "12") and not C.same_address("A12", "a12")
    assert not C.same_address("12", "120")


def test_client_reused_for_the_next_meter():
    cl = C.Client()
    c = Line(_meter(), cl).run("10000003")
    assert c.error == C.E_TIMEOUT
    c = Line(_meter(), cl).run()
    assert c.error == C.E_NONE and c.readout.get("C.1.0") == ADDR and c.step_failed == 0
