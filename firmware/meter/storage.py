# Register storage: the register banks to the flash journal, in a versioned record.
"""Persistence of the energy registers (lib/flashstore/journal.py over the board's
``journal`` partition). No asyncio: the commit loop and the power-fail watch are
firmware/tasks/storage.py. Storage never writes a register except at boot (:meth:`restore`,
before the tasks start); the metering task is the only writer afterwards.

Boot: :meth:`Storage.restore` recovers the newest valid record and raises the registers to it
(never lowers them), then one ``maintain()`` prepares a sector:

- blank flash: FLASH_BLANK logged;
- the newest record read from a sector with a damaged header (lib/flashstore/ringlog.py
  salvages such sectors): STORAGE_RECOVERED logged (value: records salvaged) and the
  registers committed again at once (REASON_REWRITE) so that the newest record lies in a good
  sector;
- an older payload schema (or ours with another register layout) with a converter in the
  migrations (:meth:`Storage.migrations`): converted, STORAGE_MIGRATED logged (value: the old
  schema), committed at once in the current schema and layout;
- a used partition without a valid record: FLASH_CORRUPT logged, registers from zero, F.F.0
  ERR_STORAGE for this run (``fault`` "corrupt");
- a *foreign* journal (records of an unknown schema, e.g. written by a newer firmware, or
  sectors of another layout): STORAGE_FOREIGN logged (value: the schema found, -1 if none);
  nothing is written or erased, the meter keeps metering in RAM, every commit is refused
  (``refused`` counts them) and F.F.0 has ERR_STORAGE (``fault`` "foreign") until the
  sealed E2 ``C.91.8`` calls :meth:`format_journal`, which formats the journal and commits
  the registers in RAM.

Commits: periodic every ``period_s`` of metering time (lib/flashstore/journal.CommitPolicy,
default 300 s, or sooner once 200 Wh of active energy are unsaved; seconds counted with
``ticks_diff``, so the 12.4-day wrap of a real port's ``ticks_ms`` changes nothing; the step
asks the policy (:meth:`interval`; a step before the deadline and below the unsaved energy
that the policy's last answer gave skips the question, whose answer is known:
``CommitPolicy.quiet_s``) and wakes the storage task through ``on_due`` when one is due, so
the commit holds that step's interval), each followed by ``maintain()`` (at most
one sector erase, never on the power-fail path); a power-up whose journal holds the
registers starts the period (no copy at each power-up: a flickering supply would cost a
record per cycle); urgent on the power-fail warning
(:meth:`power_fail_begin`: the partial interval read, then one page program and its
read-back, no erase and no allocation; the board's hold-up time must cover it, with one
retry, docs/BENCHMARKS.md), and then every interval as it registers while the warning lasts
(:meth:`interval`, a consumer of the metering step; firmware/meter/supply.py). A commit
never raises: a failure is logged (STORAGE_WRITE_FAILED, once per episode) and sets
ERR_STORAGE (``fault`` "write") until a commit succeeds. Each record is read back
(lib/flashstore/journal.py "Read-back"): one that did not take (worn flash cells) is not
counted as committed and is written again in the next slot; when that retry takes,
STORAGE_READBACK is logged once per episode (value: the partition offset of the slot that
did not take; the text names sector and slot) and ERR_STORAGE shows (``fault`` "readback")
until 12 commits in a row take at their first program (a chip that fails now and then is one
episode, not an event every few commits).

The record (journal payload schema ``SCHEMA`` = 2, little endian), for a register layout of
``n`` tariff banks of ``w`` registers (lib/energy: k = 8 + n * w registers, totals first)::

    off   size  field
     0     1    n, tariff banks (0..6)
     1     1    w, registers per tariff bank (0, 2, 6, 8)
     2     2    reserved (0)
     4     4    RTC seconds since 2000 (read at the last metering second: the power-fail
                commit does not read the RTC), two u16 halves, low first
     8     4    metering steps (diagnostic), two u16 halves
    12    4k    whole units of each register, u32
    12+4k 4k    residues (chip LSB x 256), u32

12 + 8k bytes: 76 for the totals alone, at most 236 (k = 28) so that the power-fail record
stays one page program (256-byte pages, 16-byte record header): a layout beyond 28
registers is refused (ValueError). Every value is packed from a small int (< 2**30), so the
power-fail commit allocates nothing on a 32-bit port.

Schema 1 (firmware before issue 8, 76 bytes: 8 x u32 whole, 8 x u32 residues of the totals,
u32 RTC seconds, u32 steps, u32 reserved) converts to schema 2 with every total kept and the
tariff banks from zero; a schema-2 record of another layout converts by keeping every
register both layouts have (a register the new layout drops is gone: a configuration
change, logged STORAGE_MIGRATED with value 2).
"""


import struct

import events
from energy import A_MINUS, A_PLUS, COUNT
from flashstore import journal
from meter.supply import PF_MAX_MS

SCHEMA = 2
_HEAD = "<BBHHHHH"
_HEAD_SIZE = 12
MAX_REGISTERS = 28  # (256 - 16 - 12) // 8: one page per record
SCHEMA_1_FMT = "<8I8IIII"  # the record before issue 8 (76 bytes)
_FORCE = -(1 << 29)  # Storage._wh_lim: the policy asked at the next step whatever the energy
_QUIET_MAX_S = 3600  # the policy asked (the monotonic seconds advanced) at least this often


def payload_size(k):
    """Bytes of a schema-2 record of ``k`` registers."""
    return _HEAD_SIZE + 8 * k


def pack(buf, registers, t, steps):
    """Write the schema-2 record of ``registers`` (lib.energy.Registers), RTC seconds ``t``
    and ``steps`` into ``buf`` (bytearray of :func:`payload_size` bytes). Allocation-free
    when ``t`` and ``steps`` are given as (lo, hi) 16-bit halves, and its frames stay on the
    C stack (at most 11 words each: host_tests/unit/test_frames.py)."""
    buf[0] = registers.tariffs
    buf[1] = registers.tariff_width
    buf[2] = 0
    buf[3] = 0
    _pack_halves(buf, t, steps)
    o = _pack_words(buf, _HEAD_SIZE, registers.whole)
    _pack_words(buf, o, registers.res)
    return buf


def _pack_halves(buf, t, steps):
    # bytes 4..11 of the head: the RTC seconds and the steps, two u16 halves each
    struct.pack_into("<HH", buf, 4, t[0], t[1])
    struct.pack_into("<HH", buf, 8, steps[0], steps[1])


def _pack_words(buf, o, words):
    # ``words`` as u32 from offset ``o`` on; returns the offset after them (a while loop:
    # a for loop's iterator takes 4 words of the frame)
    i = 0
    while i < len(words):
        struct.pack_into("<I", buf, o, words[i])
        o += 4
        i += 1
    return o


class _Catch:
    """``with catch:`` keeps the exception (an Exception) the block raised in ``error``
    (None: none) and goes on after the block. The periodic commit's ``try: ... except
    Exception as e`` kept two exception-stack entries (6 words) in its frame: 18 words, so
    MicroPython took it from the heap at every commit (py/objfun.c
    ``VM_MAX_STATE_ON_STACK``, 11 words); a ``with`` keeps one."""

    def __init__(self):
        self.error = None  # (in the instance now: a first store under heap_lock() raised)

    def __enter__(self):
        self.error = None
        return self

    def __exit__(self, t, e, tb):
        if isinstance(e, Exception):
            self.error = e
            return True
        return False  # (none, or KeyboardInterrupt / SystemExit: on its way)


def unpack(p):
    """(n, w, whole list, res list, RTC seconds, steps) of a schema-2 record ``p``; ValueError
    if its length does not match its layout."""
    n, w, _r, tlo, thi, slo, shi = struct.unpack_from(_HEAD, p, 0)
    k = COUNT + n * w
    if len(p) != payload_size(k):
        raise ValueError("schema 2 record of %d bytes for %d registers" % (len(p), k))
    v = struct.unpack_from("<%dI" % (2 * k), p, _HEAD_SIZE)
    return n, w, list(v[:k]), list(v[k:]), tlo | thi << 16, slo | shi << 16


def convert(n, w, whole, res, t, steps, tariffs, width):
    """A schema-2 record of layout (``tariffs``, ``width``) holding every register of the
    (``n``, ``w``) values that the new layout has too; the others start from zero."""
    k = COUNT + tariffs * width
    nw = [0] * k
    nr = [0] * k
    for i in range(COUNT):
        nw[i] = whole[i]
        nr[i] = res[i]
    for b in range(min(n, tariffs)):
        for j in range(min(w, width)):
            nw[COUNT + b * width + j] = whole[COUNT + b * w + j]
            nr[COUNT + b * width + j] = res[COUNT + b * w + j]
    buf = bytearray(payload_size(k))
    struct.pack_into(_HEAD, buf, 0, tariffs, width, 0, t & 0xFFFF, t >> 16 & 0xFFFF,
                     steps & 0xFFFF, steps >> 16 & 0xFFFF)
    struct.pack_into("<%dI" % (2 * k), buf, _HEAD_SIZE, *(nw + nr))
    return bytes(buf)


def from_schema_1(p, tariffs=0, width=0):
    """The schema-1 record ``p`` (76 bytes) as a schema-2 record of layout (``tariffs``,
    ``width``): every total kept, tariff banks from zero. ValueError if ``p`` is no schema-1
    record."""
    if len(p) != struct.calcsize(SCHEMA_1_FMT):
        raise ValueError("schema 1 record of %d bytes" % len(p))
    v = struct.unpack(SCHEMA_1_FMT, p)
    return convert(0, 0, list(v[:COUNT]), list(v[COUNT:2 * COUNT]), v[16], v[17], tariffs,
                   width)

FAULT_FOREIGN = "foreign"
FAULT_CORRUPT = "corrupt"
FAULT_WRITE = "write"
FAULT_READBACK = "readback"


class Storage:
    """``flash``: the journal partition (flashstore.flash interface); ``registers``:
    lib.energy.Registers; ``metering``: meter.metering.Metering (``steps``); ``clock``: the
    board's metering clock (``ticks_ms``/``ticks_diff``, ``time()`` RTC seconds); ``log``:
    lib.events.EventLog; ``period_s``: periodic commit. ValueError when the register layout
    does not fit one page (``MAX_REGISTERS``).

    ``status``: the journal's status string after :meth:`restore` (``ok``, ``blank``,
    ``corrupt``, ``foreign``; ``ok`` also once a migration was rewritten). ``fault``: None, or
    why F.F.0 shows ERR_STORAGE (FAULT_FOREIGN, FAULT_CORRUPT, FAULT_WRITE,
    FAULT_READBACK; the journal's ``bad_writes`` counts the programs that did not take). Counters:
    ``commits``, ``powerfail_commits``, ``refused`` (commits not attempted on a foreign
    journal), ``write_errors``.
    """

    def __init__(self, flash, registers, metering, clock, log,
                 period_s=journal.DEFAULT_PERIOD_S, supply=None):
        k = len(registers)
        if k > MAX_REGISTERS:
            raise ValueError("%d registers do not fit a one-page journal record (max %d)"
                             % (k, MAX_REGISTERS))
        self.registers = registers
        self.metering = metering
        self.clock = clock
        self.log = log
        self.supply = supply  # meter.supply.Supply (the power-fail warning) or None
        self.on_interval = None  # called after a commit made during the warning (test LED)
        # called by the step when the policy says a commit is due (the storage task's
        # wake-up: it sleeps until then, not every second; tasks/storage.py)
        self.on_due = None
        self.power_fail = None  # the board's power-fail input (Pin-like), set by the app
        self.status = None
        self.payload_size = payload_size(k)
        self.journal = journal.Journal(flash, self.payload_size, SCHEMA, log=self._say,
                                       migrations=self.migrations())
        self.policy = journal.CommitPolicy(period_s=period_s)
        self.commits = 0
        self.powerfail_commits = 0
        self.refused = 0
        self.write_errors = 0
        self.fault = None
        # the episodes under way, an event logged once each: 1 STORAGE_WRITE_FAILED (until a
        # commit succeeds), 2 STORAGE_READBACK (until 12 commits in a row take at their first
        # program: an intermittent chip is one episode, not an event every few commits);
        # bits 2..: that run of commits so far
        self._failing = 0
        self.last_text = ""
        self._saved = [0, 0]  # A+ and A- (Wh) at the last commit
        # monotonic seconds for the commit policy, from ticks_diff: a real port's ticks_ms
        # wraps every 2**30 ms (12.4 days), so ticks_ms() // 1000 would stall the policy
        self._mono_s = 0
        self._mono_ms = 0
        self._last_ms = clock.ticks_ms()
        # the step's cheap test (interval): the policy is asked only once the metering
        # clock reaches _due_ms or the unsaved energy _wh_lim (CommitPolicy.quiet_s); _FORCE:
        # ask at the next step (a commit, the boot)
        self._due_ms = self._last_ms
        self._wh_lim = _FORCE
        self._step_ms = self._last_ms  # the metering clock's ticks at the last step (interval)
        self._t = [0, 0]  # RTC seconds for the next record, two 16-bit halves
        self._t_lo = self._t_hi = 0  # RTC seconds at the last stamp, 16-bit halves
        self._t_ms = clock.ticks_ms()  # the metering clock's ticks at the last stamp
        self.on_warning = None  # callable(): the warning began (wakes housekeeping)
        self._steps = [0, 0]
        self._buf = bytearray(self.payload_size)
        self._pf_ok = False
        self._pf_urgent = False
        # urgent commits used prepared slots: the erase-ahead is owed as soon as the warning
        # ends (the step wakes the storage task: a dip without a cut must not leave it to
        # the next periodic commit, 300 s on, when the next warning may find no slot)
        self.owed = False
        self._pf_commit_cb = self._pf_commit  # bound once: none made on the power-fail path
        self._catch = _Catch()  # the journal's exception of a commit (commit())
        self._reason = journal.REASON_PERIODIC  # of the commit under way (_put)

    def migrations(self):
        """{schema: converter} for lib/flashstore/journal.Journal: schema 1 and our own
        schema of another register layout, both to this layout (module docstring)."""
        regs = self.registers
        n = regs.tariffs
        w = regs.tariff_width

        def own(p):
            return convert(*(unpack(p) + (n, w)))

        return {1: lambda p: from_schema_1(p, n, w), SCHEMA: own}

    def _say(self, text):
        self.last_text = text

    def unsaved_wh(self):
        """Active energy (A+ + A-, Wh) since the last commit: the unsaved-energy trigger."""
        w = self.registers.whole
        s = self._saved
        return (w[A_PLUS] - s[0]) + (w[A_MINUS] - s[1])

    def _mark_saved(self):
        w = self.registers.whole
        s = self._saved
        s[0] = w[A_PLUS]
        s[1] = w[A_MINUS]
        self._wh_lim = _FORCE  # (a commit, the boot: the step asks the policy again)

    def tick(self):
        """Advance the monotonic seconds (``mono_s``) by the metering clock's elapsed time."""
        clock = self.clock
        now = clock.ticks_ms()
        ms = self._mono_ms + clock.ticks_diff(now, self._last_ms)
        self._last_ms = now
        if ms > 0:
            self._mono_s += ms // 1000
            self._mono_ms = ms % 1000

    def _catch_up(self):
        # the power-fail path (no clock read but ticks): the monotonic seconds as of the last
        # step outside the warning, as the step's tick each second left them before the
        # step skipped the policy (issue 12): the urgent commit's policy.mark(), so a warning
        # without a cut leaves the periodic schedule where asking each second left it (a
        # stale mono_s, up to a period old, made the next periodic commit early)
        c = self.clock
        d = c.ticks_diff(self._step_ms, self._last_ms)
        if d > 0:
            d += self._mono_ms
            self._last_ms = self._step_ms
            self._mono_s += d // 1000
            self._mono_ms = d % 1000

    @property
    def mono_s(self):
        """Seconds of metering time since boot (the commit policy's clock)."""
        return self._mono_s

    def stamp(self):
        """Cache the RTC seconds with the metering clock's ticks for the payload (outside
        the power-fail path: on a 32-bit port the RTC value itself is a long int from 2034
        on). Called by every periodic commit, the housekeeping task (at least hourly) and a
        clock set; the power-fail record's stamp is this one advanced by the whole seconds of
        ticks since (:meth:`_advance`), so it needs no per-second refresh."""
        c = self.clock
        t = c.time()
        self._t_ms = c.ticks_ms()
        self._t_lo = t & 0xFFFF
        self._t_hi = (t >> 16) & 0xFFFF
        self._t[0] = self._t_lo
        self._t[1] = self._t_hi

    def _advance(self):
        # the power-fail path: the last stamp + the whole seconds of ticks since, in 16-bit
        # halves (small ints only, no clock read but ticks: allocation-free)
        c = self.clock
        d = c.ticks_diff(c.ticks_ms(), self._t_ms)
        lo = self._t_lo + (d // 1000 if d > 0 else 0)
        self._t[0] = lo & 0xFFFF
        self._t[1] = (self._t_hi + (lo >> 16)) & 0xFFFF

    def payload(self):
        """The registers as the schema-2 record (module docstring), in a preallocated buffer
        (returned; valid until the next call). Allocation-free: every value a small int."""
        st = self.metering.steps
        s = self._steps
        s[0] = st & 0xFFFF
        s[1] = (st >> 16) & 0xFFFF
        return pack(self._buf, self.registers, self._t, s)

    def maintain(self):
        """The journal's erase-ahead (at most one sector erase; never during the warning:
        the caller checks)."""
        self.owed = False
        try:
            self.journal.maintain()
        except Exception as e:  # flash trouble must never stop metering
            self._failed(journal.REASON_PERIODIC, e)

    def _failed(self, reason, e):
        # ``e``: why the commit (or erase-ahead) failed. None: the record is committed, but a
        # program did not read back first (worn or faulty flash cells): STORAGE_READBACK
        # once per episode (until 12 commits in a row take at their first program), naming
        # where; ERR_STORAGE meanwhile
        if e is None:
            self._failing &= 2  # (the write episode is over: committed; a run broken)
            if self.fault is None or self.fault == FAULT_WRITE:
                self.fault = FAULT_READBACK
            if self._failing & 2:
                return
            self._failing |= 2
            j = self.journal
            a = j.bad_at
            self.log.log(events.STORAGE_READBACK, a, "journal: a record did not read back at "
                         "sector %d slot %d (offset %d; reason %d): written again, %d "
                         "programs did not take so far" % (
                             a // j.sector_size, a % j.sector_size // j.slot_size, a, reason,
                             j.bad_writes))
            return
        self.write_errors += 1
        if self.fault is None or self.fault == FAULT_READBACK:
            self.fault = FAULT_WRITE
        self._failing &= 3  # (a read-back episode's run of clean commits broken)
        if not self._failing & 1:  # once per episode (until a commit succeeds)
            self._failing |= 1
            self.log.log(events.STORAGE_WRITE_FAILED, reason, "journal: %s" % e)

    def restore(self):
        """Recover at boot (module docstring); returns the journal status string
        (STATUS_OK also after a migration once the converted record is written)."""
        j = self.journal
        log = self.log
        self.stamp()
        p = j.recover()
        st = j.status
        if p is not None:
            try:
                n, w, whole, res, t, steps = unpack(p)
            except ValueError as e:  # a valid record whose header contradicts its length
                j.refuse(str(e))  # (another firmware's): foreign, never a boot that raises
                st = j.status
                p = None
        if p is not None:
            regs = self.registers
            if (n, w) != (regs.tariffs, regs.tariff_width):
                # our schema and size, another layout (3 banks x 2 and 1 x 6 are both 14
                # registers): the journal matched it by size; converted, never loaded by
                # position (that put tariff 2's A+ into tariff 1's Q1)
                self._say("journal: register layout %d x %d converted to %d x %d" % (
                    n, w, regs.tariffs, regs.tariff_width))
                whole, res = unpack(convert(n, w, whole, res, t, steps, regs.tariffs,
                                            regs.tariff_width))[2:4]
                st = j.status = journal.STATUS_MIGRATED
            regs.restore(whole, res)
        if j.newest_damaged:  # (older records behind a damaged header, e.g. left by a
            # torn erase, change nothing and are only counted in the journal's summary)
            log.log(events.STORAGE_RECOVERED, j.salvaged,
                    "journal: newest record read from a sector with a damaged header "
                    "(%d records salvaged from %d sectors), rewritten"
                    % (j.salvaged, j.damaged_sectors))
        if st == journal.STATUS_BLANK:
            log.log(events.FLASH_BLANK, 0, self.last_text)
        elif st == journal.STATUS_MIGRATED:
            log.log(events.STORAGE_MIGRATED, j.found_schema, self.last_text)
        elif st == journal.STATUS_FOREIGN:
            self.fault = FAULT_FOREIGN
            found = j.found_schema
            log.log(events.STORAGE_FOREIGN, -1 if found is None else found, self.last_text)
            self._mark_saved()
            self.status = st
            return st  # nothing written, nothing erased: registers in RAM until C.91.8
        elif st == journal.STATUS_CORRUPT:
            self.fault = FAULT_CORRUPT
            log.log(events.FLASH_CORRUPT, j.corrupt + j.torn, self.last_text)
        if j.torn or j.corrupt:
            log.log(events.FLASH_CORRUPT, j.torn + j.corrupt, "records skipped at boot")
        self.maintain()
        if st == journal.STATUS_MIGRATED or j.newest_damaged:
            ok = self.commit(journal.REASON_REWRITE)
            self.maintain()
            if ok and st == journal.STATUS_MIGRATED:
                st = journal.STATUS_OK  # converted and rewritten: an ordinary journal now
        self._mark_saved()
        if st == journal.STATUS_OK:  # the journal holds these registers: the period starts
            self.policy.mark(self._mono_s)  # now (no copy at each power-up: flicker wear)
        self.status = st
        return st

    def commit(self, reason=journal.REASON_PERIODIC):
        """Commit the registers (REASON_POWERFAIL: urgent, allocation-free). Returns True if
        written; never raises (module docstring)."""
        if self.journal.blocked:
            self.refused += 1
            return False
        urgent = reason == journal.REASON_POWERFAIL
        if not urgent:  # the power-fail commit reads only ticks: the stamp advanced
            self.stamp()
            self.tick()
        else:
            self._catch_up()
            self._advance()
        self._reason = reason
        bad = self.journal.bad_writes
        e = self._put_caught()
        if e is not None:  # NoSpace, flash errors (a record that never read back): metering
            self._failed(reason, e)  # goes on
            return False
        if self.journal.bad_writes != bad:  # committed, but a program did not take first
            self._failed(reason, None)
        elif self._failing:  # took at once: the write episode is over, the read-back one
            # after 12 in a row (an hour of periodic commits: __init__)
            self._failing = (self._failing & ~1) + 4 if self._failing & 2 else 0
            if self._failing >= 2 + 4 * 12:
                self._failing = 0
                if self.fault == FAULT_READBACK:
                    self.fault = None
        if self.fault == FAULT_WRITE:
            self.fault = FAULT_READBACK if self._failing & 2 else None
        self.policy.mark(self._mono_s)
        self._mark_saved()
        self.commits += 1
        if urgent:
            self.powerfail_commits += 1
            self.owed = True
        return True

    # (commit() in three frames of at most 11 words each: on the C stack, test_frames.py)
    def _put_caught(self):
        # the record into the journal: None, or the exception it raised
        c = self._catch
        with c:
            self._put()
        return c.error

    def _put(self):
        r = self._reason
        self.journal.commit(self.payload(), r, r == journal.REASON_POWERFAIL)

    def format_journal(self):
        """Sealed E2 C.91.8 (the caller checks the seal): format a write-protected (foreign)
        journal, then commit the registers in RAM (REASON_FORMAT) and clear the fault.

        Returns True when done, False if the journal is not write-protected (a readable
        journal is never formatted: a cut between the format and the commit would lose it)
        or the flash failed. Blocks for one sector erase per sector (16 x 45 ms typ on a
        W25Q16JV, 400 ms max). A cut during the format leaves the sectors not yet erased
        foreign, so the next boot refuses the journal again and the command is repeated."""
        j = self.journal
        if not j.blocked:
            return False
        found = j.found_schema
        try:
            j.format()
        except Exception as e:
            self._failed(journal.REASON_FORMAT, e)
            try:
                j.recover()  # rescan: still foreign, or whatever the failure left
            except Exception:
                j.block()  # unreadable now: stay write-protected
            self.fault = FAULT_FOREIGN if j.blocked else FAULT_WRITE
            self.status = j.status
            return False
        self.fault = None
        ok = self.commit(journal.REASON_FORMAT)
        self.status = journal.STATUS_OK if ok else j.status
        self.log.log(events.STORAGE_FORMATTED, -1 if found is None else found,
                           "journal formatted (E2 C.91.8), registers committed: %s" % ok)
        return ok

    # -- the power-fail warning (firmware/meter/supply.py) ---------------------------------

    def power_fail_begin(self):
        """The power-fail input rose: the warning starts (``supply.warning``) and the urgent
        commit is made (:meth:`power_fail_commit`). Returns True if written."""
        sp = self.supply
        sp.warning = True
        sp.since = self.clock.ticks_ms()
        return self.power_fail_commit()

    def power_fail_commit(self):
        """The urgent commit: the partial metering interval is read, then committed (one
        page program and its read-back, a second program if the first did not take: no
        erase, no allocation), and only then is what the step noted logged. Returns True if
        written."""
        self._pf_ok = False
        self._pf_urgent = True  # (the step's own interval: committed once, below)
        try:
            self.metering.finish(self._pf_commit_cb)
        finally:
            self._pf_urgent = False
        return self._pf_ok

    def _pf_commit(self):
        self._pf_ok = self.commit(journal.REASON_POWERFAIL)

    def pf_active(self):
        """True while the warning lasts; ends it when the board's ``power_fail`` input reads
        released (``power_fail``: set by the app) or after PF_MAX_MS."""
        sp = self.supply
        if sp is None or not sp.warning:
            return False
        c = self.clock
        pin = self.power_fail
        if (pin is not None and pin.value()
                and c.ticks_diff(c.ticks_ms(), sp.since) < PF_MAX_MS):
            return True
        sp.warning = False
        return False

    def interval(self, ea, er, es, dt):
        """Consumer of the metering step: during the warning every interval is committed as
        it reaches the registers (the journal holds what RAM holds whenever the supply
        goes), then ``on_interval`` (the test LED shows what it owes at once)."""
        sp = self.supply
        if sp is not None and sp.warning and not self._pf_urgent and self.pf_active():
            self.commit(journal.REASON_POWERFAIL)
            cb = self.on_interval
            if cb is not None:
                cb()
        elif self.on_due is not None:
            # before _due_ms and below _wh_lim unsaved the policy says no (CommitPolicy.
            # quiet_s): most steps end here (issue 12: 3 calls a second instead of 8; the
            # arguments reused as locals: a frame of 11 words at most, on the C stack)
            sp = self.clock
            es = sp.ticks_ms()
            self._step_ms = es  # (the power-fail commit's monotonic seconds: _catch_up)
            if sp.ticks_diff(es, self._due_ms) < 0:
                ea = self.registers.whole
                er = self._saved
                if (ea[A_PLUS] - er[0]) + (ea[A_MINUS] - er[1]) < self._wh_lim:
                    return
            if not self.journal.blocked:
                self._wake_if_due()

    def _wake_if_due(self):
        # a periodic commit due (period elapsed, or 200 Wh unsaved), or the erase-ahead
        # owed after a warning: wake the storage task, which commits or erases right after
        # this step (comparisons only: allocation-free; a frame apart from interval's:
        # meter/tariffs.py ``interval``); when the policy says no, until when it stays no
        self.tick()
        u = self.unsaved_wh()
        if self.owed or self.policy.due(self._mono_s, journal.REASON_PERIODIC, u):
            self._wh_lim = _FORCE  # (asked again at the next step until the task acts)
            self.on_due()
            return
        p = self.policy
        self._wh_lim = p.quiet_wh(self._mono_s)
        s = p.quiet_s(self._mono_s, u)
        if s > _QUIET_MAX_S:
            s = _QUIET_MAX_S
        # mono_s reaches mono_s + s when the ticks since _last_ms reach 1000 s - _mono_ms
        self._due_ms = self.clock.ticks_add(self._last_ms, s * 1000 - self._mono_ms)

    def second(self):
        """The housekeeping task (each second during a warning, else at its deadlines): the
        RTC stamp the power-fail record advances from (:meth:`stamp`) and the end of a
        warning whose input was released (:meth:`pf_active`). True while the warning
        lasts."""
        self.stamp()
        return self.pf_active()
