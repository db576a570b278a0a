"""IEC 62056-21 end to end: the session (lib/iec62056/session.py) served by the port task
(firmware/ports/pump.py) on the virtual board's TCP UART (boards/sim/uart.py) in a MicroPython
unix-port process, read by the real PyPI client ``iec62056-21`` (0.0.2, pwitab).

The client runs in its own CPython process (``python -I``, so that nothing of ours is on its
path). Client quirks honoured: the TCP transport always sends ``/?<address>!``;
``send_password()`` is broken in 0.0.2, so P1 is built by hand; it drops the identification's
first character (it expects a ``\\W`` pair at index 5).

RS-485: two meters join tools/rs485_hub.py as BusUart members; the client talks to the hub
and only the addressed meter answers.
"""

import json
import os
import select
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

from rs485_hub import Hub  # noqa: E402

import ports  # noqa: E402

METER = r'''
import sys
import asyncio
from boards.sim.uart import TcpUart, BusUart
from iec62056.session import Session, ER_SEALED
from ports import pump

mode, port, addr = sys.argv[1], int(sys.argv[2]), sys.argv[3]
items = [("C.1.0", addr, None), ("0.9.1", "134501", None), ("0.9.2", "250101", None),
         ("1.8.0", "0001234.567", "kWh"), ("2.8.0", "0000012.000", "kWh"),
         ("0.2.0", "OM-0.1", None)]
regs = {"1.8.0": ("0001234.567", "kWh"), "C.1.0": (addr, None)}
params = {"0.0.5": "1", "C.90.1": "0"}


def reader(a):
    if a in regs:
        return regs[a]
    return params[a], None


def writer(a, v, sealed):
    if a not in params:
        raise KeyError(a)
    if a == "C.90.1" and sealed:
        return ER_SEALED
    params[a] = v


def event(code, detail, value=0, cmd=""):
    print("EVENT", code, detail or (value if value else ""))


uart = TcpUart(port) if mode == "tcp" else BusUart(port)
s = Session(addr, manufacturer="XYZ", ident="OM1", readout=lambda: items, reader=reader,
            writer=writer, on_event=event, answer_unaddressed=(mode == "tcp"))
print("READY")
asyncio.run(pump.run_port(uart, s))
'''

CLIENT = r'''
import json, sys, time
from iec62056_21.client import Iec6205621Client
from iec62056_21 import messages

port, addr, what = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = Iec6205621Client.with_tcp_transport(address=("127.0.0.1", port), device_address=addr)
c.transport.socket.settimeout(float(sys.argv[4]) if len(sys.argv) > 4 else 10.0)
c.connect()
out = {}
try:
    if what == "readout":
        r = c.standard_readout()
        out["manufacturer"] = c.manufacturer_id
        out["baud"] = c.switchover_baudrate
        out["data"] = [[d.address, d.value, d.unit] for d in r.data]
    else:
        p0 = c.access_programming_mode()
        out["p0"] = [p0.command, p0.command_type, p0.data_set.value]
        bad = messages.CommandMessage("P", 1, messages.DataSet(address="", value="99999999"))
        c.transport.send(bad.to_bytes())
        out["bad_pw"] = c.read_response().data[0].value
        pw = messages.CommandMessage("P", 1, messages.DataSet(address="", value="00000000"))
        c.transport.send(pw.to_bytes())
        out["ack"] = c._recv_ack()
        v = c.read_single_value("1.8.0")
        out["read"] = [v.address, v.value, v.unit]
        c.write_single_value("0.0.5", "42")
        v = c.read_single_value("0.0.5")
        out["read2"] = [v.address, v.value, v.unit]
        c.transport.send(messages.CommandMessage.for_single_write("C.90.1", "5").to_bytes())
        out["sealed"] = c.read_response().data[0].value
        c.send_break()
except Exception as e:
    out["error"] = type(e).__name__
c.disconnect()
print(json.dumps(out))
'''


def _micropython():
    p = os.path.join(os.path.dirname(sys.executable), "micropython")
    return p if os.path.exists(p) else "micropython"


def _free_port():
    return ports.free_port()  # disjoint between parallel pytest processes (tools/ptest.py)


class _Meter:
    """The meter script in a MicroPython process; its output is read unbuffered."""

    def __init__(self, tmp, mode, port, addr):
        script = os.path.join(str(tmp), "meter.py")
        with open(script, "w") as f:
            f.write(METER)
        env = dict(os.environ, MICROPYPATH=".frozen:firmware:lib:.")
        self.p = subprocess.Popen(
            [_micropython(), script, mode, str(port), addr],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            bufsize=0,
        )
        self.output = ""
        if not self.wait_for("READY\n", 20):
            self.stop()
            raise AssertionError("meter did not start: %s" % self.output)

    def wait_for(self, text, timeout=5.0):
        """Collect the meter's output until ``text`` appears (True) or the timeout (False)."""
        end = time.time() + timeout
        fd = self.p.stdout.fileno()
        while text not in self.output and time.time() < end:
            if select.select([fd], [], [], 0.1)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                self.output += chunk.decode("utf-8", "replace")
        return text in self.output

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
        try:
            out, _ = self.p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            out, _ = self.p.communicate()
        self.output += (out or b"").decode("utf-8", "replace")
        return self.output


def _client(tmp, port, addr, what, timeout=10.0):
    script = os.path.join(str(tmp), "client.py")
    with open(script, "w") as f:
        f.write(CLIENT)
    r = subprocess.run(
        [sys.executable, "-I", script, str(port), addr, what, str(timeout)],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert r.returncode == 0, "client failed (is iec62056-21 installed?): " + r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


EXPECT = [
    ["C.1.0", None, None],
    ["0.9.1", "134501", None],
    ["0.9.2", "250101", None],
    ["1.8.0", "0001234.567", "kWh"],
    ["2.8.0", "0000012.000", "kWh"],
    ["0.2.0", "OM-0.1", None],
]


def _expect(addr):
    rows = [list(r) for r in EXPECT]
    rows[0][1] = addr
    return rows


def test_optical_readout_with_pypi_client(tmp_path):
    port = _free_port()
    m = _Meter(tmp_path, "tcp", port, "12345678")
    try:
        out = _client(tmp_path, port, "12345678", "readout")
    finally:
        m.stop()
    assert "error" not in out, out
    assert out["manufacturer"] == "XYZ" and out["baud"] == 9600, out
    assert out["data"] == _expect("12345678"), out["data"]


def test_optical_programming_mode_with_pypi_client(tmp_path):
    port = _free_port()
    m = _Meter(tmp_path, "tcp", port, "12345678")
    try:
        out = _client(tmp_path, port, "12345678", "prog")
        m.wait_for("EVENT prog_exit B0")  # the client hangs up right after sending B0
    finally:
        log = m.stop()
    assert "error" not in out, (out, log)
    assert out["p0"] == ["P", 0, "12345678"], out
    assert out["bad_pw"] == "ER02", out
    assert out["ack"] == "\x06", out
    assert out["read"] == ["1.8.0", "0001234.567", "kWh"], out
    assert out["read2"] == ["0.0.5", "42", None], out
    assert out["sealed"] == "ER06", out
    for ev in ("EVENT pw_wrong 1", "EVENT prog_enter", "EVENT write 0.0.5",
               "EVENT sealed_refused C.90.1", "EVENT prog_exit B0"):
        assert ev in log, (ev, log)


def test_rs485_bus_only_addressed_meter_answers(tmp_path):
    hub = Hub(0).start()
    meters = []
    try:
        for addr in ("11111111", "22222222"):
            d = tmp_path / addr
            d.mkdir()
            meters.append(_Meter(d, "bus", hub.port, addr))
        t0 = time.time()
        while hub.members < 2 and time.time() - t0 < 10:
            time.sleep(0.05)
        assert hub.members == 2, hub.members
        for addr in ("22222222", "11111111"):
            out = _client(tmp_path, hub.port, addr, "readout")
            assert "error" not in out, (addr, out)
            assert out["data"] == _expect(addr), (addr, out["data"])
        out = _client(tmp_path, hub.port, "33333333", "readout", timeout=3.0)
        assert out.get("error") == "TransportError", "nobody answers 33333333: %r" % out
    finally:
        for m in meters:
            m.stop()
        hub.stop()
