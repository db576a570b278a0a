"""Build the virtual board's load traces from the SimBench household profiles (dev tool, CPython).

Writes, into boards/sim/loads/ (or ``--out DIR``), three CSV files with the header
``t_s,p_w,q_var`` (t_s: elapsed seconds from 2016-01-01 00:00 CET = UTC+1, no summer-time
shift; p_w: active power in W, > 0 = import; q_var: reactive power in var, > 0 = inductive;
integers):

- ``household_2016.csv``: SimBench profile H0-B scaled to a 6 000 W peak (35 136 rows, 15 min).
- ``household_pv_2016.csv``: the same minus a synthetic 4 kWp rooftop PV system (unity power
  factor, so q_var is unchanged); midday net power in summer is export (negative p_w).
- ``four_quadrant.csv``: a short scripted trace for system tests (all four quadrants, no load,
  starting current); see ``FOUR_QUADRANT`` below.

Source: PyPI wheel ``simbench==1.6.3``, member
``simbench/networks/1-complete_data-mixed-all-0-sw/LoadProfile.csv`` (``;``-separated, per-unit
of the profile's peak, 2016 at 15 min). The reactive column is scaled by the nominal Q/P ratio of
the H0 loads in the same network's ``Load.csv`` (qLoad / pLoad = 0.395, i.e. cos phi ~ 0.93).
Data licence: ODbL 1.0 + DbCL 1.0 (SimBench), see boards/sim/loads/README.md.

Usage::

    python tools/make_load.py               # pip download --no-deps simbench==1.6.3 to a temp dir
    python tools/make_load.py --wheel PATH  # reuse a wheel already on disk
    python tools/make_load.py --out DIR     # write elsewhere (default boards/sim/loads)

The wheel's SHA-256 is checked (``--no-hash-check`` skips it). The household values are exact
decimal products rounded half-to-even; the PV curve uses float maths, so regenerating on another
platform could move a rare PV value by 1 W.
"""

import argparse
import csv
import datetime
import glob
import hashlib
import io
import math
import os
import subprocess
import sys
import tempfile
import zipfile
from decimal import ROUND_HALF_EVEN, Decimal

WHEEL_SPEC = "simbench==1.6.3"
WHEEL_SHA256 = "8b48bdab2445286a96649eb18bb09476d000a0e212fd57fdba83399df54af4de"
MEMBER = "simbench/networks/1-complete_data-mixed-all-0-sw/LoadProfile.csv"

PROFILE = "H0-B"
PEAK_W = 6000  # the profile's 1.0 pu active power
Q_PER_P = Decimal("0.395")  # Load.csv H0 loads: qLoad/pLoad (0.001186/0.003, 0.00079/0.002)
STEP_S = 900
ROWS = 35136  # 366 days x 96 quarter hours

# Synthetic rooftop PV (see pv_w()).
PV_KWP = 4.0
PV_LAT = 50.0  # degrees north
PV_LON = 10.0  # degrees east; clock time is CET (UTC+1, 15 degrees east), no DST
PV_TILT = 30.0  # degrees, facing due south
PV_PR = 0.80  # performance ratio: inverter, temperature, wiring and soiling losses
PV_SEED = 2016

# Scripted system-test trace: (t_s, p_w, q_var); the last row holds to the end of any run.
# Each quadrant has its own magnitudes so a test can tell the periods apart.
FOUR_QUADRANT = (
    (0, "0", "0"),  # no load
    (60, "2300", "1100"),  # Q1: import, inductive
    (120, "-1700", "900"),  # Q2: export, inductive
    (180, "-1200", "-600"),  # Q3: export, capacitive
    (240, "2000", "-800"),  # Q4: import, capacitive
    (300, "4.6", "0"),  # starting current: 20 mA at 230 V, PF 1 (IEC 62053-21, 0.004 Ib, Ib 5 A)
    (1200, "0", "0"),  # no load until the end (creep test)
)

HEADER = "t_s,p_w,q_var"
EPOCH = datetime.datetime(2016, 1, 1)
# Summer time 2016 in elapsed seconds from EPOCH (CET): 27.03. 02:00 CET to 30.10. 02:00 CET.
DST_START_S = 86 * 86400 + 2 * 3600
DST_END_S = 303 * 86400 + 2 * 3600


def fetch_wheel(tmp):
    """pip download --no-deps the pinned wheel into tmp; return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", tmp, WHEEL_SPEC]
    print("running:", " ".join(cmd))
    subprocess.run(cmd, check=True)
    found = glob.glob(os.path.join(tmp, "simbench-1.6.3-*.whl"))
    if not found:
        sys.exit("make_load: pip did not produce a simbench 1.6.3 wheel in " + tmp)
    return found[0]


def check_hash(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != WHEEL_SHA256:
        sys.exit("make_load: %s has SHA-256 %s, expected %s" % (path, h.hexdigest(), WHEEL_SHA256))


def wall_clock(t_s):
    """German wall-clock time of t_s seconds after 2016-01-01 00:00 CET (UTC+1).

    The SimBench time column is local time: it skips 02:00-02:45 on 27.03.2016 and repeats
    02:00-02:45 on 30.10.2016 (EU summer time, 01:00 UTC on the last Sundays of March and
    October), so row n is always n x 15 min of elapsed time; t_s counts elapsed time.
    """
    if DST_START_S <= t_s < DST_END_S:
        t_s += 3600
    return EPOCH + datetime.timedelta(seconds=t_s)


def read_profile(wheel):
    """Return [(t_s, p_pu_text, q_pu_text)] for PROFILE; checks the 15-min grid and row count."""
    out = []
    with zipfile.ZipFile(wheel) as z, z.open(MEMBER) as raw:
        rows = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""), delimiter=";")
        head = next(rows)
        ti = head.index("time")
        pi = head.index(PROFILE + "_pload")
        qi = head.index(PROFILE + "_qload")
        for n, row in enumerate(rows):
            t_s = n * STEP_S
            wall = datetime.datetime.strptime(row[ti], "%d.%m.%Y %H:%M")
            if wall != wall_clock(t_s):
                sys.exit("make_load: line %d time %s, expected %s"
                         % (n + 2, row[ti], wall_clock(t_s).strftime("%d.%m.%Y %H:%M")))
            out.append((t_s, row[pi], row[qi]))
    if len(out) != ROWS:
        sys.exit("make_load: %d rows, expected %d" % (len(out), ROWS))
    return out


def scale(pu_text, factor):
    """Exact decimal product, rounded half-to-even to an integer."""
    return int((Decimal(pu_text) * factor).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


class XorShift32:
    """Deterministic 32-bit xorshift generator (Marsaglia 2003), independent of Python's random."""

    def __init__(self, seed):
        self.s = (seed & 0xFFFFFFFF) or 1

    def next(self):
        s = self.s
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        self.s = s
        return s / 4294967296.0


def clear_sky_w(t_s):
    """Clear-sky AC power (W) of the PV array at t_s seconds after 2016-01-01 00:00 CET.

    Sun position: Cooper's declination and the equation of time, as given in Duffie & Beckman,
    Solar Engineering of Thermal Processes (eqs. 1.5.3, 1.6.1a); incidence on a south-facing
    tilted plane (eq. 1.6.7a). Beam: Meinel's clear-sky model 1353 W/m2 * 0.7**(AM**0.678) with
    AM = 1/sin(elevation); diffuse: 10 % of beam on an isotropic sky seen by the tilted plane.
    """
    day = t_s // 86400 + 1  # day of year, 1..366
    clock_h = (t_s % 86400) / 3600.0
    b = math.radians(360.0 * (day - 81) / 364.0)
    eot_min = 9.87 * math.sin(2 * b) - 7.53 * math.cos(b) - 1.5 * math.sin(b)
    solar_h = clock_h + (4.0 * (PV_LON - 15.0) + eot_min) / 60.0
    omega = math.radians(15.0 * (solar_h - 12.0))
    decl = math.radians(23.45 * math.sin(math.radians(360.0 * (284 + day) / 365.0)))
    lat = math.radians(PV_LAT)
    sin_elev = math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(omega)
    if sin_elev <= 0.02:  # sun below ~1 degree: no useful output
        return 0.0
    beam = 1353.0 * 0.7 ** ((1.0 / sin_elev) ** 0.678)
    eff = lat - math.radians(PV_TILT)
    cos_inc = math.sin(decl) * math.sin(eff) + math.cos(decl) * math.cos(eff) * math.cos(omega)
    poa = beam * max(0.0, cos_inc) + 0.1 * beam * (1 + math.cos(math.radians(PV_TILT))) / 2
    return PV_KWP * 1000.0 * PV_PR * poa / 1000.0


def pv_series(n_rows):
    """Integer PV power (W) per 15-min row: interval-mean clear-sky power x a cloud factor.

    Clouds: each day is clear, broken or overcast, drawn from XorShift32(PV_SEED) with a seasonal
    chance (summer index s = 0 around 10 January, 1 around 10 July): P(clear) = 0.15 + 0.25 s,
    P(overcast) = 0.55 - 0.30 s. Per 15-min slot: clear 0.92..1.0; broken 1.0 (half of the
    slots) or 0.25..0.6; overcast 0.12..0.32.
    """
    rng = XorShift32(PV_SEED)
    out = []
    factor_day = None
    for n in range(n_rows):
        t_s = n * STEP_S
        if n % 96 == 0:
            day = n // 96
            s = 0.5 - 0.5 * math.cos(2 * math.pi * (day - 9) / 366.0)
            u = rng.next()
            if u < 0.15 + 0.25 * s:
                factor_day = "clear"
            elif u < 0.15 + 0.25 * s + 0.55 - 0.30 * s:
                factor_day = "overcast"
            else:
                factor_day = "broken"
        u = rng.next()
        if factor_day == "clear":
            f = 0.92 + 0.08 * u
        elif factor_day == "overcast":
            f = 0.12 + 0.20 * u
        else:
            f = 1.0 if u < 0.5 else 0.25 + 0.35 * (u - 0.5) * 2
        mean = sum(clear_sky_w(t_s + 90 + 180 * k) for k in range(5)) / 5.0
        out.append(int(round(mean * f)))
    return out


def write_csv(path, rows):
    with open(path, "w", newline="\n") as f:
        f.write(HEADER + "\n")
        for t_s, p, q in rows:
            f.write("%d,%s,%s\n" % (t_s, p, q))


def summary(name, rows):
    """Print peak, minimum and annual import/export energy (15-min rows)."""
    imp = sum(p for _, p, _ in rows if p > 0) * STEP_S / 3.6e6
    exp = -sum(p for _, p, _ in rows if p < 0) * STEP_S / 3.6e6
    print("%s: %d rows, P max %d W, P min %d W, Q %d..%d var, import %.0f kWh, export %.0f kWh"
          % (name, len(rows), max(r[1] for r in rows), min(r[1] for r in rows),
             min(r[2] for r in rows), max(r[2] for r in rows), imp, exp))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel", help="path of simbench-1.6.3-py3-none-any.whl (else pip download)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "boards", "sim", "loads"))
    ap.add_argument("--no-hash-check", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = a.wheel or fetch_wheel(tmp)
        if not a.no_hash_check:
            check_hash(wheel)
        prof = read_profile(wheel)
    house = [(t, scale(p, PEAK_W), scale(q, PEAK_W * Q_PER_P)) for t, p, q in prof]
    pv = pv_series(len(house))
    net = [(t, p - g, q) for (t, p, q), g in zip(house, pv, strict=True)]
    os.makedirs(a.out, exist_ok=True)
    write_csv(os.path.join(a.out, "household_2016.csv"), house)
    write_csv(os.path.join(a.out, "household_pv_2016.csv"), net)
    write_csv(os.path.join(a.out, "four_quadrant.csv"), FOUR_QUADRANT)
    summary("household_2016.csv", house)
    summary("household_pv_2016.csv", net)
    print("PV: peak %d W, %.0f kWh/a (%.0f kWh/kWp)" % (
        max(pv), sum(pv) * STEP_S / 3.6e6, sum(pv) * STEP_S / 3.6e6 / PV_KWP))


if __name__ == "__main__":
    main()
