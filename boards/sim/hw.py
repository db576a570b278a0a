# Virtual-board pins and SPI bus.
"""Pin and SPI stand-ins with the machine.Pin / machine.SPI call shapes the drivers use.

``SimPin``: ``value([v])``, ``on()``, ``off()``, ``__call__``; an output counts rising edges
(``rises``) and can notify a callback; an input reads a level set by the board's control
channel, or a callable (e.g. the ADE7953 model's IRQ line).
``ChipSelect``: a SimPin whose ``value`` is a device model's ``cs`` method.
``SimSPI``: ``write_readinto(wbuf, rbuf)``, ``write(buf)``, ``readinto(buf, write=0)``
forwarding bytes to a device model's ``transfer(wbuf, rbuf)`` while its CS pin is low.
"""


class SimPin:
    """A GPIO. ``source``: callable returning the level (inputs wired to a model)."""

    def __init__(self, name, value=0, source=None, on_change=None):
        self.name = name
        self._v = value
        self._source = source
        self._on_change = on_change
        self.rises = 0
        self.changed_at = None
        self._irq = None

    def value(self, v=None):
        if v is None:
            if self._source is not None:
                return self._source()
            return self._v
        v = 1 if v else 0
        if v != self._v:
            if v:
                self.rises += 1
            self._v = v
            if self._on_change is not None:
                self._on_change(v)
        return None

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def set_input(self, v):
        """Drive an input from outside (control channel, tests); a rising edge calls the
        handler installed with :meth:`irq`."""
        v = 1 if v else 0
        rise = v and not self._v
        self._v = v
        if rise and self._irq is not None:
            self._irq(self)

    def irq(self, handler=None, trigger=None):
        """machine.Pin.irq stand-in: ``handler(pin)`` on rising edges of an input."""
        self._irq = handler


class ChipSelect(SimPin):
    """A chip-select output wired straight to a device model: ``value`` is the model's own
    ``cs(level=None)`` (read the level, or drive it; a change is an edge), so a driver's
    ``cs.value(0)`` is one call (the SPI hot path: two edges per frame). No edge count."""

    def __init__(self, name, device):
        SimPin.__init__(self, name, 1)
        self.value = device.cs


class SimSPI:
    """SPI bus with one device model behind it."""

    def __init__(self, device):
        self._dev = device
        self._dummy = bytearray(8)
        self.write_readinto = device.transfer  # the same call, one level less (the hot path)

    def write_readinto(self, wbuf, rbuf):
        self._dev.transfer(wbuf, rbuf)

    def write(self, wbuf):
        if len(self._dummy) < len(wbuf):
            self._dummy = bytearray(len(wbuf))
        self._dev.transfer(wbuf, memoryview(self._dummy)[: len(wbuf)])

    def readinto(self, rbuf, write=0):
        w = bytearray(len(rbuf))
        for i in range(len(w)):
            w[i] = write
        self._dev.transfer(w, rbuf)
