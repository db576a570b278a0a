# The load profile task: rows from the step's snapshots, woken by the step at a boundary.
"""The asyncio side of firmware/meter/profile.py: ``Profiles.service()`` turns the snapshot
the metering step took at a capture boundary into a row and writes it (one page program into
the tail ring, one more when a record closes), outside the heap-locked step. The task
sleeps until the step takes a snapshot (``LoadProfile.on_due``, a tasks.wake.Wake: one
wake-up per capture period, not every second: issue 12), a clock set (``wake``, set by the
app: the boundary is re-planned on the new time at once), or ``Profiles.wait_ms`` (a
boundary no step reached, e.g. the chip down, is captured 2 s after it)."""

from tasks.wake import Wake


async def run(profiles, clock, wake=None):
    """Serve ``profiles`` (meter.profile.Profiles) forever; ``wake``: a tasks.wake.Wake the
    caller may also set (a clock set), None: one of its own."""
    w = wake if wake is not None else Wake()
    profiles.set_on_due(w.set)
    # (not cleared here: a clock set while the supervisor's restart pause ran is served)
    while True:
        await w.wait_ms(clock, profiles.wait_ms())
        w.clear()
        profiles.service()
