"""The meter's domain, no asyncio: metering step and its consumers, register storage, the
OBIS catalogue, settings, status words, test mode, event store, software identification.
The asyncio side that drives it is firmware/tasks/; the protocols that expose it are
firmware/ports/ (docs/ARCHITECTURE.md)."""
