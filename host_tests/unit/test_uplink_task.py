# The uplink task (firmware/uplink/task.py) with the SIM800 model and an in-memory MQTT
# broker (modemkit), on a simulated clock: outbox drained in order at PUBACK, an outage
# (+PDP: DEACT) keeps what was not acknowledged, commands answered, relay refused.
import json

from modemkit import MiniBroker, Rig, UplinkBoard, UplinkClock, add_frozen_lib
from modemkit import UplinkCatalogue as _Cat
from modemkit import run_uplink as _run
from modemkit import uplink_rig as _rig

add_frozen_lib()

from boards.sim.norflash import NORFlash  # noqa: E402
from events import EventLog  # noqa: E402
from flashstore.flash import Partition  # noqa: E402
from uplink.outbox import KIND_READING, Outbox  # noqa: E402
from uplink.task import Uplink  # noqa: E402


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
    b = UplinkBoard(r)
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


class _Prof:  # meter.profile.LoadProfile's reading side over a list of rows
    name = "P.01"

    def __init__(self, rows):
        from meter.profile import DEFAULT, layout_of

        self.layout = layout_of(DEFAULT[0])
        self.period = self.layout.period
        self.rows = rows

    def iter_rows(self, t_from=None, t_to=None, tick=0):
        for r in self.rows:
            if (t_from is None or r[0] >= t_from) and (t_to is None or r[0] <= t_to):
                yield r

    def range_rows(self, t_from, t_to, tick=0):
        return self.iter_rows(t_from, t_to, tick)

    def rows_since(self, cur, t_to, max_rows, tick=0):
        # newest first back to the newest row at or before cur (a row read per tick unit)
        out = []
        for i in range(len(self.rows) - 1, -1, -1):
            if tick and i % tick == 0:
                yield None
            r = self.rows[i]
            if r[0] <= cur:
                break
            if r[0] <= t_to:
                out.insert(0, r)
        return out[:max_rows]


def _row(k):
    return (504921600 + 900 * k, 0x40 if k == 1 else 0, [100 + k, 0, 7, 0, 400 * k, 2301])


def _queue(up, t_to):
    from uplink.outbox import KIND_PROFILE

    got = []
    for x in up.profile_bodies(t_to):
        if x is None:  # (a share of the ring read: the schedule's next round)
            continue
        body, last = x
        assert up.outbox.put(KIND_PROFILE, body) is not None
        up.profile_cursor = last
        got.append(json.loads(body))
    return got


def test_profile_rows_go_once_with_a_cursor_that_survives_a_restart():
    from uplink.outbox import BODY_MAX, KIND_PROFILE

    r = Rig(peer=MiniBroker())
    b = UplinkBoard(r)
    part = Partition(NORFlash(8 * 4096), 0, 8 * 4096)

    def boot(rows):
        ob = Outbox(part)
        up = Uplink(b, _Cat(), EventLog(b.clock), ob, "SIM00001", ("broker", 1883),
                    link=r.link)
        up.profile = _Prof(rows)
        up.setup()
        return up, ob

    rows = [_row(k) for k in range(1, 11)]
    up, ob = boot(rows)
    assert up.profile_cursor == b.clock.time() == 504921600  # new meter: rows from now
    got = _queue(up, 504921600 + 9000)
    for m in got:
        assert len(json.dumps(m, separators=(",", ":"))) <= BODY_MAX
        assert m["profile"] == "P.01" and m["period_s"] == 900
        assert m["channels"][0] == ["1.29", "kWh"] and m["channels"][5] == ["32.7", "V"]
    sent = [x for m in got for x in m["rows"]]
    assert len(got) >= 2 and [x[0] for x in sent] == [
        "2016-01-01T%02d:%02d:00Z" % (k * 15 // 60, k * 15 % 60) for k in range(1, 11)], sent
    assert sent[0] == ["2016-01-01T00:15:00Z", 64, [0.101, 0.0, 0.007, 0.0, 0.4, 230.1]]
    assert [x for x in up.profile_bodies(504921600 + 9000) if x is not None] == []  # nothing
    # new: nothing again
    # a restart: the cursor comes back from the outbox's newest profile message
    rows += [_row(11), _row(12)]
    up, ob = boot(rows)
    assert up.profile_cursor == 504921600 + 9000, up.profile_cursor
    again = _queue(up, 504921600 + 900 * 12)
    assert [x[0] for m in again for x in m["rows"]] == ["2016-01-01T02:45:00Z",
                                                         "2016-01-01T03:00:00Z"], again
    # a power cut during the next append: that message is absent, its rows go again
    rows.append(_row(13))
    body, last = [x for x in up.profile_bodies(504921600 + 900 * 13) if x is not None][0]
    up, ob = boot(rows)  # (the append never happened)
    assert [x[0] for m in _queue(up, 504921600 + 900 * 13) for x in m["rows"]] == [
        "2016-01-01T03:15:00Z"]
    assert json.loads(ob.newest(KIND_PROFILE))["rows"][-1][0] == "2016-01-01T03:15:00Z"
    # the RTC set back before the cursor: the rows of the new time since the round before
    # (a row of the old time in that span again, identical: the head-end discards it)
    rows.append((504921600 + 900 * 5, 0x20, [1, 0, 0, 0, 4, 2300]))
    got = [x for m in _queue(up, 504921600 + 900 * 5) for x in m["rows"]]
    assert got == [["2016-01-01T01:15:00Z", 0, [0.105, 0.0, 0.007, 0.0, 2.0, 230.1]],
                   ["2016-01-01T01:15:00Z", 32, [0.001, 0.0, 0.0, 0.0, 0.004, 230.0]]], got


def test_profile_rows_per_round_are_bounded():
    r = Rig(peer=MiniBroker())
    b = UplinkBoard(r)
    rows = [_row(k) for k in range(1, 301)]
    up = Uplink(b, _Cat(), EventLog(b.clock), Outbox(Partition(NORFlash(8 * 4096), 0,
                                                               8 * 4096)),
                "SIM00001", ("broker", 1883), link=r.link)
    up.profile = _Prof(rows)
    up.setup()
    n = sum(len(json.loads(x[0])["rows"]) for x in up.profile_bodies(504921600 + 900 * 300)
            if x is not None)
    assert n == up.profile_max_rows == 96


def test_the_scheduled_profile_read_reads_the_newest_records_not_the_ring():
    # profile_bodies read the load profile's ring from its oldest record every quarter hour
    # to find the newest rows (iter_rows): 8.9 ms for a year's ring on this host, one round
    # (docs/BENCHMARKS.md "The load profile read for the uplink"); now newest first
    from test_load_profile import _counting, _full

    r = Rig(peer=MiniBroker())
    b = UplinkBoard(r)
    up = Uplink(b, _Cat(), EventLog(b.clock), Outbox(Partition(NORFlash(8 * 4096), 0,
                                                               8 * 4096)),
                "SIM00001", ("broker", 1883), link=r.link)
    _nor, clk, _regs, p = _full()  # a wrapped ring of 60-s rows, 40 records
    up.profile = p
    up.setup()
    reads = _counting(p)
    t = clk.time()
    # (headers read back to the cursor, then the records of the rows taken read again)
    for back, most in ((14, 0), (15, 1), (60, 4), (600, 600 // 18 + 2 + 96 // 18 + 2)):
        up.profile_cursor = t - 60 * back
        reads[0] = 0
        got = [x for x in up.profile_bodies(t) if x is not None]
        n = reads[0]
        rows = [x for bd, _last in got for x in json.loads(bd)["rows"]]
        assert len(rows) == min(back, up.profile_max_rows), (back, len(rows))
        assert got[-1][1] == (t if back <= 96 else t - 60 * (back - 96)), back
        assert n <= most, (back, n)
    # a cursor before every row: the whole ring, range_scan (32) records a round
    up.profile_cursor = 0
    reads[0] = 0
    rounds = []
    for x in up.profile_bodies(t):
        if x is None:
            rounds.append(reads[0])
            reads[0] = 0
    assert rounds and max(rounds) <= up.range_scan, rounds


def test_a_profile_range_answer_reads_the_records_of_its_range_not_the_ring():
    # the range answer read the ring from its oldest record, 32 a round (iter_rows): a
    # range of the last half hour passed over the whole ring first
    from test_load_profile import _counting, _full
    from uplink import messages as msg

    r = Rig(peer=MiniBroker())
    b = UplinkBoard(r)
    up = Uplink(b, _Cat(), EventLog(b.clock), Outbox(Partition(NORFlash(8 * 4096), 0,
                                                               8 * 4096)),
                "SIM00001", ("broker", 1883), link=r.link)
    _nor, clk, _regs, p = _full()  # a wrapped ring of 60-s rows, 40 records
    p.store.bucket = 4  # (a small ring; the meter's buckets are 16 records)
    up.profile = p
    up.setup()  # (builds the time index)
    recs = sum(1 for _ in p.store.records())
    reads = _counting(p)
    t = clk.time()
    for back, most in ((30, 8), (100, 12)):
        want = [msg.iso(x[0]) for x in p.iter_rows(t - 60 * back, t)]
        reads[0] = 0
        req = {"id": 1, "cmd": "profile", "from": t - 60 * back, "to": t}
        assert up._answer(json.dumps(req).encode()) is None
        pages = [json.loads(pg) for pg in up._range if pg]  # (b"": a round of reading)
        up._range = None
        got = [x[0] for pg in pages for x in pg["rows"]]
        assert got == want and len(got) == back + 1, (back, len(got))
        assert reads[0] <= most < recs, (back, reads[0], recs)


class _YearProf(_Prof):  # rows made as they are read: a year of 15-min rows, no list
    def __init__(self, n):
        _Prof.__init__(self, [])
        self.n = n
        self.read = 0

    def iter_rows(self, t_from=None, t_to=None, tick=0):
        for k in range(1, self.n + 1):
            r = _row(k)
            if (t_from is None or r[0] >= t_from) and (t_to is None or r[0] <= t_to):
                self.read += 1
                yield r


class _Events:  # meter.eventstore.EventStore.logbook over generated entries
    def logbook(self, log=None, t_from=None, t_to=None, tick=0):
        import events

        for k in range(5000):
            t = 504921600 + 60 * k
            if (t_from is None or t >= t_from) and (t_to is None or t <= t_to):
                yield (t, log, 47, events.PARAM_CHANGED, k, 1, b"", k % 2 == 1)


def _ranged(up, req):
    assert up._answer(json.dumps(req).encode()) is None
    out = [json.loads(p) for p in up._range]
    up._range = None  # (what _round does when the pages are all sent)
    return out


def test_profile_and_log_ranges_are_paged_bounded_and_bad_arguments_refused():
    import events

    r = Rig(peer=MiniBroker())
    b = UplinkBoard(r)
    up = Uplink(b, _Cat(), EventLog(b.clock), Outbox(Partition(NORFlash(8 * 4096), 0,
                                                               8 * 4096)),
                "SIM00001", ("broker", 1883), link=r.link)
    up.setup()
    up.profile = prof = _YearProf(35040)  # a year of quarter hours
    # a hostile head-end asks for the whole year: pages of at most 1 KiB, read as sent
    assert up._answer(b'{"id":5,"cmd":"profile","from":"2016-01-01T00:00:00Z",'
                      b'"to":"2017-01-01T00:00:00Z"}') is None
    first = next(up._range)
    assert len(first) <= up.range_page_bytes and prof.read <= 20, (len(first), prof.read)
    p = json.loads(first)
    assert p["rows"][0] == ["2016-01-01T00:15:00Z", 64, [0.101, 0.0, 0.007, 0.0, 0.4, 230.1]]
    n = len(p["rows"])
    k = 1
    t_prev = p["rows"][-1][0]
    for page in up._range:  # (one page at a time: the device's heap is small)
        assert len(page) <= up.range_page_bytes
        p = json.loads(page)
        k += 1
        assert p["page"] == k and p["id"] == 5 and p["ok"], p
        assert p["channels"][0] == ["1.29", "kWh"] and p["rows"][0][0] > t_prev
        n += len(p["rows"])
        t_prev = p["rows"][-1][0]
    up._range = None
    assert n == up.range_max_rows == 672 and p["rows_total"] == 672
    assert p["last"] and p["more"] == "2016-01-08T00:15:00Z", p
    assert t_prev == "2016-01-08T00:00:00Z"
    # a small range: one page
    p = _ranged(up, {"id": "a", "cmd": "profile", "from": "2016-01-01T01:00:00Z",
                     "to": "2016-01-01T02:00:00Z"})
    assert len(p) == 1 and [x[0][11:16] for x in p[0]["rows"]] == [
        "01:00", "01:15", "01:30", "01:45", "02:00"] and "more" not in p[0], p
    # the logbook
    up.events_store = _Events()
    p = _ranged(up, {"id": 9, "cmd": "log", "log": "standard", "from": 504921600,
                     "to": 504921600 + 600})
    assert p[0]["log"] == "standard" and p[0]["rows_total"] == 11, p
    assert p[0]["events"][1] == ["2016-01-01T00:01:00Z", 47, events.PARAM_CHANGED,
                                 "parameter changed", 1,
                                 "optical", 1], p[0]["events"][1]
    assert up._answer(b'{"id":9,"cmd":"log","log":"standard","from":0,"to":1073741824}') \
        is None
    n = 0
    for page in up._range:
        assert len(page) <= up.range_page_bytes
        p = json.loads(page)
        n += len(p["events"])
    up._range = None
    assert n == 672 and p["more"] == "2016-01-01T11:12:00Z", p
    # bad arguments: refused, naming what was wrong
    for req, err in (({"cmd": "profile", "to": 1}, "from: missing"),
                     ({"cmd": "profile", "from": "yesterday", "to": 1}, "from: \"yesterday\""),
                     ({"cmd": "profile", "from": True, "to": 1}, "from: true"),
                     ({"cmd": "profile", "from": -5, "to": 1}, "from: -5"),
                     ({"cmd": "profile", "from": 1, "to": "2016-02-30T00:00:00Z"}, "to:"),
                     ({"cmd": "profile", "from": 900, "to": 0}, "to: 2000-01-01T00:00:00Z is "
                      "before from"),
                     ({"cmd": "log", "log": "secret", "from": 0, "to": 1}, 'log: "secret" is '
                      "not one of"),
                     ({"cmd": "log", "from": 0, "to": 1}, "log: null"),
                     ({"id": "x" * 100, "cmd": "log", "log": "fraud", "from": 0, "to": 1},
                      "id: longer than 64")):
        a = up._answer(json.dumps(req).encode())
        assert a is not None and a["ok"] is False and err in a["error"], (req, a)
    up._answer(b'{"id":1,"cmd":"profile","from":0,"to":99999999}')
    a = up._answer(b'{"id":2,"cmd":"log","log":"fraud","from":0,"to":1}')
    assert a["error"].startswith("busy"), a  # one range at a time
    up._range = None
    up.profile = None
    a = up._answer(b'{"id":3,"cmd":"profile","from":0,"to":1}')
    assert a == {"id": 3, "cmd": "profile", "ok": False, "error": "no load profile"}, a


class _WrapClock(UplinkClock):  # a board's: ticks_ms wraps at 2**30 (MicroPython, 32-bit port)
    def ticks_ms(self):
        return self.t & ((1 << 30) - 1)

    def ticks_diff(self, a, b):
        return ((a - b + (1 << 29)) & ((1 << 30) - 1)) - (1 << 29)


def _bare(clock):
    b = type("B", (), {})()
    b.clock = clock
    return Uplink(b, _Cat(), EventLog(clock), Outbox(Partition(NORFlash(8 * 4096), 0,
                                                               8 * 4096)),
                  "SIM00001", ("broker", 1883))


def test_time_command_refuses_a_boolean():
    # JSON true is an int in Python: {"t": true} set the RTC to 2000-01-01T00:00:01
    up = _bare(UplinkClock())
    up.catalogue.written = None
    a = up._answer(b'{"id":1,"cmd":"time","t":true}')
    assert a["ok"] is False and "bad time" in a["error"], a
    assert up.catalogue.written is None
    a = up._answer(b'{"id":2,"cmd":"time","t":504921700}')
    assert a["ok"] is True, a  # (the refusal did not use up the hour's set)


def test_time_sync_limit_survives_the_ticks_wrap():
    # the limit compared ticks_ms across 2**30: 6.2 days after a sync the difference went
    # negative and every time sync was "rate limited" for the next 6.2 days
    c = _WrapClock()
    up = _bare(c)

    def sync(i):  # a time sync 100 s ahead of the clock (within the +-900 s of a sync)
        return up._answer(json.dumps({"id": i, "cmd": "time", "t": c.time() + 100}).encode())

    assert sync(1)["ok"]
    c.t += 1000
    assert sync(2)["error"] == "rate limited"
    c.t += 7 * 86400 * 1000
    assert sync(3)["ok"]
    c.t += (1 << 30) + 1000  # 12.4 days: the ticks say 1 s since the sync
    assert sync(4)["ok"]
    c.t += 1000
    assert sync(5)["error"] == "rate limited"


class _RetainedBig(MiniBroker):
    # a hostile head-end left a retained 3 KB message on meters/<serial>/cmd: the broker
    # hands it (QoS 1) to every new subscription
    def _packet(self, t, body):
        super()._packet(t, body)
        if t >> 4 == 8:
            topic = b"meters/SIM00001/cmd"
            pay = b'{"id":1,"cmd":"read","pad":"' + b"x" * 3000 + b'"}'
            n = 2 + len(topic) + 2 + len(pay)
            rl = bytes((n & 0x7F | 0x80, n >> 7))
            self.reply(b"\x33" + rl + bytes((0, len(topic))) + topic + b"\x00\x07" + pay)


def test_a_retained_command_bigger_than_the_receive_buffer_does_not_end_every_session():
    # umqtt.simple reads a PUBLISH's payload in one read(n): with n past the modem's 2 KiB
    # receive buffer it never came, the read timed out and ended the session; the broker
    # sent the message again at the next SUBSCRIBE, so nothing else was ever delivered
    r, broker, up, ob, _log = _rig(_RetainedBig())
    for i in range(5):
        ob.put(KIND_READING, '{"n":%d}' % i)
    _run(r, up, lambda: up.session and ob.pending() == 0, 600000)
    assert _seqs(broker)[:5] == [1, 2, 3, 4, 5], broker.payloads
    assert up.sessions == 1 and up.client.discarded >= 1, up.stats()
    assert up.outbox.peek() is None and not up._cmds  # (not answered: never handed on)


class _RetainedPoison(MiniBroker):
    # a retained command whose "log" is a list: handed to every new subscription
    def _packet(self, t, body):
        super()._packet(t, body)
        if t >> 4 == 8:
            topic = b"meters/SIM00001/cmd"
            pay = b'{"id":4,"cmd":"log","log":[1],"from":0,"to":1}'
            n = 2 + len(topic) + 2 + len(pay)
            self.reply(bytes((0x33, n, 0, len(topic))) + topic + b"\x00\x07" + pay)


def test_a_retained_malformed_range_request_is_refused_not_ending_every_session():
    # "log": [1] raised TypeError (unhashable) out of the command's checks: the session
    # ended, the broker handed the retained message to the next one, and so on for ever
    broker = _RetainedPoison()
    r = Rig(peer=broker)
    b = UplinkBoard(r)
    ob = Outbox(Partition(NORFlash(8 * 4096), 0, 8 * 4096))
    ob.mount()
    up = Uplink(b, _Cat(), EventLog(b.clock), ob, "SIM00001", ("broker", 1883), link=r.link,
                idle=lambda: r.clock.advance(2))
    up.events_store = object()
    r.m.open("broker", 1883, 0)
    for i in range(3):
        ob.put(KIND_READING, '{"n":%d}' % i)
    _run(r, up, lambda: up.session and ob.pending() == 0, 600000)
    assert up.sessions == 1, up.stats()
    acks = [json.loads(p) for p in broker.payloads if b'"ok"' in p]
    assert acks and acks[0]["id"] == 4 and acks[0]["ok"] is False, acks
    assert acks[0]["error"].startswith("log: [1] is not one of"), acks


def test_read_requests_are_limited_so_a_flood_cannot_wear_the_outbox_flash():
    # each "read" is an outbox record (a flash program; a sector erase every 7): a head-end
    # asking a few times a second would wear the partition's sectors out in months
    c = UplinkClock()
    up = _bare(c)
    up.outbox.mount()
    a = up._answer(b'{"id":1,"cmd":"read"}')
    assert a["ok"] is True and a["seq"] == 1, a
    for _ in range(50):
        c.t += 100
        a = up._answer(b'{"id":2,"cmd":"read"}')
        assert a == {"id": 2, "cmd": "read", "ok": False, "error": "rate limited"}, a
    assert up.outbox.next_seq == 2
    c.t += 60000
    assert up._answer(b'{"id":3,"cmd":"read"}')["seq"] == 2


def test_an_erase_at_a_quiet_time_after_a_brownout_reports_the_messages_it_drops():
    # a brown-out's urgent appends used the erased sector of a full outbox; the schedule's
    # next round put nothing (no new profile row) and erased the oldest sector itself: its
    # 7 unacknowledged messages went without being counted, logged or reported
    import asyncio

    import events
    from meter.supply import Supply

    r = Rig(peer=MiniBroker())
    b = UplinkBoard(r)
    sp = Supply()
    log = EventLog(b.clock)
    ob = Outbox(Partition(NORFlash(4 * 4096), 0, 4 * 4096), supply=sp)
    up = Uplink(b, _Cat(), log, ob, "SIM00001", ("broker", 1883), link=r.link,
                interval_s=1, supply=sp)
    up.profile = _Prof([])
    up.setup()
    for i in range(ob.capacity):  # the link is down: the outbox fills up
        ob.put(KIND_READING, '{"n":%d}' % i)
    sp.warning = True
    while ob.put(KIND_READING, '{"n":99}') is not None:
        pass
    sp.warning = False  # (the supply came back)
    owed = ob.pending()
    assert ob.dropped == 0 and ob.ring.needs_maintenance()

    async def main():
        b.clock.sleep_ms = lambda ms: asyncio.sleep(0)
        t = asyncio.create_task(up.schedule())
        for _ in range(5):
            await asyncio.sleep(0)
        t.cancel()

    asyncio.run(main())
    assert not ob.ring.needs_maintenance(), "the round erased a sector"
    assert ob.dropped == 7 and ob.pending() == owed - 7, (ob.dropped, ob.pending(), owed)
    assert log.count(events.UPLINK_DROPPED) == 1, log.entries()
    assert ob.peek()[0] == 8


class _Refusing(MiniBroker):
    """A broker that refuses the CONNECT (``connack`` return code, 5: not authorised) or
    the SUBSCRIBE (``suback`` 0x80: an ACL), until told otherwise."""

    connack = 5
    suback = 0

    def _packet(self, t, body):
        if t >> 4 == 1 and self.connack:
            self.reply(bytes((0x20, 2, 0, self.connack)))
        elif t >> 4 == 8 and self.suback:
            self.reply(bytes((0x90, 3, body[0], body[1], self.suback)))
        else:
            MiniBroker._packet(self, t, body)


def test_a_broker_that_refuses_the_session_is_not_reconnected_to_in_a_storm():
    # CONNACK "not authorised" or a SUBACK failure ends the session with the TCP link up:
    # the uplink released the link and asked for a new one at once, 4 710 TCP connects in
    # 10 minutes (3 756 with a refused SUBSCRIBE); now the manager's backoff is waited
    for connack, suback in ((5, 0), (0, 0x80)):
        r, broker, up, ob, log = _rig()
        br = r.peer = _Refusing()
        br.connack, br.suback = connack, suback
        ob.put(KIND_READING, '{"n":1}')
        t0 = r.clock.t
        while r.clock.t - t0 < 600000:
            up.step()
            r.advance(10)
        n = len(r.connects)
        assert 3 <= n <= 10, (n, up.stats())  # backing off, and trying again
        assert up.errors >= 3 and "MQTTException" in up.last_error, up.stats()
        br.connack = br.suback = 0  # the broker's configuration fixed
        _run(r, up, lambda up=up, ob=ob: up.session and ob.pending() == 0, 1200000)
        assert _seqs(br) == [1], _seqs(br)


class _Pin:
    def __init__(self, clock):
        self.clock = clock
        self.at = None

    def value(self):
        return 1 if self.at is not None and self.clock.t >= self.at else 0


def test_the_power_fail_input_ends_a_blocking_publish_so_the_commit_is_not_late():
    # a QoS 1 publish holds the event loop until its PUBACK (at most max_block_ms, 5 s): a
    # power-fail warning in that time ran its urgent register commit after the publish, long
    # after the hold-up time (100 ms) had run out. The input rising now ends the wait.
    import errno

    r, broker, up, ob, log = _rig()
    pin = up._pf = _Pin(r.clock)
    _run(r, up, lambda: up.session and up._phase == 2)
    broker.ack = False  # a PUBACK that takes its time
    ob.put(KIND_READING, '{"n":1}')
    pin.at = r.clock.t + 300
    t0 = r.clock.t
    up.step()  # the publish: blocks until the input rises
    took = r.clock.t - t0
    assert 300 <= took < 400, took
    assert not up.session and ob.pending() == 1, up.stats()
    assert str(errno.ECONNABORTED) in up.last_error, up.last_error
    g = up.last_gasp(100)  # the warning's last gasp: queued for the next power-up
    assert g["seq"] == 2 and not g["sent"]
    broker.ack = True  # the input stays asserted (stuck, or a long brown-out): the sessions
    _run(r, up, lambda: up.session and ob.pending() == 0, 600000)  # go on after it
    assert [s for s in _seqs(broker)][-2:] == [1, 2], _seqs(broker)


def test_a_black_holed_link_ends_the_session_when_its_ping_is_not_answered():
    # the network black-holes the TCP link (the modem still says CONNECTED, no CLOSED):
    # the session stayed "up" for good, pinging into the void, commands unread, while the
    # broker had published the last will long ago
    r, broker, up, ob, log = _rig()
    _run(r, up, lambda: up.session and up._phase == 2)
    r.model.network_down("silent")
    t0 = r.clock.t
    _run(r, up, lambda: not up.session, 1200000)
    took = r.clock.t - t0
    assert took <= (up.keepalive_s + up.keepalive_s // 2) * 1000 + 1000, took
    assert up.pings == 1, up.pings
    r.model.network_up()
    ob.put(KIND_READING, '{"n":1}')
    _run(r, up, lambda: up.session and ob.pending() == 0, 1200000)
    assert _seqs(broker) == [1] and up.sessions == 2, (_seqs(broker), up.sessions)


def test_a_doubled_puback_is_skipped_whole_not_read_as_packets():
    # a PUBACK nobody waits for (late, or sent twice) was left in the stream by umqtt's
    # check_msg: its packet id bytes were taken for packet types (0x30..0x3F a PUBLISH) and
    # the session ended on a read timeout (2 of 3 sessions for 120 messages)
    class _Doubling(MiniBroker):
        def _packet(self, t, body):
            MiniBroker._packet(self, t, body)
            if t >> 4 == 3 and (t >> 1) & 3:
                pid = self.ids[-1]
                self.reply(bytes((0x40, 2, pid >> 8, pid & 0xFF)))

    r, broker, up, ob, log = _rig()
    br = r.peer = _Doubling()
    for i in range(120):
        ob.put(KIND_READING, '{"n":%d}' % i)
        for _ in range(30):
            up.step()
            r.advance(10)
    _run(r, up, lambda: up.session and ob.pending() == 0, 600000)
    assert up.sessions == 1 and up.errors == 0, up.stats()
    assert _seqs(br) == list(range(1, 121))
    assert up.client.strays >= 100, up.client.strays


def test_a_power_fail_the_last_gasp_could_not_store_is_sent_from_the_log():
    # the warning found no erased slot (a full outbox): the gasp's POWER_FAIL was lost, and
    # the one logged just after it was skipped as "already queued"; after the brown-out the
    # head-end never heard of the power failure
    import events
    from meter.supply import Supply
    from uplink.outbox import KIND_EVENT

    r = Rig(peer=MiniBroker())
    b = UplinkBoard(r)
    sp = Supply()
    log = EventLog(b.clock)
    ob = Outbox(Partition(NORFlash(4 * 4096), 0, 4 * 4096), supply=sp)
    up = Uplink(b, _Cat(), log, ob, "SIM00001", ("broker", 1883), link=r.link, supply=sp)
    up.setup()
    for i in range(ob.capacity):
        ob.put(KIND_READING, '{"n":%d}' % i)
    sp.warning = True
    while ob.put(KIND_READING, '{"n":99}') is not None:
        pass
    g = up.last_gasp(50)
    assert g["seq"] is None and ob.lost >= 2, (g, ob.lost)
    log.log(events.POWER_FAIL)  # (the storage logs it after the warning's handler)
    sp.warning = False  # a brown-out: the supply came back
    up.forward_events()
    body = ob.newest(KIND_EVENT)
    assert body is not None and json.loads(body)["code"] == events.POWER_FAIL, body


def test_a_range_in_rtc_seconds_past_2068_is_answered():
    # the RTC is settable up to 2099 (meter/catalogue.py _s_clock: < 3155760000 s), but a
    # range bound in RTC seconds was refused from 2**31 - 1 on (2068-01-19) ("is not
    # YYYY-MM-DDTHH:MM:SSZ (UTC) or RTC seconds"), the same instant as ISO text accepted
    r = Rig(peer=MiniBroker())
    b = UplinkBoard(r)
    up = Uplink(b, _Cat(), EventLog(b.clock), Outbox(Partition(NORFlash(8 * 4096), 0,
                                                               8 * 4096)),
                "SIM00001", ("broker", 1883), link=r.link)
    up.setup()
    from uplink import messages as msg

    up.profile = _YearProf(96)
    for a, z in ((2**31 - 1, 2**31 + 900), (3155760000 - 900, 3155760000 - 1)):
        p = _ranged(up, {"id": 1, "cmd": "profile", "from": a, "to": z})
        q = _ranged(up, {"id": 1, "cmd": "profile", "from": msg.iso(a), "to": msg.iso(z)})
        assert p == q and p[0]["ok"] and p[0]["rows"] == [], (a, p, q)
    a = up._answer(b'{"id":2,"cmd":"profile","from":3155760000,"to":3155760001}')
    assert a is not None and a["ok"] is False and a["error"].startswith("from: 3155760000")


class _RetainedCmd(MiniBroker):
    # a retained command on cmd, handed over right after the SUBACK (as mosquitto does:
    # the SUBACK first, then the retained messages); ``mute_status``: so many online
    # statuses not acknowledged (the link black-holed just then)
    mute_status = 0

    def _packet(self, t, body):
        if t >> 4 == 3 and body[2:2 + ((body[0] << 8) | body[1])].endswith(b"/status") \
                and self.mute_status:
            self.mute_status -= 1
            self.ack = False
            super()._packet(t, body)
            self.ack = True
            return
        super()._packet(t, body)
        if t >> 4 == 8:
            topic = b"meters/SIM00001/cmd"
            pay = b'{"id":5,"cmd":"registers"}'
            n = 2 + len(topic) + 2 + len(pay)
            self.reply(bytes((0x33, n, 0, len(topic))) + topic + b"\x00\x09" + pay)


def _answers(broker, i):
    return [k for k, p in enumerate(broker.payloads) if b'"ok"' in p and
            json.loads(p).get("id") == i]


def test_a_command_retained_for_the_subscription_is_answered_once_after_online():
    # SUBSCRIBE first, then the online status (a head-end sends commands once it sees
    # online): a retained command comes right after the SUBACK, while the online status
    # waits for its PUBACK (umqtt.simple hands a PUBLISH to the callback inside that wait).
    # It is answered once, after "online"; with the online status not acknowledged (the
    # session ends there) the next session answers the copy it is handed again, once
    r, broker, up, ob, _log = _rig(_RetainedCmd())
    _run(r, up, lambda: up.session and _answers(broker, 5), 600000)
    for _ in range(50):
        up.step()
        r.advance(10)
    got = _answers(broker, 5)
    online = broker.payloads.index(b'{"state":"online"}')
    assert len(got) == 1 and online < got[0], (got, online, broker.payloads)
    assert broker.topics[online] == b"meters/SIM00001/status" and up.sessions == 1
    # the next session's online status is not acknowledged: it ends holding the command
    # it was handed; the one after is handed it again
    broker.mute_status = 1
    r.model.network_down("deact")
    _run(r, up, lambda: not up.session, 600000)
    r.model.network_up()
    n0 = len(broker.payloads)
    _run(r, up, lambda: up.sessions == 3 and up._phase == 2, 1200000)
    _run(r, up, lambda: not up._cmds, 60000)
    for _ in range(50):
        up.step()
        r.advance(10)
    late = [k for k in _answers(broker, 5) if k >= n0]
    assert len(late) == 1, (late, up.stats(), broker.payloads[n0:])
    assert up.errors >= 2, up.stats()


class _Stop(Exception):
    pass


def _run_task(up, sleep_ms):
    # Uplink.run with asyncio.sleep_ms replaced by ``sleep_ms`` (the test's: it advances the
    # rig's clock, and raises _Stop to end the run)
    import asyncio

    real = asyncio.sleep_ms

    async def main():
        asyncio.sleep_ms = sleep_ms
        try:
            await up.run()
        except _Stop:
            pass
        finally:
            asyncio.sleep_ms = real

    asyncio.run(main())


def test_the_task_waits_for_the_blink_edges_not_20_ms_while_nothing_is_due():
    # Uplink.run ran a round every 20 ms of real time while the broker was out of reach
    # (a backoff of up to 15 min, for days): 50 rounds a second of nothing. Now a round
    # waits for the manager's next deadline or the status LEDs' next blink edge (500 ms),
    # and 20 ms only while a command is in flight (its answer is due); the session still
    # comes up once the broker takes it, and every message goes. (Counted as the rounds go,
    # not listed: 32 KiB flash image and 192 KiB heap on the emulated cores.)
    import asyncio

    from modem.manager import BLINK_MS

    r, broker, up, ob, log = _rig()
    br = r.peer = _Refusing()
    ob.put(KIND_READING, '{"n":1}')
    n = {"all": 0, "busy": 0, "idle": 0, "edge": 0}
    bad = []  # (t, ms, busy) of a wait too long for its state
    real = asyncio.sleep_ms
    end = [600000]

    async def sleep_ms(ms):
        m = up.manager
        busy = m is not None and m.eng.busy
        n["all"] += 1
        if busy:
            n["busy"] += 1
            if ms > 20:
                bad.append((r.clock.t, ms, busy))
        elif not up.session and ms > 0:
            n["idle"] += 1
            if (r.clock.t + ms) % BLINK_MS == 0:
                n["edge"] += 1
            if ms > BLINK_MS:
                bad.append((r.clock.t, ms, busy))
        r.clock.advance(ms)
        if r.clock.t >= end[0] or n["all"] > 200000:
            raise _Stop
        await real(0)

    _run_task(up, sleep_ms)
    assert 3 <= len(r.connects) <= 10, (len(r.connects), up.stats())  # refused, retried
    assert not bad, bad[:5]
    assert n["busy"] > 0 and n["idle"] > 100, n
    # at a blink edge, unless the manager's deadline came sooner
    assert n["edge"] >= n["idle"] * 9 // 10, n
    # 10 minutes of backoff: ~2 rounds a second, not 50 (30 000 rounds)
    assert n["all"] < 600 * 3 + n["busy"], n
    br.connack = br.suback = 0  # the broker's configuration fixed
    end[0] = r.clock.t + 1200000

    async def until_sent():
        asyncio.sleep_ms = sleep_ms
        try:
            t = asyncio.create_task(up.run())
            while not (up.session and ob.pending() == 0):
                await real(0)
            t.cancel()
        finally:
            asyncio.sleep_ms = real

    asyncio.run(until_sent())
    assert _seqs(br) == [1], _seqs(br)


def test_the_task_comes_back_at_once_for_bytes_left_in_the_uart():
    # A round reads at most Link.max_read (512 B) of what the modem UART holds. Rounds
    # 500 ms apart while nothing was due left the rest there for half a second a round:
    # 1 KiB a second drained, while the modem may send 11.5 KiB a second (115 200 Bd) and
    # the boards' receive buffer holds 1 KiB: lines lost. Bytes still in the UART (or a
    # short write still pending) after a round are due: the next round comes in 20 ms.
    import asyncio

    r, broker, up, ob, log = _rig()
    r.peer = _Refusing()
    seen = {"fed": False, "rounds": 0}
    bad = []  # (t, ms, bytes left) of a wait too long

    real = asyncio.sleep_ms

    async def sleep_ms(ms):
        m = up.manager
        idle = m is not None and not m.eng.busy and not up.session
        if not seen["fed"] and idle and m.state_name == "READY" and up._retry_at is not None:
            seen["fed"] = True  # a burst of 2 KiB of blank lines, nothing due otherwise
            r.model._ready.extend(b"\r\n" * 1024)
        elif seen["fed"]:
            left = len(r.model._ready)
            if left and ms > 20:
                bad.append((r.clock.t, ms, left))
            seen["rounds"] += 1
        r.clock.advance(ms)
        if seen["rounds"] > 8 or r.clock.t > 600000:
            raise _Stop
        await real(0)

    _run_task(up, sleep_ms)
    assert seen["fed"], up.stats()
    assert not bad, bad
    assert len(r.model._ready) == 0, len(r.model._ready)


class _ShortUart:
    """A UART that holds ``rx`` to read and takes at most ``room`` bytes a write."""

    def __init__(self, rx, room):
        self.rx = bytearray(rx)
        self.room = room
        self.out = bytearray()

    def any(self):
        return len(self.rx)

    def read(self, n):
        d = bytes(self.rx[:n])
        self.rx = self.rx[n:]
        return d

    def write(self, b):
        k = len(b) if len(b) < self.room else self.room
        self.out.extend(b[:k])
        return k


def test_the_links_backlog_says_bytes_were_left_either_way():
    # Link.backlog (what Uplink.run comes back for in period_ms): more than max_read in
    # the UART after a round, or the rest of a short write; False once both are gone
    from modem.at import Command
    from modem.link import Link
    from modemkit import Rig

    r = Rig()  # (the manager off: nothing of its own to send)
    u = _ShortUart(b"\r\n" * 300, 1000)  # 600 B: 512 read a round
    k = Link(u, None, r.m, ticks_ms=r.clock)
    k.service()
    assert k.backlog and len(u.rx) == 88, (k.backlog, len(u.rx))
    k.service()
    assert not k.backlog and not u.rx, (k.backlog, len(u.rx))
    u.room = 2  # a short write: the rest waits in _pend
    assert r.m.eng.submit(Command(b"AT+CSQ"), r.clock.t)
    k.service()
    assert k.backlog and bytes(u.out) == b"AT", (k.backlog, bytes(u.out))
    u.room = 100
    k.service()
    assert not k.backlog and bytes(u.out) == b"AT+CSQ\r", (k.backlog, bytes(u.out))
