# Password lockout of programming mode: one per meter, shared by its ports, restorable.
"""Programming-mode password lockout (IEC 62056-21 P1), one object per meter.

Every port's session consults the same :class:`Lockout`, so a lockout earned on the optical
port also closes the RS-485 port, and the other way round. Rule:

- ``max_failures`` (default 3) wrong passwords in a row, on any port, lock programming mode;
  a right password resets the count. While locked every P1 is refused (ER03), also a right
  one, and each attempt is reported by the session.
- The first lockout lasts ``lockout_s`` (default 600 s). Each further lockout that starts
  within ``window_s`` (24 h) of earlier ones lasts twice as long as the one before it, at
  most ``max_s`` (24 h): a guessing robot gets about 8 lockouts (and 24 wrong passwords) on
  the first day and 1 a day after that, whatever the ports and restarts, which also bounds the
  flash records the lockout costs (docs/ARCHITECTURE.md).
- The count of wrong passwords is cleared by a right password and when a lockout ends.

Time: RTC seconds (int, seconds since 2000-01-01 UTC) passed in by the caller, so a lockout
runs on while the meter is off and survives a restart. If the clock goes back before the start
of a lockout (RTC lost, or set back), the lockout starts again from the new time: a clock
change can lengthen a lockout, never shorten it below its full length.

Persistence is the caller's: the failures and lockouts are events of the meter's security log
(lib/events WRONG_PASSWORD, PROG_LOCKED, PROG_ENTER); at boot :meth:`restore` replays them.
"""


class Lockout:
    """``max_failures``: 1..; ``lockout_s``, ``max_s``, ``window_s``: seconds (>= 1)."""

    def __init__(self, max_failures=3, lockout_s=600, max_s=86400, window_s=86400):
        self.max_failures = max(1, int(max_failures))
        self.lockout_s = max(1, int(lockout_s))
        self.max_s = max(self.lockout_s, int(max_s))
        self.window_s = window_s
        self.failures = 0  # consecutive wrong passwords
        self.start = 0  # RTC s at the start of the current lockout
        self.length = 0  # its length, s; 0 = not locked
        self._recent = []  # (start, length) of lockouts within window_s

    def remaining(self, now):
        """Seconds of lockout left at RTC ``now`` (0: P1 allowed); ends an expired lockout."""
        if not self.length:
            return 0
        if now < self.start:  # the clock went back: the lockout starts again
            self.start = now
        left = self.start + self.length - now
        if left > 0:
            return left
        self.length = 0
        self.failures = 0
        return 0

    def next_length(self, now):
        """Length (s) of a lockout that would start at ``now``."""
        n = 0
        last = 0
        for st, ln in self._recent:
            if 0 <= now - st < self.window_s:
                n += 1
                if ln > last:
                    last = ln
        if not n:
            return self.lockout_s
        return min(self.max_s, max(self.lockout_s, 2 * last))

    def failure(self, now):
        """A wrong password at ``now``: returns the lockout length it started (s), or 0 (also
        while already locked: such attempts are refused before they are checked)."""
        if self.remaining(now):
            return 0
        self.failures += 1
        if self.failures < self.max_failures:
            return 0
        return self.lock(now, self.next_length(now))

    def lock(self, now, length):
        """Lock from RTC ``now`` for ``length`` s (also used by :meth:`restore`)."""
        self.start = now
        self.length = length
        self.failures = self.max_failures
        keep = [r for r in self._recent if 0 <= now - r[0] < self.window_s]
        keep.append((now, length))
        self._recent = keep[-16:]
        return length

    def success(self):
        """A right password: the count of wrong ones starts again."""
        self.failures = 0

    def restore(self, history, now):
        """Replay ``history``, an iterable of ``(t, kind, value)`` oldest first, kind
        'fail' (value = consecutive wrong passwords after it), 'lock' (value = lockout length,
        s) or 'ok' (right password), then bring the state to RTC ``now``."""
        for t, kind, value in history:
            if kind == "lock":
                self.lock(t, value)
            elif kind == "fail":
                self.failures = value
                self.length = 0
            elif kind == "ok":
                self.failures = 0
                self.length = 0
        if self.length:
            left = self.start + self.length - now
            if now < self.start or left > self.length:  # clock moved back: full length again
                self.start = now
            elif left <= 0:
                self.length = 0
                self.failures = 0
        if self.failures >= self.max_failures and not self.length:
            self.failures = self.max_failures - 1  # a record of the lock itself was lost
