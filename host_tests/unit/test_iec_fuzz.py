"""Fuzzing the IEC 62056-21 session in process with tools/fuzz_iec.py (both interpreters): a
short run through the firmware's real IEC map, the generator's determinism across
interpreters, and proof that the fuzzer's checks can fail. The 100 000-frame run and the
fuzzing of a running process are in host_tests/system/test_fuzz_iec.py."""

import sys

_ROOT = __file__[: __file__.rfind("host_tests")]
if _ROOT + "tools" not in sys.path:
    sys.path.append(_ROOT + "tools")

import fuzz_iec  # noqa: E402


def test_short_fuzz_through_firmware_session():
    f = fuzz_iec.SessionFuzz(seed=3)
    out = f.run(3000)
    assert out["ok"] and out["frames"] >= 3000, out
    for k in ("ident", "readout", "p0", "ack", "nak", "error", "data"):
        assert out["answers"].get(k, 0) > 0, ("answer kind never produced", k, out["answers"])
    for k in ("random", "flipped", "truncated", "bad_bcc", "overlong", "script", "burst"):
        assert out["kinds"].get(k, 0) > 0, ("frame kind never generated", k, out["kinds"])
    for st in (0, 1, 2, 3):
        assert out["states"].get(st, 0) > 0, ("state never reached", st, out["states"])
    assert out["readout_bytes"] > 300, out


def test_short_fuzz_through_firmware_rs485_session():
    out = fuzz_iec.SessionFuzz(seed=4, bus=True).run(2000)
    assert out["ok"] and out["port"] == "rs485", out
    assert out["answers"].get("ident", 0) > 0 and out["answers"].get("readout", 0) > 0, out


# frames, bytes and a hash of 300 units from seed 5 (the same on MicroPython and CPython)
FRAMES_SEED5, BYTES_SEED5, HASH_SEED5 = 550, 13790, 2157332677


def test_generator_is_the_same_on_every_interpreter():
    g = fuzz_iec.Frames(5, "12345678")
    h = 0
    n = 0
    for _ in range(300):
        for f in g.next():
            for c in f:
                h = (h * 31 + c) & 0xFFFFFFFF
            n += len(f)
    assert (g.count, n, h) == (FRAMES_SEED5, BYTES_SEED5, HASH_SEED5), (g.count, n, h)


def test_checks_can_fail():
    f = fuzz_iec.SessionFuzz(seed=1)
    bad = (
        (0, b"\x02(ER01)\x03\x00", 0),  # wrong BCC
        (2000, b"\x06", 0),  # reaction beyond 1500 ms
        (0, b"\x06\x86", 0),  # 8-bit character
        (0, None, 1234),  # not a mode C baud rate
        (0, b"Z", 0),  # not a protocol answer
        (0, b"\x06"),  # not a 3-tuple
    )
    for a in bad:
        try:
            f._check(a, 0)
        except fuzz_iec.Failure:
            continue
        raise AssertionError("check accepted %r" % (a,))
    f._check((100, fuzz_iec.command("P", 0, "(1)"), 0), 0)  # a good one passes
