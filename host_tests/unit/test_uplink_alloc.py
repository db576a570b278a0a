"""The uplink's idle retry allocates nothing per round (issue 12). A meter out of coverage, or
whose broker does not answer, waits out the manager's backoff (up to 15 min) between
attempts, for days: every round of the uplink task (50 a second, firmware/uplink/task.py
``run``) in that wait must allocate nothing, garbage or frame (``micropython.mem_total()``:
a frame of more than 11 words comes from the heap at every call, docs/BENCHMARKS.md).
Before: 1 112 B a round on the unix port (64 B of it garbage: ``Manager.wake_ms``'s tuple,
32 B more with status LEDs: ``Manager.leds``' pair), ~55 KB per simulated second.

The SIM800 model (boards/sim/modem.py, the board) is swapped for a silent UART during the
measured wait, so what is counted is the firmware's: ``Uplink.step`` -> ``Link.service`` ->
``Manager.poll`` / ``wake_ms`` / ``leds``. Skipped where ``mem_total`` is missing (CPython)."""

from modemkit import MICROPYTHON, MiniBroker, Rig, UplinkBoard, add_frozen_lib

add_frozen_lib()

from boards.board import RGBLed  # noqa: E402
from boards.sim.norflash import NORFlash  # noqa: E402
from events import EventLog  # noqa: E402
from flashstore.flash import Partition  # noqa: E402
from modem import manager as M  # noqa: E402
from uplink.outbox import KIND_READING, Outbox  # noqa: E402
from uplink.task import Uplink  # noqa: E402


class _Pin:
    def __init__(self):
        self.v = 0
        self.writes = 0

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v
        self.writes += 1


class _Silent:
    """The modem's UART while it says nothing (a module waiting, or switched off)."""

    def __init__(self):
        self.written = 0

    def any(self):
        return 0

    def read(self, n=-1):
        return None

    def write(self, b):
        self.written += len(b)
        return len(b)

    def init(self, baudrate=None):
        pass


class _Refusing(MiniBroker):  # CONNACK 5: not authorised
    def _packet(self, t, body):
        if t >> 4 == 1:
            self.reply(bytes((0x20, 2, 0, 5)))
        else:
            MiniBroker._packet(self, t, body)


def _rig(condition):
    r = Rig(peer=_Refusing() if condition == "connack" else MiniBroker())
    b = UplinkBoard(r, (RGBLed(_Pin(), _Pin(), _Pin()), RGBLed(_Pin(), _Pin(), _Pin())))
    ob = Outbox(Partition(NORFlash(8 * 4096), 0, 8 * 4096))
    ob.mount()
    up = Uplink(b, None, EventLog(b.clock), ob, "SIM00001", ("broker", 1883), link=r.link,
                idle=lambda: r.clock.advance(2))
    up.setup()
    ob.put(KIND_READING, '{"n":1}')  # a message owed all along
    if condition == "refused":
        r.refuse = True  # TCP connect refused (nobody listens at the broker's address)
    elif condition == "nosim":
        r.model.set_sim("ABSENT")
    elif condition == "noreg":
        r.model.set_registration(2)  # searching, for good
    return r, up, b


def _waiting(r, up):
    # between attempts: the manager backing off, or (the broker refused the session) the
    # link released and the uplink's own backoff running
    m = r.m
    return m.state == M.BACKOFF or (m.state == M.READY and up._retry_at is not None
                                    and not up.session)


def _to_wait(r, up, failures):
    # run (the task's 20-ms rounds) until the n-th attempt failed and its wait began
    while True:
        w = up.step()
        r.clock.advance(w if 0 < w < 20 else 20)
        n = r.m.failures if r.m.state == M.BACKOFF else up._fails
        if n >= failures and _waiting(r, up):
            return
        assert r.clock.t < 3600000, (r.m.state_name, r.m.failures, up.stats())


def _wait_bytes(condition, rounds=3000, every=20):
    """mem_total of ``rounds`` task rounds (``every`` simulated ms apart) inside the wait
    after the 5th failed attempt (None without mem_total)."""
    try:
        from micropython import mem_total
    except ImportError:
        return None
    import gc

    r, up, b = _rig(condition)
    _to_wait(r, up, 5)
    while r.m.eng.busy:  # (an answer still coming: the model answers it)
        up.step()
        r.clock.advance(10)
    model = r.link.uart
    silent = r.link.uart = _Silent()
    if condition == "connack":  # the modem stays up: its signal query (every csq_ms, 60 s)
        # needs the model; the rounds up to it are counted
        rounds = min(rounds, (r.m._next - r.clock.t) // every - 1)
        assert rounds > 100, rounds
    pins = b.uplink_leds[1].r
    w0 = pins.writes
    gc.collect()
    n = 0
    steps = 0
    while steps < rounds and _waiting(r, up):
        t0 = mem_total()
        up.step()
        n += mem_total() - t0
        r.clock.advance(every)
        steps += 1
    r.link.uart = model
    assert steps == rounds, (condition, steps, r.m.state_name)  # the whole stretch waited
    assert silent.written == 0, "nothing is sent to the modem while waiting"
    if condition in ("refused", "noreg"):  # (red blink; no SIM: red, connack: amber)
        assert pins.writes - w0 >= rounds * every // 500 - 2, "the modem LED blinks"
    return n


def test_the_wait_between_attempts_allocates_nothing_with_the_broker_unreachable():
    # TCP connect refused: 3 000 rounds of the task (60 simulated s) inside the backoff
    if not MICROPYTHON:
        return
    n = _wait_bytes("refused")
    assert n is None or n == 0, n


def test_the_wait_allocates_nothing_without_sim_or_network_or_with_connack_refused():
    # no SIM (power cycle each attempt), no registration (3 min of polling, then backoff),
    # the broker refusing the session (the modem stays up, the uplink waits)
    if not MICROPYTHON:
        return
    for cond in ("nosim", "noreg", "connack"):
        n = _wait_bytes(cond, rounds=1000, every=50)
        assert n is None or n == 0, (cond, n)


def test_the_wait_runs_heap_locked():
    # where mem_total is missing the garbage would still show: a round inside the wait
    # runs with the heap locked (frames fall back to the C stack)
    if not MICROPYTHON:
        return
    import micropython

    r, up, b = _rig("refused")
    _to_wait(r, up, 2)
    model = r.link.uart
    r.link.uart = _Silent()
    for _ in range(600):  # covers LED blink changes (500 ms)
        micropython.heap_lock()
        try:
            up.step()
        finally:
            micropython.heap_unlock()
        r.clock.advance(20)
        assert _waiting(r, up), r.m.state_name
    r.link.uart = model


def test_the_retry_goes_on_after_the_wait_and_reaches_a_broker_that_comes_back():
    # the broker unreachable for a long time, then back: the next attempt after the
    # backoff connects and the owed message goes out (nothing lost, nothing hammered)
    r, up, b = _rig("refused")
    t0 = r.clock.t
    while r.clock.t - t0 < 6 * 3600000:  # 6 simulated hours
        w = up.step()
        r.advance(w if 0 < w < 20 else 20)  # (Rig.advance jumps to the end of a backoff)
    attempts = len(r.connects)
    # 10 s base doubling to the 15-min cap (rand: half + (d - half) // 2, i.e. 3/4 d):
    # 7 attempts in the first ~15 min, then one per 675 s
    assert 25 <= attempts <= 40, attempts
    assert r.m.failures >= attempts and r.m.failures < 2 ** 30
    r.refuse = False
    t1 = r.clock.t
    while not (up.session and up.outbox.pending() == 0):
        w = up.step()
        r.advance(w if 0 < w < 20 else 20)
        assert r.clock.t - t1 < 1000000 + 120000, (r.m.state_name, up.stats())
    assert r.m.failures == 0 or r.m.state == M.CONNECTED


class _Metered:
    """The model's UART with what the model allocates counted apart (the board, not the
    firmware): mem_total around each call."""

    def __init__(self, model, total):
        self.model = model
        self.total = total
        self.bytes = 0

    def any(self):
        t = self.total()
        n = self.model.any()
        self.bytes += self.total() - t
        return n

    def read(self, n):
        t = self.total()
        b = self.model.read(n)
        self.bytes += self.total() - t
        return b

    def write(self, b):
        t = self.total()
        n = self.model.write(b)
        self.bytes += self.total() - t
        return n

    def init(self, baudrate=None):
        self.model.init(baudrate=baudrate)


def test_a_registration_poll_allocates_little():
    # no network: the manager polls AT+CSQ, AT+CREG?, AT+CGREG? every 2 s for up to 3 min
    # per attempt. Each poll made 3 Commands and 3 Results, built the queue list, took
    # every line's frames from the heap and parsed with slices: ~9.2 KB a poll (unix
    # port), 4.6 KB per simulated second. Now the queries are made once: ~720 B a poll
    # (the answers' information lines as bytes, the +CSQ pair, the model's bytes apart)
    if not MICROPYTHON:
        return
    try:
        from micropython import mem_total
    except ImportError:
        return
    import gc

    r, up, b = _rig("noreg")
    while r.m.state != M.REGISTER or r.clock.t < 60000:
        w = up.step()
        r.clock.advance(w if 0 < w < 20 else 20)
    assert r.m.state == M.REGISTER, r.m.state_name
    model = r.link.uart
    u = r.link.uart = _Metered(model, mem_total)
    c0 = r.model.commands
    gc.collect()
    t0 = mem_total()
    t_end = r.clock.t + 20000  # 10 polls
    while r.clock.t < t_end:
        w = up.step()
        r.clock.advance(w if 0 < w < 20 else 20)
    n = mem_total() - t0 - u.bytes
    r.link.uart = model
    polls = (r.model.commands - c0) // 3
    assert polls == 10 and r.m.state == M.REGISTER, (polls, r.m.state_name)
    assert n <= 1000 * polls, n // polls


_COUNTERS = ("rx_bytes", "tx_bytes", "lines", "urcs", "echoes", "stray", "garbage",
             "overlong", "late", "timeouts", "data_dropped", "lines_dropped", "commands")


def test_the_modem_counters_stay_small_ints_for_years():
    # the engine counts every byte and line (a network search sends ~3.5 MB a day of
    # queries and answers; a module babbling at 115 200 baud passes 2**30 garbage bytes in
    # a day): past 2**30 each count was a long int on a 32-bit core (an allocation at
    # every line). They wrap at 2**30 now, as the link's byte counts do
    r, up, b = _rig("noreg")
    top = (1 << 30) - 1
    e = r.m.eng
    for name in _COUNTERS:
        setattr(e, name, top)
    r.link.rx_bytes = r.link.tx_bytes = top
    t_end = r.clock.t + 60000
    while r.clock.t < t_end:
        w = up.step()
        r.clock.advance(w if 0 < w < 20 else 20)
        if r.clock.t % 5000 == 0:
            r.model.garbage(40)  # noise between the answers
            r.model.inject(b"\r\nRING\r\n" + b"x" * 300 + b"\r\n")  # a URC, an overlong line
    # (each passed 2**30 and wrapped: the noise, the URC and the overlong line came)
    assert e.commands < 1000 and e.rx_bytes < 1 << 20 and e.garbage < 1 << 20, e.garbage
    assert e.overlong < 100 and e.urcs < 100 and r.link.rx_bytes < 1 << 20, e.overlong
    for name in _COUNTERS + ("_link_rx", "_link_tx"):
        v = getattr(r.link, name[6:] + "_bytes") if name.startswith("_link") else \
            getattr(e, name)
        assert 0 <= v < 1 << 30, (name, v)


def test_an_idle_session_allocates_little():
    # a session up with nothing to send (the meter's usual state between quarter hours):
    # every round took 5 frames from the heap (the session round's try, Outbox.peek's scan,
    # the manager's connected tick: ~700 B a round on the unix port, 35 KB per simulated
    # second). Now an idle round allocates nothing; what is left is the receive poll every
    # 10 s (its answer) and the CSQ every minute, ~70 B per simulated second
    if not MICROPYTHON:
        return
    try:
        from micropython import mem_total
    except ImportError:
        return
    import gc

    r, up, b = _rig("session")
    while not (up.session and up._phase == 2 and up.outbox.pending() == 0):
        w = up.step()
        r.clock.advance(w if 0 < w < 20 else 20)
    model = r.link.uart
    u = r.link.uart = _Metered(model, mem_total)
    gc.collect()
    t0 = mem_total()
    t_end = r.clock.t + 60000
    while r.clock.t < t_end:
        w = up.step()
        r.clock.advance(w if 0 < w < 20 else 20)
    n = mem_total() - t0 - u.bytes
    r.link.uart = model
    assert up.session and up.errors == 0, up.stats()
    assert n <= 12000, n  # a simulated minute: 6 receive polls, a CSQ
