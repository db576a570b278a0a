# The persisted event logs: the standard log and, apart from it, the security log.
"""Event persistence (lib/events record format, lib/flashstore/ringlog.RingLog rings in the
board's ``events`` partition).

The partition holds the standard log and, apart from it, the security log
(``events.log_spans``: 3/8 of the sectors, at least 2; a partition of fewer than 5 sectors
holds one ring for both), so a flood in one never overwrites the other. Records: 16 bytes,
``events.FORMAT``, oldest overwritten. Floods are held back by ``events.RateLimit`` (a
burst, then one summary record per code and window); :meth:`EventStore.tick` writes the
summaries that are due. During a power-fail warning (firmware/meter/supply.py) records are
appended urgently (one page program, never an erase); one that finds no prepared slot stays
in RAM (``unsaved``). A storage failure never stops the meter: it is logged once per episode
(FLASH_CORRUPT) in RAM, the event dropped, and F.F.0 shows the storage bit (``fault``
"write") until a record is written again. A log of another format (``fault`` "foreign") is
write-protected until the sealed E2 C.91.8 formats it (:meth:`format`).

:meth:`EventStore.sink` is the ``lib.events.EventLog`` sink: every event logged in RAM goes
through it.
"""

import events
from flashstore import ringlog
from flashstore.flash import Partition


class EventStore:
    """``part``: the ``events`` partition (flashstore.flash interface); ``log``: the
    lib.events.EventLog whose sink this becomes; ``clock``: the board clock (``time()``).
    Opening the rings logs POWER_UP (value: the events kept)."""

    def __init__(self, part, log, clock, supply=None):
        self._log = log
        self._clock = clock
        self._supply = supply
        self.fault = None  # None, "foreign" or "write": why the logs take no records
        self.unsaved = 0  # events not persisted during a power-fail warning (no slot)
        rings = []
        for o, ln in events.log_spans(0, part.size, part.sector_size):
            ring = ringlog.RingLog(Partition(part, o, ln), events.RECORD_SIZE)
            ring.mount()
            rings.append(ring)
        self.rings = rings
        self._rec = bytearray(events.RECORD_SIZE)
        self.limit = events.RateLimit(burst_for={events.WRONG_PASSWORD: 3})
        log.sink = self.sink
        kept = 0
        for r in rings:
            kept += sum(1 for _ in r.entries())
        foreign = self.blocked()
        if foreign:  # (so that the failing appends below log nothing more)
            self.fault = "foreign"
        log.log(events.POWER_UP, kept)  # value: events kept
        if foreign:
            log.log(events.FLASH_CORRUPT, 0, "event log of another format: not written "
                    "until E2 C.91.8 (seal open) formats it")

    def blocked(self):
        """True while a log is write-protected (another format found)."""
        for r in self.rings:
            if r.blocked:
                return True
        return False

    def format(self):
        """Sealed E2 C.91.8 (the caller checks the seal): format the write-protected logs;
        logged (STORAGE_FORMATTED, value -2). Returns True when done."""
        try:
            for r in self.rings:
                if r.blocked:
                    r.format()
        except Exception as e:
            self._log.log(events.STORAGE_WRITE_FAILED, 0, "event log format: %s" % e)
            return False
        self.fault = None
        self._log.log(events.STORAGE_FORMATTED, -2, "event logs formatted (E2 C.91.8)")
        return True

    def _ring_for(self, code):
        rings = self.rings
        return rings[events.log_of(code)] if len(rings) > 1 else rings[0]

    def _persist(self, t, code, value, src, subj):
        ring = self._ring_for(code)
        sp = self._supply
        # during a power-fail warning: one page program, never an erase (lib/flashstore)
        ring.append(events.encode_record(self._rec, t, code, value, src, subj), events.FORMAT,
                    sp is not None and sp.warning)

    def sink(self, t, code, value, text, src=0, subj=b"\xff" * 6):
        """Persist one event (the EventLog calls this for every event)."""
        try:
            lim = self.limit
            for c, n, s, j in lim.due(t):
                self._persist(t, c, n, s | events.SUMMARY, j)
            if lim.admit(code, t, src, subj):
                self._persist(t, code, value, src, subj)
                if self.fault == "write":  # written again: the episode is over
                    self.fault = None
        except Exception as e:  # storage trouble must never stop metering
            sp = self._supply
            if sp is not None and sp.warning:  # no prepared slot left: kept in RAM only
                self.unsaved += 1
            elif self.fault is None:  # once per episode, not once per event
                self.fault = "write"
                log = self._log
                log.sink = None
                log.log(events.FLASH_CORRUPT, 0, "event ring: %s" % e)
                log.sink = self.sink

    def persist(self, t, code, value, src=events.SRC_METER):
        """Write one record stamped ``t`` (RTC s) straight to its log, without a RAM copy or
        the flood limit: state carried over a restart (the IEC map's lockout,
        PROG_LOCK_KEPT). Never raises."""
        try:
            self._persist(t, code, value, src, b"\xff" * 6)
        except Exception:
            pass

    def tick(self, force=False):
        """Write the flood summaries that are due (all of them with ``force``)."""
        t = self._clock.time()
        if not self.limit.any_due(t, force):
            return  # (nothing built: the housekeeping task calls this every second)
        try:
            for c, n, s, j in self.limit.due(t, force):
                self._persist(t, c, n, s | events.SUMMARY, j)
        except Exception:
            pass

    def persisted(self, log=None):
        """Decoded persisted events, oldest first within each log: list of ``(t, code, value,
        src, subject, summary, legacy)`` (``legacy``: an old 12-byte record); ``log``:
        events.LOG_* or None for all. Full logs are hundreds of tuples (the virtual board:
        254 + 508 records): code that runs on the device (the boot) iterates
        :meth:`iter_persisted` instead."""
        return list(self.iter_persisted(log))

    def iter_persisted(self, log=None):
        """The records of :meth:`persisted`, one at a time (read from flash as iterated: no
        list of the whole log in the heap)."""
        rings = self.rings
        for i in range(len(rings)):
            if log is not None and len(rings) > 1 and i != log:
                continue
            for _seq, tag, rec in rings[i].entries():
                try:
                    d = events.decode_record(tag, rec)
                except ValueError:
                    continue
                if log is None or len(rings) > 1 or events.log_of(d[1]) == log:
                    yield d + (tag == 0,)
