"""ADE7953 driver against the register model (data sheet Rev. C facts)."""

import ade7953
from ade7953 import ADE7953Error
from simkit import MICROPYTHON, chip, run, started

KW = 1000000  # 1 kW in mW


def test_width_rule():
    assert ade7953.width(0x102) == 2, "16-bit"
    assert ade7953.width(0x21E) == 3, "24-bit"
    assert ade7953.width(0x31E) == 4, "32-bit"
    assert ade7953.width(0x004) == 1 and ade7953.width(0x702) == 1 and ade7953.width(0x800) == 1


def test_begin_configures_and_unlocks_0x120():
    clock, model, drv = started([(0, 0, 0)])
    assert model.unlocked_120, "0xAD to 0x0FE then 0x30 to 0x120 (DS p.18)"
    assert drv.read(ade7953.CONFIG) == 0x0004, hex(drv.read(ade7953.CONFIG))
    assert drv.read(ade7953.AP_NOLOAD) == drv.cal.no_load_code()
    assert drv.read(ade7953.LCYCMODE) & 0x40, "RSTREAD kept on"
    assert model.irq_pin() == 1, "RESET interrupt serviced, IRQ released"
    assert clock.now >= 40, "waited for the chip's start-up"


def _fails(fault, word):
    clock, model, drv = chip([(0, 0, 0)], fault=fault)
    try:
        run(drv.begin(clock.sleep_ms))
    except ADE7953Error as e:
        assert word in str(e), str(e)
        return
    assert False, "no error for fault %s" % fault


def test_dead_and_misclocked_chip_detected():
    _fails("dead0", "0x00")
    _fails("deadff", "0xFF")
    _fails("misclocked", "1-bit shift")


def test_misclocked_reads_config_0x4002():
    clock, model, drv = chip([(0, 0, 0)], fault="misclocked")
    clock.now = 100
    assert drv.read(ade7953.CONFIG) == 0x4002, hex(drv.read(ade7953.CONFIG))


def test_energy_exact_over_an_hour():
    clock, model, drv = started([(0, KW, 500000)])
    total_p = total_q = total_s = 0
    t0 = clock.now
    for _ in range(3600):
        clock.now += 1000
        drv.read_energy()
        total_p += drv.e_active
        total_q += drv.e_reactive
        total_s += drv.e_apparent
    hours = (clock.now - t0) / 3.6e6
    wh = total_p * drv.cal.wh_per_lsb
    assert abs(wh - 1000 * hours) < 2 * drv.cal.wh_per_lsb, wh
    varh = total_q * drv.cal.varh_per_lsb
    assert abs(varh - 500 * hours) < 2 * drv.cal.varh_per_lsb, varh
    vah = total_s * drv.cal.vah_per_lsb
    assert abs(vah - 1118.033988 * hours) < 0.002, vah  # S floored to 1 mVA in the model


def test_export_is_negative_never_abs():
    clock, model, drv = started([(0, -2 * KW, -300000)])
    clock.now += 1000
    drv.read_energy()
    assert drv.e_active < 0 and drv.e_reactive < 0, (drv.e_active, drv.e_reactive)
    assert drv.e_apparent > 0


def test_read_with_reset():
    clock, model, drv = started([(0, KW, 0)])
    clock.now += 1000
    drv.read_energy()
    assert drv.e_active > 0
    drv.read_energy()
    assert drv.e_active == 0, "RSTREAD: a second read at the same instant gives 0"


def test_overflow_flag_on_wrap():
    clock, model, drv = started([(0, 15 * KW, 0)])
    # 15 kW ~ 99 600 LSB/s: the 24-bit register wraps after ~84 s
    clock.now += 100000
    drv.read_energy()
    assert drv.overflow & ade7953.IRQ_AEOFA, hex(drv.irq_status)


def test_max_read_interval():
    clock, model, drv = started([(0, 0, 0)])
    ms = drv.max_read_interval_ms()
    assert 79000 < ms < 80200, ms


def test_reset_detected_and_reconfigured():
    clock, model, drv = started([(0, KW, 0)])
    model.inject_reset()
    clock.now += 1000
    try:
        drv.read_energy()
        assert False, "reset not detected"
    except ADE7953Error as e:
        assert "reset" in str(e), str(e)
    run(drv.begin(clock.sleep_ms, hard_reset=False))
    drv.verify()


def test_verify_detects_lost_configuration():
    clock, model, drv = started([(0, 0, 0)])
    model.fault = "dead0"
    try:
        drv.verify()
        assert False, "dead bus not detected"
    except ADE7953Error:
        pass


def test_32bit_alias_sign_extends():
    clock, model, drv = started([(0, -KW, 0)])
    clock.now += 1000
    v = drv.read(0x31E)  # AENERGYA through the 32-bit alias
    assert v < 0, v


def test_instant_values():
    clock, model, drv = started([(0, 3 * KW, 4 * KW)])
    drv.read_instant()
    v = drv.instant_values()
    assert abs(v["V"] - 230) < 0.01, v["V"]
    assert abs(v["I"] - 5000 / 230) < 0.01, v["I"]
    assert abs(v["P"] - 3000) < 1 and abs(v["Q"] - 4000) < 1 and abs(v["S"] - 5000) < 1, v
    assert abs(v["PF"] - 0.6) < 0.001, v["PF"]
    assert abs(v["f"] - 50) < 0.02, v["f"]


def test_read_energy_allocates_nothing():
    clock, model, drv = started([(0, KW, 100000)])
    clock.now += 1000
    drv.read_energy()  # warm up: model caches
    if not MICROPYTHON:
        return
    import micropython

    # the model allocates (bigint residues); measure the driver alone against a fake bus
    class Bus:
        def write_readinto(self, w, r):
            r[3] = 0x12 if w[1] == 0x1E else 0  # AENERGYA = 0x120000, others 0

    class Pin:
        def value(self, v=None):
            return 1

    d = ade7953.ADE7953(Bus(), Pin())
    d.read_energy()
    micropython.heap_lock()
    try:
        for _ in range(10):
            d.read_energy()
    finally:
        micropython.heap_unlock()
    assert d.e_active == 0x120000, hex(d.e_active)


def test_neutral_channel_b_scenario():
    clock, model, drv = started([(0, 2300 * 1000, 0)])
    model.neutral_ratio_pct = 60
    drv.read_instant()
    v = drv.instant_values()
    assert abs(v["I"] - 10.0) < 0.01 and abs(v["IN"] - 6.0) < 0.01, (v["I"], v["IN"])
