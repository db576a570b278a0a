"""Uplink figures (docs/BENCHMARKS.md), on the MicroPython unix port:

    MICROPYPATH=.frozen:.frozen-lib:lib:. .venv/bin/micropython tools/bench_uplink.py

1. Bytes per MQTT QoS 1 publish of a typical message (a 15-minute load-profile row as the
   schedule sends it on ``meters/<16-character LDN>/profile``), measured through the whole
   path: umqtt.simple -> socket adapter -> manager -> AT engine -> SIM800 model, with an
   in-memory broker peer that answers PUBACK: the JSON payload, the MQTT packets on TCP
   (PUBLISH, PUBACK: the model's TCP byte counters) and the bytes on the modem UART each
   way (AT commands, prompt, answers, URC, the CIPRXGET read). IP/TCP header bytes are
   arithmetic, not measured (see the printout).
2. The AT engine's CPU cost per received byte (``AtEngine.feed``), median of 7 runs, for a
   line stream (answers and URCs) and for binary reads (``+CIPRXGET: 2`` + 1460 data
   bytes), as ratios: to a bare ``for b in data: pass`` loop over the same bytes on the same
   interpreter (a ratio that carries over to an MCU roughly), and to the time one byte
   takes on the wire at 115 200 Bd (86.8 us; on this host, not on an MCU).
"""

import sys
import time

from boards.sim.modem import Sim800Model
from modem import at as A
from modem import manager as M
from modem.link import Link
from modem.mqtt import MQTTClient
from modem.sim800 import Sim800
from modem.sock import ModemNet

LDN = "OMF0000012345678"
# one 15-minute row of the default load profile P.01 (6 channels) as the schedule sends it
# (firmware/uplink/messages.py profile_head + profile_row, with its seq; docs/UPLINK.md)
ROW = (b'{"seq":12345,"profile":"P.01","period_s":900,"channels":[["1.29","kWh"],'
       b'["2.29","kWh"],["3.29","kvarh"],["4.29","kvarh"],["1.5","kW"],["32.7","V"]],'
       b'"rows":[["2026-12-01T06:45:00Z",0,[0.123,0.000,0.010,0.000,0.492,230.1]]]}')
N = 200


class Clock:
    t = 0

    def __call__(self):
        return self.t


class Broker:
    def __init__(self):
        self.inbox = bytearray()
        self.out = bytearray()
        self.closed = False

    def send(self, b):
        self.inbox.extend(b)
        while len(self.inbox) >= 2:
            n = i = 0
            while True:  # remaining length (MQTT 3.1.1 2.2.3)
                i += 1
                if i >= len(self.inbox):
                    return len(b)
                n |= (self.inbox[i] & 0x7F) << (7 * (i - 1))
                if not self.inbox[i] & 0x80:
                    break
            if len(self.inbox) < i + 1 + n:
                break
            t = self.inbox[0] >> 4
            body = self.inbox[i + 1:i + 1 + n]
            self.inbox = self.inbox[i + 1 + n:]
            if t == 1:
                self.out.extend(b"\x20\x02\x00\x00")
            elif t == 3:
                tl = (body[0] << 8) | body[1]
                self.out.extend(bytes((0x40, 2, body[2 + tl], body[3 + tl])))
        return len(b)

    def recv(self, n):
        if self.out:
            d = bytes(self.out[:n])
            self.out = self.out[n:]
            return d
        raise OSError(11)

    def close(self):
        self.closed = True


def wire_bytes():
    clk = Clock()
    model = Sim800Model(now_ms=clk, connect=lambda h, p: Broker(), powered=True)
    m = M.Manager(Sim800(), apn="internet")
    link = Link(model, model.pwrkey, m, ticks_ms=clk)

    def idle():
        clk.t += 1

    m.start(0)
    while m.state != M.READY:
        link.service()
        idle()
    c = MQTTClient(LDN.encode(), "broker", 1883, net=ModemNet(link, idle=idle), keepalive=300)
    c.connect()
    topic = b"meters/" + LDN.encode() + b"/profile"
    c.publish(topic, ROW, qos=1)  # warm-up: the first data announcement etc.
    s0 = (model.tcp_sent, model.tcp_received, model.uart_in, model.uart_out, m.eng.commands)
    for _ in range(N):
        c.publish(topic, ROW, qos=1)
    s1 = (model.tcp_sent, model.tcp_received, model.uart_in, model.uart_out, m.eng.commands)
    d = [(s1[i] - s0[i]) / N for i in range(len(s0))]
    plen = len(ROW)
    rem = 2 + len(topic) + 2 + plen
    publish = 1 + (1 if rem < 128 else 2) + rem
    print("1. bytes per MQTT QoS 1 publish (N=%d, through the SIM800 model)" % N)
    print("   topic %s (%d B), JSON payload %d B" % (topic.decode(), len(topic), plen))
    print("   MQTT PUBLISH on TCP: %.0f B (computed %d = 1 + %d remaining-length + 2 + %d topic"
          " + 2 packet id + %d payload)" % (d[0], publish, 1 if rem < 128 else 2, len(topic),
                                           plen))
    print("   MQTT PUBACK on TCP: %.0f B" % d[1])
    print("   modem UART MCU->modem: %.0f B, modem->MCU: %.0f B, AT commands: %.1f" % (
        d[2], d[3], d[4]))
    print("   + IPv4/TCP headers (arithmetic): 40 B per segment without options, 52 B with "
          "timestamps; >= 2 segments (PUBLISH, PUBACK) -> >= %d..%d B, plus up to 2 bare "
          "ACKs" % (d[0] + d[1] + 80, d[0] + d[1] + 104))
    return d


def _median(v):
    v = sorted(v)
    return v[len(v) // 2]


def _time(f):
    ts = []
    for _ in range(7):
        t = time.ticks_us()
        f()
        ts.append(time.ticks_diff(time.ticks_us(), t))
    return _median(ts)


def engine_cost():
    p = Sim800()
    lines = (b"\r\n+CSQ: 17,0\r\n\r\nOK\r\n\r\n+CIPRXGET: 1,0\r\n\r\nDATA ACCEPT:0,120\r\n"
             b"\r\n0, CLOSED\r\n\r\n+CREG: 0,1\r\n\r\nOK\r\n\r\nSHUT OK\r\n\r\nCall Ready\r\n")
    stream = lines * 400
    data = bytes(range(256)) * 6
    block = (b"\r\n+CIPRXGET: 2,0,1460,0\r\n" + data[:1460] + b"\r\nOK\r\n")
    nblocks = 40

    def feed_lines():
        e = A.AtEngine(urc=p.urc_kind)
        for i in range(0, len(stream), 64):
            e.feed(stream[i:i + 64], 0)

    def feed_binary():
        e = A.AtEngine(urc=p.urc_kind)
        for _ in range(nblocks):
            e.submit(p.read(1460), 0)
            e.tx()
            for i in range(0, len(block), 256):
                e.feed(block[i:i + 256], 0)

    def bare_lines():
        for i in range(0, len(stream), 64):
            for _b in stream[i:i + 64]:
                pass

    def bare_binary():
        for _ in range(nblocks):
            for i in range(0, len(block), 256):
                for _b in block[i:i + 256]:
                    pass

    nl = len(stream)
    nb = len(block) * nblocks
    tl, tb = _time(feed_lines), _time(feed_binary)
    bl, bb = _time(bare_lines), _time(bare_binary)
    print("2. AT engine CPU per received byte (median of 7, %s)" % sys.implementation.name)
    for name, t, b, n in (("lines (answers + URCs, 64-byte reads)", tl, bl, nl),
                          ("binary reads (+CIPRXGET: 2 + 1460 B, 256-byte reads)", tb, bb, nb)):
        us = t / n
        print("   %s: %.3f us/B = %.2f x a bare per-byte loop (%.3f us/B), %.2f %% of a "
              "byte time at 115200 Bd" % (name, us, t / b, b / n, 100 * us / 86.8))


def main():
    wire_bytes()
    engine_cost()


main()
