# Tamper inputs and neutral-current imbalance -> events (issue 7 item 14).
"""Seal, meter cover, terminal cover and magnet inputs, and the neutral-current check.

Inputs (boards/board.py: Pin-like, 1 = active: seal switch open, cover open, terminal cover
open, magnetic field present) are sampled every ``period_ms`` (50 ms) of real time; a new
level counts once it has been read ``samples`` (3) times in a row, so contact bounce (a few
ms) never logs and a change is logged within 150 ms. Every debounced change is an event of
the security log (lib/events SEAL_OPEN/SEAL_CLOSED, COVER_*, TCOVER_*, MAGNET_ON/OFF,
source SRC_LOCAL, value: the number of such changes since power-up); an input found active
at power-up is logged as a change too (it may have changed while the meter was off).

Neutral imbalance (the IDIS "missing neutral" / earth-leakage tamper event): with the phase
current I (ADE7953 channel A) and the neutral current IN
(channel B) from the metering task's instantaneous values, the imbalance is
``|I - IN| / max(I, IN)``. It counts while the larger current is at least ``neutral_min_a``
(cfg, default 0.25 A = 5 % of Iref 5 A) and the imbalance exceeds ``neutral_pct`` (cfg,
default 12.5 %); ``neutral_s`` (cfg, default 10 s of real time) in a row start an episode,
logged NEUTRAL_IMBALANCE (value: (I - IN) in % of the larger current, signed: positive when
the neutral carries less); the same time below the threshold ends it, logged NEUTRAL_OK
(value: the episode's length, s).
"""

import asyncio

import events
import ticks

# (board attribute, event when it becomes active, event when it becomes inactive): the
# events by their lib/events names, so that this is a constant tuple (in flash when frozen:
# RAM, issue 12)
INPUTS = (
    ("seal", "SEAL_OPEN", "SEAL_CLOSED"),
    ("cover", "COVER_OPEN", "COVER_CLOSED"),
    ("terminal_cover", "TCOVER_OPEN", "TCOVER_CLOSED"),
    ("magnet", "MAGNET_ON", "MAGNET_OFF"),
)


def _read(pin):
    # 1 / 0: the input's level; -1: unreadable (a small frame: TamperWatch._sample)
    try:
        return 1 if pin.value() else 0
    except Exception:
        return -1


class TamperWatch:
    """Debounced input edges and neutral imbalance, as events. ``board``: its ``seal``,
    ``cover``, ``terminal_cover`` and ``magnet`` inputs (absent ones are skipped);
    ``metering``: meter.metering.Metering (``instant_milli``, ``instant_seq``);
    ``log``: lib.events.EventLog;
    ``settings``: meter.settings.Settings (``neutral_*``).

    ``samples``: consecutive equal reads that make a level (>= 1). ``poll(now_ms)`` does one
    step (real-time ms ticks); ``run()`` loops it."""

    def __init__(self, board, metering, log, settings, samples=3, period_ms=50):
        self.metering = metering
        self.log = log
        self.samples = max(1, samples)
        self.period_ms = period_ms
        self._pins = []
        for name, on, off in INPUTS:
            pin = getattr(board, name, None)
            if pin is not None:
                # level, candidate run, changes, name
                self._pins.append([pin, getattr(events, on), getattr(events, off), 0, 0, 0,
                                   name])
        self.neutral_pct = settings.get("neutral_pct", 12.5)
        self.neutral_min_a = settings.get("neutral_min_a", 0.25)
        # the same as integers for the check once a second (no float allocated): the
        # limit in 1/10 %, the minimum current in mA
        self._pct10 = int(self.neutral_pct * 10 + 0.5)
        self._min_ma = int(self.neutral_min_a * 1000 + 0.5)
        self.neutral_ms = int(settings.get("neutral_s", 10) * 1000)
        self.neutral = False  # an imbalance episode is on
        self._n_since = None  # ticks since the condition differs from ``neutral``
        self._n_start = None  # ticks at the start of the episode
        self._inst = None
        self._seq = -1
        self._booted = False

    def _edge(self, p, level):
        p[3] = level
        p[5] += 1
        self.log.log(p[1] if level else p[2], p[5], None, events.SRC_LOCAL)

    def level(self, name):
        """Debounced level (1 active, 0 not) of input ``name`` (a board attribute of
        ``INPUTS``, e.g. "seal"), the one the events report; None before the first poll or
        for an input the board lacks. Whatever acts on an input (the ports' seal rule) reads
        this, so nothing is opened by a pulse that the audit trail never sees."""
        if not self._booted:
            return None
        for p in self._pins:
            if p[6] == name:
                return p[3]
        return None

    def boot(self):
        """Levels at power-up: an active input is logged (it may have changed while off)."""
        self._booted = True
        for p in self._pins:
            try:
                v = 1 if p[0].value() else 0
            except Exception:
                continue
            p[3] = v
            if v:
                self._edge(p, 1)

    def poll(self, now_ms):
        """One sample of every input and one neutral check at real-time ticks ``now_ms``."""
        if not self._booted:
            self.boot()
        for p in self._pins:
            self._sample(p)
        self._neutral(now_ms)

    def _sample(self, p):
        # one read of input ``p`` (a frame apart from poll's: MicroPython heap-allocates, at
        # every call, a frame of more than 11 machine words, and a for loop and a try take
        # 4 and 3 of them)
        v = _read(p[0])
        if v < 0:
            return
        if v == p[3]:
            p[4] = 0
            return
        p[4] += 1
        if p[4] >= self.samples:
            p[4] = 0
            self._edge(p, v)

    def imbalance_pct(self, inst):
        """(I - IN) in % of the larger current (float, signed), or None below the minimum
        current or without values. ``inst``: Metering.instant_milli (currents in mA)."""
        if inst is None:
            return None
        i = inst.get("I")
        n = inst.get("IN")
        if i is None or n is None:
            return None
        big = i if i > n else n
        if big < self._min_ma:
            return None
        return (i - n) * 100.0 / big

    def _imbalanced(self, inst):
        # |I - IN| > neutral_pct of the larger current, at or above the minimum current; in
        # integers (mA below 2^18: 262 A, beyond the chip's full scale), no allocation
        if inst is None:
            return False
        i = inst["I"]
        n = inst["IN"]
        big = i if i > n else n
        if big < self._min_ma:
            return False
        d = i - n if i > n else n - i
        return d * 1000 > self._pct10 * big

    def _neutral(self, now_ms):
        m = self.metering
        inst = m.instant_milli
        seq = m.instant_seq
        if inst is self._inst and seq == self._seq:
            return  # evaluated once per new reading (each real second)
        self._inst = inst
        self._seq = seq
        self._check(now_ms, inst)

    def _check(self, now_ms, inst):
        # a new reading: an imbalance episode starts, goes on or ends
        bad = self._imbalanced(inst)
        if bad == self.neutral:
            self._n_since = None
            return
        self._episode(now_ms, inst, bad)

    def _episode(self, now_ms, inst, bad):
        # the level differs from the one logged: an episode may start or end
        pct = self.imbalance_pct(inst)
        if self._n_since is None:
            self._n_since = now_ms
            self._n_pct = pct
        if bad:
            self._n_pct = pct
        if ticks.ticks_diff(now_ms, self._n_since) < self.neutral_ms:
            return
        self.neutral = bad
        since = self._n_since
        self._n_since = None
        if bad:
            self._n_start = since
            self.log.log(events.NEUTRAL_IMBALANCE, int(round(self._n_pct)),
                               "I - IN = %.1f %%" % self._n_pct, events.SRC_LOCAL)
        else:
            s = ticks.ticks_diff(since, self._n_start) // 1000 if self._n_start is not None else 0
            self.log.log(events.NEUTRAL_OK, s, None, events.SRC_LOCAL)

    async def run(self):
        while True:
            self.poll(ticks.ticks_ms())
            await asyncio.sleep_ms(self.period_ms)
