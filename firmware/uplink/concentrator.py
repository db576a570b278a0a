# The concentrator: the module as RS-485 bus master, reading its neighbours for the uplink.
"""Concentrator (issue 11 item 5, docs/UPLINK.md "Concentrator"): the board's RS-485 UART
becomes the bus master. On a schedule (``interval_s``, default 900 s: the RTC's quarter
hours, like the uplink's own readings) it reads up to ``MAX_METERS`` (32) meters by address,
one after the other, with IEC 62056-21 mode C readouts (``iec62056.client``), and queues
each meter's reading in the uplink's outbox under that meter's own serial number (topic
``meters/<their serial>/reading``). With ``--concentrator`` the meter does not answer on the
bus itself (one owner per UART; its own readings go upstream directly).

Serial: the readout's ``C.1.0`` (serial number), else its ``0.0.0`` (device address), else the
address polled; it must be 1..32 letters, digits, ``- _ .`` (an MQTT topic level without
``+ # /``), else the next candidate is used.

Serial binding (a hostile bus meter must not publish under another meter's serial): each
polled address is bound to the serial of its first good readout. A reading is not forwarded
when its serial differs from the one its address is bound to, is the concentrator's own, or
is bound to another polled address (the binding of an address no longer polled gives its
serial up: a meter moved to a new address): logged ``CONC_SERIAL_REFUSED`` (116; value 1,
2, 3 in that order; subject: the address's last 6 characters) and reported on ``bus`` with
``"error":"serial"``, once per address, reason and claimed serial (not at every poll; a good
readout ends the episode). A new binding is logged ``CONC_SERIAL_BOUND`` (119; subject: the
address's last 6 characters) and kept in the settings (``bus_bindings``, meter/defaults.py;
a cycle's new bindings in one change at its end, written with the next deferred
configuration save), so it holds over restarts; a replaced
meter is accepted under its new serial after W1 C.93.9 (the address, or ``*`` for all) on a
local port or by the uplink's authenticated ``config``. Without settings (tests) the
binding is kept in RAM.

Forwarded reading (outbox kind ``KIND_FORWARD``, JSON; ``seq`` is the concentrator's outbox
number, the head-end de-duplicates on ``via`` + ``seq``)::

    {"seq":41,"meter":"10000002","ts":"2016-01-01T00:15:04Z","why":"poll","via":"SIM00001",
     "address":"10000002","id":"OMF5OPENMETER1","meter_time":"2016-01-01T00:15:03",
     "status":"00000000","values":[["1.8.0",12.345,"kWh"],["32.7.0",230.0,"V"],...]}

``values``: every data set with a unit and a numeric value, in the meter's order, the value
as the meter shows it without leading zeros (kWh with its 3 decimals, V, A, Hz ...);
``status``: F.F.0; ``meter_time``: the meter's own 0.9.2 / 0.9.1 (its local time, as read).
A reading longer than an outbox record (490 bytes) goes as several messages, each with
``"part":[i,n]`` and the same ``ts``.

A meter that does not answer (timeout, wrong BCC after one NAK, garbage, overflow, another
meter's 0.0.0) is reported and not retried in a loop: event ``CONC_NO_ANSWER`` (110; value:
the error code, ``iec62056.client.E_*``; subject: the address's last 6 characters) and a
message on ``meters/<concentrator serial>/bus`` (kind ``KIND_BUS``)::

    {"seq":42,"ts":"...","address":"10000003","serial":"10000003","ok":false,
     "error":"timeout","step":"identification","detail":"no answer","fails":2,
     "next_poll":"2016-01-01T01:00:00Z"}

After ``k`` failures in a row it is skipped for ``2**(k-1) - 1`` cycles (0, 1, 3, 7, ...;
at most ``max_skip``, default 95: a silent meter is tried once a day at 15-minute cycles).
When it answers again: event ``CONC_ANSWERS_AGAIN`` (111; value: the failures before) and a
``bus`` message with ``"ok":true``. A cycle that runs past the next slot logs
``CONC_OVERRUN`` (112; value: slots missed). Nothing a meter sends can raise out of the task:
the own meter keeps metering. During the power-fail warning (meter/supply.py) no cycle
starts and nothing is queued: the outbox's erased slots are the last gasp's. The longest
synchronous section (building and queueing a reading, an outbox erase) is measured in
``stall_max_ms``.

Timing on the bus: real time (lib/ticks, ``asyncio.sleep_ms``); the schedule: the board's
clock (metering time, like ``Uplink.schedule``). Between two meters the bus rests
``rest_ms`` (1600: longer than a meter's 1500 ms readout hold, after which it is back at
300 Bd) and until it was quiet for ``quiet_ms`` (300 ms; at most 5 s more), the receive
buffer drained.
"""

import asyncio
import json

import events
from iec62056 import client as iecc
from ports.pump import PortStats, _set_format, _transmit  # (the port task's UART helpers)
from ticks import ticks_diff, ticks_ms
from meter.uplinkcfg import BINDINGS_MAX, bind_table, serial_ok
from uplink import messages as msg
from uplink.outbox import KIND_BUS, KIND_FORWARD

MAX_METERS = 32
_PREFIX = '{"meter":"'
_QUIET_MS = 300
_QUIET_MAX_MS = 5000
_ITEM_MAX = 96  # characters of one forwarded [code, value, unit]
# bytes of the configuration record a new binding leaves free (a key, a longer broker, a
# list): bus meters' serials must not fill the record the other settings are written in
_CONFIG_RESERVE = 256


def check_addresses(addresses):
    """The bus addresses as a tuple of str; ValueError naming what is wrong (none, more than
    32, a duplicate, or one that is not 1..32 letters/digits)."""
    out = []
    for a in addresses:
        iecc.check_address(a)
        for b in out:
            if iecc.same_address(a, b):
                raise ValueError("bus address %s given twice" % a)
        out.append(a)
    if not out:
        raise ValueError("no bus address")
    if len(out) > MAX_METERS:
        raise ValueError("%d bus addresses: at most %d" % (len(out), MAX_METERS))
    return tuple(out)


def serial_of(readout):
    """The serial a readout is forwarded under: C.1.0, else 0.0.0, else the address."""
    for code in ("C.1.0", "0.0.0"):
        v = readout.get(code)
        if v is not None and serial_ok(v):
            return v
    return readout.address


def number(text):
    """A meter's value text as a JSON number text without leading zeros ('0001234.567' ->
    '1234.567', '-0000012.000' -> '-12.000', '.5' -> '0.5'), or None if it is not a plain
    decimal number."""
    s = text.strip()
    sign = ""
    if s[:1] in ("-", "+"):
        sign = "-" if s[0] == "-" else ""
        s = s[1:]
    ip, dot, fp = s.partition(".")
    if not ip and not fp:
        return None
    for ch in ip + fp:
        if ch < "0" or ch > "9":
            return None
    if dot and not fp:
        return None
    i = 0
    while i < len(ip) - 1 and ip[i] == "0":
        i += 1
    ip = ip[i:] or "0"
    return sign + ip + (("." + fp) if dot else "")


def _meter_time(r):
    d = r.get("0.9.2")
    t = r.get("0.9.1")
    if not d or not t or len(d) != 6 or len(t) != 6 or not (d + t).isdigit():
        return None
    return "20%s-%s-%sT%s:%s:%s" % (d[0:2], d[2:4], d[4:6], t[0:2], t[2:4], t[4:6])


def forward_bodies(readout, t, via, budget=490):
    """The outbox bodies (str, JSON without ``seq``, each at most ``budget`` bytes) of one
    meter's reading at RTC second ``t`` (see the module docstring)."""
    serial = serial_of(readout)
    ident = readout.manufacturer + readout.baud_char + readout.ident
    head = '%s%s","ts":"%s","why":"poll","via":%s,"address":"%s","id":%s' % (
        _PREFIX, serial, msg.iso(t), json.dumps(via), readout.address, json.dumps(ident))
    mt = _meter_time(readout)
    if mt is not None:
        head += ',"meter_time":"%s"' % mt
    st = readout.get("F.F.0")
    if st is not None:  # (cut: a 128-byte line of quotes doubles in JSON)
        head += ',"status":%s' % json.dumps(st[:32])
    vals = []
    seen = []
    for a, v, u in readout.data:
        if not u or a in seen:
            continue
        n = number(v)
        if n is None:
            continue
        x = "[%s,%s,%s]" % (json.dumps(a), n, json.dumps(u))
        if len(x) > _ITEM_MAX:  # (no code, number and unit is that long: left out, so
            continue  # every body fits the record)
        seen.append(a)
        vals.append(x)
    # pack the values into as few bodies as fit (a part marker costs at most 16 bytes)
    room = budget - len(head) - len(',"values":[]}') - 16
    groups = [[]]
    size = 0
    for v in vals:
        if groups[-1] and size + len(v) + 1 > room:
            groups.append([])
            size = 0
        groups[-1].append(v)
        size += len(v) + 1
    out = []
    n = len(groups)
    for i, g in enumerate(groups):
        part = ',"part":[%d,%d]' % (i + 1, n) if n > 1 else ""
        out.append('%s%s,"values":[%s]}' % (head, part, ",".join(g)))
    return out


def forward_topic(body):
    """``meters/<serial>/reading`` (bytes) of a KIND_FORWARD body (its ``meter`` member)."""
    b = bytes(body)
    p = _PREFIX.encode()
    i = b.find(b'"', len(p)) if b.startswith(p) else -1
    if i < 0:  # (never stored so: forward_bodies writes the prefix)
        return b"meters/unknown/reading"
    return b"meters/" + b[len(p):i] + b"/reading"


class _Meter:
    # one bus address: its backoff and counters
    def __init__(self, address):
        self.address = address
        self.serial = None  # from its last good readout
        self.refused = None  # (reason, serial) of the refusal reported (once per episode)
        self.refusals = 0  # readings not forwarded (serial refused)
        self.fails = 0  # failures in a row
        self.skip = 0  # cycles still to skip
        self.polls = 0
        self.ok = 0
        self.last_error = ""


class Concentrator:
    """Bus master on ``uart`` (a machine.UART-like object, 7E1; ``de_pin``: the RS-485
    driver enable) for ``addresses`` (1..32 bus addresses, see :func:`check_addresses`;
    ValueError otherwise). ``clock``: the board clock (``sleep_ms``, ``rtc_ms`` or
    ``time``); ``log``: lib/events EventLog; ``outbox``: uplink.outbox.Outbox or None (then
    readings are only counted); ``serial``: the concentrator's own (``via``).
    ``client_cfg``: keywords for ``iec62056.client.Client``; ``settings``: meter.settings
    .Settings keeping the serial binding (``bus_bindings``, checked here: a damaged stored
    table is replaced by {}, logged CONFIG_DEFAULTS) or None (kept in RAM)."""

    def __init__(self, uart, addresses, clock, log, outbox=None, serial="", de_pin=None,
                 interval_s=900, max_skip=95, rest_ms=1600, quiet_ms=_QUIET_MS,
                 client_cfg=None, supply=None, settings=None):
        self.uart = uart
        if settings is not None:  # a damaged stored table: {} (logged CONFIG_DEFAULTS)
            settings.check(("bus_bindings",))
        self.settings = settings
        self._ram = {}  # the binding without settings; with them, the bindings not in them
        self._fresh = False  # a binding to store at the cycle's end (_store)
        self.meters = [_Meter(a) for a in check_addresses(addresses)]
        self.clock = clock
        self.log = log
        self.outbox = outbox
        self.serial = serial
        self.de_pin = de_pin
        self.interval_s = interval_s
        self.max_skip = max_skip
        self.rest_ms = rest_ms
        self.quiet_ms = quiet_ms
        self.supply = supply
        self.client = iecc.Client(**(client_cfg or {}))
        self.port = PortStats()
        self._buf = bytearray(64)
        self._baud = 0
        self.cycles = 0
        self.readings = 0  # meters read
        self.failures = 0
        self.queued = 0  # outbox messages put
        self.refused = 0  # readings not forwarded: a serial the address may not have
        self.overruns = 0
        self.busy = False
        self._slot = None  # the RTC second of the cycle's slot
        self.skipped_cycles = 0  # slots passed during the power-fail warning
        self.stall_max_ms = 0  # the longest synchronous section (a reading queued)
        self.read_ms = []  # real ms of the last 16 good readouts (request to BCC)

    # -- the schedule --------------------------------------------------------------------

    def _now_ms(self):
        c = self.clock
        return c.rtc_ms() if hasattr(c, "rtc_ms") else c.time() * 1000

    async def run(self):
        """The task: a cycle at every multiple of ``interval_s`` of the RTC."""
        iv = self.interval_s * 1000
        while True:
            ms = self._now_ms()
            nxt = (ms // iv + 1) * iv
            await self.clock.sleep_ms(nxt - ms)
            ob = self.outbox
            while ob is not None and not getattr(ob, "mounted", True):
                await asyncio.sleep_ms(50)  # the uplink task mounts the outbox in steps
            await self.cycle(nxt // 1000)
            late = (self._now_ms() - nxt) // iv
            if late > 0:  # the cycle ran past the next slot(s): they are skipped
                self.overruns += 1
                self.log.log(events.CONC_OVERRUN, late, "concentrator: cycle of %d meters "
                             "took %d slot(s)" % (len(self.meters), late + 1))

    async def cycle(self, t=None):
        """Read every meter due (the skipped ones count a cycle down), one at a time; ``t``:
        the RTC second of the cycle's slot (None: unscheduled)."""
        if self._warning():  # the supply is going: no bus traffic, no flash writes
            self.skipped_cycles += 1
            return
        self.cycles += 1
        self._slot = t
        self.busy = True
        try:
            for m in self.meters:
                if m.skip > 0:
                    m.skip -= 1
                    continue
                await self.read(m)
                await self._rest()
        finally:
            self.busy = False
            self._format(300)
        self._store()
        if self.outbox is not None and not self._warning():
            t0 = ticks_ms()
            self.outbox.ring.maintain(1)  # (a sector erase when one is due)
            self._stall(t0)

    def _warning(self):
        return self.supply is not None and self.supply.warning

    def _stall(self, t0):
        d = ticks_diff(ticks_ms(), t0)
        if d > self.stall_max_ms:
            self.stall_max_ms = d

    # -- one meter -----------------------------------------------------------------------

    def _format(self, baud):
        if baud != self._baud:
            _set_format(self.uart, baud, False)
            self._baud = baud

    def _drain(self):
        # discard what the line holds now (bounded: a babbling meter cannot keep us here)
        n = 0
        u = self.uart
        while n < 4096 and u.any():
            k = u.readinto(self._buf) or 0
            if not k:
                break
            n += k
        return n

    async def _rest(self):
        t0 = ticks_ms()
        last = t0
        while True:
            await asyncio.sleep_ms(20)
            now = ticks_ms()
            if self._drain():
                last = now
            el = ticks_diff(now, t0)
            if el >= self.rest_ms and ticks_diff(now, last) >= self.quiet_ms:
                return
            if el >= self.rest_ms + _QUIET_MAX_MS:
                return

    async def exchange(self, address):
        """Read ``address`` once with the client; returns it (``done``: ``readout`` or
        ``error``). Never raises on what the line brings."""
        cl = self.client
        u = self.uart
        buf = self._buf
        self._format(300)
        self._drain()
        act = cl.start(address, ticks_ms())
        while True:
            while act is not None:
                at, data, baud = act
                w = ticks_diff(at, ticks_ms())
                if w > 0:
                    await asyncio.sleep_ms(w)
                if data:
                    await _transmit(u, data, self._baud, self.de_pin, False, ticks_ms,
                                    self.port)
                    cl.sent(ticks_ms())
                if baud:
                    self._format(baud)
                act = None if cl.done else cl.poll(ticks_ms())
            if cl.done:
                return cl
            n = u.any() and u.readinto(buf)
            now = ticks_ms()
            if n:
                self.port.rx += n
                act = cl.feed(buf, now, n)
            if act is None and not cl.done:
                act = cl.poll(now)
            await asyncio.sleep_ms(0 if n else 5)

    async def read(self, m):
        """Read meter ``m`` (a _Meter), forward its reading or report its failure."""
        m.polls += 1
        t_req = ticks_ms()
        try:
            cl = await self.exchange(m.address)
            err = cl.error
        except Exception as e:  # (a bug or a UART error: reported like a silent meter)
            cl = None
            err = iecc.E_GARBAGE
            self.port.errors += 1
            m.last_error = repr(e)[:40]
        t = self.clock.time()
        t0 = ticks_ms()
        if cl is not None and err == iecc.E_NONE:
            if len(self.read_ms) >= 16:
                self.read_ms.pop(0)
            self.read_ms.append(ticks_diff(t0, t_req))
            self._good(m, cl.readout, t)
        else:
            self._bad(m, err, cl, t)
        self._stall(t0)

    def _put(self, kind, body):
        if self.outbox is None or self._warning():  # (the warning's slots: the last gasp's)
            return
        try:
            if self.outbox.put(kind, body) is not None:
                self.queued += 1
        except ValueError:  # (cannot happen: bodies are cut to the record)
            self.port.errors += 1

    def bindings(self):
        """{bus address: the serial it is bound to} (read only: a copy is written)."""
        st = self.settings
        if st is None:
            return self._ram
        b = st.get("bus_bindings") or {}
        if self._ram:  # (bindings the settings had no room for)
            b = dict(b)
            b.update(self._ram)
        return b

    @staticmethod
    def _key(b, address):
        # the key of ``address`` in the table ``b``: the same address with or without
        # leading zeros (iec62056 same_address: ``/?0012!`` reaches meter 12), or None
        if address in b:
            return address
        for a in b:
            if iecc.same_address(a, address):
                return a
        return None

    def _polled(self, address):
        for o in self.meters:
            if iecc.same_address(o.address, address):
                return True
        return False

    def unbind(self, address):
        """W1 C.93.9 (meter/catalogue.py): the binding of ``address`` (str; the same address
        with or without leading zeros) removed, or every binding for ``"*"``, from the
        settings and from RAM (a binding there was kept only there). Returns how many were
        removed; ValueError "bus address not bound" (nothing changed)."""
        b = self.bindings()
        if address == "*":
            gone = list(b)
        else:
            k = self._key(b, address) if isinstance(address, str) else None
            if k is None:
                raise ValueError("bus address not bound")
            gone = [k]
        for a in gone:
            self._ram.pop(a, None)
        st = self.settings
        if st is not None:
            sb = st.get("bus_bindings") or {}
            nb = {}
            for a, s in sb.items():
                if a not in gone:
                    nb[a] = s
            if address == "*" or len(nb) != len(sb):
                st.set("bus_bindings", nb)
        return len(gone)

    def bind(self, text):
        """W1 C.93.9(ADDRESS=SERIAL) (meter/catalogue.py): the pre-binding of a bus address
        to the serial its meter must report, set before the first poll (a replaced meter:
        after the unbind, an impostor polled first would otherwise bind the address). Into
        the settings (the catalogue saves them before the ACK), the address's RAM-only
        binding dropped. ValueError naming what is wrong (meter.uplinkcfg.bind_table; an
        address this concentrator does not poll; "no room in the configuration").

        An address not polled is refused, not kept: a binding acts only on an address
        polled, the list of addresses is the board's (fixed until a restart), and a full
        table gives such bindings up first (``_store``). Accepted, a mistyped address left
        the replaced meter's address unbound (an impostor polled first took it) while the
        installer saw the write acknowledged."""
        bind_table(self.bindings(), text, self.serial)  # (against RAM-only bindings too)
        a = text.partition("=")[0]
        if not self._polled(a):
            raise ValueError("bus binding: address %s is not polled by this concentrator"
                             % a)
        st = self.settings
        nb = None
        if st is not None:  # (checked before anything changes: a refused write keeps all)
            nb = bind_table(st.get("bus_bindings") or {}, text, self.serial)
            st.check_value("bus_bindings", nb)
            if not st.fits("bus_bindings", nb, _CONFIG_RESERVE):
                raise ValueError("bus binding: no room in the configuration")
        for k in [k for k in self._ram if iecc.same_address(k, a)]:
            del self._ram[k]
        if st is None:
            self._ram[a] = text.partition("=")[2]
            return
        st.set("bus_bindings", nb)

    def _serial_refused(self, m, serial):
        # 0: ``serial`` may be forwarded for ``m`` (bound at its first good readout), else
        # why not: 1 not the serial bound to the address, 2 the concentrator's own, 3 bound
        # to another polled address
        if serial == self.serial:
            return 2
        b = self.bindings()
        k = self._key(b, m.address)
        if k is not None:
            return 0 if serial == b[k] else 1
        for a, s in b.items():  # (an address no longer polled: its meter may have moved)
            if s == serial and self._polled(a):
                return 3
        ram = self._ram
        if self.settings is None:
            for a in [a for a, s in ram.items() if s == serial]:  # (a meter that moved)
                del ram[a]
        ram[m.address] = serial  # (into the settings at the cycle's end: _store)
        self._fresh = True
        self.log.log(events.CONC_SERIAL_BOUND, 0, "bus meter %s bound to serial %s" % (
            m.address, serial), events.SRC_RS485, m.address[-6:])
        return 0

    def _store(self):
        # the cycle's new bindings into the settings in one change (one configuration write
        # a cycle, not one a meter: 4 spent the write budget, and the installer's key and
        # password writes were then refused for an hour); the table drops an address no
        # longer polled whose serial is bound anew (a meter that moved), and when full
        # those no longer polled; what the setting's bounds (32, 1 KiB) or the record's room
        # for the other settings (Settings.fits) leave out stays in RAM (logged)
        st = self.settings
        ram = self._ram
        if st is None or not self._fresh:
            return
        self._fresh = False
        sb = st.get("bus_bindings") or {}
        new = list(ram.values())
        nb = {}
        for a, s in sb.items():
            if self._polled(a) or (s not in new and len(sb) + len(ram) <= BINDINGS_MAX):
                nb[a] = s
        kept = {}
        for a, s in ram.items():
            nb[a] = s
            try:
                st.check_value("bus_bindings", nb)
                ok = st.fits("bus_bindings", nb, _CONFIG_RESERVE)
            except ValueError:
                ok = False
            if not ok:
                del nb[a]
                kept[a] = s
        self._ram = kept
        if nb != sb:
            st.set("bus_bindings", nb)  # (the next deferred configuration save)
        if kept:
            self.log.log(events.CONC_SERIAL_BOUND, len(kept), "%d bus meter binding(s) in "
                         "RAM only: no room in the configuration" % len(kept),
                         events.SRC_RS485)

    def _refuse(self, m, serial, why, t):
        self.refused += 1
        m.refusals += 1
        if m.refused == (why, serial):
            return  # (reported once per episode, not at every poll)
        m.refused = (why, serial)
        what = ("", "not the serial bound to the address", "the concentrator's own serial",
                "bound to another address")[why]
        self.log.log(events.CONC_SERIAL_REFUSED, why, "bus meter %s: reading not forwarded: "
                     "serial %s is %s" % (m.address, serial, what), events.SRC_RS485,
                     m.address[-6:])
        self._put(KIND_BUS, '{"ts":"%s","address":"%s","serial":%s,"ok":false,'
                  '"error":"serial","claimed":%s,"detail":"%s"}' % (
                      msg.iso(t), m.address, json.dumps(self.bindings().get(m.address)),
                      json.dumps(serial[:32]),
                      what))

    def _good(self, m, r, t):
        serial = serial_of(r)
        why = self._serial_refused(m, serial)
        if why:
            self._refuse(m, serial, why, t)
            return
        m.refused = None
        self.readings += 1
        m.ok += 1
        m.serial = serial
        for body in forward_bodies(r, t, self.serial):
            self._put(KIND_FORWARD, body)
        if m.fails:
            self.log.log(events.CONC_ANSWERS_AGAIN, m.fails, "bus meter %s answers again "
                         "after %d failure(s)" % (m.address, m.fails), events.SRC_RS485,
                         m.address[-6:])
            self._put(KIND_BUS, '{"ts":"%s","address":"%s","serial":"%s","ok":true,'
                      '"fails":%d}' % (msg.iso(t), m.address, m.serial, m.fails))
        m.fails = 0
        m.skip = 0
        m.last_error = ""

    def _bad(self, m, err, cl, t):
        self.failures += 1
        m.fails += 1
        k = m.fails - 1
        skip = (1 << (k if k < 16 else 16)) - 1
        m.skip = skip if skip < self.max_skip else self.max_skip
        name = iecc.ERROR_NAMES[err] if 0 <= err < len(iecc.ERROR_NAMES) else "error"
        step = iecc.STEP_NAMES[cl.step_failed] if cl is not None else "exchange"
        detail = cl.detail if cl is not None else m.last_error
        m.last_error = "%s: %s" % (name, detail)
        # the slot of the next try (from this cycle's slot when it has one)
        nxt = (self._slot if self._slot is not None else t) + (m.skip + 1) * self.interval_s
        self.log.log(events.CONC_NO_ANSWER, err, "bus meter %s: %s in %s (%s), %d in a row, "
                     "next poll in %d cycle(s)" % (m.address, name, step, detail, m.fails,
                                                    m.skip + 1), events.SRC_RS485,
                     m.address[-6:])
        self._put(KIND_BUS, '{"ts":"%s","address":"%s","serial":%s,"ok":false,'
                  '"error":"%s","step":"%s","detail":%s,"fails":%d,"next_poll":"%s"}' % (
                      msg.iso(t), m.address, json.dumps(m.serial), name, step,
                      json.dumps(detail[:48]), m.fails, msg.iso(nxt)))

    def stats(self):
        """Diagnostics for the board report: dict (per meter: serial, polls, ok, fails in
        a row, cycles to skip, the serial it is bound to, last error)."""
        b = self.bindings()
        return {"cycles": self.cycles, "readings": self.readings, "failures": self.failures,
                "queued": self.queued, "overruns": self.overruns, "refused": self.refused,
                "skipped_cycles": self.skipped_cycles, "stall_max_ms": self.stall_max_ms,
                "read_ms": self.read_ms,
                "rx": self.port.rx, "tx": self.port.tx, "errors": self.port.errors,
                "meters": {m.address: {"serial": m.serial, "polls": m.polls, "ok": m.ok,
                                       "fails": m.fails, "skip": m.skip,
                                       "bound": b.get(m.address), "refusals": m.refusals,
                                       "last_error": m.last_error} for m in self.meters}}
