# RAM block device for littlefs on the emulated targets (frozen into the emu firmware).
"""``RAMBlockDev(buf, block_size)``: the block protocol of MicroPython's ``vfs`` (simple and
extended: ``readblocks(n, buf[, offset])``, ``writeblocks(n, buf[, offset])``, ``ioctl``) over
a bytearray, here ``emu.ramdisk()``: a static buffer outside the GC heap, so a RAM file system
does not shrink the device-sized heap that the tests run in."""


class RAMBlockDev:
    def __init__(self, buf, block_size=512):
        self.buf = buf
        self.bs = block_size
        self.n = len(buf) // block_size

    def readblocks(self, block, out, offset=0):
        a = block * self.bs + offset
        out[:] = self.buf[a:a + len(out)]

    def writeblocks(self, block, data, offset=None):
        if offset is None:  # simple protocol: erase then program whole blocks
            offset = 0
        a = block * self.bs + offset
        self.buf[a:a + len(data)] = data

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self.n
        if op == 5:  # block size
            return self.bs
        if op == 6:  # erase
            return 0
        return 0


def mount_ram_root():
    """Mount the RAM disk as / (formatting it the first time) with /tmp in it; returns its
    size in bytes, or 0 when the firmware was built without one."""
    import emu
    import os
    import vfs

    buf = emu.ramdisk()
    if buf is None:
        return 0
    bd = RAMBlockDev(buf)
    try:  # a soft reset keeps the RAM (like a board's flash): mount what is there
        vfs.mount(vfs.VfsLfs2(bd), "/")
    except OSError:
        vfs.VfsLfs2.mkfs(bd)
        vfs.mount(vfs.VfsLfs2(bd), "/")
    try:
        os.mkdir("/tmp")
    except OSError:
        pass
    os.chdir("/")
    return len(buf)
