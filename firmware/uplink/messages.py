# The uplink's topics and JSON payloads, built from the OBIS catalogue and the event log.
"""Topics and payloads of the uplink (docs/UPLINK.md is the reference for the head-end).

Topics: ``meters/<serial>/status`` (retained ``{"state": "online"|"offline"}``, the
offline one the MQTT last will), ``meters/<serial>/reading``, ``.../event``, ``.../cmd``
(the head-end's requests), ``.../cmd/ack`` (the answers).

Bodies are JSON objects. What the outbox stores is the body without its sequence number;
:func:`with_seq` puts ``"seq"`` first when it is sent. Times are ISO 8601 UTC text
(``ts``) of the RTC (seconds since 2000-01-01, lib/civil). Energy values are the
catalogue's registers in their shown unit (kWh, kvarh, kVAh) with 3 decimals (the
registers' 1 Wh = 0.001 kWh steps; K_ENERGY is thousandths of the base unit).
"""

import events
from billing.p01 import fixed
from civil import civil, seconds
from meter.catalogue import K_ENERGY


def iso(secs):
    """RTC seconds since 2000-01-01 UTC -> ``YYYY-MM-DDTHH:MM:SSZ``."""
    y, mo, d, h, mi, s = civil(secs)[:6]
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (y, mo, d, h, mi, s)


def iso_secs(text):
    """``YYYY-MM-DDTHH:MM:SSZ`` -> RTC seconds since 2000-01-01 UTC (ValueError if not)."""
    if not isinstance(text, str) or len(text) != 20 or text[4] != "-" or text[10] != "T" \
            or text[19] != "Z":
        raise ValueError("not YYYY-MM-DDTHH:MM:SSZ: %r" % (text,))
    return seconds(int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]),
                   int(text[14:16]), int(text[17:19]))


def _milli_text(v):
    sign = "-" if v < 0 else ""
    v = -v if v < 0 else v
    return "%s%d.%03d" % (sign, v // 1000, v % 1000)


def register_values(catalogue):
    """``[[obis, value text, unit], ...]`` of every energy register of the catalogue, in its
    order (value text: a JSON number with 3 decimals)."""
    out = []
    for code in catalogue.codes(1):  # A_READ
        e = catalogue.entry(code)
        if e[1] != K_ENERGY:
            continue
        out.append((code, _milli_text(catalogue.value(e)), e[2]))
    return out


def reading(catalogue, secs, why="schedule"):
    """The body of a reading at RTC second ``secs``: ``{"ts", "why", "values": [[obis,
    value, unit], ...]}`` (11 registers: about 300 bytes, under the outbox's 490)."""
    vals = ",".join('["%s",%s,"%s"]' % v for v in register_values(catalogue))
    return '{"ts":"%s","why":"%s","values":[%s]}' % (iso(secs), why, vals)


def event(t, code, value):
    """The body of an event: ``{"ts", "code", "name", "value"}`` (lib/events codes)."""
    name = events.NAMES.get(code, "event %d" % code)
    return '{"ts":"%s","code":%d,"name":"%s","value":%d}' % (iso(t), code, name, value)


def with_seq(seq, body):
    """``body`` (bytes, a JSON object) with ``"seq": seq`` as its first member (bytes)."""
    if len(body) <= 2:
        return ('{"seq":%d}' % seq).encode()
    return ('{"seq":%d,' % seq).encode() + bytes(body[1:])


def profile_head(name, layout, why=None):
    """The start of a load-profile body: ``{"profile": "P.01", "period_s": 900,
    "channels": [[ident, unit], ...], "rows": [`` (``why``: ``"request"`` for an answer to a
    ``profile`` command; the schedule's have none)."""
    chans = ",".join('["%s","%s"]' % (c[0], c[1]) for c in layout.channels)
    w = ',"why":"%s"' % why if why else ""
    return '{"profile":"%s","period_s":%d%s,"channels":[%s],"rows":[' % (
        name, layout.period, w, chans)


def profile_row(layout, t, st, vals):
    """One row: ``["<interval end, ISO UTC>", status byte, [value, ...]]`` (values in the
    channels' units with their decimals, meter/profile.py CHANNELS)."""
    ch = layout.channels
    return '["%s",%d,[%s]]' % (iso(t), st, ",".join(fixed(vals[k], ch[k][2])
                                                  for k in range(len(vals))))


def profile_bodies(head, layout, rows, limit):
    """Pack ``rows`` ((t, status, values), oldest first) into bodies of at most ``limit``
    bytes, each ``head`` + as many rows as fit + ``]}``; yields (body, t of its last row)."""
    parts = []
    n = len(head) + 2
    last = None
    for t, st, vals in rows:
        r = profile_row(layout, t, st, vals)
        if parts and n + 1 + len(r) > limit:
            yield head + ",".join(parts) + "]}", last
            parts = []
            n = len(head) + 2
        parts.append(r)
        n += len(r) + (1 if len(parts) > 1 else 0)
        last = t
    if parts:
        yield head + ",".join(parts) + "]}", last

