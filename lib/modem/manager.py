"""Connection manager for a 2G modem: power, SIM, registration, GPRS, PDP, one TCP link.

Sans-IO, like ``lib/iec62056/session.py``: the caller (``modem.link.Link``) passes what the UART
received with ``feed(data, now_ms)``, calls ``poll(now_ms)`` regularly, writes out what
``tx()`` returns, drives the PWRKEY pin from ``pwrkey`` (1 = key pressed) and the UART speed
from ``baud``. Times are ``ticks_ms`` values (wrapping at 2**30); use the real clock.

States (``state``, names in ``STATE_NAMES``)::

    OFF -> PROBE --AT ok--> INIT -> SIM -> REGISTER -> ATTACH -> PDP -> READY
             |no answer                                                 | open(host, port)
             v                                                          v
           PRESS -> BOOT -> SYNC --AT ok--> INIT            CONNECTING -> CONNECTED
    any failure -> BACKOFF --(delay)--> retry / CIPSHUT + PDP / re-init / POWER_DOWN
    POWER_DOWN (AT+CPOWD=1, else a PWRKEY press) -> OFF_WAIT -> PROBE

Every wait is bounded (ms, constructor keywords): PROBE ``probe_ms`` 1500 of ``AT`` tries
every ``sync_try_ms`` 300; PWRKEY held ``press_ms`` 1100 (SIM800: >= 1 s to switch on,
``off_press_ms`` 1500 to switch off); BOOT ``boot_ms`` 3000; SYNC ``sync_ms`` 10000 per baud
rate in ``bauds`` (autobaud: the module locks onto the first ``AT``), two presses at most;
SIM ``sim_ms`` 10000 polled every ``sim_poll_ms`` 1000; REGISTER ``reg_ms`` 180000 polled
every ``reg_poll_ms`` 2000 (AT+CSQ, AT+CREG?, AT+CGREG?; the first attach of a new SIM can
take minutes); each command by its own timeout (modem.sim800); BACKOFF by the schedule.

Registration (+CGREG stat, TS 27.007 10.1.20): 1 home or 5 roaming (refused when
``allow_roaming`` is False) go on; 3 denied fails at once ("denied"); 0/2/4 keep polling
until ``reg_ms``, then "no_network".

Recovery. A failure records ``reason`` and goes to BACKOFF for ``backoff_ms(failures)``:

- delay for the n-th consecutive failure: d = min(cap, base * 2**(n-1)), waited as
  d/2 + random(0..d/2) ("equal jitter": a fleet that lost the same cell does not come back
  in step). Defaults base 10 s, cap 900 s: 5-10 s, 10-20, 20-40, 40-80, 80-160, 160-320,
  320-640, then 450-900 s for every further failure. No retry ever happens sooner;
- the action after the delay is the failure's level (modem.profile L_*), escalated: the
  second consecutive failure is at least L_PDP (CIPSHUT, PDP context again), and after
  ``power_every`` (4) failures since the last power cycle the module is power-cycled
  (G6.5 ladder: CIPSHUT -> CIPSTART, then a PWRKEY power cycle). A socket failure on its own
  (L_RETRY) keeps the PDP context (no churn, G6.6): ``AT+CIPCLOSE`` then ``AT+CIPSTART``;
- a command timeout fails at the command's level (modem.profile: a query, send or read
  L_RETRY, since one lost byte on the UART can cause it), except that a lost answer to the
  signal query while connected keeps the link; the second timeout in a row means the module
  answers nothing: L_POWER;
- a PWRKEY press meant to switch the module on that brings ``NORMAL POWER DOWN`` (it was on
  but did not answer the probe, e.g. stuck waiting for send data) is pressed again, without
  counting a failure (at most twice);
- the counters reset after a connection has stayed up ``stable_ms`` (60 s), so a link that
  the peer closes right after each connect still backs off.

URCs: ``+PDP: DEACT`` -> L_PDP; ``0, CLOSED`` -> the link is lost (L_RETRY); ``RDY`` or the
command echo coming back after ATE0 -> the module rebooted (L_MODEM); ``... POWER DOWN`` ->
L_POWER; ``UNDER-VOLTAGE WARNNING`` counts in ``undervoltage`` (``OVER-`` in
``overvoltage``) and colours the modem LED for a minute; ``0, CONNECT OK`` outside
AT+CIPSTART (late, after a timeout) marks a stray link that is closed before the next open.

The TCP link: ``open(host, port)`` asks for it (the modem is brought up as needed and the
link re-opened after failures until ``release()``), ``connected`` and ``gen`` (a new number
per established link) tell the adapter whether its link is still the same one. ``write(buf)``
queues up to ``tx_cap`` (2048) bytes, sent in ``AT+CIPSEND`` chunks of up to 1460 bytes;
``read(n)`` takes received bytes from an ``rx_cap`` (2048) buffer, filled with
``AT+CIPRXGET=2`` when the module announces data, and in case an announcement was lost
(the SIM800 says ``+CIPRXGET: 1,0`` only once until its buffer is read empty) every
``rx_poll_ms`` (1000) while ``want_read`` is set (a reader is blocked) and every
``rx_idle_poll_ms`` (10000) otherwise. While connected the signal is re-read every
``csq_ms`` (60000). ``history``: the last 16 failures as (ms tick, reason, level, delay ms,
state name, consecutive count).

LEDs: ``leds(now)`` -> (signal (r, g, b), modem (r, g, b)), each 0/1, blinking at 1 Hz where
stated: signal off while unknown, else modem.signal bands (red low, amber fair, green
strong); modem: off (OFF, OFF_WAIT), blue blink (powering, sync, init, power-down), red
(SIM missing, PIN wrong) or red blink (BACKOFF, SIM not ready yet), amber blink (REGISTER,
ATTACH, PDP, CONNECTING), amber (READY, CLOSING), green (CONNECTED); magenta blink for 60 s
after an under-/over-voltage warning.

``on_event(name, detail)`` (both str) reports for the meter's log: ``connected`` (host:port),
``lost`` (reason), ``fail`` (reason:level:delay_ms), ``power_cycle``, ``reboot``,
``undervoltage``, ``overvoltage``, ``pin_rejected``.
"""

from micropython import const

from modem import signal
from modem.at import R_FINAL, R_TIMEOUT, AtEngine
from ticks import ticks_add, ticks_diff
from modem.profile import (
    L_MODEM,
    L_PDP,
    L_POWER,
    L_RETRY,
    REG_DENIED,
    REG_HOME,
    REG_ROAMING,
    U_BOOT,
    U_CLOSED,
    U_CONNECT_OK,
    U_DATA,
    U_OVERVOLT,
    U_PDP_DEACT,
    U_POWER_DOWN,
    U_UNDERVOLT,
    parse_reg,
)

BLINK_MS = const(500)  # half period of the status LEDs' blink (led_update)

OFF = const(0)
PROBE = const(1)
PRESS = const(2)
BOOT = const(3)
SYNC = const(4)
INIT = const(5)
SIM = const(6)
REGISTER = const(7)
ATTACH = const(8)
PDP = const(9)
READY = const(10)
CONNECTING = const(11)
CONNECTED = const(12)
CLOSING = const(13)
BACKOFF = const(14)
POWER_DOWN = const(15)
OFF_WAIT = const(16)

STATE_NAMES = ("OFF", "PROBE", "PRESS", "BOOT", "SYNC", "INIT", "SIM", "REGISTER", "ATTACH",
               "PDP", "READY", "CONNECTING", "CONNECTED", "CLOSING", "BACKOFF", "POWER_DOWN",
               "OFF_WAIT")

_HISTORY = const(16)
_WARN_MS = const(60000)

_BLUE = (0, 0, 1)
_RED = (1, 0, 0)
_AMBER = (1, 1, 0)
_GREEN = (0, 1, 0)
_MAGENTA = (1, 0, 1)
_DARK = (0, 0, 0)


def _text(line):
    # a modem line as str for the event log: printable ASCII only (never raises)
    return "".join(chr(b) if 0x20 <= b < 0x7F else "?" for b in line[:40])


def _sooner(t, now, best):
    # min(best, ms from now to tick t); t None: best
    if t is None:
        return best
    d = ticks_diff(t, now)
    return d if d < best else best


def _default_rand(n):
    import random

    return random.getrandbits(30) % n if n > 0 else 0


class Manager:
    """One modem, one TCP link. ``profile``: modem.sim800.Sim800() or modem.m95.M95().
    ``apn``/``user``/``password``: bytes or str. ``pin``: SIM PIN (str) or None; it is sent
    at most once per Manager (a wrong PIN is never retried: three would lock the SIM).
    ``rand(n)`` -> int in [0, n) for the jitter (inject a seeded one for tests)."""

    def __init__(self, profile, apn=b"internet", user=b"", password=b"", pin=None,
                 allow_roaming=True, bauds=(115200,), rand=None, on_event=None, **cfg):
        self.profile = profile
        self.apn = apn
        self.user = user
        self.password = password
        self.pin = pin
        self.allow_roaming = allow_roaming
        self.bauds = bauds
        self._rand = rand or _default_rand
        self.on_event = on_event
        c = self.cfg = {
            "probe_ms": 1500, "sync_try_ms": 300, "press_ms": 1100, "off_press_ms": 1500,
            "boot_ms": 3000, "sync_ms": 10000, "sim_ms": 10000, "sim_poll_ms": 1000,
            "reg_ms": 180000, "reg_poll_ms": 2000, "csq_ms": 60000, "rx_poll_ms": 1000,
            "rx_idle_poll_ms": 10000,
            "backoff_base_ms": 10000, "backoff_cap_ms": 900000, "stable_ms": 60000,
            "power_every": 4, "off_wait_ms": 2000, "tx_cap": 2048, "rx_cap": 2048,
            "max_line": 256,
        }
        for k in cfg:
            if k not in c:
                raise ValueError("unknown setting " + k)
            c[k] = cfg[k]
        self.eng = AtEngine(urc=profile.urc_kind, on_urc=self._on_urc, on_done=self._on_done,
                            max_line=c["max_line"], max_data=profile.max_read,
                            one_result=True)  # (a result is done with in _step)
        self._tx = bytearray(c["tx_cap"])
        self._txn = 0
        self._rx = bytearray(c["rx_cap"])
        self._rxn = 0
        self.state = OFF
        self.pwrkey = 0
        self.baud = bauds[0]
        self._baud_i = 0
        self.target = None
        self._want = False
        self.gen = 0
        self.want_read = False
        self.reason = None
        self.level = 0
        self.failures = 0
        self.since_power = 0
        self.power_cycles = 0
        self.connects = 0
        self.history = []
        self.rssi = 99
        self.ber = 99
        self.creg = -1
        self.cgreg = -1
        self.ip = None
        self.undervoltage = 0
        self.overvoltage = 0
        self.stray_connects = 0
        self.reboots = 0
        self.discarded = 0
        self._warn_at = None
        self._pin_sent = False
        self._pin_rejected = False
        self._modem_off = False
        self._close_first = False
        self._re_pdp = False  # set_apn: the PDP context again at READY
        self._rx_flag = False
        self._epoch = 0
        self._cmd_epoch = -1
        self._res = None
        self._queue = ()  # the commands of a sequence state; the next is _queue[_qi]
        self._qi = 0
        self._deadline = 0
        self._next = 0
        self._presses = 0
        self._resume = OFF
        self._after_press = BOOT
        self._connected_at = 0
        self._tmo_row = 0
        self._csq_next = 0
        self.claimed = -1
        self._now = 0
        self._entered = 0
        self.led_sig = self.led_mod = _DARK  # the status LEDs' colours (led_update)

    # -- caller API --------------------------------------------------------------------------

    @property
    def state_name(self):
        return STATE_NAMES[self.state]

    @property
    def connected(self):
        return self.state == CONNECTED

    def start(self, now):
        """Bring the modem up to READY (PDP context up) and keep it there."""
        self._want = True
        if self.state == OFF:
            self._goto(PROBE, now)

    def stop(self, now):
        """Close the link and switch the module off (``AT+CPOWD=1``)."""
        self._want = False
        self.target = None
        if self.state != OFF:
            self._goto(POWER_DOWN, now)

    def open(self, host, port, now):
        """Ask for a TCP link to host:port (kept up until ``release``)."""
        t = (host, int(port))
        if self.target != t and (self.state == CONNECTED or self.state == CONNECTING):
            self._goto(CLOSING, now)  # (a link to the old target, up or coming up, goes)
        self.target = t
        self.start(now)

    def set_apn(self, apn, now):
        """Use ``apn`` (bytes or str) for the PDP context from now on (a settings change):
        a context up or coming up with the old one is taken down cleanly and brought up again
        (the TCP link closed after its queued bytes, then ``AT+CIPSHUT`` and the bring-up with
        the new ``AT+CSTT``; the link re-opened to ``target``): no power cycle, no failure
        counted, no backoff. Before the PDP state it simply applies there. True if it
        changed."""
        if apn == self.apn:
            return False
        self.apn = apn
        st = self.state
        if st == CONNECTED:
            self._re_pdp = True
            self._goto(CLOSING, now)
        elif st == PDP or st == CONNECTING:
            self._goto(PDP, now)
        elif st == READY or st == CLOSING or st == BACKOFF:
            self._re_pdp = True  # (READY then runs the bring-up again)
        return True

    def release(self, now):
        """Close the TCP link (the PDP context stays up)."""
        self.target = None
        if self.state == CONNECTED or self.state == CONNECTING:
            self._goto(CLOSING, now)

    def write(self, buf):
        """Queue bytes for the link; returns how many fit (0 when not connected)."""
        if self.state != CONNECTED:
            return 0
        room = len(self._tx) - self._txn
        k = len(buf) if len(buf) < room else room
        if k > 0:
            self._tx[self._txn:self._txn + k] = buf[:k]
            self._txn += k
        return k

    def read(self, n):
        """Up to ``n`` received bytes (b"" when none)."""
        k = n if n < self._rxn else self._rxn
        if k <= 0:
            return b""
        out = bytes(self._rx[:k])
        rest = self._rxn - k
        if rest:
            self._rx[:rest] = self._rx[k:self._rxn]
        self._rxn = rest
        return out

    def rx_available(self):
        return self._rxn

    def tx_pending(self):
        return self._txn

    def tx_room(self):
        return len(self._tx) - self._txn

    def feed(self, data, now):
        """Bytes from the modem UART."""
        self._now = now
        self.eng.feed(data, now)
        self._step(now)

    def poll(self, now):
        """Timers; call at least every few hundred ms (or at ``wake_ms``)."""
        self._now = now
        self.eng.poll(now)
        self._step(now)

    def tx(self):
        """Next bytes to write to the modem UART, or None."""
        return self.eng.tx()

    def wake_ms(self, now):
        """ms until the next timer needs ``poll`` (0..1000). Allocates nothing (no tuple, a
        frame on the C stack: it runs at every round of the uplink task)."""
        best = _sooner(self.eng.deadline(), now, 1000)
        if self._timed():
            best = _sooner(self._deadline, now, best)
        best = _sooner(self._next_due(), now, best)
        return best if best > 0 else 0

    def _next_due(self):
        # the next command of a polling state goes out only when the engine is free: while
        # a command is in flight its deadline (or its answer) is the next thing to wait for
        # (a ``_next`` already passed would otherwise say 0 for the whole command: a caller
        # pumping at wake_ms spun through every AT probe, docs/BENCHMARKS.md)
        if not self._next_used() or self.eng.busy:
            return None
        if self.state == CONNECTED and not self.want_read and not self._rx_flag \
                and not self._txn:
            # idle link: the next receive poll is the idle one (a sooner wake would find
            # nothing to do, and a caller pumping at wake_ms would spin)
            c = self.cfg
            return ticks_add(self._next, c["rx_idle_poll_ms"] - c["rx_poll_ms"])
        return self._next

    def backoff_ms(self, n):
        """Delay before the retry after the n-th consecutive failure (see module doc)."""
        d = self.cfg["backoff_base_ms"]
        cap = self.cfg["backoff_cap_ms"]
        for _ in range(n - 1):
            d *= 2
            if d >= cap:
                break
        if d > cap:
            d = cap
        half = d // 2
        return half + self._rand(d - half + 1)

    def leds(self, now):
        """(signal rgb, modem rgb): tuples of 0/1 for the two status LEDs."""
        self.led_update(now)
        return self.led_sig, self.led_mod

    def led_update(self, now):
        """Set ``led_sig`` / ``led_mod`` (the tuples :meth:`leds` returns) without
        allocating (the uplink task's round calls it 50 times a second)."""
        blink = ((now // BLINK_MS) & 1) == 0
        st = self.state
        if st >= REGISTER and st <= CLOSING or (st == BACKOFF and self._resume >= REGISTER):
            sig = signal.BAND_RGB[signal.csq_band(self.rssi)]
        else:
            sig = _DARK
        self.led_sig = sig
        if self._warn_at is not None and ticks_diff(now, self._warn_at) >= _WARN_MS:
            self._warn_at = None  # (over for good: 2**29 ms on, ticks_diff turns negative)
        if self._warn_at is not None:
            self.led_mod = _MAGENTA if blink else _DARK
        elif st == OFF or st == OFF_WAIT:
            self.led_mod = _DARK
        elif st == CONNECTED:
            self.led_mod = _GREEN
        elif st == READY or st == CLOSING:
            self.led_mod = _AMBER
        elif st >= REGISTER and st <= CONNECTING:
            self.led_mod = _AMBER if blink else _DARK
        elif st == BACKOFF and self.reason in ("sim", "sim_pin", "pin"):
            self.led_mod = _RED
        elif st == BACKOFF or st == SIM:
            self.led_mod = _RED if blink else _DARK
        else:
            self.led_mod = _BLUE if blink else _DARK

    @property
    def band(self):
        return signal.csq_band(self.rssi)

    @property
    def dbm(self):
        return signal.csq_dbm(self.rssi)

    # -- state machine -----------------------------------------------------------------------

    def _event(self, name, detail=""):
        if self.on_event is not None:
            self.on_event(name, detail)

    def _timed(self):
        return self.state in (PROBE, PRESS, BOOT, SYNC, SIM, REGISTER, BACKOFF, OFF_WAIT)

    def _next_used(self):
        return self.state in (PROBE, SYNC, SIM, REGISTER, READY, CONNECTED)

    def _goto(self, st, now):
        self.state = st
        self._epoch += 1
        self._queue = ()
        self._qi = 0
        self._res = None
        self._entered = now
        self._next = now
        if st == PROBE:
            self._deadline = ticks_add(now, self.cfg["probe_ms"])
        elif st == PRESS:
            self.pwrkey = 1
            self._presses += 1
            ms = self.cfg["press_ms"] if self._after_press == BOOT else self.cfg["off_press_ms"]
            self._deadline = ticks_add(now, ms)
        elif st == BOOT:
            self.pwrkey = 0
            self._deadline = ticks_add(now, self.cfg["boot_ms"])
        elif st == SYNC:
            self._deadline = ticks_add(now, self.cfg["sync_ms"])
        elif st == INIT:
            self._queue = self.profile.init_cmds()
        elif st == SIM:
            self._deadline = ticks_add(now, self.cfg["sim_ms"])
        elif st == REGISTER:
            self._deadline = ticks_add(now, self.cfg["reg_ms"])
        elif st == PDP:
            self._re_pdp = False
            self._queue = self.profile.pdp_cmds(self.apn, self.user, self.password)
        elif st == OFF_WAIT:
            self.pwrkey = 0
            self._deadline = ticks_add(now, self.cfg["off_wait_ms"])
        if st != CONNECTED:
            self.want_read = False

    def _submit(self, cmd, now):
        if self.eng.submit(cmd, now):
            self._cmd_epoch = self._epoch
            return True
        return False

    def _on_done(self, res):
        if self._cmd_epoch != self._epoch:
            self.discarded += 1  # the answer to a command of a state we have left
            return
        self._cmd_epoch = -1
        self._res = res

    def _on_urc(self, kind, line):
        now = self._now
        st = self.state
        if kind == U_DATA:
            self._rx_flag = True
        elif kind == U_CLOSED:
            if st == CONNECTED:
                self._fail("closed", L_RETRY, now)
            elif st == CLOSING:
                self._txn = 0
                self._goto(READY, now)
        elif kind == U_CONNECT_OK:
            self.stray_connects += 1
            self._close_first = True
        elif kind == U_PDP_DEACT:
            if st >= PDP and st <= CLOSING:
                self._fail("pdp_deact", L_PDP, now)
        elif kind == U_BOOT:
            if st >= SIM and st <= CLOSING:
                self.reboots += 1
                self._event("reboot", "RDY")
                self._fail("reboot", L_MODEM, now)
        elif kind == U_POWER_DOWN:
            self._modem_off = True
            if st == PRESS or st == BOOT:
                if self._after_press == BOOT:
                    # the "on" press found the module on (it did not answer the probe, e.g.
                    # stuck waiting for send data) and switched it off: press again
                    if self._presses >= 2:
                        self._fail("power_down", L_POWER, now)
                    else:
                        self._goto(OFF_WAIT, now)
            elif st != OFF and st != POWER_DOWN and st != OFF_WAIT and st != BACKOFF:
                self._fail("power_down", L_POWER, now)
        elif kind == U_UNDERVOLT or kind == U_OVERVOLT:
            if kind == U_UNDERVOLT:
                self.undervoltage += 1
                self._event("undervoltage", _text(line))
            else:
                self.overvoltage += 1
                self._event("overvoltage", _text(line))
            self._warn_at = now

    def _fail(self, reason, level, now):
        resume = self.state
        if resume == BACKOFF:
            return
        was_connected = resume == CONNECTED
        self.failures += 1
        self.since_power += 1
        if self.failures >= 2 and level < L_PDP:
            level = L_PDP
        if self.since_power >= self.cfg["power_every"]:
            level = L_POWER
        delay = self.backoff_ms(self.failures)
        self.reason = reason
        self.level = level
        self._resume = resume
        if len(self.history) >= _HISTORY:
            self.history.pop(0)
        self.history.append((now, reason, level, delay, STATE_NAMES[resume], self.failures))
        if was_connected:
            self._event("lost", reason)
        self._event("fail", "%s:%d:%d" % (reason, level, delay))
        self._goto(BACKOFF, now)
        self._deadline = ticks_add(now, delay)

    def _after_backoff(self, now):
        lvl = self.level
        r = self._resume
        if lvl == L_POWER or r <= INIT or r >= POWER_DOWN:
            self._goto(POWER_DOWN, now)
        elif lvl == L_MODEM:
            self._presses = 0
            self._goto(SYNC, now)
        elif lvl == L_PDP or r == PDP:
            self._goto(REGISTER, now)
        elif r >= READY:
            self._close_first = True
            self._goto(READY, now)
        else:
            self._goto(r, now)  # SIM, REGISTER or ATTACH again

    def _step(self, now):
        for _ in range(8):
            st = self.state
            res = self._res
            self._res = None
            if res is not None:
                self._result(st, res, now)
                self.eng.taken(res)
            if self.state == st:
                self._tick(st, now)
            if self.state == st and self._res is None:
                break
        if self.eng.echo_seen:
            self.eng.echo_seen = False
            if self.state > INIT and self.state <= CLOSING:
                self.reboots += 1
                self._event("reboot", "echo")
                self._fail("reboot", L_MODEM, now)

    def _queued(self):
        return self._qi < len(self._queue)

    def _run_queue(self, now):
        # next command of a sequence state; True when the queue is empty
        if self._qi >= len(self._queue):
            return True
        if not self.eng.busy and self._submit(self._queue[self._qi], now):
            self._qi += 1
        return False

    def _tick(self, st, now):
        # one dispatch with a small frame (each state's work in a helper of its own: the
        # whole ladder in one function took its frame from the heap at every round, 176 B
        # on the unix port, also in BACKOFF where the meter waits for days without network)
        if st == BACKOFF:
            if ticks_diff(now, self._deadline) >= 0:
                self._after_backoff(now)
        elif st == CONNECTED:
            self._connected_tick(now, self.eng.busy)
        elif st == PROBE or st == SYNC:
            self._tick_sync(st, now)
        elif st == REGISTER:
            self._tick_register(now)
        elif st == SIM:
            self._tick_sim(now)
        elif st <= BOOT or st == OFF_WAIT:
            self._tick_power(st, now)
        else:
            self._tick_link(st, now)

    def _tick_power(self, st, now):
        # OFF, PRESS, BOOT, OFF_WAIT: the key and the waits around it
        if st == OFF:
            if self._want:
                self._presses = 0
                self._goto(PROBE, now)
        elif ticks_diff(now, self._deadline) < 0:
            return
        elif st == PRESS:
            self.pwrkey = 0
            if self._after_press == BOOT:
                self._modem_off = False
                self._goto(BOOT, now)
            else:
                self._goto(OFF_WAIT, now)
        elif st == BOOT:
            self._goto(SYNC, now)
        elif st == OFF_WAIT:
            self._goto(PROBE if self._want else OFF, now)

    def _tick_sync(self, st, now):
        # PROBE, SYNC: ``AT`` every sync_try_ms until the deadline, then the next step
        busy = self.eng.busy
        if ticks_diff(now, self._deadline) >= 0 and not busy:
            if st == PROBE:
                self._after_press = BOOT
                self._goto(PRESS, now)
            elif self._baud_i + 1 < len(self.bauds):
                self._baud_i += 1
                self.baud = self.bauds[self._baud_i]
                self._goto(SYNC, now)
            elif self._presses < 2:
                self._baud_i = 0
                self.baud = self.bauds[0]
                self._after_press = BOOT
                self._goto(PRESS, now)
            else:
                self._presses = 0
                self._fail("no_response", L_POWER, now)
        elif not busy and ticks_diff(now, self._next) >= 0:
            ms = self.cfg["sync_try_ms"]
            self._next = ticks_add(now, ms)
            self._submit(self.profile.sync(ms), now)

    def _tick_sim(self, now):
        if not self.eng.busy and ticks_diff(now, self._next) >= 0:
            if ticks_diff(now, self._deadline) >= 0:
                self._fail("sim", L_POWER, now)
                return
            self._next = ticks_add(now, self.cfg["sim_poll_ms"])
            self._submit(self.profile.sim_query(), now)

    def _tick_register(self, now):
        if self._queued():
            self._run_queue(now)
        elif not self.eng.busy and ticks_diff(now, self._next) >= 0:
            if ticks_diff(now, self._deadline) >= 0:
                self._fail("no_network", L_RETRY, now)
                return
            self._next = ticks_add(now, self.cfg["reg_poll_ms"])
            self._queue = self.profile.reg_polls()  # (made once: no allocation a poll)
            self._qi = 0
            self._run_queue(now)

    def _tick_link(self, st, now):
        # INIT, PDP, ATTACH, READY, CONNECTING, CLOSING, POWER_DOWN
        if st == INIT or st == PDP:
            self._run_queue(now)
            return
        busy = self.eng.busy
        if st == READY:
            if not self._want and self.target is None:
                self._goto(POWER_DOWN, now)
            elif self._re_pdp:  # a new APN (set_apn): the context again, no failure
                self._goto(PDP, now)
            elif self.target is not None:
                self._goto(CONNECTING, now)
            elif not busy and ticks_diff(now, self._next) >= 0:
                self._next = ticks_add(now, self.cfg["csq_ms"])
                self._submit(self.profile.csq(), now)
        elif st == CONNECTING and self.target is None:
            self._goto(READY, now)
        elif busy or self._cmd_epoch == self._epoch:
            return  # (ATTACH, CONNECTING, CLOSING, POWER_DOWN: one command at a time)
        elif st == ATTACH:
            if not self._queued():
                self._submit(self.profile.attach_query(), now)
        elif st == CONNECTING:
            if self._close_first:
                self._submit(self.profile.close(), now)
            else:
                self._submit(self.profile.open(self.target[0], self.target[1]), now)
        elif st == CLOSING:
            self._closing_tick(now)
        elif st == POWER_DOWN:
            if self._modem_off:
                self._power_cycled(now)
                self._goto(OFF_WAIT, now)
            else:
                self._submit(self.profile.power_off(), now)

    def _closing_tick(self, now):
        if self._txn:  # what the socket wrote before close() still goes out
            p = self.profile
            k = self._txn if self._txn < p.max_send else p.max_send
            self._submit(p.send(bytes(self._tx[:k])), now)
        else:
            self._submit(self.profile.close(), now)

    def _connected_tick(self, now, busy):
        # (split: each frame on the C stack, no heap at an idle round of a session)
        if (self.failures or self.since_power) and ticks_diff(now, self._connected_at) >= \
                self.cfg["stable_ms"]:
            self.failures = 0
            self.since_power = 0
        if busy or self._cmd_epoch == self._epoch:
            return
        if self._txn:
            self._send_next(now)
        elif not self._read_due(now) and ticks_diff(now, self._csq_next) >= 0:
            self._csq_next = ticks_add(now, self.cfg["csq_ms"])
            self._submit(self.profile.csq(), now)

    def _send_next(self, now):
        p = self.profile
        k = self._txn if self._txn < p.max_send else p.max_send
        self._submit(p.send(bytes(self._tx[:k])), now)

    def _read_due(self, now):
        # a receive poll when due (announced data, a blocked reader, the idle poll): True
        if len(self._rx) <= self._rxn:
            return False
        due = ticks_diff(now, self._next)
        if self._rx_flag or (self.want_read and due >= 0) or due >= self._idle_gap():
            self._read_now(now)
            return True
        return False

    def _idle_gap(self):
        c = self.cfg
        return c["rx_idle_poll_ms"] - c["rx_poll_ms"]

    def _read_now(self, now):
        self._next = ticks_add(now, self.cfg["rx_poll_ms"])
        room = len(self._rx) - self._rxn
        p = self.profile
        self._submit(p.read(room if room < p.max_read else p.max_read), now)

    def _power_cycled(self, now):
        self.power_cycles += 1
        self.since_power = 0
        self._modem_off = True
        self._presses = 0
        self._baud_i = 0
        self.baud = self.bauds[0]
        self._event("power_cycle", self.reason or "")

    def _csq_result(self, res):
        for ln in res.lines:
            v = signal.parse_csq(ln)
            if v is not None:
                self.rssi, self.ber = v

    def _result(self, st, res, now):
        # (a dispatch with a small frame: the whole table in one function took its frame
        # from the heap at every answer)
        s = res.status
        if s == R_TIMEOUT and st != PROBE and st != SYNC and st != POWER_DOWN:
            self._timed_out(st, res, now)
            return
        if s != R_TIMEOUT:
            self._tmo_row = 0
        if st <= SIM:
            self._result_up(st, res, now)
        elif st <= PDP:
            self._result_net(st, res, now)
        else:
            self._result_link(st, res, now)

    def _timed_out(self, st, res, now):
        tag = res.cmd.tag
        self._tmo_row += 1
        if self._tmo_row >= 2:
            self._fail("timeout:" + str(tag), L_POWER, now)  # it answers nothing
        elif tag == "csq" and st == CONNECTED:
            pass  # one lost answer to a signal query does not break the link
        else:
            self._fail("timeout:" + str(tag), res.cmd.level, now)

    def _result_up(self, st, res, now):
        # PROBE, SYNC, INIT, SIM
        p = self.profile
        tag = res.cmd.tag
        if st == PROBE or st == SYNC:
            if res.ok:
                self._presses = 0
                self._goto(INIT, now)
        elif st == INIT:
            if not res.ok:
                self._fail("init", L_POWER, now)
            elif not self._queued():
                self.eng.echo_seen = False
                self._modem_off = False
                self._goto(SIM, now)
        elif st == SIM:
            if tag == "pin":
                if not res.ok:
                    self._pin_rejected = True
                    self._event("pin_rejected", "")
                    self._fail("pin", L_POWER, now)
                else:
                    self._next = ticks_add(now, 1000)
            elif p.sim_ready(res):
                self._goto(REGISTER, now)
            elif p.sim_needs_pin(res):
                if self.pin is not None and not self._pin_sent and not self._pin_rejected:
                    self._pin_sent = True
                    self._submit(p.pin_cmd(self.pin), now)
                else:
                    self._fail("sim_pin", L_POWER, now)

    def _result_net(self, st, res, now):
        # REGISTER, ATTACH, PDP
        p = self.profile
        tag = res.cmd.tag
        if st == REGISTER:
            if tag == "csq":
                self._csq_result(res)
            elif tag == "creg" or tag == "cgreg":
                self._reg_result(tag, res, now)
        elif st == ATTACH:
            if tag == "cgatt?":
                if res.ok and p.attached(res):
                    self._goto(PDP, now)
                elif res.ok:
                    self._submit(p.attach(), now)
                else:
                    self._fail("attach", L_PDP, now)
            elif res.ok:
                self._goto(PDP, now)
            else:
                self._fail("attach", L_PDP, now)
        elif st == PDP:
            if not res.ok:
                self._fail("pdp", L_PDP, now)
            elif not self._queued():
                if p.pdp_ok(res):
                    self.ip = res.final
                    self._goto(READY, now)
                else:
                    self._fail("pdp", L_PDP, now)

    def _reg_result(self, tag, res, now):
        ln = res.lines
        v = parse_reg(ln[-1]) if ln else -1  # (the last +CREG line, if several)
        if tag == "creg":
            self.creg = v
        else:
            self.cgreg = v
            self._registration(now)

    def _result_link(self, st, res, now):
        # READY, CONNECTING, CONNECTED, CLOSING, POWER_DOWN
        tag = res.cmd.tag
        if st == READY:
            if tag == "csq":
                self._csq_result(res)
        elif st == CONNECTING:
            if tag == "close":
                self._close_first = False  # ERROR / CME: it was not open (G6.7)
            elif tag == "open":
                if res.status == R_FINAL:
                    self._connected(now)
                else:
                    self._close_first = True
                    self._fail("connect", L_RETRY, now)
        elif st == CONNECTED:
            if tag == "send":
                if not self._sent(res):
                    self._fail("send", L_RETRY, now)
            elif tag == "read":
                self._read_result(res, now)
            elif tag == "csq":
                self._csq_result(res)
        elif st == CLOSING:
            if tag == "send":
                self._sent(res)
            else:
                self._goto(READY, now)  # CLOSE OK, or ERROR: it was not open (G6.7)
        elif st == POWER_DOWN:
            self._power_cycled(now)
            if res.status == R_FINAL:
                self._goto(OFF_WAIT, now)
            else:  # no answer: the key switches it off (or on; PROBE finds out)
                self._after_press = OFF_WAIT
                self._goto(PRESS, now)

    def _read_result(self, res, now):
        r = self.profile.read_result(res)
        if r is None:
            self._fail("read", L_RETRY, now)
            return
        data, more = r
        k = len(data)
        if k:
            self._rx[self._rxn:self._rxn + k] = data
            self._rxn += k
        self._rx_flag = more and k > 0  # "more" with nothing read: poll instead

    def _sent(self, res):
        # drop the bytes a send delivered; on failure drop them all (the link is gone)
        if not self.profile.sent(res):
            self._txn = 0
            return False
        k = res.cmd.arg
        rest = self._txn - k
        if rest > 0:
            self._tx[:rest] = self._tx[k:self._txn]
        self._txn = rest if rest > 0 else 0
        return True

    def _registration(self, now):
        st = self.cgreg
        if st == REG_HOME or (st == REG_ROAMING and self.allow_roaming):
            self._goto(ATTACH, now)
        elif st == REG_ROAMING:
            self._fail("roaming", L_RETRY, now)
        elif st == REG_DENIED or self.creg == REG_DENIED:
            self._fail("denied", L_RETRY, now)

    def _connected(self, now):
        self.gen += 1
        self.connects += 1
        self._txn = 0
        self._rxn = 0
        self._rx_flag = False
        self._close_first = False
        self._connected_at = now
        self._csq_next = ticks_add(now, self.cfg["csq_ms"])
        self._goto(CONNECTED, now)
        self._event("connected", "%s:%d" % (self.target[0], self.target[1]))
