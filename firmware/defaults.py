# Factory defaults of the meter's configuration.
"""Default configuration (what a blank or corrupt configuration record falls back to).

Units: currents mA, voltages V, times ms, meter constant imp/kWh.

- ``meter_constant`` 1000 imp/kWh (test LED; Elster A100C uses the same, see
  docs/ARCHITECTURE.md).
- ``start_current_ma`` 20: Ist = 0.004 Iref with Iref = 5 A (IEC 62053-21 class 1,
  EN 50470-3 class B); ``no_load_ratio_pct`` 50: the gate opens at half of Ist.
- ``un_v`` 230: nominal voltage used by the gate.
- ``period_ms`` 1000: metering read interval (overflow bound 79.6 s, lib/ade7953.py).
- ``pulse_ms`` 40: LED ON time per pulse (Elster A100C).
- ``scroll_ms`` 10000: LCD auto-scroll hold time.
- ``commit_s`` 300: periodic register commit (lib/journal.CommitPolicy explains the choice).
- ``calibration``: lib.ade7953.Calibration overrides (empty = reference design).
"""


def config():
    return {
        "meter_constant": 1000,
        "start_current_ma": 20,
        "no_load_ratio_pct": 50,
        "un_v": 230,
        "period_ms": 1000,
        "pulse_ms": 40,
        "scroll_ms": 10000,
        "energy_decimals": 3,
        "commit_s": 300,
        "calibration": {},
    }
