# Host fake of the C part of rp2: PIO constants, StateMachine and Flash (test only).


class PIO:
    IN_LOW = 0
    IN_HIGH = 1
    OUT_LOW = 2
    OUT_HIGH = 3
    SHIFT_LEFT = 0
    SHIFT_RIGHT = 1
    JOIN_NONE = 0
    JOIN_TX = 1
    JOIN_RX = 2


class StateMachine:
    ALL = {}

    def __new__(cls, id, *a, **k):
        sm = StateMachine.ALL.get(id)
        if sm is None:
            sm = object.__new__(cls)
            sm.id = id
            sm.q = []
            sm.handler = None
            sm.hard = False
            sm.on = 0
            sm.prog = None
            sm.freq = None
            StateMachine.ALL[id] = sm
        return sm

    def __init__(self, id, *a, **k):
        pass

    def init(self, prog, freq=-1, **kw):
        self.prog = prog
        self.freq = freq
        self.kw = kw
        self.q = []

    def active(self, v=None):
        if v is not None:
            self.on = v
        return self.on

    def irq(self, handler=None, trigger=1, hard=False):
        self.handler = handler
        self.hard = hard

    def rx_fifo(self):
        return len(self.q)

    def tx_fifo(self):
        return len(self.q)

    def get(self, buf=None, shift=0):
        return self.q.pop(0) >> shift

    def put(self, v, shift=0):
        assert len(self.q) < 8, "put on a full FIFO would block"
        self.q.append(v << shift)


USER_BLOCKS = 352  # 1408 KiB, RPI_PICO
MEM = None


class Flash:
    def __init__(self, start=-1, len=-1):
        global MEM
        if MEM is None:
            MEM = bytearray(b"\xff" * (USER_BLOCKS * 4096))
        if start == -1:
            start = 0
        if len == -1:
            len = USER_BLOCKS * 4096 - start
        assert start % 4096 == 0 and len % 4096 == 0 and start + len <= USER_BLOCKS * 4096
        self.start = start
        self.n = len // 4096
        self.programs = 0
        self.erases = 0

    def readblocks(self, b, buf, off=0):
        a = self.start + b * 4096 + off
        assert b * 4096 + off + len(buf) <= self.n * 4096
        buf[:] = MEM[a:a + len(buf)]

    def writeblocks(self, b, buf, off=None):
        if off is None:
            for i in range(len(buf) // 4096):
                self.ioctl(6, b + i)
            off = 0
        a = self.start + b * 4096 + off
        assert a % 256 == 0 and len(buf) % 256 == 0, "flash_range_program wants whole pages"
        assert b * 4096 + off + len(buf) <= self.n * 4096
        for i in range(len(buf)):
            MEM[a + i] &= buf[i]
        self.programs += 1

    def ioctl(self, op, arg=0):
        if op == 4:
            return self.n
        if op == 5:
            return 4096
        if op == 6:
            assert 0 <= arg < self.n
            a = self.start + arg * 4096
            for i in range(4096):
                MEM[a + i] = 0xFF
            self.erases += 1
            return 0
        return None
