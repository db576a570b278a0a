#!/usr/bin/env python3
"""Build a board firmware with the meter application frozen in (``make firmware``).

    python3 tools/emu/firmware.py --board RPI_PICO [--out build/firmware-RPI_PICO.uf2]

MicroPython 1.25 (Debian source, pinned in tools/emu/versions.env), ports/rp2 with the Pico
SDK, TinyUSB and mbedtls from Debian. The project's manifest.py freezes firmware/ (with
main.py, so the meter starts at power-up), lib/ and boards/ (not the virtual board), plus
``swid_build.py``: the CRC-32 of the frozen bytecode of the metrology modules, computed here
(firmware/meter/swid.py shows it as 0.2.8). picotool is not available from the registries, so the
UF2 is written here from firmware.bin (UF2 format: 512-byte blocks of 256 payload bytes,
family ID RP2040 0xE48BFF56, flash at 0x10000000). Stdlib only.
"""

import argparse
import os
import shutil
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import emu  # noqa: E402

PORTS = {"RPI_PICO": ("rp2", 0x10000000, 0xE48BFF56)}

UF2_MAGIC0, UF2_MAGIC1, UF2_MAGIC_END = 0x0A324655, 0x9E5D5157, 0x0AB16F30
UF2_FLAG_FAMILY = 0x00002000


def to_uf2(data, base, family):
    """UF2 image of ``data`` to be written at ``base`` (bytes)."""
    n = (len(data) + 255) // 256
    out = bytearray()
    for i in range(n):
        chunk = data[i * 256:(i + 1) * 256]
        block = struct.pack("<8I", UF2_MAGIC0, UF2_MAGIC1, UF2_FLAG_FAMILY, base + i * 256,
                            256, i, n, family)
        block += chunk + b"\x00" * (476 - len(chunk)) + struct.pack("<I", UF2_MAGIC_END)
        out += block
    return bytes(out)


def from_uf2(image):
    """{address: 256-byte payload} of a UF2 image (the inverse of :func:`to_uf2`)."""
    out = {}
    for i in range(0, len(image), 512):
        b = image[i:i + 512]
        m0, m1, _flags, addr, size, _no, _n, _fam = struct.unpack_from("<8I", b)
        if m0 != UF2_MAGIC0 or m1 != UF2_MAGIC1 or struct.unpack_from("<I", b, 508)[0] != \
                UF2_MAGIC_END:
            raise ValueError("not a UF2 block at offset %d" % i)
        out[addr] = b[32:32 + size]
    return out


def build(board):
    port, base, family = PORTS[board]
    src = subprocess.run(["bash", os.path.join(HERE, "setup.sh"), "--rp2"], check=True,
                         stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()[-1]
    mpy_cross = os.path.join(src, "mpy-cross", "build", "mpy-cross")
    if not os.path.exists(mpy_cross):
        subprocess.run(["make", "-C", os.path.join(src, "mpy-cross"), "-j2"], check=True,
                       stdout=subprocess.DEVNULL)
    bdir = os.path.join(emu.EMU_DIR, "build", board)
    cdir = os.path.join(bdir, "cmake")
    gen = os.path.join(bdir, "gen")
    os.makedirs(gen, exist_ok=True)
    mpy_lib = os.path.join(emu.EMU_DIR, "mpy-lib-none")
    os.makedirs(mpy_lib, exist_ok=True)
    env = dict(os.environ, METER_BUILD_GEN=gen)
    if not os.path.exists(os.path.join(cdir, "Makefile")):
        pdir = os.path.join(src, "ports", port)
        subprocess.run(["cmake", "-S", pdir, "-B", cdir, "-DPICO_BUILD_DOCS=0",
                        "-DMICROPY_BOARD=" + board,
                        "-DMICROPY_BOARD_DIR=" + os.path.join(pdir, "boards", board),
                        "-DMICROPY_FROZEN_MANIFEST=" + os.path.join(ROOT, "manifest.py"),
                        "-DPICO_NO_PICOTOOL=1", "-DMICROPY_LIB_DIR=" + mpy_lib],
                       check=True, env=env, stdout=subprocess.DEVNULL)
    t0 = time.time()
    emu.make_with_checksum(["make", "-C", cdir, "-j%d" % (os.cpu_count() or 2)], env, cdir, gen)
    elf = os.path.join(cdir, "firmware.elf")
    with open(os.path.join(cdir, "firmware.bin"), "rb") as f:
        data = f.read()
    uf2 = to_uf2(data, base, family)
    emu.log("built %s in %.0f s: %d bytes of flash image, %d-byte UF2" % (
        board, time.time() - t0, len(data), len(uf2)))
    return elf, uf2


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--board", choices=sorted(PORTS), default="RPI_PICO")
    ap.add_argument("--out", help="UF2 path (default build/firmware-BOARD.uf2)")
    a = ap.parse_args()
    elf, uf2 = build(a.board)
    out = a.out or os.path.join(ROOT, "build", "firmware-%s.uf2" % a.board)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "wb") as f:
        f.write(uf2)
    shutil.copyfile(elf, out[:-4] + ".elf")
    with open(os.path.join(os.path.dirname(elf), "..", "gen", "swid_build.py")) as f:
        crc = f.read().split("CHECKSUM = ")[1].strip()
    print("firmware: %s (metrology checksum 0.2.8 = %s)" % (out, crc[2:]))


if __name__ == "__main__":
    main()
