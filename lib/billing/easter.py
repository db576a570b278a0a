# Easter Sunday: the anchor of the movable holidays of the special days table.
"""Western (Gregorian) and Orthodox (Julian computus) Easter Sunday, integer-only.

- Western: the anonymous Gregorian algorithm (published anonymously in *Nature*, 1876;
  Meeus, *Astronomical Algorithms*, ch. 8; Jones; Butcher). It gives the same dates as
  python-dateutil's ``easter(y, EASTER_WESTERN)`` (Oudin 1940) for 1583..4099.
- Orthodox: Meeus' Julian algorithm for the Julian-calendar date, moved to the Gregorian
  calendar by the Julian-Gregorian difference ``y // 100 - y // 400 - 2`` days (13 days for
  1900..2099), as dateutil's ``EASTER_ORTHODOX`` does.

Both return ``(month, day)`` in the Gregorian calendar; valid years 1583..4099 (ValueError
outside). Movable holidays are offsets in days from Easter Sunday (Good Friday -2, Easter
Monday +1, Ascension +39, Whit Monday +50, Corpus Christi +60).
"""


def _check(y):
    if not 1583 <= y <= 4099:
        raise ValueError("easter: year %r outside 1583..4099" % (y,))


def western(y):
    """(month, day) of Western Easter Sunday in year ``y``."""
    _check(y)
    a = y % 19
    b = y // 100
    c = y % 100
    d = b // 4
    e = b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i = c // 4
    k = c % 4
    ll = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ll) // 451
    n = h + ll - 7 * m + 114
    return n // 31, n % 31 + 1


def orthodox(y):
    """(month, day) of Orthodox Easter Sunday in year ``y``, Gregorian calendar."""
    _check(y)
    a = y % 4
    b = y % 7
    c = y % 19
    d = (19 * c + 15) % 30
    e = (2 * a + 4 * b - d + 34) % 7
    n = d + e + 22 + (y // 100 - y // 400 - 2)  # March day number (32 = April 1)
    if n <= 31:
        return 3, n
    if n <= 61:
        return 4, n - 31
    return 5, n - 61


def easter(y, orthodox_=False):
    """(month, day) of Easter Sunday: Western unless ``orthodox_``."""
    return orthodox(y) if orthodox_ else western(y)
