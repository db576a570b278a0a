# STM32F411 internal flash: the data sectors driven through the FLASH registers.
"""The NUCLEO-F411RE's data flash (boards/stm32.py).

Data flash (RM0383, flash module organisation). Sectors 0..3 are 16 KiB, 4 is 64 KiB, 5..7
are 128 KiB; the stock firmware occupies sector 0 and 5..7, and MicroPython's internal
filesystem (FAT, 64 KiB, ``/flash``) sectors 1..3 plus the first 16 KiB of sector 4 through a
16 KiB RAM cache that erases and rewrites a whole sector on each flush, so ``pyb.Flash``
windows are not NOR-like (erase is a no-op, a flush erases) and not power-cut safe. The data
partition is therefore driven directly through the FLASH registers on two sectors the
filesystem no longer uses:

- block 0 = sector 3 (0x0800C000, 16 KiB), block 1 = the first 16 KiB of sector 4
  (0x08010000; erasing it erases the whole 64 KiB sector, the other 48 KiB stay unused);
- the ``journal`` partition is both blocks; events and load profiles do not fit. The
  ``config`` partition lives in two files on the FAT volume instead
  (boards/file_blocks.FileBlocks, /flash/meterdata).

For that the filesystem must be made 32 KiB (sectors 1 and 2) once:
:func:`format_small_fs` (FAT needs at least 64 sectors of 512 bytes, so 32 KiB is the
smallest; checked with MicroPython's VfsFat). MicroPython mounts a FAT volume smaller than its
partition, and never writes past the volume. ``Board()`` reads the volume size from the boot
sector (FAT BPB or littlefs superblock) and leaves the journal out while the filesystem still
covers sectors 3..4. Never use the factory-reset boot mode (USER button held at reset): it
recreates the 64 KiB filesystem over the data sectors. The application (about 64 KB as .mpy)
does not fit in that filesystem anyway: it is frozen into the firmware or run from the host
with ``mpremote mount`` (boards/README.md).

Timing (DS10314 "Flash memory programming", 2.7..3.6 V): one program operation 16 us typ,
100 us max; sector erase at x32 parallelism 16 KiB 250 ms typ / 500 ms max, 64 KiB
550 / 1100 ms (128 KiB: 1 / 2 s). The F411 has one flash bank, so the CPU stalls
(interrupts too, UART bytes are lost) for the whole erase: erases belong to the journal's
maintenance step when the ports are idle, never to the power-fail path, and ``ticks_ms``
falls behind by the stall while the RTC does not.
"""

import machine
import stm
import uctypes
from micropython import const

# Data partition: (sector number, address) per 16 KiB block.
FLASH_BLOCK = const(16384)
_SECTORS = ((3, 0x0800C000), (4, 0x08010000))
_FS_START = const(0x08004000)  # sector 1: first block of MicroPython's internal filesystem
_FS_MAX_FOR_RAW = const(32768)  # the filesystem may use sectors 1 and 2 only

# FLASH registers (RM0383, "Flash interface registers"): offsets from stm.FLASH, bits.
_ACR = stm.FLASH + stm.FLASH_ACR
_KEYR = stm.FLASH + stm.FLASH_KEYR
_SR = stm.FLASH + stm.FLASH_SR
_CR = stm.FLASH + stm.FLASH_CR
_KEY1 = 0x45670123
_KEY2 = 0xCDEF89AB
_CR_PG = const(1 << 0)
_CR_SER = const(1 << 1)
_CR_PSIZE_X8 = const(0 << 8)
_CR_PSIZE_X16 = const(1 << 8)
_CR_PSIZE_X32 = const(2 << 8)
_CR_STRT = const(1 << 16)
_CR_LOCK = 0x80000000
_SR_BSY = const(1 << 16)
_SR_ERR = const(0x1F2)  # OPERR, WRPERR, PGAERR, PGPERR, PGSERR, RDERR
_SR_EOP = const(1 << 0)
_ACR_DCEN = const(1 << 10)
_ACR_DCRST = const(1 << 12)

def _reset_dcache():
    # the ART data cache reset, with DCEN cleared first (RM0383 3.4.2)
    acr = stm.mem32[_ACR]
    if acr & _ACR_DCEN:
        off = acr & ~_ACR_DCEN
        stm.mem32[_ACR] = off
        stm.mem32[_ACR] = off | _ACR_DCRST
        stm.mem32[_ACR] = off
        stm.mem32[_ACR] = acr


class _Critical:
    """``with``: interrupts off (``machine.disable_irq``); at the end, however it ends,
    FLASH_CR locked and interrupts on again (F4Sectors._op); ended by an exception, the
    data cache reset too (the caller's reset after the operation is skipped then)."""

    def __init__(self):
        self.st = 0

    def __enter__(self):
        self.st = machine.disable_irq()

    def __exit__(self, t, e, tb):
        stm.mem32[_CR] = _CR_LOCK
        machine.enable_irq(self.st)
        if t is not None:
            _reset_dcache()


class F4Sectors:
    """Block device (extended interface, NOR semantics) on whole STM32F4 flash sectors,
    programmed through the FLASH registers (RM0383 program and erase sequences) instead of
    ``pyb.Flash``.

    ``sectors``: tuple of (sector number, address); every block is ``block_size`` bytes from the
    sector start (a larger sector is only partly used, and erasing its block erases all of it).
    Programs are half-words (x16) where aligned, bytes elsewhere; 0xFF bytes are skipped.
    A written location may be programmed again as long as bits only go from 1 to 0 (the F4 has
    no flash ECC; ST's AN3969 EEPROM emulation relies on it), which gives NOR semantics.

    Each half-word program and each erase is one unlock-operate-lock sequence with interrupts
    disabled, so MicroPython's own flash code (the filesystem cache flush runs from an IRQ and
    unlocks/locks the same controller) can never interleave with it; outside an erase that
    window is a few tens of microseconds. The ART data cache is reset (with DCEN cleared, as
    RM0383 requires) after each operation so that reads see the new contents.

    Allocation-free on the journal's paths (a page program inside one block, a read of at
    most 32 bytes inside one block: the power-fail commit and its read-back): no views or
    slices, every frame within the 11 words MicroPython keeps on the C stack (py/objfun.c
    ``VM_MAX_STATE_ON_STACK``; a larger one is heap-allocated at every call), and no long
    int: FLASH_CR's LOCK bit (bit 31) is read as a 1-bit field of a word read
    (``uctypes.struct`` with a native layout, made once), not ``stm.mem32[FLASH_CR]``, which
    is a long int on a 31-bit small-int core (host_tests/boards/smoke_stm32.py counts it).
    Raises ValueError outside the partition, OSError(EIO) on a controller error.
    """

    def __init__(self, sectors, block_size):
        self._sec = sectors
        self._bs = block_size
        # FLASH_CR bit 31 (LOCK), a 32-bit access (NATIVE: BF fields of a word)
        self._cr = uctypes.struct(_CR, {"LOCK": uctypes.BFUINT32 | 31 << uctypes.BF_POS
                                        | 1 << uctypes.BF_LEN}, uctypes.NATIVE)
        self._crit = _Critical()
        self._a = 0  # the operation's address, value and width (0: erase), set before _op
        self._v = 0
        self._w = 0

    def _op(self, cr):
        """One flash operation with ``cr`` in FLASH_CR: program ``_v`` (``_w`` 1 or 2
        bytes) at ``_a``, or, with ``_w`` 0, start the sector erase set up in ``cr``.
        True on a controller error (returned, not raised). Interrupts off, then FLASH_CR
        locked and interrupts on again on every way out: a ``with`` (_Critical), since an
        exception can still come from inside (a KeyboardInterrupt pending from before
        disable_irq is raised at the first jump of the polling loop; without it the board
        stayed with interrupts off and the controller unlocked). (Not ``try``/``finally``:
        its frame is 12 words, heap-allocated at every call; the ``with`` keeps 10.)"""
        with self._crit:
            return self._run(cr)

    def _run(self, cr):
        # the unlock-operate sequence (RM0383 3.5.1, 3.5.4); interrupts off, locked after;
        # True on a controller error
        if self._wait():
            return True
        if self._cr.LOCK:
            stm.mem32[_KEYR] = _KEY1
            stm.mem32[_KEYR] = _KEY2
        stm.mem32[_SR] = _SR_ERR | _SR_EOP
        stm.mem32[_CR] = cr
        w = self._w
        if w == 2:
            stm.mem16[self._a] = self._v
        elif w == 1:
            stm.mem8[self._a] = self._v
        else:
            stm.mem32[_CR] = cr | _CR_STRT  # the CPU stalls here until the erase ends
        return self._wait()

    def _wait(self):
        # until not busy; True (the error flags cleared) on a controller error
        while stm.mem32[_SR] & _SR_BSY:
            pass
        if stm.mem32[_SR] & _SR_ERR:
            stm.mem32[_SR] = _SR_ERR
            stm.mem32[_CR] = 0
            return True
        return False

    def _reset_dcache(self):
        _reset_dcache()

    def _addr(self, block, offset, n):
        if block < 0 or block >= len(self._sec) or offset < 0 or offset + n > self._bs:
            raise ValueError("flash access outside the partition")
        return self._sec[block][1] + offset

    def readblocks(self, block, buf, offset=0):
        if len(buf) > 32 or offset + len(buf) > self._bs:
            self._span(block, buf, offset, False)
            return
        a = self._addr(block, offset, len(buf))
        self._peek(a, buf)  # (a record's piece: byte reads, no view)

    def _peek(self, a, buf):
        i = 0
        n = len(buf)
        while i < n:
            buf[i] = stm.mem8[a + i]
            i += 1

    def writeblocks(self, block, buf, offset=None):
        if offset is None:  # (the simple interface: whole blocks, erased first)
            self._erase_blocks(block, len(buf) // self._bs)
            offset = 0
        if offset + len(buf) > self._bs:
            self._span(block, buf, offset, True)
            return
        a = self._addr(block, offset, len(buf))  # (a page inside one block)
        self._program(a, buf)

    def _erase_blocks(self, block, n):
        for b in range(n):
            self.ioctl(6, block + b)

    def _span(self, block, buf, offset, write):
        # a larger read, or a transfer across blocks: each block's part through views
        # (allocates; not the journal's paths)
        mv = memoryview(buf)
        n = len(mv)
        i = 0
        while i < n:
            a = offset + i
            b = block + a // self._bs
            o = a % self._bs
            k = min(self._bs - o, n - i)
            if write:
                self._program(self._addr(b, o, k), mv[i:i + k])
            else:
                mv[i:i + k] = uctypes.bytearray_at(self._addr(b, o, k), k)
            i += k

    def _program(self, addr, buf):
        # ``buf`` at flash address ``addr``, then the data cache reset on every path
        # (errors returned, not raised, up to here: no ``try``, see _op)
        e = self._units(addr, buf)
        self._reset_dcache()
        if e:
            raise OSError(5)  # EIO

    def _units(self, addr, buf):
        # True at the first controller error
        i = 0
        while i < len(buf):
            k = self._unit(addr + i, buf, i)
            if not k:
                return True
            i += k
        return False

    def _unit(self, a, buf, i):
        # one program at ``a`` from buf[i]: a half-word where aligned, else a byte; 0xFF
        # skipped. Returns the bytes consumed (2 or 1), 0 on a controller error
        if not a & 1 and i + 1 < len(buf):
            v = buf[i] | buf[i + 1] << 8
            if v != 0xFFFF and self._put(a, v, 2):
                return 0
            return 2
        v = buf[i]
        if v != 0xFF and self._put(a, v, 1):
            return 0
        return 1

    def _put(self, a, v, w):
        # program ``v`` (``w`` bytes: 2 or 1, x16 or x8 parallelism) at ``a``; True on error
        self._a = a
        self._v = v
        self._w = w
        return self._op(_CR_PG | (_CR_PSIZE_X16 if w == 2 else _CR_PSIZE_X8))

    def ioctl(self, op, arg=0):
        if op == 4:
            return len(self._sec)
        if op == 5:
            return self._bs
        if op == 6:
            self._addr(arg, 0, 0)
            self._w = 0
            e = self._op(_CR_SER | _CR_PSIZE_X32 | self._sec[arg][0] << 3)
            self._reset_dcache()
            if e:
                raise OSError(5)  # EIO
        return 0


def fs_volume_bytes():
    """Size in bytes of the filesystem volume in MicroPython's internal flash storage, read
    from its first block (FAT boot sector or littlefs superblock), or None if unrecognised."""
    import os

    os.sync()  # the boot sector may sit in the filesystem's RAM cache
    for blk in (0, 1):  # littlefs keeps its superblock in block 0 or 1
        b = uctypes.bytes_at(_FS_START + 512 * blk, 512)
        if blk == 0 and b[510] == 0x55 and b[511] == 0xAA and b[11] | b[12] << 8 == 512:
            tot = b[19] | b[20] << 8
            if not tot:
                tot = int.from_bytes(b[32:36], "little")
            return tot * 512
        if b[8:16] == b"littlefs":
            return int.from_bytes(b[24:28], "little") * int.from_bytes(b[28:32], "little")
    return None


def format_small_fs():
    """Re-create ``/flash`` as a 32 KiB FAT volume on sectors 1..2, freeing sectors 3..4
    for the data partition. ERASES every file on /flash: copy them back afterwards
    (``mpremote cp``)."""
    import os

    import pyb
    import vfs

    try:
        vfs.umount("/flash")
    except OSError:
        pass
    dev = pyb.Flash(start=0, len=_FS_MAX_FOR_RAW)
    vfs.VfsFat.mkfs(dev)
    vfs.mount(vfs.VfsFat(dev), "/flash")
    os.chdir("/flash")


CONFIG_PATH = "/flash/meterdata"  # the configuration record's two blocks (files)
_CONFIG_BLOCK = const(4096)


def data_partitions(notes):
    """The ``partitions`` of the NUCLEO (boards/board.py flash contract): ``journal`` on
    sectors 3..4 when the filesystem has been shrunk, ``config`` as two 4 KiB files on the
    FAT volume when ``/flash`` is mounted; what is missing is appended to ``notes``."""
    from boards.file_blocks import FileBlocks
    from flashstore.flash import BlockDeviceFlash, Partition

    parts = {}
    vol = fs_volume_bytes()
    if vol is not None and vol <= _FS_MAX_FOR_RAW:
        dev = BlockDeviceFlash(F4Sectors(_SECTORS, FLASH_BLOCK))
        parts["journal"] = Partition(dev, 0, dev.size)
    else:
        notes.append("filesystem (%s bytes) covers the data sectors: no journal partition "
                     "until Board.format_small_fs()" % vol)
    try:
        dev = BlockDeviceFlash(FileBlocks(CONFIG_PATH, 2, _CONFIG_BLOCK))
        parts["config"] = Partition(dev, 0, dev.size)
    except OSError as e:
        notes.append("no config partition: %s not writable (%r)" % (CONFIG_PATH, e))
    return parts
