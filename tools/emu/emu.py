#!/usr/bin/env python3
"""Build MicroPython for emulated MCU cores and run the unit suite on them (issue 9).

    python3 tools/emu/emu.py build --board NETDUINO2
    python3 tools/emu/emu.py test --board NETDUINO2 [--only NAME] [--timeout S] [--icount]

Boards (MicroPython ports/qemu, Debian micropython 1.25.0 source, see tools/emu/versions.env):

- MPS2_AN385: ARM MPS2 with a Cortex-M3 at 25 MHz (qemu -M mps2-an385); the image in the 4 MB
  ZBT SSRAM1, run with a 192 KiB heap (about what an RP2040 build leaves free). The virtual
  board's NOR-flash images (a flash chip on a device, not RAM: 1 MiB each) live outside that
  heap, in an 8 MiB arena (emu.flashmem) in the machine's 16 MB PSRAM at 0x21000000 (QEMU
  hw/arm/mps2.c memory map; the image does not use it).
- NETDUINO2: STM32F205RF, Cortex-M3 at 120 MHz (qemu -M netduino2), 128 KiB SRAM in all: the
  heap (96 KiB) is what is left after the static data, a 16 KiB RAM disk and the stack; no room
  for a flash arena, so NOR images are in the heap (tests needing the board's 1 MiB image
  are host-only there).

The firmware freezes the project's device modules through the project's manifest, asyncio,
the virtual board's models, every host_tests/unit/*.py and tools/emu/emu_unit.py (the
on-target runner). The host side starts QEMU, drives the raw REPL on the UART, boots the
core afresh for every test module (a fresh heap, as an application gets at a device's boot),
applies a per-test timeout (a hang or a crash of the core fails that test and QEMU is
restarted at the next one) and prints the closing `N passed, N failed` line; the exit status
is non-zero on any failure. Stdlib only (CPython 3.9+).
"""

import argparse
import os
import re
import select
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EMU_DIR = os.environ.get("EMU_DIR", os.path.join(ROOT, ".emu"))

BOARDS = {
    "MPS2_AN385": dict(machine="mps2-an385", cpu_hz=25_000_000, heap=192 * 1024,
                       ramdisk_kb=512, flashmem_kb=8192, flashmem_addr=0x21000000,
                       core="Cortex-M3 (ARM MPS2 AN385)"),
    "NETDUINO2": dict(machine="netduino2", cpu_hz=120_000_000, heap=96 * 1024,
                      ramdisk_kb=16, flashmem_kb=0, core="STM32F205 Cortex-M3 (Netduino 2)"),
}

_PORT_MARK = "/* tools/emu: virtual clock, time, select, asyncio */"
_PORT_DEFS = {
    "MICROPY_PY_SELECT": "1",
    "MICROPY_PY_TIME": "1",
    "MICROPY_PY_ASYNCIO": "1",
}
_PORT_TAIL = """
%s
#define MICROPY_PY_TIME_GMTIME_LOCALTIME_MKTIME (1)
#define MICROPY_PY_TIME_TIME_TIME_NS (1)
#define MICROPY_PY_TIME_INCLUDEFILE "emu_time.h"
#define MICROPY_PY_OS_URANDOM       (1)
#define MICROPY_PY_MICROPYTHON_HEAP_LOCKED (1)
#define MICROPY_PY_OS_INCLUDEFILE   "emu_os.h"
#define MICROPY_PORT_INIT_FUNC      emu_init()
#define MICROPY_INTERNAL_WFE(TIMEOUT_MS) emu_wfe(TIMEOUT_MS)
void emu_init(void);
void emu_wfe(int32_t timeout_ms);
""" % _PORT_MARK


def log(msg):
    print("emu: " + msg, flush=True)


def mp_src():
    """The unpacked MicroPython source (tools/emu/setup.sh prints its path)."""
    out = subprocess.run(["bash", os.path.join(HERE, "setup.sh")], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return out.strip().splitlines()[-1]


def _pristine(path):
    """Text of ``path`` as unpacked (kept once as ``path.orig``): patches start from it, so a
    changed patch re-applies cleanly and an unchanged one leaves the file (and make) alone."""
    orig = path + ".orig"
    if not os.path.exists(orig):
        shutil.copyfile(path, orig)
    with open(orig) as f:
        return f.read()


def _put(path, text):
    with open(path) as f:
        if f.read() == text:
            return
    with open(path, "w") as f:
        f.write(text)


def patch_qemu_port(src):
    """Enable time/select/asyncio and the virtual clock in ports/qemu/mpconfigport.h and give
    the linker scripts an .ARM.exidx section (in the cached source tree)."""
    path = os.path.join(src, "ports", "qemu", "mpconfigport.h")
    text = _pristine(path)
    for name, val in _PORT_DEFS.items():
        pat = re.compile(r"^#define %s\s+\(\d\)" % name, re.M)
        if not pat.search(text):
            raise SystemExit("emu: %s not found in %s (source changed?)" % (name, path))
        text = pat.sub("#define %s (%s)" % (name, val), text)
    _put(path, text + _PORT_TAIL)
    # littlefs' stat() divides a 64-bit mtime, which links libgcc's division with its
    # unwinder table; the port's linker scripts have no .ARM.exidx section for it.
    for ld in ("mps2.ld", "stm32.ld"):
        lp = os.path.join(src, "ports", "qemu", "mcu", "arm", ld)
        lt = _pristine(lp)
        pat = re.compile(r"\n(\s*)_sidata = _etext;\n(\s*\} ?> ?(ROM|RAM)\n)")
        if not pat.search(lt):
            raise SystemExit("emu: _sidata not found in %s (source changed?)" % lp)
        lt = pat.sub(r"\n\2\n    .ARM.exidx : {\n        *(.ARM.exidx*)\n        . = ALIGN(4);\n"
                     r"    } > \3\n    _sidata = .;\n", lt)
        _put(lp, lt)


def test_modules():
    d = os.path.join(ROOT, "host_tests", "unit")
    return sorted(n[:-3] for n in os.listdir(d) if n.startswith("test_") and n.endswith(".py"))


# the image's flash (firmware and frozen tests; kept apart from BOARDS: its items are the
# build's configuration stamp)
_FLASH_KB = {"MPS2_AN385": 4096, "NETDUINO2": 1024}


def not_frozen(board):
    """Test modules left out of ``board``'s image, {module: reason}: those whose whole module
    is host-only there (a plain HOST_ONLY reason, or a (kind, size, reason) the board's
    configured heap, RAM disk or flash arena cannot meet). NETDUINO2's 1 MiB flash holds the
    firmware and the rest of the suite only (it overflowed by 1.2 KB in session 9); the host
    reports each of their tests as host-only with the reason."""
    sys.path.insert(0, HERE)
    import emu_host_only

    b = BOARDS[board]
    have = {"heap": b["heap"], "ramdisk": b["ramdisk_kb"] * 1024,
            "flashmem": b["flashmem_kb"] * 1024, "flash": _FLASH_KB[board] * 1024}
    out = {}
    for k, r in emu_host_only.HOST_ONLY.items():
        if "." in k:
            continue
        if isinstance(r, tuple):
            if have[r[0]] >= r[1]:
                continue
            r = "%s (%s %d KiB < %d KiB)" % (r[2], r[0], have[r[0]] // 1024, r[1] // 1024)
        out[k] = r + "; not in this board's image"
    # one that a frozen test module imports (its fixtures) stays in, and what it imports
    unit = os.path.join(ROOT, "host_tests", "unit")
    uses = {}
    for f in os.listdir(unit):
        if f.endswith(".py"):
            with open(os.path.join(unit, f)) as fh:
                uses[f[:-3]] = re.findall(r"^\s*(?:from|import)\s+(test_\w+)", fh.read(), re.M)
    todo = [m for m in uses if m not in out]
    while todo:
        for m in uses.get(todo.pop(), ()):
            if out.pop(m, None) is not None:
                todo.append(m)
    return out


def build_dir(board):
    return os.path.join(EMU_DIR, "build", board)


def build(board, extra_tests=None, tag="", heap=None):
    """Build the image of ``board`` (``heap``: another GC heap size in bytes, in its own build
    folder named with ``tag``, e.g. to measure what a larger board needs)."""
    b = dict(BOARDS[board], heap=heap) if heap else BOARDS[board]
    src = mp_src()
    patch_qemu_port(src)
    bdir = build_dir(board) + tag
    # make does not see changed -D flags: a changed board configuration starts afresh
    conf = "%r %r\n" % (sorted(b.items()), bool(extra_tests))
    stamp = os.path.join(bdir, "emu-config.txt")
    if os.path.exists(stamp) and open(stamp).read() != conf:
        shutil.rmtree(bdir)
    os.makedirs(bdir, exist_ok=True)
    with open(stamp, "w") as f:
        f.write(conf)
    gen = os.path.join(bdir, "gen")
    os.makedirs(gen, exist_ok=True)
    skip = not_frozen(board)
    names = [n for n in test_modules() if n not in skip]
    if extra_tests:
        names += sorted(n[:-3] for n in os.listdir(extra_tests)
                        if n.startswith("test_") and n.endswith(".py"))
    text = "# generated by tools/emu/emu.py: the frozen unit-test modules\nTESTS = %r\n" % (
        tuple(names),)
    _write_if_changed(os.path.join(gen, "emu_tests.py"), text)
    files = {}
    for rel in DATA_FILES:
        with open(os.path.join(ROOT, rel), "rb") as f:
            files[rel] = f.read()
    _write_if_changed(os.path.join(gen, "emu_files.py"),
                      "# generated by tools/emu/emu.py: data files for the RAM disk\n"
                      "FILES = %r\n" % (files,))
    env = dict(os.environ, EMU_GEN=gen, EMU_NOT_FROZEN=" ".join(sorted(skip)))
    if extra_tests:
        env["EMU_EXTRA_TESTS"] = os.path.abspath(extra_tests)
    mpy_cross = os.path.join(src, "mpy-cross", "build", "mpy-cross")
    if not os.path.exists(mpy_cross):  # first, on its own: the port's make would pass BUILD on
        r = subprocess.run(["make", "-C", os.path.join(src, "mpy-cross"),
                            "-j%d" % (os.cpu_count() or 2)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            sys.stdout.write(r.stdout[-4000:])
            raise SystemExit("emu: mpy-cross build failed")
    # The build insists on a micropython-lib checkout (absent from the Debian source); the
    # manifests here require nothing from it.
    mpy_lib = os.path.join(EMU_DIR, "mpy-lib-none")
    os.makedirs(mpy_lib, exist_ok=True)
    with open(os.path.join(mpy_lib, "README.md"), "w") as f:
        f.write("empty: tools/emu manifests use no micropython-lib package\n")
    cflags = "-DEMU_CPU_HZ=%d -DEMU_RAMDISK_KB=%d -DEMU_FLASHMEM_KB=%d" % (
        b["cpu_hz"], b["ramdisk_kb"], b["flashmem_kb"])
    if b.get("flashmem_addr"):
        cflags += " -DEMU_FLASHMEM_ADDR=0x%08X" % b["flashmem_addr"]
    cmd = ["make", "-C", os.path.join(src, "ports", "qemu"), "-j%d" % (os.cpu_count() or 2),
           "BOARD=" + board, "BUILD=" + bdir,
           "USER_C_MODULES=" + os.path.join(HERE, "cmod"),
           "FROZEN_MANIFEST=" + os.path.join(HERE, "manifest_unit.py"),
           "MICROPY_HEAP_SIZE=%d" % b["heap"], "MICROPY_VFS_LFS2=1",
           "MPY_LIB_DIR=" + mpy_lib, "CFLAGS_EXTRA=" + cflags]
    t0 = time.time()
    r = make_with_checksum(cmd, env, bdir, gen)
    m = re.findall(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+\d+\s+[0-9a-f]+\s+\S*firmware.elf", r.stdout,
                   re.M)
    log("built %s in %.0f s%s" % (board, time.time() - t0,
                                  " (text %s data %s bss %s)" % m[-1] if m else ""))
    return os.path.join(bdir, "firmware.elf")


# Files the unit tests read, copied onto the RAM disk at boot (small ones only).
DATA_FILES = ("boards/sim/loads/four_quadrant.csv",)


def _write_if_changed(path, text):
    old = open(path).read() if os.path.exists(path) else None
    if old != text:
        with open(path, "w") as f:
            f.write(text)


def metrology_modules():
    """swid.METROLOGY_MODULES, read from firmware/meter/swid.py (one definition)."""
    with open(os.path.join(ROOT, "firmware", "meter", "swid.py")) as f:
        m = re.search(r"^METROLOGY_MODULES = (\([^)]*\))", f.read(), re.M)
    import ast

    return ast.literal_eval(m.group(1))


def module_mpy(top, name):
    """The .mpy file of module ``name`` under ``top`` (a dotted name as a path, a package as
    its ``__init__``: the order firmware/meter/swid.py module_file() looks in)."""
    p = os.path.join(top, *name.split(".")) + ".mpy"
    if not os.path.exists(p):
        p = os.path.join(top, *name.split("."), "__init__.mpy")
    return p


def frozen_checksum(bdir):
    """CRC-32 of the metrology modules' frozen bytecode (build/frozen_mpy/NAME.mpy, in the
    order of swid.METROLOGY_MODULES): what firmware/meter/swid.py's build_checksum()
    reports."""
    import zlib

    crc = 0
    for name in metrology_modules():
        with open(module_mpy(os.path.join(bdir, "frozen_mpy"), name), "rb") as f:
            crc = zlib.crc32(f.read(), crc)
    return crc & 0xFFFFFFFF


def make_with_checksum(cmd, env, bdir, gen):
    """Run the port's make; then write swid_build.py with the checksum of the frozen
    metrology bytecode and, if it changed, make again (the metrology .mpy files do not
    change between the passes, so the second pass only re-links)."""
    swid_path = os.path.join(gen, "swid_build.py")
    if not os.path.exists(swid_path):
        _write_if_changed(swid_path, "CHECKSUM = None\n")
    for _ in range(2):
        r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        if r.returncode != 0:
            sys.stdout.write(r.stdout[-6000:])
            raise SystemExit("emu: make failed: %s" % " ".join(cmd[:4]))
        crc = frozen_checksum(bdir)
        text = ("# generated at build time by tools/emu/emu.py: CRC-32 of the frozen bytecode "
                "of %s\nCHECKSUM = 0x%08X\n" % (", ".join(metrology_modules()), crc))
        if open(swid_path).read() == text:
            return r
        _write_if_changed(swid_path, text)
    raise SystemExit("emu: the metrology checksum did not settle")


class Qemu:
    """One QEMU run of the firmware with the UART on stdin/stdout (raw REPL)."""

    def __init__(self, board, elf, icount=None):
        b = BOARDS[board]
        cmd = [shutil.which("qemu-system-arm") or "qemu-system-arm", "-machine", b["machine"],
               "-display", "none", "-monitor", "none", "-serial", "stdio", "-semihosting",
               "-kernel", elf]
        if icount is not None:
            cmd += ["-icount", "shift=%d,align=off,sleep=off" % icount]
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, bufsize=0)
        self.buf = b""

    def write(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def read_until(self, token, timeout):
        """Bytes up to and including ``token``; None on timeout or exit."""
        end = time.time() + timeout
        while token not in self.buf:
            left = end - time.time()
            if left <= 0:
                return None
            r, _, _ = select.select([self.p.stdout], [], [], min(left, 0.5))
            if r:
                d = os.read(self.p.stdout.fileno(), 4096)
                if not d:
                    return None
                self.buf += d
        i = self.buf.index(token) + len(token)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def readline(self, timeout):
        line = self.read_until(b"\n", timeout)
        return None if line is None else line.decode("utf-8", "replace").rstrip("\r\n")

    def exec_raw(self, code, timeout=30):
        """Enter the raw REPL and start ``code``; True once the board accepted it."""
        if self.read_until(b">>> ", timeout) is None:
            return False
        self.write(b"\x01")
        if self.read_until(b"raw REPL; CTRL-B to exit\r\n>", timeout) is None:
            return False
        self.write(code.encode() + b"\x04")
        return self.read_until(b"OK", timeout) is not None

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def run_tests(board, elf, timeout, icount, only=None, boot_timeout=60):
    """Run the frozen suite; returns (passed, failed, results dict)."""
    res = {"pass": [], "fail": [], "hostonly": [], "xfail": [], "known": [], "boot": None,
           "cycles": {},
           "free_min": None}
    start_mod = start_test = 0
    t0 = time.time()
    while True:
        q = Qemu(board, elf, icount)
        arg = "%d, %d, True" % (start_mod, start_test)  # one module per boot: a fresh heap
        code = "import emu_unit\nemu_unit.main(%s)\n" % arg
        if only:
            code = ("import emu_tests\nemu_tests.TESTS = tuple(n for n in emu_tests.TESTS "
                    "if %r in n)\n" % only) + code
        if not q.exec_raw(code, boot_timeout):
            q.close()
            res["fail"].append(("(boot)", "no raw REPL within %d s: %r" % (boot_timeout,
                                                                          q.buf[-300:])))
            break
        current = None  # (mod index, test index, name)
        mod_i, mod_name = start_mod, None
        ended = False
        tb = []
        while True:
            line = q.readline(timeout)
            if line is None:
                why = ("timeout: no output for %d s" % timeout if q.p.poll() is None
                       else "the core stopped (exit %s)" % q.p.poll())
                if q.buf:
                    why += ": " + q.buf[-200:].decode("utf-8", "replace")
                if current is not None:
                    res["fail"].append((current[2], why))
                    print("FAIL %s (%s)" % (current[2], why), flush=True)
                    start_mod, start_test = current[0], current[1] + 1
                elif mod_name is not None:
                    res["fail"].append((mod_name + ".(import)", why))
                    print("FAIL %s.(import) (%s)" % (mod_name, why), flush=True)
                    start_mod, start_test = mod_i + 1, 0
                else:
                    res["fail"].append(("(runner)", why))
                    ended = True
                break
            if not line.startswith("EMU "):
                if line.startswith("\x04"):
                    continue
                tb.append(line)
                print("    " + line, flush=True)
                continue
            parts = line.split(" ", 3)
            kind = parts[1]
            if kind == "BOOT":
                if res["boot"] is None:
                    res["boot"] = dict(kv.split("=") for kv in line.split()[2:])
            elif kind == "MOD":
                mod_i, mod_name = int(parts[2]), parts[3]
                current = None
            elif kind == "RUN":
                j, name = line.split(" ", 3)[2:4]
                current = (mod_i, int(j), name)
            elif kind == "PASS":
                kv = dict(x.split("=") for x in parts[3].split())
                res["pass"].append(parts[2])
                res["cycles"][parts[2]] = int(kv["cycles"])
                f = int(kv["free"])
                res["free_min"] = f if res["free_min"] is None else min(res["free_min"], f)
                current = None
            elif kind == "FAIL":
                res["fail"].append((parts[2], parts[3] if len(parts) > 3 else ""))
                print("FAIL %s (%s)" % (parts[2], parts[3] if len(parts) > 3 else ""),
                      flush=True)
                current = None
            elif kind == "HOSTONLY":
                res["hostonly"].append((parts[2], parts[3]))
                print("host-only: %s: %s" % (parts[2], parts[3]), flush=True)
                current = None
            elif kind == "XFAIL":
                res["xfail"].append((parts[2], parts[3]))
                print("planted failure caught: %s (%s)" % (parts[2], parts[3]), flush=True)
                current = None
            elif kind == "KNOWN":
                res["known"].append((parts[2], parts[3]))
                print("known defect (still failing as listed): %s: %s" % (parts[2], parts[3]),
                      flush=True)
                current = None
            elif kind == "DONE":
                start_mod, start_test = int(parts[2]) + 1, 0
                break
            elif kind == "END":
                ended = True
                break
        q.close()
        if ended:
            break
    res["wall_s"] = time.time() - t0
    return res


def stale_host_only(res):
    sys.path.insert(0, HERE)
    import emu_host_only

    seen = {n for n, _ in res["hostonly"]} | {n for n, _ in res["known"]}
    ran = (set(res["pass"]) | {n for n, _ in res["fail"]} | seen |
           {n for n, _ in res["known"]} | {n for n, _ in res["xfail"]})
    mods = {n.split(".")[0] for n in ran}
    out = []
    for key in list(emu_host_only.HOST_ONLY) + list(emu_host_only.KNOWN_DEFECTS):
        if "." in key and key not in ran:
            out.append(key)
        elif "." not in key and key not in mods:
            out.append(key)
    return out


def source_tests(path):
    """Names of the module-level tests defined in the source file ``path``: ``def test_*`` and
    ``async def test_*`` in the module body, also inside if/try/with blocks (a test defined
    only where an import succeeds), not inside functions or classes."""
    import ast

    out = set()
    todo = list(ast.parse(open(path).read(), path).body)
    while todo:
        n = todo.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if n.name.startswith("test_"):
                out.add(n.name)
        elif not isinstance(n, ast.ClassDef):
            for field in ("body", "orelse", "finalbody", "handlers"):
                todo.extend(getattr(n, field, None) or ())
    return out


def unreported_tests(res, only=None, extra_tests=None):
    """Tests defined in a frozen test module's source that the core never reported (passed,
    failed, host-only, known or planted): a test that vanished on the device (e.g. defined
    only where ``import socket`` works) would otherwise be a silent skip. Modules whose
    import failed, and runs that never booted, are failures already."""
    if any(n in ("(boot)", "(runner)") for n, _ in res["fail"]):
        return []
    dirs = [os.path.join(ROOT, "host_tests", "unit")] + ([extra_tests] if extra_tests else [])
    seen = (set(res["pass"]) | {n for n, _ in res["fail"]} | {n for n, _ in res["hostonly"]}
            | {n for n, _ in res["known"]} | {n for n, _ in res["xfail"]})
    out = []
    for d in dirs:
        for f in sorted(os.listdir(d)):
            mod = f[:-3]
            if not (f.startswith("test_") and f.endswith(".py")) or (only and only not in mod):
                continue
            if mod + ".(import)" in seen:
                continue
            for t in sorted(source_tests(os.path.join(d, f))):
                if mod + "." + t not in seen:
                    out.append(mod + "." + t)
    return out


def cmd_test(args):
    elf = args.elf or build(args.board, args.extra_tests, "-extra" if args.extra_tests else "")
    b = BOARDS[args.board]
    log("running the unit suite on %s, heap %d KiB%s" % (
        b["core"], b["heap"] // 1024, ", -icount shift=%d" % args.icount
        if args.icount is not None else ""))
    res = run_tests(args.board, elf, args.timeout, args.icount, args.only)
    for mod, why in sorted(not_frozen(args.board).items()):
        if args.only and args.only not in mod:
            continue
        for t in sorted(source_tests(os.path.join(ROOT, "host_tests", "unit", mod + ".py"))):
            res["hostonly"].append((mod + "." + t, why))
            print("host-only: %s.%s: %s" % (mod, t, why), flush=True)
    stale = [] if args.only else stale_host_only(res)
    for k in stale:
        res["fail"].append(("emu_host_only[%s]" % k, "stale entry: no such test"))
        print("FAIL stale host-only entry %s (no such test: remove it)" % k)
    for k in unreported_tests(res, args.only, args.extra_tests):
        res["fail"].append((k, "never reported by the core: defined in the source but not "
                               "run on the device (list it as host-only with its reason)"))
        print("FAIL %s never reported by the core (a test that vanished on the device)" % k)
    boot = res["boot"] or {}
    log("%s: free heap after boot %s of %s B; lowest free after a test %s B; %.0f s wall" % (
        args.board, boot.get("free"), boot.get("heap"), res["free_min"], res["wall_s"]))
    if res["fail"]:
        print("failed on %s:" % args.board)
        for n, why in res["fail"]:
            print("  %s: %s" % (n, why))
    passed = len(res["pass"]) + len(res["xfail"])
    if res["known"]:
        print("known defects on %s (listed in tools/emu/emu_host_only.py, not counted):" %
              args.board)
        for n, why in res["known"]:
            print("  %s: %s" % (n, why))
    print("%s: %d passed, %d failed, %d host-only, %d known defects" % (
        args.board, passed, len(res["fail"]), len(res["hostonly"]), len(res["known"])))
    print("%d passed, %d failed" % (passed, len(res["fail"])))
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 1 if res["fail"] or passed == 0 else 0


def run_code(board, elf, code, timeout=120, icount=None):
    """Run ``code`` on the board (raw REPL); returns its output (str) or raises on timeout."""
    q = Qemu(board, elf, icount)
    try:
        if not q.exec_raw(code, 60):
            raise SystemExit("emu: no raw REPL from %s: %r" % (board, q.buf[-300:]))
        out = q.read_until(b"\x04>", timeout)
        if out is None:
            raise SystemExit("emu: code did not finish in %d s: %r" % (timeout, q.buf[-500:]))
        text, _, err = out[:-2].decode("utf-8", "replace").partition("\x04")
        return text + err
    finally:
        q.close()


def cmd_exec(args):
    code = sys.stdin.read() if args.code == "-" else args.code
    sys.stdout.write(run_code(args.board, args.elf or os.path.join(build_dir(args.board),
                                                                    "firmware.elf"),
                              code, args.timeout, args.icount))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--board", choices=sorted(BOARDS), required=True)
    t = sub.add_parser("test")
    t.add_argument("--board", choices=sorted(BOARDS), required=True)
    t.add_argument("--elf", help="firmware.elf (default: build it)")
    t.add_argument("--only", help="run only test modules whose name contains this")
    t.add_argument("--timeout", type=float, default=180,
                   help="seconds without output before a test counts as hung (default 180: "
                   "a loaded 2-core machine runs the slowest test at a fraction of its speed)")
    t.add_argument("--icount", type=int, default=None,
                   help="run QEMU with -icount shift=N (deterministic instruction timing)")
    t.add_argument("--json", help="write the results here")
    t.add_argument("--extra-tests", help="a folder of test_*.py frozen in as well (a separate "
                   "build; tools/emu/selftest.py uses tools/emu/planted)")
    e = sub.add_parser("exec", help="run Python code on the emulated board (raw REPL)")
    e.add_argument("--board", choices=sorted(BOARDS), required=True)
    e.add_argument("--elf")
    e.add_argument("--timeout", type=float, default=120)
    e.add_argument("--icount", type=int, default=None)
    e.add_argument("code", help="Python source, or - for stdin")
    args = ap.parse_args(argv)
    if args.cmd == "exec":
        return cmd_exec(args)
    if args.cmd == "build":
        build(args.board)
        return 0
    return cmd_test(args)


if __name__ == "__main__":
    sys.exit(main())
