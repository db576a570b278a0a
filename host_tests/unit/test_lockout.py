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


def test_a_right_password_on_one_port_keeps_the_other_ports_failures():
    # a bus master logging in on RS-485 between an optical guesser's attempts must not give
    # the guesser a fresh count each time (the shared count was reset by any success)
    lk = Lockout(3, 600)
    opt, bus = lk.port(1), lk.port(2)
    assert opt.failure(100) == 0 and opt.failure(101) == 0
    bus.success()
    assert lk.failures == 2, "the optical port's two wrong passwords still count"
    assert opt.failure(102) == 600, "the third one locks"
    assert bus.remaining(103) == 599 and opt.failures == lk.failures == 3
    lk = Lockout(3, 600)
    lk.port(2).failure(10)
    lk.port(1).failure(11)
    lk.port(1).success()
    assert lk.failures == 1, "a port's own success clears its own failures only"
    lk.port(2).success()
    assert lk.failures == 0


def test_restore_books_failures_to_their_port():
    lk = Lockout(3, 600)
    lk.restore([(10, "fail", 1, 1), (11, "fail", 2, 1), (12, "ok", 0, 2)], 20)
    assert lk.failures == 2, "a success on another port does not clear them after a restart"
    assert lk.failure(21, 1) == 600
    lk = Lockout(3, 600)
    lk.restore([(10, "fail", 1, 2), (11, "fail", 2, 1), (12, "ok", 0, 2)], 20)
    assert lk.failures == 1 and lk.failure(21, 2) == 0 and lk.failure(22, 1) == 600


def test_a_clock_gone_back_keeps_the_doubling():
    # the RTC lost its time (flat battery, RP2040 restart at 2021-01-01) or was set back:
    # the lockouts stamped "in the future" still count as recent, so the next one doubles
    lk = Lockout(3, 600)
    for t in (5000, 5000, 5000):
        lk.failure(t)
    assert lk.remaining(100) == 600, "clock back: the full length again"
    for t in (700, 701, 702):
        n = lk.failure(t)
    assert n == 1200, ("the doubling is not reset by the clock", n)
    lk = Lockout(3, 600)
    lk.restore([(5000, "fail", 3), (5000, "lock", 600)], 100)  # restart, RTC behind
    assert lk.remaining(100) == 600
    assert lk.next_length(700) == 1200


def test_carried_lockout_replaces_a_lost_original():
    lk = Lockout(3, 600)
    for t in (1000, 1001, 1002):
        lk.failure(t)
    assert lk.carried(1100) == (1002, 600)
    again = Lockout(3, 600)  # the original records were pushed out: only the carried one
    again.restore([(1002, "kept", 600)], 1100)
    assert again.remaining(1100) == 502 and again.next_length(1700) == 1200
    both = Lockout(3, 600)  # original and carried: the same lockout once, later fails kept
    both.restore([(1000, "fail", 1), (1001, "fail", 2), (1002, "fail", 3), (1002, "lock", 600),
                  (1002, "kept", 600), (1700, "fail", 1), (1002, "kept", 600)], 1800)
    assert both.failures == 1 and not both.remaining(1800)
    assert Lockout(3, 600).carried(5) is None
    assert lk.carried(1002 + 86400) is None, "a day later nothing counts any more"
