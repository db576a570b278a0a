# Store-and-forward outbox of the uplink: numbered messages kept in flash until acknowledged.
"""The uplink's outbox on the board's ``outbox`` partition (a ``flashstore.ringlog.RingLog``).

Every message gets a sequence number (``seq``, 1, 2, 3, ... over the meter's life; the
head-end discards a number it has already seen) and is kept until the broker acknowledged
it (MQTT QoS 1 PUBACK); messages are sent oldest first. Records (``RECORD_SIZE`` = 496
bytes, one 512-byte slot, 7 per 4 KiB sector)::

    tag KIND_READING / KIND_EVENT / KIND_REPLY (a message)   tag KIND_ACK (acknowledgement)
    0   4   seq (u32 little-endian)                           0  4  every seq <= this acked
    4   2   body length n
    6   n   body: the JSON message without its "seq" (UTF-8, at most BODY_MAX bytes)

Acknowledgements are written as marker records (every ``ack_every`` acks, and when the
outbox becomes empty), never by erasing or rewriting: a power cut between a PUBACK and its
marker makes the meter send those messages again with their own sequence numbers (at most
``ack_every`` duplicates, each one recognisable). At mount the newest marker tells which
messages are still owed; a marker dropped with its sector only ever acknowledged messages
older than everything still in the ring, so whatever is older than the ring's oldest message
counts as settled (acknowledged, or dropped and reported before). An owed message missing
between two of the ring (its record unreadable: a bit flip) is counted as dropped and
reported like the others (``take_dropped``).

Capacity. The ring keeps ``capacity`` records (256 KiB: 63 sectors x 7 = 441); when it is
full the oldest sector goes (7 records at once): messages not yet acknowledged that go with
it are counted in ``dropped``, reported by ``take_dropped()`` (the uplink logs UPLINK_DROPPED
and sends an event), and the next message sent is the oldest one left.

Sequence floor. ``seq`` comes from the ring itself, so an outbox formatted (a foreign or
unreadable partition) would start again at 1, and a bit flip in its newest record (sent,
not yet marked) would hand that number out again: the head-end would discard the new
messages as duplicates. So the owner keeps a persistent floor (uplink/seqfloor.py, a
two-copy record of its own, not the configuration): every seq used is below ``limit``, the
floor both copies cover, reserved ``SEQ_BLOCK`` (1024) at a time through :attr:`reserve`
(one write per 1024 messages, about ten days at 15-minute reporting). A put reserves when
its seq comes within ``SEQ_MARGIN`` (256) of ``limit``, so the floor is in flash long before
a number near it is used: during the power-fail warning nothing is written (a reservation
erases a sector), and the messages put then use the margin. A mount that formatted the ring
or found it blank or unreadable, or a written slot after its newest valid record that does
not read (``RingLog.tail_damaged``: a bit flip, a cut append) goes on at ``floor`` (the
newest floor in flash): the numbers skipped are in ``skipped`` (first, last; the uplink logs
UPLINK_SEQ_SKIPPED and so tells the head-end that no message carries them). Not covered: a
number used past ``limit`` (more than 256 messages during power-fail warnings since the last
other message, or reservations failing: a broken ``uplink_seq`` partition) or without the
floor's partition (boards' layouts), if the outbox is lost before the next reservation.

Power cut: each append is one record program (two pages); the ring's own rules (lib/
flashstore/ringlog.py) make a cut at any flash operation leave every earlier record valid and
the interrupted one absent. During the power-fail warning (meter/supply.py ``Supply``) appends
are urgent (no erase, NoSpace when no erased slot is left: the message is then lost and
counted in ``lost``) and no marker is written.
"""

import struct

from micropython import const

from flashstore.ringlog import STATUS_OK, NoSpace, RingLog

KIND_READING = const(1)
KIND_EVENT = const(2)
KIND_REPLY = const(3)
KIND_FORWARD = const(4)  # a bus meter's reading (uplink/concentrator.py): its own topic
KIND_BUS = const(5)  # the concentrator's report on a bus meter (meters/<serial>/bus)
KIND_PROFILE = const(6)  # load-profile rows (meters/<serial>/profile)
KIND_ACK = const(9)
RECORD_SIZE = const(496)
BODY_MAX = const(490)
SEQ_BLOCK = const(1024)  # seqs reserved by one write of the floor
SEQ_MARGIN = const(256)  # a put this close to ``limit`` reserves (the warning's messages)


class Outbox:
    """``part``: the ``outbox`` partition (flashstore.flash interface); ``supply``:
    meter.supply.Supply or None; ``log``: callable(str) for diagnostics or None.
    Call :meth:`mount` once."""

    def __init__(self, part, supply=None, log=None, ack_every=16):
        self.ring = RingLog(part, RECORD_SIZE, log=log)
        self.capacity = self.ring.capacity
        self.supply = supply
        self.ack_every = ack_every
        self._rec = bytearray(RECORD_SIZE)
        self.next_seq = 1
        self.acked = 0  # every seq <= acked is acknowledged (RAM; markers may lag)
        self._marked = 0  # acked as of the newest marker in flash
        self._cursor = -1  # ring seq of the next record to look at (-1: end)
        self._peeked = None
        self.dropped = 0
        self._drop_new = 0
        self._drop_range = None
        self.lost = 0
        self.status = None
        self.mounted = False
        self._newest = {}  # kind -> ring seq of its newest record (newest())
        self.floor = 0  # the newest floor in flash: a lost ring goes on there (set before mount)
        self.limit = 0  # every seq used is below it: both copies of the floor cover it
        self.reserve = None  # callable(new floor) -> the new limit once in flash, or None
        self.skipped = None  # (first, last) seqs skipped at mount (formatted / damaged ring)
        self._skip = None  # the same, until the acknowledgements pass over it

    def mount(self):
        """Scan the partition: the next seq, what is acknowledged, what is owed. A foreign
        or unreadable ring is formatted (the outbox holds no billing data). Returns the
        status (flashstore.ringlog STATUS_*)."""
        for _ in self.mount_steps():
            pass
        return self.status

    def mount_steps(self):
        """:meth:`mount` as a generator that yields after each sector's worth of reading
        (the 256 KiB partition is read three times: about 200 yields), so that the uplink
        task mounts it without stalling the event loop (``mounted`` is True at the end;
        nothing may be put before)."""
        r = self.ring
        self.mounted = False
        yield from r.mount_steps()
        st = r.status
        # a ring formatted, blank, unreadable, or whose newest records do not read: the
        # newest seq used may be gone with them
        lost = r.blocked or st != STATUS_OK or r.tail_damaged()
        if r.blocked:
            r.format()
        marked = 0
        top = 0
        first = -1
        oldest = 0  # the seq of the oldest message in the ring (0: none)
        gaps = []  # (first, last) seqs missing between two messages of the ring (at most 8)
        per = r.slots_per_sector
        k = 0
        newest = self._newest = {}
        for rs, tag, rec in r.entries():
            k += 1
            if k % per == 0:
                yield k
            newest[tag] = rs
            v = struct.unpack_from("<I", rec, 0)[0]
            if tag == KIND_ACK:
                if v > marked:
                    marked = v
            else:
                if not oldest:
                    oldest = v
                elif v > top + 1:  # (a sector half erased by a cut, or its bits flipped)
                    if len(gaps) < 8:
                        gaps.append((top + 1, v - 1))
                    else:
                        gaps[-1] = (gaps[-1][0], v - 1)
                if v > top:
                    top = v
        if marked > top:
            top = marked
        # messages older than the ring's oldest went with their sectors: acknowledged, or
        # dropped and reported before this start (their marker may have gone too: counting
        # from it made pending() and the next drop report take them for owed)
        if oldest - 1 > marked:
            marked = oldest - 1
        for rs, tag, rec in r.entries():
            k += 1
            if k % per == 0:
                yield k
            if tag != KIND_ACK and struct.unpack_from("<I", rec, 0)[0] > marked:
                first = rs
                break
        self.next_seq = top + 1
        self.acked = marked
        self._marked = marked
        self._cursor = first
        for a, b in gaps:  # owed messages missing inside the ring: lost, reported as dropped
            if b > marked:
                a = a if a > marked else marked + 1
                self.dropped += b - a + 1
                self._drop_new += b - a + 1
                self._drop_range = (a if self._drop_range is None else self._drop_range[0], b)
        self.skipped = self._skip = None
        if lost and self.floor > self.next_seq:  # on above every number ever used
            self.skipped = self._skip = (self.next_seq, self.floor - 1)
            self.next_seq = self.floor
            self._over_skip()
        self._peeked = None
        self.status = st
        self.mounted = True

    def _over_skip(self):
        # the acknowledgements reached the skipped numbers: no message has them
        s = self._skip
        if s is not None and self.acked >= s[0] - 1:
            if self.acked < s[1]:
                self.acked = s[1]
            self._skip = None

    def pending(self):
        """Messages not yet acknowledged (int)."""
        return self.next_seq - 1 - self.acked

    def put(self, kind, body):
        """Store a message (``body``: bytes/str JSON object text without ``seq``, at most
        BODY_MAX bytes); return its seq, or None when it could not be stored (power-fail
        warning with no erased slot left: counted in ``lost``). ValueError when too long."""
        if isinstance(body, str):
            body = body.encode()
        n = len(body)
        if n > BODY_MAX:
            raise ValueError("outbox message of %d bytes (at most %d)" % (n, BODY_MAX))
        seq = self.next_seq
        urgent = self.supply is not None and self.supply.warning
        if self.reserve is not None and not urgent:
            self._cover(seq)
        rec = self._rec
        struct.pack_into("<IH", rec, 0, seq, n)
        rec[6:6 + n] = body
        for i in range(6 + n, RECORD_SIZE):
            rec[i] = 0
        r = self.ring
        rs = r.next_seq()
        try:
            r.append(rec, kind, urgent)
        except NoSpace:
            self.lost += 1
            return None
        self.next_seq = seq + 1
        self._newest[kind] = rs
        if self._cursor < 0:
            self._cursor = rs
        self._check_dropped()
        return seq

    def _cover(self, seq):
        # raise the floor in flash (both copies) well before ``seq`` reaches it: at most two
        # writes (the first message, or after a damaged copy: the second copy written too)
        for _ in range(2):
            if seq + SEQ_MARGIN < self.limit:
                return
            f = self.floor if self.floor > seq else seq
            got = self.reserve(f + SEQ_BLOCK)  # (in flash before the number is used)
            if got is None:  # not written: asked again at the next message
                return
            self.floor = f + SEQ_BLOCK
            self.limit = got

    def newest(self, kind):
        """The body (bytes) of the newest message of ``kind`` still in the ring (sent or
        not), or None: the uplink finds its load-profile cursor there after a restart."""
        rs = self._newest.get(kind)
        got = self.ring.get(rs) if rs is not None else None
        if got is None or got[1] != kind:
            return None
        rec = got[2]
        n = struct.unpack_from("<H", rec, 4)[0]
        return bytes(rec[6:6 + n])

    def _check_dropped(self):
        r = self.ring
        old = r.oldest_seq()
        if self._cursor < 0 or old <= self._cursor:
            return
        # the sector holding the oldest unacknowledged messages was erased
        self._cursor = old
        self._peeked = None
        first = self.acked + 1
        nxt = self._next_message()
        last = (nxt[0] if nxt is not None else self.next_seq) - 1
        if last >= first:
            n = last - first + 1
            self.dropped += n
            self._drop_new += n
            self._drop_range = (first if self._drop_range is None else self._drop_range[0],
                                last)
            self.acked = last

    def take_dropped(self):
        """(count, first seq, last seq) dropped since the last call, or None."""
        if not self._drop_new:
            return None
        out = (self._drop_new, self._drop_range[0], self._drop_range[1])
        self._drop_new = 0
        self._drop_range = None
        return out

    def _next_message(self):
        # the oldest message after ``acked`` from the cursor on: (seq, kind, body) or None
        r = self.ring
        end = r.next_seq()
        c = self._cursor
        while 0 <= c < end:
            got = r.get(c)
            if got is not None and got[1] != KIND_ACK:
                rec = got[2]
                seq, n = struct.unpack_from("<IH", rec, 0)
                if seq > self.acked:
                    self._cursor = c
                    return seq, got[1], bytes(rec[6:6 + n])
            c += 1
        self._cursor = -1
        return None

    def peek(self):
        """The oldest unacknowledged message: (seq, kind, body bytes), or None."""
        p = self._peeked
        if p is None and self.pending() > 0:  # (none owed: no scan, no frame on the heap)
            p = self._peeked = self._next_message()
        return p

    def ack(self, seq):
        """The broker acknowledged message ``seq`` (the one :meth:`peek` gave)."""
        if seq > self.acked:
            self.acked = seq
        self._over_skip()
        self._peeked = None  # the next peek skips what is acknowledged
        if self.acked - self._marked >= self.ack_every or (self.pending() == 0
                                                            and self.acked > self._marked):
            self.mark()

    def maintain(self):
        """Prepare the next erased sector at a quiet time (at most one sector erase; the ring's
        ``maintain``; nothing during the power-fail warning). The erase can take the oldest
        sector's messages with it: counted as in :meth:`put` (``take_dropped``). Returns the
        number of erases."""
        if self.supply is not None and self.supply.warning:
            return 0
        n = self.ring.maintain(1)
        if n:
            self._check_dropped()
        return n

    def mark(self):
        """Write the acknowledgement marker now (not during the power-fail warning)."""
        if self.acked <= self._marked or (self.supply is not None and self.supply.warning):
            return
        rec = self._rec
        struct.pack_into("<IH", rec, 0, self.acked, 0)
        for i in range(6, RECORD_SIZE):
            rec[i] = 0
        self.ring.append(rec, KIND_ACK)
        self._marked = self.acked
        self._check_dropped()
