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
    assert drv.read_energy() == ade7953.READ_RESET, "reset not detected"
    run(drv.begin(clock.sleep_ms, hard_reset=False))
    drv.verify()
    clock.now += 1000
    assert drv.read_energy() == ade7953.READ_OK


def test_reset_between_the_reads_is_caught():
    # the chip restarts after AENERGYA was read: every later word is the fresh chip's
    clock, model, drv = started([(0, KW, 0)])
    clock.now += 1000
    real = drv._w24  # (read_energy's 24-bit frames: ``frame`` as sent)

    def word(frame):
        v = real(frame)
        if (frame[0] << 8) | frame[1] == ade7953.AENERGYA:
            model.inject_reset()
        return v

    drv._w24 = word
    assert drv.read_energy() == ade7953.READ_RESET


def test_read_energy_checks_every_word_against_the_chip_echo():
    # one bit flipped on MISO in one energy word: the chip's LAST_RWDATA still holds what it
    # sent, so the read is refused (DS p.57); the next read is clean again
    for addr in (ade7953.AENERGYA, ade7953.RENERGYA, ade7953.APENERGYA, ade7953.RSTIRQSTATA):
        for bit in (0, 9, 14, 23):
            clock, model, drv = started([(0, KW, 300000)])
            clock.now += 1000
            model.flip_addr = addr
            model.flip_bit = bit
            model.set_fault("bitflip")
            assert model.fault is None, "one-shot"
            assert drv.read_energy() == ade7953.READ_ECHO, (hex(addr), bit)
            clock.now += 1000
            assert drv.read_energy() == ade7953.READ_OK
            assert 0 < drv.e_active <= drv.e_apparent, (drv.e_active, drv.e_apparent)


def test_bus_faults_mid_run_caught_by_the_config_readback():
    # a shifted or stuck bus repeats itself in the echo: CONFIG read back catches it, in the
    # same read, before any count is used (an exporting load: a shifted negative count
    # would read as about +2^23)
    for fault in ("misclocked", "dead0", "deadff"):
        clock, model, drv = started([(0, -2 * KW, -KW)])
        clock.now += 1000
        assert drv.read_energy() == ade7953.READ_OK
        model.set_fault(fault)
        clock.now += 1000
        assert drv.read_energy() == ade7953.READ_CONFIG, fault
        if fault == "misclocked":
            assert drv.e_active > 8000000, "the count it would have invented: %d" % drv.e_active


def test_read_with_reset_lost_is_caught():
    # LCYCMODE.RSTREAD cleared (a stray write): every read would return the running total
    clock, model, drv = started([(0, KW, 0)])
    clock.now += 1000
    assert drv.read_energy() == ade7953.READ_OK
    drv.write(ade7953.LCYCMODE, 0x00)
    clock.now += 1000
    assert drv.read_energy() == ade7953.READ_CONFIG


def test_configuration_read_back_after_writing():
    # a bit lost on MOSI while a gain is written would bias every later interval unseen:
    # configure() reads every register back and names the one that differs
    clock, model, drv = chip([(0, KW, 0)])
    real = model.write_reg

    def write_reg(addr, value):
        real(addr, value ^ 0x100 if addr == ade7953.AWGAIN else value)

    model.write_reg = write_reg
    try:
        run(drv.begin(clock.sleep_ms))
        assert False, "corrupted AWGAIN accepted"
    except ADE7953Error as e:
        assert "0x282" in str(e), str(e)
    model.write_reg = real
    run(drv.begin(clock.sleep_ms))


def test_model_records_the_last_transfer():
    clock, model, drv = started([(0, KW, 0)])
    assert drv.read(ade7953.CONFIG) == 0x0004
    assert drv.read(ade7953.LAST_OP) == 0x35 and drv.read(ade7953.LAST_ADD) == ade7953.CONFIG
    assert drv.read(ade7953.LAST_RWDATA_16) == 0x0004, "reading LAST_* is not recorded"
    drv.write(ade7953.SAGLVL, 0x123456)
    assert drv.read(ade7953.LAST_OP) == 0xCA
    assert drv.read(ade7953.LAST_RWDATA_24) == 0x123456


def test_count_limit_is_twice_full_scale():
    clock, model, drv = started([(0, 0, 0)])
    assert drv.count_limit_per_ms() == 423, drv.count_limit_per_ms()  # 2 x 206.9 x 1.02
    from ade7953 import Calibration

    d2 = ade7953.ADE7953(None, _Pin(), cal=Calibration(avagain=0x600000))
    assert d2.count_limit_per_ms() == 634, d2.count_limit_per_ms()


class _Pin:
    def value(self, v=None):
        return 1


def _over(p_mw, q_mvar, v_mv=230000, secs=10):
    clock, model, drv = started([(0, p_mw, q_mvar)], v_mv=v_mv)
    e = [0, 0, 0]
    st = 0
    for _ in range(secs):
        clock.now += 1000
        assert drv.read_energy() == ade7953.READ_OK
        e[0] += drv.e_active
        e[1] += drv.e_reactive
        e[2] += drv.e_apparent
        st |= drv.irq_status
    drv.read_instant()
    return e, st, drv


def test_over_range_clips_keeps_sign_and_flags():
    fs = 206900 * 10  # counts in 10 s at full scale
    # 100 kW import at 230 V (435 A, 5x the 88 A full scale): clipped, still import
    e, st, drv = _over(100000 * 1000, 0)
    assert st & ade7953.IRQ_OIA and not st & ade7953.IRQ_OV, hex(st)
    assert 0 < e[0] <= e[2] < 2 * fs, e
    # 230 V x 88 A x 4/pi is the limit of a clipped current against a sine voltage
    assert e[0] < 230 * 88 * 4 / 3.1416 / (354 * 88) * fs * 1.001, e
    assert e[0] > 230 * 88 / (354 * 88) * fs, ("more than the unclipped 88 A", e)
    v = drv.instant_values()
    assert 20000 < v["P"] < 30000 and v["S"] >= v["P"], v
    # export beyond full scale stays export
    e, st, drv = _over(-100000 * 1000, -20000 * 1000)
    assert e[0] < 0 and e[1] < 0 and e[2] > 0 and -e[0] <= e[2], e
    assert drv.instant_values()["P"] < 0
    # 1e12 W with Q = 0: no reactive energy appears, nothing wraps
    e, st, drv = _over(10 ** 15, 0)
    assert e[1] == 0 and 0 < e[0] <= e[2] < 2 * fs, e
    assert not drv.overflow
    # within range: no flag, exact
    e, st, drv = _over(15000 * 1000, 0)
    assert not st & (ade7953.IRQ_OIA | ade7953.IRQ_OV), hex(st)
    assert abs(e[0] - 15000 / (354 * 88) * fs) <= 2, e
    # over-voltage: 400 V on the 354 V full-scale channel
    e, st, drv = _over(1000 * 1000, 0, v_mv=400000)
    assert st & ade7953.IRQ_OV, hex(st)
    assert 0 < e[0] <= e[2], e


def test_verify_detects_lost_configuration():
    clock, model, drv = started([(0, 0, 0)])
    model.set_fault("dead0")
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
    class Bus:  # AENERGYA = 0x120000, CONFIG = 0x0004, others 0; LAST_RWDATA echoes
        last = 0

        def write_readinto(self, w, r):
            a = (w[0] << 8) | w[1]
            v = 0x120000 if a == 0x21E else (0x0004 if a == 0x102 else (
                0x40 if a == 0x004 else 0))
            if a == 0x2FF:
                v = self.last
            else:
                self.last = v
            n = len(r) - 3
            for i in range(n):
                r[3 + i] = (v >> (8 * (n - 1 - i))) & 0xFF

    class Pin:
        def value(self, v=None):
            return 1

    d = ade7953.ADE7953(Bus(), Pin())
    assert d.read_energy() == ade7953.READ_OK
    micropython.heap_lock()
    try:
        for _ in range(10):
            code = d.read_energy()
    finally:
        micropython.heap_unlock()
    assert code == ade7953.READ_OK and d.e_active == 0x120000, (code, hex(d.e_active))


def test_neutral_channel_b_scenario():
    clock, model, drv = started([(0, 2300 * 1000, 0)])
    model.neutral_ratio_pct = 60
    drv.read_instant()
    v = drv.instant_values()
    assert abs(v["I"] - 10.0) < 0.01 and abs(v["IN"] - 6.0) < 0.01, (v["I"], v["IN"])


def _model_frame(m, wbuf, bytewise):
    # one SPI frame with CS low: whole (the model's fast path for plain reads) or byte by
    # byte (its byte path, _bytes); the MISO bytes
    rbuf = bytearray(len(wbuf))
    m.select(0)
    if bytewise:
        one = bytearray(1)
        for i in range(len(wbuf)):
            m.transfer(wbuf[i:i + 1], one)
            rbuf[i] = one[0]
    else:
        m.transfer(wbuf, rbuf)
    m.select(1)
    return bytes(rbuf)


def test_the_models_whole_frames_answer_as_its_byte_path():
    # boards/sim/ade7953_model.py answers a whole read frame without read_reg (_FAST): the
    # same MISO bytes and the same chip state (LAST_OP/LAST_ADD/LAST_RWDATA, energy
    # registers read with reset, IRQSTATA, peaks, faults) as the byte path, frame by frame,
    # for random frames mixed with faults set mid-run (also assigned directly), chip resets,
    # the RESET pin and writes (RSTREAD on/off, SWRST, aliases, read-only registers)
    from boards.sim import ade7953_model as M
    from simkit import StepTrace

    rows = [(0, 1500000, 300000), (5000, -2000000, 100000), (9000, 4000000, -800000),
            (15000, 0, 0), (20000, 3000000, 0)]
    addrs = sorted(set(list(M._FAST) + [0x004, 0x102, 0x107, 0x22C, 0x120, 0x0FE, 0x31E,
                                        0x320, 0x32D, 0x32E, 0x3FF, 0x800, 0x702, 0x224,
                                        0x324, 0x21C, 0x31C, 0x226, 0x227]))
    faults = M.FAULTS + (None, None, None, None)
    for seed in (1, 2, 3):
        now = [0]
        a = M.ADE7953Model(StepTrace(rows), lambda now=now: now[0])
        b = M.ADE7953Model(StepTrace(rows), lambda now=now: now[0])
        x = [seed * 0x9E3779B1 & 0xFFFFFFFF]

        def rnd(n, x=x):  # xorshift32: the same sequence on both interpreters
            v = x[0]
            v ^= (v << 13) & 0xFFFFFFFF
            v ^= v >> 17
            v ^= (v << 5) & 0xFFFFFFFF
            x[0] = v
            return v % n

        for step in range(700):
            r = rnd(100)
            if r < 5:
                f = faults[rnd(len(faults))]
                direct = rnd(2)
                for m in (a, b):
                    if direct:
                        m.fault = f
                    else:
                        m.set_fault(f)
            elif r < 7:
                a.inject_reset()
                b.inject_reset()
            elif r < 8:
                lvl = rnd(2)
                a.reset_pin(lvl)
                b.reset_pin(lvl)
            elif r < 20:
                now[0] += (0, 1, 7, 40, 100, 1000)[rnd(6)]
            else:
                addr = addrs[rnd(len(addrs))]
                n = 1 if addr in (0x702, 0x800) else ((addr >> 8) & 3) + 1
                w = bytearray([addr >> 8, addr & 0xFF, 0x80] + [0] * n)
                if r < 30:  # a write
                    w[2] = 0
                    for k in range(n):
                        w[3 + k] = rnd(256)
                    if addr == 0x004:
                        w[3] = (0x40, 0x00, 0x44)[rnd(3)]
                    elif addr == 0x102 and rnd(5):
                        w[3] &= 0x7F  # (SWRST now and then only)
                ra = _model_frame(a, w, False)
                rb = _model_frame(b, w, True)
                assert ra == rb, (seed, step, hex(addr), w[2], ra, rb, a.fault)
            sa = (a._last, a._reg, a._irqstata, a._regs, a._acc, a._peak, a.fault,
                  a._ready_at, a.reads, a.writes)
            sb = (b._last, b._reg, b._irqstata, b._regs, b._acc, b._peak, b.fault,
                  b._ready_at, b.reads, b.writes)
            assert sa == sb, (seed, step, [(i, sa[i], sb[i]) for i in range(len(sa))
                                           if sa[i] != sb[i]])


def test_the_models_viper_path_takes_a_32_bit_word_after_it():
    # boards/sim/ade7953_model.transfer is viper code (machine ints: 32 bits signed on the
    # emulated Cortex-M3): after a 32-bit read of a negative energy word (0x31E, sign-
    # extended: 0xFFxxxxxx in LAST_RWDATA) the 24-bit LAST_RWDATA read (0x2FF) goes through
    # that path and must answer the low 24 bits, the 32-bit one (0x3FF) all of them, as the
    # byte path does; with RSTREAD off the word stays (no reset on read)
    from boards.sim import ade7953_model as M
    from simkit import StepTrace

    now = [0]
    models = [M.ADE7953Model(StepTrace([(0, -3000000, -500000)]), lambda: now[0])
              for _ in range(2)]
    now[0] = 100  # past the 40 ms power-up
    for m in models:
        m.irq_pin()
    answers = []
    for bytewise, m in ((False, models[0]), (True, models[1])):
        now[0] = 100
        # RSTREAD off (LCYCMODE 0x004 = 0): the accumulators keep counting
        assert _model_frame(m, bytearray([0x00, 0x04, 0x00, 0x00]), bytewise) == bytes(4)
        got = []
        for t, addr in ((1100, 0x31E), (1100, 0x2FF), (1100, 0x3FF), (2100, 0x21E),
                        (2100, 0x2FF), (2100, 0x320), (2100, 0x2FF), (2100, 0x3FF)):
            now[0] = t
            n = ((addr >> 8) & 3) + 1
            got.append(_model_frame(m, bytearray([addr >> 8, addr & 0xFF, 0x80] + [0] * n),
                                    bytewise))
        answers.append(got)
    assert answers[0] == answers[1]
    word32 = answers[0][0]
    assert word32[3] == 0xFF  # negative: sign-extended to 32 bits
    assert answers[0][1][3:] == word32[4:]  # LAST_RWDATA_24: its low 24 bits
    assert answers[0][2][3:] == word32[3:]  # LAST_RWDATA_32: all of it
    assert answers[0][4][3:] == answers[0][3][3:]  # after a 24-bit read: that word
    a, b = models
    assert (a._last, a._reg, a.reads) == (b._last, b._reg, b.reads)


def test_the_models_fast_read_refuses_a_read_only_buffer_as_the_byte_path_does():
    # machine.SPI.write_readinto raises TypeError for a read-only rbuf (bytes, a memoryview
    # of bytes), as does the model's byte path; its viper path wrote through ptr8 (a read
    # buffer's address) into the bytes object, so a driver that passed one worked on
    # MicroPython (and changed a bytes object, maybe a shared constant) and failed on
    # CPython and on the board. Now it refuses it before the frame changes any state.
    from boards.sim import ade7953_model as M
    from simkit import StepTrace

    now = [5000]
    m = M.ADE7953Model(StepTrace([(0, 1500000, 300000)]), lambda: now[0])
    now[0] += 1000  # (the chip's start-up over: plain reads take the fast path)
    _model_frame(m, bytes([0x01, 0x02, 0x80, 0, 0]), False)  # LAST_ADD: 0x102
    reads = m.reads
    frame = bytes([0x01, 0xFE, 0x80, 0, 0])  # LAST_ADD (16 bit): the fast path
    for rbuf in (bytes(5), memoryview(bytes(5))):
        m.select(0)
        try:
            m.transfer(frame, rbuf)
            raised = False
        except TypeError:
            raised = True
        m.select(1)
        assert raised and bytes(rbuf) == bytes(5), (type(rbuf), bytes(rbuf))
        assert m.reads == reads, (m.reads, reads)
    assert _model_frame(m, frame, False) == b"\x00\x00\x00\x01\x02"  # (a bytearray: as ever)
