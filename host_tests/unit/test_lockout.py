"""lib/iec62056/lockout.py: one password lockout per meter, doubling, restorable (issue 7 item
11)."""

from iec62056.lockout import Lockout


def test_three_failures_lock_and_the_lockout_ends():
    lk = Lockout(3, 600)
    assert lk.failure(100) == 0 and lk.failure(101) == 0 and lk.remaining(101) == 0
    assert lk.failure(102) == 600 and lk.remaining(102) == 600
    assert lk.remaining(701) == 1 and lk.remaining(702) == 0 and lk.failures == 0
    lk.failure(800)
    lk.success()
    assert lk.failures == 0 and lk.failure(801) == 0, "a right password resets the count"


def test_lockouts_double_within_a_day_up_to_the_cap():
    lk = Lockout(3, 600, max_s=86400)
    t = 0
    lengths = []
    while t < 2 * 86400:
        while lk.remaining(t):
            t += 1
        for _ in range(3):
            n = lk.failure(t)
        lengths.append(n)
        t += n
    assert lengths[:8] == [600, 1200, 2400, 4800, 9600, 19200, 38400, 76800], lengths
    assert all(n == 86400 for n in lengths[8:]), lengths
    assert len(lengths) <= 10, ("a guessing robot gets few lockouts (and records)", lengths)
    quiet = Lockout(3, 600)
    for t in (0, 1, 2):
        quiet.failure(t)
    for t in (86400 + 700, 86401 + 700, 86402 + 700):
        n = quiet.failure(t)
    assert n == 600, "a day later the length starts again"


def test_clock_set_back_restarts_the_lockout():
    lk = Lockout(3, 600)
    for t in (1000, 1000, 1000):
        lk.failure(t)
    assert lk.remaining(500) == 600, "RTC went back: the full length again, never shorter"
    assert lk.remaining(1099) == 1


def test_restore_from_history():
    lk = Lockout(3, 600)
    lk.restore([(10, "fail", 1), (11, "fail", 2)], 20)
    assert lk.failures == 2 and not lk.remaining(20), "a restart keeps the count"
    assert lk.failure(21) == 600
    lk = Lockout(3, 600)
    lk.restore([(10, "fail", 1), (11, "fail", 2), (12, "fail", 3), (12, "lock", 600)], 300)
    assert lk.remaining(300) == 312, "a lockout goes on after a restart"
    lk = Lockout(3, 600)
    lk.restore([(10, "fail", 2), (11, "ok", 0)], 20)
    assert lk.failures == 0
    lk = Lockout(3, 600)
    lk.restore([(10, "lock", 600)], 5000)
    assert not lk.remaining(5000) and lk.failures == 0, "expired while off"
    assert lk.next_length(5000) == 1200, "but it still counts for the doubling"
    lk = Lockout(3, 600)
    lk.restore([(10, "lock", 600)], 5)
    assert lk.remaining(5) == 600, "clock behind the lock record: full length"
    lk = Lockout(3, 600)
    lk.restore([(10, "fail", 3)], 20)
    assert lk.failures == 2 and lk.failure(21) == 600, "lock record lost: one more locks"
