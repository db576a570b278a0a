# The uplink task (firmware/uplink/task.py) with the SIM800 model and an in-memory MQTT
# broker (modemkit), on a simulated clock: outbox drained in order at PUBACK, an outage
# (+PDP: DEACT) keeps what was not acknowledged, commands answered, relay refused.
import json

from modemkit import MiniBroker, Rig, add_frozen_lib

add_frozen_lib()

from boards.sim.norflash import NORFlash  # noqa: E402
from events import EventLog  # noqa: E402
from flashstore.flash import Partition  # noqa: E402
from uplink.outbox import KIND_READING, Outbox  # noqa: E402
from uplink.task import Uplink  # noqa: E402


class _Clock:
    def __init__(self):
        self.t = 0

    def time(self):
        return 504921600 + self.t // 1000

    def ticks_ms(self):
        return self.t

    def ticks_diff(self, a, b):
        return a - b


class _Board:
    def __init__(self, rig):
        self.uart_modem = rig.model
        self.modem_pwrkey = rig.model.pwrkey
        self.clock = _Clock()


class _Cat:  # the two registers a reading needs (catalogue shape: codes/entry/value)
    def codes(self, access):
        return ["1.8.0", "2.8.0"]

    def entry(self, code):
        return (code, 1, "kWh", 3, 1, 0)

    def value(self, e):
        return 12345 if e[0] == "1.8.0" else 0

    def write(self, obis, value, src):
        self.written = (obis, value, src)


def _rig():
    broker = MiniBroker()
    r = Rig(peer=broker)
    b = _Board(r)
    log = EventLog(b.clock)
    ob = Outbox(Partition(NORFlash(8 * 4096), 0, 8 * 4096))
    ob.mount()
    up = Uplink(b, _Cat(), log, ob, "SIM00001", ("broker", 1883), link=r.link,
                idle=lambda: r.clock.advance(2))
    r.m.open("broker", 1883, 0)
    return r, broker, up, ob, log


def _run(r, up, cond, max_ms=60000):
    t0 = r.clock.t
    while not cond():
        up.step()
        r.advance(10)
        assert r.clock.t - t0 < max_ms, "not reached: %s %r" % (r.m.state_name, up.stats())


def _seqs(broker):
    out = []
    for p in broker.payloads:
        if p.startswith(b'{"seq":'):
            out.append(json.loads(p)["seq"])
    return out


def test_outbox_drained_in_order_and_kept_over_an_outage():
    r, broker, up, ob, log = _rig()
    for i in range(5):
        ob.put(KIND_READING, '{"n":%d}' % i)
    _run(r, up, lambda: up.session and ob.pending() == 0)
    assert broker.payloads[0] == b'{"state":"online"}', broker.payloads[:2]
    assert _seqs(broker) == [1, 2, 3, 4, 5], broker.payloads
    assert json.loads(broker.payloads[1]) == {"seq": 1, "n": 0}
    r.model.network_down("deact")  # +PDP: DEACT: the link and the session go
    for i in range(5, 12):
        ob.put(KIND_READING, '{"n":%d}' % i)
    for _ in range(300):
        up.step()
        r.advance(10)
    assert ob.pending() >= 6, up.stats()  # nothing acknowledged while the network is down
    r.model.network_up()
    _run(r, up, lambda: up.session and ob.pending() == 0, 600000)
    got = _seqs(broker)
    firsts = []
    for s in got:  # a re-sent message keeps its seq: the head-end discards it
        if s not in firsts:
            firsts.append(s)
    assert firsts == list(range(1, 13)), got
    assert up.sessions >= 2


def test_commands_answered_and_relay_refused():
    r, broker, up, ob, log = _rig()
    _run(r, up, lambda: up.session)
    up._on_msg(b"meters/SIM00001/cmd", b'{"id":7,"cmd":"relay","on":0}')
    up._on_msg(b"meters/SIM00001/cmd", b'{"id":8,"cmd":"registers"}')
    up._on_msg(b"meters/SIM00001/cmd", b'[1]')
    up._on_msg(b"meters/SIM00001/cmd", b'{"id":9,"cmd":"time","t":504921700}')
    up._on_msg(b"meters/SIM00001/cmd", b'{"id":10,"cmd":"time","t":504921800}')
    _run(r, up, lambda: len([p for p in broker.payloads if b'"ok"' in p]) >= 5)
    acks = [json.loads(p) for p in broker.payloads if b'"ok"' in p]
    assert acks[0] == {"id": 7, "cmd": "relay", "ok": False, "error": "not supported"}, acks
    assert acks[1]["ok"] and acks[1]["values"] == [["1.8.0", 12.345, "kWh"],
                                                   ["2.8.0", 0.0, "kWh"]], acks[1]
    assert acks[2] == {"ok": False, "error": "bad request"}
    assert acks[3]["ok"] and up.catalogue.written == ("0.9.1", 504921700, 4)
    assert acks[4] == {"id": 10, "cmd": "time", "ok": False, "error": "rate limited"}


def test_a_long_outage_logs_its_drops_twice_not_once_per_sector():
    # the outbox full for days: each dropped sector logged UPLINK_DROPPED (and forwarded it,
    # i.e. queued one more message): two weeks offline filled the event log with them and
    # pushed the billing events out of the meter's RAM log
    import events

    r, broker, up, ob, log = _rig()
    r.model.network_down("deact")
    n = 0
    while ob.dropped < 40:  # several sectors' worth dropped
        ob.put(KIND_READING, '{"n":%d}' % n)
        up._dropped()
        n += 1
    assert log.count(events.UPLINK_DROPPED) == 1, log.entries()
    r.model.network_up()
    _run(r, up, lambda: up.session and ob.pending() == 0, 600000)
    got = [e for e in log.entries() if e[1] == events.UPLINK_DROPPED]
    assert len(got) == 2 and got[1][2] == ob.dropped, got  # the episode's total


def test_start_up_comes_in_steps_and_nothing_is_queued_before_the_outbox_is_mounted():
    # the uplink's start-up (modem modules, manager, outbox mount, umqtt) ran at once in
    # Meter(): ~60 ms before the event loop turned on the virtual board (issue 11). Now
    # the task does it one step per turn; the schedule waits for it; a last gasp before it
    # ends finishes it at once and still queues POWER_FAIL.
    import asyncio

    import events

    broker = MiniBroker()
    r = Rig(peer=broker)
    b = _Board(r)
    log = EventLog(b.clock)
    ob = Outbox(Partition(NORFlash(8 * 4096), 0, 8 * 4096))
    up = Uplink(b, _Cat(), log, ob, "SIM00001", ("broker", 1883), link=r.link,
                idle=lambda: r.clock.advance(2))
    assert not up.ready and not ob.mounted and up.stats()["state"] == "START"
    steps = 0
    for _ in up._boot:
        steps += 1
        if steps == 3:
            assert not up.ready
    assert up.ready and ob.mounted and steps >= 7 + 7, steps  # modules, then a sector a step
    up2 = Uplink(b, _Cat(), log, Outbox(Partition(NORFlash(8 * 4096), 0, 8 * 4096)),
                 "SIM00001", ("broker", 1883), link=r.link)
    next(up2._boot)
    next(up2._boot)
    g = up2.last_gasp(50)  # the power-fail warning in the middle of the start-up
    assert up2.ready and g["seq"] is not None and up2.outbox.pending() == 1
    assert json.loads(up2.outbox.peek()[2])["code"] == events.POWER_FAIL

    async def main():  # the schedule's first reading waits for the start-up
        ob3 = Outbox(Partition(NORFlash(8 * 4096), 0, 8 * 4096))
        up3 = Uplink(b, _Cat(), log, ob3, "SIM00001", ("broker", 1883), link=r.link,
                     interval_s=1)
        b.clock.sleep_ms = lambda ms: asyncio.sleep_ms(0) if hasattr(
            asyncio, "sleep_ms") else asyncio.sleep(0)
        t = asyncio.create_task(up3.schedule())
        for _ in range(5):
            await asyncio.sleep(0)
        assert ob3.next_seq == 1 and not ob3.mounted  # nothing put before the mount
        for _ in up3._boot:
            await asyncio.sleep(0)
        for _ in range(5):
            await asyncio.sleep(0)
        t.cancel()
        assert ob3.pending() >= 1, ob3.pending()

    asyncio.run(main())
