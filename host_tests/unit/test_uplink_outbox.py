# The uplink outbox (firmware/uplink/outbox.py) on the NOR model: sequence numbers, order,
# acknowledgement markers, a power cut at every flash op of an append/ack, full -> oldest
# dropped and reported, the power-fail warning (no erase).
from boards.sim.norflash import NORFlash, PowerCut
from flashstore.flash import Partition
from meter.supply import Supply
from uplink.outbox import KIND_EVENT, KIND_READING, Outbox


def _dev(sectors=4, seed=0):
    dev = NORFlash(sectors * 4096, 4096, 256, seed=seed, strict=True)
    return dev, Partition(dev, 0, dev.size)


def _body(i):
    return '{"n":%d,"pad":"%s"}' % (i, "x" * (i % 40))


def _owed(ob):
    """Drain the outbox (peek + ack), returning the seqs and checking each body."""
    out = []
    while True:
        m = ob.peek()
        if m is None:
            return out
        seq, kind, body = m
        assert body.startswith(b'{"n":'), body
        out.append(seq)
        ob.ack(seq)


def test_sequence_numbers_order_and_acks_survive_a_remount():
    dev, part = _dev()
    ob = Outbox(part, ack_every=4)
    ob.mount()
    seqs = [ob.put(KIND_READING if i % 2 else KIND_EVENT, _body(i)) for i in range(10)]
    assert seqs == list(range(1, 11)), seqs
    assert ob.pending() == 10
    m = ob.peek()
    assert m[0] == 1 and m[1] == KIND_EVENT and m[2] == _body(0).encode(), m
    for s in (1, 2, 3, 4, 5):
        assert ob.peek()[0] == s
        ob.ack(s)
    assert ob.pending() == 5
    ob2 = Outbox(part, ack_every=4)  # a restart: the marker says 4 (5 not marked yet)
    ob2.mount()
    assert ob2.next_seq == 11 and ob2.acked == 4, (ob2.next_seq, ob2.acked)
    assert _owed(ob2) == [5, 6, 7, 8, 9, 10]
    assert ob2.put(KIND_READING, _body(11)) == 11
    ob3 = Outbox(part)
    ob3.mount()
    assert ob3.acked == 10 and _owed(ob3) == [11], "drained -> marker written at once"
    assert ob3.pending() == 0 and ob3.peek() is None


def _script(part, st, n=40):
    ob = Outbox(part, ack_every=3)
    ob.mount()
    for i in range(n):
        st["flight"] = ob.next_seq
        s = ob.put(KIND_READING, _body(i))
        st["put"] = s
        st["flight"] = None
        if i % 3 == 2:  # the link drains two at a time
            for _ in range(2):
                m = ob.peek()
                if m is None:
                    break
                st["acking"] = m[0]  # the PUBACK came: it may be marked before the cut
                ob.ack(m[0])
                st["acked"] = m[0]


def test_power_cut_at_every_flash_op_loses_nothing_and_duplicates_keep_their_seq():
    dev, part = _dev(sectors=8, seed=1)  # room for what is owed: nothing dropped
    _script(part, {"acking": 0})
    total = dev.ops
    assert total >= 40, total
    for k in range(1, total + 1):
        dev, part = _dev(sectors=8, seed=k)
        st = {"put": 0, "acked": 0, "acking": 0, "flight": None}
        dev.cut_at_op(k)
        try:
            _script(part, st)
            assert False, "cut %d did not happen" % k
        except PowerCut:
            pass
        dev.power_on()
        ob = Outbox(part)
        ob.mount()
        owed = _owed(ob)
        last = st["put"]
        # everything stored and not acknowledged is owed, in order, contiguous; a message
        # in flight at the cut is there whole or not at all; re-sent ones keep their seq
        assert owed == sorted(owed), "cut %d: order %r" % (k, owed)
        if owed:
            assert owed == list(range(owed[0], owed[-1] + 1)), "cut %d: gap %r" % (k, owed)
            assert owed[0] <= st["acked"] + 1 or owed[0] == st["acking"] + 1, (
                "cut %d: lost after %d: %r" % (k, st["acked"], owed))
            assert owed[-1] in (last, st["flight"]), "cut %d: newest %r put %r" % (
                k, owed[-1], last)
        else:
            assert last in (0, st["acked"], st["acking"]), "cut %d: nothing owed, put %d " \
                "acked %d" % (k, last, st["acked"])
        assert ob.pending() == 0
        nxt = ob.put(KIND_EVENT, _body(99))
        assert nxt is not None and nxt > last, "cut %d: seq goes on (%r after %r)" % (
            k, nxt, last)


def test_full_outbox_drops_the_oldest_and_reports_them():
    dev, part = _dev(sectors=4)
    ob = Outbox(part)
    ob.mount()
    assert ob.capacity == 21, ob.capacity  # (4 - 1 reserve) sectors x 7 slots
    for i in range(30):
        ob.put(KIND_READING, _body(i))
    d = ob.take_dropped()
    assert d is not None, "drop reported"
    n, first, last = d
    assert first == 1 and n == last - first + 1 and n >= 30 - ob.capacity, d
    assert ob.dropped == n and ob.take_dropped() is None, "reported once"
    owed = _owed(ob)
    assert owed == list(range(last + 1, 31)), owed
    ob2 = Outbox(part)
    ob2.mount()
    assert _owed(ob2) == [], "the drain's marker survives a restart"


def test_power_fail_warning_appends_without_erasing():
    dev, part = _dev(sectors=4)
    sp = Supply()
    ob = Outbox(part, supply=sp)
    ob.mount()
    for i in range(7):
        ob.put(KIND_READING, _body(i))
    erases = dev.erases
    sp.warning = True
    got = [ob.put(KIND_EVENT, _body(100 + i)) for i in range(30)]
    assert dev.erases == erases, "no erase during the warning"
    stored = [g for g in got if g is not None]
    assert stored == list(range(8, 8 + len(stored))) and ob.lost == 30 - len(stored), got
    ob.ack(3)  # no marker during the warning either
    sp.warning = False
    ob2 = Outbox(part)
    ob2.mount()
    assert _owed(ob2) == list(range(1, 8 + len(stored))), "all kept"


def test_a_too_long_message_is_refused():
    dev, part = _dev()
    ob = Outbox(part)
    ob.mount()
    try:
        ob.put(KIND_READING, "x" * 491)
        assert False
    except ValueError as e:
        assert "491" in str(e)
    assert ob.next_seq == 1


def test_mount_in_steps_yields_per_sector_and_finds_what_mount_finds():
    # the uplink task mounts the 256 KiB outbox one sector per event-loop turn (issue 11:
    # mounting it at once was part of a ~60 ms start-up stall): the stepwise mount ends in
    # the same state as mount()
    dev, part = _dev(sectors=8)
    ob = Outbox(part, ack_every=4)
    ob.mount()
    for i in range(40):
        ob.put(KIND_READING, _body(i))
    for s in range(1, 23):
        ob.ack(s)
    ref = Outbox(part)
    ref.mount()
    ob2 = Outbox(part)
    assert not ob2.mounted
    steps = 0
    for _ in ob2.mount_steps():
        steps += 1
        assert not ob2.mounted
    assert ob2.mounted and ob2.status == ref.status
    assert steps >= 7 + 40 // 7, steps  # the scan (a sector a step) + the records (7 a step)
    assert (ob2.next_seq, ob2.acked, ob2.pending()) == (ref.next_seq, ref.acked,
                                                        ref.pending()) == (41, 20, 20)
    assert _owed(ob2) == list(range(21, 41))


def test_a_restart_after_the_markers_went_with_their_sectors_owes_only_what_is_there():
    # a link down long enough for the ring to wrap takes the acknowledgement markers with
    # their sectors: the restart counted from the newest marker left (none: 0), so pending()
    # took every message since seq 1 for owed, the next drop was reported as seq 1..27, and the
    # first PUBACK wrote a marker at once (acked - 0 >= ack_every) whose erase, the ring being
    # full, took 6 owed messages with it
    dev, part = _dev(sectors=4)
    ob = Outbox(part)
    ob.mount()
    for i in range(5):
        ob.put(KIND_READING, _body(i))
    assert _owed(ob) == [1, 2, 3, 4, 5]  # drained: a marker "5"
    for i in range(5, 40):  # the link is down: the ring wraps, the marker goes
        ob.put(KIND_READING, _body(i))
    assert ob.take_dropped() == (15, 6, 20) and ob.pending() == 20
    dev2 = dev.copy()
    ob2 = Outbox(part)
    ob2.mount()
    assert (ob2.pending(), ob2.acked, ob2.next_seq) == (20, 20, 41), (
        ob2.pending(), ob2.acked, ob2.next_seq)
    assert ob2.take_dropped() is None, "reported before the restart already"
    assert _owed(ob2) == list(range(21, 41)) and ob2.dropped == 0, ob2.dropped
    ob3 = Outbox(Partition(dev2, 0, dev2.size))  # the same restart, still offline
    ob3.mount()
    for i in range(40, 48):
        ob3.put(KIND_READING, _body(i))
    assert ob3.take_dropped() == (7, 21, 27), "only what went, by its own seqs"
    assert ob3.pending() == 21 and _owed(ob3) == list(range(28, 49))


def test_a_message_lost_to_a_bit_flip_inside_the_ring_is_reported_as_dropped():
    dev, part = _dev(sectors=4)
    ob = Outbox(part)
    ob.mount()
    for i in range(10):
        ob.put(KIND_READING, _body(i))
    dev.image[4 * 512 + 20] ^= 0x10  # seq 4 (sector 0, slot 4): its CRC fails now
    ob2 = Outbox(part)
    ob2.mount()
    assert ob2.take_dropped() == (1, 4, 4) and ob2.dropped == 1
    assert _owed(ob2) == [1, 2, 3, 5, 6, 7, 8, 9, 10]
    assert ob2.put(KIND_READING, _body(10)) == 11


def _wrap_script(part, st, n=46):
    # an outage (puts 12..35 unacknowledged) wraps the 4-sector ring; two messages in every
    # 23 go in a power-fail warning (urgent); a quiet-time erase every 7; drains of 4
    sp = Supply()
    ob = Outbox(part, supply=sp, ack_every=4)
    ob.mount()
    for i in range(n):
        sp.warning = (i % 23) in (21, 22)
        s = ob.put(KIND_READING, _body(i))
        if s is not None:
            st["content"][s] = i
        sp.warning = False
        if i % 7 == 6:
            ob.maintain()
        if i % 5 == 4 and not 12 <= i < 36:
            for _ in range(4):
                m = ob.peek()
                if m is None:
                    break
                st["acking"] = m[0]
                ob.ack(m[0])
                st["acked"].add(m[0])
        d = ob.take_dropped()
        if d:
            st["dropped"].update(range(d[1], d[2] + 1))


def test_power_cut_at_every_flash_op_of_a_wrapping_outbox_keeps_its_accounts():
    # the same campaign through drops, markers wrapped away and urgent appends: after the
    # restart pending() is what is owed (it counted messages long gone: 41 for 14), no seq
    # is reused, and every message put is owed, acknowledged or reported dropped; only the
    # oldest can go unreported (a cut between the erase that dropped them and the report)
    def new():
        return {"content": {}, "acked": set(), "acking": 0, "dropped": set()}

    dev, part = _dev(sectors=4, seed=1)
    _wrap_script(part, new())
    total = dev.ops
    assert total >= 100, total
    for k in range(1, total + 1):
        dev, part = _dev(sectors=4, seed=k)
        st = new()
        dev.cut_at_op(k)
        try:
            _wrap_script(part, st)
            assert False, "cut %d did not happen" % k
        except PowerCut:
            pass
        dev.power_on()
        ob = Outbox(part)
        ob.mount()
        d = ob.take_dropped()
        if d:
            st["dropped"].update(range(d[1], d[2] + 1))
        pending = ob.pending()
        owed = []
        while True:
            m = ob.peek()
            if m is None:
                break
            seq, kind, body = m
            if seq in st["content"]:
                assert body == _body(st["content"][seq]).encode(), "cut %d: seq %d" % (k, seq)
            owed.append(seq)
            ob.ack(seq)
        assert pending == len(owed), "cut %d: pending %d, owed %r" % (k, pending, owed)
        assert owed == sorted(owed), "cut %d: order %r" % (k, owed)
        gone = set(st["content"]) - set(owed) - st["acked"] - st["dropped"] - {st["acking"]}
        assert not owed or not gone or max(gone) < owed[0], "cut %d: lost %r, owed %r" % (
            k, sorted(gone), owed)
        nxt = ob.put(KIND_EVENT, _body(99))
        assert nxt not in st["content"], "cut %d: seq %d again" % (k, nxt)


class _Floor:
    """The owner's persisted seq floor (the uplink keeps it in uplink/seqfloor.py): two
    copies, a write over the older; ``safe`` is the older copy's floor."""

    def __init__(self):
        self.v = 0
        self.safe = 0
        self.writes = 0
        self.ok = True

    def reserve(self, floor):
        if not self.ok:
            return None
        self.safe = self.v
        self.v = floor
        self.writes += 1
        return self.safe


def _floored(part, fl, **kw):
    ob = Outbox(part, **kw)
    ob.floor = fl.v
    ob.limit = fl.safe
    ob.reserve = fl.reserve
    ob.mount()
    return ob


def test_a_formatted_or_erased_outbox_goes_on_above_every_seq_used():
    # seq came from the ring alone: a formatted outbox started again at 1, and the head-end
    # discarded the new messages as duplicates of the old ones
    from uplink.outbox import SEQ_BLOCK

    for how in ("erased", "garbage"):
        dev, part = _dev(sectors=4)
        fl = _Floor()
        ob = _floored(part, fl)
        assert [ob.put(KIND_READING, _body(i)) for i in range(10)] == list(range(1, 11))
        # reserved before seq 1 was used, in both copies (two writes)
        assert fl.writes == 2 and fl.v == 1 + 2 * SEQ_BLOCK and ob.limit == 1 + SEQ_BLOCK
        for s in range(1, 8):
            ob.ack(s)
        if how == "erased":
            for a in range(0, dev.size, 4096):
                dev.erase(a)
        else:  # an unreadable partition (another firmware's data, a damaged chip)
            for i in range(dev.size):
                dev.image[i] = (i * 131 + 7) & 0xFF
        ob2 = _floored(part, fl)
        assert ob2.skipped == (1, 2 * SEQ_BLOCK), (how, ob2.skipped)
        assert ob2.pending() == 0 and ob2.peek() is None, how
        assert ob2.put(KIND_READING, _body(11)) == 1 + 2 * SEQ_BLOCK, how
        # both copies above it again
        assert fl.v == 1 + 4 * SEQ_BLOCK and ob2.limit == 1 + 3 * SEQ_BLOCK, how
        assert fl.writes == 4, how
        assert _owed(ob2) == [1 + 2 * SEQ_BLOCK], how


def test_a_bit_flip_in_the_newest_sent_record_never_hands_its_seq_out_again():
    # the newest message, sent but not yet marked, lost to a bit flip: the next start took
    # its number for the next message (the head-end discarded that one as a duplicate)
    from uplink.outbox import SEQ_BLOCK, SEQ_MARGIN

    dev, part = _dev(sectors=4)
    fl = _Floor()
    ob = _floored(part, fl)
    for i in range(10):
        ob.put(KIND_READING, _body(i))
    for s in range(1, 10):  # 10 is sent, its PUBACK not in (no marker: ack_every 16)
        ob.ack(s)
    r = ob.ring
    dev.image[r._head * r.sector_size + (r._slot - 1) * r.slot_size + 20] ^= 0x10
    ob2 = _floored(part, fl)
    assert ob2.skipped == (10, 2 * SEQ_BLOCK), ob2.skipped
    assert _owed(ob2) == [1, 2, 3, 4, 5, 6, 7, 8, 9]  # again, with their own seq
    assert ob2.pending() == 0
    assert ob2.put(KIND_READING, _body(10)) == 1 + 2 * SEQ_BLOCK
    # without damage a restart goes on contiguously (no number skipped)
    ob3 = _floored(part, fl)
    assert ob3.skipped is None and ob3.put(KIND_READING, _body(11)) == 2 + 2 * SEQ_BLOCK
    # a reservation that could not be written (a power-fail warning, a flash fault): the
    # message still goes, and the next put asks again
    fl.ok = False
    ob3.next_seq = ob3.limit - SEQ_MARGIN  # (near the end of the block covered)
    w = fl.writes
    s = ob3.next_seq
    assert ob3.put(KIND_READING, _body(0)) == s and fl.writes == w
    fl.ok = True
    assert ob3.put(KIND_READING, _body(1)) == s + 1 and fl.writes == w + 1
    assert ob3.limit == s + SEQ_MARGIN + SEQ_BLOCK
