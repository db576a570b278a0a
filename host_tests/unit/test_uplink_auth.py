# The uplink's HMAC-SHA256 (firmware/uplink/auth.py) against RFC 4231's test vectors and,
# under CPython, the standard library's hmac; the constant-time hex comparison.
from binascii import hexlify, unhexlify

from uplink.auth import config_mac, hmac_sha256, message, same_hex

# RFC 4231 section 4: test cases 1, 2, 3, 6 (key longer than the block), 7
_VECTORS = (
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131, b"This is a test using a larger than block-size key and a larger than "
     b"block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
)


def test_rfc4231_vectors():
    for key, data, want in _VECTORS:
        assert hexlify(hmac_sha256(key, data)).decode() == want, (key[:4], data[:8])


def test_against_the_standard_library():
    try:
        import hashlib
        import hmac
    except ImportError:  # MicroPython: the vectors above are the reference
        return
    for i in range(70):
        key = bytes((i * 7 + k) & 0xFF for k in range(i))
        data = bytes((i + k * 13) & 0xFF for k in range(2 * i + 1))
        assert hmac_sha256(key, data) == hmac.new(key, data, hashlib.sha256).digest(), i
    text = '{"obis": "C.90.1", "value": "10"}'
    ref = hmac.new(b"00000000", b"SIM00001\n7\n" + text.encode(), hashlib.sha256).digest()
    assert config_mac("00000000", "SIM00001", 7, text) == ref


def test_the_message_and_the_comparison():
    assert message("SIM00001", 12, "{}") == b"SIM00001\n12\n{}"
    assert message("A", 1, "\u00e9") == b"A\n1\n\xc3\xa9", "UTF-8"
    d = unhexlify("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    h = hexlify(d).decode()
    assert same_hex(h, d) and same_hex(h.upper(), d)
    assert not same_hex(h[:-1] + "8", d) and not same_hex("0" + h[1:], d)
    assert not same_hex(h[:-2], d) and not same_hex(h + "00", d)
    assert not same_hex(None, d) and not same_hex(b"00" * 32, d)
    assert not same_hex("\u00e9" * 64, d)
