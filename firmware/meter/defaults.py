# Factory defaults of the meter's configuration.
"""Default configuration (what a blank or corrupt configuration record falls back to).

Units: currents mA, voltages V, times ms, meter constant imp/kWh.

- ``meter_constant`` 1000 imp/kWh (test LED; the Elster A100C uses the same constant).
- ``start_current_ma`` 20: Ist = 0.004 Iref with Iref = 5 A (IEC 62053-21 class 1,
  EN 50470-3 class B); ``no_load_ratio_pct`` 50: the gate opens at half of Ist.
- ``un_v`` 230: nominal voltage used by the gate.
- ``period_ms`` 1000: metering read interval (overflow bound 79.6 s, lib/ade7953).
- ``pulse_ms`` 40: LED ON time per pulse (Elster A100C).
- ``scroll_ms`` 10000: LCD auto-scroll hold time; ``energy_decimals`` 3: decimals of the
  energy registers on the LCD (kWh, 0..3).
- ``display_list``: the normal (auto-scroll) list, 1..64 OBIS codes of the catalogue that
  can be shown (firmware/meter/catalogue.py; must contain the billing register 1.8.0).
  ``alt_list``: the alternate list (scroll button held 3..6 s), 1..64 codes. Invalid lists
  fall back to these defaults (logged CONFIG_DEFAULTS). docs/DISPLAY.md.
- ``test_mode_minutes`` 30: test mode ends by itself after 1..255 minutes.
- ``test_led`` "kWh": test output in test mode, "kWh" (active energy, kWh LED) or "kvarh"
  (|reactive| energy on the kvarh LED).
- ``password`` "00000000" (IEC 62056-21 P1, changeable with W1 C.90.2), ``prog_max_failures``
  3 and ``prog_lockout_s`` 600: wrong passwords in a row (either local port) that lock
  programming on both local ports, and for how long (the uplink's ``config`` has a lockout
  of its own with the same parameters: firmware/ports/iec.py); each further lockout within
  24 h doubles, up to ``prog_lockout_max_s`` 86400 (lib/iec62056/lockout.py).
  ``readout_list``: the IEC 62056-21 readout (W1 C.90.3); absent = ``READOUT`` below.
- ``neutral_pct`` 12.5, ``neutral_min_a`` 0.25, ``neutral_s`` 10: neutral-current imbalance
  (|I - IN| in % of the larger current) that logs NEUTRAL_IMBALANCE once it lasts that long
  above that current (firmware/tasks/tamper.py).
- ``fallback`` 0: not a setting: the F.F.0 bits (ERR_CONFIG 0x2, ERR_SECURITY 0x40) latched by
  a configuration fallback (firmware/meter/settings.py), kept with the configuration so that
  a later save and restart do not clear them; E2 C.91.0 clears 0x2, a new password 0x40.
- ``commit_s`` 300: periodic register commit (lib/flashstore/journal.CommitPolicy explains
  the choice).
- ``uplink_broker`` "127.0.0.1:1883": the uplink's MQTT broker, "host:port" (a DNS name
  or IPv4 address, port 1..65535, at most 100 characters; IEC 62056-21 C.93.1); the
  factory value is the virtual board's local broker: a meter is given its head-end's at
  commissioning. ``uplink_apn`` "internet": the GPRS access point name (1..50 letters,
  digits, "-", "."; C.93.2), sent in the modem's AT+CSTT. A change takes effect at the
  uplink's next session (firmware/uplink/task.py, docs/UPLINK.md). ``uplink_key`` "" (none):
  the 128-bit key (32 hex digits; C.93.3, written on a local port only, never readable)
  that authenticates the head-end's commands (firmware/uplink/auth.py); while none is set
  the programming password keys them (weaker: an 8-digit key can be searched offline from
  one recorded command). ``bus_bindings`` {} : the concentrator's serial binding, bus
  address -> the serial of its first good readout (firmware/uplink/concentrator.py): kept
  over restarts; E2 C.93.9(address) on a local port or by the uplink's ``config`` unbinds
  one (a replaced meter), E2 C.93.9 with no argument all.
- ``tou_program`` (absent by default): the passive tariff plan written over IEC 62056-21
  (firmware/meter/touprog.py: its pieces, its CRC, whether it was activated).
- Metrological parameters, writable only with the seal open (Settings.set_sealed):
  ``meter_constant`` (above) and ``calibration``: lib.ade7953.Calibration overrides (empty =
  reference design).
"""


# the default IEC 62056-21 readout list (setting ``readout_list`` absent); 0.0.96.14.0 the
# active tariff (issue 10 item 2; left out by a meter built without the billing functions)
READOUT = ("C.1.0", "0.0.0", "0.9.1", "0.9.2", "0.2.0", "0.2.8", "1.8.0", "2.8.0", "3.8.0",
           "4.8.0", "5.8.0", "6.8.0", "7.8.0", "8.8.0", "9.8.0", "10.8.0", "16.8.0",
           "0.0.96.14.0", "32.7.0", "31.7.0", "14.7.0", "F.F.0")


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
        "display_list": ["1.8.0", "2.8.0", "16.8.0", "32.7.0", "31.7.0", "1.7.0", "14.7.0"],
        "alt_list": ["8.8.8", "3.8.0", "4.8.0", "9.8.0", "10.8.0", "0.9.2", "0.9.1", "0.2.0",
                     "0.2.8"],
        "test_mode_minutes": 30,
        "test_led": "kWh",
        "commit_s": 300,
        "password": "00000000",
        "prog_max_failures": 3,
        "prog_lockout_s": 600,
        "prog_lockout_max_s": 86400,
        "neutral_pct": 12.5,
        "neutral_min_a": 0.25,
        "neutral_s": 10,
        "fallback": 0,
        "calibration": {},
        "uplink_broker": "127.0.0.1:1883",
        "uplink_apn": "internet",
        "uplink_key": "",
        "bus_bindings": {},
    }
