"""Ending a virtual-board run (firmware/app.py run(), boards/sim/board.py stop(), the control
channel's ``stop``): the orderly stop a script uses, and Ctrl-C landing inside a garbage
collection. On the unix port Ctrl-C is raised at once wherever the interpreter is
(MICROPY_ASYNC_KBD_INTR); inside a collection it leaves the collector's lock set and every
later allocation fails with "MemoryError: heap is locked" (a system test's sim ended so, its
--json line never printed). Runs under CPython and MicroPython."""

import asyncio

from boards.sim.board import Options, SimBoard
from simkit import StepTrace


def _board():
    o = Options()
    o.quiet = True
    o.speed = 0  # discrete-event clock
    o.duration = 3600  # (a stop that fails ends here, not in a hang)
    b = SimBoard(o, trace=StepTrace([(0, 2300000, 1100000)]))
    b.reports = []
    b.report = lambda meter, power_lost=False: b.reports.append(meter)
    return b


def _after(board, sim_s, action):
    """Run ``action`` from a board task ``sim_s`` simulated seconds into the run."""
    tasks = board.tasks

    async def later():
        await board.clock.sleep_ms(sim_s * 1000)
        action()

    def with_later(meter):
        return tasks(meter) + [asyncio.create_task(later())]

    board.tasks = with_later


def test_stop_ends_the_run_in_order_and_reports():
    import app

    b = _board()
    assert b.stop() is False  # before the meter runs: nothing to stop
    _after(b, 120, b.stop)
    m = app.run(b)
    assert b.reports == [m], "one report after the stop"
    assert b.clock.ticks_ms() == 120000, b.clock.ticks_ms()
    # metered to the stop: 2.3 kW for 120 s = 76.7 Wh (the first second of the trace: the
    # chip's start)
    wh = m.registers.whole[0]
    assert 74 <= wh <= 77, wh


def test_the_control_channels_stop_command():
    from boards.sim.control import ControlServer

    b = _board()
    srv = None
    for port in range(39311, 39411, 7):
        try:
            srv = ControlServer(b, port)
            break
        except OSError:
            pass
    assert srv is not None
    try:
        assert srv.command("stop") == "ERR the meter has not started"
        assert srv.command("stop now").startswith("ERR usage")
        replies = []
        _after(b, 30, lambda: replies.append(srv.command("stop")))
        import app

        app.run(b)
        assert replies == ["OK"] and len(b.reports) == 1, (replies, b.reports)
    finally:
        srv.close()


class _Stderr:
    def __init__(self):
        self.text = ""

    def write(self, s):
        self.text += s
        return len(s)


def test_ctrl_c_inside_a_collection_says_so_and_skips_the_report():
    import app

    import micropython

    b = _board()
    locked = []
    kbd = KeyboardInterrupt()  # (the port's own is preallocated too: none can be made now)

    def interrupted_in_gc():
        # as gc.collect() interrupted by SIGINT leaves it: the heap locked, the KeyboardInterrupt
        # raised from where the collection was
        locked.append(1)
        micropython.heap_lock()
        if app._heap_usable():  # CPython (host_tests/shim): the heap cannot be locked
            app._heap_usable = lambda: False
        raise kbd

    _after(b, 10, interrupted_in_gc)
    err = _Stderr()
    real_say, real_usable = app._say, app._heap_usable
    app._say = err.write
    got = None
    try:
        app.run(b)
    except KeyboardInterrupt as e:
        got = e
    finally:
        if locked:
            micropython.heap_unlock()
        asyncio.new_event_loop()  # (run() left the loop as it was: the process ends there)
        app._say = real_say
        app._heap_usable = real_usable
    assert isinstance(got, KeyboardInterrupt), got
    assert b.reports == [], "no report from a locked heap"
    assert "inside a garbage collection" in err.text and "'stop'" in err.text, err.text


def test_ctrl_c_elsewhere_shuts_down_and_reports():
    import app

    b = _board()

    def ctrl_c():
        raise KeyboardInterrupt

    _after(b, 10, ctrl_c)
    m = app.run(b)
    assert b.reports == [m]
