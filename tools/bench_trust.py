"""Flash wear under sustained floods on the local ports (issue 7 item 13), in simulated days.

The firmware's own pieces run in process on the virtual board's NOR model (flash in RAM):
``app.Meter`` with its configuration store and event logs, ``ports.iec.IecMap`` and the
optical and RS-485 sessions (lib/iec62056/session.py). A client floods a port as fast as the wire
allows at 9600 Bd (each exchange: the meter's 200 ms reaction time plus both frames on the
wire, about 4.5 exchanges a second, 390 000 a day); simulated time drives the sessions, the
RTC, and the meter's once-a-second configuration write and flood-summary tick
(``Settings.tick`` / ``EventStore.tick``, as the housekeeping task does). Scenarios:

- ``w1``: an authenticated client writes C.90.1 (scroll time, saved in the configuration)
  without pause: configuration wear (budget: firmware/app.py, lib/config.SaveBudget);
- ``refused``: an authenticated client writes the sealed meter constant 0.3.0 without pause
  (every write refused ER06, each a security-log event): event-log wear and records;
- ``guess``: a robot signs on and guesses passwords on both ports in turn (2 s an attempt):
  lockouts (doubling) and the events they cost.

For each day: writes (exchanges), configuration saves, erases of the most-worn sector of the
configuration partition and of each event log, records written per log, and the years until
a sector reaches 100 000 erase cycles (W25Q16JV endurance) at that day's rate.

Usage (CPython or the unix port, from the repository root)::

    .venv/bin/python tools/bench_trust.py [--days 2] [--scenario w1,refused,guess]
"""

import sys
import time

_ROOT = __file__[: __file__.rfind("tools")] or "./"
for _p in (_ROOT + "host_tests/shim", _ROOT + "lib", _ROOT + "firmware", _ROOT):
    if sys.implementation.name != "micropython" and _p not in sys.path:
        sys.path.insert(0, _p)
if not hasattr(time, "ticks_ms"):  # CPython: MicroPython's time extensions
    time.ticks_ms = lambda: time.monotonic_ns() // 1000000
    time.ticks_diff = lambda a, b: a - b
    time.ticks_add = lambda a, b: a + b

ENDURANCE = 100000
DAY_MS = 86400 * 1000
EPOCH_2016 = 504921600


class SimClock:
    """The board clock moved by the benchmark (ms of simulated time)."""

    def __init__(self):
        self.now = 0

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, a, b):
        return a - b

    def ticks_add(self, a, b):
        return a + b

    def time(self):
        return EPOCH_2016 + self.now // 1000

    def set_time(self, s):
        pass

    async def sleep_ms(self, ms):
        self.now += ms


def _wire_ms(n, baud=9600):
    return (n * 10000 + baud - 1) // baud


def _cmd(c, t, data):
    from iec62056 import codec as iec

    return bytes(iec.build_command(c, t, data))


class Bench:
    def __init__(self):
        from boards.sim.board import Options, SimBoard

        import app
        import events

        o = Options()
        o.quiet = True
        o.load = _ROOT + "boards/sim/loads/four_quadrant.csv"
        self.board = b = SimBoard(o)
        self.clock = b.clock = SimClock()
        self.meter = m = app.Meter(b)
        self.md = m.iec_map()
        self.ports = [self.md.session(True, events.SRC_OPTICAL),
                      self.md.session(False, events.SRC_RS485)]
        lay = b.flash_layout
        ss = b.nor.sector_size
        self.cfg_sectors = range(lay["config"][0] // ss, sum(lay["config"]) // ss)
        spans = events.log_spans(lay["events"][0], lay["events"][1], ss)
        self.log_sectors = [range(o_ // ss, (o_ + ln) // ss) for o_, ln in spans]
        self.records = [0] * len(spans)
        self._last_s = 0

    def _x(self, port, data):
        """Send ``data`` to port ``port`` at the current time; return the answer bytes, and
        advance the clock by the exchange (request on the wire, answer when due + wire)."""
        s = self.ports[port]
        self.clock.now += _wire_ms(len(data), s.baud)
        out = bytearray()
        end = self.clock.now
        a = s.feed(data, self.clock.now)
        while a is not None:
            at, msg, _baud = a
            if msg:
                out.extend(msg)
                end = max(end, at + _wire_ms(len(msg), s.baud))
            a = s.poll(self.clock.now)
        self.clock.now = max(self.clock.now, end)
        self._tick()
        return bytes(out)

    def _tick(self):
        m = self.meter
        s = self.clock.now // 1000
        while self._last_s < s:  # the meter's once-a-second task
            self._last_s += 1
            m.settings.tick(self._last_s)
            m.events.tick()

    def prog(self, port, pw="00000000"):
        addr = self.board.device_address.encode()
        self._x(port, b"/?" + addr + b"!\r\n")
        self._x(port, b"\x06051\r\n")
        return self._x(port, _cmd("P", 1, "(%s)" % pw))

    def snapshot(self):
        e = self.board.nor.erase_counts
        return ([e[s] for s in self.cfg_sectors], [[e[s] for s in r] for r in self.log_sectors],
                self.meter.settings.store.seq, self._count_records())

    def _count_records(self):
        return [sum(1 for _ in r.entries()) + 0 for r in self.meter.events.rings]

    def run(self, scenario, days, report):
        m = self.meter
        appends = [0] * len(m.events.rings)
        for i, r in enumerate(m.events.rings):  # count appends (records written)
            def counted(rec, tag=0, urgent=False, _a=r.append, _i=i):
                appends[_i] += 1
                return _a(rec, tag, urgent)

            r.append = counted
        if scenario in ("w1", "refused"):
            assert self.prog(0) == b"\x06", "password"
        k = 0
        for day in range(days):
            c0, l0, q0, a0 = self.snapshot()[0], self.snapshot()[1], m.settings.store.seq, \
                list(appends)
            end = (day + 1) * DAY_MS
            n = 0
            while self.clock.now < end:
                k += 1
                n += 1
                if scenario == "w1":
                    got = self._x(0, _cmd("W", 1, "C.90.1(%d)" % (10 + k % 50)))
                    if got != b"\x06":
                        self.prog(0)
                elif scenario == "refused":
                    got = self._x(0, _cmd("W", 1, "0.3.0(%d)" % (1000 + k % 9000)))
                    if got == b"" or got == b"\x06":
                        self.prog(0)
                else:
                    self.prog(k % 2, "%08d" % (k * 7919 % 10 ** 8))
                    self._x(k % 2, _cmd("B", 0, None))
            c1, l1, q1 = self.snapshot()[0], self.snapshot()[1], m.settings.store.seq
            cfg_max = max(c1[i] - c0[i] for i in range(len(c1)))
            logs = [max(l1[j][i] - l0[j][i] for i in range(len(l1[j])))
                    for j in range(len(l1))]
            report(scenario, day + 1, n, q1 - q0, cfg_max, logs,
                   [appends[j] - a0[j] for j in range(len(appends))])


def _years(per_year):
    return "inf" if per_year <= 0 else "%.1f" % (ENDURANCE / per_year)


def main(argv):
    days = 2
    scen = ("w1", "refused", "guess")
    if "--days" in argv:
        days = int(argv[argv.index("--days") + 1])
    if "--scenario" in argv:
        scen = tuple(argv[argv.index("--scenario") + 1].split(","))
    print("Flash wear under floods, %d simulated day(s) each; endurance %d cycles; a log's "
          "sectors are erased in rotation (%s records each)" % (days, ENDURANCE, "127"))
    print("| scenario | day | exchanges | config saves | config erases, most-worn sector "
          "| config life (y) | records std / sec | log erases per sector a year, std / sec "
          "| log life (y) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")

    def report(b, s, day, n, saves, cfg, logs, recs):
        rings = b.meter.events.rings
        per_year = [recs[j] * 365 / (rings[j].slots_per_sector - 1) / rings[j].sectors
                    for j in range(len(rings))]
        print("| %s | %d | %d | %d | %d | %s | %d / %d | %.1f / %.1f | %s |" % (
            s, day, n, saves, cfg, _years(cfg * 365), recs[0], recs[-1], per_year[0],
            per_year[-1], _years(max(per_year))))

    for s in scen:
        b = Bench()
        b.run(s, days, lambda *a, _b=b: report(_b, *a))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
