"""Uplink core against a real broker (mosquitto on loopback, host_tests/system/broker.py)
with a paho-mqtt 2.2 subscriber as the head-end.

1. On the MicroPython unix port: the connection manager + AT engine + the SIM800 model
   (real TCP from its CIPSTART) + the socket adapter + umqtt.simple (PyPI 1.3.4, unmodified,
   our packet-id subclass) publish QoS 1 messages; the model's network goes down twice
   (``+PDP: DEACT``; then silently, data black-holed), the manager backs off by its schedule
   and reconnects, publishing resumes, and the head-end has every message.
2. Packet ids past 65 535 on the unix port with umqtt.simple over a plain socket (faster
   than 65 540 round trips through the AT model: ~2 s against minutes): 65 540 QoS 1
   publishes all acked, ids wrap 65 535 -> 1; the library's own client fails on the
   65 536th; and a short run across the wrap through the modem path.
"""

import json
import os
import subprocess

from broker import Mosquitto, Subscriber
from simrun import MICROPYTHON, ROOT

MPYPATH = ".frozen:.frozen-lib:lib:."


def _run(*args, timeout=300):
    env = dict(os.environ, MICROPYPATH=MPYPATH)
    p = subprocess.run([MICROPYTHON, "host_tests/system/uplink_mp.py"] + [str(a) for a in args],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    assert lines and lines[-1].get("summary"), p.stdout[-2000:]
    return lines[-1], lines[:-1]


def _backoff_ok(delay, n, base=1000, cap=8000):
    d = base
    for _ in range(n - 1):
        d = min(cap, d * 2)
    return d // 2 <= delay <= d


def test_publish_through_the_sim800_model_with_outages():
    count = 40
    with Mosquitto() as b:
        sub = Subscriber(b.port, "meters/SIM00001/#", qos=1)
        try:
            s, evs = _run("outage", b.port, count)
            sub.wait_count(count, 10)
        finally:
            sub.stop()
    seqs = set()
    for _topic, payload in sub.messages:
        seqs.add(json.loads(payload)["seq"])
    assert s["published"] == count and seqs == set(range(count)), (s, sorted(seqs))
    downs = s["downs"]
    assert [d[1] for d in downs] == ["deact", "up", "silent", "up"], downs
    # publishing resumed after each outage: acks after both "up"s
    acked = s["acked_at"]
    assert any(downs[1][0] <= t for t in acked) and any(downs[3][0] <= t for t in acked)
    # nothing was acked while the network was down
    for t in acked:
        assert not (downs[0][0] < t < downs[1][0]), (t, downs)
    reasons = [h[1] for h in s["history"]]
    assert reasons[0] == "pdp_deact", reasons
    assert "connect" in reasons or "no_network" in reasons, reasons
    for h in s["history"]:
        assert _backoff_ok(h[3], h[5]), h  # delay within [d/2, d] of the schedule
    assert s["tcp_connects"] >= 3 and s["connects"] >= 3
    assert s["eng"]["garbage"] == 0 and s["eng"]["stray"] == 0
    fails = [e for e in evs if e.get("ev") == "fail"]
    assert len(fails) == len(s["history"])


def test_packet_id_wraps_past_65535_on_a_real_broker():
    count = 65540
    with Mosquitto() as b:
        sub = Subscriber(b.port, "wrap/#", qos=0)
        try:
            s, _ = _run("pidwrap", b.port, count, timeout=600)
            assert s["published"] == count
            assert s["pids"] == [1, 2, 3, 65531, 65532, 65533, 65534, 65535, 1, 2, 3, 4, 5]
            assert sub.wait_count(count, 60) == count, sub.count
            got = sorted(int(p) for t, p in sub.messages if t == "wrap/t")
            assert got == list(range(count))
            u, _ = _run("unfixed", b.port)
            assert u["first_ok_pid"] == 65535 and u["second_error"], u
            m, _ = _run("modemwrap", b.port)
            assert m["pids"] == [65531, 65532, 65533, 65534, 65535, 1, 2, 3, 4, 5, 6, 7], m
            sub.wait_count(count + 1 + 12, 10)
        finally:
            sub.stop()
    assert [p for t, p in sub.messages if t == "wrap/u"] == [b"65535"], "id 0 is not delivered"
    assert [int(p) for t, p in sub.messages if t == "wrap/m"] == list(range(12))
