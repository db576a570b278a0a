# ruff: noqa: F821  (a MicroPython manifest: add_library/require come from the tool)
# Every board-independent package of the meter, each with its own micropython-lib style
# manifest (lib/NAME/manifest.py: metadata() then package()), taken in by require() as
# micropython-lib packages are (so each keeps its own metadata). The billing and modem cores
# are included too (not yet wired into the firmware; issues 10 and 11).
add_library("meter-lib", ".")
for _p in ("ade7953", "energy", "lcd", "iec62056", "flashstore", "events", "civil", "ticks",
           "mcp23017", "billing", "modem"):
    require(_p, library="meter-lib")
