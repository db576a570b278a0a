# Flash blocks emulated by files on a MicroPython filesystem (NOR semantics).
"""A block device (MicroPython's extended interface) whose blocks are files on a mounted
filesystem, with NOR semantics: a program ANDs the new bytes into the old ones, an erase
writes the block back to 0xFF.

Used where no raw flash is free for a partition: the Pico's data partition under the stock
firmware (its root littlefs covers the whole user area; boards/pico.py "file mode") and the
NUCLEO's ``config`` partition on its 32 KiB FAT volume (boards/stm32.py). Wrapped in
``flashstore.flash.BlockDeviceFlash`` it is the flash interface the storage layer uses.
"""

from micropython import const

_PAGE = const(256)  # bytes read-modified-written at a time
_FF_PAGE = b"\xff" * _PAGE


class FileBlocks:
    """``blocks`` blocks of ``block_size`` bytes, one file each in folder ``path`` (created if
    missing), created erased (0xFF) on first use (the Pico's 96 files take a few seconds once).

    One file per block keeps each program a single-block copy-on-write: littlefs rewrites a
    file from the modified block to its end, so one big file would cost up to the whole
    partition per program. On littlefs a program or erase is power-cut safe (copy-on-write);
    on FAT a cut may leave a block half written, which the A/B configuration record survives
    (lib/flashstore/config.py: a torn copy is ignored, the other one used). Programs AND the
    new bytes into the old ones (NOR semantics). Each program or erase opens and closes its
    file, which commits it; reads keep the last block's file open until the next write.
    """

    def __init__(self, path, blocks, block_size=4096):
        import os

        self._path = path
        self._n = blocks
        self._bs = block_size
        self._tmp = bytearray(_PAGE)
        self._rf = None  # file of the last block read, and its number
        self._rb = -1
        try:
            os.mkdir(path)
        except OSError:
            pass
        have = os.listdir(path)
        for b in range(blocks):
            if self._name(b)[len(path) + 1:] not in have:
                self.ioctl(6, b)

    def _name(self, block):
        return "%s/b%03d" % (self._path, block)

    def readblocks(self, block, buf, offset=0):
        n = len(buf)
        mv = memoryview(buf)
        i = 0
        while i < n:  # may span blocks (full-block reads)
            a = offset + i
            b = block + a // self._bs
            o = a % self._bs
            k = min(self._bs - o, n - i)
            f = self._rf
            if f is None or b != self._rb:
                self._close()
                f = self._rf = open(self._name(b), "rb")
                self._rb = b
            f.seek(o)
            f.readinto(mv[i:i + k])
            i += k

    def _close(self):
        if self._rf is not None:
            self._rf.close()
            self._rf = None
            self._rb = -1

    def writeblocks(self, block, buf, offset=None):
        self._close()
        if offset is None:
            for b in range(len(buf) // self._bs):
                self.ioctl(6, block + b)
            offset = 0
        n = len(buf)
        mv = memoryview(buf)
        tmp = self._tmp
        i = 0
        while i < n:
            a = offset + i
            b = block + a // self._bs
            o = a % self._bs
            k = min(_PAGE, self._bs - o, n - i)
            t = memoryview(tmp)[:k]
            with open(self._name(b), "r+b") as f:
                f.seek(o)
                f.readinto(t)
                for j in range(k):
                    t[j] &= mv[i + j]
                f.seek(o)
                f.write(t)
            i += k

    def ioctl(self, op, arg=0):
        if op == 4:
            return self._n
        if op == 5:
            return self._bs
        if op == 6:
            self._close()
            with open(self._name(arg), "wb") as f:
                for _ in range(self._bs // _PAGE):
                    f.write(_FF_PAGE)
        return 0
