"""Fuzzer for the modem uplink's AT engine and connection manager (lib/modem/).

Two parts, both in process on a fake clock (ticks wrap at 2**30), with a seeded xorshift32
written out here so a seed gives the same run on MicroPython and CPython:

``engine``: modem output generated line by line and fed to ``modem.at.AtEngine`` in random
    chunks (1..600 bytes) while random commands of the SIM800 profile are in flight and the
    clock jumps 0..400 ms per chunk (so commands time out and drains run). Lines: valid
    final result codes and command finals, every URC of the SIM800 table, information
    lines, ``+CIPRXGET: 2`` headers followed by binary data (sometimes lying about the
    length), ``>`` prompts, echoes, random printable and random binary lines, over-long lines
    (up to 70 000 bytes); each with a chance of a bit flip, a cut, a lost or doubled CR/LF,
    a NUL. Checked after every chunk: buffers keep their size (line ``max_line``, data
    ``max_data``), a result holds at most ``max_lines`` lines and no more data than
    ``max_data``, at most one command's output is queued.

``manager``: ``modem.manager.Manager`` + ``modem.link.Link`` + the SIM800 model
    (boards/sim/modem.py) with an echo peer behind CIPSTART, and a tap on the UART that
    mutates what the model sends (bit flips, dropped and inserted bytes, inserted URC and
    final lines, duplicated chunks, over-long lines) and now and then what the manager sends;
    the model also gets scripted faults (hang, PDP DEACT, remote close, reboot, garbage,
    network down/up, under-voltage). Data is written to the link and read back while it is
    up. Every ``--segment`` lines the mutations stop and the manager must reach CONNECTED
    within ``RECOVER_MS`` of simulated time and echo a message back (recovery). Checked
    throughout: the time spent in each non-idle state stays within its bound (``BOUNDS``),
    the buffers keep their size.

Lines counted: every line or frame generated (engine) and every line terminator delivered
to the manager plus every inserted line (manager).

    MICROPYPATH=.frozen:lib:. micropython tools/fuzz_at.py --engine-lines 100000 \\
        --manager-lines 20000 --seed 1

The last output line is a JSON summary; exit status 0 when every check passed. Heap
(MicroPython): gc.mem_alloc() after gc.collect() at the first checkpoint and at the end.
"""

import gc
import sys

from boards.sim.modem import Sim800Model
from modem import at as A
from modem import manager as M
from modem.link import Link
from modem.sim800 import Sim800

MASK30 = (1 << 30) - 1
LAST = None
# worst case after many failures: a retry, then a power cycle, each after a capped
# backoff (900 s), plus the power cycle, bring-up and connect
RECOVER_MS = 3 * 900000 + 120000
# ms a state may last (manager defaults; generous for command timeouts and drains)
BOUNDS = {
    "PROBE": 1500 + 2500, "PRESS": 1500 + 100, "BOOT": 3000 + 100, "SYNC": 10000 + 2500,
    "INIT": 3 * 2000 + 2500, "SIM": 10000 + 5000 + 5000 + 2500, "REGISTER": 180000 + 5000,
    "ATTACH": 1000 + 75000 + 5000, "PDP": 65000 + 4 * 1000 + 60000 + 85000 + 10000 + 5000,
    "CONNECTING": 5000 + 75000 + 5000, "CLOSING": 10 * 13000 + 5000,
    "BACKOFF": 900000 + 100, "POWER_DOWN": 10000 + 2500 + 100, "OFF_WAIT": 2000 + 100,
}


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

    def chance(self, per_mille):
        return self.u32() % 1000 < per_mille

    def bytes(self, n):
        b = bytearray(n)
        for i in range(n):
            b[i] = self.u32() & 0xFF
        return bytes(b)

    def printable(self, n):
        b = bytearray(n)
        for i in range(n):
            b[i] = 0x20 + self.u32() % 95
        return bytes(b)


FINALS = (b"OK", b"ERROR", b"+CME ERROR: 3", b"+CME ERROR: 10", b"+CME ERROR: SIM failure",
          b"+CMS ERROR: 500", b"NO CARRIER", b"BUSY", b"SHUT OK", b"DATA ACCEPT:0,5",
          b"DATA ACCEPT:0,9999", b"0, SEND OK", b"SEND FAIL", b"0, CLOSE OK",
          b"NORMAL POWER DOWN", b"0, CONNECT OK", b"0, CONNECT FAIL", b"0, ALREADY CONNECT")
URCS = (b"+CIPRXGET: 1,0", b"+CIPRXGET: 1,3", b"0, CLOSED", b"CLOSED", b"+PDP: DEACT", b"RDY",
        b"UNDER-VOLTAGE WARNNING", b"OVER-VOLTAGE WARNNING", b"UNDER-VOLTAGE POWER DOWN",
        b"Call Ready", b"SMS Ready", b"+CFUN: 1", b"+CPIN: READY", b"*PSUTTZ: 26/12/01",
        b"DST: 1", b"+CIEV: 10,\"26201\"", b"+CMTI: \"SM\",3", b"RING", b"1, CLOSED",
        b"2, CONNECT OK")
INFO = (b"+CSQ: 17,0", b"+CSQ: 99,99", b"+CSQ: 40,x", b"+CREG: 0,1", b"+CGREG: 0,5",
        b"+CGREG: 0,3", b"+CREG: 9", b"+CGATT: 1", b"+CPIN: SIM PIN", b"10.64.0.1",
        b"300.1.2.3", b"STATE: IP STATUS", b"C: 0,0,\"TCP\",\"1.2.3.4\",\"1883\",\"CONNECTED\"",
        b"AT+CSQ", b"ATE0", b"AT+CIPSEND=0,5")


def _commands(p):
    return (p.csq, lambda: p.read(1), lambda: p.read(1460), lambda: p.read(64),
            lambda: p.send(b"\x10\x0dOK\r\nERROR\r\n"), lambda: p.open("broker", 1883), p.shut,
            p.close, p.sync, lambda: p.pdp_cmds("internet")[-1], p.sim_query, p.power_off)


def _line(rng, cmd):
    """One generated frame (bytes, with its terminator) and whether it is binary."""
    k = rng.below(100)
    if k < 18:
        body = rng.pick(FINALS)
    elif k < 36:
        body = rng.pick(URCS)
    elif k < 48:
        body = rng.pick(INFO)
    elif k < 56:
        n = rng.below(1600) if rng.chance(200) else rng.below(40)
        claim = n if rng.chance(800) else rng.below(5000)
        data = rng.bytes(n)
        if rng.chance(300):
            data = data[:n // 2] + b"\r\nOK\r\n" + data[n // 2:]
        return b"\r\n+CIPRXGET: 2,0,%d,%d\r\n" % (claim, rng.below(3000)) + data
    elif k < 62:
        return b"\r\n> " if rng.chance(500) else b">"
    elif k < 66 and cmd is not None:
        body = cmd.text
    elif k < 80:
        body = rng.printable(rng.below(120))
    elif k < 93:
        body = rng.bytes(rng.below(300))
    elif k < 99:
        body = rng.printable(257 + rng.below(1000))
    elif rng.chance(100):
        body = (rng.pick((b"A", b"\x00", b"\xff")), 65536 + rng.below(4000))  # 64 KB
    else:
        body = (rng.pick((b"A", b"\x00", b"\xff")), 1000 + rng.below(4000))
    term = rng.pick((b"\r\n", b"\r\n", b"\r\n", b"\r", b"\n", b"", b"\r\n\r\n"))
    pre = rng.pick((b"\r\n", b"", b"\r\n"))
    if isinstance(body, tuple):  # a run: kept as segments, never whole in memory
        out = _Frame([pre, body, term])
        if len(out) and rng.chance(150):
            _mutate_frame(rng, out)
        return out
    return _mutate(rng, pre + body + term)


class _Frame:
    """A frame as segments, each bytes or a run ``(byte, count)``: a 64 KB garbage line costs
    a few objects, not 64 KB (the short fuzz runs in process on the emulated cores' 192 KiB
    heap too, where a 64 KiB block may not be free). ``piece(pos, k)``: bytes [pos, pos+k)."""

    def __init__(self, segs):
        self.segs = [g for g in segs if _seglen(g)]

    def __len__(self):
        return sum(_seglen(g) for g in self.segs)

    def _find(self, i):
        for j in range(len(self.segs)):
            n = _seglen(self.segs[j])
            if i < n:
                return j, i
            i -= n
        raise IndexError(i)

    def byte(self, i):
        j, o = self._find(i)
        g = self.segs[j]
        return g[0][0] if isinstance(g, tuple) else g[o]

    def put(self, i, v):
        """Byte ``i`` becomes ``v``."""
        j, o = self._find(i)
        g = self.segs[j]
        if isinstance(g, tuple):
            parts = [(g[0], o), bytes([v]), (g[0], g[1] - o - 1)]
        else:
            parts = [g[:o] + bytes([v]) + g[o + 1:]]
        self.segs[j:j + 1] = [p for p in parts if _seglen(p)]

    def cut(self, i):
        """Keep bytes [0, i) only."""
        j, o = self._find(i)
        g = self.segs[j]
        self.segs[j:] = [(g[0], o) if isinstance(g, tuple) else g[:o]] if o else []

    def double(self, i):
        """Byte ``i`` twice (``b[i:i] = b[i:i + 1]``)."""
        v = self.byte(i)
        j, o = self._find(i)
        g = self.segs[j]
        if isinstance(g, tuple):
            self.segs[j] = (g[0], g[1] + 1)
        else:
            self.segs[j] = g[:o] + bytes([v]) + g[o:]

    def piece(self, pos, k):
        out = bytearray()
        for g in self.segs:
            n = _seglen(g)
            if pos < n and k > 0:
                c = n - pos if n - pos < k else k
                out += g[0] * c if isinstance(g, tuple) else g[pos:pos + c]
                k -= c
                pos = 0
            else:
                pos -= n if pos >= n else 0
        return bytes(out)


def _seglen(g):
    return g[1] if isinstance(g, tuple) else len(g)


def _mutate_frame(rng, f):
    """:func:`_mutate`'s change (its chance already drawn) made to a :class:`_Frame`."""
    k = rng.below(4)
    i = rng.below(len(f))
    if k == 0:
        f.put(i, f.byte(i) ^ (1 << rng.below(8)))
    elif k == 1:
        f.cut(i)
    elif k == 2:
        f.put(i, 0)
    else:
        f.double(i)


def _mutate(rng, b):
    if not b or not rng.chance(150):
        return b
    b = bytearray(b)
    k = rng.below(4)
    i = rng.below(len(b))
    if k == 0:
        b[i] ^= 1 << rng.below(8)
    elif k == 1:
        b = b[:i]
    elif k == 2:
        b[i] = 0
    else:
        b = b[:i] + b[i:i + 1] + b[i:]
    return bytes(b)


def _heap():
    gc.collect()
    try:
        return gc.mem_alloc()
    except AttributeError:
        return 0


def run_engine(lines, seed=1, check_every=1):
    """Feed ``lines`` generated lines into an AtEngine; returns a summary dict."""
    rng = Rng(seed)
    p = Sim800()
    done = [0]
    urcs = [0]
    bad = []

    def on_done(res):
        done[0] += 1
        if len(res.lines) > e.max_lines:
            bad.append("lines")
        if res.data is not None and len(res.data) > e.max_data:
            bad.append("data")

    def on_urc(kind, line):
        urcs[0] += 1

    e = A.AtEngine(urc=p.urc_kind, on_urc=on_urc, on_done=on_done)
    cmds = _commands(p)
    now = (1 << 30) - 5000  # wraps early
    heap0 = None
    n = 0
    while n < lines:
        if not e.busy and rng.chance(600):
            e.submit(rng.pick(cmds)(), now)
        while e.tx() is not None:
            pass
        ln = _line(rng, e.command)
        n += 1
        frame = isinstance(ln, _Frame)
        size = len(ln)
        pos = 0
        while pos < size:  # in pieces, without copying the rest of a long line each time
            k = 1 + rng.below(600)
            e.feed(ln.piece(pos, k) if frame else ln[pos:pos + k], now)
            pos += k
            if rng.chance(300):
                now = (now + rng.below(400)) & MASK30
                e.poll(now)
            if len(e._line) != e.max_line or len(e._data) != e.max_data or len(e._out) > 2 \
                    or e._ln > e.max_line:
                bad.append("buffers at line %d" % n)
        if heap0 is None and n >= lines // 10:
            heap0 = _heap()
        if bad:
            break
    heap1 = _heap()
    return {"part": "engine", "lines": n, "results": done[0], "urcs": urcs[0],
            "timeouts": e.timeouts, "garbage": e.garbage, "overlong": e.overlong,
            "stray": e.stray, "late": e.late, "echoes": e.echoes,
            "data_dropped": e.data_dropped, "heap_first": heap0 or 0, "heap_last": heap1,
            "errors": bad[:5], "ok": not bad}


class _Echo:
    def __init__(self):
        self.buf = bytearray()
        self.closed = False

    def send(self, b):
        if self.closed:
            raise OSError(32)
        self.buf.extend(b)
        return len(b)

    def recv(self, n):
        if self.buf:
            d = bytes(self.buf[:n])
            self.buf = self.buf[n:]
            return d
        raise OSError(11)

    def close(self):
        self.closed = True


class _Tap:
    """The modem UART as the manager sees it, with mutations while ``on``."""

    def __init__(self, model, rng):
        self.model = model
        self.rng = rng
        self.on = True
        self.lines = 0
        self.inserted = 0
        self.baudrate = 115200

    def init(self, baudrate=None, **kw):
        self.model.init(baudrate=baudrate, **kw)

    def any(self):
        return self.model.any() or (1 if self.on and self.rng.chance(5) else 0)

    def read(self, n=-1):
        d = self.model.read(n) or b""
        r = self.rng
        if self.on:
            if d and r.chance(80):
                d = _mutate(r, d)
            if r.chance(40):
                ins = b"\r\n" + r.pick(URCS + FINALS + INFO) + b"\r\n"
                d = d[:len(d) // 2] + ins + d[len(d) // 2:] if d else ins
                self.inserted += 1
            if r.chance(8):
                d += r.bytes(r.below(200))
            if d and r.chance(10):
                d += d
            if r.chance(2):
                d += b"Z" * (300 + r.below(5000)) + b"\r\n"
        self.lines += d.count(b"\n")
        return d or None

    def write(self, b):
        if self.on and self.rng.chance(20):
            b = _mutate(self.rng, b)
        return self.model.write(b)


def _fault(rng, model):
    k = rng.below(9)
    if k == 0:
        model.hang()
    elif k == 1:
        model.pdp_deact()
    elif k == 2:
        model.remote_close()
    elif k == 3:
        model.reboot()
    elif k == 4:
        model.garbage(rng.below(500))
    elif k == 5:
        model.network_down(rng.pick(("deact", "silent")))
    elif k == 6:
        model.network_up()
    elif k == 7:
        model.undervoltage()
    else:
        model.set_signal(rng.below(32))


def run_manager(lines, seed=1, segment=2000):
    """Run the manager through ``lines`` mutated modem lines, recovering after each segment;
    returns a summary dict."""
    rng = Rng(seed)
    t = [(1 << 30) - 100000]

    def clock():
        return t[0]

    model = Sim800Model(now_ms=clock, connect=lambda h, p: _Echo(), seed=seed)
    tap = _Tap(model, rng)
    m = M.Manager(Sim800(), apn="internet", rand=lambda n: rng.below(n) if n > 0 else 0)
    link = Link(tap, model.pwrkey, m, ticks_ms=clock)
    global LAST
    LAST = (model, m, link, tap)  # for a post-mortem
    m.open("broker", 1883, t[0])
    bad = []
    entered = [t[0], m.state]
    recoveries = 0
    faults = 0
    echoed = 0
    heap0 = None
    counted = 0

    def step(ms):
        link.service()
        if m.state != entered[1]:
            entered[0] = t[0]
            entered[1] = m.state
        name = M.STATE_NAMES[m.state]
        b = BOUNDS.get(name)
        if b is not None and A.ticks_diff(t[0], entered[0]) > b:
            bad.append("%s lasted %d ms" % (name, A.ticks_diff(t[0], entered[0])))
        e = m.eng
        if len(e._line) != e.max_line or len(e._data) != e.max_data or \
                m._txn > len(m._tx) or m._rxn > len(m._rx) or len(m.history) > 16:
            bad.append("buffers")
        if m.state == M.BACKOFF:
            w = m.wake_ms(t[0])
            ms = w if w > ms else ms
        t[0] = (t[0] + ms) & MASK30

    while tap.lines + tap.inserted < lines and not bad:
        tap.on = True
        model.network_up()
        start = tap.lines + tap.inserted
        while tap.lines + tap.inserted - start < segment and not bad:
            step(1 + rng.below(30))
            if rng.chance(3):
                _fault(rng, model)
                faults += 1
            if m.connected and rng.chance(50):
                m.write(rng.bytes(rng.below(300)))
            if m.rx_available():
                m.read(4096)
        # recovery: clean line, network up, no faults
        tap.on = False
        model.network_up()
        model.hang(False)
        t0 = t[0]
        ok = False
        while A.ticks_diff(t[0], t0) < RECOVER_MS and not bad:
            step(20)
            if m.connected and m.tx_pending() == 0:
                while m.rx_available():
                    m.read(4096)
                msg = b"recovered %d" % recoveries
                m.write(msg)
                t1 = t[0]
                got = b""
                m.want_read = True  # a reader waits (as the socket adapter does)
                while m.connected and A.ticks_diff(t[0], t1) < 15000 and msg not in got:
                    step(10)
                    got += m.read(4096)  # after bytes the fuzz phase wrote, if the link lived
                m.want_read = False
                if msg in got:
                    ok = True
                    echoed += 1
                    break
        if not ok and not bad:
            bad.append("no recovery after segment %d (state %s, reason %s)" % (
                recoveries, m.state_name, m.reason))
        recoveries += 1
        if heap0 is None:
            heap0 = _heap()
        counted = tap.lines + tap.inserted
    heap1 = _heap()
    e = m.eng
    return {"part": "manager", "lines": counted, "segments": recoveries, "echoed": echoed,
            "faults": faults, "failures_logged": len(m.history), "power_cycles": m.power_cycles,
            "connects": m.connects, "reboots": m.reboots, "timeouts": e.timeouts,
            "garbage": e.garbage, "overlong": e.overlong, "stray": e.stray, "late": e.late,
            "discarded": m.discarded, "heap_first": heap0 or 0, "heap_last": heap1,
            "errors": bad[:5], "ok": not bad}


def main(argv):
    import json

    args = {"--engine-lines": 100000, "--manager-lines": 20000, "--seed": 1,
            "--segment": 2000}
    i = 0
    quiet = False
    while i < len(argv):
        if argv[i] == "--quiet":
            quiet = True
            i += 1
            continue
        if argv[i] not in args or i + 1 >= len(argv):
            print("usage: fuzz_at.py [--engine-lines N] [--manager-lines N] [--seed S] "
                  "[--segment N] [--quiet]")
            return 2
        args[argv[i]] = int(argv[i + 1])
        i += 2
    out = {"ok": True}
    parts = (("engine", lambda: run_engine(args["--engine-lines"], args["--seed"]),
              args["--engine-lines"]),
             ("manager", lambda: run_manager(args["--manager-lines"], args["--seed"],
                                             args["--segment"]), args["--manager-lines"]))
    for name, run, n in parts:
        if not n:
            continue
        try:
            r = run()
        except Exception as e:  # a crash is a finding: report it in the summary
            sys.print_exception(e) if hasattr(sys, "print_exception") else None
            r = {"part": name, "ok": False, "errors": ["crash: " + repr(e)]}
        out[name] = r
        out["ok"] = out["ok"] and r["ok"]
        if not quiet:
            print(json.dumps(r))
    print(json.dumps(out))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
