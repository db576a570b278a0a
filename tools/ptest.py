"""Run a pytest directory as a few pytest processes in parallel (``make system``).

Most system tests wait on real time (a meter paced at --speed N, IEC 62056-21 reaction
times, button holds): run side by side they take about the time of the longest group, not
the sum. The tests are collected once (``pytest --collect-only -q``), then dealt into
``--jobs`` groups, longest first, by the durations in ``--weights`` (a JSON file of
test id -> seconds, measured with ``pytest --durations=0``; a test not listed counts
``--default`` s), and each group runs in its own ``pytest -q`` process. No pytest plug-in is
needed (pytest-xdist is not in requirements-dev.txt).

Ports: each process gets ``TEST_PORT_SLOT`` = k and ``TEST_PORT_SLOTS`` = jobs in its
environment; host_tests/system/ports.py then hands it only free ports with
``port % jobs == k``, so two processes never pick the same port between a probe and its use.

Output: each group's output after it ends (in group order), then one line per group with its
result and wall time. Exit status: 0 if every group passed, else the first failing one's.

``--record FILE``: run each group with ``--durations=0`` and write every test's measured
seconds (setup + call + teardown, as it ran in this parallel run) to FILE as the weights for
the next runs; ``make system-durations`` regenerates host_tests/system/durations.json so.

Usage: python tools/ptest.py [--jobs N] [--weights FILE] [--default S] [--record FILE] DIR
       [pytest args...]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time


def collect(python, target, extra):
    """Test ids under ``target`` (pytest --collect-only -q)."""
    r = subprocess.run([python, "-m", "pytest", "--collect-only", "-q", target] + extra,
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.stdout.write(r.stdout + r.stderr)
        raise SystemExit(r.returncode or 2)
    return [ln.strip() for ln in r.stdout.splitlines() if "::" in ln]


def deal(ids, weights, jobs, default):
    """``jobs`` groups of test ids, longest first into the lightest group (LPT); each group
    keeps the collection order inside it (fixtures and module set-up stay together)."""
    order = {t: i for i, t in enumerate(ids)}
    groups = [[0.0, []] for _ in range(jobs)]
    for t in sorted(ids, key=lambda t: -weights.get(t, default)):
        g = min(groups, key=lambda g: g[0])
        g[0] += weights.get(t, default)
        g[1].append(t)
    return [(w, sorted(ts, key=order.get)) for w, ts in groups if ts]


_DURATION = re.compile(r"^\s*([0-9.]+)s (setup|call|teardown)\s+(\S+::\S+)\s*$")


def durations(text):
    """Test id -> seconds (setup + call + teardown) from pytest ``--durations=0`` output."""
    out = {}
    for ln in text.splitlines():
        m = _DURATION.match(ln)
        if m:
            out[m.group(3)] = out.get(m.group(3), 0.0) + float(m.group(1))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("SYSTEM_JOBS", "3")))
    ap.add_argument("--weights", default=None)
    ap.add_argument("--default", type=float, default=3.0)
    ap.add_argument("--record", default=None, metavar="FILE")
    ap.add_argument("target")
    a, extra = ap.parse_known_args(argv)
    if a.jobs < 1:
        ap.error("--jobs must be >= 1")
    py = sys.executable
    ids = collect(py, a.target, extra)
    if not ids:
        print("ptest: no tests under %s" % a.target)
        return 5
    weights = {}
    if a.weights and os.path.exists(a.weights):
        with open(a.weights) as f:
            weights = json.load(f)
    groups = deal(ids, weights, a.jobs, a.default)
    if a.record:
        extra = extra + ["--durations=0", "--durations-min=0"]
    n = len(groups)
    procs = []
    t0 = time.monotonic()
    for k, (_w, ts) in enumerate(groups):
        env = dict(os.environ, TEST_PORT_SLOT=str(k), TEST_PORT_SLOTS=str(n))
        f = tempfile.TemporaryFile("w+")  # a file, not a pipe: no group blocks on output
        p = subprocess.Popen([py, "-m", "pytest", "-q"] + extra + ts, env=env,
                             stdout=f, stderr=subprocess.STDOUT, text=True)
        procs.append((p, f))
    outs = [None] * n
    ends = [None] * n
    left = set(range(n))
    while left:
        for k in sorted(left):
            if procs[k][0].poll() is not None:
                ends[k] = time.monotonic() - t0
                left.discard(k)
        time.sleep(0.2)
    for k, (_p, f) in enumerate(procs):
        f.seek(0)
        outs[k] = f.read()
        f.close()
    procs = [p for p, _f in procs]
    rc = 0
    for k, p in enumerate(procs):
        sys.stdout.write("== group %d/%d (%d tests)\n%s" % (k + 1, n, len(groups[k][1]),
                                                          outs[k]))
        if p.returncode != 0 and rc == 0:
            rc = p.returncode
    for k, p in enumerate(procs):
        print("ptest: group %d: %d tests, estimated %.0f s, %s, ended after %.1f s"
              % (k + 1, len(groups[k][1]), groups[k][0],
                 "passed" if p.returncode == 0 else "FAILED (%d)" % p.returncode, ends[k]))
    print("ptest: %d tests in %d processes, wall %.1f s" % (len(ids), n,
                                                            time.monotonic() - t0))
    if a.record:
        got = {}
        for o in outs:
            got.update(durations(o))
        missing = [t for t in ids if t not in got]
        with open(a.record, "w") as f:
            f.write("{\n" + ",\n".join('"%s": %.2f' % (t, got[t]) for t in sorted(got))
                    + "\n}\n")
        print("ptest: %d durations written to %s%s" % (
            len(got), a.record, ", missing: %s" % " ".join(missing) if missing else ""))
    return rc


if __name__ == "__main__":
    sys.exit(main())
