# firmware/meter/storage.py on the virtual board in process: the power-fail commit at the
# 31-bit limit, recovery from a damaged journal sector, foreign journals and the sealed format
# (C.91.8), the versioned record (schema 2: register banks) and its migrations.
import struct

import events
from boards.sim.board import Options, SimBoard
from flashstore import journal
from flashstore.flash import Partition
from meter import storage
from meter.status import ERR_STORAGE
from simkit import StepTrace

JOURNAL = 64 * 1024  # the virtual board's journal partition: offset 0, 64 KiB
EVENTS = (72 * 1024, 32 * 1024)
NEAR = (1 << 30) - 1  # the largest small int on a 32-bit port
PAYLOAD = storage.payload_size(8)  # the totals alone: 76 bytes


def _board(start=None):
    o = Options()
    o.quiet = True
    o.speed = 0  # discrete-event clock: ticks_ms() is a plain int
    if start is not None:
        o.start = start
    return SimBoard(o, trace=StepTrace([(0, 1000000, 0)]))


def _meter(board):
    import app

    return app.Meter(board)


def _jpart(board):
    return Partition(board.nor, 0, JOURNAL)


def _jbytes(board):
    return bytes(board.nor.image[0:JOURNAL])


def _data(m):
    return m.iec_map()


def _storage(m, part):
    """A Storage of meter ``m`` on ``part`` (in place of the meter's own)."""
    s = storage.Storage(part, m.registers, m.metering, m.board.clock, m.log)
    m.storage = m.status.storage = m.catalogue.storage = s
    return s


def _persisted_codes(board):
    # the event codes in the board's persisted logs, decoded by a meter booted on it
    return [d[1] for d in _meter(board).events.persisted()]


def _rewrite_seq(part, j, seq):
    """Give the newest record of journal ``j`` sequence number ``seq`` (CRC recomputed)."""
    import binascii

    s, slot, _n = j.position()
    ss = j.sector_size
    a = s * ss + (slot - 1) * j.slot_size
    sec = bytearray(ss)
    part.read(s * ss, sec)
    o = a - s * ss
    struct.pack_into("<I", sec, o + 4, seq)
    ln = struct.unpack_from("<H", sec, o + 8)[0]
    crc = binascii.crc32(sec[o + 16:o + 16 + ln], binascii.crc32(sec[o:o + 12]))
    struct.pack_into("<I", sec, o + 12, crc)
    part.erase(s * ss)
    for p in range(0, ss, part.page_size):
        part.program(s * ss + p, sec[p:p + part.page_size])


def _near_limit(m):
    r = m.registers
    for i in range(len(r.whole)):
        r.whole[i] = NEAR - 10 - 7 * i  # room for a few more Wh
        r.res[i] = r._div[i] - 1 - i
    m.metering.steps = NEAR - 2


def test_payload_keeps_the_schema_2_layout_past_2034():
    board = _board(start=(1 << 31) + 12345)  # RTC seconds >= 2**30: a long int on 32 bits
    m = _meter(board)
    _near_limit(m)
    s = m.storage
    s.stamp()
    r = m.registers
    t = board.clock.time()
    st = NEAR - 2
    want = struct.pack("<BBHHHHH8I8I", 0, 0, 0, t & 0xFFFF, t >> 16, st & 0xFFFF, st >> 16,
                       *(r.whole + r.res))
    assert bytes(s.payload()) == want, "payload layout (module docstring)"
    assert storage.SCHEMA == 2 and len(want) == PAYLOAD == 76


def test_power_fail_path_packs_and_stores_only_small_ints():
    from flashstore import ringlog
    import smallint

    board = _board(start=(1 << 31) + 12345)
    part = _jpart(board)
    j = journal.Journal(part, PAYLOAD, schema=storage.SCHEMA)
    j.recover()
    j.maintain()
    j.commit(bytes(PAYLOAD))
    _rewrite_seq(part, j, (1 << 30) - 3)  # the journal's sequence crosses 2**30 below
    m = _meter(board)
    s = m.storage
    assert s.journal.seq == (1 << 30) - 3, s.journal.seq
    _near_limit(m)
    spy = smallint.Spy()
    stored = []
    saved = smallint.install(spy, ringlog, storage)
    try:
        for _i in range(6):
            m.registers.whole[0] += 1
            b_s, b_j = smallint.snapshot(s), smallint.snapshot(s.journal)
            s.commit(journal.REASON_POWERFAIL)
            stored += smallint.changed_ints(s, b_s) + smallint.changed_ints(s.journal, b_j)
    finally:
        smallint.uninstall(saved)
    assert s.commits == 6, s.commits
    assert spy.crc_calls == 0, "binascii.crc32 on the power-fail path (long result on 32 bits)"
    assert not spy.big, "packed outside the small-int range: %r" % spy.big[:4]
    assert spy.max_seen >= NEAR - 10, "the registers near the limit were packed"
    assert not stored, "stored long ints: %r" % stored[:4]
    k = journal.Journal(part, PAYLOAD, schema=storage.SCHEMA)
    p = k.recover()
    assert k.seq == (1 << 30) + 3 and struct.unpack_from("<I", p, 12)[0] == NEAR - 4, k.seq


class _RawBdev:
    """Extended block device that allocates nothing (like rp2.Flash / pyb.Flash in C)."""

    def __init__(self, blocks, bs):
        self.img = bytearray(b"\xff" * (blocks * bs))
        self.bs = bs
        self.blocks = blocks

    def readblocks(self, block, buf, offset=0):
        a = block * self.bs + offset
        buf[:] = self.img[a : a + len(buf)]

    def writeblocks(self, block, buf, offset=0):
        a = block * self.bs + offset
        for i in range(len(buf)):
            self.img[a + i] &= buf[i]

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return self.bs
        if op == 6:
            a = arg * self.bs
            for i in range(a, a + self.bs):
                self.img[i] = 0xFF
        return 0


def test_power_fail_commit_allocates_nothing_near_the_31_bit_limit():
    # The whole chain: Storage.commit -> payload -> Journal.commit -> ring append -> flash
    # program, on the NOR model and on the real boards' block-device adapter. (The virtual
    # board's own cut guard, boards/sim/parts.CutGuard, is a test harness and not used here.)
    import micropython

    from flashstore.flash import BlockDeviceFlash

    board = _board()
    m = _meter(board)
    _near_limit(m)
    for part in (Partition(board.nor, 0, JOURNAL),
                 Partition(BlockDeviceFlash(_RawBdev(16, 4096)), 0, JOURNAL)):
        j = journal.Journal(part, PAYLOAD, schema=storage.SCHEMA)
        j.recover()
        j.maintain()
        j.commit(bytes(PAYLOAD))
        _rewrite_seq(part, j, (1 << 30) - 2)
        s = _storage(m, part)
        s.restore()
        _near_limit(m)
        s.commit(journal.REASON_POWERFAIL)
        oks = [False] * 4
        micropython.heap_lock()
        try:
            for i in range(4):
                m.registers.whole[1] += 1
                oks[i] = s.commit(journal.REASON_POWERFAIL)
        finally:
            micropython.heap_unlock()
        assert oks == [True] * 4, oks
        k = journal.Journal(part, PAYLOAD, schema=storage.SCHEMA)
        p = k.recover()
        assert k.seq == (1 << 30) + 3 and struct.unpack_from("<I", p, 16)[0] == NEAR - 13, (
            k.seq)


def _flip_newest_header(board, bit=0):
    k = journal.Journal(_jpart(board), PAYLOAD, schema=storage.SCHEMA)
    k.recover()
    head = k.position()[0]
    board.nor.image[head * 4096 + bit // 8] ^= 1 << (bit % 8)
    return head


def test_damaged_newest_header_is_recovered_logged_and_rewritten():
    board = _board()
    m = _meter(board)
    for _i in range(40):  # > one sector of 31 records: the newest sector is not sector 0
        m.registers.whole[0] += 100
        m.registers.whole[2] += 7
        assert m.storage.commit(journal.REASON_PERIODIC)
    want = (m.registers.whole[0], m.registers.whole[2])
    head = _flip_newest_header(board, bit=77)  # header byte 9: the slot size field
    m2 = _meter(board)
    assert (m2.registers.whole[0], m2.registers.whole[2]) == want, "not rolled back"
    assert m2.storage_status == "ok" and m2.storage.fault is None, m2.storage_status
    assert m2.log.count(events.STORAGE_RECOVERED) == 1, m2.log.entries()
    assert events.STORAGE_RECOVERED in _persisted_codes(board), "in the persisted event log"
    k = journal.Journal(_jpart(board), PAYLOAD, schema=storage.SCHEMA)
    k.recover()
    assert not k.newest_damaged and k.found_reason == journal.REASON_REWRITE, k._summary()
    assert k.position()[0] != head, "the rewrite lies in another, good sector"
    m3 = _meter(board)
    assert m3.log.count(events.STORAGE_RECOVERED) == 0, "the newest lies in a good sector"
    assert m3.storage.journal.salvaged > 0, "the damaged sector is still read (and older)"
    assert (m3.registers.whole[0], m3.registers.whole[2]) == want


def _foreign(board, schema=9, n=44):
    """A journal written by a newer firmware (payload schema 9), ``n`` commits."""
    j = journal.Journal(_jpart(board), PAYLOAD, schema=schema)
    j.recover()
    j.maintain()
    for i in range(1, n + 1):
        j.commit(struct.pack("<I", 5000 + i) + bytes(PAYLOAD - 4))
        j.maintain()


def test_foreign_journal_meters_in_ram_until_the_sealed_format():
    from iec62056.session import ER_NOT_WRITABLE, ER_SEALED

    board = _board()
    _foreign(board)
    image = _jbytes(board)
    m = _meter(board)
    s = m.storage
    assert m.storage_status == "foreign" and s.fault == storage.FAULT_FOREIGN, m.storage_status
    assert m.log.count(events.STORAGE_FOREIGN) == 1 and m.log.entries()[-1][2] == 9, (
        m.log.entries())
    assert m.status.error_flags() & ERR_STORAGE, "F.F.0 shows the storage fault"
    assert all(v == 0 for v in m.registers.whole), "nothing restored"
    m.registers.whole[0] = 1234  # metering goes on in RAM
    assert not s.commit(journal.REASON_PERIODIC) and not s.commit(journal.REASON_POWERFAIL)
    m.shutdown()
    assert s.refused == 3 and _jbytes(board) == image, "no write, no erase"
    d = _data(m)
    assert d.executor("C.91.8", "", True) == ER_SEALED and _jbytes(board) == image, "sealed"
    m2 = _meter(board)  # a reboot changes nothing either
    assert m2.storage_status == "foreign" and _jbytes(board) == image
    m2.registers.whole[0] = 1234
    assert _data(m2).executor("C.91.8", "", False) is None, "seal open: formatted"
    assert m2.storage.fault is None and not m2.status.error_flags() & ERR_STORAGE
    assert m2.storage_status == "ok" and m2.log.count(events.STORAGE_FORMATTED) == 1
    assert _data(m2).executor("C.91.8", "", False) == ER_NOT_WRITABLE, "only a foreign journal"
    m3 = _meter(board)
    assert m3.storage_status == "ok" and m3.registers.whole[0] == 1234, "RAM registers kept"
    assert events.STORAGE_FORMATTED in _persisted_codes(board)


def _schema_1(board, n=3):
    """Records of the firmware before issue 8 (payload schema 1, 76 bytes: 8 x u32 whole, 8 x
    u32 residues, u32 RTC s, u32 steps, u32 reserved), packed as it packed them."""
    old = journal.Journal(_jpart(board), 76, schema=1)
    old.recover()
    old.maintain()
    for i in range(1, n + 1):
        old.commit(struct.pack("<8I8IIII", *([100 * i + r for r in range(8)] +
                                             [10 * i + r for r in range(8)] +
                                             [512353260, 1000 * i, 0])))


def test_schema_1_is_migrated_with_every_total_kept():
    board = _board()
    _schema_1(board)
    m = _meter(board)
    assert m.storage_status == "ok" and m.storage.journal.status == journal.STATUS_MIGRATED, (
        m.storage_status)
    assert m.registers.whole == [300 + r for r in range(8)], m.registers.whole
    assert m.registers.res == [30 + r for r in range(8)], m.registers.res
    ev = [e for e in m.log.entries() if e[1] == events.STORAGE_MIGRATED]
    assert len(ev) == 1 and ev[0][2] == 1, ev
    k = journal.Journal(_jpart(board), PAYLOAD, schema=storage.SCHEMA)  # no conversion now
    p = k.recover()
    assert p is not None and k.status == journal.STATUS_OK, k.status
    assert k.found_reason == journal.REASON_REWRITE and k.found_schema == storage.SCHEMA
    n, w, whole, res, t, steps = storage.unpack(p)
    assert (n, w) == (0, 0) and whole == m.registers.whole and res == m.registers.res, (n, w)
    assert t == board.clock.time(), "stamped by the rewrite"


def test_a_layout_change_keeps_every_register_both_layouts_have():
    # a firmware (or configuration) that adds tariff banks: the totals are kept, the new
    # banks start from zero; removing banks again keeps the totals and the banks left
    from energy import Registers

    board = _board()
    _schema_1(board)
    m = _meter(board)
    lpw = m.registers._div[0]
    regs = Registers(lpw, lpw, lpw, tariffs=3, tariff_width=2)
    s = storage.Storage(_jpart(board), regs, m.metering, board.clock, m.log)
    assert s.payload_size == 12 + 8 * 14 and s.restore() == "ok"
    assert regs.whole[:8] == [300 + r for r in range(8)] and max(regs.whole[8:]) == 0
    regs.add_tariff(2, 1000000, 0, 1000000)
    regs.add(1000000, 0, 1000000)
    t2 = regs.whole[regs.base(2)]
    assert t2 > 0 and s.commit(journal.REASON_PERIODIC)
    back = Registers(lpw, lpw, lpw, tariffs=2, tariff_width=2)
    s2 = storage.Storage(_jpart(board), back, m.metering, board.clock, m.log)
    assert s2.restore() == "ok" and s2.journal.found_schema == storage.SCHEMA
    assert back.whole[:8] == regs.whole[:8] and back.whole[back.base(2)] == t2
    try:
        storage.Storage(_jpart(board), Registers(lpw, lpw, lpw, 6, 8), m.metering,
                        board.clock, m.log)
        assert False, "56 registers cannot be one page"
    except ValueError:
        pass


def test_a_journal_written_by_the_firmware_before_issue_8_restores():
    """host_tests/fixtures/journal_schema1.nors: the flash image of the virtual board after a
    four-quadrant run of the firmware at e96c37a (journal payload schema 1, config record,
    event logs); journal_schema1.json: the registers that run printed. Booted by today's
    firmware: every total restored, to the mWh and to the chip LSB of the newest record."""
    import json

    here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    fx = here + "/../fixtures/journal_schema1"
    with open(fx + ".json") as f:
        ref = json.load(f)
    board = _board()
    with open(fx + ".nors", "rb") as f:
        blob = f.read()
    assert blob[:4] == b"NORS"
    size, ss = struct.unpack_from("<IH", blob, 4)
    assert size == len(board.nor.image) and ss == 4096
    o = 10
    while o < len(blob):
        sec = struct.unpack_from("<H", blob, o)[0]
        board.nor.image[sec * ss:(sec + 1) * ss] = blob[o + 2:o + 2 + ss]
        o += 2 + ss
    newest = journal.Journal(_jpart(board), 76, schema=1).recover()
    old = struct.unpack("<8I8IIII", newest)
    m = _meter(board)
    assert m.storage_status == "ok" and m.storage.journal.found_schema == 1
    assert m.registers.whole == list(old[:8]) and m.registers.res == list(old[8:16])
    got = m.registers.snapshot()
    for k, v in ref["registers"].items():
        assert got[k] == int(round(v * 1000)), (k, got[k], v)
    assert m.log.count(events.STORAGE_MIGRATED) == 1
    assert m.settings.status == "ok", "the configuration record of that firmware is read too"
    assert events.POWER_UP in [e[1] for e in m.events.persisted()], "and its event logs"


class _Failing:
    def __init__(self, f):
        self._f = f
        self.size, self.sector_size, self.page_size = f.size, f.sector_size, f.page_size
        self.fail = False

    def read(self, a, b):
        self._f.read(a, b)

    def program(self, a, d):
        if self.fail:
            raise OSError(5)
        self._f.program(a, d)

    def erase(self, a):
        if self.fail:
            raise OSError(5)
        self._f.erase(a)


def test_a_failing_commit_never_raises_and_shows_the_fault():
    board = _board()
    m = _meter(board)
    f = _Failing(_jpart(board))
    s = _storage(m, f)
    s.restore()
    f.fail = True
    assert not s.commit(journal.REASON_POWERFAIL) and not s.commit(journal.REASON_PERIODIC)
    assert s.fault == storage.FAULT_WRITE and s.write_errors == 2, s.fault
    assert m.log.count(events.STORAGE_WRITE_FAILED) == 1, "logged once per episode"
    assert m.status.error_flags() & ERR_STORAGE
    f.fail = False
    assert s.commit(journal.REASON_PERIODIC) and s.fault is None, "cleared by a good commit"


def _cut_run(base_image, k, action):
    """Fresh board holding ``base_image``; cut at the k-th flash op of ``action(board)``;
    returns (cut happened, board)."""
    board = _board()
    board.nor.image[:] = base_image

    def lose_power(_why):  # the virtual board's power loss, without its stderr line
        raise SystemExit(0)

    board.lose_power = lose_power
    try:
        action(board, k)
    except SystemExit:  # the virtual board's power loss
        board.nor.power_on()
        return True, board
    return False, board


def test_cut_at_every_flash_op_of_the_sealed_format():
    board = _board()
    _foreign(board, n=16 * 31)  # every sector holds foreign records
    base = bytes(board.nor.image)

    def fmt(b, k):
        m = _meter(b)
        m.registers.whole[0] = 4321
        b.nor.cut_at_op(k)
        _data(m).executor("C.91.8", "", False)

    k = 0
    seen = {}
    while True:
        k += 1
        cut, b = _cut_run(base, k, fmt)
        if not cut:
            break
        m = _meter(b)
        st = m.storage_status
        seen[st] = seen.get(st, 0) + 1
        w = m.registers.whole[0]
        if st == "foreign":  # sectors left unerased: refused again, nothing invented
            assert w == 0 and m.storage.fault == storage.FAULT_FOREIGN, (k, w)
        else:  # erased completely: the registers of the format's commit, or none
            assert st in ("ok", "blank", "corrupt") and w in (0, 4321), (k, st, w)
            assert w == 4321 or st != "ok" or m.storage.journal.seq == 0, (k, st)
        m.registers.whole[0] = max(w, 4321)
        if st == "foreign":  # the operator repeats the command: it completes
            assert _data(m).executor("C.91.8", "", False) is None, k
            assert _meter(b).registers.whole[0] == 4321, k
    assert k > 32 and seen.get("foreign", 0) >= 16, (k, seen)


def test_cut_at_every_flash_op_of_the_recovery_rewrite():
    board = _board()
    m = _meter(board)
    for _i in range(40):
        m.registers.whole[0] += 100
        m.storage.commit(journal.REASON_PERIODIC)
    want = m.registers.whole[0]
    _flip_newest_header(board, bit=3)
    base = bytes(board.nor.image)

    def boot(b, k):
        b.nor.cut_at_op(k)
        _meter(b)

    k = 0
    while True:
        k += 1
        cut, b = _cut_run(base, k, boot)
        if not cut:
            break
        m = _meter(b)
        assert m.registers.whole[0] == want, "cut %d: %d != %d" % (k, m.registers.whole[0], want)
        assert m.storage_status == "ok", (k, m.storage_status)
        m.registers.whole[0] += 1
        assert m.storage.commit(journal.REASON_POWERFAIL), k
        assert _meter(b).registers.whole[0] == want + 1, k
    assert k > 3, "the boot did flash work to cut: %d ops" % k


class _Stop(Exception):
    pass


class _WrapClock:
    """A real port's clock: ticks_ms wraps at 2**30 ms (MicroPython TICKS_PERIOD)."""

    PERIOD = 1 << 30

    def __init__(self, now, limit, registers):
        self.now = now
        self.limit = limit
        self.registers = registers

    def ticks_ms(self):
        return self.now % self.PERIOD

    def ticks_diff(self, a, b):
        d = (a - b) % self.PERIOD
        return d - self.PERIOD if d >= self.PERIOD // 2 else d

    def ticks_add(self, a, b):
        return (a + b) % self.PERIOD

    def time(self):
        return 800000000 + self.now // 1000

    async def sleep_ms(self, ms):
        self.now += ms
        self.registers.whole[0] += 1  # 3.6 kW of load: 1 Wh per second
        if self.now >= self.limit:
            raise _Stop()


def test_periodic_commits_go_on_across_the_ticks_ms_wrap():
    from boards.sim.norflash import NORFlash
    from energy import Registers

    from tasks.storage import commits

    class _M:
        pass

    regs = Registers(25600, 25600, 25600)
    start = (1 << 30) - 400 * 1000  # 400 s before ticks_ms wraps (12.4 days after reset)
    clock = _WrapClock(start, start + 2400 * 1000, regs)
    metering = _M()
    metering.steps = 0
    dev = NORFlash(16 * 4096)
    s = storage.Storage(Partition(dev, 0, dev.size), regs, metering, clock,
                        events.EventLog(clock))
    s.restore()
    co = commits(s)
    try:
        co.send(None)
    except _Stop:
        pass
    # the 200 Wh trigger fires every 200 s, before and after the wrap
    assert s.commits >= 11, "commits in 2400 s: %d" % s.commits
    j = journal.Journal(Partition(dev, 0, dev.size), PAYLOAD, schema=storage.SCHEMA)
    got = struct.unpack_from("<I", j.recover(), 12)[0]
    assert regs.whole[0] - got <= 200, "unsaved energy bounded: %d Wh" % (
        regs.whole[0] - got)


def test_a_flash_failure_during_the_sealed_format_keeps_the_journal_refused():
    from iec62056.session import ER_FAILED

    board = _board()
    _foreign(board, n=16 * 31)
    m = _meter(board)
    f = _Failing(_jpart(board))
    s = _storage(m, f)
    assert s.restore() == "foreign"
    erases = [0]
    real_erase = f.erase

    def erase(a):
        erases[0] += 1
        if erases[0] == 5:
            raise OSError(5)
        real_erase(a)

    f.erase = erase
    assert _data(m).executor("C.91.8", "", False) == ER_FAILED
    assert s.journal.blocked and s.fault == storage.FAULT_FOREIGN, s.fault
    assert m.storage_status == "foreign" and m.log.count(events.STORAGE_WRITE_FAILED) == 1
    m.registers.whole[0] = 77
    assert _data(m).executor("C.91.8", "", False) is None, "repeated: it completes"
    assert _meter(board).registers.whole[0] == 77
