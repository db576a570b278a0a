"""Behaviour pinned across the issue 8 restructure: the registers of the bundled loads and
the IEC 62056-21 readout of the whole firmware, compared with a reference captured on the
commit before it (e96c37a, ``reference_before_issue8.json``).

- registers: one simulated day of the bundled household + PV load and the 1260 s
  four-quadrant trace at ``--speed max`` (``--json``: every register to the mWh, the test
  pulses, the LED flashes, the commits, F.F.0 and every event with its time and value);
- readout: the four-quadrant run on a ``--flash`` image, then the meter restarted on that
  image with the metering clock nearly stopped (``--speed 0.001``, ``--off-time 0``: the
  registers and the RTC are those restored), read over its optical TCP port with raw mode C
  bytes: the standard readout (every data line, byte for byte, and its BCC) and, in
  programming mode, R1 of every readable parameter.

Only the metrology checksum 0.2.8 may differ (it is the CRC-32 of the metrology modules'
files, which the restructure moved): it is compared as 8 hex digits.

Deliberate changes to the reference since the capture (issue 10), nothing else: the
readout's new line ``0.0.96.14.0(1)`` (the active tariff, after 16.8.0) and R1 of C.90.3,
which answered ER09 while the default list passed the 128 characters of one value and now
answers it in two value groups ``C.90.3(...)(...)`` (ports/iec.list_groups).

``REFERENCE_CAPTURE=path python -m pytest host_tests/system/test_reference.py`` writes the
observations to ``path`` instead of comparing (how the reference was made).
"""

import json
import os
import re
import subprocess
import time

import ports
from iecraw import ACK, ETX, STX, Client, bcc, cmd
import pytest
from simrun import MICROPYTHON, MPYPATH, ROOT, sim_json

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "reference_before_issue8.json")
FOUR_Q = os.path.join(ROOT, "boards/sim/loads/four_quadrant.csv")
PARAMS = ("0.3.0", "C.90.1", "C.90.3", "C.90.4", "C.90.5", "C.5.0", "C.91.1", "C.91.3",
          "C.91.4", "F.F.0", "1.8.0", "16.8.0")


def _run(*args):
    out = sim_json(*args, timeout=900)
    return {k: out[k] for k in ("registers", "pulses", "led_kwh_flashes", "led_kvarh_flashes",
                                "commits", "error_flags", "events", "sim_s", "storage",
                                "fault")}


def _normal(text):
    # the metrology checksum is the CRC-32 of the moved files: any 8 hex digits
    return re.sub(r"0\.2\.8\([0-9A-F]{8}\)", "0.2.8(CRC32)", text)


def _readout(tmp):
    img = os.path.join(str(tmp), "ref.img")
    _run("--load", FOUR_Q, "--speed", "max", "--duration", 1260, "--flash", img,
         "--start", "2016-03-27T00:00:00Z", "--serial", "OM000042")
    port = ports.free_port()
    env = dict(os.environ, MICROPYPATH=MPYPATH)
    p = subprocess.Popen([MICROPYTHON, "firmware/main.py", "--load", FOUR_Q, "--quiet",
                          "--speed", "0.001", "--off-time", "0", "--flash", img,
                          "--serial", "OM000042", "--optical-tcp", str(port)],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = {}
    try:
        link = Client(port, wait=20)
        ident = link.x(b"/?!\r\n")
        out["ident"] = ident.decode()
        time.sleep(0.05)
        frame = link.x(b"\x06050\r\n", 10.0)
        assert frame[:1] == bytes((STX,)) and frame[-2] == ETX, frame
        assert bcc(frame[1:-1]) == frame[-1], "readout BCC"
        out["readout"] = _normal(frame[1:-2].decode()).split("\r\n")
        link.s.close()
        time.sleep(1.8)  # the readout hold (1.5 s) ends the session
        link = Client(port, wait=20)
        link.x(b"/?!\r\n")
        time.sleep(0.05)
        p0 = link.x(b"\x06051\r\n")
        assert p0[:3] == b"\x01P0", p0
        assert link.x(cmd("P", 1, "(00000000)")) == bytes((ACK,))
        reads = {}
        for a in PARAMS:
            r = link.x(cmd("R", 1, a + "()"))
            reads[a] = _normal(r[1:-2].decode())
        out["r1"] = reads
        link.s.close()
    finally:
        p.terminate()
        p.communicate(timeout=20)
    return out


def observe(tmp):
    return {
        "day": _run("--speed", "max", "--duration", 86400),
        "four_quadrant": _run("--load", FOUR_Q, "--speed", "max", "--duration", 1260),
        "optical": _readout(tmp),
    }


def _compare(got, ref, run):
    for k in ref[run]:
        g = got[k]
        if k == "registers":  # plus the tariff banks (issue 10): one tariff by default
            g = {c: v for c, v in g.items() if c in ref[run][k]}
            for c, v in got[k].items():
                if c not in ref[run][k]:
                    want = ref[run][k][c[:-1] + "0"] if c.endswith(".1") else 0
                    assert c.split(".")[0] in ("1", "2", "16") and v == want, (run, c, v)
        assert g == ref[run][k], (run, k, g, ref[run][k])


def _reference():
    with open(REF) as f:
        return json.load(f)


def test_registers_of_a_day_identical_to_the_reference():
    """The day of the bundled household + PV load at --speed max (CPU-bound: a test of its
    own so that it runs beside the readout below in the system stage, issue 12)."""
    if os.environ.get("REFERENCE_CAPTURE"):
        pytest.skip("REFERENCE_CAPTURE: the readout test below captures every observation")
    _compare(_run("--speed", "max", "--duration", 86400), _reference(), "day")


def test_registers_and_readout_identical_to_the_reference(tmp_path):
    """The four-quadrant run's registers, and the optical readout of its flash image."""
    cap = os.environ.get("REFERENCE_CAPTURE")
    if cap:
        with open(cap, "w") as f:
            json.dump(observe(tmp_path), f, indent=1, sort_keys=True)
        return
    ref = _reference()
    _compare(_run("--load", FOUR_Q, "--speed", "max", "--duration", 1260), ref,
             "four_quadrant")
    got = _readout(tmp_path)
    assert got == ref["optical"], (got, ref["optical"])
