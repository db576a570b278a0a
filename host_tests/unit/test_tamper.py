"""firmware/tasks/tamper.py: seal, cover, terminal cover and magnet edges (debounced) and the
neutral-current imbalance become persisted events (issue 7 item 14)."""

import events
from boards.sim.board import Options, SimBoard
from simkit import StepTrace


def _meter(serial=None):
    import app

    o = Options()
    o.quiet = True
    if serial is not None:
        o.serial = serial
    board = SimBoard(o, trace=StepTrace([(0, 1000000, 0)]))
    return board, app.Meter(board)


def _logged(m, code):
    return [e for e in m.events.persisted() if e[1] == code]


def test_input_edges_are_debounced_and_persisted():
    from tasks import tamper

    board, m = _meter()
    board.cover.set_input(1)  # open at power-up: logged at boot
    w = tamper.TamperWatch(board, m.metering, m.log, m.settings, samples=3)
    t = 0
    w.poll(t)
    assert len(_logged(m, events.COVER_OPEN)) == 1, m.events.persisted()
    for pin, on, off in ((board.seal, events.SEAL_OPEN, events.SEAL_CLOSED),
                         (board.terminal_cover, events.TCOVER_OPEN, events.TCOVER_CLOSED),
                         (board.magnet, events.MAGNET_ON, events.MAGNET_OFF)):
        pin.set_input(1)  # a bounce: two samples high, then low again
        for _ in range(2):
            t += 50
            w.poll(t)
        pin.set_input(0)
        for _ in range(3):
            t += 50
            w.poll(t)
        assert not _logged(m, on), "bounce shorter than 3 samples is not an event"
        pin.set_input(1)
        for _ in range(3):
            t += 50
            w.poll(t)
        pin.set_input(0)
        for _ in range(3):
            t += 50
            w.poll(t)
        got = _logged(m, on) + _logged(m, off)
        assert [(e[1], e[2], e[3]) for e in got] == [(on, 1, events.SRC_LOCAL),
                                                      (off, 2, events.SRC_LOCAL)], got
        assert events.log_of(on) == events.LOG_SECURITY


def test_neutral_imbalance_episode():
    from tasks import tamper

    board, m = _meter()
    w = tamper.TamperWatch(board, m.metering, m.log, m.settings)
    assert w.imbalance_pct({"I": 10000, "IN": 6000}) == 40.0  # (mA)
    assert w.imbalance_pct({"I": 100, "IN": 0}) is None, "below the minimum current"
    assert w.imbalance_pct(None) is None
    t = 0
    for k in range(25):
        m.metering.instant_milli = {"I": 10000, "IN": 6000 if k < 15 else 9900}
        w.poll(t)
        t += 1000
    got = _logged(m, events.NEUTRAL_IMBALANCE)
    assert len(got) == 1 and got[0][2] == 40, got
    assert not _logged(m, events.NEUTRAL_OK), "not balanced long enough yet"
    for _ in range(12):
        m.metering.instant_milli = {"I": 10000, "IN": 9900}
        w.poll(t)
        t += 1000
    ok = _logged(m, events.NEUTRAL_OK)
    assert len(ok) == 1 and ok[0][2] == 15, ("the episode lasted 15 s", ok)
    # a short imbalance (5 s) is no episode
    for _ in range(5):
        m.metering.instant_milli = {"I": 10000, "IN": 2000}
        w.poll(t)
        t += 1000
    m.metering.instant_milli = {"I": 10000, "IN": 10000}
    w.poll(t)
    assert len(_logged(m, events.NEUTRAL_IMBALANCE)) == 1


def test_the_seal_that_opens_a_parameter_is_the_logged_seal():
    # the ports read the seal pin raw while the audit debounced it: a pulse on the seal
    # input shorter than the debounce let a sealed write through (meter constant, cold
    # start) without any SEAL_OPEN record. Now both see the same, debounced, level.
    from iec62056 import codec as iec
    from iec62056.session import ER_SEALED
    from tasks import tamper
    from test_protocols import Port, _cmd, _err

    board, m = _meter("12345678")
    m.tamper = w = tamper.TamperWatch(board, m.metering, m.log, m.settings, samples=3)
    opt = Port(m.iec_map(), events.SRC_OPTICAL)
    t = 0
    w.poll(t)
    assert opt.prog() == iec.ACK_MSG
    board.seal.set_input(1)  # a glitch: one sample high ...
    t += 50
    w.poll(t)
    assert opt.x(_cmd("W", 1, "0.3.0(9999)")) == _err(ER_SEALED), "... opens nothing"
    assert opt.x(_cmd("E", 2, "C.91.9()")) == _err(ER_SEALED)
    board.seal.set_input(0)
    for _ in range(3):
        t += 50
        w.poll(t)
    assert not _logged(m, events.SEAL_OPEN)
    assert m.settings["meter_constant"] == 1000
    board.seal.set_input(1)  # really opened: logged first, then parameters may change
    for _ in range(3):
        t += 50
        w.poll(t)
    assert _logged(m, events.SEAL_OPEN)
    assert opt.x(_cmd("W", 1, "0.3.0(9999)")) == iec.ACK_MSG
    assert m.settings["meter_constant"] == 9999
