"""Register agreement between --speed max and real-time-scaled speeds (docs/BENCHMARKS.md).

    .venv/bin/python tools/bench_speed.py [--speeds 600,3600] [--day-speeds 3600,600]

Runs the virtual board (MicroPython unix port, sources as in ``make sim``) over

1. the four-quadrant trace (boards/sim/loads/four_quadrant.csv, 1 260 s: every register), and
2. one day of the bundled household + PV load (86 400 s),

at ``--speed max`` and at each speed N, and prints a Markdown table: per run the simulated
end time, wall time, simulated s per wall s, whether all 11 registers, the pulse count and the
LED flashes equal the ``--speed max`` run exactly (JSON at 1 mWh resolution), the largest
register difference in mWh, and 1.8.0 against the exact integral (tools/trace_integral.py).
A day at --speed 600 takes 144 s of wall time by design.
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from trace_integral import integral, read_trace  # noqa: E402

MPY = os.path.join(os.path.dirname(sys.executable), "micropython")
FOUR_Q = "boards/sim/loads/four_quadrant.csv"
DAY = "boards/sim/loads/household_pv_2016.csv"


def run(load, speed, duration):
    env = dict(os.environ, MICROPYPATH=".frozen:firmware:lib:.")
    t0 = time.monotonic()
    p = subprocess.run([MPY, "-X", "heapsize=4m", "firmware/main.py",
                        "--load", load, "--speed", speed,
                        "--duration", str(duration), "--json", "--quiet", "--no-flash"],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if p.returncode:
        raise SystemExit("run failed: %s" % p.stderr[-1000:])
    out = json.loads([ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1])
    out["process_wall_s"] = wall
    return out


def table(load, duration, speeds, skip_s=0.0):
    ref = run(load, "max", duration)
    exact = integral(read_trace(os.path.join(ROOT, load)), duration, skip_s=skip_s)["1.8.0"]
    print("### %s, %d simulated s\n" % (load, duration))
    print("| --speed | sim_s | wall s | sim s / wall s | registers, pulses, LED = max | "
          "max diff (mWh) | 1.8.0 (Wh) | 1.8.0 - exact (mWh) |")
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    for speed in ["max"] + speeds:
        out = ref if speed == "max" else run(load, speed, duration)
        diff = max(abs(round((out["registers"][k] - ref["registers"][k]) * 1000))
                   for k in ref["registers"])
        same = (out["registers"] == ref["registers"] and out["pulses"] == ref["pulses"]
                and out["led_kwh_flashes"] == ref["led_kwh_flashes"])
        w = out["process_wall_s"]
        a = out["registers"]["1.8.0"]
        print("| %s | %.3f | %.2f | %.0f | %s | %d | %.3f | %+.1f |" % (
            speed, out["sim_s"], w, out["sim_s"] / w if w else 0, "yes" if same else "NO",
            diff, a, (a - exact) * 1000))
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--speeds", default="600,3600", help="speeds for the four-quadrant trace")
    ap.add_argument("--day-speeds", default="3600,600", help="speeds for the day")
    a = ap.parse_args()
    table(FOUR_Q, 1260, a.speeds.split(","))
    table(DAY, 86400, a.day_speeds.split(","), skip_s=0.045)


if __name__ == "__main__":
    main()
