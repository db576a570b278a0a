"""One IEC 62056-21 programming-mode dialogue with the PyPI client ``iec62056-21`` against a
running virtual board's optical TCP port, in a separate CPython process (the client blocks
and sleeps through the protocol's waits): sign on, P1 with the password, then the steps in
order, then B0.

    prog(port, addr, [("W", "C.91.3", "1"), ("E", "C.91.1", "2"), ("R", "C.91.1")])
    -> {"pw": "\\x06", "W C.91.3": "\\x06", "E C.91.1": "\\x06", "R C.91.1": "2"}

A W1 / E2 answers the ACK (``"\\x06"``) or the error data (``"(ER05)"`` as the client reads
it); an R1 the value; a step repeated in the dialogue is keyed ``"R F.F.0 #2"``, ``#3``...
An exception ends the dialogue as ``"error"``."""

import json
import subprocess
import sys

_SCRIPT = r'''
import json, sys
from iec62056_21.client import Iec6205621Client
from iec62056_21 import messages

port, addr, pw, steps = int(sys.argv[1]), sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
c = Iec6205621Client.with_tcp_transport(address=("127.0.0.1", port), device_address=addr)
c.transport.socket.settimeout(10.0)
c.connect()
out = {}
try:
    c.access_programming_mode()
    c.transport.send(messages.CommandMessage("P", 1, messages.DataSet(
        address="", value=pw)).to_bytes())
    out["pw"] = c._recv_ack()
    for s in steps:
        k = name = s[0] + " " + s[1]
        n = 1
        while k in out:  # the same step again: "R F.F.0 #2"
            n += 1
            k = "%s #%d" % (name, n)
        if s[0] == "R":
            out[k] = c.read_single_value(s[1]).value
            continue
        if s[0] == "W":
            m = messages.CommandMessage.for_single_write(s[1], s[2])
        else:
            m = messages.CommandMessage("E", 2, messages.DataSet(address=s[1], value=s[2]))
        c.transport.send(m.to_bytes())
        out[k] = c._recv_ack()
    c.send_break()
except Exception as e:
    out["error"] = "%s %s" % (type(e).__name__, e)
c.disconnect()
print(json.dumps(out))
'''


def prog(port, addr, steps, pw="00000000", timeout=90):
    """Run the dialogue (``steps``: ("W"|"E", address, value) or ("R", address)) on
    127.0.0.1:``port`` with device address ``addr`` ("" for none); the answers as a dict."""
    r = subprocess.run([sys.executable, "-I", "-c", _SCRIPT, str(port), addr, pw,
                        json.dumps(steps)], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])
