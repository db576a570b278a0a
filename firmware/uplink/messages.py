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
from civil import civil
from meter.catalogue import K_ENERGY


def iso(secs):
    """RTC seconds since 2000-01-01 UTC -> ``YYYY-MM-DDTHH:MM:SSZ``."""
    y, mo, d, h, mi, s = civil(secs)[:6]
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (y, mo, d, h, mi, s)


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
