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
ones so that every input reads 1 = active. The demand-reset button's ``irq`` latches its
edges between two samples of firmware/tasks/billing.py (a press shorter than the 100-ms
sampling, or during a flash erase) from the expander's INTFB, read whenever GP10 shows the
interrupt asserted (lib/mcp23017: INT is shared by every input, so its edge alone would take
a cover opened for a press):

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
(boards/rp2_pio_uart.py: 7E1 framed in software, interrupt-driven rings).

Data flash (boards/rp2_flash.py): the top ``DATA_BLOCKS`` x 4 KiB of the user area, raw
(``rp2.Flash`` window, with a custom ``_boot.py``) or emulated in files on the root littlefs
(stock firmware); ``flash_mode`` says which. The board hands the firmware one partition per
name (``partitions``, the flash contract of boards/board.py): ``journal`` 64 KiB, ``config``
8 KiB, ``events`` 64 KiB, ``profile`` 232 KiB (load profiles), ``audit`` 16 KiB (the
parameter audit trail), each a
``flashstore.flash.Partition`` of ``BlockDeviceFlash(device)`` in bytes.
"""


import machine
from machine import I2C, RTC, SPI, UART, WDT, Pin
from micropython import const

from boards.board import LazyWDT, RGBLed, RtcClock, epoch_offset, partitions
from boards.rp2_flash import FLASH_BLOCK, data_flash
from boards.rp2_pio_uart import PioUart
from flashstore.flash import BlockDeviceFlash
from lcd.ht1621 import HT1621
from mcp23017 import MCP23017, ExpanderPin

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

DATA_BLOCKS = const(96)  # 384 KiB at the top of the user area
# partitions in 4 KiB blocks (offset, count); config last, so that the others kept their place
FLASH_LAYOUT = {"journal": (0, 16), "events": (16, 16), "profile": (32, 58), "audit": (90, 4),
                "config": (94, 2)}

_WDT_MS = const(8000)  # rp2 maximum is 8388 ms (machine.WDT docs)


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
                self.expander = MCP23017(i2c, _XP_ADDR, _XB_INPUTS, _XB_INVERT,
                                         self.expander_int)
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
        dev, self.flash_mode, note = data_flash(DATA_BLOCKS)
        self.notes.append(note)
        self.flash = BlockDeviceFlash(dev)  # the whole data area (flashstore.flash interface)
        self.partitions = partitions(self.flash, FLASH_LAYOUT, FLASH_BLOCK)
        self.wdt = LazyWDT(WDT, _WDT_MS)
        for n in self.notes:
            print("boards.pico:", n)

    def on_power_fail(self, handler):
        """Install ``handler(pin)`` on the rising edge of ``power_fail`` (the supply failing;
        boards/board.py): the firmware's power-fail commit."""
        self.power_fail.irq(handler, Pin.IRQ_RISING)
