"""Billing functions on the virtual board (issue 10 part A), against independent
computations on CPython (python-dateutil's tz, rrule and easter; exact trace integrals).

The main tests meter two weeks (2016-03-21 .. 2016-04-04 UTC) with a two-rate plan in
Central European time: T2 06:00-22:00 local on working days, T1 otherwise and all day on
the weekend, Good Friday and Easter Monday (movable holidays, Easter 2016 = 27 March, the
day DST begins), block demand 15 min, billing period end on the 1st at 00:00 local
(= 2016-03-31 22:00 UTC). The two weeks are four tests, each on its own flash image from
its own start date (the RTC set with --start), so that the system stage runs them side by
side (issue 12; they were one test of three runs on one image, ~1.2 million simulated s in
a row): together they cover every second of the two weeks but for the outages, and each
checks its registers and tariff split against the independent integral of its own time.
Part 1: working days and a power cut (Thursday 24 March 10:00:10 UTC, two hours and three
minutes off); part 2: Good Friday, the weekend and the change to summer time; part 3: Easter
Monday and working days in summer time; part 4: a second power cut (31 March), a run that
stops exactly at the period end, then on to 4 April on the same image.
"""

import datetime as dt
import json
import os

from dateutil import easter, rrule, tz
from simrun import run_sim, sim_json

UTC = dt.timezone.utc
EPOCH = dt.datetime(2000, 1, 1, tzinfo=UTC)
BERLIN = tz.gettz("Europe/Berlin")
T0 = dt.datetime(2016, 3, 21, tzinfo=UTC)
BLOCK = 900
START_S = 0.045  # a run meters from the end of the ADE7953 power-up sequence

PLAN = {
    "time_zone": {"offset_min": 60, "dst_rule": "eu"},
    "calendar": {
        "calendar_name_active": "two-rate",
        "season_profile_active": [
            {"season_profile_name": "all", "season_start": "01-01", "week_name": "w"}],
        "week_profile_table_active": [
            {"week_profile_name": "w", "monday": 1, "tuesday": 1, "wednesday": 1,
             "thursday": 1, "friday": 1, "saturday": 2, "sunday": 2}],
        "day_profile_table_active": [
            {"day_id": 1, "day_schedule": [{"start_time": "00:00", "script_selector": 1},
                                           {"start_time": "06:00", "script_selector": 2},
                                           {"start_time": "22:00", "script_selector": 1}]},
            {"day_id": 2, "day_schedule": [{"start_time": "00:00", "script_selector": 1}]}],
        "special_days_table": [{"index": 1, "easter_offset": -2, "day_id": 2},
                               {"index": 2, "easter_offset": 1, "day_id": 2}]},
    "demand": {"period_s": 900, "number_of_periods": 1, "thermal_period_s": 900},
    "billing_period": {"day": 1, "time": "00:00"},
}


def rtc(d):
    return int((d - EPOCH).total_seconds())


def power(k):
    """Power (W) of 15-minute block k after T0: a household day with PV export at noon on
    some days, and four peaks placed where the maxima must be found."""
    start = T0 + dt.timedelta(seconds=k * BLOCK)
    loc = start.astimezone(BERLIN)
    peaks = {(3, 23, 10, 0): 9000, (3, 26, 23, 0): 7000, (3, 31, 10, 0): 9000,
             (3, 31, 23, 0): 7000, (4, 1, 10, 0): 8500, (4, 2, 15, 0): 9500}
    p = peaks.get((loc.month, loc.day, loc.hour, loc.minute))
    if p is not None:
        return p
    h = loc.hour
    seed = (k * 7919 + 13) % 997
    base = 300 + seed * 2  # 300 .. 2292 W
    if 11 <= h < 15 and loc.day % 3 == 0:
        return -(500 + seed)  # PV export
    if 18 <= h < 21:
        base += 1500
    return base


def write_trace(path, start, end):
    """Trace CSV of [start, end) (t_s from the run's start), rows at the block edges."""
    k = int((start - T0).total_seconds()) // BLOCK
    with open(path, "w") as f:
        f.write("t_s,p_w,q_var\n")
        t = 0
        while start + dt.timedelta(seconds=t) < end:
            f.write("%d,%d,0\n" % (t, power(k)))
            edge = T0 + dt.timedelta(seconds=(k + 1) * BLOCK)
            t = int((edge - start).total_seconds())
            k += 1


def tariff_of(start):
    """Independent tariff at a UTC instant: rrule gives the working days, dateutil's easter
    the movable holidays, tz the local time (DST)."""
    loc = start.astimezone(BERLIN)
    day = loc.date()
    e = easter.easter(day.year)
    holidays = {e - dt.timedelta(days=2), e + dt.timedelta(days=1)}
    days = rrule.rrule(rrule.DAILY, byweekday=(rrule.MO, rrule.TU, rrule.WE, rrule.TH,
                                               rrule.FR),
                       dtstart=dt.datetime(day.year, day.month, day.day),
                       until=dt.datetime(day.year, day.month, day.day))
    working = any(True for _ in days) and day not in holidays
    return 2 if working and 6 <= loc.hour < 22 else 1


def expected(spans, reset_at=None):
    """Independent registers (mWh, exact), tariff split and block demands over the covered
    ``spans`` (list of (start, end) UTC datetimes)."""
    reg = {"1.8.0": 0.0, "2.8.0": 0.0}
    for t in range(1, 7):
        reg["1.8.%d" % t] = reg["2.8.%d" % t] = 0.0
    blocks = []  # (end RTC s, tariff, W demand, complete)
    switches = 0
    last = None
    for a, b in spans:
        k0 = int((a - T0).total_seconds()) // BLOCK
        k1 = -(-int((b - T0).total_seconds()) // BLOCK)
        for k in range(k0, k1):
            s = max(a, T0 + dt.timedelta(seconds=k * BLOCK))
            e = min(b, T0 + dt.timedelta(seconds=(k + 1) * BLOCK))
            secs = (e - s).total_seconds()
            if s == a:  # each run meters from the end of the chip's power-up: 45 ms later
                secs -= START_S  # (as host_tests/system/test_sim_metering.py integrates)
            p = power(k)
            tar = tariff_of(s)
            if last is not None and tar != last:
                switches += 1
            last = tar
            mwh = p * secs / 3.6
            if p >= 0:
                reg["1.8.0"] += mwh
                reg["1.8.%d" % tar] += mwh
            else:
                reg["2.8.0"] -= mwh
                reg["2.8.%d" % tar] -= mwh
            blocks.append((rtc(T0) + (k + 1) * BLOCK, tar, max(p, 0),
                           (e - s).total_seconds() == BLOCK and s != a))
    return reg, blocks, switches


def maxima(blocks, lo, hi):
    """{E: (W, time)} of the complete blocks ending in (lo, hi], first time on ties."""
    out = {}
    for end, tar, w, full in blocks:
        if not full or not lo < end <= hi:
            continue
        for e in (0, tar):
            if e not in out or w > out[e][0]:
                out[e] = (w, end)
    return out


def thermal(spans, end, period=900):
    """Independent thermal demand (W) at ``end``: per second D += alpha (P - D), alpha =
    1 - 10^(-1/T) (90 % of a step in T); 6 T of history settle it to 1e-6."""
    alpha = 1 - 10 ** (-1.0 / period)
    d = 0.0
    t = end - dt.timedelta(seconds=6 * period)
    while t < end:
        k = int((t - T0).total_seconds()) // BLOCK
        d += alpha * (max(power(k), 0) - d)
        t += dt.timedelta(seconds=1)
    return d


def _mwh(v):
    return int(round(v * 1000))


def _check_sums(regs):
    for c in ("1", "2"):
        total = _mwh(regs[c + ".8.0"])
        parts = sum(_mwh(regs["%s.8.%d" % (c, t)]) for t in range(1, 7))
        assert parts == total, (c, parts, total)


CUT = dt.datetime(2016, 3, 24, 10, 0, 10, tzinfo=UTC)
OFF = 7380
PEND = dt.datetime(2016, 3, 31, 22, tzinfo=UTC)  # 1 April 00:00 CEST
END = dt.datetime(2016, 4, 4, tzinfo=UTC)
# the two weeks in four parts, each on its own flash image from its own start date, so that
# they run side by side in the system stage (issue 12); together they cover every second
# of 2016-03-21 .. 2016-04-04 UTC but for the two outages
PART_B = dt.datetime(2016, 3, 25, tzinfo=UTC)  # Good Friday (01:00 local)
PART_C = dt.datetime(2016, 3, 28, tzinfo=UTC)  # Easter Monday (02:00 local, summer time)
PART_D = dt.datetime(2016, 3, 31, tzinfo=UTC)
CUT_D = dt.datetime(2016, 3, 31, 10, 0, 10, tzinfo=UTC)


def _plan(tmp_path):
    plan = str(tmp_path / "plan.json")
    with open(plan, "w") as f:
        json.dump(PLAN, f)
    return plan


def run_from(tmp_path, start, stops):
    """Runs on one fresh flash image from ``start``: ``stops`` is a list of (kind, until,
    off): kind "cut" = a power-fail warning at ``until`` (supply gone at once), "stop" = the
    run ends exactly at ``until``; ``off`` = seconds the mains was off before the run
    (None for the first). Returns the runs' JSON summaries and the covered spans."""
    img = str(tmp_path / "meter.img")
    plan = _plan(tmp_path)
    legs, spans = [], []
    for i, (kind, until, off) in enumerate(stops):
        tr = str(tmp_path / ("l%d.csv" % i))
        write_trace(tr, start, until)
        if off is None:
            when = ["--start", start.strftime("%Y-%m-%dT%H:%M:%SZ")]
        else:
            when = ["--off-time", off]
        dur = int((until - start).total_seconds())
        if kind == "cut":
            args = ["--duration", dur + 400000, "--power-fail-at", dur, "--holdup-ms", 0]
        else:
            args = ["--duration", dur]
        d = sim_json("--load", tr, "--flash", img, *when, "--tariffs", plan, "--speed",
                     "max", *args, timeout=1500)
        assert d["rtc_s"] == rtc(until), (i, d["rtc_s"], rtc(until))
        assert bool(d.get("power_lost")) == (kind == "cut"), (i, kind)
        _check_sums(d["registers"])  # at every stop, the power cut included: exact sums
        legs.append(d)
        if spans and spans[-1][1] == start:  # a restart with no outage: one span
            spans[-1] = (spans[-1][0], until)
        else:
            spans.append((start, until))
        nxt = i + 1 < len(stops) and stops[i + 1][2]
        start = until + dt.timedelta(seconds=nxt or 0)
    return legs, spans


def check_registers(d, spans):
    """The registers and their tariff split against the independent integral over the
    covered ``spans``; returns (expected mWh, blocks, tariff switches)."""
    want, blocks, switches = expected(spans)
    got = d["registers"]
    for k, v in want.items():
        # the registers' calibration quantisation (relative < 2e-7, lsb_per_unit_q8), and
        # < 1 mWh per switch where the readout's next mWh falls (meter/tariffs.py)
        tol = 5 + 2e-7 * v + (switches if k[-1] != "0" else 0)
        assert abs(_mwh(got[k]) - v) <= tol, (k, got[k], v / 1000.0, tol)
    return want, blocks, switches


def check_maxima(got, want):
    """Maximum demand 1.6.0..1.6.6 [W, RTC s] against the independent {E: (W, time)}; a
    tariff that was never in force has no maximum."""
    for e in range(7):
        got_w, got_t = got["1.6.%d" % e]
        if e in want:
            w, t = want[e]
            assert abs(got_w - w) <= 1 and got_t == t, (e, got_w, got_t, w, t)
        else:
            assert got_w == 0 and got_t == 0, (e, got_w, got_t)


def test_two_weeks_a_power_cut_on_working_days(tmp_path):
    """Part 1 of the two weeks (Mon 21 .. Thu 24 March 2016, winter time, working days, T2
    06:00-22:00 local): a power cut (the power-fail warning, no hold-up) on Thursday 24 March
    10:00:10 UTC, two hours and three minutes off, then on to 25 March 00:00 UTC. Checks:
    exact tariff sums at both stops, registers and tariff split (both tariffs switched
    twice a day, PV export in T2) against the independent integral over both runs, and the
    maxima per tariff with their times (the 9 kW peak of Wednesday 10:00 local, before the
    cut) kept across the cut."""
    (_d1, d2), spans = run_from(tmp_path, T0, [("cut", CUT, None), ("stop", PART_B, OFF)])
    want, blocks, switches = check_registers(d2, spans)
    assert switches >= 8, switches  # the plan switched often enough to mean something
    assert want["1.8.1"] > 10000000 and want["1.8.2"] > 10000000 and want["2.8.2"] > 0, want
    mx = maxima(blocks, rtc(T0), rtc(PART_B))
    check_maxima(d2["billing"]["max_demand"], mx)
    assert mx[0] == mx[2] and mx[0][0] == 9000 and mx[1][0] < 9000, mx
    assert d2["billing"]["vz"] == 0 and d2["billing"]["active_tariff"] == 1  # 01:00 local


def test_two_weeks_good_friday_weekend_and_dst(tmp_path):
    """Part 2 of the two weeks (25 .. 28 March 2016 00:00 UTC): Good Friday (a movable
    holiday, Easter - 2 days), the weekend with the 7 kW peak of Saturday 23:00 local, and
    Easter Sunday 27 March, the day summer time begins (01:00 UTC). Checks: the whole part
    is tariff 1 (holiday, weekend; no switch, no T2 maximum) against the independent
    calendar (dateutil easter, rrule), registers and split (PV export on Sunday in T1)
    against the integral, the maxima, and the DST change logged (event 103)."""
    (d,), spans = run_from(tmp_path, PART_B, [("stop", PART_C, None)])
    want, blocks, switches = check_registers(d, spans)
    assert switches == 0 and want["1.8.2"] == 0 and want["2.8.2"] == 0, (switches, want)
    assert want["1.8.1"] > 10000000 and want["2.8.1"] > 0, want
    mx = maxima(blocks, rtc(PART_B), rtc(PART_C))
    check_maxima(d["billing"]["max_demand"], mx)
    assert mx[0] == mx[1] and mx[1][0] == 7000 and 2 not in mx, mx
    codes = [(c, v) for _t, c, v in d["events"]]
    assert (103, 1) in codes, codes  # DST_CHANGED


def test_two_weeks_easter_monday_in_summer_time(tmp_path):
    """Part 3 of the two weeks (28 .. 31 March 2016 00:00 UTC, summer time): Easter Monday
    (Easter + 1 day) is tariff 1 all day though a Monday, then Tuesday and Wednesday switch
    at 06:00 and 22:00 local = 04:00 and 20:00 UTC. Checks: registers and tariff split
    against the independent integral (tz for the local time, dateutil easter for the
    holiday), T2 only from Tuesday on, and the maxima per tariff with their times."""
    (d,), spans = run_from(tmp_path, PART_C, [("stop", PART_D, None)])
    want, blocks, switches = check_registers(d, spans)
    assert switches == 4, switches  # Tue and Wed, twice each: none on Easter Monday
    assert want["1.8.1"] > 10000000 and want["1.8.2"] > 10000000 and want["2.8.2"] > 0, want
    mon = expected([(PART_C, dt.datetime(2016, 3, 28, 22, tzinfo=UTC))])[0]
    assert mon["1.8.2"] == 0 and mon["1.8.1"] > 0, mon  # Easter Monday 02:00-24:00 local
    mx = maxima(blocks, rtc(PART_C), rtc(PART_D))
    check_maxima(d["billing"]["max_demand"], mx)
    assert mx[2][1] > rtc(dt.datetime(2016, 3, 29, 4, tzinfo=UTC)), mx  # a working day
    assert d["billing"]["vz"] == 0


def test_two_weeks_power_cut_then_billing_period_end_and_april(tmp_path):
    """Part 4 of the two weeks (31 March 00:00 UTC .. Monday 4 April 2016 00:00 UTC, summer
    time), three runs on one flash image as the meter lives them: a power cut (warning, no
    hold-up) on Thursday 31 March 10:00:10 UTC after the 9 kW T2 peak of 10:00 local, two
    hours and three minutes off, a run that stops exactly at the end of the billing period
    (1 April 00:00 local = 31 March 22:00 UTC) after the 7 kW T1 peak of 23:00 local, then
    on to 4 April with the April peaks (Friday 1 April 10:00 local 8.5 kW in T2, Saturday
    15:00 local 9.5 kW in T1). Checks: exact sums at every stop, registers and split
    against the independent integral, the snapshot VZ 1 at the period end (the registers of
    that instant, the March maxima per tariff with their times, the one from before the
    cut included; DST in force; event 100), not closed a second time after the restart,
    the cumulative maxima, the April maxima, the last block demand, the thermal demand
    (independent exponential) and the active tariff at the end."""
    (_d1, d2, d3), spans = run_from(tmp_path, PART_D, [
        ("cut", CUT_D, None), ("stop", PEND, OFF), ("stop", END, 0)])
    pend, end = PEND, END
    want, blocks, switches = check_registers(d3, spans)
    assert switches >= 4, switches
    assert want["1.8.1"] > 10000000 and want["1.8.2"] > 10000000 and want["2.8.1"] > 0, want

    # the billing period: VZ 1, snapshot = the registers at the period end (run 2's end)
    b2 = d2["billing"]
    assert b2["vz"] == 1 and b2["last_end"] == rtc(pend), b2
    snap = b2["snapshots"][-1]
    assert snap["vz"] == 1 and snap["time"] == rtc(pend) and snap["reason"] == 1, snap
    assert snap["clock_status"] == 0x80, "DST in force at the end (DLMS clock status)"
    for k, v in snap["energy_wh"].items():
        assert v == _mwh(d2["registers"][k]) // 1000, (k, v, d2["registers"][k])
    for k, v in snap["tariffs_wh"].items():
        assert v == _mwh(d2["registers"][k]) // 1000, (k, v, d2["registers"][k])
    # run 3 keeps the snapshot (flash) and does not close the period a second time
    b3 = d3["billing"]
    assert b3["vz"] == 1 and [s["vz"] for s in b3["snapshots"]] == [1], b3["snapshots"]
    assert b3["snapshots"][0] == snap

    # maximum demand per tariff with time stamps: March in the snapshot, April now
    march = maxima(blocks, rtc(PART_D), rtc(pend))
    for e in (0, 1, 2):
        w, t = march[e]
        got_w, got_t = snap["max_w"]["1.6.%d" % e]
        assert abs(got_w - w) <= 1 and got_t == t, (e, got_w, got_t, w, t)
    assert march[0][0] == 9000 and march[1][0] == 7000, march
    assert march[2][1] < rtc(CUT_D) < march[1][1], march  # one before the cut, one after
    april = maxima(blocks, rtc(pend), rtc(end))
    check_maxima(b3["max_demand"], april)
    assert april[0] == (9500, april[1][1]) and april[2][0] == 8500, april
    for e in (0, 1, 2):  # cumulative maxima: the March maxima added at the reset
        assert b3["cum_demand"]["1.2.%d" % e] == snap["cum_w"]["1.2.%d" % e], b3
        assert abs(snap["cum_w"]["1.2.%d" % e] - march[e][0]) <= 1
    # block demand of the last block, and the thermal demand at the end
    last = [b for b in blocks if b[0] == rtc(end)][0]
    assert abs(b3["demand"]["last"] - last[2]) <= 1 and b3["demand"]["capture_time"] == \
        rtc(end), (b3["demand"], last)
    th = thermal([(pend, end)], end)
    assert abs(b3["demand"]["thermal"] - th) <= 1, (b3["demand"]["thermal"], th)

    # events: the end of billing was logged (run 2)
    codes = [(c, v) for _t, c, v in d2["events"]]
    assert (100, 1) in codes, codes  # BILLING_END
    assert b3["active_tariff"] == 1  # Monday 4 April 02:00 local


SLIDING = {"time_zone": {"offset_min": 60, "dst_rule": "eu"},
           "demand": {"period_s": 300, "number_of_periods": 3, "thermal_period_s": 600}}


def test_sliding_and_thermal_demand_match_an_independent_computation(tmp_path):
    plan = str(tmp_path / "plan.json")
    with open(plan, "w") as f:
        json.dump(SLIDING, f)
    start = dt.datetime(2016, 3, 22, 4, tzinfo=UTC)
    end = start + dt.timedelta(hours=10)
    tr = str(tmp_path / "s.csv")
    write_trace(tr, start, end)
    d = sim_json("--load", tr, "--start", "2016-03-22T04:00:00Z", "--tariffs", plan,
                 "--speed", "max", "--duration", int((end - start).total_seconds()),
                 timeout=900)
    _check_sums(d["registers"])
    b = d["billing"]
    # independent: 5-min sub-periods, demand = energy of the last 3 x 3600 / 900 s; a block
    # of the trace is 15 min, so each sub-period has one power
    subs = []
    t = start
    while t < end:
        k = int((t - T0).total_seconds()) // BLOCK
        subs.append((rtc(t) + 300, max(power(k), 0)))
        t += dt.timedelta(seconds=300)
    slid = []
    for i in range(len(subs)):
        window = [subs[j][1] if j >= 0 else 0 for j in (i - 2, i - 1, i)]
        slid.append((subs[i][0], sum(window) / 3.0))
    best = max(slid, key=lambda x: x[1])
    first = [x for x in slid if x[1] == best[1]][0]
    assert abs(b["max_demand"]["1.6.0"][0] - first[1]) <= 1, (b["max_demand"], first)
    assert b["max_demand"]["1.6.0"][1] == first[0]
    assert abs(b["demand"]["last"] - slid[-1][1]) <= 1 and b["demand"]["capture_time"] == \
        slid[-1][0]
    th = thermal([(start, end)], end, 600)
    assert abs(b["demand"]["thermal"] - th) <= 1, (b["demand"]["thermal"], th)


def test_a_bad_tariff_file_is_named_and_the_meter_does_not_start(tmp_path):
    bad = str(tmp_path / "bad.json")
    cases = (("{", "not valid JSON"),
             (json.dumps({"demand": {"period_s": 700}}), "demand.period_s: 700"),
             (json.dumps({"calendar": {"day_profile_table_active": []}}),
              "calendar.day_profile_table_active: 0 entries"),
             (json.dumps({"time_zone": {"dst_rule": "mars"}}), "time_zone.dst_rule"),
             (json.dumps({"tariff": 1}), "tariff: unknown field"))
    for text, want in cases:
        with open(bad, "w") as f:
            f.write(text)
        rc, out, err = run_sim("--tariffs", bad, "--duration", 1, "--speed", "max")
        assert rc == 2 and "--tariffs" in err and want in err, (text, rc, err)
    rc, _o, err = run_sim("--tariffs", os.path.join(str(tmp_path), "missing.json"))
    assert rc == 2 and "no such file" in err, err


RESET = r'''
import json, sys
from iec62056_21.client import Iec6205621Client
from iec62056_21 import messages

port, addr, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = Iec6205621Client.with_tcp_transport(address=("127.0.0.1", port), device_address=addr)
c.transport.socket.settimeout(10.0)
c.connect()
out = {"e2": []}
try:
    c.access_programming_mode()
    m = messages.CommandMessage("P", 1, messages.DataSet(address="", value="00000000"))
    c.transport.send(m.to_bytes())
    out["pw"] = "ACK" if c._recv_ack() == "\x06" else "?"
    out["vz0"] = c.read_single_value("0.1.0").value
    for _i in range(n):
        e2 = messages.CommandMessage("E", 2, messages.DataSet(address="C.91.5", value=""))
        c.transport.send(e2.to_bytes())
        r = c.transport.recv(1)
        if r == b"\x06":
            out["e2"].append("ACK")
        else:  # STX (ERnn) ETX BCC
            while r[-1:] != b"\x03":
                r += c.transport.recv(1)
            c.transport.recv(1)
            out["e2"].append(r.decode("latin-1"))
    out["vz"] = c.read_single_value("0.1.0").value
    if out["vz"] != "0":
        h = c.read_single_value("1.8.0*1")
        out["hist"] = [h.value, h.unit]
        out["hist_t"] = c.read_single_value("1.6.0.T*1").value
    c.send_break()
except Exception as e:
    out["error"] = "%s %s" % (type(e).__name__, e)
c.disconnect()
print(json.dumps(out))
'''


def _reset_session(tmp, port, n):
    import subprocess
    import sys

    script = os.path.join(str(tmp), "reset.py")
    with open(script, "w") as f:
        f.write(RESET)
    r = subprocess.run([sys.executable, "-I", script, str(port), "SIM00001", str(n)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_demand_reset_over_the_optical_port_sealed_and_locked_out(tmp_path):
    import subprocess
    import time

    from simrun import MICROPYTHON, MPYPATH, ROOT
    from test_iec_client import _free_port

    img = str(tmp_path / "meter.img")
    plan = str(tmp_path / "plan.json")
    with open(plan, "w") as f:
        json.dump({"demand": {"period_s": 60, "reset_lockout_s": 3600}}, f)
    env = dict(os.environ, MICROPYPATH=MPYPATH)
    out = {}
    for seal in ("closed", "open"):
        port = _free_port()
        p = subprocess.Popen([MICROPYTHON, "firmware/main.py", "--quiet", "--speed", "20",
                              "--flash", img, "--optical-tcp", str(port), "--tariffs", plan,
                              "--seal", seal], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        try:
            time.sleep(1.5)
            assert p.poll() is None, p.communicate()[0]
            time.sleep(4)  # 80 simulated s: a 60-s demand period captured
            out[seal] = _reset_session(tmp_path, port, 1 if seal == "closed" else 2)
        finally:
            p.terminate()
            p.communicate(timeout=20)
    sealed, opened = out["closed"], out["open"]
    assert sealed["pw"] == "ACK" and "ER06" in sealed["e2"][0], sealed
    assert sealed["vz"] == "0", sealed
    assert opened["pw"] == "ACK" and opened["e2"][0] == "ACK", opened
    assert "ER09" in opened["e2"][1], "the second reset within the lockout: %r" % opened
    assert opened["vz"] == "1" and opened["hist"][1] == "kWh", opened
    assert len(opened["hist_t"]) == 13 and opened["hist_t"] != "0" * 13, opened
    d = sim_json("--flash", img, "--duration", 0, "--off-time", 0, "--tariffs", plan)
    b = d["billing"]
    assert b["vz"] == 1 and b["resets"] == 1 and b["snapshots"][-1]["reason"] == 2, b
    snap = b["snapshots"][-1]
    assert "%d.%03d" % (snap["energy_wh"]["1.8.0"] // 1000,
                        snap["energy_wh"]["1.8.0"] % 1000) == opened["hist"][0].lstrip("0") \
        or int(float(opened["hist"][0]) * 1000) == snap["energy_wh"]["1.8.0"], (snap, opened)
    # the maxima restarted at the reset: any maximum now was captured after it (the meter ran
    # on after the session: 60-s demand periods)
    now_w, now_t = b["max_demand"]["1.6.0"]
    assert snap["max_w"]["1.6.0"][0] > 0 and (now_t == 0 or now_t > snap["time"]), (snap, b)
