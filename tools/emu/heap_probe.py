#!/usr/bin/env python3
"""The meter's RAM on an emulated core, frozen modules and 32-bit objects (docs/BENCHMARKS.md).

    python3 tools/emu/heap_probe.py [--board MPS2_AN385] [--sim-s 300] [--flash] [--parts]
        [--every S] [--ballast B]
    python3 tools/emu/heap_probe.py --modules [--board NETDUINO2] [--sim-s 300]

Builds the unit-test image (tools/emu/emu.py) and runs on it, under ``-icount shift=0``:
every device module of this checkout (firmware/ without main.py and preload.py, frozen only
with main; lib/ without the billing
and modem cores, which the firmware does not import yet) imported one by one; then
``app.Meter`` on the virtual board without flash (``--flash``: with its 1 MiB NOR image,
outside the heap on MPS2_AN385: every ring log, the journal, settings, audit) and a constant
1 kW load, then every task
for ``--sim-s`` simulated seconds. Prints ``gc.mem_alloc()`` differences after
``gc.collect()``: the modules' RAM (module objects, globals, functions and classes made at
import; their bytecode stays in flash), ``Meter()`` itself, and the heap in use after the
run (Meter and tasks, steady). The virtual board's models are built before the first
figure, so none of them is counted. Deterministic (no wall clock). Stdlib only.

``--every S`` (e.g. ``--sim-s 86400 --every 60`` for a simulated day): a task of the probe
(in place of the virtual board's own tasks) collects and reads ``gc.mem_alloc()`` every S
simulated seconds: the peak of live data (meter and tasks, what the board's models add
after they are built included: their state is fixed-size, the NOR image outside the heap
with ``--flash``) and the lowest ``gc.mem_free()``. ``--ballast B``: a B-byte bytearray
allocated first, at the bottom of the heap, so the meter boots and runs in a heap B bytes
smaller (the image's heap size is fixed at build time): bisected, the smallest heap a meter
boots and runs in.

``--modules``: the RAM of each device module of firmware/ and lib/ on its own, imported in an
order where its module-level imports come first (read from the source with ``ast``), so a
row is that module's module object, globals dict, functions, classes and module-level
tables; marked ``*`` when a meter on the virtual board without flash has it loaded after
``Meter()`` and ``--sim-s`` seconds of its tasks (a fresh boot, the same load; with
``--flash`` a meter with its flash, which MPS2_AN385 has room for).
"""

import ast

import argparse
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import emu  # noqa: E402

CODE = """
import gc, asyncio
_ballast = bytearray(%d) if %d else None
import emu_unit
emu_unit.setup()
from boards.sim.board import Options, SimBoard
from simkit import StepTrace
o = Options()
o.quiet = True
o.no_flash = %r
o.speed = 0.0
board = SimBoard(o, trace=StepTrace([(0, 1000000, 0)]))
gc.collect()
a = gc.mem_alloc()
for n in %r:
    __import__(n)
gc.collect()
b = gc.mem_alloc()
print("PROBE modules=%%d count=%%d" %% (b - a, %d))
import app
PARTS = %r
last = [gc.mem_alloc()]
def _wrap(modname, name):
    mod = __import__(modname, None, None, [name])
    cls = getattr(mod, name)
    def make(*a, **k):
        gc.collect()
        a0 = gc.mem_alloc()
        r = cls(*a, **k)
        gc.collect()
        print("PART %%s=%%d" %% (name, gc.mem_alloc() - a0))
        return r
    setattr(mod, name, make)
    if hasattr(app, name):
        setattr(app, name, make)
for _m, _n in PARTS:
    _wrap(_m, _n)
m = app.Meter(board)
gc.collect()
print("PROBE meter=%%d" %% (gc.mem_alloc() - b))
EVERY = %d
peak = [0, 0, 1 << 30]
def _sample(t):
    gc.collect()
    u = gc.mem_alloc() - b
    if u > peak[0]:
        peak[0] = u
        peak[1] = t
    f = gc.mem_free()
    if f < peak[2]:
        peak[2] = f
async def sampler():
    t = 0
    while True:
        await board.clock.sleep_ms(EVERY * 1000)
        t += EVERY
        _sample(t)
        if t %% 3600 == 0:
            print("HOUR t=%%d live=%%d peak=%%d" %% (t, gc.mem_alloc() - b, peak[0]))
board.tasks = (lambda meter: [asyncio.create_task(sampler())]) if EVERY else (lambda meter: [])
asyncio.run(m.main(%d * 1000))
asyncio.new_event_loop()
gc.collect()
print("PROBE running=%%d wh=%%d" %% (gc.mem_alloc() - b, m.registers.whole[0]))
if EVERY:
    print("PROBE peak=%%d peak_t=%%d free_min=%%d heap=%%d ballast=%%d" %% (
        peak[0], peak[1], peak[2], gc.mem_alloc() + gc.mem_free(), len(_ballast or b"")))
"""


# the parts app.Meter builds, (module, class): each measured around its constructor (what it
# keeps after gc.collect(), its sub-parts included)
_PARTS = (("events", "EventLog"), ("meter.eventstore", "EventStore"),
          ("meter.settings", "Settings"), ("ade7953", "ADE7953"), ("energy", "Registers"),
          ("meter.testoutput", "TestOutput"), ("meter.tariffs", "Tariffs"),
          ("meter.demand", "Demand"), ("meter.billing", "Billing"),
          ("meter.metering", "Metering"), ("meter.catalogue", "Catalogue"),
          ("meter.audit", "AuditTrail"), ("tasks.display", "DisplayTask"),
          ("meter.storage", "Storage"), ("meter.profile", "Profiles"),
          ("tasks.leds", "TestLed"), ("tasks.tamper", "TamperWatch"),
          ("tasks.supervisor", "Supervisor"))


def device_modules(root=ROOT):
    """Dotted names of the device modules of the checkout at ``root`` (packages by name)."""
    out = []
    for top in ("firmware", "lib"):
        base = os.path.join(root, top)
        for dirpath, dirnames, files in os.walk(base):
            rel = os.path.relpath(dirpath, base).replace(os.sep, "/")
            dirnames[:] = sorted(d for d in dirnames if d[0] not in "._" and not (
                rel == "." and d in ("billing", "modem")))
            for f in sorted(files):
                if not f.endswith(".py") or f in ("manifest.py", "main.py", "preload.py"):
                    continue
                parts = ([] if rel == "." else rel.split("/")) + [f[:-3]]
                if parts[-1] == "__init__":
                    parts.pop()
                out.append(".".join(parts))
    return out


MODS_CODE = """
import gc
import emu_unit
emu_unit.setup()
gc.collect()
for n in %r:
    a = gc.mem_alloc()
    try:
        __import__(n)
    except Exception as e:
        print("ERR %%s %%r" %% (n, e))
    gc.collect()
    print("MOD %%s %%d" %% (n, gc.mem_alloc() - a))
"""

LOADED_CODE = """
import gc, sys, asyncio
import emu_unit
emu_unit.setup()
before = set(sys.modules)
from boards.sim.board import Options, SimBoard
from simkit import StepTrace
def run():
    o = Options()
    o.quiet = True
    o.no_flash = %r
    o.speed = 0.0
    board = SimBoard(o, trace=StepTrace([(0, 1000000, 0)]))
    import app
    m = app.Meter(board)
    board.tasks = lambda meter: []
    asyncio.run(m.main(%d * 1000))
    asyncio.new_event_loop()
run()
print("LOADED " + " ".join(sorted(k for k in sys.modules if k not in before)))
"""


def source_modules(root=ROOT):
    """{dotted name: path} of every device module of firmware/ and lib/ (no main.py, no
    manifests; packages by their name)."""
    out = {}
    for top in ("firmware", "lib"):
        base = os.path.join(root, top)
        for dirpath, dirnames, files in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d[0] not in "._")
            rel = os.path.relpath(dirpath, base).replace(os.sep, "/")
            for f in sorted(files):
                if not f.endswith(".py") or f in ("manifest.py", "main.py", "preload.py"):
                    continue
                parts = ([] if rel == "." else rel.split("/")) + [f[:-3]]
                if parts[-1] == "__init__":
                    parts.pop()
                out[".".join(parts)] = os.path.join(dirpath, f)
    return out


def _module_level_imports(name, path, mods):
    """The project modules ``name`` imports when it is imported (module level and class
    bodies; not inside functions, which import when called)."""
    pkg = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    found = set()

    def visit(nodes):
        for nd in nodes:
            if isinstance(nd, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(nd, ast.Import):
                found.update(a.name for a in nd.names)
            elif isinstance(nd, ast.ImportFrom):
                src = nd.module or ""
                if nd.level:
                    base = pkg
                    for _ in range(nd.level - 1):
                        base = base.rpartition(".")[0]
                    src = base + ("." + src if src else "")
                found.add(src)
                found.update(src + "." + a.name for a in nd.names)
            visit(ast.iter_child_nodes(nd))

    visit(tree.body)
    deps = set()
    for m in found:
        while m:  # importing a.b imports a too
            if m in mods and m != name:
                deps.add(m)
            m = m.rpartition(".")[0]
    return deps


def import_order(mods):
    """Every module after the modules it imports at module level (depth first)."""
    order, seen = [], set()

    def put(n):
        if n in seen:
            return
        seen.add(n)
        for d in sorted(_module_level_imports(n, mods[n], mods)):
            put(d)
        order.append(n)

    for n in sorted(mods):
        put(n)
    return order


def probe_modules(board, sim_s, flash, elf=None):
    """[(module, bytes, loaded by a running meter)] in import order, after a build (or on
    ``elf``, an image built before from this checkout's modules)."""
    order = import_order(source_modules())
    elf = elf or emu.build(board)
    out = emu.run_code(board, elf, MODS_CODE % (order,), timeout=900, icount=0)
    errs = re.findall(r"ERR (\S+) (.*)", out)
    if errs:
        raise SystemExit("heap_probe --modules on %s: imports failed: %r" % (board, errs))
    got = dict((n, int(b)) for n, b in re.findall(r"MOD (\S+) (-?\d+)", out))
    out2 = emu.run_code(board, elf, LOADED_CODE % (not flash, sim_s), timeout=900, icount=0)
    m = re.search(r"LOADED (.*)", out2)
    if not m:
        raise SystemExit("heap_probe --modules on %s: the meter run failed:\n%s" % (board,
                                                                                  out2))
    loaded = set(m.group(1).split())
    return [(n, got[n], n in loaded) for n in order]


def print_modules(rows, board, sim_s, flash):
    print("%s: RAM of each device module after import (B; * = loaded by a meter %s after "
          "Meter() and %d s of its tasks)" % (board, "with flash" if flash else "without flash",
                                              sim_s))
    for n, b, ld in sorted(rows, key=lambda r: -r[1]):
        print("  %s %-26s %6d" % ("*" if ld else " ", n, b))
    used = [r for r in rows if r[2]]
    print("all %d modules: %d B; the %d a meter loads: %d B" % (
        len(rows), sum(r[1] for r in rows), len(used), sum(r[1] for r in used)))


def _runs(a, elf, ballast):
    """(heap size, True if the meter booted and ran --sim-s with ``ballast``)."""
    code = CODE % (ballast, ballast, not a.flash, (), 0, (), a.sim_s, a.sim_s)
    out = emu.run_code(a.board, elf, code, timeout=max(900, a.sim_s), icount=0)
    m = re.search(r"PROBE peak=\d+ peak_t=\d+ free_min=(\d+) heap=(\d+)", out)
    if m is None and "MemoryError" not in out:
        raise SystemExit("heap_probe on %s with ballast %d failed:\n%s" % (a.board, ballast, out))
    return (int(m.group(2)) - ballast if m else None), m is not None


def min_heap(a, elf):
    """Bisect the ballast: the largest with which the meter still runs, as a heap size."""
    heap, ok = _runs(a, elf, 0)
    if not ok:
        raise SystemExit("heap_probe --min-heap on %s: the meter does not run at all" % a.board)
    lo, hi = 0, heap  # lo runs, hi does not
    while hi - lo > 512:
        mid = (lo + hi) // 2 // 16 * 16
        ok = _runs(a, elf, mid)[1]
        print("  ballast %6d B: heap %6d B: %s" % (mid, heap - mid, "runs" if ok else
                                                       "MemoryError"), flush=True)
        lo, hi = (mid, hi) if ok else (lo, mid)
    print("%s: the meter %s boots and runs %d simulated s in a heap of %d B (not in %d B; "
          "the virtual board's models and the probe's imports included)" % (
              a.board, "with flash" if a.flash else "without flash", a.sim_s, heap - lo,
              heap - hi))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--board", choices=sorted(emu.BOARDS), default="MPS2_AN385")
    ap.add_argument("--sim-s", type=int, default=300)
    ap.add_argument("--flash", action="store_true", help="the meter with its flash")
    ap.add_argument("--parts", action="store_true",
                    help="also the heap each part takes (every class app.Meter builds)")
    ap.add_argument("--every", type=int, default=0, metavar="S",
                    help="also the peak of live data: a collection and gc.mem_alloc() every S "
                         "simulated seconds of the run (and the lowest gc.mem_free())")
    ap.add_argument("--ballast", type=int, default=0, metavar="B",
                    help="a B-byte bytearray allocated first, at the bottom of the heap: the "
                         "meter runs in a heap B bytes smaller (the minimum heap, bisected)")
    ap.add_argument("--min-heap", action="store_true",
                    help="bisect --ballast (512 B steps; the meter's own imports only, not "
                         "every device module): the smallest heap the meter boots and runs "
                         "--sim-s in")
    ap.add_argument("--elf", help="a firmware.elf built before (default: build this checkout)")
    ap.add_argument("--modules", action="store_true",
                    help="the RAM of each device module instead (see the docstring)")
    a = ap.parse_args()
    if a.modules:
        print_modules(probe_modules(a.board, a.sim_s, a.flash, a.elf), a.board, a.sim_s, a.flash)
        return 0
    names = device_modules()
    elf = a.elf or emu.build(a.board)
    if a.min_heap:
        return min_heap(a, elf)
    code = CODE % (a.ballast, a.ballast, not a.flash, names, len(names),
                   _PARTS if a.parts else (), a.every, a.sim_s)
    out = emu.run_code(a.board, elf, code, timeout=max(900, a.sim_s), icount=0)
    for ln in out.splitlines():
        if ln.startswith("HOUR"):
            print("  " + ln)
    for name, n in re.findall(r"PART (\w+)=(-?\d+)", out):
        print("  %-12s %6s B" % (name, n))
    got = dict(re.findall(r"(\w+)=(-?\d+)", " ".join(
        ln for ln in out.splitlines() if ln.startswith("PROBE"))))
    if "running" not in got:
        raise SystemExit("heap_probe on %s failed:\n%s" % (a.board, out))
    print("%s: %s modules imported: %s B; Meter(): %s B; Meter and tasks after %d s "
          "(steady): %s B; 1.8.0 %s Wh" % (a.board, got["count"], got["modules"], got["meter"],
                                         a.sim_s, got["running"], got["wh"]))
    if a.every:
        print("%s: live data peak (collection every %d simulated s) %s B at t=%s s; lowest "
              "gc.mem_free() %s B of a %s B heap (ballast %s B)" % (
                  a.board, a.every, got["peak"], got["peak_t"], got["free_min"], got["heap"],
                  got["ballast"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
