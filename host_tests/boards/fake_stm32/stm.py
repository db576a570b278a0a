# Host fake of stm32's `stm` module with an STM32F4 FLASH-controller model (test only).
FLASH = 0x40023C00
FLASH_ACR = 0
FLASH_KEYR = 4
FLASH_OPTKEYR = 8
FLASH_SR = 12
FLASH_CR = 16
BASE = 0x08000000
MEM = bytearray(b"\xff" * (512 * 1024))
SECTORS = [(0x08000000, 16384), (0x08004000, 16384), (0x08008000, 16384), (0x0800C000, 16384),
           (0x08010000, 65536), (0x08020000, 131072), (0x08040000, 131072), (0x08060000, 131072)]


class Ctl:
    def __init__(self):
        self.locked = True
        self.stage = 0
        self.cr = 0
        self.sr = 0
        self.acr = 0x0603  # ICEN | DCEN | latency 3 (DCEN = bit 10 -> 0x400; 0x603 has it)
        self.erases = []
        self.programs = 0
        self.dcache_resets = 0


C = Ctl()


def _reg_write(addr, v):
    off = addr - FLASH
    if off == FLASH_KEYR:
        if C.stage == 0 and v == 0x45670123:
            C.stage = 1
        elif C.stage == 1 and v == 0xCDEF89AB:
            C.locked = False
            C.stage = 0
        else:
            raise AssertionError("bad key sequence: bus fault until reset")
    elif off == FLASH_SR:
        C.sr &= ~v
    elif off == FLASH_CR:
        if v & 0x80000000:
            C.locked = True
            C.cr = 0
            return
        assert not C.locked, "CR written while locked"
        C.cr = v
        if v & (1 << 16):  # STRT
            assert v & 2, "STRT without SER"
            assert not v & 1, "PG and SER together"
            snb = (v >> 3) & 0xF
            a, n = SECTORS[snb]
            for i in range(a - BASE, a - BASE + n):
                MEM[i] = 0xFF
            C.erases.append(snb)
            C.sr |= 1  # EOP
            C.cr &= ~(1 << 16)
    elif off == FLASH_ACR:
        if v & (1 << 12):
            assert not v & (1 << 10), "DCRST while DCEN"
            C.dcache_resets += 1
        C.acr = v
    else:
        raise AssertionError(hex(addr))


def _reg_read(addr):
    off = addr - FLASH
    if off == FLASH_CR:
        return C.cr | (0x80000000 if C.locked else 0)
    if off == FLASH_SR:
        return C.sr
    if off == FLASH_ACR:
        return C.acr
    raise AssertionError(hex(addr))


def _prog(addr, v, width):
    psize = (C.cr >> 8) & 3
    if C.locked or not C.cr & 1:
        C.sr |= 1 << 7  # PGSERR
        return
    if {1: 0, 2: 1, 4: 2}[width] != psize:
        C.sr |= 1 << 6  # PGPERR
        return
    if addr % width:
        C.sr |= 1 << 5  # PGAERR
        return
    for i in range(width):
        MEM[addr - BASE + i] &= (v >> (8 * i)) & 0xFF
    C.programs += 1


# Backup domain (RM0383): RTC backup registers RTC_BKPxR and PWR_CR (DBP gates writes).
RTC_BASE = 0x40002800
PWR_CR = 0x40007000
BACKUP = {}  # address -> value; cleared by backup_reset()


def backup_reset():
    """VBAT lost: the backup domain (RTC registers, backup registers) is reset."""
    BACKUP.clear()


def _backup(addr):
    return RTC_BASE + 0x50 <= addr < RTC_BASE + 0xA0 or addr == PWR_CR


class _Mem:
    def __init__(self, width):
        self.w = width

    def __getitem__(self, addr):
        if _backup(addr):
            assert self.w == 4 and addr % 4 == 0
            return BACKUP.get(addr, 0)
        if addr >= FLASH:
            return _reg_read(addr)
        return int.from_bytes(MEM[addr - BASE:addr - BASE + self.w], "little")

    def __setitem__(self, addr, v):
        if _backup(addr):
            assert self.w == 4 and addr % 4 == 0
            if addr != PWR_CR:
                assert BACKUP.get(PWR_CR, 0) & (1 << 8), "backup register written without DBP"
            BACKUP[addr] = v
            return
        if addr >= FLASH:
            assert self.w == 4
            _reg_write(addr, v)
        else:
            _prog(addr, v, self.w)


mem8 = _Mem(1)
mem16 = _Mem(2)
mem32 = _Mem(4)


class _Struct:
    """``uctypes.struct`` of bitfields on a 32-bit register (NATIVE layout): each field a
    word read through ``mem32``, shifted and masked, as moductypes.c does."""

    def __init__(self, addr, desc):
        self._addr = addr
        self._desc = desc

    def __getattr__(self, name):
        d = self.__dict__["_desc"][name]
        pos = (d >> FakeUctypes.BF_POS) & 31
        n = (d >> FakeUctypes.BF_LEN) & 31
        assert d & FakeUctypes.BFUINT32 and not d & 0xFFFF, "only BFUINT32 fields at offset 0"
        return (mem32[self.__dict__["_addr"]] >> pos) & ((1 << n) - 1)


class FakeUctypes:
    NATIVE = 2
    BF_POS = 17
    BF_LEN = 22
    BFUINT32 = 1 << 29  # (a flag bit of its own in this fake; decoded above)

    @staticmethod
    def struct(addr, desc, layout=0):
        assert layout == FakeUctypes.NATIVE, "a register: native layout (one word access)"
        return _Struct(addr, desc)

    @staticmethod
    def bytearray_at(addr, n):
        return MEM[addr - BASE:addr - BASE + n]  # a copy is enough for reads

    @staticmethod
    def bytes_at(addr, n):
        return bytes(MEM[addr - BASE:addr - BASE + n])
