# The uplink outbox's seq floor, kept in flash of its own.
"""The floor under which every uplink ``seq`` lies (docs/UPLINK.md, "Message numbers").

The outbox (uplink/outbox.py) hands out ``seq`` below the floor and raises it ``SEQ_BLOCK``
(1024) at a time through :meth:`SeqFloor.reserve`; the new floor is in flash before a number
at or above the old one is used. An outbox formatted or damaged then goes on at the floor,
so no number is handed out twice.

The floor is a two-copy record of its own (lib/flashstore/config.ConfigStore, ``{"floor":
n}``) on the partition ``uplink_seq`` (8 KiB: two 4 KiB copies), not a setting: its write is
unattended and recurring (about 40 a year at 15-minute readings), and a power cut during a
save of the meter's configuration makes the meter take the other copy and distrust its
password (F.F.0 ERR_SECURITY until a local visit). Here the other copy is harmless: a save
cut by a power cut returned nothing, so no number at or above the floor in the surviving copy
was used. A newer copy damaged later (a bit flip) with the outbox lost as well is a double
fault: the floor then comes from the older copy (logged FLASH_CORRUPT with the status).

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
    warning: no save, a save erases a sector), or None. ``value``: the floor read at boot (0:
    blank or unreadable)."""

    def __init__(self, part, log, supply=None):
        self._store = ConfigStore(part, {"floor": 0})
        self._supply = supply
        cfg, status = self._store.load()
        v = cfg.get("floor", 0)
        if not isinstance(v, int) or not 0 <= v <= _MAX:
            v = 0
            status = "floor %r out of range" % (cfg.get("floor"),)
        self.value = v
        if status not in (STATUS_OK, STATUS_BLANK):
            log.log(events.FLASH_CORRUPT, 0, "uplink seq floor: %s" % status)

    def reserve(self, floor):
        """Put ``floor`` (int, 0..2**31 - 1) in flash: True once it is there; False (nothing
        reserved: the outbox asks again at its next message) past the range, during the
        power-fail warning, or when the flash failed."""
        if not 0 <= floor <= _MAX:
            return False
        sp = self._supply
        if sp is not None and sp.warning:
            return False
        try:
            self._store.save({"floor": floor})
        except Exception:  # a failing partition must not stop the uplink (no floor: asked again)
            return False
        self.value = floor
        return True
