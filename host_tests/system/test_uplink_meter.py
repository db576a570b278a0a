# The uplink wired into the meter (firmware/uplink/) on the virtual board: the SIM800 model
# bridged to a real mosquitto, a paho-mqtt head-end; schedule, commands, a 72 h outage with
# a power cut in the middle.
import json
import os
import subprocess
import tempfile
import time

from broker import Mosquitto, Subscriber, free_port
from iec_prog import prog
from simrun import MICROPYTHON, MPYPATH, ROOT, SIM_HEAP

Q = 900  # s: the reading interval
T0 = 504921600  # 2016-01-01 00:00:00 UTC in RTC seconds


def _start(*args):
    env = dict(os.environ, MICROPYPATH=MPYPATH)
    return subprocess.Popen([MICROPYTHON, "-X", "heapsize=" + SIM_HEAP, "firmware/main.py",
                             "--quiet", "--json"]
                            + [str(a) for a in args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(p, timeout):
    out, err = p.communicate(timeout=timeout)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    assert lines, (p.returncode, err[-2000:])
    return json.loads(lines[-1]), err


def _control(port, line):
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(line)
        s.recv(200)  # (the answer: the command was taken)


def signed_config(serial, n, req, password="00000000"):
    """A ``config`` command as the head-end sends it (docs/UPLINK.md): the request as JSON
    text in ``set``, carried verbatim, and the HMAC-SHA256 keyed with the programming
    password over ``serial LF n LF set`` (n: rising, never used before)."""
    import hashlib
    import hmac

    text = json.dumps(req)
    mac = hmac.new(password.encode(), ("%s\n%d\n%s" % (serial, n, text)).encode(),
                   hashlib.sha256).hexdigest()
    return {"cmd": "config", "n": n, "set": text, "mac": mac}


def _iso_s(ts):
    import calendar

    return calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")) - 946684800


class HeadEnd(Subscriber):
    """Keeps what arrived per topic, decoded; duplicates are recognised by seq."""

    def by(self, kind):
        out = []
        for topic, payload in list(self.messages):
            if topic.endswith("/" + kind):
                out.append(json.loads(payload))
        return out

    def stream(self):
        """Messages with a seq (reading, profile, event), first arrival of each seq, in
        arrival order; and the number of duplicates (same seq again, same content)."""
        seen = {}
        order = []
        dups = 0
        for topic, payload in list(self.messages):
            if topic.endswith("/reading") or topic.endswith("/event") or \
                    topic.endswith("/profile"):
                m = json.loads(payload)
                if m["seq"] in seen:
                    assert seen[m["seq"]] == m, "seq %d reused for another message" % m["seq"]
                    dups += 1
                    continue
                seen[m["seq"]] = m
                order.append(m)
        return order, dups


def test_readings_on_schedule_commands_answered_and_last_gasp():
    with Mosquitto() as b:
        he = HeadEnd(b.port, "meters/SIM00001/#")
        ctl = free_port()
        img = tempfile.mktemp(prefix="uplink.", dir="/tmp")
        p = _start("--broker", "127.0.0.1:%d" % b.port, "--speed", "300", "--flash", img,
                   "--start", "2016-01-01", "--control-tcp", ctl)
        try:
            t0 = time.monotonic()
            while not any(json.loads(x).get("state") == "online" for t, x in he.messages
                          if t.endswith("/status")) and time.monotonic() - t0 < 30:
                time.sleep(0.1)
            import paho.mqtt.publish as pub

            for i, cmd in enumerate(({"cmd": "registers"}, {"cmd": "relay", "on": 0},
                                     {"cmd": "read"},
                                     signed_config("SIM00001", 1, {"obis": "0.9.1",
                                                                   "value": "000010"}),
                                     {"cmd": "time", "t": T0 + 86400}, {"cmd": "format"})):
                cmd["id"] = i
                pub.single("meters/SIM00001/cmd", json.dumps(cmd), qos=1, hostname="127.0.0.1",
                           port=b.port)
            pub.single("meters/SIM00001/cmd", "not json", qos=1, hostname="127.0.0.1",
                       port=b.port)
            t0 = time.monotonic()  # (the meter holds 8 commands; the ranges come next)
            while len(he.by("cmd/ack")) < 7 and time.monotonic() - t0 < 30:
                time.sleep(0.1)
            for i, cmd in ((6, {"cmd": "profile", "from": "2016-01-01T00:00:00Z",
                                "to": "2017-01-01T00:00:00Z"}),
                           (7, {"cmd": "log", "log": "standard", "from": 0,
                                "to": 2 ** 31 - 2}),
                           (8, {"cmd": "profile", "from": "tomorrow", "to": 1}),
                           (9, signed_config("SIM00001", 2, {"obis": "C.90.1", "value": "12"})),
                           (10, signed_config("SIM00001", 3, {"obis": "C.90.1", "value": "13"},
                                              "98765432"))):
                cmd["id"] = i
                pub.single("meters/SIM00001/cmd", json.dumps(cmd), qos=1, hostname="127.0.0.1",
                           port=b.port)
            # the supply fails once every answer is in and 3 h of rows came (not at a fixed
            # simulated time: on a loaded machine the answers lag the clock at --speed 300)
            t0 = time.monotonic()
            while time.monotonic() - t0 < 180 and p.poll() is None and not (
                    {a.get("id") for a in he.by("cmd/ack")} >= set(range(11))
                    and all(any(a.get("id") == i and a.get("last") for a in he.by("cmd/ack"))
                            for i in (6, 7))
                    and sum(len(m["rows"]) for m in he.by("profile")) >= 13):
                time.sleep(0.2)
            _control(ctl, b"power-fail\n")
            rep, err = _finish(p, 120)
        finally:
            if p.poll() is None:
                p.kill()
            for s in ("", ".rtc", ".wear"):
                if os.path.exists(img + s):
                    os.remove(img + s)
        time.sleep(0.5)
        he.stop()
    st = he.by("status")
    assert st and st[0] == {"state": "online"}, (st, json.dumps(rep)[:1000], err[-1500:])
    acks = {a.get("id"): a for a in he.by("cmd/ack")}
    assert acks[0]["ok"] and [v[0] for v in acks[0]["values"]][:2] == ["1.8.0", "2.8.0"], acks
    assert acks[0]["values"][0][2] == "kWh"
    assert acks[1] == {"id": 1, "cmd": "relay", "ok": False, "error": "not supported"}
    assert acks[2]["ok"] and acks[2]["seq"] >= 1
    # the clock set back to 00:00:10 by an authenticated config; a time sync is not
    # authenticated: its shift beyond 900 s is refused
    assert acks[3] == {"id": 3, "cmd": "config", "n": 1, "obis": "0.9.1", "ok": True}, acks[3]
    assert acks[4]["ok"] is False and "at most +-900 s" in acks[4]["error"], acks[4]
    assert acks[5]["error"] == "unknown command"
    assert acks[None] == {"ok": False, "error": "bad request"}, acks
    # ranges on request: pages on cmd/ack, the last one with the total; a bad one refused
    pages = [a for a in he.by("cmd/ack") if a.get("id") == 6]
    assert pages and pages[-1]["last"] and pages[-1]["rows_total"] == sum(
        len(a["rows"]) for a in pages) >= 1, pages
    assert all(_iso_s(r[0]) % Q == 0 for a in pages for r in a["rows"]), pages
    assert [a["page"] for a in pages] == list(range(1, len(pages) + 1))
    logs = [a for a in he.by("cmd/ack") if a.get("id") == 7]
    assert logs[-1]["last"] and any(e[2] == 1 and e[3] == "power up"
                                    for a in logs for e in a["events"]), logs
    assert acks[8]["ok"] is False and acks[8]["error"].startswith('from: "tomorrow" is not'), \
        acks[8]
    # a configuration change, authenticated; a wrong key's MAC refused
    assert acks[9] == {"id": 9, "cmd": "config", "n": 2, "obis": "C.90.1", "ok": True}, \
        acks[9]
    assert acks[10]["error"] == "wrong mac", acks[10]
    said = [x for t, x in he.messages if not t.endswith("/cmd")]  # (the meter's, not ours)
    leak = [x for x in said if b"98765432" in x or b'"password"' in x]
    assert said and not leak, leak
    order, dups = he.stream()
    seqs = [m["seq"] for m in order]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    ev = [m for m in order if m.get("name") == "parameter changed"]
    assert ev and ev[-1]["value"] == 12, ev
    # the schedule sends the load profile's rows (P.01, 15 min): quarter hours on the RTC;
    # the clock was set back by the config command: no gap, every row of the 3 h arrived
    prof = [m for m in order if "profile" in m]
    rows = [r for m in prof for r in m["rows"]]
    assert len(rows) >= 11, rows
    ts = sorted(set(_iso_s(r[0]) for r in rows))
    assert ts == list(range(ts[0], ts[-1] + 1, Q)), rows
    # the config set the RTC back: the intervals of the new time come again (the first
    # flagged CLOCK_ADJUSTED 0x20); a row sent twice is sent identically (discardable)
    assert any(r[1] & 0x20 for r in rows), rows
    seen = {}
    for r in rows:
        if r[0] in seen and seen[r[0]] != r:
            assert r[1] & 0x20 or seen[r[0]][1] & 0x20 or \
                any(x[1] & 0x20 for x in rows[rows.index(seen[r[0]]):rows.index(r)]), r
        seen[r[0]] = r
    assert prof[0]["profile"] == "P.01" and prof[0]["period_s"] == Q, prof[0]
    assert prof[0]["channels"][:2] == [["1.29", "kWh"], ["2.29", "kWh"]], prof[0]
    assert rows[0][1] & 0x40 and all(len(r[2]) == 6 for r in rows), rows[0]  # POWER_UP
    assert not [m for m in order if m.get("why") == "schedule"], "rows instead of readings"
    req = [m for m in order if m.get("why") == "request"]
    assert req and req[0]["seq"] == acks[2]["seq"]
    evs = [m for m in order if "code" in m]
    assert any(e["code"] == 1 for e in evs), "POWER_UP forwarded"
    assert any(e["code"] == 20 for e in evs), "CLOCK_SET of the config forwarded"
    # the supply failed at 3 h with the link up: the last gasp went out within the hold-up
    assert rep["power_lost"], err[-300:]
    up = rep["uplink"]
    assert up["gasp"]["sent"] and up["gasp"]["ms"] <= 100, up
    assert evs[-1]["code"] == 19 and evs[-1]["seq"] == up["gasp"]["seq"] == seqs[-1], evs[-1]
    assert up["pending"] == 0 and up["dropped"] == 0, up


def test_72_hour_outage_with_a_power_cut_every_reading_arrives_in_order():
    half = 36 * 3600
    with Mosquitto() as b:
        he = HeadEnd(b.port, "meters/SIM00001/#")
        img = tempfile.mktemp(prefix="uplink.", dir="/tmp")
        try:
            # run A: the network goes down at once; the supply fails at 36 h (power cut)
            p = _start("--broker", "127.0.0.1:%d" % b.port, "--speed", "max", "--flash", img,
                       "--start", "2016-01-01", "--network-outage", "0:1000000000",
                       "--power-fail-at", half)
            rep_a, err = _finish(p, 600)
            assert rep_a["power_lost"], err[-500:]
            ua = rep_a.get("uplink")
            # run B: power back (RTC on its battery, no time lost), 36 h more without
            # network, then the network is back; a day more to drain
            p = _start("--broker", "127.0.0.1:%d" % b.port, "--speed", "max", "--flash", img,
                       "--off-time", 0, "--network-outage", "0:%d" % half,
                       "--duration", half + 86400)
            rep_b, err = _finish(p, 900)
        finally:
            for s in ("", ".rtc", ".wear"):
                if os.path.exists(img + s):
                    os.remove(img + s)
        time.sleep(1)
        he.stop()
    ub = rep_b["uplink"]
    # the reading of the run's last instant may still wait in the outbox (next power-up)
    assert ub["pending"] <= 1 and ub["dropped"] == 0 and ub["lost"] == 0, ub
    order, dups = he.stream()
    seqs = [m["seq"] for m in order]
    assert seqs == list(range(1, ub["next_seq"] - ub["pending"])), (
        "contiguous, in order: %r" % seqs[:50])
    sched = [_iso_s(r[0]) for m in order if "profile" in m for r in m["rows"]]
    # every quarter hour's profile row from the start to the power cut, then from the
    # restart on, each once (the cursor in the outbox survived the cut)
    assert sched == sorted(sched) and len(sched) == len(set(sched)), sched
    first = [t for t in sched if t <= T0 + half]
    assert first == list(range(T0 + Q, T0 + half + 1, Q)) or \
        first == list(range(T0 + Q, T0 + half, Q)), (len(first), first[:3], first[-3:])
    second = [t for t in sched if t > T0 + half]
    assert len(second) >= (half + 86400) // Q - 2, len(second)
    assert second == list(range(second[0], second[-1] + 1, Q)), "no gap after the restart"
    assert ua is not None and ua["sessions"] == 0 and ua["gasp"]["sent"] is False, ua
    pf = [m for m in order if m.get("code") == 19]
    assert len(pf) == 1 and _iso_s(pf[0]["ts"]) == T0 + half, pf  # queued, sent later
    print("outage: %d messages, %d duplicates discarded by seq; run A %r; run B %r" % (
        len(order), dups, ua, ub))



def test_broker_and_apn_written_over_the_optical_port_take_effect_at_the_next_session():
    # W1 C.93.2 (APN) and C.93.1 (broker: the same mosquitto by another name) in
    # programming mode: the session ends cleanly (retained offline, DISCONNECT) and the
    # next one comes up on the new broker with the new APN, no reboot (the run goes on)
    with Mosquitto() as b:
        he = HeadEnd(b.port, "meters/SIM00001/#")
        opt = free_port()
        p = _start("--broker", "127.0.0.1:%d" % b.port, "--optical-tcp", opt, "--duration",
                   30)
        try:
            def online(n):
                t0 = time.monotonic()
                while time.monotonic() - t0 < 20:
                    if [s["state"] for s in he.by("status")].count("online") >= n:
                        return True
                    time.sleep(0.1)
                return False

            assert online(1), he.messages
            new = "localhost:%d" % b.port
            got = prog(opt, "", [("W", "C.93.2", "m2m.example"), ("R", "C.93.2"),
                                 ("W", "C.93.1", new), ("R", "C.93.1")])
            assert got == {"pw": "\x06", "W C.93.2": "\x06", "R C.93.2": "m2m.example",
                           "W C.93.1": "\x06", "R C.93.1": new}, got
            assert online(2), he.by("status")
            rep, err = _finish(p, 60)
        finally:
            if p.poll() is None:
                p.kill()
        he.stop()
    assert [s["state"] for s in he.by("status")][:3] == ["online", "offline", "online"]
    up = rep["uplink"]
    assert up["sessions"] >= 2 and up["errors"] == 0, up
    assert float(rep["sim_s"]) >= 30, rep  # one run to its end: no reboot


def test_an_uplink_key_written_on_the_optical_port_authenticates_config_and_time():
    # the head-end's commands were keyed with the 8-digit password (searchable offline from
    # one recorded command) and `time` had no authentication at all: with the 128-bit key
    # written locally (W1 C.93.3 with the iec62056-21 client), only its MACs pass
    import hashlib
    import hmac

    import paho.mqtt.publish as pub

    key = "8f0e4d1c2b3a49586776a5b4c3d2e1f0"
    with Mosquitto() as b:
        he = HeadEnd(b.port, "meters/SIM00001/#")
        opt = free_port()
        p = _start("--broker", "127.0.0.1:%d" % b.port, "--optical-tcp", opt, "--duration",
                   40, "--start", "2016-01-01")
        try:
            t0 = time.monotonic()
            while not he.by("status") and time.monotonic() - t0 < 20:
                time.sleep(0.1)
            # a trivial key (all zeros) is refused as any bad value: the answer is an error
            # message (STX ... (ER05), the unit test reads the code), not the ACK; none set
            got = prog(opt, "", [("W", "C.93.3", "0" * 32)])
            assert got["W C.93.3"] == "\x02", got
            assert prog(opt, "", [("R", "C.93.4")])["R C.93.4"] == "", "no key set"
            got = prog(opt, "", [("W", "C.93.3", key), ("R", "C.93.4"), ("R", "C.93.3")])
            kcv = hashlib.sha256(bytes.fromhex(key)).hexdigest()[:6]
            assert got["W C.93.3"] == "\x06" and got["R C.93.4"] == kcv, got
            assert key not in json.dumps(got), "the key is never read back"

            def send(i, cmd):
                cmd["id"] = i
                pub.single("meters/SIM00001/cmd", json.dumps(cmd), qos=1,
                           hostname="127.0.0.1", port=b.port)

            def kmac(n, text):
                return hmac.new(bytes.fromhex(key), ("SIM00001\n%d\n%s" % (n, text)).encode(),
                                hashlib.sha256).hexdigest()

            text = json.dumps({"obis": "C.90.1", "value": "12"})
            send(0, signed_config("SIM00001", 1, {"obis": "C.90.1", "value": "11"}))
            send(1, {"cmd": "config", "n": 2, "set": text, "mac": kmac(2, text)})
            t = T0 + 600
            send(2, {"cmd": "time", "t": t})
            send(3, {"cmd": "time", "t": t, "n": 3, "mac": kmac(3, "time:%d" % t)})
            text = json.dumps({"obis": "C.93.3", "value": "0" * 32})
            send(4, {"cmd": "config", "n": 4, "set": text, "mac": kmac(4, text)})
            t0 = time.monotonic()
            while len(he.by("cmd/ack")) < 5 and time.monotonic() - t0 < 30:
                time.sleep(0.1)
            rep, err = _finish(p, 60)
        finally:
            if p.poll() is None:
                p.kill()
        he.stop()
    acks = {a.get("id"): a for a in he.by("cmd/ack")}
    assert acks[0]["error"] == "wrong mac", acks  # keyed with the password
    assert acks[1] == {"id": 1, "cmd": "config", "n": 2, "obis": "C.90.1", "ok": True}, acks
    assert acks[2]["ok"] is False and acks[2]["error"].startswith("n: missing"), acks[2]
    assert acks[3] == {"id": 3, "cmd": "time", "ok": True}, acks[3]
    assert acks[4]["error"] == "uplink key: written on a local port only", acks[4]
    said = [x for t, x in he.messages if not t.endswith("/cmd")]
    assert said and not [x for x in said if key.encode() in x], "the key never goes out"
    evs = [m for m, _ in [(json.loads(x), 0) for t, x in he.messages if t.endswith("/event")]]
    assert any(e.get("code") == 118 and e.get("value") == 1 for e in evs), evs


def test_an_outbox_lost_between_two_runs_never_hands_a_seq_out_twice():
    # seq came from the outbox alone: an outbox partition found unreadable at power-up
    # (another firmware's data, a damaged chip) was formatted and began again at 1, so the
    # head-end took the new messages for duplicates of the first run's and discarded them.
    # The seq floor is in its own record (uplink/seqfloor.py): run B goes on above it.
    with Mosquitto() as b:
        he = HeadEnd(b.port, "meters/SIM00001/#")
        img = tempfile.mktemp(prefix="uplink.", dir="/tmp")
        try:
            p = _start("--broker", "127.0.0.1:%d" % b.port, "--speed", 100, "--flash", img,
                       "--start", "2016-01-01", "--duration", 3600)
            rep_a, err = _finish(p, 300)
            ua = rep_a["uplink"]
            with open(img, "r+b") as f:  # the outbox partition (768 KiB, 256 KiB) garbled
                f.seek(768 * 1024)
                f.write(bytes((i * 131 + 7) & 0xFF for i in range(256 * 1024)))
            p = _start("--broker", "127.0.0.1:%d" % b.port, "--speed", 100, "--flash", img,
                       "--off-time", 0, "--duration", 1800)
            rep_b, err = _finish(p, 300)
        finally:
            for s in ("", ".rtc", ".wear"):
                if os.path.exists(img + s):
                    os.remove(img + s)
        time.sleep(1)
        he.stop()
    ub = rep_b["uplink"]
    order, dups = he.stream()  # (asserts that no seq came twice with another content)
    seqs = [m["seq"] for m in order]
    a = [s for s in seqs if s < ua["next_seq"]]
    assert len(a) >= 4, (seqs, ua)  # run A's profile messages and events arrived
    skip = [m for m in order if m.get("code") == 92]
    assert len(skip) == 1 and skip[0]["value"] > 0, skip
    b_seqs = [s for s in seqs if s > max(a)]
    # (formatted: the numbers 1 .. floor - 1 skipped, the floor run A reserved is next)
    assert b_seqs and min(b_seqs) == skip[0]["value"] + 1 > max(a), (seqs, skip, ua, ub)
    assert len(seqs) == len(a) + len(b_seqs), "every seq of run B above run A's"
