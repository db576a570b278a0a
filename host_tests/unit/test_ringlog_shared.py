# Ring log (lib/flashstore/ringlog.py): the record buffer shared by the rings (RAM, issue 12).
# (A module of its own, with test_ringlog's fixtures.)
from flashstore.ringlog import STATUS_BLANK, STATUS_OK, RingLog
from test_ringlog import _dev, _rec, _unrec


def test_rings_share_one_record_buffer_and_appends_interleave():
    # RAM (issue 12): each ring kept its own record buffer (the meter's 8 rings: 1 248 bytes);
    # rings whose record fits in 256 bytes now build it in one shared buffer (an append
    # builds, seals and programs within one call), a larger record keeps its own
    devs = [_dev(sectors=4, ss=1024, page=256, seed=i) for i in range(3)]
    a = RingLog(devs[0][1], 240)  # 256 with the header: the largest that shares
    b = RingLog(devs[1][1], 8)
    big = RingLog(devs[2][1], 241)
    assert a._rec is b._rec, "rings of <= 256-byte records share their record buffer"
    assert big._rec is not a._rec and len(big._rec) == 257
    for r in (a, b, big):
        assert r.mount() == STATUS_BLANK
    # interleaved appends (urgent ones, across sector changes that program a sector header
    # through the same buffer): every record reads back as written
    for i in range(60):
        a.append(bytes([i]) * 240, urgent=(i % 5 == 1 and a.ready_slots() > 0))
        b.append(_rec(i))
        big.append(bytes([200 - i]) * 241)
        if a.needs_maintenance():
            a.maintain()
    got_a = [x[0] for x in a]
    assert [_unrec(x) for x in b][-3:] == [57, 58, 59]
    assert [x[0] for x in big][-1] == 200 - 59
    assert got_a[-1] == 59 and got_a == list(range(got_a[0], 60)), got_a
    for x in a:
        assert x == bytes([x[0]]) * 240
    for r in (a, b, big):  # a fresh mount (after a reboot) finds the same records
        r2 = RingLog(r._flash, r._max)
        assert r2.mount() == STATUS_OK and list(r2) == list(r)
