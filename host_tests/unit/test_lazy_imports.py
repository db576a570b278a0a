"""Rarely used code is imported where it is used, not held by every meter (issue 12, device
RAM: a frozen module's bytecode is in flash, but its module object, globals, functions and
classes are heap; docs/BENCHMARKS.md "Device RAM"). The lazy imports are on cold paths only
(a port's session made once at its task's start, a P.01 / P.98 / P.99 readout, the CSV
export), never in the metering step or another heap-locked path (test_alloc.py)."""

import events
from iec62056 import session as S
from meter import catalogue as C
from meter import profile
from ports import iec as P


def test_the_port_map_and_the_profiles_do_not_hold_the_session_or_p01_modules():
    # ports.iec held iec62056.session (its Session class, ~2 KB) and billing.p01 as globals
    # from its import on: a map that never made a session (tests, the uplink's config
    # command) and a meter that is never read out carried them
    assert not hasattr(P, "Session") and not hasattr(P, "p01")
    assert not hasattr(profile, "p01")


def _raising(exc):
    def fn(addr, value, src, seal_open):
        raise exc

    return fn


def test_the_port_maps_refusal_codes_are_the_sessions():
    # ports.iec keeps its own copies of the ERnn codes it answers (so that it need not
    # import the session module): they are the session's, each one
    for exc, code in ((C.Sealed(), S.ER_SEALED), (C.NotWritable(), S.ER_NOT_WRITABLE),
                      (KeyError("9.9.9"), S.ER_NOT_WRITABLE), (ValueError("x"), S.ER_BAD_VALUE),
                      (C.Failed(), S.ER_FAILED)):
        got = P.IecMap._run(None, _raising(exc), "1.8.0", "0", True, events.SRC_OPTICAL)
        assert got == code, (exc, got, code)
    assert P.IecMap._run(None, lambda a, v, s, o: None, "C.90.1", 5, True,
                         events.SRC_OPTICAL) is None


def test_the_meter_builds_its_clock_set_limits_at_the_first_set():
    # billing.clocklimit (module and two instances, ~0.6 KB) is imported and built at the
    # first set of the clock over a port (test_clock_limit: the flood test), not by app
    import app

    assert not hasattr(app, "ClockLimit")
