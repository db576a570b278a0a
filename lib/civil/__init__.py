# Calendar arithmetic for the RTC epoch (seconds since 2000-01-01 00:00:00 UTC).
"""Civil date/time <-> RTC seconds, integer-only, proleptic Gregorian, UTC.

The boards' RTC counts seconds since 2000-01-01 00:00:00 UTC (boards/board.py). MicroPython's
``time.gmtime`` uses the port's own epoch (1970 on unix, 2000 on rp2/stm32), so firmware that
must give the same answer everywhere converts here. Days <-> civil date use the era-based
method of H. Hinnant, "chrono-Compatible Low-Level Date Algorithms" (public domain).
"""


def civil(secs):
    """``secs`` (int >= 0, 2000..2099 range used by meters) -> (year, month 1..12,
    day 1..31, hour, minute, second, weekday 0..6 with 0 = Monday)."""
    days = secs // 86400
    rem = secs - days * 86400
    z = days + 10957 + 719468  # days since 0000-03-01
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400 + (1 if m <= 2 else 0)
    wd = (days + 5) % 7  # 2000-01-01 was a Saturday (5 with Monday = 0)
    return (y, m, d, rem // 3600, rem // 60 % 60, rem % 60, wd)


def _days_in_month(y, m):
    if m == 2:
        return 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28
    return 30 if m in (4, 6, 9, 11) else 31


def seconds(y, m, d, hh=0, mi=0, ss=0):
    """Civil UTC date/time -> RTC seconds since 2000-01-01. Raises ValueError for an invalid
    date or time, or a year before 2000."""
    if y < 2000 or not 1 <= m <= 12 or not 1 <= d <= _days_in_month(y, m):
        raise ValueError("invalid date %04d-%02d-%02d" % (y, m, d))
    if not (0 <= hh < 24 and 0 <= mi < 60 and 0 <= ss < 60):
        raise ValueError("invalid time %02d:%02d:%02d" % (hh, mi, ss))
    yy = y - (1 if m <= 2 else 0)
    era = yy // 400
    yoe = yy - era * 400
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468 - 10957
    return days * 86400 + hh * 3600 + mi * 60 + ss
