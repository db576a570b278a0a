# The billing task: persists billing snapshots and the demand state, logs billing events.
"""The asyncio side of the billing functions (firmware/meter/billing.py, tariffs.py,
demand.py).

- :func:`run`: :meth:`Billing.service` logs what the consumers noted (end of billing, DST
  change, tariff plan activation) and writes the pending snapshot and state records into the
  ``billing`` partition, then erases ahead (``maintain``) unless a power-fail warning is on
  (nothing erases then; the erase held back makes ``pending()`` true once it ends). It
  sleeps until the metering step finds something pending
  (``Billing.on_due``, a tasks.wake.Wake set in the heap-locked step: a few wake-ups an
  hour, at the demand periods' ends, instead of one a second: issue 12), at most
  :data:`MAX_SLEEP_MS`.
- :func:`button`: the demand-reset button (``btn``, 1 = pressed, the board's
  ``btn_demand_reset``; a sealable button on the meter's front, like the Focus AX's) closes
  a period on its rising edge, under the same reset lockout as E2 C.91.5. Sampled every
  :data:`BUTTON_MS` of real time (asyncio, as the display's buttons), without a wake-up per
  simulated second; where the pin has ``irq`` (machine.Pin, the virtual board's SimPin) an
  edge interrupt also latches a change between two samples, so a press shorter than the
  sampling period, or one made while a flash erase (up to 400 ms) delayed the sampling, is
  not missed. The button is debounced in hardware (an RC filter: one edge per press and
  release); an edge latched within one sample of the last level seen pressed is its release.
"""

import asyncio

import events
from tasks.wake import Wake

MAX_SLEEP_MS = 3600000  # the longest sleep without a step's note (ms of the board clock)
BUTTON_MS = 100  # the demand-reset button's sampling period (real time)


async def run(billing, clock, supply=None, wake=None):
    """Serve ``billing`` (meter.billing.Billing) forever; ``wake``: a tasks.wake.Wake the
    caller may also set (None: one of its own)."""
    w = wake if wake is not None else Wake()
    billing.on_due = w.set
    w.clear()
    while True:
        await w.wait_ms(clock, MAX_SLEEP_MS)
        w.clear()
        warn = supply is not None and supply.warning
        billing.service(urgent=warn)
        if not warn:
            billing.maintain()


class _Latch:
    """An edge seen by the pin interrupt since the last sample (ISR-safe: a flag)."""

    def __init__(self):
        self.hit = False

    def set(self, _pin):
        self.hit = True


async def button(billing, btn, period_ms=BUTTON_MS):
    """Sample the demand-reset button ``btn`` every ``period_ms`` of real time, with the
    edges its ``irq`` latches in between (module docstring); a press is a demand reset
    (``Billing.demand_reset``, source SRC_LOCAL)."""
    latch = _Latch()
    irq = getattr(btn, "irq", None)
    if irq is not None:
        try:
            irq(latch.set)  # (the port's default trigger: either edge)
        except Exception:  # no interrupt for this pin (an EXTI line taken): sampling only
            pass
    was = 0
    while True:
        await asyncio.sleep_ms(period_ms)
        v = btn.value()
        edge = latch.hit
        latch.hit = False
        if (v or edge) and not was:  # pressed now, or pressed and released in between
            billing.demand_reset(events.SRC_LOCAL)
        was = 1 if v or edge else 0  # (an edge after a press seen: its release)
