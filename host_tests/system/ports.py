"""Free TCP ports for the system tests, disjoint between parallel pytest processes.

tools/ptest.py runs the system tests in several processes and gives each one
``TEST_PORT_SLOT`` = k of ``TEST_PORT_SLOTS`` = n: :func:`free_port` then returns only ports
with ``port % n == k``, so a port one process probed (and closed again before the meter binds
it) is never handed to another. Without these variables (one pytest process) any free port."""

import os
import socket

_SLOTS = int(os.environ.get("TEST_PORT_SLOTS", "1") or 1)
_SLOT = int(os.environ.get("TEST_PORT_SLOT", "0") or 0)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (and belongs to this process's
    slot)."""
    for _ in range(1000):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port % _SLOTS == _SLOT:
            return port
    raise RuntimeError("no free port in slot %d of %d" % (_SLOT, _SLOTS))
