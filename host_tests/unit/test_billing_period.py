"""billing.period: end-of-billing schedule, snapshot record, historical names, and the
order snapshot -> maxima reset -> VZ increment."""

from billing import period
from billing.demand import Maxima
from billing.localtime import RULE_EU, Zone
from billing.period import REASON_MANUAL, Schedule, Snapshot, end_of_billing, historical
from civil import seconds


def test_default_schedule_first_of_month_midnight():
    s = Schedule()
    assert s.next_end(seconds(2026, 1, 15, 12)) == seconds(2026, 2, 1)
    assert s.next_end(seconds(2026, 2, 1)) == seconds(2026, 3, 1), "strictly after"
    assert s.next_end(seconds(2026, 1, 31, 23, 59, 59)) == seconds(2026, 2, 1)
    assert s.next_end(seconds(2026, 12, 5)) == seconds(2027, 1, 1)
    assert s.previous_end(seconds(2026, 2, 1)) == seconds(2026, 2, 1)
    assert s.previous_end(seconds(2026, 1, 15)) == seconds(2026, 1, 1)
    assert s.previous_end(seconds(2027, 1, 1) - 1) == seconds(2026, 12, 1)


def test_configured_day_and_time_across_year_and_leap_day():
    s = Schedule.from_config({"day": 28, "time": "23:59:59"})
    assert s.next_end(seconds(2028, 2, 28, 23, 59, 59)) == seconds(2028, 3, 28, 23, 59, 59)
    assert s.next_end(seconds(2028, 2, 28, 12)) == seconds(2028, 2, 28, 23, 59, 59)
    assert s.previous_end(seconds(2028, 1, 10)) == seconds(2027, 12, 28, 23, 59, 59)
    ends = []
    t = seconds(2026, 1, 1)
    for _ in range(24):
        t = s.next_end(t)
        ends.append(t)
    assert len(set(ends)) == 24 and ends == sorted(ends)
    # a billing end in the skipped spring hour happens when the clock jumps past it
    s2 = Schedule.from_config({"day": 28, "time": "02:30"})
    z = Zone(60, RULE_EU)
    loc = s2.next_end(seconds(2027, 3, 1))
    assert loc == seconds(2027, 3, 28, 2, 30) and z.classify(loc) == 1  # EU spring day
    assert z.to_utc(loc) == seconds(2027, 3, 28, 1, 30), "= 03:30 CEST"
    assert Schedule.from_config({}).day == 1


def test_schedule_config_errors_name_the_field():
    for cfg, want in (({"day": 29}, "billing_period.day: 29 not in 1..28"),
                      ({"day": True}, "billing_period.day"),
                      ({"time": "24:00"}, "billing_period.time: '24:00' is not a time"),
                      ({"hour": 1}, "billing_period.hour: unknown field"),
                      ([1], "billing_period: must be an object")):
        try:
            Schedule.from_config(cfg)
            assert False, cfg
        except ValueError as e:
            assert str(e).startswith(want), (want, e)


def _snap(vz=26):
    return Snapshot(vz, seconds(2019, 7, 1) - 7200,
                    [12345678, 2, 3, 4, 5, 6, 7, 4294967295],
                    list(range(100, 112)), [482, 482, 0, 0, 0, 0, 0],
                    [seconds(2019, 6, 25, 12), seconds(2019, 6, 25, 12), 0, 0, 0, 0, 0],
                    [1000, 900, 100, 0, 0, 0, 0], period.REASON_SCHEDULE, 0x80)


def test_snapshot_pack_unpack_and_readout():
    s = _snap()
    b = s.pack()
    assert len(b) == period.SIZE == 172
    u = Snapshot.unpack(b)
    assert (u.vz, u.time, u.energy, u.tariffs, u.max_value, u.max_time, u.cum, u.reason,
            u.clock_status) == (s.vz, s.time, s.energy, s.tariffs, s.max_value, s.max_time,
                                s.cum, s.reason, s.clock_status)
    lines = s.readout(Zone(60, RULE_EU))
    assert lines[0] == "0.1.2*26(1190701000000)", lines[0]
    assert lines[1] == "1.8.0*26(0012345.678*kWh)"
    assert lines[8] == "10.8.0*26(4294967.295*kVAh)"
    assert lines[9] == "1.8.1*26(0000000.100*kWh)" and lines[15] == "2.8.1*26(0000000.106*kWh)"
    assert lines[21] == "1.6.0*26(0.482*kW)(1190625140000)", lines[21]
    assert lines[23] == "1.6.2*26(0.000*kW)(0000000000000)"
    assert lines[28] == "1.2.0*26(1.000*kW)" and len(lines) == 35
    for bad in (b[:-1], bytes([2]) + b[1:], b""):
        try:
            Snapshot.unpack(bad)
            assert False
        except ValueError:
            pass


def test_historical_names():
    assert historical("1.8.0", 26) == "1.8.0*26"
    assert historical("1.6.1", 5) == "1.6.1*05" and historical("1.6.1", 5, 1) == "1.6.1*5"
    assert period.next_vz(98) == 99 and period.next_vz(99) == 0
    try:
        historical("1.8.0", 100)
        assert False
    except ValueError:
        pass


def test_end_of_billing_snapshots_before_the_reset_and_wraps_vz():
    mx = Maxima(lockout_s=86400)
    t = seconds(2026, 2, 1)
    mx.offer(4821000, t - 5000, 3)  # mW
    energy = [1000 * k for k in range(8)]
    tariffs = [7] * 12
    vz, snap = end_of_billing(99, t, energy, tariffs, mx)
    assert vz == 0 and snap.vz == 0, "VZ 99 -> 0"
    assert snap.max_value[0] == 4821 and snap.max_value[3] == 4821, "in W, taken before reset"
    assert snap.max_time[3] == t - 5000 and snap.cum[0] == 4821
    assert mx.value[0] == 0 and mx.cum[0] == 4821000 and mx.last_reset == t
    mx.offer(1000000, t + 10, 1)
    assert end_of_billing(vz, t + 100, energy, tariffs, mx, REASON_MANUAL) is None, "lockout"
    assert mx.value[1] == 1000000, "a refused reset changes nothing"
    vz2, snap2 = end_of_billing(vz, t + 200, energy, tariffs, mx)  # scheduled: no lockout
    assert vz2 == 1 and snap2.cum[0] == 5821 and snap2.cum[1] == 1000
    assert Snapshot.unpack(snap2.pack()).cum == snap2.cum
