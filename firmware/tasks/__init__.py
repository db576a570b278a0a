"""The asyncio side: one task per job (metering loop, display, LEDs, storage and
housekeeping, tamper inputs) under a supervisor that notices a task that died (logs it,
restarts it, or lets the watchdog reset the meter). Each task receives the parts it uses."""
