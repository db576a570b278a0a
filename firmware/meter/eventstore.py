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
        self.on_pending = None  # callable(): an event counted for a summary (housekeeping)
        self.unsaved = 0  # events not persisted during a power-fail warning (no slot)
        rings = []
        for o, ln in events.log_spans(0, part.size, part.sector_size):
            ring = ringlog.RingLog(Partition(part, o, ln), events.RECORD_SIZE)
            ring.mount()
            rings.append(ring)
        self.rings = rings
        self._rec = bytearray(events.RECORD_SIZE)
        self.limit = events.RateLimit(burst_for={events.WRONG_PASSWORD: 3})
        # state carried in the security log (``carry``: callable -> iterable of ``(t, code,
        # value, src)``, the IEC map's lockouts and the uplink's replay guard): written again
        # after every ``_carry_every`` records appended to its ring, so the ring never turns
        # it over while the meter runs (at power-up it is written again anyway)
        self.carry = None
        self._carry_n = 0
        self._carrying = False
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
        if self.carry is not None and not self._carrying and ring is self._ring_for(
                events.UPLINK_CONFIG_N):
            self._carry_n += 1
            # half the records the ring always keeps (whole sectors are dropped at once)
            if self._carry_n >= max(ring.min_kept // 2, 4) and not (sp is not None and
                                                                   sp.warning):
                self._carrying = True
                try:
                    for ct, cc, cv, cs in self.carry():
                        self._persist(ct, cc, cv, cs, b"\xff" * 6)
                    self._carry_n = 0
                finally:
                    self._carrying = False

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
            elif self.on_pending is not None:  # counted: a summary falls due later
                self.on_pending()
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
        the flood limit: state carried over a restart (the IEC map's lockouts,
        PROG_LOCK_KEPT; the uplink's replay guard, UPLINK_CONFIG_N). Never raises: True when
        written, False when not (write-protected log, flash failure, no prepared slot during
        a power-fail warning)."""
        if self.fault == "foreign":
            return False
        try:
            self._persist(t, code, value, src, b"\xff" * 6)
        except Exception:
            return False
        return True

    def due_t(self):
        """RTC second at which :meth:`tick` next writes a summary, or None (none counted)."""
        return self.limit.next_due(self._clock.time())

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

    def _merged(self):
        # the persisted records of every ring, merged by time (each ring is oldest first)
        its = [self.iter_persisted(i) for i in range(len(self.rings))] if len(
            self.rings) > 1 else [self.iter_persisted()]
        heads = [next(it, None) for it in its]
        while True:
            best = -1
            for i in range(len(heads)):
                h = heads[i]
                if h is not None and (best < 0 or h[0] < heads[best][0]):
                    best = i
            if best < 0:
                return
            yield heads[best]
            heads[best] = next(its[best], None)

    def logbook(self, log=None, t_from=None, t_to=None, tick=0):
        """The persisted events as IDIS logbook entries, oldest first: ``(t, idis log, idis
        code, our code, value, source, subject, summary)`` with t_from <= t <= t_to (None:
        open). ``log``: None (every log), or one of ``events.IDIS_LOGS``; the power failure
        log (IDIS_POWER_FAILURE) gives one entry per POWER_FAIL -> POWER_UP pair at the end
        of the outage with the value = its duration in s (a loss of supply without the
        warning has no POWER_FAIL record and is not in it). Read record by record.

        ``tick`` > 0: resumable in bounded steps; after every ``tick`` records read, ``None``
        is yielded (the caller's cue to give the event loop a turn:
        the uplink's ``log`` answer reads at most ``tick`` records a round, instead of the
        whole store in one round when nothing matches)."""
        E = events
        down = None
        k = 0
        for t, code, value, src, subj, summary, _legacy in self._merged():
            if tick:
                k += 1
                if k >= tick:
                    k = 0
                    yield None
            if log == E.IDIS_POWER_FAILURE:
                if code == E.POWER_FAIL and not summary:
                    down = t
                elif code == E.POWER_UP and down is not None:
                    if (t_from is None or t >= t_from) and (t_to is None or t <= t_to):
                        yield (t, log, 1, E.POWER_FAIL, t - down, src, subj, False)
                    down = None
                continue
            lg = E.idis_log(code)
            if log is not None and lg != log:
                continue
            if (t_from is None or t >= t_from) and (t_to is None or t <= t_to):
                yield (t, lg, E.idis_code(code), code, value, src, subj, summary)

    def p98_lines(self, zone, log=None, t_from=None, t_to=None):
        """The logbook (:meth:`logbook`) as IEC 62056-21 ``P.98`` lines, one event a line:
        ``P.98(Zyymmddhhmmss)(LL)(III)(CCC)(value)(source)(subject)`` (local time stamp as
        in P.01, IDIS log E, IDIS code, our code, value, source name with ``+`` for a flood
        summary whose value is the count, the subject OBIS code or address)."""
        for t, lg, ic, code, value, src, subj, summary in self.logbook(log, t_from, t_to):
            name = events.SRC_NAMES[src & 7] + ("+" if summary else "")
            subj = subj.replace("(", "?").replace(")", "?")
            yield "P.98(%s)(%02d)(%d)(%d)(%d)(%s)(%s)" % (
                zone.vdew_stamp(t), lg, ic, code, value, name, subj)

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
