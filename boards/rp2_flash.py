# The Pico's data partition: raw rp2.Flash window, or files on the root littlefs.
"""The data partition of boards/pico.py: the top ``DATA_BLOCKS`` x 4 KiB of the RP2040 user
flash area, as a block device.

MicroPython's frozen ``_boot.py`` mounts the *whole* user area, ``rp2.Flash()`` (1408 KiB at
flash offset 0x0A0000 on the Pico), as littlefs, and formats it if the mount fails; littlefs
refuses a mount whose block count differs from the one it was formatted with (checked with
MicroPython 1.29: ``OSError(22)``). A raw partition inside that area therefore only exists
when the root filesystem was made smaller by a custom ``_boot.py`` (boards/README.md):

- raw mode (root filesystem ends below the partition): :class:`PagedFlash` over
  ``rp2.Flash(start=0x100000, len=0x60000)`` (flash offsets 0x1A0000..0x1FFFFF), programmed
  through a RAM page buffer (the SDK's ``flash_range_program`` wants 256-byte aligned pages,
  and a source buffer in XIP flash would be read while XIP is off);
- file mode (stock firmware: root littlefs covers everything): boards/file_blocks.FileBlocks,
  one 4 KiB file per block under ``/meterdata``, power-cut safe (copy-on-write) but a
  littlefs block write per program (tens of ms).

Erase and program run with interrupts off (``rp2_flash.c``): a 4 KiB sector erase takes 45 ms
typical, 400 ms max (W25Q16JV data sheet, tSE), longer than the UART FIFOs last, so erase only
while the ports are idle, never on the power-fail path.
"""

import rp2
from micropython import const

from boards.file_blocks import FileBlocks

# Flash: 4 KiB erase blocks (rp2_flash.c BLOCK_SIZE_BYTES = FLASH_SECTOR_SIZE).
FLASH_BLOCK = const(4096)
_PAGE = const(256)  # W25Q16JV page; flash_range_program granularity
_FF_PAGE = b"\xff" * _PAGE


class PagedFlash:
    """A block device over an ``rp2.Flash(start=, len=)`` window that accepts programs at any
    offset and length (``writeblocks(block, buf, offset)``, NOR: bits only clear).

    Each touched 256-byte page is programmed from a RAM buffer padded with 0xFF (0xFF leaves
    NOR cells unchanged), because ``flash_range_program`` needs aligned whole pages and reads
    its source while XIP is disabled (a source in flash, e.g. a frozen bytes constant, would
    fail). ``writeblocks(block, buf)`` without offset erases then programs whole blocks.
    """

    def __init__(self, dev, blocks):
        self._dev = dev
        self._n = blocks
        self._page = bytearray(_PAGE)

    def readblocks(self, block, buf, offset=0):
        self._dev.readblocks(block, buf, offset)

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            for b in range(len(buf) // FLASH_BLOCK):
                self._dev.ioctl(6, block + b)
            offset = 0
        page = self._page
        mv = memoryview(buf)
        addr = block * FLASH_BLOCK + offset
        i = 0
        n = len(buf)
        while i < n:
            o = addr % _PAGE
            k = min(_PAGE - o, n - i)
            if k != _PAGE:
                page[:] = _FF_PAGE
            page[o:o + k] = mv[i:i + k]
            start = addr - o
            self._dev.writeblocks(start // FLASH_BLOCK, page, start % FLASH_BLOCK)
            addr += k
            i += k

    def ioctl(self, op, arg=0):
        if op == 4:
            return self._n
        if op == 5:
            return FLASH_BLOCK
        if op == 6:
            self._dev.ioctl(6, arg)
        return 0


def data_flash(blocks):
    """(device, mode, note) for the data partition: the top ``blocks`` of ``rp2.Flash()``."""
    import os

    user = rp2.Flash()
    total = user.ioctl(4, 0) or 0
    first = total - blocks
    try:
        st = os.statvfs("/")
        root_blocks = st[2] * st[1] // FLASH_BLOCK
    except OSError:
        root_blocks = 0
    if root_blocks <= first:
        dev = rp2.Flash(start=first * FLASH_BLOCK, len=blocks * FLASH_BLOCK)
        note = "flash: raw partition, user-area blocks %d..%d" % (first, total - 1)
        return PagedFlash(dev, blocks), "raw", note
    note = ("flash: root filesystem covers the user area (stock _boot.py): data partition "
            "emulated in /meterdata (littlefs)")
    return FileBlocks("/meterdata", blocks, FLASH_BLOCK), "file", note
