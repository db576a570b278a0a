# Planted failure for the harness self-test (tools/emu/selftest.py): an allocation on a
# heap-locked path that only a 32-bit core makes (2**30 is a long int there), without the
# EMU_EXPECT_FAIL inversion that host_tests/unit/test_emu_canary.py has.
import micropython


def test_planted_31_bit_overflow_allocates():
    x = 1 << 29
    micropython.heap_lock()
    try:
        y = x + x
    finally:
        micropython.heap_unlock()
    assert y == 1 << 30
