# The uplink's tasks: modem connection, MQTT session, outbox drain, schedule, commands.
"""The uplink (docs/UPLINK.md): the modem on the board's ``uart_modem`` / ``modem_pwrkey``
driven by ``modem.manager.Manager`` (lib/modem), MQTT 3.1.1 with umqtt.simple (unmodified,
through ``modem.mqtt.MQTTClient``, packet ids wrapping past 65535) over the modem's TCP link
(``modem.sock.ModemNet``), QoS 1, and the store-and-forward outbox (uplink/outbox.py).

Two supervised tasks (firmware/app.py spawns them):

- :meth:`Uplink.run` (real time, every ``period_ms`` 20 ms or sooner when the modem needs
  it): pumps the modem (``Link.service``); when the TCP link to the broker is up, connects
  MQTT (clean session, keepalive ``keepalive_s`` 120 s, last will: retained
  ``{"state":"offline"}`` on ``status``), publishes the retained ``{"state":"online"}``,
  subscribes to ``cmd`` (QoS 1); then each round: answers the commands received, sends the
  oldest unacknowledged outbox message (QoS 1: acknowledged in the outbox at its PUBACK),
  pings when nothing was sent for half the keepalive, reads what the broker sent
  (non-blocking). Any socket or protocol error ends the session (the manager recovers the
  link with its backoff, lib/modem/manager.py); the outbox keeps what was not acknowledged.
  New events of the meter's log go into the outbox; the status LEDs ``uplink_leds``
  (signal, modem) show ``Manager.leds``.
- :meth:`Uplink.schedule` (metering time, the board clock): at every multiple of
  ``interval_s`` (900 s: the quarter hours, aligned to the RTC) a reading of the registers
  stamped with that instant goes into the outbox. The load profile (issue 10) plugs in
  here: ``profile_rows(t)`` (None today) returning bodies to queue instead of/besides it.

Blocking. umqtt.simple is a blocking client: a publish returns at its PUBACK. Every blocking
wait is bounded by ``max_block_ms`` (the socket adapter); the longest synchronous section of
either task (a round of ``run``; the schedule's append and outbox erase) is measured in
``stall_max_ms``, what it did in ``stall_where`` (docs/BENCHMARKS.md). On the virtual board
one QoS 1 publish takes a few ms (the modem model answers in 2 ms).

Commands (``cmd`` topic, JSON ``{"id": any, "cmd": ...}``), answered on ``cmd/ack`` with
``{"id", "cmd", "ok": true|false, ...}``: ``read`` (a reading now, through the outbox:
``"seq"``), ``registers`` (``"values"`` in the answer), ``time`` (``"t"``: RTC seconds
since 2000-01-01 UTC; set through the catalogue's 0.9.1 (logged CLOCK_SET from
SRC_UPLINK), at most one per ``time_sync_s`` 3600 s of metering time, else ``"error":
"rate limited"``), ``relay`` (``"error": "not supported"``: no relay capability yet);
anything else ``"error": "unknown command"``; a payload that is not a JSON object: ``"error":
"bad request"``.
"""

import asyncio
import json

import events
import ticks
from uplink import messages as msg
from uplink.outbox import KIND_EVENT, KIND_READING, KIND_REPLY

_KIND_TOPIC = {KIND_READING: "reading", KIND_EVENT: "event", KIND_REPLY: "reading"}
_MAX_EVENTS = 16  # per round; a flood beyond it is summarised


class Uplink:
    """``board``: ``uart_modem``, ``modem_pwrkey``, ``clock`` (and optional ``uplink_leds``);
    ``catalogue``, ``log`` (lib.events.EventLog), ``outbox`` (uplink.outbox.Outbox),
    ``serial`` (str), ``broker`` (host, port). ``modem_cfg``: keywords for the Manager."""

    def __init__(self, board, catalogue, log, outbox, serial, broker, interval_s=900,
                 keepalive_s=120, max_block_ms=5000, time_sync_s=3600, apn="internet",
                 modem_cfg=None, supply=None, link=None, idle=None):
        self.board = board
        self.clock = board.clock
        self.catalogue = catalogue
        self.log = log
        self.outbox = outbox
        # an outage's drops: logged when the first goes and, with the total, when a message
        # is delivered again (not once per dropped sector: a week offline would flood the
        # event log with them, and each is forwarded, i.e. queued, too)
        self._drop_n = 0  # messages dropped in the current episode (0: none)
        self._drop_seq = (0, 0)  # first and last sequence number dropped in it
        self.supply = supply
        self.serial = serial
        self.broker = broker
        self.interval_s = interval_s
        self.keepalive_s = keepalive_s
        self.time_sync_s = time_sync_s
        self._cfg = (apn, modem_cfg, max_block_ms, idle)
        self.link = self.manager = self.net = None
        self.ready = False  # set up: modem modules, manager, outbox mounted (start_steps)
        self._boot = self.start_steps(link)
        self._ready_ev = None
        base = "meters/" + serial + "/"
        self.t_status = base + "status"
        self.t_cmd = base + "cmd"
        self.t_ack = base + "cmd/ack"
        self.base = base
        self.client = None
        self.session = False
        self._cmds = []
        self._ev_seen = 0  # the boot's events (POWER_UP, ...) go out too
        self._last_tx = 0
        self._sync_at = None
        self.stall_max_ms = 0
        self.sent = 0
        self.sessions = 0
        self.errors = 0
        self.last_error = ""
        self.modem_events = 0
        self.pings = 0
        self._phase = 0
        self._where = ""
        self.stall_where = ""  # what the longest round did
        self.tx_ms = 0  # real ms spent in QoS 1 publishes (send to PUBACK)
        self.drains = []  # (backlog, ms from the session's start to the outbox empty)
        self._drain = None
        self.drain_end = None  # ticks_ms when the outbox was last drained after a backlog
        self.gasp = None  # the last gasp: {"seq", "sent", "ms"} (last_gasp)
        self._skip_pf = False
        self.profile_rows = None  # issue 10: callable(t) -> list of bodies, or None

    # -- start-up --------------------------------------------------------------------------

    def start_steps(self, link=None):
        """The start-up in small steps (a generator; :meth:`run` yields to the event loop
        after each): the modem modules imported one by one, the manager and its link built,
        the outbox mounted a sector at a time, umqtt.simple imported. Done at once, it stalled
        the loop for ~60 ms on the virtual board (docs/BENCHMARKS.md "Event-loop stall")."""
        apn, modem_cfg, max_block_ms, idle = self._cfg
        yield 0
        from modem.link import Link

        yield 1
        from modem.manager import Manager

        yield 2
        from modem.sim800 import Sim800

        yield 3
        from modem.sock import ModemNet

        yield 4
        if link is None:  # (tests pass a Link on a simulated clock)
            # a blocked reader (a PUBACK awaited) polls AT+CIPRXGET=2 every 20 ms, not 1 s:
            # the module announces data once, and a missed announcement stalled a publish
            # for the whole poll period (1011 ms measured, docs/BENCHMARKS.md)
            cfg = {"rx_poll_ms": 20}
            cfg.update(modem_cfg or {})
            m = Manager(Sim800(), apn=apn, on_event=self._modem_event, **cfg)
            b = self.board
            link = Link(b.uart_modem, getattr(b, "modem_pwrkey", None), m)
        yield 5
        net = ModemNet(link, max_block_ms=max_block_ms, connect_ms=max_block_ms, idle=idle)
        if not self.outbox.mounted:
            yield from self.outbox.mount_steps()
        self.link = link
        self.manager = link.manager
        self.net = net
        yield 6
        try:  # the MQTT client's modules now, not in the first session's round
            import modem.mqtt  # noqa: F401
        except ImportError:  # (umqtt.simple missing: every session fails, named in errors)
            pass
        self.ready = True
        if self._ready_ev is not None:
            self._ready_ev.set()

    def setup(self):
        """The whole start-up at once (tests, the last gasp before the task did it)."""
        for _ in self._boot:
            pass

    async def _wait_ready(self):
        if not self.ready:
            if self._ready_ev is None:
                self._ready_ev = asyncio.Event()
            await self._ready_ev.wait()

    # -- modem ---------------------------------------------------------------------------

    def _modem_event(self, name, detail):
        self.modem_events += 1  # (kept off the persisted logs: an outage would flood them)

    def _leds(self, now):
        leds = getattr(self.board, "uplink_leds", None)
        if leds and self.manager is not None:
            a, b = self.manager.leds(now)
            leds[0].set(*a)
            if len(leds) > 1:
                leds[1].set(*b)

    # -- MQTT session --------------------------------------------------------------------

    def _client(self):
        from modem.mqtt import MQTTClient

        c = MQTTClient(self.serial.encode(), self.broker[0], self.broker[1], net=self.net,
                       keepalive=self.keepalive_s)
        c.set_last_will(self.t_status.encode(), b'{"state":"offline"}', retain=True, qos=1)
        c.set_callback(self._on_msg)
        return c

    def _open_session(self, now):
        # one round trip per round: CONNECT, then (in _round) the online status, SUBSCRIBE
        c = self.client = self._client()
        self._where = "connect"
        c.connect()
        self.session = True
        self._phase = 0
        self.sessions += 1
        self._last_tx = now
        n = self.outbox.pending()
        self._drain = (ticks.ticks_ms(), n) if n > 1 else None

    def _end_session(self, e):
        self.errors += 1
        self.last_error = repr(e)[:60]
        self.session = False
        c = self.client
        self.client = None
        if c is not None and c.sock is not None:
            try:
                c.sock.close()
            except Exception:
                pass

    def _on_msg(self, topic, payload):
        if len(self._cmds) < 8:
            self._cmds.append(bytes(payload))

    def _answer(self, raw):
        try:
            req = json.loads(raw)
            if not isinstance(req, dict):
                raise ValueError
        except Exception:
            return {"ok": False, "error": "bad request"}
        out = {"id": req.get("id"), "cmd": req.get("cmd")}
        cmd = req.get("cmd")
        if cmd == "read":
            seq = self.outbox.put(KIND_REPLY, msg.reading(self.catalogue, self.clock.time(),
                                                          "request"))
            out["ok"] = seq is not None
            out["seq"] = seq
        elif cmd == "registers":
            out["ok"] = True
            out["ts"] = msg.iso(self.clock.time())
            out["values"] = [[c, float(v), u] for c, v, u in msg.register_values(
                self.catalogue)]
        elif cmd == "time":
            out.update(self._time_sync(req.get("t")))
        elif cmd == "relay":
            out["ok"] = False
            out["error"] = "not supported"
        else:
            out["ok"] = False
            out["error"] = "unknown command"
        return out

    def _time_sync(self, t):
        c = self.clock
        now = c.ticks_ms()
        if self._sync_at is not None and c.ticks_diff(now, self._sync_at) < \
                self.time_sync_s * 1000:
            return {"ok": False, "error": "rate limited"}
        try:
            self.catalogue.write("0.9.1", t, events.SRC_UPLINK)
        except (ValueError, KeyError, TypeError) as e:
            return {"ok": False, "error": "bad time: %s" % e}
        self._sync_at = now
        return {"ok": True}

    def _round(self, now):
        """One synchronous round of the session (raises on a socket/protocol error)."""
        c = self.client
        if self._phase == 0:
            self._where = "online"
            c.publish(self.t_status.encode(), b'{"state":"online"}', retain=True, qos=1)
            self._phase = 1
            return
        if self._phase == 1:
            self._where = "subscribe"
            c.subscribe(self.t_cmd.encode(), qos=1)
            self._phase = 2
            return
        m = self.outbox.peek()
        if self._cmds:  # one answer per round
            self._where = "command"
            ans = self._answer(self._cmds.pop(0))
            c.publish(self.t_ack.encode(), json.dumps(ans).encode(), qos=1)
            self._last_tx = now
        elif m is not None:
            self._where = "publish"
            seq, kind, body = m
            t0 = ticks.ticks_ms()
            c.publish((self.base + _KIND_TOPIC.get(kind, "reading")).encode(),
                      msg.with_seq(seq, body), qos=1)
            self.tx_ms += ticks.ticks_diff(ticks.ticks_ms(), t0)
            self.outbox.ack(seq)
            self._delivered()
            if self._drain is not None and self.outbox.pending() == 0:
                self.drain_end = ticks.ticks_ms()
                self.drains.append((self._drain[1], ticks.ticks_diff(self.drain_end,
                                                                      self._drain[0])))
                self._drain = None
            self.sent += 1
            self._last_tx = now
        elif ticks.ticks_diff(now, self._last_tx) >= self.keepalive_s * 1000:
            self._where = "ping"
            c.ping()  # after a keepalive of silence (the broker waits 1.5 x, MQTT 3.1.2.10)
            self.pings += 1
            self._last_tx = now
        if self.manager.rx_available():
            self._where = "receive"
            c.check_msg()

    # -- events --------------------------------------------------------------------------

    def forward_events(self):
        """Queue the events logged since the last call (at most 16 a round: a flood beyond
        is sent as one UPLINK_EVENTS_SKIPPED event with the count)."""
        lg = self.log
        total = lg.total
        new = total - self._ev_seen
        if new <= 0:
            return
        self._ev_seen = total
        got = lg.since(total - (new if new < _MAX_EVENTS else _MAX_EVENTS))
        if new > len(got):
            self.outbox.put(KIND_EVENT, msg.event(self.clock.time(),
                                                  events.UPLINK_EVENTS_SKIPPED,
                                                  new - len(got)))
        for t, code, value in got:
            if code == events.POWER_FAIL and self._skip_pf:
                self._skip_pf = False  # (already queued by last_gasp)
                continue
            self.outbox.put(KIND_EVENT, msg.event(t, code, value))
        self._dropped()

    def _dropped(self):
        d = self.outbox.take_dropped()
        if d is None:
            return
        if self._drop_n == 0:  # the episode's first: logged (and so sent as an event)
            self.log.log(events.UPLINK_DROPPED, d[0], "outbox full: seq %d..%d dropped" % (
                d[1], d[2]))
            self._drop_seq = (d[1], d[2])
        else:
            self._drop_seq = (self._drop_seq[0], d[2])
        self._drop_n += d[0]

    def _delivered(self):
        # a message reached the broker: an episode of drops ends, its total logged
        if self._drop_n:
            self.log.log(events.UPLINK_DROPPED, self._drop_n,
                         "outbox was full: seq %d..%d dropped in all" % self._drop_seq)
            self._drop_n = 0

    def last_gasp(self, budget_ms=100):
        """The power-fail warning began (firmware/app.py calls this from the warning, before
        POWER_FAIL is logged): queue the POWER_FAIL event now (an urgent append, no erase)
        and, if the MQTT session is up, send what is owed, oldest first, until it is
        acknowledged or ``budget_ms`` (real ms: the board's hold-up time) is spent; the
        blocking waits are bounded by it. Otherwise it waits in the outbox for the next
        power-up. ``gasp``: ``{"seq", "sent", "ms"}`` (ms from the warning to its PUBACK)."""
        t0 = ticks.ticks_ms()
        self.setup()  # (the warning came before the task finished its start: at once)
        self.forward_events()
        seq = self.outbox.put(KIND_EVENT, msg.event(self.clock.time(), events.POWER_FAIL, 0))
        self._skip_pf = True
        g = self.gasp = {"seq": seq, "sent": False, "ms": None}
        c = self.client
        if seq is None or not self.session or c is None:
            return g
        try:
            while self.outbox.acked < seq:
                left = budget_ms - ticks.ticks_diff(ticks.ticks_ms(), t0)
                if left <= 0:
                    break
                c.sock.settimeout(left / 1000)
                m = self.outbox.peek()
                if m is None:
                    break
                c.publish((self.base + _KIND_TOPIC.get(m[1], "reading")).encode(),
                          msg.with_seq(m[0], m[2]), qos=1)
                self.outbox.ack(m[0])
                self.sent += 1
            c.sock.settimeout(None)
        except Exception as e:
            self._end_session(e)
        if self.outbox.acked >= seq:
            g["sent"] = True
            g["ms"] = ticks.ticks_diff(ticks.ticks_ms(), t0)
        return g

    # -- tasks ---------------------------------------------------------------------------

    async def run(self, period_ms=20):
        """The modem / MQTT task (real time)."""
        for _ in self._boot:  # the start-up, one step per turn of the event loop
            await asyncio.sleep_ms(0)
        self.manager.open(self.broker[0], self.broker[1], self.link.now())
        while True:
            w = self.step()
            await asyncio.sleep_ms(0 if self.session and self.outbox.pending() else
                                   (w if w < period_ms else period_ms))

    def step(self):
        """One synchronous round: pump the modem, events, session; returns ms until the
        modem needs the next round."""
        if not self.ready:
            self.setup()
        m = self.manager
        link = self.link
        t0 = ticks.ticks_ms()
        self._where = "modem"
        w = link.service()
        now = link.now()
        self.forward_events()
        if not self.session:
            if m.connected and m.gen != m.claimed:
                try:
                    self._open_session(now)
                except Exception as e:  # refused, timed out, the link dropped
                    self._end_session(e)
            elif not m.connected and m.target is None:
                m.open(self.broker[0], self.broker[1], now)
        else:
            try:
                self._round(now)
            except Exception as e:
                self._end_session(e)
        self._leds(now)
        d = ticks.ticks_diff(ticks.ticks_ms(), t0)
        if d > self.stall_max_ms:
            self.stall_max_ms = d
            self.stall_where = self._where
        return w

    async def schedule(self):
        """Readings on the quarter hours (metering time, the RTC)."""
        c = self.clock
        iv = self.interval_s
        while True:
            ms = c.rtc_ms() if hasattr(c, "rtc_ms") else c.time() * 1000
            nxt = (ms // (iv * 1000) + 1) * iv * 1000
            await c.sleep_ms(nxt - ms)
            await self._wait_ready()  # (the outbox is mounted by the uplink task)
            t = nxt // 1000
            t0 = ticks.ticks_ms()
            rows = self.profile_rows(t) if self.profile_rows is not None else None
            if rows:
                for body in rows:
                    self.outbox.put(KIND_READING, body)
            else:
                self.outbox.put(KIND_READING, msg.reading(self.catalogue, t))
            self._dropped()
            if self.supply is None or not self.supply.warning:
                self.outbox.ring.maintain(1)  # (a sector erase when one is due)
            d = ticks.ticks_diff(ticks.ticks_ms(), t0)
            if d > self.stall_max_ms:
                self.stall_max_ms = d
                self.stall_where = "schedule"

    def stats(self):
        """Diagnostics for the board report: dict."""
        m = self.manager
        ob = self.outbox
        if m is None:
            return {"state": "START", "session": False, "sessions": 0, "sent": 0,
                    "pending": 0, "next_seq": 0, "dropped": 0, "lost": 0, "errors": 0,
                    "last_error": "", "stall_max_ms": self.stall_max_ms,
                    "stall_where": self.stall_where, "rx_bytes": 0, "tx_bytes": 0,
                    "capacity": ob.capacity, "pings": 0, "gasp": self.gasp, "tx_ms": 0,
                    "drains": []}
        return {"state": m.state_name, "session": self.session, "sessions": self.sessions,
                "sent": self.sent, "pending": ob.pending(), "next_seq": ob.next_seq,
                "dropped": ob.dropped, "lost": ob.lost, "errors": self.errors,
                "last_error": self.last_error, "stall_max_ms": self.stall_max_ms,
                "stall_where": self.stall_where,
                "rx_bytes": self.link.rx_bytes, "tx_bytes": self.link.tx_bytes,
                "capacity": ob.capacity, "pings": self.pings, "gasp": self.gasp,
                "tx_ms": self.tx_ms, "drains": self.drains[-4:]}
