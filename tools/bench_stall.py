"""The event loop's worst stall on the virtual board (docs/BENCHMARKS.md "Event-loop stall").

    MICROPYPATH=.frozen:.frozen-lib:firmware:lib:. .venv/bin/micropython tools/bench_stall.py \
        [--json] [sim options ...]

Runs the meter as ``firmware/main.py`` would (the sim options as ``make sim``; give
``--duration S`` and ``--quiet``), with two probes:

- every task's coroutine is wrapped so that each resumption (the synchronous run of a task
  between two awaits) is timed in real ms: per task the longest and how many took more
  than 20 ms and 50 ms;
- a probe task sleeps 2 ms of real time in a loop and records how late it woke (the loop's
  lag: what any real-time task, e.g. the optical port's 200 ms reply, sees).

Also the meter's construction (``app.Meter``, before the loop runs) and the uplink's share
of it. Prints a table, or one JSON line with ``--json``:
``{"lag_max_ms", "lag_p99_ms", "lag_over_20", "lag_over_50", "tasks": {name: [max_ms,
n_over_20, n_over_50, runs]}, "build_ms", "uplink_build_ms", "uplink": stats}``.
"""

import asyncio
import sys
import time

_tasks = {}  # name -> [max ms, n > 20, n > 50, runs]


def _rec(name, d):
    s = _tasks.get(name)
    if s is None:
        s = _tasks[name] = [0, 0, 0, 0]
    if d > s[0]:
        s[0] = d
    if d > 20:
        s[1] += 1
    if d > 50:
        s[2] += 1
    s[3] += 1


def _timed(name, coro):
    # a generator standing for ``coro``: every resumption of it timed (asyncio resumes a
    # task with send(None) or throw(exc); what the coroutine yields goes to the loop)
    val = None
    exc = None
    while True:
        t0 = time.ticks_ms()
        try:
            if exc is not None:
                e = exc
                exc = None
                y = coro.throw(e)
            else:
                y = coro.send(val)
        except StopIteration as e:
            _rec(name, time.ticks_diff(time.ticks_ms(), t0))
            return e.value if e.args else None
        _rec(name, time.ticks_diff(time.ticks_ms(), t0))
        try:
            val = yield y
        except BaseException as e:  # noqa: B036  (CancelledError and the like go in)
            exc = e
            val = None


def _name(coro):
    r = repr(coro)
    i = r.find("'")
    return r[i + 1:r.find("'", i + 1)] if i >= 0 else r


_create = asyncio.create_task
_names = []  # the supervisor's task names, in spawn order


def _create_task(coro):
    n = _names.pop(0) if _names else _name(coro)
    return _create(_timed(n, coro))


asyncio.create_task = _create_task

_HIST = 2000
_hist = None  # lags in ms: a histogram (1 ms bins, the last one for >= _HIST - 1)
_late = []  # the 8 latest lags over 10 ms: (wall ms since the start, lag ms)
_first = []  # the first 8 of them
_t_start = 0
_loop0 = 0  # wall ms from the board's construction to the loop's first turn


async def _probe():
    global _loop0
    _loop0 = time.ticks_diff(time.ticks_ms(), _t_start)
    while True:
        t0 = time.ticks_ms()
        await asyncio.sleep_ms(2)
        d = time.ticks_diff(time.ticks_ms(), t0) - 2
        _hist[d if d < _HIST else _HIST - 1] += 1
        if d > 10:
            if len(_late) == 8:
                _late.pop(0)
            _late.append((time.ticks_diff(t0, _t_start), d))
            if len(_first) < 8:
                _first.append((time.ticks_diff(t0, _t_start), d))


def main():
    argv = sys.argv[1:]
    as_json = "--json" in argv
    argv = [a for a in argv if a != "--json"]
    global _hist, _t_start
    from array import array

    _hist = array("i", [0] * _HIST)
    from boards.sim.board import SimBoard

    board = SimBoard.from_argv(argv)
    _t_start = time.ticks_ms()
    import app
    from tasks.supervisor import Supervisor

    spawn = Supervisor.spawn

    def named_spawn(self, name, factory):
        _names.append(name)
        return spawn(self, name, factory)

    Supervisor.spawn = named_spawn
    up_ms = [0]
    mk = app.Meter._uplink

    def timed_uplink(self, parts):
        t0 = time.ticks_ms()
        try:
            return mk(self, parts)
        finally:
            up_ms[0] = time.ticks_diff(time.ticks_ms(), t0)

    app.Meter._uplink = timed_uplink
    t0 = time.ticks_ms()
    meter = app.Meter(board)
    build = time.ticks_diff(time.ticks_ms(), t0)
    extra = board.tasks

    def tasks(m):
        return extra(m) + [_create(_probe())]

    board.tasks = tasks
    try:
        asyncio.run(meter.main(board.duration_ms()))
    except KeyboardInterrupt:  # (SIGINT: the table of what ran so far)
        pass
    n = sum(_hist)

    def pct(p):
        k = n * p // 100
        for i in range(_HIST):
            k -= _hist[i]
            if k < 0:
                return i
        return _HIST - 1

    top = 0
    for i in range(_HIST):
        if _hist[i]:
            top = i
    up = meter.uplink.stats() if meter.uplink is not None else None
    out = {"lag_max_ms": top, "lag_p99_ms": pct(99), "lag_p50_ms": pct(50),
           "lag_over_20": sum(_hist[21:]), "lag_over_50": sum(_hist[51:]), "probes": n,
           "late": _late, "first": _first, "loop_start_ms": _loop0,
           "tasks": _tasks, "build_ms": build, "uplink_build_ms": up_ms[0],
           "uplink": None if up is None else {k: up[k] for k in (
               "state", "session", "sent", "pending", "stall_max_ms", "stall_where")}}
    if as_json:
        import json

        print(json.dumps(out))
        return
    print("meter built in %d ms (uplink %d ms)" % (build, up_ms[0]))
    print("loop lag: max %s ms, p99 %s ms, %d > 20 ms, %d > 50 ms (%d probes)" % (
        out["lag_max_ms"], out["lag_p99_ms"], out["lag_over_20"], out["lag_over_50"], n))
    print("loop's first turn %d ms after the board was built" % _loop0)
    print("lags > 10 ms (wall ms since the board was built, lag): first", _first,
          "latest", _late)
    print("%-18s %7s %6s %6s %8s" % ("task", "max ms", ">20", ">50", "runs"))
    for k in sorted(_tasks, key=lambda k: -_tasks[k][0]):
        s = _tasks[k]
        print("%-18s %7d %6d %6d %8d" % (k, s[0], s[1], s[2], s[3]))
    print("uplink:", out["uplink"])


main()
