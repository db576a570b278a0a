"""Run a pytest directory as a few pytest processes in parallel (``make system``).

Most system tests wait on real time (a meter paced at --speed N, IEC 62056-21 reaction
times, button holds): run side by side they take about the time of the longest group, not
the sum. A few run the virtual board at --speed max and use a whole core each. The tests are
collected once (``pytest --collect-only -q``), then dealt into ``--jobs`` groups (default 5),
longest first into the lightest group (LPT), by the weights in ``--weights``: a JSON file of
test id -> ``[wall s, CPU s]`` (or a bare wall s; a test not listed counts ``--default`` s of
wall and no CPU). A test whose CPU is at least ``--cpu-share`` (0.5) of its wall, or at
least ``--cpu-min`` (10) s, is CPU-bound (on a loaded machine a --speed max test waits for
a core: its recorded wall grows, its CPU does not). The CPU-bound tests are dealt first and
only into the first ``--cores`` groups (default the machine's CPU count), so that no more of
them run at once than there are cores; the waiting tests then fill every group. Each group
runs in its own ``pytest -q`` process and keeps the collection order inside it. No pytest
plug-in is needed for a run (pytest-xdist is not in requirements-dev.txt).

Ports: each process gets ``TEST_PORT_SLOT`` = k and ``TEST_PORT_SLOTS`` = jobs in its
environment; host_tests/system/ports.py then hands it only free ports with
``port % jobs == k``, so two processes never pick the same port between a probe and its use.

Output: each group's output after it ends (in group order), then one line per group with its
result and wall time. Exit status: 0 if every group passed, else the first failing one's.

``--record FILE``: run each group with the plug-in tools/ptest_record.py (``-p
ptest_record``), which measures every test's wall seconds (setup + call + teardown, as it
ran in this parallel run) and CPU seconds (the pytest process and the processes it
reaped), and write them to FILE as the weights for the next runs; ``make system-durations``
regenerates host_tests/system/durations.json so.

Usage: python tools/ptest.py [--jobs N] [--cores N] [--cpu-share F] [--cpu-min S]
       [--weights FILE] [--default S] [--record FILE] DIR [pytest args...]
"""

import argparse
import json
import os
import resource
import shutil
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


def weight(weights, t, default):
    """(wall s, CPU s) of test ``t``: a ``[wall, cpu]`` entry, a bare wall figure (CPU 0),
    or ``default`` wall s and CPU 0 when not listed."""
    w = weights.get(t, default)
    if isinstance(w, (list, tuple)):
        return float(w[0]), float(w[1])
    return float(w), 0.0


def deal(ids, weights, jobs, default, cores=None, share=0.5, cpu_min=10.0):
    """``jobs`` groups ``(estimated wall s, [test ids])``: the CPU-bound tests (CPU >=
    ``share`` x wall, or >= ``cpu_min`` s: weights recorded on a loaded machine stretch a
    CPU-bound test's wall, not its CPU) longest first into the lightest of the first
    ``cores`` groups, then the others longest first into the lightest group of all (LPT);
    each group keeps the collection order inside it (fixtures and module set-up stay
    together). ``cores`` None (or >= jobs): every test may go to any group."""
    order = {t: i for i, t in enumerate(ids)}
    groups = [[0.0, []] for _ in range(jobs)]
    lanes = groups if cores is None or cores >= jobs else groups[:max(1, cores)]
    def bound(t):
        w, c = weight(weights, t, default)
        return c > 0 and (c >= share * w or c >= cpu_min)

    busy = [t for t in ids if bound(t)]
    rest = [t for t in ids if t not in set(busy)]
    for pool, ts in ((lanes, busy), (groups, rest)):
        for t in sorted(ts, key=lambda t: -weight(weights, t, default)[0]):
            g = min(pool, key=lambda g: g[0])
            g[0] += weight(weights, t, default)[0]
            g[1].append(t)
    return [(w, sorted(ts, key=order.get)) for w, ts in groups if ts]


def records(paths):
    """Test id -> [wall s, CPU s] from the JSON lines tools/ptest_record.py wrote."""
    out = {}
    for path in paths:
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for ln in f:
                r = json.loads(ln)
                out[r["id"]] = [r["wall"], r["cpu"]]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("SYSTEM_JOBS", "5")))
    ap.add_argument("--cores", type=int, default=int(os.environ.get("SYSTEM_CORES", "0"))
                    or os.cpu_count() or 1)
    ap.add_argument("--cpu-share", type=float, default=0.5)
    ap.add_argument("--cpu-min", type=float, default=10.0)
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
    groups = deal(ids, weights, a.jobs, a.default, a.cores, a.cpu_share, a.cpu_min)
    tmp = tempfile.mkdtemp(prefix="ptest-")
    rec = [os.path.join(tmp, "group%d.jsonl" % k) for k in range(len(groups))]
    if a.record:
        extra = extra + ["-p", "ptest_record"]
    n = len(groups)
    procs = []
    t0 = time.monotonic()
    for k, (_w, ts) in enumerate(groups):
        env = dict(os.environ, TEST_PORT_SLOT=str(k), TEST_PORT_SLOTS=str(n))
        if a.record:
            tools = os.path.dirname(os.path.abspath(__file__))
            env["PYTHONPATH"] = os.pathsep.join(
                [tools] + [p for p in [os.environ.get("PYTHONPATH")] if p])
            env["PTEST_RECORD"] = rec[k]
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
        cpu = sum(weight(weights, t, a.default)[1] for t in groups[k][1])
        print("ptest: group %d: %d tests, estimated %.0f s (CPU %.0f s), %s, ended after %.1f s"
              % (k + 1, len(groups[k][1]), groups[k][0], cpu,
                 "passed" if p.returncode == 0 else "FAILED (%d)" % p.returncode, ends[k]))
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    print("ptest: %d tests in %d processes, wall %.1f s, CPU %.1f s (user + sys of the groups"
          " and their children), load average %.2f at the end"
          % (len(ids), n, time.monotonic() - t0, ru.ru_utime + ru.ru_stime, os.getloadavg()[0]))
    if a.record:
        got = records(rec)
        missing = [t for t in ids if t not in got]
        with open(a.record, "w") as f:
            f.write("{\n" + ",\n".join('"%s": [%.2f, %.2f]' % (t, got[t][0], got[t][1])
                                        for t in sorted(got)) + "\n}\n")
        print("ptest: %d durations written to %s%s" % (
            len(got), a.record, ", missing: %s" % " ".join(missing) if missing else ""))
    shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
