"""pytest set-up: the same import paths as on the device (firmware/, lib/, the repo root for
boards/), a `micropython` shim, and plain `async def test_*` support (run with asyncio.run)."""

import asyncio
import inspect
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (os.path.join(ROOT, "host_tests", "shim"), os.path.join(ROOT, "lib"),
          os.path.join(ROOT, "firmware"), ROOT):
    if p not in sys.path:
        sys.path.insert(0, p)

import time  # noqa: E402

if not hasattr(time, "ticks_ms"):  # MicroPython's time extensions, for lib/ and firmware/
    time.ticks_ms = lambda: time.monotonic_ns() // 1000000
    time.ticks_us = lambda: time.monotonic_ns() // 1000
    time.ticks_diff = lambda a, b: a - b
    time.ticks_add = lambda a, b: a + b

if not hasattr(asyncio, "sleep_ms"):
    async def _sleep_ms(ms):
        await asyncio.sleep(ms / 1000)

    asyncio.sleep_ms = _sleep_ms


def pytest_pyfunc_call(pyfuncitem):
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        asyncio.run(pyfuncitem.obj())
        return True
    return None
