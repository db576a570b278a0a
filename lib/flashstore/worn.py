"""What a sector ring does when a flash program did not take (worn or faulty NOR cells: the
chip reports nothing, only the read-back of lib/flashstore/ringlog.py tells). Imported on
first use: none of it is needed while the flash takes every program (RAM). And the
diagnostics of a ring (:func:`wear`, :func:`position`): tests and tools."""

_READY = 1  # (lib/flashstore/ringlog.py sector states)
_DIRTY = 3
_WORN = 6

# prepare_next() calls that found every other sector worn (or holding the newest record)
# since a worn one was last tried again
_waits = 0


def prepare_next(ring):
    """Prepare the sector after ``ring``'s head now (a non-urgent append found it not
    prepared; one erase). Passed over (the head moves onto it, full): the sector of the
    newest record when the head went round the ring since (every sector between holds only
    records that did not take, so the oldest of them is erased, never the newest record),
    and a sector that could not be prepared (its header did not take: not erased again
    until the next scan, i.e. the next start). At most two sectors are tried (two erases:
    W25Q16JV tSE max 400 ms each, a stall of the caller). When every other sector is worn
    (a 2-sector ring: the head, full, had nowhere to go until the next start), the next
    worn one is tried again in one call of 12 (a transient fault heals; a dead sector costs
    one erase an hour of periodic commits). Returns True, or when no sector could be
    prepared the last error (None: none raised; the caller raises NoSpace)."""
    global _waits
    err = None
    n = ring.sectors
    tries = 2
    for _ in range(n):
        nxt = (ring._head + 1) % n
        if nxt != ring._newest and ring._state[nxt] != _WORN:
            if tries == 0:
                break
            tries -= 1
            try:
                ring.maintain(1)
            except Exception as e:  # (StorageError: the header did not take; I/O errors)
                err = e
            if ring._state[nxt] == _READY:
                return True
            if ring._state[nxt] != _DIRTY and ring._state[nxt] != _WORN:
                break  # (not mounted, write-protected)
        ring._head = nxt
        ring._slot = ring.slots_per_sector
    if tries < 2:
        return err
    _waits += 1  # (none tried: the head went round, back where it was)
    if _waits < 12:
        return err
    _waits = 0
    for _ in range(n):
        nxt = (ring._head + 1) % n
        if nxt != ring._newest:  # (worn: the loop above passed over only these)
            ring._state[nxt] = _DIRTY
            try:
                ring.maintain(1)
            except Exception as e:  # (StorageError: the header did not take again)
                err = e
            return True if ring._state[nxt] == _READY else err
        ring._head = nxt
        ring._slot = ring.slots_per_sector
    return err


def wear(ring):
    """Erase count of each sector of ``ring`` as recorded in the sector headers (list of
    ints). Read from the flash (one header read per sector); 0 for a sector without a valid
    header (blank, torn erase). Such a sector continues from the ring's maximum when it is
    prepared."""
    return [max(0, ring._header_erases(s)) for s in range(ring.sectors)]


def position(ring):
    """(head sector, next slot, next sequence number) of ``ring``, for diagnostics."""
    return ring._head, ring._slot, ring.next_seq()
