"""Local-port benchmarks for docs/BENCHMARKS.md (issue 4): IEC 62056-21 timing of the firmware
on the virtual board (CPython driver; the meter runs on the MicroPython unix port).

    python tools/bench_iec.py [--runs 5] [--reads 100]

1. Readout time of the default readout list at 9600 Bd, from the end of the option select
   (``ACK 0 5 0``) to the end of the readout's last character, against the ideal: the
   session's answer delay after the option select (``switch_ms`` = 800 ms, lib/iec62056/session.py;
   the mandated minimum reaction time is 200 ms) plus the wire time (bytes x 10 / 9600).
   Two ways:
   - over the optical TCP port (``--optical-tcp``): the sim UART puts each written slice on
     TCP at once and models the transmit time with ``txdone()``, so the port task waits for
     it before writing the next slice; the end on the wire = arrival of the last slice + its
     wire time;
   - over a pty (``--optical-dev``, tools/pty_bridge.py): the cable delivers at 9600 Bd and
     logs when each character's last bit arrives, so this is what a client would see.
   Each with metering at real time (``--speed 1``) and at full speed (``--speed max``).
2. Reply latency of R1 single reads (``R1 1.8.0()``) in programming mode while the same
   process meters at ``--speed max``, against the ideal: reaction time 200 ms + the reply's
   wire time; the same at ``--speed 1`` for reference. The metering speed reached during the
   run comes from the ``--json`` line printed at the control channel's ``stop``.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import termios
import time
import tty

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from pty_bridge import PtyCable  # noqa: E402

BIN = os.path.dirname(sys.executable)
MPY = os.path.join(BIN, "micropython")
MPYPATH = ".frozen:firmware:lib:."
SWITCH_MS = 800
REACTION_MS = 200
BAUD = 9600


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _bcc(body):
    x = 0
    for c in body:
        x ^= c
    return x & 0x7F


def _cmd(c, t, data=None):
    body = bytes((ord(c), 0x30 + t)) + (b"\x02" + data.encode() if data is not None else b"")
    body += b"\x03"
    return b"\x01" + body + bytes((_bcc(body),))


class Meter:
    def __init__(self, speed, port_args):
        env = dict(os.environ, MICROPYPATH=MPYPATH)
        self.ctl = _free_port()
        self.p = subprocess.Popen([MPY, "-X", "heapsize=4m", "firmware/main.py",
                                   "--quiet", "--json", "--speed", speed, "--control-tcp",
                                   str(self.ctl)] + port_args, cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def stop(self):
        # the control channel's stop, not SIGINT: the unix port raises Ctrl-C wherever the
        # interpreter is, and inside a garbage collection it leaves the heap locked (no report)
        with socket.create_connection(("127.0.0.1", self.ctl), timeout=10) as s:
            s.sendall(b"stop\n")
            s.recv(16)
        out, err = self.p.communicate(timeout=60)
        lines = [ln for ln in out.decode().splitlines() if ln.startswith("{")]
        return json.loads(lines[-1]) if lines else {"stderr": err.decode()[-2000:]}


def _connect(port, timeout=20):
    t0 = time.monotonic()
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        except OSError:
            if time.monotonic() - t0 > timeout:
                raise
            time.sleep(0.1)


def _recv_until(s, pred, timeout=20):
    """Receive until pred(buffer); returns (buffer, [(arrival time, chunk length)])."""
    buf = bytearray()
    chunks = []
    end = time.monotonic() + timeout
    while not pred(buf):
        s.settimeout(max(0.01, end - time.monotonic()))
        d = s.recv(4096)
        if not d:
            raise RuntimeError("connection closed: %r" % bytes(buf))
        chunks.append((time.monotonic(), len(d)))
        buf.extend(d)
    return bytes(buf), chunks


def _wire_end(chunks, baud):
    """When the last character received over TCP would have left a wire at ``baud``: the sim
    UART hands each written slice to TCP at once and then models its transmit time, during
    which the port task does not read. Waits until then (so the next message is sent no
    earlier than a client on a wire could) and returns it."""
    t, n = chunks[-1]
    end = t + n * 10 / baud
    d = end - time.monotonic()
    if d > 0:
        time.sleep(d)
    return end


def _block_done(b):
    i = max(b.find(b"\x03"), b.find(b"\x04"))
    return i >= 0 and len(b) > i + 1


def readout_tcp(port, runs):
    """[(measured s, ideal s, bytes)] of `runs` readouts over TCP."""
    out = []
    for _ in range(runs):
        s = _connect(port)
        try:
            s.sendall(b"/?!\r\n")
            _, ch = _recv_until(s, lambda b: b.endswith(b"\n"))
            _wire_end(ch, 300)  # a client on a wire gets the LF only when it has been sent
            s.sendall(b"\x06050\r\n")
            t_ack = time.monotonic()
            data, chunks = _recv_until(s, _block_done)
        finally:
            s.close()
        end = _wire_end(chunks, BAUD)
        out.append((end - t_ack, SWITCH_MS / 1000 + len(data) * 10 / BAUD, len(data)))
        time.sleep(1.8)  # readout hold (1.5 s) ends: back to 300 Bd
    return out


def readout_pty(cable, runs):
    """The same over the pty cable; times from the cable's delivery log."""
    fd = os.open(cable.path[1], os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)

    def speed(baud):
        a = termios.tcgetattr(fd)
        a[4] = a[5] = getattr(termios, "B%d" % baud)
        termios.tcsetattr(fd, termios.TCSANOW, a)

    def read_until(pred, timeout=20):
        buf = bytearray()
        end = time.monotonic() + timeout
        while not pred(buf):
            if time.monotonic() > end:
                raise RuntimeError("pty timeout: %r" % bytes(buf))
            try:
                buf.extend(os.read(fd, 4096))
            except BlockingIOError:
                time.sleep(0.002)
        return bytes(buf)

    os.set_blocking(fd, False)
    out = []
    try:
        for _ in range(runs):
            speed(300)
            cable.log = []
            cable.record = True
            os.write(fd, b"/?!\r\n")
            read_until(lambda b: b.endswith(b"\n"))
            os.write(fd, b"\x06050\r\n")
            time.sleep(6 * 10 / 300 + 0.05)  # the ACK is on the wire at 300 Bd; then switch
            speed(BAUD)
            data = read_until(_block_done)
            log = list(cable.log)
            cable.record = False
            ack_end = [t for (t, d, b) in log if d == 1][-1]
            first = [t for (t, d, b) in log if d == 0 and b[:1] == b"\x02"][0]
            last = [t for (t, d, b) in log if d == 0][-1]
            # first/last: arrival of a character's last bit; the readout starts one
            # character time earlier
            out.append((last - ack_end, SWITCH_MS / 1000 + len(data) * 10 / BAUD, len(data),
                        first - 10 / BAUD - ack_end))
            time.sleep(1.8)
    finally:
        os.close(fd)
    return out


def r1_latency(port, reads):
    """[(measured s, ideal s)] of `reads` R1 single reads in programming mode."""
    s = _connect(port)
    lat = []
    try:
        s.sendall(b"/?!\r\n")
        _recv_until(s, lambda b: b.endswith(b"\n"))
        s.sendall(b"\x06051\r\n")
        _recv_until(s, _block_done)  # P0
        s.sendall(_cmd("P", 1, "(00000000)"))
        ack, _ = _recv_until(s, lambda b: len(b) >= 1)
        assert ack == b"\x06", ack
        req = _cmd("R", 1, "1.8.0()")
        for _ in range(reads):
            time.sleep(0.05)
            s.sendall(req)
            t0 = time.monotonic()
            data, chunks = _recv_until(s, _block_done)
            assert data.startswith(b"\x021.8.0("), data
            end = _wire_end(chunks, BAUD)
            lat.append((end - t0, REACTION_MS / 1000 + len(data) * 10 / BAUD))
        s.sendall(_cmd("B", 0))
    finally:
        s.close()
    return lat


def _summary(rows):
    over = [m / i - 1 for (m, i, *_r) in rows]
    return statistics.median([r[0] for r in rows]), max(r[0] for r in rows), \
        rows[0][1], statistics.median(over), max(over), rows[0][2]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="readouts per case")
    ap.add_argument("--reads", type=int, default=100, help="R1 reads per case")
    a = ap.parse_args(argv)
    print("## Local ports (issue 4)\n")
    print("Command: `.venv/bin/python tools/bench_iec.py --runs %d --reads %d`, MicroPython "
          "unix port, %s.\n" % (a.runs, a.reads, time.strftime("%Y-%m-%d")))
    print("### Readout of the default list at 9600 Bd (end of ACK 0 5 0 -> end of readout)\n")
    print("| port | metering | bytes | ideal (800 ms + wire) | measured median | worst | "
          "over ideal, median / worst |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for speed in ("1", "max"):
        port = _free_port()
        m = Meter(speed, ["--optical-tcp", str(port)])
        try:
            time.sleep(1.5)
            rows = readout_tcp(port, a.runs)
        finally:
            m.stop()
        med, worst, ideal, om, ow, n = _summary(rows)
        print("| TCP (`--optical-tcp`) | --speed %s | %d | %.3f s | %.3f s | %.3f s | "
              "%+.1f %% / %+.1f %% |" % (speed, n, ideal, med, worst, om * 100, ow * 100))
        with PtyCable() as cable:
            m = Meter(speed, ["--optical-dev", cable.path[0]])
            try:
                time.sleep(2.0)
                rows = readout_pty(cable, a.runs)
            finally:
                m.stop()
        med, worst, ideal, om, ow, n = _summary(rows)
        delay = statistics.median([r[3] for r in rows])
        print("| pty (`--optical-dev`) | --speed %s | %d | %.3f s | %.3f s | %.3f s | "
              "%+.1f %% / %+.1f %% (first character after %.1f ms) |"
              % (speed, n, ideal, med, worst, om * 100, ow * 100, delay * 1000))
    print("\n### R1 single reads in programming mode (send -> end of the reply on the wire)\n")
    print("| metering | reads | ideal (200 ms + wire) | median | worst | extra median / "
          "worst | metering speed during the run |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for speed in ("1", "max"):
        port = _free_port()
        m = Meter(speed, ["--optical-tcp", str(port)])
        try:
            time.sleep(1.5)
            lat = r1_latency(port, a.reads)
        finally:
            rep = m.stop()
        ms = [x[0] * 1000 for x in lat]
        ideal = lat[0][1] * 1000
        sim_rate = rep.get("sim_s", 0) / max(rep.get("wall_s", 1), 1e-9)
        print("| --speed %s | %d | %.1f ms | %.1f ms | %.1f ms | %+.1f / %+.1f ms | "
              "%.0f simulated s per wall s |" % (speed, len(ms), ideal, statistics.median(ms),
                                                 max(ms), statistics.median(ms) - ideal,
                                                 max(ms) - ideal, sim_rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
