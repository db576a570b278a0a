# The uplink outbox's seq floor, kept in flash of its own.
"""The floor under which every uplink ``seq`` lies (docs/UPLINK.md, "Message numbers").

The outbox (uplink/outbox.py) hands out ``seq`` below the floor and raises it ``SEQ_BLOCK``
(1024) at a time through :meth:`SeqFloor.reserve`; the new floor is in flash before a number
at or above the old one is used. An outbox formatted or damaged then goes on at the floor,
so no number is handed out twice.

The floor is a two-copy record of its own (lib/flashstore/config.ConfigStore, ``{"floor":
n, "prev": p}``) on the partition ``uplink_seq`` (8 KiB: two 4 KiB copies), not a setting:
its write is unattended and recurring (about 40 a year at 15-minute readings), and a power
cut during a save of the meter's configuration makes the meter take the other copy and
distrust its password (F.F.0 ERR_SECURITY until a local visit).

Both copies cover every number used. A save overwrites the older copy, so the outbox uses
numbers only below :attr:`safe`, the floor of the copy *not* overwritten by the latest save
(``prev``, the previous floor; 0 while the other copy is blank or damaged). So:

- a save cut by a power cut returned nothing (no number at or above ``safe`` was used) and
  the surviving copy is above every number used;
- a newer copy damaged later (a bit flip) with the outbox lost as well (the double fault):
  the older copy's floor (logged FLASH_CORRUPT with the status) is still above every number
  used, so no number is handed out twice. Only both copies lost with the outbox (a triple
  fault) starts again low.

:attr:`value` is where an outbox found lost goes on (the newest valid copy's floor: above
every number used even while one copy is missing). The price: two writes at the first
message (blank partition) and after a damaged copy, and up to two blocks (2048 numbers)
skipped by an outbox lost, not one; the u32 seq (< 2**31) lasts 68 years at a message a second.

Each save is read back (both copies): a program that did not take (worn or faulty NOR cells
report nothing) reserves nothing, and the next save goes over the copy that did not take
again, never over the one left.

Wear: one erase of a 4 KiB sector per reservation, the two copies in turn: 40 a year is 20
erases per sector a year (NOR flash: >= 100 000 cycles).
"""

from flashstore.config import STATUS_BLANK, STATUS_OK, ConfigStore
from micropython import const

import events

_MAX = const(0x7FFFFFFF)  # a floor is at most 2**31 - 1 (the outbox's seq is a u32 < 2**31)


class SeqFloor:
    """``part``: a flashstore partition of 2 (or an even number of) sectors; ``log``:
    lib.events.EventLog; ``supply``: an object with ``warning`` (True during the power-fail
    warning: no save, a save erases a sector), or None. ``value``: the floor read at boot
    (the newest valid copy; 0: blank or unreadable); ``safe``: every number below it is
    below both copies' floors (0 while a copy is blank or damaged)."""

    def __init__(self, part, log, supply=None):
        store = self._store = ConfigStore(part, {"floor": 0, "prev": 0})
        self._supply = supply
        cfg, status = store.load()
        v = cfg.get("floor", 0)
        p = cfg.get("prev", 0)
        if not isinstance(v, int) or not 0 <= v <= _MAX:
            v = 0
            status = "floor %r out of range" % (cfg.get("floor"),)
        if not isinstance(p, int) or not 0 <= p <= v or store.copies < 2:
            p = 0  # the other copy does not cover anything (blank, damaged, foreign)
        self.value = v
        self.safe = p
        self._copies = store.copies if v else 0  # valid copies holding a floor (0..2)
        if status not in (STATUS_OK, STATUS_BLANK):
            log.log(events.FLASH_CORRUPT, 0, "uplink seq floor: %s" % status)

    def reserve(self, floor):
        """Put ``floor`` (int, 0..2**31 - 1, above :attr:`value`) in flash over the older
        copy. Returns the new :attr:`safe` (int: the copy kept, the previous floor; 0 when
        it was blank or damaged, then reserve again), or None (nothing reserved: the outbox
        asks again at its next message) past the range, during the power-fail warning, or
        when the flash failed (raised, or the copy read back is not the one written)."""
        if not 0 <= floor <= _MAX:
            return None
        sp = self._supply
        if sp is not None and sp.warning:
            return None
        prev = self.value if self._copies else 0  # the copy not overwritten
        store = self._store
        try:
            store.save({"floor": floor, "prev": prev})
            # read back: a NOR program that did not take (worn or faulty cells; the chip
            # reports nothing) is no reservation, and the store learns which copy is left
            # (it overwrote that one, the only valid one, at the next save)
            ok = store.load()[0].get("floor") == floor
        except Exception:  # a failing partition must not stop the uplink (no floor: asked again)
            ok = False
        if not ok:
            if self._copies == 2:  # the older copy is gone with the erase
                self._copies = 1
            self.safe = 0
            return None
        if self._copies < 2:
            self._copies += 1
        if store.copies < self._copies:  # (the other copy found damaged by the read back)
            self._copies = store.copies
        if self._copies < 2:
            prev = 0
        self.value = floor
        self.safe = prev
        return prev
