"""Test kit for the modem uplink (host_tests/unit/test_modem_*.py), CPython and MicroPython:
a fake ms clock, in-memory TCP peers for the SIM800 model (an echo peer and a small MQTT
3.1.1 broker that records packet ids), and a rig (model + manager + link) stepped in
simulated time."""

import os
import sys

from boards.sim.modem import Sim800Model
from modem import manager as M
from modem.link import Link
from modem.sim800 import Sim800

MICROPYTHON = sys.implementation.name == "micropython"


def add_frozen_lib():
    """Put .frozen-lib (umqtt.simple, installed by tools/setup_uplink.py) on the path;
    on CPython also alias the u-modules umqtt.simple 1.3.4 imports. Nothing to do where it
    is frozen in (the emulated cores, tools/emu)."""
    if MICROPYTHON:
        try:
            import modem.mqtt  # noqa: F401  (imports umqtt.simple)

            return
        except ImportError:
            for m in ("modem.mqtt", "umqtt.simple", "umqtt"):
                sys.modules.pop(m, None)
    here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    root = here + "/../.."
    p = root + "/.frozen-lib"
    try:
        os.stat(p + "/umqtt/simple.py")
        found = True
    except OSError:
        found = False
    assert found, "umqtt.simple missing: run `make uplink-lib`"
    if p not in sys.path:
        sys.path.append(p)
    if not MICROPYTHON:
        import binascii
        import socket
        import struct

        sys.modules.setdefault("usocket", socket)
        sys.modules.setdefault("ustruct", struct)
        sys.modules.setdefault("ubinascii", binascii)


class Clock:
    def __init__(self, t=0):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, ms):
        self.t = (self.t + ms) & 0x3FFFFFFF


class UplinkClock:
    """The board clock an Uplink reads (``time``, ``ticks_ms``, ``ticks_diff``), ``t`` ms
    from 2016-01-01 00:00:00 UTC, set by the test."""

    def __init__(self):
        self.t = 0

    def time(self):
        return 504921600 + self.t // 1000

    def ticks_ms(self):
        return self.t

    def ticks_diff(self, a, b):
        return a - b


class UplinkBoard:
    """The board an Uplink needs: the rig's SIM800 model as ``uart_modem`` and its
    ``modem_pwrkey``, an :class:`UplinkClock`; ``leds``: the (signal, modem) status LEDs,
    or none."""

    def __init__(self, rig, leds=None):
        self.uart_modem = rig.model
        self.modem_pwrkey = rig.model.pwrkey
        self.clock = UplinkClock()
        if leds is not None:
            self.uplink_leds = leds


class UplinkCatalogue:
    """The two registers a reading needs, in the catalogue's shape (``codes``, ``entry``,
    ``value``; ``write`` keeps what was written in ``written``)."""

    def codes(self, access):
        return ["1.8.0", "2.8.0"]

    def entry(self, code):
        return (code, 1, "kWh", 3, 1, 0)

    def value(self, e):
        return 12345 if e[0] == "1.8.0" else 0

    def write(self, obis, value, src):
        self.written = (obis, value, src)


def run_uplink(r, up, cond, max_ms=60000):
    """Step the uplink ``up`` on the rig ``r`` (10 ms a round) until ``cond()``;
    AssertionError past ``max_ms``."""
    t0 = r.clock.t
    while not cond():
        up.step()
        r.advance(10)
        assert r.clock.t - t0 < max_ms, "not reached: %s %r" % (r.m.state_name, up.stats())


def uplink_rig(broker=None):
    """An Uplink (serial SIM00001, broker ("broker", 1883)) on a SIM800 model rig with
    ``broker`` (a :class:`MiniBroker` by default), an 8 x 4 KiB NOR outbox and an event log;
    the link opened. Returns ``(rig, broker, uplink, outbox, log)``."""
    from boards.sim.norflash import NORFlash
    from events import EventLog
    from flashstore.flash import Partition
    from uplink.outbox import Outbox
    from uplink.task import Uplink

    if broker is None:
        broker = MiniBroker()
    r = Rig(peer=broker)
    b = UplinkBoard(r)
    log = EventLog(b.clock)
    ob = Outbox(Partition(NORFlash(8 * 4096), 0, 8 * 4096))
    ob.mount()
    up = Uplink(b, UplinkCatalogue(), log, ob, "SIM00001", ("broker", 1883), link=r.link,
                idle=lambda: r.clock.advance(2))
    r.m.open("broker", 1883, 0)
    return r, broker, up, ob, log


class Peer:
    """In-memory TCP peer: what the modem sends lands in ``inbox``; ``reply(b)`` queues
    bytes for the modem; ``hangup()`` closes from the far end."""

    def __init__(self):
        self.inbox = bytearray()
        self.out = bytearray()
        self.closed = False
        self.far_closed = False

    def send(self, b):
        if self.closed:
            raise OSError(32)
        self.inbox.extend(b)
        self.on_data()
        return len(b)

    def recv(self, n):
        if self.out:
            d = bytes(self.out[:n])
            self.out = self.out[n:]
            return d
        if self.far_closed:
            return b""
        raise OSError(11)

    def close(self):
        self.closed = True

    def reopen(self):
        """A new TCP connection to the same peer (its records are kept)."""
        self.inbox = bytearray()
        self.out = bytearray()
        self.closed = False
        self.far_closed = False

    def reply(self, b):
        self.out.extend(b)

    def hangup(self):
        self.far_closed = True

    def on_data(self):
        pass


class Echo(Peer):
    def on_data(self):
        self.out.extend(self.inbox)
        self.inbox = bytearray()


class MiniBroker(Peer):
    """Enough MQTT 3.1.1 for umqtt.simple: CONNACK, PUBACK (same id), SUBACK, PINGRESP.
    ``ids``: packet ids of the QoS 1 PUBLISHes received; ``payloads``: their payloads."""

    def __init__(self, ack=True):
        super().__init__()
        self.ids = []
        self.payloads = []
        self.topics = []  # the topic of each payload
        self.ack = ack
        self.packets = 0

    def on_data(self):
        while True:
            b = self.inbox
            if len(b) < 2:
                return
            n = 0
            sh = 0
            i = 1
            while True:
                if i >= len(b):
                    return
                c = b[i]
                n |= (c & 0x7F) << sh
                i += 1
                if not c & 0x80:
                    break
                sh += 7
            if len(b) < i + n:
                return
            t = b[0]
            body = bytes(b[i:i + n])
            self.inbox = b[i + n:]
            self.packets += 1
            self._packet(t, body)

    def _packet(self, t, body):
        kind = t >> 4
        if kind == 1:
            self.reply(b"\x20\x02\x00\x00")
        elif kind == 3:
            tl = (body[0] << 8) | body[1]
            j = 2 + tl
            if (t >> 1) & 3:
                pid = (body[j] << 8) | body[j + 1]
                j += 2
                self.ids.append(pid)
                if self.ack:
                    self.reply(bytes((0x40, 2, pid >> 8, pid & 0xFF)))
            self.payloads.append(body[j:])
            self.topics.append(bytes(body[2:2 + tl]))
        elif kind == 8:
            self.reply(bytes((0x90, 3, body[0], body[1], 0)))
        elif kind == 12:
            self.reply(b"\xd0\x00")
        elif kind == 14:
            self.hangup()


class Rig:
    """Sim800Model + Manager + Link on a fake clock. ``peers``: what each CIPSTART
    connects to (a list consumed in order; the last one repeats; an exception instance is
    raised to refuse)."""

    def __init__(self, model_kw=None, mgr_kw=None, peer=None, t0=0):
        self.clock = Clock(t0)
        self.peer = peer if peer is not None else Echo  # a class: a new peer per connect
        self.last_peer = None
        self.refuse = False
        self.connects = []
        kw = {"now_ms": self.clock, "connect": self._connect}
        kw.update(model_kw or {})
        self.model = Sim800Model(**kw)
        self.events = []
        mk = {"apn": "internet", "rand": lambda n: n // 2,
              "on_event": lambda a, b: self.events.append((self.clock.t, a, b))}
        mk.update(mgr_kw or {})
        self.m = M.Manager(Sim800(), **mk)
        self.link = Link(self.model, self.model.pwrkey, self.m, ticks_ms=self.clock)
        self.states = []  # (t, state name) at each change

    def _connect(self, host, port):
        self.connects.append((host, port))
        if self.refuse:
            raise OSError(111)
        if isinstance(self.peer, type):
            p = self.peer()
        else:
            p = self.peer
            p.reopen()
        self.last_peer = p
        return p

    def service(self):
        self.link.service()
        name = self.m.state_name
        if not self.states or self.states[-1][1] != name:
            self.states.append((self.clock.t, name))

    def advance(self, ms=10):
        if self.m.state == M.BACKOFF:  # jump to the end of a backoff
            w = self.m.wake_ms(self.clock.t)
            ms = w if w > ms else ms
        self.clock.advance(ms)

    def step(self, ms=10):
        self.service()
        self.advance(ms)

    def run_until(self, cond, max_ms, ms=10):
        """Step until cond() holds (checked after each service); returns the simulated ms
        it took (AssertionError past max_ms)."""
        t0 = self.clock.t
        while True:
            self.service()
            if cond():
                return self.clock.t - t0
            if self.clock.t - t0 > max_ms:
                raise AssertionError("not reached in %d ms; state %s reason %s states %s" % (
                    max_ms, self.m.state_name, self.m.reason, self.states[-8:]))
            self.advance(ms)

    def up(self, host="broker", port=1883, max_ms=30000):
        self.m.open(host, port, self.clock.t)
        return self.run_until(lambda: self.m.connected, max_ms)

    def idle(self):
        self.clock.advance(1)

    def sent(self, prefix):
        """How many model log lines start with prefix (the model keeps the last 64)."""
        return len([x for x in self.model.log if x.startswith(prefix)])
