"""Uplink figures of the wired meter (docs/BENCHMARKS.md "Uplink (wired)"): the virtual
board with the SIM800 model, a real mosquitto and a paho-mqtt head-end.

    .venv/bin/python tools/bench_uplink_wired.py [--runs 3] [--outage-h 72]

1. A day at 15-minute reporting (``--speed max --duration 86400``, network up; the load
   profile P.01's rows on the ``profile`` topic, events on ``event``): messages (profile
   messages, rows, events), payload bytes, MQTT bytes on the wire (exact framing of each
   PUBLISH QoS 1 + its PUBACK, the session's CONNECT/CONNACK/SUBSCRIBE/status and one
   PINGREQ/PINGRESP per keepalive of silence: at most 86400/120 a day), an estimate with
   TCP/IP headers (arithmetic, not measured: 40 B per segment, IPv4 20 B + TCP 20 B without
   options, RFC 791 / RFC 793; one segment per MQTT packet and one bare TCP ACK for each,
   plus the session's handshake and close), the outbox's capacity in days of outage at the
   measured records a day (with 0..32 bus meters' forwarded readings, 2 records each a
   quarter hour), the modem energy a day from the seed's figures (1.5 W stand-by, 2 W while
   transmitting) and the measured transmit time (publish to PUBACK), the uplink's longest
   synchronous section (its worst event-loop stall). The machine's load average is printed
   before and after.
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
    cmd = [os.path.join(ROOT, ".venv", "bin", "micropython"), "-X", "heapsize=4m",
           "firmware/main.py", "--quiet", "--json", "--speed", "max",
           "--broker", "127.0.0.1:%d" % port] + [str(a) for a in args]
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
    prof = [json.loads(p) for t, p in msgs if t.endswith("/profile")]
    rows = sum(len(m["rows"]) for m in prof)
    payload = sum(len(p) for _, p in msgs)
    mqtt = sum(publish_bytes(t.encode(), p) + 4 for t, p in msgs)  # + PUBACK
    session = session_bytes("SIM00001")
    pings = 86400 // KEEPALIVE * 4
    wire = mqtt + session + pings
    # segments: PUBLISH + PUBACK per message, PINGREQ + PINGRESP per keepalive, the
    # session's 6 packets (CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK) and the TCP
    # handshake / close (3 + 4, no payload); every data segment gets a bare ACK
    data_segs = 2 * len(msgs) + 2 * (86400 // KEEPALIVE) + 6
    tcpip = wire + 40 * (2 * data_segs + 7)
    no_ping = wire - pings + 40 * (2 * (data_segs - 2 * (86400 // KEEPALIVE)) + 7)
    up = rep["uplink"]
    cap = up["capacity"]
    per_day = len(msgs)  # outbox records a day (one per message)
    tx_s = up["tx_ms"] / 1000
    return {"messages": len(msgs), "readings": len(readings), "profile_msgs": len(prof),
            "rows": rows, "events": len(msgs) - len(readings), "payload_B": payload,
            "profile_B": sum(len(p) for t, p in msgs if t.endswith("/profile")),
            "mqtt_B": wire, "tcpip_B": tcpip, "tcpip_no_ping_B": no_ping,
            "capacity": cap, "outbox_days": (cap - 6) / per_day,
            "outbox_days_bus": [round((cap - 6) / (per_day + 2 * 96 * n), 2)
                                for n in (0, 1, 2, 3, 8, 32)],
            "stall_max_ms": up["stall_max_ms"], "stall_where": up["stall_where"],
            "tx_ms": up["tx_ms"], "sent": up["sent"],
            "per_msg_ms": up["tx_ms"] / max(1, up["sent"]),
            "energy_Wh": (1.5 * 86400 + 0.5 * tx_s) / 3600, "tx_J": 0.5 * tx_s,
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
    ap.add_argument("--day-only", action="store_true")
    a = ap.parse_args()
    print("load average before: %.2f %.2f %.2f" % os.getloadavg(), flush=True)
    days = []
    for _ in range(0 if a.outage_only else a.runs):
        days.append(day_run())
        print("day:", days[-1], flush=True)
    outs = []
    for _ in range(0 if a.day_only else a.runs):
        outs.append(outage_run(a.outage_h))
        print("outage:", outs[-1], flush=True)

    def med(rows, k):
        return statistics.median(r[k] for r in rows if r[k] is not None)

    if days:
        print("median day: messages %d (profile %d with %d rows, events %d), payload %d B "
              "(profile %d B), MQTT %d B, with TCP/IP %d B (without the pings %d B), worst "
              "stall %d ms, transmit %d ms (%.1f ms a publish), modem %.4f Wh (+%.3f J "
              "transmitting), outbox %d records = %.2f days of outage (with 0, 1, 2, 3, 8, 32 "
              "bus meters: %s days)" % (
                  med(days, "messages"), med(days, "profile_msgs"), med(days, "rows"),
                  med(days, "events"), med(days, "payload_B"), med(days, "profile_B"),
                  med(days, "mqtt_B"), med(days, "tcpip_B"), med(days, "tcpip_no_ping_B"),
                  med(days, "stall_max_ms"), med(days, "tx_ms"), med(days, "per_msg_ms"),
                  med(days, "energy_Wh"), med(days, "tx_J"), med(days, "capacity"),
                  med(days, "outbox_days"), days[len(days) // 2]["outbox_days_bus"]))
    if a.day_only:
        print("load average after: %.2f %.2f %.2f" % os.getloadavg())
        return
    print("median outage %g h: backlog %d, network restore -> drained %d ms (session start "
          "-> drained %d ms), worst stall %d ms" % (
              a.outage_h, med(outs, "backlog"), med(outs, "restore_to_drained_ms"),
              med(outs, "drain_ms"), med(outs, "stall_max_ms")))
    print("load average after: %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
