"""firmware/tasks/tamper.py: seal, cover, terminal cover and magnet edges (debounced) and the
neutral-current imbalance become persisted events (issue 7 item 14)."""

import events
from boards.sim.board import Options, SimBoard
from simkit import StepTrace


def _meter():
    import app

    o = Options()
    o.quiet = True
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
    assert w.imbalance_pct({"I": 10.0, "IN": 6.0}) == 40.0
    assert w.imbalance_pct({"I": 0.1, "IN": 0.0}) is None, "below the minimum current"
    assert w.imbalance_pct(None) is None
    t = 0
    for k in range(25):
        m.metering.instant = {"I": 10.0, "IN": 6.0 if k < 15 else 9.9}
        w.poll(t)
        t += 1000
    got = _logged(m, events.NEUTRAL_IMBALANCE)
    assert len(got) == 1 and got[0][2] == 40, got
    assert not _logged(m, events.NEUTRAL_OK), "not balanced long enough yet"
    for _ in range(12):
        m.metering.instant = {"I": 10.0, "IN": 9.9}
        w.poll(t)
        t += 1000
    ok = _logged(m, events.NEUTRAL_OK)
    assert len(ok) == 1 and ok[0][2] == 15, ("the episode lasted 15 s", ok)
    # a short imbalance (5 s) is no episode
    for _ in range(5):
        m.metering.instant = {"I": 10.0, "IN": 2.0}
        w.poll(t)
        t += 1000
    m.metering.instant = {"I": 10.0, "IN": 10.0}
    w.poll(t)
    assert len(_logged(m, events.NEUTRAL_IMBALANCE)) == 1
