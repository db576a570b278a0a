# Ring log (lib/ringlog.py) on the NOR model: capacity, oldest-first iteration, wrap-around,
# urgent appends, a cut at every flash op, corruption, foreign images.
import struct

from boards.sim.norflash import NORFlash, PowerCut
from flash import Partition
from ringlog import (
    STATUS_BLANK,
    STATUS_FOREIGN,
    STATUS_OK,
    NoSpace,
    RingLog,
    StorageError,
)

_R = 8  # record: u32 counter + u32 check word


def _rec(i):
    return struct.pack("<II", i, (i * 2654435761) & 0xFFFFFFFF)


def _unrec(b):
    i, chk = struct.unpack("<II", b)
    assert chk == (i * 2654435761) & 0xFFFFFFFF, "record %d content intact" % i
    return i


def _dev(sectors=4, ss=1024, page=256, seed=0):
    dev = NORFlash(sectors * ss, sector_size=ss, page_size=page, seed=seed, strict=True)
    return dev, Partition(dev, 0, dev.size)


def _raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return True
    return False


def _counters(log):
    return [_unrec(r) for r in log]


def test_capacity_from_partition_and_record_size():
    dev, part = _dev(sectors=4, ss=1024)
    log = RingLog(part, _R)
    assert log.slot_size == 32, "16-byte header + 8 -> 32-byte slots: %d" % log.slot_size
    assert log.capacity == 3 * 31 and log.min_kept == 2 * 31 + 1, "capacity %d/%d" % (
        log.capacity, log.min_kept)
    big = RingLog(Partition(NORFlash(16 * 4096), 0, 16 * 4096), 100)
    assert big.slot_size == 128 and big.capacity == 15 * 31, "4 KiB sectors: %d" % big.capacity
    assert _raises(ValueError, RingLog, part, 600), "record larger than half a sector"


def test_blank_mount_append_and_iterate_oldest_first():
    dev, part = _dev()
    lines = []
    log = RingLog(part, _R, log=lines.append)
    assert log.mount() == STATUS_BLANK and list(log) == [], "blank log is empty"
    assert "blank" in lines[0], "logged %r" % lines
    for i in range(10):
        log.append(_rec(i), tag=i % 3)
    log2 = RingLog(part, _R)
    assert log2.mount() == STATUS_OK, "status"
    ents = list(log2.entries())
    assert [e[0] for e in ents] == list(range(1, 11)), "sequence numbers from 1"
    assert [e[1] for e in ents] == [i % 3 for i in range(10)], "tags stored"
    assert _counters(log2) == list(range(10)), "oldest first"
    assert log2.newest()[0] == 10, "newest record"
    assert _raises(ValueError, log2.append, b"short"), "fixed record size"


def test_wrap_overwrites_oldest_and_keeps_one_sector_erased():
    dev, part = _dev(sectors=4)
    log = RingLog(part, _R)
    log.mount()
    n = log.capacity * 4 + 13
    for i in range(n):
        log.append(_rec(i))
        assert log.ready_slots() >= log.slots_per_sector - 1, "a sector is always prepared"
    got = _counters(log)
    assert got[-1] == n - 1, "newest kept"
    assert log.min_kept <= len(got) <= log.capacity, "kept %d" % len(got)
    assert got == list(range(n - len(got), n)), "a contiguous run of the newest"
    again = RingLog(part, _R)
    again.mount()
    assert _counters(again) == got, "same after remount"
    c = dev.erase_counts
    assert max(c) - min(c) <= 1, "even wear %r" % c


def test_urgent_append_never_erases():
    dev, part = _dev(sectors=3)
    log = RingLog(part, _R, auto_maintain=False)
    log.mount()
    assert _raises(NoSpace, log.append, _rec(0), 0, True), "nothing prepared yet"
    log.maintain()
    per = log.slots_per_sector - 1
    for i in range(per):
        log.append(_rec(i), 0, True)
    e = dev.erases
    assert _raises(NoSpace, log.append, _rec(per), 0, True), "sector full, nothing prepared"
    assert dev.erases == e, "no erase on the urgent path"
    log.append(_rec(per))  # non-urgent prepares inline
    assert _counters(log) == list(range(per + 1)), "contents"


def _script(part, state, n=150):
    log = RingLog(part, _R)
    log.mount()
    log.maintain()
    for i in range(n):
        if i % 40 == 39:  # reboot
            log = RingLog(part, _R)
            log.mount()
            log.maintain()
        state["flight"] = i
        log.append(_rec(i), 0, i % 4 == 0)
        state["ok"] = i
        state["flight"] = None


def test_cut_at_every_flash_op_never_returns_torn_records():
    dev, part = _dev(sectors=3, seed=1)
    _script(part, {})
    total = dev.ops
    assert total >= 150, "scripted run has %d ops" % total
    min_kept = RingLog(part, _R).min_kept
    for k in range(1, total + 1):
        dev, part = _dev(sectors=3, seed=k)
        st = {"ok": None, "flight": None}
        dev.cut_at_op(k)
        try:
            _script(part, st)
            assert False, "cut %d did not happen" % k
        except PowerCut:
            pass
        dev.power_on()
        log = RingLog(part, _R)
        log.mount()
        got = _counters(log)  # _unrec checks every record's content
        ok, flight = st["ok"], st["flight"]
        for a in range(1, len(got)):
            assert got[a] > got[a - 1], "cut %d: order %r" % (k, got)
        if ok is None:
            assert got in ([], [0]), "cut %d: before the first append: %r" % (k, got)
        else:
            assert got and got[-1] in (ok, flight), "cut %d: newest %r, ok %r" % (k, got, ok)
            tail = min(min_kept, ok + 1)
            assert got[-tail:] == list(range(got[-1] - tail + 1, got[-1] + 1)), (
                "cut %d: newest %d records contiguous: %r" % (k, tail, got))
        log.append(_rec(1000))
        assert _counters(log)[-1] == 1000, "cut %d: appends work after the cut" % k


def test_corrupt_records_are_skipped_and_counted():
    dev, part = _dev(sectors=4)
    log = RingLog(part, _R)
    log.mount()
    for i in range(60):
        log.append(_rec(i))
    for victim in (3, 17, 40):  # flip a payload bit of these records
        s, k = divmod(victim, log.slots_per_sector - 1)
        a = s * log.sector_size + (k + 1) * log.slot_size + 16
        dev.image[a] ^= 0x04
    again = RingLog(part, _R)
    again.mount()
    got = _counters(again)
    assert got == [i for i in range(60) if i not in (3, 17, 40)], "damaged records skipped"
    assert again.corrupt == 3 and again.records == 57, "counted: %s" % again._summary()


def test_journal_partition_is_foreign_to_a_ring_log():
    from journal import Journal

    dev, part = _dev()
    j = Journal(part, 8)
    j.recover()
    j.maintain()
    j.commit(b"abcdefgh")
    log = RingLog(part, _R)
    assert log.mount() == STATUS_FOREIGN and list(log) == [], "not read as a log"
    assert _raises(StorageError, log.append, _rec(1)), "writes blocked"
    log.format()
    log.append(_rec(1))
    assert _counters(log) == [1], "after format()"
