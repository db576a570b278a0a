# The virtual board's battery-backed RTC: its state survives a restart like a real RTC chip's.
"""Battery-backed RTC of the virtual board.

A meter's RTC is a separate part with its own backup supply (e.g. a 20-year lithium cell):
it keeps counting while the mains is off. The virtual board keeps that state in a file next
to the ``--flash`` image, ``PATH.rtc`` (not in the meter's flash partitions, which the
firmware owns): one JSON line ``{"rtc_ms": R, "host_ms": H, "valid": true|false}`` with the
RTC reading R (ms since 2000-01-01 00:00:00 UTC) at the moment of saving and the host's wall
clock H (ms since 1970) at that moment. It is written atomically (temporary file, rename)
whenever the firmware may write a timestamp to flash (before every flash program), when the
clock is set, every wall second while running, and at the end of the run (orderly stop or
power loss), so a persisted timestamp is never later than the saved RTC.

At power-up (:func:`power_up`), in this order:

1. ``--start`` given: the RTC is set to it (an installer setting the clock): valid.
2. ``--rtc-battery flat``: the RTC lost its time while the mains was off: it restarts at its
   reset value 2000-01-01 00:00:00 and is invalid until set.
3. No ``--flash``: a new meter, RTC factory-set to the default start (2016-01-01): valid.
4. ``PATH.rtc`` readable: R + the off time, valid as saved (a clock that was invalid at
   power-off stays invalid: the battery keeps a wrong time wrong). The off time is
   ``--off-time S`` if given (exact, for tests), else the host's wall-clock time since H
   (real time: the mains is off in real time, whatever ``--speed`` the last run had).
5. No ``PATH.rtc`` and no image yet: a new meter, as 3.
6. No ``PATH.rtc`` next to an existing image, or an unreadable one: the RTC's state is
   unknown: reset value, invalid. So is an RTC that would have run past 2099-12-31 (the
   meter's range: timestamps are stored as u32 seconds since 2000).

An invalid RTC is logged at power-up (CLOCK_INVALID) and flagged in F.F.0 until set.
"""

import json
import os
import time

# The RTC's reading after it lost its supply: 2000-01-01 00:00:00 UTC.
RTC_RESET_S = 0
# 2100-01-01 00:00:00: the end of the range meters use (timestamps are stored as u32 s)
RTC_END_S = 3155760000


def _host_ms():
    return time.time_ns() // 1000000 if hasattr(time, "time_ns") else int(time.time() * 1000)


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def state_path(flash_path):
    return flash_path + ".rtc"


def read_state(path):
    """(rtc_ms, host_ms, valid) from a state file; raises OSError or ValueError."""
    with open(path) as f:
        d = json.loads(f.read())
    r, h, v = d["rtc_ms"], d["host_ms"], d["valid"]
    if not (isinstance(r, int) and isinstance(h, int) and v in (True, False)) or r < 0:
        raise ValueError("fields out of range")
    return r, h, v


def power_up(flash_path, default_s, start_s=None, off_s=None, battery="ok"):
    """The RTC at power-up: (rtc_ms, valid, note). ``flash_path``: the --flash image or None;
    ``default_s``: a new meter's factory setting (s since 2000); ``start_s``: --start;
    ``off_s``: --off-time (s, float) or None; ``battery``: "ok" or "flat"."""
    if start_s is not None:
        return start_s * 1000, True, ""
    if battery == "flat":
        return RTC_RESET_S * 1000, False, "backup battery flat: RTC lost its time"
    if flash_path is None:
        return default_s * 1000, True, ""
    path = state_path(flash_path)
    if not _exists(path):
        if not _exists(flash_path):
            return default_s * 1000, True, ""
        return RTC_RESET_S * 1000, False, "no RTC state %s next to the flash image" % path
    try:
        r, h, valid = read_state(path)
    except (OSError, ValueError, KeyError, TypeError) as e:
        return RTC_RESET_S * 1000, False, "RTC state %s unreadable (%s)" % (path, e)
    off = int(off_s * 1000) if off_s is not None else _host_ms() - h
    if off < 0:  # the host clock went back: count no off time
        off = 0
    if r + off >= RTC_END_S * 1000:
        return RTC_RESET_S * 1000, False, "RTC ran past 2099-12-31 while the mains was off"
    return r + off, valid, "" if valid else "RTC not set since it lost its time"


class RtcFile:
    """Writes the state file ``PATH.rtc`` for a clock with ``rtc_ms()`` and ``rtc_valid``."""

    def __init__(self, flash_path, clock):
        self.path = state_path(flash_path)
        self._clock = clock
        self.saves = 0
        self.error = None

    def save(self):
        """Write the state now (atomically); an error is kept in ``error``, never raised."""
        c = self._clock
        tmp = self.path + ".tmp"
        try:
            with open(tmp, "w") as f:
                f.write(json.dumps({"rtc_ms": c.rtc_ms(), "host_ms": _host_ms(),
                                    "valid": bool(c.rtc_valid)}) + "\n")
            os.rename(tmp, self.path)
            self.saves += 1
            self.error = None
        except OSError as e:
            self.error = "cannot write %s: %s" % (self.path, e)
