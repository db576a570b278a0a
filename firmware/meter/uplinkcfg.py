# The uplink's broker and APN settings: their check (meter/settings.py) and parsing.
"""``uplink_broker`` "host:port", ``uplink_apn``, ``uplink_key`` and ``bus_bindings``
(meter/defaults.py), kept out of meter/settings.py: only a meter with an uplink imports this
module (at its first check)."""

from micropython import const

# the uplink's broker "host:port" and APN (firmware/uplink/task.py): at most this long
BROKER_MAX = const(100)  # fits one IEC 62056-21 W1 value (128 characters)
APN_MAX = const(50)  # SIM800 AT+CSTT: <apn> at most 50 bytes
KEY_HEX = const(32)  # the uplink key: 128 bits (the size of a DLMS/COSEM AES-128 key)


def _hex(v):
    for c in v:
        if not ("0" <= c <= "9" or "a" <= c <= "f" or "A" <= c <= "F"):
            return False
    return True


def _trivial(v):
    # why the 32 hex digits ``v`` are a key anyone would try first, or None: the 16 bytes
    # all equal (zeros, 0xFF, ...) or a pattern of 2, 4 or 8 bytes repeated (e.g.
    # 0123456789abcdef twice); a random 128-bit key is one of them with p < 2**-63
    a = v.lower()
    if a == a[:2] * 16:
        return "all 16 bytes equal"
    for n in (4, 8, 16):  # hex digits of the repeated pattern
        if a == a[:n] * (32 // n):
            return "%d-byte pattern repeated" % (n // 2)
    return None


def check(key, v):
    """Raise ValueError naming ``key`` unless ``v`` is a broker "host:port" (``key``
    "uplink_broker"; host: a DNS name or an IPv4 address of letters, digits, "-" and ".";
    port 1..65535; at most 100 characters), an APN ("uplink_apn": 1..50 of the same
    characters, the labels of 3GPP TS 23.003 clause 9.1) or an uplink key ("uplink_key":
    32 hex digits, 128 bits, or "" for none; a trivial key, the 16 bytes all equal or a
    pattern of 2, 4 or 8 bytes repeated, is refused: ``uplink_key: trivial key (all 16
    bytes equal): write 128 random bits``). The value itself is never in the error (a key
    must not reach a log or an answer)."""
    if key == "bus_bindings":
        _check_bindings(v)
        return
    if key == "uplink_key":
        if not isinstance(v, str) or v and (len(v) != KEY_HEX or not _hex(v)):
            raise ValueError("uplink_key: not %d hex digits (128 bits) or empty" % KEY_HEX)
        why = _trivial(v) if v else None
        if why is not None:
            raise ValueError("uplink_key: trivial key (%s): write 128 random bits" % why)
        return
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


def key_bytes(text):
    """The 16 bytes of a valid, non-empty ``uplink_key`` text."""
    from binascii import unhexlify

    return unhexlify(text)


def key_check(text):
    """The key check value of an ``uplink_key`` text (C.93.4): the first 3 bytes of
    SHA-256 (FIPS 180-4) of the key's 16 bytes as 6 lower-case hex digits, "" for none. The
    installer and the head-end compare it to know that both hold the same key; 24 bits of a
    hash say nothing usable about a 128-bit key. ValueError if ``text`` is no key (a
    damaged stored value: not "" either, so it never reads as "none set")."""
    if text == "":
        return ""
    check("uplink_key", text)
    import hashlib
    from binascii import hexlify

    return hexlify(hashlib.sha256(key_bytes(text)).digest()[:3]).decode()


BINDINGS_MAX = const(32)  # bus meters (uplink/concentrator.MAX_METERS)
# bytes of their JSON at most (32 meters of 8-digit addresses and serials: ~700 bytes);
# with the largest tariff plan (~3.2 KB of the record) this alone does not keep the record
# within its 4 KiB copy (flashstore/config.py): the concentrator also asks Settings.fits
BINDINGS_BYTES = const(1024)


def serial_ok(s):
    """True if ``s`` can be a meter's serial in an MQTT topic level: 1..32 letters,
    digits, ``-``, ``_``, ``.`` (no ``+ # /``; uplink/concentrator.py)."""
    if not isinstance(s, str) or not s or len(s) > 32:
        return False
    for ch in s:
        if not ("0" <= ch <= "9" or "A" <= ch <= "Z" or "a" <= ch <= "z" or ch in "-_."):
            return False
    return True


def bind_table(table, text, own=None):
    """The binding table ``table`` ({bus address: serial}) with the pre-binding ``text``
    "ADDRESS=SERIAL" (W1 C.93.9, docs/UPLINK.md "Serial binding") set: a new dict, the
    address's old binding (also written with other leading zeros) replaced. ValueError
    naming what is wrong: not ADDRESS=SERIAL of 1..32 letters, digits, ``- _ .`` each; the
    serial ``own`` (the concentrator's); a serial bound to another address (unbind that one
    first: a serial is one meter)."""
    from iec62056.codec import same_address

    a, eq, s = text.partition("=") if isinstance(text, str) else ("", "", "")
    if not eq or not serial_ok(a) or not serial_ok(s):
        raise ValueError("bus binding: not ADDRESS=SERIAL, each 1..32 letters, digits, "
                         "'-', '_', '.'")
    if s == own:
        raise ValueError("bus binding: %s is the concentrator's own serial" % s)
    nb = {}
    for k, v in table.items():
        if same_address(k, a):
            continue
        if v == s:
            raise ValueError("bus binding: serial %s is bound to address %s: unbind it "
                             "first" % (s, k))
        nb[k] = v
    nb[a] = s
    return nb


def _check_bindings(v):
    # {bus address: serial}: the concentrator's serial binding (uplink/concentrator.py)
    if not isinstance(v, dict) or len(v) > BINDINGS_MAX:
        raise ValueError("bus_bindings: not an object of at most %d addresses" % BINDINGS_MAX)
    n = 2
    for a, s in v.items():
        n += len(a) + len(s) + 6 if isinstance(a, str) and isinstance(s, str) else 0
        if not serial_ok(a) or not serial_ok(s):
            raise ValueError("bus_bindings: an address or serial is not 1..32 letters, "
                             "digits, '-', '_', '.'")
    if n > BINDINGS_BYTES:
        raise ValueError("bus_bindings: more than %d bytes" % BINDINGS_BYTES)
