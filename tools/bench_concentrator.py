"""Concentrator figures (docs/BENCHMARKS.md "Concentrator"): three meters on the simulated
RS-485 bus (tools/rs485_hub.py), a fourth virtual board as bus master
(``--concentrator``) with the uplink to a real mosquitto and a paho-mqtt head-end.

    .venv/bin/python tools/bench_concentrator.py [--cycles 4] [--speed 45]

Prints one JSON line: the real time of a good readout (request to BCC, median and max over
the concentrator's last 16), the concentrator's longest synchronous section
(``stall_max_ms``: a reading built and queued, an outbox erase), bytes on the bus per
readout (master sent / meters answered), forwarded messages and payload bytes per bus meter
reading (parts included), and the uplink's worst stall. Needs mosquitto (``make
uplink-broker``).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "host_tests", "system"))
sys.path.insert(0, os.path.join(ROOT, "tools"))

from broker import Mosquitto, Subscriber  # noqa: E402
from rs485_hub import Hub  # noqa: E402

MPYPATH = ".frozen:.frozen-lib:firmware:lib:."
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
METERS = ("10000001", "10000002", "10000003")


def _start(*args):
    env = dict(os.environ, MICROPYPATH=MPYPATH)
    return subprocess.Popen([MICROPYTHON, "-X", "heapsize=4m", "firmware/main.py", "--quiet"]
                            + [str(a) for a in args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=4)
    ap.add_argument("--speed", type=float, default=45)
    a = ap.parse_args()
    hub = Hub(0).start()
    procs = []
    tmp = tempfile.mkdtemp(prefix="bench-conc.")
    with Mosquitto() as b:
        he = Subscriber(b.port, "meters/#")
        try:
            for i, s in enumerate(METERS):
                load = os.path.join(tmp, "load%d.csv" % i)
                with open(load, "w") as f:
                    f.write("t_s,p_w,q_var\n0,%d,0\n" % (1000 * (i + 1)))
                procs.append(_start("--rs485-bus", "127.0.0.1:%d" % hub.port, "--serial", s,
                                    "--load", load, "--no-flash", "--no-uplink"))
                time.sleep(1.0)
            conc = _start("--rs485-bus", "127.0.0.1:%d" % hub.port, "--serial", "SIM00001",
                          "--concentrator", ",".join(METERS), "--broker",
                          "127.0.0.1:%d" % b.port, "--speed", a.speed, "--start",
                          "2016-01-01", "--duration", a.cycles * 900 + 800, "--json")
            out, err = conc.communicate(timeout=a.cycles * 900 / a.speed + 120)
        finally:
            for p in procs:
                p.terminate()
                p.communicate(timeout=10)
            hub.stop()
        time.sleep(0.5)
        he.stop()
    rep = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
    cc = rep["concentrator"]
    fw = [(t, p) for t, p in he.messages
          if t.endswith("/reading") and not t.startswith("meters/SIM00001/")]
    n = max(1, cc["readings"])
    res = {
        "cycles": cc["cycles"], "readings": cc["readings"], "failures": cc["failures"],
        "readout_ms_median": statistics.median(cc["read_ms"]) if cc["read_ms"] else None,
        "readout_ms_max": max(cc["read_ms"]) if cc["read_ms"] else None,
        "stall_max_ms": cc["stall_max_ms"], "uplink_stall_max_ms": rep["uplink"]["stall_max_ms"],
        "bus_tx_per_readout": cc["tx"] // n, "bus_rx_per_readout": cc["rx"] // n,
        "messages_per_reading": round(len(fw) / n, 2),
        "payload_bytes_per_reading": sum(len(p) for _t, p in fw) // n,
    }
    print(json.dumps(res))


if __name__ == "__main__":
    main()
