"""Fuzzing the IEC 62056-21 ports (tools/fuzz_iec.py), split in two (docs/BENCHMARKS.md):

1. the bulk, 100 000 frames into the optical and 100 000 into the RS-485 session, in process
   on the MicroPython unix port: frames fed straight into the firmware's session
   (iec62056.session.Session over ports.iec.IecMap) on a fake clock;
2. 2 x 2 500 frames through the real ports of a running firmware process, the optical TCP port
   and the RS-485 hub at the same time, while it meters a constant load at --speed 10. Before
   and after, the PyPI client ``iec62056-21`` reads both ports; the control channel's ``stop``
   then ends the process, whose ``--json`` line has the port counters, the registers and a heap log
   (``--heap-every 1``: gc.collect() + gc.mem_alloc() each wall second).
"""

import json
import math
import os
import socket
import subprocess
import threading
import time

from iecraw import Client, cmd
from simrun import MICROPYTHON, MPYPATH, ROOT, SIM_HEAP, stop_sim
from test_iec_client import Hub, _client, _free_port

import fuzz_iec

P_W, Q_VAR = 2300, 1100
BREAK = b"\x01B0\x03q"


def test_100k_frames_into_each_firmware_session():
    # the optical and the RS-485 session, 100 000 frames each, in two processes at once
    env = dict(os.environ, MICROPYPATH=MPYPATH)
    procs = [subprocess.Popen([MICROPYTHON, "tools/fuzz_iec.py", "session", "--frames",
                               "100000", "--seed", str(seed), "--quiet"] + extra, cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
             for seed, extra in ((7, []), (8, ["--rs485"]))]
    for p, port in zip(procs, ("optical", "rs485"), strict=True):
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, out[-3000:] + err[-3000:]
        out = json.loads(out.strip().splitlines()[-1])
        assert out["ok"] and out["frames"] >= 100000 and out["port"] == port, out
        assert out["heap_last"] - out["heap_first"] <= 1024, out
        for k in ("ident", "readout", "p0", "ack", "nak", "error", "data"):
            assert out["answers"].get(k, 0) > 10, (port, k, out["answers"])


def _readout(tmp, port, addr):
    out = _client(tmp, port, addr, "readout")
    assert "error" not in out, out
    data = {d[0]: d[1] for d in out["data"]}
    assert data["C.1.0"] == addr, data
    return data


def _both_readouts(tmp, ports, addr):
    """PyPI readouts of the optical port and the RS-485 bus at the same time."""
    got = {}

    def one(name, port):
        d = tmp / name
        d.mkdir(exist_ok=True)
        try:
            got[name] = _readout(d, port, addr)
        except AssertionError as e:
            got[name] = e

    th = [threading.Thread(target=one, args=item) for item in ports.items()]
    for t in th:
        t.start()
    for t in th:
        t.join()
    for name, v in got.items():
        assert isinstance(v, dict), (name, v)
    return got


def _heap_min(log, t_from, t_to=1e9):
    v = [b for (t, b) in log if t_from <= t <= t_to]
    assert v, ("no heap sample in the window", t_from, t_to, log)
    return min(v)


def _clock_set(port, addr):
    """A programming session writing the time (0.9.1) over ``port``. The clock-set limit is
    built at the first set over a port (its module and the period's sets from the audit
    trail, ~2 KB once: meter/catalogue.py ``_clock_gate``); the warm-up makes it before the
    heap baseline, as the fuzz's own W1 0.9.1 would after it. Allowed or refused (ER09), the
    limit is built either way. Returns the bytes sent."""
    c = Client(port)
    w, b0 = cmd("W", 1, "0.9.1(120000)"), cmd("B", 0)
    try:
        assert c.prog(addr) == b"\x06", "P1 refused"
        ans = c.x(w)
        assert ans == b"\x06" or ans.startswith(b"\x02(ER"), ans
        c.s.sendall(b0)
    finally:
        c.close()
    return len(b"/?%s!\r\n" % addr.encode()) + len(b"\x06051\r\n") + len(
        cmd("P", 1, "(00000000)")) + len(w) + len(b0)


def test_fuzz_running_meter_on_both_ports(tmp_path):
    load = tmp_path / "const.csv"
    load.write_text("t_s,p_w,q_var\n0,%d,%d\n" % (P_W, Q_VAR))
    addr = fuzz_iec.DEFAULT_ADDRESS
    hub = Hub(0).start()
    port = _free_port()
    ctl = _free_port()
    env = dict(os.environ, MICROPYPATH=MPYPATH)
    t0 = time.monotonic()
    p = subprocess.Popen([MICROPYTHON, "-X", "heapsize=" + SIM_HEAP, "firmware/main.py",
                          "--quiet", "--speed", "10", "--load",
                          str(load), "--optical-tcp", str(port), "--rs485-bus",
                          "127.0.0.1:%d" % hub.port, "--serial", addr, "--json",
                          "--heap-every", "1", "--no-uplink", "--control-tcp", str(ctl)],
                         cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    results = {}
    try:
        time.sleep(1.0)
        t_hub = time.monotonic()
        while hub.members < 1 and time.monotonic() - t_hub < 10:
            time.sleep(0.05)
        ports = {"optical": port, "rs485": hub.port}
        _both_readouts(tmp_path, ports, addr)  # warm-up: every code path has run once
        extra = {"optical": _clock_set(port, addr), "rs485": 0}  # (the fuzz's W1 0.9.1
        # would build the clock-set limit once, after the baseline)
        warm = time.monotonic() - t0
        time.sleep(2.5)
        fuzz_start = time.monotonic() - t0

        def fuzz(name, target, seed):
            results[name] = fuzz_iec.net_fuzz("127.0.0.1", target, 2500, seed=seed,
                                              address=addr, gap_ms=8, deadline_s=60,
                                              slow=False, settle_s=2.0, settle_max_s=60)

        th = [threading.Thread(target=fuzz, args=("optical", port, 3)),
              threading.Thread(target=fuzz, args=("rs485", hub.port, 4))]
        for t in th:
            t.start()
        for t in th:
            t.join()
        assert p.poll() is None, "the meter died under the fuzz"
        # A session left in programming mode ignores sign-ons until its 120 s inactivity
        # timeout: end it with a break first, as a hand-held unit does.
        for target in (port, hub.port):
            with socket.create_connection(("127.0.0.1", target)) as s:
                s.sendall(BREAK)
                time.sleep(0.3)
        after = _both_readouts(tmp_path, ports, addr)
        final = time.monotonic() - t0
        time.sleep(2.5)
        out, err = stop_sim(p, ctl, timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
        hub.stop()
    lines = out.decode().strip().splitlines()
    assert lines and lines[-1].startswith("{"), (out.decode()[-4000:], err.decode()[-4000:])
    rep = json.loads(lines[-1])
    for name in ("optical", "rs485"):
        assert results[name]["frames"] >= 2500, results
        st = rep["ports"][name]
        assert st["errors"] == 0, ("port task caught an error", name, st)
        # every byte reached the UART (two PyPI readouts of 19 bytes each and the break too),
        # and the session consumed a good part; the rest overflowed the 1 KiB rx buffer
        sent = results[name]["bytes_sent"] + 2 * 19 + len(BREAK) + extra[name]
        assert st["uart_rx"] == sent and st["rx"] > 1000, (name, st, results[name])
        assert after[name]["1.8.0"] > "0000000.000", after
    # metering went on: the registers match the constant load over the run's simulated time
    regs, sim_s = rep["registers"], rep["sim_s"]
    wh = P_W * sim_s / 3600
    assert wh - P_W * 3.0 / 3600 <= regs["1.8.0"] <= wh + 0.002, (regs, sim_s)
    assert abs(regs["5.8.0"] / regs["1.8.0"] - Q_VAR / P_W) < 1e-3, regs
    assert abs(regs["9.8.0"] / regs["1.8.0"] - math.hypot(P_W, Q_VAR) / P_W) < 1e-3, regs
    for k in ("2.8.0", "6.8.0", "7.8.0", "8.8.0", "10.8.0"):
        assert regs[k] == 0, (k, regs)
    # heap after gc.collect(): idle after the fuzz vs idle after the warm-up readouts (the
    # uplink off: its MQTT session to the test set-up's broker opens when it opens)
    log = rep["heap_log"]
    before = _heap_min(log, warm + 0.2, fuzz_start)
    late = _heap_min(log, final + 0.2)
    assert late - before <= 1024, (before, late, log)
