"""pytest plug-in of ``tools/ptest.py --record``: each test's wall seconds (setup + call +
teardown) and CPU seconds (user + system of the pytest process and of the child processes
it reaped meanwhile: the virtual boards, clients and brokers a system test starts), one JSON
line ``{"id", "wall", "cpu"}`` per test appended to the file named by ``PTEST_RECORD``.

Loaded by ptest with ``-p ptest_record`` (tools/ on PYTHONPATH); not a pytest plug-in of
the project otherwise. CPU of a child still running when its test ends (a module-scoped
broker) is counted in the test that reaps it."""

import json
import os
import resource
import time

import pytest


def _cpu():
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    t0, c0 = time.monotonic(), _cpu()
    yield
    path = os.environ.get("PTEST_RECORD")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"id": item.nodeid, "wall": round(time.monotonic() - t0, 2),
                                "cpu": round(_cpu() - c0, 2)}) + "\n")
