# The uplink's ``config`` command (firmware/uplink/task.py) on the whole meter of the virtual
# board: W1 / E2 through the one OBIS catalogue, authenticated by an HMAC-SHA256 keyed with
# the programming password over the serial, a fresh sequence number n and the request text
# (firmware/uplink/auth.py; CPython's stdlib hmac is the reference here), under the uplink's
# own lockout (the local ports have theirs), every refusal named and logged, the password
# never on the wire, in any answer, log text or event; replays refused, also after a power
# cut; one round trip through the in-memory MQTT broker (modemkit).
import json

import events
from test_protocols import ER_LOCKED, Port, _err, _meter, _persisted

PW = "00000000"  # the factory password of a new meter (trusted)
_N = [0]  # the head-end's sequence number (rising over every meter of the module)


def _mac(pw, serial, n, text):
    # the head-end's MAC: CPython's hmac (MicroPython has none: the firmware's, which
    # test_uplink_auth checks against RFC 4231 and CPython)
    m = ("%s\n%d\n%s" % (serial, n, text)).encode()
    try:
        import hashlib
        import hmac

        return hmac.new(pw.encode(), m, hashlib.sha256).hexdigest()
    except ImportError:
        from binascii import hexlify

        from uplink.auth import hmac_sha256

        return hexlify(hmac_sha256(pw.encode(), m)).decode()


def _signed(serial, req, pw=PW, n=None, id_=1):
    # a config message as the head-end sends it: {"id","cmd","n","set","mac"}
    if n is None:
        _N[0] += 1
        n = _N[0]
    text = json.dumps(req)
    return {"id": id_, "cmd": "config", "n": n, "set": text, "mac": _mac(pw, serial, n, text)}


def _ask(up, **req):
    return up._answer(json.dumps(dict(req, cmd="config")).encode())


def _cfg(up, obis, value, pw=PW, n=None, **kw):
    req = {"obis": obis, "value": value}
    req.update(kw)
    msg = _signed(up.serial, req, pw, n)
    a = up._answer(json.dumps(msg).encode())
    if a.get("n") == msg["n"]:
        del a["n"]  # (the answer names the request's n)
    return a


def _listen(m):
    # every event's console line as the log hands it on (text included); then _texts
    said = []
    sink = m.log.sink

    def cap(*a):
        said.append(repr(a))
        if sink is not None:
            sink(*a)

    m.log.sink = cap
    return said


def _texts(m, said):
    # everything the meter said: console lines, the RAM log, the persisted records
    out = list(said)
    for e in m.log.since(0):
        out.append(repr(e))
    for e in m.events.persisted(None):
        out.append(repr(e))
    return "\n".join(out)


def test_a_parameter_is_written_and_the_answer_names_it():
    board, m, d = _meter()
    up = m.uplink
    assert up is not None and up.iec_map is not None, "app.py hands the IEC map over"
    a = _cfg(up, "C.90.1", "10")
    assert a == {"id": 1, "cmd": "config", "obis": "C.90.1", "ok": True}, a
    assert m.settings["scroll_ms"] == 10000
    ch = _persisted(m, events.PARAM_CHANGED)
    assert ch and ch[-1][3] == events.SRC_UPLINK, ch
    assert _persisted(m, events.PROG_ENTER)[-1][3] == events.SRC_UPLINK
    a = _cfg(up, "C.90.1", "999")
    assert a["ok"] is False and a["error"].startswith("bad value: "), a
    assert m.settings["scroll_ms"] == 10000
    # a new password over the uplink: the old one is wrong after it, and it is never shown
    said = _listen(m)
    assert _cfg(up, "C.90.2", "48151623") == {"id": 1, "cmd": "config", "obis": "C.90.2",
                                              "ok": True}
    assert _cfg(up, "C.90.1", "20")["error"] == "wrong mac"
    assert _cfg(up, "C.90.1", "20", "48151623")["ok"] is True
    assert "48151623" not in _texts(m, said)


def test_wrong_macs_lock_the_uplink_only_and_an_optical_lockout_not_the_uplink():
    # one lockout per meter: a head-end (or anyone publishing on cmd) with wrong passwords
    # held the optical port's programming shut for the technician, and the other way round
    board, m, d = _meter()
    up = m.uplink
    said = _listen(m)
    secrets = ("11111111", "22222222", "33333333")
    a = _cfg(up, "C.90.1", "17", secrets[0])
    assert a == {"id": 1, "cmd": "config", "obis": None, "ok": False,
                 "error": "wrong mac"}, a
    assert _cfg(up, "C.90.1", "17", secrets[1])["error"] == "wrong mac"
    a = _cfg(up, "C.90.1", "17", secrets[2])
    assert a["error"] == "wrong mac; locked (600 s)", a
    # locked: refused without a look at the MAC, also a right one
    a = _cfg(up, "C.90.1", "17", PW)
    assert a["ok"] is False and a["error"] == "locked (600 s)", a
    assert m.settings["scroll_ms"] != 17000
    opt = Port(d, events.SRC_OPTICAL)
    assert opt.prog() == b"\x06", "the uplink's lockout is its own: the optical port enters"
    opt.x(b"\x01B0\x03q")
    wrong = _persisted(m, events.WRONG_PASSWORD)
    assert [e[3] for e in wrong] == [events.SRC_UPLINK] * 3, wrong
    assert _persisted(m, events.PROG_LOCKED)[-1][3] == events.SRC_UPLINK
    assert _persisted(m, events.PW_WHILE_LOCKED)[0][3] == events.SRC_UPLINK
    said = _texts(m, said)
    for s in secrets + (PW,):
        assert s not in said, s
    # both kept apart over a restart (each rebuilt from its own records)
    from test_protocols import _reboot

    del up, opt
    board, m, d = _reboot(board, m)
    assert _cfg(m.uplink, "C.90.1", "10")["error"].startswith("locked (")
    assert Port(d, events.SRC_RS485).prog() == b"\x06", "the local ports stay open"
    # and the other way round: a lockout earned on the optical port leaves the uplink open
    del board, m, d  # (one meter at a time: a device-sized heap)
    board, m, d = _meter()
    opt = Port(d, events.SRC_OPTICAL)
    for pw in secrets:
        opt.prog(pw)
    assert Port(d, events.SRC_RS485).prog() == _err(ER_LOCKED), "the local ports share one"
    a = _cfg(m.uplink, "C.90.1", "10")
    assert a == {"id": 1, "cmd": "config", "obis": "C.90.1", "ok": True}, a
    board, m, d = _reboot(board, m)
    assert _cfg(m.uplink, "C.90.1", "11")["ok"] is True
    assert Port(d, events.SRC_OPTICAL).prog() == _err(ER_LOCKED)


def test_a_right_password_on_the_uplink_does_not_reset_an_optical_guesser():
    board, m, d = _meter()
    opt = Port(d, events.SRC_OPTICAL)
    assert opt.prog("11111111") == _err(2)
    assert opt.prog("22222222") == _err(2)
    assert _cfg(m.uplink, "C.90.1", "10")["ok"] is True
    assert opt.prog("33333333") == _err(ER_LOCKED), "the guesser's third wrong one locks"


def test_sealed_parameters_need_the_open_seal_and_land_in_the_audit_trail():
    board, m, d = _meter()
    up = m.uplink
    a = _cfg(up, "0.3.0", "2000")
    assert a["ok"] is False and a["error"] == "sealed", a
    assert m.settings["meter_constant"] == 1000
    assert _persisted(m, events.SEALED_REFUSED)[-1][3] == events.SRC_UPLINK
    n = len(list(m.audit.entries()))
    d.seal_open = lambda: True  # the seal switch open (tasks/tamper.py's level)
    a = _cfg(up, "0.3.0", "2000")
    assert a["ok"] is True, a
    assert m.settings["meter_constant"] == 2000
    au = list(m.audit.entries())
    assert len(au) == n + 1 and au[-1][2:] == ("0.3.0", 1000, 2000, events.SRC_UPLINK), au
    # E2 through the catalogue as well: a cold start is sealed, a seal-open action runs
    d.seal_open = lambda: False
    a = _cfg(up, "C.91.9", None, action="execute")
    assert a["error"] == "sealed", a
    assert _cfg(up, "C.91.5", None, action="execute")["error"] == "sealed", "demand reset"
    d.seal_open = lambda: True
    a = _cfg(up, "C.91.5", None, action="execute")
    assert a == {"id": 1, "cmd": "config", "obis": "C.91.5", "ok": True}, a
    assert m.log.count(events.DEMAND_RESET) == 1
    a = _cfg(up, "C.91.5", "", action="execute")  # the billing's lockout applies too
    assert a["ok"] is False and a["error"].startswith("demand reset lockout"), a
    assert _cfg(up, "C.90.1", "5", action="execute")["error"] == "not writable", "no E2"
    # the audit trail full: refused, named
    d.seal_open = lambda: True
    m.audit.capacity = m.audit.used
    a = _cfg(up, "0.3.0", "3000")
    assert a["ok"] is False and a["error"].startswith("audit trail full"), a
    assert m.settings["meter_constant"] == 2000


def test_hostile_requests_are_refused_by_name():
    board, m, d = _meter()
    up = m.uplink
    a = _ask(up, id=2, obis="C.90.1", value="10")
    assert a == {"id": 2, "cmd": "config", "obis": None, "ok": False,
                 "error": "set: missing (the request as JSON text, at most 600 characters)"}, a
    a = _ask(up, id=3, obis="C.90.1", value="10", password=PW)
    assert a["error"].startswith("password: not accepted in clear"), a
    ok = _signed(up.serial, {"obis": "C.90.1", "value": "10"})
    for k, v, err in (("n", 0, "n: missing"), ("n", True, "n: missing"),
                      ("n", 1 << 31, "n: missing"), ("n", "5", "n: missing"),
                      ("mac", None, "mac: missing"), ("mac", "ab" * 31, "mac: missing"),
                      ("set", "", "set: missing"), ("set", "x" * 601, "set: missing"),
                      ("set", {"obis": "C.90.1"}, "set: missing")):
        a = up._answer(json.dumps(dict(ok, **{k: v})).encode())
        assert a["ok"] is False and a["error"].startswith(err), (k, v, a)
    assert not _persisted(m, events.WRONG_PASSWORD), "malformed: not counted as guesses"
    text = "[1]"
    a = _ask(up, n=_N[0] + 1, set=text, mac=_mac(PW, up.serial, _N[0] + 1, text))
    assert a["error"] == "set: not a JSON object", a
    assert _cfg(up, "9.9.9", "1")["error"] == "unknown obis"
    a = _cfg(up, "C.90.1" * 60, "1")
    assert a["error"] == "unknown obis" and a["obis"] is None, "a long code is not echoed"
    assert _cfg(up, ["C.90.1"], "1") == {"id": 1, "cmd": "config", "obis": None, "ok": False,
                                         "error": "unknown obis"}
    assert _cfg(up, "1.8.0", "0")["error"] == "not writable", "registers are never written"
    assert _cfg(up, "C.90.1", 10)["error"].startswith("bad value"), "the W1 text only"
    assert _cfg(up, "C.90.1", None)["error"].startswith("bad value")
    assert _cfg(up, "C.90.1", "x" * 520)["error"].startswith("bad value")
    assert _cfg(up, "C.90.1", "1e3")["error"].startswith("bad value")
    assert _cfg(up, "C.90.1", "0")["error"] == "bad value: scroll time must be 1..255 s"
    assert _cfg(up, "\u2603", "1")["error"] == "unknown obis"
    assert _cfg(up, "1.8.0*zz", "1")["error"] in ("unknown obis", "not writable")
    assert _cfg(up, "0.9.1", "25xx00")["error"].startswith("bad value"), "hhmmss"
    assert _cfg(up, "C.90.1", "10", action="erase")["error"].startswith("action: ")
    assert up._answer(b'{"cmd":"config",') == {"ok": False, "error": "bad request"}
    assert not _persisted(m, events.WRONG_PASSWORD), "a right MAC every time"
    assert up._answer(b'\xff\xfe') == {"ok": False, "error": "bad request"}
    # a new password that the catalogue refuses is not echoed in the error
    a = _cfg(up, "C.90.2", "12ab5678")
    assert a["ok"] is False and "12ab5678" not in json.dumps(a), a
    assert m.settings["scroll_ms"] != 1000000
    # a password that is not trusted (the configuration fell back): refused
    m.settings.password_trusted = False
    a = _cfg(up, "C.90.1", "10")
    assert a["ok"] is False and a["error"].startswith("password not trusted"), a


def test_config_round_trip_over_mqtt_never_echoes_the_password():
    from modemkit import run_uplink as _run
    from modemkit import uplink_rig as _rig

    board, m, d = _meter()
    r, broker, up, ob, log = _rig()
    up.catalogue = m.catalogue
    up.iec_map = m.iec_map
    _run(r, up, lambda: up.session)
    a = _signed("SIM00001", {"obis": "C.90.1", "value": "12"}, id_="a")
    b = _signed("SIM00001", {"obis": "C.90.1", "value": "13"}, "98765432", id_="b")
    # the head-end's JSON encoder may space and order it as it likes: the MAC is over the
    # serial, n and the "set" text, which any JSON encoder carries verbatim
    up._on_msg(b"meters/SIM00001/cmd", json.dumps(a, separators=(", ", " : ")).encode())
    up._on_msg(b"meters/SIM00001/cmd", json.dumps(b).encode())
    _run(r, up, lambda: len([p for p in broker.payloads if b'"ok"' in p]) >= 2)
    acks = [json.loads(p) for p in broker.payloads if b'"ok"' in p]
    assert acks[0] == {"id": "a", "cmd": "config", "n": a["n"], "obis": "C.90.1",
                       "ok": True}, acks
    assert acks[1]["error"] == "wrong mac", acks
    assert m.settings["scroll_ms"] == 12000
    for p in broker.payloads:
        assert b"00000000" not in p and b"98765432" not in p, p


def test_a_lockout_earned_on_the_uplink_survives_a_restart():
    from test_protocols import _reboot

    board, m, d = _meter()
    for pw in ("11111111", "22222222"):
        _cfg(m.uplink, "C.90.1", "17", pw)
    board, m, d = _reboot(board, m)  # the count of wrong passwords is persisted
    a = _cfg(m.uplink, "C.90.1", "17", "33333333")
    assert a["error"] == "wrong mac; locked (600 s)", a
    board, m, d = _reboot(board, m)
    a = _cfg(m.uplink, "C.90.1", "17")
    assert a["error"].startswith("locked ("), a
    assert Port(d, events.SRC_RS485).prog() == b"\x06", "the local ports' lockout is apart"


def test_a_flood_of_refused_configs_is_not_an_outbox_record_each():
    # every refusal before the password is looked at (locked, none given) was logged, and
    # so queued in the outbox as an event: a head-end repeating a bad config a few times a
    # second wore the outbox flash like a flood of writes, and pushed the meter's real
    # events out of its RAM log
    board, m, d = _meter()
    up = m.uplink
    up.setup()
    for pw in ("11111111", "22222222", "33333333"):
        _cfg(up, "C.90.1", "17", pw)
    up.forward_events()
    s0 = up.outbox.next_seq
    for _ in range(100):
        assert _cfg(up, "C.90.1", "17", PW)["error"].startswith("locked (")
        assert _ask(up, id=2, obis="C.90.1", value="10")["error"].startswith("locked (")
        up.forward_events()
    assert up.outbox.next_seq - s0 <= 2, up.outbox.next_seq - s0
    assert len(_persisted(m, events.PW_WHILE_LOCKED)) == 1


def test_a_replayed_config_is_refused_also_after_a_power_cut():
    # the password went in clear and nothing stopped a recorded config from being sent
    # again: now n must rise, and the last accepted n is in the security log before the
    # change is made, so a power cut right after it cannot bring an older n back
    board, m, d = _meter()
    up = m.uplink
    said = _listen(m)
    n0 = _N[0] + 10
    old = _signed(up.serial, {"obis": "C.90.1", "value": "21"}, n=n0)
    new = _signed(up.serial, {"obis": "C.90.1", "value": "22"}, n=n0 + 1)
    a = up._answer(json.dumps(old).encode())
    assert a == {"id": 1, "cmd": "config", "n": n0, "obis": "C.90.1", "ok": True}, a
    assert up._answer(json.dumps(new).encode())["ok"] is True
    assert m.settings["scroll_ms"] == 22000
    a = up._answer(json.dumps(old).encode())  # the eavesdropper's copy of the first
    assert a["ok"] is False and a["error"] == "n: %d is not above the last accepted (%d)" % (
        n0, n0 + 1), a
    assert m.settings["scroll_ms"] == 22000
    assert up._answer(json.dumps(new).encode())["error"].startswith("n: ")
    assert [e[2] for e in _persisted(m, events.UPLINK_REPLAY)] == [n0], "logged (a minute)"
    assert not _persisted(m, events.WRONG_PASSWORD), "a replay is no guess"
    # the n is recorded before the change it authorises
    sec = [e for e in m.events.persisted(events.LOG_SECURITY)
           if e[1] in (events.UPLINK_CONFIG_N, events.PARAM_CHANGED)]
    assert [(e[1], e[2]) for e in sec[-4:]] == [
        (events.UPLINK_CONFIG_N, n0), (events.PARAM_CHANGED, 21),
        (events.UPLINK_CONFIG_N, n0 + 1), (events.PARAM_CHANGED, 22)], sec
    assert PW not in _texts(m, said)
    # a power cut (no orderly shutdown): the new meter knows the last n
    del up
    board, m, d = _meter(board)
    assert m.iec_map().uplink_n == n0 + 1
    a = m.uplink._answer(json.dumps(old).encode())
    assert a["error"].startswith("n: %d is not above" % n0), a
    a = m.uplink._answer(json.dumps(new).encode())
    assert a["error"].startswith("n: %d is not above" % (n0 + 1)), a
    _N[0] = n0 + 1
    assert _cfg(m.uplink, "C.90.1", "23")["ok"] is True
    # a MAC is bound to its n, the meter's serial and the exact text
    n = _N[0] + 1
    bad = _signed(up_serial(m), {"obis": "C.90.1", "value": "24"}, n=n)
    other = _signed("SIM99999", {"obis": "C.90.1", "value": "24"}, n=n)  # another meter's
    for k, v in (("n", n + 1), ("set", bad["set"].replace(" ", "")), ("mac", other["mac"])):
        a = m.uplink._answer(json.dumps(dict(bad, **{k: v})).encode())
        assert a["error"].startswith("wrong mac"), (k, a)
    assert m.settings["scroll_ms"] == 23000


def test_the_last_n_and_a_lockout_outlive_a_security_log_that_turned_over():
    # the last n (and a lockout) was written again only at power-up: a meter running for
    # months filled its security ring with other records (refusals, seal, optical
    # sessions: a head-end's bad config alone is one a minute), the ring dropped the
    # UPLINK_CONFIG_N record, and after the next power cut uplink_n was 0: every recorded
    # config could be replayed (and the uplink's lockout was forgotten)
    board, m, d = _meter()
    up = m.uplink
    n0 = _N[0] + 10
    old = _signed(up.serial, {"obis": "C.90.1", "value": "21"}, n=n0)
    assert up._answer(json.dumps(old).encode())["ok"] is True
    _N[0] = n0
    for pw in ("11111111", "22222222", "33333333"):
        _cfg(up, "C.90.1", "17", pw)
    assert m.iec_map().uplink_lockout.remaining(m.uplink.clock.time()) > 0
    ring = m.events.rings[events.LOG_SECURITY]
    t = m.uplink.clock.time()
    for i in range(3 * ring.capacity):  # the ring turns over three times
        code = (events.SEALED_REFUSED, events.PARAM_CHANGED, events.REFUSED_NO_PASSWORD)[i % 3]
        m.events.persist(t, code, i, events.SRC_OPTICAL)
    assert not [e for e in m.events.persisted(events.LOG_SECURITY)
                if e[1] == events.UPLINK_CONFIG_N and e[2] < n0], "the old records are gone"
    board, m, d = _meter(board)  # a power cut
    im = m.iec_map()
    assert im.uplink_n == n0, im.uplink_n
    assert im.uplink_lockout.remaining(m.uplink.clock.time()) > 0, "the lockout is kept"
    assert Port(d, events.SRC_RS485).prog() == b"\x06", "the local ports' lockout is apart"
    a = m.uplink._answer(json.dumps(old).encode())
    assert a["error"].startswith("locked ("), a


def test_wrong_passwords_of_both_lockouts_are_all_persisted():
    # the event store's flood limit let 3 WRONG_PASSWORD records a window through, counted
    # per code: 2 wrong MACs on the uplink then 2 wrong optical passwords, and the second
    # optical one was only counted for a summary; after a power cut the local lockout
    # counted 1 failure instead of 2 (a guesser gained a try per cycle)
    board, m, d = _meter()
    for pw in ("11111111", "22222222"):
        assert _cfg(m.uplink, "C.90.1", "17", pw)["error"] == "wrong mac"
    opt = Port(d, events.SRC_OPTICAL)
    for pw in ("11111111", "22222222"):
        assert opt.prog(pw) == _err(2)
    im = m.iec_map()
    assert (im.lockout.failures, im.uplink_lockout.failures) == (2, 2)
    board, m, d = _meter(board)  # a power cut
    im = m.iec_map()
    assert (im.lockout.failures, im.uplink_lockout.failures) == (2, 2), (
        im.lockout.failures, im.uplink_lockout.failures)
    Port(d, events.SRC_RS485).prog("33333333")
    assert im.lockout.remaining(m.uplink.clock.time()) > 0, "the third one locks"
    assert im.uplink_lockout.remaining(m.uplink.clock.time()) == 0


def up_serial(m):
    return m.uplink.serial


def test_a_time_sync_is_capped_and_counted_in_the_uplinks_own_clock_budget():
    # {"cmd":"time"} needs no password: anyone publishing on cmd moved the clock by any
    # amount once an hour, and its sets were not limited like the local ports'
    from test_protocols import _reboot

    board, m, d = _meter()
    up = m.uplink
    up.time_sync_s = 0  # (the hourly limit aside: the per-period budget is tested here)
    clk = board.clock

    def sync(shift):
        return up._answer(json.dumps({"id": 1, "cmd": "time", "t": clk.time() + shift}).encode())

    t0 = clk.time()
    a = sync(-3600)
    assert a["ok"] is False and a["error"] == ("shift -3600 s: a time sync moves the clock by "
                                               "at most +-900 s (larger sets: config "
                                               "0.9.1/0.9.2)"), a
    assert sync(901)["ok"] is False
    assert abs(clk.time() - t0) < 5, "not moved"
    ref = _persisted(m, events.UPLINK_TIME_REFUSED)
    assert [(e[2], e[3]) for e in ref] == [(-3600, events.SRC_UPLINK)], "once a minute"
    # within the cap: the uplink's budget of the billing config (4 sets, 900 s a day)
    for shift in (100, 100, 100, 100):
        assert sync(shift) == {"id": 1, "cmd": "time", "ok": True}
    a = sync(100)
    assert a == {"id": 1, "cmd": "time", "ok": False, "error": "clock set limit per period"}
    refused = _persisted(m, events.CLOCK_SET_REFUSED)
    assert refused and refused[-1][3] == events.SRC_UPLINK, refused
    # the local ports' budget is their own: the technician can still set the clock
    from iec62056.codec import date_time_text

    assert d.writer("0.9.1", date_time_text(clk.time() + 60)[1], True,
                    events.SRC_OPTICAL) is None
    # the authenticated config sets what a time sync may not (counted, never refused)
    a = _cfg(up, "0.9.1", date_time_text(clk.time() - 3000)[1])
    assert a["ok"] is True, a
    # after a restart the uplink's budget is rebuilt from the audit trail (source uplink)
    board, m, d = _reboot(board, m)
    m.uplink.time_sync_s = 0
    a = m.uplink._answer(json.dumps({"id": 2, "cmd": "time", "t": board.clock.time() + 10}
                                    ).encode())
    assert a["error"] == "clock set limit per period", a



def test_a_log_request_reads_a_bounded_number_of_records_per_round():
    # a range with no matching entry scanned the whole event store in one round of the
    # uplink task (12.6 ms on the unix port, more on a board): now at most range_scan
    # records a round, the rest in the next rounds
    board, m, d = _meter()
    up = m.uplink
    up.setup()
    es = m.events
    t = board.clock.time()
    for k in range(300):  # (persist: past the flood limit)
        es.persist(t, events.PARAM_CHANGED if k % 2 else events.CLOCK_INVALID, k)
    reads = [0]
    for ring in es.rings:
        def counted(entries=ring.entries):
            for e in entries():
                reads[0] += 1
                yield e

        ring.entries = counted
    total = sum(1 for _ in es.iter_persisted())
    assert total >= 300, total
    reads[0] = 0
    req = {"id": 4, "cmd": "log", "log": "disconnector", "from": 0, "to": t + 86400}
    assert up._answer(json.dumps(req).encode()) is None
    rounds = []
    while True:
        reads[0] = 0
        page = next(up._range, None)
        rounds.append(reads[0])
        if page is None:
            break
        if page:
            last = json.loads(page)
    scan = getattr(up, "range_scan", 32)  # records a round at most (32)
    assert max(rounds) <= scan + len(es.rings), rounds
    assert sum(rounds) >= total and len(rounds) > total // scan, rounds
    assert last["events"] == [] and last["last"] and last["rows_total"] == 0, last
    # and a range with entries is complete: every CLOCK_INVALID persisted above, in order
    up._range = None
    req = {"id": 5, "cmd": "log", "log": "standard", "from": t, "to": t}
    assert up._answer(json.dumps(req).encode()) is None
    got = []
    for page in up._range:
        if page:
            got += [e[4] for e in json.loads(page)["events"] if e[2] == events.CLOCK_INVALID]
    up._range = None
    assert got == list(range(0, 300, 2)), got


KEY = "000102030405060708090a0b0c0d0e0f"  # the uplink key of these tests (RFC 4231-style)


def _kmac(key, serial, n, text):
    # the head-end's MAC under a 16-byte uplink key (CPython's hmac, else the firmware's)
    from binascii import unhexlify

    k = unhexlify(key)
    m = ("%s\n%d\n%s" % (serial, n, text)).encode()
    try:
        import hashlib
        import hmac

        return hmac.new(k, m, hashlib.sha256).hexdigest()
    except ImportError:
        from binascii import hexlify

        from uplink.auth import hmac_sha256

        return hexlify(hmac_sha256(k, m)).decode()


def _kcfg(up, obis, value, key=KEY):
    _N[0] += 1
    n = _N[0]
    text = json.dumps({"obis": obis, "value": value})
    msg = {"id": 1, "cmd": "config", "n": n, "set": text, "mac": _kmac(key, up.serial, n, text)}
    a = up._answer(json.dumps(msg).encode())
    a.pop("n", None)
    return a


def _ktime(up, t, key=KEY, n=None):
    if n is None:
        _N[0] += 1
        n = _N[0]
    mac = _kmac(key, up.serial, n, "time:%d" % t) if key else None
    req = {"id": 1, "cmd": "time", "t": t}
    if key:
        req.update(n=n, mac=mac)
    return up._answer(json.dumps(req).encode())


def test_an_uplink_key_written_locally_keys_the_macs_and_the_password_no_longer_does():
    # the MAC was keyed with the 8-digit programming password: one recorded config let an
    # attacker search the 10**8 passwords offline, and then own the optical port too
    from test_protocols import _reboot

    board, m, d = _meter()
    up = m.uplink
    said = _listen(m)
    assert d.reader("C.93.4") == ("", None), "no key: no key check value"
    assert d.writer("C.93.3", KEY, False, events.SRC_OPTICAL) is None
    assert _persisted(m, events.UPLINK_KEY_CHANGED)[-1][2:4] == (1, events.SRC_OPTICAL)
    # the key check value: SHA-256 of the key's bytes, 3 bytes in hex
    import hashlib
    from binascii import hexlify, unhexlify

    kcv = hexlify(hashlib.sha256(unhexlify(KEY)).digest()[:3]).decode()
    assert d.reader("C.93.4") == (kcv, None)
    a = _cfg(up, "C.90.1", "10")  # keyed with the password: refused now
    assert a["error"] == "wrong mac", a
    a = _kcfg(up, "C.90.1", "10")
    assert a == {"id": 1, "cmd": "config", "obis": "C.90.1", "ok": True}, a
    assert m.settings["scroll_ms"] == 10000
    # the key is in flash before the ACK: after a restart it still keys the MACs
    board, m, d = _reboot(board, m)
    up = m.uplink
    assert _kcfg(up, "C.90.1", "11")["ok"] is True
    assert _cfg(up, "C.90.1", "12")["error"] == "wrong mac"
    # cleared locally: the password keys them again
    assert d.writer("C.93.3", "", False, events.SRC_OPTICAL) is None
    assert _persisted(m, events.UPLINK_KEY_CHANGED)[-1][2] == 0
    assert _cfg(up, "C.90.1", "12")["ok"] is True
    assert KEY not in _texts(m, said) and KEY.upper() not in _texts(m, said)


def test_the_uplink_key_is_never_read_nor_written_over_the_uplink_and_bad_keys_are_named():
    board, m, d = _meter()
    up = m.uplink
    said = _listen(m)
    try:
        d.reader("C.93.3")
        raise AssertionError("the key is readable")
    except KeyError:
        pass
    other = "f" * 32
    # over the uplink (the MQTT link is not encrypted): refused, also authenticated
    a = _cfg(up, "C.93.3", other)
    assert a["ok"] is False and a["error"] == "uplink key: written on a local port only", a
    assert m.settings["uplink_key"] == ""
    assert d.writer("C.93.3", KEY, False, events.SRC_OPTICAL) is None
    a = _kcfg(up, "C.93.3", other)
    assert a["error"] == "uplink key: written on a local port only", a
    assert m.settings["uplink_key"] == KEY
    ER05 = d.writer("C.93.3", "g" * 32, False, events.SRC_OPTICAL)
    for bad in ("0" * 31, "0" * 33, "g" * 32, "00000000"):
        assert d.writer("C.93.3", bad, False, events.SRC_OPTICAL) is not None, bad
        assert m.settings["uplink_key"] == KEY
    # a trivial key (all zeros, one byte repeated, a short pattern repeated) is the first
    # an attacker tries: refused by name, the key in force stays
    for bad, why in (("0" * 32, "all 16 bytes equal"), ("FF" * 16, "all 16 bytes equal"),
                     ("a5" * 16, "all 16 bytes equal"), ("0f1e" * 8, "2-byte pattern repeated"),
                     ("deadbeef" * 4, "4-byte pattern repeated"),
                     ("0123456789abcdef" * 2, "8-byte pattern repeated")):
        err = d.writer("C.93.3", bad, False, events.SRC_OPTICAL)  # the port's ER05
        assert err == ER05 and m.settings["uplink_key"] == KEY, (bad, err)
        try:
            m.settings.check_value("uplink_key", bad)
            raise AssertionError("accepted: " + bad)
        except ValueError as e:
            want = "uplink_key: trivial key (%s): write 128 random bits" % why
            assert str(e) == want, (bad, str(e))
    texts = _texts(m, said)
    assert other not in texts and KEY not in texts
    # the setter's own error names the rule, never the value
    try:
        m.settings.check_value("uplink_key", "abc")
        raise AssertionError("accepted")
    except ValueError as e:
        assert str(e) == "uplink_key: not 32 hex digits (128 bits) or empty", e


def test_with_an_uplink_key_a_time_sync_is_authenticated_and_not_replayed():
    # {"cmd": "time"} had no authentication at all: anyone who could publish on the cmd
    # topic moved the clock 900 s a day, enough to shift consumption between tariffs
    board, m, d = _meter()
    up = m.uplink
    up.time_sync_s = 0
    clk = board.clock
    assert _ktime(up, clk.time() + 10, key=None)["ok"] is True, "no key: as before"
    assert d.writer("C.93.3", KEY, False, events.SRC_OPTICAL) is None
    t0 = clk.time()
    a = _ktime(up, t0 + 100, key=None)
    assert a == {"id": 1, "cmd": "time", "ok": False,
                 "error": "n: missing or not 1..2147483647"}, a
    a = _ktime(up, t0 + 100, key="11" * 16)
    assert a["error"] == "wrong mac", a
    assert abs(clk.time() - t0) < 5, "not moved"
    _N[0] += 1
    n = _N[0]
    a = _ktime(up, t0 + 100, n=n)
    assert a == {"id": 1, "cmd": "time", "ok": True}, a
    assert clk.time() - t0 >= 100
    t1 = clk.time()
    a = _ktime(up, t0 + 100, n=n)  # the same message again
    assert a["ok"] is False and a["error"].startswith("n: %d is not above" % n), a
    assert abs(clk.time() - t1) < 5
    # a MAC of one t does not pass for another
    _N[0] += 1
    req = {"id": 1, "cmd": "time", "t": t1 + 50, "n": _N[0],
           "mac": _kmac(KEY, up.serial, _N[0], "time:%d" % (t1 + 60))}
    assert up._answer(json.dumps(req).encode())["error"] == "wrong mac"
    # the cap holds for an authenticated sync too (larger sets: config 0.9.1)
    a = _ktime(up, clk.time() + 3600)
    assert a["ok"] is False and a["error"].startswith("shift 3600 s"), a
    # wrong MACs under the key do not lock the uplink (nothing to search online; a lockout
    # would only hand anyone on cmd a switch to shut the head-end out): a right one passes
    for k in ("22" * 16, "33" * 16, "44" * 16):
        _ktime(up, clk.time() + 10, key=k)
    a = _ktime(up, clk.time() + 10)
    assert a["ok"] is True, a
    assert _kcfg(up, "C.90.1", "10")["ok"] is True


def test_a_key_from_an_older_copy_of_the_configuration_is_not_trusted():
    # a key rotated because the old one leaked: the newest configuration copy damaged
    # (a bit flip, a cut save) brought the old key back from the other copy, and the MACs
    # under it were accepted although the configuration fell back (the password from such
    # a copy is not trusted: the key is as much a security parameter)
    board, m, d = _meter()
    old = "5f3c9a0e71d2b8466a1e0c93d7f25b84"
    assert d.writer("C.93.3", old, False, events.SRC_OPTICAL) is None
    assert d.writer("C.93.3", KEY, False, events.SRC_OPTICAL) is None
    st = m.settings
    store = st.store
    m.shutdown()
    newest = 0 if store._seq[0] > store._seq[1] else 1
    store._flash.program(newest * store.slot_bytes + 12, b"\x00\x00\x00\x00")  # its CRC
    board, m, d = _meter(board)
    assert m.settings["uplink_key"] == old, "the older copy is the one loaded"
    assert not m.settings.password_trusted
    up = m.uplink
    for k in (old, KEY):
        a = _kcfg(up, "C.90.1", "10", key=k)
        assert a["ok"] is False and a["error"].startswith("password not trusted"), a
        a = _ktime(up, board.clock.time() + 10, key=k)
        assert a["ok"] is False and a["error"].startswith("password not trusted"), a
    assert m.settings["scroll_ms"] == 10000


def test_a_corrupt_stored_key_never_falls_back_to_the_password():
    # a stored key that is no key (a record of another firmware, a bad migration): a
    # falsy one made the password key the MACs again and the time sync unauthenticated; a
    # non-hex one raised inside the command (answered "bad request") and in the C.93.4 read
    board, m, d = _meter()
    up = m.uplink
    up.time_sync_s = 0
    t0 = board.clock.time()
    for bad in (False, 0, None, [], "zz" * 16, "0" * 31, 5, "0" * 32):  # (32: trivial)
        m.settings._d["uplink_key"] = bad  # (as a damaged record would load it)
        a = _cfg(up, "C.90.1", "10")
        assert a["ok"] is False and a["error"] == ("uplink key not usable (configuration): "
                                                   "write it locally"), (bad, a)
        a = _ktime(up, t0 + 10, key=None)  # unsigned: refused (n, mac missing)
        assert a["ok"] is False, (bad, a)
        a = _ktime(up, t0 + 10)
        assert a["ok"] is False and a["error"].startswith("uplink key not usable"), (bad, a)
        assert d.reader("C.93.4") == ("invalid", None), bad
    assert m.settings["scroll_ms"] == 10000 and abs(board.clock.time() - t0) < 5
    # written again locally: usable
    assert d.writer("C.93.3", KEY, False, events.SRC_OPTICAL) is None
    assert _kcfg(up, "C.90.1", "10")["ok"] is True


def test_with_an_uplink_key_wrong_macs_do_not_lock_the_head_end_out():
    # with a key the uplink's lockout (3 wrong MACs: 10 min, doubling to a day) protected
    # nothing (128 bits cannot be searched online; offline a recorded message suffices)
    # but let anyone who can publish on cmd lock the head-end's config and, since the key,
    # its time syncs out, again and again
    board, m, d = _meter()
    up = m.uplink
    up.time_sync_s = 0
    assert d.writer("C.93.3", KEY, False, events.SRC_OPTICAL) is None
    clk = board.clock
    for i in range(10):
        assert _kcfg(up, "C.90.1", "10", key="%02x" % i * 16)["error"] == "wrong mac"
        assert _ktime(up, clk.time() + 10, key="%02x" % i * 16)["error"] == "wrong mac"
    assert _kcfg(up, "C.90.1", "11")["ok"] is True
    assert _ktime(up, clk.time() + 10)["ok"] is True
    assert not _persisted(m, events.PROG_LOCKED)
    refused = _persisted(m, events.REFUSED_NO_PASSWORD)
    assert refused and refused[-1][3] == events.SRC_UPLINK, refused
    # without a key the password's lockout holds as before (10**8 passwords)
    assert d.writer("C.93.3", "", False, events.SRC_OPTICAL) is None
    for k in ("11111111", "22222222", "33333333"):
        _cfg(up, "C.90.1", "12", pw=k)
    assert _cfg(up, "C.90.1", "12")["error"].startswith("locked (")


def test_a_bus_pre_binding_is_written_on_the_optical_port():
    # W1 C.93.9(ADDRESS=SERIAL) through the port's writer (docs/UPLINK.md "Serial binding"):
    # the binding is in the settings before the concentrator's first poll; a bad one is ER05
    board, m, d = _meter()
    assert d.writer("C.93.9", "10000005=10000077", False, events.SRC_OPTICAL) is None
    assert m.settings["bus_bindings"] == {"10000005": "10000077"}
    assert d.writer("C.93.9", "10000006=10000077", False, events.SRC_OPTICAL) is not None
    assert d.writer("C.93.9", "10000006=", False, events.SRC_OPTICAL) is not None
    assert m.settings["bus_bindings"] == {"10000005": "10000077"}
    assert d.writer("C.93.9", "10000005", False, events.SRC_OPTICAL) is None  # unbound
    assert m.settings["bus_bindings"] == {}
