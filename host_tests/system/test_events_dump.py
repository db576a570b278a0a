"""tools/events_dump.py against what a user may hand it: a missing file, a directory, an
image of the wrong size (a truncated copy, another board's image): one line naming the file
and the problem, exit status 2, never a traceback."""

import os
import subprocess
import sys

from simrun import ROOT

TOOL = os.path.join(ROOT, "tools", "events_dump.py")


def _run(*args):
    p = subprocess.run([sys.executable, TOOL] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_bad_images_are_named_not_a_traceback(tmp_path):
    missing = tmp_path / "nope.img"
    short = tmp_path / "short.img"
    short.write_bytes(b"\xff" * 100000)
    empty = tmp_path / "empty.img"
    empty.write_bytes(b"")
    for path, why in ((missing, "no such file"), (tmp_path, "directory"),
                      (short, "1048576"), (empty, "1048576")):
        rc, out, err = _run(path)
        assert rc == 2 and "Traceback" not in err, (path, rc, err[-1500:])
        assert str(path) in err and why in err.lower(), (path, err)
    blank = tmp_path / "blank.img"
    blank.write_bytes(b"\xff" * 131072)
    rc, out, err = _run("--json", blank)
    assert rc == 0 and out.startswith("{"), (rc, out[:200], err[-1500:])
