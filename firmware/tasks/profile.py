# The load profile task: rows from the step's snapshots, once a second of metering time.
"""The asyncio side of firmware/meter/profile.py: every second of metering time
``Profiles.service()`` turns the snapshot the metering step took at a boundary into a row and
writes it (one page program into the tail ring, one more when a record closes), outside the
heap-locked step."""


async def run(profiles, clock, period_ms=1000):
    """Serve ``profiles`` (meter.profile.Profiles) forever."""
    while True:
        await clock.sleep_ms(period_ms)
        profiles.service()
