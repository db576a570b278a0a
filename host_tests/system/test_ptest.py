"""tools/ptest.py (the parallel system-test runner of ``make system``) and the port slots
of host_tests/system/ports.py."""

import os
import subprocess
import sys

from simrun import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))

import ptest  # noqa: E402


def test_deal_balances_by_duration_and_keeps_collection_order():
    ids = ["a.py::t1", "a.py::t2", "b.py::t1", "b.py::t2", "c.py::t1"]
    w = {"a.py::t1": 30, "b.py::t1": 20, "b.py::t2": 10}
    groups = ptest.deal(ids, w, 2, 1.0)
    assert sorted(t for _w, ts in groups for t in ts) == sorted(ids)  # each test once
    loads = sorted(g[0] for g in groups)
    assert loads == [31, 31], groups  # 30 + 1 and 20 + 10 + 1
    for _w, ts in groups:
        assert ts == sorted(ts, key=ids.index)
    assert len(ptest.deal(ids, {}, 9, 1.0)) == 5  # never an empty group


def test_port_slots_are_disjoint_between_processes():
    code = ("import sys; sys.path.insert(0, 'host_tests/system'); import ports; "
            "print(' '.join(str(ports.free_port()) for _ in range(20)))")
    for k in range(3):
        env = dict(os.environ, TEST_PORT_SLOT=str(k), TEST_PORT_SLOTS="3")
        r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                           capture_output=True, text=True, check=True)
        got = [int(p) for p in r.stdout.split()]
        assert len(got) == 20 and all(p % 3 == k for p in got), (k, got)


def test_a_failing_group_fails_the_run(tmp_path):
    (tmp_path / "test_one.py").write_text("def test_ok():\n    pass\n")
    (tmp_path / "test_two.py").write_text("def test_bad():\n    assert False\n")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools/ptest.py"), "--jobs", "2",
                        str(tmp_path), "-p", "no:cacheprovider"], cwd=str(tmp_path),
                       capture_output=True, text=True)
    assert r.returncode != 0, r.stdout
    assert "1 failed" in r.stdout and "1 passed" in r.stdout and "FAILED" in r.stdout, r.stdout


def test_record_writes_the_measured_durations(tmp_path):
    # --record (make system-durations): every test's setup + call + teardown seconds
    text = ("============ slowest durations ============\n"
            "2.50s call     host_tests/system/test_a.py::test_x\n"
            "0.25s setup    host_tests/system/test_a.py::test_x\n"
            "0.00s teardown host_tests/system/test_a.py::test_y[p-1]\n"
            "1.00s call     host_tests/system/test_a.py::test_y[p-1]\n"
            "3 passed in 3.8s\n")
    assert ptest.durations(text) == {"host_tests/system/test_a.py::test_x": 2.75,
                                     "host_tests/system/test_a.py::test_y[p-1]": 1.0}
    (tmp_path / "test_one.py").write_text(
        "import time\n\ndef test_slow():\n    time.sleep(0.3)\n\ndef test_fast():\n    pass\n")
    rec = tmp_path / "d.json"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "ptest.py"), "--jobs", "2",
                        "--record", str(rec), str(tmp_path)], cwd=str(tmp_path),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    import json

    got = json.loads(rec.read_text())
    assert set(got) == {"test_one.py::test_slow", "test_one.py::test_fast"}, got
    assert got["test_one.py::test_slow"] >= 0.3 and got["test_one.py::test_fast"] < 0.3, got
