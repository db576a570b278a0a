"""Billing functions on the virtual board (issue 10 part A), against independent
computations on CPython (python-dateutil's tz, rrule and easter; exact trace integrals).

The main test meters two weeks (2016-03-21 .. 2016-04-04 UTC) with a two-rate plan in
Central European time: T2 06:00-22:00 local on working days, T1 otherwise and all day on
the weekend, Good Friday and Easter Monday (movable holidays, Easter 2016 = 27 March, the
day DST begins), block demand 15 min, billing period end on the 1st at 00:00 local
(= 2016-03-31 22:00 UTC). Three runs on one flash image: a power cut (power-fail warning,
no hold-up) on Thursday 24 March 10:00:10 UTC, two hours and three minutes off, a run that
stops exactly at the period end, then on to 4 April.
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
    peaks = {(3, 23, 10, 0): 9000, (3, 26, 23, 0): 7000, (4, 1, 10, 0): 8500,
             (4, 2, 15, 0): 9500}
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
BACK = CUT + dt.timedelta(seconds=OFF)
PEND = dt.datetime(2016, 3, 31, 22, tzinfo=UTC)  # 1 April 00:00 CEST
END = dt.datetime(2016, 4, 4, tzinfo=UTC)


def run_legs(tmp_path):
    """The three runs on one flash image; returns their JSON summaries."""
    img = str(tmp_path / "meter.img")
    plan = str(tmp_path / "plan.json")
    with open(plan, "w") as f:
        json.dump(PLAN, f)
    cut, off, back, pend, end = CUT, OFF, BACK, PEND, END
    legs = []
    # run 1: from T0 to the power cut (warning, supply gone at once)
    tr = str(tmp_path / "l1.csv")
    write_trace(tr, T0, cut)
    d1 = sim_json("--load", tr, "--flash", img, "--start", "2016-03-21T00:00:00Z",
                  "--tariffs", plan, "--speed", "max", "--duration", 400000,
                  "--power-fail-at", int((cut - T0).total_seconds()), "--holdup-ms", 0,
                  timeout=1500)
    assert d1["power_lost"] and d1["rtc_s"] == rtc(cut), (d1["rtc_s"], rtc(cut))
    legs.append(d1)
    # run 2: power back 2 h 3 min later, until exactly the end of the billing period
    tr = str(tmp_path / "l2.csv")
    write_trace(tr, back, pend)
    d2 = sim_json("--load", tr, "--flash", img, "--off-time", off, "--tariffs", plan,
                  "--speed", "max", "--duration", int((pend - back).total_seconds()),
                  timeout=1500)
    assert d2["rtc_s"] == rtc(pend)
    legs.append(d2)
    # run 3: on to 4 April
    tr = str(tmp_path / "l3.csv")
    write_trace(tr, pend, end)
    d3 = sim_json("--load", tr, "--flash", img, "--off-time", 0, "--tariffs", plan,
                  "--speed", "max", "--duration", int((end - pend).total_seconds()),
                  timeout=1500)
    assert d3["rtc_s"] == rtc(end)
    legs.append(d3)
    return legs


def test_two_weeks_dst_holiday_month_end_and_power_cut(tmp_path):
    check_legs(*run_legs(tmp_path))


def check_legs(d1, d2, d3):
    """Every check of the two-week run (split from the runs so that a failure can be
    examined on saved summaries)."""
    cut, back, pend, end = CUT, BACK, PEND, END
    legs = [d1, d2, d3]
    for d in legs:  # at every stop, the power cut included: exact sums to the mWh
        _check_sums(d["registers"])

    # registers and tariff split against the independent integral over the covered time
    want, blocks, switches = expected([(T0, cut), (back, end)])
    assert switches >= 10, switches  # the plan switched often enough to mean something
    got = d3["registers"]
    for k, v in want.items():
        # the registers' calibration quantisation (relative < 2e-7, lsb_per_unit_q8), and
        # < 1 mWh per switch where the readout's next mWh falls (meter/tariffs.py)
        tol = 5 + 2e-7 * v + (switches if k[-1] != "0" else 0)
        assert abs(_mwh(got[k]) - v) <= tol, (k, got[k], v / 1000.0, tol)
    assert want["1.8.1"] > 10000000 and want["1.8.2"] > 10000000 and want["2.8.1"] > 0

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
    march = maxima(blocks, rtc(T0), rtc(pend))
    for e in (0, 1, 2):
        w, t = march[e]
        got_w, got_t = snap["max_w"]["1.6.%d" % e]
        assert abs(got_w - w) <= 1 and got_t == t, (e, got_w, got_t, w, t)
    assert march[0][0] == 9000 and march[1][0] == 7000, march
    april = maxima(blocks, rtc(pend), rtc(end))
    for e in (0, 1, 2):
        w, t = april[e]
        got_w, got_t = b3["max_demand"]["1.6.%d" % e]
        assert abs(got_w - w) <= 1 and got_t == t, (e, got_w, got_t, w, t)
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

    # events: the DST change and the end of billing were logged (run 2)
    codes = [(c, v) for _t, c, v in d2["events"]]
    assert (103, 1) in codes and (100, 1) in codes, codes  # DST_CHANGED, BILLING_END
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
