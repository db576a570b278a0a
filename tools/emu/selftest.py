#!/usr/bin/env python3
"""Self-test of the emulated-core harness (issue 9): failures planted on purpose in
tools/emu/planted must each be reported as a failure, with the right reason, and fail the run.

    python3 tools/emu/selftest.py [--board MPS2_AN385]

Planted: a failing assert, a busy loop that never ends (the per-test timeout must catch it and
the run go on with the next test), an await that nothing can ever wake (MicroPython's
asyncio.run then returns as if done: the runner must call it a failure), a frozen module
whose import fails, an allocation under heap_lock that only 31-bit small ints make, and a
test defined only where ``import socket`` works (the core never sees it: reported as not run).
Builds a separate firmware with those modules frozen in (.emu/build/BOARD-extra). Prints
``N passed, N failed`` (one per expectation).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

EXPECT = {  # test -> a piece of the reason the harness must give
    "test_planted_assert.test_planted_failing_assert": "AssertionError",
    "test_planted_hang.test_planted_busy_loop_hangs": "timeout",
    "test_planted_hang.test_planted_await_forever_hangs": "RuntimeError",
    "test_planted_import.(import)": "ImportError",
    "test_planted_int32.test_planted_31_bit_overflow_allocates": "MemoryError",
    "test_planted_vanish.test_planted_vanishes_without_sockets": "never reported",
}
MUST_PASS = ("test_planted_assert.test_planted_passes",
             "test_planted_hang.test_planted_after_the_hangs_still_runs")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--board", default="MPS2_AN385")
    ap.add_argument("--timeout", type=float, default=8)
    a = ap.parse_args()
    out = os.path.join(tempfile.mkdtemp(prefix="emu-selftest-"), "res.json")
    r = subprocess.run([sys.executable, os.path.join(HERE, "emu.py"), "test", "--board", a.board,
                        "--extra-tests", os.path.join(HERE, "planted"), "--only", "test_planted",
                        "--timeout", str(a.timeout), "--json", out],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sys.stdout.write("".join("  | " + ln + "\n" for ln in r.stdout.splitlines()
                             if not ln.startswith("    ")))
    res = json.load(open(out))
    fails = dict((n, why) for n, why in res["fail"])
    ok = bad = 0

    def check(cond, what):
        nonlocal ok, bad
        print(("ok   " if cond else "FAIL ") + what)
        if cond:
            ok += 1
        else:
            bad += 1

    check(r.returncode == 1, "the run with planted failures exits 1 (got %d)" % r.returncode)
    for name, why in EXPECT.items():
        check(name in fails and why in fails[name], "%s reported as a failure (%s): %r" % (
            name, why, fails.get(name)))
    for name in MUST_PASS:
        check(name in res["pass"], "%s still ran and passed after the planted failures" % name)
    check(len(fails) == len(EXPECT), "no other failure: %r" % sorted(set(fails) - set(EXPECT)))
    print("%d passed, %d failed" % (ok, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
