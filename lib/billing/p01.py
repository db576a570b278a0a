# IEC 62056-21 VDEW "P.01" load profile readout: formatter and parser.
"""The German VDEW load profile readout over IEC 62056-21 (answer to ``R5 P.01(from;to)``;
billing reference C4, from public EMH/MetCom parsers and the MetCom MCS301 manual).

Format (one line per item, CR LF between lines in the data message)::

    P.01(Zyymmddhhmmss)(SS)(pp)(m)(id1)(unit1)...(idm)(unitm)
    (v1)(v2)...(vm)
    ...

- The header gives the time of the block's first row in local time with the season digit Z
  (1 = summer time / DST, 0 = normal time), its status in hex (``status_digits`` digits: 2
  as MetCom, 8 as EMH), the capture period in minutes, the number of channels and each
  channel's identifier and unit.
- One line per interval follows, oldest first, each row ``period`` after the previous one.
- A new header starts whenever the status changes or the local time does not continue by
  one period (outage, clock set, DST change), so one readout may hold many blocks.
- Values are fixed-point decimals: the raw integer / 10**decimals of the channel, all
  digits shown (``0.183`` for 183 Wh in kWh with 3 decimals).

The request argument ``from;to`` uses ``Zyymmddhhmm`` stamps (either may be empty):
:func:`parse_range`. The parser (:func:`parse`, :func:`to_rows`) reads the format back; the
tests use it to prove that the text reproduces the rows.
"""


def fixed(v, decimals):
    """Integer ``v`` shown with ``decimals`` decimal places: fixed(-183, 3) == '-0.183'."""
    if not decimals:
        return "%d" % v
    sign = "-" if v < 0 else ""
    a = -v if v < 0 else v
    p = 10 ** decimals
    f = "%d" % (a % p)
    return "%s%d.%s%s" % (sign, a // p, "0" * (decimals - len(f)), f)


def unfixed(s, decimals, field="value"):
    """Inverse of :func:`fixed`: '0.183' with 3 decimals -> 183 (fewer decimals are padded;
    more raise ValueError naming ``field``)."""
    t = s.strip()
    neg = t.startswith("-")
    if neg:
        t = t[1:]
    if "." in t:
        a, f = t.split(".", 1)
    else:
        a, f = t, ""
    if not a.isdigit() or (f and not f.isdigit()) or len(f) > decimals:
        raise ValueError("%s: %r is not a number with <= %d decimals" % (field, s, decimals))
    v = int(a) * 10 ** decimals + (int(f + "0" * (decimals - len(f))) if decimals else 0)
    return -v if neg else v


def header(layout, zone, t, status, status_digits=2, name="P.01"):
    """Header line of a block starting with the row ending at ``t`` (RTC s, UTC)."""
    parts = [name, "(", zone.vdew_stamp(t), ")(", "%0*X" % (status_digits, status), ")(",
             "%d" % (layout.period // 60), ")(", "%d" % layout.nch, ")"]
    for ident, unit, _d, _m in layout.channels:
        parts.append("(%s)(%s)" % (ident, unit))
    return "".join(parts)


def lines(rows, layout, zone, status_digits=2, name="P.01"):
    """Yield the readout lines (without CR LF) of ``rows``: (t UTC, status, values), oldest
    first, as decoded from the profile (profile.decode, ProfileBuffer.rows)."""
    period = layout.period
    chans = layout.channels
    prev_loc = None
    prev_st = -1
    for t, st, vals in rows:
        loc = zone.local(t)
        if prev_loc is None or st != prev_st or loc != prev_loc + period:
            yield header(layout, zone, t, st, status_digits, name)
        yield "".join(["(%s)" % fixed(vals[k], chans[k][2]) for k in range(len(vals))])
        prev_loc = loc
        prev_st = st


def _fields(s, field):
    """Contents of ``(a)(b)...`` (ValueError naming ``field`` if malformed)."""
    if not (s.startswith("(") and s.endswith(")")):
        raise ValueError("%s: %r is not (..)(..)" % (field, s))
    return s[1:-1].split(")(")


def parse(text):
    """Blocks of a P.01 readout: list of (stamp, status, period_min, channels, rows) with
    stamp the ``Zyymmddhhmmss`` string, channels a list of (ident, unit), rows lists of
    value strings. Raises ValueError naming the line."""
    blocks = []
    cur = None
    for i, raw in enumerate(text.split("\n")):
        ln = raw.strip()
        if not ln:
            continue
        where = "line %d" % (i + 1)
        if ln.startswith("P."):
            p = ln.index("(") if "(" in ln else -1
            f = _fields(ln[p:], where) if p > 0 else None
            if f is None or len(f) < 4 or not f[2].isdigit() or not f[3].isdigit():
                raise ValueError("%s: %r is not a P.01 header" % (where, ln))
            m = int(f[3])
            if len(f) != 4 + 2 * m:
                raise ValueError("%s: header announces %d channels, has %d fields" %
                                 (where, m, len(f)))
            chans = [(f[4 + 2 * k], f[5 + 2 * k]) for k in range(m)]
            cur = (f[0], int(f[1], 16), int(f[2]), chans, [])
            blocks.append(cur)
        else:
            if cur is None:
                raise ValueError("%s: values before the first header" % where)
            v = _fields(ln, where)
            if len(v) != len(cur[3]):
                raise ValueError("%s: %d values for %d channels" % (where, len(v), len(cur[3])))
            cur[4].append(v)
    return blocks


def to_rows(blocks, layout, zone):
    """Rows (t UTC, status, values tuple) from parsed blocks, with the layout's decimals;
    the season digit of each header resolves a repeated local hour."""
    out = []
    dec = [c[2] for c in layout.channels]
    for stamp, st, pmin, _chans, rows in blocks:
        t = zone.from_vdew(stamp)
        for r in rows:
            out.append((t, st, tuple(unfixed(r[k], dec[k], "channel %d" % (k + 1))
                                     for k in range(len(r)))))
            t += pmin * 60
    return out


def parse_range(arg, zone):
    """``"from;to"`` of ``P.01(from;to)`` -> (utc_from or None, utc_to or None); stamps are
    ``Zyymmddhhmm`` or ``Zyymmddhhmmss``. Raises ValueError."""
    if arg.count(";") != 1:
        raise ValueError("P.01 range %r is not from;to" % (arg,))
    a, b = arg.split(";")
    return (zone.from_vdew(a) if a else None), (zone.from_vdew(b) if b else None)


def select(rows, t_from=None, t_to=None):
    """Rows with t_from <= t <= t_to (None = open end)."""
    for r in rows:
        if (t_from is None or r[0] >= t_from) and (t_to is None or r[0] <= t_to):
            yield r
