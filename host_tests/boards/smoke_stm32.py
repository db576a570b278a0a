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


class _Irq:
    """``machine``'s disable_irq/enable_irq, counted: ``off`` is 0 with interrupts on."""
    off = 0

    @staticmethod
    def disable_irq():
        _Irq.off += 1
        return 7

    @staticmethod
    def enable_irq(st):
        assert st == 7
        _Irq.off -= 1


def check_edges(f4):
    """F4Sectors at its edges (blocks 0 and 1 erased first): odd offsets and lengths, a page
    ending on a half-word boundary, reads of 32 and 33 bytes and across the blocks, a
    transfer across the blocks, the simple interface (offset None), the controller already
    unlocked (no key written: a second KEY1 is a bus fault on the F4, RM0383 3.5.1), and an
    exception inside the critical part (a KeyboardInterrupt pending from before disable_irq
    is raised at the first jump of the polling loop): interrupts on and FLASH_CR locked
    again on every path."""
    f4.ioctl(6, 0)
    f4.ioctl(6, 1)
    bs = SF.FLASH_BLOCK
    ref = bytearray(b"\xff" * (2 * bs))

    def put(block, data, off):
        f4.writeblocks(block, data, off)
        a = block * bs + off
        for i, v in enumerate(data):
            ref[a + i] &= v

    def same(block, off, n):
        got = bytearray(n)
        f4.readblocks(block, got, off)
        a = block * bs + off
        assert got == ref[a:a + n], (block, off, n, bytes(got), bytes(ref[a:a + n]))

    put(0, b"\x01\x02\x03\x04", 1)  # byte, half-word, byte: ends on a half-word boundary
    put(0, b"\x10\x20\x30", 8)  # half-word, then a lone last byte at an even address
    put(0, b"\xa5", 15)
    put(0, b"\x00\xff\x00", 21)  # (a 0xFF byte in a half-word: only 1 -> 0 bits)
    put(0, bytes(range(40, 73)), 100)  # 33 bytes
    put(0, bytes(range(200, 212)), bs - 5)  # across the blocks: 5 in block 0, 7 in 1
    put(1, bytes(range(7)), bs - 7)  # the last byte of block 1
    for off, n in ((0, 32), (0, 33), (1, 32), (1, 33), (99, 34), (bs - 32, 32),
                   (bs - 33, 33), (bs - 5, 12), (bs - 1, 2), (7, 1), (0, 0)):
        same(0, off, n)
    same(1, bs - 7, 7)
    same(0, bs, 20)  # block 0 at offset bs: block 1's start (a transfer past one block)
    for bad in ((1, bs - 3, 4), (2, 0, 1), (0, -1, 4), (1, bs, 1)):
        try:
            f4.readblocks(bad[0], bytearray(bad[2]), bad[1])
            raise AssertionError("outside the partition accepted: %r" % (bad,))
        except ValueError:
            pass
    try:
        f4.ioctl(6, 2)
        raise AssertionError("erase of block 2 accepted")
    except ValueError:
        pass
    # the simple interface: both blocks erased, then programmed
    whole = bytearray(2 * bs)
    for i in range(0, 2 * bs, 97):
        whole[i] = i & 0xFF
    e0 = len(stm.C.erases)
    f4.writeblocks(0, whole)
    assert stm.C.erases[e0:] == [3, 4], stm.C.erases[e0:]
    back = bytearray(2 * bs)
    f4.readblocks(0, back)
    assert back == whole
    f4.ioctl(6, 0)
    f4.ioctl(6, 1)
    # already unlocked (e.g. left so by other code): no key written
    keys = [0]
    real_w = stm._reg_write

    def no_keys(addr, v):
        if addr - stm.FLASH == stm.FLASH_KEYR:
            keys[0] += 1
            assert stm.C.locked, "KEYR written while unlocked: a bus fault"
        real_w(addr, v)

    stm._reg_write = no_keys
    try:
        stm.C.locked = False
        f4.writeblocks(0, b"\x5a\x5a", 0)
        assert keys[0] == 0 and stm.C.locked
        f4.writeblocks(0, b"\x5a\x5a", 2)
        assert keys[0] == 2, keys  # locked again after the last: KEY1, KEY2
    finally:
        stm._reg_write = real_w
    # an exception inside the critical part, at the program and at the erase
    real_r, real_machine = stm._reg_read, SF.machine
    SF.machine = _Irq
    polls = [0]

    def interrupted(addr):
        if addr - stm.FLASH == stm.FLASH_SR:
            polls[0] += 1
            if polls[0] == 3:  # (the poll after the operation: the controller unlocked)
                assert not stm.C.locked and _Irq.off == 1
                raise KeyboardInterrupt
        return real_r(addr)

    for op in ("program", "erase"):
        polls[0] = 0
        resets = stm.C.dcache_resets
        stm._reg_read = interrupted
        try:
            if op == "program":
                f4.writeblocks(1, b"\x01\x02", 64)
            else:
                f4.ioctl(6, 1)
            raise AssertionError("the interrupt was lost")
        except KeyboardInterrupt:
            pass
        finally:
            stm._reg_read = real_r
        assert _Irq.off == 0, "%s: interrupts left disabled" % op
        assert stm.C.locked, "%s: FLASH_CR left unlocked" % op
        assert stm.C.dcache_resets > resets, "%s: the data cache not reset" % op
    SF.machine = real_machine
    # a controller error at an erase: EIO, locked, interrupts on, the data cache reset
    real_w = stm._reg_write

    def wrp(addr, v):
        real_w(addr, v)
        if addr - stm.FLASH == stm.FLASH_CR and v & (1 << 16):
            stm.C.sr |= 1 << 4  # WRPERR

    stm._reg_write = wrp
    SF.machine = _Irq
    resets = stm.C.dcache_resets
    try:
        f4.ioctl(6, 0)
        raise AssertionError("an erase error was not raised")
    except OSError as e:
        assert e.args[0] == 5, e
    finally:
        stm._reg_write, SF.machine = real_w, real_machine
    assert stm.C.locked and _Irq.off == 0 and stm.C.dcache_resets > resets
    assert stm.C.sr & 0x1F2 == 0
    f4.ioctl(6, 0)
    f4.ioctl(6, 1)
    print("F4Sectors edges ok")


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
    # reset; the next program works (_Irq: the interrupts counted)
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
    check_edges(f4)
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
