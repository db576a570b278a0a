#!/usr/bin/env python3
"""The meter's RAM on an emulated core, frozen modules and 32-bit objects (docs/BENCHMARKS.md).

    python3 tools/emu/heap_probe.py [--board MPS2_AN385] [--sim-s 300] [--flash]

Builds the unit-test image (tools/emu/emu.py) and runs on it, under ``-icount shift=0``:
every device module of this checkout (firmware/ without main.py, lib/ without the billing
and modem cores, which the firmware does not import yet) imported one by one; then
``app.Meter`` on the virtual board without flash (``--flash``: with its 1 MiB NOR image,
outside the heap on MPS2_AN385: every ring log, the journal, settings, audit) and a constant
1 kW load, then every task
for ``--sim-s`` simulated seconds. Prints ``gc.mem_alloc()`` differences after
``gc.collect()``: the modules' RAM (module objects, globals, functions and classes made at
import; their bytecode stays in flash), ``Meter()`` itself, and the heap in use after the
run (Meter and tasks, steady). The virtual board's models are built before the first
figure, so none of them is counted. Deterministic (no wall clock). Stdlib only.
"""

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
board.tasks = lambda meter: []
asyncio.run(m.main(%d * 1000))
asyncio.new_event_loop()
gc.collect()
print("PROBE running=%%d wh=%%d" %% (gc.mem_alloc() - b, m.registers.whole[0]))
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
                if not f.endswith(".py") or f in ("manifest.py", "main.py"):
                    continue
                parts = ([] if rel == "." else rel.split("/")) + [f[:-3]]
                if parts[-1] == "__init__":
                    parts.pop()
                out.append(".".join(parts))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--board", choices=sorted(emu.BOARDS), default="MPS2_AN385")
    ap.add_argument("--sim-s", type=int, default=300)
    ap.add_argument("--flash", action="store_true", help="the meter with its flash")
    ap.add_argument("--parts", action="store_true",
                    help="also the heap each part takes (every class app.Meter builds)")
    a = ap.parse_args()
    names = device_modules()
    elf = emu.build(a.board)
    out = emu.run_code(a.board, elf, CODE % (not a.flash, names, len(names),
                                             _PARTS if a.parts else (), a.sim_s),
                       timeout=900, icount=0)
    for name, n in re.findall(r"PART (\w+)=(-?\d+)", out):
        print("  %-12s %6s B" % (name, n))
    got = dict(re.findall(r"(\w+)=(-?\d+)", " ".join(
        ln for ln in out.splitlines() if ln.startswith("PROBE"))))
    if "running" not in got:
        raise SystemExit("heap_probe on %s failed:\n%s" % (a.board, out))
    print("%s: %s modules imported: %s B; Meter(): %s B; Meter and tasks after %d s "
          "(steady): %s B; 1.8.0 %s Wh" % (a.board, got["count"], got["modules"], got["meter"],
                                         a.sim_s, got["running"], got["wh"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
