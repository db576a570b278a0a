"""Flash access for the storage layer: the interface, partitions, and a block-device adapter.

The journal, ring log and config store talk to a *flash* object with this interface
(byte addresses relative to the object):

- ``size``, ``sector_size`` (erase unit), ``page_size`` (largest program that stays in one
  page; a program never crosses a page boundary) -- ints, bytes.
- ``read(addr, buf)``: fill ``buf`` from ``addr``.
- ``program(addr, data)``: NOR semantics, bits can only go from 1 to 0; ``data`` must lie inside
  one page.
- ``erase(addr)``: ``addr`` sector-aligned; the sector reads back as 0xFF.

Implementations: ``boards.sim.norflash.NORFlash`` (the virtual board), :class:`Partition` (a
sector-aligned window of another flash object) and :class:`BlockDeviceFlash` (a MicroPython
block device with the extended interface: ``rp2.Flash(start=, len=)``, or ``pyb.Flash(start=,
len=)`` on STM32 boards whose storage is an SPI flash). Nothing here imports ``machine``.
"""

from micropython import const

_IOCTL_INIT = const(1)
_IOCTL_BLOCK_COUNT = const(4)
_IOCTL_BLOCK_SIZE = const(5)
_IOCTL_BLOCK_ERASE = const(6)


class FlashError(Exception):
    """The device refused or failed an operation (erase not blank, error return code)."""


class Partition:
    """A window ``[offset, offset + length)`` of ``dev``, both multiples of its sector size.

    Addresses passed to ``read/program/erase`` are relative to ``offset``; anything outside the
    window raises ValueError, so a bug in one partition's user cannot touch another's data.
    """

    def __init__(self, dev, offset, length):
        ss = dev.sector_size
        if offset < 0 or length <= 0 or offset % ss or length % ss or offset + length > dev.size:
            raise ValueError("partition must be sector-aligned and inside the device")
        self._dev = dev
        self._off = offset
        self.size = length
        self.sector_size = ss
        self.page_size = dev.page_size
        self.sectors = length // ss

    def _check(self, addr, n):
        if addr < 0 or addr + n > self.size:
            raise ValueError("address outside partition")

    def read(self, addr, buf):
        """Fill ``buf`` from partition address ``addr``."""
        self._check(addr, len(buf))
        self._dev.read(self._off + addr, buf)

    def program(self, addr, data):
        """Program ``data`` (inside one page) at partition address ``addr``."""
        self._check(addr, len(data))
        self._dev.program(self._off + addr, data)

    def erase(self, addr):
        """Erase the sector at partition address ``addr`` (sector-aligned)."""
        self._check(addr, self.sector_size)
        self._dev.erase(self._off + addr)


class BlockDeviceFlash:
    """The flash interface over a MicroPython extended block device (real boards).

    ``bdev`` must implement ``readblocks(block, buf, offset)``, ``writeblocks(block, buf,
    offset)`` (program without erase) and ``ioctl(4/5/6)``; its block size is the sector size.
    ``ioctl(1, 1)`` is sent first: stm32's ``pyb.Flash(start=, len=)`` switches to the native
    4 KiB erase block only then (ports/stm32/storage.c, MP_BLOCKDEV_IOCTL_INIT with arg 1).

    Programs are padded with 0xFF to the whole aligned page (``page_size``, default 256) because
    rp2's ``flash_range_program`` requires 256-byte aligned, whole-page writes (pico-sdk
    hardware_flash); 0xFF bits leave NOR cells unchanged, so the padding is harmless.

    With ``verify_erase`` (default) every erase is read back and a sector that is not all 0xFF
    raises FlashError: a device whose ioctl(6) is a no-op (stm32 internal-flash ``pyb.Flash``)
    is caught at once instead of corrupting records.
    """

    def __init__(self, bdev, page_size=256, verify_erase=True):
        r = bdev.ioctl(_IOCTL_INIT, 1)
        if r:
            raise ValueError("block device has no extended interface (ioctl(1, 1) -> %r)" % r)
        self._bdev = bdev
        self.sector_size = bdev.ioctl(_IOCTL_BLOCK_SIZE, 0)
        self.size = self.sector_size * bdev.ioctl(_IOCTL_BLOCK_COUNT, 0)
        if self.sector_size % page_size:
            raise ValueError("page_size must divide the block size")
        self.page_size = page_size
        self._ff = b"\xff" * page_size
        self._page = bytearray(self._ff)  # all 0xFF between operations (program())
        self._used = 0  # bytes of _page a partial program wrote (_page_fill)
        self._verify = verify_erase

    def read(self, addr, buf):
        """Fill ``buf`` from ``addr``; split at block boundaries. A read inside one block
        (the register journal's read-back of each record, lib/flashstore/ringlog.py) makes
        no view and has a frame of at most 11 words: allocation-free."""
        if addr < 0 or addr + len(buf) > self.size:
            raise ValueError("read out of range")
        ss = self.sector_size
        k = ss - addr % ss  # (bytes left in this block)
        if k < len(buf):  # this block's part, then the rest
            self.read(addr, memoryview(buf)[:k])
            self.read(addr + k, memoryview(buf)[k:])
        else:
            self._bdev.readblocks(addr // ss, buf, addr % ss)

    def program(self, addr, data):
        """Program ``data`` (inside one page) at ``addr`` as one whole-page write.

        In frames of at most 11 words (the power-fail and periodic commits' path: a larger
        one comes from the heap at every call on MicroPython, py/objfun.c
        ``VM_MAX_STATE_ON_STACK``; host_tests/unit/test_frames.py)."""
        n = len(data)
        if n == 0:
            return
        p = self.page_size
        if addr < 0 or addr + n > self.size or addr // p != (addr + n - 1) // p:
            raise ValueError("program out of range or crossing a page boundary")
        if n == p:
            self._write(addr, data)  # (a whole page: written as it is)
        else:
            self._page_fill(addr % p, data)
            self._write_page(addr - addr % p)

    def _page_fill(self, o, data):
        # ``data`` at offset ``o`` of ``_page`` (all 0xFF between programs), byte by byte,
        # not pg[o:o + n] = data: a slice object is a heap allocation on MicroPython < 1.26,
        # and this is the power-fail path (allocation-free, host_tests/unit/test_journal.py)
        pg = self._page
        for i in range(len(data)):
            pg[o + i] = data[i]
        self._used = o + len(data)  # (bytes 0 .. _used - 1 are set back to 0xFF after)

    def _write_page(self, start):
        # ``_page`` at ``start``, then all 0xFF again whatever happens
        try:
            self._write(start)
        finally:
            self._page_clear()

    def _page_clear(self):
        pg = self._page
        for i in range(self._used):
            pg[i] = 0xFF

    def _write(self, start, buf=None):
        # ``buf`` (default ``_page``) at ``start``, one page
        if buf is None:
            buf = self._page
        ss = self.sector_size
        r = self._bdev.writeblocks(start // ss, buf, start % ss)
        if r:
            raise FlashError("writeblocks returned %r" % r)

    def erase(self, addr):
        """Erase the sector at ``addr``; with ``verify_erase`` read it back (FlashError)."""
        ss = self.sector_size
        if addr < 0 or addr >= self.size or addr % ss:
            raise ValueError("erase address must be sector-aligned and in range")
        r = self._bdev.ioctl(_IOCTL_BLOCK_ERASE, addr // ss)
        if r:
            raise FlashError("erase of block %d returned %r" % (addr // ss, r))
        if self._verify:
            pg = self._page
            p = self.page_size
            try:
                for a in range(addr, addr + ss, p):
                    self._bdev.readblocks(addr // ss, pg, a - addr)
                    for b in pg:
                        if b != 0xFF:
                            raise FlashError("sector at %d not blank after erase" % addr)
            finally:
                pg[0:p] = self._ff  # program() relies on an all-0xFF page buffer
