#!/usr/bin/env python3
"""``make deploy`` against an emulated board (issue 9): tools/deploy.py with mpremote over the
UART of the QEMU Cortex-M3 build (a pty), onto its RAM-disk file system, then a check on the
board that the deployed modules are what runs: /lib/app.mpy etc. import (mpy-cross 1.29
bytecode on MicroPython 1.25), /main.py is firmware/main.py, and meter.swid computes the metrology
checksum from the deployed .mpy files (equal to the CRC-32 of the same files on the host).
Then the whole app is imported from the .mpy files as a device boots (firmware/preload.py's
order, a collection after each module) on a fresh heap, once per layout in PADS (0..4 KB
allocated and kept before it): each must import and leave a free block of MIN_BLOCK or more.

``--run-s S`` (a measurement, not in ``make test``): then boot a whole meter from the .mpy
files as firmware/main.py does (preload, the virtual board, ``app.Meter``, every task) and run
S simulated seconds at 1 kW, reporting the heap at each stage and the lowest free heap (a
collection every simulated minute). ``--heap-kib K``: an MPS2_AN385 image with a K KiB heap
(its own build folder) instead of 192 KiB, to find what heap a .mpy deployment needs
(docs/BENCHMARKS.md "Deploy: the boot's import order").

    .venv/bin/python tools/emu/deploy_test.py [--heap-kib K] [--run-s S]

Prints ``N passed, N failed``; exits non-zero on a failure. The emulated firmware has the
project's modules frozen in too: the check puts /lib ahead of them on sys.path.
"""

import os
import re
import subprocess
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import emu  # noqa: E402

MPREMOTE = os.path.join(emu.EMU_DIR, "tools-venv", "bin", "mpremote")
# Heap layout perturbations for the app's import: bytes allocated (and kept) before it, as a
# different board, boot script or firmware version would leave the heap
PADS = (0, 64, 256, 512, 1024, 1536, 2048, 3072, 4096)
# the largest free block every layout must keep after the import (a margin, not a hope: the
# board, the meter's state and the lazily imported modules come after it)
MIN_BLOCK = 8192
BLOCK = 16  # bytes per GC block on a 32-bit core (MICROPY_BYTES_PER_GC_BLOCK)
CHECK = """
import emu_blockdev, gc, os, sys
emu_blockdev.mount_ram_root()
sys.path[:] = ['/lib', '.frozen']
import ade7953, boards.board
from meter import swid
os.stat('/lib/app.mpy')
print('FILES', '/lib/app.mpy', ade7953.__file__, boards.board.__file__, swid.__file__)
print('CRC', swid.checksum())
print('MAIN', os.stat('/main.py')[6])  # size: no read buffer (.mpy code in the heap)
print('LIB', len(os.listdir('/lib')))
"""
# the whole app from .mpy on a fresh heap (a soft reset before each run), as firmware/main.py
# boots a device: firmware/preload.py imports the modules leaves first with a collection after
# each, then app; its bytecode stays in the heap (141 KB of MPS2's 192 KiB in session 10)
APP_CHECK = """
import emu_blockdev, gc, micropython, sys
emu_blockdev.mount_ram_root()
sys.path[:] = ['/lib', '.frozen']
pad = bytearray(%d)
gc.collect()
f0 = gc.mem_free()
try:
    import preload
    preload.load()
    del sys.modules['preload'], preload
    import app
    gc.collect()
    print('APP', app.__file__, 'free', f0, '->', gc.mem_free())
except MemoryError as e:
    print('APP MemoryError, free before', f0, 'now', gc.mem_free())
    sys.print_exception(e)
micropython.mem_info()
"""
# the whole meter from the .mpy files on the virtual board (its models frozen in the image:
# boards.sim is not deployed); the preload first, as firmware/main.py on a device
RUN_CHECK = """
import emu_blockdev, gc, sys, asyncio
emu_blockdev.mount_ram_root()
sys.path[:] = ['/lib', '.frozen']
gc.collect()
f0 = gc.mem_free()
try:
    import preload
    preload.load()
    del sys.modules['preload'], preload
    gc.collect()
    f1 = gc.mem_free()
    print('STAGE free after preload', f1)
    sys.path[:] = ['.frozen', '/lib']
    import emu
    from boards.sim import norflash
    from boards.sim.board import Options, SimBoard
    from simkit import StepTrace
    norflash.set_image_allocator(emu.flashmem)
    import app
    o = Options()
    o.quiet = True
    o.speed = 0.0
    board = SimBoard(o, trace=StepTrace([(0, 1000000, 0)]))
    gc.collect()
    f2 = gc.mem_free()
    print('STAGE free after the board', f2)
    m = app.Meter(board)
    gc.collect()
    f3 = gc.mem_free()
    print('STAGE free after Meter()', f3)
    low = [f3]
    async def sampler():
        while True:
            await board.clock.sleep_ms(60000)
            gc.collect()
            low[0] = min(low[0], gc.mem_free())
    board.tasks = lambda meter: [asyncio.create_task(sampler())]
    asyncio.run(m.main(%d * 1000))
    gc.collect()
    print('RUN', app.__file__, sys.modules['meter.metering'].__file__, 'heap', f0,
          'free after preload', f1, 'after the board', f2, 'after Meter()', f3, 'lowest', low[0],
          '1.8.0', m.registers.whole[0], 'Wh')
except MemoryError as e:
    print('RUN MemoryError, free', gc.mem_free())
    sys.print_exception(e)
"""


def main():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--heap-kib", type=int, default=0, help="an image with this heap size")
    ap.add_argument("--run-s", type=int, default=0, help="then run a whole meter this long")
    a = ap.parse_args()
    if not os.path.exists(MPREMOTE):
        subprocess.run([sys.executable, "-m", "venv", os.path.join(emu.EMU_DIR, "tools-venv")],
                       check=True)
        subprocess.run([os.path.join(emu.EMU_DIR, "tools-venv", "bin", "pip"), "install", "-q",
                        "--disable-pip-version-check", "mpremote==1.29.0"], check=True)
    elf = (emu.build("MPS2_AN385", tag="-heap%d" % a.heap_kib, heap=a.heap_kib * 1024)
           if a.heap_kib else emu.build("MPS2_AN385"))
    q = subprocess.Popen(["qemu-system-arm", "-machine", "mps2-an385", "-display", "none",
                          "-monitor", "none", "-serial", "pty", "-semihosting", "-kernel", elf],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ok = bad = 0

    def check(cond, what):
        nonlocal ok, bad
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if cond:
            ok += 1
        else:
            bad += 1
        return cond

    try:
        line = q.stdout.readline()
        m = re.search(r"(/dev/pts/\d+)", line)
        if not check(m is not None, "QEMU UART on a pty: %s" % line.strip()):
            return 1
        port = m.group(1)
        time.sleep(0.5)
        mp = [MPREMOTE, "connect", port]
        r = subprocess.run(mp + ["exec", "import emu_unit; emu_unit.setup()"], timeout=60)
        check(r.returncode == 0, "RAM-disk file system mounted on the board")
        t0 = time.time()
        r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "deploy.py"), "--port",
                            port, "--mpremote", MPREMOTE], timeout=300, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        sys.stdout.write("".join("  | " + ln + "\n" for ln in r.stdout.splitlines()
                                 if not ln.startswith("Installing")))
        check(r.returncode == 0, "make deploy (tools/deploy.py) succeeded in %.0f s" % (
            time.time() - t0))
        # after the deploy's soft reset: the check mounts the RAM disk again
        r = subprocess.run(mp + ["exec", CHECK], timeout=120, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        out = r.stdout
        sys.stdout.write("".join("  | " + ln + "\n" for ln in out.splitlines()))
        check("FILES /lib/app.mpy /lib/ade7953/__init__.mpy /lib/boards/board.mpy "
              "/lib/meter/swid.mpy" in out, "the deployed .mpy modules are what imports")
        crc = 0
        for name in emu.metrology_modules():
            with open(emu.module_mpy(os.path.join(ROOT, "build", "deploy", "lib"), name),
                      "rb") as f:
                crc = zlib.crc32(f.read(), crc)
        check("CRC %d" % crc in out, "swid.checksum() on the board = CRC-32 of the deployed "
              "metrology .mpy files (%08X)" % crc)
        with open(os.path.join(ROOT, "firmware", "main.py")) as f:
            check("MAIN %d" % len(f.read()) in out, "/main.py is firmware/main.py")
        n = len(os.listdir(os.path.join(ROOT, "build", "deploy", "lib")))
        check("LIB %d" % n in out, "/lib holds the %d deployed entries" % n)
        blocks = []
        for pad in PADS:
            r = subprocess.run(mp + ["exec", APP_CHECK % pad], timeout=120,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            out = r.stdout
            app = [ln for ln in out.splitlines() if ln.startswith("APP")]
            m = re.search(r"max free sz: (\d+)", out)
            big = int(m.group(1)) * BLOCK if m else 0
            blocks.append(big)
            if not check("APP /lib/app.mpy free" in out and big >= MIN_BLOCK,
                         "%4d B allocated before: the whole app imports from the deployed .mpy "
                         "files (%s), largest free block %d B (>= %d)" % (
                             pad, " ".join(app), big, MIN_BLOCK)):
                sys.stdout.write("".join("  | " + ln + "\n" for ln in out.splitlines()))
        print("largest free block after the import: %d..%d B over %d layouts" % (
            min(blocks), max(blocks), len(blocks)))
        if a.run_s:
            r = subprocess.run(mp + ["exec", RUN_CHECK % a.run_s], timeout=600 + a.run_s // 10,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            sys.stdout.write("".join("  | " + ln + "\n" for ln in r.stdout.splitlines()))
            check("RUN /lib/app.mpy /lib/meter/metering.mpy" in r.stdout,
                  "a whole meter from the .mpy files ran %d simulated s" % a.run_s)
    finally:
        q.kill()
        q.wait()
        print("%d passed, %d failed" % (ok, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
