"""Independent reference for the energy registers: integrate a load trace (CPython, floats).

Used by the system tests and tools/bench.py. See :func:`integral` for the rules applied.
"""

import math


def read_trace(path):
    rows = []
    with open(path, encoding="utf-8-sig") as f:  # a BOM is skipped, as by boards/sim/load.py
        assert f.readline().strip() == "t_s,p_w,q_var"
        for ln in f:
            t, p, q = ln.strip().split(",")
            rows.append((float(t), float(p), float(q)))
    return rows


def integral(rows, duration_s, period_s=1.0, start_current_a=0.020, un_v=230.0,
             gate_ratio=0.5, chip_no_load_w=1.0, skip_s=0.0):
    """Independent reference: the registers a perfect meter with the firmware's documented
    rules would show (Wh, varh, VAh). Per read interval [k*T, (k+1)*T): net P and Q energy,
    S = sqrt(P^2 + Q^2) energy (components below the chip's no-load threshold excluded, DS
    p.40), the starting-current gate (mean S >= Un * Ist * ratio), then the quadrant of the
    interval's net (P, Q).

    The gate here is the nominal rule (mean S >= Un * Ist * ratio, exactly). The meter
    decides on the chip's integer count minus the one LSB its carried fraction may add (a
    load below the gate never registers, lib/pulse.NoLoadGate), so for loads within two
    LSB per interval above the gate (2.30..2.56 VA at 1 s) the meter registers less than
    this reference; outside that band both agree within one LSB."""
    reg = {k: 0.0 for k in ("1.8.0", "2.8.0", "5.8.0", "6.8.0", "7.8.0", "8.8.0", "9.8.0",
                            "10.8.0")}
    edges = [r[0] for r in rows]
    n = int(math.ceil(duration_s / period_s))
    j = 0
    for k in range(n):
        a = max(k * period_s, skip_s)
        b = min((k + 1) * period_s, duration_s)
        if b <= a:
            continue
        ep = eq = es = 0.0
        t = a
        while t < b:
            while j + 1 < len(rows) and edges[j + 1] <= t:
                j += 1
            if edges[j] > t:
                p = q = 0.0
                end = min(edges[j], b)
            else:
                p, q = rows[j][1], rows[j][2]
                end = min(edges[j + 1], b) if j + 1 < len(rows) else b
            dt = end - t
            s = math.hypot(p, q)
            if abs(p) >= chip_no_load_w:
                ep += p * dt
            if abs(q) >= chip_no_load_w:
                eq += q * dt
            if s >= chip_no_load_w:
                es += s * dt
            t = end
        if es <= 0 or es < un_v * start_current_a * gate_ratio * (b - a):
            continue
        ep, eq, es = ep / 3600, eq / 3600, es / 3600
        if ep >= 0:
            reg["1.8.0"] += ep
            reg["5.8.0" if eq >= 0 else "8.8.0"] += abs(eq)
            reg["9.8.0"] += es
        else:
            reg["2.8.0"] += -ep
            reg["6.8.0" if eq >= 0 else "7.8.0"] += abs(eq)
            reg["10.8.0"] += es
    reg["3.8.0"] = reg["5.8.0"] + reg["6.8.0"]
    reg["4.8.0"] = reg["7.8.0"] + reg["8.8.0"]
    reg["16.8.0"] = reg["1.8.0"] - reg["2.8.0"]
    return reg
