"""Bytes the uplink allocates while it cannot reach the head-end (docs/BENCHMARKS.md, issue 12),
on the MicroPython unix port:

    MICROPYPATH=.frozen:.frozen-lib:firmware:lib:. .venv/bin/micropython -X heapsize=16m \\
        tools/bench_uplink_retry.py [CONDITION ...] [--hours H]

``firmware/uplink/task.Uplink`` with the SIM800 model (boards/sim/modem.py) and an in-memory
MQTT broker (host_tests/unit/modemkit.py) on a simulated clock, stepped as the uplink task
runs it (a round every 20 ms of link time, or sooner when the manager asks), for ``--hours``
(default 2) after 30 minutes of warm-up (the first attempts, the backoff grown to its cap).
Counted with ``micropython.mem_total()`` (every byte allocated, garbage and heap frames);
what the model allocates (the board behind the UART) is counted apart and left out.
Deterministic (no wall clock; the manager's jitter is the rig's fixed half).

Conditions: ``refused`` (TCP connect refused: a broker address nobody listens on),
``nosim`` (no SIM card), ``noreg`` (no network: registration searching), ``denied``
(registration denied), ``pdp`` (registered but the PDP context fails: AT+CIICR ERROR),
``connack`` (the broker refuses the session, CONNACK 5), ``session`` (for comparison: an
idle session with a working broker). Prints per condition: attempts (failed connections
or sessions), bytes per attempt, bytes per simulated second, rounds, AT commands sent.
"""

import sys

sys.path.insert(0, "host_tests/unit")

import micropython  # noqa: E402
from modemkit import MiniBroker, Rig, UplinkBoard, add_frozen_lib  # noqa: E402

add_frozen_lib()

from boards.sim.norflash import NORFlash  # noqa: E402
from events import EventLog  # noqa: E402
from flashstore.flash import Partition  # noqa: E402
from uplink.outbox import KIND_READING, Outbox  # noqa: E402
from uplink.task import Uplink  # noqa: E402

_mt = micropython.mem_total


class _Refusing(MiniBroker):
    def _packet(self, t, body):
        if t >> 4 == 1:
            self.reply(bytes((0x20, 2, 0, 5)))
        else:
            MiniBroker._packet(self, t, body)


class _Metered:
    # the model's UART, its allocations counted apart
    def __init__(self, model):
        self.model = model
        self.bytes = 0

    def any(self):
        t = _mt()
        n = self.model.any()
        self.bytes += _mt() - t
        return n

    def read(self, n):
        t = _mt()
        b = self.model.read(n)
        self.bytes += _mt() - t
        return b

    def write(self, b):
        t = _mt()
        n = self.model.write(b)
        self.bytes += _mt() - t
        return n

    def init(self, baudrate=None):
        self.model.init(baudrate=baudrate)


def run(cond, hours):
    r = Rig(peer=_Refusing() if cond == "connack" else MiniBroker())
    b = UplinkBoard(r)
    ob = Outbox(Partition(NORFlash(8 * 4096), 0, 8 * 4096))
    ob.mount()
    up = Uplink(b, None, EventLog(b.clock), ob, "SIM00001", ("broker", 1883), link=r.link,
                idle=lambda: r.clock.advance(2))
    up.setup()
    ob.put(KIND_READING, '{"n":1}')
    m = r.model
    if cond == "refused":
        r.refuse = True
    elif cond == "nosim":
        m.set_sim("ABSENT")
    elif cond == "noreg":
        m.set_registration(2)
    elif cond == "denied":
        m.set_registration(3)
    elif cond == "pdp":
        m.set_registration(1)
        m.net_up = False
    u = r.link.uart = _Metered(m)
    warm = 1800000
    end = warm + int(hours * 3600000)
    while r.clock.t < warm:
        w = up.step()
        r.clock.advance(w if 0 < w < 20 else 20)
    f0 = r.m.failures + up.errors
    c0 = m.commands
    u.bytes = 0
    rounds = 0
    t0 = _mt()
    while r.clock.t < end:
        w = up.step()
        r.clock.advance(w if 0 < w < 20 else 20)
        rounds += 1
    fw = _mt() - t0 - u.bytes
    att = r.m.failures + up.errors - f0
    secs = (end - warm) / 1000
    print("%-8s attempts %3d  B/attempt %7d  B/sim s %8.1f  rounds %7d  AT commands %5d" % (
        cond, att, fw // att if att else 0, fw / secs, rounds, m.commands - c0))


def main():
    args = sys.argv[1:]
    hours = 2.0
    if "--hours" in args:
        i = args.index("--hours")
        hours = float(args[i + 1])
        del args[i:i + 2]
    for c in args or ("refused", "nosim", "noreg", "denied", "pdp", "connack", "session"):
        run(c, hours)


main()
