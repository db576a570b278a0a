# The concentrator on the virtual board (firmware/uplink/concentrator.py): three meters on a
# simulated RS-485 bus (tools/rs485_hub.py), a fourth board as bus master with the uplink to a
# real mosquitto, a paho-mqtt head-end. Each meter's reading arrives under its own serial
# with the values the meter shows (read back over its optical port); a meter stopped is
# reported on the bus topic with backoff, the others keep arriving.
import json
import os
import subprocess
import time

from broker import Mosquitto, Subscriber, free_port
from simrun import MICROPYTHON, MPYPATH, ROOT
from test_iec_client import Hub, _client

METERS = ("10000001", "10000002", "10000003")
CYCLES = 4  # the concentrator's run: 4 quarter hours (20 s of wall time each at --speed 45;
# a cycle of 3 meters takes about 13 s: 2.8 s a readout, 1.6 s rest on the bus)


def _load(path, watts):
    # `watts` for the first 120 simulated seconds, then nothing: the registers then stay
    # as they are (the no-load gate), so what was forwarded can be compared at the end
    with open(path, "w") as f:
        f.write("t_s,p_w,q_var\n0,%d,%d\n120,0,0\n" % (watts, watts // 4))


def _whole(parts):
    """A bus meter's readings with their parts joined (a readout longer than one outbox
    record comes as messages with "part": [i, n] and the same ts): in order, each whole."""
    out = []
    for m in parts:
        i, n = m.get("part", (1, 1))
        if i == 1:
            out.append(dict(m, values=list(m["values"])))
            out[-1].pop("part", None)
        else:
            assert out and out[-1]["ts"] == m["ts"], (m, out[-1:])
            out[-1]["values"] += m["values"]
        out[-1]["_parts"] = (i, n)
    for m in out:
        assert m["_parts"][0] == m["_parts"][1], m  # every part arrived
    return out


def _start(*args):
    env = dict(os.environ, MICROPYTHON=MICROPYTHON, MICROPYPATH=MPYPATH)
    return subprocess.Popen([MICROPYTHON, "firmware/main.py", "--quiet"]
                            + [str(a) for a in args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop(p):
    if p.poll() is None:
        p.terminate()
    try:
        return p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.communicate()


def test_three_bus_meters_forwarded_under_their_serials_and_a_silent_one_reported(tmp_path):
    tmp = str(tmp_path)
    hub = Hub(0).start()
    meters = {}
    optical = {}
    conc = None
    with Mosquitto() as b:
        he = Subscriber(b.port, "meters/#")
        try:
            for i, a in enumerate(METERS):
                load = os.path.join(tmp, "load%d.csv" % i)
                _load(load, 1000 * (i + 1))
                optical[a] = free_port()
                meters[a] = _start("--rs485-bus", "127.0.0.1:%d" % hub.port, "--serial", a,
                                   "--load", load, "--speed", "20", "--no-flash",
                                   "--no-uplink", "--optical-tcp", optical[a])
                time.sleep(1.0)
                assert meters[a].poll() is None, _stop(meters[a])
            t0 = time.monotonic()
            while hub.members < 3 and time.monotonic() - t0 < 10:
                time.sleep(0.05)
            conc = _start("--rs485-bus", "127.0.0.1:%d" % hub.port, "--serial", "SIM00001",
                          "--concentrator", ",".join(METERS), "--broker",
                          "127.0.0.1:%d" % b.port, "--speed", "45", "--start", "2016-01-01",
                          "--duration", CYCLES * 900 + 700, "--json")
            # the first cycle (00:15): every meter's reading
            t0 = time.monotonic()
            while time.monotonic() - t0 < 60:
                got = {t for t, _p in list(he.messages) if t.endswith("/reading")}
                if all("meters/%s/reading" % a in got for a in METERS):
                    break
                time.sleep(0.2)
            assert all("meters/%s/reading" % a in got for a in METERS), (got, _stop(conc))
            # what meter 3 shows, then it goes silent
            shown3 = _client(tmp, optical["10000003"], "10000003", "readout")
            _stop(meters.pop("10000003"))
            out, err = conc.communicate(timeout=CYCLES * 20 + 60)
            shown = {a: _client(tmp, optical[a], a, "readout") for a in meters}
            shown["10000003"] = shown3
        finally:
            if conc is not None and conc.poll() is None:
                conc.kill()
            for p in meters.values():
                _stop(p)
            hub.stop()
        time.sleep(0.5)
        he.stop()
    rep = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
    cc = rep["concentrator"]
    msgs = [(t, json.loads(p)) for t, p in list(he.messages)]
    readings = {a: _whole([m for t, m in msgs if t == "meters/%s/reading" % a])
                for a in METERS}
    # meters 1 and 2: a reading every cycle, under their own serial, via the concentrator
    for a in METERS[:2]:
        assert len(readings[a]) == CYCLES, (a, [m["ts"] for m in readings[a]], cc, err[-800:])
        assert cc["meters"][a]["ok"] == CYCLES and cc["meters"][a]["fails"] == 0
    for a in METERS:
        last = readings[a][-1]
        assert last["meter"] == a and last["via"] == "SIM00001" and last["address"] == a
        assert last["id"] == "OMF5OPENMETER1"
        data = {d[0]: (d[1], d[2]) for d in shown[a]["data"]}
        vals = {v[0]: (v[1], v[2]) for v in last["values"]}
        for code in ("1.8.0", "2.8.0", "3.8.0", "4.8.0", "9.8.0"):
            assert vals[code] == (float(data[code][0]), data[code][1]), (a, code, vals, data)
        assert vals["1.8.0"][0] > 0, vals  # the load's energy arrived, not zeros
    kwh = [readings[a][-1]["values"][0][1] for a in METERS]
    assert kwh[0] < kwh[1] < kwh[2], kwh  # each meter's own (1, 2, 3 kW for 120 s)
    # every reading and report is one outbox message: contiguous seq over the concentrator
    seqs = sorted(m["seq"] for t, m in msgs if "seq" in m and t != "meters/SIM00001/cmd/ack")
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    # meter 3: one reading, then reported each time it was tried, with backoff: tried at
    # cycles 2 and 3, not at 4 (after 1 failure the next cycle, after 2 one cycle skipped)
    assert len(readings["10000003"]) == 1, readings["10000003"]
    bus = [m for t, m in msgs if t == "meters/SIM00001/bus"]
    assert [m["fails"] for m in bus] == [1, 2], (bus, cc)
    assert bus[0]["next_poll"] < bus[1]["ts"] < bus[1]["next_poll"], bus
    for m in bus:
        assert m["address"] == "10000003" and m["serial"] == "10000003" and not m["ok"]
        assert m["error"] == "timeout" and m["step"] == "identification", m
    assert cc["meters"]["10000003"]["polls"] == 3, cc  # 1 good + 2 failed in 4 cycles
    assert cc["meters"]["10000003"]["skip"] == 0 and cc["overruns"] == 0, cc  # (skipped 4)
    evs = [m for t, m in msgs if t == "meters/SIM00001/event" and m["code"] == 110]
    assert len(evs) == 2 and all(e["value"] == 1 for e in evs), evs  # E_TIMEOUT
    assert rep["uplink"]["pending"] == 0, rep["uplink"]
