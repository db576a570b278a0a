"""Signal quality: ``AT+CSQ`` rssi -> dBm -> LED band.

3GPP TS 27.007 8.5 (+CSQ): rssi 0 = -113 dBm or less, 1 = -111 dBm, 2..30 = -109..-53 dBm
(-113 + 2 * rssi), 31 = -51 dBm or more, 99 = not known or not detectable. ber 0..7 is
RXQUAL (< 0.2 % .. >= 12.8 %), 99 = not known.

Bands for the signal LED (thresholds of the public signal maps, 3GPP TS 27.007 +CSQ rssi
to dBm):

=======  ============  ==========  ================
rssi     dBm           band        LED (r, g, b)
=======  ============  ==========  ================
99       unknown       UNKNOWN     off
0..9     <= -95        LOW         red
10..14   -93 .. -85    FAIR        amber (red+green)
15..31   >= -83        STRONG      green
=======  ============  ==========  ================
"""

from micropython import const

from modem.profile import uint_in

UNKNOWN = const(0)
LOW = const(1)
FAIR = const(2)
STRONG = const(3)

BAND_NAMES = ("unknown", "low", "fair", "strong")
BAND_RGB = ((0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0))


def csq_dbm(rssi):
    """dBm for a +CSQ rssi (int), or None for 99 / out of range. 0 -> -113, 31 -> -51."""
    if rssi < 0 or rssi > 31:
        return None
    return -113 + 2 * rssi


def csq_band(rssi):
    """UNKNOWN, LOW, FAIR or STRONG for a +CSQ rssi (int; 99 or out of range -> UNKNOWN)."""
    if rssi < 0 or rssi > 31:
        return UNKNOWN
    if rssi < 10:
        return LOW
    if rssi < 15:
        return FAIR
    return STRONG


def parse_csq(line):
    """``b"+CSQ: <rssi>,<ber>"`` -> (rssi, ber) ints, or None when malformed."""
    if not line.startswith(b"+CSQ:"):
        return None
    a = line.find(b",", 5)
    if a < 0 or line.find(b",", a + 1) >= 0:  # exactly two fields
        return None
    rssi = uint_in(line, 5, a)
    ber = uint_in(line, a + 1, len(line))
    if rssi < 0 or rssi > 99 or ber < 0 or ber > 99:
        return None
    return rssi, ber
