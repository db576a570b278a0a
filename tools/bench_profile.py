"""Load profile figures (docs/BENCHMARKS.md): bytes per 15-minute row and days held in the
virtual board's 512 KiB ``profile`` partition with the default 6 channels, flash erases per
sector per year, and the ``R5 P.01`` readout time for 1 and 30 days at 9600 Bd against the
wire time.

The profile is written by the firmware's own code (firmware/meter/profile.py) on the
virtual board's NOR model (boards/sim/norflash.py, 1 MiB image, the profile partition at
256 KiB), one 15-minute row per step from the bundled household + PV trace (its 15-minute
means: A+/A- = P x 0.25 h, R+/R- = Q x 0.25 h, demand = the interval's mean power, V =
230.0), for ``--days`` days; then the image is booted on the virtual board (``--speed 1``,
the optical port on TCP) and read with ``R5 P.01(from;to)`` in programming mode.

    .venv/bin/python tools/bench_profile.py [--days 400] [--runs 3]
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in ("host_tests/unit", "host_tests/shim", "lib", "firmware", ""):
    sys.path.insert(0, os.path.join(ROOT, _p))

BAUD = 9600
REACTION_S = 0.2


def bcc(b):
    x = 0
    for c in b:
        x ^= c
    return x & 0x7F


def command(c, t, data=None):
    """``SOH C t [STX data] ETX BCC``."""
    body = bytes((ord(c), 0x30 + t)) + ((b"\x02" + data.encode()) if data is not None else b"")
    body += b"\x03"
    return b"\x01" + body + bytes((bcc(body),))


def _recv_until(s, pred, timeout=120):
    buf = bytearray()
    end = time.monotonic() + timeout
    while not pred(buf):
        s.settimeout(max(0.01, end - time.monotonic()))
        d = s.recv(65536)
        if not d:
            raise RuntimeError("connection closed: %r" % bytes(buf[-200:]))
        buf.extend(d)
    return bytes(buf)


def _done(b):
    i = b.find(b"\x03")
    return i >= 0 and len(b) > i + 1


def read_profile(port, requests, timeout=600, password="00000000"):
    """Sign on at the optical TCP port, programming mode at 9600 Bd, P1, then each request
    ``(command type 5 or 6, data set)``; returns ``[(text between STX and ETX, seconds from
    the request to the last byte, bytes)]`` (the BCC checked)."""
    t0 = time.monotonic()
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            break
        except OSError:
            if time.monotonic() - t0 > 30:
                raise
            time.sleep(0.2)
    out = []
    try:
        s.sendall(b"/?!\r\n")
        _recv_until(s, lambda b: b.endswith(b"\n"))
        time.sleep(0.2)
        s.sendall(b"\x06051\r\n")
        _recv_until(s, _done)  # P0
        s.sendall(command("P", 1, "(%s)" % password))
        ack = _recv_until(s, lambda b: len(b) >= 1)
        if ack != b"\x06":
            raise RuntimeError("P1 answered %r" % ack)
        for ctype, ds in requests:
            s.sendall(command("R", ctype, ds))
            t1 = time.monotonic()
            data = _recv_until(s, _done, timeout)
            dt = time.monotonic() - t1
            if data[0] != 2 or data[-2] != 3 or bcc(data[1:-1]) != data[-1]:
                raise RuntimeError("bad answer: %r" % data[-40:])
            out.append((data[1:-2].decode(), dt, len(data)))
        s.sendall(command("B", 0))
    finally:
        s.close()
    return out


def build(img, days, t0):
    """Write ``days`` of 15-minute rows into a fresh image; returns the figures."""
    from boards.sim.board import SimBoard
    from boards.sim.norflash import NORFlash
    from energy import A_MINUS, A_PLUS, Q1, Q2, Q3, Q4, Registers
    from flashstore.flash import Partition
    from meter.profile import Profiles

    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from trace_integral import read_trace

    for f in (img, img + ".wear", img + ".rtc"):
        if os.path.exists(f):
            os.remove(f)
    off, size = SimBoard.FLASH_LAYOUT["profile"]
    nor = NORFlash(SimBoard.FLASH_SIZE, 4096, 256, path=img)
    part = Partition(nor, off, size)
    trace = read_trace(os.path.join(ROOT, "boards/sim/loads/household_pv_2016.csv"))
    from simkit import ManualClock, MeterStub

    clk = ManualClock(t0)
    regs = Registers(256, 256, 256)
    pr = Profiles(regs, MeterStub(), clk, None, part)
    pr.start()
    w = regs.whole
    frac = [0.0] * 8
    n = days * 96
    for k in range(n):
        _t, p, q = trace[k % len(trace)]
        for i, e in ((A_PLUS, max(p, 0)), (A_MINUS, max(-p, 0)),
                     (Q1 if p >= 0 else Q2, max(q, 0)), (Q4 if p >= 0 else Q3, max(-q, 0))):
            frac[i] += e * 0.25
            whole = int(frac[i])
            frac[i] -= whole
            w[i] += whole
        clk.now += 900000
        pr.interval(0, 0, 0, 900000)
        pr.service()
    p = pr.items[0]
    rows = list(p.iter_rows())
    main = p.store.main
    recs = sum(1 for _ in p.store.records())
    in_main = len(rows) - p.buf.n
    ss = part.sector_size
    first = off // ss
    n_main = main.sectors
    wear = nor.erase_counts[first:first + size // ss]
    nor.close()
    years = days / 365.25
    return {
        "days_written": days, "rows_held": len(rows), "days_held": len(rows) / 96,
        "first_row": rows[0][0], "last_row": rows[-1][0], "records": recs,
        "rows_per_record": in_main / recs, "bytes_per_row": recs * main.slot_size / in_main,
        "main_sectors": n_main, "tail_sectors": p.store.tail.sectors,
        "main_erases_per_sector_year": max(wear[:n_main]) / years,
        "tail_erases_per_sector_year": max(wear[n_main:]) / years,
        "min_kept_records": main.min_kept,
    }


def readout(img, start, runs, days_list=(1, 30)):
    """Boot the image on the virtual board and time P.01 reads of the last N days."""
    from billing.localtime import Zone

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    env = dict(os.environ, MICROPYPATH=".frozen:firmware:lib:.")
    mp = os.path.join(os.path.dirname(sys.executable), "micropython")
    p = subprocess.Popen([mp, "-X", "heapsize=4m", "firmware/main.py",
                          "--flash", img, "--start", str(start),
                          "--quiet", "--speed", "1", "--optical-tcp", str(port)],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    z = Zone()
    out = {}
    try:
        for d in days_list:
            rng = "P.01(%s;%s)" % (z.vdew_stamp(start - d * 86400, False),
                                    z.vdew_stamp(start, False))
            got = []
            for _ in range(runs):
                (text, dt, nbytes), = read_profile(port, [(5, rng)])
                got.append((dt, nbytes, text.count("\n")))
                time.sleep(0.5)
            med = statistics.median(g[0] for g in got)
            nb = got[0][1]
            wire = REACTION_S + nb * 10 / BAUD
            out[d] = {"median_s": med, "max_s": max(g[0] for g in got), "bytes": nb,
                      "lines": got[0][2], "wire_s": wire, "ratio": med / wire}
    finally:
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=60)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=400, help="days of 15-minute rows written")
    ap.add_argument("--runs", type=int, default=3, help="readouts per range")
    ap.add_argument("--image", default="/tmp/bench_profile.img")
    ap.add_argument("--no-readout", action="store_true", help="capacity and wear only")
    a = ap.parse_args(argv)
    from civil import seconds

    t0 = seconds(2026, 1, 1)
    f = build(a.image, a.days, t0)
    print("### Load profile capacity and wear (%d days of 15-minute rows, 6 channels)\n"
          % a.days)
    for k, v in f.items():
        print("- %s: %s" % (k, ("%.2f" % v) if isinstance(v, float) else v))
    if a.no_readout:
        return
    end = t0 + a.days * 86400 + 60
    r = readout(a.image, end, a.runs)
    print("\n### R5 P.01 readout at 9600 Bd (request sent -> last byte received, median of"
          " %d)\n" % a.runs)
    print("| range | lines | bytes | measured s (median / max) | wire s | ratio |")
    print("|---|---|---|---|---|---|")
    for d, v in r.items():
        print("| %d day%s | %d | %d | %.2f / %.2f | %.2f | %.3f |" % (
            d, "s" if d > 1 else "", v["lines"], v["bytes"], v["median_s"], v["max_s"],
            v["wire_s"], v["ratio"]))


if __name__ == "__main__":
    main()
