# Raspberry Pi Pico (RP2040) board: pin map, buses and board services for the meter.
"""Raspberry Pi Pico (RP2040, 2 MiB W25Q16JV flash) wired as the meter board.

Sources: Raspberry Pi Pico datasheet (pinout, "GPIO functions"), RP2040 datasheet
(section 2.19.2 function select table: which GPIO can carry SPI0/UART0/UART1/I2C0, and
section 3 PIO), MicroPython ``ports/rp2`` (``machine_uart.c`` pin rules, ``rp2_flash.c``,
``modules/_boot.py``, ``modules/rp2.py``), ADE7953 data sheet Rev. C p.52 (SPI), Microchip
MCP23017 data sheet DS20001952C (register map, GPA7/GPB7 output only).

Pin map (GPIO number, Pico header pin in brackets). The Pico exposes 26 GPIOs and the meter
needs 35 signals, so the slow, human-speed signals (buttons, tamper switches, status LEDs) sit
on an MCP23017 16-bit I2C expander; everything with timing (SPI, UARTs, test LEDs, relay,
power-fail, LCD clock) is a direct GPIO.

======  =====  ==========================  ===============================================
GPIO    pin    signal                      notes
======  =====  ==========================  ===============================================
GP0     1      modem TXD                   UART0 TX (to modem RXD)
GP1     2      modem RXD                   UART0 RX
GP2     4      modem PWRKEY                out, 1 = key pressed (drives an NPN to PWRKEY)
GP3     5      RS-485 DE (+ /RE)           out, 1 = transmit
GP4     6      RS-485 DI                   UART1 TX
GP5     7      RS-485 RO                   UART1 RX
GP6     9      optical TX (IR LED)         PIO0 SM1 UART transmitter
GP7     10     optical RX (phototransistor) PIO0 SM0 UART receiver, pull-up
GP8     11     expander SDA                I2C0 SDA, 400 kHz, MCP23017 at 0x20
GP9     12     expander SCL                I2C0 SCL
GP10    14     expander INT                in, pull-up, low = an expander input changed
GP11    15     relay                       out, 1 = contacts closed (supply connected)
GP12    16     relay feedback              in, pull-down, 1 = contacts closed (aux contact
                                           to 3V3)
GP13    17     LCD CS (HT1621)             out, idle high
GP14    19     LCD WR (HT1621)             out, idle high
GP15    20     LCD DATA (HT1621)           out
GP16    21     ADE7953 MISO                SPI0 RX
GP17    22     ADE7953 CS                  out, idle high (GPIO, not the SPI CSn function)
GP18    24     ADE7953 SCLK                SPI0 SCK
GP19    25     ADE7953 MOSI                SPI0 TX
GP20    26     ADE7953 IRQ                 in, pull-up, active low
GP21    27     ADE7953 RESET               out, active low, idle high
GP22    29     power fail                  in, pull-down, 1 = supply failing (comparator)
GP26    31     kWh test LED                out, 1 = lit
GP27    32     kvarh test LED              out, 1 = lit
GP28    34     (spare)
GP25    -      on-board LED                not used by the meter
======  =====  ==========================  ===============================================

MCP23017 (I2C0, address 0x20: A2..A0 = GND; RESET to 3V3; INTA to GP10, open-drain,
INTA/INTB mirrored). Inputs use the internal 100 kOhm pull-ups; IPOL inverts the active-low
ones so that every input reads 1 = active:

========  ================  =================================================================
port      signal            wiring, meaning of 1
========  ================  =================================================================
GPA0..2   status LED 1 R G B   out, 1 = lit (LED + resistor to GND)
GPA3..5   status LED 2 R G B   out, 1 = lit
GPA6, 7   (spare)              outputs, held low
GPB0      scroll button        push button to GND; 1 = pressed (IPOL)
GPB1      demand reset button  push button to GND; 1 = pressed (IPOL)
GPB2      test switch          switch to GND; 1 = test mode (IPOL)
GPB3      main cover           switch closed to GND while the cover is fitted; 1 = cover open
GPB4      terminal cover       as GPB3; 1 = terminal cover open
GPB5      magnetic field       open-drain Hall switch, low in a field; 1 = field (IPOL)
GPB6      seal switch          closed to GND while sealed; 1 = seal open (parameters writable)
GPB7      (spare)              output only per DS20001952C, held low
========  ================  =================================================================

If no MCP23017 answers at construction, those 15 signals become inert stand-ins (inputs read
0, LEDs go nowhere), ``board.notes`` says so, and the meter still runs: a bare Pico with only an
ADE7953 and the LCD is a usable bench set-up.

UART choice. The RP2040 has two UARTs. UART0 drives the modem (115200 8N1, bursty +IPD data
that needs the 32-byte hardware FIFO and an interrupt-driven 1 KiB ring) and UART1 the RS-485
bus (9600 8N1 by default, up to 115200 for HDLC). The optical port gets a PIO UART
(:class:`PioUart`): it runs at 300..19200 Bd only, is used by a person with a probe, and
IEC 62056-21 repairs a lost byte with NAK/retry, so it is the one port that tolerates a
software-serviced receiver. The RP2040 UART itself can do 7E1 (PL011 word length 5..8 bits
with parity; MicroPython's ``UART(id, 300, bits=7, parity=0, stop=1)`` passes both to
``uart_set_format``), but the PIO UART only frames 10-bit 8N1 characters, so for 7E1 it sends
8N1 bytes whose bit 7 is the even parity of bits 0..6: both frames are 10 bits long, so on the
wire that is exactly 7E1; received bytes have bit 7 checked and stripped. The object looks like
a ``machine.UART`` (``init(baudrate, bits, parity, stop)``, ``read/readinto/write/any``,
``flush/txdone``, ``ioctl`` for asyncio streams).

Data flash. MicroPython's frozen ``_boot.py`` mounts the *whole* user area, ``rp2.Flash()``
(1408 KiB at flash offset 0x0A0000 on the Pico), as littlefs, and formats it if the mount
fails; littlefs refuses a mount whose block count differs from the one it was formatted with
(checked with MicroPython 1.29: ``OSError(22)``). A raw partition inside that area therefore
only exists when the root filesystem was made smaller by a custom ``_boot.py``
(``boards/README.md``). The data partition is the top ``DATA_BLOCKS`` x 4 KiB of the user area
(on the Pico: ``rp2.Flash(start=0x100000, len=0x60000)``, flash offsets 0x1A0000..0x1FFFFF):

- raw mode (root filesystem ends below the partition): ``flash`` is that window, programmed
  through a RAM page buffer (the SDK's ``flash_range_program`` wants 256-byte aligned pages,
  and a source buffer in XIP flash would be read while XIP is off);
- file mode (stock firmware: root littlefs covers everything): ``flash`` emulates the same
  blocks with one 4 KiB file per block under ``/meterdata`` on littlefs, which is power-cut
  safe (copy-on-write) but costs a littlefs block write per program (tens of ms).

``flash_layout`` (4 KiB blocks) is the same in both modes. Erase and program run with
interrupts off (``rp2_flash.c``): a 4 KiB sector erase takes 45 ms typical, 400 ms max
(W25Q16JV data sheet, tSE), longer than the UART FIFOs last, so erase only while the ports are
idle, never on the power-fail path.
"""

import time

import machine
import rp2
from machine import I2C, RTC, SPI, UART, WDT, Pin
from micropython import const

from boards.board import LazyWDT, RGBLed, RtcClock, epoch_offset
from lcd.ht1621 import HT1621

TYPE_CHECKING = False
if TYPE_CHECKING:  # names of the PIO assembler DSL (rp2.asm_pio), for pyright only
    from rp2.asm_pio import in_, irq, jmp, label, mov, nop, out, pull, push, rel, set, wait
    from rp2.asm_pio import block, isr, null, pin, pins, x, x_dec

# RTC: the RP2040 has no backup supply for its RTC, and the rp2 port starts it at
# 2021-01-01 00:00:00 at every chip reset (power-up, RUN pin, watchdog; ports/rp2/main.c);
# only a soft reset keeps it. So a reading before 2022 means "not set since the reset": the
# clock is invalid (F.F.0 0x10) until IEC W1 0.9.1/0.9.2 sets it. A board that needs the
# time across outages adds a battery-backed RTC chip and gives its clock the same flag.
_RTC_SET_YEAR = const(2022)

# GPIO numbers (see the table above).
_MODEM_TX = const(0)
_MODEM_RX = const(1)
_MODEM_PWRKEY = const(2)
_RS485_DE = const(3)
_RS485_TX = const(4)
_RS485_RX = const(5)
_OPT_TX = const(6)
_OPT_RX = const(7)
_I2C_SDA = const(8)
_I2C_SCL = const(9)
_XP_INT = const(10)
_RELAY = const(11)
_RELAY_FB = const(12)
_LCD_CS = const(13)
_LCD_WR = const(14)
_LCD_DATA = const(15)
_ADE_MISO = const(16)
_ADE_CS = const(17)
_ADE_SCK = const(18)
_ADE_MOSI = const(19)
_ADE_IRQ = const(20)
_ADE_RESET = const(21)
_PFAIL = const(22)
_LED_KWH = const(26)
_LED_KVARH = const(27)

_ADE_SPI_HZ = const(1_000_000)  # ADE7953 allows 5 MHz (DS Table 2); drivers use 1 MHz
_OPT_SM_RX = const(0)  # PIO0 state machines of the optical port
_OPT_SM_TX = const(1)
_XP_ADDR = const(0x20)

# Flash: 4 KiB erase blocks (rp2_flash.c BLOCK_SIZE_BYTES = FLASH_SECTOR_SIZE).
FLASH_BLOCK = const(4096)
DATA_BLOCKS = const(96)  # 384 KiB at the top of the user area
FLASH_LAYOUT = {"journal": (0, 16), "events": (16, 16), "profile": (32, 64)}
_PAGE = const(256)  # W25Q16JV page; flash_range_program granularity
_FF_PAGE = b"\xff" * _PAGE

_WDT_MS = const(8000)  # rp2 maximum is 8388 ms (machine.WDT docs)

# Stream ioctl (py/stream.h): MP_STREAM_POLL and its flags.
_MP_STREAM_POLL = const(3)
_POLL_RD = const(0x0001)
_POLL_WR = const(0x0004)


class NullPin:
    """Stand-in for a signal whose part is not fitted: inputs read 0, outputs keep a value."""

    def __init__(self, v=0):
        self._v = v

    def value(self, v=None):
        if v is None:
            return self._v
        self._v = 1 if v else 0
        return None

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self._v = 1

    def off(self):
        self._v = 0


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


# GPB bits of the expander inputs, and which are active low (inverted with IPOL).
_XB_SCROLL = const(0)
_XB_DEMAND = const(1)
_XB_TEST = const(2)
_XB_COVER = const(3)
_XB_TCOVER = const(4)
_XB_MAGNET = const(5)
_XB_SEAL = const(6)
_XB_INPUTS = const(0x7F)
_XB_INVERT = const(0x27)  # scroll, demand reset, test switch, magnet


def _parity7(c):
    """Even-parity bit of the 7 low bits of ``c`` (0 or 1)."""
    c &= 0x7F
    c ^= c >> 4
    c ^= c >> 2
    c ^= c >> 1
    return c & 1


def _pio_programs():
    """Assemble the PIO UART programs (RP2040 datasheet 3.6, PIO UART TX/RX examples;
    MicroPython examples/rp2/pio_uart_tx.py and pio_uart_rx.py): 8 PIO cycles per bit, LSB
    first, 1 start + 8 data + 1 stop bit. Each program raises its state machine's IRQ flag
    (``irq(rel(0))``) after a character: the transmitter when the stop bit is out, the
    receiver after pushing a byte. The receiver samples 1.5 bits after the start edge, then
    every 8 cycles; it drops a character whose stop bit is low (framing error or break)."""

    @rp2.asm_pio(
        sideset_init=rp2.PIO.OUT_HIGH,
        out_init=rp2.PIO.OUT_HIGH,
        out_shiftdir=rp2.PIO.SHIFT_RIGHT,
        fifo_join=rp2.PIO.JOIN_TX,
    )
    def uart_tx():
        pull()
        set(x, 7).side(0)[7]  # start bit, 8 cycles
        label("bitloop")
        out(pins, 1)[6]
        jmp(x_dec, "bitloop")
        nop().side(1)[6]  # stop bit (>= 8 cycles with irq + the next pull)
        irq(rel(0))

    @rp2.asm_pio(in_shiftdir=rp2.PIO.SHIFT_RIGHT, fifo_join=rp2.PIO.JOIN_RX)
    def uart_rx():
        label("start")
        wait(0, pin, 0)  # start bit edge
        set(x, 7)[10]  # to the middle of data bit 0
        label("bitloop")
        in_(pins, 1)
        jmp(x_dec, "bitloop")[6]
        jmp(pin, "good_stop")
        mov(isr, null)  # framing error or break: drop it and wait for idle
        wait(1, pin, 0)
        jmp("start")
        label("good_stop")
        push(block)
        irq(rel(0))

    return uart_tx, uart_rx


_PROGS = []  # the two assembled programs, made once (assembly swaps this module's globals)


class PioUart:
    """A ``machine.UART``-like serial port on two PIO state machines (PIO0 by default).

    Frames: 7E1 (``bits=7, parity=0``), 7O1 (``parity=1``) or 8N1 (``bits=8, parity=None``),
    one stop bit; baud rates from 300 to 115200 at the default 125 MHz system clock (the state
    machine runs at 8 x baud; its 16-bit clock divider stops at sysclk / 65536, so 300 Bd needs
    sysclk <= 157 MHz). Reception and transmission are interrupt-driven (hard IRQ on the state
    machines' IRQ flags) into RAM rings of ``rxbuf`` / ``txbuf`` bytes; nothing allocates after
    construction except ``read()``'s result.

    Differences from ``machine.UART``: ``write`` never blocks (it returns how many bytes fitted,
    or None when none did, as a non-blocking stream does); ``read``/``readinto`` return None
    when nothing is waiting (``timeout=0`` behaviour). ``parity_errors`` and ``overruns`` count
    rejected characters. In 7-bit modes received bytes are delivered with bit 7 cleared.
    """

    def __init__(self, sm_rx, sm_tx, tx, rx, baudrate=300, bits=7, parity=0, stop=1,
                 rxbuf=256, txbuf=256):
        if not _PROGS:
            progs = _pio_programs()
            _PROGS.extend(progs)
        self._prog_tx = _PROGS[0]
        self._prog_rx = _PROGS[1]
        self._tx_pin = tx
        self._rx_pin = rx
        self._rx = bytearray(rxbuf)
        self._tx = bytearray(txbuf)
        self._rh = self._rt = 0  # rx ring: head written by the IRQ, tail by readers
        self._th = self._tt = 0  # tx ring: head written by write(), tail by _pump
        self._tx_end = 0
        self.parity_errors = 0
        self.overruns = 0
        self._sm_rx = rp2.StateMachine(sm_rx)
        self._sm_tx = rp2.StateMachine(sm_tx)
        self._on_rx_cb = self._on_rx  # bound methods made once (hard IRQs cannot allocate)
        self._on_tx_cb = self._on_tx
        self.init(baudrate, bits, parity, stop)

    def init(self, baudrate=300, bits=7, parity=0, stop=1):
        """(Re)configure; call when ``txdone()`` (a character in flight would be cut)."""
        if stop != 1 or not ((bits == 7 and parity in (0, 1)) or (bits == 8 and parity is None)):
            raise ValueError("PioUart supports 7E1, 7O1 and 8N1")
        self._mask = 0x7F if bits == 7 else 0xFF
        self._odd = 1 if parity == 1 else 0
        self.baudrate = baudrate
        self._char_us = 10_000_000 // baudrate
        rx, tx = self._sm_rx, self._sm_tx
        rx.active(0)
        tx.active(0)
        rx.irq(None)
        tx.irq(None)
        rx.init(self._prog_rx, freq=8 * baudrate, in_base=self._rx_pin, jmp_pin=self._rx_pin)
        tx.init(self._prog_tx, freq=8 * baudrate, sideset_base=self._tx_pin, out_base=self._tx_pin)
        self._rh = self._rt = 0
        self._th = self._tt = 0
        rx.irq(self._on_rx_cb, hard=True)
        tx.irq(self._on_tx_cb, hard=True)
        rx.active(1)
        tx.active(1)

    def deinit(self):
        self._sm_rx.active(0)
        self._sm_tx.active(0)
        self._sm_rx.irq(None)
        self._sm_tx.irq(None)

    # -- interrupt side ----------------------------------------------------------------

    def _on_rx(self, _sm):
        sm = self._sm_rx
        rx = self._rx
        n = len(rx)
        while sm.rx_fifo():
            v = sm.get(None, 24)  # byte in bits 31..24; shifted in C: stays a small int
            if self._mask == 0x7F:
                if _parity7(v) ^ (v >> 7) ^ self._odd:
                    self.parity_errors += 1
                v &= 0x7F
            h = self._rh
            nh = h + 1 if h + 1 < n else 0
            if nh == self._rt:
                self.overruns += 1
            else:
                rx[h] = v
                self._rh = nh

    def _on_tx(self, _sm):
        self._pump()

    def _pump(self):
        """Move bytes from the tx ring into the 8-deep TX FIFO (IRQ or write())."""
        sm = self._sm_tx
        tx = self._tx
        n = len(tx)
        t = self._tt
        moved = False
        while t != self._th and sm.tx_fifo() < 8:
            sm.put(tx[t])
            t = t + 1 if t + 1 < n else 0
            moved = True
        self._tt = t
        if moved:  # worst-case end of the last queued character
            self._tx_end = time.ticks_add(time.ticks_us(),
                                          (sm.tx_fifo() + 1) * self._char_us)

    # -- stream side -------------------------------------------------------------------

    def any(self):
        d = self._rh - self._rt
        return d if d >= 0 else d + len(self._rx)

    def readinto(self, buf, nbytes=None):
        """Copy waiting bytes into ``buf``; return the count, or None if none are waiting."""
        rx = self._rx
        n = len(rx)
        want = len(buf) if nbytes is None else min(nbytes, len(buf))
        t = self._rt
        i = 0
        while i < want and t != self._rh:
            buf[i] = rx[t]
            t = t + 1 if t + 1 < n else 0
            i += 1
        self._rt = t
        return i if i else None

    def read(self, nbytes=None):
        """Return up to ``nbytes`` waiting bytes (all if None), or None if none are waiting."""
        n = self.any()
        if nbytes is not None and nbytes < n:
            n = nbytes
        if not n:
            return None
        b = bytearray(n)
        self.readinto(b)
        return bytes(b)

    def write(self, buf):
        """Queue ``buf`` (parity added in 7-bit modes); return the number of bytes queued, or
        None if the ring is full."""
        tx = self._tx
        n = len(tx)
        h = self._th
        i = 0
        mask = self._mask
        for c in buf:
            nh = h + 1 if h + 1 < n else 0
            if nh == self._tt:
                break
            if mask == 0x7F:
                c = (c & 0x7F) | ((_parity7(c) ^ self._odd) << 7)
            tx[h] = c
            h = nh
            i += 1
        self._th = h
        st = machine.disable_irq()
        try:
            self._pump()
        finally:
            machine.enable_irq(st)
        return i if i else None

    def txdone(self):
        """True when every queued character has left the TX pin."""
        return (self._th == self._tt and self._sm_tx.tx_fifo() == 0
                and time.ticks_diff(time.ticks_us(), self._tx_end) >= 0)

    def flush(self):
        """Block until ``txdone()`` (at most txbuf characters: 8.5 s at 300 Bd for 256)."""
        while not self.txdone():
            time.sleep_ms(1)

    def ioctl(self, req, arg):
        """Stream poll for ``select``/asyncio: readable when bytes wait, writable when the
        ring has room."""
        if req != _MP_STREAM_POLL:
            return 0
        r = 0
        if arg & _POLL_RD and self._rh != self._rt:
            r |= _POLL_RD
        if arg & _POLL_WR:
            h = self._th + 1
            if h == len(self._tx):
                h = 0
            if h != self._tt:
                r |= _POLL_WR
        return r


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


class FileBlocks:
    """The data partition emulated on the root littlefs: one file of ``FLASH_BLOCK`` bytes per
    block in ``path``, created erased (0xFF) on first use (96 files take a few seconds once).

    One file per block keeps each program a single-block copy-on-write: littlefs rewrites a
    file from the modified block to its end, so one big file would cost up to the whole
    partition per program. Programs AND the new bytes into the old ones (NOR semantics).
    Each program or erase opens and closes its file, which commits it (littlefs is power-cut
    safe); reads keep the last block's file open until the next write.
    """

    def __init__(self, path, blocks):
        import os

        self._path = path
        self._n = blocks
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
            b = block + a // FLASH_BLOCK
            o = a % FLASH_BLOCK
            k = min(FLASH_BLOCK - o, n - i)
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
            for b in range(len(buf) // FLASH_BLOCK):
                self.ioctl(6, block + b)
            offset = 0
        n = len(buf)
        mv = memoryview(buf)
        tmp = self._tmp
        i = 0
        while i < n:
            a = offset + i
            b = block + a // FLASH_BLOCK
            o = a % FLASH_BLOCK
            k = min(_PAGE, FLASH_BLOCK - o, n - i)
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
            return FLASH_BLOCK
        if op == 6:
            self._close()
            with open(self._name(arg), "wb") as f:
                for _ in range(FLASH_BLOCK // _PAGE):
                    f.write(_FF_PAGE)
        return 0


def _data_flash(blocks):
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
    return FileBlocks("/meterdata", blocks), "file", note


class Board:
    """The meter on a Raspberry Pi Pico: every attribute of :mod:`boards.board`.

    ``serial``: meter serial number (default: the flash chip's 64-bit unique ID in hex);
    ``expander``: False to skip the MCP23017 (bench set-up without it);
    ``relay_closed``: relay state driven at construction (the firmware then applies the
    persisted state).
    """

    name = "pico"

    def __init__(self, serial=None, expander=True, relay_closed=1):
        import binascii

        self.notes = []
        self.serial = serial or binascii.hexlify(machine.unique_id()).decode()
        self.rtc = RTC()
        self.clock = RtcClock(self.rtc, epoch_offset(), 0)
        if self.rtc.datetime()[0] < _RTC_SET_YEAR:
            self.clock.invalidate("RP2040 RTC not set since the chip reset (no backup supply)")

        # ADE7953 on SPI0: mode 0 (CPOL 0, CPHA 0), MSB first, 1 MHz (DS p.52).
        self.ade_spi = SPI(0, baudrate=_ADE_SPI_HZ, polarity=0, phase=0, bits=8,
                           firstbit=SPI.MSB, sck=Pin(_ADE_SCK), mosi=Pin(_ADE_MOSI),
                           miso=Pin(_ADE_MISO))
        self.ade_cs = Pin(_ADE_CS, Pin.OUT, value=1)
        self.ade_irq = Pin(_ADE_IRQ, Pin.IN, Pin.PULL_UP)
        self.ade_reset = Pin(_ADE_RESET, Pin.OUT, value=1)

        # Serial ports.
        self.uart_optical = PioUart(_OPT_SM_RX, _OPT_SM_TX, Pin(_OPT_TX, Pin.OUT, value=1),
                                    Pin(_OPT_RX, Pin.IN, Pin.PULL_UP), 300, 7, 0, 1)
        self.uart_rs485 = UART(1, 9600, bits=8, parity=None, stop=1, tx=Pin(_RS485_TX),
                               rx=Pin(_RS485_RX), txbuf=256, rxbuf=512, timeout=0)
        self.rs485_de = Pin(_RS485_DE, Pin.OUT, value=0)
        self.uart_modem = UART(0, 115200, bits=8, parity=None, stop=1, tx=Pin(_MODEM_TX),
                               rx=Pin(_MODEM_RX), txbuf=256, rxbuf=1024, timeout=0)
        self.modem_pwrkey = Pin(_MODEM_PWRKEY, Pin.OUT, value=0)

        # Direct outputs and inputs.
        self.led_kwh = Pin(_LED_KWH, Pin.OUT, value=0)
        self.led_kvarh = Pin(_LED_KVARH, Pin.OUT, value=0)
        self.relay = Pin(_RELAY, Pin.OUT, value=1 if relay_closed else 0)
        self.relay_feedback = Pin(_RELAY_FB, Pin.IN, Pin.PULL_DOWN)
        self.power_fail = Pin(_PFAIL, Pin.IN, Pin.PULL_DOWN)

        # Buttons, tamper switches and status LEDs on the MCP23017.
        self.expander = None
        self.expander_int = Pin(_XP_INT, Pin.IN, Pin.PULL_UP)
        if expander:
            try:
                i2c = I2C(0, scl=Pin(_I2C_SCL), sda=Pin(_I2C_SDA), freq=400_000)
                self.expander = MCP23017(i2c, _XP_ADDR, _XB_INPUTS, _XB_INVERT)
            except OSError as e:
                self.notes.append("MCP23017 not found at 0x%02x (%r): buttons, tamper inputs "
                                  "and status LEDs are inert" % (_XP_ADDR, e))
        xp = self.expander

        def xpin(port, bit):
            return NullPin() if xp is None else ExpanderPin(xp, port, bit)

        self.status_leds = (RGBLed(xpin(0, 0), xpin(0, 1), xpin(0, 2)),
                            RGBLed(xpin(0, 3), xpin(0, 4), xpin(0, 5)))
        self.btn_scroll = xpin(1, _XB_SCROLL)
        self.btn_demand_reset = xpin(1, _XB_DEMAND)
        self.sw_test = xpin(1, _XB_TEST)
        self.cover = xpin(1, _XB_COVER)
        self.terminal_cover = xpin(1, _XB_TCOVER)
        self.magnet = xpin(1, _XB_MAGNET)
        self.seal = xpin(1, _XB_SEAL)

        # LCD: HT1621 on three GPIOs (CS and WR idle high).
        self.lcd = HT1621(Pin(_LCD_CS, Pin.OUT, value=1), Pin(_LCD_WR, Pin.OUT, value=1),
                          Pin(_LCD_DATA, Pin.OUT, value=0))
        self.lcd.init()

        # Data partition and watchdog.
        self.flash, self.flash_mode, note = _data_flash(DATA_BLOCKS)
        self.notes.append(note)
        self.flash_layout = dict(FLASH_LAYOUT)
        self.wdt = LazyWDT(WDT, _WDT_MS)
        for n in self.notes:
            print("boards.pico:", n)
