"""Display modes and buttons on the running virtual board, driven through its control
channel (``--control-tcp``, boards/sim/control.py): start-up frames with version and
metrology checksum, the scroll button (short press, 3..6 s alternate list, > 6 s diagnostic
list), test mode by the test switch and by IEC 62056-21 command (kvarh LED, timeout), with
the registers checked against the independent trace integral."""

import json
import os
import socket
import subprocess
import time
import zlib

from iec_prog import prog
from simrun import MICROPYTHON, MPYPATH, ROOT, integral, read_trace
from test_iec_client import _free_port

FOUR_Q = os.path.join(ROOT, "boards/sim/loads/four_quadrant.csv")
METROLOGY = ("lib/ade7953/__init__.py", "lib/energy/__init__.py", "lib/energy/pulse.py",
             "firmware/meter/metering.py", "firmware/tasks/metering.py")


def _crc():
    c = 0
    for p in METROLOGY:
        with open(os.path.join(ROOT, p), "rb") as f:
            c = zlib.crc32(f.read(), c)
    return "%08X" % c


def _seg(hex_text):
    return hex_text.replace("B", "b").replace("D", "d")


def _ident(line):
    return line.split()[0] if line and not line.startswith(" ") else ""


def _anns(line):
    return line.split()[2:] if _ident(line) else line.split()[1:]


class Sim:
    """firmware/main.py on the unix port with the control channel; ``cmd`` sends one line
    and returns the reply."""

    def __init__(self, *args):
        self.port = _free_port()
        env = dict(os.environ, MICROPYPATH=MPYPATH)
        self.p = subprocess.Popen([MICROPYTHON, "firmware/main.py", "--load", FOUR_Q, "--quiet",
                                   "--control-tcp", str(self.port)] + [str(a) for a in args],
                                  cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        t0 = time.time()
        while True:
            try:
                self.s = socket.create_connection(("127.0.0.1", self.port), timeout=20)
                break
            except OSError:
                assert self.p.poll() is None, self.p.communicate()
                assert time.time() - t0 < 10, "control channel did not open"
                time.sleep(0.05)
        self.f = self.s.makefile("rwb", buffering=0)

    def cmd(self, line):
        self.f.write((line + "\n").encode())
        r = self.f.readline().decode()
        assert r.endswith("\n"), ("connection closed", line, r)
        return r.rstrip("\n")

    def wait_lcd(self, pred, what, timeout=10.0):
        t0 = time.time()
        seen = []
        while time.time() - t0 < timeout:
            t = self.cmd("lcd")
            if not seen or seen[-1] != t:
                seen.append(t)
            if pred(t):
                return t
            time.sleep(0.05)
        raise AssertionError("LCD never showed %s; seen %r" % (what, seen[-12:]))

    def stop(self):
        self.s.close()
        if self.p.poll() is None:
            self.p.terminate()
        return self.p.communicate(timeout=30)

    def result(self, timeout=120):
        """Wait for the end of a --duration run; its --json line."""
        out, err = self.p.communicate(timeout=timeout)
        self.s.close()
        assert self.p.returncode == 0, err[-2000:]
        return json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])


def test_start_up_buttons_alternate_list():
    sim = Sim("--speed", "10")
    try:
        boot = []
        t0 = time.time()
        while time.time() - t0 < 15:
            t = sim.cmd("lcd")
            if not boot or boot[-1] != t:
                boot.append(t)
            if _ident(t) == "1.8.0":
                break
            time.sleep(0.1)
        idents = [_ident(b) for b in boot]
        assert "8.8.8." in idents and "0.2.0" in idents and "0.2.8" in idents, boot
        assert idents.index("8.8.8.") < idents.index("0.2.0") < idents.index("0.2.8"), boot
        assert "0.1.0" in boot[idents.index("0.2.0")], boot
        assert _seg(_crc()) in boot[idents.index("0.2.8")], (boot, _crc())
        assert _ident(boot[-1]) == "1.8.0" and "kWh" in boot[-1], boot

        assert sim.cmd("press scroll") == "OK"
        sim.wait_lcd(lambda t: _ident(t) == "2.8.0", "2.8.0 after a short press")

        # held 4 s: the alternate list, ALT shown, one pass, then the normal list
        assert sim.cmd("hold scroll 4") == "OK"
        # (the "ALt" prompt, shown from 3 s while held, stays until the next poll)
        first = sim.wait_lcd(lambda t: t.startswith("8.8.8.") and "ALT" in _anns(t),
                             "the alternate list's segment test with ALT")
        alt = [first]
        for _ in range(8):
            assert sim.cmd("press scroll") == "OK"
            alt.append(sim.wait_lcd(
                lambda t, prev=alt[-1]: _ident(t) != _ident(prev) and "ALT" in _anns(t),
                "the next ALT item"))
        assert [_ident(a) for a in alt[1:]] == ["3.8.0", "4.8.0", "9.8.0", "10.8.0", "0.9.2",
                                                "0.9.1", "0.2.0", "0.2.8"], alt
        assert _seg(_crc()) in alt[-1], alt[-1]
        assert sim.cmd("press scroll") == "OK"
        sim.wait_lcd(lambda t: _ident(t) == "1.8.0" and "ALT" not in _anns(t),
                     "the normal list after one pass")
    finally:
        sim.stop()


def test_button_held_7s_diagnostic_list_then_power_fail():
    # (a meter of its own: the button holds are real time, as the LCD runs on real time, so
    # the two lists are tested side by side when the system tests run in parallel)
    sim = Sim("--speed", "10")
    try:
        sim.wait_lcd(lambda t: _ident(t) == "1.8.0", "the normal list after start-up", 15)
        # held 7 s with seal and cover open: the diagnostic list
        assert sim.cmd("seal open") == "OK" and sim.cmd("cover open") == "OK"
        assert sim.cmd("hold scroll 7") == "OK"
        sim.wait_lcd(lambda t: "dIAG" in t, "the diagnostic title")
        diag = []
        for _ in range(8):
            prev = diag[-1] if diag else ""
            assert sim.cmd("press scroll") == "OK"
            diag.append(sim.wait_lcd(lambda t, prev=prev: _ident(t) not in ("", _ident(prev)),
                                     "the next diagnostic item"))
        assert [_ident(d) for d in diag] == ["32.7.0", "31.7.0", "91.7.0", "14.7.0", "13.7.0",
                                             "81.7.4", "C.5.0", "F.F.0"], diag
        assert "V" in _anns(diag[0]) and "Hz" in _anns(diag[3]), diag
        assert abs(float(diag[0].split()[1]) - 230.0) < 0.2, diag[0]
        assert abs(float(diag[3].split()[1]) - 50.0) < 0.05, diag[3]
        flags = int(diag[6].split()[1], 16)
        assert flags & 0x00C == 0x00C, ("seal + cover open in C.5.0", diag[6])
        assert int(diag[7].split()[1], 16) == 0, ("no error", diag[7])
        assert sim.cmd("press scroll") == "OK"
        sim.wait_lcd(lambda t: _ident(t) == "1.8.0", "the normal list after the diagnostics")
        assert sim.cmd("inputs").startswith("scroll=0 demand=0 seal=1 test=0 cover=1")
        assert sim.cmd("nonsense").startswith("ERR")
        assert sim.cmd("power-fail") == "OK"
        out, err = sim.p.communicate(timeout=10)
        assert sim.p.returncode == 0 and "power lost" in err, (sim.p.returncode, err[-500:])
    finally:
        sim.stop()


def _check(regs, ref, tol):
    for k, v in ref.items():
        assert abs(regs[k] - v) <= tol, (k, regs[k], v)


def test_test_switch_test_mode_leaves_the_registers_alone():
    # test mode by the switch is metering time: 100 simulated s per wall s
    sim = Sim("--speed", "100", "--duration", "600", "--json")
    assert sim.cmd("test on") == "OK"
    sim.wait_lcd(lambda t: "TEST" in _anns(t) and _ident(t) == "1.8.0", "the test list")
    time.sleep(1)  # 100 s of the four-quadrant load (import, then export)
    t = sim.cmd("lcd")
    assert "TEST" in _anns(t), t
    leds = sim.cmd("leds")
    assert sim.cmd("test off") == "OK"
    sim.wait_lcd(lambda t: "TEST" not in _anns(t), "the end of test mode")
    out = sim.result()
    kwh = int(leds.split("kwh_flashes=")[1].split()[0])
    assert kwh > 5, ("the kWh LED pulses in test mode (kWh selected)", leds)
    assert out["led_kvarh_flashes"] == 0, out["led_kvarh_flashes"]
    ev = [(e[1], e[2]) for e in out["events"] if e[1] in (17, 18)]
    assert ev == [(17, 1), (18, 1)], ("TEST_MODE_ON/OFF by the switch, once each", ev)
    # the registers equal the trace's integral: test mode added or removed nothing
    _check(out["registers"], integral(read_trace(FOUR_Q), out["sim_s"]), 0.2)
    assert out["registers"]["1.8.0"] > 30 and out["registers"]["2.8.0"] > 10, out["registers"]


def test_test_mode_by_command_kvarh_led_and_timeout(tmp_path):
    opt = _free_port()
    # (--speed 20: a faster clock lets kWh pulses already scheduled reach the LED after the
    # control channel saw TEST on a loaded machine)
    sim = Sim("--speed", "20", "--duration", "300", "--json", "--optical-tcp", opt,
              "--serial", "OM000077")
    got = prog(opt, "OM000077", [("W", "C.91.3", "1"), ("E", "C.91.1", "2"),
                                 ("R", "C.91.1"), ("R", "0.2.8")], timeout=60)
    assert got.get("pw") == got.get("W C.91.3") == got.get("E C.91.1") == "\x06", got
    assert got["R C.91.1"] == "2" and got["R 0.2.8"] == _crc(), (got, _crc())
    sim.wait_lcd(lambda t: "TEST" in _anns(t), "test mode")
    a = sim.cmd("leds")
    # the LEDs sampled until test mode ends: the last sample with TEST still shown after it
    # bounds the kWh flashes inside test mode (a loaded machine may take a while to look
    # again once it ended, and the kWh LED then pulses normally)
    inside = a
    t0 = time.time()
    while True:
        b = sim.cmd("leds")
        if "TEST" not in _anns(sim.cmd("lcd")):
            break
        inside = b
        assert time.time() - t0 < 15, "the end of test mode (2 min) never came"
        time.sleep(0.05)
    out = sim.result()
    kwh_a = int(a.split("kwh_flashes=")[1].split()[0])
    kwh_in = int(inside.split("kwh_flashes=")[1].split()[0])
    var_b = int(b.split("kvarh_flashes=")[1].split()[0])
    assert kwh_in - kwh_a <= 1, ("the kWh LED is dark while the kvarh LED is selected", a,
                                 inside)
    assert var_b >= 10, ("the kvarh LED pulsed for the reactive energy", b)
    ev = [(e[1], e[2]) for e in out["events"] if e[1] in (17, 18)]
    assert ev == [(17, 2), (18, 0)], ("on by command, off by the timeout", ev)
    on = [e[0] for e in out["events"] if e[1] == 17][0]
    off = [e[0] for e in out["events"] if e[1] == 18][0]
    assert 119 <= off - on <= 121, ("2 minutes of metering time", on, off)
    _check(out["registers"], integral(read_trace(FOUR_Q), out["sim_s"]), 0.2)
