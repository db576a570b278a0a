# ST NUCLEO-F411RE (STM32F411RE) board: pin map, buses and board services for the meter.
"""ST NUCLEO-F411RE (STM32F411RET6: 512 KiB flash, 128 KiB RAM) wired as the meter board.

Also fits the NUCLEO-F401RE (same pinout, flash sectors and USARTs). Sources: ST UM1724
(STM32 Nucleo-64 user manual: Arduino/morpho pin assignment, USART2 to the ST-LINK virtual COM
port via SB13/SB14, user button B1 on PC13, LD2 on PA5), RM0383 (STM32F411 reference manual:
flash module organisation, programming and erase sequences, FLASH registers, ART accelerator,
unique device ID), DS10314 (STM32F411xC/xE data sheet, "Flash memory programming" table), ST
AN3969 (EEPROM emulation on STM32F4: re-programs written half-words without erase), MicroPython
``ports/stm32/boards/NUCLEO_F411RE/mpconfigboard.h`` (UART2 = REPL, UART6; SPI1 pins),
``ports/stm32/flashbdev.c`` (internal filesystem = sectors 1..3 + 16 KiB of sector 4),
``ports/stm32/uart.c`` (a UART exists only if the board defines its pins), ADE7953 Rev. C p.52.

Pin map (cpu pin, Arduino header name where there is one; the rest are on the morpho
headers CN7/CN10). Pins are looked up as ``Pin.cpu.A5`` and so on, because on a Nucleo the
*board* name ``"A5"`` is Arduino A5 (= PC0).

=======  =======  ==========================  ==============================================
pin      Arduino  signal                      notes
=======  =======  ==========================  ==============================================
PA5      D13      ADE7953 SCLK                SPI1 SCK (green LED LD2 also sits on PA5)
PA6      D12      ADE7953 MISO                SPI1 MISO
PA7      D11      ADE7953 MOSI                SPI1 MOSI
PB6      D10      ADE7953 CS                  out, idle high
PA8      D7       ADE7953 IRQ                 in, pull-up, active low
PB10     D6       ADE7953 RESET               out, active low, idle high
PC6      -        optical TX                  USART6 TX (in every stock NUCLEO_F411RE build)
PC7      D9       optical RX                  USART6 RX
PA9      D8       RS-485 DI                   USART1 TX (needs a build that defines UART1)
PA10     D2       RS-485 RO                   USART1 RX
PB5      D4       RS-485 DE (+ /RE)           out, 1 = transmit
PA2      D1       modem TXD                   USART2 TX = ST-LINK VCP/REPL (see below)
PA3      D0       modem RXD                   USART2 RX
PB3      D3       modem PWRKEY                out, 1 = key pressed (via NPN)
PB4      D5       kWh test LED                out, 1 = lit
PB8      D15      kvarh test LED              out, 1 = lit
PC8/9/10 -        status LED 1 R/G/B          out, 1 = lit
PC11/12  -        status LED 2 R/G            out, 1 = lit
PD2      -        status LED 2 B              out, 1 = lit
PB12     -        relay                       out, 1 = contacts closed (supply connected)
PB13     -        relay feedback              in, pull-down, 1 = closed (aux contact to 3V3)
PC13     -        scroll button               on-board B1 (to GND when pressed), inverted
PB14     -        demand reset button         in, pull-up, button to GND, inverted
PB15     -        test switch                 in, pull-up, switch to GND, inverted
PA0      A0       main cover                  in, pull-up, closed to GND while fitted; 1 = open
PA1      A1       terminal cover              as PA0; 1 = open
PA4      A2       magnetic field              open-drain Hall switch, inverted; 1 = field
PB0      A3       seal switch                 closed to GND while sealed; 1 = seal open
PC1      A4       power fail                  in, pull-down, 1 = supply failing (comparator)
PC2      -        LCD CS (HT1621)             out, idle high
PC3      -        LCD WR (HT1621)             out, idle high
PC4      -        LCD DATA (HT1621)           out
=======  =======  ==========================  ==============================================

Left free: PC14/PC15 (32.768 kHz LSE crystal X2, used by the RTC), PH0/PH1 (8 MHz HSE from the
ST-LINK), PA13/PA14 (SWD), PA11/PA12 (USB), PB2 (BOOT1). The F411 in LQFP64 has no PB11.

USARTs. The F411 has three: USART1, USART2 and USART6. The stock MicroPython NUCLEO_F411RE
build defines pins only for UART2 (the REPL, wired to the ST-LINK virtual COM port) and UART6,
so ``UART(1)`` raises ValueError there. Hence: the optical port takes USART6 (7E1 at 300 Bd
is native: MicroPython's stm32 UART allows ``bits=7`` with parity, the 8-bit frame includes the
parity bit); RS-485 takes USART1 when the firmware defines ``MICROPY_HW_UART1_TX/RX`` as
``pin_A9``/``pin_A10`` (otherwise ``uart_rs485`` is None and ``notes`` says so); the modem
takes USART2 only with ``Board(modem_on_uart2=True)``, which detaches the REPL from it
(``pyb.repl_uart(None)``: no more mpremote until reset into safe mode) and needs SB13/SB14
opened and SB62/SB63 closed (UM1724 "USART communication") to free PA2/PA3 from the ST-LINK.
stm32 ``UART.write`` blocks until the last byte is in the shift register (no TX ring): at
300 Bd a 100-byte message holds the event loop for 3.3 s, so the optical writer should send
short chunks at low baud rates. The ADE7953 SPI gets 750 kHz: SPI1 divides its bus clock by a
power of two and MicroPython picks the fastest rate not above the 1 MHz asked for.

Data flash (boards/stm32_flash.py): the register journal on flash sectors 3..4 driven
through the FLASH registers, once :meth:`Board.format_small_fs` has shrunk MicroPython's FAT
volume to sectors 1..2; the configuration record in two 4 KiB files on that volume
(``/flash/meterdata``, boards/file_blocks.py). The board hands them to the firmware as
``partitions`` ``journal`` (32 KiB, absent until the volume is shrunk) and ``config``
(8 KiB, absent if ``/flash`` is not mounted); ``notes`` says what is missing. There is no
room for the event logs: events stay in RAM (the password lockout does not survive a
restart here).
"""


import machine
import pyb
import stm
from machine import RTC, SPI, UART, WDT, Pin
from micropython import const

from boards.board import LazyWDT, RGBLed, RtcClock, epoch_offset
from boards.stm32_flash import data_partitions
from lcd.ht1621 import HT1621

_ADE_SPI_HZ = const(1_000_000)
_WDT_MS = const(8000)  # stm32 IWDG allows up to 32768 ms

# RTC (RM0383): the RTC and its 20 backup registers RTC_BKPxR (offsets 0x50..0x9C from the RTC
# at 0x40002800) live in the backup domain, powered from VBAT while VDD is off, and are
# cleared when the backup domain is reset (VBAT lost, or a tamper event). Writing them needs
# PWR_CR.DBP (bit 8; PWR at 0x40007000). MicroPython's stm32 port keeps a running RTC across
# resets, but after a backup-domain reset it restarts the calendar at 2015-01-01
# (ports/stm32/rtc.c). So set_time() writes a mark into RTC_BKP9R, and the clock is valid at
# power-up only while that mark survived. On the NUCLEO-F411RE (MB1136) solder bridge SB45
# ties VBAT to VDD by default (the LSE crystal X2 is fitted): open SB45 and fit a coin cell on
# VBAT (CN7 pin 33) for the RTC to survive an outage.
_RTC_MARK_REG = const(0x40002800 + 0x50 + 4 * 9)  # RTC_BKP9R
_RTC_MARK = const(0x2C0C10CC)  # "clock set" (below 2**30: a small int)
_PWR_CR = const(0x40007000)
_PWR_CR_DBP = const(1 << 8)


def _mark_rtc_set():
    stm.mem32[_PWR_CR] = stm.mem32[_PWR_CR] | _PWR_CR_DBP
    stm.mem32[_RTC_MARK_REG] = _RTC_MARK


def _cpu(name):
    """The Pin object of a port pin named like ``"PA5"`` (cpu name ``A5``)."""
    return getattr(Pin.cpu, name[1:])


class Inverted:
    """Pin-like view of an active-low input: ``value()`` is 1 while the pin is low."""

    def __init__(self, pin):
        self._pin = pin

    def value(self):
        return 1 - self._pin.value()

    def __call__(self):
        return self.value()

    def irq(self, handler=None, trigger=None):
        """``machine.Pin.irq`` of the pin (the port's default trigger, either edge, unless
        given: the demand-reset button's edge latch, firmware/tasks/billing.py)."""
        if trigger is None:
            return self._pin.irq(handler)
        return self._pin.irq(handler, trigger)


class Board:
    """The meter on a NUCLEO-F411RE: every attribute of :mod:`boards.board`.

    ``serial``: meter serial number (default: 16 hex digits of the 96-bit unique ID: wafer
    X/Y, wafer number and the last 3 lot characters, RM0383 "unique device ID register");
    ``modem_on_uart2``: give USART2 to the modem and detach the REPL from it (see above);
    ``relay_closed``: relay state driven at construction.
    """

    name = "nucleo-f411re"

    def __init__(self, serial=None, modem_on_uart2=False, relay_closed=1):
        import binascii

        self.notes = []
        if serial is None:
            uid = machine.unique_id()
            serial = binascii.hexlify(uid[0:5] + uid[9:12]).decode()
        self.serial = serial
        self.rtc = RTC()
        self.clock = RtcClock(self.rtc, epoch_offset(), 1)
        if stm.mem32[_RTC_MARK_REG] != _RTC_MARK:
            self.clock.invalidate("RTC backup domain was reset (VBAT lost) since last set")
        self.clock.when_set(_mark_rtc_set)

        # ADE7953 on SPI1 (PA5/PA6/PA7): mode 0, MSB first (DS p.52).
        self.ade_spi = SPI(1, baudrate=_ADE_SPI_HZ, polarity=0, phase=0, bits=8,
                           firstbit=SPI.MSB)
        self.ade_cs = Pin(_cpu("PB6"), Pin.OUT, value=1)
        self.ade_irq = Pin(_cpu("PA8"), Pin.IN, Pin.PULL_UP)
        self.ade_reset = Pin(_cpu("PB10"), Pin.OUT, value=1)

        # Serial ports.
        self.uart_optical = UART(6, 300, bits=7, parity=0, stop=1, timeout=0, rxbuf=256)
        try:
            self.uart_rs485 = UART(1, 9600, bits=8, parity=None, stop=1, timeout=0,
                                   rxbuf=512)
        except ValueError:
            self.uart_rs485 = None
            self.notes.append("UART(1) not defined by this firmware: no RS-485 port")
        self.rs485_de = Pin(_cpu("PB5"), Pin.OUT, value=0)
        self.uart_modem = None
        if modem_on_uart2:
            pyb.repl_uart(None)
            self.uart_modem = UART(2, 115200, bits=8, parity=None, stop=1, timeout=0,
                                   rxbuf=1024)
        else:
            self.notes.append("USART2 is the REPL: no modem port (Board(modem_on_uart2=True))")
        self.modem_pwrkey = Pin(_cpu("PB3"), Pin.OUT, value=0)

        # Outputs.
        def out(name, v=0):
            return Pin(_cpu(name), Pin.OUT, value=v)

        self.led_kwh = out("PB4")
        self.led_kvarh = out("PB8")
        self.status_leds = (RGBLed(out("PC8"), out("PC9"), out("PC10")),
                            RGBLed(out("PC11"), out("PC12"), out("PD2")))
        self.relay = out("PB12", 1 if relay_closed else 0)

        # Inputs, 1 = active.
        def pull_up(name):
            return Pin(_cpu(name), Pin.IN, Pin.PULL_UP)

        self.relay_feedback = Pin(_cpu("PB13"), Pin.IN, Pin.PULL_DOWN)
        self.power_fail = Pin(_cpu("PC1"), Pin.IN, Pin.PULL_DOWN)
        self.btn_scroll = Inverted(Pin(_cpu("PC13"), Pin.IN))  # B1 has its own pull-up
        self.btn_demand_reset = Inverted(pull_up("PB14"))
        self.sw_test = Inverted(pull_up("PB15"))
        self.cover = pull_up("PA0")
        self.terminal_cover = pull_up("PA1")
        self.magnet = Inverted(pull_up("PA4"))
        self.seal = pull_up("PB0")

        # LCD: HT1621 on three GPIOs (CS and WR idle high).
        self.lcd = HT1621(out("PC2", 1), out("PC3", 1), out("PC4"))
        self.lcd.init()

        # Data partitions (see the module docstring) and watchdog.
        self.partitions = data_partitions(self.notes)
        self.wdt = LazyWDT(WDT, _WDT_MS)
        for n in self.notes:
            print("boards.stm32:", n)

    def on_power_fail(self, handler):
        """Install ``handler(pin)`` on the rising edge of ``power_fail`` (the supply failing;
        boards/board.py): the firmware's power-fail commit."""
        self.power_fail.irq(handler, Pin.IRQ_RISING)

    @staticmethod
    def format_small_fs():
        """Shrink ``/flash`` to 32 KiB (boards/stm32_flash.format_small_fs): ERASES every
        file on /flash."""
        from boards.stm32_flash import format_small_fs

        format_small_fs()
