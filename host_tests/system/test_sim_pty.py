"""The optical port on a pty: the firmware opens one end of tools/pty_bridge.py's cable with
``--optical-dev`` (boards/sim/tty_uart.py), the PyPI client ``iec62056-21`` the other with its
SERIAL transport (pyserial, 300 Bd 7E1, re-opened at the new speed after the option select).

The cable delivers characters at the sending end's baud rate and drops those that arrive while
the two ends' speeds differ (a Linux pty keeps the speed but not the 7E1 format), so the test
sees the baud switch and the wire timing: reaction times are measured from the last character
of a message to the first of the answer, as the standard defines them."""

import json
import os
import socket
import subprocess
import sys
import time

from ports import free_port
from simrun import MICROPYTHON, MPYPATH, ROOT

from pty_bridge import PtyCable, line_settings

CLIENT = r'''
import json, sys, time
from iec62056_21.client import Iec6205621Client
from iec62056_21 import messages

c = Iec6205621Client.with_serial_transport(port=sys.argv[1])
out = {}
try:
    c.connect()
    r = c.standard_readout()
    out["baud"] = c.switchover_baudrate
    out["data"] = [[d.address, d.value, d.unit] for d in r.data]
    c.disconnect()
    time.sleep(2.0)  # the meter stays at 9600 Bd for 1.5 s after a readout (NAK window)
    c.connect()
    p0 = c.access_programming_mode()
    out["p0"] = p0.data_set.value
    pw = messages.CommandMessage("P", 1, messages.DataSet(address="", value="00000000"))
    c.transport.send(pw.to_bytes())
    out["ack"] = c._recv_ack()
    v = c.read_single_value("1.8.0")
    out["read"] = [v.address, v.value, v.unit]
    c.send_break()
except Exception as e:
    out["error"] = "%s %s" % (type(e).__name__, e)
print(json.dumps(out))
'''


def _messages(log, direction):
    """Group delivered characters into messages: a line (``/...`` or ``ACK V Z Y``) ends
    with LF, a block (STX/SOH) with the BCC after ETX/EOT, a lone ACK/NAK is one; a gap of
    more than 100 ms also ends a message. Returns [(t_first, t_last, bytes)]."""
    out = []
    cur = bytearray()
    t_first = t_last = None
    after_etx = False
    for t, d, data in log:
        if d != direction:
            continue
        for c in data:
            if cur and t - t_last > 0.1:
                out.append((t_first, t_last, bytes(cur)))
                cur = bytearray()
            if not cur:
                t_first = t
            cur.append(c)
            t_last = t
            line = cur[0] in (0x2F, 0x06) and direction == 1 or cur[0] == 0x2F
            if after_etx or (line and c == 0x0A) or (
                    len(cur) == 1 and c in (0x06, 0x15) and direction == 0):
                out.append((t_first, t_last, bytes(cur)))
                cur = bytearray()
                after_etx = False
            elif c in (0x03, 0x04):
                after_etx = True
    if cur:
        out.append((t_first, t_last, bytes(cur)))
    return out


def _wait_serving(port, p, limit=30):
    """Wait until the meter's event loop runs: its control channel answers a command. The
    optical port is set to 300 Bd when the board is built, before the firmware's modules
    are loaded and its tasks started (~0.2-0.6 s later, more on a loaded host): a request
    sent in between is heard only when the port task first looks, and its 200 ms reaction
    time then counts from there (the uplink's start-up made this race visible: issue 11)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit and p.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=limit) as s:
                s.sendall(b"leds\n")
                if s.makefile().readline().startswith("kwh="):
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the meter did not start serving")


def test_pypi_serial_client_reads_the_firmware_over_a_pty(tmp_path):
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    env = dict(os.environ, MICROPYPATH=MPYPATH)
    ctl = free_port()
    with PtyCable() as cable:
        cable.record = True
        p = subprocess.Popen([MICROPYTHON, "firmware/main.py", "--quiet", "--speed", "10",
                              "--optical-dev", cable.path[0], "--serial", "PTY00001",
                              "--control-tcp", str(ctl)],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        try:
            t0 = time.monotonic()
            while (line_settings(cable.ends[0].master)[0] != 300
                   and time.monotonic() - t0 < 20 and p.poll() is None):
                time.sleep(0.05)  # the meter has opened its end and set 300 Bd
            assert p.poll() is None, p.communicate()[0]
            assert line_settings(cable.ends[0].master)[0] == 300, "meter end at 300 Bd"
            _wait_serving(ctl, p)
            r = subprocess.run([sys.executable, "-I", str(script), cable.path[1]],
                               capture_output=True, text=True, timeout=90)
            assert r.returncode == 0, r.stderr[-3000:]
            out = json.loads(r.stdout.strip().splitlines()[-1])
            time.sleep(0.5)  # B0 reaches the meter
            meter_end = line_settings(cable.ends[0].master)
        finally:
            p.terminate()
            p.communicate(timeout=10)
        stats = dict(cable.stats)
        log = list(cable.log)
    assert "error" not in out, out
    data = {d[0]: d[1] for d in out["data"]}
    assert out["baud"] == 9600 and data["C.1.0"] == "PTY00001", out
    assert "1.8.0" in data and "F.F.0" in data, data
    assert out["p0"] == "PTY00001" and out["ack"] == "\x06", out
    assert out["read"][0] == "1.8.0" and out["read"][2] == "kWh", out
    assert meter_end[0] == 300, ("back to 300 Bd after B0", meter_end)
    assert stats["mismatched"] == 0, ("a character crossed at different speeds", stats)
    # wire timing of the readout exchange (reaction times from the last character received)
    hhu = _messages(log, 1)
    mtr = _messages(log, 0)
    assert hhu[0][2] == b"/?!\r\n" and mtr[0][2].startswith(b"/OMF5"), (hhu[:2], mtr[:2])
    # delivery times are those of each character's last bit: the answer started one
    # character time before its first character was delivered
    react = mtr[0][0] - 10 / 300 - hhu[0][1]
    assert 0.2 <= react <= 0.26, ("identification reaction time (200 ms)", react)
    assert hhu[1][2] == b"\x06050\r\n", hhu[1]
    ro = mtr[1]
    assert ro[2][0] == 2 and ro[2][-2] == 3, ro[2][:20]
    switch = ro[0] - 10 / 9600 - hhu[1][1]
    assert 0.8 <= switch <= 0.86, ("answer after the option select (800 ms)", switch)
    wire = len(ro[2]) * 10 / 9600
    took = ro[1] - ro[0] + 10 / 9600
    assert wire * 0.98 <= took <= wire * 1.1 + 0.02, ("readout on the wire", took, wire)
