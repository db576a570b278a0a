"""Helpers for system tests: run the virtual board as a process, integrate traces."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
MICROPYTHON = os.path.join(BIN, "micropython")
MPYPATH = ".frozen:.frozen-lib:firmware:lib:."
# The virtual board's heap (unix port, 64-bit objects): it holds the 1 MiB NOR-flash image and
# the firmware compiled from source at import. The port's default (2 MiB) left ~10 % free at
# boot, and a checkout's path changed the fragmentation enough for an 8 KB block of the
# compiler to fail (MemoryError at boot); the Makefile's `sim` uses the same size.
SIM_HEAP = "4m"


def run_sim(*args, timeout=300, heapsize=SIM_HEAP):
    """Run firmware/main.py on the unix port; returns (returncode, stdout, stderr)."""
    cmd = [MICROPYTHON]
    if heapsize:
        cmd += ["-X", "heapsize=" + heapsize]
    cmd += ["firmware/main.py"] + [str(a) for a in args]
    env = dict(os.environ, MICROPYPATH=MPYPATH)
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def control(port, line, timeout=10):
    """Send one command ``line`` to a sim's control channel (``--control-tcp port``) and
    return its one-line reply, stripped."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(line.encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            d = s.recv(512)
            if not d:
                break
            reply += d
    return reply.decode().strip()


def stop_sim(p, control_port, timeout=60):
    """End the sim process ``p`` (started with ``--control-tcp control_port``) in order with the
    control channel's ``stop``, as its ``--duration`` would: the shutdown, the summary and the
    ``--json`` line follow. Returns ``p.communicate()``. (Not SIGINT: the unix port raises
    Ctrl-C wherever the interpreter is, and inside a garbage collection that leaves the heap
    locked, so the report ends in "MemoryError: heap is locked"; see firmware/app.py run().)
    Raises AssertionError naming the reply if the channel refuses."""
    reply = control(control_port, "stop")
    assert reply == "OK", ("control channel stop", reply)
    return p.communicate(timeout=timeout)


def sim_json(*args, **kw):
    rc, out, err = run_sim(*(list(args) + ["--json", "--quiet"]), **kw)
    assert rc == 0, (rc, err[-2000:])
    line = [ln for ln in out.splitlines() if ln.startswith("{")][-1]
    return json.loads(line)


sys.path.insert(0, os.path.join(ROOT, "tools"))
from trace_integral import integral, read_trace  # noqa: E402,F401
