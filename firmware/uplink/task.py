# The uplink's tasks: modem connection, MQTT session, outbox drain, schedule, commands.
"""The uplink (docs/UPLINK.md): the modem on the board's ``uart_modem`` / ``modem_pwrkey``
driven by ``modem.manager.Manager`` (lib/modem), MQTT 3.1.1 with umqtt.simple (unmodified,
through ``modem.mqtt.MQTTClient``, packet ids wrapping past 65535) over the modem's TCP link
(``modem.sock.ModemNet``), QoS 1, and the store-and-forward outbox (uplink/outbox.py).

Two supervised tasks (firmware/app.py spawns them):

- :meth:`Uplink.run` (real time, every ``period_ms`` 20 ms or sooner when the modem needs
  it): pumps the modem (``Link.service``); when the TCP link to the broker is up, connects
  MQTT (clean session, keepalive ``keepalive_s`` 120 s, last will: retained
  ``{"state":"offline"}`` on ``status``), subscribes to ``cmd`` (QoS 1), then publishes the
  retained ``{"state":"online"}`` (online means listening); then each round: answers the
  commands received, sends the oldest unacknowledged outbox message (QoS 1: acknowledged in
  the outbox at its PUBACK), pings when nothing was sent for half the keepalive, reads what
  the broker sent (non-blocking). Any socket or protocol error ends the session (the manager
  recovers the link with its backoff, lib/modem/manager.py); the outbox keeps what was not
  acknowledged. A session ended with the link still up (CONNACK refused, SUBACK failure, no
  PUBACK, a PINGREQ not answered within half a keepalive, MQTT 3.1.1 3.1.2.10) gets its next
  link after the manager's backoff too (``Manager.backoff_ms`` of the failures in a row,
  reset by a PUBACK or a session that lasted ``stable_ms``): no reconnect storm. New events
  of the meter's log go into the outbox; the status LEDs ``uplink_leds`` (signal, modem)
  show ``Manager.leds``.
- :meth:`Uplink.schedule` (metering time, the board clock): at every multiple of
  ``interval_s`` (900 s: the quarter hours, aligned to the RTC), with a load profile
  (``profile``, meter.profile.LoadProfile P.01) its rows that ended since the last one
  queued go into the outbox (2 s later: the profile task captures a row within a second),
  several rows a message (``profile`` topic); the cursor (``profile_cursor``, the end of
  the newest row queued) is found again after a restart in the outbox's newest profile
  message. Without a profile: a reading of the registers stamped with that instant.

Blocking. umqtt.simple is a blocking client: a publish returns at its PUBACK. Every blocking
wait is bounded by ``max_block_ms`` (the socket adapter); the longest synchronous section of
either task (a round of ``run``; the schedule's append and outbox erase) is measured in
``stall_max_ms``, what it did in ``stall_where`` (docs/BENCHMARKS.md). On the virtual board
one QoS 1 publish takes a few ms (the modem model answers in 2 ms). The board's
``power_fail`` input rising during such a wait ends it (and the session) at once, so the
power-fail commit runs within the hold-up time; the last gasp then finds no session and
queues POWER_FAIL for the next power-up.

Commands (``cmd`` topic, JSON ``{"id": any, "cmd": ...}``), answered on ``cmd/ack`` with
``{"id", "cmd", "ok": true|false, ...}``: ``read`` (a reading now, at most one a minute,
through the outbox: ``"seq"``), ``registers`` (``"values"`` in the answer), ``time``
(``"t"``: RTC seconds since 2000-01-01 UTC; unauthenticated while no uplink key (C.93.3)
is set, with one also ``"n"`` and ``"mac"`` over ``time:<t>`` as a ``config``'s; it may
move the clock by at most ``time_sync_max_s`` (:data:`TIME_SYNC_MAX_S`, 900 s) either
way, else refused and logged UPLINK_TIME_REFUSED: larger sets go through ``config``
0.9.1 / 0.9.2; set through the catalogue's 0.9.1 (logged CLOCK_SET from SRC_UPLINK) under
the uplink's own clock-set limit per period (lib/billing/clocklimit.py,
``Catalogue.clock_limit_uplink``: refused with CLOCK_SET_REFUSED), at most one per
``time_sync_s`` 3600 s of metering time, else ``"error": "rate limited"``), ``config`` (a
W1 / E2 through the catalogue, authenticated by an HMAC-SHA256 keyed with the uplink key
(or, while none is set, the programming password) over a fresh sequence number, under the
uplink's own lockout: :meth:`Uplink._config`),
``relay`` (``"error": "not supported"``: no relay capability yet);
anything else ``"error": "unknown command"``; a payload that is not a JSON object: ``"error":
"bad request"``.
"""

import asyncio
import errno
import json
import time

import events
import ticks
from meter import catalogue as C
from uplink import messages as msg
from uplink.outbox import (BODY_MAX, KIND_BUS, KIND_EVENT, KIND_FORWARD, KIND_PROFILE,
                           KIND_READING, KIND_REPLY)

_KIND_TOPIC = {KIND_READING: "reading", KIND_EVENT: "event", KIND_REPLY: "reading",
               KIND_BUS: "bus", KIND_PROFILE: "profile"}
_PROFILE_LAG_MS = 2000  # after the quarter hour: the profile task has captured its row
_LOGS = {"standard": events.IDIS_STANDARD, "fraud": events.IDIS_FRAUD,
         "disconnector": events.IDIS_DISCONNECTOR, "power_quality": events.IDIS_POWER_QUALITY,
         "communication": events.IDIS_COMMUNICATION,
         "power_failure": events.IDIS_POWER_FAILURE}


def _when(req, key):
    # a range bound: ISO 8601 UTC text or RTC seconds (ValueError naming the key)
    v = req.get(key)
    if v is None:
        raise ValueError("%s: missing" % key)
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 3155760000:
        return v  # (2000 .. 2099: the RTC's range, meter/catalogue.py _s_clock)
    try:
        return msg.iso_secs(v)
    except (ValueError, TypeError):
        pass
    raise ValueError("%s: %s is not YYYY-MM-DDTHH:MM:SSZ (UTC) or RTC seconds" % (
        key, json.dumps(v)[:40]))
_MAX_EVENTS = 16  # per round; a flood beyond it is summarised
TIME_SYNC_MAX_S = 900  # s: the largest shift of an (unauthenticated) ``time`` command
N_MAX = 0x7FFFFFFF  # the largest ``n`` of a ``config`` (an event value, 31 bits)
_SET_MAX = 600  # characters of a ``config``'s ``set`` text


class _SessionEnd:
    """``with``: an Exception raised in the block ends the session (``Uplink._end_session``)
    and is not raised further. A ``try: ... except Exception as e`` keeps two exception-stack
    entries (6 words) in the frame, which then came from the heap at every round
    (py/objfun.c ``VM_MAX_STATE_ON_STACK``); a ``with`` keeps one."""

    def __init__(self, up):
        self.up = up

    def __enter__(self):
        return self

    def __exit__(self, t, e, tb):
        if isinstance(e, Exception):
            self.up._end_session(e)
            return True
        return False  # (none, or KeyboardInterrupt / SystemExit: on its way)


class Uplink:
    """``board``: ``uart_modem``, ``modem_pwrkey``, ``clock`` (and optional ``uplink_leds``);
    ``catalogue``, ``log`` (lib.events.EventLog), ``outbox`` (uplink.outbox.Outbox),
    ``serial`` (str), ``broker`` (host, port). ``modem_cfg``: keywords for the Manager.
    ``settings`` (meter.settings.Settings or None): with them the stored ``uplink_broker``
    and ``uplink_apn`` are checked (a bad one: the default, logged CONFIG_DEFAULTS), the
    broker is the setting's unless ``broker`` (a board's override) is given, the APN is
    the setting's; a change of ``uplink_broker`` or
    ``uplink_apn`` (C.93.1 / C.93.2, W1 or the ``config`` command) is applied at the next
    round without a command or range answer pending (:meth:`_reconfigure`): the session
    ends cleanly (retained offline status, DISCONNECT), the modem takes the new APN
    (``Manager.set_apn``: CIPSHUT and the PDP context again, no power cycle) and the next
    session goes to the new broker; no reboot. ``floor`` (uplink.seqfloor.SeqFloor or None):
    the outbox's seq floor in flash (none: seq comes from the outbox alone)."""

    time_sync_max_s = TIME_SYNC_MAX_S  # s, either way (the ``time`` command)

    def __init__(self, board, catalogue, log, outbox, serial, broker, interval_s=900,
                 keepalive_s=120, max_block_ms=5000, time_sync_s=3600, apn="internet",
                 modem_cfg=None, supply=None, link=None, idle=None, settings=None,
                 floor=None):
        if settings is not None:
            from meter.uplinkcfg import broker_of

            settings.check(("uplink_broker", "uplink_apn"))
            if broker is None:
                broker = broker_of(settings["uplink_broker"])
            apn = settings["uplink_apn"]
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
        # MQTT-level failures (CONNACK refused, SUBACK failure, no PUBACK / PINGRESP) end a
        # session with the TCP link still up; its new link waits the manager's backoff
        self._fails = 0  # sessions in a row ended by an error without progress
        self._retry_at = None  # link ms: no new link for a session before (None: at once)
        self._t_session = 0  # link ms of the session's CONNECT
        self._ping = None  # (link ms, client pongs) of the PINGREQ not answered yet
        self._pf = getattr(board, "power_fail", None)  # the power-fail input (a Pin) or None
        self._pf_seen = 1  # its level at the last step: 0 -> 1 inside a blocking wait aborts it
        self._catch = _SessionEnd(self)  # a session round's exception ends the session
        self._led_pins = getattr(board, "uplink_leds", None)
        self._led_a = self._led_b = None  # the signal and modem colours last shown on them
        self._cmds = []
        self._ev_seen = 0  # the boot's events (POWER_UP, ...) go out too
        self._last_tx = 0
        self._sync_at = None
        self._read_at = None  # metering ticks of the last ``read`` command
        self._refused_at = None  # metering ticks of the last ``config`` refusal logged
        self.refusals_unlogged = 0  # ``config`` refusals not logged (_log_refusal)
        self.read_min_s = 60  # s between two ``read`` commands at least
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
        self.profile = None  # meter.profile.LoadProfile (P.01): its rows on the schedule
        self.profile_cursor = None  # RTC s: end of the newest row queued (start_steps)
        self.profile_max_rows = 96  # rows queued per schedule round at most (more: next one)
        self.events_store = None  # meter.eventstore.EventStore: the ``log`` command's source
        self.range_max_rows = 672  # rows/events per range request (7 days of 15 min)
        self.range_page_bytes = 1024  # payload of one page of a range answer, at most
        self._range = None  # the range answer being sent: a generator of pages (bytes)
        self.range_scan = 32  # records of the event log read per round at most (``log``)
        self.iec_map = None  # callable -> ports.iec.IecMap: password, lockout (``config``)
        self.settings = settings
        self._reconf = False  # uplink_broker / uplink_apn changed: _reconfigure due
        self.reconfigs = 0  # settings changes applied (clean reconnects)
        # a broker / APN change is on trial until a session opens with it: after
        # broker_trial_s (link ms) without one, the last pair that opened a session is set
        # again (a mistyped broker or APN would otherwise cut the head-end off for good)
        self.broker_trial_s = 7200
        self._good = None  # (broker, apn) of the last session opened
        self._trial = None  # link ms of the first change since that session (None: none)
        self._broker_set = False  # uplink_broker written: it replaces ``broker`` (a board's
        if settings is not None:  # override stays until then)
            settings.subscribe(self._on_setting)
        if floor is not None:  # the outbox's seq floor (uplink/seqfloor.py)
            outbox.floor = floor.value
            outbox.limit = floor.safe
            outbox.reserve = floor.reserve

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
        self._idle_fn = idle
        net = ModemNet(link, max_block_ms=max_block_ms, connect_ms=max_block_ms,
                       idle=self._idle)
        if not self.outbox.mounted:
            yield from self.outbox.mount_steps()
        self.link = link
        self.manager = link.manager
        self.net = net
        self._profile_start()
        sk = self.outbox.skipped
        if sk is not None:  # formatted or damaged: on above the floor (no number twice)
            n = sk[1] - sk[0] + 1
            self.log.log(events.UPLINK_SEQ_SKIPPED, n if n < 0x3FFFFFFF else 0x3FFFFFFF,
                         "outbox lost: seq %d..%d not used" % sk)
        st = getattr(self.profile, "store", None)
        if st is not None:  # the time index of the profile range answers, built now
            for _ in st.index_steps(self.range_scan):  # (range_scan records a turn)
                yield 6
        yield 6
        try:  # the MQTT client's modules now, not in the first session's round
            import modem.mqtt  # noqa: F401
        except ImportError:  # (umqtt.simple missing: every session fails, named in errors)
            pass
        self.ready = True
        if self._ready_ev is not None:
            self._ready_ev.set()

    def _profile_start(self):
        # the cursor is in the outbox: the newest profile message's last row (a power cut
        # before its append loses the message and the rows go again; after, none repeats);
        # none there (new meter, outbox formatted): the rows from this start on
        t = None
        body = self.outbox.newest(KIND_PROFILE)
        if body is not None:
            try:
                t = msg.iso_secs(json.loads(body)["rows"][-1][0])
            except (ValueError, KeyError, IndexError, TypeError):
                t = None
        self.profile_cursor = t if t is not None else self.clock.time()

    def profile_bodies(self, t_to):
        """The rows of ``profile`` ending after the cursor and at or before ``t_to`` (RTC s),
        at most ``profile_max_rows``, packed into outbox bodies: yields (body, t of its last
        row), and None after every ``range_scan`` records of the profile ring read and
        before each record decoded (the caller gives the event loop a turn). Rows whose end
        is not after the cursor are never queued again; after the RTC was set back before the
        cursor, the cursor goes back to the round before (the set came after it, and the
        interval it cut ends at a boundary of the new time, flagged CLOCK_ADJUSTED): a row of
        the old time ending in that span goes again, identical. The profile is read newest
        first back to the cursor (meter.profile.LoadProfile.rows_since), not from its oldest
        record."""
        p = self.profile
        cur = self.profile_cursor
        if cur is None or cur > t_to:
            cur = self.profile_cursor = t_to - self.interval_s
        rows = yield from p.rows_since(cur, t_to, self.profile_max_rows, self.range_scan)
        yield from msg.profile_bodies(msg.profile_head(p.name, p.layout), p.layout, rows,
                                      BODY_MAX)

    def setup(self):
        """The whole start-up at once (tests, the last gasp before the task did it)."""
        for _ in self._boot:
            pass

    async def _wait_ready(self):
        if not self.ready:
            if self._ready_ev is None:
                self._ready_ev = asyncio.Event()
            await self._ready_ev.wait()

    # -- broker and APN settings ---------------------------------------------------------

    def _on_setting(self, key):
        if key == "uplink_broker" or key == "uplink_apn":
            self._reconf = True
            if key == "uplink_broker":
                self._broker_set = True

    def _reconfigure(self, now):
        # the new broker / APN from the settings (validated there): a clean end of the
        # session, then the manager re-opens (step) to the new target with the new APN
        self._reconf = False
        from meter.uplinkcfg import broker_of

        st = self.settings
        br = broker_of(st.get("uplink_broker")) if self._broker_set else self.broker
        self._broker_set = False
        apn = st.get("uplink_apn")
        if br == self.broker and apn == self.manager.apn:
            return
        self.reconfigs += 1
        if self._good is not None and self._trial is None and self._good != (br, apn):
            self._trial = now
        c = self.client
        if self.session and c is not None:
            self._where = "reconnect"
            try:
                c.publish(self.t_status.encode(), b'{"state":"offline"}', retain=True, qos=1)
                c.disconnect()  # (closes the socket: the manager closes the TCP link)
                self.session = False
                self.client = None
            except Exception as e:
                self._end_session(e)
        self.broker = br
        m = self.manager
        m.set_apn(apn, now)
        if m.target is not None:
            m.open(br[0], br[1], now)

    def _revert(self):
        # the change on trial opened no session in broker_trial_s: the last broker and APN
        # that did are set again (persisted; applied by _reconfigure at the next round)
        self._trial = None
        br, apn = self._good
        st = self.settings
        try:
            st.set("uplink_broker", "%s:%d" % br)
            st.set("uplink_apn", apn)
        except ValueError:  # (a board's broker the setting cannot hold: kept as it is)
            pass
        self.log.log(events.UPLINK_REVERTED, self.broker_trial_s, "uplink: no session in %d "
                     "s after a broker/APN change: back to %s:%d, APN %s" % (
                         self.broker_trial_s, br[0], br[1], apn), events.SRC_UPLINK)

    # -- modem ---------------------------------------------------------------------------

    def _modem_event(self, name, detail):
        self.modem_events += 1  # (kept off the persisted logs: an outage would flood them)

    def _idle(self):
        # each 1 ms of the MQTT client's blocking waits (modem.sock): the power-fail input
        # rising ends the wait (and the session) at once, so that the event loop runs the
        # power-fail commit within the hold-up time (a QoS 1 publish waits up to max_block_ms,
        # 5 s, for its PUBACK: the commit came after the supply had gone). Only an edge seen
        # since the last step: an input stuck asserted does not end every session after it
        pf = self._pf
        if not self._pf_seen and pf is not None and pf.value():
            raise OSError(errno.ECONNABORTED)
        if self._idle_fn is not None:
            self._idle_fn()
        elif hasattr(time, "sleep_ms"):
            time.sleep_ms(1)
        else:  # CPython
            time.sleep(0.001)

    def _leds(self, now):
        # the pins are written when a colour changes (Manager.led_update sets its constant
        # colour tuples: no allocation at a round)
        leds = self._led_pins
        m = self.manager
        if leds and m is not None:
            m.led_update(now)
            if m.led_sig is not self._led_a or m.led_mod is not self._led_b:
                self._led_set(leds, m.led_sig, m.led_mod)

    def _led_set(self, leds, a, b):
        self._led_a = a
        self._led_b = b
        leds[0].set(a[0], a[1], a[2])
        if len(leds) > 1:
            leds[1].set(b[0], b[1], b[2])

    # -- MQTT session --------------------------------------------------------------------

    def _client(self):
        from modem.mqtt import MQTTClient

        c = MQTTClient(self.serial.encode(), self.broker[0], self.broker[1], net=self.net,
                       keepalive=self.keepalive_s)
        c.set_last_will(self.t_status.encode(), b'{"state":"offline"}', retain=True, qos=1)
        c.set_callback(self._on_msg)
        return c

    def _open_session(self, now):
        # one round trip per round: CONNECT, then (in _round) SUBSCRIBE, the online status
        c = self.client = self._client()
        self._where = "connect"
        c.connect()
        self.session = True
        self._phase = 0
        self.sessions += 1
        self._good = (self.broker, self.manager.apn)
        self._trial = None
        self._last_tx = self._t_session = now
        self._ping = None
        n = self.outbox.pending()
        self._drain = (ticks.ticks_ms(), n) if n > 1 else None

    def _end_session(self, e):
        self.errors += 1
        self.last_error = repr(e)[:60]
        # backoff before the next link for a session (the manager's schedule: a broker that
        # refused every CONNECT or SUBSCRIBE was reconnected to at once, about 8 times a
        # second); a session that lasted the manager's stable time starts the count again
        now = self.link.now()
        m = self.manager
        if self.session and ticks.ticks_diff(now, self._t_session) >= m.cfg["stable_ms"]:
            self._fails = 0
        self._fails += 1
        self._retry_at = ticks.ticks_add(now, m.backoff_ms(self._fails))
        self.session = False
        c = self.client
        self.client = None
        if c is not None and c.sock is not None:
            try:
                c.sock.close()
            except Exception:
                pass

    def _on_msg(self, topic, payload):
        # a command already waiting is not queued twice: a retained one is handed over
        # again at every SUBSCRIBE, and a session that ended before answering it (its
        # online status unacknowledged: the command comes while that waits for its PUBACK)
        # kept the first copy, so the next session answered it twice (a QoS 1 redelivery
        # likewise)
        p = bytes(payload)
        if len(self._cmds) < 8 and p not in self._cmds:
            self._cmds.append(p)

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
            # at most one per read_min_s (an outbox record each: a flood would wear the
            # partition's flash out)
            c = self.clock
            now = c.ticks_ms()
            d = None if self._read_at is None else c.ticks_diff(now, self._read_at)
            if d is not None and 0 <= d < self.read_min_s * 1000:
                out["ok"] = False
                out["error"] = "rate limited"
                return out
            seq = self.outbox.put(KIND_REPLY, msg.reading(self.catalogue, c.time(),
                                                          "request"))
            self._read_at = now
            out["ok"] = seq is not None
            out["seq"] = seq
        elif cmd == "registers":
            out["ok"] = True
            out["ts"] = msg.iso(self.clock.time())
            out["values"] = [[c, float(v), u] for c, v, u in msg.register_values(
                self.catalogue)]
        elif cmd == "time":
            out.update(self._time_sync(req.get("t"), req))
        elif cmd == "relay":
            out["ok"] = False
            out["error"] = "not supported"
        elif cmd == "config":
            n = req.get("n")
            if isinstance(n, int) and not isinstance(n, bool) and 0 < n <= N_MAX:
                out["n"] = n
            err, ob = self._config(req)
            out["obis"] = ob if isinstance(ob, str) and len(ob) <= 24 else None
            out["ok"] = err is None
            if err is not None:
                out["error"] = err
        elif cmd == "profile" or cmd == "log":
            try:
                self._range = self._range_pages(req, cmd)
                return None  # the pages are the answer (_round sends one a round)
            except ValueError as e:
                out["ok"] = False
                out["error"] = str(e)
        else:
            out["ok"] = False
            out["error"] = "unknown command"
        return out

    def _range_pages(self, req, cmd):
        """Check a ``profile`` / ``log`` request and return the generator of its answer's
        pages (ValueError naming what is wrong). Rows are read from flash as the pages go
        out, one page (at most ``range_page_bytes``) a round: a request for a year holds no
        more than a page in the heap, and stops after ``range_max_rows`` with ``"more"``.
        A ``log`` reads at most ``range_scan`` records of the event store a round, a
        ``profile`` at most ``range_scan`` records of the profile ring (the generator yields
        b"" after each share: no page that round), so a range with no entry never scans the
        whole store in one round."""
        if self._range is not None:
            raise ValueError("busy: a range answer is still being sent")
        t_from = _when(req, "from")
        t_to = _when(req, "to")
        if t_to < t_from:
            raise ValueError("to: %s is before from" % msg.iso(t_to))
        idj = json.dumps(req.get("id"))
        if len(idj) > 64:
            raise ValueError("id: longer than 64 characters of JSON")
        if cmd == "profile":
            p = self.profile
            if p is None:
                raise ValueError("no load profile")
            lay = p.layout
            head = ('{"id":' + idj + ',"cmd":"profile","ok":true,"page":',
                    "," + msg.profile_head(p.name, lay)[1:])
            return self._pages(head, p.range_rows(t_from, t_to, self.range_scan),
                               lambda r: msg.profile_row(lay, r[0], r[1], r[2]))
        name = req.get("log")
        if not isinstance(name, str) or name not in _LOGS:  # (a list is unhashable)
            raise ValueError("log: %s is not one of %s" % (json.dumps(name)[:40],
                                                            ", ".join(sorted(_LOGS))))
        es = self.events_store
        if es is None:
            raise ValueError("no event log")
        head = ('{"id":' + idj + ',"cmd":"log","ok":true,"page":',
                ',"log":"%s","events":[' % name)
        return self._pages(head, es.logbook(_LOGS[name], t_from, t_to, self.range_scan),
                           _log_row)

    def _pages(self, head, rows, fmt):
        # pages: head[0] + page number + head[1] + rows (``fmt(row)`` text) + "]}"; the last
        # one ends with "last": true, "rows_total" and, when cut at range_max_rows, "more"
        # (the time to ask from next)
        parts = []
        base = len(head[0]) + len(head[1]) + 48
        size = base
        page = n = 0
        more = None
        for r in rows:
            if r is None:  # (the source read its bounded share of records: next round)
                yield b""
                continue
            if n >= self.range_max_rows:
                more = r[0]
                break
            x = fmt(r)
            if parts and size + len(x) + 1 > self.range_page_bytes:
                page += 1
                yield (head[0] + str(page) + head[1] + ",".join(parts) + "]}").encode()
                parts = []
                size = base
            parts.append(x)
            size += len(x) + 1
            n += 1
        page += 1
        end = '],"last":true,"rows_total":%d' % n
        if more is not None:
            end += ',"more":"%s"' % msg.iso(more)
        yield (head[0] + str(page) + head[1] + ",".join(parts) + end + "}").encode()

    def _config(self, req):
        """The ``config`` command ``{"id", "cmd": "config", "n": N, "set": TEXT, "mac": HEX}``
        (docs/UPLINK.md): ``set`` is the request as JSON text, carried verbatim,
        ``{"obis": ..., "value": ...}`` for a W1 write (``"value"``: the W1 text) or with
        ``"action": "execute"`` an E2 (``"value"``: its argument text, optional) of ``obis``
        through the catalogue, as the optical port's; ``mac`` the hex HMAC-SHA256 keyed with
        the uplink key (C.93.3, 16 bytes) or, while none is set, the programming password,
        over ``<serial> LF <N in decimal> LF <set>`` (UTF-8, uplink/auth.py); ``n``
        1..2**31 - 1, above the last accepted (``IecMap.uplink_n``, recorded before the change: no
        replay, also after a power cut). A wrong MAC counts as a wrong password under the uplink's
        own lockout (``IecMap.uplink_lockout``, booked
        to SRC_UPLINK; the local ports have theirs). Returns (None: done, or the error text;
        the obis or None); logs as the ports do (WRONG_PASSWORD, PROG_LOCKED,
        PW_WHILE_LOCKED, PROG_ENTER, REFUSED_*, SEALED_REFUSED; UPLINK_REPLAY,
        UPLINK_CONFIG_N; the change itself by the catalogue). A password sent in clear is
        refused unread; the password and the key are never echoed, logged or put in an
        error. The uplink key itself is refused here (written on a local port only)."""
        im = self.iec_map() if self.iec_map is not None else None
        if im is None:
            return "not supported", None
        src = events.SRC_UPLINK
        n = req.get("n")
        text = req.get("set")
        bad = None
        if "password" in req:
            bad = "password: not accepted in clear; send n, set and mac (docs/UPLINK.md)"
        elif not isinstance(text, str) or not text or len(text) > _SET_MAX:
            bad = "set: missing (the request as JSON text, at most %d characters)" % _SET_MAX
        err = self._verify(im, n, text, req.get("mac"), bad)
        if err is not None:
            return err, None
        lk = im.uplink_lockout
        pw = im.password
        try:
            req = json.loads(text)
            if not isinstance(req, dict):
                raise ValueError
        except Exception:
            return "set: not a JSON object", None
        if not im.accept_n(n):  # (recorded before the change, or nothing is done)
            return "n not recorded (event log): nothing done", None
        lk.success(src)
        im.on_event(src, "prog_enter", "", 0, "P1")  # (the lockout's replay at boot)
        obis = req.get("obis")
        value = req.get("value")
        ex = req.get("action", "write")
        cmd = "E2" if ex == "execute" else "W1"
        cat = self.catalogue
        e = cat.entry(obis) if isinstance(obis, str) and len(obis) <= 24 else None
        if ex not in ("write", "execute"):
            return 'action: %s is not "write" or "execute"' % json.dumps(ex)[:24], obis
        if e is None:
            im.on_event(src, "refused", (obis if isinstance(obis, str) else "")[:24], 1, cmd)
            return "unknown obis", obis
        if value is None and ex == "execute":
            value = ""
        if not isinstance(value, str) or len(value) > 512:
            im.on_event(src, "refused", obis, 5, cmd)
            return "bad value: the text of the W1 value (a string)", obis
        seal = im.seal_open()
        try:
            if ex == "execute":
                cat.execute(obis, im.e2_arg(value), src, seal)
            else:  # an authenticated clock set is counted in the uplink's clock-set
                # budget but never refused by it (as a local set with the seal open): the
                # corrections larger than a time sync's are this command's job
                cat.write(obis, im.w1_value(obis, value), src, seal or e[C.E_SRC] == "clock")
        except C.Sealed:
            im.on_event(src, "sealed_refused", obis, 6, cmd)
            return "sealed", obis
        except (C.NotWritable, KeyError):
            im.on_event(src, "refused", obis, 4, cmd)
            return "not writable", obis
        except ValueError as x:
            im.on_event(src, "refused", obis, 5, cmd)
            t = str(x)
            if not t or e[C.E_SRC] in ("password", "uplink_key") or pw in t:  # (not echoed)
                t = "malformed"
            return "bad value: " + t, obis
        except C.Failed as x:
            im.on_event(src, "refused", obis, 9, cmd)
            return str(x), obis
        return None, obis

    def _verify(self, im, n, text, mac, bad=None):
        """The checks a ``config`` and (with an uplink key) a ``time`` pass before their
        content is acted on: the uplink's lockout, ``bad`` (the caller's own check of the
        message, an error text or None), ``n`` 1..2**31 - 1, ``mac`` 64 hex digits, the
        key's trust, the MAC over ``<serial> LF <n> LF <text>`` (uplink/auth.py) keyed with
        the uplink key (C.93.3) or, while none is set, the programming password (only a
        wrong MAC under the password counts in the lockout), and ``n`` above the last
        accepted. Returns None (authentic and fresh: the caller records ``n``
        with ``im.accept_n`` before it changes anything) or the error text; logs every
        refusal as :meth:`_config` says."""
        src = events.SRC_UPLINK
        now = self.clock.time()
        lk = im.uplink_lockout
        left = lk.remaining(now)
        if left:  # refused without looking at the MAC
            if self._log_refusal():
                im.on_event(src, "pw_while_locked", "", left, "P1")
            return "locked (%d s)" % left
        err = bad
        if err is not None:
            pass
        elif not isinstance(n, int) or isinstance(n, bool) or not 0 < n <= N_MAX:
            err = "n: missing or not 1..%d" % N_MAX
        elif not isinstance(mac, str) or len(mac) != 64:
            err = "mac: missing or not 64 hex digits (HMAC-SHA256)"
        if err is not None:
            if self._log_refusal():
                im.on_event(src, "refused", "", 7, "P1")
            return err
        from uplink.auth import mac_of, same_hex

        st = im.settings
        key = st.get("uplink_key", "")
        keyed = key != ""
        err = None
        if not st.password_trusted:
            # the configuration fell back (F.F.0 ERR_SECURITY): the password and the uplink
            # key may be an older copy's (a rotated, leaked key): only locally, seal open
            err = "password not trusted (configuration fell back): set it locally"
        elif keyed:
            from meter.uplinkcfg import check, key_bytes

            try:  # a stored key that is no key never falls back to the password
                check("uplink_key", key)
                key = key_bytes(key)
            except ValueError:
                err = "uplink key not usable (configuration): write it locally"
        else:
            key = im.password.encode()
        if err is not None:
            if self._log_refusal():
                im.on_event(src, "sealed_refused", "", 6, "P1")
            return err
        if not same_hex(mac, mac_of(key, self.serial, n, text)):
            if keyed:  # the uplink key: 128 bits are not searched online (offline, one
                # recorded message suffices), so no lockout: it would only let anyone who
                # can publish on cmd lock the head-end out; logged at most once a minute
                if self._log_refusal():
                    im.on_event(src, "refused", "", 7, "P1")
                return "wrong mac"
            locked_s = lk.failure(now, src)
            im.on_event(src, "pw_wrong", "", lk.failures, "P1")
            if locked_s:
                im.on_event(src, "prog_locked", "", locked_s, "P1")
                return "wrong mac; locked (%d s)" % locked_s
            return "wrong mac"
        if n <= im.uplink_n:  # a replay (or the head-end's counter went back)
            if self._log_refusal():
                self.log.log(events.UPLINK_REPLAY, n, "uplink config n %d refused: not above "
                             "%d" % (n, im.uplink_n), src)
            return "n: %d is not above the last accepted (%d)" % (n, im.uplink_n)
        return None

    def _log_refusal(self):
        # a ``config`` refused before its password is looked at (locked, none, not trusted)
        # is logged, and so queued as an event (an outbox record), at most once a minute of
        # meter time: a head-end repeating one would wear the outbox flash; the others are
        # only counted (``refusals_unlogged``)
        c = self.clock
        now = c.ticks_ms()
        d = None if self._refused_at is None else c.ticks_diff(now, self._refused_at)
        if d is not None and 0 <= d < 60000:
            self.refusals_unlogged += 1
            return False
        self._refused_at = now
        return True

    def _time_sync(self, t, req=None):
        # the limit holds while both the ticks and the RTC say it is less than time_sync_s
        # since the last set: ticks_ms wraps at 2**30 on a board (12.4 days; a difference
        # past 2**29 reads negative, one of 2**30 + 1 s reads 1 s) and the RTC moves with
        # every clock set, but the two do not alias together
        c = self.clock
        now = c.ticks_ms()
        lim = self.time_sync_s
        if self._sync_at is not None:
            d = c.ticks_diff(now, self._sync_at[0])
            r = c.time() - self._sync_at[1]
            if 0 <= d < lim * 1000 and -lim < r < lim:
                return {"ok": False, "error": "rate limited"}
        if isinstance(t, bool) or not isinstance(t, int):  # (JSON true is the int 1 here)
            return {"ok": False, "error": "bad time: t is not RTC seconds"}
        im = self.iec_map() if self.iec_map is not None and req is not None else None
        if im is not None and im.settings.get("uplink_key", "") != "":
            # with an uplink key set, a time sync is authenticated as a ``config`` is (the
            # same n sequence; MAC over "time:<t>"): no one else can shift the tariffs
            err = self._verify(im, req.get("n"), "time:%d" % t, req.get("mac"))
            if err is None and not im.accept_n(req["n"]):
                err = "n not recorded (event log): nothing done"
            if err is not None:
                return {"ok": False, "error": err}
            im.uplink_lockout.success(events.SRC_UPLINK)
        # anyone who can publish on cmd can send this: a small correction only; a larger
        # set needs the authenticated ``config`` (0.9.1 / 0.9.2)
        shift = t - c.time()
        mx = self.time_sync_max_s
        if shift > mx or shift < -mx:
            if self._log_refusal():  # (logged at most once a minute: an outbox record each)
                v = shift if -0x3FFFFFFF <= shift <= 0x3FFFFFFF else (
                    0x3FFFFFFF if shift > 0 else -0x3FFFFFFF)
                self.log.log(events.UPLINK_TIME_REFUSED, v, "time sync refused: shift %d s "
                             "beyond +-%d s" % (shift, mx), events.SRC_UPLINK, "0.9.1")
            return {"ok": False, "error": "shift %d s: a time sync moves the clock by at most "
                    "+-%d s (larger sets: config 0.9.1/0.9.2)" % (shift, mx)}
        try:
            self.catalogue.write("0.9.1", t, events.SRC_UPLINK)
        except (ValueError, KeyError, TypeError) as e:
            return {"ok": False, "error": "bad time: %s" % e}
        except C.Failed as e:  # the uplink's clock-set limit per period
            return {"ok": False, "error": str(e)}
        self._sync_at = (now, c.time())
        return {"ok": True}

    def _round(self, now):
        """One synchronous round of the session (raises on a socket/protocol error). An
        idle round (nothing owed, no command) allocates nothing, frames included: each
        kind of work in a helper of its own."""
        if self._phase < 2:
            self._open_round()
            return
        if self._range is not None:  # a page of a range answer per round
            self._range_round(now)
        elif self._cmds:  # one answer per round
            self._command_round(now)
        elif self.outbox.peek() is not None:
            self._publish_round(now)
        elif ticks.ticks_diff(now, self._last_tx) >= self.keepalive_s * 1000:
            self._ping_round(now)
        if self.manager.rx_available():
            self._where = "receive"
            self.client.check_msg()
        if self._ping is not None:
            self._ping_check(now)

    def _open_round(self):
        # one round trip per round after CONNECT: SUBSCRIBE, then the online status (a
        # head-end that sends a command once it sees "online" must find the meter listening:
        # the broker drops a QoS 1 command published before the SUBSCRIBE took, MQTT 3.1.1
        # 3.3.5; with the status first the CI head-end's first commands were lost)
        c = self.client
        if self._phase == 0:
            self._where = "subscribe"
            c.subscribe(self.t_cmd.encode(), qos=1)
            self._phase = 1
        else:
            self._where = "online"
            c.publish(self.t_status.encode(), b'{"state":"online"}', retain=True, qos=1)
            self._phase = 2

    def _range_round(self, now):
        self._where = "range"
        page = next(self._range, None)
        if page is None:
            self._range = None
        elif page:  # (b"": records scanned, no page yet)
            self.client.publish(self.t_ack.encode(), page, qos=1)
            self._last_tx = now

    def _command_round(self, now):
        self._where = "command"
        try:
            ans = self._answer(self._cmds.pop(0))
            ans = None if ans is None else json.dumps(ans).encode()
        except Exception:  # (a request the checks missed: refused; an exception here
            # ended the session, and a retained request then ended every session)
            ans = b'{"ok":false,"error":"bad request"}'
        if ans is not None:
            self.client.publish(self.t_ack.encode(), ans, qos=1)
            self._last_tx = now

    def _publish_round(self, now):
        self._where = "publish"
        seq, kind, body = self.outbox.peek()
        t0 = ticks.ticks_ms()
        self.client.publish(self._topic(kind, body), msg.with_seq(seq, body), qos=1)
        self.tx_ms += ticks.ticks_diff(ticks.ticks_ms(), t0)
        self.outbox.ack(seq)
        self._fails = 0  # (progress: the next failure backs off from the start)
        self._delivered()
        if self._drain is not None and self.outbox.pending() == 0:
            self.drain_end = ticks.ticks_ms()
            self.drains.append((self._drain[1], ticks.ticks_diff(self.drain_end,
                                                                  self._drain[0])))
            self._drain = None
        self.sent += 1
        self._last_tx = now

    def _ping_round(self, now):
        self._where = "ping"
        c = self.client
        c.ping()  # after a keepalive of silence (the broker waits 1.5 x, MQTT 3.1.2.10)
        self.pings += 1
        self._last_tx = now
        if self._ping is None:
            self._ping = (now, c.pongs)

    def _ping_check(self, now):
        p = self._ping
        if self.client.pongs != p[1]:
            self._ping = None
        elif ticks.ticks_diff(now, p[0]) >= self.keepalive_s * 500:
            # no PINGRESP in half a keepalive: a link black-holed on the way (the modem
            # still says CONNECTED) kept a dead session "up" for good, commands unread;
            # the client closes the connection (MQTT 3.1.1 3.1.2.10)
            self._where = "ping"
            raise OSError(errno.ETIMEDOUT)

    def _topic(self, kind, body):
        # a bus meter's reading goes under its own serial (uplink/concentrator.py)
        if kind == KIND_FORWARD:
            from uplink.concentrator import forward_topic

            return forward_topic(body)
        return (self.base + _KIND_TOPIC.get(kind, "reading")).encode()

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
        self._pf_seen = 1  # (its own waits are bounded by the budget, not ended by the input)
        self.setup()  # (the warning came before the task finished its start: at once)
        self.forward_events()
        seq = self.outbox.put(KIND_EVENT, msg.event(self.clock.time(), events.POWER_FAIL, 0))
        self._skip_pf = seq is not None  # (not stored: the logged one goes when it can)
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
                c.publish(self._topic(m[1], m[2]), msg.with_seq(m[0], m[2]), qos=1)
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

    async def run(self, period_ms=20, idle_ms=None):
        """The modem / MQTT task (real time). A round every ``period_ms`` while bytes are
        due (a command in flight, or a session open), at once while a session has messages
        to send; otherwise at the manager's next deadline (``Manager.wake_ms``) or the next
        edge of the status LEDs' blink (multiples of ``idle_ms``; None: the blink's half
        period, modem.manager.BLINK_MS, 500 ms), whichever comes first:
        2 rounds a second instead of 50 while the meter waits for coverage or its broker
        (backoff up to 15 min, for days). The modem's unsolicited lines wait meanwhile in
        the UART's receive buffer (1 KiB on the boards: 89 ms of 115 200 Bd at full rate);
        a round that left bytes there (more than ``Link.max_read``) or a short write
        pending (``Link.backlog``) has the next in ``period_ms``."""
        for _ in self._boot:  # the start-up, one step per turn of the event loop
            await asyncio.sleep_ms(0)
        m = self.manager
        m.open(self.broker[0], self.broker[1], self.link.now())
        if idle_ms is None:
            from modem.manager import BLINK_MS as idle_ms
        while True:
            w = self.step()
            if self.session:
                d = 0 if self.outbox.pending() else period_ms
            elif m.eng.busy or self.link.backlog:
                d = period_ms  # (an answer due; or bytes left in the UART / a short write)
            else:
                d = idle_ms - self.link.now() % idle_ms
            await asyncio.sleep_ms(w if w < d else d)

    def step(self):
        """One synchronous round: pump the modem, events, session; returns ms until the
        modem needs the next round. Without a session and with nothing new (the meter out
        of coverage or the broker unreachable: a retry every few minutes, for days) a round
        allocates nothing, frames included (test_uplink_alloc)."""
        if not self.ready:
            self.setup()
        t0 = ticks.ticks_ms()
        pf = self._pf
        self._pf_seen = 1 if pf is None else pf.value()
        self._where = "modem"
        w = self.link.service()
        now = self.link.now()
        if self.log.total != self._ev_seen:
            self.forward_events()
        if self._reconf and not self._cmds and self._range is None:
            self._reconfigure(now)  # (after the answer to the command that changed it)
        if self._trial is not None and not self.session:
            self._trial_check(now)
        if not self.session:
            self._no_session(now)
        else:
            self._in_session(now)
        self._leds(now)
        d = ticks.ticks_diff(ticks.ticks_ms(), t0)
        if d > self.stall_max_ms:
            self.stall_max_ms = d
            self.stall_where = self._where
        return w

    def _trial_check(self, now):
        if ticks.ticks_diff(now, self._trial) >= self.broker_trial_s * 1000:
            self._revert()

    def _no_session(self, now):
        m = self.manager
        if m.connected and m.gen != m.claimed:
            self._try_open(now)
        elif not m.connected and m.target is None:
            r = self._retry_at
            if r is None or ticks.ticks_diff(now, r) >= 0:
                self._retry_at = None  # (cleared: a deadline kept for 6 days would wrap)
                m.open(self.broker[0], self.broker[1], now)

    def _try_open(self, now):
        try:
            self._open_session(now)
        except Exception as e:  # refused, timed out, the link dropped
            self._end_session(e)

    def _in_session(self, now):
        with self._catch:  # (a ``with``: one exception-stack entry, the frame on the stack)
            self._round(now)

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
            if self.profile is None:  # no load profile: the registers at the quarter hour
                self.outbox.put(KIND_READING, msg.reading(self.catalogue, t))
            else:  # the load profile's new rows (its task captures them within a second)
                await c.sleep_ms(_PROFILE_LAG_MS)
                t0 = ticks.ticks_ms()
                for x in self.profile_bodies(t):
                    if x is None:  # range_scan records of the ring read: the next round
                        self._stall(t0, "schedule")
                        await asyncio.sleep_ms(0)
                        t0 = ticks.ticks_ms()
                        continue
                    body, last = x
                    if self.outbox.put(KIND_PROFILE, body) is None:
                        break  # (the power-fail warning: no room; the rows go next time)
                    self.profile_cursor = last
                    self._stall(t0, "schedule")
                    await asyncio.sleep_ms(0)  # one message per turn of the event loop
                    t0 = ticks.ticks_ms()
            self.outbox.maintain()  # (a sector erase when one is due; none in the warning)
            self._dropped()
            self._stall(t0, "schedule")

    def _stall(self, t0, where):
        d = ticks.ticks_diff(ticks.ticks_ms(), t0)
        if d > self.stall_max_ms:
            self.stall_max_ms = d
            self.stall_where = where

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


def _log_row(e):
    # a logbook entry (meter.eventstore.EventStore.logbook) as
    # ["<ISO UTC>", IDIS code, our code, "name", value, "source", flood summary 0/1]
    t, _lg, ic, code, value, src, _subj, summary = e
    return '["%s",%d,%d,"%s",%d,"%s",%d]' % (msg.iso(t), ic, code, events.NAMES.get(
        code, "event %d" % code), value, events.SRC_NAMES[src & 7], 1 if summary else 0)

