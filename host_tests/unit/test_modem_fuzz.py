"""A short run of tools/fuzz_at.py (the AT engine and the connection manager under mutated
modem output; the 100 000-line run is host_tests/system/test_fuzz_at.py)."""

import sys

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
if _here + "/../../tools" not in sys.path:
    sys.path.append(_here + "/../../tools")

import fuzz_at  # noqa: E402


def test_engine_fuzz_short():
    r = fuzz_at.run_engine(3000, seed=11)
    assert r["ok"], r["errors"]
    assert r["lines"] == 3000 and r["results"] > 100 and r["urcs"] > 300
    assert r["timeouts"] > 10 and r["overlong"] > 10 and r["garbage"] > 100
    assert r["data_dropped"] > 0 and r["echoes"] > 0


def test_manager_fuzz_short_recovers():
    r = fuzz_at.run_manager(1500, seed=12, segment=750)
    fuzz_at.LAST = None  # the tool keeps its last rig for a post-mortem: ~12 KB held for good
    # in the middle of an emulated core's heap (tools/emu), fragmenting it for the next tests
    assert r["ok"], r["errors"]
    assert r["segments"] >= 2 and r["echoed"] == r["segments"]
    assert r["faults"] > 10 and r["connects"] >= 2
