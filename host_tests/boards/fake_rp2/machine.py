# Host fakes of the machine classes the board modules use (test only).
LOG = []


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8
    # wiring to device models (the board smoke tests' ADE7953): pin id -> callable(level) on
    # every change of an output, pin id -> callable() -> level for an input
    HOOKS = {}
    SOURCES = {}

    class cpu:
        pass

    def __init__(self, id, mode=-1, pull=-1, value=None):
        if isinstance(id, Pin):
            id = id.id
        self.id = id
        self.mode = mode
        self.pull = pull
        self._v = 0 if value is None else value
        if mode == Pin.IN and pull == Pin.PULL_UP:
            self._v = 1
        LOG.append(("pin", id, mode, pull, value))

    def value(self, v=None):
        if v is None:
            src = Pin.SOURCES.get(self.id)
            return src() if src is not None else self._v
        v = 1 if v else 0
        if v != self._v:
            self._v = v
            hook = Pin.HOOKS.get(self.id)
            if hook is not None:
                hook(v)

    def __call__(self, v=None):
        return self.value(v)

    def irq(self, handler=None, trigger=0, hard=False):
        self.handler = handler
        self.trigger = trigger
        LOG.append(("irq", self.id, trigger))

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


for _p in "ABCD":
    for _n in range(16):
        setattr(Pin.cpu, "%s%d" % (_p, _n), "P%s%d" % (_p, _n))


class SPI:
    MSB = 0
    DEVICE = None  # a device model with transfer(wbuf, rbuf) (the ADE7953 model), or None

    def __init__(self, id, **kw):
        self.id = id
        self.kw = kw
        LOG.append(("spi", id, kw))

    def write_readinto(self, w, r):
        if SPI.DEVICE is not None:
            SPI.DEVICE.transfer(w, r)
        else:
            for i in range(len(r)):
                r[i] = 0

    def write(self, w):
        self.write_readinto(w, bytearray(len(w)))

    def readinto(self, r, write=0):
        self.write_readinto(bytes([write]) * len(r), r)


class UART:
    EXIST = (0, 1, 2, 6)

    def __init__(self, id, baudrate=9600, **kw):
        if id not in UART.EXIST:
            raise ValueError("UART(%d) doesn't exist" % id)
        self.id = id
        self.baudrate = baudrate
        self.kw = kw
        LOG.append(("uart", id, baudrate, kw))

    def init(self, baudrate=9600, **kw):
        self.baudrate = baudrate
        self.kw.update(kw)

    def any(self):
        return 0

    def readinto(self, buf, n=None):
        return None

    def write(self, buf):
        return len(buf)

    def txdone(self):
        return True


class MCPModel:
    """MCP23017 register file behind a fake I2C bus."""

    def __init__(self):
        self.reg = bytearray(0x16)
        self.reg[0] = self.reg[1] = 0xFF
        self.pins_b = 0x27  # buttons up, Hall high, cover/seal switches closed to GND
        self.pending = False  # an interrupt not yet cleared: INT low

    def gpio_b(self):
        return (self.pins_b ^ self.reg[0x03]) & self.reg[0x01]

    def set_pins(self, v):
        """Port B's pins change to ``v``: a change of an input enabled in GPINTENB while no
        interrupt is pending sets INTFB and INTCAPB and asserts INT (DS20001952C 3.6)."""
        changed = (v ^ self.pins_b) & self.reg[0x05] & self.reg[0x01]
        self.pins_b = v
        if changed and not self.pending:
            self.reg[0x0F] = changed
            self.reg[0x11] = self.gpio_b()
            self.pending = True

    def read(self, reg):
        if reg in (0x11, 0x13):  # INTCAPB or GPIOB read: the interrupt cleared
            self.pending = False
            self.reg[0x0F] = 0
        return self.gpio_b() if reg == 0x13 else self.reg[reg]


class I2C:
    DEVICES = {}

    def __init__(self, id, scl=None, sda=None, freq=0):
        self.id = id

    def writeto_mem(self, addr, reg, buf):
        dev = I2C.DEVICES.get(addr)
        if dev is None:
            raise OSError(19)
        dev.reg[reg] = buf[0]

    def readfrom_mem_into(self, addr, reg, buf):
        dev = I2C.DEVICES.get(addr)
        if dev is None:
            raise OSError(19)
        buf[0] = dev.read(reg)


class RTC:
    BOOT = (2021, 1, 1, 4, 0, 0, 0, 0)  # the rp2 port's RTC after a chip reset
    dt_now = BOOT  # survives a soft reset (new RTC objects), like the real RTC

    def __init__(self):
        self.dt = RTC.dt_now

    def datetime(self, t=None):
        if t is None:
            return self.dt
        self.dt = RTC.dt_now = t


class WDT:
    made = []

    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.feeds = 0
        WDT.made.append(self)

    def feed(self):
        self.feeds += 1


def unique_id():
    return b"\xe6\x61\x38\x52\x83\x4b\x2c\x2d\x31\x32\x33\x34"


def disable_irq():
    return 1


def enable_irq(s):
    pass
