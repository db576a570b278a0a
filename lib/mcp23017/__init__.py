# MCP23017 16-bit I2C port expander (the slow inputs and the status LEDs of boards/pico.py).
"""Minimal MCP23017 driver: port A all outputs, port B inputs with pull-ups, and a Pin-like
view of one bit (:class:`ExpanderPin`).

Source: Microchip MCP23017 data sheet DS20001952C (register map Table 3-1, IOCON.BANK = 0;
GPA7/GPB7 are outputs only; section 3.6 interrupt logic). Receives an I2C object
(``writeto_mem``, ``readfrom_mem_into``); no ``machine`` import.

Edges between two reads (:meth:`ExpanderPin.irq`). An input that changes while no interrupt
is pending sets its bit in INTFB and pulls INT low; the interrupt stays pending (INTF kept,
further changes not flagged) until GPIOB or INTCAPB is read (DS20001952C 3.6). So a button
pressed and released between two reads is not in GPIOB, but its bit is in INTFB.
:meth:`MCP23017.read_b` reads INTFB first while a watched input exists and INT is asserted
(the ``int_pin`` level, or always without one), and calls the watcher of each flagged bit:
every read of the port, by any of its pins (the tamper poll reads it every 50 ms), passes
the edge on before it clears it. The INT line is shared by every input, and an interrupt
handler cannot read I2C (no allocation, and a transfer of the main thread may be under way),
so INT alone cannot tell a button's edge from a cover's; INTFB can. Not seen: an edge of a
watched input while another input's interrupt is pending and unread (at most one read
period, if it is released before the read).
"""

from micropython import const

# MCP23017 registers, IOCON.BANK = 0 map (DS20001952C Table 3-1).
_IODIRA = const(0x00)
_IODIRB = const(0x01)
_IPOLB = const(0x03)
_GPINTENB = const(0x05)
_IOCON = const(0x0A)
_INTFB = const(0x0F)
_GPPUB = const(0x0D)
_GPIOB = const(0x13)
_OLATA = const(0x14)
_OLATB = const(0x15)


class MCP23017:
    """Minimal MCP23017 driver: port A all outputs, port B inputs with pull-ups.

    ``inputs`` / ``invert`` are GPB bit masks (inputs; IPOL inversion so active-low signals read
    1). INTA/INTB are mirrored and open-drain (IOCON = 0x44) and fire on any input change.
    Register addresses are the IOCON.BANK = 0 map (DS20001952C Table 3-1). ``int_pin``: the
    MCU input wired to INTA (Pin-like, 0 = asserted), or None (INTFB then read at every read
    while an input is watched).
    """

    def __init__(self, i2c, addr, inputs, invert, int_pin=None):
        self._i2c = i2c
        self._addr = addr
        self._b = bytearray(1)
        self.olat = [0, 0]
        self._int = int_pin
        self._watch = []  # (bit mask, handler, pin) of the watched inputs (ExpanderPin.irq)
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
        """GPIOB as an int (inputs after IPOL); first the watchers of the inputs flagged in
        INTFB (module docstring), as the read clears the flags."""
        if self._watch and (self._int is None or not self._int.value()):
            self._i2c.readfrom_mem_into(self._addr, _INTFB, self._b)
            f = self._b[0]
            if f:
                for w in self._watch:
                    if f & w[0]:
                        w[1](w[2])
        self._i2c.readfrom_mem_into(self._addr, _GPIOB, self._b)
        return self._b[0]

    def watch(self, bit, handler, pin):
        """Call ``handler(pin)`` for each edge of input ``bit`` (GPB0..6) a read finds
        (module docstring); ``handler`` None: no more."""
        m = 1 << bit
        self._watch = [w for w in self._watch if w[0] != m]
        if handler is not None:
            self._watch.append((m, handler, pin))

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

    def irq(self, handler=None, trigger=None):
        """Like ``machine.Pin.irq`` for an input (port 1): ``handler(pin)`` for each change
        (either edge; ``trigger`` is ignored), called from the next read of the port, not
        from an interrupt (:class:`MCP23017`, "Edges between two reads"). ValueError for
        an output."""
        if self._port != 1:
            raise ValueError("MCP23017 port A is outputs: no edges")
        self._x.watch(self._bit, handler, self)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)
