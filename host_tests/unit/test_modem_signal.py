"""CSQ -> dBm -> LED band (lib/modem/signal.py; 3GPP TS 27.007 8.5, G2 bands)."""

from modem import signal as S


def test_dbm_endpoints_and_steps():
    assert S.csq_dbm(0) == -113 and S.csq_dbm(1) == -111 and S.csq_dbm(2) == -109
    assert S.csq_dbm(30) == -53 and S.csq_dbm(31) == -51
    assert S.csq_dbm(99) is None and S.csq_dbm(32) is None and S.csq_dbm(-1) is None
    for r in range(31):
        assert S.csq_dbm(r + 1) - S.csq_dbm(r) == 2


def test_bands_at_their_edges():
    want = {99: S.UNKNOWN, 0: S.LOW, 9: S.LOW, 10: S.FAIR, 14: S.FAIR, 15: S.STRONG,
            31: S.STRONG, 32: S.UNKNOWN, -5: S.UNKNOWN}
    for r, b in want.items():
        assert S.csq_band(r) == b, (r, S.csq_band(r))
    assert S.csq_dbm(9) == -95 and S.csq_dbm(10) == -93 and S.csq_dbm(14) == -85
    assert S.csq_dbm(15) == -83
    assert S.BAND_RGB[S.LOW] == (1, 0, 0) and S.BAND_RGB[S.FAIR] == (1, 1, 0)
    assert S.BAND_RGB[S.STRONG] == (0, 1, 0) and S.BAND_RGB[S.UNKNOWN] == (0, 0, 0)
    assert S.BAND_NAMES[S.csq_band(20)] == "strong"


def test_parse_csq():
    assert S.parse_csq(b"+CSQ: 17,0") == (17, 0)
    assert S.parse_csq(b"+CSQ: 99,99") == (99, 99)
    for bad in (b"+CSQ: 17", b"+CSQ: a,0", b"+CSQ: 17,0,1", b"+CREG: 0,1", b"+CSQ: 100,0",
                b"+CSQ: -1,0", b""):
        assert S.parse_csq(bad) is None, bad
