"""Uplink figures of the wired meter (docs/BENCHMARKS.md "Uplink (wired)"): the virtual
board with the SIM800 model, a real mosquitto and a paho-mqtt head-end.

    .venv/bin/python tools/bench_uplink_wired.py [--runs 3] [--outage-h 72]

1. A day at 15-minute readings (``--speed max --duration 86400``, network up): messages,
   payload bytes, MQTT bytes on the wire (exact framing of each PUBLISH QoS 1 + its PUBACK,
   the session's CONNECT/CONNACK/SUBSCRIBE/status and one PINGREQ/PINGRESP per keepalive of
   silence: at most 86400/120 a day), an estimate with TCP/IP headers (40 B per segment, one
   segment per MQTT packet and one TCP ACK each), the uplink's longest synchronous section
   (its worst event-loop stall) and the time spent in publishes.
2. An outage of ``--outage-h`` hours (``--network-outage 0:S``) then a day: the backlog and the
   real time from the session's start to the outbox empty, and the uplink's worst stall.
Medians of ``--runs`` runs. Needs mosquitto (``make uplink-broker``).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "host_tests", "system"))

from broker import Mosquitto, Subscriber  # noqa: E402

MPYPATH = ".frozen:.frozen-lib:firmware:lib:."
KEEPALIVE = 120


def _varint_len(n):
    k = 1
    while n > 127:
        n >>= 7
        k += 1
    return k


def publish_bytes(topic, payload):
    rem = 2 + len(topic) + 2 + len(payload)
    return 1 + _varint_len(rem) + rem


def session_bytes(serial):
    """CONNECT (with the will) + CONNACK, the retained online status + PUBACK, SUBSCRIBE
    + SUBACK: the bytes of one MQTT session's start (firmware/uplink/task.py)."""
    base = "meters/%s/" % serial
    will = (base + "status", '{"state":"offline"}')
    rem = 10 + 2 + len(serial) + 2 + len(will[0]) + 2 + len(will[1])
    connect = 1 + _varint_len(rem) + rem + 4
    online = publish_bytes((base + "status").encode(), b'{"state":"online"}') + 4
    rem = 2 + 2 + len(base + "cmd") + 1
    sub = 1 + _varint_len(rem) + rem + 5
    return connect + online + sub


def run_sim(port, *args):
    env = dict(os.environ, MICROPYPATH=MPYPATH)
    cmd = [os.path.join(ROOT, ".venv", "bin", "micropython"), "firmware/main.py", "--quiet",
           "--json", "--speed", "max", "--broker", "127.0.0.1:%d" % port] + [str(a) for a in args]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1]
    return json.loads(line)


def day_run():
    with Mosquitto() as b:
        he = Subscriber(b.port, "meters/SIM00001/#")
        rep = run_sim(b.port, "--duration", 86400)
        time.sleep(0.5)
        he.stop()
    msgs = [(t, p) for t, p in he.messages if t.endswith("/reading") or t.endswith("/event")
            or t.endswith("/profile")]
    # the schedule's messages: load-profile rows (or readings on a meter without a profile)
    readings = [1 for t, _ in msgs if t.endswith("/reading") or t.endswith("/profile")]
    payload = sum(len(p) for _, p in msgs)
    mqtt = sum(publish_bytes(t.encode(), p) + 4 for t, p in msgs)  # + PUBACK
    session = session_bytes("SIM00001")
    pings = 86400 // KEEPALIVE * 4
    wire = mqtt + session + pings
    segments = 2 * len(msgs) + 2 * (86400 // KEEPALIVE) + 8
    tcpip = wire + 40 * 2 * segments
    up = rep["uplink"]
    return {"messages": len(msgs), "readings": len(readings), "payload_B": payload,
            "mqtt_B": wire, "tcpip_B": tcpip, "stall_max_ms": up["stall_max_ms"],
            "stall_where": up["stall_where"], "tx_ms": up["tx_ms"],
            "per_msg_ms": up["tx_ms"] / max(1, up["sent"]),
            "wall_s": rep["wall_s"]}


def outage_run(hours):
    s = int(hours * 3600)
    with Mosquitto() as b:
        he = Subscriber(b.port, "meters/SIM00001/#")
        rep = run_sim(b.port, "--network-outage", "0:%d" % s, "--duration", s + 86400)
        time.sleep(0.5)
        he.stop()
    up = rep["uplink"]
    drains = up["drains"]
    big = max(drains, key=lambda d: d[0]) if drains else (0, None)
    return {"backlog": big[0], "drain_ms": big[1], "stall_max_ms": up["stall_max_ms"],
            "restore_to_drained_ms": up.get("restore_to_drained_ms"),
            "stall_where": up["stall_where"],
            "pending_end": up["pending"], "received": he.count}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--outage-h", type=float, default=72)
    ap.add_argument("--outage-only", action="store_true")
    a = ap.parse_args()
    days = []
    for _ in range(0 if a.outage_only else a.runs):
        days.append(day_run())
        print("day:", days[-1], flush=True)
    outs = []
    for _ in range(a.runs):
        outs.append(outage_run(a.outage_h))
        print("outage:", outs[-1], flush=True)

    def med(rows, k):
        return statistics.median(r[k] for r in rows if r[k] is not None)

    if days:
        print("median day: messages %d, payload %d B, MQTT %d B, with TCP/IP %d B, worst stall "
              "%d ms, publish %.1f ms each" % (
                  med(days, "messages"), med(days, "payload_B"), med(days, "mqtt_B"),
                  med(days, "tcpip_B"), med(days, "stall_max_ms"), med(days, "per_msg_ms")))
    print("median outage %g h: backlog %d, network restore -> drained %d ms (session start "
          "-> drained %d ms), worst stall %d ms" % (
              a.outage_h, med(outs, "backlog"), med(outs, "restore_to_drained_ms"),
              med(outs, "drain_ms"), med(outs, "stall_max_ms")))


if __name__ == "__main__":
    main()
