# CPU time each supervised task takes per resume in the running meter (MicroPython unix port).
"""Wall microseconds each supervised task spends in its resumes, per simulated second.

Runs firmware/main.py's meter on the virtual board with the given options (e.g. ``--speed max
--duration 21600``) and wraps each task the supervisor starts in a proxy that reads
``time.ticks_us()`` around every resume of the task (as tools/bench_alloc.py does with the
heap). What no task accounts for (the virtual clock's driver, asyncio's scheduling, the
board's own tasks, start-up and the proxies themselves) is the ``other`` row. At --speed max
on an otherwise idle core the wall time is the CPU time; on a loaded machine read the shares.

Usage: MICROPYPATH=.frozen:.frozen-lib:firmware:lib:. .venv/bin/micropython tools/bench_cpu.py
       SIM-OPTIONS...   (prints a table and a JSON line)
"""

import sys
import time

sys.path.insert(0, "firmware")

_stats = {}  # name -> [us, resumes]


class _Timed:
    # an awaitable around one coroutine: adds up the microseconds of each resume
    def __init__(self, name, coro):
        self.name = name
        self.coro = coro
        s = _stats.get(name)
        if s is None:
            s = _stats[name] = [0, 0]
        self.s = s

    def __iter__(self):
        return self

    def _run(self, fn, arg):
        t = time.ticks_us()
        try:
            return fn(arg)
        finally:
            s = self.s
            s[0] += time.ticks_diff(time.ticks_us(), t)
            s[1] += 1

    def __next__(self):
        return self._run(self.coro.send, None)

    def send(self, v):
        return self._run(self.coro.send, v)

    def throw(self, e, *rest):
        return self._run(self.coro.throw, e)

    def close(self):
        return self.coro.close()


def main():
    from boards.sim.board import SimBoard
    from tasks import supervisor

    t0 = time.ticks_us()
    board = SimBoard.from_argv(sys.argv[1:] + ["--quiet"])
    orig = supervisor.Supervisor.spawn

    def spawn(self, name, fn):
        return orig(self, name, lambda: _Timed(name, fn()))

    supervisor.Supervisor.spawn = spawn
    import app

    app.run(board)
    total = time.ticks_diff(time.ticks_us(), t0)
    sim_s = board.clock.ticks_ms() / 1000
    rows = {}
    acc = 0
    print("%-16s %11s %9s %10s %11s %6s" % ("task", "us", "resumes", "us/resume", "us/sim s",
                                            "share"))
    for name in sorted(_stats) + ["other"]:
        if name == "other":
            us, n = total - acc, 0
        else:
            us, n = _stats[name]
            acc += us
        rows[name] = {"us": us, "resumes": n, "us_per_sim_s": us / sim_s if sim_s else 0}
        print("%-16s %11d %9d %10.1f %11.2f %5.1f%%" % (
            name, us, n, us / n if n else 0, rows[name]["us_per_sim_s"], 100 * us / total))
    import json

    print(json.dumps({"sim_s": sim_s, "wall_s": total / 1e6, "tasks": rows}))


main()
