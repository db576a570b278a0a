"""The virtual board as a process: registers against an independent integral of the trace,
and bad input (malformed load, dead or mis-clocked chip, faults mid-run)."""

import os

import pytest
from simrun import ROOT, integral, read_trace, run_sim, sim_json

FOUR_Q = os.path.join(ROOT, "boards/sim/loads/four_quadrant.csv")


def _check(regs, ref, abs_tol=0.0025, rel_tol=2e-6):
    for k, v in ref.items():
        got = regs[k]
        assert abs(got - v) <= abs_tol + rel_tol * abs(v), (k, got, v)


# every trace at --speed max and at a real-time-scaled speed: the same registers (the virtual
# clock never runs ahead of the tasks, boards/sim/clock.py)
@pytest.mark.parametrize("speed", ["max", "600"])
def test_four_quadrant_trace_every_register(speed):
    out = sim_json("--load", FOUR_Q, "--speed", speed, "--duration", 1260)
    ref = integral(read_trace(FOUR_Q), 1260)
    for k in ("1.8.0", "2.8.0", "5.8.0", "6.8.0", "7.8.0", "8.8.0", "9.8.0", "10.8.0"):
        assert ref[k] > 1, ("trace must exercise every register", k, ref[k])
    _check(out["registers"], ref)
    assert out["sim_s"] == 1260
    assert out["fault"] is None
    # the starting-current segment (4.6 W = 20 mA at 230 V) registered
    assert out["registers"]["1.8.0"] > ref["1.8.0"] - 0.01
    # LED: one pulse per Wh of |active| energy (1000 imp/kWh)
    wh = ref["1.8.0"] + ref["2.8.0"]
    assert abs(out["pulses"] - wh) <= 2, (out["pulses"], wh)


@pytest.mark.parametrize("speed", ["max", "7200"])
def test_household_day_accuracy(speed):
    load = os.path.join(ROOT, "boards/sim/loads/household_pv_2016.csv")
    d = 6 * 3600
    out = sim_json("--load", load, "--speed", speed, "--duration", d)
    ref = integral(read_trace(load), d, skip_s=0.045)
    _check(out["registers"], ref, abs_tol=0.01, rel_tol=1e-4)


def test_malformed_csv_names_the_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("t_s,p_w,q_var\n0,100,0\n5,abc,0\n")
    rc, out, err = run_sim("--load", str(bad), "--duration", 1, "--quiet")
    assert rc != 0
    assert "bad.csv:3" in err, err


def test_unknown_option_is_a_clear_error():
    rc, out, err = run_sim("--speeed", "3")
    assert rc == 2 and "unknown option --speeed" in err, (rc, err)


def test_dead_chip_meter_keeps_running():
    for fault, word in (("dead0", "0x00"), ("deadff", "0xFF"), ("misclocked", "1-bit shift")):
        out = sim_json("--load", FOUR_Q, "--speed", "max", "--duration", 120, "--fault", fault)
        assert out["sim_s"] == 120, "ran to the end"
        assert word in (out["fault"] or ""), (fault, out["fault"])
        assert all(v == 0 for v in out["registers"].values()), out["registers"]
        codes = [e[1] for e in out["events"]]
        assert codes.count(2) == 1, ("one METROLOGY_FAULT event per episode", codes)


@pytest.mark.parametrize("speed", ["max", "600"])
def test_fault_mid_run_registers_never_go_backwards(speed):
    # the interval in which the chip dies (99..100 s) is lost with it; nothing before it
    ok = sim_json("--load", FOUR_Q, "--speed", "max", "--duration", 99)
    out = sim_json("--load", FOUR_Q, "--speed", speed, "--duration", 200, "--fault", "deadff",
                   "--fault-at", 100)
    for k, v in ok["registers"].items():
        assert out["registers"][k] >= v - 1e-9, (k, out["registers"][k], v)
    assert out["fault"], "fault reported"
    assert out["registers"]["2.8.0"] <= 0.001 + ok["registers"]["2.8.0"], out["registers"]


def test_supervisor_watchdog_and_status_leds():
    ok = sim_json("--load", FOUR_Q, "--speed", "100", "--duration", 250)
    assert ok["wdt_feeds"] >= 1, ok["wdt_feeds"]
    assert ok["status_leds"][0] == [0, 1, 0], ("metering: green", ok["status_leds"])
    assert ok["status_leds"][1] == [0, 1, 0], ("storage ok: green", ok["status_leds"])
    bad = sim_json("--load", FOUR_Q, "--speed", "100", "--duration", 250, "--fault", "dead0")
    assert bad["status_leds"][0] == [1, 0, 0], ("metrology fault: red", bad["status_leds"])
    assert bad["wdt_feeds"] >= 1, "a task retrying a dead chip is alive: the watchdog is fed"
    # issue 12: the supervisor runs on the board clock, so --speed max sees the same seconds
    # as --speed 100 (it ran on wall time: one feed and the boot-time red LED for the whole
    # of a short fast run; the end-of-run report used to repaint the LEDs to hide it)
    # (the model watchdog, without a timeout, is fed every 5 simulated s: issue 12, session 7)
    fast = sim_json("--load", FOUR_Q, "--speed", "max", "--duration", 250)
    assert fast["wdt_feeds"] == ok["wdt_feeds"] and 49 <= ok["wdt_feeds"] <= 51, (
        fast["wdt_feeds"], ok["wdt_feeds"])
    assert fast["status_leds"] == ok["status_leds"], fast["status_leds"]
    assert fast["status_leds"][0][0] == 0, ("not red", fast["status_leds"])
    sup = [e for e in fast["events"] + ok["events"] if e[1] in (80, 81)]  # TASK_DIED/FAILED
    assert sup == [], ("no supervisor event", sup)
    fbad = sim_json("--load", FOUR_Q, "--speed", "max", "--duration", 250, "--fault", "dead0")
    assert fbad["wdt_feeds"] == bad["wdt_feeds"], (fbad["wdt_feeds"], bad["wdt_feeds"])
    assert fbad["status_leds"][0] == [1, 0, 0], fbad["status_leds"]


# -- issue 7: the meter never invents, loses or leaks energy (metrology) ------------------

def _q(v):
    return 0.0025 + 2e-6 * abs(v)


def test_misclocked_bus_mid_export_invents_nothing():
    # item 1: the bus goes mis-clocked while exporting (four-quadrant trace, 120..240 s):
    # a small negative count shifted one bit reads as ~+2^23 LSB (+350 Wh of import); it must
    # be dropped in the same read, and nothing metered before the fault may be lost
    out = sim_json("--load", FOUR_Q, "--speed", "max", "--duration", 300, "--fault",
                   "misclocked", "--fault-at", 150)
    rows = read_trace(FOUR_Q)
    before = integral(rows, 149)
    for k in before:  # the totals (the tariff banks sum to them: issue 10)
        v = out["registers"][k]
        assert before[k] - _q(before[k]) <= v <= before[k] + _q(before[k]) + 0.6, (k, v)
    assert out["registers"]["1.8.0"] <= before["1.8.0"] + _q(before["1.8.0"]), out
    codes = [e[1] for e in out["events"]]
    assert codes.count(2) == 1, ("one METROLOGY_FAULT for the episode", codes)
    assert out["led_kwh_flashes"] == out["pulses"]


def test_loads_below_the_starting_current_gate_register_nothing(tmp_path):
    # item 2: Un x Ist x 50 % = 2.3 VA; 2.2, 2.25 and 2.29 W for an hour each: 0 Wh, like the
    # reference (they used to register 1.4..2.3 Wh an hour)
    load = tmp_path / "gate.csv"
    load.write_text("t_s,p_w,q_var\n0,2.2,0\n3600,2.25,0\n7200,2.29,0\n10800,2.6,0\n")
    ref = integral(read_trace(str(load)), 10800)
    assert all(v == 0 for v in ref.values()), ref
    out = sim_json("--load", str(load), "--speed", "max", "--duration", 10800)
    assert all(v == 0 for v in out["registers"].values()), out["registers"]
    # above the gate (2.6 W: beyond threshold + 2 LSB per second) every interval counts
    out = sim_json("--load", str(load), "--speed", "max", "--duration", 14400)
    assert abs(out["registers"]["1.8.0"] - 2.6) <= 0.0025, out["registers"]


def test_over_range_alarm_clipped_import_never_export(tmp_path):
    # item 3: 100 kW (beyond the 88 A full scale) for 5 minutes, then 1 kW: one over-range
    # start and one end event, import stays import (no export, no var from a Q = 0 load), the
    # registers count the chip's clipped energy (less than the trace's)
    load = tmp_path / "over.csv"
    load.write_text("t_s,p_w,q_var\n0,1000,0\n60,100000,0\n360,1000,0\n")
    out = sim_json("--load", str(load), "--speed", "max", "--duration", 600)
    regs = out["registers"]
    ev = [(e[1], e[2]) for e in out["events"] if e[1] in (22, 23)]
    assert ev == [(22, 1), (23, 299)] or ev == [(22, 1), (23, 300)], ev
    assert regs["2.8.0"] == 0 and regs["3.8.0"] == 0 and regs["4.8.0"] == 0, regs
    ref = integral(read_trace(str(load)), 600)
    clipped_w = 230 * 88 * 1.2  # > 230 V x 88 A: the fundamental of the clipped current
    assert 300 * 1000 / 3600 + 300 * clipped_w / 3600 < regs["1.8.0"] < ref["1.8.0"], regs
    assert out["fault"] is None and out["led_kwh_flashes"] == out["pulses"]
    # 1e12 W: still bounded, still import, no reactive energy invented
    load.write_text("t_s,p_w,q_var\n0,1000000000000,0\n")
    out = sim_json("--load", str(load), "--speed", "max", "--duration", 120)
    regs = out["registers"]
    assert 0 < regs["1.8.0"] <= regs["9.8.0"] < 120 * 2 * 31152 / 3600, regs
    assert regs["2.8.0"] == 0 and regs["3.8.0"] == 0 and regs["4.8.0"] == 0, regs
    assert [e[1] for e in out["events"]].count(22) == 1, out["events"]


def test_led_counts_every_pulse():
    # item 4: a counter on the test LED equals the pulse output at the end of any run
    load = os.path.join(ROOT, "boards/sim/loads/household_pv_2016.csv")
    for args in (("--speed", "max", "--duration", 21600),
                 ("--speed", "3600", "--duration", 3600),
                 ("--load", FOUR_Q, "--speed", "max", "--duration", 1260)):
        out = sim_json("--load", load, *args)
        assert out["pulses"] > 50, (args, out["pulses"])
        assert out["led_kwh_flashes"] == out["pulses"], (args, out["led_kwh_flashes"],
                                                          out["pulses"])


def test_fault_campaign_adds_no_energy():
    # every fault kind of the ADE7953 model in each quadrant of the four-quadrant trace:
    # nothing added beyond the exact integral, nothing lost from before the fault, every
    # pulse on the LED (tools/fault_campaign.py; the full campaign: docs/BENCHMARKS.md)
    import fault_campaign

    res = fault_campaign.campaign(FOUR_Q, fault_campaign.KINDS, (70, 150, 210, 270), 60,
                                  verbose=False)
    assert len(res) == 4 * len(fault_campaign.KINDS)
    for r in res:
        assert r["added"] <= 0 and r["kept"] >= 0 and r["led_ok"], r
        assert r["events"], ("the fault was logged", r)
    recovered = [r for r in res if r["kind"] in ("reset", "bitflip", "rstread")]
    assert all(r["fault"] is None and r["lost_wh"] < 1.5 for r in recovered), recovered
