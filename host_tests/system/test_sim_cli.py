"""The virtual board's command line, control channel and output as a new user meets them
(issue 7, items 15 and 16): help, every option's bad values, errors that name the file, port
or value, the load trace's encoding, the control channel under bad input, the JSON line's
numbers, fresh status LEDs and the summary at the end of a timed run."""

import json
import os
import re
import socket
import subprocess
import time

from simrun import MICROPYTHON, MPYPATH, ROOT, run_sim, sim_json
from test_iec_client import _free_port

FOUR_Q = os.path.join(ROOT, "boards/sim/loads/four_quadrant.csv")


def _fails(*args):
    rc, out, err = run_sim(*args, timeout=30)
    assert rc == 2, (args, rc, out[-500:], err[-1000:])
    assert "Traceback" not in err, (args, err)
    return err.strip()


def test_help_prints_the_options():
    for flag in ("--help", "-h"):
        rc, out, err = run_sim(flag)
        assert rc == 0, (flag, rc, err[-1000:])
        assert out.startswith("usage:") and "--speed" in out and "--rtc-battery" in out, out
        assert max(len(ln) for ln in out.splitlines()) <= 80, "help fits 80 columns"
    rc, out, err = run_sim("--quiet", "--help", "--speed", "nonsense")
    assert rc == 0 and out.startswith("usage:"), "help wins over a later bad value"


def test_unknown_and_missing_values_are_named():
    assert "unknown option --frob" in _fails("--quiet", "--frob")
    assert "unknown option --frob" in _fails("--frob", "3")
    assert "option --speed needs a value" in _fails("--speed")
    assert "option --load needs a value" in _fails("--load", "--json")


def test_every_numeric_option_is_range_checked():
    bad = [("--speed", "inf"), ("--speed", "nan"), ("--speed", "-1"), ("--speed", "0.0001"),
           ("--speed", "fast"), ("--duration", "-3"), ("--duration", "nan"),
           ("--duration", "inf"), ("--voltage", "0"), ("--voltage", "1e400"),
           ("--neutral-pct", "300"), ("--neutral-pct", "5.5"), ("--fault-at", "nan"),
           ("--power-fail-at", "-1"), ("--holdup-ms", "-5"), ("--cut-at-op", "0"),
           ("--commit-s", "0"), ("--heap-every", "0"), ("--optical-tcp", "99999"),
           ("--optical-tcp", "0"), ("--control-tcp", "70000"), ("--rs485-bus", "4100"),
           ("--rs485-bus", "127.0.0.1:99999"), ("--start", "2016-02-30"),
           ("--start", "yesterday"), ("--start", "2100-01-01"), ("--serial", ""),
           ("--serial", "ABCDEFGHIJKLMNOPQ"), ("--fault", "melted"), ("--seal", "ajar"),
           ("--rtc-battery", "empty")]
    for opt, v in bad:
        err = _fails(opt, v, "--quiet")
        assert opt in err and repr(v) in err, (opt, v, err)


def test_option_combinations():
    assert "--off-time needs --flash" in _fails("--off-time", "5")
    assert "exclude each other" in _fails("--flash", "/tmp/x.img", "--no-flash")
    assert "exclude each other" in _fails("--optical-tcp", "4001", "--optical-dev", "/dev/x")


def test_files_and_ports_are_named(tmp_path):
    missing = str(tmp_path / "nope.csv")
    err = _fails("--load", missing)
    assert missing in err and "no such file" in err, err
    err = _fails("--load", str(tmp_path))
    assert str(tmp_path) in err and "directory" in err, err
    img = str(tmp_path / "no" / "dir" / "nor.img")
    err = _fails("--flash", img, "--duration", "0")
    assert img in err and "no such file" in err, err
    err = _fails("--optical-dev", "/dev/no-such-tty")
    assert "/dev/no-such-tty" in err, err
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        for opt in ("--optical-tcp", "--control-tcp"):
            err = _fails(opt, str(port), "--duration", "1")
            assert opt in err and str(port) in err and "in use" in err, err
    finally:
        s.close()
    err = _fails("--rs485-bus", "no-such-host.invalid:4100", "--duration", "1")
    assert "no-such-host.invalid:4100" in err and "resolve" in err, err


def test_load_trace_encodings(tmp_path):
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    err = _fails("--load", str(binary))
    assert "binary.csv:1" in err and "not a text file" in err, err
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"t_s,p_w,q_var\n0,100,0\n5,1\xe90,0\n")
    err = _fails("--load", str(latin))
    assert "latin.csv:3" in err and "not a text file" in err, err
    # a spreadsheet's UTF-8 byte-order mark is skipped: same registers as without it
    rows = "t_s,p_w,q_var\r\n0,1500,300\r\n20,-900,-100\r\n"
    plain = tmp_path / "plain.csv"
    plain.write_text(rows)
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + rows.encode())
    a = sim_json("--load", str(plain), "--speed", "max", "--duration", 40)
    b = sim_json("--load", str(bom), "--speed", "max", "--duration", 40)
    assert a["registers"] == b["registers"] and a["registers"]["1.8.0"] > 8, a["registers"]
    # a header that only looks right shows what is wrong with it
    nbsp = tmp_path / "nbsp.csv"
    nbsp.write_text("t_s,p_w,q_var\u00a0\n0,1,1\n")
    err = _fails("--load", str(nbsp))
    assert "nbsp.csv:1" in err and "\\xa0" in err, err


def test_json_numbers_are_exact_to_the_register_resolution():
    # 8.499 Wh and friends: MicroPython's float repr printed 8.499000000000001
    rc, out, err = run_sim("--load", FOUR_Q, "--speed", "max", "--duration", 1260, "--json",
                           "--quiet")
    assert rc == 0, err[-1000:]
    line = [ln for ln in out.splitlines() if ln.startswith("{")][-1]
    regs = re.search(r'"registers": \{[^}]*\}', line).group(0)
    nums = re.findall(r'": (-?[0-9.e+-]+)', regs)
    # 11 totals + 6 tariff banks x (1.8.E, 2.8.E, 16.8.E) (issue 10)
    assert len(nums) == 29 and all(re.fullmatch(r"-?\d+\.\d{3}", n) for n in nums), regs
    assert re.search(r'"sim_s": 1260\.000', line), line[:300]
    assert re.search(r'"wall_s": \d+\.\d{3}[,}]', line), line
    assert json.loads(line)["registers"]["1.8.0"] == 72.816
    # the example: an hour of the bundled load, Q4 = 8.499 varh
    rc, out, err = run_sim("--speed", "max", "--duration", 3600, "--json", "--quiet")
    assert rc == 0, err[-1000:]
    assert '"8.8.0": 8.499,' in out or '"8.8.0": 8.499}' in out, out


def test_status_leds_are_fresh_at_the_end():
    # the LEDs as the supervisor last set them (each second of the board clock, issue 12):
    # the report no longer repaints them, so this checks the supervisor's time base too
    no_load = sim_json("--load", FOUR_Q, "--speed", "max", "--duration", 1260)
    assert no_load["status_leds"][0] == [0, 0, 1], ("0 W at the end: no-load, blue",
                                                   no_load["status_leds"])
    busy = sim_json("--load", FOUR_Q, "--speed", "max", "--duration", 1100)
    assert busy["status_leds"][0] == [0, 1, 0], ("metering: green", busy["status_leds"])
    dead = sim_json("--load", FOUR_Q, "--speed", "max", "--duration", 200, "--fault",
                    "deadff", "--fault-at", 100)
    assert dead["status_leds"][0] == [1, 0, 0], ("fault: red", dead["status_leds"])


def test_timed_run_ends_with_a_summary():
    rc, out, err = run_sim("--load", FOUR_Q, "--speed", "max", "--duration", 1260, "--plain")
    assert rc == 0, err[-1000:]
    tail = out[out.index("sim: end"):]
    assert "sim: end at t = 1260.000 s (RTC 2016-01-01 00:21:00 UTC)" in tail, tail
    assert re.search(r"A\+\s+1\.8\.0\s+72\.816 Wh", tail), tail
    assert re.search(r"A-\s+2\.8\.0\s+48\.333 Wh", tail), tail
    assert all(len(ln) <= 80 for ln in tail.splitlines()), tail
    rc, out, err = run_sim("--load", FOUR_Q, "--speed", "max", "--duration", 60, "--quiet")
    assert rc == 0 and out == "", ("--quiet prints nothing", out)


class _Ctl:
    def __init__(self):
        self.port = _free_port()
        env = dict(os.environ, MICROPYPATH=MPYPATH)
        self.p = subprocess.Popen([MICROPYTHON, "firmware/main.py", "--load", FOUR_Q, "--quiet",
                                   "--speed", "10", "--control-tcp", str(self.port)], cwd=ROOT,
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        t0 = time.time()
        while True:
            try:
                self.s = socket.create_connection(("127.0.0.1", self.port), timeout=20)
                break
            except OSError:
                assert self.p.poll() is None, self.p.communicate()
                assert time.time() - t0 < 10, "control channel did not open"
                time.sleep(0.05)
        self.f = self.s.makefile("rb")

    def send(self, data):
        self.s.sendall(data)
        r = self.f.readline().decode()
        assert r.endswith("\n"), ("connection closed", data[:40], r)
        return r.rstrip("\n")

    def stop(self):
        self.s.close()
        self.p.terminate()
        return self.p.communicate(timeout=10)


def test_control_channel_survives_bad_bytes_and_huge_lines():
    c = _Ctl()
    try:
        assert c.send(b"\xff\xfe\x80 lcd\n") == "ERR line is not UTF-8 text"
        assert c.send(b"leds\n").startswith("kwh="), "the channel keeps serving"
        assert c.send(b"x" * (3 * 1024 * 1024) + b"\n").startswith("ERR line too long")
        assert c.send(b"inputs\n").startswith("scroll=0"), "after a 3 MB line"
        assert c.send(b"\x00\x01\x02\n").startswith("ERR unknown command")
        assert c.send(b"press scroll 1e999\n").startswith("ERR")
        assert c.send(b"seal\n").startswith("ERR usage")
        assert c.send(b"leds\r\n").startswith("kwh=")
        # a second client is served while the first is idle
        s2 = socket.create_connection(("127.0.0.1", c.port), timeout=20)
        s2.sendall(b"help\n")
        assert s2.makefile("rb").readline().startswith(b"press hold")
        s2.close()
    finally:
        out, err = c.stop()
    assert b"Traceback" not in err, err[-2000:]


def test_control_channel_answers_a_client_that_half_closes():
    # `printf 'lcd\nleds' | nc -N 127.0.0.1 PORT`: the client closes its sending side after
    # its commands; the channel used to drop it at the end of input, before the replies
    c = _Ctl()
    try:
        s = socket.create_connection(("127.0.0.1", c.port), timeout=10)
        s.sendall(b"inputs\nhelp\nleds")  # the last line without its newline
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            d = s.recv(4096)
            if not d:
                break  # and then the channel closes the connection
            got += d
        s.close()
        lines = got.decode().splitlines()
        assert len(lines) == 3, got
        assert lines[0].startswith("scroll=0") and lines[1].startswith("press hold"), lines
        assert lines[2].startswith("kwh="), lines
        assert c.send(b"leds\n").startswith("kwh="), "the first client is still served"
    finally:
        out, err = c.stop()
    assert b"Traceback" not in err, err[-2000:]


def test_a_fifo_or_device_as_load_trace_is_named(tmp_path):
    # --load FIFO waited for ever for a writer (and, with one, failed with "error 29"):
    # a trace is read twice (validated, then replayed), so it must be a regular file
    fifo = str(tmp_path / "trace.fifo")
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero"):
        err = _fails("--load", path, "--duration", "1")
        assert path in err and "not a regular file" in err, err


def test_a_fifo_as_flash_image_is_named(tmp_path):
    # --flash FIFO (or a fifo where its PATH.rtc / PATH.wear state goes) blocked for ever
    fifo = str(tmp_path / "nor.img")
    os.mkfifo(fifo)
    err = _fails("--flash", fifo, "--duration", "1")
    assert fifo in err and "not a regular file" in err, err
    img = str(tmp_path / "ok.img")
    os.mkfifo(img + ".rtc")
    err = _fails("--flash", img, "--duration", "1")
    assert img + ".rtc" in err and "not a regular file" in err, err
