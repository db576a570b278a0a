"""Virtual-board benchmark of the wired billing functions (issue 10 part A), for
docs/BENCHMARKS.md.

    python tools/bench_billing_sim.py [--days 2] [--runs 3]

1. Speed: ``firmware/main.py --speed max`` for ``--days`` simulated days with the two-rate
   plan of host_tests/system/test_sim_billing.py (EU DST, 15-min block demand, billing
   period end on the 1st) and, for comparison, with the default configuration (one
   tariff): simulated seconds per wall second, median of ``--runs`` runs each, and the
   wall time that makes for a simulated month and year.
2. Flash wear of the ``billing`` partition (boards/sim/board.py FLASH_LAYOUT: 128 KiB,
   32 KiB = 8 sectors): a run with ``--flash`` over the days, the erase count per sector
   from the NOR model's ``.wear`` file, extrapolated to a year (a demand capture every
   15 min writes the state record; a billing period close a snapshot).
"""

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "host_tests", "system")]
from test_sim_billing import PLAN  # noqa: E402

MPY = os.path.join(ROOT, ".venv", "bin", "micropython")
BILLING = (128 * 1024, 32 * 1024)


def run(args):
    env = dict(os.environ, MICROPYPATH=".frozen:firmware:lib:.")
    p = subprocess.run([MPY, "-X", "heapsize=4m", "firmware/main.py"] + [str(a) for a in args] +
                       ["--json", "--quiet", "--speed", "max"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=7200)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads([ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=float, default=2)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    dur = int(a.days * 86400)
    tmp = tempfile.mkdtemp()
    plan = os.path.join(tmp, "plan.json")
    with open(plan, "w") as f:
        json.dump(PLAN, f)
    start = ["--start", "2016-03-25T00:00:00Z", "--duration", dur]
    for name, extra in (("two-rate plan", ["--tariffs", plan]), ("default (one tariff)", [])):
        speeds = [dur / float(run(start + extra)["wall_s"]) for _ in range(a.runs)]
        s = statistics.median(speeds)
        print("- %s: %.0f simulated s per wall s (median of %d: %s); a month %.0f min, a "
              "year %.1f h of wall time" % (name, s, a.runs,
                                            ", ".join("%.0f" % x for x in speeds),
                                            30 * 86400 / s / 60, 365 * 86400 / s / 3600))
    img = os.path.join(tmp, "meter.img")
    d = run(start + ["--tariffs", plan, "--flash", img])
    with open(img + ".wear", "rb") as f:
        wear = f.read()
    n = len(wear) // 4
    counts = struct.unpack("<%dI" % n, wear)
    first = BILLING[0] // 4096
    sec = counts[first:first + BILLING[1] // 4096]
    per_year = [c * 365.0 / a.days for c in sec]
    b = d["billing"]
    print("- billing partition after %g days: %d demand captures, VZ %d; erases per sector "
          "%s; per year %s (max %.0f: %.0f years to 100 000 cycles, %.0f to 10 000)"
          % (a.days, b["demand"]["captures"], b["vz"], list(sec),
             ["%.0f" % x for x in per_year], max(per_year), 100000 / max(max(per_year), 1e-9),
             10000 / max(max(per_year), 1e-9)))


if __name__ == "__main__":
    main()
