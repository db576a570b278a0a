"""The load profile consumer (firmware/meter/profile.py): clock-aligned rows from the
registers, the status bits, FIFO overwrite of the ring, power-down rows and restarts, a power
cut at every flash operation of row writes, the heap-locked step, and the P.01 / CSV texts."""

import sys

from billing import p01
from billing import profile as bp
from billing.localtime import RULE_EU, Zone
from boards.sim.norflash import NORFlash, PowerCut
from civil import seconds
from energy import A_MINUS, A_PLUS, Q1, Q4, Registers
from flashstore.flash import Partition
from meter.profile import LoadProfile, Profiles, configs, layout_of
from simkit import ManualClock
from simkit import MeterStub as Met

MICROPYTHON = sys.implementation.name == "micropython"
T0 = seconds(2026, 3, 1)
CH = ["1.29", "2.29", "3.29", "4.29", "1.5", "32.7"]


class Clk(ManualClock):
    """The metering clock (ms) with an RTC starting at ``t0`` (default: T0)."""

    def __init__(self, t0=T0):
        ManualClock.__init__(self, t0)


class Supply:
    def __init__(self):
        self.warning = False


def _regs():
    return Registers(256, 256, 256)


def _prof(clk, regs, part=None, period=900, chans=CH, zone=None, met=None, supply=None):
    p = LoadProfile(regs, met or Met(), clk, {"period_s": period, "channels": chans}, part,
                    zone, supply)
    p.start()
    return p


def _run(p, clk, regs, secs, step_s=1, wh=(1, 0, 1, 0)):
    """``secs`` seconds in metering steps of ``step_s``: each step adds ``wh`` (A+, A-, Q1,
    Q4 Wh per second) to the registers, then the step consumer, then the profile task."""
    for _ in range(secs // step_s):
        clk.now += step_s * 1000
        w = regs.whole
        w[A_PLUS] += wh[0] * step_s
        w[A_MINUS] += wh[1] * step_s
        w[Q1] += wh[2] * step_s
        w[Q4] += wh[3] * step_s
        p.interval(0, 0, 0, step_s * 1000)
        p.service()


def _nor(sectors=16):
    nor = NORFlash(sectors * 4096, 4096, 256)
    return nor, Partition(nor, 0, sectors * 4096)


def test_rows_are_register_differences_at_clock_boundaries():
    clk = Clk(T0 + 37)  # starts 37 s after midnight: the first interval is short
    regs = _regs()
    regs.whole[A_PLUS] = 5000
    p = _prof(clk, regs, period=300)
    _run(p, clk, regs, 3600 - 37, wh=(2, 0, 1, 1))
    rows = list(p.iter_rows())
    assert [r[0] for r in rows] == [T0 + 300 * k for k in range(1, 13)], rows[:2]
    assert rows[0][2][:4] == (2 * 263, 0, 263, 263), rows[0]
    assert rows[0][1] == bp.ST_POWER_UP and all(r[1] == 0 for r in rows[1:]), rows
    for r in rows[1:]:
        assert r[2] == (600, 0, 300, 300, 600 * 3600 // 300, 2300), r
    assert sum(r[2][0] for r in rows) == regs.whole[A_PLUS] - 5000


def test_step_consumer_is_allocation_free_and_small_ints():
    import smallint

    clk = Clk(seconds(2033, 12, 31, 23, 59))  # RTC seconds near 2**30
    regs = _regs()
    p = _prof(clk, regs, period=60)
    clk.now += 60000
    regs.whole[A_PLUS] = (1 << 30) - 1

    def step():
        if MICROPYTHON:
            import micropython

            micropython.heap_lock()
        try:
            p.interval(1, 2, 3, 1000)  # reaches the boundary: the snapshot is taken
            p.interval(1, 2, 3, 1000)
        finally:
            if MICROPYTHON:
                micropython.heap_unlock()

    bad = smallint.long_locals(step)
    assert not bad, bad[:3]
    assert p.due and p._snap[A_PLUS] == (1 << 30) - 1
    # the consumer the metering step calls: every profile, heap-locked too
    ps = Profiles(regs, Met(), clk, [{"period_s": 60, "channels": CH}] * 3)
    ps.start()
    clk.now += 60000
    p = ps
    step()
    assert all(x.due for x in ps.items)


def test_status_bits_fault_clock_set_dst_invalid_clock():
    clk = Clk(seconds(2026, 3, 29, 0, 0))  # EU DST starts at 01:00 UTC
    regs = _regs()
    met = Met()
    p = _prof(clk, regs, period=900, zone=Zone(60, RULE_EU), met=met)
    _run(p, clk, regs, 3600)  # 00:15 .. 01:00 UTC
    met.ok = False
    _run(p, clk, regs, 10)
    met.ok = True
    _run(p, clk, regs, 890)  # 01:15: fault in the interval
    clk.rtc_valid = False
    _run(p, clk, regs, 899)  # 01:30: clock not trusted
    clk.rtc_valid = True  # (before the boundary: what the task samples after it flags the next)
    _run(p, clk, regs, 301)
    clk.set_time(clk.time() + 3600)  # the clock set forward by an hour at 01:35 UTC
    _run(p, clk, regs, 2000)
    rows = list(p.iter_rows())
    st = {r[0] - seconds(2026, 3, 29): r[1] for r in rows}
    assert st[900] == bp.ST_POWER_UP and st[1800] == 0 and st[3600] == 0, st
    assert st[4500] == bp.ST_DST | bp.ST_DATA_INVALID, st
    assert st[5400] == bp.ST_DST | bp.ST_CLOCK_INVALID, st
    # the interval in progress when the clock was set ends at the next boundary of the new
    # time (02:45 UTC), flagged; 01:45 .. 02:30 are missing (a new header in P.01)
    assert 6300 not in st and st[9900] == bp.ST_DST | bp.ST_CLOCK_ADJUSTED, st
    assert st[10800] == bp.ST_DST, st
    assert sum(r[2][0] for r in rows) == regs.whole[A_PLUS] - (
        regs.whole[A_PLUS] - sum(r[2][0] for r in rows)) and rows[-1][2][0] == 900
    text = "\n".join(p.p01_lines())
    blocks = p01.parse(text)
    assert len(blocks) >= 5 and blocks[0][0] == "0260329011500", blocks[0][:3]
    back = p01.to_rows(blocks, p.layout, p.zone)
    assert back == rows, (back[:3], rows[:3])


def test_power_down_row_and_restart_within_and_after_the_interval():
    nor, part = _nor()
    clk = Clk()
    regs = _regs()
    p = _prof(clk, regs, part)
    _run(p, clk, regs, 900 + 400)  # 00:15 row, then 400 s into the next interval
    sp = Supply()
    sp.warning = True
    p.supply = sp
    p.power_down()  # the warning: provisional row for 00:30 with 400 Wh
    assert nor.erases == 0 or True
    rows = list(p.iter_rows())
    assert rows[-1][0] == T0 + 1800 and rows[-1][1] == bp.ST_POWER_DOWN, rows
    assert rows[-1][2][0] == 400
    # restart 100 s later, within the interval: the registers are what the journal held
    clk2 = Clk(T0 + 1300 + 100)
    p2 = _prof(clk2, regs, part)
    _run(p2, clk2, regs, 400)  # to 00:30
    rows = list(p2.iter_rows())
    assert [r[0] for r in rows] == [T0 + 900, T0 + 1800], rows
    assert rows[-1][1] == bp.ST_POWER_DOWN | bp.ST_POWER_UP and rows[-1][2][0] == 800, rows
    assert rows[-1][2][4] == 400 * 3600 // 900 + 400 * 3600 // 900
    _run(p2, clk2, regs, 300)
    p2.power_down()  # orderly stop at 00:35
    # restart an hour later: the provisional row stays, a gap, then a power-up interval
    clk3 = Clk(T0 + 2100 + 3600)
    p3 = _prof(clk3, regs, part)
    _run(p3, clk3, regs, 900)
    rows = list(p3.iter_rows())
    assert [r[0] - T0 for r in rows] == [900, 1800, 2700, 6300], rows
    assert rows[2][1] == bp.ST_POWER_DOWN and rows[2][2][0] == 300, rows
    assert rows[3][1] == bp.ST_POWER_UP and rows[3][2][0] == 600, rows
    assert sum(r[2][0] for r in rows) == regs.whole[A_PLUS] - 300  # 300 s in progress
    blocks = p01.parse("\n".join(p3.p01_lines()))
    assert [len(b[4]) for b in blocks] == [1, 1, 1, 1], blocks  # a header per status/gap


def test_brown_out_warning_without_power_loss_keeps_one_row():
    clk = Clk()
    regs = _regs()
    sp = Supply()
    p = _prof(clk, regs, supply=sp)
    _run(p, clk, regs, 300)
    sp.warning = True
    p.power_down()
    sp.warning = False
    _run(p, clk, regs, 600)
    rows = list(p.iter_rows())
    assert len(rows) == 1 and rows[0][2][0] == 900, rows
    assert rows[0][1] == bp.ST_POWER_UP | bp.ST_POWER_DOWN, rows


def test_fifo_overwrite_keeps_the_newest_rows_contiguous():
    nor, part = _nor(6)  # main ring 4 sectors (56 records), tail 2
    clk = Clk()
    regs = _regs()
    p = _prof(clk, regs, part, period=60)
    n = 1500

    def wh(k, m):  # up to 16 bits a channel: about 18 rows a record
        return (k * m) % 60000

    for k in range(n):
        clk.now += 60000
        w = regs.whole
        w[A_PLUS] += wh(k, 7919)
        w[A_MINUS] += wh(k, 104729)
        w[Q1] += wh(k, 1299709)
        w[Q4] += wh(k, 15485863)
        p.interval(0, 0, 0, 60000)
        p.service()
    ring = p.store.main
    count = 0
    first = last = None
    for t, _st, v in p.iter_rows():  # streamed: no list of the rows on a device heap
        k = (t - T0) // 60 - 1
        if first is None:
            first = t
        else:
            assert t == last + 60, (last, t)  # contiguous
        assert v[0] == wh(k, 7919) and v[1] == wh(k, 104729), (k, v)
        assert v[2] == wh(k, 1299709) and v[3] == wh(k, 15485863), (k, v)
        last = t
        count += 1
    assert last == T0 + 60 * n and first > T0 + 60, (first, last)  # the oldest overwritten
    recs = sum(1 for _ in p.store.records())
    assert ring.min_kept <= recs <= ring.capacity, (recs, ring.min_kept, ring.capacity)
    assert count > ring.min_kept * 10, (count, ring.min_kept)
    wear = nor.erase_counts
    assert max(wear[:4]) >= 1 and max(wear[:4]) - min(wear[:4]) <= 1, wear  # in rotation


def _cut_case(base, k, script):
    """Run ``script`` on a copy of the NOR image ``base`` with a power cut at its k-th flash
    operation; returns (cut?, nor, rows written before the cut began)."""
    nor = base.copy()
    part = Partition(nor, 0, nor.size)
    nor.cut_at_op(k)
    done = []
    try:
        script(part, done)
    except PowerCut:  # (the profile keeps metering through flash errors: the script checks)
        nor.power_on()
        return True, nor, done
    return False, nor, done


def test_power_cut_at_every_flash_operation_of_row_writes():
    base, part = _nor(8)
    clk = Clk()
    regs = _regs()
    p = _prof(clk, regs, part, period=60)
    _run(p, clk, regs, 60 * 150, step_s=60)  # a record closed, some rows open
    rows0 = list(p.iter_rows())
    start_s = clk.time()
    a0 = regs.whole[A_PLUS]

    def script(part, done):
        c = Clk(start_s)
        r = _regs()
        r.whole[A_PLUS] = a0
        q = _prof(c, r, part, period=60)
        for j in range(40):  # rows of 60 s; a record closes, a tail sector is erased
            c.now += 60000
            r.whole[A_PLUS] += 3 + j
            q.interval(0, 0, 0, 60000)
            q.service()
            if part._dev.dead:  # the supply failed during this row's write
                raise PowerCut()
            done.append(c.time())

    k = 0
    cuts = 0
    while True:
        k += 1
        cut, nor, done = _cut_case(base, k, script)
        if not cut:
            break
        cuts += 1
        c = Clk(start_s + 7200)
        q = _prof(c, _regs(), Partition(nor, 0, nor.size), period=60)
        got = list(q.iter_rows())
        ts = [r[0] for r in got]
        assert ts == sorted(set(ts)), (k, ts[-5:])  # no duplicate, no disorder
        old = [r for r in got if r[0] <= rows0[-1][0]]
        assert old == rows0[-len(old):] and old[-1] == rows0[-1], k  # no earlier row lost
        new = [r for r in got if r[0] > rows0[-1][0]]
        # every row captured before the cut is there, the one being written may be
        assert len(new) >= len(done) - 1 and len(new) <= len(done) + 1, (k, len(new), done)
        for r in new:  # and every row read back is the row that was written
            j = (r[0] - start_s) // 60 - 1
            assert r[2][0] == 3 + j and r[1] == (bp.ST_POWER_UP if j == 0 else 0), (k, r)
        for cur in (rows0[-1][0], rows0[-1][0] - 600, start_s + 1200):  # newest first
            assert _since(q, cur, c.time(), 96)[0] == _ref(q, cur, c.time(), 96), (k, cur)
    assert cuts >= 40, cuts


def test_p01_and_csv_lines_and_configuration_errors():
    clk = Clk()
    regs = _regs()
    p = _prof(clk, regs, period=900, chans=["1.29", "2.29", "14.7"])
    _run(p, clk, regs, 1800, wh=(1, 2, 0, 0))
    lines = list(p.p01_lines())
    assert lines[0] == "P.01(0260301001500)(40)(15)(3)(1.29)(kWh)(2.29)(kWh)(14.7)(Hz)", lines
    assert lines[1] == "(0.900)(1.800)(50.00)" and lines[2].startswith("P.01(026030100300"), lines
    csv = list(p.csv_lines())
    assert csv[0] == "time_utc,status,1.29_kWh,2.29_kWh,14.7_Hz", csv
    assert csv[2] == "2026-03-01T00:30:00Z,00,0.900,1.800,50.00", csv
    a, b = p01.parse_range("0260301002000;", p.zone)
    assert [r[0] for r in p.iter_rows(a, b)] == [T0 + 1800]
    for bad, word in (({"period_s": 120, "channels": ["1.29"]}, "period_s"),
                      ({"period_s": 900, "channels": ["1.8.0"]}, "unknown channel"),
                      ({"period_s": 900, "channels": []}, "channels"),
                      ({"period_s": 900, "channels": CH + ["2.5"]}, "channels")):
        try:
            layout_of(bad)
        except ValueError as e:
            assert word in str(e), (bad, e)
        else:
            raise AssertionError(bad)
    try:
        configs([{"channels": ["1.29"]}] * 4)
    except ValueError as e:
        assert "1..3" in str(e)
    else:
        raise AssertionError("4 profiles")


def test_three_profiles_share_the_partition():
    nor, part = _nor(24)
    clk = Clk()
    regs = _regs()
    cf = [{"period_s": 900, "channels": CH}, {"period_s": 60, "channels": ["1.29"]},
          {"period_s": 3600, "channels": ["1.29", "14.7"]}]
    ps = Profiles(regs, Met(), clk, cf, part)
    ps.start()
    for _ in range(7200):
        clk.now += 1000
        regs.whole[A_PLUS] += 1
        ps.interval(0, 0, 0, 1000)
        ps.service()
    ps.power_down()
    n = [len(list(ps.get(nm).iter_rows())) for nm in ("P.01", "P.02", "P.03")]
    assert n == [8 + 1, 120 + 1, 2 + 1], n  # + the stop's power-down row
    for nm in ("P.01", "P.02", "P.03"):
        assert sum(r[2][0] for r in ps.get(nm).iter_rows()) == 7200, nm
    ps2 = Profiles(regs, Met(), Clk(T0 + 3 * 3600 + 60), cf, part)  # after the intervals
    ps2.start()
    assert [len(list(ps2.get(nm).iter_rows())) for nm in ("P.01", "P.02", "P.03")] == n
    assert ps.get("P.04") is None


def _stream_text(acts):
    """The bytes of the session's actions, streamed messages produced piece by piece."""
    out = bytearray()
    for a in acts:
        d = a[1]
        if d is None:
            continue
        if hasattr(d, "chunks"):
            for piece in d.chunks():
                assert len(piece) <= 256 + 80, len(piece)
                out.extend(piece)
        else:
            out.extend(d)
    return bytes(out)


def test_session_r5_streams_the_profile_with_its_bcc():
    from iec62056 import codec as iec
    from iec62056 import session as S

    import test_iec_session as ts

    clk = Clk()
    regs = _regs()
    nor, part = _nor(8)
    p = _prof(clk, regs, part, period=60, chans=["1.29", "2.29"])
    _run(p, clk, regs, 60 * 600, step_s=60)
    calls = []

    def profile(addr, arg):
        calls.append((addr, arg))
        if addr != "P.01":
            raise KeyError(addr)
        a, b = p01.parse_range(arg or ";", p.zone)
        return lambda: p.p01_lines(a, b)

    req = ts.cmd("R", 5, "P.01(;)")
    m = ts.Meter(profile=profile)
    t, acts = ts.sign_on(m, "1")
    acts = ts.drain(m.s, req, t)  # before P1: ER07
    assert ts.sent(acts) == bytes(iec.build_error(S.ER_NO_PASSWORD)), acts
    m = ts.Meter(profile=profile)
    t, acts = ts.prog(m)
    acts = ts.drain(m.s, req, t)
    msg = _stream_text(acts)
    assert msg[0] == 2 and msg[-2] == 3 and iec.bcc(msg) == msg[-1], msg[-20:]
    lines = msg[1:-2].decode().split("\r\n")
    assert lines[-1] == "" and lines[0].startswith("P.01(0260301000100)(40)(1)(2)"), lines[:2]
    assert len(lines) == 600 + 2 + 1, len(lines)  # rows, 2 headers (status 40, then 00)
    again = _stream_text(ts.drain(m.s, iec.NAK_MSG, t + 10))  # a NAK: the same message
    assert again == msg
    acts = ts.drain(m.s, ts.cmd("R", 6, "P.01(0260301010000;0260301010200)"), t + 20)
    msg = _stream_text(acts)
    assert msg[1:-2].decode() == "P.01(0260301010000)(00)(1)(2)(1.29)(kWh)(2.29)(kWh)\r\n" \
        "(0.060)(0.000)\r\n(0.060)(0.000)\r\n(0.060)(0.000)\r\n", msg
    for bad, code in (("P.02(;)", S.ER_UNKNOWN_ADDRESS), ("P.01(1;2)", S.ER_BAD_VALUE),
                      ("P.01(0260301;)", S.ER_BAD_VALUE)):
        acts = ts.drain(m.s, ts.cmd("R", 5, bad), t + 30)
        assert ts.sent(acts) == bytes(iec.build_error(code)), (bad, acts)
    m2 = ts.Meter()  # no profile callback: R5 is not offered
    t, _ = ts.prog(m2)
    assert ts.sent(ts.drain(m2.s, req, t)) == bytes(iec.build_error(S.ER_UNSUPPORTED))


def test_stop_right_at_a_boundary_keeps_the_last_interval_whole():
    # the step at the boundary took the snapshot, the task had not served it: the stop
    # writes the full interval, then an empty power-down row for the next one
    clk = Clk()
    regs = _regs()
    p = _prof(clk, regs, period=900)
    _run(p, clk, regs, 899)
    clk.now += 1000
    regs.whole[A_PLUS] += 1
    p.interval(0, 0, 0, 1000)
    p.power_down()
    rows = list(p.iter_rows())
    assert [(r[0] - T0, r[1], r[2][0]) for r in rows] == [
        (900, bp.ST_POWER_UP, 900), (1800, bp.ST_POWER_DOWN, 0)], rows


def test_a_range_read_yields_after_every_tick_records():
    # the uplink's ``profile`` answer reads at most ``tick`` records a round: a range with no
    # row in a full ring was one scan of every record in one round of the event loop
    nor, part = _nor(6)
    clk = Clk()
    regs = _regs()
    p = _prof(clk, regs, part, period=60)
    _run(p, clk, regs, 600 * 60, step_s=60, wh=(7, 3, 5, 1))
    recs = sum(1 for _ in p.store.records())
    assert recs >= 16, recs
    reads = [0]
    records = p.store.records

    def counted():
        for r in records():
            reads[0] += 1
            yield r

    p.store.records = counted
    gone = T0 - 86400  # before every row: no match
    rounds = []
    reads[0] = 0
    for r in p.iter_rows(gone, gone, 4):
        assert r is None, r
        rounds.append(reads[0])
        reads[0] = 0
    rounds.append(reads[0])
    assert max(rounds) <= 4 and sum(rounds) == recs and len(rounds) >= recs // 4, rounds
    # with a match: the same rows as without tick, in order
    a, b = T0 + 3600, T0 + 5 * 3600
    got = [r for r in p.iter_rows(a, b, 3) if r is not None]
    assert got == list(p.iter_rows(a, b)) and len(got) == 241, len(got)


def _since(p, cur, t_to, max_rows, tick=0):
    """(the list rows_since returns, the Nones it yielded)"""
    box = []

    def run():
        box.append((yield from p.rows_since(cur, t_to, max_rows, tick)))

    nones = 0
    for x in run():
        assert x is None, x
        nones += 1
    return box[0], nones


def _ref(p, cur, t_to, max_rows):
    # the rows the oldest-first read gives (no clock set back: the same rows)
    out = []
    for r in p.iter_rows(cur + 1, t_to):
        out.append(r)
        if len(out) == max_rows:
            break
    return out


def _counting(p):
    # count the main ring's record reads (slots read, valid or not)
    ring = p.store.main
    reads = [0]
    slot = ring._slot_record

    def counted(s, k):
        reads[0] += 1
        return slot(s, k)

    ring._slot_record = counted
    return reads


def _full(sectors=6, n=1500):
    nor, part = _nor(sectors)  # main ring 4 sectors (56 records), tail 2
    clk = Clk()
    regs = _regs()
    p = _prof(clk, regs, part, period=60)
    for k in range(n):  # about 18 rows a record (up to 16 bits a channel): the ring wraps
        clk.now += 60000
        w = regs.whole
        w[A_PLUS] += (k * 7919) % 60000
        w[Q1] += (k * 1299709) % 60000
        p.interval(0, 0, 0, 60000)
        p.service()
    return nor, clk, regs, p


def test_the_schedule_reads_newest_first_only_the_records_it_needs():
    # the uplink's quarter-hour read (rows_since, firmware/uplink/task.py profile_bodies)
    # read every record of the ring from the oldest on (iter_rows) to find the newest rows
    nor, clk, regs, p = _full()
    t = clk.time()
    recs = sum(1 for _ in p.store.records())
    assert recs >= p.store.main.min_kept, recs
    reads = _counting(p)
    open_rows = p.buf.n
    for back in (0, 1, 5, 30, 60, 100, 200, 500):
        cur = t - 60 * back
        reads[0] = 0
        got, _n = _since(p, cur, t, 96)
        n = reads[0]
        assert got == _ref(p, cur, t, 96), back
        assert len(got) == min(back, 96), (back, len(got))
        # the records that hold the rows wanted, and the one with the cursor's row
        need = 0 if back < open_rows else (back - open_rows) // 12 + 2
        assert n <= need, (back, n, need, recs)
    reads[0] = 0
    assert _since(p, t - 60 * 30, t - 60 * 20, 96)[0] == _ref(p, t - 60 * 30, t - 60 * 20, 96)
    assert sum(1 for _ in p.iter_rows(t - 59, t)) == 1 and reads[0] >= recs  # (the old way)


def test_the_schedule_read_is_bounded_per_round_and_takes_the_oldest_rows():
    nor, clk, regs, p = _full()
    t = clk.time()
    reads = _counting(p)
    recs = sum(1 for _ in p.store.records())
    reads[0] = 0
    got, nones = _since(p, T0 - 86400, t, 50, 4)  # before every row: the whole ring, 4 a round
    n = reads[0]
    assert got == _ref(p, T0 - 86400, t, 50) and len(got) == 50, len(got)
    # every record's header, then the two or three records that hold the 50 rows again,
    # decoded one a round
    assert recs < n <= recs + 3 and nones == recs // 4 + n - recs, (n, recs, nones)
    rounds = []
    reads[0] = 0

    def run():
        yield from p.rows_since(T0 - 86400, t, 50, 4)

    for _x in run():
        rounds.append(reads[0])
        reads[0] = 0
    assert max(rounds) <= 4, rounds
    # a RAM-only profile (no partition): the same rows
    clk2 = Clk()
    regs2 = _regs()
    q = _prof(clk2, regs2, None, period=60)
    _run(q, clk2, regs2, 60 * 300, step_s=60)
    t2 = clk2.time()
    for back in (1, 40, 100, 250):
        assert _since(q, t2 - 60 * back, t2, 96)[0] == _ref(q, t2 - 60 * back, t2, 96), back


def test_the_schedule_read_skips_a_bit_flipped_record():
    nor, clk, regs, p = _full()
    t = clk.time()
    ring = p.store.main
    s = ring._newest  # the newest closed record: a payload bit flipped
    a = s * ring.sector_size + (ring._fill[s] - 1) * ring.slot_size + 40
    nor.image[a] ^= 0x10
    q = _prof(Clk(t), _regs(), Partition(nor, 0, nor.size), period=60)
    assert q.store.main.corrupt + q.store.main.torn == 1, q.store.main._summary()
    for back in (1, 20, 40, 80):
        cur = t - 60 * back
        got = _since(q, cur, t, 96)[0]
        assert got == _ref(q, cur, t, 96), (back, len(got))
        assert all(r[0] > cur for r in got)


def test_the_schedule_read_after_the_clock_was_set_back():
    nor, part = _nor(8)
    clk = Clk()
    regs = _regs()
    p = _prof(clk, regs, part, period=900)
    _run(p, clk, regs, 20 * 900, step_s=10)  # rows T0+900 .. T0+18000
    _run(p, clk, regs, 100, step_s=10)
    clk.set_time(clk.time() - 5000)  # back to T0 + 13100: the interval ends at 15 x 900
    _run(p, clk, regs, 400 + 900 * 2, step_s=10)  # rows 13500 (adjusted), 14400, 15300
    rows = list(p.iter_rows())
    ts = [r[0] - T0 for r in rows]
    assert ts == [900 * k for k in range(1, 21)] + [13500, 14400, 15300], ts
    assert rows[20][1] & bp.ST_CLOCK_ADJUSTED, rows[20]
    # the round at the new 13500: the cursor (18000) went back to 12600 (profile_bodies)
    got = _since(p, T0 + 12600, T0 + 13500, 96)[0]
    assert got == [rows[14], rows[20]], [r[:2] for r in got]  # old 13500 again, and the new
    # the next rounds: only the rows of the new time (the old 14400 is not read again)
    assert _since(p, T0 + 13500, T0 + 14400, 96)[0] == [rows[21]]
    assert _since(p, T0 + 14400, T0 + 15300, 96)[0] == [rows[22]]
    # once closed into the main ring (a restart: the open record flushed on power down)
    p.power_down()
    q = _prof(Clk(T0 + 15400), _regs(), part, period=900)
    assert _since(q, T0 + 13500, T0 + 14400, 96)[0] == [rows[21]]
    assert _since(q, T0 + 12600, T0 + 13500, 96)[0] == [rows[14], rows[20]]


def _same(p, a, b, tick=32):
    """The rows of range_rows compared one by one with iter_rows's (streamed: a device's heap
    holds no list of a ring's rows); returns how many."""
    want = p.iter_rows(a, b)
    n = 0
    for r in p.range_rows(a, b, tick):
        if r is None:
            continue
        w = next(want, None)
        assert r == w, (a, b, n, r, w)
        n += 1
    assert next(want, None) is None, (a, b, n, "rows missing")
    return n


def _cost(p, a, b, tick, reads):
    """(rows, records read, most records read between two yields) of range_rows alone."""
    n = most = k0 = 0
    reads[0] = 0
    for r in p.range_rows(a, b, tick):
        if r is None:
            most = max(most, reads[0] - k0)
            k0 = reads[0]
            continue
        n += 1
    return n, reads[0], max(most, reads[0] - k0)


def test_a_range_answer_reads_only_the_records_of_its_range():
    # the uplink's profile range answer read the ring from its oldest record (iter_rows), 32
    # records a round: a range of the last hours passed over the whole ring first
    nor, clk, regs, p = _full()  # a wrapped ring of 60-s rows
    t = clk.time()
    recs = sum(1 for _ in p.store.records())
    reads = _counting(p)
    p.store.bucket = 4  # (a small ring: 40 records; the meter's 730 have buckets of 16)
    first = min(r[0] for r in p.iter_rows())
    for a, b in ((t - 1800, t), (t - 60 * 400, t - 60 * 300), (first - 600, first + 600),
                 (first, t), (0, t + 10**6), (t + 60, t + 6000), (first - 900, first - 60),
                 (t - 60 * 700, t - 60 * 699)):
        n = _same(p, a, b, 4)
        assert _cost(p, a, b, 4, reads)[0] == n
        assert _cost(p, a, b, 4, reads)[2] <= 4, (a - t, b - t)  # bounded work a round
    # the index is kept up as rows are written: the same answers, and a recent range (the
    # last half hour) reads the record or two that hold it, not the ring
    for k in range(40):
        _run(p, clk, regs, 60, step_s=60)
        t = clk.time()
        n, nr, _m = _cost(p, t - 1800, t, 32, reads)
        assert n == 31 and _same(p, t - 1800, t) == 31, (k, n)
        assert nr <= 2 * 4, (k, nr, recs)  # (at most two buckets)
    reads[0] = 0
    for _r in p.iter_rows(t - 1800, t):
        pass
    assert reads[0] >= recs  # (the old way: every record)
    # after a restart the index is built again (the uplink does it at its start)
    p.power_down()
    q = _prof(Clk(t + 30), _regs(), Partition(nor, 0, nor.size), period=60)
    for a, b in ((t - 1800, t), (0, t + 60), (first + 6000, first + 9000)):
        _same(q, a, b)


def test_a_range_answer_after_the_clock_was_set_back_is_the_same():
    # rows of the old time far back in the ring (older buckets than the new time's): a read
    # that stopped at the first record ending before the range would miss them
    nor, part = _nor(8)  # main ring 6 sectors, ~90 records
    clk = Clk()
    regs = _regs()
    p = _prof(clk, regs, part, period=60)
    _run(p, clk, regs, 60 * 600, step_s=60)  # rows T0+60 .. T0+36000
    clk.set_time(clk.time() - 86400)  # a day back: every later row ends before the old ones
    _run(p, clk, regs, 60 * 900, step_s=60)
    clk.set_time(clk.time() + 86400 - 3600)  # forward again, into the old time's span
    _run(p, clk, regs, 60 * 400, step_s=60)
    k = 0
    back = False
    prev = lo = hi = old = None
    for r in p.iter_rows():
        t = r[0]
        back = back or (prev is not None and t < prev)
        lo = t if lo is None or t < lo else lo
        hi = t if hi is None or t > hi else hi
        if k < 600 and old is None and t > T0 + 7200:
            old = t
        prev = t
        k += 1
    assert back and lo < T0 < hi, "not in time order"
    assert old is not None and old < prev, "old-time rows ahead of newer ones"
    reads = _counting(p)
    for a, b in ((T0 + 7200, T0 + 9000), (T0 - 86400, T0), (T0 + 30000, T0 + 40000),
                 (T0 - 50000, T0 + 50000), (T0 + 35000, T0 + 36000), (0, 2**30),
                 (T0 - 60000, T0 - 59000)):
        n = _same(p, a, b, 8)
        assert n == _cost(p, a, b, 8, reads)[0], (a - T0, b - T0)
        assert _cost(p, a, b, 8, reads)[2] <= 8, (a - T0, b - T0)  # bounded work a round
    # a RAM-only profile: the rows of iter_rows too
    q = _prof(Clk(), _regs(), None, period=60)
    _run(q, q.clock, q.regs, 60 * 200, step_s=60)
    t = q.clock.time()
    assert _same(q, t - 3000, t) == 51  # (both ends in)


def test_a_range_answer_with_the_rtc_past_2068():
    # RTC seconds >= 2**31 (2068-01-19 on, the clock settable to 2099: meter/catalogue.py
    # _s_clock): the time index kept them in array("i") (signed 32 bits): OverflowError at
    # every closed record once built (the open record's tail append then not done, counted
    # lost) and at the index build (the uplink's start-up)
    t1 = seconds(2068, 1, 19)  # 2**31 - 11648
    nor, part = _nor(6)
    clk = Clk(t1)
    regs = _regs()
    p = _prof(clk, regs, part, period=60)
    _run(p, clk, regs, 60 * 400, step_s=60)  # rows across 2**31
    for _ in p.store.index_steps(0):
        pass
    _run(p, clk, regs, 60 * 300, step_s=60)  # written with the index built
    assert p.lost == 0 and p.fault is None, (p.lost, p.fault)
    t = clk.time()
    assert t > 2**31
    for a, b in ((t - 1800, t), (0, t + 60), (2**31 - 600, 2**31 + 600), (t1, 2**31)):
        assert _same(p, a, b) > 0, (a - t1, b - t1)
    # after a restart: the index built from records past 2**31
    p.power_down()
    q = _prof(Clk(t + 30), _regs(), Partition(nor, 0, nor.size), period=60)
    for a, b in ((t - 1800, t), (0, t + 60), (2**31 - 600, 2**31 + 600)):
        assert _same(q, a, b) > 0, (a - t1, b - t1)


def test_channel_table_is_constant_and_names_lib_energys_registers():
    # CHANNELS names lib/energy's register indices through constants of its own (a constant
    # tuple, in flash when frozen: RAM, issue 12): each energy and demand channel's sources
    import energy
    from meter import profile

    want = {"1.29": (energy.A_PLUS,), "2.29": (energy.A_MINUS,), "3.29": (energy.Q1, energy.Q2),
            "4.29": (energy.Q3, energy.Q4), "5.29": (energy.Q1,), "6.29": (energy.Q2,),
            "7.29": (energy.Q3,), "8.29": (energy.Q4,), "9.29": (energy.S_IMPORT,),
            "10.29": (energy.S_EXPORT,), "1.5": (energy.A_PLUS,), "2.5": (energy.A_MINUS,)}
    assert type(profile.CHANNELS) is tuple
    for c, d in profile.CHANNELS:
        assert profile.channel(c) is d
        if c in want:
            assert d[1] == want.pop(c), c
    assert not want and profile.channel("99.29") is None
