"""Fuzzer for the meter's IEC 62056-21 ports (optical and RS-485).

Frames: random bytes; noise from the protocol's own alphabet; valid requests, option selects
and programming commands; the same with 1-3 flipped bits, with parity bits (bit 7) set,
truncated, with a wrong BCC; overlong device addresses, data sets and lines; whole scripted
sessions (sign-on, P1 with the right password, commands, B0) with mutated parts; bursts of
several frames without a gap; floods of junk. A burst or scripted session counts as as many
frames as it holds. The generator is a seeded xorshift32 written out here, so a seed gives the
same frames on MicroPython and CPython; the BCCs are computed here too, independently of
lib/iec62056/codec.py.

Two ways to run it (the split used by the tests is in docs/BENCHMARKS.md):

``session`` (MicroPython unix port; CPython only under the tests' conftest): the bulk.
    Frames go straight into ``iec62056.session.Session`` wired to the firmware's real
    ``ports.iec.IecMap`` (readout, reader, writer, executor over an ``app.Meter`` on the
    virtual board, seal closed), on a fake clock that jumps (character-gap, ACK and
    inactivity timeouts fire; ticks wrap at 2**30; the password lockout's RTC follows it).
    Checked after every frame: each action
    is a well-formed (at, data, baud) tuple, every block sent has a correct BCC and 7-bit
    characters, reaction times stay within 0..1500 ms, the state is valid. At the end: the
    session returns to IDLE at 300 Bd once its timers run out, a good request gets the
    identification and a full readout with a correct BCC, and the heap after gc.collect()
    did not grow (by more than 1 KiB) between the third checkpoint (after ``3 * frames // 10``
    frames; before it the meter builds its bounded per-event-code state) and the end. About
    8 000 frames a second on the unix port:

        MICROPYPATH=.frozen:firmware:lib:. micropython tools/fuzz_iec.py session \\
            --frames 100000 --seed 1 [--rs485]

    ``--rs485``: the RS-485 port's session (answers only its own address; the final checks
    also make sure ``/?!`` gets no answer).

``tcp`` / ``bus`` (CPython): against a running firmware process, through its optical TCP port
    (``--optical-tcp P``) or the RS-485 hub (``--rs485-bus``, tools/rs485_hub.py). Frames are
    paced (``--gap-ms``, default 0..4 ms random) and whatever the meter answers is drained;
    at the end the connection stays until the meter has been silent ``--settle-s`` seconds
    (default 3). ``--no-slow``: no option selects for 300..1200 Bd (a 300 Bd readout holds
    the port 15 s). The meter is checked by the caller (readout, ``--json`` port counters,
    heap log):

        python tools/fuzz_iec.py tcp --port 4001 --frames 5000
        python tools/fuzz_iec.py bus --port 4100 --frames 5000 --address 12345678

The last output line is a JSON summary; the exit status is 0 when every check passed.
"""

import sys

SOH = 0x01
STX = 0x02
ETX = 0x03
EOT = 0x04
ACK = 0x06
NAK = 0x15
MASK30 = (1 << 30) - 1
BAUDS = (300, 600, 1200, 2400, 4800, 9600, 19200)
DEFAULT_ADDRESS = "OM000077"


class Rng:
    """xorshift32: the same sequence on every interpreter."""

    def __init__(self, seed):
        self.s = (seed * 2654435761 + 1) & 0xFFFFFFFF or 1

    def u32(self):
        x = self.s
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.s = x
        return x

    def below(self, n):
        return self.u32() % n

    def pick(self, seq):
        return seq[self.u32() % len(seq)]

    def bytes(self, n):
        return bytes(self.u32() & 0xFF for _ in range(n))


def bcc(body):
    """XOR of ``body`` (everything after the first SOH/STX, ETX/EOT included), 7 bits."""
    x = 0
    for c in body:
        x ^= c
    return x & 0x7F


def command(c, t, data=None, end=ETX):
    body = bytearray((ord(c), 0x30 + t))
    if data is not None:
        body.append(STX)
        body.extend(data.encode())
    body.append(end)
    return bytes((SOH,)) + bytes(body) + bytes((bcc(body),))


def option(v, z, y):
    return bytes((ACK, ord(v), ord(z), ord(y), 0x0D, 0x0A))


_ALPHABET = b"/?!\r\n\x01\x02\x03\x04\x06\x15()*PRWEB0125.:-C9F" + b"\x00\x7f\xff\x80"
_READS = ("1.8.0", "2.8.0", "16.8.0", "0.9.1", "0.9.2", "C.1.0", "0.0.0", "0.2.0", "0.3.0",
          "C.90.1", "F.F.0", "32.7.0", "31.7.0", "14.7.0", "99.99.99", "", "1.8.0*1", "C.1.0.0")
# Writes and executes that are harmless to the final checks: the password is only ever
# "written" to its own value, metrological ones are refused under the closed seal.
_WRITES = (("0.9.1", "120000"), ("0.9.2", "160101"), ("0.9.2", "991332"), ("C.90.1", "10"),
           ("C.90.1", "0"), ("C.90.1", "x"), ("C.90.2", "00000000"), ("0.3.0", "2000"),
           ("1.8.0", "0"), ("0.9.1", "25"), ("0.9.1", "246060"), ("", ""))
_EXECS = (("C.91.0", ""), ("C.91.9", ""), ("C.99.9", "1"), ("", "(("))


class Frames:
    """Frame generator for a meter with device ``address`` (password 00000000)."""

    def __init__(self, seed, address=DEFAULT_ADDRESS, slow=True):
        self.r = Rng(seed)
        self.address = address
        # slow=False: option selects ask for 2400 Bd or more (a 300 Bd readout holds a port
        # for 15 s, and NAKs can repeat it three times)
        self._z = "0123456" if slow else "3456"
        self.password = "00000000"  # the one scripted sessions and most P1 commands use
        self.count = 0  # frames generated (a burst counts each part)
        self.kinds = {}

    # -- valid frames ------------------------------------------------------------------

    def request(self):
        r = self.r
        k = r.below(6)
        if k == 0:
            return b"/?!\r\n"
        if k == 1:
            return b"/?" + ("000" + self.address if self.address.isdigit() else "X1").encode() \
                + b"!\r\n"
        if k == 2:
            return b"/?99999999!\r\n"
        return b"/?" + self.address.encode() + b"!\r\n"

    def option(self):
        r = self.r
        if r.below(4):
            return option("0", r.pick(self._z), r.pick("0011"))
        if self._z[0] != "0":
            return option(r.pick("0123"), r.pick("3456789A"), r.pick("0123456789"))
        return option(r.pick("0123"), r.pick("0123456789A"), r.pick("0123456789"))

    def cmd(self):
        r = self.r
        k = r.below(14)
        if k < 2:
            pw = self.password if r.below(3) else "%08d" % r.below(10 ** 8)
            return command("P", 1, "(%s)" % pw)
        if k < 7:
            a = r.pick(_READS)
            arg = r.pick(("", "1", "2"))
            return command("R", r.pick((1, 1, 1, 2, 3, 5, 6)), "%s(%s)" % (a, arg))
        if k < 9:
            a, v = r.pick(_WRITES)
            return command("W", r.pick((1, 1, 1, 2, 3)), "%s(%s)" % (a, v))
        if k < 10:
            a, v = r.pick(_EXECS)
            return command("E", r.pick((2, 2, 1)), "%s(%s)" % (a, v))
        if k < 11:
            return command(r.pick("PRWE"), r.below(10), None if r.below(2) else "(%d)" % k,
                           end=r.pick((ETX, EOT)))
        if k < 12:
            return command("B", r.pick((0, 0, 1)))
        return bytes((r.pick((NAK, NAK, ACK)),))

    def valid(self):
        k = self.r.below(3)
        return self.request() if k == 0 else self.option() if k == 1 else self.cmd()

    def script(self):
        """A whole programming (or readout) session; some parts mutated."""
        r = self.r
        parts = [b"/?" + self.address.encode() + b"!\r\n",
                 option("0", "5", "1" if r.below(4) else "0"),
                 command("P", 1, "(%s)" % self.password)]
        for _ in range(1 + r.below(6)):
            parts.append(self.cmd())
        if r.below(2):
            parts.append(command("B", 0))
        for i in range(len(parts)):
            if r.below(5) == 0:
                parts[i] = self.mutate(parts[i])
        return parts

    # -- mutations ---------------------------------------------------------------------

    def flip(self, f):
        b = bytearray(f)
        for _ in range(1 + self.r.below(3)):
            b[self.r.below(len(b))] ^= 1 << self.r.below(7)
        return bytes(b)

    def mutate(self, f):
        r = self.r
        k = r.below(6)
        b = bytearray(f)
        if k == 0:
            return self.flip(f)
        if k == 1 and len(b) > 1:  # truncated
            return bytes(b[: 1 + r.below(len(b) - 1)])
        if k == 2:  # wrong BCC (or a changed last byte)
            b[-1] ^= 1 + r.below(127)
            return bytes(b)
        if k == 3:  # parity bits
            for i in range(len(b)):
                if r.below(2):
                    b[i] |= 0x80
            return bytes(b)
        if k == 4:  # a byte inserted / deleted
            i = r.below(len(b))
            if r.below(2) or len(b) < 2:
                return bytes(b[:i]) + bytes((r.pick(_ALPHABET),)) + bytes(b[i:])
            return bytes(b[:i]) + bytes(b[i + 1 :])
        return bytes(b) + bytes(b)  # doubled

    def overlong(self):
        r = self.r
        k = r.below(4)
        n = 33 + r.below(300)
        if k == 0:
            return b"/?" + b"1" * n + b"!\r\n"
        if k == 1:
            return command("R", 1, "1.8.0(" + "9" * n + ")")
        if k == 2:
            return command("W", 1, "C" * n + "(1)")
        return b"/" + bytes(0x41 + r.below(26) for _ in range(n))  # a line without LF

    # -- the mix -----------------------------------------------------------------------

    def next(self):
        """One unit to send: a list of frames (bytes) meant to be sent back to back."""
        r = self.r
        k = r.below(100)
        if k < 14:
            kind, parts = "random", [r.bytes(1 + r.below(40))]
        elif k < 24:
            kind, parts = "alphabet", [bytes(r.pick(_ALPHABET) for _ in range(1 + r.below(40)))]
        elif k < 38:
            kind, parts = "valid", [self.valid()]
        elif k < 56:
            kind, parts = "flipped", [self.flip(self.valid())]
        elif k < 66:
            kind, parts = "mutated", [self.mutate(self.valid())]
        elif k < 72:
            f = self.cmd() if r.below(2) else self.request()
            kind, parts = "truncated", [f[: 1 + r.below(len(f))]]
        elif k < 78:
            f = command(r.pick("PRWE"), 1, "%s(1)" % r.pick(_READS))
            kind, parts = "bad_bcc", [f[:-1] + bytes(((f[-1] + 1 + r.below(126)) & 0x7F,))]
        elif k < 83:
            kind, parts = "overlong", [self.overlong()]
        elif k < 92:
            kind, parts = "script", self.script()
        elif k < 99:
            kind = "burst"
            parts = []
            for _ in range(2 + r.below(10)):
                j = r.below(3)
                parts.append(self.valid() if j == 0 else self.flip(self.valid()) if j == 1
                             else r.bytes(1 + r.below(12)))
        else:
            kind, parts = "flood", [r.bytes(300 + r.below(1700))]
        self.count += len(parts)
        self.kinds[kind] = self.kinds.get(kind, 0) + len(parts)
        return parts


# ---------------------------------------------------------------------------------------------
# session mode


def _firmware_session(address, bus=False):
    """A Session over the firmware's IEC map on a virtual-board Meter (nothing running):
    the optical port's, or with ``bus`` the RS-485 port's (answers only its address)."""
    from boards.sim.board import SimBoard, parse_args

    board = SimBoard(parse_args(["--quiet", "--serial", address, "--load",
                                 "boards/sim/loads/four_quadrant.csv"]))
    import app

    meter = app.Meter(board)
    # the clock set once over the port (to its own time), as a meter in service has been:
    # the clock-set limit is built at the first set over a port (meter/catalogue.py
    # _clock_gate; ~600 B on a 32-bit core, once), which mid-fuzz would read as heap growth
    import events

    cat = meter.catalogue
    cat.write("0.9.1", cat.clock.time(), src=events.SRC_RS485 if bus else events.SRC_OPTICAL)
    md = meter.iec_map()
    return md.session(not bus), md


def _heap():
    import gc

    gc.collect()
    return gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0


class Failure(AssertionError):
    pass


class SessionFuzz:
    """Feeds frames into a firmware session and checks what comes back."""

    def __init__(self, seed=1, address=DEFAULT_ADDRESS, bus=False):
        from iec62056 import session as S

        self.S = S
        self.bus = bus
        self.session, self.md = _firmware_session(address, bus)
        self.password_changes = 0
        self.gen = Frames(seed, address)
        self.rng = Rng(seed + 7)
        self.now = self.rng.below(1 << 30)
        # the lockout runs on the meter's RTC: let it follow the fuzz clock (seconds)
        self.mono_s = 0
        self._mono_ms = 0
        self.session._time_s = lambda: self.mono_s
        self.answers = {}
        self.states = {}
        self.heap_at = [0] * 10  # frames at the checkpoints (preallocated: the checkpoint
        self.heap = [0] * 10  # bookkeeping itself must not show up as growth)
        self.marks = 0

    def _check(self, a, now):
        if type(a) is not tuple or len(a) != 3:
            raise Failure("action %r" % (a,))
        at, data, baud = a
        d = ((at - now + (1 << 29)) & MASK30) - (1 << 29)
        if d > 1500:
            raise Failure("reaction %d ms > 1500" % d)
        if baud and baud not in BAUDS:
            raise Failure("baud %r" % baud)
        if data:
            for c in data:
                if c > 0x7F:
                    raise Failure("8-bit character in %r" % bytes(data))
            if data[0] in (STX, SOH):
                if len(data) < 3 or data[-2] not in (ETX, EOT) or bcc(data[1:-1]) != data[-1]:
                    raise Failure("block without a correct BCC: %r" % bytes(data))
                k = "error" if data[1:3] == b"(E" else "p0" if data[0] == SOH else "data"
                if data[0] == STX and data[-3:-2] == b"\n":
                    k = "readout"
            elif data[0] == 0x2F:
                k = "ident"
            else:
                k = {ACK: "ack", NAK: "nak"}.get(data[0], "other")
                if k == "other":
                    raise Failure("unexpected answer %r" % bytes(data))
            self.answers[k] = self.answers.get(k, 0) + 1

    def _drain(self, a, now):
        s = self.session
        while a is not None:
            self._check(a, now)
            a = s.poll(now)
        st = s.state
        if st not in (0, 1, 2, 3):
            raise Failure("state %r" % st)
        self.states[st] = self.states.get(st, 0) + 1

    def _advance(self):
        r = self.rng
        k = r.below(100)
        if k < 25:
            dt = 0  # back to back
        elif k < 80:
            dt = r.below(300)
        elif k < 97:
            dt = 300 + r.below(2500)  # some beyond the 1500 ms character gap
        else:
            dt = 3000 + r.below(200000)  # ACK timeout, readout hold, inactivity
        self.now = (self.now + dt) & MASK30
        ms = self._mono_ms + dt
        self.mono_s += ms // 1000
        self._mono_ms = ms % 1000

    def feed_unit(self, parts):
        s = self.session
        for f in parts:
            if self.rng.below(5) == 0 and len(f) > 2:  # split across two reads
                i = 1 + self.rng.below(len(f) - 1)
                self._drain(s.feed(f[:i], self.now), self.now)
                self.now = (self.now + self.rng.below(40)) & MASK30
                f = f[i:]
            self._drain(s.feed(f, self.now), self.now)
            if self.rng.below(3) == 0:
                self._drain(s.poll(self.now), self.now)

    def run(self, frames, log=None):
        gen = self.gen
        first_mark = max(1, frames // 10)
        marks = [first_mark * i for i in range(1, 11)]
        while gen.count < frames:
            self._advance()
            if self.md.password != gen.password:
                # a mutated C.90.2 write with a BCC that still matches (two flips of the same
                # bit) set a new password: the HHU learns it, or programming mode would stay
                # out of reach for the rest of the run
                gen.password = self.md.password
                self.password_changes += 1
            self.feed_unit(gen.next())
            if self.marks < 10 and gen.count >= marks[self.marks]:
                self.heap_at[self.marks] = gen.count
                self.heap[self.marks] = _heap()
                self.marks += 1
                if log:
                    log("%d frames, heap %d" % (gen.count, self.heap[self.marks - 1]))
        self.final_checks()
        return self.summary()

    def final_checks(self):
        S = self.S
        s = self.session
        self.now = (self.now + 200000) & MASK30
        bauds = []
        a = s.poll(self.now)
        while a is not None:
            self._check(a, self.now)
            if a[2]:
                bauds.append(a[2])
            a = s.poll(self.now)
        if s.state != S.IDLE or s.baud != 300:
            raise Failure("not back to IDLE at 300 Bd: state %r baud %r" % (s.state, s.baud))
        if bauds and bauds[-1] != 300:
            raise Failure("last baud action %r" % bauds[-1])
        if self.bus:
            if self._exchange(b"/?!\r\n"):
                raise Failure("the RS-485 session answered an unaddressed request")
            got = self._exchange(b"/?" + self.gen.address.encode() + b"!\r\n")
        else:
            got = self._exchange(b"/?!\r\n")
        if not got or not got[0].startswith(b"/OMF5"):
            raise Failure("no identification after the fuzz: %r" % got)
        got = self._exchange(b"\x06050\r\n")
        ro = [d for d in got if d and d[0] == STX]
        if not ro:
            raise Failure("no readout after the fuzz: %r" % got)
        ro = ro[0]
        for item in (b"C.1.0(" + self.gen.address.encode() + b")", b"1.8.0(", b"F.F.0("):
            if item not in ro:
                raise Failure("readout lacks %r" % item)
        self.readout_bytes = len(ro)
        self.now = (self.now + 5000) & MASK30
        self._drain(s.poll(self.now), self.now)
        if s.state != S.IDLE:
            raise Failure("readout did not end")
        if self.marks >= 4:
            # from the 3rd checkpoint on: before it the meter builds its per-event-code state
            # (flood limiter, counters), bounded by the number of codes, not a leak
            growth = self.heap[self.marks - 1] - self.heap[2]
            if growth > 1024:
                raise Failure("heap grew by %d bytes: %r" % (growth, self.heap))

    def _exchange(self, msg):
        self.now = (self.now + 10) & MASK30
        out = []
        a = self.session.feed(msg, self.now)
        while a is not None:
            self._check(a, self.now)
            if a[1]:
                out.append(bytes(a[1]))
            a = self.session.poll(self.now)
        return out

    def summary(self):
        h = self.heap[: self.marks]
        return {"mode": "session", "port": "rs485" if self.bus else "optical",
                "frames": self.gen.count, "kinds": self.gen.kinds,
                "answers": self.answers, "states": self.states,
                "heap_first": h[0] if h else 0, "heap_last": h[-1] if h else 0,
                "heap_max": max(h) if h else 0, "heap_at_frames": self.heap_at[: self.marks],
                "readout_bytes": getattr(self, "readout_bytes", 0),
                "password_changes": self.password_changes, "ok": True}


# ---------------------------------------------------------------------------------------------
# network mode (CPython)


def net_fuzz(host, port, frames, seed=1, address=DEFAULT_ADDRESS, gap_ms=4, deadline_s=None,
             slow=True, settle_s=0.0, settle_max_s=120.0, log=None):
    """Send ``frames`` frames to ``host:port`` (a meter's optical TCP port or the RS-485 hub)
    at a random 0..gap_ms ms between units, draining answers; then, when ``settle_s`` > 0,
    keep the connection and drain until the meter has been silent for ``settle_s`` seconds
    (at most ``settle_max_s``): it has worked through what it buffered and answered it.
    ``slow``: see :class:`Frames`. Returns a summary dict."""
    import socket
    import time

    gen = Frames(seed, address, slow)
    rng = Rng(seed + 11)
    s = socket.create_connection((host, port), timeout=5)
    s.setblocking(False)
    sent = received = 0
    t0 = time.monotonic()
    try:
        while gen.count < frames:
            if deadline_s is not None and time.monotonic() - t0 > deadline_s:
                break
            data = b"".join(gen.next())
            view = memoryview(data)
            while view:
                try:
                    k = s.send(view)
                    view = view[k:]
                    sent += k
                except BlockingIOError:
                    time.sleep(0.001)
                received += _drain(s)
            if gap_ms:
                time.sleep(rng.below(gap_ms + 1) / 1000)
            received += _drain(s)
        t1 = time.monotonic()
        quiet = t1
        while settle_s > 0 and time.monotonic() - quiet < settle_s:
            if time.monotonic() - t1 > settle_max_s:
                raise RuntimeError("the meter did not fall silent within %s s" % settle_max_s)
            time.sleep(0.05)
            n = _drain(s)
            if n:
                received += n
                quiet = time.monotonic()
        settle = time.monotonic() - t1
    finally:
        time.sleep(0.05)
        received += _drain(s)
        s.close()
    out = {"mode": "net", "frames": gen.count, "kinds": gen.kinds, "bytes_sent": sent,
           "bytes_received": received, "wall_s": round(time.monotonic() - t0, 2),
           "settle_s": round(settle, 2), "ok": True}
    if log:
        log(repr(out))
    return out


def _drain(s):
    n = 0
    while True:
        try:
            d = s.recv(4096)
        except (BlockingIOError, InterruptedError):
            return n
        except OSError:
            return n
        if not d:
            return n
        n += len(d)


def _arg(argv, name, default):
    if name in argv:
        return argv[argv.index(name) + 1]
    return default


def main(argv):
    import json

    if not argv or argv[0] not in ("session", "tcp", "bus") or "-h" in argv or "--help" in argv:
        print(__doc__)
        return 2
    frames = int(_arg(argv, "--frames", "100000"))
    seed = int(_arg(argv, "--seed", "1"))
    address = _arg(argv, "--address", DEFAULT_ADDRESS)
    quiet = "--quiet" in argv

    def log(msg):
        if not quiet:
            print(msg)

    if argv[0] == "session":
        try:
            out = SessionFuzz(seed, address, "--rs485" in argv).run(frames, log)
        except Failure as e:
            print(json.dumps({"mode": "session", "ok": False, "failure": str(e)}))
            return 1
    else:
        out = net_fuzz(_arg(argv, "--host", "127.0.0.1"), int(_arg(argv, "--port", "4001")),
                       frames, seed, address, int(_arg(argv, "--gap-ms", "4")),
                       slow="--no-slow" not in argv,
                       settle_s=float(_arg(argv, "--settle-s", "3")), log=log)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
