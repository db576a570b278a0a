"""Trust on the local ports (issue 7 items 10-14), end to end: the firmware on the virtual
board (a MicroPython unix-port process) driven through its real ports by raw mode C bytes
over TCP (optical port) and over the RS-485 hub (tools/rs485_hub.py), its control channel
for the seal and cover switches, and its flash image (``--flash``) decoded afterwards with
tools/events_dump.py (the persisted event records) and the NOR model's ``.wear`` file
(erases per sector).

- item 10: programming rights end with the TCP connection, with any sign-on on the bus, and
  with 3 s of silence on the bus: a second client / bus member cannot inject a W1;
- item 11: one lockout per meter (optical -> RS-485) that survives a restart;
- item 12: a bit flip in the newest configuration copy: flagged (F.F.0, LCD ALARM), logged
  persistently, and the factory password is not silently back;
- item 13: a W1 flood costs a few configuration erases, a refusal flood a few records;
- item 14: refusals and every seal / cover / magnet / neutral change persisted with the
  address or input concerned and the port.
"""

import os
import signal
import struct
import subprocess
import time

from iecraw import Client, cmd, error
from simrun import MICROPYTHON, MPYPATH, ROOT, SIM_HEAP, control, stop_sim
from test_iec_client import Hub, _free_port

import events_dump

import events as E

FOUR_Q = os.path.join(ROOT, "boards/sim/loads/four_quadrant.csv")
CONFIG_SECTORS = (16, 17)  # boards/sim/board.py: config partition at 64..72 KiB


class Firmware:
    def __init__(self, *args, speed="10", load=FOUR_Q):
        env = dict(os.environ, MICROPYPATH=MPYPATH)
        args = list(args)
        if "--control-tcp" not in args:  # (stop() uses it)
            args += ["--control-tcp", _free_port()]
        self.ctl = int(args[args.index("--control-tcp") + 1])
        self.p = subprocess.Popen([MICROPYTHON, "-X", "heapsize=" + SIM_HEAP, "firmware/main.py",
                                   "--load", load, "--quiet",
                                   "--speed", speed] + [str(a) for a in args], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1.0)
        assert self.p.poll() is None, self.p.communicate()

    def stop(self, orderly=True):
        """The control channel's ``stop``: an orderly shutdown (held-back writes and flood
        summaries written); otherwise SIGTERM, which ends the process at once (a power cut
        without warning)."""
        if orderly:
            out, err = stop_sim(self.p, self.ctl, timeout=20)
        else:
            self.p.send_signal(signal.SIGTERM)
            out, err = self.p.communicate(timeout=20)
        return out.decode(), err.decode()


def _logs(img):
    return events_dump.read_logs(img)


def _find(rows, code, **kw):
    return [r for r in rows if r["code"] == code and all(r[k] == v for k, v in kw.items())]


def _wear(img):
    with open(img + ".wear", "rb") as f:
        d = f.read()
    return struct.unpack("<%dI" % (len(d) // 4), d)


# ---------------------------------------------------------------------------------------------
# item 10


def test_rights_end_with_the_tcp_connection(tmp_path):
    port = _free_port()
    img = str(tmp_path / "flash.img")
    fw = Firmware("--optical-tcp", port, "--serial", "12345678", "--flash", img)
    try:
        a = Client(port)
        assert a.prog() == b"\x06", "client A has the password"
        a.close()  # and leaves without B0
        time.sleep(0.3)
        b = Client(port)
        got = b.x(cmd("W", 1, "C.90.2(11111111)"), timeout=1.5)
        assert got == b"", "client B, never signed on, must get nothing: %r" % got
        assert b.x(cmd("R", 1, "1.8.0()"), timeout=1.5) == b""
        # B signs on itself: the password was not changed; R1 before P1 is refused (ER07)
        assert b.x(b"/?!\r\n").startswith(b"/OMF5")
        time.sleep(0.05)
        assert b.x(b"\x06051\r\n").startswith(b"\x01P0")
        assert b.x(cmd("R", 1, "1.8.0()")) == error(7)
        assert b.x(cmd("P", 1, "(00000000)")) == b"\x06"
        assert b.x(cmd("W", 1, "1.8.0(0)")) == error(4)
        b.s.sendall(cmd("B", 0))
        b.close()
        time.sleep(0.3)
    finally:
        fw.stop()
    sec = _logs(img)["security"]
    std = _logs(img)["standard"]
    ex = _find(sec, E.PROG_EXIT)
    assert [r["value"] for r in ex] == [E.EXIT_LINK, E.EXIT_B0], ex
    assert _find(sec, E.REFUSED_NO_PASSWORD, subject="1.8.0", src="optical"), sec
    assert _find(std, E.REFUSED_NOT_WRITABLE, subject="1.8.0", src="optical"), std
    assert not _find(sec, E.PARAM_CHANGED, subject="C.90.2"), "no password change"


def test_rs485_neighbour_cannot_inject_a_write(tmp_path):
    hub = Hub(0).start()
    fw = None
    try:
        fw = Firmware("--rs485-bus", "127.0.0.1:%d" % hub.port, "--serial", "10000001")
        master, neighbour = Client(hub.port), Client(hub.port)
        t0 = time.time()
        while hub.members < 3 and time.time() - t0 < 10:
            time.sleep(0.05)
        assert master.prog("10000001") == b"\x06"
        assert master.x(cmd("R", 1, "1.8.0()")).startswith(b"\x021.8.0(")
        neighbour.s.sendall(b"/?10000002!\r\n")  # the master (or anyone) talks to another meter
        time.sleep(0.5)
        got = master.x(cmd("W", 1, "C.90.1(20)"), timeout=1.5)
        assert got == b"", "rights ended with the other sign-on: %r" % got
        assert master.prog("10000001") == b"\x06"
        # the master goes quiet without B0; the neighbour sends junk with a bad BCC to keep
        # the session open: it is answered NAK but does not count as a valid message
        junk = bytearray(cmd("R", 1, "1.8.0()"))
        junk[-1] ^= 0x5A
        for _ in range(8):
            neighbour.s.sendall(bytes(junk))
            time.sleep(0.5)
        got = neighbour.x(cmd("W", 1, "C.90.2(11111111)"), timeout=1.5)
        assert got == b"", "a neighbour's W1 after 3 s without a valid message: %r" % got
        assert master.prog("10000001") == b"\x06", "the password is unchanged"
        master.s.sendall(cmd("B", 0))
        time.sleep(0.3)
    finally:
        if fw is not None:
            fw.stop()
        hub.stop()


# ---------------------------------------------------------------------------------------------
# item 11


def test_lockout_is_shared_by_the_local_ports_and_survives_a_restart(tmp_path):
    hub = Hub(0).start()
    img = str(tmp_path / "flash.img")
    port = _free_port()
    args = ("--optical-tcp", port, "--rs485-bus", "127.0.0.1:%d" % hub.port, "--serial",
            "10000001", "--flash", img)
    fw = None
    try:
        fw = Firmware(*args)
        opt = Client(port)
        assert opt.prog(pw="11111111") == error(2)
        assert opt.x(cmd("P", 1, "(22222222)")) == error(2)
        assert opt.x(cmd("P", 1, "(33333333)")) == error(3), "third wrong password locks"
        opt.close()
        bus = Client(hub.port)
        t0 = time.time()
        while hub.members < 2 and time.time() - t0 < 10:
            time.sleep(0.05)
        assert bus.prog("10000001") == error(3), "the RS-485 port of the same meter too"
        bus.close()
        fw.stop(orderly=False)  # power cut
        fw = Firmware(*args)
        opt = Client(port)
        assert opt.prog() == error(3), "the lockout survives the restart"
        opt.close()
    finally:
        if fw is not None:
            fw.stop()
        hub.stop()
    sec = _logs(img)["security"]
    assert [r["value"] for r in _find(sec, E.WRONG_PASSWORD, src="optical")] == [1, 2, 3]
    assert [r["value"] for r in _find(sec, E.PROG_LOCKED)] == [600], sec
    during = _find(sec, E.PW_WHILE_LOCKED)
    assert [r["src"] for r in during] == ["rs485", "optical"], during
    assert all(0 < r["value"] <= 600 for r in during), during


# ---------------------------------------------------------------------------------------------
# item 12


def test_bit_flip_in_newest_config_copy_is_flagged_not_silent(tmp_path):
    img = str(tmp_path / "flash.img")
    port = _free_port()
    fw = Firmware("--optical-tcp", port, "--flash", img)
    try:
        c = Client(port)
        assert c.prog() == b"\x06"
        assert c.x(cmd("W", 1, "C.90.2(12345678)")) == b"\x06"
        c.s.sendall(cmd("B", 0))
        c.close()
        time.sleep(1.5)  # the write follows 2 s of metering time later (--speed 10)
    finally:
        fw.stop(orderly=False)
    with open(img, "r+b") as f:
        f.seek(64 * 1024)
        slots = [f.read(4096), f.read(4096)]
        seqs = [struct.unpack_from("<I", s, 4)[0] for s in slots]
        # defaults (first boot), then the new password (the uplink's seq floor is not in the
        # configuration: uplink/seqfloor.py)
        assert sorted(seqs) == [1, 2], seqs
        newest = seqs.index(2)
        f.seek(64 * 1024 + newest * 4096 + 30)
        b = f.read(1)
        f.seek(64 * 1024 + newest * 4096 + 30)
        f.write(bytes((b[0] ^ 0x08,)))
    port = _free_port()
    ctl = _free_port()
    fw = Firmware("--optical-tcp", port, "--flash", img, "--control-tcp", ctl)
    try:
        c = Client(port)
        assert c.prog() == error(6), "the factory password is not silently back"
        c.close()
        time.sleep(1.6)
        c = Client(port)
        assert c.x(b"/?!\r\n").startswith(b"/OMF5")
        time.sleep(0.05)
        ro = c.x(b"\x06050\r\n", timeout=5)
        assert b"F.F.0(00000042)" in ro, ro
        c.close()
        alarm = ""
        t0 = time.time()
        while "ALARM" not in alarm and time.time() - t0 < 15:
            alarm = control(ctl, "lcd")
            time.sleep(0.3)
        assert "ALARM" in alarm, alarm
    finally:
        fw.stop()
    sec = _logs(img)["security"]
    assert _find(sec, E.CONFIG_FALLBACK), sec
    assert [r["value"] for r in _find(sec, E.SECURITY_FALLBACK)] == [1], sec
    assert _find(sec, E.SEALED_REFUSED, subject="P1", src="optical"), sec


# ---------------------------------------------------------------------------------------------
# item 13


def test_w1_flood_costs_few_erases_and_refusal_flood_few_records(tmp_path):
    img = str(tmp_path / "flash.img")
    port = _free_port()
    fw = Firmware("--optical-tcp", port, "--flash", img)
    sent = refused = 0
    try:
        w0 = _wear(img)
        c = Client(port)
        assert c.prog() == b"\x06"
        t0 = time.time()
        i = 0
        while time.time() - t0 < 20:
            i += 1
            assert c.x(cmd("W", 1, "C.90.1(%d)" % (10 + i % 50))) == b"\x06"
            sent += 1
            assert c.x(cmd("W", 1, "0.3.0(%d)" % (1000 + i))) == error(6)
            refused += 1
        c.s.sendall(cmd("B", 0))
        c.close()
        time.sleep(0.3)
    finally:
        fw.stop()
    w1 = _wear(img)
    erases = sum(w1[s] - w0[s] for s in CONFIG_SECTORS)
    assert sent > 40 and erases <= 5, ("configuration erases for %d writes" % sent, erases)
    sec = _logs(img)["security"]
    sealed = _find(sec, E.SEALED_REFUSED, subject="0.3.0", src="optical")
    assert len(sealed) <= 12, len(sealed)
    assert sum(r["value"] if r["summary"] else 1 for r in sealed) == refused, (sealed, refused)
    changed = _find(sec, E.PARAM_CHANGED, subject="C.90.1")
    assert sum(r["value"] if r["summary"] else 1 for r in changed) == sent


# ---------------------------------------------------------------------------------------------
# item 14


def test_seal_covers_magnet_and_neutral_are_persisted(tmp_path):
    img = str(tmp_path / "flash.img")
    load = str(tmp_path / "load.csv")
    with open(load, "w") as f:
        f.write("t_s,p_w,q_var\n0,2300,0\n")  # 10 A
    ctl = _free_port()
    fw = Firmware("--flash", img, "--control-tcp", ctl, "--neutral-pct", "60", load=load)
    try:
        for line in ("seal open", "seal closed", "cover open", "cover closed", "tcover open",
                     "tcover closed", "magnet on", "magnet off"):
            assert control(ctl, line) == "OK"
            time.sleep(0.4)
        time.sleep(12)  # the neutral imbalance must last 10 s
    finally:
        fw.stop()
    sec = _logs(img)["security"]
    got = [(r["code"], r["value"], r["src"]) for r in sec
           if E.SEAL_OPEN <= r["code"] <= E.MAGNET_OFF]
    assert got == [(E.SEAL_OPEN, 1, "local"), (E.SEAL_CLOSED, 2, "local"),
                   (E.COVER_OPEN, 1, "local"), (E.COVER_CLOSED, 2, "local"),
                   (E.TCOVER_OPEN, 1, "local"), (E.TCOVER_CLOSED, 2, "local"),
                   (E.MAGNET_ON, 1, "local"), (E.MAGNET_OFF, 2, "local")], got
    neu = _find(sec, E.NEUTRAL_IMBALANCE, src="local")
    assert len(neu) == 1 and neu[0]["value"] == 40, ("(I - IN) / I = 40 %", neu)
