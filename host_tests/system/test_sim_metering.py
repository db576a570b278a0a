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
