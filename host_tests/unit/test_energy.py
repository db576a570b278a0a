"""Registers: quadrant split, derived registers, carry, never backwards."""

import energy
from energy import Registers, lsb_per_unit_q8
from simkit import MICROPYTHON

LPW = lsb_per_unit_q8(4.1824e-5)  # reference front end


def _regs():
    return Registers(LPW, LPW, LPW)


def _lsb(wh):
    return int(wh / 4.1824e-5)


def test_quadrants():
    r = _regs()
    r.add(_lsb(10), _lsb(1), _lsb(11))  # Q1
    r.add(-_lsb(20), _lsb(2), _lsb(21))  # Q2
    r.add(-_lsb(30), -_lsb(3), _lsb(31))  # Q3
    r.add(_lsb(40), -_lsb(4), _lsb(41))  # Q4
    s = r.snapshot()

    def near(k, wh):
        assert abs(s[k] - wh * 1000) <= 2, (k, s[k], wh)  # truncation: 1 mWh per term

    near("1.8.0", 50)
    near("2.8.0", 50)
    near("5.8.0", 1)
    near("6.8.0", 2)
    near("7.8.0", 3)
    near("8.8.0", 4)
    near("3.8.0", 3)
    near("4.8.0", 7)
    near("9.8.0", 52)
    near("10.8.0", 52)
    assert s["16.8.0"] == s["1.8.0"] - s["2.8.0"], s


def test_carry_is_exact():
    r = _regs()
    for _ in range(100000):
        r.add(7, 0, 7)
    expect = 700000 * 256 * 1000 // LPW  # mWh
    assert abs(r.milli(energy.A_PLUS) - expect) <= 1, (r.milli(energy.A_PLUS), expect)
    assert r.res[energy.A_PLUS] < LPW


def test_resolution_is_finer_than_1_mwh():
    r = _regs()
    r.add(_lsb(0.001) + 1, 0, 0)
    assert r.milli(energy.A_PLUS) == 1, r.milli(energy.A_PLUS)


def test_restore_never_goes_backwards():
    r = _regs()
    r.add(_lsb(100), 0, _lsb(100))
    whole, res = r.state()
    r2 = _regs()
    r2.add(_lsb(200), 0, _lsb(200))
    raised = r2.restore(whole, res)
    assert raised == 0, "an older saved state must not lower registers"
    assert r2.milli(energy.A_PLUS) >= 199999
    r3 = _regs()
    assert r3.restore(whole, res) == 2
    assert r3.milli(energy.A_PLUS) == r.milli(energy.A_PLUS)


def test_value_by_obis_and_unknown():
    r = _regs()
    try:
        r.value_milli("99.8.0")
        assert False, "unknown OBIS accepted"
    except KeyError:
        pass


def test_calibration_range():
    try:
        lsb_per_unit_q8(2.0)
        assert False, "2 Wh per LSB accepted"
    except ValueError:
        pass


def test_add_allocates_nothing():
    r = _regs()
    r.add(1, 1, 1)
    r.add(-1, -1, 1)
    if not MICROPYTHON:
        return
    import micropython

    micropython.heap_lock()
    try:
        for _ in range(100):
            r.add(100000, -5000, 100000)
            r.add(-90000, 5000, 90000)
    finally:
        micropython.heap_unlock()
    assert r.whole[energy.A_PLUS] > 0


# One 24-bit read at full scale is 2^23 LSB, and up to 2^26 once firmware/metering.py undoes a
# wrap: ``lsb << 8`` is then a long int on a 32-bit port, i.e. a MemoryError in the
# heap-locked metering step (seen on the emulated cores, tools/emu; the 64-bit host is silent).
# A list, not a tuple: a frozen module's constant tuple holds its ints beyond +-8191 as long-int
# objects (MicroPython 1.25 tools/mpy-tool.py), and -e of one of them allocates.
FULL_SCALE_READS = [(1 << 23) - 1, -(1 << 23), 1 << 26, -(1 << 26), 4194305, 1, -1]


def locked(fn):
    """``fn()`` with the heap locked on MicroPython (an allocation raises MemoryError)."""
    if not MICROPYTHON:
        return fn()
    import micropython

    micropython.heap_lock()
    try:
        return fn()
    finally:
        micropython.heap_unlock()


def test_full_scale_reads_carry_exactly_with_small_ints_only():
    import smallint

    r = _regs()
    r.add(12345, -678, 12345)

    def run():
        for e in FULL_SCALE_READS:
            r.add(e, -e, e)

    bad = smallint.long_locals(lambda: locked(run))
    assert not bad, "long ints on the add path: %r" % bad[:3]
    imp = 12345 + sum(e for e in FULL_SCALE_READS if e >= 0)
    exp = sum(-e for e in FULL_SCALE_READS if e < 0)
    for i, lsb in ((energy.A_PLUS, imp), (energy.S_IMPORT, imp), (energy.A_MINUS, exp),
                   (energy.S_EXPORT, exp), (energy.Q2, exp), (energy.Q4, imp - 12345 + 678)):
        want = (lsb * 256 // LPW, lsb * 256 % LPW)
        assert (r.whole[i], r.res[i]) == want, (i, r.whole[i], r.res[i], want)
