# MCP23017 16-bit I2C port expander (the slow inputs and the status LEDs of boards/pico.py).
"""Minimal MCP23017 driver: port A all outputs, port B inputs with pull-ups, and a Pin-like
view of one bit (:class:`ExpanderPin`).

Source: Microchip MCP23017 data sheet DS20001952C (register map Table 3-1, IOCON.BANK = 0;
GPA7/GPB7 are outputs only). Receives an I2C object (``writeto_mem``, ``readfrom_mem_into``);
no ``machine`` import.
"""

from micropython import const

# MCP23017 registers, IOCON.BANK = 0 map (DS20001952C Table 3-1).
_IODIRA = const(0x00)
_IODIRB = const(0x01)
_IPOLB = const(0x03)
_GPINTENB = const(0x05)
_IOCON = const(0x0A)
_GPPUB = const(0x0D)
_GPIOB = const(0x13)
_OLATA = const(0x14)
_OLATB = const(0x15)


class MCP23017:
    """Minimal MCP23017 driver: port A all outputs, port B inputs with pull-ups.

    ``inputs`` / ``invert`` are GPB bit masks (inputs; IPOL inversion so active-low signals read
    1). INTA/INTB are mirrored and open-drain (IOCON = 0x44) and fire on any input change.
    Register addresses are the IOCON.BANK = 0 map (DS20001952C Table 3-1).
    """

    def __init__(self, i2c, addr, inputs, invert):
        self._i2c = i2c
        self._addr = addr
        self._b = bytearray(1)
        self.olat = [0, 0]
        self._w(_IOCON, 0x44)
        self._w(_OLATA, 0)
        self._w(_OLATB, 0)
        self._w(_IODIRA, 0x00)
        self._w(_IODIRB, inputs)
        self._w(_GPPUB, inputs)
        self._w(_IPOLB, invert)
        self._w(_GPINTENB, inputs)
        self.read_b()  # clears a pending interrupt

    def _w(self, reg, v):
        self._b[0] = v
        self._i2c.writeto_mem(self._addr, reg, self._b)

    def read_b(self):
        """GPIOB as an int (inputs after IPOL)."""
        self._i2c.readfrom_mem_into(self._addr, _GPIOB, self._b)
        return self._b[0]

    def write(self, port, bit, v):
        m = 1 << bit
        o = self.olat[port]
        o = (o | m) if v else (o & ~m)
        if o != self.olat[port]:
            self.olat[port] = o
            self._w(_OLATA + port, o)


class ExpanderPin:
    """A Pin-like view of one MCP23017 bit (port 0 = A outputs, 1 = B inputs)."""

    def __init__(self, exp, port, bit):
        self._x = exp
        self._port = port
        self._bit = bit

    def value(self, v=None):
        if v is None:
            if self._port == 0:
                return (self._x.olat[0] >> self._bit) & 1
            return (self._x.read_b() >> self._bit) & 1
        self._x.write(self._port, self._bit, v)
        return None

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)
