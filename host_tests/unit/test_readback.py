# The register journal reads back what it programs (lib/flashstore/ringlog.py
# SectorRing._reads_back, on for the journal only): worn or faulty NOR cells leave a
# program undone without a word (the W25Q16JV's status registers have no program-fail bit),
# modelled at the board boundary by boards/sim/norflash.NORFlash.wear_out. Before, the
# journal counted such a record as committed: nothing was flagged until a restart fell back
# to the last record that took, and the energy since was lost (the power-fail commit too).
import binascii
import struct

from boards.sim.norflash import NORFlash, PowerCut
from flashstore.flash import Partition
from flashstore.worn import position
from flashstore.journal import (
    REASON_PERIODIC,
    REASON_POWERFAIL,
    STATUS_OK,
    Journal,
    StorageError,
)

_P = 24


def _enc(i):
    return struct.pack("<QQQ", i, 2 * i, 3 * i)


def _dec(b):
    return None if b is None else struct.unpack("<QQQ", b)[0]


def _dev(sectors=4, ss=1024, seed=0):
    dev = NORFlash(sectors * ss, sector_size=ss, page_size=256, seed=seed, strict=True)
    return dev, Partition(dev, 0, dev.size)


def _journal(part):
    j = Journal(part, _P)
    j.recover()
    j.maintain()
    return j


def _next_slot(j):
    """Partition address of the slot the next record goes to (head full: the next sector's
    first)."""
    s, slot, _n = position(j)
    if slot >= j.slots_per_sector:
        s = (s + 1) % j.sectors
        slot = 1
    return s * j.sector_size + slot * j.slot_size


def _raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return True
    return False


def _recovered(part):
    k = Journal(part, _P)
    return _dec(k.recover()), k


def test_a_record_that_did_not_take_is_written_again_in_the_next_slot():
    dev, part = _dev()
    j = _journal(part)
    for i in range(1, 4):
        j.commit(_enc(i))
    a = _next_slot(j)
    dev.wear_out(a + 16 + 4, 1, 0x01)  # one bit of the payload (0 in _enc(4)) stays 1
    p0 = dev.programs
    seq = j.commit(_enc(4))
    got, k = _recovered(part)
    assert got == 4, "the commit is on the flash: %r" % got
    assert seq == 5 and k.seq == 5, "written again as a new record: %r %r" % (seq, k.seq)
    assert dev.programs == p0 + 2, "one more page program"
    assert j.bad_writes == 1 and j.bad_at == a, (j.bad_writes, j.bad_at)
    assert k.torn + k.corrupt == 1, "the slot that did not take fails its CRC"
    assert j.commit(_enc(5)) == 6 and _recovered(part)[0] == 5, "and the journal goes on"


def test_the_power_fail_commit_tries_once_more_and_allocates_nothing():
    import micropython

    dev, part = _dev()
    j = _journal(part)
    j.commit(_enc(1))
    dev.wear_out(_next_slot(j), 16)  # the next slot's header cells: nothing of it takes
    p = _enc(2)

    def urgent():
        micropython.heap_lock()
        try:
            j.commit(p, REASON_POWERFAIL, True)
        finally:
            micropython.heap_unlock()

    p0 = dev.programs
    urgent()  # (MemoryError if the read-back or the retry allocated)
    assert dev.programs == p0 + 2 and _recovered(part)[0] == 2, "retried once: taken"
    # two slots that do not take: one retry only (the supply is going), then StorageError;
    # the record that took before is the one recovered
    dev.wear_out(_next_slot(j), 2 * j.slot_size)
    p0 = dev.programs
    assert _raises(StorageError, j.commit, _enc(3), REASON_POWERFAIL, True)
    assert dev.programs == p0 + 2, "two programs at most: %d" % (dev.programs - p0)
    assert _recovered(part)[0] == 2
    # a periodic commit tries three times (two retries)
    dev.wear_out(_next_slot(j), 2 * j.slot_size)
    p0 = dev.programs
    assert j.commit(_enc(4)) is not None and dev.programs == p0 + 3
    assert _recovered(part)[0] == 4


def test_a_chip_where_every_write_fails_keeps_the_last_record_that_took():
    # Every program fails from some day on. The head goes on through the ring (a slot per
    # attempt, every sector erased in turn) but never erases the sector of the last record
    # that took; before, each commit passed for taken and the ring erased that sector once
    # round: the restart found no record (registers from zero).
    dev, part = _dev()
    j = _journal(part)
    for i in range(1, 6):
        j.commit(_enc(i))
    dev.wear_out(0, dev.size)
    failed = 0
    for i in range(6, 6 + 3 * j.sectors * j.slots_per_sector):
        for urgent in (False, True):
            try:
                j.commit(_enc(i), REASON_POWERFAIL if urgent else REASON_PERIODIC, urgent)
            except StorageError:  # (NoSpace too)
                failed += 1
        try:
            j.maintain()
        except StorageError:
            pass
    got, k = _recovered(part)
    assert got == 5 and k.status == STATUS_OK, "the last record that took: %r" % got
    assert failed == 2 * 3 * j.sectors * j.slots_per_sector, "no commit passed for taken"
    # the cells heal (or the chip is replaced with its image): after a restart the journal
    # goes on after the last record that took
    dev.worn = []
    k = _journal(part)
    assert k.commit(_enc(100)) is not None and _recovered(part)[0] == 100


def test_a_sector_whose_header_does_not_take_is_passed_over():
    dev, part = _dev()
    j = _journal(part)
    per = j.slots_per_sector - 1
    for i in range(1, per + 1):  # sector 0 full, sector 1 prepared by maintain()
        j.commit(_enc(i))
    dev.wear_out(2 * j.sector_size, 16)  # sector 2's header cells
    for i in range(per + 1, 3 * per + 1):  # through sector 1 and on
        j.commit(_enc(i))
        try:
            j.maintain()
        except StorageError:
            pass
    got, k = _recovered(part)
    assert got == 3 * per, got
    assert position(j)[0] == 3, "sector 2 passed over: %r" % (position(j),)
    # tried once: not erased again at each maintain() (a stall and wear for nothing)
    assert dev.erase_counts[2] == 0, dev.erase_counts  # (it was blank: a header program)
    for i in range(3 * per + 1, 5 * per + 1):  # round the ring again (4 sectors)
        j.commit(_enc(i))
        try:
            j.maintain()
        except StorageError:
            pass
    assert _recovered(part)[0] == 5 * per and dev.erase_counts[2] == 0, dev.erase_counts


def test_the_power_fail_commit_lands_past_a_worn_sector_ahead():
    # A sector ahead whose header did not take (WORN) stopped maintain(), and the urgent
    # append needs the next sector prepared: once periodic commits had filled the head, a
    # power-fail commit got NoSpace (up to one commit period of energy lost) until the
    # next periodic commit passed over the worn sector. Now maintain() prepares past it
    # and the appends pass over it.
    dev, part = _dev()
    j = _journal(part)
    per = j.slots_per_sector - 1
    dev.wear_out(2 * j.sector_size, 16)  # sector 2's header cells
    for i in range(1, 2 * per + 1):  # sectors 0 and 1 full; maintain() meets sector 2
        j.commit(_enc(i))
        try:
            j.maintain()
        except StorageError:
            pass
    assert not j.needs_maintenance(), "sector 3 prepared past the worn one"
    assert j.ready_slots() == j.slots_per_sector - 1, j.ready_slots()
    j.commit(_enc(999), REASON_POWERFAIL, True)  # (NoSpace before)
    assert position(j)[0] == 3, position(j)
    assert _recovered(part)[0] == 999
    j.commit(_enc(1000))
    j.maintain()
    assert _recovered(part)[0] == 1000 and dev.erase_counts[2] == 0, dev.erase_counts


def test_no_record_that_did_not_take_in_part_passes_its_crc():
    # A half-good record (the header took, part of the payload or CRC did not; or any
    # single cell of it) never reads as valid: the scan's check (CRC-32 over header and
    # payload, lib/flashstore/ringlog.py) rejects every such image.
    dev, part = _dev(sectors=2)
    j = _journal(part)
    a = _next_slot(j)
    j.commit(_enc(0x0123456789))
    n = 16 + _P
    good = bytearray(n)
    part.read(a, good)
    ssz = j.slot_size
    rec = bytearray(b"\xff" * ssz)
    assert j._check(memoryview(good), n) >= 0

    def bad(img):
        rec[0:n] = img
        return j._check(memoryview(rec), ssz) < 0

    for cut in range(n):  # the first ``cut`` bytes took, the rest stayed erased
        assert bad(good[0:cut] + b"\xff" * (n - cut)), "prefix %d" % cut
    for i in range(n):  # one cell that did not take: any bits of one byte stuck at 1
        zeros = ~good[i] & 0xFF
        m = zeros
        while m:
            img = bytearray(good)
            img[i] |= m
            assert bad(img), "byte %d mask %02x" % (i, m)
            m = (m - 1) & zeros
    crc = binascii.crc32(good[16:n], binascii.crc32(good[0:12]))
    assert crc == struct.unpack_from("<I", good, 12)[0]


def test_a_cut_during_the_retry_never_loses_or_invents_a_register():
    # The first program did not take and the power goes during the retry's program: the
    # restart finds the record before (or the retry's, had its program completed), never
    # anything else, and the journal goes on after it.
    for seed in range(12):
        dev, part = _dev(seed=seed)
        j = _journal(part)
        for i in range(1, 4):
            j.commit(_enc(i))
        dev.wear_out(_next_slot(j), 1, 0x80)  # the record's first magic byte
        dev.cut_at_op(2)  # the first program, then the retry's, cut
        assert _raises(PowerCut, j.commit, _enc(4), REASON_POWERFAIL, True)
        dev.power_on()
        got, k = _recovered(part)
        assert got in (3, 4), "seed %d: %r" % (seed, got)
        k.maintain()
        k.commit(_enc(5))
        assert _recovered(part)[0] == 5, "seed %d" % seed


def test_block_device_reads_inside_and_across_blocks():
    # BlockDeviceFlash.read: a read inside one block goes straight to readblocks (the
    # read-back's 16-byte pieces, allocation-free); one across blocks is split
    from flashstore.flash import BlockDeviceFlash

    dev = NORFlash(4 * 256, sector_size=256, page_size=64)
    for i in range(dev.size):
        dev.image[i] = (i * 7 + 3) & 0xFF
    f = BlockDeviceFlash(dev, page_size=64)
    for a, n in ((0, 16), (240, 16), (250, 12), (10, 700), (0, 1024), (255, 1)):
        b = bytearray(n)
        f.read(a, b)
        assert b == dev.image[a:a + n], (a, n)


def test_storage_flags_a_write_that_did_not_take_and_keeps_metering():
    # Storage (firmware/meter/storage.py) on the virtual board: a commit whose
    # first program did not take is committed by the retry, STORAGE_READBACK names the slot
    # (once per episode), F.F.0 shows ERR_STORAGE until 12 commits take at once. A chip
    # where every program fails: no commit is counted, STORAGE_WRITE_FAILED once, and a
    # restart gets the last registers that took, never fewer.
    import events
    from flashstore import journal
    from meter import storage
    from meter.status import ERR_STORAGE
    from test_storage import _board, _jpart, _meter

    board = _board()
    m = _meter(board)
    s = m.storage
    nor = board.nor
    j = s.journal
    m.registers.whole[0] = 1000
    assert s.commit(journal.REASON_PERIODIC)
    a = _next_slot(j)
    nor.wear_out(a + 16 + 12, 4)  # (partition 0 = chip 0) the first register's cells
    m.registers.whole[0] = 1001
    c0 = s.commits
    assert s.commit(journal.REASON_PERIODIC) and s.commits == c0 + 1
    assert m.log.count(events.STORAGE_READBACK) == 1, "logged"
    ev = [e for e in m.log.entries() if e[1] == events.STORAGE_READBACK][0]
    assert ev[2] == a, "the value names the slot: %r" % (ev,)
    assert s.fault == storage.FAULT_READBACK and m.status.error_flags() & ERR_STORAGE
    k = journal.Journal(_jpart(board), s.payload_size, schema=storage.SCHEMA)
    assert struct.unpack_from("<I", k.recover(), 12)[0] == 1001, "the retry holds it"
    for i in range(12):  # a run of clean commits ends it (12: firmware/meter/storage.py)
        assert s.fault == storage.FAULT_READBACK, i
        m.registers.whole[0] = 1002
        assert s.commit(journal.REASON_PERIODIC)
    assert s.fault is None, "a run of clean commits ends it"
    assert not m.status.error_flags() & ERR_STORAGE
    # every cell of the journal worn: nothing more is counted as committed
    nor.wear_out(0, 64 * 1024)
    for i in range(40):
        m.registers.whole[0] = 1003 + i
        assert not s.commit(journal.REASON_POWERFAIL if i % 2 else journal.REASON_PERIODIC)
        s.maintain()
    assert s.fault == storage.FAULT_WRITE and m.status.error_flags() & ERR_STORAGE
    assert m.log.count(events.STORAGE_WRITE_FAILED) == 1, "once per episode"
    assert m.log.count(events.STORAGE_READBACK) == 1
    m = None
    board.nor.worn = []  # (the restart reads; no more writes are tried here)
    m2 = _meter(board)
    assert m2.registers.whole[0] == 1002, "the last that took: %r" % m2.registers.whole[0]


def test_an_intermittent_chip_logs_one_readback_episode_not_a_flood():
    # A chip where every third slot does not take, for days: each third commit is written
    # again. Before, the episode ended at the next commit that took at once, so the event
    # was logged again at each third commit (a flood that washes the event log) and F.F.0
    # flickered. The episode now ends only after a run of clean commits
    # (12, firmware/meter/storage.py), i.e. when the writes work again.
    import events
    from flashstore import journal
    from meter import storage
    from meter.status import ERR_STORAGE
    from test_storage import _board, _meter

    board = _board()
    m = _meter(board)
    s = m.storage
    j = s.journal
    assert s.commit(journal.REASON_PERIODIC)
    a = _next_slot(j)
    for k in range(0, 60):  # every third slot ahead (sector headers included)
        board.nor.wear_out(a + 3 * k * j.slot_size + 16, 4)
    for i in range(60):
        m.registers.whole[0] = 2000 + i
        assert s.commit(journal.REASON_PERIODIC)
        s.maintain()
        assert s.fault == storage.FAULT_READBACK, "commit %d: %r" % (i, s.fault)
        assert m.status.error_flags() & ERR_STORAGE
    assert j.bad_writes >= 15, j.bad_writes
    assert m.log.count(events.STORAGE_READBACK) == 1, m.log.count(events.STORAGE_READBACK)
    board.nor.worn = []  # the writes work again: F.F.0 clears after a run of clean commits
    for i in range(12):  # (storage.Storage.__init__: _failing)
        assert s.fault == storage.FAULT_READBACK, i
        m.registers.whole[0] = 3000 + i
        assert s.commit(journal.REASON_PERIODIC)
    assert s.fault is None and not m.status.error_flags() & ERR_STORAGE
    board.nor.wear_out(_next_slot(j) + 16, 4)  # a new episode: logged again
    assert s.commit(journal.REASON_PERIODIC)
    assert m.log.count(events.STORAGE_READBACK) == 2


def test_a_two_sector_ring_keeps_a_second_copy_when_a_cell_decays_at_rest():
    # The STM32 boards' journal has 2 sectors. The first record in the new head sector took
    # (it read back), then maintain() erased the other sector at once: the registers lived
    # in that one record. A cell of it that decays at rest (charge loss: a 0 reads 1) left
    # no valid record: the restart started the registers from zero. maintain() now keeps
    # the sector of the record before while the head sector holds only the newest (an
    # erase that the head needs, full, still goes ahead).
    dev, part = _dev(sectors=2)
    j = _journal(part)
    per = j.slots_per_sector - 1
    for i in range(1, per + 2):  # sector 0 full, the last record in sector 1's slot 1
        j.commit(_enc(i))
        j.maintain()
    assert position(j)[:2] == (1, 2), position(j)
    dev.image[j.sector_size + j.slot_size + 16] |= 0x04  # a bit of its payload decays
    got, k = _recovered(part)
    assert got == per, "the record before: %r" % got
    k.maintain()
    for i in range(per + 2, 3 * per + 3):  # the ring goes on, each sector erased in turn
        k.commit(_enc(i))
        k.maintain()
    assert _recovered(part)[0] == 3 * per + 2
    assert abs(dev.erase_counts[0] - dev.erase_counts[1]) <= 1, dev.erase_counts


def test_a_two_sector_ring_tries_a_worn_sector_again_rather_than_stall_for_good():
    # The STM32 boards' journal has 2 sectors. One header program that did not take (a
    # transient: the cells work again) made the other sector WORN until the next start; the
    # head, full, had nowhere to go: every commit failed (NoSpace) for as long as the meter
    # ran (months: a power cut then restored registers that old). The worn sector is now
    # tried again when no other sector can be prepared, once in 12 such commits (an hour
    # of periodic commits: a dead sector costs one erase an hour, not one a commit).
    dev, part = _dev(sectors=2)
    j = _journal(part)
    per = j.slots_per_sector - 1
    for i in range(1, per + 3):  # sector 0 full, two records in sector 1
        j.commit(_enc(i))
        if i < per + 2:
            j.maintain()
    dev.wear_out(0, 16)  # sector 0's header cells
    assert _raises(StorageError, j.maintain), "sector 0's header did not take: worn"
    dev.worn = []  # (a transient)
    e0 = dev.erase_counts[0]
    ok = []
    for i in range(per + 3, per + 3 + per + 30):
        try:
            j.commit(_enc(i))
            ok.append(i)
        except StorageError:
            pass
        try:
            j.maintain()
        except StorageError:
            pass
    assert ok and ok[-1] == per + 2 + per + 30, "writes again: %r" % ok[-3:]
    assert _recovered(part)[0] == ok[-1]
    assert dev.erase_counts[0] - e0 <= 3, dev.erase_counts
