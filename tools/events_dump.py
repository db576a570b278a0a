"""Print the persisted event logs of a virtual-board flash image (``make sim ARGS="--flash
PATH"``), decoded (lib/events record format 2, and old 12-byte records).

Usage (CPython, from the repository root)::

    python tools/events_dump.py PATH [--json]

A file that cannot be read or is not a virtual-board image (1048576 bytes, or 131072 for the
first virtual board) is named in a one-line error, exit status 2.

``read_logs(path)`` is what the system tests use: {"standard": [...], "security": [...]}, each
a list of dicts (t, code, name, value, src, subject, summary, legacy), oldest first.
"""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (os.path.join(_ROOT, "lib"), _ROOT, os.path.join(_ROOT, "host_tests", "shim")):
    if _p not in sys.path:
        sys.path.append(_p)

import events  # noqa: E402
from flashstore import ringlog  # noqa: E402
from flashstore.flash import Partition  # noqa: E402

FLASH_SIZE = 1024 * 1024  # boards/sim/board.py SimBoard
OLD_SIZE = 128 * 1024  # the first virtual board's chip (same events partition)
EVENTS = (72 * 1024, 32 * 1024)


def read_logs(path, size=FLASH_SIZE, part=EVENTS):
    from boards.sim.norflash import NORFlash

    with open(path, "rb") as f:
        data = f.read(size + 1)
    if len(data) not in (size, OLD_SIZE):
        raise ValueError("%s: %d bytes, not a virtual-board flash image (%d or %d bytes)"
                         % (path, len(data), size, OLD_SIZE))
    nor = NORFlash(len(data), 4096, 256)
    nor.image[:] = data
    spans = events.log_spans(part[0], part[1], nor.sector_size)
    names = ("standard", "security")
    out = {}
    for i, (off, ln) in enumerate(spans):
        ring = ringlog.RingLog(Partition(nor, off, ln), events.RECORD_SIZE)
        ring.mount()
        rows = []
        for seq, tag, rec in ring.entries():
            try:
                t, code, value, src, subj, summary = events.decode_record(tag, rec)
            except ValueError:
                continue
            rows.append({"seq": seq, "t": t, "code": code, "name": events.NAMES.get(code, "?"),
                         "value": value, "src": events.SRC_NAMES[src], "subject": subj,
                         "summary": summary, "legacy": tag == 0})
        out[names[i] if len(spans) > 1 else "all"] = rows
    return out


def main(argv):
    paths = [a for a in argv if a != "--json"]
    if len(paths) != 1 or paths[0].startswith("-"):
        print(__doc__)
        return 2
    try:
        logs = read_logs(paths[0])
    except OSError as e:
        sys.stderr.write("events_dump: %s: %s\n" % (paths[0], e.strerror or e))
        return 2
    except ValueError as e:
        sys.stderr.write("events_dump: %s\n" % e)
        return 2
    if "--json" in argv:
        import json

        print(json.dumps(logs))
        return 0
    from civil import civil

    for name, rows in logs.items():
        print("== %s log: %d records" % (name, len(rows)))
        for r in rows:
            y, mo, d, h, mi, s, _ = civil(r["t"])
            v = r["value"]
            refusal = r["code"] == events.SEALED_REFUSED or 51 <= r["code"] <= 56
            if refusal and not r["summary"]:
                v = "%s ER%02d" % (chr((v >> 8) & 0x7F) + chr(v & 0x7F), v >> 16)
            if r["code"] == events.PROG_EXIT and not r["summary"]:
                v = {1: "B0", 2: "timeout", 3: "link", 4: "sign-on"}.get(v, v)
            if r["summary"]:
                v = "x%d not recorded one by one" % v
            print("%04d-%02d-%02d %02d:%02d:%02d %-28s %-7s %-12s %s" % (
                y, mo, d, h, mi, s, r["name"], r["src"], r["subject"], v))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
