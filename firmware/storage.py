# Storage task: registers to the flash journal, periodically and on the power-fail warning.
"""Persistence of the energy registers (lib/journal.py over the board's ``journal`` partition).

Boot: :meth:`Storage.restore` recovers the newest valid record and raises the registers to it
(never lowers them); blank flash logs FLASH_BLANK, a used partition without a valid record or a
foreign image logs FLASH_CORRUPT; then one ``maintain()`` prepares a sector.

Run: every ``period_s`` of metering time (lib/journal.CommitPolicy, default 300 s, or sooner
once 200 Wh of active energy are unsaved) the registers are committed, followed by
``maintain()`` (at most one sector erase, never on the power-fail path). The power-fail
input (``board.power_fail``, 1 = supply failing) triggers the urgent commit: the partial
metering interval is read first, then one page program, no erase and no read
(lib/journal.py). The board's hold-up time must cover it: see docs/BENCHMARKS.md.

Payload (76 bytes, schema 1, little endian): 8 x u32 whole units and 8 x u32 residues of
lib/energy.Registers (A+, A-, Q1..Q4, S import, S export), u32 RTC seconds since 2000 at the
commit, u32 metering steps (diagnostic), u32 reserved.
"""

import struct

import events
import journal
from energy import COUNT

SCHEMA = 1
_FMT = "<8I8IIII"
PAYLOAD_SIZE = struct.calcsize(_FMT)


class Storage:
    """``meter``: firmware.app.Meter; ``flash``: lib/flash interface of the journal partition."""

    def __init__(self, meter, flash, period_s=journal.DEFAULT_PERIOD_S):
        self.meter = meter
        self.journal = journal.Journal(flash, PAYLOAD_SIZE, SCHEMA, log=self._say)
        self.policy = journal.CommitPolicy(period_s=period_s)
        self.commits = 0
        self.powerfail_commits = 0
        self.last_text = ""
        self._saved_sum = 0
        self._buf = bytearray(PAYLOAD_SIZE)

    def _say(self, text):
        self.last_text = text

    def _sum_wh(self):
        # active energy (A+ + A-) drives the policy's unsaved-energy trigger
        w = self.meter.registers.whole
        return w[0] + w[1]

    def payload(self):
        r = self.meter.registers
        struct.pack_into(_FMT, self._buf, 0, *(r.whole + r.res + [
            self.meter.board.clock.time(), self.meter.metering.steps & 0xFFFFFFFF, 0]))
        return self._buf

    def restore(self):
        """Recover at boot; returns the journal status string."""
        j = self.journal
        log = self.meter.log
        p = j.recover()
        st = j.status
        if p is not None and st == journal.STATUS_OK:
            v = struct.unpack(_FMT, p)
            self.meter.registers.restore(list(v[:COUNT]), list(v[COUNT:2 * COUNT]))
        elif st == journal.STATUS_BLANK:
            log.log(events.FLASH_BLANK, 0, self.last_text)
        elif st == journal.STATUS_MIGRATE:
            # schema 1 is the first register layout: anything else is not ours to convert
            log.log(events.FLASH_CORRUPT, j.found_schema or 0, "unknown register schema")
        else:
            log.log(events.FLASH_CORRUPT, j.corrupt + j.torn, self.last_text)
            if st == journal.STATUS_FOREIGN:
                j.format()
        if j.torn or j.corrupt:
            log.log(events.FLASH_CORRUPT, j.torn + j.corrupt, "records skipped at boot")
        j.maintain()
        self._saved_sum = self._sum_wh()
        return st

    def commit(self, reason=journal.REASON_PERIODIC):
        urgent = reason == journal.REASON_POWERFAIL
        self.journal.commit(self.payload(), reason, urgent=urgent)
        self.policy.mark(self.meter.board.clock.ticks_ms() // 1000)
        self._saved_sum = self._sum_wh()
        self.commits += 1
        if urgent:
            self.powerfail_commits += 1

    def force_commit(self, reason):
        """Commit now even if the registers went down (cold start under open seal only)."""
        self.commit(reason)

    async def run(self):
        clock = self.meter.board.clock
        while True:
            await clock.sleep_ms(1000)
            now = clock.ticks_ms() // 1000
            if self.policy.due(now, journal.REASON_PERIODIC, self._sum_wh() - self._saved_sum):
                self.commit(journal.REASON_PERIODIC)
                self.journal.maintain()

    async def power_fail_watch(self, board):
        """Wait for the power-fail interrupt (``board.on_power_fail(handler)`` installs it on
        the rising edge of ``board.power_fail``); read the partial interval and commit urgently,
        once per warning."""
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
            if board.power_fail.value():
                self.meter.metering.finish()
                self.commit(journal.REASON_POWERFAIL)
                self.meter.log.log(events.POWER_FAIL)
