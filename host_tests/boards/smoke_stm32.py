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


class _LeanMem:
    """An allocation-free ``stm.mem*`` (every register reads 0: not busy, no error, data
    cache off) that refuses a word read of FLASH_CR: on a 31-bit small-int core its LOCK
    bit (31) makes that a long int, a heap allocation at every program."""

    def __getitem__(self, addr):
        assert addr != SF._CR, "FLASH_CR read as a word"
        return 0

    def __setitem__(self, addr, v):
        pass


class _LeanStm:
    mem8 = _LeanMem()
    mem16 = _LeanMem()
    mem32 = _LeanMem()


class _Locked:
    LOCK = 1


def check_power_fail_path_allocates_nothing():
    """A page program inside one block and a 16-byte read-back (the journal's power-fail
    commit) through F4Sectors allocate nothing: no views, no slices, no heap-allocated
    frames (micropython.mem_total: the bytes ever allocated)."""
    import micropython

    total = getattr(micropython, "mem_total", None)
    if total is None:
        return
    f4 = SF.F4Sectors(SF._SECTORS, SF.FLASH_BLOCK)
    f4._cr = _Locked()
    real = SF.stm
    SF.stm = _LeanStm
    try:
        page = bytearray(range(256))
        piece = bytearray(16)
        f4.writeblocks(1, page, 512)  # (warm: first-call state)
        f4.readblocks(1, piece, 512)
        t0 = total()
        f4.writeblocks(1, page, 768)
        f4.writeblocks(0, page, 3)  # (an odd offset: bytes and half-words)
        f4.readblocks(1, piece, 768)
        f4.readblocks(0, piece, 16383 - 15)
        n = total() - t0
    finally:
        SF.stm = real
    assert n == 0, "%d bytes allocated on the power-fail path" % n


def main():
    check_power_fail_path_allocates_nothing()
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
    # a controller error (WRPERR: the sector write-protected) in the middle of a page:
    # OSError(EIO), the controller locked and the interrupts enabled again, the data cache
    # reset; the next program works
    class _Irq:
        off = 0

        @staticmethod
        def disable_irq():
            _Irq.off += 1
            return 7

        @staticmethod
        def enable_irq(st):
            assert st == 7
            _Irq.off -= 1

    real_prog, real_machine = stm._prog, SF.machine
    n_prog = [0]

    def failing(addr, v, width):
        n_prog[0] += 1
        if n_prog[0] == 5:
            stm.C.sr |= 1 << 4  # WRPERR
            return
        real_prog(addr, v, width)

    stm._prog = failing
    SF.machine = _Irq
    resets = stm.C.dcache_resets
    try:
        dev.program(16384 + 1024, bytes(range(1, 33)))
        raise AssertionError("a controller error was not raised")
    except OSError as e:
        assert e.args[0] == 5, e
    finally:
        stm._prog, SF.machine = real_prog, real_machine
    assert stm.C.locked and _Irq.off == 0 and stm.C.dcache_resets > resets
    assert stm.C.sr & 0x1F2 == 0, "error flags cleared"
    dev.program(16384 + 1280, b"\x11\x22")
    dev.read(16384 + 1280, rd)
    assert rd == b"\x11\x22\xff", rd
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
