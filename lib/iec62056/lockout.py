# Password lockout of programming mode: one shared by a meter's local ports, restorable.
"""Programming-mode password lockout (IEC 62056-21 P1).

The meter's local ports' sessions consult the same :class:`Lockout`, so a lockout earned on
the optical port also closes the RS-485 port, and the other way round; the uplink's
``config`` command has an object of its own with the same parameters (firmware/ports/iec.py
``IecMap.uplink_lockout``), so neither side can lock the other out. Rule:

- ``max_failures`` (default 3) wrong passwords in a row, on any port, lock programming mode;
  a right password resets the count. While locked every P1 is refused (ER03), also a right
  one, and each attempt is reported by the session.
- The first lockout lasts ``lockout_s`` (default 600 s). Each further lockout that starts
  within ``window_s`` (24 h) of earlier ones lasts twice as long as the one before it, at
  most ``max_s`` (24 h): a guessing robot gets about 8 lockouts (and 24 wrong passwords) on
  the first day and 1 a day after that, whatever the ports and restarts, which also bounds the
  flash records the lockout costs (docs/PORTS.md).
- The count of wrong passwords is cleared when a lockout ends, and by a right password for
  the wrong ones made on the same port only: each port books its own (``port(p)`` gives a
  session its port's view). A bus master that logs in on RS-485 between an optical guesser's
  attempts must not hand the guesser a fresh count each time. (Two parties on the same port,
  e.g. a bus neighbour between the master's logins, cannot be told apart in mode C.)

Time: RTC seconds (int, seconds since 2000-01-01 UTC) passed in by the caller, so a lockout
runs on while the meter is off and survives a restart. If the clock goes back before the start
of a lockout (RTC lost, or set back), the lockout starts again from the new time, and
lockouts stamped after the clock's new reading still count for the doubling: a clock change
can lengthen a lockout, never shorten it below its full length.

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
        self.failures = 0  # consecutive wrong passwords, all ports
        self._port_fails = {}  # port -> its share of ``failures``
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
        self._port_fails = {}
        return 0

    def next_length(self, now):
        """Length (s) of a lockout that would start at ``now``."""
        n = 0
        last = 0
        for st, ln in self._recent:
            if now - st < self.window_s:  # also one "in the future": the clock went back
                n += 1
                if ln > last:
                    last = ln
        if not n:
            return self.lockout_s
        return min(self.max_s, max(self.lockout_s, 2 * last))

    def failure(self, now, port=0):
        """A wrong password at ``now`` on ``port`` (any hashable id): returns the lockout
        length it started (s), or 0 (also while already locked: such attempts are refused
        before they are checked)."""
        if self.remaining(now):
            return 0
        self.failures += 1
        self._port_fails[port] = self._port_fails.get(port, 0) + 1
        if self.failures < self.max_failures:
            return 0
        return self.lock(now, self.next_length(now))

    def lock(self, now, length):
        """Lock from RTC ``now`` for ``length`` s (also used by :meth:`restore`)."""
        self.start = now
        self.length = length
        self.failures = self.max_failures
        self._port_fails = {}
        keep = [r for r in self._recent if now - r[0] < self.window_s]
        keep.append((now, length))
        self._recent = keep[-16:]
        return length

    def success(self, port=0):
        """A right password on ``port``: the wrong ones made on that port no longer count
        (those of the other ports still do)."""
        n = self._port_fails.pop(port, 0)
        self.failures = self.failures - n if self.failures > n else 0

    def port(self, port):
        """The view of this lockout that the session of ``port`` uses (:class:`PortLockout`)."""
        return PortLockout(self, port)

    def carried(self, now):
        """``(start, length)`` of the lockout a restart must not forget: the active one, else
        the latest that still counts for the doubling at RTC ``now``; None if there is none.
        The caller re-records it at each power-up (lib/events PROG_LOCK_KEPT) so that a
        flood of other records cannot push it out of the log."""
        if self.remaining(now):
            return self.start, self.length
        for i in range(len(self._recent) - 1, -1, -1):
            st, ln = self._recent[i]
            if now - st < self.window_s:
                return st, ln
        return None

    def restore(self, history, now):
        """Replay ``history``, an iterable of ``(t, kind, value[, port])`` oldest first,
        kind 'fail' (value = consecutive wrong passwords after it, all ports), 'lock' (value =
        lockout length, s), 'kept' (a lockout re-recorded by :meth:`carried`: t = its start,
        value = its length; ignored when its original is still known) or 'ok' (right
        password), then bring the state to RTC ``now``."""
        for h in history:
            t, kind, value = h[0], h[1], h[2]
            port = h[3] if len(h) > 3 else 0
            if kind == "lock":
                self.lock(t, value)
            elif kind == "kept":
                known = False
                for r in self._recent:
                    if r[0] == t:
                        known = True
                if not known:  # its original record was pushed out of the ring
                    self.lock(t, value)
            elif kind == "fail":
                others = 0
                for p in self._port_fails:
                    if p != port:
                        others += self._port_fails[p]
                self._port_fails[port] = value - others if value - others > 1 else 1
                self.failures = value
                self.length = 0
            elif kind == "ok":
                self.success(port)
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


class PortLockout:
    """One port's view of a meter's :class:`Lockout`, with the interface an
    ``iec_session.Session`` uses (``failures``, ``max_failures``, ``remaining``,
    ``next_length``, ``failure``, ``success``): the state is the meter's, the wrong and right
    passwords are booked to ``port``."""

    def __init__(self, lockout, port):
        self.lockout = lockout
        self.port = port

    @property
    def failures(self):
        return self.lockout.failures

    @property
    def max_failures(self):
        return self.lockout.max_failures

    def remaining(self, now):
        return self.lockout.remaining(now)

    def next_length(self, now):
        return self.lockout.next_length(now)

    def failure(self, now):
        return self.lockout.failure(now, self.port)

    def success(self):
        self.lockout.success(self.port)
