# MicroPython program for host_tests/system/test_uplink_core.py (runs on the unix port).
"""Uplink scenarios against a real MQTT broker on 127.0.0.1:PORT; one JSON line per event
and a JSON summary as the last line.

    MICROPYPATH=.frozen:.frozen-lib:lib:. micropython host_tests/system/uplink_mp.py \\
        outage PORT COUNT | pidwrap PORT COUNT | unfixed PORT | modemwrap PORT

``outage``: SIM800 model + manager + link + socket adapter + umqtt.simple (our subclass):
    publish COUNT QoS 1 messages ``{"seq": n, ...}``; after COUNT/4 the model's network goes
    down with ``+PDP: DEACT`` for 6 s, after COUNT/2 it goes down silently (the link looks
    open, data is black-holed) for 6 s. Each message is published until its PUBACK arrives
    (at-least-once; after an OSError the client reconnects, which waits for the manager).
``pidwrap``: umqtt.simple (our subclass) over a plain socket (TCP_NODELAY), COUNT QoS 1
    publishes from packet id 1 (past 65 535: the wire id wraps to 1).
``unfixed``: the library's own MQTTClient with its id at 65 534: one publish (65 535) is
    acked, the next (wire id 0) fails.
``modemwrap``: like pidwrap but through the modem path, 12 publishes from id 65 530.
"""

import json
import sys
import time

from boards.sim.modem import Sim800Model
from modem import manager as M
from modem.link import Link
from modem.mqtt import MQTTClient
from modem.sim800 import Sim800
from modem.sock import ModemNet

T0 = time.ticks_ms()
TOPIC = b"meters/SIM00001/profile"


def ms():
    return time.ticks_diff(time.ticks_ms(), T0)


def out(**kw):
    print(json.dumps(kw))


def modem_rig(port):
    model = Sim800Model(delays={"boot": 500, "reg": 500, "ciicr": 200, "connect": 100,
                                "connect_fail": 800, "sim": 100})

    def on_event(name, detail):
        out(t=ms(), ev=name, detail=detail)

    m = M.Manager(Sim800(), apn="internet", on_event=on_event, backoff_base_ms=1000,
                  backoff_cap_ms=8000, reg_ms=3000, stable_ms=5000, boot_ms=700,
                  sync_ms=3000)
    link = Link(model, model.pwrkey, m)
    return model, m, link


def outage(port, count):
    model, m, link = modem_rig(port)
    sched = []  # (due ms, action)
    downs = []

    def idle():
        time.sleep_ms(1)
        now = ms()
        while sched and now >= sched[0][0]:
            _, what = sched.pop(0)
            if what == "up":
                model.network_up()
            else:
                model.network_down(what)
            downs.append((now, what))
            out(t=now, net=what)

    net = ModemNet(link, max_block_ms=4000, connect_ms=4000, idle=idle)
    c = MQTTClient(b"SIM00001", "127.0.0.1", port, net=net, keepalive=120)
    t_start = ms()
    m.start(time.ticks_ms())
    reconnects = 0
    attempts = 0
    connected = False
    seq = 0
    acked_at = []
    planned = 0
    while seq < count:
        if seq == count // 4 and planned == 0 or seq == count // 2 and planned == 1:
            planned += 1
            sched.append((ms(), "deact" if planned == 1 else "silent"))
            sched.append((ms() + 6000, "up"))
        if ms() - t_start > 240000:
            break
        try:
            if not connected:
                c.connect()
                connected = True
                reconnects += 1
            attempts += 1
            c.publish(TOPIC, b'{"seq":%d,"1.8.0":%d,"2.8.0":%d}' % (seq, 1234567 + seq, seq),
                      qos=1)
            acked_at.append(ms())
            seq += 1
        except OSError as e:
            connected = False
            out(t=ms(), oserror=e.args[0] if e.args else -1, seq=seq, state=m.state_name)
            idle()
    try:
        c.disconnect()
    except OSError:
        pass
    out(summary=True, published=seq, attempts=attempts, connects=reconnects,
        downs=downs, acked_at=acked_at, history=[list(h) for h in m.history],
        power_cycles=m.power_cycles, failures=m.failures, state=m.state_name,
        tcp_connects=model.tcp_connects, uart_in=model.uart_in, uart_out=model.uart_out,
        eng={"stray": m.eng.stray, "late": m.eng.late, "garbage": m.eng.garbage,
             "timeouts": m.eng.timeouts, "commands": m.eng.commands})


def pidwrap(port, count):
    c = MQTTClient(b"wrap", "127.0.0.1", port)
    c.connect()
    c.sock.setsockopt(6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY: umqtt writes a packet in pieces
    t = time.ticks_ms()
    near = []
    for i in range(count):
        c.publish(b"wrap/t", b"%d" % i, qos=1)
        if i >= 65530 or i < 3:
            near.append(c.pid)
    dt = time.ticks_diff(time.ticks_ms(), t)
    c.disconnect()
    out(summary=True, published=count, ms=dt, pids=near, last_pid=c.pid)


def unfixed(port):
    import umqtt.simple as simple

    c = simple.MQTTClient(b"unfixed", "127.0.0.1", port)
    c.connect()
    c.sock.settimeout(5)
    c.pid = 65534
    c.publish(b"wrap/u", b"65535", qos=1)
    first = c.pid
    try:
        c.publish(b"wrap/u", b"65536", qos=1)
        err = None
    except Exception as e:  # OSError (broker closed the link / timeout)
        err = repr(e)
    out(summary=True, first_ok_pid=first, second_error=err)


def modemwrap(port):
    model, m, link = modem_rig(port)
    m.start(time.ticks_ms())
    c = MQTTClient(b"SIM00002", "127.0.0.1", port, net=ModemNet(link, connect_ms=30000))
    c.connect()
    c.pid = 65530
    pids = []
    for i in range(12):
        c.publish(b"wrap/m", b"%d" % i, qos=1)
        pids.append(c.pid)
    c.disconnect()
    out(summary=True, pids=pids, sends=m.eng.commands)


def main():
    what = sys.argv[1]
    port = int(sys.argv[2])
    if what == "outage":
        outage(port, int(sys.argv[3]))
    elif what == "pidwrap":
        pidwrap(port, int(sys.argv[3]))
    elif what == "unfixed":
        unfixed(port)
    elif what == "modemwrap":
        modemwrap(port)


main()
