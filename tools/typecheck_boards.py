"""Type-check the real-board modules against MicroPython's port stubs with pyright (CPython).

Usage: python tools/typecheck_boards.py [--selftest] [board ...]   (boards: rp2, stm32)

Each port's stub package ships its own ``machine.pyi`` (and stdlib stubs), so every board is
checked in its own pyright run that sees only its port's stubs: ``boards/pico.py`` (and the
modules it is made of: ``rp2_pio_uart``, ``rp2_flash``, ``file_blocks``, lib/mcp23017) against
``micropython-rp2-rpi-pico-stubs``, ``boards/stm32.py`` (with ``stm32_flash``, ``file_blocks``)
against ``micropython-stm32-stubs``. The stubs are pip-installed once into ``.stubs/<port>/``
(``--target``; a marker file records the pinned version, so a version bump re-installs).
pyright runs in basic mode from the same virtual environment as this interpreter, with a
generated ``pyrightconfig.json`` in a temporary directory: the stub folder is both the typeshed
(MicroPython's ``time``, ``os``, ``builtins``) and an extra path, next to the repository root
(``boards.board``) and ``lib/`` (drivers).

``--selftest`` also checks a copy of each board module with a function appended that calls
``Board().<uart>.wirte(...)`` and fails unless pyright reports it: proof that the check can
fail.

Exit status: 0 when every board is clean, 1 on any pyright error, 2 on a set-up problem.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUBS = os.path.join(ROOT, ".stubs")

# port -> (pinned stub package, board modules checked against it, machine.UART attribute
# used by the selftest)
BOARDS = {
    "rp2": ("micropython-rp2-rpi-pico-stubs==1.29.0.post1",
            ["boards/pico.py", "boards/rp2_pio_uart.py", "boards/rp2_flash.py",
             "boards/file_blocks.py", "lib/mcp23017/__init__.py"], "uart_modem"),
    "stm32": ("micropython-stm32-stubs==1.29.0.post1",
              ["boards/stm32.py", "boards/stm32_flash.py", "boards/file_blocks.py"],
              "uart_optical"),
}
_MISTAKE = """

def _selftest_mistake():
    b = Board()
    b.%s.wirte(b"/?!\\r\\n")
"""


def ensure_stubs(port, spec):
    """Install ``spec`` into .stubs/<port> unless the marker says it is already there."""
    dest = os.path.join(STUBS, port)
    marker = os.path.join(dest, ".installed")
    try:
        with open(marker) as f:
            if f.read().strip() == spec:
                return dest
    except OSError:
        pass
    os.makedirs(STUBS, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=port + ".", dir=STUBS)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--no-input", "--target", tmp, spec]
    print("typecheck: installing %s into .stubs/%s" % (spec, port))
    r = subprocess.run(cmd)
    if r.returncode:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SystemExit("typecheck: pip could not install %s (exit %d)" % (spec, r.returncode))
    with open(os.path.join(tmp, ".installed"), "w") as f:
        f.write(spec + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    os.rename(tmp, dest)
    return dest


def pyright_exe():
    exe = os.path.join(os.path.dirname(sys.executable), "pyright")
    if not os.path.exists(exe):
        raise SystemExit("typecheck: no pyright next to %s (install requirements-dev.txt)"
                         % sys.executable)
    return exe


def run_pyright(stubdir, files, workdir):
    """Run pyright on ``files`` (absolute paths); return (diagnostics, summary)."""
    cfg = {
        "typeCheckingMode": "basic",
        "pythonVersion": "3.11",
        "typeshedPath": stubdir,
        "extraPaths": [ROOT, os.path.join(ROOT, "lib"), stubdir],
        # Stub-only packages have no source next to them; that is expected here.
        "reportMissingModuleSource": "none",
    }
    cfg_path = os.path.join(workdir, "pyrightconfig.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=1)
    r = subprocess.run([pyright_exe(), "--outputjson", "-p", cfg_path] + files, cwd=ROOT,
                       capture_output=True, text=True)
    try:
        out = json.loads(r.stdout)
    except ValueError:
        sys.stderr.write(r.stdout + r.stderr)
        raise SystemExit("typecheck: pyright failed to run (exit %d)" % r.returncode) from None
    return out.get("generalDiagnostics", []), out.get("summary", {})


def show(diags):
    for d in diags:
        path = os.path.relpath(d.get("file", "?"), ROOT)
        start = d.get("range", {}).get("start", {})
        print("  %s:%d:%d: %s: %s" % (path, start.get("line", 0) + 1,
                                       start.get("character", 0) + 1, d.get("severity"),
                                       d.get("message", "").replace("\n", " ")))


def selftest(stubdir, board_file, uart_attr, workdir):
    """Check a copy of ``board_file`` with a function appended that calls ``wirte`` on the
    board's ``uart_attr``; True if pyright reports it."""
    with open(os.path.join(ROOT, board_file)) as f:
        src = f.read()
    bad = os.path.join(workdir, "selftest_" + os.path.basename(board_file))
    with open(bad, "w") as f:
        f.write(src.rstrip("\n") + "\n" + _MISTAKE % uart_attr)
    diags, _ = run_pyright(stubdir, [bad], workdir)
    return any(d.get("severity") == "error" and "wirte" in d.get("message", "")
               for d in diags)


def main(argv):
    want_selftest = "--selftest" in argv
    ports = [a for a in argv if not a.startswith("--")] or list(BOARDS)
    for p in ports:
        if p not in BOARDS:
            raise SystemExit("typecheck: unknown board %r (known: %s)" % (p, ", ".join(BOARDS)))
    pyright_exe()
    failed = 0
    t_all = time.time()
    for port in ports:
        spec, files, uart_attr = BOARDS[port]
        stubdir = ensure_stubs(port, spec)
        t0 = time.time()
        with tempfile.TemporaryDirectory(prefix="typecheck-") as work:
            diags, summary = run_pyright(stubdir, [os.path.join(ROOT, f) for f in files], work)
            errors = summary.get("errorCount", 0)
            print("typecheck %-5s %s vs %s: %d errors, %d warnings (%.1f s)"
                  % (port, " ".join(files), spec, errors, summary.get("warningCount", 0),
                     time.time() - t0))
            show(diags)
            failed += errors
            if want_selftest:
                for f in files[:1]:  # the board module (the others have no Board)
                    caught = selftest(stubdir, f, uart_attr, work)
                    print("  selftest: board.%s.wirte(...) in a copy of %s: %s"
                          % (uart_attr, f, "reported" if caught else "NOT REPORTED"))
                    failed += 0 if caught else 1
    print("typecheck: %s (%.1f s)" % ("FAILED" if failed else "ok", time.time() - t_all))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
