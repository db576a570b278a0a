"""NOR-flash model for the virtual board: erase to 0xFF, program clears bits, power-cut injection.

``NORFlash(size, sector_size=4096, page_size=256, path=None, seed=0, strict=False)`` models a
serial NOR chip such as the Winbond W25Q16JV on RP2040 boards (2 MiB, 4 KiB sectors, 256-byte
pages; W25Q16JV datasheet Rev. H, "General descriptions" and the "Page Program (02h)" and
"Sector Erase (20h)" instructions) or, with other geometry, an MCU's internal flash (STM32F4:
16/64/128 KiB sectors, programmed by byte/half-word/word; RM0090 section 3.5).

Semantics (what the storage layer may rely on, and nothing more):

- ``erase(addr)``: ``addr`` sector-aligned; every byte of the sector becomes 0xFF.
- ``program(addr, data)``: each byte becomes ``old & new`` (a program can only clear bits, never
  set them; RM0090 3.5.4 "Writing '1' requires a Flash memory erase operation"). A program must
  stay inside one page (W25Q wraps around inside the page instead, which is never what a caller
  wants), so crossing a page boundary raises ValueError. With ``strict=True`` a program that
  would need a 0 bit to become 1 raises ValueError too (it catches callers that program over
  data they did not erase).
- ``read(addr, buf)``: fills ``buf`` from ``addr``.
- Worn cells: ``wear_out(addr, n, mask=0xFF)`` makes the bits ``mask`` of the ``n`` bytes
  from ``addr`` stop programming: they stay 1 (an erase still sets them), and the program
  returns as if it had worked, as a worn or faulty NOR cell does (the W25Q16JV's status
  registers have no program-fail bit: only a read-back tells). ``worn`` lists the
  ``(start, end, mask)`` ranges; ``worn = []`` heals the chip.
- Counters: ``ops`` (program + erase operations attempted), ``programs``, ``erases``,
  ``bytes_programmed``, and ``erase_counts`` (a list, erases per sector).

Power cuts: ``cut_at_op(n)`` arms a cut at the n-th program/erase counted from the call
(1-based). That operation is applied only in part and then ``PowerCut`` is raised; from then on
every read, program and erase raises ``PowerCut`` until ``power_on()``. The partial result is a
random subset of the bit changes the operation would have made (cleared bits for a program, set
bits for an erase), drawn from one of five patterns so that edge cases occur often: nothing
applied, a prefix of the bytes applied (the next byte in part; all bytes is possible), or each
changing bit applied with probability 1/8, 1/2 or 7/8. The draw is a pure function of
``(seed, ops)``, so a run cut at op k and a :meth:`copy` taken just before op k and cut at its
next op give the same image.

``on_op``: if set to a callable ``f(flash, kind, addr, data)`` it is called before each
program (``kind == OP_PROGRAM``) or erase (``OP_ERASE``, ``data`` None) is applied; test
harnesses use it to fork the image at every operation (see host_tests/system).

File backing: with ``path`` the image is loaded from that file if it exists (an image of a
smaller chip, a whole number of sectors, is extended with erased sectors and keeps its wear;
otherwise its size must be ``size``) or created blank; every program/erase is written through
to the file and flushed, so a killed process keeps every completed operation. Erase counts
are kept beside it in ``path + ".wear"`` (one little-endian u32 per sector).

Image memory: ``image`` is a bytearray in the heap, unless :func:`set_image_allocator`
installed another source (the emulated MCU cores of tools/emu give the images memory outside
their device-sized GC heap: a flash chip is not RAM).

Block-device protocol (MicroPython's extended block device interface, documentation
"Filesystems and storage"):
``readblocks(block, buf, offset=0)``, ``writeblocks(block, buf, offset=None)`` (without offset
the blocks are erased first), ``ioctl(op, arg)`` with 1/2/3 init/deinit/sync, 4 block count,
5 block size (= sector size), 6 erase block. So ``vfs.VfsLfs2(NORFlash(...))`` mounts on the
unix port.
"""

import os
import struct

from micropython import const

OP_PROGRAM = const(1)
OP_ERASE = const(2)
_MASK32 = const(0xFFFFFFFF)


_image_alloc = None
_blanks = {}  # sector size -> bytes of 0xFF, shared by every model (a board and its copies)


def set_image_allocator(fn):
    """Take images from ``fn(size)`` -> ``(bytearray of size bytes, owner)``, or None for a
    bytearray in the heap; ``fn=None`` restores the heap. The model keeps ``owner`` as long as
    it lives (the memory is the owner's), so keep the model, not only its ``image``."""
    global _image_alloc
    _image_alloc = fn


class PowerCut(Exception):
    """The simulated supply failed during (or before) this flash operation."""


class NORFlash:
    """File-backable NOR-flash image with bit-accurate program/erase and power-cut injection."""

    def __init__(self, size, sector_size=4096, page_size=256, path=None, seed=0, strict=False):
        if page_size < 1 or sector_size % page_size or size < sector_size or size % sector_size:
            raise ValueError("geometry: size % sector_size and sector_size % page_size must be 0")
        self.size = size
        self.sector_size = sector_size
        self.page_size = page_size
        self.sectors = size // sector_size
        self.seed = seed
        self.strict = strict
        self._blank = _blanks.get(sector_size)
        if self._blank is None:
            self._blank = _blanks[sector_size] = b"\xff" * sector_size
        got = None if _image_alloc is None else _image_alloc(size)
        if got is None:
            self.image = bytearray(size)
            self._owner = None
        else:
            self.image, self._owner = got
        # filled sector by sector: no second image-sized buffer
        for a in range(0, size, sector_size):
            self.image[a : a + sector_size] = self._blank
        self._mv = memoryview(self.image)
        self.erase_counts = [0] * self.sectors
        self.ops = 0
        self.programs = 0
        self.erases = 0
        self.bytes_programmed = 0
        self.on_op = None
        self.worn = []  # (start, end, mask): bits that no longer program (wear_out)
        self._cut_in = 0  # ops left until the armed cut (0 = not armed)
        self._dead = False
        self._f = None
        self._wf = None
        self.path = path
        if path is not None:
            self._open(path)

    # ---- file backing -------------------------------------------------------------------
    def _open(self, path):
        try:
            os.stat(path)
            exists = True
        except OSError:
            exists = False
        if exists:
            with open(path, "rb") as f:
                n = f.readinto(self.image)
                if f.read(1) or n < self.sector_size or n % self.sector_size:
                    raise ValueError("flash image %s is not %d bytes (or a smaller whole "
                                     "number of %d-byte sectors)"
                                     % (path, self.size, self.sector_size))
            if n < self.size:  # a smaller chip's image: the rest is blank (erased) sectors
                with open(path, "ab") as f:
                    for _a in range(n, self.size, self.sector_size):
                        f.write(self._blank)
        else:
            with open(path, "wb") as f:
                f.write(self.image)
        wpath = path + ".wear"
        try:
            with open(wpath, "rb") as f:
                raw = f.read()
            k = len(raw) // 4
            if 4 * k == len(raw) and k <= self.sectors:  # (a smaller chip's: the rest 0)
                self.erase_counts[:k] = list(struct.unpack("<%dI" % k, raw))
        except OSError:
            pass
        with open(wpath, "wb") as f:
            f.write(struct.pack("<%dI" % self.sectors, *self.erase_counts))
        self._f = open(path, "r+b")
        self._wf = open(wpath, "r+b")

    def _persist(self, addr, n):
        if self._f is not None:
            self._f.seek(addr)
            self._f.write(self._mv[addr : addr + n])
            self._f.flush()

    def flush(self):
        """Flush the backing file (a no-op without ``path``; ops already write through)."""
        if self._f is not None:
            self._f.flush()
            self._wf.flush()

    def close(self):
        """Close the backing files; the object must not be used afterwards."""
        if self._f is not None:
            self._f.close()
            self._wf.close()
            self._f = self._wf = None

    # ---- power ----------------------------------------------------------------------------
    def cut_at_op(self, n):
        """Arm a power cut at the n-th program/erase from now (n >= 1); 0 disarms."""
        if n < 0:
            raise ValueError("n must be >= 0")
        self._cut_in = n

    def power_on(self):
        """Restore power after a cut: operations work again and no cut is armed."""
        self._dead = False
        self._cut_in = 0

    @property
    def dead(self):
        """True between a power cut and ``power_on()``."""
        return self._dead

    def copy(self):
        """An independent model with the same image, counters, seed and wear (no cut armed)."""
        c = NORFlash(self.size, self.sector_size, self.page_size, None, self.seed, self.strict)
        c.image[:] = self.image
        c.erase_counts = list(self.erase_counts)
        c.ops = self.ops
        c.programs = self.programs
        c.erases = self.erases
        c.bytes_programmed = self.bytes_programmed
        c.worn = list(self.worn)
        return c

    # ---- the flash interface ------------------------------------------------------------
    def read(self, addr, buf):
        """Copy ``len(buf)`` bytes at ``addr`` into ``buf``. Raises ValueError out of range."""
        if self._dead:
            raise PowerCut("flash read while power is off")
        n = len(buf)
        if addr < 0 or addr + n > self.size:
            raise ValueError("read out of range")
        if n <= 16:  # (the journal's read-back, on the power-fail path: no slice objects)
            img = self.image
            for i in range(n):
                buf[i] = img[addr + i]
            return
        buf[:] = self._mv[addr : addr + n]

    def program(self, addr, data):
        """AND ``data`` into the image at ``addr``; must not cross a page (ValueError)."""
        n = len(data)
        if n == 0:
            return
        if addr < 0 or addr + n > self.size:
            raise ValueError("program out of range")
        p = self.page_size
        if addr // p != (addr + n - 1) // p:
            raise ValueError("program crosses a page boundary")
        img = self.image
        if self.strict:
            for i in range(n):
                if data[i] & ~img[addr + i] & 0xFF:
                    raise ValueError("program would set a 0 bit to 1 at %d" % (addr + i))
        self._begin(OP_PROGRAM, addr, data)
        self.programs += 1
        self.bytes_programmed += n
        worn = self.worn
        if self._cut_now():
            self._torn(addr, self._worn_data(addr, data) if worn else data, None)
            self._persist(addr, n)
            raise PowerCut("power cut during program at %d" % addr)
        if worn:  # (allocation-free: the power-fail path's read-back is tested on it)
            for i in range(n):
                img[addr + i] &= data[i] | self._stuck(addr + i)
        else:
            for i in range(n):
                img[addr + i] &= data[i]
        self._persist(addr, n)

    def wear_out(self, addr, n, mask=0xFF):
        """The bits ``mask`` of the ``n`` bytes from ``addr`` no longer program (worn cells:
        module docstring); they read 1 after every erase."""
        if addr < 0 or n < 1 or addr + n > self.size or not 0 < mask <= 0xFF:
            raise ValueError("worn range outside the chip, or an empty mask")
        self.worn.append((addr, addr + n, mask))

    def _stuck(self, a):
        # the bits of byte ``a`` that no longer program
        m = 0
        for lo, hi, mask in self.worn:
            if lo <= a < hi:
                m |= mask
        return m

    def _worn_data(self, addr, data):
        # ``data`` with the worn bits set (they stay 1): a new buffer only if one is worn here
        out = None
        for lo, hi, mask in self.worn:
            if lo >= addr + len(data) or hi <= addr:
                continue
            if out is None:
                out = bytearray(data)
            for a in range(max(lo, addr), min(hi, addr + len(data))):
                out[a - addr] |= mask
        return data if out is None else out

    def erase(self, addr):
        """Set the sector starting at ``addr`` (sector-aligned, else ValueError) to 0xFF."""
        ss = self.sector_size
        if addr < 0 or addr >= self.size or addr % ss:
            raise ValueError("erase address must be sector-aligned and in range")
        self._begin(OP_ERASE, addr, None)
        self.erases += 1
        s = addr // ss
        self.erase_counts[s] += 1
        if self._wf is not None:
            self._wf.seek(4 * s)
            self._wf.write(struct.pack("<I", self.erase_counts[s]))
            self._wf.flush()
        if self._cut_now():
            self._torn(addr, None, ss)
            self._persist(addr, ss)
            raise PowerCut("power cut during erase at %d" % addr)
        self.image[addr : addr + ss] = self._blank
        self._persist(addr, ss)

    def _begin(self, kind, addr, data):
        if self._dead:
            raise PowerCut("flash operation while power is off")
        if self.on_op is not None:
            self.on_op(self, kind, addr, data)
        self.ops += 1

    def _cut_now(self):
        if self._cut_in:
            self._cut_in -= 1
            if self._cut_in == 0:
                self._dead = True
                return True
        return False

    # ---- torn operations ----------------------------------------------------------------
    def _torn(self, addr, data, erase_len):
        # State of a small xorshift32 generator: a pure function of (seed, ops) so that forks
        # and real runs tear identically, and the same on CPython and MicroPython.
        x = (self.seed * 0x9E3779B1 + self.ops * 0x85EBCA6B + 0x2545F491) & _MASK32
        if x == 0:
            x = 1
        state = [x]

        def rnd():
            v = state[0]
            v ^= (v << 13) & _MASK32
            v ^= v >> 17
            v ^= (v << 5) & _MASK32
            state[0] = v
            return v

        for _ in range(4):
            rnd()
        n = erase_len if data is None else len(data)
        mode = rnd() % 5
        cut = rnd() % (n + 1)  # prefix mode: bytes before `cut` complete
        img = self.image
        for i in range(n):
            old = img[addr + i]
            if data is None:
                change = ~old & 0xFF  # bits an erase would set
            else:
                change = old & ~data[i] & 0xFF  # bits a program would clear
            if not change:
                continue
            if mode == 0:
                m = 0
            elif mode == 1:
                m = 0xFF if i < cut else (rnd() & 0xFF if i == cut else 0)
            elif mode == 2:
                m = rnd() & 0xFF
            elif mode == 3:
                m = rnd() & rnd() & rnd() & 0xFF
            else:
                m = (rnd() | rnd() | rnd()) & 0xFF
            if data is None:
                img[addr + i] = old | (change & m)
            else:
                img[addr + i] = old & ~(change & m) & 0xFF

    # ---- MicroPython block-device protocol (extended interface) -------------------------
    def readblocks(self, block, buf, offset=0):
        """Read ``len(buf)`` bytes from ``block * sector_size + offset``."""
        self.read(block * self.sector_size + offset, buf)

    def writeblocks(self, block, buf, offset=None):
        """Program ``buf`` at ``block * sector_size + offset``, split at page boundaries.

        Without ``offset`` the blocks covered are erased first (the simple interface).
        """
        ss = self.sector_size
        addr = block * ss
        n = len(buf)
        if offset is None:
            for b in range(block, block + (n + ss - 1) // ss):
                self.erase(b * ss)
        else:
            addr += offset
        mv = memoryview(buf)
        p = self.page_size
        i = 0
        while i < n:
            chunk = min(n - i, p - (addr + i) % p)
            self.program(addr + i, mv[i : i + chunk])
            i += chunk

    def ioctl(self, op, arg):
        """1/2/3 init/deinit/sync -> 0, 4 block count, 5 block size, 6 erase block ``arg``."""
        if op in (1, 2):
            return 0
        if op == 3:
            self.flush()
            return 0
        if op == 4:
            return self.sectors
        if op == 5:
            return self.sector_size
        if op == 6:
            self.erase(arg * self.sector_size)
            return 0
        return None
