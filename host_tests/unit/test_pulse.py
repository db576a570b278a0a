"""Test LED pulses (accounting and timing) and the starting-current gate."""

from energy import lsb_per_unit_q8
from energy.pulse import NoLoadGate, PulseOutput
from simkit import run

WH_PER_LSB = 4.1824e-5


def test_pulses_carry_residue():
    p = PulseOutput(lsb_per_unit_q8(WH_PER_LSB))  # 1000 imp/kWh = 1 pulse per Wh
    lsb_per_wh = 1 / WH_PER_LSB
    n = 0
    for _ in range(1000):
        n += p.add(int(lsb_per_wh * 0.3))  # 0.3 Wh per interval
    assert 299 <= n <= 300, n
    assert p.total == n
    assert p.add(-int(lsb_per_wh * 2)) == 2, "export pulses too (sign ignored)"


def test_full_scale_reads_pulse_exactly_with_small_ints_only():
    import smallint
    from test_energy import FULL_SCALE_READS, locked

    d = lsb_per_unit_q8(WH_PER_LSB)
    p = PulseOutput(d)
    p.add(777)
    got = [0]

    def run():
        n = 0
        for e in FULL_SCALE_READS:
            n += p.add(e)
        got[0] = n

    bad = smallint.long_locals(lambda: locked(run))
    assert not bad, "long ints on the pulse path: %r" % bad[:3]
    total = 777 + sum(abs(e) for e in FULL_SCALE_READS)
    assert p.total == total * 256 // d and p.res == total * 256 % d, (p.total, p.res)
    assert got[0] == p.total - 777 * 256 // d


def test_gate_at_starting_current():
    g = NoLoadGate(WH_PER_LSB, start_current_ma=20, un_v=230)
    per_s = 4.6 / 3600 / WH_PER_LSB  # 20 mA at 230 V for 1 s, in LSB
    assert g.passes(int(per_s), 1000), "must register at Ist (IEC 62053-21 starting test)"
    assert not g.passes(int(per_s * 0.4), 1000), "40 % of Ist stays below the gate"
    assert not g.passes(0, 1000), "no current: no-load"
    assert g.passes(int(per_s * 0.6), 1000), "gate at 50 % of Ist"
    assert g.closed is False


def test_gate_scales_with_interval():
    g = NoLoadGate(WH_PER_LSB)
    per_s = 4.6 / 3600 / WH_PER_LSB
    assert not g.passes(int(per_s), 5000), "1 s of Ist energy in a 5 s interval is 20 % of Ist"


def test_gate_settings_checked():
    try:
        NoLoadGate(WH_PER_LSB, ratio_pct=0)
        assert False, "ratio 0 accepted"
    except ValueError:
        pass


def test_gate_threshold_is_not_truncated():
    # 2.3 VA = 15.276 LSB per second: 15 and 16 (16 - 1 quantisation LSB < 15.276) stay out
    # (the threshold used to be truncated to 15 LSB: 2.2..2.29 W registered, issue 7 item 2)
    g = NoLoadGate(WH_PER_LSB)
    assert not g.passes(15, 1000) and not g.passes(16, 1000)
    assert g.passes(17, 1000)
    assert not g.passes(31, 2000) and g.passes(32, 2000)  # 30.55 LSB in 2 s
    assert not g.passes(-16, 1000) and g.passes(-17, 1000), "sign ignored"


def test_gate_matches_exact_rational_rule():
    # passes(c, dt) <=> (c - 1) LSB >= dt x Un x Ist x ratio, in the registers' scale, exactly
    # (big integers here; the gate itself stays in small ints): never passes below the
    # threshold; may refuse only within 2^-16 LSB/ms above it (q rounded up)
    lpva = lsb_per_unit_q8(WH_PER_LSB)
    k = 230000 * 20 * 50  # mV x mA x %
    g = NoLoadGate(WH_PER_LSB)
    for dt in (1, 7, 999, 1000, 1001, 1999, 2500, 10000, 39800, 65535):
        thr = dt * k * lpva  # compared with (c - 1) * 3.6e14 * 256
        c0 = thr // (360000000000000 * 256)
        for c in range(max(c0 - 2, 0), c0 + 4):
            exact = (c - 1) * 360000000000000 * 256 >= thr and c > 0
            got = g.passes(c, dt)
            assert got <= exact, ("passed below the gate", dt, c)
            if exact and not got:
                assert ((c - 1) << 16) < dt * g._q16 and (c - 1) * 65536 * 360000000000000 \
                    * 256 < (thr * 65536 + dt * 360000000000000 * 256), (dt, c)


class _Clock:
    """Metering clock for the LED timing: ``late`` ms are added to every sleep (a starved
    task, or a virtual clock running ahead of the tasks)."""

    def __init__(self, late=0):
        self.now = 0
        self.late = late

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, a, b):
        return a - b

    def ticks_add(self, a, b):
        return a + b

    async def sleep_ms(self, ms):
        self.now += ms + self.late


class _Led:
    def __init__(self):
        self.v = 0
        self.rises = 0
        self.on_at = []

    def value(self, v=None):
        if v is None:
            return self.v
        if v and not self.v:
            self.rises += 1
        self.v = 1 if v else 0


def _drive(clock, owed_per_period, periods, period=1000):
    # metering hands ``owed_per_period`` pulses over every period; the LED task shows them
    from energy.pulse import PulseTrain

    t = PulseTrain(clock, period, 40)
    led = _Led()
    owed = total = 0
    deadline = period
    worst = 0
    while deadline <= periods * period:
        if clock.now >= deadline:
            owed += owed_per_period
            total += owed_per_period
            deadline += period
            continue
        if owed == 0:
            t.idle()
            run(clock.sleep_ms(deadline - clock.now))
            continue
        k = run(t.show(led, owed))
        assert 1 <= k <= owed and led.v == 1
        owed -= k
        run(t.release(led))
        assert led.v == 0
        worst = owed if owed > worst else worst
    return t, led, owed, total, worst


def test_pulse_train_spreads_pulses_and_keeps_up():
    from energy.pulse import PulseTrain

    for n in (1, 3, 12, 25, 400):
        t, led, owed, total, worst = _drive(_Clock(), n, 50)
        assert led.rises + owed == total, (n, led.rises, owed, total)
        assert owed <= n and worst <= n, (n, owed, worst)
        PulseTrain.flush(led, owed)
        assert led.rises == total


def test_pulse_train_never_falls_behind_a_late_clock():
    # every sleep lasts 300 ms more than asked: the task shows the pulses whose slots passed
    # at once, so it stays within one period of the register and loses nothing
    from energy.pulse import PulseTrain

    for n in (1, 3, 12):
        t, led, owed, total, worst = _drive(_Clock(late=300), n, 100)
        assert worst <= 2 * n, (n, worst)
        PulseTrain.flush(led, owed)
        assert led.rises == total, (n, led.rises, total)


async def test_led_task_shows_every_pulse():
    # the meter's LED task with metering on a discrete-event clock: at the end of the run
    # (shutdown) the LED has flashed exactly pulse.total times, from 0.3 to 42 pulses/s
    import asyncio

    from meter import defaults
    from app import Meter

    from boards.sim.board import Options, SimBoard
    from simkit import StepTrace

    for kw, k in ((1, 1000), (15, 1000), (15, 10000)):  # 0.3, 4.2 and 42 pulses/s
        o = Options()
        o.quiet = True
        o.no_flash = True
        o.speed = 0
        board = SimBoard(o, trace=StepTrace([(0, 0, 0), (3000, kw * 1000000, 0)]))
        cfg = defaults.config()
        cfg["meter_constant"] = k
        meter = Meter(board, cfg)
        from tasks import metering as loop

        tasks = [asyncio.create_task(loop.run(meter.metering)),
                 asyncio.create_task(meter.led.run())]
        await board.clock.sleep_ms(100500)
        for t in tasks:
            t.cancel()
        board.clock.stopped = True
        await asyncio.sleep_ms(0)
        owed = meter.output.due
        assert owed <= kw * k / 3600 + 2, ("the LED kept within a period", kw, k, owed)
        meter.shutdown()
        total = meter.output.pulse.total
        assert abs(total - kw * 97.5 * k / 3600) <= 1.5, (kw, total)
        assert board.led_kwh.rises == total, (kw, board.led_kwh.rises, total)


def test_pulse_counts_from_its_rising_edge():
    # a task cancelled while a pulse is ON: the pulse was taken off the owed count when it
    # went on, so the end-of-run flush does not show it again
    from energy.pulse import PulseTrain

    t = PulseTrain(_Clock(), 1000, 40)
    led = _Led()
    owed = 5
    owed -= run(t.show(led, owed))
    assert led.v == 1 and owed == 4
    PulseTrain.flush(led, owed)  # (no release: cancelled)
    assert led.rises == 5 and led.v == 0


def _run_meter(kw_var, script, seconds=200):
    # a whole meter (every task) on a discrete-event clock, ``script(meter, clock)`` as one
    # more task; returns (meter, board) after the run's end (Meter.main's shutdown)
    import asyncio

    from app import Meter

    from boards.sim.board import Options, SimBoard
    from simkit import StepTrace

    o = Options()
    o.quiet = True
    o.no_flash = True
    o.speed = 0
    board = SimBoard(o, trace=StepTrace([(0, kw_var[0] * 1000000, kw_var[1] * 1000000)]))
    meter = Meter(board)
    tasks = board.tasks
    board.tasks = lambda m: tasks(m) + [asyncio.create_task(script(m, board.clock))]
    asyncio.run(meter.main(seconds * 1000))
    asyncio.new_event_loop()
    return meter, board


def test_led_count_survives_a_meter_constant_change():
    # W1 0.3.0 built new pulse outputs whose total started again at 0: the LED had flashed
    # 415 times, pulse.total said 138
    async def change(meter, clock):
        await clock.sleep_ms(100500)
        assert meter.output.pulse.total > 250
        meter.settings.set_sealed("meter_constant", 500, True)  # (W1 0.3.0, seal open)

    meter, board = _run_meter((10, 3), change)
    total = meter.output.pulse.total
    assert board.led_kwh.rises == total, (board.led_kwh.rises, total)
    wh = meter.registers.snapshot()["1.8.0"] / 1000  # 10 kW for 200 s: 555.6 Wh
    assert abs(total - (wh / 2 + 100.5 * 10000 / 3600 / 2)) <= 2, (total, wh)


def test_led_counts_in_test_mode_on_the_kvarh_led():
    # test mode with the test output on the kvarh LED: the kWh LED is dark and its owed
    # pulses are dropped; they must leave pulse.total too (kWh LED 416 vs pulses 555, kvarh
    # LED 42 vs 166)
    async def test_mode(meter, clock):
        await clock.sleep_ms(50500)
        meter.settings.set("test_led", "kvarh")
        meter.testmode.enter()
        await clock.sleep_ms(50000)
        meter.testmode.leave()

    meter, board = _run_meter((10, 3), test_mode)
    m = meter.output
    assert board.led_kwh.rises == m.pulse.total, (board.led_kwh.rises, m.pulse.total)
    assert board.led_kvarh.rises == m.pulse_var.total, (board.led_kvarh.rises,
                                                         m.pulse_var.total)
    assert 40 <= board.led_kvarh.rises <= 43, board.led_kvarh.rises  # 3 kvar for 50 s
    assert 410 <= board.led_kwh.rises <= 420, board.led_kwh.rises  # 10 kW for 150 s


class _Interrupted(Exception):
    pass


class _TrapLed:
    """An LED whose ``at``-th write raises (as a KeyboardInterrupt from Ctrl-C does inside a
    pin's value()), before or after the level changed."""

    def __init__(self, at, after):
        self.v = 0
        self.rises = 0
        self.writes = 0
        self.at = at
        self.after = after

    def value(self, v=None):
        if v is None:
            return self.v
        self.writes += 1
        trap = self.writes == self.at
        if trap and not self.after:
            raise _Interrupted()
        if v and not self.v:
            self.rises += 1
        self.v = 1 if v else 0
        if trap:
            raise _Interrupted()


class _Owed:
    pulses_due = 0


def test_led_count_is_exact_when_an_interrupt_lands_inside_a_pulse():
    # Ctrl-C ends a run with a KeyboardInterrupt raised wherever the code is; it landed
    # between a pulse going ON and its accounting (1 run in 20 at --speed max, 10 kW): the
    # end-of-run flush showed that pulse again (LED 9142, pulses 9141)
    from energy.pulse import PulseTrain

    for n in (1, 3, 7):
        for at in range(1, 4 * n + 3):
            for after in (False, True):
                clock = _Clock(late=300)  # late: pulses are shown back to back too
                t = PulseTrain(clock, 1000, 40)
                led = _TrapLed(at, after)
                o = _Owed()
                o.pulses_due = n
                try:
                    while o.pulses_due > 0:
                        run(t.show(led, o.pulses_due, o, "pulses_due"))
                        run(t.release(led))
                except _Interrupted:
                    pass
                led.at = 0  # (one interrupt)
                t.settle()
                PulseTrain.flush(led, o.pulses_due)
                assert led.rises == n and o.pulses_due >= 0, (n, at, after, led.rises)


class _SleepCount:
    # the board clock, counting the sleeps asked of it (the LED task's wake-ups)
    def __init__(self, clock):
        self._c = clock
        self.sleeps = 0

    def __getattr__(self, name):
        return getattr(self._c, name)

    def sleep_ms(self, ms):
        self.sleeps += 1
        return self._c.sleep_ms(ms)


async def test_led_task_sleeps_until_a_step_leaves_pulses_owed():
    # issue 12: with nothing to show the LED task woke every metering period (about 1.24
    # times a second); it now waits until a step leaves pulses owed
    import asyncio

    from meter import defaults
    from app import Meter

    from boards.sim.board import Options, SimBoard
    from simkit import StepTrace
    from tasks import metering as loop

    o = Options()
    o.quiet = True
    o.no_flash = True
    o.speed = 0
    board = SimBoard(o, trace=StepTrace([(0, 0, 0), (60000, 3600 * 1000, 0)]))  # 3.6 kW
    meter = Meter(board, defaults.config())
    led = meter.led
    spy = led.clock = _SleepCount(board.clock)
    tasks = [asyncio.create_task(loop.run(meter.metering)), asyncio.create_task(led.run())]
    await board.clock.sleep_ms(59500)  # a minute of no load: nothing owed
    idle = spy.sleeps
    await board.clock.sleep_ms(20000)  # then 1 pulse a second (1000 imp/kWh)
    for t in tasks:
        t.cancel()
    board.clock.stopped = True
    await asyncio.sleep_ms(0)
    meter.shutdown()
    assert idle == 0, "no wake-up in no-load: %d" % idle
    total = meter.output.pulse.total
    assert 19 <= total <= 21 and board.led_kwh.rises == total, (total, board.led_kwh.rises)
    assert spy.sleeps <= 3 * total + 2, spy.sleeps
