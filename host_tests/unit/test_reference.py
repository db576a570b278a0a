"""What the meter reads out and shows, pinned across the issue 8 restructure: 65 s of a
two-segment load (7.3 kW / 2.1 kvar import, then 4.4 kW / 1.7 kvar export from 30 s) in
process on the virtual board, then every readable IEC 62056-21 address (readout list and
R1) and every LCD catalogue item, compared with ``reference_before_issue8.json`` (captured
on the commit before the restructure, e96c37a). Only the metrology checksum 0.2.8 may
differ (the CRC-32 of the moved metrology files): it is compared as 8 hex digits.

Deliberate changes to the reference since the capture (issue 10), nothing else: the readout
list's new line ``0.0.96.14.0`` (the active tariff, after 16.8.0; so C.90.3 lists it, in
two value groups now that the list passes 128 characters), and the segment test's new DST
annunciator.
"""

import asyncio
import json

import lcd
from boards.sim.board import Options, SimBoard
from simkit import StepTrace

_HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
_HEX = "0123456789ABCDEFabcdef"


def _reference():
    with open(_HERE + "/reference_before_issue8.json") as f:
        return json.load(f)


def _observe():
    import app
    from meter.catalogue import A_READ, A_SHOW, K_LIST

    o = Options()
    o.quiet = True
    o.speed = 0
    o.serial = "REF00001"
    board = SimBoard(o, trace=StepTrace([(0, 7300000, 2100000), (30000, -4400000, -1700000)]))
    m = app.Meter(board)
    asyncio.run(m.main(65000))
    asyncio.new_event_loop()
    m.metering.refresh_instant(True)  # the instantaneous values at the end (not wall-paced)
    md = m.iec_map()
    cat = m.catalogue
    out = {"readout": [[a, v, u] for a, v, u in md.readout()]}
    reads = {}
    # every code the IEC map reads: the readout-able ones (what was READABLE), then the lists
    readable = [c for c in cat.codes(A_READ) if cat.entry(c)[1] != K_LIST]
    for a in readable + ["C.90.3", "C.90.4", "C.90.5"]:
        try:
            v, u = md.reader(a)
            reads[a] = [list(v) if isinstance(v, tuple) else v, u]  # (value groups)
        except KeyError:
            reads[a] = None
    out["reads"] = reads
    texts = {}
    for c in cat.codes(A_SHOW):
        it = m.display.item(c)
        if callable(it):
            f = lcd.Frame()
            it(f)
            texts[c] = lcd.frame_text(f)
        else:
            d = lcd.Display(auto=[it], alt=[it], test=[it], hold_ms=10000, return_ms=0,
                            ticks_diff=lambda a, b: a - b)
            d.tick(0)
            texts[c] = lcd.frame_text(d.frame)
    out["lcd"] = texts
    out["flags"] = m.display.flags()
    return out


def _crc(v):
    return isinstance(v, str) and len(v) == 8 and all(c in _HEX for c in v)


def _only_billing(extra):
    # codes the billing functions added (issue 10): tariff registers x.8.1..6, the active
    # tariff, VZ, end of the last period, demand 1.4/1.5/1.14, maxima 1.6.E(.T), 1.2.E; the
    # result of the last tariff plan write C.92.9 (meter/touprog.py)
    for a in extra:
        if a in ("C.92.9", "C.93.1", "C.93.2", "C.93.4"):  # (C.93.x: the uplink's broker,
            # APN and key check value)
            continue
        c, d, e = a.split(".")[:3]
        assert a in ("0.0.96.14.0", "0.1.0", "0.1.2") or (
            c == "1" and d in ("4", "5", "14", "6", "2")) or (
            d == "8" and e in ("1", "2", "3", "4", "5", "6")), a


def test_readout_and_lcd_identical_to_the_reference():
    ref = _reference()
    got = _observe()
    for i, (a, v, u) in enumerate(ref["readout"]):
        g = got["readout"][i]
        if a == "0.2.8":
            assert g[0] == a and _crc(g[1]) and g[2] is None, g
        else:
            assert g == [a, v, u], (g, [a, v, u])
    assert len(got["readout"]) == len(ref["readout"])
    # the same readable codes, plus the billing functions' (issue 10: tariff registers,
    # active tariff, VZ, demand; meter/catalogue.py)
    assert set(ref["reads"]) <= set(got["reads"]), "every code of the reference still reads"
    _only_billing(set(got["reads"]) - set(ref["reads"]))
    for a, r in ref["reads"].items():
        g = got["reads"][a]
        if a == "0.2.8":
            assert _crc(g[0]), g
        else:
            assert g == r, (a, g, r)
    assert set(ref["lcd"]) <= set(got["lcd"]), "every code of the reference still shows"
    _only_billing(set(got["lcd"]) - set(ref["lcd"]))
    for c, t in ref["lcd"].items():
        if c == "0.2.8":
            assert got["lcd"][c].split()[0] == "0.2.8" and _crc(got["lcd"][c].split()[1])
        else:
            assert got["lcd"][c] == t, (c, got["lcd"][c], t)
    assert got["flags"] == ref["flags"]
