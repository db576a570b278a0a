"""The concentrator (firmware/uplink/concentrator.py): the bus master reading meter sessions
(lib/iec62056/session.py) over an in-process RS-485 line in real time, forwarding into a
real outbox (NOR model) under each meter's serial; silent, babbling and wrong meters are
reported with backoff and never stop the cycle. Both interpreters."""

import asyncio
import json

import events
from boards.sim.norflash import NORFlash
from flashstore.flash import Partition
from iec62056 import client as iecc
from iec62056 import session as S
from uplink import concentrator as K
from uplink import messages as msg
from uplink.outbox import BODY_MAX, KIND_BUS, KIND_FORWARD, Outbox

if not hasattr(asyncio, "sleep_ms"):  # CPython
    async def _sleep_ms(ms):
        await asyncio.sleep(ms / 1000)

    asyncio.sleep_ms = _sleep_ms


class Clock:
    """Metering clock stand-in: RTC seconds that the test advances."""

    def __init__(self):
        self.t = 0

    def time(self):
        return self.t

    async def sleep_ms(self, ms):
        self.t += ms // 1000
        await asyncio.sleep_ms(0)


def _items(serial, kwh):
    return [("C.1.0", serial, None), ("0.0.0", serial, None), ("0.9.1", "001503", None),
            ("0.9.2", "160101", None), ("1.8.0", kwh, "kWh"), ("2.8.0", "0000000.000", "kWh"),
            ("32.7.0", "230.0", "V"), ("F.F.0", "00000000", None)]


def _session(serial, kwh):
    # lowercase 3rd letter: 20 ms reaction (IEC 62056-21), so the test runs fast
    return S.Session(device_address=serial, manufacturer="OMf", ident="OPENMETER1",
                     readout=lambda: _items(serial, kwh), answer_unaddressed=False,
                     reaction_ms=20, switch_ms=20, readout_hold_ms=100)


class Babbler:
    """A broken meter: answers any request to its address with endless bytes."""

    def __init__(self, address):
        self.address = address
        self.on = False
        self.heard = bytearray()
        self.last = None
        self.left = 6000

    def feed(self, data, now, n=-1):
        self.heard.extend(data)
        if self.heard.endswith(b"/?" + self.address.encode() + b"!\r\n"):
            self.on = True
        return None

    def poll(self, now):
        if not self.on or now == self.last or self.left <= 0:  # a burst per ms, 6 KB
            return None
        self.last = now
        self.left -= 120
        return (now, b"/OMf5X\r\n\x02" + b"1.8.0(1*kWh)\r\n" * 8, 0)


class Bus:
    """The master's UART (machine.UART-like) on a line with ``members`` (sessions)."""

    def __init__(self, members):
        self.members = members
        self.rx = bytearray()
        self.inits = []
        self.written = bytearray()  # everything the master sent

    def init(self, baudrate=None, bits=None, parity=None, stop=None):
        self.inits.append(baudrate)

    def any(self):
        self._pump()
        return len(self.rx)

    def readinto(self, buf):
        n = min(len(buf), len(self.rx))
        buf[:n] = self.rx[:n]
        self.rx = self.rx[n:]
        return n

    def write(self, data):
        self.written.extend(data)
        from ticks import ticks_ms

        now = ticks_ms()
        for m in self.members:
            self._do(m, m.feed(bytearray(data), now))
        return len(data)

    def txdone(self):
        return True

    def _do(self, m, act):
        from ticks import ticks_diff, ticks_ms

        while act is not None:
            at, data, _b = act
            if ticks_diff(at, ticks_ms()) > 0:
                m.pending = act
                return
            if data is not None and hasattr(data, "chunks"):
                data = b"".join(bytes(p) for p in data.chunks())
            if data and len(self.rx) < 1024:  # the UART's rx buffer: overrun beyond
                self.rx.extend(data)
            act = m.poll(ticks_ms())
        m.pending = None

    def _pump(self):
        from ticks import ticks_ms

        for m in self.members:
            act = getattr(m, "pending", None)
            self._do(m, act if act is not None else m.poll(ticks_ms()))


def _outbox():
    # 3 sectors: 14 records (one sector kept erased), small enough for a 96 KiB heap
    dev = NORFlash(3 * 4096, 4096, 256, strict=True)
    ob = Outbox(Partition(dev, 0, dev.size))
    ob.mount()
    return ob


def _drain(ob):
    out = []
    while True:
        m = ob.peek()
        if m is None:
            return out
        out.append(m)
        ob.ack(m[0])


def _conc(members, addresses, ob=None, log=None):
    clock = Clock()
    log = log or events.EventLog(clock)
    c = K.Concentrator(Bus(members), addresses, clock, log, ob, "SIM00001", rest_ms=0,
                       quiet_ms=40,
                       client_cfg={"reaction_ms": 200, "margin_ms": 100, "gap_ms": 200,
                                   "ack_delay_ms": 20})
    return c, log


async def test_three_meters_forwarded_under_their_own_serials():
    ob = _outbox()
    meters = [_session("10000001", "0000001.500"), _session("10000002", "0000022.250"),
              _session("10000003", "0000333.000")]
    c, log = _conc(meters, ("10000001", "10000002", "10000003"), ob)
    await c.cycle()
    got = _drain(ob)
    assert [m[1] for m in got] == [KIND_FORWARD] * 3, got
    kwh = {}
    for seq, _kind, body in got:
        topic = K.forward_topic(body)
        d = json.loads(msg.with_seq(seq, body))
        assert topic == ("meters/%s/reading" % d["meter"]).encode()
        assert d["via"] == "SIM00001" and d["address"] == d["meter"] and d["seq"] == seq
        assert d["id"] == "OMf5OPENMETER1" and d["status"] == "00000000"
        assert d["meter_time"] == "2016-01-01T00:15:03"
        assert d["values"][-1] == ["32.7.0", 230.0, "V"]
        kwh[d["meter"]] = d["values"][0]
    assert kwh == {"10000001": ["1.8.0", 1.5, "kWh"], "10000002": ["1.8.0", 22.25, "kWh"],
                   "10000003": ["1.8.0", 333.0, "kWh"]}, kwh
    assert c.readings == 3 and c.failures == 0
    assert [e[1] for e in log.since(0)] == [events.CONC_SERIAL_BOUND] * 3, "only the bindings"
    assert all(b == 300 or b == 9600 for b in c.uart.inits)


async def test_a_silent_meter_is_reported_with_backoff_not_retried_in_a_loop():
    ob = _outbox()
    meters = [_session("10000001", "0000001.500"), _session("10000002", "0000002.000")]
    c, log = _conc(meters, ("10000001", "10000009", "10000002"), ob)
    got = []
    for _ in range(8):
        await c.cycle()
        got += _drain(ob)  # (as the uplink does)
    m = c.stats()["meters"]
    assert m["10000001"]["ok"] == 8 and m["10000002"]["ok"] == 8
    # polled at cycles 1, 2, 4, 8 (skipping 0, 1, 3 cycles after 1, 2, 3 failures)
    assert m["10000009"]["polls"] == 4 and m["10000009"]["fails"] == 4
    assert m["10000009"]["skip"] == 7 and m["10000009"]["last_error"] == "timeout: no answer"
    assert bytes(c.uart.written).count(b"/?10000009!\r\n") == 4
    evs = [e for e in log.since(0) if e[1] == events.CONC_NO_ANSWER]
    assert len(evs) == 4 and all(e[2] == iecc.E_TIMEOUT for e in evs)
    assert ob.dropped == 0 and [m[0] for m in got] == list(range(1, 21))
    bus = [json.loads(b) for _s, k, b in got if k == KIND_BUS]
    assert len(bus) == 4 and [b["fails"] for b in bus] == [1, 2, 3, 4]
    assert bus[0]["address"] == "10000009" and bus[0]["ok"] is False
    assert bus[0]["error"] == "timeout" and bus[0]["step"] == "identification"
    assert bus[0]["serial"] is None
    # the longest wait: max_skip cycles
    c.max_skip = 3
    for _ in range(8):
        await c.cycle()
    assert c.stats()["meters"]["10000009"]["skip"] <= 3


async def test_a_meter_that_answers_again_is_reported_once():
    ob = _outbox()
    s2 = _session("10000002", "0000002.000")
    members = [_session("10000001", "0000001.500")]
    c, log = _conc(members, ("10000001", "10000002"), ob)
    await c.cycle()  # 10000002 silent: 1 failure, next cycle again
    members.append(s2)
    await c.cycle()
    evs = [(e[1], e[2]) for e in log.since(0) if e[1] != events.CONC_SERIAL_BOUND]
    assert evs == [(events.CONC_NO_ANSWER, iecc.E_TIMEOUT), (events.CONC_ANSWERS_AGAIN, 1)]
    got = _drain(ob)
    bus = [json.loads(b) for _s, k, b in got if k == KIND_BUS]
    assert bus[-1] == {"ts": "2000-01-01T00:00:00Z", "address": "10000002",
                       "serial": "10000002", "ok": True, "fails": 1}, bus
    assert c.stats()["meters"]["10000002"] == {"serial": "10000002", "polls": 2, "ok": 1,
                                               "fails": 0, "skip": 0, "last_error": "",
                                               "bound": "10000002", "refusals": 0}


async def test_a_babbling_meter_does_not_stop_the_others():
    ob = _outbox()
    bab = Babbler("10000005")
    members = [_session("10000001", "0000001.500"), bab, _session("10000002", "0000002.000")]
    c, log = _conc(members, ("10000001", "10000005", "10000002"), ob)
    await c.cycle()
    assert bab.left <= 0  # it sent its 6 KB: the readout's 2 KB bound ended the read
    m = c.stats()["meters"]
    assert m["10000001"]["ok"] == 1 and m["10000002"]["ok"] == 1, m
    assert m["10000005"]["fails"] == 1 and m["10000005"]["last_error"].startswith(
        "overflow"), m
    evs = [e for e in log.since(0) if e[1] == events.CONC_NO_ANSWER]
    assert len(evs) == 1 and evs[0][2] == iecc.E_OVERFLOW


def test_forward_bodies_fit_the_outbox_record():
    many = [("C.1.0", "A1", None), ("0.0.0", "A1", None)]
    many += [("1.8.%d" % i, "%07d.%03d" % (i * 1000, i), "kWh") for i in range(40)]
    many += [("0.2.0", "OM-0.1", None), ("1.8.0", "junk", "kWh"), ("31.7.0", "1.0", None)]
    r = iecc.Readout("A1", "OMF", "5", "OPENMETER1", 9600, many)
    bodies = K.forward_bodies(r, 3600, "SIM00001")
    assert len(bodies) > 1
    vals = []
    for i, b in enumerate(bodies):
        assert len(b) <= 490, len(b)
        d = json.loads(b)
        assert d["part"] == [i + 1, len(bodies)] and d["meter"] == "A1"
        assert d["ts"] == "2000-01-01T01:00:00Z" and "meter_time" not in d
        vals += d["values"]
    assert [v[0] for v in vals] == ["1.8.%d" % i for i in range(40)]  # no unit/number: out
    assert vals[1] == ["1.8.1", 1000.001, "kWh"]


def test_serial_and_number_rules():
    r = iecc.Readout("7", "OMF", "5", "X", 9600, [("C.1.0", "bad/serial", None),
                                                  ("0.0.0", "0007", None)])
    assert K.serial_of(r) == "0007"
    r = iecc.Readout("7", "OMF", "5", "X", 9600, [("C.1.0", "a+b", None)])
    assert K.serial_of(r) == "7"
    assert K.number("0001234.567") == "1234.567" and K.number("-0000012.000") == "-12.000"
    assert K.number(".5") == "0.5" and K.number("0") == "0" and K.number("+7") == "7"
    for bad in ("", "-", "1.", "1e5", "12:00", "0x10", "1.2.3", "."):
        assert K.number(bad) is None, bad
    assert K.forward_topic(b'{"meter":"X1","ts":""}') == b"meters/X1/reading"


def test_addresses_are_checked():
    assert K.check_addresses(["1", "A2"]) == ("1", "A2")
    for bad, what in (([], "no bus"), (["1", "001"], "twice"), (["a b"], "letters"),
                      ([str(i) for i in range(1, 34)], "at most 32")):
        try:
            K.check_addresses(bad)
            raise AssertionError(bad)
        except ValueError as e:
            assert what in str(e), (what, e)


def test_the_uplink_publishes_forwarded_readings_under_the_bus_meters_serial():
    from modemkit import MiniBroker, Rig, add_frozen_lib

    add_frozen_lib()
    from uplink.task import Uplink

    broker = MiniBroker()
    r = Rig(peer=broker)

    class Board:
        uart_modem = r.model
        modem_pwrkey = r.model.pwrkey
        clock = Clock()

    ob = _outbox()
    rd = iecc.Readout("10000002", "OMF", "5", "OPENMETER1", 9600,
                      _items("10000002", "0000022.250"))
    for body in K.forward_bodies(rd, 900, "SIM00001"):
        ob.put(KIND_FORWARD, body)
    ob.put(KIND_BUS, '{"ts":"","address":"10000003","ok":false}')
    up = Uplink(Board(), None, events.EventLog(Board.clock), ob, "SIM00001", ("broker", 1883),
                link=r.link, idle=lambda: r.clock.advance(2))
    r.m.open("broker", 1883, 0)
    t0 = r.clock.t
    while not (up.session and ob.pending() == 0):
        up.step()
        r.advance(10)
        assert r.clock.t - t0 < 60000, up.stats()
    got = [(broker.topics[i], json.loads(p)) for i, p in enumerate(broker.payloads)
           if p.startswith(b'{"seq":')]
    assert [t for t, _p in got] == [b"meters/10000002/reading", b"meters/SIM00001/bus"], got
    assert got[0][1]["seq"] == 1 and got[0][1]["values"][0] == ["1.8.0", 22.25, "kWh"]


def test_virtual_board_option_is_validated():
    from boards.sim.options import UsageError, parse_args

    o = parse_args(["--rs485-bus", "127.0.0.1:4100", "--concentrator", "10000001,2",
                    "--concentrator-interval", "300"])
    assert o.concentrator == ("10000001", "2") and o.concentrator_interval == 300
    assert parse_args([]).concentrator is None
    for args, what in ((["--concentrator", "1"], "needs --rs485-bus"),
                       (["--rs485-bus", "h:1", "--concentrator", "1,,2"], "--concentrator"),
                       (["--rs485-bus", "h:1", "--concentrator", "1,01"], "twice"),
                       (["--concentrator-interval", "59"], "60..86400")):
        try:
            parse_args(args)
            raise AssertionError(args)
        except UsageError as e:
            assert what in str(e), (what, str(e))


async def test_no_polling_and_no_outbox_writes_during_the_power_fail_warning():
    from meter.supply import Supply

    ob = _outbox()
    sp = Supply()
    c, log = _conc([_session("10000001", "0000001.500")], ("10000001",), ob)
    c.supply = sp
    sp.warning = True
    await c.cycle()
    assert c.cycles == 0 and c.skipped_cycles == 1 and len(c.uart.written) == 0
    assert ob.pending() == 0
    sp.warning = False
    await c.cycle()
    assert c.cycles == 1 and ob.pending() == 1 and c.stall_max_ms >= 0


def test_a_readout_with_long_status_and_units_is_still_forwarded_within_the_record():
    # lines the client takes (128 bytes, printable values, any unit text): a 110-character
    # F.F.0 of quotes (doubled by JSON) and a unit of control characters (6 x by JSON) made
    # every body longer than the outbox record: put() refused them and the reading vanished,
    # counted only as a port error
    st = '"' * 110
    data = [("F.F.0", st, None), ("1.8.0", "0001234.567", "kWh"),
            ("2.8.0", "1", "\x01" * 100), ("3.8.0", "2", "kvarh"), ("X" * 100, "3", "V")]
    r = iecc.Readout("A1", "OMF", "5", "OPENMETER1", 9600, data)
    vals = []
    for b in K.forward_bodies(r, 3600, "SIM00001"):
        assert len(b.encode()) <= BODY_MAX, len(b)  # (Outbox.put: ValueError beyond)
        d = json.loads(b)
        assert d["meter"] == "A1" and d["status"].startswith('""')
        vals += d["values"]
    assert ["1.8.0", 1234.567, "kWh"] in vals and ["3.8.0", 2, "kvarh"] in vals, vals


def _liar(address, claim):
    # a bus meter answering at ``address`` whose readout's C.1.0 says claim[0]
    def items():
        it = _items(address, "0000009.000")
        it[0] = ("C.1.0", claim[0], None)
        return it

    return S.Session(device_address=address, manufacturer="OMf", ident="OPENMETER1",
                     readout=items, answer_unaddressed=False, reaction_ms=20, switch_ms=20,
                     readout_hold_ms=100)


async def test_a_bus_meter_cannot_publish_under_another_serial():
    # the concentrator forwarded a reading under whatever serial the bus meter reported:
    # a hostile meter on the bus published readings as its neighbour (or as the
    # concentrator itself)
    ob = _outbox()
    claim5 = ["10000005"]
    members = [_session("10000001", "0000001.500"), _liar("10000003", ["10000001"]),
               _liar("10000004", ["SIM00001"]), _liar("10000005", claim5)]
    c, log = _conc(members, ("10000001", "10000003", "10000004", "10000005"), ob)
    fwd = []
    bus = []
    for k in range(3):
        if k == 1:
            claim5[0] = "10000002"  # bound at its first readout: a later change is refused
        await c.cycle()
        for seq, kind, body in _drain(ob):
            d = json.loads(msg.with_seq(seq, body))
            (fwd if kind == KIND_FORWARD else bus).append(d)
    assert [(d["address"], d["meter"]) for d in fwd] == [
        ("10000001", "10000001"), ("10000005", "10000005"), ("10000001", "10000001"),
        ("10000001", "10000001")], fwd
    # each refusal logged and reported upstream once, not at every poll
    ref = [(e[2], e[4]) for e in log.records() if e[1] == events.CONC_SERIAL_REFUSED]
    assert sorted(ref) == [(1, "000005"), (2, "000004"), (3, "000003")], ref
    assert sorted((d["address"], d["claimed"], d["error"], d["serial"]) for d in bus) == [
        ("10000003", "10000001", "serial", None), ("10000004", "SIM00001", "serial", None),
        ("10000005", "10000002", "serial", "10000005")], bus
    st = c.stats()
    assert st["refused"] == 8 and st["meters"]["10000003"]["refusals"] == 3, st
    assert st["meters"]["10000005"]["bound"] == "10000005"
    # the right serial again ends the episode; a new wrong one is reported again
    claim5[0] = "10000005"
    await c.cycle()
    claim5[0] = "10000002"
    await c.cycle()
    assert [e[2] for e in log.records() if e[1] == events.CONC_SERIAL_REFUSED].count(1) == 2


async def test_a_binding_holds_over_a_restart_until_it_is_removed_on_a_local_port():
    # the binding was kept in RAM: after a restart the first serial an address reported
    # bound it again, so a hostile bus meter polled first after a power cut published
    # as its neighbour from then on
    from meter.catalogue import Catalogue
    from meter.settings import Settings

    dev = NORFlash(2 * 4096, sector_size=4096, page_size=256, strict=True)
    part = Partition(dev, 0, dev.size)
    log = events.EventLog(Clock())
    st = Settings(log, part)
    st.settle(None)
    ob = _outbox()
    claim = ["10000005"]
    members = [_session("10000001", "0000001.500"), _liar("10000005", claim)]
    addrs = ("10000001", "10000005")
    c, log = _conc(members, addrs, ob, log)
    c.settings = st
    await c.cycle()
    assert st["bus_bindings"] == {"10000001": "10000001", "10000005": "10000005"}
    bound = [e[4] for e in log.records() if e[1] == events.CONC_SERIAL_BOUND]
    assert sorted(bound) == ["000001", "000005"], bound
    assert events.log_of(events.CONC_SERIAL_BOUND) == events.LOG_SECURITY
    assert st.tick(10 ** 6, force=True), "written with the configuration"
    _drain(ob)
    # a restart: the settings are read back; the liar claims its neighbour's serial first
    del c, st
    st = Settings(events.EventLog(Clock()), part)
    assert st["bus_bindings"]["10000005"] == "10000005"
    claim[0] = "10000001"
    c, log = _conc(members, addrs, ob)
    c.settings = st
    await c.cycle()
    fwd = [json.loads(msg.with_seq(s, b)) for s, k, b in _drain(ob) if k == KIND_FORWARD]
    assert [d["meter"] for d in fwd] == ["10000001"], fwd
    ref = [(e[2], e[4]) for e in log.records() if e[1] == events.CONC_SERIAL_REFUSED]
    assert ref == [(1, "000005")], ref
    # the meter at 10000005 replaced: unbound by W1 C.93.9 (catalogue), then bound anew
    from energy import Registers

    cat = Catalogue(Registers(256, 256, 256), None, st, None, None, Clock(), log, "SIM00001",
                    "")
    try:
        cat.write("C.93.9", "10000007", events.SRC_OPTICAL)
        raise AssertionError("an address that is not bound was unbound")
    except ValueError as e:
        assert str(e) == "bus address not bound", e
    cat.write("C.93.9", "10000005", events.SRC_OPTICAL)
    assert st["bus_bindings"] == {"10000001": "10000001"}
    ch = [e for e in log.records() if e[1] == events.PARAM_CHANGED]
    assert ch[-1][2] == 1 and ch[-1][4] == "C.93.9", ch
    claim[0] = "10000007"
    await c.cycle()
    assert st["bus_bindings"]["10000005"] == "10000007"
    cat.write("C.93.9", "*", events.SRC_OPTICAL)
    assert st["bus_bindings"] == {}


def test_bindings_are_validated_as_settings():
    from meter.settings import Settings

    st = Settings(events.EventLog(Clock()))
    for bad in ([], {"10000001": "a/b"}, {"": "x"}, {"10000001": 5},
                {"%08d" % i: "S%d" % i for i in range(33)}):
        try:
            st.set("bus_bindings", bad)
            raise AssertionError("accepted %r" % (bad,))
        except ValueError as e:
            assert str(e).startswith("bus_bindings: "), e
    st.set("bus_bindings", {"%08d" % i: "S%d" % i for i in range(32)})
    big = {"%032d" % i: "%032d" % i for i in range(32)}  # 2.2 KB: the config slot is 4 KiB
    try:
        st.set("bus_bindings", big)
        raise AssertionError("accepted")
    except ValueError as e:
        assert str(e) == "bus_bindings: more than 1024 bytes", e


async def test_a_binding_the_settings_have_no_room_for_is_kept_in_ram():
    from meter.settings import Settings

    log = events.EventLog(Clock())
    st = Settings(log)
    full = {"%032d" % i: "%032d" % i for i in range(14)}
    full["%012d" % 99] = "%012d" % 99  # 1 012 of the 1 024 bytes: 22 more do not fit
    st.set("bus_bindings", full)
    ob = _outbox()
    c, log = _conc([_session("10000001", "0000001.500")], ("10000001",), ob, log)
    c.settings = st
    await c.cycle()
    assert "10000001" not in st["bus_bindings"] and c.bindings()["10000001"] == "10000001"
    assert [d for s, k, d in _drain(ob) if k == KIND_FORWARD], "forwarded all the same"
    t = [e for e in log.records() if e[1] == events.CONC_SERIAL_BOUND]
    assert [e[2] for e in t] == [0, 1], t  # bound; then 1 kept in RAM only (logged)


async def test_a_damaged_stored_binding_table_is_replaced_at_boot_and_named():
    # ``bus_bindings`` was never checked at boot: a stored value that is no table (a record
    # of another firmware, a bad migration) raised at every poll (AttributeError: the
    # concentrator forwarded nothing) and in the board report; a bad entry kept every new
    # binding out of the configuration ("no room")
    from meter import defaults
    from meter.settings import Settings

    for bad in (["10000001"], "10000001", {"10000001": 5}, {"a/b": "10000001"}, 7):
        cfg = defaults.config()
        cfg["bus_bindings"] = bad
        log = events.EventLog(Clock())
        st = Settings(log, cfg=cfg)
        ob = _outbox()
        clock = Clock()
        c = K.Concentrator(Bus([_session("10000001", "0000001.500")]), ("10000001",), clock,
                           log, ob, "SIM00001", rest_ms=0, quiet_ms=40,
                           client_cfg={"reaction_ms": 200, "margin_ms": 100, "gap_ms": 200,
                                       "ack_delay_ms": 20}, settings=st)
        d = [e for e in log.records() if e[1] == events.CONFIG_DEFAULTS]
        assert len(d) == 1, (bad, d)
        await c.cycle()
        assert [k for s, k, b in _drain(ob)] == [KIND_FORWARD], bad
        assert st["bus_bindings"] == {"10000001": "10000001"}, (bad, st["bus_bindings"])
        assert c.stats()["meters"]["10000001"]["bound"] == "10000001"


def _largest_plan():
    # the setting ``tou_program`` of the largest tariff plan (meter/touprog.py: 12 seasons,
    # 12 week profiles, 7 day profiles of 128-character W1 values, 30 special days)
    lines = [[1, n, "%d;12-31;12" % n] for n in range(1, 13)]
    lines += [[2, w, "%d;%s" % (w, ",".join(["255"] * 7))] for w in range(1, 13)]
    for i in range(7):
        day = "%d;" % (249 + i) + ",".join("%02d:59:59=6" % h for h in range(12))
        lines.append([3, 249 + i, day[:128]])
    lines += [[4, i, "%d;2099-12-31;255" % i] for i in range(1, 31)]
    lines.append([5, 0, "2099-12-31 23:59:59"])
    return {"lines": lines, "active": False, "crc": 2 ** 31 - 1}


def test_bindings_never_push_the_configuration_record_over_its_slot():
    # the 1 KiB bound on bus_bindings assumed ~700 bytes; bus meters claiming 32-character
    # serials fill the whole 1 KiB, and with the largest tariff plan the record (4.2 KB)
    # no longer fit its 4 KiB copy: every later save failed (FLASH_CORRUPT), also the
    # uplink key's and the password's ("configuration not written"), and a restart lost
    # everything since
    import gc

    from meter.settings import Settings, _json_len

    gc.collect()
    dev = NORFlash(2 * 4096, sector_size=4096, page_size=256, strict=True)
    log = events.EventLog(Clock())
    st = Settings(log, Partition(dev, 0, dev.size))
    st.settle(None)
    st.set("tou_program", _largest_plan())
    for v in ({}, [], {"a": [1, "b\u00e9", None, 1.5, {}], "c": True}, st._d["alt_list"],
              st._d["tou_program"]["lines"][:9]):  # the record's size, counted piecewise
        assert _json_len(v) == len(json.dumps(v, separators=(",", ":")).encode()), v
    assert st.tick(10 ** 6, force=True)
    addrs = tuple("%08d" % (10000001 + i) for i in range(24))
    c, log = _conc([], addrs, None, log)
    c.settings = st
    for i, m in enumerate(c.meters):  # each binds at its first good readout
        assert c._serial_refused(m, "H%031d" % i) == 0
    c._store()  # (at the cycle's end)
    gc.collect()  # (the save makes the record's 4 KB text twice: a 96 KiB heap)
    assert st.tick(2 * 10 ** 6, force=True), "the record still fits its slot"
    assert not [e for e in log.records() if e[1] == events.FLASH_CORRUPT]
    assert 0 < len(st["bus_bindings"]) < 24 and len(c.bindings()) == 24
    # room is left for the other settings: a key and a longer broker are still written
    key = "ab41c7d09e3f5a2b6c8d7e9f0a1b2c3d"
    st.set("uplink_key", key)
    st.set("uplink_broker", "b" * 94 + ":18830")
    gc.collect()
    assert st.save_now()
    del c
    gc.collect()
    st2 = Settings(events.EventLog(Clock()), Partition(dev, 0, dev.size))
    assert st2["uplink_key"] == key and st2["bus_bindings"] == st["bus_bindings"]


def _cat(st, log, c=None):
    from energy import Registers
    from meter.catalogue import Catalogue

    cat = Catalogue(Registers(256, 256, 256), None, st, None, None, Clock(), log, "SIM00001",
                    "")
    cat.concentrator = c  # (as firmware/app.py wires it)
    return cat


def test_c939_unbinds_a_binding_kept_in_ram_and_an_address_written_with_leading_zeros():
    # W1 C.93.9 looked in the settings only: a binding kept in RAM (no room in the
    # configuration) answered "bus address not bound" and "*" left it in place, so a
    # replaced meter stayed refused until a restart; and "0012" (the same bus address as
    # "12", iec62056 same_address) was "not bound" either
    from meter.settings import Settings

    log = events.EventLog(Clock())
    st = Settings(log)
    full = {"%032d" % i: "%032d" % i for i in range(14)}
    full["%012d" % 99] = "%012d" % 99  # 1 012 of the 1 024 bytes: no room for one more
    st.set("bus_bindings", full)
    c, log = _conc([], ("10000001", "10000002", "12"), None, log)
    c.settings = st
    m1, m2, m12 = c.meters
    assert c._serial_refused(m1, "S1") == 0 and c._serial_refused(m2, "S2") == 0
    c._store()  # (at the cycle's end)
    assert "10000001" not in st["bus_bindings"] and c.bindings()["10000001"] == "S1"
    cat = _cat(st, log, c)
    cat.write("C.93.9", "10000001", events.SRC_OPTICAL)
    assert "10000001" not in c.bindings()
    assert c._serial_refused(m1, "S1NEW") == 0, "the replaced meter binds anew"
    cat.write("C.93.9", "*", events.SRC_OPTICAL)
    assert c.bindings() == {} and st["bus_bindings"] == {}
    assert c._serial_refused(m2, "S2NEW") == 0
    # an address and its leading-zero form are one bus meter
    assert c._serial_refused(m12, "S12") == 0
    for a in ("0012", "12"):
        assert c._serial_refused(K._Meter(a), "S12") == 0, a
        assert c._serial_refused(K._Meter(a), "OTHER") == 1, a
    cat.write("C.93.9", "0012", events.SRC_OPTICAL)
    assert "12" not in c.bindings()
    try:
        cat.write("C.93.9", "0013", events.SRC_OPTICAL)
        raise AssertionError("unbound")
    except ValueError as e:
        assert str(e) == "bus address not bound", e


def test_a_meter_moved_to_another_address_is_not_refused_for_its_old_unpolled_one():
    # a meter moved by the installer from a bus address no longer polled (taken out of the
    # board's list) to a new one was refused for ever as "bound to another address": the
    # stale binding of an address that is not polled any more held its serial
    from meter.settings import Settings

    log = events.EventLog(Clock())
    st = Settings(log)
    st.set("bus_bindings", {"10000009": "S9", "10000002": "S2"})
    c, log = _conc([], ("10000001", "10000002"), None, log)
    c.settings = st
    m1, m2 = c.meters
    assert c._serial_refused(m1, "S2") == 3, "a polled neighbour's serial stays refused"
    assert c._serial_refused(m1, "S9") == 0
    c._store()  # (at the cycle's end)
    assert st["bus_bindings"] == {"10000001": "S9", "10000002": "S2"}, st["bus_bindings"]


async def test_a_cycle_binding_many_meters_is_one_configuration_change():
    # each first binding was its own settings change, so its own flash write (2 s apart):
    # a concentrator's first cycle spent the configuration's write budget (4 at once, then
    # one an hour) and the installer's uplink key and password writes right after
    # commissioning were refused ("configuration write budget spent")
    from meter.settings import Settings

    dev = NORFlash(2 * 4096, sector_size=4096, page_size=256, strict=True)
    log = events.EventLog(Clock())
    st = Settings(log, Partition(dev, 0, dev.size))
    st.settle(None)
    changes = []
    st.subscribe(changes.append)
    addrs = tuple("%08d" % (10000001 + i) for i in range(6))
    c, log = _conc([_session(a, "0000001.500") for a in addrs], addrs, _outbox(), log)
    c.settings = st
    await c.cycle()
    assert changes == ["bus_bindings"], changes
    assert len(st["bus_bindings"]) == 6 and st.tick(10 ** 6, force=True)
    assert st.save_allowed(), "the budget left for the installer's writes"


def test_an_unbind_is_in_flash_before_its_ack():
    # W1 C.93.9 was acknowledged with the change waiting for the deferred save (2 s, or
    # an hour with the write budget spent): a power cut then brought the replaced meter's
    # binding back and its successor was refused until the next visit
    from meter.settings import Settings

    dev = NORFlash(2 * 4096, sector_size=4096, page_size=256, strict=True)
    log = events.EventLog(Clock())
    st = Settings(log, Partition(dev, 0, dev.size))
    st.settle(None)
    st.set("bus_bindings", {"10000001": "S1", "10000002": "S2"})
    assert st.tick(10 ** 6, force=True)
    c, log = _conc([], ("10000001", "10000002"), None, log)
    c.settings = st
    for conc in (c, None):  # (through the concentrator as app.py wires it, and without)
        _cat(st, log, conc).write("C.93.9", "1000000%d" % (1 if conc else 2),
                                  events.SRC_OPTICAL)
    # a power cut now: the configuration read back
    st2 = Settings(events.EventLog(Clock()), Partition(dev, 0, dev.size))
    assert st2["bus_bindings"] == {}, st2["bus_bindings"]


async def test_a_pre_binding_written_before_the_first_poll_refuses_an_impostor():
    # after an unbind (a replaced meter) the first meter to answer at the address bound it:
    # an impostor polled first took the new meter's place. W1 C.93.9(ADDRESS=SERIAL) binds
    # the address to the serial the installer read off the new meter, before the first poll
    from meter.settings import Settings

    dev = NORFlash(2 * 4096, sector_size=4096, page_size=256, strict=True)
    part = Partition(dev, 0, dev.size)
    log = events.EventLog(Clock())
    st = Settings(log, part)
    st.settle(None)
    st.set("bus_bindings", {"10000001": "10000001", "10000005": "10000005"})
    claim = ["10000099"]  # the impostor at the replaced meter's address
    addrs = ("10000001", "10000005")
    ob = _outbox()
    c, log = _conc([_session("10000001", "0000001.500"), _liar("10000005", claim)], addrs,
                   ob, log)
    c.settings = st
    cat = _cat(st, log, c)
    cat.write("C.93.9", "10000005=10000077", events.SRC_OPTICAL)  # the new meter's serial
    assert st["bus_bindings"] == {"10000001": "10000001", "10000005": "10000077"}
    ch = [e for e in log.records() if e[1] == events.PARAM_CHANGED]
    assert ch[-1][2] == 1 and ch[-1][4] == "C.93.9", ch
    st2 = Settings(events.EventLog(Clock()), part)  # in flash before the ACK
    assert st2["bus_bindings"]["10000005"] == "10000077", st2["bus_bindings"]
    await c.cycle()
    fwd = [json.loads(msg.with_seq(s, b)) for s, k, b in _drain(ob) if k == KIND_FORWARD]
    assert [d["meter"] for d in fwd] == ["10000001"], fwd
    ref = [(e[2], e[4]) for e in log.records() if e[1] == events.CONC_SERIAL_REFUSED]
    assert ref == [(1, "000005")], ref
    claim[0] = "10000077"  # the new meter answers
    await c.cycle()
    fwd = [json.loads(msg.with_seq(s, b)) for s, k, b in _drain(ob) if k == KIND_FORWARD]
    assert sorted(d["meter"] for d in fwd) == ["10000001", "10000077"], fwd
    # leading zeros name the same address; bad pre-bindings are refused, naming why
    cat.write("C.93.9", "0010000005=10000078", events.SRC_OPTICAL)
    assert st["bus_bindings"] == {"10000001": "10000001", "0010000005": "10000078"}
    for text, err in (("10000009=10000001", "bus binding: serial 10000001 is bound to "
                       "address 10000001: unbind it first"),
                      ("10000009=SIM00001", "bus binding: SIM00001 is the concentrator's "
                       "own serial"),
                      ("=10000001", "bus binding: not ADDRESS=SERIAL"),
                      ("10000009=", "bus binding: not ADDRESS=SERIAL"),
                      ("1000 0009=S1", "bus binding: not ADDRESS=SERIAL")):
        try:
            cat.write("C.93.9", text, events.SRC_OPTICAL)
            raise AssertionError("accepted: " + text)
        except ValueError as e:
            assert str(e).startswith(err), (text, str(e))
    assert st["bus_bindings"] == {"10000001": "10000001", "0010000005": "10000078"}
    # a meter that is no concentrator keeps the table for one (its settings only)
    _cat(st, log, None).write("C.93.9", "10000002=S2", events.SRC_OPTICAL)
    assert st["bus_bindings"]["10000002"] == "S2"


def test_a_refused_pre_binding_keeps_the_binding_kept_in_ram():
    # W1 C.93.9(ADDRESS=SERIAL) dropped the address's RAM-only binding (no room in the
    # configuration) before the settings refused the new table (over 1 KiB): the write was
    # answered with an error, but the address was left unbound, so the next meter to answer
    # there (an impostor) bound it
    from meter.settings import Settings

    log = events.EventLog(Clock())
    st = Settings(log)
    full = {"%032d" % i: "%032d" % i for i in range(14)}
    full["%012d" % 99] = "%012d" % 99  # 1 012 of the 1 024 bytes: no room for one more
    st.set("bus_bindings", full)
    c, log = _conc([], ("10000001",), None, log)
    c.settings = st
    m1 = c.meters[0]
    assert c._serial_refused(m1, "S1") == 0
    c._store()
    assert "10000001" not in st["bus_bindings"] and c.bindings()["10000001"] == "S1"
    try:
        _cat(st, log, c).write("C.93.9", "10000001=S1NEW", events.SRC_OPTICAL)
        raise AssertionError("accepted over 1 KiB")
    except ValueError as e:
        assert "1024 bytes" in str(e), e
    assert st["bus_bindings"] == full and c.bindings()["10000001"] == "S1", c.bindings()
    assert c._serial_refused(m1, "IMPOSTOR") == 1, "the address stays bound"


def test_a_pre_binding_of_an_address_not_polled_is_refused_naming_it():
    # W1 C.93.9(10000050=10000077), the address mistyped for 10000005: acknowledged and
    # kept, it bound an address never polled (inert), and the replaced meter's address
    # stayed unbound: the first meter to answer there (an impostor) bound it
    from meter.settings import Settings

    log = events.EventLog(Clock())
    st = Settings(log)
    st.set("bus_bindings", {"10000001": "10000001"})
    c, log = _conc([], ("10000001", "10000005"), None, log)
    c.settings = st
    cat = _cat(st, log, c)
    try:
        cat.write("C.93.9", "10000050=10000077", events.SRC_OPTICAL)
        raise AssertionError("a binding of an address not polled accepted")
    except ValueError as e:
        assert str(e) == ("bus binding: address 10000050 is not polled by this "
                          "concentrator"), e
    assert st["bus_bindings"] == {"10000001": "10000001"}, st["bus_bindings"]
    assert not [e for e in log.records() if e[1] == events.PARAM_CHANGED]
    # the polled address (also with leading zeros) is bound
    cat.write("C.93.9", "0010000005=10000077", events.SRC_OPTICAL)
    assert st["bus_bindings"]["0010000005"] == "10000077", st["bus_bindings"]
    assert c._serial_refused(c.meters[1], "10000099") == 1, "the impostor refused"
