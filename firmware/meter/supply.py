# The supply's state: the power-fail warning, set by the storage, read where flash is written.
"""The power-fail warning (board ``power_fail`` input: the supply goes after the board's
hold-up time).

Set by the storage when the input rises (firmware/meter/storage.py ``power_fail_begin``,
after the urgent commit); while it lasts nothing erases flash: event records are appended
urgently (one page program, or kept in RAM), configuration writes wait, periodic commits and
``maintain()`` wait, every metering interval is committed urgently as it reaches the
registers, and the test pulses owed are shown at once. It ends when the input is released (a
brown-out) or after ``PF_MAX_MS`` (an input stuck asserted: normal commits resume rather than
wait for a power loss that does not come).
"""

from micropython import const

PF_MAX_MS = const(10000)


class Supply:
    """``warning``: True while the power-fail warning lasts; ``since``: metering-clock ticks
    of its start."""

    def __init__(self):
        self.warning = False
        self.since = 0
