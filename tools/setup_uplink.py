"""Set-up for the uplink (issue 11) code and its tests; run by ``make uplink-lib`` /
``make uplink-broker`` (CPython, from .venv). Idempotent: a second run only checks.

--umqtt   umqtt.simple from PyPI ``micropython-umqtt.simple`` 1.3.4 (micropython-lib) into
          ``.frozen-lib/umqtt/simple.py`` (git-ignored, never committed). Its sdist has no
          setup.py, so ``pip install`` refuses it; ``pip download --no-clean`` leaves it
          unpacked under $TMPDIR/pip-download-*/ and exits non-zero. The file is checked
          against a pinned SHA-256 before it is used.
--broker  the MQTT broker for the system tests: Debian ``mosquitto`` (2.0.11 on bookworm),
          installed with apt-get when missing (needs root, as in CI); the tests start their
          own instance on a free loopback port (host_tests/system/broker.py).

Exit status 0 when everything asked for is in place, 1 otherwise (with the reason).
"""

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, ".frozen-lib")
UMQTT = os.path.join(LIB, "umqtt", "simple.py")
UMQTT_SPEC = "micropython-umqtt.simple==1.3.4"
UMQTT_SHA256 = "8555d2f654deb8eb0d724f79b0811a78cc94029d070f3d96bbd74288653d63a5"


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def umqtt():
    if os.path.exists(UMQTT) and _sha(UMQTT) == UMQTT_SHA256:
        return True
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TMPDIR=tmp)
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-clean",
               "--disable-pip-version-check", "-d", os.path.join(tmp, "dl"), UMQTT_SPEC]
        print("setup_uplink: fetching", UMQTT_SPEC)
        subprocess.run(cmd, env=env, capture_output=True, text=True)  # exits 1: no setup.py
        found = glob.glob(os.path.join(tmp, "pip-download-*", "*", "umqtt", "simple.py"))
        if not found:
            print("setup_uplink: umqtt/simple.py not found after pip download of", UMQTT_SPEC)
            return False
        if _sha(found[0]) != UMQTT_SHA256:
            print("setup_uplink: umqtt/simple.py has an unexpected SHA-256:", _sha(found[0]))
            return False
        os.makedirs(os.path.dirname(UMQTT), exist_ok=True)
        shutil.copyfile(found[0], UMQTT)
    print("setup_uplink: installed", os.path.relpath(UMQTT, ROOT))
    return True


def mosquitto_path():
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.path.exists(p)),
        None)


def broker():
    if mosquitto_path():
        return True
    if os.geteuid() != 0:
        print("setup_uplink: mosquitto is missing and this is not root; install it with "
              "`sudo apt-get install -y mosquitto`")
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    inst = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "mosquitto"]
    print("setup_uplink: apt-get install mosquitto")
    if subprocess.run(inst, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        r = subprocess.run(inst, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            print("setup_uplink: apt-get install mosquitto failed:", r.stderr[-500:])
            return False
    return mosquitto_path() is not None


def main():
    args = sys.argv[1:] or ["--umqtt", "--broker"]
    ok = True
    if "--umqtt" in args:
        ok = umqtt() and ok
    if "--broker" in args:
        ok = broker() and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
