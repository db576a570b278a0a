"""billing.profile (load profile records) and billing.p01 (VDEW P.01 readout).

Round trips of pseudo-random rows (status changes, gaps, all channel modes), the capacity of
a 512 KiB ring log on the NOR model with worst-case rows (366 days of 15-minute rows x 6
channels, every value 16 bits), corrupt records, and the P.01 text parsed back into the same
rows across both DST transitions.
"""

from billing import p01, profile
from billing.localtime import RULE_EU, Zone
from billing.profile import (
    DELTA,
    SIGNED,
    ST_CLOCK_ADJUSTED,
    ST_DST,
    ST_POWER_DOWN,
    UNSIGNED,
    Layout,
    ProfileBuffer,
    decode,
)
from civil import seconds

T0 = seconds(2026, 1, 1)


class _Rng:
    def __init__(self, seed):
        self.s = seed

    def below(self, n):
        self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.s >> 4) % n


def _lay6(lid=7, period=900):
    return Layout(lid, period, (("1.29", "kWh", 3, UNSIGNED), ("2.29", "kWh", 3, UNSIGNED),
                                ("5.29", "kvarh", 3, UNSIGNED), ("8.29", "kvarh", 3, UNSIGNED),
                                ("1.5", "kW", 3, UNSIGNED), ("32.7", "V", 1, UNSIGNED)))


def _mixed():
    return Layout(3, 300, (("1.8.0", "kWh", 3, DELTA), ("16.29", "kWh", 3, SIGNED),
                           ("1.29", "kWh", 3, UNSIGNED), ("14.7", "Hz", 2, DELTA)))


def _rows(lay, n, seed, gaps=True):
    """``n`` pseudo-random rows ``(t, status, values)``, generated one at a time (the same
    sequence for the same arguments)."""
    rng = _Rng(seed)
    t = T0 + lay.period
    cum = 123456789
    st = 0
    for _k in range(n):
        if gaps and rng.below(40) == 0:
            t += lay.period * (1 + rng.below(20))  # an outage: rows missing
            st = ST_POWER_DOWN
        elif rng.below(25) == 0:
            st = rng.below(256)
        elif rng.below(3) == 0:
            st = 0
        vals = []
        for ident, _u, _d, md in lay.channels:
            big = rng.below(10) == 0
            if md == UNSIGNED:
                vals.append(rng.below(70000 if big else 2000))
            elif md == SIGNED:
                vals.append(rng.below(4000) - 2000)
            elif ident == "14.7":
                vals.append(5000 + rng.below(21) - 10)
            else:
                cum += rng.below(3000)
                vals.append(cum)
        yield t, st, tuple(vals)
        t += lay.period


def _pack_all(lay, rows, max_rows=96):
    buf = ProfileBuffer(lay, max_rows)
    recs = []
    for t, st, v in rows:
        r = buf.add(t, st, v)
        if r is not None:
            recs.append(r)
    assert list(buf.rows()) == rows[len(rows) - buf.n:], "open rows readable"
    r = buf.flush()
    if r is not None:
        recs.append(r)
    assert buf.flush() is None
    return recs


def _decode_all(recs, lay):
    out = []
    for r in recs:
        assert len(r) == lay.payload
        out.extend(decode(r, lay))
    return out


def test_round_trip_all_modes_status_and_gaps():
    # streamed: every record decoded as it is produced and compared with the rows generated
    # again (1 500 rows held at once, twice, do not fit a device-sized heap: tools/emu)
    for lay, seed in ((_lay6(), 1), (_mixed(), 2), (_lay6(9, 60), 3)):
        want = _rows(lay, 1500, seed)
        buf = ProfileBuffer(lay, 96)
        recs = n = 0
        for t, st, v in _rows(lay, 1500, seed):
            r = buf.add(t, st, v)
            n += 1
            if r is not None:
                recs += 1
                assert len(r) == lay.payload
                for row in decode(r, lay):
                    assert row == next(want), (lay.lid, n, row)
        rest = list(want)  # the rows not yet in a record
        assert list(buf.rows()) == rest, "open rows readable"
        r = buf.flush()
        if r is not None:
            recs += 1
            assert list(decode(r, lay)) == rest, "the flushed record"
        assert rest == [] or r is not None, "open rows flushed"
        assert buf.flush() is None
        assert recs < n // 8, (recs, n)


def test_worst_case_rows_per_record_and_capacity_figure():
    lay = _lay6()
    assert lay.head == 12 and lay.rows_per_record(16) == 19
    rows = [(T0 + 900 * (k + 1), 0, (65535,) * 6) for k in range(19 * 5)]
    recs = _pack_all(lay, rows)
    assert len(recs) == 5, "19 worst-case rows per 240-byte record"
    assert _decode_all(recs, lay) == rows
    recs_kept, rows_kept, days = profile.capacity(lay, 19)
    assert recs_kept == 126 * 15 and rows_kept == 35910
    assert days >= 366, days
    # a status change inside a full record costs 2 bytes: 18 rows then
    rows = [(T0 + 900 * (k + 1), 0 if k < 5 else ST_DST, (65535,) * 6) for k in range(19)]
    recs = _pack_all(lay, rows)
    assert len(recs) == 2 and _decode_all(recs, lay) == rows


def test_512k_ring_log_keeps_366_days_of_worst_case_rows():
    """RingLog on the NOR model, 512 KiB of 4 KiB sectors, written with 380 days of rows of 6
    channels at 16 bits each (two status changes): the newest 366 days are all still there."""
    from boards.sim.norflash import NORFlash
    from flashstore.flash import Partition
    from flashstore.ringlog import RingLog

    lay = _lay6()
    dev = NORFlash(512 * 1024, sector_size=4096, page_size=256)
    ring = RingLog(Partition(dev, 0, dev.size), lay.payload)
    ring.mount()
    assert ring.slot_size == 256 and ring.min_kept == 1891  # >= profile.capacity()'s 1890
    buf = ProfileBuffer(lay)
    n = 380 * 96  # more than fits: the oldest sectors are dropped
    for k in range(n):
        rec = buf.add(T0 + 900 * (k + 1), ST_DST if 8000 <= k < 28000 else 0,
                      (65535, 0x8000 | k & 0x7FFF, 0xFFFF - (k & 0x7FFF), 40000, 65535, 60000))
        if rec is not None:
            ring.append(rec)
    ring.append(buf.flush())
    first = None
    count = 0
    last = 0
    for _seq, _tag, rec in ring.entries():
        for t, _st, vals in decode(rec, lay):
            if first is None:
                first = t
            assert t > last
            last = t
            assert vals[0] == 65535 and vals[5] == 60000
            count += 1
    assert last == T0 + 900 * n
    assert 366 * 96 <= count < n, count  # every value 16 bits: 19 rows per record
    assert (last - first) // 86400 >= 366, (last - first) / 86400


def test_bad_input_and_corrupt_records():
    lay = _lay6()
    buf = ProfileBuffer(lay)
    for vals, what in (((1, 2, 3), "values"), ((-1, 0, 0, 0, 0, 0), "< 0"),
                       ((1 << 31, 0, 0, 0, 0, 0), "31 bits")):
        try:
            buf.add(T0, 0, vals)
            assert False, what
        except ValueError as e:
            assert what in str(e), (what, e)
    assert buf.n == 0
    try:
        buf.add(T0, 256, (0,) * 6)
        assert False
    except ValueError as e:
        assert "status" in str(e)
    buf.add(T0, 0, (65535,) * 6)
    rec = buf.flush()
    for bad, what in ((bytes([8]) + rec[1:], "layout 8, expected 7"),
                      (rec[:1] + bytes([250]) + rec[2:], "inconsistent"),
                      (rec[:7] + bytes([200]) + rec[8:], "inconsistent"),
                      (rec[:5], "too short")):
        try:
            list(decode(bad, lay))
            assert False, what
        except ValueError as e:
            assert what in str(e), (what, e)
    for args, name in (((256, 900, lay.channels), "layout_id"),
                       ((1, 120, lay.channels), "period_s"),
                       ((1, 900, lay.channels * 2), "channels"),
                       ((1, 900, (("a", "b", 9, 0),)), "channels[0]"),
                       ((1, 900, (("a", "b", 1, 0),), 9), "payload")):
        try:
            Layout(*args)
            assert False, name
        except ValueError as e:
            assert str(e).startswith(name), (name, e)


def test_max_rows_and_contiguity_close_records():
    lay = _lay6()
    buf = ProfileBuffer(lay, max_rows=4)
    recs = [buf.add(T0 + 900 * k, 0, (0,) * 6) for k in range(1, 10)]
    assert [r is not None for r in recs] == [False] * 4 + [True] + [False] * 3 + [True]
    assert buf.add(T0 + 900 * 11, 0, (0,) * 6) is not None, "a missing row closes the record"
    assert [len(list(decode(r, lay))) for r in recs if r] == [4, 4]
    zero = ProfileBuffer(lay, 255)
    for k in range(255):
        assert zero.add(T0 + 900 * k, 0, (0,) * 6) is None
    assert len(list(decode(zero.flush(), lay))) == 255, "all-zero rows: 0-bit widths"


# ---- P.01 ------------------------------------------------------------------------------------
def _p01_layout():
    return Layout(1, 900, (("1.29", "kWh", 3, UNSIGNED), ("2.29", "kWh", 3, UNSIGNED),
                           ("1.5", "kW", 3, UNSIGNED), ("16.29", "kWh", 3, SIGNED)))


def test_p01_fixed_text():
    lay = _p01_layout()
    z = Zone(60, RULE_EU)
    t = seconds(2022, 8, 23, 14, 15)  # 16:15 CEST
    rows = [(t, ST_DST, (183, 0, 734, 183)), (t + 900, ST_DST, (1, 2, 5, -1)),
            (t + 1800, ST_DST | ST_POWER_DOWN, (0, 0, 0, 0)),
            (t + 3600, ST_DST, (12345, 0, 49380, 12345))]
    got = list(p01.lines(rows, lay, z))
    hdr = "(15)(4)(1.29)(kWh)(2.29)(kWh)(1.5)(kW)(16.29)(kWh)"
    assert got == [
        "P.01(1220823161500)(08)" + hdr,
        "(0.183)(0.000)(0.734)(0.183)",
        "(0.001)(0.002)(0.005)(-0.001)",
        "P.01(1220823164500)(88)" + hdr,
        "(0.000)(0.000)(0.000)(0.000)",
        "P.01(1220823171500)(08)" + hdr,
        "(12.345)(0.000)(49.380)(12.345)"], got
    assert list(p01.lines(rows[:1], lay, z, status_digits=8))[0].startswith(
        "P.01(1220823161500)(00000008)(15)")


def test_p01_round_trip_across_both_dst_transitions():
    lay = _p01_layout()
    z = Zone(60, RULE_EU)
    for start in (seconds(2026, 3, 28, 20), seconds(2026, 10, 24, 20)):
        rows = []
        rng = _Rng(start & 0xFFFF)
        for k in range(48):
            t = start + 900 * k
            st = (ST_DST if z.is_dst(t) else 0) | (ST_CLOCK_ADJUSTED if k == 30 else 0)
            rows.append((t, st, (rng.below(5000), rng.below(100), rng.below(20000),
                                 rng.below(6000) - 3000)))
        rows = rows[:40] + rows[43:]  # a gap
        text = "\r\n".join(p01.lines(rows, lay, z)) + "\r\n"
        blocks = p01.parse(text)
        # headers: start, DST change, status set at k=30 and back, the gap
        assert len(blocks) == 5, [b[0] for b in blocks]
        assert p01.to_rows(blocks, lay, z) == rows
        assert blocks[0][2] == 15 and blocks[0][3][2] == ("1.5", "kW")


def test_p01_repeated_hour_resolved_by_season_digit():
    lay = Layout(2, 900, (("1.29", "kWh", 3, UNSIGNED),))
    z = Zone(60, RULE_EU)
    off = seconds(2026, 10, 25, 1)
    rows = [(off - 1800 + 900 * k, ST_DST if k < 2 else 0, (k,)) for k in range(6)]
    lines = list(p01.lines(rows, lay, z))
    assert lines[0].startswith("P.01(1261025023000)(08)")
    assert lines[3].startswith("P.01(0261025020000)(00)")
    assert p01.to_rows(p01.parse("\n".join(lines)), lay, z) == rows


def test_p01_range_select_and_parse_errors():
    z = Zone(60, RULE_EU)
    a, b = p01.parse_range("12608231600;12608231800", z)
    assert (a, b) == (seconds(2026, 8, 23, 14), seconds(2026, 8, 23, 16))
    assert p01.parse_range(";", z) == (None, None)
    assert p01.parse_range("02601011200;", z) == (seconds(2026, 1, 1, 11), None)
    rows = [(seconds(2026, 8, 23, 13) + 900 * k, 0, (k,)) for k in range(20)]
    sel = list(p01.select(rows, a, b))
    assert sel[0][0] == a and sel[-1][0] == b and len(sel) == 9
    for text, what in (("(1)(2)", "line 1: values before the first header"),
                       ("P.01(1220823161500)(08)(15)(2)(1.29)(kWh)", "line 1: header announces"),
                       ("P.01(1220823161500)(08)(15)(1)(1.29)(kWh)\n(1)(2)", "line 2: 2 values"),
                       ("P.01 garbage", "line 1"), ("P.01(1)(08)(x)(1)(a)(b)", "line 1")):
        try:
            p01.parse(text)
            assert False, what
        except ValueError as e:
            assert str(e).startswith(what), (what, e)
    for bad in ("1;2;3", "x;"):
        try:
            p01.parse_range(bad, z)
            assert False, bad
        except ValueError:
            pass
    assert p01.fixed(-5, 3) == "-0.005" and p01.fixed(7, 0) == "7"
    assert p01.unfixed("-0.005", 3) == -5 and p01.unfixed("1.5", 3) == 1500
    try:
        p01.unfixed("0.0001", 3, "channel 2")
        assert False
    except ValueError as e:
        assert str(e).startswith("channel 2")
