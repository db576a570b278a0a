"""lib/civil against known dates (and a round trip over 100 years)."""

from civil import civil, seconds


def test_epoch_and_known_dates():
    assert civil(0) == (2000, 1, 1, 0, 0, 0, 5), civil(0)  # a Saturday
    assert seconds(2016, 1, 1) == 504921600, "2016-01-01 (the bundled load's start)"
    assert civil(seconds(2000, 2, 29, 23, 59, 59))[:6] == (2000, 2, 29, 23, 59, 59)
    assert civil(seconds(2100, 3, 1))[:3] == (2100, 3, 1)
    assert civil(seconds(2024, 7, 15))[6] == 0, "2024-07-15 was a Monday"


def test_round_trip_100_years():
    s = 0
    while s < 100 * 366 * 86400:
        assert seconds(*civil(s)[:6]) == s, s
        s += 86400 * 13 + 3607


def test_invalid_dates_refused():
    for bad in ((2023, 2, 29), (2024, 13, 1), (2024, 4, 31), (1999, 12, 31)):
        try:
            seconds(*bad)
            assert False, bad
        except ValueError:
            pass
