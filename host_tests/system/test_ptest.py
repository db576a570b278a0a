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


def test_cpu_bound_tests_only_in_as_many_groups_as_cores():
    ids = ["a.py::cpu1", "a.py::cpu2", "a.py::cpu3", "b.py::w1", "b.py::w2", "b.py::w3",
           "c.py::w4"]
    w = {"a.py::cpu1": [100, 95], "a.py::cpu2": [60, 58], "a.py::cpu3": [40, 39],
         "b.py::w1": [90, 5], "b.py::w2": [50, 2], "b.py::w3": 30, "c.py::w4": [20, 9]}
    groups = ptest.deal(ids, w, 4, 1.0, cores=2)
    assert sorted(t for _w, ts in groups for t in ts) == sorted(ids)
    cpu_groups = [k for k, (_w, ts) in enumerate(groups) if any("cpu" in t for t in ts)]
    assert cpu_groups == [0, 1], groups  # never more CPU-bound tests at once than cores
    assert sorted(g[0] for g in groups) == [90, 100, 100, 100], groups
    # without --cores the CPU-bound tests spread over every group
    spread = ptest.deal(ids, w, 4, 1.0)
    assert len([1 for _w, ts in spread if any("cpu" in t for t in ts)]) == 3, spread
    assert ptest.weight(w, "b.py::w3", 3.0) == (30.0, 0.0)
    # recorded under load: 12 s of CPU in 150 s of wall is CPU-bound all the same
    w2 = dict(w, **{"b.py::w1": [150, 12]})
    loaded = ptest.deal(ids, w2, 4, 1.0, cores=2)
    assert "b.py::w1" in loaded[0][1] + loaded[1][1], loaded
    assert ptest.weight(w, "x.py::new", 3.0) == (3.0, 0.0)


def test_record_writes_the_measured_wall_and_cpu(tmp_path):
    # --record (make system-durations): every test's setup + call + teardown wall seconds
    # and its CPU seconds (the pytest process and its reaped children)
    (tmp_path / "test_one.py").write_text(
        "import subprocess, sys, time\n\n"
        "def test_slow():\n    time.sleep(0.4)\n\n"
        "def test_busy():\n"
        "    subprocess.run([sys.executable, '-c', "
        "'import time\\nt = time.process_time()\\nwhile time.process_time() - t < 0.5: "
        "pass'], check=True)\n\n"
        "def test_fast():\n    pass\n")
    rec = tmp_path / "d.json"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "ptest.py"), "--jobs", "2",
                        "--record", str(rec), str(tmp_path)], cwd=str(tmp_path),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "CPU" in r.stdout.splitlines()[-2], r.stdout
    import json

    got = json.loads(rec.read_text())
    assert set(got) == {"test_one.py::test_slow", "test_one.py::test_busy",
                        "test_one.py::test_fast"}, got
    slow, busy, fast = (got["test_one.py::test_" + k] for k in ("slow", "busy", "fast"))
    assert slow[0] >= 0.4 and slow[1] < 0.2, got  # waiting: wall, little CPU
    assert busy[1] >= 0.5 and busy[0] >= 0.5, got  # a child's CPU is counted
    assert fast[0] < 0.3, got
    # the recorded file is the next run's weights: the busy test counts as CPU-bound
    groups = ptest.deal(sorted(got), got, 2, 3.0, cores=1)
    assert "test_one.py::test_busy" in groups[0][1], groups
