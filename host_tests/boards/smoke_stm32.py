# Host test of boards/stm32.py on the MicroPython unix port with fakes (test only).
import vfs

import machine
import stm
import pyb
import boards.stm32 as S
import boards.stm32_flash as SF
import meterkit
from flashstore import journal

SF.uctypes = stm.FakeUctypes  # the builtin uctypes would read real host memory


def put_fs(blocks):
    """A FAT volume of ``blocks`` x 512 B at the start of the internal storage."""
    dev = pyb.Flash(start=0, len=blocks * 512)
    vfs.VfsFat.mkfs(dev)


def main():
    machine.UART.EXIST = (2, 6)  # stock NUCLEO_F411RE firmware
    # 1. stock 64 KiB filesystem: no data partition
    put_fs(128)
    assert SF.fs_volume_bytes() == 65536, SF.fs_volume_bytes()
    b = S.Board()
    assert not b.clock.rtc_valid, "backup registers blank: the RTC was never set"
    assert "VBAT" in b.clock.rtc_note, b.clock.rtc_note
    assert b.partitions == {}, "no journal before the shrink, no config without /flash"
    assert b.uart_rs485 is None and b.uart_modem is None
    assert b.uart_optical.id == 6 and b.uart_optical.kw["bits"] == 7
    assert b.uart_optical.kw["parity"] == 0
    assert b.serial == "e661385283323334", b.serial
    assert len(b.serial) == 16
    # inputs
    b.btn_scroll._pin.value(1)  # PC13 idle high through B1's external pull-up
    assert b.btn_scroll.value() == 0
    b.btn_scroll._pin.value(0)
    assert b.btn_scroll.value() == 1
    # 2. after format_small_fs(): 32 KiB filesystem, raw sectors 3 and 4
    S.Board.format_small_fs()
    vfs.umount("/flash")
    assert SF.fs_volume_bytes() == 32768, SF.fs_volume_bytes()
    machine.UART.EXIST = (1, 2, 6)  # firmware defining UART1
    b = S.Board(modem_on_uart2=True)
    assert b.uart_rs485.id == 1 and b.uart_modem.id == 2 and pyb.REPL[0] is None
    dev = b.partitions["journal"]
    f4 = dev._dev._bdev
    assert isinstance(f4, SF.F4Sectors) and list(b.partitions) == ["journal"], b.partitions
    fs_before = bytes(stm.MEM[0x4000:0xC000])
    assert dev.sector_size == 16384 and dev.size == 32768
    dev.erase(0)
    dev.erase(16384)
    assert stm.C.erases == [3, 4], stm.C.erases
    dev.program(1, b"\x12\x34\x56")  # unaligned start: byte then half-word
    dev.program(16384 + 256, bytes(range(256)))
    rd = bytearray(3)
    dev.read(1, rd)
    assert rd == b"\x12\x34\x56", rd
    dev.program(2, b"\x04")
    dev.read(1, rd)
    assert rd == b"\x12\x04\x56", rd
    big = bytearray(256)
    dev.read(16384 + 256, big)
    assert big == bytes(range(256))
    assert stm.MEM[0x10000 + 256:0x10000 + 512] == bytes(range(256))
    assert stm.C.locked and stm.C.sr & 0x1F2 == 0
    assert stm.C.dcache_resets > 0
    # journal on the two sectors
    j = journal.Journal(dev, 40)
    assert j.recover() is None
    j.maintain()
    for k in range(300):  # wraps the 2-sector ring several times
        j.commit(bytes([k & 0xFF]) * 40, journal.REASON_PERIODIC)
        j.maintain()
    j.commit(b"\x07" * 40, journal.REASON_POWERFAIL, urgent=True)
    j2 = journal.Journal(dev, 40)
    assert j2.recover() == b"\x07" * 40
    assert bytes(stm.MEM[0x4000:0xC000]) == fs_before, "filesystem sectors touched"
    print("erases per sector:", stm.C.erases.count(3), stm.C.erases.count(4))
    # range checks
    try:
        f4.readblocks(2, bytearray(4))
        raise AssertionError("block 2 accepted")
    except ValueError:
        pass
    # clock: RTC weekday 1..7 on stm32
    b.clock.set_time(0)
    assert b.rtc.dt == (2000, 1, 1, 6, 0, 0, 0, 0), b.rtc.dt  # 2000-01-01 was a Saturday
    assert b.clock.rtc_valid and b.clock.rtc_note == ""
    # the mark in the backup domain: valid after a reset with VBAT kept, invalid once lost
    assert S.Board(modem_on_uart2=True).clock.rtc_valid, "VBAT kept: RTC trusted"
    stm.backup_reset()
    assert not S.Board(modem_on_uart2=True).clock.rtc_valid, "VBAT lost: RTC invalid"
    # 3. the whole meter: /flash mounted (the config record's two files), journal on sectors
    # 3..4 (blank again), the ADE7953 model on SPI1 (CS PB6, IRQ PA8, RESET PB10)
    dev.erase(0)
    dev.erase(16384)
    vfs.mount(vfs.VfsFat(pyb.Flash(start=0, len=32768)), "/flash")
    meterkit.wire_ade("PB6", "PA8", "PB10")

    def board():
        b = S.Board(modem_on_uart2=True)
        b.clock.set_time(800000000)
        return b

    m, m2 = meterkit.check_restart(board)
    assert sorted(m2.board.partitions) == ["config", "journal"]
    assert "meterdata" in __import__("os").listdir("/flash"), "config files on the volume"
    assert ("irq", "PC1", machine.Pin.IRQ_RISING) in machine.LOG, "power-fail interrupt"
    vfs.umount("/flash")
    print("meter on the nucleo board ok: 1.8.0 %d mWh" % m2.registers.snapshot()["1.8.0"])
    print("stm32 board ok")


main()
