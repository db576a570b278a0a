"""Flash benchmark: projected flash life, commit cost, write amplification, energy at risk.

Runs the register journal (lib/flashstore/journal.py) against the NOR model
(boards/sim/norflash.py) with the board's journal partition and the default commit policy,
counts program/erase operations and per-sector erases, and converts them with the flash chips'
datasheet figures.

Usage: python tools/bench_flash.py [--payload 76] [--sectors 16] [--period 300]
                                   [--max-unsaved-wh 100] [--power-w 13800]

It also times the CPU part of the power-fail commit on the MicroPython unix port (.venv's
``micropython``, flash program stubbed out: payload packing, record header, the CRC-32 in
16-bit halves) and counts the flash reads of a boot that salvages a damaged sector.

Datasheet figures used (check them against the revision you ship with):
- Winbond W25Q16JV (RP2040 boards' 2 MiB QSPI flash), datasheet Rev. H (2019-04-08):
  section 9.6 "AC Electrical Characteristics": page program tPP typ 0.4 ms / max 3 ms,
  4 KiB sector erase tSE typ 45 ms / max 400 ms, 64 KiB block erase tBE2 typ 150 / max
  2000 ms; section 2 "Features": >= 100 000 program/erase cycles per sector, 20-year retention.
- ST STM32F405/407 internal flash, datasheet DS8626, tables "Flash memory programming" and
  "Flash memory endurance and data retention": word program typ 16 us / max 100 us; sector
  erase at x32 parallelism 16 KiB typ 250 / max 500 ms, 64 KiB 550 / 1100 ms, 128 KiB 1 / 2 s;
  endurance 10 000 cycles. Sector map (RM0090 section 3.3): 4 x 16 KiB, 1 x 64 KiB,
  7 x 128 KiB.
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (os.path.join(ROOT, "host_tests", "shim"), os.path.join(ROOT, "lib"), ROOT):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from boards.sim.norflash import NORFlash  # noqa: E402
from flashstore.flash import Partition  # noqa: E402
from flashstore.worn import position  # noqa: E402
from flashstore.journal import (  # noqa: E402
    DEFAULT_MAX_UNSAVED_WH,
    DEFAULT_PERIOD_S,
    REASON_PERIODIC,
    REASON_POWERFAIL,
    Journal,
)
from flashstore.ringlog import RingLog  # noqa: E402

YEAR_S = 365 * 86400
W25Q = {"tpp_typ": 0.4, "tpp_max": 3.0, "tse_typ": 45.0, "tse_max": 400.0, "cycles": 100000}
STM32F4 = {"word_typ": 0.016, "word_max": 0.100, "e16_typ": 250.0, "e16_max": 500.0,
           "e128_max": 2000.0, "cycles": 10000}
SPI_HZ = 10_000_000  # conservative single-line SPI clock for the bus-transfer term


def simulate(payload, sectors, commits, sector_size=4096, page=256):
    """Commit ``commits`` times with maintain() after each; return the model and journal."""
    dev = NORFlash(sectors * sector_size, sector_size, page)
    j = Journal(Partition(dev, 0, dev.size), payload)
    j.recover()
    j.maintain()
    data = bytearray(payload)
    for i in range(commits):
        data[0] = i & 0xFF
        data[1] = (i >> 8) & 0xFF
        j.commit(data, REASON_PERIODIC)
        j.maintain()
    return dev, j


def simulate_stm32(payload, commits, sectors=3):
    """STM32F4 internal flash: 16 KiB sectors, programs limited to 16-byte rows (RM0090 3.5.4)."""
    return simulate(payload, sectors, commits, sector_size=16384, page=16)


def commit_cost(payload, sectors):
    """Programs, erases, reads and bytes of one urgent commit, measured on the model."""
    dev = NORFlash(sectors * 4096, 4096, 256)
    j = Journal(Partition(dev, 0, dev.size), payload)
    j.recover()
    j.maintain()
    p0, e0, b0 = dev.programs, dev.erases, dev.bytes_programmed
    j.commit(bytes(payload), REASON_POWERFAIL, urgent=True)
    return dev.programs - p0, dev.erases - e0, dev.bytes_programmed - b0, j


MP_COMMIT = r"""
import binascii, json, time
from flashstore import journal
from flashstore import ringlog
from flashstore.ringlog import crc32_feed


class NullFlash:  # an image copied in and out in C (as rp2.Flash does): the firmware's CPU
    size = 16 * 4096  # time is measured. ``skip``: programs left undone (worn cells)
    sector_size = 4096
    page_size = 256
    skip = 0

    def __init__(self):
        self.img = bytearray(b"\xff" * self.size)
        self.mv = memoryview(self.img)
        self.reads = 0

    def read(self, addr, buf):
        self.reads += 1
        buf[:] = self.mv[addr:addr + len(buf)]

    def program(self, addr, data):
        if self.skip:
            self.skip -= 1
            return
        self.mv[addr:addr + len(data)] = data

    def erase(self, addr):
        self.mv[addr:addr + self.sector_size] = b"\xff" * self.sector_size


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


n = PAYLOAD
f = NullFlash()
j = journal.Journal(f, n)
j.recover()
p = bytes(range(n))
commit, crc_h, crc_b, back, retry = [], [], [], [], []
data = memoryview(bytearray(p + bytes(12)))
st = [0, 0]
reads = 0
has_back = hasattr(j, "_reads_back")
for r in range(300):
    if j.ready_slots() < 2:
        j.maintain()
    t = time.ticks_us()
    r0 = f.reads
    j.commit(p, journal.REASON_POWERFAIL, True)
    commit.append(time.ticks_diff(time.ticks_us(), t))
    reads = f.reads - r0
    if has_back:  # the read-back alone, of the record just committed
        a = j._head * j.sector_size + (j._slot - 1) * j.slot_size
        t = time.ticks_us()
        j._reads_back(a, 16 + n)
        back.append(time.ticks_diff(time.ticks_us(), t))
        if j.ready_slots() < 2:
            j.maintain()
        f.skip = 1  # the first program does not take: the retry
        t = time.ticks_us()
        j.commit(p, journal.REASON_POWERFAIL, True)
        retry.append(time.ticks_diff(time.ticks_us(), t))
    t = time.ticks_us()
    st[0] = st[1] = 0xFFFF
    crc32_feed(st, data)
    crc_h.append(time.ticks_diff(time.ticks_us(), t))
    t = time.ticks_us()
    binascii.crc32(data)
    crc_b.append(time.ticks_diff(time.ticks_us(), t))
print(json.dumps({"commit_us": median(commit), "crc_halves_us": median(crc_h),
                  "crc_binascii_us": median(crc_b), "bytes": len(data),
                  "readback_us": median(back) if back else None,
                  "retry_us": median(retry) if retry else None, "reads": reads}))
"""


def commit_cpu(payload):
    """Median CPU time (us) of an urgent commit on the MicroPython unix port, or None."""
    mp = os.path.join(ROOT, ".venv", "bin", "micropython")
    if not os.path.exists(mp):
        return None
    env = dict(os.environ, MICROPYPATH=".frozen:lib")
    r = subprocess.run([mp, "-c", MP_COMMIT.replace("PAYLOAD", str(payload))], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=300)
    if r.returncode:
        sys.stderr.write(r.stderr)
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


class _CountingReads:
    def __init__(self, f):
        self._f = f
        self.size, self.sector_size, self.page_size = f.size, f.sector_size, f.page_size
        self.reads = 0

    def read(self, addr, buf):
        self.reads += 1
        self._f.read(addr, buf)

    def program(self, addr, data):
        self._f.program(addr, data)

    def erase(self, addr):
        self._f.erase(addr)


def salvage_reads(payload, sectors):
    """Flash reads of recover() on a wrapped journal, intact and with the newest sector's
    header damaged (salvaged with every possible slot size)."""
    dev, j = simulate(payload, sectors, (sectors + 3) * 31)
    out = []
    for damage in (False, True):
        d = dev.copy()
        if damage:
            d.image[position(j)[0] * 4096 + 4] ^= 1
        c = _CountingReads(Partition(d, 0, d.size))
        k = Journal(c, payload)
        k.recover()
        out.append(c.reads)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--payload", type=int, default=76, help="register payload bytes "
                    "(firmware/meter/storage.py: 76)")
    ap.add_argument("--sectors", type=int, default=16, help="journal sectors of 4 KiB")
    ap.add_argument("--period", type=int, default=DEFAULT_PERIOD_S)
    ap.add_argument("--max-unsaved-wh", type=int, default=DEFAULT_MAX_UNSAVED_WH)
    ap.add_argument("--power-w", type=int, default=60 * 230, help="60 A x 230 V")
    a = ap.parse_args()

    print("== Journal geometry")
    progs, erases, nbytes, j = commit_cost(a.payload, a.sectors)
    per = j.slots_per_sector - 1
    print("payload %d B, record %d B, slot %d B, %d records per 4 KiB sector, %d sectors "
          "(%d KiB)" % (a.payload, nbytes, j.slot_size, per, a.sectors, a.sectors * 4))

    print("\n== Cost of one power-fail commit (urgent=True), measured on the model")
    reads = (nbytes + 15) // 16
    print("flash ops: %d page program, %d erase, %d reads of 16 bytes (the read-back); %d bytes"
          " programmed (rp2 pads to one 256-byte page)" % (progs, erases, reads, nbytes))
    bus_ms = (4 + 256) * 8 / SPI_HZ * 1000
    rd_ms = reads * (4 + 16) * 8 / SPI_HZ * 1000  # (command + address, 16 bytes) each
    print("W25Q16JV: typ %.2f ms, worst %.2f ms (tPP %.1f/%.1f ms + %.2f ms SPI at %d MHz, "
          "read-back %.2f ms)"
          % (progs * W25Q["tpp_typ"] + bus_ms + rd_ms, progs * W25Q["tpp_max"] + bus_ms + rd_ms,
             W25Q["tpp_typ"], W25Q["tpp_max"], bus_ms, SPI_HZ // 1_000_000, rd_ms))
    print("with its one retry (the first program did not take): typ %.2f ms, worst %.2f ms"
          % (2 * (progs * W25Q["tpp_typ"] + bus_ms + rd_ms),
             2 * (progs * W25Q["tpp_max"] + bus_ms + rd_ms)))
    words = (nbytes + 3) // 4
    print("STM32F4 internal flash (if used): %d word programs: typ %.2f ms, worst %.2f ms"
          % (words, words * STM32F4["word_typ"], words * STM32F4["word_max"]))
    cpu = commit_cpu(a.payload)
    if cpu is not None:
        print("CPU part (MicroPython unix port, x86-64, flash stubbed; medians of 300): "
              "%d us per urgent commit, of which the CRC-32 in 16-bit halves over %d bytes "
              "%d us (binascii.crc32, which returns a long int >= 2**30 on a 32-bit port: "
              "%d us)" % (cpu["commit_us"], cpu["bytes"], cpu["crc_halves_us"],
                          cpu["crc_binascii_us"]))
        if cpu.get("readback_us") is not None:
            print("  the read-back (%d reads of 16 bytes, compared byte by byte): %d us; an "
                  "urgent commit whose first program did not take (one retry): %d us"
                  % (cpu["reads"], cpu["readback_us"], cpu["retry_us"]))
    print("periodic commit + maintain(): 1 program, plus 1 erase + 1 header program every %d "
          "commits (erase stall W25Q typ %d / max %d ms)" % (per, W25Q["tse_typ"],
                                                               W25Q["tse_max"]))

    print("\n== Projected flash life at the default policy (simulated year on the model)")
    commits = YEAR_S // a.period
    dev, _ = simulate(a.payload, a.sectors, commits)
    worst = max(dev.erase_counts)
    print("period %d s: %d commits/year -> %d erases in total, most-worn sector %d "
          "erases/year (least %d)" % (a.period, commits, dev.erases, worst,
                                      min(dev.erase_counts)))
    print("years to 100 000 cycles (W25Q16JV): %.0f" % (W25Q["cycles"] / worst))
    dev3, j3 = simulate_stm32(a.payload, commits)
    w3 = max(dev3.erase_counts)
    print("STM32F4 internal flash, 3 x 16 KiB sectors (sectors 1-3), %d records/sector: "
          "most-worn %d erases/year, %.0f years to its 10 000 cycles; each maintain() erase "
          "stalls up to %d ms" % (j3.slots_per_sector - 1, w3, STM32F4["cycles"] / w3,
                                   STM32F4["e16_max"]))
    prog_b = dev.bytes_programmed
    pay_b = commits * a.payload
    print("write amplification: programmed/payload %.2f, erased/payload %.1f, rp2 bus "
          "bytes/payload %.2f" % (prog_b / pay_b, dev.erases * 4096 / pay_b,
                                  dev.programs * 256 / pay_b))

    p = a.power_w
    trig_s = a.max_unsaved_wh * 3600 / p
    month = YEAR_S // 12
    n_flat = int(month / trig_s)
    dev2, _ = simulate(a.payload, a.sectors, n_flat)
    worst_flat = max(dev2.erase_counts) * 12
    print("flat out at %d W all year (a commit per %d Wh = every %.1f s): simulated one "
          "month x 12 -> most-worn %d erases/year, %.0f years to 100 000 cycles"
          % (p, a.max_unsaved_wh, trig_s, worst_flat, W25Q["cycles"] / worst_flat))

    print("\n== Sweep (analytic, erases/sector/year = commits/year / %d / sectors)" % per)
    print("period_s " + " ".join("%9s" % ("%d sect" % n) for n in (4, 8, 16, 32)))
    for period in (60, 300, 900):
        row = []
        for n in (4, 8, 16, 32):
            e = (YEAR_S / period) / per / n
            row.append("%8.0fy" % (W25Q["cycles"] / e))
        print("%8d " % period + " ".join(row))

    print("\n== Energy at risk")
    print("cut with the power-fail warning: 0 Wh if the hold-up time covers %.1f ms "
          "(worst-case commit above; %.1f ms with its one retry when a program did not take);"
          " without a warning (crash, reset):" % (
              progs * W25Q["tpp_max"] + bus_ms + rd_ms,
              2 * (progs * W25Q["tpp_max"] + bus_ms + rd_ms)))
    plain = p * a.period / 3600
    # the trigger (unsaved A+ + A- in whole Wh: + 1 Wh) is checked once a second, and a
    # commit's snapshot is the registers before that second's step (the storage and the
    # metering task wake at the same deadline, the storage task first): + 2 s at p
    capped = min(plain, a.max_unsaved_wh + 1 + 2 * p / 3600)
    print("  period only: %.0f W x %d s = %.0f Wh; with the %d Wh trigger: <= %.0f Wh"
          % (p, a.period, plain, a.max_unsaved_wh, capped))
    print("  at a household's 500 W mean: %.0f Wh per period" % (500 * a.period / 3600))

    print("\n== Boot recovery")
    intact, damaged = salvage_reads(a.payload, a.sectors)
    print("recover() on a wrapped %d-sector journal: %d flash reads; with the newest sector's "
          "header damaged (salvaged, every slot size tried): %d reads" % (
              a.sectors, intact, damaged))

    print("\n== Ring log capacity (load profile, 32-byte records, one every 15 min)")
    for kib in (64, 256):
        n = kib // 4
        log = RingLog(Partition(NORFlash(n * 4096), 0, n * 4096), 32)
        per_l = log.slots_per_sector - 1
        e = 35040 / per_l / n
        print("%3d KiB: capacity %d records (%.0f days), keeps >= %d; %.1f erases/sector/year"
              % (kib, log.capacity, log.capacity / 96, log.min_kept, e))


if __name__ == "__main__":
    main()
