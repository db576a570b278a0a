# Planted failures for the harness self-test (tools/emu/selftest.py): tests that never end.
import asyncio


def test_planted_busy_loop_hangs():
    while True:
        pass


async def test_planted_await_forever_hangs():
    await asyncio.Event().wait()


def test_planted_after_the_hangs_still_runs():
    assert True
