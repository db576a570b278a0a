# PIO UART for the RP2040 (the optical port of boards/pico.py).
"""A ``machine.UART``-like serial port on two RP2040 PIO state machines.

Why (boards/pico.py): the RP2040 has two UARTs, taken by the modem (UART0, 115200 8N1, bursty
data that needs the hardware FIFO) and the RS-485 bus (UART1). The optical port runs at
300..19200 Bd, is used by a person with a probe, and IEC 62056-21 repairs a lost byte with
NAK/retry, so it is the one port that tolerates a software-serviced receiver. The PIO
programs only frame 10-bit 8N1 characters, so 7E1 is sent as 8N1 bytes whose bit 7 is the
even parity of bits 0..6: both frames are 10 bits long, so on the wire that is exactly 7E1;
received bytes have bit 7 checked and stripped.

Sources: RP2040 datasheet section 3 (PIO; 3.6 the PIO UART TX/RX examples), MicroPython
``ports/rp2`` (``rp2.StateMachine``, ``rp2.asm_pio``), py/stream.h (MP_STREAM_POLL).
"""

import time

import machine
import rp2
from micropython import const

TYPE_CHECKING = False
if TYPE_CHECKING:  # names of the PIO assembler DSL (rp2.asm_pio), for pyright only
    from rp2.asm_pio import in_, irq, jmp, label, mov, nop, out, pull, push, rel, set, wait
    from rp2.asm_pio import block, isr, null, pin, pins, x, x_dec

# Stream ioctl (py/stream.h): MP_STREAM_POLL and its flags.
_MP_STREAM_POLL = const(3)
_POLL_RD = const(0x0001)
_POLL_WR = const(0x0004)


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
