"""The functions a metering step calls every second get their frames on the C stack: on
MicroPython a Python function whose state (arguments, locals and value stack, plus 3 words
per active ``try``) passes 11 machine words gets it from the heap at every call
(py/objfun.c ``VM_MAX_STATE_ON_STACK``) and frees it on return. ``heap_lock()`` cannot see
this (the call falls back to the C stack when the heap is locked), nor can
``gc.mem_alloc()`` (the block is free again after the call): ``micropython.mem_total()``
(the bytes ever allocated, MICROPY_MEM_STATS: the unix port and the emulated cores' qemu
port have it) does. Each such allocation is a heap search every second and may start a
garbage collection inside the step. Skipped where ``mem_total`` is missing (CPython)."""

from simkit import MICROPYTHON

EMU_HOST_ONLY = {
    "test_virtual_chip_metering_read_allocates_no_frame":
        "the virtual board's ADE7953 model (the simulator, on the 64-bit unix port) keeps "
        "exact energy residues (products up to ~2^50): long ints on a 32-bit core",
}


def _meter_total():
    if not MICROPYTHON:
        return None
    import micropython

    return getattr(micropython, "mem_total", None)


def _allocated(fn, calls=200, before=None):
    """Bytes allocated by ``calls`` calls of ``fn`` (``before()`` run first each time, not
    counted); None without ``mem_total``."""
    total = _meter_total()
    if total is None:
        return None
    import gc

    fn()  # warm: caches, bound methods, first-call state
    gc.collect()
    gc.disable()
    try:
        n = 0
        for _ in range(calls):
            if before is not None:
                before()
            t0 = total()
            fn()
            n += total() - t0
    finally:
        gc.enable()
    return n


def _consumers():
    from ade7953 import Calibration
    from billing import config
    from energy import Registers, lsb_per_unit_q8

    import events
    from meter.billing import Billing
    from meter.demand import Demand
    from meter.tariffs import TARIFF_Q8, Tariffs
    from simkit import ManualClock

    lpw = lsb_per_unit_q8(Calibration().wh_per_lsb)
    cfg = config.Config()
    regs = Registers(lpw, lpw, lpw, 1, 2, TARIFF_Q8)
    clock = ManualClock()
    log = events.EventLog(clock)
    tf = Tariffs(regs, clock, cfg, lpw, log)
    dm = Demand(cfg, tf)
    bl = Billing(regs, tf, dm, cfg, clock, log)
    tf.reconcile()
    bl.boot()
    return regs, clock, tf, dm, bl


def test_billing_consumers_of_the_step_allocate_no_frame():
    # Tariffs.interval had 26 words of state (208 B on the heap each second on a 64-bit
    # port), Demand.interval 16, Billing.interval 12, Registers.add_tariff 12
    regs, clock, tf, dm, bl = _consumers()

    def second():
        clock.now += 1000
        regs.add(20000, 300, 20000)

    for _ in range(3):
        second()
        for c in (tf, dm, bl):
            c.interval(20000, 300, 20000, 1000)
    got = []
    for c in (tf, dm, bl):
        def one(c=c):
            c.interval(20000, 300, 20000, 1000)

        def pre(c=c):
            second()
            if c is not tf:  # the others read what the tariffs' interval noted
                tf.interval(20000, 300, 20000, 1000)

        got.append(_allocated(one, before=pre))
    got.append(_allocated(lambda: regs.add_tariff(1, 20, 3, 20)))
    if got[0] is None:
        return
    assert got == [0, 0, 0, 0], got  # tariffs, demand, billing, add_tariff


def test_storage_step_consumer_allocates_no_frame():
    # Storage.interval (the step's storage consumer: the periodic-commit check) had 13
    from boards.sim.norflash import NORFlash
    from energy import Registers
    from flashstore.flash import Partition

    import events
    from meter import storage
    from meter.supply import Supply
    from simkit import ManualClock

    class _M:
        steps = 0

        def finish(self, cb):
            cb()

    class _Wake:
        def __init__(self):
            self.n = 0

        def set(self):
            self.n += 1

    regs = Registers(25600, 25600, 25600)
    clock = ManualClock()
    dev = NORFlash(32 * 1024, sector_size=4096, page_size=256)  # (NETDUINO2's heap)
    s = storage.Storage(Partition(dev, 0, dev.size), regs, _M(), clock,
                        events.EventLog(clock), supply=Supply())
    s.restore()
    w = _Wake()
    s.on_due = w.set

    def pre():
        clock.now += 1000

    got = _allocated(lambda: s.interval(0, 0, 0, 1000), before=pre)
    if got is None:
        return
    assert got == 0, got
    # a journal committed: most steps skip the policy until its deadline (issue 12, session
    # 11), the others ask it and take the next deadline (CommitPolicy.quiet_s / quiet_wh)
    s.commit()
    w.n = 0

    def pre_wh():
        clock.now += 1000
        regs.whole[0] += 1

    got = _allocated(lambda: s.interval(1, 0, 1, 1000), calls=400, before=pre_wh)
    assert got == 0, got
    assert w.n > 0, "the period's end asked the policy and woke the task"


def test_board_clock_seconds_since_allocates_no_frame():
    # boards/board.py MonotonicClock.seconds_since (each interval on a real board) had 12
    from boards.board import MonotonicClock

    class _Time:
        tk = 0

        def ticks_ms(self):
            return self.tk

        def ticks_diff(self, a, b):
            return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000

        def time(self):
            return 1000 + self.tk // 1000

    clk = MonotonicClock(0)
    tm = clk._time = _Time()

    def pre():
        tm.tk += 1000

    got = _allocated(lambda: clk.seconds_since(500), before=pre)
    if got is None:
        return
    assert got == 0, got


def test_load_profiles_step_consumer_allocates_no_frame():
    # meter/profile.py Profiles.interval had 16 words (its for loop takes 4), each
    # LoadProfile.interval 18
    from energy import Registers
    from meter.profile import LoadProfile, Profiles
    from simkit import ManualClock
    from simkit import MeterStub as Met

    clk = ManualClock(t0=10 ** 8)
    ps = Profiles(Registers(25600, 25600, 25600), Met(), clk,
                  [{"period_s": 900, "channels": ["1.29", "2.29"]}] * 2)
    ps.start()

    def pre():
        clk.now += 1000

    got = _allocated(lambda: ps.interval(1, 2, 3, 1000), calls=100, before=pre)
    if got is None:
        return
    assert got == 0, got
    # the flags latched without LoadProfile.second, and the boundary's step (the snapshot,
    # the next earliest boundary: issue 12, session 11)
    met = ps.items[0].metering
    n = [0]

    def pre_bad():
        clk.now += 1000
        n[0] += 1
        met.ok = n[0] % 7 != 3
        clk.rtc_valid = n[0] % 11 != 5

    got = _allocated(lambda: ps.interval(1, 2, 3, 1000), calls=600, before=pre_bad)
    met.ok = clk.rtc_valid = True
    assert got == 0, got
    # the boundary's step: the snapshot of each profile, the next earliest boundary
    # (LoadProfile._take's frame was heap-allocated once a period: 136 B a profile on the
    # 64-bit unix port)
    got = _allocated(lambda: ps.interval(1, 2, 3, 1000), calls=300, before=pre)
    assert ps.items[0].due, "a boundary was reached"
    assert got == 0, got
    clk1 = ManualClock(t0=10 ** 8)
    lp = LoadProfile(Registers(25600, 25600, 25600), Met(), clk1,
                     {"period_s": 900, "channels": ["1.29", "2.29"]})
    lp.start()

    def pre1():
        clk1.now += 1000

    one = _allocated(lambda: lp.interval(1, 2, 3, 1000), calls=900, before=pre1)
    assert lp.due and one == 0, one


def test_tamper_poll_allocates_no_frame():
    # tasks/tamper.py TamperWatch.poll runs every 50 ms: 17 words (its for loop and try),
    # and the neutral check of each new reading 15
    import events
    from simkit import ManualClock
    from tasks.tamper import TamperWatch

    class _Pin:
        v = 0

        def value(self):
            return self.v

    class _Board:
        seal = _Pin()
        cover = _Pin()
        terminal_cover = _Pin()
        magnet = _Pin()

    class _Met:
        instant_seq = 0
        instant_milli = {"I": 5000, "IN": 4990}

    met = _Met()
    w = TamperWatch(_Board(), met, events.EventLog(ManualClock()), {}, samples=3)
    w.poll(0)
    ms = [0]

    def pre():
        ms[0] += 50
        met.instant_seq = (met.instant_seq + 1) & 0xFFFF  # a new reading each poll

    got = _allocated(lambda: w.poll(ms[0]), before=pre)
    if got is None:
        return
    assert got == 0, got


def test_test_led_pulse_allocates_no_frame():
    # lib/energy/pulse.py PulseTrain.show_now (each pulse of the test LED: tens a second at
    # full load) had 19 words
    from energy.pulse import PulseTrain
    from simkit import ManualClock

    class _Led:
        def __init__(self):
            self.v = 0

        def value(self, v=None):
            if v is not None:
                self.v = v
            return self.v

    class _Owed:
        def __init__(self):
            self.due = 10 ** 6

    clk = ManualClock()
    tr = PulseTrain(clk, 1000, 10)
    led = _Led()
    o = _Owed()

    def pre():
        clk.now += 37  # one pulse due now and then two
        tr.show_wait(o.due)

    got = _allocated(lambda: tr.show_now(led, o, "due"), before=pre)
    if got is None:
        return
    assert got == 0, got


def test_lcd_driver_show_allocates_no_frame():
    # lib/lcd/ht1621.py HT1621.show (each new LCD frame on a real board, up to 4 a second):
    # show 14 words, image 17, _set_bits 16 (once per lit cell)
    import lcd
    from lcd.ht1621 import HT1621

    class _Pin:
        def __init__(self):
            self.v = 0

        def value(self, v=None):
            if v is None:
                return self.v
            self.v = v

    h = HT1621(_Pin(), _Pin(), _Pin())
    f = lcd.Frame()
    f.ident = "1.8.0"
    f.ann = lcd.ANN_T1
    n = [0]

    def pre():
        n[0] = (n[0] + 1234567) & 0xFFFFFF  # another value each frame
        lcd.format_value(f, n[0], 3)

    got = _allocated(lambda: h.show(f), calls=100, before=pre)
    if got is None:
        return
    assert got == 0, got


def test_lcd_refresh_allocates_no_frame():
    # lib/lcd Display.render (each 250-ms refresh): Display._render 17 words (its try),
    # format_value 14, _format 19
    import lcd

    class _Box:
        def __init__(self):
            self.v = -1234567

        def get(self):
            return self.v

    b = _Box()
    d = lcd.Display(auto=[("1.8.0", b.get, 3, lcd.ANN_IMPORT, "kWh")])

    def pre():
        b.v = (b.v + 7654321) & 0xFFFFFF  # another value each refresh

    got = _allocated(d.render, before=pre)
    if got is None:
        return
    assert got == 0, got


class _Bdev:
    """A block device with the extended interface (rp2.Flash, pyb.Flash) that counts its
    writes and keeps only the last page written: a commit reads back the page it has just
    written (each record and sector header: lib/flashstore/ringlog.py), anything else reads
    erased. Frames of at most 11 words: the model allocates nothing of its own."""

    def __init__(self, blocks):
        self.blocks = blocks
        self.writes = 0
        self.page = bytearray(b"\xff" * 256)
        self.at = -256  # the address of the page written last

    def ioctl(self, op, arg):
        return {1: 0, 4: self.blocks, 5: 4096, 6: 0}.get(op, 0)

    def readblocks(self, block, buf, offset=0):
        o = block * 4096 + offset - self.at
        i = 0
        while i < len(buf):
            buf[i] = self.page[o + i] if 0 <= o + i < 256 else 0xFF
            i += 1

    def writeblocks(self, block, buf, offset=0):
        self.writes += 1
        self.at = block * 4096 + offset
        i = 0
        while i < 256:
            self.page[i] = buf[i]
            i += 1


def test_periodic_and_power_fail_commits_allocate_no_frame():
    # Storage.commit had 18 words of frame (its try ... except ... as e keeps two
    # exception-stack entries), SectorRing._append 31, crc32_feed 15 (twice a record),
    # storage.pack 21 and BlockDeviceFlash.program 23 (a real board's flash): 1 KB from the
    # heap at each commit on the unix port, and a garbage collection started inside one now
    # and then
    from energy import Registers
    from flashstore import journal
    from flashstore.flash import BlockDeviceFlash, Partition

    import events
    from meter import storage
    from meter.supply import Supply
    from simkit import ManualClock

    class _M:
        steps = 123456

    regs = Registers(25600, 25600, 25600)
    regs.add(10 ** 6, 10 ** 5, 10 ** 6)
    clock = ManualClock()
    dev = _Bdev(8)
    flash = BlockDeviceFlash(dev)
    s = storage.Storage(Partition(flash, 0, flash.size), regs, _M(), clock,
                        events.EventLog(clock), supply=Supply())
    s.restore()
    j = s.journal

    def pre():
        clock.now += 1000
        if j.needs_maintenance():
            j.maintain()

    got = []
    for reason in (journal.REASON_PERIODIC, journal.REASON_POWERFAIL):
        w = dev.writes
        assert s.commit(reason) and dev.writes == w + 1, (reason, dev.writes)
        got.append(_allocated(lambda r=reason: s.commit(r), calls=100, before=pre))
    assert s.write_errors == 0, s.write_errors
    if got[0] is None:
        return
    assert got == [0, 0], got  # periodic, power-fail


class _Steady:
    # one row of load for ever, the same tuple at every call (as boards/sim/load.LoadTrace
    # answers within a row)
    def __init__(self):
        self.row = (2300000, 400000, None)

    def at(self, t):
        return self.row


def _virtual_chip():
    from ade7953 import ADE7953

    from boards.sim.ade7953_model import ADE7953Model
    from boards.sim.hw import ChipSelect, SimSPI
    from simkit import ManualClock, run

    clock = ManualClock()
    model = ADE7953Model(_Steady(), clock.ticks_ms)
    drv = ADE7953(SimSPI(model), ChipSelect("CS", model))
    run(drv.begin(clock.sleep_ms))
    return clock, model, drv


def test_virtual_chip_metering_read_allocates_no_frame():
    # the virtual board's ADE7953 model integrated the trace every simulated second in one
    # function of 47 words (_advance: ~420 B from the heap each second on a 64-bit port)
    clock, model, drv = _virtual_chip()

    def pre():
        clock.now += 1000

    pre()
    assert drv.read_energy() == 0  # (the first integration builds the chip's cached scales)
    got = _allocated(drv.read_energy, before=pre)
    if got is None:
        return
    assert got == 0, got


def test_metering_step_allocates_no_frame():
    # Metering.step had 25 words of state (and _implausible 12): two heap-allocated frames
    # every second, on the device as on the virtual board; now split (step, _check,
    # _implausible, _accept / _drop_interval, _feed). The driver answers fixed counts (no
    # chip model: it runs on the 32-bit cores too)
    from ade7953 import ADE7953
    from energy import Registers, lsb_per_unit_q8
    from energy.pulse import NoLoadGate

    import events
    from boards.sim.hw import SimPin
    from meter.metering import Metering
    from meter.testoutput import TestOutput
    from simkit import ManualClock

    class _Counts(ADE7953):
        # 2.3 kW, 400 var for a second at the reference calibration (DS p.25)
        def read_energy(self):
            self.e_active = 15275
            self.e_reactive = 2656
            self.e_apparent = 15504
            self.irq_status = self.overflow = self.over_range = 0
            return 0

    clock = ManualClock()
    drv = _Counts(None, SimPin("CS", 1))
    cal = drv.cal
    lpw = lsb_per_unit_q8(cal.wh_per_lsb)
    m = Metering(drv, Registers(lpw, lpw, lpw), NoLoadGate(cal.vah_per_lsb), clock,
                 events.EventLog(clock), consumers=(TestOutput(cal, 1000),))
    m.chip_up(clock.ticks_ms())

    def pre():
        clock.now += 1000

    pre()
    assert m.step() == 0
    got = _allocated(m.step, before=pre)
    if got is None:
        return
    assert got == 0, got
    pre()
    assert m.step() == 0 and m.regs.snapshot()["1.8.0"] > 0



def test_metering_wrap_repair_allocates_no_frame():
    # the step when the chip flags a wrap of each accumulator (AEOFA, VAREOFA, VAEOFA): the
    # repair (Metering._repair, _circle) runs in the step too. P, Q, S of 10 000 000,
    # 13 000 000 and 16 792 720 LSB, each 24-bit register wrapped once (a stalled read)
    from ade7953 import ADE7953
    from energy import Registers, lsb_per_unit_q8
    from energy.pulse import NoLoadGate

    import events
    from boards.sim.hw import SimPin
    from meter.metering import Metering
    from simkit import ManualClock

    class _Wrapped(ADE7953):
        def read_energy(self):
            self.e_active = 10000000 - (1 << 24)
            self.e_reactive = 13000000 - (1 << 24)
            self.e_apparent = 15504
            self.irq_status = self.overflow = 0x38
            self.over_range = 0
            return 0

    clock = ManualClock()
    drv = _Wrapped(None, SimPin("CS", 1))
    cal = drv.cal
    lpw = lsb_per_unit_q8(cal.wh_per_lsb)
    m = Metering(drv, Registers(lpw, lpw, lpw), NoLoadGate(cal.vah_per_lsb), clock,
                 events.EventLog(clock))
    m.chip_up(clock.ticks_ms())

    def pre():
        clock.now += 100000  # (time enough for a count of 2^24 + 15 504 LSB)

    pre()
    assert m.step() == 0 and drv.e_apparent == 15504 + (1 << 24), drv.e_apparent
    got = _allocated(m.step, before=pre)
    if got is None:
        return
    assert got == 0, got

async def test_virtual_clock_turns_allocate_no_frame():
    # at --speed max each turn of MicroPython's asyncio loop polled for I/O in a frame of
    # more than 11 words (asyncio's IOQueue.wait_io_event: 144 B a turn on the unix port),
    # several turns per simulated second; boards/sim/clock.py skips the poll when there is
    # no stream and no time to wait
    import asyncio

    from boards.sim.clock import VirtualClock

    total = _meter_total()
    clk = VirtualClock(speed=0)
    got = []
    woke = [0]

    async def sleeper():
        while True:
            await clk.sleep_ms(1000)
            woke[0] += 1

    for _ in range(4):
        asyncio.create_task(sleeper())
    await clk.sleep_ms(5000)  # (warm: the clock's tables grown)
    t0 = total() if total is not None else 0
    await clk.sleep_ms(50000)
    if total is not None:
        got.append(total() - t0)
    clk.stopped = True
    assert woke[0] >= 4 * 54, woke  # every sleeper woke every simulated second
    if got:
        assert got[0] == 0, got
