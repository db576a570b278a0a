"""The whole firmware on the virtual board, read with the PyPI client iec62056-21 over the
optical TCP port and over the simulated RS-485 bus (three meters)."""

import os
import subprocess
import sys
import time

from simrun import MICROPYTHON, MPYPATH, ROOT, SIM_HEAP
from test_iec_client import Hub, _client, _free_port

FOUR_Q = os.path.join(ROOT, "boards/sim/loads/four_quadrant.csv")

PROG = r'''
import json, sys
from iec62056_21.client import Iec6205621Client
from iec62056_21 import messages

port, addr, pw, value = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
c = Iec6205621Client.with_tcp_transport(address=("127.0.0.1", port), device_address=addr)
c.transport.socket.settimeout(10.0)
c.connect()
out = {}
try:
    c.access_programming_mode()
    m = messages.CommandMessage("P", 1, messages.DataSet(address="", value=pw))
    c.transport.send(m.to_bytes())
    if pw != "00000000":
        out["pw"] = c.read_response().data[0].value
    else:
        out["pw"] = "ACK" if c._recv_ack() == "\x06" else "?"
        v = c.read_single_value("1.8.0")
        out["read"] = [v.address, v.value, v.unit]
        c.transport.send(messages.CommandMessage.for_single_write("0.3.0", value).to_bytes())
        if sys.argv[5] == "sealed":
            out["write"] = c.read_response().data[0].value
        else:
            out["write"] = "ACK" if c._recv_ack() == "\x06" else "?"
        v = c.read_single_value("0.3.0")
        out["after"] = v.value
    c.send_break()
except Exception as e:
    out["error"] = "%s %s" % (type(e).__name__, e)
c.disconnect()
print(json.dumps(out))
'''


class Firmware:
    def __init__(self, *args):
        env = dict(os.environ, MICROPYPATH=MPYPATH)
        self.p = subprocess.Popen([MICROPYTHON, "-X", "heapsize=" + SIM_HEAP, "firmware/main.py",
                                   "--load", FOUR_Q, "--quiet",
                                   "--speed", "10"] + [str(a) for a in args], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(1.0)
        assert self.p.poll() is None, self.p.communicate()[0]

    def stop(self):
        self.p.terminate()
        return self.p.communicate(timeout=10)[0].decode()


def _prog(tmp, port, addr, pw, value, seal="sealed"):
    import json

    script = os.path.join(str(tmp), "prog.py")
    with open(script, "w") as f:
        f.write(PROG)
    r = subprocess.run([sys.executable, "-I", script, str(port), addr, pw, value, seal],
                       capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_optical_readout_of_the_running_meter(tmp_path):
    port = _free_port()
    fw = Firmware("--optical-tcp", port, "--serial", "OM000042")
    try:
        out = _client(tmp_path, port, "OM000042", "readout")
    finally:
        fw.stop()
    assert "error" not in out, out
    data = {d[0]: (d[1], d[2]) for d in out["data"]}
    assert data["C.1.0"][0] == "OM000042", data
    assert data["1.8.0"][1] == "kWh" and len(data["1.8.0"][0]) == 11, data["1.8.0"]
    for k in ("2.8.0", "3.8.0", "4.8.0", "9.8.0", "10.8.0", "16.8.0", "0.9.1", "0.9.2", "0.2.0"):
        assert k in data, (k, data)


def test_programming_sealed_and_unsealed(tmp_path):
    port = _free_port()
    fw = Firmware("--optical-tcp", port, "--serial", "OM000043")
    try:
        bad = _prog(tmp_path, port, "OM000043", "12345678", "2000")
        sealed = _prog(tmp_path, port, "OM000043", "00000000", "2000")
    finally:
        fw.stop()
    assert bad.get("pw") == "ER02", bad
    assert sealed.get("pw") == "ACK" and sealed["read"][0] == "1.8.0", sealed
    assert sealed["write"] == "ER06" and sealed["after"] == "1000", sealed
    port = _free_port()
    fw = Firmware("--optical-tcp", port, "--serial", "OM000043", "--seal", "open")
    try:
        opened = _prog(tmp_path, port, "OM000043", "00000000", "2000", "open")
    finally:
        fw.stop()
    assert opened["write"] == "ACK" and opened["after"] == "2000", opened


def test_three_meters_on_one_rs485_bus(tmp_path):
    hub = Hub(0).start()
    fws = []
    try:
        for a in ("10000001", "10000002", "10000003"):
            fws.append(Firmware("--rs485-bus", "127.0.0.1:%d" % hub.port, "--serial", a))
        t0 = time.time()
        while hub.members < 3 and time.time() - t0 < 10:
            time.sleep(0.05)
        for a in ("10000002", "10000003", "10000001"):
            out = _client(tmp_path, hub.port, a, "readout")
            assert "error" not in out, (a, out)
            data = {d[0]: d[1] for d in out["data"]}
            assert data["C.1.0"] == a, (a, data["C.1.0"])
        out = _client(tmp_path, hub.port, "99999999", "readout", timeout=3.0)
        assert out.get("error") == "TransportError", out
    finally:
        for f in fws:
            f.stop()
        hub.stop()
