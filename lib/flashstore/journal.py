"""Register journal: the energy registers committed to flash so they survive any power cut.

A :class:`Journal` keeps versioned, CRC-checked records of one opaque payload (the caller
serialises its registers to ``payload_size`` bytes) in a ring of sectors
(lib/flashstore/ringlog.py has the on-flash format and the safety rules).
:class:`CommitPolicy` decides when to commit.

What the firmware calls (in this order):

1. Boot: ``j = Journal(Partition(dev, off, length), payload_size, schema=1, log=log,
   migrations={old_schema: fn})``; ``payload = j.recover()``; ``None`` means start from zero
   (``j.status`` says why: ``STATUS_BLANK`` first boot, ``STATUS_CORRUPT`` a fault to put in
   the event log, ``STATUS_FOREIGN`` the journal holds records this firmware cannot read:
   writes and erases are blocked until an explicit ``j.format()``). ``STATUS_MIGRATED``: the
   payload was converted from an older schema. If ``j.salvaged``, records were read from
   sectors with a damaged header: log it; if ``j.newest_damaged`` or the status is
   ``STATUS_MIGRATED``, commit the registers again (``REASON_REWRITE``) after ``maintain()``
   so that the newest record lies in a good sector in the current schema.
   Then ``j.maintain()`` once, so that a power-fail commit has a prepared sector.
2. Periodic/tariff commits, where a stall of one sector erase is allowed:
   ``if policy.due(now_s, REASON_PERIODIC, unsaved_wh)``: ``j.commit(payload,
   REASON_PERIODIC)``, ``policy.mark(now_s)``, then ``j.maintain()`` (at most one erase:
   W25Q16JV tSE max 400 ms; nothing to do for 30 of 31 commits with 128-byte slots).
3. Power-fail warning: ``j.commit(payload, REASON_POWERFAIL, urgent=True)``: no erase,
   one page program (payload <= page_size - 16 bytes) and its read-back, no allocation (no
   int >= 2**30 on the way, see lib/flashstore/ringlog.py); raises ``NoSpace`` at once if no
   prepared slot is left (only possible after more than ``slots_per_sector - 1`` urgent
   commits with no maintain() in between; ``j.ready_slots()`` tells).

Read-back. Every record and sector header is read back after its program (16-byte pieces
compared with what was programmed: lib/flashstore/ringlog.py ``SectorRing._reads_back``): worn or
faulty NOR cells can leave a program undone without a word (the W25Q16JV's status registers
have no program-fail bit). A record that did not take is not committed: it is written again
as a new record (the next sequence number) in the next slot, or the next prepared sector's
first, at most twice (``urgent``: once, one more page program), else StorageError. Its slot
fails the CRC at the next scan, so recovery never picks it. ``bad_writes`` counts the
programs that did not take and ``bad_at`` has the partition address of the last (the caller
logs it: firmware/meter/storage.py, event STORAGE_READBACK). Only a record that took becomes
the newest, so ``maintain()`` never erases the sector of the last record that took; a
sector whose header does not take is passed over (lib/flashstore/worn.py).

Versions. Two numbers are stored in every record: the record layout (``ringlog.FORMAT``, 1)
and the payload *schema* (the record's tag, 0..255): the journal format version the caller
defines (firmware/meter/storage.py: ``SCHEMA``). At ``recover()`` the newest valid record decides:

- its schema is ours (and its length ``payload_size``): ``STATUS_OK``;
- its schema is a key of ``migrations``: the function converts the old payload (bytes) to a
  payload of the current schema (``payload_size`` bytes; raise ValueError if it cannot),
  ``STATUS_MIGRATED``; the caller commits it, newer commits win and the old records age out
  of the ring in rotation. Each firmware keeps one converter per older schema it can read,
  each straight to its own schema (chain them inside if useful). A converter keyed by our
  own schema takes our records of another length (a payload whose size follows the
  configuration, e.g. the register banks of firmware/meter/storage.py);
- any other schema (a newer firmware's, or a length we do not know): ``STATUS_FOREIGN``;
- any sector or record of another layout or ring kind (lib/flashstore/ringlog.py):
``STATUS_FOREIGN``
  too, even beside records of ours, since it may hold newer data.

``STATUS_FOREIGN`` never formats: ``recover()`` returns None, logs the reason, ``maintain()``
does nothing and every ``commit()`` raises ``StorageError`` until the firmware calls
``format()`` on an authorised request (firmware/meter/storage.py: the sealed E2 ``C.91.8``). A
firmware update that changes the payload adds its old schema to ``migrations``; one that
changes the record layout must keep reading the old layout (lib/flashstore/ringlog.py, "Versions").
Sequence numbers are u32 and grow by one per commit: at one commit per second they last
136 years.
"""

from micropython import const

from flashstore import ringlog
from flashstore.ringlog import NoSpace, StorageError  # noqa: F401  (re-exported for callers)

REASON_PERIODIC = const(0)
REASON_TARIFF = const(1)
REASON_POWERFAIL = const(2)
REASON_MANUAL = const(3)
REASON_REWRITE = const(4)  # the recovered registers written again (damaged sector, migration)
REASON_FORMAT = const(5)  # first commit after an explicit format()

STATUS_OK = ringlog.STATUS_OK
STATUS_BLANK = ringlog.STATUS_BLANK
STATUS_CORRUPT = ringlog.STATUS_CORRUPT
STATUS_FOREIGN = ringlog.STATUS_FOREIGN
STATUS_MIGRATED = "migrated"

# Default commit policy, justified in CommitPolicy's docstring.
DEFAULT_PERIOD_S = const(300)
_DEFAULT_MIN_GAP_S = const(10)
DEFAULT_MAX_UNSAVED_WH = const(200)
_NO_WH = const(1 << 29)  # CommitPolicy.quiet_wh: no unsaved-energy bound (a small int)


class Journal(ringlog.SectorRing):
    """Journal of one fixed-size payload over a flash partition (see the module docstring).

    ``flash``: flash interface (lib/flashstore/flash.py), >= 2 sectors (16 x 4 KiB recommended);
    ``payload_size``: bytes per commit (1..65519; <= page_size - 16 for one-program commits);
    ``schema``: payload version 0..255; ``reserve``: sectors kept erased ahead (default 1);
    ``log``: callable(str) or None; ``migrations``: dict old schema -> function(old payload
    bytes) -> current payload (``payload_size`` bytes), or None.

    Attributes after ``recover()``: ``status``, ``seq`` (sequence number of the recovered
    record, 0 if none), ``found_schema``, ``found_reason``, ``newest_damaged``, and the scan
    counters ``records``, ``torn``, ``corrupt``, ``salvaged``, ``blank_sectors``,
    ``dirty_sectors``, ``damaged_sectors``, ``foreign_sectors``, ``foreign_records``.
    """

    _kind = ringlog.KIND_JOURNAL  # (a class attribute: RAM, see SectorRing)

    def __init__(self, flash, payload_size, schema=1, reserve=1, log=None, migrations=None):
        ringlog.SectorRing.__init__(self, flash, ringlog.KIND_JOURNAL, payload_size, reserve, log)
        if not 0 <= schema <= 255:
            raise ValueError("schema must be 0..255")
        self.payload_size = payload_size
        self.schema = schema
        self.migrations = migrations or {}
        self.seq = 0
        self.found_schema = None
        self.found_reason = None
        self.bad_writes = 0  # programs that did not read back (records and sector headers)
        self.bad_at = -1  # the partition address of the last one (-1: none)

    def refuse(self, why):
        """Treat the recovered journal as foreign (``why``: text for the log line): the
        owner found the newest payload unusable (e.g. its content contradicts its schema)."""
        self.block()
        self.status = STATUS_FOREIGN
        self._say("journal: FAULT foreign journal (%s): writes blocked until format(); "
                  "registers not restored; %s" % (why, self._summary()))

    def recover(self):
        """Scan the partition; return the newest valid payload (bytes, current schema) or None.

        Torn and corrupt records are skipped and counted; records in sectors with a damaged
        header are salvaged; the record with the highest sequence number wins, so recovered
        registers are those of the last completed commit (or of the commit in flight if its
        program completed). Sets ``status`` (module docstring); logs one line.
        """
        best = self._scan()
        self.seq = 0
        self.found_schema = self.found_reason = None
        if self._blocked:
            self.refuse("sectors or records of another format or ring kind")
            return None
        if best < 0:
            if self.corrupt or self.dirty_sectors:
                self.status = STATUS_CORRUPT
                self._say("journal: FAULT no valid record in a used partition: registers "
                          "start from zero; " + self._summary())
            else:
                self.status = STATUS_BLANK
                self._say("journal: blank flash: registers start from zero; " + self._summary())
            return None
        r = self._slot_record(self._newest, self._best[2])
        if r is None:  # only if the flash changed under the scan
            raise StorageError("newest record changed during recovery")
        seq, tag, aux, payload = r
        self.seq = seq
        self.found_schema = tag
        self.found_reason = aux
        if tag == self.schema and len(payload) == self.payload_size:
            self.status = STATUS_OK
        else:
            fn = self.migrations.get(tag)
            if fn is None:
                if tag == self.schema:
                    self.refuse("schema %d with %d-byte payload" % (tag, len(payload)))
                else:
                    self.refuse("unknown payload schema %d, ours is %d" % (tag, self.schema))
                return None
            try:
                payload = fn(payload)
                if len(payload) != self.payload_size:
                    raise ValueError("migrated payload has %d bytes" % len(payload))
            except Exception as e:  # a converter's error must not stop the boot
                self.refuse("schema %d not convertible: %s" % (tag, e))
                return None
            self.status = STATUS_MIGRATED
        self._say("journal: %s: seq %d schema %d reason %d; %s"
                  % (self.status, seq, tag, aux, self._summary()))
        return payload

    def commit(self, payload, reason=REASON_PERIODIC, urgent=False):
        """Append ``payload`` (exactly ``payload_size`` bytes); return its sequence number, or
        None when ``urgent``.

        ``reason``: REASON_* (0..65535) stored with the record. ``urgent=True`` (power-fail
        path): never erases, one page program and its read-back (a second one if the first
        did not take), allocates nothing; raises NoSpace when no prepared slot is left.
        Without ``urgent`` a missing prepared sector is erased inline (one erase). Raises
        ValueError on a wrong payload size, StorageError when not recovered or write-protected
        (foreign) or when the record never read back (module docstring, "Read-back").
        """
        if len(payload) != self.payload_size:
            raise ValueError("payload must be %d bytes" % self.payload_size)
        return self._append(payload, self.schema, reason, urgent)

    def commit_cost(self):
        """(page programs, bytes programmed) of one commit: the power-fail budget."""
        need = 16 + self.payload_size  # (record header + payload; slots hold whole pages)
        p = self._flash.page_size
        return (1 if self.slot_size <= p else (need + p - 1) // p), need


class CommitPolicy:
    """When to commit the registers: periodically, on events (tariff change), on power fail.

    ``CommitPolicy(period_s=300, min_gap_s=10, max_unsaved_wh=200)``. ``due(now_s, reason,
    unsaved_wh=None)`` says whether to commit now; ``mark(now_s)`` records a done commit.
    ``now_s`` is monotonic seconds (int). ``unsaved_wh`` is the active energy (Wh, A+ plus A-,
    int) accumulated since the last commit, or None if unknown.

    - REASON_POWERFAIL: always due (unless ``unsaved_wh == 0``); commit with ``urgent=True``.
    - REASON_TARIFF / REASON_MANUAL: due unless the last commit is younger than ``min_gap_s``
      (a flapping tariff input cannot wear the flash); a suppressed event stays pending and
      the next ``due()`` after the gap returns True.
    - REASON_PERIODIC: due when ``period_s`` elapsed (and something changed, if
      ``unsaved_wh`` is given), or a pending event's gap elapsed, or ``unsaved_wh >=
      max_unsaved_wh`` with the gap elapsed (``max_unsaved_wh=None`` disables that trigger).

    Why 300 s, 10 s and 200 Wh (figures from ``python tools/bench_flash.py``, 76-byte payload
    as in firmware/meter/storage.py, 128-byte slots, 31 records per 4 KiB sector, 16-sector
    journal):
    the periodic commit only matters when the power-fail commit does not happen (a crash,
    watchdog reset or missed warning); then at most one period of energy is lost.
    Wear: 300 s is 105 120 commits and 3 376 sector erases a year, spread evenly: 211 erases
    per sector per year, 474 years to the W25Q16JV's 100 000 cycles (the issue asks >= 50 years
    with commits at least every 15 min; 60 s would still give 94 years, 900 s 1 416).
    Loss: 300 s at 60 A x 230 V is 1.15 kWh, so the 200 Wh trigger caps it at high load: a
    commit every 52 s at 13.8 kW, which flat out all year is 1 212 erases per sector, still 83
    years; at a household's ~0.5 kW mean, one period is ~42 Wh. 900 s would triple the loss for
    wear the flash does not need to save. The 10 s gap bounds event-driven commits to 8 640 a
    day. ``unsaved_wh`` should count active energy only (A+ plus A-): adding reactive and
    apparent registers would fire the trigger two or three times as often.
    """

    def __init__(self, period_s=DEFAULT_PERIOD_S, min_gap_s=_DEFAULT_MIN_GAP_S,
                 max_unsaved_wh=DEFAULT_MAX_UNSAVED_WH):
        if period_s <= 0 or min_gap_s < 0:
            raise ValueError("period_s must be > 0 and min_gap_s >= 0")
        self.period_s = period_s
        self.min_gap_s = min_gap_s
        self.max_unsaved_wh = max_unsaved_wh
        self._last = None
        self._pending = False

    def due(self, now_s, reason=REASON_PERIODIC, unsaved_wh=None):
        """True if a commit should be made now for ``reason`` (see the class docstring)."""
        if reason == REASON_POWERFAIL:
            return unsaved_wh != 0
        last = self._last
        age = None if last is None else now_s - last
        gap_ok = age is None or age >= self.min_gap_s
        if reason != REASON_PERIODIC:
            if gap_ok:
                return True
            self._pending = True
            return False
        if age is None:
            return True
        if self._pending and gap_ok:
            return True
        m = self.max_unsaved_wh
        if unsaved_wh is not None and m is not None and unsaved_wh >= m and gap_ok:
            return True
        if age >= self.period_s:
            return unsaved_wh is None or unsaved_wh > 0
        return False

    def quiet_wh(self, now_s):
        """See :meth:`quiet_s`: the unsaved energy (Wh, below 2**29: a small int) from which
        ``due()`` may say yes again."""
        m = self.max_unsaved_wh
        wh = _NO_WH if m is None or m > _NO_WH else m
        if self._last is not None and now_s - self._last >= self.period_s and wh > 1:
            wh = 1  # (the period is over: any energy makes the commit due)
        return wh

    def quiet_s(self, now_s, unsaved_wh):
        """After ``due(now_s, REASON_PERIODIC, unsaved_wh)`` said False: ``s`` such that
        ``due(t, REASON_PERIODIC, u)`` stays False for every ``t < now_s + s`` and
        ``u < quiet_wh(now_s)``, until the next :meth:`mark` or ``due()`` for another reason
        (a caller may skip the question until then: meter/storage.py asks each second).
        0: ask at the next check. Two calls, not a tuple: the step allocates nothing."""
        last = self._last
        if last is None or self._pending or unsaved_wh >= self.quiet_wh(now_s):
            return 0
        age = now_s - last
        return self.period_s - age if age < self.period_s else self.period_s

    def mark(self, now_s):
        """Record a commit made at ``now_s`` (any reason); clears a pending event."""
        self._last = now_s
        self._pending = False

    def next_due_s(self, now_s):
        """Seconds until the next periodic commit is due (0 if due now)."""
        if self._last is None:
            return 0
        return max(0, self.period_s - (now_s - self._last))
