# The meter's settings: validated setters, persistence, change notification.
"""Settings: the one owner of the configuration (factory values: firmware/meter/defaults.py).

Nothing else writes the configuration. Readers call :meth:`Settings.get`; writers call
:meth:`Settings.set` (user settings) or :meth:`Settings.set_sealed` (the metrological
parameters ``meter_constant`` and ``calibration``, kept apart: refused unless the seal is
open); both validate first (ValueError naming the problem, nothing changed), change the RAM
copy at once, tell every subscriber (:meth:`subscribe`: ``fn(key)``, e.g. the display
rebuilds a list, the test output takes a new meter constant) and schedule the flash write.
The protocol that asked (firmware/meter/catalogue.py) logs the change with its address.

Persistence (lib/flashstore/config.py, the ``config`` partition): the record is the JSON of
the whole dict (user settings, ``calibration``, and ``fallback``, the latched F.F.0 bits),
two A/B copies. Boot (:meth:`load`): blank -> defaults (saved by :meth:`settle` once the
register journal shows whether the meter was used before: blank after use is a fallback);
anything but a good newest copy is a fallback, never silent: logged persistently
(CONFIG_FALLBACK, SECURITY_FALLBACK, CONFIG_DEFAULTS), latched in F.F.0 (ERR_CONFIG,
ERR_SECURITY; kept in ``fallback`` so a later save and restart do not clear them); security
parameters never fall back silently to weaker values: the password is then not trusted (the
factory password needs the open seal, firmware/ports/iec.py) and the lockouts keep the
stricter of the copy's and the factory values. E2 C.91.0 (:meth:`clear_alarm`) clears
ERR_CONFIG and writes both copies again; a new password (:meth:`password_set`) clears
ERR_SECURITY.

Wear budget (lib/flashstore/config.SaveBudget): a change is written ``CONFIG_DELAY_S`` after
the last change, or ``CONFIG_MAX_DELAY_S`` after the first unsaved one while changes keep
coming; at most ``CONFIG_BURST`` writes at once and one per ``CONFIG_REFILL_S`` after that,
plus one at an orderly shutdown (:meth:`tick` with ``force``). 2 sectors of 4 KiB, one erased
per write: 24 writes a day = 12 erases per sector a day = 22.8 years to 100 000 cycles
(docs/BENCHMARKS.md). A held-back write is logged once (CONFIG_DEFERRED). The security and
metrological parameters (password, meter constant) are written before their change is
acknowledged (:meth:`save_now`, refused while the budget is spent: :meth:`save_allowed`),
so that a power cut cannot bring the old value back. Nothing is written during a power-fail
warning (a save erases a sector; firmware/meter/supply.py).

Stored values are checked at boot (:meth:`check`, in the order given): a value a setter
would refuse is replaced by its default in RAM and logged (CONFIG_DEFAULTS with the reason).
"""

import events
from meter import defaults, status

METROLOGICAL = ("meter_constant", "calibration")

# user settings a setter may change: key -> (lo, hi) for ints, a tuple of str for choices
_INTS = {"scroll_ms": (1000, 255000), "test_mode_minutes": (1, 255),
         "energy_decimals": (0, 3), "meter_constant": (1, 100000)}
_CHOICES = {"test_led": ("kWh", "kvarh")}
_LISTS = ("readout_list", "display_list", "alt_list")


def _json_len(v):
    # the length of v's compact JSON (flashstore/config.py separators), piece by piece
    import json

    if isinstance(v, dict):
        n = 1
        for k, x in v.items():
            n += _json_len(k) + 2 + _json_len(x)
        return n + (not v)
    if isinstance(v, (list, tuple)):
        n = 1
        for x in v:
            n += _json_len(x) + 1
        return n + (not v)
    return len(json.dumps(v).encode())  # (bytes: MicroPython writes UTF-8 unescaped)


class SealClosed(ValueError):
    """A metrological parameter was to change while the seal is closed."""


class Settings:
    """``log``: lib.events.EventLog; ``part``: the ``config`` partition (flashstore.flash
    interface) or None (settings in RAM only); ``cfg``: a dict to start from instead of the
    stored record (tests; then nothing is loaded from flash)."""

    CONFIG_DELAY_S = 2
    CONFIG_MAX_DELAY_S = 60
    CONFIG_BURST = 4
    CONFIG_REFILL_S = 3600

    def __init__(self, log, part=None, cfg=None, supply=None):
        self._log = log
        self._supply = supply
        self._subs = []
        self._validators = {}
        self.store = None
        self.status = None  # lib/flashstore/config STATUS_* of the load, None without one
        self.errors = 0  # F.F.0 bits latched by a fallback (ERR_CONFIG, ERR_SECURITY)
        self.password_trusted = True
        self._dirty = False
        self._changed_s = 0
        self._first_s = 0
        self._fresh = False
        self._twice = False
        self._deferred = False
        self._budget = None  # flashstore.config.SaveBudget, with a store
        self._now_s = 0
        self.now_s = None  # callable() -> monotonic s (the housekeeping task's uptime)
        self.on_change = None  # callable(): a change to write (wakes the housekeeping task)
        if cfg is not None:
            self._d = cfg
        elif part is not None:
            self._d = self._load(part)
        else:
            self._d = defaults.config()

    # -- reading ---------------------------------------------------------------------------

    def get(self, key, default=None):
        """The value of ``key`` (default: ``default``)."""
        return self._d.get(key, default)

    def __getitem__(self, key):
        return self._d[key]

    @property
    def calibration(self):
        """The calibration overrides (dict of lib.ade7953.Calibration keyword arguments)."""
        return self._d.get("calibration", {})

    def subscribe(self, fn):
        """Call ``fn(key)`` after every change of a setting."""
        self._subs.append(fn)

    def validator(self, key, fn):
        """``fn(value)`` raises ValueError when ``value`` is no valid ``key`` (list keys:
        the catalogue knows which codes exist)."""
        self._validators[key] = fn

    # -- writing ---------------------------------------------------------------------------

    def check_value(self, key, value):
        """Raise ValueError (naming the problem) unless ``value`` is valid for ``key``."""
        if key in _INTS:
            lo, hi = _INTS[key]
            if not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError("%s %r not in %d..%d" % (key, value, lo, hi))
        elif key in _CHOICES:
            if value not in _CHOICES[key]:
                raise ValueError("%s %r not one of %s" % (key, value, "/".join(_CHOICES[key])))
        elif key == "password":
            if not isinstance(value, str) or len(value) != 8 or not value.isdigit():
                raise ValueError("password must be 8 digits")
        elif key in _LISTS:
            fn = self._validators.get(key)
            if fn is not None:
                fn(value)
        elif key in ("uplink_broker", "uplink_apn", "uplink_key", "bus_bindings"):
            from meter.uplinkcfg import check  # (only a meter with an uplink loads it)

            check(key, value)
        elif key == "tou_program":  # the tariff plan written over IEC (meter/touprog.py)
            if value is not None and not isinstance(value, dict):
                raise ValueError("tou_program must be an object")
        elif key != "calibration":
            raise ValueError("%s is not a writable setting" % key)

    def set(self, key, value):
        """Change the user setting ``key`` (validated: ValueError, nothing changed); the
        metrological ones go through :meth:`set_sealed`."""
        if key in METROLOGICAL:
            raise SealClosed("%s is metrological: set_sealed" % key)
        self.check_value(key, value)
        self._put(key, value)

    def set_sealed(self, key, value, seal_open):
        """Change the metrological parameter ``key`` (``meter_constant``: imp/kWh 1..100000;
        ``calibration``: dict of Calibration overrides, in effect after a restart) only when
        ``seal_open``; SealClosed (a ValueError) otherwise."""
        if key not in METROLOGICAL:
            raise ValueError("%s is no metrological parameter" % key)
        if not seal_open:
            raise SealClosed("seal closed")
        self.check_value(key, value)
        self._put(key, value)

    def _put(self, key, value):
        if isinstance(value, tuple):
            value = list(value)
        self._d[key] = value
        self.changed()
        for fn in self._subs:
            fn(key)

    def fits(self, key, value, reserve=0):
        """True if the stored record (lib/flashstore/config.py: the JSON of every setting)
        would still fit one copy of the partition, ``reserve`` bytes to spare, with ``key``
        set to ``value`` (always without a partition). For values a bus meter's answer can
        grow (uplink/concentrator.py): a record over its copy's capacity is never written."""
        store = self.store
        if store is None:
            return True
        n = 1  # "{" ... "}", "," between members: counted without making the record's text
        for k, v in self._d.items():  # (4 KB in one piece: a small heap may not have it)
            if k != key:
                n += _json_len(k) + 2 + _json_len(v)
        n += _json_len(key) + 2 + _json_len(value)
        return n + reserve <= store.capacity

    def check(self, keys):
        """Boot: each stored value of ``keys`` a setter would refuse is replaced by its
        default in RAM, logged CONFIG_DEFAULTS with the reason."""
        for k in keys:
            try:
                self.check_value(k, self._d.get(k))
            except ValueError as e:
                self._log.log(events.CONFIG_DEFAULTS, 0, str(e) if k in _INTS else
                              "%s: %s" % (k, e))
                self._d[k] = self._defaults()[k]

    # -- persistence -----------------------------------------------------------------------

    def _load(self, part):
        from flashstore import config  # (only with a config partition)

        self._budget = config.SaveBudget(self.CONFIG_BURST, self.CONFIG_REFILL_S)
        store = config.ConfigStore(part, defaults.config)  # (made when needed, not kept)
        self.store = store
        cfg, st = store.load()
        self.status = st
        if st == config.STATUS_BLANK:
            self._fresh = True  # saved in settle()
        elif st not in (config.STATUS_OK, config.STATUS_MIGRATED):
            if st != config.STATUS_ONE_BAD:
                self._log.log(events.CONFIG_DEFAULTS, 0, "config: %s" % st)
            self._fallback(cfg, store.copies, "config: %s: %s" % (st, store.detail))
        self._latched(cfg)
        return cfg

    def _defaults(self):
        # the factory settings, made afresh when needed (a boot's fallback, an invalid value
        # replaced): not kept (RAM, issue 12; nor by the config store)
        return defaults.config()

    def _fallback(self, cfg, copies, text):
        dflt = self._defaults()
        cfg["fallback"] = cfg.get("fallback", 0) | status.ERR_CONFIG | status.ERR_SECURITY
        self._log.log(events.CONFIG_FALLBACK, copies, text)
        cfg["prog_max_failures"] = min(cfg.get("prog_max_failures", 3),
                                       dflt["prog_max_failures"])
        for k in ("prog_lockout_s", "prog_lockout_max_s"):
            cfg[k] = max(cfg.get(k, dflt[k]), dflt[k])
        sealed = cfg.get("password") == dflt["password"]
        self._log.log(events.SECURITY_FALLBACK, 1 if sealed else 0,
                      "factory password needs the open seal" if sealed else
                      "password from an older copy")

    def _latched(self, cfg):
        f = cfg.get("fallback", 0)
        self.errors = f & (status.ERR_CONFIG | status.ERR_SECURITY)
        self.password_trusted = not f & status.ERR_SECURITY

    def settle(self, journal_status):
        """After the register journal's restore (``journal_status``: its status string, or
        None without one): a blank configuration on a meter whose journal holds a commit was
        erased after use (a fallback); the defaults are saved either way."""
        if not self._fresh:
            return
        self._fresh = False
        if journal_status == "ok":
            self._log.log(events.CONFIG_DEFAULTS, 0, "config: blank after use")
            self._fallback(self._d, 0, "config: blank after use")
            self._latched(self._d)
        try:
            self.store.save(self._d)
        except Exception as e:
            self._log.log(events.FLASH_CORRUPT, 0, "config save: %s" % e)

    def changed(self):
        """The RAM copy changed: it is written within the wear budget (:meth:`tick`)."""
        if self.store is None:
            return
        self._clock()
        if not self._dirty:
            self._first_s = self._now_s
        self._dirty = True
        self._changed_s = self._now_s
        if self.on_change is not None:
            self.on_change()

    def _clock(self):
        # the monotonic seconds now (``now_s``), else those of the last tick
        f = self.now_s
        if f is not None:
            self._now_s = f()
        return self._now_s

    def due_s(self, now_s):
        """Seconds from monotonic second ``now_s`` until :meth:`tick` next tries to write
        (0: now; a refused write waits for the wear budget), None with nothing to write. The
        housekeeping task sleeps until then instead of ticking every second (issue 12)."""
        if self.store is None or not self._dirty:
            return None
        sp = self._supply
        if sp is not None and sp.warning:
            return 1  # (the warning's end is looked at every second)
        d = min(self._changed_s + self.CONFIG_DELAY_S,
                self._first_s + self.CONFIG_MAX_DELAY_S) - now_s
        if d > 0:
            return d
        return max(1, self._budget.wait_s(now_s)) if self._budget is not None else 1

    def tick(self, now_s, force=False):
        """Write a changed configuration if it is due at ``now_s`` (monotonic seconds of the
        metering clock since boot; ``force``: now, e.g. at shutdown); True if written."""
        self._now_s = now_s
        store = self.store
        sp = self._supply
        if store is None or not self._dirty or (sp is not None and sp.warning):
            return False  # (a save erases a sector: never while the supply may go)
        b = self._budget
        if not force:
            if (now_s - self._changed_s < self.CONFIG_DELAY_S
                    and now_s - self._first_s < self.CONFIG_MAX_DELAY_S):
                return False
            if not b.take(now_s):
                if not self._deferred:
                    self._deferred = True
                    self._log.log(events.CONFIG_DEFERRED, b.wait_s(now_s),
                                  "config write budget")
                return False
        return self._write()

    def save_allowed(self):
        """True if :meth:`save_now` would be allowed by the wear budget now."""
        return self.store is None or not self._budget.wait_s(self._clock())

    def save_now(self):
        """Write the configuration at once, spending one write of the wear budget (the
        password and the meter constant: their ACK must survive a power cut). True when
        written (or there is no config partition: RAM only, a documented limit); False when
        the budget is spent or a power-fail warning is on (nothing written, the change stays
        due: a save erases a sector) or the flash failed (logged)."""
        if self.store is None:
            return True
        self.changed()
        sp = self._supply
        if sp is not None and sp.warning:
            return False
        if not self._budget.take(self._now_s):
            return False
        return self._write()

    def _write(self):
        store = self.store
        now_s = self._now_s
        self._dirty = False
        self._deferred = False
        try:
            store.save(self._d)
        except Exception as e:  # a full or failing partition must not stop the meter
            self._log.log(events.FLASH_CORRUPT, 0, "config save: %s" % e)
            return False
        if self._twice:  # the other copy too (after a fallback was acknowledged)
            self._twice = False
            self._dirty = True
            self._first_s = self._changed_s = now_s - self.CONFIG_MAX_DELAY_S
        return True

    @property
    def pending(self):
        """True while a change waits for its flash write."""
        return self._dirty

    def flush(self):
        """Write a change the budget held back, now (orderly shutdown); True if written."""
        return self.tick(self._now_s, True)

    def password_set(self):
        """A new password was written: trusted again (F.F.0 ERR_SECURITY clears)."""
        self.password_trusted = True
        self.errors &= ~status.ERR_SECURITY
        self._d["fallback"] = self.errors

    def clear_alarm(self):
        """E2 C.91.0: the configuration fallback is acknowledged; both copies are written
        again (F.F.0 ERR_CONFIG clears; ERR_SECURITY only by a new password)."""
        self.errors &= ~status.ERR_CONFIG
        self._d["fallback"] = self.errors
        if self.store is not None:
            self.status = "ok"  # flashstore.config.STATUS_OK
            self.changed()
            self._twice = True

    def config_error(self):
        """The F.F.0 configuration bits: the latched ones, and ERR_CONFIG while the stored
        record could not be used this run (defaults from a damaged or unknown record)."""
        f = self.errors & (status.ERR_CONFIG | status.ERR_SECURITY)
        st = self.status
        if st is not None and "defaults" in st and "blank" not in st:
            f |= status.ERR_CONFIG
        return f
