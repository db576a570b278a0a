"""Power-cut campaigns over the billing close and the audit trail (issue 10 item 7): a cut at
every flash operation of a billing-period close (snapshot, then state) and of an audit-trail
append and clear; after the restart the billing profile holds each period exactly once with
the counter (VZ) in step, the maxima reset once, and the audit counter never goes back."""

from billing import config
from boards.sim.norflash import NORFlash, PowerCut
from civil import seconds
from energy import Registers
from flashstore.flash import Partition
from meter.audit import AuditTrail
from meter.billing import Billing
from meter.demand import Demand
from meter.tariffs import TARIFF_Q8, Tariffs

LPW = 6120900  # chip LSB per Wh x 256 (as test_billing_wiring)
PLAN = {
    "time_zone": {"offset_min": 60, "dst_rule": "eu"},
    "demand": {"period_s": 900, "reset_lockout_s": 600},
}
FEB_END = seconds(2026, 2, 28, 23)  # 1 March 00:00 CET


class Clock:
    def __init__(self, t):
        self.t = t

    def time(self):
        return self.t


class Log:
    def __init__(self):
        self.out = []

    def log(self, code, value=0, text=None, src=0, subject=None):
        self.out.append((code, value))


def _meter(regs, t, part):
    cfg = config.load(PLAN)
    clock = Clock(t)
    tf = Tariffs(regs, clock, cfg, LPW, Log())
    dm = Demand(cfg, tf)
    bl = Billing(regs, tf, dm, cfg, clock, Log(), part)
    tf.reconcile()
    src = bl.boot()
    return clock, tf, dm, bl, src


def _run(regs, clock, tf, dm, bl, until, ea=80000, dev=None, dt=1):
    while clock.t < until:
        clock.t += dt
        e = ea * dt
        regs.add(e, 0, e)
        tf.interval(e, 0, e, 1000 * dt)
        dm.interval(e, 0, e, 1000 * dt)
        bl.interval(e, 0, e, 1000 * dt)
        bl.service()
        if dev is not None and dev.dead:
            raise PowerCut()
        bl.maintain()
        if dev is not None and dev.dead:
            raise PowerCut()


def _campaign(regs, clock, tf, dm, bl, dev):
    # the February end (a scheduled close), then manual demand resets (E2 C.91.5) past the
    # lockout until both rings have wrapped a sector: closes, state records and erases
    _run(regs, clock, tf, dm, bl, FEB_END + 1200, dev=dev, dt=60)
    for _ in range(RESETS):
        _run(regs, clock, tf, dm, bl, clock.t + 660, dev=dev, dt=60)
        bl.demand_reset()
        if dev is not None and dev.dead:
            raise PowerCut()


RESETS = 26  # 4 KiB sectors: 23 snapshots (172 B) or 16 state records (240 B) per sector


def test_cut_at_every_flash_op_of_a_billing_close():
    dev = NORFlash(32 * 1024, sector_size=4096, page_size=256)
    regs = Registers(LPW, LPW, LPW, 6, 2, TARIFF_Q8)
    clock, tf, dm, bl, _ = _meter(regs, FEB_END - 7200, Partition(dev, 0, dev.size))
    _run(regs, clock, tf, dm, bl, FEB_END - 1800, dt=60)  # a new meter: VZ 0, state written
    assert bl.vz == 0
    base = dev.copy()
    whole0 = regs.whole[:]
    t0 = clock.t
    k = 0
    cuts = 0
    while True:
        k += 1
        nor = base.copy()
        r = Registers(LPW, LPW, LPW, 6, 2, TARIFF_Q8)
        r.whole[:] = whole0
        c, tf1, dm1, bl1, _ = _meter(r, t0, Partition(nor, 0, nor.size))
        assert bl1.vz == 0, k
        nor.cut_at_op(k)
        try:
            _campaign(r, c, tf1, dm1, bl1, nor)
        except PowerCut:
            cuts += 1
        else:
            break
        nor.power_on()
        cut_t = c.t
        # restart 30 min after the cut on what the flash holds (the registers as metered)
        c2, _tf2, dm2, bl2, src = _meter(r, cut_t + 1800, Partition(nor, 0, nor.size))
        assert src in ("flash", "new"), (k, src)
        vzs = [s.vz for s in bl2.snapshots()]
        assert vzs == list(range(vzs[0], vzs[0] + len(vzs))), (k, cut_t - FEB_END, vzs)
        assert bl2.vz == vzs[-1] == dm2.maxima.resets, (k, vzs[-1], bl2.vz, dm2.maxima.resets)
        if cut_t <= FEB_END + 1200:  # the February end has passed: closed once, at its time
            assert vzs[-1] == 1 and bl2.last_end == FEB_END, (k, vzs, bl2.last_end)
        else:  # every close before the cut is kept; the one being written may be lost
            assert bl1.vz - 1 <= bl2.vz <= bl1.vz, (k, bl1.vz, bl2.vz)
        snap = bl2.snapshot(bl2.vz)
        assert snap is not None and snap.vz == bl2.vz, k
        bl2.service()  # and the meter goes on: the next close is VZ 3
        assert [s.vz for s in bl2.snapshots()][-1] == bl2.vz, k
    assert cuts >= 2 * RESETS, cuts


def test_a_lost_state_half_takes_vz_and_the_last_close_from_the_snapshots():
    dev = NORFlash(32 * 1024, sector_size=4096, page_size=256)
    regs = Registers(LPW, LPW, LPW, 6, 2, TARIFF_Q8)
    clock, tf, dm, bl, _ = _meter(regs, FEB_END - 7200, Partition(dev, 0, dev.size))
    _campaign(regs, clock, tf, dm, bl, None)  # the February close and the demand resets
    vz = bl.vz
    assert vz == 1 + RESETS
    for k in range(4, 8):  # the state half (sectors 4..7) erased: its records are gone
        dev.erase(k * 4096)
    c2, _tf2, _dm2, bl2, src = _meter(regs, clock.t + 60, Partition(dev, 0, dev.size))
    assert src == "new" and bl2.vz == vz and bl2.last_end == bl.last_end, (bl2.vz, vz)
    snap = bl2.demand_reset()  # past the lockout (the configuration's 600 s)
    assert snap is not None and snap.vz == vz + 1
    assert [s.vz for s in bl2.snapshots()][-1] == vz + 1


def test_cut_at_every_flash_op_of_audit_appends_and_a_clear():
    from billing.localtime import RULE_EU, Zone

    dev = NORFlash(16 * 1024, sector_size=4096, page_size=256)
    clock = Clock(seconds(2026, 5, 1))
    tr = AuditTrail(Partition(dev, 0, dev.size), clock, Log(), capacity=20)
    for j in range(12):
        tr.record("0.9.1", j, j + 1)
    base = dev.copy()
    zone = Zone(60, RULE_EU)

    def script(part):
        t = AuditTrail(part, clock, Log(), capacity=20)
        for j in range(12, 15):
            t.record("0.3.0", j, j + 1)
        list(t.p99_lines(zone))
        assert t.clear()
        for j in range(3):
            t.record("0.9.2", 100 + j, 101 + j)

    ref = base.copy()
    script(Partition(ref, 0, ref.size))
    final = list(AuditTrail(Partition(ref, 0, ref.size), clock, Log()).entries())
    k = 0
    cuts = 0
    while True:
        k += 1
        nor = base.copy()
        nor.cut_at_op(k)
        try:
            script(Partition(nor, 0, nor.size))
        except (PowerCut, OSError):
            pass
        if not nor.dead:
            break
        cuts += 1
        nor.power_on()
        got = AuditTrail(Partition(nor, 0, nor.size), clock, Log())
        ents = list(got.entries())
        ns = [e[0] for e in ents]
        assert ns == sorted(set(ns)), (k, ns)
        assert got.counter >= 12, (k, got.counter)  # the counter never goes back
        for e in ents:  # every entry read back is one that was written
            assert e in final or e[0] <= 15, (k, e)
        if ns and ns[0] > 1:  # cleared: the clear entry leads
            assert ents[0][2] == "C.91.7", (k, ents[0])
    assert cuts >= 5, cuts
