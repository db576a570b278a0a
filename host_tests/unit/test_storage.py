# firmware/meter/storage.py on the virtual board in process: the power-fail commit at the
# 31-bit limit, recovery from a damaged journal sector, foreign journals and the sealed format
# (C.91.8), the versioned record (schema 2: register banks) and its migrations.
import binascii
import struct

import events
from boards.sim.board import Options, SimBoard
from flashstore import journal
from flashstore.worn import position
from flashstore.flash import Partition
from meter import storage
from meter.status import ERR_STORAGE
from simkit import StepTrace

JOURNAL = 64 * 1024  # the virtual board's journal partition: offset 0, 64 KiB
EVENTS = (72 * 1024, 32 * 1024)
NEAR = (1 << 30) - 1  # the largest small int on a 32-bit port
# the app's layout: the totals + 6 tariff banks of A+/A- (issue 10, meter/tariffs.py): 172 bytes
PAYLOAD = storage.payload_size(20)
ZERO = storage.convert(0, 0, [0] * 8, [0] * 8, 0, 0, 6, 2)  # a record of that layout


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


USED = 128 * 1024  # the partitions these tests write: journal, config, events


def _snapshot(board):
    """A copy of the first USED bytes of the board's flash (the rest stays blank here), as a
    NOR model: out of the heap on the emulated cores, where a bytes copy would not fit beside
    the meter, and small enough that the 2 MiB arena there holds it beside two boards."""
    from boards.sim.norflash import NORFlash

    snap = NORFlash(USED, board.nor.sector_size, board.nor.page_size)
    snap.image[:] = memoryview(board.nor.image)[0:USED]
    return snap


def _same_journal(board, snap):
    return memoryview(board.nor.image)[0:JOURNAL] == memoryview(snap.image)[0:JOURNAL]


def _data(m):
    return m.iec_map()


def _storage(m, part):
    """A Storage of meter ``m`` on ``part`` (in place of the meter's own)."""
    s = storage.Storage(part, m.registers, m.metering, m.board.clock, m.log)
    m.storage = m.status.storage = m.catalogue.storage = s
    return s


def _persisted_codes(board):
    # the set of event codes in the board's persisted logs, decoded by the event store a
    # meter opens at boot (alone: a whole second meter does not fit a device heap beside
    # the test's; read record by record into a set: a list of every decoded record is
    # ~40 KB there, and even a list of their codes, 4 KB in one block, found no room in a
    # full MPS2 run)
    from meter.eventstore import EventStore

    es = EventStore(board.partitions["events"], events.EventLog(board.clock), board.clock)
    out = set()
    for d in es.iter_persisted():
        out.add(d[1])
    return out


def _crc(board, span):
    """CRC-32 of the board's flash ``span`` (offset, length), read in place."""
    return binascii.crc32(memoryview(board.nor.image)[span[0]:span[0] + span[1]])


def _rewrite_seq(part, j, seq):
    """Give the newest record of journal ``j`` sequence number ``seq`` (CRC recomputed)."""
    import binascii

    s, slot, _n = position(j)
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
    want = struct.pack("<BBHHHHH20I20I", 6, 2, 0, t & 0xFFFF, t >> 16, st & 0xFFFF, st >> 16,
                       *(r.whole + r.res))
    assert bytes(s.payload()) == want, "payload layout (module docstring)"
    assert storage.SCHEMA == 2 and len(want) == PAYLOAD == 172


def test_power_fail_path_packs_and_stores_only_small_ints():
    from flashstore import ringlog
    import smallint

    board = _board(start=(1 << 31) + 12345)
    part = _jpart(board)
    j = journal.Journal(part, PAYLOAD, schema=storage.SCHEMA)
    j.recover()
    j.maintain()
    j.commit(ZERO)
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
        from boards.sim.norflash import NORFlash

        # the image of a NOR model: outside the heap on the emulated cores (tools/emu)
        self._nor = NORFlash(blocks * bs, bs)
        self.img = self._nor.image
        self.bs = bs
        self.blocks = blocks

    def readblocks(self, block, buf, offset=0):
        a = block * self.bs + offset
        if len(buf) <= 16:  # (a commit's read-back, on the power-fail path: no slice)
            for i in range(len(buf)):
                buf[i] = self.img[a + i]
            return
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
    import smallint

    from flashstore.flash import BlockDeviceFlash

    board = _board()
    m = _meter(board)
    _near_limit(m)
    for part in (Partition(board.nor, 0, JOURNAL),
                 Partition(BlockDeviceFlash(_RawBdev(16, 4096)), 0, JOURNAL)):
        j = journal.Journal(part, PAYLOAD, schema=storage.SCHEMA)
        j.recover()
        j.maintain()
        j.commit(ZERO)
        _rewrite_seq(part, j, (1 << 30) - 2)
        s = _storage(m, part)
        s.restore()
        _near_limit(m)
        s.commit(journal.REASON_POWERFAIL)
        oks = [False] * 4

        def urgent(s=s, oks=oks):
            micropython.heap_lock()
            try:
                for i in range(4):
                    m.registers.whole[1] += 1
                    oks[i] = s.commit(journal.REASON_POWERFAIL)
            finally:
                micropython.heap_unlock()

        built = smallint.slices(urgent)  # CPython: a slice is a heap object on MP < 1.26
        assert not built, "slices built on the power-fail path: %r" % built
        assert oks == [True] * 4, oks
        k = journal.Journal(part, PAYLOAD, schema=storage.SCHEMA)
        p = k.recover()
        assert k.seq == (1 << 30) + 3 and struct.unpack_from("<I", p, 16)[0] == NEAR - 13, (
            k.seq)


def _flip_newest_header(board, bit=0):
    k = journal.Journal(_jpart(board), PAYLOAD, schema=storage.SCHEMA)
    k.recover()
    head = position(k)[0]
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
    m = None  # one meter at a time (a device-sized heap, tools/emu)
    m2 = _meter(board)
    assert (m2.registers.whole[0], m2.registers.whole[2]) == want, "not rolled back"
    assert m2.storage_status == "ok" and m2.storage.fault is None, m2.storage_status
    assert m2.log.count(events.STORAGE_RECOVERED) == 1, m2.log.entries()
    assert events.STORAGE_RECOVERED in _persisted_codes(board), "in the persisted event log"
    k = journal.Journal(_jpart(board), PAYLOAD, schema=storage.SCHEMA)
    k.recover()
    assert not k.newest_damaged and k.found_reason == journal.REASON_REWRITE, k._summary()
    assert position(k)[0] != head, "the rewrite lies in another, good sector"
    m2 = k = None
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
    image = _snapshot(board)
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
    assert s.refused == 3 and _same_journal(board, image), "no write, no erase"
    d = _data(m)
    assert d.executor("C.91.8", "", True) == ER_SEALED and _same_journal(board, image), "sealed"
    m2 = _meter(board)  # a reboot changes nothing either
    assert m2.storage_status == "foreign" and _same_journal(board, image)
    m2.registers.whole[0] = 1234
    assert _data(m2).executor("C.91.8", "", False) is None, "seal open: formatted"
    assert m2.storage.fault is None and not m2.status.error_flags() & ERR_STORAGE
    assert m2.storage_status == "ok" and m2.log.count(events.STORAGE_FORMATTED) == 1
    assert _data(m2).executor("C.91.8", "", False) == ER_NOT_WRITABLE, "only a foreign journal"
    m2 = None  # one meter at a time (a device-sized heap, tools/emu)
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
    assert m.registers.whole[:8] == [300 + r for r in range(8)], m.registers.whole
    assert m.registers.res[:8] == [30 + r for r in range(8)], m.registers.res
    # the energy before the tariff banks existed is tariff 1's (meter/tariffs.reconcile)
    assert m.registers.milli(0x10) == m.registers.milli(0), "1.8.1 == 1.8.0"
    assert m.registers.milli(0x11) == m.registers.milli(1), "2.8.1 == 2.8.0"
    ev = [e for e in m.log.entries() if e[1] == events.STORAGE_MIGRATED]
    assert len(ev) == 1 and ev[0][2] == 1, ev
    k = journal.Journal(_jpart(board), PAYLOAD, schema=storage.SCHEMA)  # no conversion now
    p = k.recover()
    assert p is not None and k.status == journal.STATUS_OK, k.status
    assert k.found_reason == journal.REASON_REWRITE and k.found_schema == storage.SCHEMA
    n, w, whole, res, t, steps = storage.unpack(p)
    assert (n, w) == (6, 2) and whole == m.registers.whole and res == m.registers.res, (n, w)
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
    # the app's layout has 6 tariff banks (bank 1 holds the migrated totals): the 3 kept
    assert regs.whole[:8] == [300 + r for r in range(8)], regs.whole
    assert regs.whole[8:] == m.registers.whole[8:14], (regs.whole, m.registers.whole)
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


def test_a_layout_of_the_same_size_is_converted_not_loaded_by_position():
    # 3 banks of A+/A- and 1 bank with the quadrants are both 14 registers (a 124-byte
    # record): the journal cannot tell them apart by size, so the record's own (n, w) decides;
    # loaded by position, tariff 2's A+ became tariff 1's Q1 (a register invented)
    from energy import Registers

    board = _board()
    _schema_1(board)
    m = _meter(board)
    lpw = m.registers._div[0]
    regs = Registers(lpw, lpw, lpw, tariffs=3, tariff_width=2)
    s = storage.Storage(_jpart(board), regs, m.metering, board.clock, m.log)
    assert s.restore() == "ok"
    for t in (1, 2, 3):
        regs.add_tariff(t, 1000000 * t, 0, 1000000 * t)
    t1 = regs.whole[regs.base(1)]  # (with the migrated totals: tariff 1 had them)
    assert regs.whole[regs.base(2)] > 0 and t1 > 0 and s.commit(journal.REASON_PERIODIC)
    quad = Registers(lpw, lpw, lpw, tariffs=1, tariff_width=6)
    s2 = storage.Storage(_jpart(board), quad, m.metering, board.clock, m.log)
    assert s2.payload_size == s.payload_size
    n0 = m.log.count(events.STORAGE_MIGRATED)
    assert s2.restore() == "ok"
    assert quad.whole[:8] == regs.whole[:8], "totals kept"
    b = quad.base(1)
    assert quad.whole[b:b + 2] == regs.whole[regs.base(1):regs.base(1) + 2], "A+/A- of T1"
    assert quad.whole[b + 2:b + 6] == [0, 0, 0, 0], quad.whole  # new quadrant registers
    assert m.log.count(events.STORAGE_MIGRATED) == n0 + 1, "a layout change is logged"
    k = journal.Journal(_jpart(board), s.payload_size, schema=storage.SCHEMA)
    n, w = storage.unpack(k.recover())[:2]
    assert (n, w) == (1, 6), "rewritten in the new layout"


def test_a_record_whose_header_contradicts_its_length_is_foreign_not_a_crash():
    # a CRC-valid schema-2 record of our size whose (n, w) names another register count
    # (another firmware's record): the boot raised ValueError, so the meter never started
    board = _board()
    j = journal.Journal(_jpart(board), PAYLOAD, schema=storage.SCHEMA)
    j.recover()
    j.maintain()
    p = bytearray(PAYLOAD)
    struct.pack_into("<BB", p, 0, 1, 1)  # 9 registers in a 76-byte (8-register) record
    j.commit(bytes(p))
    m = _meter(board)
    assert m.storage_status == journal.STATUS_FOREIGN, m.storage_status
    assert m.status.error_flags() & ERR_STORAGE
    assert [e for e in m.log.entries() if e[1] == events.STORAGE_FOREIGN]
    assert m.storage.journal.blocked, "nothing written over it until the sealed C.91.8"


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
    # the first virtual board's 128 KiB chip: its partitions keep their place on today's
    assert size == 128 * 1024 <= len(board.nor.image) and ss == 4096
    o = 10
    while o < len(blob):
        sec = struct.unpack_from("<H", blob, o)[0]
        board.nor.image[sec * ss:(sec + 1) * ss] = blob[o + 2:o + 2 + ss]
        o += 2 + ss
    newest = journal.Journal(_jpart(board), 76, schema=1).recover()
    old = struct.unpack("<8I8IIII", newest)
    m = _meter(board)
    assert m.storage_status == "ok" and m.storage.journal.found_schema == 1
    assert m.registers.whole[:8] == list(old[:8]) and m.registers.res[:8] == list(old[8:16])
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


def _cut_run(base, k, action):
    """Fresh board holding the image of ``base`` (a :func:`_snapshot`); cut at the k-th flash
    op of ``action(board)``; returns (cut happened, board)."""
    board = _board()
    board.nor.image[0:USED] = base.image

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
    base = _snapshot(board)
    board = None  # one board and meter at a time (a device-sized heap holds ~2)

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
            m = None
            assert _meter(b).registers.whole[0] == 4321, k
        m = b = None
    assert k > 32 and seen.get("foreign", 0) >= 16, (k, seen)


def test_cut_at_every_flash_op_of_the_recovery_rewrite():
    board = _board()
    m = _meter(board)
    for _i in range(40):
        m.registers.whole[0] += 100
        m.storage.commit(journal.REASON_PERIODIC)
    want = m.registers.whole[0]
    _flip_newest_header(board, bit=3)
    base = _snapshot(board)
    board = m = None  # one board and meter at a time (a device-sized heap holds ~2)

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
        m = None
        assert _meter(b).registers.whole[0] == want + 1, k
        b = None
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


async def test_periodic_commits_go_on_across_the_ticks_ms_wrap():
    import asyncio

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
    task = asyncio.create_task(commits(s))  # woken by the step when a commit is due
    await asyncio.sleep_ms(0)
    while True:
        try:
            await clock.sleep_ms(1000)  # one metering period: 1 Wh
        except _Stop:
            break
        s.interval(0, 0, 0, 1000)  # the step's storage consumer
        await asyncio.sleep_ms(0)
        await asyncio.sleep_ms(0)
    task.cancel()
    # the 200 Wh trigger fires every 200 s, before and after the wrap
    assert s.commits >= 11, "commits in 2400 s: %d" % s.commits
    j = journal.Journal(Partition(dev, 0, dev.size), storage.payload_size(8),
                        schema=storage.SCHEMA)
    got = struct.unpack_from("<I", j.recover(), 12)[0]
    assert regs.whole[0] - got <= 200, "unsaved energy bounded: %d Wh" % (
        regs.whole[0] - got)


def test_the_step_wakes_the_storage_task_only_when_a_commit_is_due():
    # issue 12: the storage task woke every second only to ask the commit policy; the step
    # (Storage.interval) asks it now and calls on_due (the task's wake-up) only when due
    from boards.sim.norflash import NORFlash
    from energy import Registers
    from flashstore.journal import REASON_PERIODIC

    class _M:
        steps = 0

    regs = Registers(25600, 25600, 25600)
    clock = _WrapClock(10 ** 6, 10 ** 9, regs)
    dev = NORFlash(16 * 4096)
    s = storage.Storage(Partition(dev, 0, dev.size), regs, _M(), clock, events.EventLog(clock))
    s.restore()
    calls = []

    def due():
        calls.append(clock.now)
        s.commit(REASON_PERIODIC)  # what the woken task does

    s.on_due = due
    for _ in range(1000):  # 1000 s of 3.6 kW: 1 Wh a second
        clock.now += 1000
        regs.whole[0] += 1
        s.interval(0, 0, 0, 1000)
    # a blank journal commits at once, then the 200 Wh trigger every 200 s
    assert 5 <= len(calls) <= 6 and s.commits == len(calls), calls
    gaps = [calls[i + 1] - calls[i] for i in range(1, len(calls) - 1)]
    assert gaps == [200000] * (len(calls) - 2), calls


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


def test_journal_format_is_audited_with_its_port():
    # E2 C.91.8 (format a foreign journal: its records are gone for good) was logged only
    # in the standard log, without the port that ordered it; the cold start (C.91.9) and
    # every other change are security-log records with the port and the address
    board = _board()
    _foreign(board)
    m = _meter(board)
    d = _data(m)
    assert d.executor("C.91.8", "", False, events.SRC_RS485) is None
    sec = [e for e in m.events.persisted(events.LOG_SECURITY) if e[4] == "C.91.8"]
    assert sec and sec[-1][1] == events.PARAM_CHANGED and sec[-1][3] == events.SRC_RS485, sec


def test_cold_start_that_cannot_be_committed_is_not_acknowledged():
    # E2 C.91.9 zeroed the RAM registers and answered ACK even when the commit failed: the
    # next restart brought the old registers back, silently undoing an acknowledged command
    # (the cold start is a request the metering task executes: the port's ACK waits for a
    # probe commit, which fails here)
    from iec62056.session import ER_FAILED

    board = _board()
    m = _meter(board)
    m.registers.whole[0] = 777
    m.storage.commit(journal.REASON_PERIODIC)

    def broken(*_a, **_k):
        raise OSError(5)

    m.storage.journal.commit = broken
    assert _data(m).executor("C.91.9", "", False) == ER_FAILED
    assert m.log.count(events.STORAGE_WRITE_FAILED) == 1


def test_a_power_up_writes_no_record_of_what_the_journal_already_holds():
    # each power-up committed the registers it had just restored (the commit policy had no
    # "last commit" yet), so a flickering supply cost two journal records per cycle: that
    # copy and the power-fail commit (issue 7 assessment: wear over 20 years)
    board = _board()
    m = _meter(board)
    m.registers.whole[0] = 4321
    m.shutdown()
    m2 = _meter(board)
    s = m2.storage
    assert m2.registers.whole[0] == 4321
    s.tick()
    assert not s.policy.due(s.mono_s + 1, journal.REASON_PERIODIC, s.unsaved_wh()), \
        "nothing new to commit one second after the power-up"
    assert s.policy.due(s.mono_s + 300, journal.REASON_PERIODIC, 1), "the period still runs"
# ---- the power-fail warning, end to end (issue 7 item 7; adversarial review) ----------------


def _tmp_image(name):
    import os

    d = "/tmp/omf_test_storage"
    try:
        os.mkdir(d)
    except OSError:
        pass
    p = d + "/" + name
    for q in (p, p + ".rtc", p + ".rtc.tmp"):
        try:
            os.remove(q)
        except OSError:
            pass
    return p


def _chip_up(m, table):
    # the meter's driver on a fixed register table (allocation-free, test_metering._Bus)
    # instead of the model (whose Python arithmetic allocates): metering up and trusted
    from test_metering import _Bus

    t = {0x102: 0x0004, 0x004: 0x40}
    t.update(table)
    m.ade._spi = _Bus(t)
    mt = m.metering
    mt.up = True
    mt.ok = True
    mt._last_ms = m.board.clock.ticks_ms()


def test_power_fail_warning_path_allocates_nothing_through_the_virtual_board():
    # Storage.power_fail_commit as the warning runs it: the partial interval read and
    # registered, then the urgent commit, through the virtual board's flash (its cut guard
    # saves the battery-backed RTC's state file and imported PowerCut on every program: both
    # allocate), with the RTC, the journal's sequence number and the registers past 2**30 /
    # at the limit. (The NOR model's own file backing, --flash PATH, allocates: RAM here.)
    import micropython
    import smallint

    from boards.sim import rtc

    o = Options()
    o.quiet = True
    o.speed = 0
    o.start = (1 << 31) + 12345
    board = SimBoard(o, trace=StepTrace([(0, 1000000, 0)]))
    board.rtc_file = rtc.RtcFile(_tmp_image("pf.img"), board.clock)
    part = Partition(board.flash, 0, JOURNAL)
    j = journal.Journal(part, PAYLOAD, schema=storage.SCHEMA)
    j.recover()
    j.maintain()
    j.commit(ZERO)
    _rewrite_seq(part, j, (1 << 30) - 2)
    m = _meter(board)
    _near_limit(m)
    _chip_up(m, {0x21E: 0x100, 0x220: 0x80, 0x222: 0x180})
    s = m.storage
    s.stamp()
    m.supply.warning = True  # as power_fail_begin sets it (the billing consumers read it)
    oks = []
    for _i in range(3):
        board.clock._now += 700
        before = m.registers.whole[0], m.registers.res[0]

        def urgent():
            micropython.heap_lock()
            try:
                return s.power_fail_commit()
            finally:
                micropython.heap_unlock()

        # the 64-bit host computes a long int without a sound: CPython traces the locals
        # (the step count past 2^30 was one; the emulated cores raise MemoryError)
        bad = smallint.long_locals(lambda: oks.append(urgent()))
        assert not bad, "long ints on the power-fail path: %r" % bad[:3]
        assert (m.registers.whole[0], m.registers.res[0]) != before, "the interval registered"
    assert oks == [True] * 3, oks
    k = journal.Journal(Partition(board.nor, 0, JOURNAL), PAYLOAD, schema=storage.SCHEMA)
    p = k.recover()
    assert k.seq == (1 << 30) + 1, k.seq
    assert list(struct.unpack_from("<20I", p, 12)) == m.registers.whole, "flash holds RAM"
    assert board.rtc_file.saves > 0, "the RTC state is saved outside a locked heap"


def _wrap_to_sector_end(ring):
    # wrap the log, then stop at the end of a sector: the next append moves into the
    # prepared sector, and an ordinary append would then erase the (used) one after it
    rec = bytearray(events.RECORD_SIZE)
    n = 0
    while n < 2 * ring.capacity or position(ring)[1] < ring.slots_per_sector:
        ring.append(events.encode_record(rec, 1, events.NO_LOAD_START, n, 0, b"\xff" * 6),
                    events.FORMAT)
        n += 1


async def test_power_fail_warning_erases_nothing():
    # the POWER_FAIL event (and any other logged during the hold-up time) was an ordinary
    # ring append, which erases the next events sector when it starts a new one (up to
    # 400 ms: longer than a 100 ms hold-up); a configuration change waiting for its write
    # erased a config sector too
    board = _board()
    m = _meter(board)
    import asyncio

    from tasks.storage import power_fail_watch

    for r in m.events.rings:
        _wrap_to_sector_end(r)
    st = m.settings
    st.set("scroll_ms", 7000)
    now = 3600  # the configuration write is due
    erases = sum(board.nor.erase_counts)
    task = asyncio.create_task(power_fail_watch(m.storage, board, m.log, m.events,
                                                m.led.flush))
    await asyncio.sleep_ms(0)
    board.power_fail.set_input(1)  # the supply fails: the warning
    for _ in range(5):
        await asyncio.sleep_ms(0)
    task.cancel()
    assert m.supply.warning and m.storage.powerfail_commits == 1
    assert not st.tick(now)
    assert not st.tick(now, force=True)
    m.log.log(events.METROLOGY_OK)
    m.log.log(events.PARAM_CHANGED, 1, None, events.SRC_OPTICAL, "0.3.0")  # security log
    m.events.tick(force=True)
    assert sum(board.nor.erase_counts) == erases, "an erase during the power-fail warning"
    codes = _persisted_codes(board)
    assert events.POWER_FAIL in codes and events.PARAM_CHANGED in codes, sorted(codes)
    board.power_fail.set_input(0)  # a brown-out: the supply came back
    assert not m.storage.pf_active() and not m.supply.warning
    assert st.tick(now + 1), "the held-back configuration write is made after the warning"


async def test_power_fail_warning_commits_every_interval_and_shows_every_pulse():
    # a step boundary inside the hold-up time: the interval reached the registers after the
    # urgent commit and was lost with the supply (the report said 280.441 Wh, the flash held
    # 280.302), and the LED still owed the pulses of a spread schedule (276 of 279 flashed)
    import asyncio

    board = _board()  # 1 kW: a pulse every 3.6 s; 10 kW below
    board.trace = board.ade._trace = StepTrace([(0, 10000000, 3000000)])
    m = _meter(board)
    clock = board.clock
    seen = {}

    async def brown_out():
        await clock.sleep_ms(100950)
        erases = sum(board.nor.erase_counts)
        board.power_fail.set_input(1)
        for i in range(4):  # the warning lasts 6.2 s (a brown-out, below PF_MAX_MS)
            await clock.sleep_ms(1000 if i else 100)
            k = journal.Journal(_jpart(board), PAYLOAD, schema=storage.SCHEMA)
            p = k.recover()
            assert list(struct.unpack_from("<20I", p, 12)) == m.registers.whole, (
                "flash holds what RAM holds during the warning", i)
            assert board.led_kwh.rises == m.output.pulse.total, (
                i, board.led_kwh.rises, m.output.pulse.total)
        await clock.sleep_ms(3100)
        seen["erases"] = sum(board.nor.erase_counts) - erases
        seen["pf"] = m.storage.powerfail_commits
        seen["t"] = clock.ticks_ms()
        board.power_fail.set_input(0)
        await clock.sleep_ms(2000)
        seen["after"] = m.supply.warning

    tasks = board.tasks
    board.tasks = lambda meter: tasks(meter) + [asyncio.create_task(brown_out())]
    board.opts.commit_s = m.storage.policy.period_s = 1  # periodic commits due all the time
    await m.main(120000)
    assert seen["erases"] == 0, seen
    assert seen["pf"] == 8, seen  # the urgent commit at 100.95 s, then 101 .. 107 s
    assert seen["after"] is False, "the warning ended with the input"
    assert board.led_kwh.rises == m.output.pulse.total


def _foreign_event_logs(board):
    # the events partition as a firmware with another ring format left it: valid headers of
    # format 9 (e.g. a newer firmware's, before a downgrade)
    import binascii

    off, ln = EVENTS
    for s in range(ln // 4096):
        a = off + s * 4096
        h = struct.pack("<BBBBIHH", 0x53, 0x52, 9, 2, 1, 32, 0)
        board.nor.image[a:a + 16] = h + struct.pack("<I", binascii.crc32(h))


def test_foreign_event_logs_are_flagged_once_and_formatted_by_the_sealed_command():
    # an events partition of another format was write-protected (right) but silently: F.F.0
    # stayed 0, every event logged one more FLASH_CORRUPT in RAM, and nothing could format it
    from iec62056.session import ER_SEALED

    board = _board()
    _foreign_event_logs(board)
    image = _crc(board, EVENTS)  # (a copy of the partition is 32 KB of a device heap)
    m = _meter(board)
    for i in range(20):
        m.log.log(events.PARAM_CHANGED if i % 2 else events.METROLOGY_OK, i)
    assert m.log.count(events.FLASH_CORRUPT) == 1, m.log.entries()
    assert m.status.error_flags() & ERR_STORAGE, "F.F.0 shows the event logs' fault"
    assert m.storage_status == "blank" and m.events.blocked()
    assert _crc(board, EVENTS) == image, "not written"
    d = _data(m)
    assert d.executor("C.91.8", "", True) == ER_SEALED
    assert m.events.blocked()
    assert d.executor("C.91.8", "", False) is None, "seal open: formatted"
    assert not m.events.blocked() and m.events.fault is None
    assert not m.status.error_flags() & ERR_STORAGE, m.status.error_flags()
    m.log.log(events.SEAL_CLOSED, 77, None, events.SRC_LOCAL)  # the security log too
    got = [(d[1], d[2]) for d in _meter(board).events.persisted()]
    assert (events.STORAGE_FORMATTED, -2) in got and (events.SEAL_CLOSED, 77) in got, got


async def test_warnings_that_end_without_a_cut_get_their_erase_ahead_at_once():
    # a power-fail warning commits every interval urgently (no erase) for up to 10 s; one
    # that ends without a cut (a dip) left the journal's erase-ahead to the next periodic
    # commit, 300 s later: three dips in that time used up the prepared slots and the next
    # urgent commit (a real cut's) found none (NoSpace: the energy since the last commit
    # lost). The step now wakes the storage task when a warning has ended with the
    # erase-ahead owed.
    import asyncio

    from boards.sim.norflash import NORFlash
    from energy import Registers
    from meter.supply import Supply

    from tasks.storage import commits

    class _M:
        steps = 0

        def finish(self, cb):
            cb()

    class _Pin:
        v = 0

        def value(self):
            return self.v

    regs = Registers(25600, 25600, 25600)
    clock = _WrapClock(10 ** 6, 10 ** 9, regs)
    dev = NORFlash(16 * 4096)
    sp = Supply()
    s = storage.Storage(Partition(dev, 0, dev.size), regs, _M(), clock,
                        events.EventLog(clock), supply=sp)
    pin = s.power_fail = _Pin()
    s.restore()
    task = asyncio.create_task(commits(s))
    await asyncio.sleep_ms(0)
    ready = s.journal.ready_slots()
    low = ready

    async def second():
        clock.now += 1000
        regs.whole[0] += 1
        s.interval(0, 0, 0, 1000)  # the step's storage consumer
        for _ in range(3):
            await asyncio.sleep_ms(0)

    for _dip in range(6):  # a dip every 30 s, each a 10-s warning that ends without a cut
        pin.v = 1
        assert s.power_fail_begin()
        for _ in range(9):
            await second()
        low = min(low, s.journal.ready_slots())
        pin.v = 0
        for _ in range(21):
            await second()
    pin.v = 1  # then a real cut: its urgent commit finds a prepared slot
    ok = s.power_fail_begin()
    task.cancel()
    assert ok and s.write_errors == 0, (s.write_errors, s.last_text)
    assert low >= ready - 10, (low, ready)  # each dip's erase-ahead done before the next
