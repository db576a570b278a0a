"""boards/sim/control.py: the control channel under clients that misbehave (issue 7 item
15): a client that never reads its replies, a client that half-closes its side after its
commands (``nc -N``, a script's end of input). Real sockets on 127.0.0.1; runs under CPython
and MicroPython."""

import time


class _Pin:
    def __init__(self):
        self.v = 0
        self.rises = 0

    def value(self):
        return self.v

    def set_input(self, v):
        self.v = v


class _Board:
    def __init__(self):
        for n in ("led_kwh", "led_kvarh", "btn_scroll", "btn_demand_reset", "seal", "sw_test",
                  "cover", "terminal_cover", "magnet", "power_fail"):
            setattr(self, n, _Pin())

    def lcd_text(self):
        return "1.8.0    00012.345 kWh IMP T1"


def _server():
    from boards.sim.control import ControlServer

    base = 30000 + (time.time_ns() // 1000) % 20000 if hasattr(time, "time_ns") else 35791
    for i in range(50):
        try:
            return ControlServer(_Board(), base + i * 11)
        except OSError:
            pass
    raise OSError("no free port")


def _client(srv):
    import socket  # here: the module imports (its tests listed as host-only) without sockets

    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.connect(socket.getaddrinfo("127.0.0.1", srv.port)[0][-1])
    c.setblocking(False)
    for _ in range(20):
        srv.poll()
        if srv._clients:
            break
        time.sleep(0.005)
    return c


def test_replies_held_for_a_client_that_never_reads_stay_bounded():
    # it sent command after command and never read: the replies piled up in RAM until a
    # MemoryError ended the control channel for every client
    from boards.sim.control import MAX_TX

    srv = _server()
    c = _client(srv)
    try:
        chunk = b"help\n" * 200
        most = 0
        for _ in range(1500):
            try:
                c.send(chunk)
            except OSError:
                pass
            srv.poll()
            for k in srv._clients:
                if len(k.tx) > most:
                    most = len(k.tx)
        assert srv.commands > 100, srv.commands
        assert most <= MAX_TX + 1024, ("replies held in RAM", most)
        other = _client(srv)
        other.send(b"lcd\n")
        got = b""
        for _ in range(200):
            srv.poll()
            try:
                got += other.recv(256)
            except OSError:
                pass
            if got.endswith(b"\n"):
                break
            time.sleep(0.002)
        assert got == b"1.8.0    00012.345 kWh IMP T1\n", got
        other.close()
    finally:
        c.close()
        srv.close()


def test_modem_network_conditions_through_the_channel():
    from boards.sim.modem import Sim800Model

    srv = _server()
    try:
        b = srv.board
        b.modem = Sim800Model(powered=True)
        b._meter = None
        assert srv.command("network down") == "OK" and not b.modem.net_up
        assert srv.command("network up") == "OK" and b.modem.net_up
        assert srv.command("network down silent") == "OK"
        assert srv.command("modem reg denied") == "OK" and b.modem.reg_override == 3
        assert srv.command("modem reg auto") == "OK" and b.modem.reg_override is None
        assert srv.command("modem signal 7") == "OK" and b.modem.rssi == 7
        assert srv.command("modem hang on") == "OK"
        assert srv.command("modem hang off") == "OK"
        for c in ("modem pdp-deact", "modem closed", "modem garbage 50",
                  "modem undervoltage"):
            assert srv.command(c) == "OK", c
        assert srv.command("modem state").startswith("powered=1 ")
        assert srv.command("modem signal 200").startswith("ERR usage")
        assert srv.command("modem signal x").startswith("ERR bad value")
        assert srv.command("network sideways").startswith("ERR usage: network")
        assert srv.command("uplink") == "ERR no uplink running"
        del b.modem
        assert srv.command("network up") == "ERR no modem on this board"
    finally:
        srv.close()
