"""The billing functions wired as metering-step consumers (firmware/meter/tariffs.py,
demand.py, billing.py) and their configuration (lib/billing/config.py): exact tariff sums,
the split at a switch, power-fail behaviour, demand and maxima, billing period close,
demand reset lockout, persistence in a billing partition, historical values. Both
interpreters; heap-locked on MicroPython (allocation-free intervals)."""

import sys

import events
from billing import config
from billing.localtime import RULE_EU
from civil import seconds
from energy import A_MINUS, A_PLUS, Registers
from meter.billing import Billing
from meter.demand import Demand
from meter.tariffs import TARIFF_Q8, Tariffs

MICROPYTHON = sys.implementation.name == "micropython"
LPW = 6120900  # chip LSB per Wh x 256 (the reference front end: 4.1824e-5 Wh/LSB)

PLAN = {
    "time_zone": {"offset_min": 60, "dst_rule": "eu"},
    "calendar": {
        "calendar_name_active": "t2",
        "season_profile_active": [
            {"season_profile_name": "all", "season_start": "01-01", "week_name": "w"}],
        "week_profile_table_active": [
            {"week_profile_name": "w", "monday": 1, "tuesday": 1, "wednesday": 1,
             "thursday": 1, "friday": 1, "saturday": 1, "sunday": 1}],
        "day_profile_table_active": [
            {"day_id": 1, "day_schedule": [{"start_time": "00:00", "script_selector": 1},
                                           {"start_time": "06:00", "script_selector": 2},
                                           {"start_time": "22:00", "script_selector": 1}]}]},
    "demand": {"period_s": 900, "reset_lockout_s": 600},
}


class Clock:
    def __init__(self, t):
        self.t = t

    def time(self):
        return self.t


class NoClock:
    def time(self):
        raise AssertionError("the clock was read during the power-fail warning")


class Supply:
    def __init__(self):
        self.warning = False


class Log:
    def __init__(self):
        self.out = []

    def log(self, code, value=0, text=None, src=0, subject=None):
        self.out.append((code, value))


def _meter(t, plan=PLAN, part=None):
    cfg = config.load(plan)
    regs = Registers(LPW, LPW, LPW, 6, 2, TARIFF_Q8)
    clock = Clock(t)
    log = Log()
    sp = Supply()
    tf = Tariffs(regs, clock, cfg, LPW, log, sp)
    dm = Demand(cfg, tf)
    bl = Billing(regs, tf, dm, cfg, clock, log, part)
    tf.reconcile()
    bl.boot()
    return regs, clock, tf, dm, bl, log, sp


def _step(regs, clock, consumers, ea, dt=1000, er=0):
    clock.t += (dt + 500) // 1000
    regs.add(ea, er, abs(ea))
    for c in consumers:
        c.interval(ea, er, abs(ea), dt)


def _sums(regs):
    for k in (A_PLUS, A_MINUS):
        s = 0
        for b in range(1, 7):
            s += regs.milli(b << 4 | k)
        assert s == regs.milli(k), (k, s, regs.milli(k))


def test_config_defaults_and_errors_name_the_field():
    c = config.load(None)
    assert c.tariffs == 1 and c.period_s == 900 and c.number_of_periods == 1
    assert c.schedule.day == 1 and c.schedule.time_s == 0 and c.zone.std == 0
    c = config.load(PLAN)
    assert c.tariffs == 2 and c.reset_lockout_s == 600 and c.zone.rule == RULE_EU
    for bad, want in ((["x"], "must be an object"),
                      ({"demand": {"period_s": 700}}, "demand.period_s"),
                      ({"demand": {"number_of_periods": 13}}, "demand.number_of_periods"),
                      ({"demand": {"policy": "wait"}}, "demand.policy"),
                      ({"time_zone": {"offset_min": 61}}, "time_zone.offset_min"),
                      ({"billing_period": {"day": 29}}, "billing_period.day"),
                      ({"calendar": {"season_profile_active": 1}}, "calendar.")):
        # (malformed JSON text: host_tests/system/test_sim_billing.py, through --tariffs;
        # the bare-metal ports' json.loads is lenient about an unclosed object)
        try:
            config.load(bad)
        except ValueError as e:
            assert want in str(e), (bad, str(e))
        else:
            raise AssertionError("accepted %r" % (bad,))


def test_tariff_registers_sum_exactly_and_switch_at_the_second():
    t = seconds(2026, 1, 12, 4, 59, 50)  # 05:59:50 CET: T1, then T2 from 06:00:00
    regs, clock, tf, dm, bl, _log, _sp = _meter(t)
    cons = (tf, dm, bl)
    for k in range(20):
        _step(regs, clock, cons, 24000 + 7 * k)  # ~1 Wh a second, odd LSB counts
        _sums(regs)
        if k == 9:  # the intervals up to 06:00:00 local are T1's, the later ones T2's
            at_switch = regs.milli(0)
            assert tf.active == 2 and regs.milli(0x20) == 0
    assert regs.milli(0x10) == at_switch and regs.milli(0x20) == regs.milli(0) - at_switch
    _step(regs, clock, cons, -50000)  # export goes to 2.8.2
    assert regs.milli(0x21) > 0 and regs.milli(0x11) == 0
    _sums(regs)


def test_a_longer_interval_straddling_a_switch_is_split_by_time():
    t = seconds(2026, 1, 12, 20, 59, 54)  # 21:59:54 CET: T2 until 22:00
    regs, clock, tf, dm, bl, _log, _sp = _meter(t)
    _step(regs, clock, (tf, dm, bl), 239100, dt=10000)  # 10 s: 6 in T2, 4 in T1
    _sums(regs)
    a, b = regs.milli(0x20), regs.milli(0x10)
    assert a + b == regs.milli(0) and abs(a * 4 - b * 6) <= 10, (a, b)


def test_cold_start_and_reconcile_keep_the_sums():
    t = seconds(2026, 1, 12, 12)
    regs, clock, tf, dm, bl, _log, _sp = _meter(t)
    for _k in range(5):
        _step(regs, clock, (tf, dm, bl), 100000)
    regs.clear()  # the cold start (metering task): every bank to zero
    _step(regs, clock, (tf, dm, bl), 100000)
    assert tf.jumps == 1 and tf.fix
    bl.service()  # the billing task reconciles outside the hot path
    _sums(regs)
    _step(regs, clock, (tf, dm, bl), 100000)
    _sums(regs)
    assert regs.milli(0x20) == regs.milli(0) > 0
    # a journal from before the tariff banks: totals only -> tariff 1
    r2 = Registers(LPW, LPW, LPW, 6, 2, TARIFF_Q8)
    r2.add(5 * 10 ** 6, 0, 5 * 10 ** 6)
    r2.add(-3 * 10 ** 6, 0, 3 * 10 ** 6)
    tf2 = Tariffs(r2, Clock(t), config.load(PLAN), LPW)
    assert tf2.reconcile() == (r2.milli(0), r2.milli(1))
    _sums(r2)
    assert r2.milli(0x10) == r2.milli(0) and tf2.reconcile() == (0, 0)


def test_power_fail_warning_reads_no_clock_and_keeps_the_sums():
    t = seconds(2026, 1, 12, 12)
    regs, clock, tf, dm, bl, _log, sp = _meter(t)
    _step(regs, clock, (tf, dm, bl), 100000)
    sp.warning = True
    tf.clock = NoClock()
    before = dm.window._acc
    for _k in range(3):
        regs.add(90000, 0, 90000)
        for c in (tf, dm, bl):
            c.interval(90000, 0, 90000, 1000)
    _sums(regs)
    assert regs.milli(0x20) == regs.milli(0) and dm.window._acc == before


def test_intervals_allocate_nothing_inside_a_tariff_window():
    t = seconds(2026, 1, 12, 12, 0, 1)
    regs, clock, tf, dm, bl, _log, sp = _meter(t)
    cons = (tf, dm, bl)
    ts = [t + k for k in range(1, 301)]
    _step(regs, clock, cons, 1000)
    from tasks.wake import Wake

    wake = Wake()
    bl.on_due = wake.set  # the billing task's wake-up: pending() asked in every step
    if MICROPYTHON:
        import micropython

        micropython.heap_lock()
    try:
        for k in range(298):  # 12:00:02 .. 12:04:59: no switch, no demand capture
            clock.t = ts[k]
            regs.add(30011, -2000, 30100)
            tf.interval(30011, -2000, 30100, 1000)
            dm.interval(30011, -2000, 30100, 1000)
            bl.interval(30011, -2000, 30100, 1000)
    finally:
        if MICROPYTHON:
            micropython.heap_unlock()
    sp.warning = True  # the power-fail path: the same, without the clock
    if MICROPYTHON:
        micropython.heap_lock()
    try:
        for _k in range(5):
            regs.add(30011, -2000, 30100)
            tf.interval(30011, -2000, 30100, 1000)
            dm.interval(30011, -2000, 30100, 1000)
            bl.interval(30011, -2000, 30100, 1000)
    finally:
        if MICROPYTHON:
            micropython.heap_unlock()
    _sums(regs)
    assert dm.captures == 0 and tf.tc.recomputes == 1


def test_demand_maxima_and_the_billing_period_close():
    t = seconds(2026, 1, 31, 21, 30)  # 22:30 CET on 31 January: T1; period ends 23:00 UTC
    regs, clock, tf, dm, bl, log, _sp = _meter(t)
    cons = (tf, dm, bl)
    end = seconds(2026, 1, 31, 23)
    assert bl.next_end == end and bl.vz == 0
    p = 0
    while clock.t < end:
        p = 4000 if clock.t < seconds(2026, 1, 31, 22) else 2000  # W
        _step(regs, clock, cons, p * LPW // (3600 * 256))
    assert bl.vz == 1 and bl.closes == 1 and bl.last_end == end
    snap = bl.snapshots()[-1]
    assert snap.time == end and snap.reason == 1
    assert list(snap.energy[:2]) == [regs.milli(0) // 1000, regs.milli(1) // 1000]
    assert snap.tariffs[0] == regs.milli(0x10) // 1000
    # 21:30..22:00 UTC two 15-min blocks at 4 kW (within 1 W: mWh quantisation), then
    # 2 kW: the maximum 4 kW at the end of one of them
    assert abs(snap.max_value[0] - 4000) <= 1 and snap.max_time[0] in (
        seconds(2026, 1, 31, 21, 45), seconds(2026, 1, 31, 22)), snap.max_time
    assert dm.maxima.value[0] == 0 and abs(snap.cum[0] - snap.max_value[0]) <= 1
    bl.service()
    assert (events.BILLING_END, 1) in log.out
    assert bl.next_end == seconds(2026, 2, 28, 23)
    assert bl.historical("1.8.0*1") == snap.energy[0] * 1000
    assert bl.historical("1.8.1*01") == snap.tariffs[0] * 1000
    assert bl.historical("1.6.0*1") == snap.max_value[0] * 1000
    assert bl.historical("1.6.0.T*1") == bl.stamp(snap.max_time[0])
    assert bl.stamp(seconds(2026, 1, 31, 21, 45)) == "0260131224500"  # local CET, Z = 0
    assert bl.historical("0.1.2*1") == "0260201000000"
    for bad in ("1.8.0*2", "1.8.9*1", "1.6.7*1", "x*1", "1.8.0*a"):
        try:
            bl.historical(bad)
        except KeyError:
            pass
        else:
            raise AssertionError(bad)


def test_demand_reset_lockout_and_events():
    t = seconds(2026, 3, 10, 12)
    regs, clock, tf, dm, bl, log, _sp = _meter(t)
    for _k in range(1000):
        _step(regs, clock, (tf, dm, bl), 50000)
    assert dm.maxima.value[0] > 0
    s = bl.demand_reset(events.SRC_OPTICAL)
    assert s is not None and s.reason == 2 and bl.vz == 1 and dm.maxima.value[0] == 0
    assert (events.DEMAND_RESET, 1) in log.out
    clock.t += 599
    assert bl.demand_reset() is None and bl.vz == 1 and bl.lockout_left() == 1
    assert log.out[-1] == (events.DEMAND_RESET_REFUSED, 1)
    clock.t += 1
    assert bl.demand_reset() is not None and bl.vz == 2


def test_dst_change_is_logged_once():
    t = seconds(2026, 3, 29, 0, 59, 58)  # EU: DST from 01:00 UTC
    regs, clock, tf, dm, bl, log, _sp = _meter(t)
    for _k in range(4):
        _step(regs, clock, (tf, dm, bl), 1000)
    bl.service()
    bl.service()
    assert log.out.count((events.DST_CHANGED, 1)) == 1, log.out


def test_state_and_snapshots_persist_in_the_billing_partition():
    from boards.sim.norflash import NORFlash
    from flashstore.flash import Partition

    dev = NORFlash(32 * 1024, sector_size=4096, page_size=256)
    part = Partition(dev, 0, dev.size)
    t = seconds(2026, 1, 31, 22, 50)
    regs, clock, tf, dm, bl, log, _sp = _meter(t, part=part)
    while clock.t < seconds(2026, 1, 31, 23, 20):
        _step(regs, clock, (tf, dm, bl), 80000)
    bl.service()
    mx = (dm.maxima.value[0], dm.maxima.time[0])
    assert bl.vz == 1 and mx[0] > 0
    # power cut: a new meter on the same flash, 30 min later, then a month later (missed)
    for later, vz in ((1800, 1), (40 * 86400, 2)):
        cfg = config.load(PLAN)
        tf2 = Tariffs(regs, Clock(clock.t + later), cfg, LPW)
        dm2 = Demand(cfg, tf2)
        bl2 = Billing(regs, tf2, dm2, cfg, tf2.clock, Log(), Partition(dev, 0, dev.size))
        assert bl2.boot() == "flash"
        assert bl2.vz == vz and [s.vz for s in bl2.snapshots()] == list(range(1, vz + 1))
        if vz == 1:
            assert (dm2.maxima.value[0], dm2.maxima.time[0]) == mx
        else:  # closed at power-up at the missed end (1 March 00:00 CET)
            assert bl2.last_end == seconds(2026, 2, 28, 23) and dm2.maxima.value[0] == 0
            bl2.service()
    _sums(regs)


def test_lsb_fraction_helper_stays_small():
    from meter.tariffs import _frac_milli

    for d in (256, 25600, LPW, (1 << 24) - 1):
        for r in (0, 1, d // 3, d - 1):
            assert _frac_milli(r, d) == r * 1000 // d, (r, d)


def test_a_new_demand_configuration_keeps_the_maxima_and_takes_the_new_lockout():
    # adversarial review: the maxima 1.6.x (with their time stamps), the cumulative maxima
    # 1.2.x and the reset count are billing values, not part of the demand window; a restart
    # with another demand period, policy, number of sub-periods or thermal period (or another
    # reset lockout) must not lose them, and the configured lockout is the one that applies
    from boards.sim.norflash import NORFlash
    from flashstore.flash import Partition

    dev = NORFlash(32 * 1024, sector_size=4096, page_size=256)
    t = seconds(2026, 1, 31, 22, 0)
    regs, clock, tf, dm, bl, _log, _sp = _meter(t, part=Partition(dev, 0, dev.size))
    while clock.t < seconds(2026, 1, 31, 23, 20):  # crosses the end of January (VZ 1)
        _step(regs, clock, (tf, dm, bl), 80000)
    bl.service()
    mx = dm.maxima
    assert bl.vz == 1 and mx.value[0] > 0 and mx.cum[0] > 0 and mx.resets == 1
    kept = (mx.value[:], mx.time[:], mx.cum[:], mx.resets, mx.last_reset)
    for demand in ({"period_s": 1800, "reset_lockout_s": 600},
                   {"period_s": 900, "number_of_periods": 3, "reset_lockout_s": 600},
                   {"period_s": 900, "policy": "restart", "reset_lockout_s": 600},
                   {"period_s": 900, "thermal_period_s": 1800, "reset_lockout_s": 600},
                   {"period_s": 900, "reset_lockout_s": 60}):
        plan = dict(PLAN)
        plan["demand"] = demand
        cfg = config.load(plan)
        tf2 = Tariffs(regs, Clock(clock.t + 600), cfg, LPW)
        dm2 = Demand(cfg, tf2)
        bl2 = Billing(regs, tf2, dm2, cfg, tf2.clock, Log(), Partition(dev, 0, dev.size))
        bl2.boot()
        m2 = dm2.maxima
        assert bl2.vz == 1, demand
        assert (m2.value, m2.time, m2.cum, m2.resets, m2.last_reset) == \
            (kept[0], kept[1], kept[2], kept[3], kept[4]), demand
        assert m2.lockout_s == demand["reset_lockout_s"], demand


def test_a_billing_end_in_the_skipped_spring_hour_is_not_taken_before_its_time_at_boot():
    # adversarial review: billing end on the 28th at 02:30 local; on 28 March 2027 (EU spring
    # change) 02:30 CET does not exist and the running meter closes at 01:30 UTC (03:30 CEST,
    # Zone.to_utc fold 0). A restart at 03:10 CEST took that end, 20 minutes in the future,
    # as already passed: it closed the period early, stamped in the future (or, on a new
    # meter, took it as the last end and never closed it)
    from boards.sim.norflash import NORFlash
    from flashstore.flash import Partition

    plan = dict(PLAN)
    plan["billing_period"] = {"day": 28, "time": "02:30"}
    end = seconds(2027, 3, 28, 1, 30)
    back = seconds(2027, 3, 28, 1, 10)  # power back at 03:10 CEST
    for ran_before in (False, True):
        dev = NORFlash(32 * 1024, sector_size=4096, page_size=256)
        t0 = seconds(2027, 2, 28, 1) if ran_before else back
        regs, clock, tf, dm, bl, _log, _sp = _meter(t0, plan, Partition(dev, 0, dev.size))
        if ran_before:  # February's end closed (VZ 1), then a cut until 28 March 03:10 CEST
            while clock.t < seconds(2027, 2, 28, 2):
                _step(regs, clock, (tf, dm, bl), 80000)
            bl.service()
            assert bl.vz == 1
            cfg = config.load(plan)
            clock = Clock(back)
            tf = Tariffs(regs, clock, cfg, LPW)
            dm = Demand(cfg, tf)
            bl = Billing(regs, tf, dm, cfg, clock, Log(), Partition(dev, 0, dev.size))
            bl.boot()
        vz = bl.vz
        assert vz == (1 if ran_before else 0), (ran_before, vz)
        assert bl.last_end is not None and bl.last_end <= back, (ran_before, bl.last_end)
        while clock.t < end + 600:
            _step(regs, clock, (tf, dm, bl), 80000)
        assert bl.vz == vz + 1 and bl.last_end == end, (ran_before, bl.vz, bl.last_end)


def test_an_rtc_restarted_at_2000_does_not_stop_the_meter():
    # adversarial review: a flat RTC battery restarts the clock at 2000-01-01 00:00 UTC (the
    # board's rule; --rtc-battery flat, or --start 2000-01-01). In a zone east of UTC with
    # DST (the README's EU example), west of UTC, or with a billing day other than the 1st,
    # Billing.boot raised ValueError (invalid date 1999-...) and the meter did not start
    from boards.sim.norflash import NORFlash
    from flashstore.flash import Partition

    for zone, day in (({"offset_min": 60, "dst_rule": "eu"}, 1),
                      ({"offset_min": -300, "dst_rule": "us"}, 1),
                      ({"offset_min": 0}, 5), ({"offset_min": 60}, 1)):
        plan = dict(PLAN)
        plan["time_zone"] = zone
        plan["billing_period"] = {"day": day}
        dev = NORFlash(32 * 1024, sector_size=4096, page_size=256)
        regs, clock, tf, dm, bl, _log, _sp = _meter(0, plan, Partition(dev, 0, dev.size))
        while clock.t < 7200:
            _step(regs, clock, (tf, dm, bl), 80000)
        bl.service()
        assert bl.vz == 0 and regs.milli(A_PLUS) > 0, zone
        assert 7200 < bl.next_end <= 40 * 86400, (zone, bl.next_end)
        _sums(regs)


def test_a_clock_behind_the_last_close_never_closes_a_period_stamped_before_it():
    # adversarial review: the RTC's battery went flat during an outage, so the meter comes
    # back at 2000-01-01 with January 2026 already closed; left unread for 33 days it closed
    # a period "ended 2000-02-01" (the billing profile going back in time), and when the
    # clock was then set right, another one "ended 2000-03-01" at once
    from boards.sim.norflash import NORFlash
    from flashstore.flash import Partition

    dev = NORFlash(32 * 1024, sector_size=4096, page_size=256)
    regs, clock, tf, dm, bl, _log, _sp = _meter(seconds(2026, 1, 31, 22), PLAN,
                                                Partition(dev, 0, dev.size))
    while clock.t < seconds(2026, 1, 31, 23, 30):
        _step(regs, clock, (tf, dm, bl), 80000)
    bl.service()
    jan = bl.last_end
    assert bl.vz == 1 and jan == seconds(2026, 1, 31, 23)
    cfg = config.load(PLAN)
    clock = Clock(0)  # flat battery: 2000-01-01 00:00
    tf = Tariffs(regs, clock, cfg, LPW)
    dm = Demand(cfg, tf)
    bl = Billing(regs, tf, dm, cfg, clock, Log(), Partition(dev, 0, dev.size))
    bl.boot()
    while clock.t < 33 * 86400:
        _step(regs, clock, (tf, dm, bl), 80000 * 600, dt=600000)
    bl.service()
    assert bl.vz == 1 and bl.last_end == jan, (bl.vz, bl.last_end)
    old = clock.t
    clock.t = seconds(2026, 2, 20)  # W1 0.9.1 / 0.9.2 (app.Meter._clock_set)
    tf.clock_set()
    dm.clock_set(old, clock.t)
    bl.clock_set(clock.t)
    while clock.t < seconds(2026, 2, 28, 23, 30):
        _step(regs, clock, (tf, dm, bl), 80000 * 600, dt=600000)
    bl.service()
    times = [s.time for s in bl.snapshots()]
    assert times == [jan, seconds(2026, 2, 28, 23)], times
    assert bl.vz == 2
    _sums(regs)


def test_a_calendar_error_names_the_field_once():
    # adversarial review: --tariffs with a calendar lacking a table answered
    # "calendar.calendar.day_profile_table_active: missing"
    for cal, msg in (({"season_profile_active": []}, "calendar.day_profile_table_active: missing"),
                     (5, "calendar: must be a JSON object")):
        try:
            config.load({"calendar": cal})
        except ValueError as e:
            assert str(e) == msg, str(e)
        else:
            raise AssertionError("accepted")
