"""Self-test of the emulated-core harness (tools/emu, issue 9): a failure planted on purpose.

The test below allocates on a heap-locked path only where a small int holds 31 bits (a 32-bit
MicroPython core): 2**30 is a small int on the 64-bit unix port and under CPython, a heap-
allocated long int on Cortex-M. So it passes under ``make unit-micropython`` and
``make unit-cpython`` and raises MemoryError on the emulated cores. ``EMU_EXPECT_FAIL``
inverts its expectation there: tools/emu/emu_unit.py counts the MemoryError as the harness
working and fails the run if the test ever passes on a core (the harness would no longer be
checking 32-bit integers, the reason it exists)."""

EMU_EXPECT_FAIL = {"test_planted_31_bit_overflow_under_heap_lock": "MemoryError"}


def test_planted_31_bit_overflow_under_heap_lock():
    import micropython  # the CPython shim's heap_lock is a no-op; MicroPython enforces it

    x = 1 << 29
    micropython.heap_lock()
    try:
        y = x + x  # 2**30: allocates a long int on a 32-bit core
    finally:
        micropython.heap_unlock()
    assert y == 1 << 30
