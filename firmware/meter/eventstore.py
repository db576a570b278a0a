# The persisted event logs: the standard log and, apart from it, the security log.
"""Event persistence (lib/events record format, lib/flashstore/ringlog.RingLog rings in the
board's ``events`` partition).

The partition holds the standard log and, apart from it, the security log
(``events.log_spans``: 3/8 of the sectors, at least 2; a partition of fewer than 5 sectors
holds one ring for both), so a flood in one never overwrites the other. Records: 16 bytes,
``events.FORMAT``, oldest overwritten. Floods are held back by ``events.RateLimit`` (a
burst, then one summary record per code and window); :meth:`EventStore.tick` writes the
summaries that are due. A storage failure never stops the meter: it is logged
(FLASH_CORRUPT) in RAM and the event is dropped.

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

    def __init__(self, part, log, clock):
        self._log = log
        self._clock = clock
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
        log.log(events.POWER_UP, kept)  # value: events kept

    def _ring_for(self, code):
        rings = self.rings
        return rings[events.log_of(code)] if len(rings) > 1 else rings[0]

    def _persist(self, t, code, value, src, subj):
        ring = self._ring_for(code)
        ring.append(events.encode_record(self._rec, t, code, value, src, subj), events.FORMAT)

    def sink(self, t, code, value, text, src=0, subj=b"\xff" * 6):
        """Persist one event (the EventLog calls this for every event)."""
        try:
            lim = self.limit
            for c, n, s, j in lim.due(t):
                self._persist(t, c, n, s | events.SUMMARY, j)
            if lim.admit(code, t, src, subj):
                self._persist(t, code, value, src, subj)
        except Exception as e:  # storage trouble must never stop metering
            log = self._log
            log.sink = None
            log.log(events.FLASH_CORRUPT, 0, "event ring: %s" % e)
            log.sink = self.sink

    def tick(self, force=False):
        """Write the flood summaries that are due (all of them with ``force``)."""
        t = self._clock.time()
        try:
            for c, n, s, j in self.limit.due(t, force):
                self._persist(t, c, n, s | events.SUMMARY, j)
        except Exception:
            pass

    def persisted(self, log=None):
        """Decoded persisted events, oldest first within each log: list of ``(t, code, value,
        src, subject, summary, legacy)`` (``legacy``: an old 12-byte record); ``log``:
        events.LOG_* or None for all."""
        out = []
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
                    out.append(d + (tag == 0,))
        return out
