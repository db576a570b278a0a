"""umqtt.simple's ``MQTTClient`` with two changes, the library itself left unmodified:

1. **Packet ids wrap 65535 -> 1.** umqtt.simple increments ``self.pid`` without bound; on
   MicroPython ``struct.pack_into("!H", ..., 65536)`` writes 0, the PUBACK compare uses the
   unwrapped int, so the 65 536th QoS 1 publish (or subscribe) sends id 0 (not allowed, MQTT
   3.1.1 2.3.1) and never matches its PUBACK: it blocks until the socket times out, or
   forever, or (mosquitto) the broker drops the connection (umqtt/simple.py 1.3.4, ``pid``).
   Here ``pid`` is a property whose setter folds any value above 65535 back into 1..65535,
   so the library's own ``self.pid += 1`` goes 65534, 65535, 1, 2, ...
2. **A network of choice.** ``net``: an object with the ``socket`` module's ``socket()`` and
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

    def connect(self, *args, **kw):
        if self.net is None:
            return super().connect(*args, **kw)
        saved = _simple.socket
        _simple.socket = self.net
        try:
            return super().connect(*args, **kw)
        finally:
            _simple.socket = saved
