#!/usr/bin/env python3
"""Size and budget report for the emulated targets (issue 9, docs/BENCHMARKS.md).

    python3 tools/emu/bench.py [--boards MPS2_AN385,NETDUINO2] [--runs 3]

Per target: the firmware image's text/data/bss (arm-none-eabi-size), the frozen application
inside it (frozen_content.o), static RAM without the heap and the RAM disk, the free heap
after boot, the meter's heap while metering, and the metering step in emulated instructions:
QEMU runs with ``-icount shift=0`` (one instruction = 1 ns of virtual time), so SysTick
cycles at the core clock convert to instructions as cycles * 1e9 / cpu_hz. Medians of
``--runs`` runs (deterministic under -icount, so they agree). Stdlib only.
"""

import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import emu  # noqa: E402

CODE = "import emu_unit; emu_unit.setup()\nimport emu_bench; emu_bench.run(%d, %d)\n"


def size(path):
    out = subprocess.run(["arm-none-eabi-size", path], check=True, stdout=subprocess.PIPE,
                         text=True).stdout.splitlines()[1].split()
    return int(out[0]), int(out[1]), int(out[2])


def bench(board, runs, steps, sim_s):
    b = emu.BOARDS[board]
    t0 = time.time()
    elf = emu.build(board)
    build_s = time.time() - t0
    bdir = os.path.dirname(elf)
    text, data, bss = size(elf)
    ftext, fdata, _ = size(os.path.join(bdir, "frozen_content.o"))
    vals = {}
    for _ in range(runs):
        out = emu.run_code(board, elf, CODE % (steps, sim_s), timeout=600, icount=0)
        for k, v in re.findall(r"^BENCH (\w+)=(-?\d+)", out, re.M):
            vals.setdefault(k, []).append(int(v))
        if "BENCH steps=" not in out:
            raise SystemExit("bench on %s failed:\n%s" % (board, out))
    med = {k: sorted(v)[len(v) // 2] for k, v in vals.items()}
    ins = 1e9 / b["cpu_hz"]  # instructions per SysTick cycle under -icount shift=0
    r = dict(board=board, core=b["core"], text=text, data=data, bss=bss, frozen=ftext + fdata,
             heap=b["heap"], ramdisk=b["ramdisk_kb"] * 1024,
             static=data + bss - b["heap"] - (b["ramdisk_kb"] + (
                 0 if b.get("flashmem_addr") else b["flashmem_kb"])) * 1024,
             build_s=build_s,
             step_insn=med["step_cycles"] * ins, step_model_insn=med["step_model_cycles"] * ins,
             loop_insn=med["loop10k_cycles"] * ins / 10000, **med)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--boards", default="MPS2_AN385,NETDUINO2")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--sim-s", type=int, default=300)
    a = ap.parse_args()
    rows = [bench(bd, a.runs, a.steps, a.sim_s) for bd in a.boards.split(",")]
    print("| target | text | data | bss | frozen app (in text) | static RAM w/o heap, RAM disk, "
          "flash arena "
          "| heap | free heap after boot | meter heap in use: peak / steady (before) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| %s | %d | %d | %d | %d | %d | %d | %d | %d / %d (%d) |" % (
            r["board"], r["text"], r["data"], r["bss"], r["frozen"], r["static"], r["heap"],
            r["boot_free"], r["meter_alloc_peak"], r["meter_alloc_steady"],
            r["meter_alloc_before"]))
    print()
    print("| target | Metering.step(), fixed bus | step through the ADE7953 model | empty "
          "loop turn | 1.8.0 after %d s at 1 kW |" % a.sim_s)
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print("| %s | %.0f instructions (%d cycles at %d MHz) | %.0f instructions | %.1f "
              "instructions | %d Wh in %d steps |" % (
                  r["board"], r["step_insn"], r["step_cycles"],
                  emu.BOARDS[r["board"]]["cpu_hz"] // 1000000, r["step_model_insn"],
                  r["loop_insn"], r["registers_wh"], r["steps"]))
    print()
    for r in rows:
        lo, hi = r["step_insn"] * 1.0, r["step_insn"] * 1.5
        print("- %s: one step per second on a 125 MHz RP2040 (Cortex-M0+, CPI 1.0-1.5 assumed "
              "on the Cortex-M3 instruction count): %.0f-%.0f us, %.3f-%.3f %% of the CPU" % (
                  r["board"], lo / 125, hi / 125, lo / 125e6 * 100, hi / 125e6 * 100))


if __name__ == "__main__":
    main()
