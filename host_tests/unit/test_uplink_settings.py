# The uplink's broker and APN as meter settings (issue 11): validated (errors name the
# field), in the OBIS catalogue (C.93.1 broker, C.93.2 APN), written with W1 in programming
# mode and logged PARAM_CHANGED; the modem manager takes a new APN into AT+CSTT without a
# power cycle, and the uplink applies a change at its next session (a clean reconnect).
import json

from modemkit import MiniBroker, Rig, add_frozen_lib

add_frozen_lib()

import events  # noqa: E402
from meter import defaults  # noqa: E402
from meter.settings import Settings  # noqa: E402
from meter.uplinkcfg import broker_of  # noqa: E402
from modem import manager as M  # noqa: E402

_NOR = ("the virtual board's 1 MiB NOR-flash image (a flash chip on a device) has no room "
        "outside the heap: the core has 128 KiB of SRAM in all")
_NOR32 = ("a 32 KiB NOR-flash image (a test fixture) has no room outside the heap: the core "
          "has 128 KiB of SRAM in all")
EMU_HOST_ONLY = {"test_w1_in_programming_mode_sets_both_and_logs_the_change":
                 ("flashmem", 1024 * 1024, _NOR),
                 "test_uplink_reconnects_cleanly_to_a_new_broker_and_apn":
                 ("flashmem", 32 * 1024, _NOR32),
                 "test_a_new_apn_keeps_the_boards_broker_override":
                 ("flashmem", 32 * 1024, _NOR32),
                 "test_a_change_waits_for_the_answer_of_the_command_that_made_it":
                 ("flashmem", 32 * 1024, _NOR32),
                 "test_a_broker_that_opens_no_session_is_undone_after_the_trial":
                 ("flashmem", 32 * 1024, _NOR32),
                 "test_an_outbox_formatted_or_bit_flipped_never_hands_a_seq_out_twice":
                 ("flashmem", 56 * 1024, "a 16, an 8 and a 32 KiB NOR-flash image (test "
                  "fixtures) have no room outside the heap: the core has 128 KiB of SRAM "
                  "in all"),
                 "test_a_power_cut_in_the_seq_floors_write_leaves_the_configuration_trusted":
                 ("flashmem", 56 * 1024, "a 56 KiB NOR-flash image (a test fixture) has no "
                  "room outside the heap: the core has 128 KiB of SRAM in all"),
                 "test_a_floor_crossed_during_the_power_fail_warning_is_not_used_again":
                 ("flashmem", 56 * 1024, "a 16, an 8 and a 32 KiB NOR-flash image (test "
                  "fixtures) have no room outside the heap: the core has 128 KiB of SRAM "
                  "in all"),
                 "test_the_older_floor_copy_covers_every_seq_when_the_newer_is_damaged":
                 ("flashmem", 56 * 1024, "a 16, an 8 and a 32 KiB NOR-flash image (test "
                  "fixtures) have no room outside the heap: the core has 128 KiB of SRAM "
                  "in all"),
                 "test_the_config_command_sets_them_through_the_catalogue":
                 "needs sockets (the uplink's SIM800 model bridges to real TCP: the virtual "
                 "board builds no modem and no uplink without them); the QEMU port has no "
                 "network stack"}


class _Clock:
    def time(self):
        return 504921600

    def ticks_ms(self):
        return 0


def _refused(st, key, value):
    try:
        st.set(key, value)
    except ValueError as e:
        return str(e)
    raise AssertionError("%s %r accepted" % (key, value))


def test_settings_validate_broker_and_apn_and_name_the_field():
    st = Settings(events.EventLog(_Clock()))
    assert st["uplink_broker"] == "127.0.0.1:1883" and st["uplink_apn"] == "internet"
    st.set("uplink_broker", "mqtt.example-utility.net:8883")
    st.set("uplink_broker", "10.1.2.3:1")
    st.set("uplink_apn", "m2m.Example-1.com")
    assert broker_of(st["uplink_broker"]) == ("10.1.2.3", 1)
    bad = (("uplink_broker", "", "uplink_broker: empty"),
           ("uplink_broker", None, "uplink_broker: empty"),
           ("uplink_broker", "a" * 96 + ":1883", "uplink_broker: longer than 100"),
           ("uplink_broker", "host", "uplink_broker: not HOST:PORT"),
           ("uplink_broker", ":1883", "uplink_broker: not HOST:PORT"),
           ("uplink_broker", "host:0", "uplink_broker: port '0' not in 1..65535"),
           ("uplink_broker", "host:65536", "uplink_broker: port '65536'"),
           ("uplink_broker", "host:-1", "uplink_broker: port '-1'"),
           ("uplink_broker", "host:", "uplink_broker: port ''"),
           ("uplink_broker", "mqtt://host:1883", "uplink_broker: ':'"),
           ("uplink_broker", 'ho"st:1883', "uplink_broker: '\"'"),
           ("uplink_broker", "h\u00f6st:1883", "uplink_broker: non-ASCII"),
           ("uplink_apn", "", "uplink_apn: empty"),
           ("uplink_apn", 5, "uplink_apn: empty"),
           ("uplink_apn", "a" * 51, "uplink_apn: longer than 50"),
           ("uplink_apn", "internet\u00e9", "uplink_apn: non-ASCII"),
           ("uplink_apn", 'in"ternet', "uplink_apn: '\"'"),
           ("uplink_apn", "inter net", "uplink_apn: ' '"))
    for key, v, want in bad:
        got = _refused(st, key, v)
        assert got.startswith(want), (key, v, got)
    # nothing changed by a refusal
    assert st["uplink_broker"] == "10.1.2.3:1" and st["uplink_apn"] == "m2m.Example-1.com"
    st.set("uplink_apn", "a" * 50)  # the SIM800's AT+CSTT limit itself is fine
    st.set("uplink_broker", "b" * 94 + ":65535")  # 100 characters


def test_a_stored_bad_value_falls_back_to_the_default_logged():
    log = events.EventLog(_Clock())
    cfg = defaults.config()
    cfg["uplink_apn"] = "bad apn"
    st = Settings(log, cfg=cfg)
    st.check(("uplink_broker", "uplink_apn"))
    assert st["uplink_apn"] == "internet" and st["uplink_broker"] == "127.0.0.1:1883"
    assert [e[1] for e in log.since(0)] == [events.CONFIG_DEFAULTS]


def test_w1_in_programming_mode_sets_both_and_logs_the_change():
    from iec62056 import codec as iec
    from iec62056.session import ER_BAD_VALUE
    from test_protocols import Port, _cmd, _err, _meter, _persisted

    board, m, md = _meter()
    opt = Port(md, events.SRC_OPTICAL)
    assert opt.prog() == iec.ACK_MSG
    assert opt.x(_cmd("R", 1, "C.93.1()")) == bytes(iec.build_data("C.93.1", "127.0.0.1:1883"))
    assert opt.x(_cmd("W", 1, "C.93.1(head-end.example.net:8883)")) == iec.ACK_MSG
    assert opt.x(_cmd("W", 1, "C.93.2(m2m.example)")) == iec.ACK_MSG
    assert m.settings["uplink_broker"] == "head-end.example.net:8883"
    assert m.settings["uplink_apn"] == "m2m.example"
    assert opt.x(_cmd("R", 1, "C.93.2()")) == bytes(iec.build_data("C.93.2", "m2m.example"))
    ch = _persisted(m, events.PARAM_CHANGED)
    assert [(e[3], e[4]) for e in ch[-2:]] == [(events.SRC_OPTICAL, "C.93.1"),
                                               (events.SRC_OPTICAL, "C.93.2")], ch
    for bad in ("C.93.1(host:99999)", "C.93.1()", "C.93.2(a b)", "C.93.2(%s)" % ("x" * 51)):
        assert opt.x(_cmd("W", 1, bad)) == _err(ER_BAD_VALUE), bad
    assert m.settings["uplink_broker"] == "head-end.example.net:8883"
    assert m.settings["uplink_apn"] == "m2m.example"


def _cstt(rig):
    # every AT+CSTT the model received (its own log keeps only the last 64 lines)
    seen = []
    cmd = rig.model._command

    def spy(line):
        if line.startswith(b"AT+CSTT"):
            seen.append(line)
        cmd(line)

    rig.model._command = spy
    return seen


def test_manager_brings_the_pdp_context_up_again_with_a_new_apn():
    r = Rig()
    seen = _cstt(r)
    r.up()
    assert seen == [b'AT+CSTT="internet","",""'], seen
    gen = r.m.gen
    cycles = r.m.power_cycles
    assert r.m.set_apn("m2m.example", r.clock.t)
    assert not r.m.set_apn("m2m.example", r.clock.t)  # (unchanged: nothing to do)
    r.run_until(lambda: r.m.connected and r.m.gen != gen, 30000)
    assert seen[-1] == b'AT+CSTT="m2m.example","",""', seen
    assert r.m.power_cycles == cycles and r.m.failures == 0, r.m.history
    assert r.m.target == ("broker", 1883) and r.connects[-1] == ("broker", 1883)
    names = [s for _t, s in r.states]
    assert "BACKOFF" not in names and "POWER_DOWN" not in names, names
    # a new APN while the context is still coming up: the bring-up starts over with it
    r2 = Rig()
    seen2 = _cstt(r2)
    r2.m.open("broker", 1883, 0)
    r2.run_until(lambda: r2.m.state == M.PDP, 30000)
    r2.m.set_apn("apn2", r2.clock.t)
    r2.run_until(lambda: r2.m.connected, 30000)
    assert seen2[-1] == b'AT+CSTT="apn2","",""' and r2.m.failures == 0, seen2


def _on(broker, topic):
    # the payloads the broker received on ``topic``
    return [broker.payloads[i] for i in range(len(broker.topics)) if broker.topics[i] == topic]


def _uplink(settings):
    from boards.sim.norflash import NORFlash
    from flashstore.flash import Partition
    from modemkit import UplinkBoard as _Board
    from modemkit import UplinkCatalogue as _Cat
    from uplink.outbox import Outbox
    from uplink.task import Uplink

    broker = MiniBroker()
    r = Rig(peer=broker)
    b = _Board(r)
    ob = Outbox(Partition(NORFlash(8 * 4096), 0, 8 * 4096))
    ob.mount()
    up = Uplink(b, _Cat(), events.EventLog(b.clock), ob, "SIM00001", ("broker", 1883),
                link=r.link, idle=lambda: r.clock.advance(2), settings=settings)
    r.m.open("broker", 1883, 0)
    return r, broker, up, ob


def test_uplink_reconnects_cleanly_to_a_new_broker_and_apn():
    from modemkit import run_uplink as _run

    st = Settings(events.EventLog(_Clock()))
    r, broker, up, ob = _uplink(st)
    seen = _cstt(r)
    _run(r, up, lambda: up.session and up.sessions == 1 and up._phase == 2)
    cycles = r.m.power_cycles
    st.set("uplink_broker", "10.0.0.7:8883")
    st.set("uplink_apn", "m2m.example")
    _run(r, up, lambda: up.session and up.sessions == 2 and up._phase == 2)
    assert up.reconfigs == 1 and up.errors == 0, up.stats()  # a clean end, no error
    assert r.connects[-1] == ("10.0.0.7", 8883), r.connects
    assert up.broker == ("10.0.0.7", 8883)
    assert seen[-1] == b'AT+CSTT="m2m.example","",""', seen
    assert r.m.power_cycles == cycles, "no power cycle, no reboot"
    # the old session ended with a retained offline status, then the new one said online
    st_msgs = _on(broker, b"meters/SIM00001/status")
    assert st_msgs[-3:] == [b'{"state":"online"}', b'{"state":"offline"}',
                            b'{"state":"online"}'], st_msgs
    # the same values again: nothing to do
    st.set("uplink_apn", "m2m.example")
    n = up.sessions
    for _ in range(50):
        up.step()
        r.advance(10)
    assert up.sessions == n and up.reconfigs == 1


def test_a_new_apn_keeps_the_boards_broker_override():
    # the board's broker (--broker) overrides the setting at start-up: a change of the APN
    # alone reconnects to the same broker; a change of the broker setting then replaces it
    from modemkit import run_uplink as _run

    st = Settings(events.EventLog(_Clock()))  # uplink_broker: the default 127.0.0.1:1883
    r, broker, up, ob = _uplink(st)  # (the board's broker: ("broker", 1883))
    seen = _cstt(r)
    _run(r, up, lambda: up.session and up._phase == 2)
    st.set("uplink_apn", "m2m.example")
    _run(r, up, lambda: up.session and up.sessions == 2 and up._phase == 2)
    assert r.connects[-1] == ("broker", 1883) and up.broker == ("broker", 1883), r.connects
    assert seen[-1] == b'AT+CSTT="m2m.example","",""', seen
    st.set("uplink_broker", "127.0.0.1:1883")  # (set: now the setting's)
    _run(r, up, lambda: up.session and up.sessions == 3 and up._phase == 2)
    assert r.connects[-1] == ("127.0.0.1", 1883) and up.reconfigs == 2, r.connects


def test_a_change_waits_for_the_answer_of_the_command_that_made_it():
    from modemkit import run_uplink as _run

    st = Settings(events.EventLog(_Clock()))
    r, broker, up, ob = _uplink(st)
    _run(r, up, lambda: up.session and up._phase == 2)

    def answer(raw):  # a command whose handling changes the broker (as ``config`` does)
        st.set("uplink_broker", "10.0.0.8:1883")
        return {"id": json.loads(raw)["id"], "cmd": "config", "ok": True}

    up._answer = answer
    up._on_msg(b"meters/SIM00001/cmd", b'{"id":3,"cmd":"config"}')
    _run(r, up, lambda: up.session and up.sessions == 2 and up._phase == 2)
    acks = _on(broker, b"meters/SIM00001/cmd/ack")
    assert [json.loads(a) for a in acks] == [{"id": 3, "cmd": "config", "ok": True}], acks
    assert r.connects[-1] == ("10.0.0.8", 1883) and up.errors == 0, up.stats()


def test_the_config_command_sets_them_through_the_catalogue():
    # the uplink's authorised ``config`` (its authentication: test_uplink_config._cfg) sets
    # both through the catalogue; a bad value is refused naming the field, nothing changed
    from test_uplink_config import _cfg, _meter, _persisted

    board, m, d = _meter()
    up = m.uplink
    a = _cfg(up, "C.93.2", "m2m.example")
    assert a == {"id": 1, "cmd": "config", "obis": "C.93.2", "ok": True}, a
    assert _cfg(up, "C.93.1", "mqtt.example.net:8883")["ok"] is True
    assert m.settings["uplink_apn"] == "m2m.example"
    assert m.settings["uplink_broker"] == "mqtt.example.net:8883"
    assert up._reconf, "applied at the uplink's next round"
    ch = _persisted(m, events.PARAM_CHANGED)
    assert [(e[3], e[4]) for e in ch[-2:]] == [(events.SRC_UPLINK, "C.93.2"),
                                               (events.SRC_UPLINK, "C.93.1")], ch
    for obis, v, err in (("C.93.1", "mqtt.example.net:70000",
                          "bad value: uplink_broker: port '70000' not in 1..65535"),
                         ("C.93.1", "", "bad value: uplink_broker: empty"),
                         ("C.93.2", "\u00e9t\u00e9", "bad value: uplink_apn: non-ASCII character"),
                         ("C.93.2", "x" * 51,
                          "bad value: uplink_apn: longer than 50 characters")):
        a = _cfg(up, obis, v)
        assert a["ok"] is False and a["error"] == err, (obis, v, a)
    assert m.settings["uplink_broker"] == "mqtt.example.net:8883"
    assert m.settings["uplink_apn"] == "m2m.example"


def test_a_broker_that_opens_no_session_is_undone_after_the_trial():
    # a config of C.93.1 with a mistyped host (or the meter's own address) was applied for
    # good: the meter never reached a broker again and the head-end could not set it back
    # (a site visit per meter); now the change is on trial until a session opens with it
    from modemkit import run_uplink as _run

    st = Settings(events.EventLog(_Clock()))
    r, broker, up, ob = _uplink(st)
    _run(r, up, lambda: up.session and up._phase == 2)
    st.set("uplink_broker", "127.0.0.1:1883")  # nothing listens there (the meter itself)
    r.refuse = True
    t0 = r.clock.t
    _run(r, up, lambda: up.broker == ("127.0.0.1", 1883) and not up.session)
    _run(r, up, lambda: st["uplink_broker"] != "127.0.0.1:1883", max_ms=4 * 3600 * 1000)
    assert r.clock.t - t0 >= up.broker_trial_s * 1000, "not before the trial ends"
    assert st["uplink_broker"] == "broker:1883" and st["uplink_apn"] == "internet"
    ev = [e for e in up.log.since(0) if e[1] == events.UPLINK_REVERTED]
    assert len(ev) == 1 and ev[0][2] == up.broker_trial_s, ev
    r.refuse = False
    n = up.sessions
    _run(r, up, lambda: up.session and up.sessions == n + 1, max_ms=3600 * 1000)
    assert r.connects[-1] == ("broker", 1883), r.connects[-3:]
    # a change that opens a session stays
    st.set("uplink_apn", "m2m.example")
    _run(r, up, lambda: up.session and up.sessions == n + 2)
    for _ in range(100):
        up.step()
        r.advance(120000)
    assert st["uplink_apn"] == "m2m.example" and up._trial is None
    assert len([e for e in up.log.since(0) if e[1] == events.UPLINK_REVERTED]) == 1


def test_an_outbox_formatted_or_bit_flipped_never_hands_a_seq_out_twice():
    # seq came from the outbox alone: formatted (a foreign or unreadable partition) it began
    # again at 1, and a bit flip in its newest record (sent, not marked) gave that number to
    # the next message: the head-end discarded them as duplicates. The floor is a record of
    # its own (uplink/seqfloor.py), not a setting.
    from boards.sim.norflash import NORFlash
    from flashstore.flash import Partition
    from modemkit import UplinkBoard as _Board
    from modemkit import UplinkCatalogue as _Cat
    from uplink.outbox import KIND_READING, SEQ_BLOCK, Outbox
    from uplink.seqfloor import SeqFloor
    from uplink.task import Uplink

    cdev = NORFlash(4 * 4096)  # the configuration partition
    fdev = NORFlash(2 * 4096)  # the floor's partition (uplink_seq)
    odev = NORFlash(8 * 4096)  # the outbox partition

    def boot():
        st = Settings(events.EventLog(_Clock()), Partition(cdev, 0, cdev.size))
        r = Rig(peer=MiniBroker())
        b = _Board(r)
        log = events.EventLog(b.clock)
        fl = SeqFloor(Partition(fdev, 0, fdev.size), log)
        up = Uplink(b, _Cat(), log, Outbox(Partition(odev, 0, odev.size)), "SIM00001",
                    ("broker", 1883), link=r.link, settings=st, floor=fl)
        up.setup()
        return up, log, st

    up, log, st = boot()
    ob = up.outbox
    for _ in range(4):  # the installer's writes at commissioning spent the write budget
        st.save_now()
    assert not st.save_allowed()
    assert [ob.put(KIND_READING, '{"n":%d}' % i) for i in range(5)] == [1, 2, 3, 4, 5]
    fl2 = SeqFloor(Partition(fdev, 0, fdev.size), events.EventLog(_Clock()))
    # in flash before seq 1 went out, in both copies (the first message writes both)
    assert fl2.value == 1 + 2 * SEQ_BLOCK and fl2.safe == 1 + SEQ_BLOCK, (fl2.value, fl2.safe)
    ids = set(range(1, 6))
    # the outbox partition unreadable (another firmware's data): formatted at the start
    for i in range(odev.size):
        odev.image[i] = (i * 131 + 7) & 0xFF
    up, log, st = boot()
    assert log.count(events.UPLINK_SEQ_SKIPPED) == 1, log.entries()
    seq = up.outbox.put(KIND_READING, '{"n":6}')
    assert seq not in ids and seq > 5, seq
    ids.add(seq)
    # the newest record, sent but not marked, bit-flipped: its number is not used again
    ob = up.outbox
    while ob.peek() is not None:  # (the skip event and the reading: sent and acknowledged)
        ob.ack(ob.peek()[0])
    last = ob.put(KIND_READING, '{"n":7}')
    ids.add(last)
    r = ob.ring
    odev.image[r._head * r.sector_size + (r._slot - 1) * r.slot_size + 20] ^= 0x10
    up, log, st = boot()
    assert log.count(events.UPLINK_SEQ_SKIPPED) == 1, log.entries()
    seq = up.outbox.put(KIND_READING, '{"n":8}')
    assert seq not in ids and seq > last, (seq, sorted(ids))
    # a clean restart goes on contiguously
    up, log, st = boot()
    assert log.count(events.UPLINK_SEQ_SKIPPED) == 0
    assert up.outbox.put(KIND_READING, '{"n":9}') == seq + 1


def test_a_power_cut_in_the_seq_floors_write_leaves_the_configuration_trusted():
    # The floor's write is unattended and recurring (one per 1024 messages). Kept in the
    # configuration, a power cut during it made the next boot take the other copy and
    # distrust the password (ERR_SECURITY: the head-end's config and time refused until a
    # visit). Now: a cut at each of its flash operations leaves the configuration untouched,
    # and the floor read at the next boot is above every number used.
    from boards.sim.norflash import NORFlash, PowerCut
    from flashstore.flash import Partition
    from modemkit import UplinkBoard as _Board
    from modemkit import UplinkCatalogue as _Cat
    from uplink.outbox import KIND_READING, SEQ_BLOCK, Outbox
    from uplink.seqfloor import SeqFloor
    from uplink.task import Uplink

    # one flash holds the three partitions, as on the virtual board (one cut stops them all)
    dev = NORFlash(14 * 4096)
    cpart = Partition(dev, 0, 4 * 4096)
    fpart = Partition(dev, 4 * 4096, 2 * 4096)
    opart = Partition(dev, 6 * 4096, 8 * 4096)

    def boot():
        st = Settings(events.EventLog(_Clock()), cpart)
        r = Rig(peer=MiniBroker())
        b = _Board(r)
        log = events.EventLog(b.clock)
        up = Uplink(b, _Cat(), log, Outbox(opart), "SIM00001", ("broker", 1883),
                    link=r.link, settings=st, floor=SeqFloor(fpart, log))
        up.setup()
        return up, log, st

    up, log, st = boot()
    assert st.store.status == "blank -> defaults"
    st.set("password", "12345678")
    assert st.save_now()
    used = [up.outbox.put(KIND_READING, '{"n":0}')]  # reserves 1 + SEQ_BLOCK, 1 + 2 blocks
    img = bytes(dev.image)
    cuts = 0
    for k in range(1, 40):
        dev.image[:] = img
        dev.power_on()
        up, log, st = boot()
        ob = up.outbox
        ob.next_seq = 1 + SEQ_BLOCK  # (as after 1024 messages) the next put reserves first
        ops = dev.ops
        dev.cut_at_op(k)
        try:
            seq = ob.put(KIND_READING, '{"n":1}')
        except PowerCut:
            seq = None
        if not dev.dead:  # the reservation and the append took fewer than k operations
            dev.cut_at_op(0)
            assert k > dev.ops - ops and seq == 1 + SEQ_BLOCK, (k, seq)
            break
        cuts += 1
        dev.power_on()
        up, log, st = boot()
        assert st.store.status == "ok", (k, st.store.status, st.store.detail)
        assert st["password"] == "12345678" and not st.config_error(), k
        assert up.outbox.floor in (1 + 2 * SEQ_BLOCK, 1 + 3 * SEQ_BLOCK), (k, up.outbox.floor)
        n = up.outbox.put(KIND_READING, '{"n":2}')
        assert n > max(used) and (seq is None or n != seq), (k, n, seq)
    assert cuts >= 3, cuts  # the floor's erase and programs, then the append


class _Supply:
    warning = False


def _floor_rig():
    # the configuration, the floor's partition and the outbox, as the meter wires them
    from boards.sim.norflash import NORFlash
    from flashstore.flash import Partition
    from modemkit import UplinkBoard as _Board
    from modemkit import UplinkCatalogue as _Cat
    from uplink.outbox import Outbox
    from uplink.seqfloor import SeqFloor
    from uplink.task import Uplink

    cdev, fdev, odev = NORFlash(4 * 4096), NORFlash(2 * 4096), NORFlash(8 * 4096)
    sup = _Supply()

    def boot():
        st = Settings(events.EventLog(_Clock()), Partition(cdev, 0, cdev.size))
        r = Rig(peer=MiniBroker())
        b = _Board(r)
        log = events.EventLog(b.clock)
        fl = SeqFloor(Partition(fdev, 0, fdev.size), log, sup)
        up = Uplink(b, _Cat(), log, Outbox(Partition(odev, 0, odev.size), supply=sup),
                    "SIM00001", ("broker", 1883), link=r.link, settings=st, floor=fl)
        up.setup()
        return up, log

    def garble():  # the outbox partition unreadable at the next start (foreign data)
        for i in range(odev.size):
            odev.image[i] = (i * 131 + 7) & 0xFF

    return boot, garble, fdev, sup


def test_a_floor_crossed_during_the_power_fail_warning_is_not_used_again():
    # The reservation is skipped during the power-fail warning (it erases a sector), but the
    # urgent messages were still numbered at and above the floor in flash: with the outbox
    # then lost, the next start went on at that floor and gave the same numbers to new
    # messages (the head-end discarded them as duplicates). Now a put reserves SEQ_MARGIN
    # ahead, so the warning's messages use numbers the floor already covers.
    from uplink.outbox import KIND_EVENT, KIND_READING

    boot, garble, fdev, sup = _floor_rig()
    up, log = boot()
    ob = up.outbox
    used = [ob.put(KIND_READING, '{"n":0}')]
    ob.next_seq = ob.floor - 1  # (as after the messages up to just below the floor)
    used.append(ob.put(KIND_READING, '{"n":1}'))
    sup.warning = True  # the supply collapsing: the last messages are urgent
    for i in range(3):
        used.append(ob.put(KIND_EVENT, '{"n":%d}' % (2 + i)))
    assert None not in used and len(set(used)) == 5, used
    sup.warning = False  # power lost; the outbox found unreadable at the next start
    garble()
    up, log = boot()
    assert log.count(events.UPLINK_SEQ_SKIPPED) == 1, log.entries()
    seq = up.outbox.put(KIND_READING, '{"n":9}')
    assert seq > max(used), (seq, used)


def test_the_older_floor_copy_covers_every_seq_when_the_newer_is_damaged():
    # The double fault: the outbox lost and the newer copy of the floor damaged (a bit
    # flip). The older copy's floor was the previous reservation, below the numbers used
    # since: they were handed out again. Now every number used is below both copies.
    import struct

    from uplink.outbox import KIND_READING

    boot, garble, fdev, sup = _floor_rig()
    up, log = boot()
    ob = up.outbox
    used = [ob.put(KIND_READING, '{"n":0}')]
    for i in range(3):  # three blocks used up, each reservation at its time
        ob.next_seq = ob.floor
        used.append(ob.put(KIND_READING, '{"n":%d}' % (i + 1)))
    seqs = [struct.unpack_from("<I", fdev.image, a + 4)[0] for a in (0, 4096)]
    newer = 0 if seqs[0] > seqs[1] else 4096
    fdev.image[newer + 17] ^= 0x04  # a bit flip in the newer copy's JSON
    garble()
    up, log = boot()
    assert log.count(events.FLASH_CORRUPT) == 1, log.entries()  # (the floor's copy)
    seq = up.outbox.put(KIND_READING, '{"n":9}')
    assert seq > max(used), (seq, used)


def test_a_floor_program_that_did_not_take_never_costs_the_copy_left():
    # A worn or faulty NOR chip can leave a program undone without a word (no program-fail
    # status). The floor's save was taken as done: its read-back was never made, the copy
    # written was blank, and the next reservation overwrote the older copy, the only valid
    # one. With the outbox lost as well (a double fault) the next start went on at 1 and
    # handed every number out again. Now the save is read back: no reservation is taken
    # for one that did not take, and the copy left is never the one overwritten.
    from boards.sim.norflash import NORFlash
    from flashstore.flash import Partition
    from uplink.outbox import KIND_READING, Outbox
    from uplink.seqfloor import SeqFloor

    class Worn(Partition):  # programs that do not take, once ``dead`` (erases still do)
        dead = False

        def program(self, addr, data):
            if not self.dead:
                Partition.program(self, addr, data)

    fdev, odev = NORFlash(2 * 4096), NORFlash(8 * 4096)
    fpart = Worn(fdev, 0, fdev.size)

    def boot():
        log = events.EventLog(_Clock())
        fl = SeqFloor(fpart, log)
        ob = Outbox(Partition(odev, 0, odev.size))
        ob.floor, ob.limit, ob.reserve = fl.value, fl.safe, fl.reserve
        ob.mount()
        return ob

    ob = boot()
    used = [ob.put(KIND_READING, '{"n":0}')]
    fpart.dead = True  # the floor's cells worn out
    assert ob.floor == 2049 and ob.limit == 1025, (ob.floor, ob.limit)
    for i, n in enumerate((1024, 1800)):  # (as after that many messages) each reserves
        ob.next_seq = n
        used.append(ob.put(KIND_READING, '{"n":%d}' % (i + 1)))
    for i in range(odev.size):  # the outbox lost too (foreign data at the next start)
        odev.image[i] = (i * 131 + 7) & 0xFF
    seq = boot().put(KIND_READING, '{"n":9}')
    assert seq not in used, (seq, used)
