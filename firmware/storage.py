# Storage task: registers to the flash journal, periodically and on the power-fail warning.
"""Persistence of the energy registers (lib/journal.py over the board's ``journal`` partition).

Boot: :meth:`Storage.restore` recovers the newest valid record and raises the registers to it
(never lowers them), then one ``maintain()`` prepares a sector:

- blank flash: FLASH_BLANK logged;
- the newest record read from a sector with a damaged header (lib/ringlog.py salvages such
  sectors): STORAGE_RECOVERED logged (value: records salvaged) and the registers committed
  again at once (REASON_REWRITE) so that the newest record lies in a good sector;
- an older payload schema with a converter in ``MIGRATIONS``: converted, STORAGE_MIGRATED
  logged (value: old schema), committed at once in the current schema;
- a used partition without a valid record: FLASH_CORRUPT logged, registers from zero, F.F.0
  ERR_STORAGE for this run (``fault`` "corrupt");
- a *foreign* journal (records of an unknown schema, e.g. written by a newer firmware, or
  sectors of another layout): STORAGE_FOREIGN logged (value: the schema found, -1 if none);
  nothing is written or erased, the meter keeps metering in RAM, every commit is refused
  (``refused`` counts them) and F.F.0 has ERR_STORAGE (``fault`` "foreign") until the
  sealed E2 ``C.91.8`` calls :meth:`format_journal`, which formats the journal and commits
  the registers in RAM.

Run: every ``period_s`` of metering time (lib/journal.CommitPolicy, default 300 s, or sooner
once 200 Wh of active energy are unsaved; seconds counted with ``ticks_diff``, so the
12.4-day wrap of a real port's ``ticks_ms`` changes nothing) the registers are committed,
followed by
``maintain()`` (at most one sector erase, never on the power-fail path). The power-fail
input (``board.power_fail``, 1 = supply failing) triggers the urgent commit: the partial
metering interval is read first, then one page program, no erase, no read and no allocation
(lib/journal.py); after it the POWER_FAIL event and the event logs' pending flood summaries
(``Meter.events_tick``) are written; while the warning lasts nothing erases flash and each
further metering interval is committed the same way (:meth:`Storage.power_fail_begin`). The
board's hold-up time must cover it: see docs/BENCHMARKS.md. A commit never raises: a failure
is logged (STORAGE_WRITE_FAILED, once per episode) and sets ERR_STORAGE (``fault`` "write")
until a commit succeeds.

Payload (76 bytes, schema 1, little endian): 8 x u32 whole units and 8 x u32 residues of
lib/energy.Registers (A+, A-, Q1..Q4, S import, S export), u32 RTC seconds since 2000 (read
at the last metering second: the power-fail commit does not read the RTC), u32 metering
steps (diagnostic), u32 reserved. Every value is packed from a small int (< 2**30), the two
u32 counters as 16-bit halves, so the power-fail commit allocates nothing on a 32-bit port.
"""

import struct

import events
import journal
from energy import A_MINUS, A_PLUS, COUNT

SCHEMA = 1
# Older payload schemas this firmware converts: {schema: function(old payload) -> schema-1
# payload of PAYLOAD_SIZE bytes, ValueError if impossible}. Schema 1 is the first: none yet.
MIGRATIONS = {}
_FMT = "<8I8IIII"
PAYLOAD_SIZE = struct.calcsize(_FMT)

# A power-fail warning lasts at most this long (ms of metering time): a board's hold-up time
# is far shorter, so an input asserted longer is stuck, and normal commits (which erase)
# resume rather than wait for a power loss that does not come.
PF_MAX_MS = 10000

FAULT_FOREIGN = "foreign"
FAULT_CORRUPT = "corrupt"
FAULT_WRITE = "write"


class Storage:
    """``meter``: firmware.app.Meter; ``flash``: lib/flash interface of the journal partition.

    ``fault``: None, or why F.F.0 shows ERR_STORAGE (FAULT_FOREIGN, FAULT_CORRUPT,
    FAULT_WRITE). Counters: ``commits``, ``powerfail_commits``, ``refused`` (commits not
    attempted on a foreign journal), ``write_errors``.
    """

    def __init__(self, meter, flash, period_s=journal.DEFAULT_PERIOD_S):
        self.meter = meter
        self.journal = journal.Journal(flash, PAYLOAD_SIZE, SCHEMA, log=self._say,
                                       migrations=MIGRATIONS)
        self.policy = journal.CommitPolicy(period_s=period_s)
        self.commits = 0
        self.powerfail_commits = 0
        self.refused = 0
        self.write_errors = 0
        self.fault = None
        self._failing = False
        self.last_text = ""
        self._saved = [0, 0]  # A+ and A- (Wh) at the last commit
        # monotonic seconds for the commit policy, from ticks_diff: a real port's ticks_ms
        # wraps every 2**30 ms (12.4 days), so ticks_ms() // 1000 would stall the policy
        self._mono_s = 0
        self._mono_ms = 0
        self._last_ms = meter.board.clock.ticks_ms()
        self._t_lo = 0  # RTC seconds at the last stamp, two 16-bit halves
        self._t_hi = 0
        self._buf = bytearray(PAYLOAD_SIZE)
        self._pf_ok = False
        self._pf_since = 0
        # bound once: a bound method made on the power-fail path would allocate
        self._pf_commit_cb = self._pf_commit
        self._pf_interval_cb = self._pf_interval

    def _say(self, text):
        self.last_text = text

    def _unsaved_wh(self):
        # active energy (A+ + A-) since the last commit drives the unsaved-energy trigger
        w = self.meter.registers.whole
        s = self._saved
        return (w[A_PLUS] - s[0]) + (w[A_MINUS] - s[1])

    def _mark_saved(self):
        w = self.meter.registers.whole
        s = self._saved
        s[0] = w[A_PLUS]
        s[1] = w[A_MINUS]

    def _tick(self):
        """Advance the monotonic seconds (``_mono_s``) by the metering clock's elapsed time."""
        clock = self.meter.board.clock
        now = clock.ticks_ms()
        ms = self._mono_ms + clock.ticks_diff(now, self._last_ms)
        self._last_ms = now
        if ms > 0:
            self._mono_s += ms // 1000
            self._mono_ms = ms % 1000

    def _stamp(self):
        """Cache the RTC seconds for the payload (outside the power-fail path: on a 32-bit
        port the RTC value itself is a long int from 2034 on)."""
        t = self.meter.board.clock.time()
        self._t_lo = t & 0xFFFF
        self._t_hi = (t >> 16) & 0xFFFF

    def payload(self):
        """The registers as the schema-1 payload (module docstring), in a preallocated buffer
        (returned; valid until the next call). Allocation-free: packs from the register
        lists in place, every value a small int."""
        r = self.meter.registers
        buf = self._buf
        o = 0
        w = r.whole
        for i in range(len(w)):
            struct.pack_into("<I", buf, o, w[i])
            o += 4
        w = r.res
        for i in range(len(w)):
            struct.pack_into("<I", buf, o, w[i])
            o += 4
        st = self.meter.metering.steps
        struct.pack_into("<HHHHI", buf, o, self._t_lo, self._t_hi, st & 0xFFFF,
                         (st >> 16) & 0xFFFF, 0)
        return buf

    def _maintain(self):
        try:
            self.journal.maintain()
        except Exception as e:  # flash trouble must never stop metering
            self._failed(journal.REASON_PERIODIC, e)

    def _failed(self, reason, e):
        self.write_errors += 1
        if self.fault is None:
            self.fault = FAULT_WRITE
        if not self._failing:  # once per episode (until a commit succeeds)
            self._failing = True
            self.meter.log.log(events.STORAGE_WRITE_FAILED, reason, "journal: %s" % e)

    def restore(self):
        """Recover at boot (module docstring); returns the journal status string
        (STATUS_OK also after a migration once the converted record is written)."""
        j = self.journal
        log = self.meter.log
        self._stamp()
        p = j.recover()
        st = j.status
        if p is not None:
            v = struct.unpack(_FMT, p)
            self.meter.registers.restore(list(v[:COUNT]), list(v[COUNT:2 * COUNT]))
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
            return st  # nothing written, nothing erased: registers in RAM until C.91.8
        elif st == journal.STATUS_CORRUPT:
            self.fault = FAULT_CORRUPT
            log.log(events.FLASH_CORRUPT, j.corrupt + j.torn, self.last_text)
        if j.torn or j.corrupt:
            log.log(events.FLASH_CORRUPT, j.torn + j.corrupt, "records skipped at boot")
        self._maintain()
        if st == journal.STATUS_MIGRATED or j.newest_damaged:
            ok = self.commit(journal.REASON_REWRITE)
            self._maintain()
            if ok and st == journal.STATUS_MIGRATED:
                st = journal.STATUS_OK  # converted and rewritten: an ordinary journal now
        self._mark_saved()
        if st == journal.STATUS_OK:  # the journal holds these registers: the period starts
            self.policy.mark(self._mono_s)  # now (no copy at each power-up: flicker wear)
        return st

    def commit(self, reason=journal.REASON_PERIODIC):
        """Commit the registers (REASON_POWERFAIL: urgent, allocation-free). Returns True if
        written; never raises (module docstring)."""
        j = self.journal
        if j.blocked:
            self.refused += 1
            return False
        urgent = reason == journal.REASON_POWERFAIL
        if not urgent:  # the power-fail commit reads no clock: values of the last second
            self._stamp()
            self._tick()
        try:
            j.commit(self.payload(), reason, urgent)
        except Exception as e:  # NoSpace, flash errors: metering goes on
            self._failed(reason, e)
            return False
        self._failing = False
        if self.fault == FAULT_WRITE:
            self.fault = None
        self.policy.mark(self._mono_s)
        self._mark_saved()
        self.commits += 1
        if urgent:
            self.powerfail_commits += 1
        return True

    def force_commit(self, reason):
        """Commit now even if the registers went down (cold start under open seal only)."""
        return self.commit(reason)

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
            self.meter.storage_status = j.status
            return False
        self.fault = None
        ok = self.commit(journal.REASON_FORMAT)
        self.meter.storage_status = journal.STATUS_OK if ok else j.status
        self.meter.log.log(events.STORAGE_FORMATTED, -1 if found is None else found,
                           "journal formatted (E2 C.91.8), registers committed: %s" % ok)
        return ok

    async def run(self):
        clock = self.meter.board.clock
        while True:
            await clock.sleep_ms(1000)
            self._stamp()
            self._tick()
            if self.journal.blocked:
                continue
            if getattr(self.meter, "power_warning", False) and self._pf_active():
                continue  # no periodic commit, no erase while the supply may go
            if self.policy.due(self._mono_s, journal.REASON_PERIODIC, self._unsaved_wh()):
                self.commit(journal.REASON_PERIODIC)
                self._maintain()

    async def power_fail_watch(self, board):
        """Wait for the power-fail interrupt (``board.on_power_fail(handler)`` installs it on
        the rising edge of ``board.power_fail``), then handle the warning once per rising
        edge (:meth:`power_fail_begin`)."""
        import asyncio

        # ISR-safe flag on real boards; the virtual board raises its "interrupt" from task
        # context and supplies a plain Event (ThreadSafeFlag wakes through the poller there).
        make = getattr(board, "irq_flag", None)
        flag = make() if make is not None else asyncio.ThreadSafeFlag()
        board.on_power_fail(lambda _pin: flag.set())
        while True:
            await flag.wait()
            if hasattr(flag, "clear"):
                flag.clear()  # asyncio.Event; ThreadSafeFlag clears itself
            if board.power_fail.value() and not self.meter.power_warning:
                self.power_fail_begin()

    def power_fail_commit(self):
        """The urgent commit: the partial metering interval is read, then committed (one
        page program: no erase, no read, no allocation), and only then is what the step
        noted logged. Returns True if written."""
        self._pf_ok = False
        self.meter.metering.finish(self._pf_commit_cb)
        return self._pf_ok

    def _pf_commit(self):
        self._pf_ok = self.commit(journal.REASON_POWERFAIL)

    def power_fail_begin(self):
        """The power-fail warning (the supply goes after the board's hold-up time): the urgent
        commit first; then, while the input stays asserted (at most ``PF_MAX_MS``), nothing
        erases flash (no periodic commit or maintain(), event records appended urgently,
        configuration writes held back: firmware/app.py ``power_warning``), every metering
        interval is committed urgently as it reaches the registers (so the journal holds
        what RAM holds whenever the supply goes), and the test pulses owed are shown at once.
        The warning ends when the input is released (a brown-out) or after ``PF_MAX_MS``."""
        m = self.meter
        m.power_warning = True
        self._pf_since = m.board.clock.ticks_ms()
        self.power_fail_commit()
        m.metering.on_interval = self._pf_interval_cb
        m.led_restart()
        m.log.log(events.POWER_FAIL)
        # then the flood summaries still counted in RAM (attempts during a lockout,
        # refusals): after the registers, within the hold-up time (urgent appends: no erase)
        tick = getattr(m, "events_tick", None)
        if tick is not None:
            tick(True)

    def _pf_active(self):
        # True while the warning lasts; ends it when the input is released or too old
        m = self.meter
        clock = m.board.clock
        if (m.board.power_fail.value()
                and clock.ticks_diff(clock.ticks_ms(), self._pf_since) < PF_MAX_MS):
            return True
        m.power_warning = False
        m.metering.on_interval = None
        return False

    def _pf_interval(self):
        # an interval reached the registers during the warning: commit it at once
        if self._pf_active():
            self.commit(journal.REASON_POWERFAIL)
            self.meter.led_now()
