# The uplink's message authentication: HMAC-SHA256 of a ``config`` command (RFC 2104).
"""Authentication of the uplink's ``config`` and ``time`` commands (docs/UPLINK.md,
firmware/uplink/task.py).

The head-end sends ``{"id", "cmd": "config", "n": N, "set": TEXT, "mac": HEX}``; ``mac`` is
the lower- or upper-case hex of HMAC-SHA256 (RFC 2104 with SHA-256, FIPS 180-4; the test
vectors of RFC 4231 in host_tests/unit/test_uplink_auth.py) keyed with the uplink key (the
16 bytes of setting C.93.3) or, while none is set, the programming password (its UTF-8
bytes) over :func:`message`: ``<serial> LF <N in decimal> LF <TEXT>``
in UTF-8. ``TEXT`` is a JSON string member carried verbatim, so re-serialising the JSON
object (spaces, member order, escapes) cannot change the bytes that are authenticated.
Once an uplink key is set, ``time`` is authenticated the same way: ``{"id", "cmd": "time",
"t": T, "n": N, "mac": HEX}`` with ``TEXT`` = ``time:<T in decimal>`` (one ``n`` sequence
for both commands; a ``config`` text is a JSON object, so neither MAC passes for the other).

Written here, not taken from micropython-lib: the PyPI port ``micropython-hmac`` 3.4.2.post3
(2017) needs ``warnings`` and a hash object with ``block_size``, ``digest_size`` and
``copy()``, which the MicroPython ports' built-in ``hashlib.sha256`` does not have; the
firmware only needs ``hashlib.sha256`` (built into the unix, RP2040 and STM32 ports).
"""

import hashlib
from binascii import hexlify

_BLOCK = 64  # SHA-256 block size, bytes


def hmac_sha256(key, msg):
    """HMAC-SHA256 of ``msg`` (bytes) under ``key`` (bytes; longer than 64 bytes: hashed
    first, RFC 2104 section 2): the 32-byte digest."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    ipad = bytearray(_BLOCK)
    opad = bytearray(_BLOCK)
    for i in range(_BLOCK):
        b = key[i] if i < len(key) else 0
        ipad[i] = b ^ 0x36
        opad[i] = b ^ 0x5C
    inner = hashlib.sha256(ipad)
    inner.update(msg)
    outer = hashlib.sha256(opad)
    outer.update(inner.digest())
    return outer.digest()


def message(serial, n, text):
    """The bytes a ``config`` MAC covers: ``serial`` LF ``n`` (decimal) LF ``text``, UTF-8."""
    return ("%s\n%d\n%s" % (serial, n, text)).encode()


def mac_of(key, serial, n, text):
    """The 32-byte MAC of a command numbered ``n`` covering ``text`` under ``key`` (bytes:
    the 16-byte uplink key, or the password's UTF-8 bytes while no key is set)."""
    return hmac_sha256(key, message(serial, n, text))


def config_mac(password, serial, n, text):
    """The 32-byte MAC of a ``config`` numbered ``n`` with the ``set`` text ``text`` keyed
    with the programming password (no uplink key set)."""
    return mac_of(password.encode(), serial, n, text)


def same_hex(mac_hex, digest):
    """True if ``mac_hex`` (str) is the hex of ``digest`` (bytes), either case; compared in
    time that depends only on the lengths (no early exit at the first wrong digit)."""
    want = hexlify(digest)
    if not isinstance(mac_hex, str) or len(mac_hex) != len(want):
        return False
    got = mac_hex.lower().encode()
    if len(got) != len(want):  # (non-ASCII text)
        return False
    x = 0
    for i in range(len(want)):
        x |= got[i] ^ want[i]
    return x == 0
