# The billing task: persists billing snapshots and the demand state, logs billing events.
"""The asyncio side of the billing functions (firmware/meter/billing.py, tariffs.py,
demand.py): every second of metering time :meth:`Billing.service` logs what the consumers
noted (end of billing, DST change, tariff plan activation) and writes the pending snapshot
and state records into the ``billing`` partition, then erases ahead (``maintain``) unless a
power-fail warning is on (nothing erases then). The demand-reset button (``btn``, 1 =
pressed, the board's ``btn_demand_reset``; a sealable button on the meter's front, like the
Focus AX's) closes a period on its rising edge, under the same reset lockout as E2 C.91.5.
"""

import events


async def run(billing, clock, supply=None, btn=None):
    """Serve ``billing`` (meter.billing.Billing) forever."""
    was = 0
    while True:
        await clock.sleep_ms(1000)
        if btn is not None:
            v = btn.value()
            if v and not was:
                billing.demand_reset(events.SRC_LOCAL)
            was = v
        warn = supply is not None and supply.warning
        billing.service(urgent=warn)
        if not warn:
            billing.maintain()
