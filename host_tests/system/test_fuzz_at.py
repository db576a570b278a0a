"""The AT engine and the connection manager fuzzed on the MicroPython unix port
(tools/fuzz_at.py): 100 000 generated modem lines into the engine, 20 000 mutated lines
(with scripted modem faults) into the manager driving the SIM800 model, which must recover
to an echoed round trip after every 2 000 lines."""

import json
import os
import subprocess

from simrun import MICROPYTHON, ROOT


def test_fuzz_at_100k_lines_on_the_unix_port():
    env = dict(os.environ, MICROPYPATH=".frozen:lib:.")
    p = subprocess.run([MICROPYTHON, "tools/fuzz_at.py", "--engine-lines", "100000",
                        "--manager-lines", "20000", "--seed", "3", "--quiet"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    e, m = out["engine"], out["manager"]
    assert out["ok"], out
    assert e["lines"] == 100000 and m["lines"] >= 20000
    for k in ("results", "urcs", "timeouts", "garbage", "overlong", "late", "echoes",
              "data_dropped"):
        assert e[k] > 100, (k, e)
    assert e["heap_last"] - e["heap_first"] <= 2048, e
    assert m["segments"] >= 10 and m["echoed"] == m["segments"], m
    assert m["faults"] > 100 and m["power_cycles"] > 5 and m["connects"] > 15, m
    assert m["heap_last"] - m["heap_first"] <= 4096, m
