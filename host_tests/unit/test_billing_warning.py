"""Billing writes during a power-fail warning (issue 12 adversarial pass): nothing erases
flash while the supply may go (firmware/meter/billing.py: urgent appends only). Both
interpreters."""

import events
from test_billing_wiring import _meter, _step


def test_a_demand_reset_during_a_power_fail_warning_erases_nothing():
    # the button task and E2 C.91.5 keep running during a warning: the reset's own service()
    # wrote non-urgently, and the ring's auto erase-ahead erased a sector (up to 400 ms on a
    # W25Q16JV) inside the hold-up time
    from boards.sim.norflash import NORFlash
    from civil import seconds
    from flashstore.flash import Partition

    dev = NORFlash(32 * 1024, sector_size=4096, page_size=256)
    regs, clock, tf, dm, bl, log, sp = _meter(seconds(2026, 3, 10, 12),
                                             part=Partition(dev, 0, dev.size))
    for _k in range(40):  # wrap both rings once (erases allowed: no warning)
        clock.t += 601
        assert bl.demand_reset(events.SRC_LOCAL) is not None
    sp.warning = True
    _step(regs, clock, (tf, dm, bl), 1000)
    assert tf.warn
    before = dev.erases
    closed = 0
    for _k in range(40):
        clock.t += 601
        if bl.demand_reset(events.SRC_LOCAL) is not None:
            closed += 1
        assert dev.erases == before, "an erase during the power-fail warning"
    assert closed == 40  # the periods are still closed (snapshots kept in RAM if no room)
    sp.warning = False
    _step(regs, clock, (tf, dm, bl), 1000)
    bl.service()
    bl.maintain()
    assert bl.vz == 80 and bl.snapshot(80) is not None


def test_the_erase_ahead_held_back_by_a_warning_wakes_the_billing_task_when_it_ends():
    # urgent appends never erase: a warning without a cut (the supply came back) leaves the
    # ring with no prepared sector; the billing task sleeps until the step finds something
    # pending, so the step must find the erase owed (it slept up to an hour: a second warning
    # meanwhile had no room for its snapshot)
    from boards.sim.norflash import NORFlash
    from civil import seconds
    from flashstore.flash import Partition

    dev = NORFlash(32 * 1024, sector_size=4096, page_size=256)
    regs, clock, tf, dm, bl, log, sp = _meter(seconds(2026, 3, 10, 12),
                                             part=Partition(dev, 0, dev.size))
    bl.service()  # (what boot noted)
    due = []
    bl.on_due = lambda: due.append(clock.t)
    sp.warning = True
    _step(regs, clock, (tf, dm, bl), 1000)
    n = 0
    while not bl.states.needs_maintenance():
        bl._state_due = True  # (a state record the billing task writes during the warning)
        bl.service(urgent=True)
        n += 1
        assert n < 100
    sp.warning = False
    del due[:]
    _step(regs, clock, (tf, dm, bl), 1000)
    assert due, "the step did not wake the billing task for the erase-ahead owed"
    bl.service()  # the billing task: service, then maintain (no warning)
    bl.maintain()
    assert not bl.states.needs_maintenance() and not bl.snaps.needs_maintenance()
    del due[:]
    _step(regs, clock, (tf, dm, bl), 1000)
    assert not due, "woken again with nothing owed"


def test_an_immediate_configuration_write_during_a_warning_erases_nothing():
    # save_now (password, meter constant, TOU plan, C.93.9: written before the ACK) erased
    # a configuration sector during a power-fail warning; Settings.tick never does
    from boards.sim.norflash import NORFlash
    from flashstore.flash import Partition
    from meter.settings import Settings

    class Clock:
        def time(self):
            return 800000000

    class Supply:
        warning = False

    dev = NORFlash(2 * 4096, sector_size=4096, page_size=256)
    sp = Supply()
    st = Settings(events.EventLog(Clock()), Partition(dev, 0, dev.size), supply=sp)
    st.settle(None)
    st.set("readout_list", ["1.8.0"])
    sp.warning = True
    before = dev.erases
    ok = st.save_now()
    assert dev.erases == before, "a configuration sector erased during the warning"
    assert not ok, "refused: the supply may go (the caller answers 'not written')"
    assert not st.tick(10 ** 6)  # (held until the warning ends)
    sp.warning = False
    assert st.tick(10 ** 6), "still due: written after the warning"
