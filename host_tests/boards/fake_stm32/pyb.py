# Host fake of pyb: repl_uart and Flash(start=, len=) over the stm fake's memory (test only).
import stm

REPL = ["uart2"]


def repl_uart(u=None):
    if u is None:
        REPL[0] = None


class Flash:
    """MicroPython's internal-flash storage view: 512-byte blocks from 0x08004000."""

    def __init__(self, start=-1, len=-1):
        self.start = 0 if start == -1 else start
        self.len = 65536 - self.start if len == -1 else len

    def readblocks(self, b, buf):
        a = 0x4000 + self.start + b * 512
        buf[:] = stm.MEM[a:a + len(buf)]

    def writeblocks(self, b, buf):
        a = 0x4000 + self.start + b * 512
        assert self.start + b * 512 + len(buf) <= self.start + self.len
        stm.MEM[a:a + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:
            return self.len // 512
        if op == 5:
            return 512
        return 0
