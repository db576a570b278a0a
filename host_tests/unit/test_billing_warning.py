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
