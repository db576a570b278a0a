# The uplink's broker and APN settings: their check (meter/settings.py) and parsing.
"""``uplink_broker`` "host:port" and ``uplink_apn`` (meter/defaults.py), kept out of
meter/settings.py: only a meter with an uplink imports this module (at its first check)."""

from micropython import const

# the uplink's broker "host:port" and APN (firmware/uplink/task.py): at most this long
BROKER_MAX = const(100)  # fits one IEC 62056-21 W1 value (128 characters)
APN_MAX = const(50)  # SIM800 AT+CSTT: <apn> at most 50 bytes


def check(key, v):
    """Raise ValueError naming ``key`` unless ``v`` is a broker "host:port" (``key``
    "uplink_broker"; host: a DNS name or an IPv4 address of letters, digits, "-" and ".";
    port 1..65535; at most 100 characters) or an APN ("uplink_apn": 1..50 of the same
    characters, the labels of 3GPP TS 23.003 clause 9.1)."""
    if not isinstance(v, str) or not v:
        raise ValueError("%s: empty" % key)
    apn = key == "uplink_apn"
    n = APN_MAX if apn else BROKER_MAX
    if len(v) > n:
        raise ValueError("%s: longer than %d characters" % (key, n))
    host = v
    if not apn:
        host, sep, port = v.rpartition(":")
        if not sep or not host:
            raise ValueError("%s: not HOST:PORT" % key)
        if not port.isdigit() or not 0 < int(port) <= 65535:
            raise ValueError("%s: port %r not in 1..65535" % (key, port))
    for c in host:
        if c > "~":
            raise ValueError("%s: non-ASCII character" % key)
        if not ("0" <= c <= "9" or "a" <= c <= "z" or "A" <= c <= "Z" or c in "-."):
            raise ValueError("%s: %r: letters, digits, '-' and '.' only" % (key, c))


def broker_of(text):
    """The (host, port) of a valid ``uplink_broker`` text "host:port"."""
    host, _, port = text.rpartition(":")
    return (host, int(port))
