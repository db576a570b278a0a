"""umqtt.simple (unmodified, PyPI micropython-umqtt.simple 1.3.4 from .frozen-lib) over the
socket adapter (lib/modem/sock.py) over the manager and the SIM800 model, with an in-memory
MQTT peer; the packet-id wrap fix (lib/modem/mqtt.py) and the unfixed library's failure."""

import errno

from modemkit import MICROPYTHON, MiniBroker, Rig, add_frozen_lib

add_frozen_lib()

from modem.mqtt import MQTTClient  # noqa: E402  (first: on a port without sockets it
from modem.sock import ModemNet, ModemSocket  # noqa: E402  lets umqtt.simple import)

import umqtt.simple as simple  # noqa: E402, I001


class Net:
    def __init__(self, broker=None, **kw):
        self.broker = broker or MiniBroker()
        self.r = Rig(peer=self.broker)
        self.r.m.start(0)
        self.r.run_until(lambda: self.r.m.state == 10, 20000)  # READY
        kw.setdefault("idle", self.idle)
        kw.setdefault("connect_ms", 120000)
        self.net = ModemNet(self.r.link, **kw)

    def idle(self):
        self.r.clock.advance(2)

    def client(self, cls=MQTTClient, **kw):
        if cls is MQTTClient:
            return MQTTClient(b"cm1", "broker", 1883, net=self.net, **kw)
        c = cls(b"cm1", "broker", 1883, **kw)
        saved = simple.socket
        simple.socket = self.net
        try:
            c.connect()
        finally:
            simple.socket = saved
        return c


def test_umqtt_qos1_publish_over_the_modem_one_send_per_packet():
    n = Net()
    c = n.client()
    assert c.connect() == 0
    for i in range(20):
        c.publish(b"meters/SIM00001/profile", b'{"seq":%d}' % i, qos=1)
    assert n.broker.ids == list(range(1, 21))
    assert n.broker.payloads[-1] == b'{"seq":19}'
    assert n.r.sent(b"AT+CIPSEND=0,") == 21, "CONNECT + 20 PUBLISH, five writes each"
    c.publish(b"t", b"qos0")
    c.disconnect()
    n.r.run_until(lambda: n.r.m.state == 10, 5000)
    assert n.broker.payloads[-1] == b"qos0" and n.broker.far_closed
    assert n.r.m.failures == 0, "an orderly close is not a failure"


def test_packet_ids_wrap_65535_to_1():
    n = Net()
    c = n.client()
    c.connect()
    c.pid = 65533
    for _ in range(4):
        c.publish(b"t", b"x", qos=1)
    assert n.broker.ids == [65534, 65535, 1, 2], n.broker.ids
    c.pid = 65535
    c.set_callback(lambda t, m: None)
    c.subscribe(b"meters/SIM00001/cmd", qos=1)  # SUBACK for id 1
    assert c.pid == 1
    c.pid = 65536 * 3 + 7
    assert 1 <= c.pid <= 65535


def test_unfixed_umqtt_blocks_on_publish_65536():
    n = Net(max_block_ms=3000)
    c = n.client(cls=simple.MQTTClient)
    c.pid = 65535
    try:
        c.publish(b"t", b"x", qos=1)
        raise AssertionError("the unfixed library did not fail")
    except AssertionError:
        raise
    except Exception as e:  # noqa: BLE001
        if MICROPYTHON:
            # id 0 on the wire, PUBACK(0) never matches 65536: the read times out
            assert isinstance(e, OSError) and e.args[0] == errno.ETIMEDOUT, repr(e)
            assert n.broker.ids == [0], n.broker.ids
        # CPython: struct.pack_into refuses 65536 (struct.error) before sending


def test_check_msg_nonblocking_and_incoming_publish():
    n = Net()
    c = n.client()
    c.connect()
    got = []
    c.set_callback(lambda t, m: got.append((t, m)))
    c.subscribe(b"meters/SIM00001/cmd", qos=0)
    assert c.check_msg() is None
    n.broker.reply(b"\x30\x0c\x00\x03cmdreadout")
    n.r.run_until(lambda: n.r.m.rx_available() or not n.r.m._rx_flag, 100)
    for _ in range(200):
        c.check_msg()
        if got:
            break
        n.idle()
    assert got == [(b"cmd", b"readout")], got


def test_link_loss_raises_and_reconnect_gets_a_fresh_link():
    n = Net()
    c = n.client()
    c.connect()
    g = n.r.m.gen
    n.r.model.remote_close()
    try:
        c.publish(b"t", b"x", qos=1)
        raise AssertionError("publish on a closed link")
    except OSError as e:
        assert e.args[0] == errno.ECONNRESET, e
    c.connect()  # waits out the backoff, then a new TCP connection
    assert n.r.m.gen == g + 1 and len(n.r.connects) == 2
    c.publish(b"t", b"y", qos=1)
    assert n.broker.payloads[-1] == b"y"


def test_reconnect_while_up_opens_a_new_tcp_connection():
    n = Net()
    c = n.client()
    c.connect()
    c.connect()  # MQTT-level reconnect over a link that is still up
    assert len(n.r.connects) == 2 and n.r.m.gen == 2
    c.publish(b"t", b"z", qos=1)


def test_blocking_waits_are_bounded():
    n = Net(max_block_ms=5000)
    s = n.net.socket()
    s.connect(("broker", 1883))
    s.settimeout(None)
    t0 = n.r.clock.t
    try:
        s.read(1)
        raise AssertionError("read returned")
    except OSError as e:
        assert e.args[0] == errno.ETIMEDOUT
    assert 5000 <= n.r.clock.t - t0 <= 5100
    s.settimeout(0.5)
    t0 = n.r.clock.t
    try:
        s.read(4)
        raise AssertionError("read returned")
    except OSError as e:
        assert e.args[0] == errno.ETIMEDOUT
    assert 500 <= n.r.clock.t - t0 <= 600
    s.setblocking(False)
    assert s.read(1) is None


def test_exact_reads_and_write_with_length():
    n = Net()
    s = ModemSocket(n.r.link, idle=n.idle)
    s.connect(("broker", 1883))
    s.write(b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01xJUNK", 15)
    assert s.read(2) == b"\x20\x02" and s.read(2) == b"\x00\x00"
    s.close()
    try:
        s.write(b"x")
        raise AssertionError("write after close")
    except OSError:
        pass
