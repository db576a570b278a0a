"""Test LED pulses and the starting-current gate."""

from energy import lsb_per_unit_q8
from pulse import NoLoadGate, PulseOutput

WH_PER_LSB = 4.1824e-5


def test_pulses_carry_residue():
    p = PulseOutput(lsb_per_unit_q8(WH_PER_LSB))  # 1000 imp/kWh = 1 pulse per Wh
    lsb_per_wh = 1 / WH_PER_LSB
    n = 0
    for _ in range(1000):
        n += p.add(int(lsb_per_wh * 0.3))  # 0.3 Wh per interval
    assert 299 <= n <= 300, n
    assert p.total == n
    assert p.add(-int(lsb_per_wh * 2)) == 2, "export pulses too (sign ignored)"


def test_gate_at_starting_current():
    g = NoLoadGate(WH_PER_LSB, start_current_ma=20, un_v=230)
    per_s = 4.6 / 3600 / WH_PER_LSB  # 20 mA at 230 V for 1 s, in LSB
    assert g.passes(int(per_s), 1000), "must register at Ist (IEC 62053-21 starting test)"
    assert not g.passes(int(per_s * 0.4), 1000), "40 % of Ist stays below the gate"
    assert not g.passes(0, 1000), "no current: no-load"
    assert g.passes(int(per_s * 0.6), 1000), "gate at 50 % of Ist"
    assert g.closed is False


def test_gate_scales_with_interval():
    g = NoLoadGate(WH_PER_LSB)
    per_s = 4.6 / 3600 / WH_PER_LSB
    assert not g.passes(int(per_s), 5000), "1 s of Ist energy in a 5 s interval is 20 % of Ist"


def test_gate_settings_checked():
    try:
        NoLoadGate(WH_PER_LSB, ratio_pct=0)
        assert False, "ratio 0 accepted"
    except ValueError:
        pass
