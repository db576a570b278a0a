# ruff: noqa: F821  (a MicroPython manifest: include comes from the tool)
# Every board-independent package of the meter (lib/*/manifest.py). The billing and modem
# cores are included too (not yet wired into the firmware; issues 10 and 11).
for _p in ("ade7953", "energy", "lcd", "iec62056", "flashstore", "events", "civil", "ticks",
           "mcp23017", "billing", "modem"):
    include("%s/manifest.py" % _p)
