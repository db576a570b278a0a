# Ring log (lib/flashstore/ringlog.py) on the NOR model: capacity, oldest-first iteration,
# wrap-around, urgent appends, a cut at every flash op, corruption, foreign images.
import struct

from boards.sim.norflash import NORFlash, PowerCut
from flashstore.flash import Partition
from flashstore.worn import position, wear
from flashstore.ringlog import (
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
        assert [_unrec(e[2]) for e in log.entries_newest()] == got[::-1], "cut %d" % k
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
    assert [_unrec(e[2]) for e in again.entries_newest()] == got[::-1], "newest first too"
    assert again.corrupt == 3 and again.records == 57, "counted: %s" % again._summary()


def test_journal_partition_is_foreign_to_a_ring_log():
    from flashstore.journal import Journal

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


# ---- issue 7: allocation-free appends on a 32-bit port; damaged headers; foreign content ---

def _lcg_bytes(seed, n):
    out = bytearray(n)
    x = seed
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = (x >> 16) & 0xFF
    return out


def test_crc32_in_16_bit_halves_equals_binascii():
    import binascii

    from flashstore.ringlog import crc32, crc32_feed

    high = 0
    for seed in range(200):
        data = _lcg_bytes(seed, seed % 97)
        want = binascii.crc32(data)
        assert crc32(data) == want, "crc32 of %d bytes" % len(data)
        assert crc32(data[20:], binascii.crc32(data[:20])) == want, "chained"
        high += want >= 1 << 30
        st = [0xFFFF, 0xFFFF]
        crc32_feed(st, data)
        assert 0 <= st[0] <= 0xFFFF and 0 <= st[1] <= 0xFFFF, "halves stay 16-bit"
    assert high > 100, "most CRCs have a top bit set: the case that allocates on 32 bits"



def test_crc32_tables_are_bytes_of_the_polynomial():
    # every entry against the bitwise definition; bytes constants stay in flash when frozen
    # (two arrays built at import cost 1 KB of device RAM, issue 12), and their items are
    # small ints on any port (a frozen tuple of ints above 0x1FFF holds long-int objects)
    from flashstore import ringlog

    tabs = (ringlog._T0, ringlog._T1, ringlog._T2, ringlog._T3)
    assert all(type(t) is bytes and len(t) == 256 for t in tabs)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0xEDB88320 if c & 1 else 0)
        got = tabs[0][i] | tabs[1][i] << 8 | tabs[2][i] << 16 | tabs[3][i] << 24
        assert got == c, "entry %d" % i


def test_crc32_feed_allocates_nothing():
    import micropython

    from flashstore.ringlog import crc32_feed

    data = memoryview(_lcg_bytes(1, 92))
    st = [0xFFFF, 0xFFFF]
    crc32_feed(st, data)
    micropython.heap_lock()
    try:
        for _ in range(3):
            crc32_feed(st, data)
    finally:
        micropython.heap_unlock()


def _set_next_seq(dev, part, log, seq):
    """Rewrite the newest record of a mounted log with sequence number ``seq - 1`` (valid CRC),
    so that the next append gets ``seq``: the sequence near the 31-bit limit without 2**30
    appends."""
    import binascii

    s, slot, _n = position(log)
    a = s * log.sector_size + (slot - 1) * log.slot_size
    rec = bytearray(log.slot_size)
    part.read(a, rec)
    struct.pack_into("<I", rec, 4, seq - 1)
    ln = struct.unpack_from("<H", rec, 8)[0]
    struct.pack_into("<I", rec, 12, binascii.crc32(rec[16:16 + ln], binascii.crc32(rec[0:12])))
    base = s * log.sector_size
    sec = bytearray(log.sector_size)
    part.read(base, sec)
    sec[a - base:a - base + log.slot_size] = rec
    part.erase(base)
    for o in range(0, log.sector_size, part.page_size):
        part.program(base + o, sec[o:o + part.page_size])


def test_urgent_appends_use_only_small_ints_across_the_31_bit_limit():
    from flashstore import ringlog
    import smallint

    dev, part = _dev(sectors=8)  # 7 records of 60 bytes per sector, 49 kept
    log = RingLog(part, 60, auto_maintain=False)
    log.mount()
    log.maintain()
    log.append(bytes(60))
    _set_next_seq(dev, part, log, (1 << 30) - 5)
    log = RingLog(part, 60, auto_maintain=False)
    log.mount()
    log.maintain()
    assert position(log)[2] == (1 << 30) - 5, "next sequence near the limit"
    spy = smallint.Spy()
    rets = []
    stored = []
    saved = smallint.install(spy, ringlog)
    try:
        for i in range(40):  # 40 > one sector: crosses into the prepared sector too
            rec = _lcg_bytes(i + 7, 60)
            before = smallint.snapshot(log)
            def one(rec=rec, tag=i & 0xFF):
                rets.append(log.append(rec, tag, urgent=True))

            bad = smallint.long_locals(one)
            assert not bad, "a local outside the small-int range: %r" % bad[:3]
            stored += smallint.changed_ints(log, before)
            if log.ready_slots() == 0:
                smallint.uninstall(saved)
                log.maintain()
                saved = smallint.install(spy, ringlog)
    finally:
        smallint.uninstall(saved)
    assert spy.crc_calls == 0, "binascii.crc32 (a long result on 32 bits) not on the path"
    assert not spy.big, "packed outside the small-int range: %r" % spy.big[:3]
    # (the record header is written byte by byte, each byte 0..255, from the locals
    # checked above; struct packs only the CRC register's start, if anything)
    assert not stored, "appends stored long ints: %r" % stored[:3]
    assert rets == [None] * 40, "urgent appends return no (possibly long) sequence number"
    again = RingLog(part, 60)
    again.mount()
    seqs = [e[0] for e in again.entries()]
    # not range(): on a 32-bit MicroPython (1.25) range() over ints >= 2**30 yields wrapped,
    # negative numbers
    want = [seqs[-1] - 39 + i for i in range(40)]
    assert seqs[-1] == (1 << 30) + 34 and seqs[-40:] == want, (seqs[-3:], want[-3:])
    assert [e[2] for e in again.entries()][-1] == _lcg_bytes(46, 60), "content intact"


def test_urgent_append_allocates_nothing_near_the_31_bit_limit():
    import micropython
    import smallint

    dev, part = _dev(sectors=4)
    log = RingLog(part, 60, auto_maintain=False)
    log.mount()
    log.maintain()
    log.append(bytes(60))
    _set_next_seq(dev, part, log, (1 << 30) - 2)
    log = RingLog(part, 60, auto_maintain=False)
    log.mount()
    log.maintain()
    recs = [_lcg_bytes(i, 60) for i in range(4)]

    def urgent():
        micropython.heap_lock()
        try:
            for r in recs:
                log.append(r, 0, True)
        finally:
            micropython.heap_unlock()

    built = smallint.slices(urgent)  # CPython: a slice is a heap object on MicroPython < 1.26
    assert not built, "slices built on the urgent path: %r" % built
    assert list(log)[-4:] == recs, "written under heap_lock"


def _flip(dev, addr, bit):
    dev.image[addr] ^= 1 << bit


def test_bit_flip_in_any_sector_header_loses_no_record():
    base, _p = _dev(sectors=4)
    log = RingLog(Partition(base, 0, base.size), _R)
    log.mount()
    n = 2 * (log.slots_per_sector - 1) + 5  # sectors 0 and 1 full, 5 records in sector 2
    for i in range(n):
        log.append(_rec(i))
    for s in (0, 1, 2):  # full, full, the newest (head) sector
        for byte in range(16):
            for bit in (0, 3, 7):
                dev = base.copy()
                part = Partition(dev, 0, dev.size)
                _flip(dev, s * log.sector_size + byte, bit)
                again = RingLog(part, _R)
                assert again.mount() == STATUS_OK, "sector %d byte %d" % (s, byte)
                assert _counters(again) == list(range(n)), "sector %d byte %d bit %d: %r" % (
                    s, byte, bit, _counters(again)[-3:])
                assert again.salvaged > 0 and again.damaged_sectors == 1, again._summary()
                assert [_unrec(e[2]) for e in again.entries_newest()] == list(
                    range(n - 1, -1, -1)), "sector %d byte %d bit %d newest first" % (s, byte, bit)
                again.append(_rec(n))
                assert _counters(again)[-1] == n, "appends go on"


def test_foreign_sector_beside_own_records_write_protects_the_log():
    import binascii

    dev, part = _dev(sectors=4)
    log = RingLog(part, _R)
    log.mount()
    for i in range(40):
        log.append(_rec(i))
    # sector 3 holds data of a newer layout (format 2): valid header, unknown records
    h = bytearray(16)
    struct.pack_into("<BBBBIHH", h, 0, 0x53, 0x52, 2, 2, 7, 32, 0)
    struct.pack_into("<I", h, 12, binascii.crc32(h[0:12]))
    part.erase(3 * 1024)
    part.program(3 * 1024, h)
    part.program(3 * 1024 + 32, b"\x00" * 32)
    image = bytes(dev.image)
    again = RingLog(part, _R)
    assert again.mount() == STATUS_FOREIGN and again.foreign_sectors == 1, again.status
    assert _counters(again) == list(range(40)), "own records stay readable"
    assert _raises(StorageError, again.append, _rec(99)), "writes blocked"
    assert again.maintain() == 0 and bytes(dev.image) == image, "nothing erased or written"


def test_record_with_another_format_number_is_foreign():
    import binascii

    dev, part = _dev(sectors=3)
    log = RingLog(part, _R)
    log.mount()
    log.append(_rec(1))
    a = log.slot_size  # sector 0, slot 1
    rec = bytearray(log.slot_size)
    part.read(a, rec)
    rec[2] = 2  # format 2, CRC recomputed: written by a newer firmware, not damaged
    struct.pack_into("<I", rec, 12, binascii.crc32(rec[16:16 + _R], binascii.crc32(rec[0:12])))
    part.program(a + log.slot_size, rec)  # the next slot
    again = RingLog(part, _R)
    assert again.mount() == STATUS_FOREIGN and again.foreign_records == 1, again._summary()
    rec[5] ^= 1  # the same with a flipped bit is just a corrupt record
    dev2, part2 = _dev(sectors=3)
    log2 = RingLog(part2, _R)
    log2.mount()
    log2.append(_rec(1))
    part2.program(a + log.slot_size, rec)
    third = RingLog(part2, _R)
    assert third.mount() == STATUS_OK and third.corrupt + third.torn == 1, third._summary()


def test_rings_share_one_read_buffer_and_keep_compact_sector_tables():
    # RAM (issue 12): a meter mounts ~9 rings; each kept a slot-sized read buffer and five
    # lists of one word per sector (a 120-sector profile ring: 2.4 KB). Reads now go through
    # one buffer shared by every ring (a read's view is copied out before the method
    # returns), and the per-sector tables are arrays of 16-bit items where the values fit.
    import gc

    devs = [_dev(sectors=4, ss=1024, page=256, seed=i) for i in range(2)]
    a, b = [RingLog(p, 200) for _d, p in devs]
    for r in (a, b):
        assert r.mount() == STATUS_BLANK
    for i in range(40):
        a.append(bytes([i]) * 200)
        b.append(bytes([100 + i]) * 200)
    # interleaved reads of two rings (a logbook merges two logs): each gets its own records
    got_a, got_b = [], []
    ib = b.entries()
    for sa, _ta, ra in a.entries():
        sb, _tb, rb = next(ib)
        got_a.append(ra)
        got_b.append(rb)
        assert a.get(sa)[2] == ra and b.get(sb)[2] == rb
    assert got_a[-1] == bytes([39]) * 200 and got_b[-1] == bytes([139]) * 200
    assert a.min_kept <= len(got_a) == len(got_b) <= a.capacity, len(got_a)
    assert len(bytes(a._first_lo)) == 2 * a.sectors  # 2 bytes a sector
    assert not a._odd, "a slot size per sector only where it is not the ring's"
    assert len(bytes(a._fill)) == a.sectors  # slots used: one byte (<= 1024 // 17 slots)
    if hasattr(gc, "mem_alloc"):  # MicroPython: a second mounted ring takes no read buffer
        rings = []
        sizes = []
        for rec in (16, 240):
            gc.collect()
            m0 = gc.mem_alloc()
            r = RingLog(_dev(sectors=4, ss=1024, page=256)[1], rec)
            r.mount()
            rings.append(r)
            gc.collect()
            sizes.append(gc.mem_alloc() - m0)
        # the append record (256 - 32 bytes more) is the one slot-sized buffer left
        assert sizes[1] - sizes[0] < 2 * 224, sizes


class _Counted:  # a flash partition that counts the reads of the ring
    def __init__(self, part):
        self._p = part
        self.size = part.size
        self.sector_size = part.sector_size
        self.page_size = part.page_size
        self.reads = 0

    def read(self, addr, buf):
        self.reads += 1
        self._p.read(addr, buf)

    def program(self, addr, data):
        self._p.program(addr, data)

    def erase(self, addr):
        self._p.erase(addr)


def test_newest_first_reads_only_the_records_it_yields():
    # the uplink's schedule wants the last few records of a full ring (firmware/meter/
    # profile.py rows_since): read newest first, not every record from the oldest on
    dev, part = _dev(sectors=8)
    flash = _Counted(part)
    log = RingLog(flash, _R)
    log.mount()
    for i in range(500):  # wrapped: 31 slots (30 records) a sector, 210 records kept
        log.append(_rec(i), tag=i % 5)
    old = [e[0] for e in log.entries()]  # (sequence numbers only: a 96 KiB device heap)
    assert len(old) >= log.min_kept and old[-1] == 500, len(old)
    back = [e[0] for e in log.entries_newest()]
    assert back == old[::-1], "the reverse of entries()"
    k = 0
    for seq, tag, rec in log.entries_newest():  # the content and tags too
        i = _unrec(rec)
        assert seq == i + 1 and tag == i % 5, (seq, tag, i)
        k += 1
    assert k == len(old)
    for want in (1, 3, 29, 31, 95):
        flash.reads = 0
        got = []
        for e in log.entries_newest():
            got.append(_unrec(e[2]))
            if len(got) == want:
                break
        assert got == list(range(499, 499 - want, -1)), got
        assert flash.reads == want, "%d records: %d reads" % (want, flash.reads)
    flash.reads = 0
    assert sum(1 for _ in log.entries()) == len(old) and flash.reads >= len(old)


def test_newest_first_with_appends_and_erases_while_suspended():
    # a reader suspended across rounds of the event loop while the ring is appended to and
    # its oldest sectors erased: no record newer than its start, numbers only go down
    dev, part = _dev(sectors=4)
    log = RingLog(part, _R)
    log.mount()
    for i in range(100):
        log.append(_rec(i))
    it = log.entries_newest()
    first = [_unrec(next(it)[2]) for _ in range(3)]
    assert first == [99, 98, 97], first
    for i in range(100, 160):  # two sectors more: the oldest ones erased and reused
        log.append(_rec(i))
    rest = [_unrec(e[2]) for e in it]
    got = first + rest
    assert all(got[a] > got[a + 1] for a in range(len(got) - 1)), got
    assert rest and max(rest) < 97 and all(x >= 0 for x in rest), rest


def test_a_ring_keeps_at_most_37_attributes():
    # RAM (issue 12): MicroPython keeps an instance's attributes in a hash table of 29, 37,
    # 47, 59... slots of 8 bytes, filled before it grows; a meter holds ~9 rings, which had 51
    # attributes each (a 59-slot table). Class attributes (kind, auto-maintain), properties
    # (capacity, min_kept) and state shared by every ring keep a ring within 37.
    _d, part = _dev(sectors=4, ss=1024, page=256)
    for r in (RingLog(part, 60), RingLog(part, 60, auto_maintain=False)):
        assert len(r.__dict__) <= 37, sorted(r.__dict__)
        r.mount()
        r.append(bytes(60))
        assert len(r.__dict__) <= 37, sorted(r.__dict__)
        assert r.capacity == 3 * (r.slots_per_sector - 1), r.capacity
        assert r.min_kept == 2 * (r.slots_per_sector - 1) + 1, r.min_kept


def test_erase_counts_live_in_the_headers():
    # RAM (issue 12): the ring keeps no per-sector erase counts; each is read back from the
    # sector's header when the sector is prepared, and a sector whose header was lost
    # continues from the ring's highest count, as when they were kept in RAM
    dev, part = _dev(sectors=4, ss=1024, page=256)
    log = RingLog(part, 60)
    log.mount()
    for i in range(log.capacity * 3):  # three laps: every sector erased
        log.append(bytes([i & 0xFF]) * 60)
    w = wear(log)
    assert w == dev.erase_counts and min(w) >= 1, (w, dev.erase_counts)
    head = position(log)[0]
    s = (head + 2) % 4  # neither the head nor the reserve ahead of it
    dev.program(s * 1024, bytes(16))  # its header lost (bits programmed to 0)
    again = RingLog(part, 60)
    assert again.mount() == STATUS_OK and again.damaged_sectors == 1, again._summary()
    assert wear(again)[s] == 0, "no valid header: no count"
    top = max(w)
    while position(again)[0] != s:
        again.append(bytes(60))
    assert wear(again)[s] == top + 1, (wear(again), top)
    assert dev.erase_counts[s] == w[s] + 1, "erased once more"


def test_format_adds_one_erase_to_each_sector_and_keeps_the_counts():
    # format() prepared one sector after the other from the ring's running highest count:
    # each sector got the one before's + 1, so a format of n sectors added up to n erases
    # that never happened to each (and to the wear figures levelling relies on)
    base, part = _dev(sectors=4, ss=1024, page=256)
    log = RingLog(part, 60)
    log.mount()
    for i in range(log.capacity * 3):  # three laps
        log.append(bytes([i & 0xFF]) * 60)
    base.erase_counts[2] += 5  # (a sector with more wear: kept, not levelled away)
    assert wear(log) != base.erase_counts
    base.erase_counts[2] -= 5
    assert wear(log) == base.erase_counts, (wear(log), base.erase_counts)
    for _ in range(2):
        log.format()
        assert wear(log) == base.erase_counts, (wear(log), base.erase_counts)
    assert RingLog(part, 60).mount() == STATUS_BLANK
    # a cut at every flash operation of a format: each header read back keeps its count;
    # the one the cut tore is estimated from the highest (within one here: the counts of a
    # ring erased in rotation lie within one of each other)
    top = max(base.erase_counts)  # (4: two formats after three laps)
    k = 0
    while True:
        k += 1
        dev = base.copy()
        p = Partition(dev, 0, dev.size)
        r = RingLog(p, 60)
        r.mount()
        dev.cut_at_op(k)
        try:
            r.format()
        except PowerCut:
            pass
        if not dev.dead:
            assert k > 4, k  # (four erases and four header programs)
            break
        dev.power_on()
        r = RingLog(p, 60)
        r.mount()
        r.format()
        w = wear(r)
        true = dev.erase_counts
        off = [s for s in range(4) if w[s] != true[s]]
        assert len(off) <= 1, (k, w, true)
        for s in off:  # the sector under erase at the cut: the highest count + 1
            assert abs(w[s] - true[s]) <= 1 and w[s] <= top + 2, (k, s, w, true)
