"""Registers across power cuts on the virtual board (the whole firmware as a process)."""

import os

import pytest
from simrun import ROOT, sim_json

FOUR_Q = os.path.join(ROOT, "boards/sim/loads/four_quadrant.csv")
KEYS = ("1.8.0", "2.8.0", "5.8.0", "6.8.0", "7.8.0", "8.8.0", "9.8.0", "10.8.0")


def _boot(img):
    return sim_json("--load", FOUR_Q, "--speed", "max", "--flash", img, "--duration", 0)


def test_blank_flash_then_resume(tmp_path):
    img = str(tmp_path / "nor.img")
    first = sim_json("--load", FOUR_Q, "--speed", "max", "--flash", img, "--duration", 150)
    assert first["storage"] == "blank"
    assert 8 in [e[1] for e in first["events"]], "FLASH_BLANK logged"
    again = _boot(img)
    assert again["storage"] == "ok"
    assert again["registers"] == first["registers"], (again["registers"], first["registers"])


@pytest.mark.parametrize("speed", ["max", "600"])
def test_power_fail_warning_loses_nothing(tmp_path, speed):
    img = str(tmp_path / "nor.img")
    for at in (70.5, 130.25, 250.75):
        before = _boot(img)["registers"]
        out = sim_json("--load", FOUR_Q, "--speed", speed, "--flash", img, "--duration", 2000,
                       "--power-fail-at", at, "--commit-s", 100000)
        assert out["power_lost"], "power removed after the hold-up time"
        after = _boot(img)["registers"]
        for k in KEYS:
            assert after[k] == out["registers"][k], (at, k, after[k], out["registers"][k])
            assert after[k] >= before[k]


def test_cut_at_flash_operations_never_backwards(tmp_path):
    # a run with a commit every 5 s, cut at successive flash operations; after each cut the
    # reboot must restore registers >= the last completed commit and <= the true total.
    img = str(tmp_path / "nor.img")
    last = {k: 0.0 for k in KEYS}
    for n in range(1, 40, 3):
        if os.path.exists(img):
            os.remove(img)
        out = sim_json("--load", FOUR_Q, "--speed", "max", "--flash", img, "--duration", 300,
                       "--commit-s", 5, "--cut-at-op", n)
        boot = _boot(img)
        assert boot["storage"] in ("ok", "blank"), boot["storage"]
        for k in KEYS:
            assert boot["registers"][k] <= out["registers"][k] + 1e-9, (n, k)
        # committed values only grow with later cut points (same deterministic run)
        for k in KEYS:
            assert boot["registers"][k] >= last[k] - 1e-9, (n, k, boot["registers"][k], last[k])
        last = boot["registers"]
    assert last["1.8.0"] > 0, "cuts late enough to have committed energy"


def test_random_corruption_is_logged_and_never_raises_registers(tmp_path):
    import random

    img = str(tmp_path / "nor.img")
    first = sim_json("--load", FOUR_Q, "--speed", "max", "--flash", img, "--duration", 300,
                     "--commit-s", 5)
    rnd = random.Random(7)
    data = bytearray(open(img, "rb").read())
    for _ in range(200):  # flip bytes across the journal partition (first 64 KiB)
        i = rnd.randrange(0, 64 * 1024)
        data[i] ^= 1 << rnd.randrange(8)
    open(img, "wb").write(bytes(data))
    boot = _boot(img)
    assert boot["storage"] in ("ok", "corrupt"), boot["storage"]
    codes = [e[1] for e in boot["events"]]
    assert 9 in codes or boot["storage"] == "ok", ("FLASH_CORRUPT logged", codes)
    for k in KEYS:
        assert boot["registers"][k] <= first["registers"][k] + 1e-9, (k, boot["registers"][k])
    # and the meter keeps metering on the damaged image
    again = sim_json("--load", FOUR_Q, "--speed", "max", "--flash", img, "--duration", 200)
    assert again["registers"]["1.8.0"] >= boot["registers"]["1.8.0"]


def test_foreign_image_is_refused_and_reformatted(tmp_path):
    img = str(tmp_path / "nor.img")
    # an image from another format: littlefs-like garbage with plausible structure
    data = bytearray(b"\xff" * (128 * 1024))
    for s in range(0, 64 * 1024, 4096):
        data[s:s + 16] = b"SR\x07\x01" + bytes(12)  # ring header of an unknown format 7
    open(img, "wb").write(bytes(data))
    boot = _boot(img)
    assert boot["storage"] in ("foreign", "corrupt"), boot["storage"]
    assert 9 in [e[1] for e in boot["events"]], boot["events"]
    assert all(v == 0 for v in boot["registers"].values())
    again = sim_json("--load", FOUR_Q, "--speed", "max", "--flash", img, "--duration", 150)
    assert again["registers"]["1.8.0"] > 0, "meter formats the partition and meters on"
    assert _boot(img)["storage"] == "ok"


def test_hard_kill_is_an_instant_power_loss(tmp_path):
    import signal
    import subprocess
    import time

    from simrun import MICROPYTHON, MPYPATH

    img = str(tmp_path / "nor.img")
    env = dict(os.environ, MICROPYPATH=MPYPATH)
    p = subprocess.Popen([MICROPYTHON, "firmware/main.py", "--load", FOUR_Q, "--speed", "100",
                          "--flash", img, "--commit-s", "2", "--quiet"], cwd=ROOT, env=env)
    time.sleep(3.0)  # ~300 simulated seconds: Q1..Q4 energy, commits every 2 s
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)
    boot = _boot(img)
    assert boot["storage"] == "ok", boot["storage"]
    assert boot["registers"]["1.8.0"] > 0, boot["registers"]
