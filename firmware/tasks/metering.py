# The metering task: the loop that calls Metering.step at whole periods of the metering clock.
"""The metering loop (asyncio side of firmware/meter/metering.py).

Brings the chip up (power-up sequence, the first read discarded; on failure logged once per
episode and retried every ``retry_ms``), then reads every ``period_ms`` of metering time on
absolute deadlines aligned to whole periods of the clock (k * period_ms), so intervals line
up with trace steps, demand and profile periods and none is lost or counted twice; after a
fall-behind it resynchronises. Between steps it serves the requests (cold start), every
``verify_every`` steps it re-reads the chip's configuration, and once a real second it
refreshes the instantaneous values.
"""

from ade7953 import ADE7953Error
from meter.metering import REASONS


async def start_chip(m):
    """Power-up sequence of ``m.ade``, then one read whose counts are discarded (they started
    under the chip's defaults). Returns True when up; logs a failure once per episode."""
    clock = m.clock
    try:
        await m.ade.begin(clock.sleep_ms)
        t0 = clock.ticks_ms()
        code = m.ade.read_energy()
        if code:
            raise ADE7953Error("ADE7953 first read after configuration: %s" % REASONS[code])
    except ADE7953Error as e:
        m.chip_failed(e)
        return False
    m.chip_up(t0)
    return True


async def run(m):
    """Run ``m`` (meter.metering.Metering) forever."""
    clock = m.clock
    deadline = 0
    while True:
        m.serve()
        if not m.up:
            if not await start_chip(m):
                await clock.sleep_ms(m.retry_ms)
                continue
            deadline = m.align(m.last_ms)
        wait = clock.ticks_diff(deadline, clock.ticks_ms())
        if wait > 0:
            await clock.sleep_ms(wait)
        else:
            await clock.sleep_ms(0)
        try:
            code = m.step()
            m.after_step(code)
            if code:
                continue
            if m.steps % m.verify_every == 0:
                m.ade.verify()
            m.refresh_instant()
        except ADE7953Error as e:
            m.read_failed(e)
            continue
        deadline = clock.ticks_add(deadline, m.period_ms)
        if clock.ticks_diff(clock.ticks_ms(), deadline) > m.period_ms:
            deadline = m.align(clock.ticks_ms())  # fell behind: resynchronise
        if m.on_step is not None:
            m.on_step()
