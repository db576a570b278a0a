"""The load profile on the virtual board, end to end: two days and about two hours of
metering in two runs with a power cut (the power-fail warning, an outage, a restart from
the flash image), then the profile read with ``R5 P.01(...)`` over the optical TCP port in
programming mode, parsed, and checked against the registers (the A+ rows sum to the 1.8.0
difference, to the Wh), against the trace's independent integral (each interval), against
the --profile-csv export, and for the status bits and headers the cut leaves."""

import os
import subprocess

from ports import free_port
from simrun import MICROPYTHON, MPYPATH, ROOT, SIM_HEAP, integral, read_trace, sim_json, stop_sim

from bench_profile import read_profile  # noqa: I001  (tools/ is on the path once simrun is in)

from billing import p01
from billing.localtime import Zone
from meter.profile import layout_of

LOAD = os.path.join(ROOT, "boards/sim/loads/household_pv_2016.csv")
START = "2026-03-02"
T0 = 825724800  # 2026-03-02 00:00 UTC in RTC seconds
PF_AT = 2 * 86400 - 5000 + 317  # the power-fail warning, mid-interval
OFF = 4000  # the outage
# run 2 ends at the second interval boundary after 2 h: past the end of the day read with
# P.01(day) (the checks need the cut, the outage, the power-up interval and rows after it;
# a whole day more, as before issue 12's system-stage split, added CPU and readout time only)
DUR2 = 7200 + 900 - (PF_AT + OFF) % 900


def test_profile_over_a_power_cut_read_with_p01(tmp_path):
    img = str(tmp_path / "meter.img")
    csv = str(tmp_path / "p01.csv")
    r1 = sim_json("--flash", img, "--start", START, "--speed", "max", "--load", LOAD,
                  "--power-fail-at", PF_AT, "--holdup-ms", 0, "--duration", 3 * 86400,
                  timeout=600)
    assert r1["power_lost"] and r1["rtc_s"] == T0 + PF_AT, r1["rtc_s"]
    r2 = sim_json("--flash", img, "--off-time", OFF, "--speed", "max", "--load", LOAD,
                  "--duration", DUR2, "--profile-csv", csv, timeout=600)
    end2 = r2["rtc_s"]
    assert end2 % 900 == 0 and end2 == T0 + PF_AT + OFF + DUR2, (end2, DUR2)
    assert r2["profile"]["P.01"]["lost"] == 0, r2["profile"]
    port = free_port()
    ctl = free_port()
    env = dict(os.environ, MICROPYPATH=MPYPATH)
    p = subprocess.Popen([MICROPYTHON, "-X", "heapsize=" + SIM_HEAP, "firmware/main.py",
                          "--flash", img, "--off-time", "0", "--quiet", "--speed", "1",
                          "--load", LOAD, "--optical-tcp", str(port), "--control-tcp", str(ctl)],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        day = "0260303000000;0260304000000"
        (text, dt, _), (day_text, _, _), (none, _, _), (err, _, _), (pf, _, _) = read_profile(
            port, [(5, "P.01(;)"), (6, "P.01(%s)" % day), (5, "P.01(0300101000000;)"),
                   (5, "P.02(;)"), (5, "P.98.97(;)")])
    finally:
        try:
            stop_sim(p, ctl)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
    lay = layout_of({"period_s": 900, "channels": ["1.29", "2.29", "3.29", "4.29", "1.5",
                                                   "32.7"]})
    zone = Zone()
    blocks = p01.parse(text)
    rows = p01.to_rows(blocks, lay, zone)
    ts = [r[0] for r in rows]
    assert ts == sorted(set(ts)) and ts[0] == T0 + 900 and ts[-1] == end2, (ts[:2], ts[-2:])
    # the A+ rows sum to the 1.8.0 register to the Wh (the registers started at zero)
    assert sum(r[2][0] for r in rows) == int(r2["registers"]["1.8.0"]), (
        sum(r[2][0] for r in rows), r2["registers"]["1.8.0"])
    assert sum(r[2][1] for r in rows) == int(r2["registers"]["2.8.0"])
    rq = r2["registers"]["3.8.0"] - sum(r[2][2] for r in rows)
    assert 0 <= rq < 2, rq  # R+ = floor(Q1) + floor(Q2): within 2 varh of 3.8.0
    # the cut: a power-down row at the end of the interval of the warning, the outage's
    # rows missing, a power-up interval after the restart; each a new header
    cut_tb = (T0 + PF_AT) // 900 * 900 + 900
    st = {r[0]: r[1] for r in rows}
    assert st[T0 + 900] == 0x40 and st[cut_tb] == 0x80, (st[T0 + 900], st[cut_tb])
    back = (T0 + PF_AT + OFF) // 900 * 900 + 900
    assert [t for t in ts if cut_tb < t < back] == [] and st[back] == 0x40, back
    assert st[end2] == 0x00 and all(v == 0 for t, v in st.items()
                                    if t not in (T0 + 900, cut_tb, back)), st
    assert [b[0] for b in blocks] == [zone.vdew_stamp(t) for t in (
        T0 + 900, T0 + 1800, cut_tb, back, back + 900)], [b[:3] for b in blocks]
    # each interval of the first run against the trace's independent integral
    trace = read_trace(LOAD)
    for k in (1, 2, 37, 95, 96, 150, 186):  # (187: the cut)
        tb = T0 + 900 * k
        ref = integral(trace, tb - T0)["1.8.0"] - integral(trace, tb - T0 - 900)["1.8.0"]
        row = [r for r in rows if r[0] == tb][0]
        assert abs(row[2][0] - ref) <= 1.001, (k, row, ref)
        assert row[2][4] == row[2][0] * 4, row  # last average demand, W
    part = rows[ts.index(cut_tb)]
    ref = integral(trace, PF_AT)["1.8.0"] - integral(trace, cut_tb - 900 - T0)["1.8.0"]
    assert abs(part[2][0] - ref) <= 1.001, (part, ref)
    # a one-day range, inclusive; nothing after 2030; no second profile
    drows = p01.to_rows(p01.parse(day_text), lay, zone)
    assert drows == [r for r in rows if T0 + 86400 <= r[0] <= T0 + 2 * 86400], len(drows)
    assert none == "" and err == "(ER01)", (none, err)
    # the power failure log (R5 P.98.97): the outage with its duration
    assert pf == "P.98(%s)(97)(1)(19)(%d)(meter)()\r\n" % (
        zone.vdew_stamp(T0 + PF_AT + OFF), OFF), pf
    # the CSV export of run 2 holds the same rows
    with open(csv) as f:
        lines = f.read().splitlines()
    assert lines[0] == "time_utc,status,1.29_kWh,2.29_kWh,3.29_kvarh,4.29_kvarh,1.5_kW,32.7_V"
    assert len(lines) == 1 + len(rows) + 1, (len(lines), len(rows))  # + the stop's row
    assert lines[-2].split(",")[2] == p01.fixed(rows[-1][2][0], 3), (lines[-2], rows[-1])
    assert lines[-1].split(",")[1] == "80", lines[-1]
