# Host test of boards/pico.py on the MicroPython unix port with fake machine/rp2 (test only).
import os
import vfs

import machine
import _rp2


class RAMBlocks:
    def __init__(self, n):
        self.d = bytearray(b"\xff" * (4096 * n))
        self.n = n

    def readblocks(self, b, buf, off=0):
        a = b * 4096 + off
        buf[:] = self.d[a:a + len(buf)]

    def writeblocks(self, b, buf, off=None):
        if off is None:
            off = 0
        a = b * 4096 + off
        self.d[a:a + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:
            return self.n
        if op == 5:
            return 4096
        if op == 6:
            a = arg * 4096
            self.d[a:a + 4096] = b"\xff" * 4096
        return 0


def mount_root(blocks):
    dev = RAMBlocks(blocks)
    vfs.VfsLfs2.mkfs(dev, progsize=256)
    vfs.umount("/")
    vfs.mount(vfs.VfsLfs2(dev, progsize=256), "/")


import boards.pico as P  # noqa: E402
import boards.rp2_flash as RF  # noqa: E402
import boards.rp2_pio_uart as PU  # noqa: E402
import meterkit  # noqa: E402
from boards.file_blocks import FileBlocks  # noqa: E402
from flashstore import journal  # noqa: E402


def check_pio_uart(b):
    u = b.uart_optical
    rx = _rp2.StateMachine(0)
    tx = _rp2.StateMachine(1)
    assert rx.hard and tx.hard and rx.handler and tx.handler
    assert rx.freq == 2400 and tx.freq == 2400, (rx.freq, tx.freq)
    # TX 7E1: "/?!\r\n" gets even parity in bit 7
    assert u.write(b"/?!\r\n") == 5
    wire = []
    while tx.q:
        wire.append(tx.q.pop(0))
        tx.handler(tx)
    for c in wire:
        assert bin(c).count("1") % 2 == 0, hex(c)
    assert [c & 0x7F for c in wire] == list(b"/?!\r\n"), wire
    assert wire[0] == 0xAF, wire  # '/' 0x2F has 5 ones -> parity 1
    # long write: more than the FIFO; the TX IRQ pumps the rest
    msg = bytes(range(32, 122)) + bytes(range(32, 42))
    assert u.write(msg) == 100
    assert len(tx.q) == 8
    got = []
    while tx.q:
        got.append(tx.q.pop(0) & 0x7F)
        tx.handler(tx)
    assert bytes(got) == msg
    # RX 7E1: good parity and one bad
    for c in b"/?!":
        rx.q.append(((c | (PU._parity7(c) << 7)) << 24))
    rx.q.append((0x41 << 24))  # 'A' = 0x41, two ones -> even, parity bit 0: good
    rx.q.append(((0x43 | 0x80) << 24))  # 'C' has 3 ones; parity bit 1 is right...
    rx.q.append((0x43 << 24))  # ... and 0 is wrong
    rx.handler(rx)
    assert u.any() == 6
    assert u.read(3) == b"/?!"
    assert u.read() == b"ACC"
    assert u.parity_errors == 1, u.parity_errors
    assert u.read() is None and u.readinto(bytearray(4)) is None
    # poll
    assert u.ioctl(3, 1 | 4) == 4
    rx.q.append(0x30 << 24)
    rx.handler(rx)
    assert u.ioctl(3, 1 | 4) == 5
    buf = bytearray(8)
    assert u.readinto(buf) == 1 and buf[0] == 0x30
    # overrun: 256-byte ring holds 255
    for _i in range(300):
        rx.q.append((0x55 << 24))
        if len(rx.q) == 8:
            rx.handler(rx)
    rx.handler(rx)
    assert u.any() == 255 and u.overruns == 45, (u.any(), u.overruns)
    u.read()
    # switch to 8N1 at 9600 (mode E)
    u.init(9600, 8, None, 1)
    assert rx.freq == 76800
    u.write(b"\xff\x00\x7e")
    assert tx.q == [0xFF, 0x00, 0x7E], tx.q
    tx.q.clear()
    rx.q.append(0xC3 << 24)
    rx.handler(rx)
    assert u.read() == b"\xc3"
    try:
        u.init(9600, 8, 0, 1)
        raise AssertionError("8E1 accepted")
    except ValueError:
        pass
    print("PioUart ok")


def check_expander(b, model):
    assert model.reg[0x0A] == 0x44 and model.reg[0x00] == 0 and model.reg[0x01] == 0x7F
    assert model.reg[0x03] == 0x27 and model.reg[0x0D] == 0x7F and model.reg[0x05] == 0x7F
    got = (b.btn_scroll.value(), b.cover.value(), b.magnet.value(), b.seal.value())
    assert got == (0, 0, 0, 0), got
    model.pins_b &= ~(1 << 0)  # scroll pressed -> low
    model.pins_b |= 1 << 3  # cover removed -> switch open -> high
    model.pins_b &= ~(1 << 5)  # magnet: Hall output low
    got = (b.btn_scroll.value(), b.cover.value(), b.magnet.value(), b.seal.value())
    assert got == (1, 1, 1, 0), got
    b.status_leds[1].set(1, 0, 1)
    assert model.reg[0x14] == 0b101000, bin(model.reg[0x14])
    assert b.status_leds[1].get() == (1, 0, 1)
    b.status_leds[0].set(0, 1, 0)
    assert model.reg[0x14] == 0b101010
    print("expander ok")


def check_demand_button(b, model):
    """The demand-reset button on the MCP23017 latches a press shorter than the sampling
    (tasks/billing.py button: 100 ms; it was sampled only, so a short press was lost) from
    INTFB, and a change of another input on the shared INT line (GP10) is no press."""
    import asyncio

    from tasks.billing import button

    class _Billing:
        n = 0

        def demand_reset(self, src):
            self.n += 1

    bl = _Billing()
    machine.Pin.SOURCES[10] = lambda: 0 if model.pending else 1  # INTA, open drain
    model.pins_b = up = 0x27  # buttons up, covers fitted, no field
    press = up & ~(1 << 1)  # GPB1 to GND

    async def drive():
        t = asyncio.create_task(button(bl, b.btn_demand_reset, 40))
        await asyncio.sleep_ms(60)
        assert bl.n == 0
        model.set_pins(press)  # pressed and released between two samples
        model.set_pins(up)
        await asyncio.sleep_ms(80)
        assert bl.n == 1, "a press shorter than the sampling is a demand reset"
        model.set_pins(up | 1 << 3)  # the main cover opened: INT falls, INTFB names GPB3
        await asyncio.sleep_ms(80)
        model.set_pins(up)
        await asyncio.sleep_ms(80)
        assert bl.n == 1, "another input's change is no press"
        model.set_pins(press)  # held over several samples: one demand reset
        await asyncio.sleep_ms(130)
        model.set_pins(up)
        await asyncio.sleep_ms(130)
        assert bl.n == 2, bl.n
        t.cancel()

    asyncio.run(drive())
    del machine.Pin.SOURCES[10]
    print("demand-reset button latch ok")


def check_flash(b, mode):
    assert b.flash_mode == mode, (b.flash_mode, mode)
    dev = b.flash
    assert dev.size == 96 * 4096 and dev.sector_size == 4096
    parts = b.partitions
    assert sum(p.size for p in parts.values()) == 96 * 4096
    assert parts["config"].sectors == 2 and parts["journal"].sectors == 16
    part = parts["events"]
    part.erase(0)
    part.program(10, b"\x12\x34\x56")
    part.program(300, bytes(range(200)))  # crosses no page: 300..499 in page 1
    rd = bytearray(3)
    part.read(10, rd)
    assert rd == b"\x12\x34\x56", rd
    part.program(10, b"\x02")  # NOR: 0x12 & 0x02
    part.read(10, rd)
    assert rd == b"\x02\x34\x56", rd
    big = bytearray(200)
    part.read(300, big)
    assert big == bytes(range(200))
    part.erase(0)
    part.read(10, rd)
    assert rd == b"\xff\xff\xff"
    # journal round trip on the real library
    jp = parts["journal"]
    j = journal.Journal(jp, 40)
    assert j.recover() is None
    j.maintain()
    for k in range(5):
        j.commit(bytes([k]) * 40, journal.REASON_PERIODIC)
    j.commit(b"\x09" * 40, journal.REASON_POWERFAIL, urgent=True)
    j2 = journal.Journal(jp, 40)
    assert j2.recover() == b"\x09" * 40
    for p in parts.values():  # blank again for the whole meter
        for a in range(0, p.size, 4096):
            p.erase(a)
    print("flash %s ok" % mode)


def check_meter(mode):
    """The whole meter on the Pico board module: metering, commit, restart, restore."""
    meterkit.wire_ade(17, 20, 21)  # GP17 CS, GP20 IRQ, GP21 RESET
    m, m2 = meterkit.check_restart(P.Board)
    b = m2.board
    assert b.flash_mode == mode
    assert ("irq", 22, machine.Pin.IRQ_RISING) in machine.LOG, "power-fail interrupt installed"
    print("meter on the pico board (%s flash) ok: 1.8.0 %d mWh" % (
        mode, m2.registers.snapshot()["1.8.0"]))


def main():
    machine.unique_id = lambda: b"\xe6\x61\x38\x52\x83\x4b\x2c\x2d"  # rp2: 8 bytes
    model = machine.MCPModel()
    machine.I2C.DEVICES[0x20] = model
    # 1. stock firmware: root littlefs over the whole user area -> file mode
    mount_root(352)
    b = P.Board()
    assert b.serial == "e6613852834b2c2d", b.serial
    assert isinstance(b.flash._bdev, FileBlocks)
    assert len(os.listdir("/meterdata")) == 96
    check_flash(b, "file")
    check_expander(b, model)
    check_demand_button(b, model)
    check_pio_uart(b)
    # watchdog starts at the first feed
    assert not machine.WDT.made
    b.wdt.feed()
    b.wdt.feed()
    assert len(machine.WDT.made) == 1 and machine.WDT.made[0].feeds == 2
    assert machine.WDT.made[0].timeout == 8000
    # clock: after a chip reset the RTC reads 2021-01-01 (no backup supply): invalid
    assert not b.clock.rtc_valid and "RP2040" in b.clock.rtc_note, b.clock.rtc_note
    # set_time writes the RTC and makes it valid
    b.clock.set_time(0)
    assert b.rtc.dt[:3] == (2000, 1, 1), b.rtc.dt
    assert b.clock.rtc_valid and b.clock.rtc_note == ""
    b.clock.set_time(800000000)  # 2025-05-09: a soft reset keeps it (next Board below)
    model.pins_b = 0x27  # buttons up, covers fitted, no field (the expander test moved them)
    check_meter("file")
    # 2. custom _boot.py: root on the first 1024 KiB -> raw partition at the top
    mount_root(256)
    del machine.I2C.DEVICES[0x20]
    b = P.Board()
    assert b.clock.rtc_valid, "a set RTC survives a soft reset"
    assert isinstance(b.flash._bdev, RF.PagedFlash)
    assert b.expander is None and b.btn_scroll.value() == 0
    b.status_leds[0].set(1, 1, 1)
    check_flash(b, "raw")
    check_meter("raw")
    vfs.umount("/")
    vfs.mount(vfs.VfsPosix(), "/")
    print("pico board ok")


main()
