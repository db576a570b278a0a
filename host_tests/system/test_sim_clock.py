"""Time on the virtual board as a process: ``--speed N`` meters exactly like ``--speed max``
(the virtual clock never runs ahead of the tasks, starts at t = 0 with the meter, stops at
exactly ``--duration``), and the battery-backed RTC survives restarts (issue 7, items 5
and 6)."""

import os
import signal
import subprocess
import sys
import time

from iec_prog import prog
from simrun import MICROPYTHON, MPYPATH, ROOT, integral, read_trace, sim_json
from test_iec_client import _free_port

FOUR_Q = os.path.join(ROOT, "boards/sim/loads/four_quadrant.csv")
HOUSE_PV = os.path.join(ROOT, "boards/sim/loads/household_pv_2016.csv")
HOUSE = os.path.join(ROOT, "boards/sim/loads/household_2016.csv")
EPOCH_2016 = 504921600
CLOCK_INVALID = 30


def _same(a, b, what):
    """Identical registers (to the mWh), pulses and LED flashes, and the exact end time."""
    assert a["registers"] == b["registers"], (what, a["registers"], b["registers"])
    assert a["pulses"] == b["pulses"], (what, a["pulses"], b["pulses"])
    assert a["led_kwh_flashes"] == b["led_kwh_flashes"], (what, a["led_kwh_flashes"],
                                                          b["led_kwh_flashes"])
    assert a["sim_s"] == b["sim_s"], (what, a["sim_s"], b["sim_s"])


def test_speed_n_meters_exactly_like_max_four_quadrant():
    # the case: at --speed 3600 the old clock ran during start-up and while the
    # tasks fell behind, lost part of the load and overshot --duration
    d = 1260
    ref = sim_json("--load", FOUR_Q, "--speed", "max", "--duration", d)
    exact = integral(read_trace(FOUR_Q), d)
    assert abs(ref["registers"]["1.8.0"] - exact["1.8.0"]) < 0.0025, (ref, exact)
    for speed in ("600", "3600", "1e6"):  # 1e6: the tasks can never keep up with the wall
        out = sim_json("--load", FOUR_Q, "--speed", speed, "--duration", d)
        assert out["sim_s"] == d, ("ends at exactly --duration", speed, out["sim_s"])
        _same(out, ref, "--speed " + speed)


def test_speed_n_meters_exactly_like_max_household_traces():
    for load, speed, d in ((HOUSE_PV, "3600", 7200), (HOUSE, "7200", 10800)):
        ref = sim_json("--load", load, "--speed", "max", "--duration", d)
        out = sim_json("--load", load, "--speed", speed, "--duration", d)
        _same(out, ref, (load, speed))


def test_odd_speeds_and_fractional_durations(tmp_path):
    # a busy load (3 kW: three LED pulses a second) at speeds below, at and near real time
    load = tmp_path / "busy.csv"
    load.write_text("t_s,p_w,q_var\n0,3000,-700\n0.5,2500,300\n1.25,-1800,450\n")
    for speed, d in (("0.5", 1.25), ("1", 2.5), ("7", 14.2), ("600", 77.7)):
        ref = sim_json("--load", str(load), "--speed", "max", "--duration", d)
        out = sim_json("--load", str(load), "--speed", speed, "--duration", d)
        _same(out, ref, "--speed %s --duration %s" % (speed, d))
        assert out["sim_s"] == d, (speed, out["sim_s"])


def test_tiny_and_zero_durations():
    for d in ("0", "0.001", "0.5"):
        for speed in ("max", "3600"):
            out = sim_json("--load", FOUR_Q, "--speed", speed, "--duration", d)
            assert out["sim_s"] == float(d), (d, speed, out["sim_s"])
            assert all(v == 0 for v in out["registers"].values()), out["registers"]


def _ring_events(img, tmp_path):
    """Events persisted in the image's standard event log: [(t, code, value)], oldest first
    (decoded by tools/events_dump.py with the firmware's own RingLog, on a copy of the
    image)."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from events_dump import read_logs

    copy = str(tmp_path / "copy.img")
    with open(img, "rb") as f, open(copy, "wb") as g:
        g.write(f.read())
    return [(r["t"], r["code"], r["value"]) for r in read_logs(copy)["standard"]]


def test_rtc_survives_restarts_and_event_times_never_go_backwards(tmp_path):
    img = str(tmp_path / "nor.img")
    first = sim_json("--load", FOUR_Q, "--speed", "max", "--flash", img, "--duration", 3600)
    assert first["rtc_s"] == EPOCH_2016 + 3600 and first["rtc_valid"], first["rtc_s"]
    assert os.path.exists(img + ".rtc"), "RTC state kept next to the image"
    # mains off for 600 s: the RTC ran on its battery
    again = sim_json("--load", FOUR_Q, "--speed", "max", "--flash", img, "--duration", 100,
                     "--off-time", 600)
    assert again["events"][0][0] == EPOCH_2016 + 4200, again["events"]
    assert again["rtc_s"] == EPOCH_2016 + 4300 and again["rtc_valid"], again["rtc_s"]
    assert CLOCK_INVALID not in [e[1] for e in again["events"]]
    # a power loss (hold-up elapsed), a cut in the middle of a flash operation, a hard kill:
    # each restart goes on from where the RTC was
    lost = sim_json("--load", FOUR_Q, "--speed", "max", "--flash", img, "--duration", 900,
                    "--power-fail-at", 333.5, "--off-time", 0)
    assert lost["power_lost"] and lost["sim_s"] == 333.6, lost["sim_s"]
    assert lost["rtc_s"] == EPOCH_2016 + 4300 + 333, lost["rtc_s"]
    sim_json("--load", FOUR_Q, "--speed", "max", "--flash", img, "--duration", 300,
             "--commit-s", 5, "--cut-at-op", 9, "--off-time", 0)
    env = dict(os.environ, MICROPYPATH=MPYPATH)
    p = subprocess.Popen([MICROPYTHON, "firmware/main.py", "--load", FOUR_Q, "--speed", "300",
                          "--flash", img, "--commit-s", "2", "--quiet", "--off-time", "0"],
                         cwd=ROOT, env=env)
    time.sleep(2.5)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)
    last = sim_json("--load", FOUR_Q, "--speed", "max", "--flash", img, "--duration", 0,
                    "--off-time", 0)
    assert last["rtc_valid"] and last["storage"] == "ok", last
    ring = _ring_events(img, tmp_path)
    assert len(ring) >= 12, ring  # power-up, metrology ok, power fail, ... of six runs
    times = [e[0] for e in ring]
    assert times == sorted(times), ("persisted event times went backwards", ring)
    assert ring[-1][0] == last["rtc_s"], (ring[-1], last["rtc_s"])
    # the killed run metered and persisted events well past the cut run's end
    assert last["rtc_s"] > EPOCH_2016 + 4300 + 333 + 300, last["rtc_s"]


def test_off_time_defaults_to_the_host_wall_clock(tmp_path):
    img = str(tmp_path / "nor.img")
    first = sim_json("--load", FOUR_Q, "--speed", "max", "--flash", img, "--duration", 10)
    t0 = time.time()
    time.sleep(2.2)
    again = sim_json("--load", FOUR_Q, "--speed", "max", "--flash", img, "--duration", 0)
    gap = time.time() - t0
    assert first["rtc_s"] + 2 <= again["rtc_s"] <= first["rtc_s"] + gap + 2, (
        first["rtc_s"], again["rtc_s"], gap)


def test_start_sets_the_rtc_iso_or_seconds(tmp_path):
    img = str(tmp_path / "nor.img")
    out = sim_json("--load", FOUR_Q, "--speed", "max", "--flash", img, "--duration", 5,
                   "--start", "2025-06-01T12:00:00Z")
    assert out["rtc_s"] == 802094400 + 5 and out["rtc_valid"], out["rtc_s"]
    out = sim_json("--load", FOUR_Q, "--speed", "max", "--duration", 5, "--start", "86400")
    assert out["rtc_s"] == 86405, out["rtc_s"]


def test_flat_battery_clock_invalid_logged_flagged_until_set(tmp_path):
    img = str(tmp_path / "nor.img")
    sim_json("--load", FOUR_Q, "--speed", "max", "--flash", img, "--duration", 60)
    flat = sim_json("--load", FOUR_Q, "--speed", "max", "--flash", img, "--duration", 60,
                    "--rtc-battery", "flat")
    assert not flat["rtc_valid"] and flat["rtc_s"] == 60, flat["rtc_s"]
    assert flat["error_flags"] & 0x10, ("F.F.0 clock bit", flat["error_flags"])
    codes = [e[1] for e in flat["events"]]
    assert codes.count(CLOCK_INVALID) == 1, codes
    # a battery back in place keeps a wrong time wrong: still invalid, logged again
    still = sim_json("--load", FOUR_Q, "--speed", "max", "--flash", img, "--duration", 5,
                     "--off-time", 10)
    assert not still["rtc_valid"] and still["rtc_s"] == 60 + 10 + 5, still["rtc_s"]
    assert CLOCK_INVALID in [e[1] for e in still["events"]] and still["error_flags"] & 0x10
    # set over IEC 62056-21 (W1 0.9.2 / 0.9.1): valid, F.F.0 clear, kept across a restart
    port = _free_port()
    env = dict(os.environ, MICROPYPATH=MPYPATH)
    p = subprocess.Popen([MICROPYTHON, "firmware/main.py", "--load", FOUR_Q, "--quiet",
                          "--speed", "10", "--flash", img, "--off-time", "0", "--optical-tcp",
                          str(port), "--serial", "CLK00001"], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(1.0)
        assert p.poll() is None, p.communicate()[0]
        got = prog(port, "CLK00001", [("R", "F.F.0"), ("W", "0.9.2", "250601"),
                                      ("W", "0.9.1", "120000"), ("R", "F.F.0")])
    finally:
        p.terminate()
        p.communicate(timeout=10)
    assert "error" not in got and got["pw"] == got["W 0.9.2"] == got["W 0.9.1"] == "\x06", got
    assert int(got["R F.F.0"], 16) & 0x10 and not int(got["R F.F.0 #2"], 16) & 0x10, got
    after = sim_json("--load", FOUR_Q, "--speed", "max", "--flash", img, "--duration", 0,
                     "--off-time", 0)
    assert after["rtc_valid"] and CLOCK_INVALID not in [e[1] for e in after["events"]]
    assert 802094400 <= after["rtc_s"] < 802094400 + 600, after["rtc_s"]  # 2025-06-01 12:00
    assert not after["error_flags"] & 0x10


def test_invalid_clock_is_shown_on_the_lcd():
    from test_sim_display import Sim

    for battery, alarm in (("flat", True), ("ok", False)):
        sim = Sim("--speed", "10", "--rtc-battery", battery)
        try:
            assert sim.cmd("press scroll") == "OK"  # ends the start-up frames
            # ALARM is also lit until the metering task has the chip up (F.F.0 metrology bit),
            # which a loaded machine can delay past the first 1.8.0 frame: once the chip is
            # up (20 simulated s), ALARM is the clock's alone
            sim.wait_lcd(lambda t: t.startswith("1.8.0"), "the normal list")
            time.sleep(2.0)
            sim.wait_lcd(lambda t, a=alarm: ("ALARM" in t.split()) == a,
                             "ALARM %s with the RTC battery %s" % (alarm, battery), timeout=20.0)
            if alarm:  # and it stays (the clock stays invalid until set)
                time.sleep(1.0)
                assert "ALARM" in sim.cmd("lcd").split(), battery
        finally:
            sim.stop()
