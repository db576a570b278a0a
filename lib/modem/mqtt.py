"""umqtt.simple's ``MQTTClient`` with these changes, the library itself left unmodified:

1. **Packet ids wrap 65535 -> 1.** umqtt.simple increments ``self.pid`` without bound; on
   MicroPython ``struct.pack_into("!H", ..., 65536)`` writes 0, the PUBACK compare uses the
   unwrapped int, so the 65 536th QoS 1 publish (or subscribe) sends id 0 (not allowed, MQTT
   3.1.1 2.3.1) and never matches its PUBACK: it blocks until the socket times out, or
   forever, or (mosquitto) the broker drops the connection (umqtt/simple.py 1.3.4, ``pid``).
   Here ``pid`` is a property whose setter folds any value above 65535 back into 1..65535,
   so the library's own ``self.pid += 1`` goes 65534, 65535, 1, 2, ...
2. **Incoming messages bounded** (``wait_msg``): a PUBLISH from the broker whose topic and
   payload exceed ``max_msg`` (1024 bytes) is read in 256-byte pieces, acknowledged (QoS 1)
   and discarded (counted in ``discarded``), never handed to the callback. umqtt.simple
   reads the payload in one ``sock.read(n)``: past the modem's receive buffer (2 KiB) that
   read never completed, timed out and ended the session, and a retained one on the
   command topic came again at every SUBSCRIBE: one message kept the meter offline.
3. **Stray packets skipped** (``check_msg``) and PINGRESPs counted (``pongs``), below.
4. **A network of choice.** ``net``: an object with the ``socket`` module's ``socket()`` and
   ``getaddrinfo()`` (modem.sock.ModemNet for the modem; None = the real ``socket``
   module). ``connect()`` lends it to umqtt.simple's own ``connect()`` for the duration of
   the call, so the CONNECT packet is built by the library as it is.

The library comes from PyPI ``micropython-umqtt.simple`` 1.3.4 (micropython-lib), installed
at set-up time into ``.frozen-lib/`` (``tools/setup_uplink.py``), never committed; on a board
``mpremote mip install umqtt.simple``.
"""

try:
    import usocket  # noqa: F401  (umqtt.simple imports it at module level)
except ImportError:  # a port without a network stack (RPI_PICO, most STM32 boards): the
    # modem is the network here; umqtt.simple still imports, and connect() needs ``net``
    import sys

    class _NoSocket:
        def socket(self, *_a):
            raise OSError("this port has no socket module: give MQTTClient a net "
                          "(modem.sock.ModemNet)")

        getaddrinfo = socket

    sys.modules["usocket"] = _NoSocket()

import umqtt.simple as _simple  # noqa: E402


class MQTTClient(_simple.MQTTClient):
    def __init__(self, client_id, server, port=0, net=None, **kw):
        self._pid = 0
        self.net = net
        super().__init__(client_id, server, port, **kw)

    def _get_pid(self):
        return self._pid

    def _set_pid(self, v):
        self._pid = v if v <= 0xFFFF else (v - 1) % 0xFFFF + 1

    pid = property(_get_pid, _set_pid)

    max_msg = 1024  # topic + payload bytes of a PUBLISH handed to the callback, at most
    discarded = 0  # PUBLISHes discarded for being longer
    pongs = 0  # PINGRESPs received (the caller times its PINGREQs out on this)
    strays = 0  # packets nobody waited for, skipped by check_msg

    def _skip(self, n):
        while n > 0:
            k = n if n < 256 else 256
            self.sock.read(k)
            n -= k

    def wait_msg(self):
        """umqtt.simple's ``wait_msg`` (1.3.4: one incoming packet; a PUBLISH to the callback,
        acknowledged at QoS 1; other packets' type returned for the caller to read), with a
        PUBLISH longer than ``max_msg`` skipped (acknowledged, not handed on) and protocol
        errors raised as OSError instead of ``assert``."""
        s = self.sock
        res = s.read(1)
        s.setblocking(True)
        if res is None:
            return None
        if res == b"":
            raise OSError(-1)
        if res == b"\xd0":  # PINGRESP
            if s.read(1)[0] != 0:
                raise OSError(-1)
            self.pongs += 1
            return None
        op = res[0]
        if op & 0xF0 != 0x30:
            return op
        sz = self._recv_len()
        tl = s.read(2)
        tl = (tl[0] << 8) | tl[1]
        qos = op & 6  # (the QoS bits: 2 is QoS 1, 4 QoS 2, 6 not allowed)
        sz -= tl + 2 + (2 if qos else 0)
        if sz < 0 or qos == 6:
            raise OSError(-1)
        if tl + sz > self.max_msg:
            self._skip(tl)
            topic = None
        else:
            topic = s.read(tl)
        if qos:
            pid = s.read(2)
            pid = pid[0] << 8 | pid[1]
        if topic is None:
            self._skip(sz)
            self.discarded += 1
        else:
            self.cb(topic, s.read(sz))
        if qos == 4:
            raise OSError(-1)  # (QoS 2 is never subscribed to; the library asserted)
        if qos:
            s.write(bytes((0x40, 2, pid >> 8, pid & 0xFF)))

    def check_msg(self):
        """umqtt.simple's non-blocking poll for one packet, with a packet that nobody waits
        for (a PUBACK that came late or twice, a stray SUBACK) read whole and dropped (counted
        in ``strays``): umqtt.simple returns its type and leaves the rest in the stream,
        where its bytes were then taken for packet types (a packet id byte 0x30..0x3F for a
        PUBLISH header) until a read timed out and the session ended."""
        op = super().check_msg()
        if op is not None:
            self._skip(self._recv_len())
            self.strays += 1
        return op

    def connect(self, *args, **kw):
        if self.net is None:
            return super().connect(*args, **kw)
        saved = _simple.socket
        _simple.socket = self.net
        try:
            return super().connect(*args, **kw)
        finally:
            _simple.socket = saved
