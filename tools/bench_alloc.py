# Bytes allocated per task of the running meter (MicroPython unix port, virtual board).
"""Heap bytes each supervised task allocates, per simulated and per wall second.

Runs firmware/main.py's meter on the virtual board with the given options (e.g. ``--speed max
--duration 3600``) and wraps each task the supervisor starts (metering, led, display, storage,
housekeeping, tamper, ports, ...) in a proxy that reads ``gc.mem_alloc()`` around every resume
of the task. The collector is off while a task runs (it is run between resumes when the free
heap gets short, and stays on outside the tasks: the meter's start-up with its 1 MiB NOR
image does not fit the default heap without collections), so the difference is what that
resume allocated. Counting starts after ``--warm S`` simulated seconds (default 60:
start-up, first readings, buffers grown once).

Usage: MICROPYPATH=.frozen:.frozen-lib:firmware:lib:. .venv/bin/micropython tools/bench_alloc.py
       [--total] [--warm S] SIM-OPTIONS...   (prints a table and a JSON line)
``--total`` counts ``micropython.mem_total()`` (every byte allocated, also what is freed
before the resume ends) instead of ``gc.mem_alloc()``: it sees the frames MicroPython takes
from the heap for each call of a function with more than 11 machine words of locals and
stack (py/objfun.c VM_MAX_STATE_ON_STACK, freed on return: mem_alloc and heap_lock miss
them).
(.frozen-lib is made by ``make uplink-lib``: without umqtt the uplink row counts the uplink's
failed imports, retried every round; --no-uplink leaves the uplink out.)

Allocation outside the tasks (the virtual board's clock driver, heap sampler, control channel)
is not counted: that is the simulator, not the firmware.
"""

import gc
import sys
import time

sys.path.insert(0, "firmware")

_stats = {}  # name -> [bytes, resumes]
_meter = gc.mem_alloc  # or micropython.mem_total (--total)
_state = {"clock": None, "warm_ms": 60000, "wall0": None, "sim0": None}


class _Measured:
    # an awaitable around one coroutine: counts the bytes allocated in each resume
    def __init__(self, name, coro):
        self.name = name
        self.coro = coro

    def __iter__(self):
        return self

    def _count(self, fn, arg):
        if gc.mem_free() < 262144:
            gc.collect()
        st = _state
        clock = st["clock"]
        on = clock is not None and clock.ticks_ms() >= st["warm_ms"]
        if on and st["sim0"] is None:
            st["sim0"] = clock.ticks_ms()
            st["wall0"] = time.ticks_ms()
        gc.disable()  # (only while a task runs: the meter's start-up needs collections)
        a = _meter()
        try:
            return fn(arg)
        finally:
            gc.enable()
            if on:
                s = _stats.get(self.name)
                if s is None:
                    s = _stats[self.name] = [0, 0]
                s[0] += _meter() - a
                s[1] += 1

    def __next__(self):
        return self._count(self.coro.send, None)

    def send(self, v):
        return self._count(self.coro.send, v)

    def throw(self, e, *rest):
        return self._count(self.coro.throw, e)

    def close(self):
        return self.coro.close()


def main():
    global _meter
    argv = sys.argv[1:]
    if argv[:1] == ["--total"]:
        import micropython

        _meter = micropython.mem_total
        argv = argv[1:]
    if len(argv) >= 2 and argv[0] == "--warm":
        _state["warm_ms"] = int(float(argv[1]) * 1000)
        argv = argv[2:]
    from boards.sim.board import SimBoard
    from tasks import supervisor

    try:
        import umqtt.simple  # noqa: F401
    except ImportError:
        print("bench_alloc: no umqtt (make uplink-lib, MICROPYPATH with .frozen-lib): the "
              "uplink row is its failed imports", file=sys.stderr)
    board = SimBoard.from_argv(argv + ["--quiet"])
    _state["clock"] = board.clock
    orig = supervisor.Supervisor.spawn

    def spawn(self, name, fn):
        return orig(self, name, lambda: _Measured(name, fn()))

    supervisor.Supervisor.spawn = spawn
    import app

    gc.collect()
    app.run(board)
    clock = board.clock
    sim_s = (clock.ticks_ms() - (_state["sim0"] or 0)) / 1000
    wall_s = time.ticks_diff(time.ticks_ms(), _state["wall0"] or 0) / 1000
    rows = {}
    print("%-14s %12s %9s %10s %11s %12s" % ("task", "bytes", "resumes", "B/resume", "B/sim s",
                                             "B/wall s"))
    for name in sorted(_stats):
        b, n = _stats[name]
        rows[name] = {"bytes": b, "resumes": n, "per_sim_s": b / sim_s if sim_s else 0,
                      "per_wall_s": b / wall_s if wall_s else 0}
        print("%-14s %12d %9d %10.1f %11.2f %12.1f" % (
            name, b, n, b / n if n else 0, rows[name]["per_sim_s"], rows[name]["per_wall_s"]))
    import json

    print(json.dumps({"sim_s": sim_s, "wall_s": wall_s, "tasks": rows}))


main()
